/* slack.c - SLACK: posts one Harbor notification to a Slack incoming webhook
 * (spec 13.2). The reference is plugins/slack/README.md; in short:
 *
 * params:   payload (string, JSON text), address (string URL), both
 *           required (validated, Harbor's texts), skip_cert_verify (bool).
 * run:      POST with Content-Type: application/json; 2xx is success, else
 *           "abnormal response code: <code>, body: <body>".
 *           Instead of Harbor's blind 1 s sleep after every run:
 *           - at most one message per min_interval_ms (1 s) per address,
 *             process-wide: a send waits for the slot of its address;
 *           - HTTP 429: wait Retry-After (1 s when absent) and send again
 *             within the same attempt, at most rate_limit_waits (3) times,
 *             never longer than max_retry_after_seconds (60) per wait.
 *           Every wait honours stop.
 * limits:   max_fails = JOBSERVICE_WEBHOOK_JOB_MAX_RETRY (default 3; read
 *           by init() when the type is loaded), max_concurrency 1,
 *           priority 1, should_retry true. */
#define _GNU_SOURCE
#include <berth/http_plugin.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLACK_USER_AGENT "berth-slack/1.0"
#define SLACK_MIN_INTERVAL_MS 1000
#define SLACK_RATE_LIMIT_WAITS 3
#define SLACK_MAX_RETRY_AFTER_S 60

struct slack_state {
	struct berth_http_settings http;
	long long min_interval_ms;
	int rate_limit_waits;
	long long max_retry_after_s;
};

/* --- per-address pacing (process-wide) ----------------------------------- */

struct pace {
	char *address;
	long long next_ms; /* earliest start of the next send */
};

static pthread_mutex_t pace_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pace *paces;
static size_t n_paces;

/* Drops entries that constrain nothing any more. Called locked. */
static void
pace_prune(long long now)
{
	size_t j = 0;
	for (size_t i = 0; i < n_paces; i++) {
		if (paces[i].next_ms <= now)
			free(paces[i].address);
		else
			paces[j++] = paces[i];
	}
	n_paces = j;
}

static struct pace *
pace_find(const char *address)
{
	for (size_t i = 0; i < n_paces; i++)
		if (strcmp(paces[i].address, address) == 0)
			return &paces[i];
	return NULL;
}

/* Reserves the next send slot of address; returns how long to wait for
 * it (0 = now). Concurrent callers get consecutive slots. */
static long long
pace_reserve(const char *address, long long interval)
{
	long long now = berth_http_now_ms(), start = now;
	pthread_mutex_lock(&pace_lock);
	struct pace *p = pace_find(address);
	if (p && p->next_ms > now)
		start = p->next_ms;
	if (!p) {
		pace_prune(now);
		struct pace *v = realloc(paces, (n_paces + 1) * sizeof(*v));
		char *a = strdup(address);
		if (v)
			paces = v;
		if (v && a) {
			p = &paces[n_paces++];
			p->address = a;
		} else {
			free(a); /* out of memory: no pacing for this send */
		}
	}
	if (p)
		p->next_ms = start + interval;
	pthread_mutex_unlock(&pace_lock);
	return start - now;
}

/* After a send: the next one starts interval after it finished (Harbor
 * slept 1 s after each send). */
static void
pace_done(const char *address, long long interval)
{
	long long next = berth_http_now_ms() + interval;
	pthread_mutex_lock(&pace_lock);
	struct pace *p = pace_find(address);
	if (p && p->next_ms < next)
		p->next_ms = next;
	pthread_mutex_unlock(&pace_lock);
}

static void
pace_clear(void)
{
	pthread_mutex_lock(&pace_lock);
	for (size_t i = 0; i < n_paces; i++)
		free(paces[i].address);
	free(paces);
	paces = NULL;
	n_paces = 0;
	pthread_mutex_unlock(&pace_lock);
}

/* --- init / fini --------------------------------------------------------- */

static int
slack_init(struct berth_job_ctx *ctx, void **type_state)
{
	struct slack_state *st = calloc(1, sizeof(*st));
	long long waits = 0;
	if (!st) {
		berth_log_error(ctx, "out of memory");
		return -1;
	}
	if (berth_setting_int_in(ctx, "min_interval_ms", SLACK_MIN_INTERVAL_MS,
				 0, 60000, &st->min_interval_ms) ||
	    berth_setting_int_in(ctx, "rate_limit_waits",
				 SLACK_RATE_LIMIT_WAITS, 0, 10, &waits) ||
	    berth_setting_int_in(ctx, "max_retry_after_seconds",
				 SLACK_MAX_RETRY_AFTER_S, 1, 600,
				 &st->max_retry_after_s)) {
		free(st);
		return -1;
	}
	st->rate_limit_waits = (int)waits;
	if (berth_http_settings_load(ctx, &st->http, SLACK_USER_AGENT) != 0) {
		free(st);
		return -1;
	}
	/* As WEBHOOK; the manifest's max_fails still overrides it. */
	uint32_t max_fails = BERTH_HTTP_DEFAULT_MAX_FAILS; /* the table's */
	if (BERTH_HOST_HAS(ctx->host, limits)) {
		max_fails = berth_http_env_max_fails();
		berth_limits(ctx)->max_fails = max_fails;
	}
	berth_log_info(ctx,
		       "ready: timeout %ld s, max_fails %u, min_interval_ms "
		       "%lld, rate_limit_waits %d, max_retry_after_seconds "
		       "%lld, follow_redirects %s, block_private_addresses %s",
		       st->http.timeout_ms / 1000, max_fails,
		       st->min_interval_ms, st->rate_limit_waits,
		       st->max_retry_after_s,
		       st->http.follow_redirects ? "on" : "off",
		       berth_http_policy_blocks_private(st->http.policy)
			       ? "on"
			       : "off");
	*type_state = st;
	return 0;
}

static void
slack_fini(void *type_state)
{
	struct slack_state *st = type_state;
	if (st) {
		berth_http_settings_fini(&st->http);
		free(st);
	}
	pace_clear();
}

static bool
slack_should_retry(void *type_state)
{
	(void)type_state;
	return true;
}

/* --- validate / run ------------------------------------------------------ */

/* Harbor's SlackJob.Validate, texts included. */
static int
check_param(struct berth_job_ctx *ctx, const char *key, char *err,
	    size_t errlen)
{
	enum berth_json_type t = berth_param_type(ctx, key);
	if (t == BERTH_JSON_ABSENT) {
		snprintf(err, errlen, "missing job parameter '%s'", key);
		return -1;
	}
	if (t != BERTH_JSON_STRING) {
		snprintf(err, errlen,
			 "malformed job parameter '%s', expecting string but "
			 "got %s",
			 key, berth_http_go_type_name(t));
		return -1;
	}
	return 0;
}

static int
slack_validate(struct berth_job_ctx *ctx, const char *params_json, char *err,
	       size_t errlen)
{
	(void)params_json;
	if (check_param(ctx, "payload", err, errlen) != 0 ||
	    check_param(ctx, "address", err, errlen) != 0)
		return -1;
	return 0;
}

static enum berth_run_result
slack_stopped(struct berth_job_ctx *ctx)
{
	berth_log_info(ctx, "stopped while sending");
	return BERTH_RUN_STOPPED;
}

static enum berth_run_result
slack_run(struct berth_job_ctx *ctx, const char *params_json, char *err,
	  size_t errlen)
{
	const struct slack_state *st = ctx->type_state;
	/* jobs queued before a manifest change were not validated by us */
	if (slack_validate(ctx, params_json, err, errlen) != 0)
		return BERTH_RUN_ERROR;
	const char *payload = berth_param_string(ctx, "payload");
	const char *address = berth_param_string(ctx, "address");
	bool skip = false;
	if (!berth_param_bool(ctx, "skip_cert_verify", &skip))
		skip = false;

	struct berth_http_headers headers;
	berth_http_headers_init(&headers);
	if (berth_http_headers_add(&headers, "Content-Type",
				   "application/json")) {
		berth_http_headers_fini(&headers);
		snprintf(err, errlen, "out of memory");
		return BERTH_RUN_ERROR;
	}
	size_t len = strlen(payload);
	struct berth_http_post post = {
		.url = address,
		.body = payload,
		.body_len = len,
		.headers = &headers,
		.skip_cert_verify = skip,
	};
	berth_log_info(ctx, "start to run slack job");
	enum berth_run_result res = BERTH_RUN_ERROR;
	struct berth_http_response resp;
	char why[768];
	for (int waits = 0;; waits++) {
		long long slot = pace_reserve(address, st->min_interval_ms);
		if (slot > 0) {
			berth_log_info(ctx, "rate limit: waiting %lld ms for "
					    "the next slot of this address",
				       slot);
			if (berth_http_wait(ctx, slot)) {
				res = slack_stopped(ctx);
				break;
			}
		}
		enum berth_http_result hs = berth_http_post(
			ctx, &st->http, &post, &resp, why, sizeof(why));
		pace_done(address, st->min_interval_ms);
		if (hs == BERTH_HTTP_CANCELLED) {
			res = slack_stopped(ctx);
			berth_http_response_fini(&resp);
			break;
		}
		if (hs != BERTH_HTTP_OK) {
			snprintf(err, errlen, "error to send request: %s", why);
			berth_http_response_fini(&resp);
			break;
		}
		berth_http_log_exchange(ctx, &resp, len);
		if (berth_http_is_2xx(resp.status)) {
			berth_log_info(ctx, "success to run slack job");
			res = BERTH_RUN_SUCCESS;
			berth_http_response_fini(&resp);
			break;
		}
		long long after = resp.retry_after_s > 0 ? resp.retry_after_s
							 : 1;
		if (resp.status != 429 || waits >= st->rate_limit_waits ||
		    after > st->max_retry_after_s) {
			if (resp.status == 429)
				berth_log_warning(
					ctx,
					"rate limited (Retry-After %lld s, "
					"%d wait(s) done); giving up this "
					"attempt",
					after, waits);
			berth_http_format_abnormal(err, errlen, &resp);
			berth_http_response_fini(&resp);
			break;
		}
		berth_http_response_fini(&resp);
		berth_log_info(ctx, "rate limited: waiting %lld s (Retry-After) "
				    "before sending again (%d of %d)",
			       after, waits + 1, st->rate_limit_waits);
		if (berth_http_wait(ctx, after * 1000)) {
			res = slack_stopped(ctx);
			break;
		}
	}
	berth_http_headers_fini(&headers);
	return res;
}

static const struct berth_job_type slack_type = {
	BERTH_JOB_TYPE_INIT,
	.name = "SLACK",
	.description = "Harbor's Slack notification: POSTs the JSON payload "
		       "to a Slack incoming webhook",
	.max_fails = BERTH_HTTP_DEFAULT_MAX_FAILS,
	.max_concurrency = 1,
	.priority = 1,
	.init = slack_init,
	.fini = slack_fini,
	.should_retry = slack_should_retry,
	.validate = slack_validate,
	.run = slack_run,
};

BERTH_PLUGIN_MAGIC("slack", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&slack_type);

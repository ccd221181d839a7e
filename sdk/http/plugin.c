/* plugin.c - the job-plugin helpers of the berth_http library
 * (berth/http_plugin.h): manifest settings, one POST ended by a stop,
 * Harbor's error texts and the job-log line. Only the function table of
 * struct berth_job_ctx is used (berth/plugin.h macros), so the library
 * needs no daemon symbol. */
#define _GNU_SOURCE
#include <berth/http_plugin.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BH_STOP_POLL_MS 100

/* --- settings ----------------------------------------------------------- */

uint32_t
berth_http_env_max_fails(void)
{
	const char *v = getenv("JOBSERVICE_WEBHOOK_JOB_MAX_RETRY");
	/* strconv.ParseUint(v, 10, 32): digits only, no sign or spaces */
	if (!v || !*v)
		return BERTH_HTTP_DEFAULT_MAX_FAILS;
	unsigned long long n = 0;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return BERTH_HTTP_DEFAULT_MAX_FAILS;
		n = n * 10 + (unsigned)(*p - '0');
		if (n > UINT32_MAX)
			return BERTH_HTTP_DEFAULT_MAX_FAILS;
	}
	return (uint32_t)n;
}

int
berth_http_settings_load(struct berth_job_ctx *ctx,
			 struct berth_http_settings *s, const char *user_agent)
{
	bool block = false;
	memset(s, 0, sizeof(*s));
	s->timeout_ms = BERTH_HTTP_DEFAULT_TIMEOUT_S * 1000L;
	s->max_response_bytes = BERTH_HTTP_DEFAULT_MAX_RESPONSE_BYTES;
	s->user_agent = user_agent;

	long long max_bytes = 0;
	if (berth_setting_bool_in(ctx, "follow_redirects",
				  &s->follow_redirects) ||
	    berth_setting_bool_in(ctx, "block_private_addresses", &block) ||
	    berth_setting_int_in(ctx, "max_response_bytes",
				 BERTH_HTTP_DEFAULT_MAX_RESPONSE_BYTES, 0,
				 BERTH_HTTP_MAX_RESPONSE_BYTES_LIMIT,
				 &max_bytes))
		return -1;
	s->max_response_bytes = (size_t)max_bytes;

	/* Go: strconv.ParseInt; Berth refuses <= 0 (Go's 0 = no timeout) */
	const char *tv = getenv("JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT");
	if (tv) {
		char *end = NULL;
		errno = 0;
		long long n = strtoll(tv, &end, 10);
		if (errno || !*tv || *end || n <= 0 ||
		    n > BERTH_HTTP_MAX_TIMEOUT_S)
			berth_log_warning(
				ctx,
				"JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT=%s "
				"is not a number of seconds in 1..%d; using "
				"%d s",
				tv, BERTH_HTTP_MAX_TIMEOUT_S,
				BERTH_HTTP_DEFAULT_TIMEOUT_S);
		else
			s->timeout_ms = (long)n * 1000L;
	}

	s->policy = berth_http_policy_from_env();
	if (!s->policy) {
		berth_log_error(ctx, "out of memory");
		return -1;
	}
	berth_http_policy_set_block_private(s->policy, block);
	if (berth_http_global_init() != 0) {
		berth_log_error(ctx, "libcurl could not be initialised");
		berth_http_policy_free(s->policy);
		s->policy = NULL;
		return -1;
	}
	return 0;
}

void
berth_http_settings_fini(struct berth_http_settings *s)
{
	if (!s || !s->policy)
		return;
	berth_http_policy_free(s->policy);
	memset(s, 0, sizeof(*s));
	berth_http_global_cleanup();
}

/* --- one POST ----------------------------------------------------------- */

static bool
stop_requested(void *ud)
{
	return berth_stop_requested((struct berth_job_ctx *)ud);
}

enum berth_http_result
berth_http_post(struct berth_job_ctx *ctx, const struct berth_http_settings *s,
		const struct berth_http_post *p,
		struct berth_http_response *resp, char *err, size_t errlen)
{
	struct berth_http_request req = {
		.method = "POST",
		.url = p->url,
		.headers = p->headers,
		.body = p->body,
		.body_len = p->body_len,
		.user_agent = s->user_agent,
		.timeout_ms = s->timeout_ms,
		.follow_redirects = s->follow_redirects,
		.max_response_bytes = s->max_response_bytes,
		.skip_cert_verify = p->skip_cert_verify,
		.policy = s->policy,
		.cancel = stop_requested,
		.cancel_ud = ctx,
	};
	char why[512];
	struct berth_http_client *c = berth_http_client_new();
	enum berth_http_result r =
		berth_http_send(c, &req, resp, why, sizeof(why));
	if (!c && r != BERTH_HTTP_CANCELLED)
		snprintf(why, sizeof(why), "out of memory");
	berth_http_client_free(c);
	switch (r) {
	case BERTH_HTTP_OK:
	case BERTH_HTTP_CANCELLED:
		break;
	case BERTH_HTTP_REFUSED:
		snprintf(err, errlen, "%s", why);
		break;
	case BERTH_HTTP_TIMEOUT:
		snprintf(err, errlen, "POST %s: timeout after %ld ms%s%s%s",
			 resp->dest, s->timeout_ms, why[0] ? " (" : "", why,
			 why[0] ? ")" : "");
		break;
	default:
		snprintf(err, errlen, "POST %s: %s", resp->dest, why);
		break;
	}
	return r;
}

/* --- texts -------------------------------------------------------------- */

void
berth_http_format_abnormal(char *err, size_t errlen,
			   const struct berth_http_response *r)
{
	char body[BERTH_HTTP_ERROR_BODY_MAX + 1];
	size_t n = r->body_len < BERTH_HTTP_ERROR_BODY_MAX
			   ? r->body_len
			   : BERTH_HTTP_ERROR_BODY_MAX;
	bool cut = n < r->body_len || r->truncated;
	/* do not split a UTF-8 sequence */
	if (n < r->body_len)
		while (n > 0 && ((unsigned char)r->body[n] & 0xc0) == 0x80)
			n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)r->body[i];
		body[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	body[n] = '\0';
	snprintf(err, errlen, "abnormal response code: %ld, body: %s%s",
		 r->status, body, cut ? "... (truncated)" : "");
}

void
berth_http_log_exchange(struct berth_job_ctx *ctx,
			const struct berth_http_response *r, size_t sent)
{
	char via[BERTH_HTTP_DEST_MAX + 16] = "";
	char redirs[48] = "";
	if (r->proxy[0])
		snprintf(via, sizeof(via), " via proxy %s", r->proxy);
	if (r->redirects)
		snprintf(redirs, sizeof(redirs), " after %d redirect(s)",
			 r->redirects);
	berth_log_info(ctx,
		       "POST %s%s: HTTP %ld%s in %lld ms, sent %zu bytes, "
		       "received %zu bytes%s",
		       r->dest, via, r->status, redirs, r->elapsed_ms, sent,
		       r->body_len, r->truncated ? " (truncated)" : "");
}

bool
berth_http_wait(struct berth_job_ctx *ctx, long long ms)
{
	long long end = berth_http_now_ms() + (ms > 0 ? ms : 0);
	for (;;) {
		if (berth_stop_requested(ctx))
			return true;
		long long left = end - berth_http_now_ms();
		if (left <= 0)
			return false;
		if (left > BH_STOP_POLL_MS)
			left = BH_STOP_POLL_MS;
		struct timespec ts = {
			.tv_sec = (time_t)(left / 1000),
			.tv_nsec = (long)(left % 1000) * 1000000L,
		};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
}

const char *
berth_http_go_type_name(enum berth_json_type t)
{
	switch (t) {
	case BERTH_JSON_BOOL:
		return "bool";
	case BERTH_JSON_NUMBER:
		return "float64";
	case BERTH_JSON_STRING:
		return "string";
	case BERTH_JSON_ARRAY:
		return "[]interface {}";
	case BERTH_JSON_OBJECT:
		return "map[string]interface {}";
	default:
		return "<nil>";
	}
}

/* period.c - the periodic scheduler (spec 8); see period.h.
 *
 * The three tiny Lua scripts below run with EVAL (they are Berth's own and
 * not part of the shared set in scripts.c):
 *   known     which execution ids are already in NS:executions:<policy>
 *   add_once  ZADD a policy only when no member has its score (Q6)
 *   unlock    DEL NS:period:lock only while it still holds our node id
 *             (Go does GET then DEL; the script closes the gap between)
 *   trim      Q17: drops finished members (score -1) of an executions zset
 *             whose stats hash has expired, oldest first, at most
 *             PERIOD_TRIM_SCAN looked at per call. The stats keys share
 *             the {namespace} hash tag of the zset (one cluster slot). */
#include "period.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cron.h"
#include "gojson.h"
#include "log.h"
#include "message.h"

static const char lua_known[] =
	"local r = {}\n"
	"for i = 1, #ARGV do\n"
	"  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then r[i] = 1\n"
	"  else r[i] = 0 end\n"
	"end\n"
	"return r\n";

static const char lua_add_once[] =
	"if redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[1]) > 0 then\n"
	"  return 0\n"
	"end\n"
	"redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])\n"
	"return 1\n";

static const char lua_unlock[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
	"  return redis.call('DEL', KEYS[1])\n"
	"end\n"
	"return 0\n";

static const char lua_trim[] =
	"local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-1', '-1',\n"
	"  'LIMIT', 0, tonumber(ARGV[2]))\n"
	"local gone = {}\n"
	"for _, id in ipairs(ids) do\n"
	"  if redis.call('EXISTS', ARGV[1] .. id) == 0 then\n"
	"    gone[#gone + 1] = id\n"
	"  end\n"
	"end\n"
	"if #gone > 0 then redis.call('ZREM', KEYS[1], unpack(gone)) end\n"
	"return #gone\n";

/* Executions looked at per trim call (members "<policy>@<epoch>" with
 * the same score sort by epoch, so the oldest come first). */
#define PERIOD_TRIM_SCAN 2000

struct period {
	struct redis_pool *redis;
	struct tracker *tracker;
	struct queue *queue;
	struct plugin_registry *plugins;
	char *ns;
	char *k_policies, *k_lock, *k_last, *k_scheduled;
	char node_id[64];
	int64_t (*now)(void);

	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool running;
	bool stopping;
};

/* ---- policy object ------------------------------------------------------ */

void
period_policy_fini(struct period_policy *p)
{
	if (!p)
		return;
	free(p->id);
	free(p->job_name);
	free(p->cron_spec);
	cJSON_Delete(p->job_params);
	free(p->web_hook_url);
	memset(p, 0, sizeof(*p));
}

static bool
has_members(const cJSON *o)
{
	return cJSON_IsObject(o) && o->child;
}

static void
put_str_field(struct gbuf *b, const char *key, const char *v, bool first)
{
	if (!first)
		gbuf_putc(b, ',');
	gbuf_putc(b, '"');
	gbuf_puts(b, key);
	gbuf_puts(b, "\":");
	v = v ? v : "";
	gojson_append_decoded_string(b, v, strlen(v));
}

char *
period_policy_encode(const struct period_policy *p)
{
	struct gbuf b = {0};
	gbuf_putc(&b, '{');
	put_str_field(&b, "id", p->id, true);
	put_str_field(&b, "job_name", p->job_name, false);
	put_str_field(&b, "cron_spec", p->cron_spec, false);
	if (has_members(p->job_params)) {
		gbuf_puts(&b, ",\"job_params\":");
		gojson_append(&b, p->job_params);
	}
	if (p->web_hook_url && p->web_hook_url[0])
		put_str_field(&b, "web_hook_url", p->web_hook_url, false);
	if (p->numeric_id) {
		gbuf_puts(&b, ",\"numeric_id\":");
		gojson_append_int(&b, (long long)p->numeric_id);
	}
	gbuf_putc(&b, '}');
	return gbuf_take(&b);
}

static int
set_policy_str(char **dst, const cJSON *v)
{
	if (!cJSON_IsString(v))
		return -1;
	free(*dst);
	*dst = xstrdup(v->valuestring);
	return 0;
}

int
period_policy_parse(const char *raw, size_t len, struct period_policy *p,
		    struct berr *err)
{
	memset(p, 0, sizeof(*p));
	cJSON *root = cJSON_ParseWithLength(raw ? raw : "", len);
	if (!root)
		return berr_set(err, "policy: invalid JSON");
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return berr_set(err, "policy: not a JSON object");
	}
	const char *bad = NULL;
	for (const cJSON *c = root->child; c && !bad; c = c->next) {
		const char *k = c->string ? c->string : "";
		if (cJSON_IsNull(c))
			continue; /* Go leaves the field alone */
		if (strcasecmp(k, "id") == 0) {
			if (set_policy_str(&p->id, c) < 0)
				bad = k;
		} else if (strcasecmp(k, "job_name") == 0) {
			if (set_policy_str(&p->job_name, c) < 0)
				bad = k;
		} else if (strcasecmp(k, "cron_spec") == 0) {
			if (set_policy_str(&p->cron_spec, c) < 0)
				bad = k;
		} else if (strcasecmp(k, "web_hook_url") == 0) {
			if (set_policy_str(&p->web_hook_url, c) < 0)
				bad = k;
		} else if (strcasecmp(k, "job_params") == 0) {
			if (!cJSON_IsObject(c)) {
				bad = k;
			} else {
				cJSON_Delete(p->job_params);
				p->job_params = cJSON_Duplicate(c, true);
			}
		} else if (strcasecmp(k, "numeric_id") == 0) {
			double d = cJSON_IsNumber(c) ? c->valuedouble : 0.5;
			if (d != (double)(int64_t)d || d >= 9.2e18 ||
			    d <= -9.2e18)
				bad = k;
			else
				p->numeric_id = (int64_t)d;
		}
	}
	if (bad) {
		berr_set(err, "policy: field \"%s\" has the wrong type", bad);
		cJSON_Delete(root);
		period_policy_fini(p);
		return -1;
	}
	cJSON_Delete(root);
	return 0;
}

/* Go's utils.IsEmptyStr: blank after TrimSpace. */
static bool
is_blank(const char *s)
{
	if (!s)
		return true;
	for (; *s; s++)
		if (*s != ' ' && (*s < '\t' || *s > '\r'))
			return false;
	return true;
}

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* What makes Go's url.Parse fail, in the cases a hook URL can meet:
 * control characters, a missing scheme before ':', broken %-escapes
 * outside the query, a bad port or a character not allowed in the host. */
static bool
url_parses(const char *u)
{
	for (const char *c = u; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	if (u[0] == ':')
		return false; /* "missing protocol scheme" */
	const char *q = strchr(u, '?');
	const char *h = strchr(u, '#');
	for (const char *c = u; *c; c++) {
		bool in_query = q && c > q && (!h || c < h);
		if (*c == '%' && !in_query &&
		    !(is_hex(c[1]) && is_hex(c[2])))
			return false;
	}
	const char *rest = u;
	const char *colon = strchr(u, ':');
	if (colon) {
		bool scheme = (u[0] >= 'a' && u[0] <= 'z') ||
			      (u[0] >= 'A' && u[0] <= 'Z');
		for (const char *c = u + 1; scheme && c < colon; c++)
			scheme = (*c >= 'a' && *c <= 'z') ||
				 (*c >= 'A' && *c <= 'Z') ||
				 (*c >= '0' && *c <= '9') || *c == '+' ||
				 *c == '-' || *c == '.';
		if (scheme)
			rest = colon + 1;
	}
	if (strncmp(rest, "//", 2) != 0)
		return true;
	const char *a = rest + 2;
	size_t alen = strcspn(a, "/?#");
	const char *at = NULL;
	for (size_t i = 0; i < alen; i++)
		if (a[i] == '@')
			at = a + i;
	const char *host = at ? at + 1 : a;
	size_t hlen = alen - (size_t)(host - a);
	size_t port_at = hlen;
	if (hlen && host[0] == '[') {
		const char *rb = memchr(host, ']', hlen);
		if (!rb)
			return false;
		port_at = (size_t)(rb - host) + 1;
		if (port_at < hlen && host[port_at] != ':')
			return false;
	} else {
		for (size_t i = 0; i < hlen; i++) {
			char c = host[i];
			if (c == ':')
				port_at = i;
			if ((unsigned char)c < 0x80 &&
			    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') ||
			      strchr("-_.~!$&'()*+,;=:[]<>\"%", c)))
				return false;
		}
	}
	for (size_t i = port_at + 1; i < hlen; i++)
		if (host[i] < '0' || host[i] > '9')
			return false;
	return true;
}

int
period_policy_validate(const struct period_policy *p, struct berr *err)
{
	if (is_blank(p->id))
		return berr_set(err, "missing ID in the periodic job policy "
				     "object");
	if (is_blank(p->job_name))
		return berr_set(err, "missing job name in the periodic job "
				     "policy object");
	if (!is_blank(p->web_hook_url) && !url_parses(p->web_hook_url))
		return berr_set(err, "bad web hook URL: %s", p->web_hook_url);
	struct cron_schedule s;
	return cron_parse(p->cron_spec ? p->cron_spec : "", &s, err);
}

char *
period_execution_id(const char *policy_id, int64_t epoch)
{
	return xasprintf("%s@%" PRId64, policy_id, epoch);
}

char *
period_execution_message(const struct period_policy *p, int64_t epoch)
{
	cJSON *args = has_members(p->job_params)
			      ? cJSON_Duplicate(p->job_params, true)
			      : cJSON_CreateObject();
	if (!args) {
		log_error("out of memory (cJSON)");
		abort();
	}
	/* a Go map: the marker replaces any parameter of that name */
	while (cJSON_GetObjectItemCaseSensitive(args, PERIOD_MARKER))
		cJSON_DeleteItemFromObjectCaseSensitive(args, PERIOD_MARKER);
	char t[24];
	snprintf(t, sizeof(t), "%" PRId64, epoch);
	cJSON_AddStringToObject(args, PERIOD_MARKER, t);
	struct job_message m = {
		.name = p->job_name,
		.id = p->id,
		.t = epoch,
		.args = args,
	};
	char *raw = message_encode(&m);
	cJSON_Delete(args);
	return raw;
}

/* ---- life cycle --------------------------------------------------------- */

struct period *
period_new(struct redis_pool *redis, const char *ns, struct tracker *tracker,
	   struct queue *queue, struct plugin_registry *plugins)
{
	struct period *pd = xcalloc(1, sizeof(*pd));
	pd->redis = redis;
	pd->tracker = tracker;
	pd->queue = queue;
	pd->plugins = plugins;
	pd->ns = xstrdup(ns);
	pd->k_policies = xasprintf("%s:period:policies", ns);
	pd->k_lock = xasprintf("%s:period:lock", ns);
	pd->k_last = xasprintf("%s:last_periodic_enqueue_h", ns);
	pd->k_scheduled = xasprintf("%s:scheduled", ns);
	char id[25];
	util_hex24(id);
	snprintf(pd->node_id, sizeof(pd->node_id), "%s", id);
	pd->now = util_now;
	pthread_mutex_init(&pd->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pd->cond, &ca);
	pthread_condattr_destroy(&ca);
	return pd;
}

void
period_set_clock(struct period *pd, int64_t (*now)(void))
{
	pd->now = now ? now : util_now;
}

void
period_set_node_id(struct period *pd, const char *node_id)
{
	snprintf(pd->node_id, sizeof(pd->node_id), "%s", node_id);
}

const char *
period_node_id(const struct period *pd)
{
	return pd->node_id;
}

/* Waits ms or until period_stop; true when stopping. */
static bool
wait_or_stop(struct period *pd, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&pd->lock);
	while (!pd->stopping &&
	       pthread_cond_timedwait(&pd->cond, &pd->lock, &ts) == 0)
		;
	bool stop = pd->stopping;
	pthread_mutex_unlock(&pd->lock);
	return stop;
}

static void *
enqueuer_main(void *arg)
{
	struct period *pd = arg;
	log_info("periodic enqueuer started (node %s)", pd->node_id);
	do {
		struct berr err;
		berr_clear(&err);
		int hit = period_should_enqueue(pd, &err);
		if (hit < 0) {
			log_warn("periodic enqueuer: %s", err.msg);
		} else if (hit) {
			int n = period_enqueue_all(pd, &err);
			if (n < 0)
				log_error("periodic enqueuer: %s", err.msg);
			else
				log_debug("periodic enqueuer: %d execution(s) "
					  "scheduled",
					  n);
		}
	} while (!wait_or_stop(pd, PERIOD_TRY_INTERVAL * 1000LL +
					   util_random_below(5000)));
	log_info("periodic enqueuer stopped");
	return NULL;
}

int
period_start(struct period *pd, struct berr *err)
{
	if (pd->running)
		return 0;
	struct berr cerr;
	berr_clear(&cerr);
	int n = period_clear_dirty(pd, &cerr);
	if (n < 0)
		log_warn("cleanup of overdue scheduled jobs failed: %s",
			 cerr.msg);
	else if (n > 0)
		log_warn("removed %d scheduled job(s) overdue by more than %d "
			 "s",
			 n, PERIOD_HORIZON);
	pd->stopping = false;
	int rc = pthread_create(&pd->thread, NULL, enqueuer_main, pd);
	if (rc != 0)
		return berr_set(err, "cannot start the periodic enqueuer: %s",
				strerror(rc));
	pd->running = true;
	return 0;
}

void
period_stop(struct period *pd)
{
	if (!pd || !pd->running)
		return;
	pthread_mutex_lock(&pd->lock);
	pd->stopping = true;
	pthread_cond_broadcast(&pd->cond);
	pthread_mutex_unlock(&pd->lock);
	pthread_join(pd->thread, NULL);
	pd->running = false;
}

void
period_free(struct period *pd)
{
	if (!pd)
		return;
	period_stop(pd);
	pthread_cond_destroy(&pd->cond);
	pthread_mutex_destroy(&pd->lock);
	free(pd->ns);
	free(pd->k_policies);
	free(pd->k_lock);
	free(pd->k_last);
	free(pd->k_scheduled);
	free(pd);
}

/* ---- Redis helpers ------------------------------------------------------ */

/* A reply that is not NULL and not an error; otherwise err is set and the
 * reply freed. */
static redisReply *
checked(redisReply *r, const char *what, struct berr *err)
{
	if (!r)
		return NULL; /* err already set */
	if (r->type == REDIS_REPLY_ERROR) {
		berr_set(err, "%s: %s", what, r->str ? r->str : "error");
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

static redisReply *
eval(struct period *pd, struct berr *err, const char *script, int nkeys,
     int argc, const char **argv)
{
	int n = 3 + argc;
	const char **v = xmalloc(sizeof(*v) * (size_t)n);
	char nk[12];
	snprintf(nk, sizeof(nk), "%d", nkeys);
	v[0] = "EVAL";
	v[1] = script;
	v[2] = nk;
	memcpy(v + 3, argv, sizeof(*v) * (size_t)argc);
	redisReply *r = redis_command_argv(pd->redis, err, n, v, NULL);
	free(v);
	return checked(r, "EVAL", err);
}

static char *
key_executions(const struct period *pd, const char *policy_id)
{
	return xasprintf("%s:executions:%s", pd->ns, policy_id);
}

/* Q17: forgets finished executions whose stats have expired. Returns the
 * number removed or -1. */
static int
trim_executions(struct period *pd, const char *policy_id, struct berr *err)
{
	char *key = key_executions(pd, policy_id);
	char *prefix = xasprintf("%s:job_stats:", pd->ns);
	char scan[12];
	snprintf(scan, sizeof(scan), "%d", PERIOD_TRIM_SCAN);
	const char *argv[] = {key, prefix, scan};
	redisReply *r = eval(pd, err, lua_trim, 1, 3, argv);
	free(key);
	free(prefix);
	if (!r)
		return -1;
	int n = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : 0;
	freeReplyObject(r);
	return n;
}

static int64_t
reply_i64(const redisReply *r)
{
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	if (r->type == REDIS_REPLY_STRING && r->str)
		return (int64_t)strtod(r->str, NULL);
	return 0;
}

/* ---- materialising ------------------------------------------------------ */

/* Marks which ids are already in the executions zset (known[i] = true). */
static int
find_known(struct period *pd, const char *policy_id, char **ids, size_t n,
	   bool *known, struct berr *err)
{
	char *key = key_executions(pd, policy_id);
	const char **argv = xmalloc(sizeof(*argv) * (n + 1));
	argv[0] = key;
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = ids[i];
	redisReply *r = eval(pd, err, lua_known, 1, (int)n + 1, argv);
	free(argv);
	free(key);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != n)
		rc = berr_set(err, "executions check: unexpected reply");
	for (size_t i = 0; rc == 0 && i < n; i++)
		known[i] = reply_i64(r->element[i]) == 1;
	freeReplyObject(r);
	return rc;
}

static void
fill_execution(struct job_stats *st, const struct period_policy *p,
	       const char *eid, int64_t epoch, int64_t now)
{
	memset(st, 0, sizeof(*st));
	st->id = xstrdup(eid);
	st->name = xstrdup(p->job_name);
	st->kind = xstrdup(JOB_KIND_SCHEDULED);
	st->status = xstrdup(JOB_STATUS_SCHEDULED);
	st->ref_link = xasprintf("/api/v1/jobs/%s", eid);
	st->enqueue_time = now;
	st->run_at = epoch;
	st->cron_spec = xstrdup(p->cron_spec);
	if (p->web_hook_url && p->web_hook_url[0])
		st->web_hook_url = xstrdup(p->web_hook_url);
	st->upstream_job_id = xstrdup(p->id);
	if (has_members(p->job_params))
		st->parameters = cJSON_Duplicate(p->job_params, true);
}

/* Saves the execution and puts its message into NS:scheduled. */
static int
write_execution(struct period *pd, const struct period_policy *p,
		const char *eid, int64_t epoch, int64_t now, struct berr *err)
{
	struct job_stats st;
	fill_execution(&st, p, eid, epoch, now);
	if (tracker_save(pd->tracker, &st, err) < 0) {
		job_stats_fini(&st);
		return -1;
	}
	char *msg = period_execution_message(p, epoch);
	char score[24];
	snprintf(score, sizeof(score), "%" PRId64, epoch);
	redisReply *r = redis_command(pd->redis, err, "ZADD", pd->k_scheduled,
				      score, msg, NULL);
	free(msg);
	r = checked(r, "ZADD scheduled", err);
	if (!r) {
		struct berr serr;
		berr_clear(&serr);
		if (tracker_set_status(pd->tracker, &st, JOB_STATUS_ERROR, NULL,
				       &serr) != TRACKER_OK)
			log_warn("execution %s: cannot mark it Error: %s", eid,
				 serr.msg);
		job_stats_fini(&st);
		return -1;
	}
	freeReplyObject(r);
	job_stats_fini(&st);
	return 0;
}

int
period_materialise(struct period *pd, const struct period_policy *p,
		   int64_t now, struct berr *err)
{
	struct cron_schedule s;
	if (cron_parse(p->cron_spec ? p->cron_spec : "", &s, err) < 0)
		return -1;
	int64_t horizon = now + PERIOD_HORIZON;
	int64_t *epochs = xmalloc(sizeof(*epochs) * (PERIOD_HORIZON + 1));
	size_t n = 0;
	for (int64_t t = cron_next(&s, now); t > now && t < horizon &&
					      n < PERIOD_HORIZON + 1;) {
		epochs[n++] = t;
		int64_t next = cron_next(&s, t);
		if (next <= t)
			break; /* no further match (Q18) */
		t = next;
	}
	if (n == 0) {
		free(epochs);
		return 0;
	}
	char **ids = xcalloc(n, sizeof(*ids));
	bool *known = xcalloc(n, sizeof(*known));
	for (size_t i = 0; i < n; i++)
		ids[i] = period_execution_id(p->id, epochs[i]);
	int done = -1;
	if (find_known(pd, p->id, ids, n, known, err) == 0) {
		done = 0;
		for (size_t i = 0; i < n; i++) {
			if (known[i])
				continue;
			if (write_execution(pd, p, ids[i], epochs[i], now,
					    err) < 0) {
				done = -1;
				break;
			}
			done++;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	free(known);
	free(epochs);
	return done;
}

/* ---- the enqueuer ------------------------------------------------------- */

int
period_should_enqueue(struct period *pd, struct berr *err)
{
	char ttl[12];
	snprintf(ttl, sizeof(ttl), "%d", PERIOD_LOCK_TTL);
	redisReply *r = checked(redis_command(pd->redis, err, "SET", pd->k_lock,
					      pd->node_id, "NX", "EX", ttl,
					      NULL),
				"SET period lock", err);
	if (!r)
		return -1;
	bool locked = r->type == REDIS_REPLY_STATUS;
	freeReplyObject(r);
	if (!locked)
		return 0;

	int rc = 0;
	int64_t now = pd->now();
	r = checked(redis_command(pd->redis, err, "GET", pd->k_last, NULL),
		    "GET last periodic enqueue", err);
	if (!r) {
		rc = -1;
	} else {
		char *end = NULL;
		long long last = r->type == REDIS_REPLY_STRING
					 ? strtoll(r->str, &end, 10)
					 : 0;
		bool valid = end && end != r->str && *end == '\0';
		freeReplyObject(r);
		if (!valid || last < now - PERIOD_MIN_INTERVAL) {
			char v[24];
			snprintf(v, sizeof(v), "%" PRId64, now);
			r = checked(redis_command(pd->redis, err, "SET",
						  pd->k_last, v, NULL),
				    "SET last periodic enqueue", err);
			if (r) {
				freeReplyObject(r);
				rc = 1;
			} else {
				rc = -1;
			}
		}
	}
	struct berr uerr;
	berr_clear(&uerr);
	const char *argv[] = {pd->k_lock, pd->node_id};
	r = eval(pd, &uerr, lua_unlock, 1, 2, argv);
	if (r)
		freeReplyObject(r);
	else
		log_warn("cannot release %s (it expires in %d s): %s",
			 pd->k_lock, PERIOD_LOCK_TTL, uerr.msg);
	return rc;
}

/* Calls fn for every member of NS:period:policies that parses (numeric id
 * = score); fn returns non-zero to stop. */
static int
each_policy(struct period *pd, bool validate,
	    int (*fn)(struct period *, const struct period_policy *, void *),
	    void *data, struct berr *err)
{
	redisReply *r = checked(redis_command(pd->redis, err, "ZRANGE",
					      pd->k_policies, "0", "-1",
					      "WITHSCORES", NULL),
				"ZRANGE policies", err);
	if (!r)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(r);
		return berr_set(err, "ZRANGE policies: unexpected reply");
	}
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *m = r->element[i];
		struct period_policy p;
		struct berr perr;
		berr_clear(&perr);
		if (m->type != REDIS_REPLY_STRING ||
		    period_policy_parse(m->str, m->len, &p, &perr) < 0) {
			log_error("malformed policy %.200s: %s",
				  m->type == REDIS_REPLY_STRING ? m->str : "?",
				  perr.msg);
			continue;
		}
		if (validate && period_policy_validate(&p, &perr) < 0) {
			log_error("policy %s: %s", p.id ? p.id : "?", perr.msg);
			period_policy_fini(&p);
			continue;
		}
		p.numeric_id = reply_i64(r->element[i + 1]);
		int stop = fn(pd, &p, data);
		period_policy_fini(&p);
		if (stop)
			break;
	}
	freeReplyObject(r);
	return 0;
}

struct round {
	int64_t now;
	int written;
	int failed;
	struct berr first;
};

static int
round_one(struct period *pd, const struct period_policy *p, void *data)
{
	struct round *rd = data;
	struct berr err;
	berr_clear(&err);
	if (pd->plugins) {
		struct job_type *t = plugin_acquire(pd->plugins, p->job_name);
		if (t)
			plugin_release(pd->plugins, t);
		else
			log_debug("policy %s: job type %s is not loaded here; "
				  "another instance may run it",
				  p->id, p->job_name);
	}
	int n = period_materialise(pd, p, rd->now, &err);
	if (n < 0) {
		log_error("policy %s (%s): %s", p->id, p->job_name, err.msg);
		if (!rd->failed++)
			rd->first = err;
		return 0;
	}
	rd->written += n;
	berr_clear(&err);
	int gone = trim_executions(pd, p->id, &err);
	if (gone < 0)
		log_warn("policy %s: trimming executions: %s", p->id, err.msg);
	else if (gone > 0)
		log_debug("policy %s: forgot %d expired execution(s)", p->id,
			  gone);
	return 0;
}

int
period_enqueue_all(struct period *pd, struct berr *err)
{
	struct round rd = {.now = pd->now()};
	berr_clear(&rd.first);
	if (each_policy(pd, true, round_one, &rd, err) < 0)
		return -1;
	if (rd.failed) {
		berr_set(err, "%d polic%s failed, first: %s", rd.failed,
			 rd.failed == 1 ? "y" : "ies", rd.first.msg);
		return -1;
	}
	return rd.written;
}

/* ---- creating a policy -------------------------------------------------- */

/* Stops what is left of a policy's executions (spec 8.6 step 2); a
 * stopped one is marked finished (-1), then expired ones are trimmed. */
static void
stop_executions(struct period *pd, const char *policy_id)
{
	struct berr err;
	berr_clear(&err);
	char *key = key_executions(pd, policy_id);
	redisReply *r = checked(redis_command(pd->redis, &err, "ZRANGEBYSCORE",
					      key, "0", "+inf", NULL),
				"ZRANGEBYSCORE executions", &err);
	if (!r) {
		log_error("executions of %s: %s", policy_id, err.msg);
		free(key);
		return;
	}
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements;
	     i++) {
		const char *eid = r->element[i]->str;
		if (!eid)
			continue;
		struct job_stats st;
		memset(&st, 0, sizeof(st));
		berr_clear(&err);
		int rc = tracker_load(pd->tracker, eid, &st, &err);
		if (rc != 0) {
			if (rc < 0)
				log_error("execution %s: %s", eid, err.msg);
			continue;
		}
		if (st.status && strcmp(st.status, JOB_STATUS_SCHEDULED) == 0 &&
		    queue_unschedule(pd->queue, st.run_at, policy_id, &err) < 0)
			log_error("execution %s: cannot remove its message: %s",
				  eid, err.msg);
		int code = job_status_code(st.status);
		if (code >= 0 && code <= 2) {
			char *cur = NULL;
			enum tracker_cas cas = tracker_set_status(
				pd->tracker, &st, JOB_STATUS_STOPPED, &cur, &err);
			if (cas == TRACKER_MISMATCH)
				log_warn("execution %s: not stopped, it is %s",
					 eid, cur ? cur : "gone");
			else if (cas != TRACKER_OK)
				log_error("execution %s: stop: %s", eid,
					  err.msg);
			free(cur);
			redisReply *z = NULL;
			if (cas == TRACKER_OK)
				z = redis_command(pd->redis, &err, "ZADD", key,
						  "XX", "-1", eid, NULL);
			if (z)
				freeReplyObject(z);
		}
		job_stats_fini(&st);
	}
	freeReplyObject(r);
	free(key);
	berr_clear(&err);
	if (trim_executions(pd, policy_id, &err) < 0)
		log_warn("policy %s: trimming executions: %s", policy_id,
			 err.msg);
}

/* ZADD the policy at now + 0..9 (a random start, then the other nine),
 * then further up, at a score no member has (Q6). */
static int
add_policy(struct period *pd, const char *member, int64_t now,
	   int64_t *score, struct berr *err)
{
	uint32_t r0 = util_random_below(10);
	for (int i = 0; i < 10 + 1000; i++) {
		int64_t s = i < 10 ? now + (r0 + (uint32_t)i) % 10 : now + i;
		char sc[24];
		snprintf(sc, sizeof(sc), "%" PRId64, s);
		const char *argv[] = {pd->k_policies, sc, member};
		redisReply *r = eval(pd, err, lua_add_once, 1, 3, argv);
		if (!r)
			return -1;
		int64_t added = reply_i64(r);
		freeReplyObject(r);
		if (added == 1) {
			*score = s;
			return 0;
		}
	}
	return berr_set(err, "no free numeric policy id near %" PRId64, now);
}

int
period_create_policy(struct period *pd, const char *job_name,
		     const char *cron_spec, const cJSON *params,
		     const char *hook, struct job_stats *out, struct berr *err)
{
	memset(out, 0, sizeof(*out));
	char id[25];
	util_hex24(id);
	struct period_policy p = {
		.id = xstrdup(id),
		.job_name = xstrdup(job_name ? job_name : ""),
		.cron_spec = xstrdup(cron_spec ? cron_spec : ""),
		.job_params = has_members(params)
				      ? cJSON_Duplicate(params, true)
				      : NULL,
		.web_hook_url = hook && hook[0] ? xstrdup(hook) : NULL,
	};
	int rc = -1;
	char *member = NULL;
	if (period_policy_validate(&p, err) < 0)
		goto out;
	int64_t now = pd->now();
	struct berr merr;
	berr_clear(&merr);
	int n = period_materialise(pd, &p, now, &merr);
	if (n < 0)
		log_error("policy %s: first executions: %s", id, merr.msg);

	member = period_policy_encode(&p);
	int64_t score = 0;
	if (add_policy(pd, member, now, &score, err) < 0) {
		stop_executions(pd, id);
		goto out;
	}

	struct job_stats *st = out;
	st->id = xstrdup(id);
	st->name = xstrdup(p.job_name);
	st->kind = xstrdup(JOB_KIND_PERIODIC);
	st->status = xstrdup(JOB_STATUS_SCHEDULED);
	st->ref_link = xasprintf("/api/v1/jobs/%s", id);
	st->cron_spec = xstrdup(p.cron_spec);
	st->enqueue_time = now;
	st->update_time = now;
	if (p.web_hook_url)
		st->web_hook_url = xstrdup(p.web_hook_url);
	st->numeric_policy_id = score;
	if (p.job_params)
		st->parameters = cJSON_Duplicate(p.job_params, true);
	if (tracker_save(pd->tracker, st, err) < 0) {
		struct berr rerr;
		berr_clear(&rerr);
		redisReply *r = redis_command(pd->redis, &rerr, "ZREM",
					      pd->k_policies, member, NULL);
		if (r)
			freeReplyObject(r);
		else
			log_error("policy %s: cannot remove it again: %s", id,
				  rerr.msg);
		stop_executions(pd, id);
		job_stats_fini(st);
		goto out;
	}
	log_info("periodic job %s (%s, \"%s\") scheduled, numeric id %" PRId64
		 ", %d execution(s) in the next %d s",
		 id, p.job_name, p.cron_spec, score, n < 0 ? 0 : n,
		 PERIOD_HORIZON);
	rc = 0;
out:
	free(member);
	period_policy_fini(&p);
	return rc;
}

/* ---- unscheduling ------------------------------------------------------- */

struct find {
	const char *id;
	bool found;
	int64_t score;
};

static int
find_one(struct period *pd, const struct period_policy *p, void *data)
{
	(void)pd;
	struct find *f = data;
	if (p->id && strcmp(p->id, f->id) == 0) {
		f->found = true;
		f->score = p->numeric_id;
		return 1;
	}
	return 0;
}

int
period_unschedule(struct period *pd, const char *policy_id,
		  struct berr *err)
{
	struct job_stats st;
	memset(&st, 0, sizeof(st));
	int rc = tracker_load(pd->tracker, policy_id, &st, err);
	if (rc < 0)
		return -1;
	int64_t numeric = 0;
	if (rc == 0) {
		if (!st.kind || strcmp(st.kind, JOB_KIND_PERIODIC) != 0 ||
		    st.numeric_policy_id <= 0) {
			job_stats_fini(&st);
			return berr_set(err, "numeric ID not found for job: %s",
					policy_id);
		}
		numeric = st.numeric_policy_id;
		if (!job_status_final(st.status)) {
			char *cur = NULL;
			struct berr serr;
			berr_clear(&serr);
			enum tracker_cas cas = tracker_set_status(
				pd->tracker, &st, JOB_STATUS_STOPPED, &cur,
				&serr);
			if (cas == TRACKER_MISMATCH)
				log_warn("periodic job %s: not stopped, it is "
					 "%s",
					 policy_id, cur ? cur : "gone");
			else if (cas != TRACKER_OK)
				log_error("periodic job %s: stop: %s",
					  policy_id, serr.msg);
			free(cur);
		}
		job_stats_fini(&st);
	} else {
		struct find f = {.id = policy_id};
		if (each_policy(pd, false, find_one, &f, err) < 0)
			return -1;
		if (!f.found)
			return 1;
		numeric = f.score;
	}

	char sc[24];
	snprintf(sc, sizeof(sc), "%" PRId64, numeric);
	redisReply *r = checked(redis_command(pd->redis, err,
					      "ZREMRANGEBYSCORE",
					      pd->k_policies, sc, sc, NULL),
				"ZREMRANGEBYSCORE policies", err);
	if (!r)
		return -1;
	if (reply_i64(r) == 0)
		log_warn("no periodic job with ID=%s and numeric ID=%" PRId64
			 " removed from the periodic job policy set",
			 policy_id, numeric);
	freeReplyObject(r);
	stop_executions(pd, policy_id);
	log_info("periodic job %s unscheduled", policy_id);
	return 0;
}

/* ---- start-up cleanup (spec 8.7, Q14) ----------------------------------- */

/* Q14: the job of a dropped message must not stay Scheduled forever. */
static void
fail_dropped(struct period *pd, const struct job_message *m, int64_t score)
{
	char *jid = message_job_id(m);
	struct job_stats st;
	struct berr err;
	memset(&st, 0, sizeof(st));
	berr_clear(&err);
	int rc = tracker_load(pd->tracker, jid, &st, &err);
	if (rc == 0 && job_status_code(st.status) >= 0 &&
	    job_status_code(st.status) <= 1) {
		enum tracker_cas cas = tracker_set_status(
			pd->tracker, &st, JOB_STATUS_ERROR, NULL, &err);
		if (cas == TRACKER_OK)
			log_warn("job %s was due at %" PRId64 ", more than %d s "
				 "ago, while no instance ran: dropped and "
				 "marked Error",
				 jid, score, PERIOD_HORIZON);
		else if (cas == TRACKER_REDIS_ERROR)
			log_error("job %s: cannot mark it Error: %s", jid,
				  err.msg);
	} else if (rc < 0) {
		log_error("job %s: %s", jid, err.msg);
	}
	job_stats_fini(&st);
	if (cJSON_GetObjectItemCaseSensitive(m->args, PERIOD_MARKER)) {
		char *key = key_executions(pd, m->id);
		redisReply *r = redis_command(pd->redis, &err, "ZADD", key,
					      "XX", "-1", jid, NULL);
		if (r)
			freeReplyObject(r);
		free(key);
	}
	free(jid);
}

int
period_clear_dirty(struct period *pd, struct berr *err)
{
	int64_t max = pd->now() - PERIOD_HORIZON;
	char sc[24];
	snprintf(sc, sizeof(sc), "%" PRId64, max);
	redisReply *r = checked(redis_command(pd->redis, err, "ZRANGEBYSCORE",
					      pd->k_scheduled, "0", sc,
					      "WITHSCORES", NULL),
				"ZRANGEBYSCORE scheduled", err);
	if (!r)
		return -1;
	int removed = 0;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
	     i += 2) {
		const redisReply *mem = r->element[i];
		int64_t score = reply_i64(r->element[i + 1]);
		struct job_message m;
		struct berr perr;
		berr_clear(&perr);
		if (mem->type != REDIS_REPLY_STRING ||
		    message_parse(mem->str, mem->len, &m, &perr) < 0) {
			log_error("dirty scheduled job: %s", perr.msg);
			continue;
		}
		int n = queue_unschedule(pd->queue, score, m.id, &perr);
		if (n < 0) {
			log_error("remove dirty scheduled job %s: %s", m.id,
				  perr.msg);
		} else if (n > 0) {
			removed += n;
			fail_dropped(pd, &m, score);
		}
		message_fini(&m);
	}
	freeReplyObject(r);
	return removed;
}

/* ---- executions listing (spec 2.9) -------------------------------------- */

void
period_ids_free(char **ids)
{
	if (!ids)
		return;
	for (char **p = ids; *p; p++)
		free(*p);
	free(ids);
}

int
period_list_executions(struct period *pd, const char *policy_id,
		       uint32_t page, uint32_t size, int non_dead,
		       char ***ids, size_t *n, int64_t *total,
		       struct berr *err)
{
	*ids = xcalloc(1, sizeof(**ids));
	*n = 0;
	*total = 0;
	if (non_dead == 0)
		return 0; /* quirk Q4: non_dead_only=false lists nothing */
	if (page < 1)
		page = 1;
	if (size < 1)
		size = 1;
	uint64_t off = (uint64_t)(page - 1) * size;
	char *key = key_executions(pd, policy_id);
	redisReply *r = non_dead > 0
				? redis_command(pd->redis, err, "ZCOUNT", key,
						"0", "+inf", NULL)
				: redis_command(pd->redis, err, "ZCARD", key,
						NULL);
	r = checked(r, "count executions", err);
	if (!r) {
		free(key);
		return -1;
	}
	*total = reply_i64(r);
	freeReplyObject(r);
	if (off >= (uint64_t)(*total > 0 ? *total : 0)) {
		free(key);
		return 0;
	}
	char a[24], b[24];
	if (non_dead > 0) {
		snprintf(a, sizeof(a), "%" PRIu64, off);
		snprintf(b, sizeof(b), "%" PRIu32, size);
		r = redis_command(pd->redis, err, "ZREVRANGEBYSCORE", key,
				  "+inf", "0", "LIMIT", a, b, NULL);
	} else {
		snprintf(a, sizeof(a), "%" PRIu64, off);
		snprintf(b, sizeof(b), "%" PRIu64, off + size - 1);
		r = redis_command(pd->redis, err, "ZREVRANGE", key, a, b,
				  NULL);
	}
	free(key);
	r = checked(r, "list executions", err);
	if (!r)
		return -1;
	if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
		free(*ids);
		*ids = xcalloc(r->elements + 1, sizeof(**ids));
		for (size_t i = 0; i < r->elements; i++)
			if (r->element[i]->type == REDIS_REPLY_STRING)
				(*ids)[(*n)++] = xstrndup(
					r->element[i]->str,
					(size_t)r->element[i]->len);
	}
	freeReplyObject(r);
	return 0;
}

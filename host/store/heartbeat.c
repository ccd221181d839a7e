/* heartbeat.c - see heartbeat.h. */
#include "store/heartbeat.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/gojson.h"
#include "common/ticker.h"
#include "store/keys.h"
#include "logs/log.h"
#include "store/pipe.h"
#include "store/redis_cmd.h"

#define HEARTBEAT_PERIOD_MS 5000
#define SCHEMA_VERSION "1.8.1"

struct heartbeat {
	struct redis_pool *redis;
	char *ns;
	struct plugin_registry *plugins;
	char pool_id[25];
	char **worker_ids;
	size_t n_workers;
	char *worker_ids_joined;
	int64_t started_at;
	char host[256];
	pthread_t thread;
	bool running;
	struct ticker tick;
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct heartbeat *
heartbeat_new(struct redis_pool *redis, const char *ns,
	      struct plugin_registry *plugins, int workers)
{
	struct heartbeat *hb = xcalloc(1, sizeof(*hb));
	hb->redis = redis;
	hb->ns = xstrdup(ns);
	hb->plugins = plugins;
	util_hex24(hb->pool_id);
	hb->n_workers = workers > 0 ? (size_t)workers : 0;
	hb->worker_ids = xcalloc(hb->n_workers + 1, sizeof(char *));
	size_t total = 1;
	for (size_t i = 0; i < hb->n_workers; i++) {
		hb->worker_ids[i] = xmalloc(25);
		util_hex24(hb->worker_ids[i]);
		total += 25;
	}
	qsort(hb->worker_ids, hb->n_workers, sizeof(char *), cmp_str);
	hb->worker_ids_joined = xcalloc(1, total);
	for (size_t i = 0; i < hb->n_workers; i++) {
		if (i)
			strcat(hb->worker_ids_joined, ",");
		strcat(hb->worker_ids_joined, hb->worker_ids[i]);
	}
	if (gethostname(hb->host, sizeof(hb->host)) != 0)
		snprintf(hb->host, sizeof(hb->host), "hostname_errored");
	hb->host[sizeof(hb->host) - 1] = '\0';
	ticker_init(&hb->tick);
	return hb;
}

/* spec 5.2: SET max_concurrency per type, one SADD known_jobs. */
static int
register_types(struct heartbeat *hb, char **names, size_t n, struct berr *err)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct job_type *t = plugin_acquire(hb->plugins, names[i]);
		if (!t)
			continue;
		char *key = key_max_concurrency(hb->ns, names[i]);
		char val[24];
		snprintf(val, sizeof(val), "%u", t->max_concurrency);
		plugin_release(hb->plugins, t);
		redisReply *r = redis_command(hb->redis, err, "SET", key, val,
					      NULL);
		free(key);
		if (!r)
			return -1;
		freeReplyObject(r);
	}
	const char **argv = xcalloc(n + 2, sizeof(char *));
	char *known = key_known_jobs(hb->ns);
	argv[0] = "SADD";
	argv[1] = known;
	for (size_t i = 0; i < n; i++)
		argv[i + 2] = names[i];
	redisReply *r = redis_command_argv(hb->redis, err, (int)n + 2, argv,
					   NULL);
	free(argv);
	free(known);
	if (!r)
		return -1;
	freeReplyObject(r);
	return 0;
}

static int
beat(struct heartbeat *hb, bool do_register, struct berr *err)
{
	size_t n = 0;
	char **names = plugin_registry_names(hb->plugins, &n);
	int rc = 0;
	if (do_register && register_types(hb, names, n, err) < 0) {
		plugin_names_free(names);
		return -1;
	}
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(names[i]) + 1;
	char *joined = xcalloc(1, len);
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(joined, ",");
		strcat(joined, names[i]);
	}

	char *pools = key_worker_pools(hb->ns);
	char *pool = key_worker_pool(hb->ns, hb->pool_id);
	char now[24], started[24], conc[24], pid[24];
	snprintf(now, sizeof(now), "%lld", (long long)util_now());
	snprintf(started, sizeof(started), "%lld", (long long)hb->started_at);
	snprintf(conc, sizeof(conc), "%zu", hb->n_workers);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	redisReply *r = redis_command(hb->redis, err, "SADD", pools,
				      hb->pool_id, NULL);
	if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1 &&
	    !do_register) {
		/* our pool was gone from the set: Redis was reset or a reaper
		 * removed us; register the job types again */
		freeReplyObject(r);
		r = NULL;
		if (register_types(hb, names, n, err) == 0)
			r = redis_command(hb->redis, err, "SADD", pools,
					  hb->pool_id, NULL);
	}
	if (r) {
		freeReplyObject(r);
		r = redis_command(hb->redis, err, "HMSET", pool, "heartbeat_at",
				  now, "started_at", started, "job_names",
				  joined, "concurrency", conc, "worker_ids",
				  hb->worker_ids_joined, "host", hb->host,
				  "pid", pid, NULL);
	}
	if (!r)
		rc = -1;
	else if (r->type == REDIS_REPLY_ERROR) {
		berr_set(err, "heartbeat: %s", r->str);
		rc = -1;
	}
	if (r)
		freeReplyObject(r);
	free(pools);
	free(pool);
	free(joined);
	plugin_names_free(names);
	return rc;
}

static void *
heartbeat_loop(void *arg)
{
	struct heartbeat *hb = arg;
	bool registered = true;
	while (!ticker_sleep(&hb->tick, HEARTBEAT_PERIOD_MS)) {
		struct berr err;
		berr_clear(&err);
		/* after a failure, register again: Redis may have been reset */
		if (beat(hb, !registered, &err) < 0) {
			log_warn("pool %s heartbeat failed: %s", hb->pool_id,
				 err.msg);
			registered = false;
		} else {
			registered = true;
		}
	}
	return NULL;
}

int
heartbeat_start(struct heartbeat *hb, struct berr *err)
{
	hb->started_at = util_now();
	if (beat(hb, true, err) < 0)
		return -1;
	if (pthread_create(&hb->thread, NULL, heartbeat_loop, hb) != 0)
		return berr_set(err, "cannot start the heartbeat thread");
	hb->running = true;
	log_info("worker pool %s registered (%zu workers)", hb->pool_id,
		 hb->n_workers);
	return 0;
}

void
heartbeat_refresh(struct heartbeat *hb)
{
	struct berr err;
	berr_clear(&err);
	if (beat(hb, true, &err) < 0)
		log_warn("pool %s heartbeat after reload failed: %s",
			 hb->pool_id, err.msg);
}

void
heartbeat_stop(struct heartbeat *hb)
{
	if (!hb || !hb->running)
		return;
	ticker_stop(&hb->tick);
	pthread_join(hb->thread, NULL);
	hb->running = false;
	struct berr err;
	berr_clear(&err);
	if (heartbeat_pool_forget(hb->redis, hb->ns, hb->pool_id, &err) < 0)
		log_warn("cannot remove pool %s from redis: %s", hb->pool_id,
			 err.msg);
}

void
heartbeat_free(struct heartbeat *hb)
{
	if (!hb)
		return;
	for (size_t i = 0; i < hb->n_workers; i++)
		free(hb->worker_ids[i]);
	free(hb->worker_ids);
	free(hb->worker_ids_joined);
	free(hb->ns);
	ticker_fini(&hb->tick);
	free(hb);
}

const char *
heartbeat_pool_id(const struct heartbeat *hb)
{
	return hb->pool_id;
}

const char *const *
heartbeat_worker_ids(const struct heartbeat *hb, size_t *n)
{
	*n = hb->n_workers;
	return (const char *const *)hb->worker_ids;
}

/* --- every pool ----------------------------------------------------------- */

int
heartbeat_pool_ids(struct redis_pool *redis, const char *ns, char ***ids,
		   size_t *n, struct berr *err)
{
	*ids = NULL;
	*n = 0;
	char *key = key_worker_pools(ns);
	redisReply *r = redis_command(redis, err, "SMEMBERS", key, NULL);
	if (!r) {
		free(key);
		return -1;
	}
	int rc = 0;
	if (r->type == REDIS_REPLY_ARRAY) {
		*ids = xcalloc(r->elements + 1, sizeof(char *));
		for (size_t i = 0; i < r->elements; i++)
			if (redis_reply_is_text(r->element[i]))
				(*ids)[(*n)++] = xstrndup(r->element[i]->str,
							  r->element[i]->len);
		qsort(*ids, *n, sizeof(char *), cmp_str);
	} else if (r->type == REDIS_REPLY_ERROR) {
		rc = berr_set(err, "%s", r->str ? r->str : "");
	} else {
		rc = berr_set(err, "SMEMBERS %s: unexpected reply", key);
	}
	freeReplyObject(r);
	free(key);
	return rc;
}

void
heartbeat_ids_free(char **ids, size_t n)
{
	if (!ids)
		return;
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* The value of field in an HGETALL reply, NULL when absent. */
static const redisReply *
hash_field(const redisReply *r, const char *field)
{
	for (size_t i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[i]->str, field) == 0 &&
		    r->element[i + 1]->type == REDIS_REPLY_STRING)
			return r->element[i + 1];
	return NULL;
}

static char *
field_dup(const redisReply *r, const char *field)
{
	const redisReply *v = hash_field(r, field);
	return v ? xstrndup(v->str, v->len) : NULL;
}

/* The integer value of field; false when absent or not an integer. */
static bool
hash_i64(const redisReply *r, const char *field, int64_t *out)
{
	const redisReply *v = hash_field(r, field);
	*out = 0;
	if (!v || util_parse_i64(v->str, INT64_MIN, INT64_MAX, out) < 0) {
		*out = 0;
		return false;
	}
	return true;
}

int
heartbeat_pool_read(struct redis_pool *redis, const char *ns,
		    const char *pool_id, struct heartbeat_pool *p,
		    struct berr *err)
{
	memset(p, 0, sizeof(*p));
	char *key = key_worker_pool(ns, pool_id);
	redisReply *r = redis_command(redis, err, "HGETALL", key, NULL);
	free(key);
	if (!r)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(r);
		return 0;
	}
	p->has_heartbeat = hash_i64(r, "heartbeat_at", &p->heartbeat_at);
	hash_i64(r, "started_at", &p->started_at);
	hash_i64(r, "concurrency", &p->concurrency);
	p->job_names = field_dup(r, "job_names");
	p->worker_ids = field_dup(r, "worker_ids");
	p->host = field_dup(r, "host");
	hash_i64(r, "pid", &p->pid);
	freeReplyObject(r);
	return 1;
}

void
heartbeat_pool_fini(struct heartbeat_pool *p)
{
	free(p->job_names);
	free(p->worker_ids);
	free(p->host);
	memset(p, 0, sizeof(*p));
}

int
heartbeat_pool_forget(struct redis_pool *redis, const char *ns,
		      const char *pool_id, struct berr *err)
{
	char *pools = key_worker_pools(ns);
	char *pool = key_worker_pool(ns, pool_id);
	char *types = key_pool_types(ns, pool_id);
	const char *srem[] = {"SREM", pools, pool_id};
	const char *del[] = {"DEL", pool, types};
	struct redis_cmd cmds[] = {{3, srem, NULL}, {3, del, NULL}};
	int rc = redis_pipeline(redis, err, cmds, 2, NULL, 0);
	free(pools);
	free(pool);
	free(types);
	return rc;
}

/* --- worker observations -------------------------------------------------- */

int
heartbeat_observe_start(struct redis_pool *redis, const char *ns,
			const char *worker_id, const struct job_message *m,
			int64_t ttl_seconds, struct berr *err)
{
	char *key = key_worker_observation(ns, worker_id);
	char started[24], ttl[24];
	snprintf(started, sizeof(started), "%lld", (long long)util_now());
	snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_seconds);
	char *args = m->args ? gojson_encode(m->args) : xstrdup("");
	const char *hmset[] = {"HMSET", key, "job_name",
			       m->name ? m->name : "", "job_id",
			       m->id ? m->id : "", "started_at", started,
			       "args", args};
	const char *expire[] = {"EXPIRE", key, ttl};
	struct redis_cmd cmds[] = {
		{(int)ARRAY_LEN(hmset), hmset, NULL},
		{3, expire, NULL},
	};
	int rc = redis_pipeline(redis, err, cmds, 2, NULL, 0);
	free(args);
	free(key);
	return rc;
}

int
heartbeat_observe_end(struct redis_pool *redis, const char *ns,
		      const char *worker_id, struct berr *err)
{
	char *key = key_worker_observation(ns, worker_id);
	redisReply *r = redis_command(redis, err, "DEL", key, NULL);
	free(key);
	if (!r)
		return -1;
	freeReplyObject(r);
	return 0;
}

int
heartbeat_observe_read(struct redis_pool *redis, const char *ns,
		       const char *worker_id, char **job_name, char **job_id,
		       struct berr *err)
{
	*job_name = NULL;
	*job_id = NULL;
	char *key = key_worker_observation(ns, worker_id);
	redisReply *r = redis_command(redis, err, "HMGET", key, "job_name",
				      "job_id", NULL);
	free(key);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    redis_reply_is_text(r->element[0]) &&
	    redis_reply_is_text(r->element[1]) && r->element[0]->len > 0) {
		*job_name = xstrndup(r->element[0]->str, r->element[0]->len);
		*job_id = xstrndup(r->element[1]->str, r->element[1]->len);
		rc = 1;
	}
	freeReplyObject(r);
	return rc;
}

int
heartbeat_observations_read(struct redis_pool *redis, const char *ns,
			    const char *const *worker_ids, size_t n,
			    struct heartbeat_observation *out,
			    struct berr *err)
{
	memset(out, 0, n * sizeof(*out));
	if (n == 0)
		return 0;
	struct pipe b;
	pipe_init(&b);
	for (size_t i = 0; i < n; i++) {
		pipe_begin(&b);
		pipe_str(&b, "HGETALL");
		pipe_own(&b, key_worker_observation(ns, worker_ids[i]));
	}
	redisReply **rep = xcalloc(n, sizeof(*rep));
	int rc = redis_pipeline(redis, err, pipe_cmds(&b), n, rep, 0);
	pipe_fini(&b);
	if (rc < 0) {
		free(rep);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const redisReply *r = rep[i];
		struct heartbeat_observation *o = &out[i];
		if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
			continue;
		o->busy = true;
		o->job_name = field_dup(r, "job_name");
		o->job_id = field_dup(r, "job_id");
		o->args = field_dup(r, "args");
		hash_i64(r, "started_at", &o->started_at);
		o->checkin = field_dup(r, "checkin");
		o->has_checkin_at = hash_i64(r, "checkin_at", &o->checkin_at);
	}
	redis_replies_free(rep, n);
	free(rep);
	return 0;
}

void
heartbeat_observation_fini(struct heartbeat_observation *o)
{
	free(o->job_name);
	free(o->job_id);
	free(o->args);
	free(o->checkin);
	memset(o, 0, sizeof(*o));
}

int
heartbeat_pools_berth(struct redis_pool *redis, const char *ns,
		      const char *const *pool_ids, size_t n, bool *out,
		      struct berr *err)
{
	memset(out, 0, n * sizeof(*out));
	if (n == 0)
		return 0;
	struct pipe b;
	pipe_init(&b);
	for (size_t i = 0; i < n; i++) {
		pipe_begin(&b);
		pipe_str(&b, "EXISTS");
		pipe_own(&b, key_pool_types(ns, pool_ids[i]));
	}
	redisReply **rep = xcalloc(n, sizeof(*rep));
	int rc = redis_pipeline(redis, err, pipe_cmds(&b), n, rep, 0);
	pipe_fini(&b);
	if (rc == 0)
		for (size_t i = 0; i < n; i++)
			out[i] = rep[i] && rep[i]->type == REDIS_REPLY_INTEGER &&
				 rep[i]->integer > 0;
	redis_replies_free(rep, n);
	free(rep);
	return rc;
}

/* --- schema ------------------------------------------------------------- */

int
heartbeat_migrate_schema(struct redis_pool *redis, const char *ns,
			 struct berr *err)
{
	char *key = key_schema_version(ns);
	redisReply *r = redis_command(redis, err, "GET", key, NULL);
	int rc = 0;
	if (!r) {
		rc = -1;
	} else if (r->type == REDIS_REPLY_NIL) {
		freeReplyObject(r);
		r = redis_command(redis, err, "SET", key, SCHEMA_VERSION, NULL);
		if (!r)
			rc = -1;
		else
			log_info("redis schema version set to %s",
				 SCHEMA_VERSION);
	} else if (r->type == REDIS_REPLY_STRING &&
		   strcmp(r->str, SCHEMA_VERSION) != 0) {
		log_warn("redis schema version is %s, berth writes %s; "
			 "leaving it unchanged",
			 r->str, SCHEMA_VERSION);
	}
	if (r)
		freeReplyObject(r);
	free(key);
	return rc;
}

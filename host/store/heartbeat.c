/* heartbeat.c - see heartbeat.h. */
#include "store/heartbeat.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/keys.h"
#include "logs/log.h"

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
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
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
	pthread_mutex_init(&hb->lock, NULL);
	pthread_cond_init(&hb->cond, NULL);
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
	pthread_mutex_lock(&hb->lock);
	while (!hb->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += HEARTBEAT_PERIOD_MS / 1000;
		pthread_cond_timedwait(&hb->cond, &hb->lock, &ts);
		if (hb->stop)
			break;
		pthread_mutex_unlock(&hb->lock);
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
		pthread_mutex_lock(&hb->lock);
	}
	pthread_mutex_unlock(&hb->lock);
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
	pthread_mutex_lock(&hb->lock);
	hb->stop = true;
	pthread_cond_signal(&hb->cond);
	pthread_mutex_unlock(&hb->lock);
	pthread_join(hb->thread, NULL);
	hb->running = false;
	struct berr err;
	berr_clear(&err);
	char *pools = key_worker_pools(hb->ns);
	char *pool = key_worker_pool(hb->ns, hb->pool_id);
	redisReply *r = redis_command(hb->redis, &err, "SREM", pools,
				      hb->pool_id, NULL);
	if (r) {
		freeReplyObject(r);
		r = redis_command(hb->redis, &err, "DEL", pool, NULL);
	}
	if (r)
		freeReplyObject(r);
	else
		log_warn("cannot remove pool %s from redis: %s", hb->pool_id,
			 err.msg);
	free(pools);
	free(pool);
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
	pthread_mutex_destroy(&hb->lock);
	pthread_cond_destroy(&hb->cond);
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

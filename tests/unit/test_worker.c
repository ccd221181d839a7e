/* test_worker.c - the queue engine and the worker pool against a private
 * redis-server and the engine test plugins (tests/plugins/engine):
 * everything built by hand (redis pool, plugin registry, tracker, queue,
 * heartbeat, worker pool), no HTTP. Jobs are submitted as the API will:
 * tracker_save of the stats, then queue_enqueue.
 *
 * Order matters: the pool starts with no job type (idle, and the first
 * recovery pass re-enqueues a planted dead pool's message), then a reload
 * adds the types; the graceful stop comes last. */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/gojson.h"
#include "store/heartbeat.h"
#include "logs/log.h"
#include "store/message.h"
#include "plugins/plugin_host.h"
#include "store/queue.h"
#include "redis_harness.h"
#include "store/scripts.h"
#include "testlib.h"
#include "store/tracker.h"
#include "engine/worker.h"

#define NS "{berth_worker_test}"
#define WORKERS 4

static struct test_redis tr;
static struct redis_pool *rp;
static struct plugin_registry *reg;
static struct tracker *trk;
static struct queue *q;
static struct heartbeat *hb;
static struct worker_pool *wp;
static char tmp[256];
static char log_path[300];
static const char *pool_id;

/* --- status events (what the hook agent will see) ------------------------ */

struct event {
	char id[32];
	char status[16];
	bool checkin;
};

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct event events[4096];
static size_t n_events;

static void
on_event(void *data, const struct job_stats *snap, const char *check_in)
{
	(void)data;
	pthread_mutex_lock(&ev_lock);
	if (n_events < ARRAY_LEN(events)) {
		struct event *e = &events[n_events++];
		snprintf(e->id, sizeof(e->id), "%s", snap->id ? snap->id : "");
		snprintf(e->status, sizeof(e->status), "%s",
			 snap->status ? snap->status : "");
		e->checkin = check_in != NULL;
	}
	pthread_mutex_unlock(&ev_lock);
}

/* Status events of job id (status NULL: check-ins). */
static int
event_count(const char *id, const char *status)
{
	int n = 0;
	pthread_mutex_lock(&ev_lock);
	for (size_t i = 0; i < n_events; i++) {
		const struct event *e = &events[i];
		if (strcmp(e->id, id) != 0)
			continue;
		if (status ? !e->checkin && strcmp(e->status, status) == 0
			   : e->checkin)
			n++;
	}
	pthread_mutex_unlock(&ev_lock);
	return n;
}

static int
event_total(const char *id)
{
	int n = 0;
	pthread_mutex_lock(&ev_lock);
	for (size_t i = 0; i < n_events; i++)
		if (strcmp(events[i].id, id) == 0)
			n++;
	pthread_mutex_unlock(&ev_lock);
	return n;
}

/* --- helpers -------------------------------------------------------------- */

/* GET key as a number; 0 when missing. */
static long long
get_num(const char *key)
{
	long long v = test_redis_int(rp, "GET", key, NULL);
	return v == TEST_REDIS_NOINT ? 0 : v;
}

static long long
llen(const char *key)
{
	return test_redis_int(rp, "LLEN", key, NULL);
}

static char *
status_of(const char *id)
{
	char *st = NULL;
	struct berr err;
	berr_clear(&err);
	if (tracker_get_status(trk, id, &st, &err) < 0)
		return NULL;
	return st;
}

static bool
status_is(const char *id, const char *want)
{
	char *st = status_of(id);
	bool ok = st && strcmp(st, want) == 0;
	free(st);
	return ok;
}

static bool
wait_status(const char *id, const char *want, int timeout_ms)
{
	int64_t end = util_monotonic_ms() + timeout_ms;
	while (util_monotonic_ms() < end) {
		if (status_is(id, want))
			return true;
		util_sleep_ms(5);
	}
	return status_is(id, want);
}

static int64_t
revision_of(const char *id)
{
	struct job_stats st;
	struct berr err;
	berr_clear(&err);
	int64_t rev = -1;
	if (tracker_load(trk, id, &st, &err) == 0)
		rev = st.revision;
	job_stats_fini(&st);
	return rev;
}

static long long
lock_of(const char *type)
{
	char *k = xasprintf("%s:jobs:%s:lock", NS, type);
	long long v = get_num(k);
	free(k);
	return v;
}

static long long
inprogress_len(const char *type, const char *pool)
{
	char *k = xasprintf("%s:jobs:%s:%s:inprogress", NS, type, pool);
	long long v = llen(k);
	free(k);
	return v;
}

static long long
queue_len(const char *type)
{
	char *k = xasprintf("%s:jobs:%s", NS, type);
	long long v = llen(k);
	free(k);
	return v;
}

/* Waits until the type's queue is empty, its lock is 0 and the pool is
 * idle. */
static bool
wait_settled(const char *type, int timeout_ms)
{
	int64_t end = util_monotonic_ms() + timeout_ms;
	while (util_monotonic_ms() < end) {
		if (queue_len(type) == 0 && lock_of(type) == 0 &&
		    worker_pool_busy(wp) == 0 &&
		    inprogress_len(type, pool_id) == 0)
			return true;
		util_sleep_ms(5);
	}
	return false;
}

/* Saves the stats and enqueues the message, as POST /jobs will. status is
 * the initial status (Pending or Scheduled, or Running to fake a crashed
 * run). Returns the job id (static buffer rotation: copy it). */
static char *
submit_full(const char *type, const char *params_json, int64_t run_at,
	    const char *status, bool enqueue)
{
	char id[25];
	util_hex24(id);
	struct job_stats st;
	memset(&st, 0, sizeof(st));
	st.id = xstrdup(id);
	st.name = xstrdup(type);
	st.status = xstrdup(status);
	st.kind = xstrdup(run_at > 0 ? JOB_KIND_SCHEDULED : JOB_KIND_GENERIC);
	st.enqueue_time = util_now();
	st.run_at = run_at;
	/* status events are for jobs with a hook (tracker.h); nothing
	 * listens there, the test's event fn records them */
	st.web_hook_url = xstrdup("http://127.0.0.1:9/hook");
	st.parameters = params_json ? cJSON_Parse(params_json) : NULL;
	struct berr err;
	berr_clear(&err);
	CHECK_MSG(tracker_save(trk, &st, &err) == 0, "save: %s", err.msg);
	if (enqueue) {
		struct job_message m;
		memset(&m, 0, sizeof(m));
		m.name = xstrdup(type);
		m.id = xstrdup(id);
		m.t = util_now();
		m.args = st.parameters ? cJSON_Duplicate(st.parameters, 1)
				       : NULL;
		CHECK_MSG(queue_enqueue(q, &m, run_at, &err) == QUEUE_ENQUEUED,
			  "enqueue: %s", err.msg);
		message_fini(&m);
	}
	job_stats_fini(&st);
	return xstrdup(id);
}

static char *
submit(const char *type, const char *params_json)
{
	return submit_full(type, params_json, 0, JOB_STATUS_PENDING, true);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

static int
copy_file(const char *from, const char *to)
{
	char *data = NULL;
	size_t len = 0;
	struct berr err;
	berr_clear(&err);
	if (util_read_file(from, 64 << 20, &data, &len, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	int rc = fd >= 0 && write(fd, data, len) == (ssize_t)len ? 0 : -1;
	if (fd >= 0)
		close(fd);
	free(data);
	return rc;
}

static long
file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* Lines of the service log containing needle; without_job excludes the
 * job-log copies ("[job <id>]"). */
static int
log_count(const char *needle, bool without_job)
{
	char *text = NULL;
	size_t len = 0;
	struct berr err;
	berr_clear(&err);
	if (util_read_file(log_path, 64 << 20, &text, &len, &err) < 0)
		return -1;
	int n = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(line, needle) &&
		    !(without_job && strstr(line, "[job ")))
			n++;
	free(text);
	return n;
}

/* --- tests without Redis -------------------------------------------------- */

static void
test_backoff(void)
{
	static const struct {
		int64_t fails, lo, hi;
	} table[] = {{1, 16, 74}, {2, 31, 118}, {3, 96, 212}, {4, 271, 416}};
	for (size_t i = 0; i < ARRAY_LEN(table); i++) {
		int64_t lo = INT64_MAX, hi = 0;
		bool in = true;
		for (int k = 0; k < 4000; k++) {
			int64_t b = queue_backoff_seconds(table[i].fails);
			in = in && b >= table[i].lo && b <= table[i].hi;
			lo = b < lo ? b : lo;
			hi = b > hi ? b : hi;
		}
		CHECK_MSG(in, "fails %lld: %lld..%lld outside %lld..%lld",
			  (long long)table[i].fails, (long long)lo,
			  (long long)hi, (long long)table[i].lo,
			  (long long)table[i].hi);
		/* both ends are reached in 4000 draws of 30 values */
		CHECK(lo == table[i].lo);
		CHECK(hi == table[i].hi);
	}
	/* step size is fails + 1 */
	CHECK((queue_backoff_seconds(2) - 31) % 3 == 0);
}

/* --- pool tests ----------------------------------------------------------- */

static char dead_pool[25], orphan_pool[25];
static char *dead_job, *orphan_job;
static int64_t dead_rev, orphan_rev;

/* A message "in progress" in a pool that is gone: lock, lock_info and the
 * in-progress list as a Go or Berth pool killed with -9 leaves them. */
static char *
plant_in_progress(const char *pool)
{
	char *id = submit_full("NOOP", "{\"planted\":true}", 0,
			       JOB_STATUS_RUNNING, false);
	struct job_message m;
	memset(&m, 0, sizeof(m));
	m.name = xstrdup("NOOP");
	m.id = xstrdup(id);
	m.t = util_now() - 60;
	m.args = cJSON_Parse("{\"planted\":true}");
	char *raw = message_encode(&m);
	message_fini(&m);
	char *inprog = xasprintf("%s:jobs:NOOP:%s:inprogress", NS, pool);
	char *lock = xasprintf("%s:jobs:NOOP:lock", NS);
	char *info = xasprintf("%s:jobs:NOOP:lock_info", NS);
	test_redis_do(rp, "LPUSH", inprog, raw, NULL);
	test_redis_do(rp, "INCR", lock, NULL);
	test_redis_do(rp, "HINCRBY", info, pool, "1", NULL);
	free(inprog);
	free(lock);
	free(info);
	free(raw);
	return id;
}

static void
plant_dead_pools(void)
{
	util_hex24(dead_pool);
	util_hex24(orphan_pool);
	dead_job = plant_in_progress(dead_pool);
	orphan_job = plant_in_progress(orphan_pool);
	dead_rev = revision_of(dead_job);
	orphan_rev = revision_of(orphan_job);
	/* the dead pool is registered with a stale heartbeat; the orphan
	 * pool is not registered at all (spec 9.2) */
	char *pools = xasprintf("%s:worker_pools", NS);
	char *hash = xasprintf("%s:worker_pools:%s", NS, dead_pool);
	char beat[24];
	snprintf(beat, sizeof(beat), "%lld", (long long)util_now() - 100);
	test_redis_do(rp, "SADD", pools, dead_pool, NULL);
	test_redis_do(rp, "HSET", hash, "heartbeat_at", beat, "job_names",
		      "NOOP", NULL);
	free(pools);
	free(hash);
}

static bool
strv_has(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* The store's reads over what plant_dead_pools left (before any pool of
 * ours runs): lock holders, pool heartbeats, queue figures. */
static void
test_store_reads(void)
{
	struct berr err;
	berr_clear(&err);
	char **v = NULL;
	size_t n = 0;
	/* lock_info: both planted pools hold one; a zero count is no hold */
	char *info = xasprintf("%s:jobs:NOOP:lock_info", NS);
	test_redis_do(rp, "HSET", info, "idle-pool", "0", NULL);
	CHECK_MSG(queue_lock_holders(q, "NOOP", &v, &n, &err) == 0, "%s",
		  err.msg);
	CHECK(n == 2 && strv_has(v, n, dead_pool) &&
	      strv_has(v, n, orphan_pool));
	queue_strv_free(v, n);
	test_redis_do(rp, "HDEL", info, "idle-pool", NULL);
	free(info);
	CHECK(queue_lock_holders(q, "NOSUCH", &v, &n, &err) == 0 && n == 0);
	queue_strv_free(v, n);

	/* pools: the dead one is registered with a stale heartbeat */
	CHECK_MSG(heartbeat_pool_ids(rp, NS, &v, &n, &err) == 0, "%s",
		  err.msg);
	CHECK(n == 1 && strv_has(v, n, dead_pool));
	heartbeat_ids_free(v, n);
	struct heartbeat_pool hp;
	CHECK(heartbeat_pool_read(rp, NS, dead_pool, &hp, &err) == 1);
	CHECK(hp.has_heartbeat && hp.heartbeat_at > 0 &&
	      hp.heartbeat_at <= util_now() - 100);
	CHECK(hp.job_names && strcmp(hp.job_names, "NOOP") == 0);
	CHECK(hp.started_at == 0 && hp.concurrency == 0);
	heartbeat_pool_fini(&hp);
	CHECK(heartbeat_pool_read(rp, NS, "no-such-pool", &hp, &err) == 1);
	CHECK(!hp.has_heartbeat && !hp.job_names);
	heartbeat_pool_fini(&hp);
	char *str = xasprintf("%s:worker_pools:not-a-hash", NS);
	test_redis_do(rp, "SET", str, "x", NULL);
	CHECK(heartbeat_pool_read(rp, NS, "not-a-hash", &hp, &err) == 0);
	heartbeat_pool_fini(&hp);
	test_redis_do(rp, "DEL", str, NULL);
	free(str);

	/* queue figures: known types, then the extra ones, no duplicates */
	char *known = xasprintf("%s:known_jobs", NS);
	char *fq = xasprintf("%s:jobs:FIGS", NS);
	test_redis_do(rp, "SADD", known, "FIGS", NULL);
	char old[96], young[96];
	snprintf(old, sizeof(old),
		 "{\"name\":\"FIGS\",\"id\":\"a\",\"t\":%lld}",
		 (long long)util_now() - 30);
	snprintf(young, sizeof(young),
		 "{\"name\":\"FIGS\",\"id\":\"b\",\"t\":%lld}",
		 (long long)util_now());
	test_redis_do(rp, "LPUSH", fq, old, NULL);
	test_redis_do(rp, "LPUSH", fq, young, NULL);
	const char *extra[] = {"FIGS", "EXTRA"};
	struct queue_figure *f = NULL;
	CHECK_MSG(queue_figures(q, extra, 2, &f, &n, &err) == 0, "%s",
		  err.msg);
	CHECK(n == 2);
	for (size_t i = 0; f && i < n; i++) {
		if (strcmp(f[i].type, "FIGS") == 0) {
			CHECK(i == 0 && f[i].length == 2);
			CHECK_MSG(f[i].latency_seconds >= 29 &&
					  f[i].latency_seconds < 40,
				  "latency %f", f[i].latency_seconds);
		} else {
			CHECK_STR(f[i].type, "EXTRA");
			CHECK(f[i].length == 0 && f[i].latency_seconds == 0);
		}
	}
	queue_figures_free(f, n);
	test_redis_do(rp, "DEL", fq, NULL);
	test_redis_do(rp, "SREM", known, "FIGS", NULL);
	free(fq);
	free(known);
}

static void
test_idle_without_types(void)
{
	util_sleep_ms(1600);
	CHECK(worker_pool_busy(wp) == 0);
	/* the first recovery pass (after ~1 s) handled the dead pool with
	 * its own job_names although we run nothing yet */
	char *queue = xasprintf("%s:jobs:NOOP", NS);
	CHECK_MSG(llen(queue) == 1, "NOOP queue has %lld", llen(queue));
	CHECK(inprogress_len("NOOP", dead_pool) == 0);
	char *pools = xasprintf("%s:worker_pools", NS);
	char *hash = xasprintf("%s:worker_pools:%s", NS, dead_pool);
	char *info = xasprintf("%s:jobs:NOOP:lock_info", NS);
	CHECK(test_redis_int(rp, "SISMEMBER", pools, dead_pool, NULL) == 0);
	CHECK(test_redis_int(rp, "SISMEMBER", pools, pool_id, NULL) == 1);
	CHECK(test_redis_int(rp, "EXISTS", hash, NULL) == 0);
	CHECK(test_redis_int(rp, "HEXISTS", info, dead_pool, NULL) == 0);
	/* the orphan needs a loaded type to be found */
	CHECK(inprogress_len("NOOP", orphan_pool) == 1);
	CHECK(lock_of("NOOP") == 1);
	/* nothing was requeued to dead with no types loaded */
	char *dead = xasprintf("%s:dead", NS);
	CHECK(test_redis_int(rp, "ZCARD", dead, NULL) == 0);
	free(dead);
	free(queue);
	free(pools);
	free(hash);
	free(info);
}

static void
test_recovery_runs(void)
{
	CHECK_MSG(wait_status(dead_job, JOB_STATUS_SUCCESS, 5000),
		  "re-enqueued job of the dead pool did not succeed");
	CHECK_MSG(wait_status(orphan_job, JOB_STATUS_SUCCESS, 5000),
		  "orphaned job did not succeed");
	/* the re-run went through Running -> reset: new revision */
	CHECK(revision_of(dead_job) > dead_rev);
	CHECK(revision_of(orphan_job) > orphan_rev);
	CHECK(wait_settled("NOOP", 3000));
	char *info = xasprintf("%s:jobs:NOOP:lock_info", NS);
	CHECK(test_redis_int(rp, "HEXISTS", info, orphan_pool, NULL) == 0);
	CHECK(test_redis_int(rp, "HEXISTS", info, dead_pool, NULL) == 0);
	free(info);
	CHECK(inprogress_len("NOOP", orphan_pool) == 0);
	CHECK(lock_of("NOOP") == 0);
}

/* The observation hash of the worker running job id, or NULL. */
static redisReply *
observation_of(const char *id)
{
	size_t n = 0;
	const char *const *ids = heartbeat_worker_ids(hb, &n);
	for (size_t i = 0; i < n; i++) {
		char *key = xasprintf("%s:worker:%s", NS, ids[i]);
		redisReply *r = test_redis_cmd(rp, "HGETALL", key, NULL);
		free(key);
		if (!r)
			continue;
		for (size_t k = 0; k + 1 < r->elements; k += 2)
			if (strcmp(r->element[k]->str, "job_id") == 0 &&
			    strcmp(r->element[k + 1]->str, id) == 0)
				return r;
		freeReplyObject(r);
	}
	return NULL;
}

static const char *
hash_field(const redisReply *r, const char *f)
{
	for (size_t k = 0; r && k + 1 < r->elements; k += 2)
		if (strcmp(r->element[k]->str, f) == 0)
			return r->element[k + 1]->str;
	return NULL;
}

static void
test_generic(void)
{
	char *demo = submit("DEMO", "{\"image\":\"demo/x\"}");
	char *id = submit("SLEEPER", "{\"ms\":700,\"checkin\":\"half <way>\"}");
	CHECK(wait_status(id, JOB_STATUS_RUNNING, 2000));
	redisReply *obs = NULL;
	for (int i = 0; i < 100 && !obs; i++) {
		obs = observation_of(id);
		if (!obs)
			util_sleep_ms(10);
	}
	CHECK_MSG(obs != NULL, "no observation hash for %s", id);
	if (obs) {
		CHECK_STR(hash_field(obs, "job_name"), "SLEEPER");
		/* Go JSON: sorted keys, <> escaped */
		CHECK_STR(hash_field(obs, "args"),
			  "{\"checkin\":\"half \\u003cway\\u003e\","
			  "\"ms\":700}");
		const char *at = hash_field(obs, "started_at");
		CHECK(at && llabs(strtoll(at, NULL, 10) - util_now()) <= 2);
		freeReplyObject(obs);
	}
	CHECK(lock_of("SLEEPER") == 1);
	CHECK(inprogress_len("SLEEPER", pool_id) == 1);
	CHECK(wait_status(id, JOB_STATUS_SUCCESS, 3000));
	CHECK(wait_settled("SLEEPER", 2000));
	obs = observation_of(id);
	CHECK_MSG(obs == NULL, "observation hash left behind");
	if (obs)
		freeReplyObject(obs);
	struct job_stats st;
	struct berr err;
	berr_clear(&err);
	CHECK(tracker_load(trk, id, &st, &err) == 0);
	CHECK(st.check_in_at > 0);
	job_stats_fini(&st);
	CHECK(event_count(id, JOB_STATUS_RUNNING) == 1);
	CHECK(event_count(id, JOB_STATUS_SUCCESS) == 1);
	CHECK(event_count(id, NULL) == 1);
	CHECK(event_total(id) == 3);
	/* the bundled DEMO (check-ins, 1 s wait) on the same pool */
	CHECK_MSG(wait_status(demo, JOB_STATUS_SUCCESS, 5000),
		  "DEMO did not succeed");
	CHECK(wait_settled("DEMO", 2000));
	free(id);
	free(demo);
}

/* An idle pool starts a job within milliseconds thanks to the wake-up
 * list. Without it a worker would notice within its 1 s idle wait: with 4
 * workers a single sample under 100 ms happens by chance about one time in
 * three, three in a row about one time in 25. */
static void
test_latency(void)
{
	char *wake = xasprintf("%s:berth:wakeup", NS);
	for (int round = 0; round < 3; round++) {
		/* no stale wake-ups; every worker in its 1 s idle wait */
		test_redis_do(rp, "DEL", wake, NULL);
		util_sleep_ms(1200);
		int64_t t0 = util_monotonic_ms();
		char *id = submit("NOOP", NULL);
		while (!status_is(id, JOB_STATUS_SUCCESS) &&
		       util_monotonic_ms() - t0 < 3000)
			util_sleep_ms(1);
		int64_t took = util_monotonic_ms() - t0;
		fprintf(stderr, "idle pool: enqueue to Success in %lld ms\n",
			(long long)took);
		CHECK_MSG(took < 100, "took %lld ms", (long long)took);
		CHECK(wait_settled("NOOP", 2000));
		free(id);
	}
	free(wake);
}

static void
test_scheduled(void)
{
	char *id = submit_full("NOOP", "{\"when\":\"later\"}", util_now() + 1,
			       JOB_STATUS_SCHEDULED, true);
	char *sched = xasprintf("%s:scheduled", NS);
	CHECK(test_redis_int(rp, "ZCARD", sched, NULL) == 1);
	CHECK(status_is(id, JOB_STATUS_SCHEDULED));
	CHECK_MSG(wait_status(id, JOB_STATUS_SUCCESS, 4000),
		  "scheduled job did not run");
	CHECK(test_redis_int(rp, "ZCARD", sched, NULL) == 0);
	CHECK(wait_settled("NOOP", 2000));

	/* a due message of a type nobody here runs goes to dead (spec 5.6) */
	char now[24];
	snprintf(now, sizeof(now), "%lld", (long long)util_now());
	test_redis_do(rp, "ZADD", sched, now,
		      "{\"name\":\"GHOST\",\"id\":\"g1\",\"t\":1,"
		      "\"args\":null}",
		      NULL);
	char *dead = xasprintf("%s:dead", NS);
	int64_t end = util_monotonic_ms() + 3000;
	while (test_redis_int(rp, "ZCARD", dead, NULL) == 0 &&
	       util_monotonic_ms() < end)
		util_sleep_ms(20);
	redisReply *r = test_redis_cmd(rp, "ZRANGE", dead, "0", "-1", NULL);
	CHECK(r && r->elements == 1);
	if (r && r->elements == 1)
		CHECK_CONTAINS(r->element[0]->str,
			       "unknown job when requeueing");
	if (r)
		freeReplyObject(r);
	CHECK(test_redis_int(rp, "ZCARD", sched, NULL) == 0);
	test_redis_do(rp, "DEL", dead, NULL);
	free(dead);
	free(sched);
	free(id);
}

/* Quirk Q16 and the Stopped no-op of spec 6.2 step 2. */
static void
test_already_final(void)
{
	char *done = submit_full("NOOP", NULL, 0, JOB_STATUS_SUCCESS, true);
	char *stopped = submit_full("NOOP", NULL, 0, JOB_STATUS_STOPPED, true);
	CHECK(wait_settled("NOOP", 3000));
	CHECK(status_is(done, JOB_STATUS_SUCCESS));
	CHECK(event_count(done, JOB_STATUS_SUCCESS) == 1);
	CHECK(event_count(done, JOB_STATUS_RUNNING) == 0);
	CHECK(status_is(stopped, JOB_STATUS_STOPPED));
	CHECK(event_total(stopped) == 0);
	free(done);
	free(stopped);
}

static void
test_unparsable(void)
{
	char *queue = xasprintf("%s:jobs:NOOP", NS);
	char *ready = xasprintf("%s:berth:ready", NS);
	/* as a Berth enqueue does (a bare LPUSH, as Go's, waits for the
	 * pool's next scan, up to 5 s) */
	test_redis_do(rp, "LPUSH", queue, "not json{", NULL);
	test_redis_do(rp, "SADD", ready, "NOOP", NULL);
	free(ready);
	queue_wake(q, 1);
	CHECK(wait_settled("NOOP", 3000));
	CHECK(log_count("dropping an unparsable message", false) == 1);
	char *retry = xasprintf("%s:retry", NS);
	CHECK(test_redis_int(rp, "ZCARD", retry, NULL) == 0);
	free(retry);
	free(queue);
}

static struct job_message *
unique_message(const char *id, const char *args)
{
	struct job_message *m = xcalloc(1, sizeof(*m));
	m->name = xstrdup("NOOP");
	m->id = xstrdup(id);
	m->t = util_now();
	m->args = cJSON_Parse(args);
	m->unique = true;
	return m;
}

static void
free_message(struct job_message *m)
{
	message_fini(m);
	free(m);
}

static void
test_unique(void)
{
	char *paused = xasprintf("%s:jobs:NOOP:paused", NS);
	test_redis_do(rp, "SET", paused, "1", NULL);
	const char *args = "{\"b\":1,\"a\":\"<x>\"}";
	char *id = submit_full("NOOP", args, 0, JOB_STATUS_PENDING, false);
	struct job_message *m = unique_message(id, args);
	struct berr err;
	berr_clear(&err);
	CHECK(queue_enqueue(q, m, 0, &err) == QUEUE_ENQUEUED);
	char *ukey = queue_unique_key(NS, "NOOP", m->args);
	CHECK_STR(ukey,
		  NS ":unique:NOOP:{\"a\":\"\\u003cx\\u003e\",\"b\":1}\n");
	CHECK(test_redis_int(rp, "EXISTS", ukey, NULL) == 1);
	struct job_message *dup = unique_message("000000000000000000000000",
						 args);
	CHECK(queue_enqueue(q, dup, 0, &err) == QUEUE_DUPLICATE);
	CHECK(queue_len("NOOP") == 1);
	test_redis_do(rp, "DEL", paused, NULL);
	CHECK(wait_status(id, JOB_STATUS_SUCCESS, 3000));
	CHECK(wait_settled("NOOP", 2000));
	/* dequeued: uniqueness covers queued jobs only */
	CHECK(test_redis_int(rp, "EXISTS", ukey, NULL) == 0);

	/* a scheduled unique message, unscheduled: key gone too */
	int64_t at = util_now() + 3600;
	CHECK(queue_enqueue(q, dup, at, &err) == QUEUE_ENQUEUED);
	CHECK(test_redis_int(rp, "EXISTS", ukey, NULL) == 1);
	char *sched = xasprintf("%s:scheduled", NS);
	CHECK(test_redis_int(rp, "ZCARD", sched, NULL) == 1);
	CHECK(queue_unschedule(q, at, "nope", &err) == 0);
	CHECK(queue_unschedule(q, at, dup->id, &err) == 1);
	CHECK(test_redis_int(rp, "ZCARD", sched, NULL) == 0);
	CHECK(test_redis_int(rp, "EXISTS", ukey, NULL) == 0);
	free(sched);
	free(ukey);
	free_message(m);
	free_message(dup);
	free(paused);
	free(id);
}

/* Makes every member of NS:retry due now. Returns how many there were. */
static int
retry_now(redisReply **first)
{
	char *key = xasprintf("%s:retry", NS);
	redisReply *r = test_redis_cmd(rp, "ZRANGE", key, "0", "-1", NULL);
	int n = 0;
	for (size_t i = 0; r && i < r->elements; i++, n++)
		test_redis_do(rp, "ZADD", key, "XX", "0", r->element[i]->str,
			      NULL);
	if (first && r && r->elements && !*first)
		*first = r;
	else if (r)
		freeReplyObject(r);
	free(key);
	return n;
}

static void
test_flaky(void)
{
	char *counter = xasprintf("%s/flaky.cnt", tmp);
	char *params = xasprintf("{\"fail_times\":2,\"counter_file\":\"%s\"}",
				 counter);
	char *id = submit("FLAKY", params);
	int64_t rev0 = revision_of(id);
	redisReply *first = NULL;
	int64_t end = util_monotonic_ms() + 15000;
	while (!status_is(id, JOB_STATUS_SUCCESS) &&
	       util_monotonic_ms() < end) {
		retry_now(&first);
		util_sleep_ms(20);
	}
	CHECK_MSG(status_is(id, JOB_STATUS_SUCCESS), "FLAKY did not succeed");
	CHECK_MSG(file_size(counter) == 3, "%ld attempts", file_size(counter));
	CHECK(revision_of(id) > rev0);
	/* the first retry message: fails 1, the run's error, failed_at */
	CHECK(first != NULL);
	if (first) {
		struct job_message m;
		struct berr err;
		berr_clear(&err);
		CHECK(message_parse(first->element[0]->str,
				    first->element[0]->len, &m, &err) == 0);
		CHECK(m.fails == 1);
		CHECK_STR(m.err, "attempt 1 fails on purpose");
		CHECK(m.failed_at > 0);
		CHECK_STR(m.id, id);
		message_fini(&m);
		freeReplyObject(first);
	}
	CHECK(wait_settled("FLAKY", 2000));
	char *retry = xasprintf("%s:retry", NS);
	CHECK(test_redis_int(rp, "ZCARD", retry, NULL) == 0);
	free(retry);
	free(counter);
	free(params);
	free(id);
}

static void
test_noretry(void)
{
	char *counter = xasprintf("%s/noretry.cnt", tmp);
	char *params = xasprintf("{\"counter_file\":\"%s\"}", counter);
	char *id = submit("NORETRY", params);
	CHECK(wait_status(id, JOB_STATUS_ERROR, 3000));
	CHECK(wait_settled("NORETRY", 2000));
	retry_now(NULL);
	util_sleep_ms(1300); /* a requeuer tick */
	char *retry = xasprintf("%s:retry", NS);
	CHECK(test_redis_int(rp, "ZCARD", retry, NULL) == 0);
	CHECK_MSG(file_size(counter) == 1, "%ld attempts", file_size(counter));
	CHECK(status_is(id, JOB_STATUS_ERROR));
	free(retry);
	free(counter);
	free(params);
	free(id);
}

static void
test_paused(void)
{
	char *paused = xasprintf("%s:jobs:NOOP:paused", NS);
	char *queue = xasprintf("%s:jobs:NOOP", NS);
	test_redis_do(rp, "SET", paused, "1", NULL);
	char *id = submit("NOOP", NULL);
	util_sleep_ms(1200);
	CHECK(status_is(id, JOB_STATUS_PENDING));
	CHECK(llen(queue) == 1);
	test_redis_do(rp, "DEL", paused, NULL);
	CHECK_MSG(wait_status(id, JOB_STATUS_SUCCESS, 2500),
		  "job did not run after resume");
	CHECK(llen(queue) == 0);
	CHECK(wait_settled("NOOP", 2000));
	free(paused);
	free(queue);
	free(id);
}

static void
test_max_concurrency(void)
{
	char *maxc = xasprintf("%s:jobs:SLEEPER:max_concurrency", NS);
	test_redis_do(rp, "SET", maxc, "1", NULL);
	char *ids[3];
	for (int i = 0; i < 3; i++)
		ids[i] = submit("SLEEPER", "{\"ms\":300}");
	long long max_lock = 0;
	size_t max_busy = 0;
	int64_t t0 = util_monotonic_ms();
	int64_t end = t0 + 8000;
	for (;;) {
		long long l = lock_of("SLEEPER");
		size_t b = worker_pool_busy(wp);
		max_lock = l > max_lock ? l : max_lock;
		max_busy = b > max_busy ? b : max_busy;
		bool all = true;
		for (int i = 0; i < 3; i++)
			all = all && status_is(ids[i], JOB_STATUS_SUCCESS);
		if (all || util_monotonic_ms() > end)
			break;
		util_sleep_ms(3);
	}
	int64_t took = util_monotonic_ms() - t0;
	for (int i = 0; i < 3; i++) {
		CHECK(status_is(ids[i], JOB_STATUS_SUCCESS));
		free(ids[i]);
	}
	CHECK_MSG(max_lock == 1, "lock reached %lld", max_lock);
	CHECK_MSG(max_busy == 1, "%zu jobs ran at once", max_busy);
	CHECK_MSG(took >= 850, "3 x 300 ms done in %lld ms", (long long)took);
	CHECK(wait_settled("SLEEPER", 2000));
	test_redis_do(rp, "SET", maxc, "0", NULL);
	free(maxc);
}

/* Sets a running job Stopped, as POST /jobs/<id> {"action":"stop"} will. */
static void
stop_job(const char *id)
{
	struct job_stats st;
	struct berr err;
	berr_clear(&err);
	CHECK(tracker_load(trk, id, &st, &err) == 0);
	CHECK(tracker_set_status(trk, &st, JOB_STATUS_STOPPED, NULL, &err) ==
	      TRACKER_OK);
	job_stats_fini(&st);
}

static void
test_stop(void)
{
	char *id = submit("SLEEPER", "{\"ms\":10000}");
	CHECK(wait_status(id, JOB_STATUS_RUNNING, 2000));
	util_sleep_ms(100);
	int64_t t0 = util_monotonic_ms();
	stop_job(id);
	CHECK(wait_settled("SLEEPER", 2000));
	int64_t took = util_monotonic_ms() - t0;
	CHECK_MSG(took < 1000, "stop took %lld ms", (long long)took);
	CHECK(status_is(id, JOB_STATUS_STOPPED));
	char *retry = xasprintf("%s:retry", NS);
	CHECK(test_redis_int(rp, "ZCARD", retry, NULL) == 0);
	free(retry);
	free(id);
}

static void
test_stop_grace(void)
{
	char *id = submit("IGNORE_STOP", "{\"ms\":3000}");
	CHECK(wait_status(id, JOB_STATUS_RUNNING, 2000));
	stop_job(id);
	/* monitor tick (<= 1 s) + stop_grace_seconds (1 s) + a tick */
	util_sleep_ms(2600);
	CHECK(worker_pool_busy(wp) == 1);
	char *needle = xasprintf("job %s (IGNORE_STOP) ignores stop for", id);
	CHECK_MSG(log_count(needle, true) == 1, "%d service-log warnings",
		  log_count(needle, true));
	CHECK_MSG(log_count(needle, false) == 2, "%d warnings in all",
		  log_count(needle, false));
	CHECK(wait_settled("IGNORE_STOP", 3000));
	/* the late success is refused: Stopped stays */
	CHECK(status_is(id, JOB_STATUS_STOPPED));
	CHECK(log_count(needle, true) == 1);
	free(needle);
	free(id);
}

static void
test_redis_down(void)
{
	CHECK(test_redis_kill9(&tr) == 0);
	util_sleep_ms(1500); /* idle workers meet a dead Redis */
	CHECK(worker_pool_busy(wp) == 0);
	CHECK(test_redis_restart(&tr) == 0);
	/* this thread's connection died with the server: the first command
	 * fails and drops it, the next one dials again */
	struct berr err;
	berr_clear(&err);
	for (int i = 0; i < 3 && redis_ping(rp, &err) < 0; i++)
		;
	/* the restarted server is empty: the scripts are loaded again on
	 * NOSCRIPT */
	char *id = submit("NOOP", "{\"after\":\"restart\"}");
	CHECK_MSG(wait_status(id, JOB_STATUS_SUCCESS, 5000),
		  "no job ran after the Redis restart");
	CHECK(wait_settled("NOOP", 2000));
	CHECK(log_count("cannot fetch jobs", false) == 1);
	CHECK(log_count("fetching jobs again", false) == 1);
	free(id);
}

/* --- faults: crash accounting, mixed namespaces, stale shares ----------- */

/* A message of type in pool's in-progress list (lock and share counted);
 * returns the raw bytes (new string). */
static char *
plant_claim(const char *pool, const char *type, const char *id,
	    int64_t fails)
{
	struct job_message m;
	memset(&m, 0, sizeof(m));
	m.name = xstrdup(type);
	m.id = xstrdup(id);
	m.t = util_now() - 60;
	m.fails = fails;
	char *raw = message_encode(&m);
	message_fini(&m);
	char *inprog = xasprintf("%s:jobs:%s:%s:inprogress", NS, type, pool);
	char *lock = xasprintf("%s:jobs:%s:lock", NS, type);
	char *info = xasprintf("%s:jobs:%s:lock_info", NS, type);
	test_redis_do(rp, "LPUSH", inprog, raw, NULL);
	test_redis_do(rp, "INCR", lock, NULL);
	test_redis_do(rp, "HINCRBY", info, pool, "1", NULL);
	free(inprog);
	free(lock);
	free(info);
	return raw;
}

/* The member of zset whose message id is id, parsed into *m; false when
 * none. */
static bool
zset_message(const char *zset, const char *id, struct job_message *m)
{
	memset(m, 0, sizeof(*m));
	redisReply *r = test_redis_cmd(rp, "ZRANGE", zset, "0", "-1", NULL);
	bool found = false;
	for (size_t i = 0; r && i < r->elements && !found; i++) {
		struct berr err;
		berr_clear(&err);
		memset(m, 0, sizeof(*m));
		if (message_parse(r->element[i]->str, r->element[i]->len, m,
				  &err) < 0)
			continue;
		if (m->id && strcmp(m->id, id) == 0)
			found = true;
		else
			message_fini(m);
	}
	if (!found)
		memset(m, 0, sizeof(*m));
	if (r)
		freeReplyObject(r);
	return found;
}

/* A Berth pool that died (segfault in an in-process plugin, kill -9) with
 * two jobs running: their observations (spec 5.9) are still there. Each
 * counts as a failed attempt: retry with back-off, or dead once max_fails
 * is reached; a claimed message that was not running is re-enqueued as
 * before. */
static void
test_crash_accounting(void)
{
	char pool[25];
	util_hex24(pool);
	char *retry_job = submit_full("NOOP", NULL, 0, JOB_STATUS_RUNNING,
				      false);
	char *dead_job2 = submit_full("NOOP", NULL, 0, JOB_STATUS_RUNNING,
				      false);
	char *plain_job = submit_full("NOOP", NULL, 0, JOB_STATUS_RUNNING,
				      false);
	char *r1 = plant_claim(pool, "NOOP", retry_job, 0);
	char *r2 = plant_claim(pool, "NOOP", dead_job2, 3); /* 4th attempt */
	char *r3 = plant_claim(pool, "NOOP", plain_job, 0);
	char *o1 = xasprintf("%s:worker:%s-w1", NS, pool);
	char *o2 = xasprintf("%s:worker:%s-w2", NS, pool);
	test_redis_do(rp, "HSET", o1, "job_name", "NOOP", "job_id", retry_job, NULL);
	test_redis_do(rp, "HSET", o2, "job_name", "NOOP", "job_id", dead_job2, NULL);
	char *pools = xasprintf("%s:worker_pools", NS);
	char *hash = xasprintf("%s:worker_pools:%s", NS, pool);
	char *wids = xasprintf("%s-w1,%s-w2,%s-w3", pool, pool, pool);
	char beat[24];
	snprintf(beat, sizeof(beat), "%lld", (long long)util_now() - 100);
	test_redis_do(rp, "SADD", pools, pool, NULL);
	test_redis_do(rp, "HSET", hash, "heartbeat_at", beat, "job_names", "NOOP", NULL);
	test_redis_do(rp, "HSET", hash, "worker_ids", wids, "pid", "4242", NULL);
	long long lock0 = lock_of("NOOP");
	worker_pool_recover_now(wp);
	CHECK_MSG(wait_status(plain_job, JOB_STATUS_SUCCESS, 5000),
		  "the claimed job that was not running did not run");
	CHECK(wait_status(retry_job, JOB_STATUS_ERROR, 2000));
	CHECK(wait_status(dead_job2, JOB_STATUS_ERROR, 2000));
	CHECK(inprogress_len("NOOP", pool) == 0);
	CHECK(wait_settled("NOOP", 3000));
	CHECK_MSG(lock_of("NOOP") == lock0 - 3 || lock_of("NOOP") == 0,
		  "lock %lld", lock_of("NOOP"));
	char *retry = xasprintf("%s:retry", NS);
	char *dead = xasprintf("%s:dead", NS);
	struct job_message m;
	CHECK_MSG(zset_message(retry, retry_job, &m), "no retry of %s",
		  retry_job);
	if (m.id) {
		CHECK(m.fails == 1);
		CHECK_STR(m.err, "the daemon died while running this job");
		CHECK(m.failed_at > 0);
		message_fini(&m);
	}
	memset(&m, 0, sizeof(m));
	CHECK_MSG(zset_message(dead, dead_job2, &m), "%s not dead",
		  dead_job2);
	if (m.id) {
		CHECK(m.fails == 4);
		CHECK_STR(m.err, "the daemon died while running this job");
		message_fini(&m);
	}
	CHECK(!zset_message(dead, retry_job, &m));
	CHECK(!zset_message(retry, plain_job, &m));
	CHECK(test_redis_int(rp, "EXISTS", o1, NULL) == 0);
	CHECK(test_redis_int(rp, "EXISTS", o2, NULL) == 0);
	/* the service log names the jobs */
	char *line1 = xasprintf("job %s (NOOP) was running when pool %s", retry_job, pool);
	char *line2 = xasprintf("job %s (NOOP) was running when pool %s", dead_job2, pool);
	CHECK(log_count(line1, true) == 1);
	CHECK(log_count(line2, true) == 1);
	CHECK(log_count("moved to the dead set", true) == 1);
	/* leave the retry and dead sets as they were */
	redisReply *all = test_redis_cmd(rp, "ZRANGE", retry, "0", "-1", NULL);
	for (size_t i = 0; all && i < all->elements; i++)
		if (strstr(all->element[i]->str, retry_job))
			test_redis_do(rp, "ZREM", retry,
				      all->element[i]->str, NULL);
	if (all)
		freeReplyObject(all);
	test_redis_do(rp, "DEL", dead, NULL);
	free(line1);
	free(line2);
	free(retry);
	free(dead);
	free(pools);
	free(hash);
	free(wids);
	free(o1);
	free(o2);
	free(r1);
	free(r2);
	free(r3);
	free(retry_job);
	free(dead_job2);
	free(plain_job);
}

/* A mixed namespace: another instance (a Go pool) serves GOONLY. Its due
 * retries go to NS:jobs:GOONLY, not to dead; a type nobody serves still
 * goes to dead (spec 5.6). */
static void
test_mixed_requeue(void)
{
	char *pools = xasprintf("%s:worker_pools", NS);
	char *hash = xasprintf("%s:worker_pools:gopool", NS);
	char beat[24];
	snprintf(beat, sizeof(beat), "%lld", (long long)util_now());
	test_redis_do(rp, "SADD", pools, "gopool", NULL);
	test_redis_do(rp, "HSET", hash, "heartbeat_at", beat, "job_names",
		 "GOONLY,OTHER", NULL);
	char *retry = xasprintf("%s:retry", NS);
	char *dead = xasprintf("%s:dead", NS);
	char *goq = xasprintf("%s:jobs:GOONLY", NS);
	char due[24];
	snprintf(due, sizeof(due), "%lld", (long long)util_now() - 1);
	test_redis_do(rp, "ZADD", retry, due,
		      "{\"name\":\"GOONLY\",\"id\":\"g1\",\"t\":1,\"args\":null,"
		      "\"fails\":1}",
		      NULL);
	test_redis_do(rp, "ZADD", retry, due,
		      "{\"name\":\"NOBODY\",\"id\":\"n1\",\"t\":1,\"args\":null,"
		      "\"fails\":1}",
		      NULL);
	/* the requeuer reads the pools at most every 5 s */
	int64_t end = util_monotonic_ms() + 8000;
	while (llen(goq) < 1 && util_monotonic_ms() < end)
		util_sleep_ms(20);
	CHECK_MSG(llen(goq) == 1, "GOONLY queue has %lld", llen(goq));
	end = util_monotonic_ms() + 3000;
	while (test_redis_int(rp, "ZCARD", dead, NULL) < 1 && util_monotonic_ms() < end)
		util_sleep_ms(20);
	struct job_message m;
	CHECK(zset_message(dead, "n1", &m));
	if (m.id) {
		CHECK_STR(m.err, "unknown job when requeueing");
		message_fini(&m);
	}
	CHECK(!zset_message(dead, "g1", &m));
	CHECK(test_redis_int(rp, "ZCARD", retry, NULL) == 0);
	test_redis_do(rp, "DEL", goq, dead, NULL);
	test_redis_do(rp, "DEL", hash, NULL);
	test_redis_do(rp, "SREM", pools, "gopool", NULL);
	free(pools);
	free(hash);
	free(retry);
	free(dead);
	free(goq);
}

/* Lock shares of this live pool that no worker holds (a finish that gave
 * up, in older versions) block a type with max_concurrency: the recovery
 * pass corrects them. */
static void
test_stale_share(void)
{
	char *maxc = xasprintf("%s:jobs:NOOP:max_concurrency", NS);
	char *lock = xasprintf("%s:jobs:NOOP:lock", NS);
	char *info = xasprintf("%s:jobs:NOOP:lock_info", NS);
	CHECK(wait_settled("NOOP", 3000));
	test_redis_do(rp, "SET", maxc, "2", NULL);
	test_redis_do(rp, "INCRBY", lock, "2", NULL);
	test_redis_do(rp, "HINCRBY", info, pool_id, "2", NULL);
	char *id = submit("NOOP", NULL);
	util_sleep_ms(300);
	CHECK(status_is(id, JOB_STATUS_PENDING)); /* blocked */
	worker_pool_recover_now(wp);
	CHECK_MSG(wait_status(id, JOB_STATUS_SUCCESS, 5000),
		  "a stale share kept the type blocked");
	CHECK(wait_settled("NOOP", 2000));
	redisReply *r = test_redis_cmd(rp, "HGET", info, pool_id, NULL);
	CHECK(r && (r->type == REDIS_REPLY_NIL ||
		    (r->type == REDIS_REPLY_STRING && atoi(r->str) == 0)));
	if (r)
		freeReplyObject(r);
	CHECK(log_count("held by no worker", false) >= 1);
	test_redis_do(rp, "SET", maxc, "0", NULL);
	free(id);
	free(maxc);
	free(lock);
	free(info);
}

/* Redis killed (-9) for 6 s while two jobs run: their ends are recorded
 * once it is back (the old code gave up after ~3.9 s and left the claims
 * and the lock shares behind for good). AOF keeps the data. */
static void
test_finish_outage(void)
{
	int before = log_count("cannot record the end", false);
	char *a = submit("SLEEPER", "{\"ms\":1500}");
	char *b = submit("SLEEPER", "{\"ms\":1500}");
	CHECK(wait_status(a, JOB_STATUS_RUNNING, 2000));
	CHECK(wait_status(b, JOB_STATUS_RUNNING, 2000));
	CHECK(inprogress_len("SLEEPER", pool_id) == 2);
	util_sleep_ms(1100); /* appendfsync everysec */
	CHECK(test_redis_kill9(&tr) == 0);
	util_sleep_ms(6500);
	CHECK(test_redis_restart(&tr) == 0);
	struct berr err;
	berr_clear(&err);
	for (int i = 0; i < 3 && redis_ping(rp, &err) < 0; i++)
		;
	int64_t end = util_monotonic_ms() + 8000;
	while ((inprogress_len("SLEEPER", pool_id) != 0 ||
		lock_of("SLEEPER") != 0) &&
	       util_monotonic_ms() < end)
		util_sleep_ms(20);
	CHECK_MSG(inprogress_len("SLEEPER", pool_id) == 0,
		  "%lld claims left", inprogress_len("SLEEPER", pool_id));
	CHECK_MSG(lock_of("SLEEPER") == 0, "lock %lld", lock_of("SLEEPER"));
	char *info = xasprintf("%s:jobs:SLEEPER:lock_info", NS);
	redisReply *r = test_redis_cmd(rp, "HGET", info, pool_id, NULL);
	CHECK(r && (r->type == REDIS_REPLY_NIL ||
		    (r->type == REDIS_REPLY_STRING && atoi(r->str) == 0)));
	if (r)
		freeReplyObject(r);
	free(info);
	CHECK(worker_pool_busy(wp) == 0);
	/* once per outage, not per attempt */
	CHECK_MSG(log_count("cannot record the end", false) == before + 1,
		  "%d warnings", log_count("cannot record the end", false));
	/* the pool works on */
	char *c = submit("NOOP", NULL);
	CHECK(wait_status(c, JOB_STATUS_SUCCESS, 5000));
	free(a);
	free(b);
	free(c);
}

/* Redis paused (SIGSTOP) long enough for a fetch to time out on our side:
 * after SIGCONT the script runs all the same and claims a message no
 * worker holds. The pool reconciles its own in-progress list once Redis is
 * back, and the job runs. */
static void
test_fetch_timeout(void)
{
	char *paused = xasprintf("%s:jobs:NOOP:paused", NS);
	test_redis_do(rp, "SET", paused, "1", NULL);
	char *id = submit("NOOP", NULL);
	util_sleep_ms(1500); /* workers idle in their 1 s waits */
	CHECK(status_is(id, JOB_STATUS_PENDING));
	test_redis_do(rp, "DEL", paused, NULL);
	CHECK(kill(tr.pid, SIGSTOP) == 0);
	/* idle BRPOPs time out after 3 s, the next fetch after 2 s more */
	util_sleep_ms(7000);
	CHECK(kill(tr.pid, SIGCONT) == 0);
	CHECK_MSG(wait_status(id, JOB_STATUS_SUCCESS, 10000),
		  "the job claimed by a timed-out fetch never ran");
	CHECK(wait_settled("NOOP", 3000));
	free(paused);
	free(id);
}

static void
test_graceful_stop(void)
{
	char *quick = submit("SLEEPER", "{\"ms\":500}");
	char *slow = submit("SLEEPER", "{\"ms\":20000}");
	char *stubborn = submit("IGNORE_STOP", "{\"ms\":4500}");
	CHECK(wait_status(slow, JOB_STATUS_RUNNING, 2000));
	CHECK(wait_status(stubborn, JOB_STATUS_RUNNING, 2000));
	int64_t t0 = util_monotonic_ms();
	worker_pool_stop(wp);
	int64_t took = util_monotonic_ms() - t0;
	/* shutdown grace 1 s, then stop grace 1 s */
	CHECK_MSG(took >= 1800 && took < 4000, "stop took %lld ms",
		  (long long)took);
	CHECK(status_is(quick, JOB_STATUS_SUCCESS));
	/* stopped by the shutdown: still Running, message left in progress
	 * for recovery */
	CHECK(status_is(slow, JOB_STATUS_RUNNING));
	CHECK(status_is(stubborn, JOB_STATUS_RUNNING));
	CHECK(inprogress_len("SLEEPER", pool_id) == 1);
	CHECK(inprogress_len("IGNORE_STOP", pool_id) == 1);
	CHECK(lock_of("SLEEPER") == 1);
	CHECK(worker_pool_abandoned(wp) == 1);
	CHECK(worker_pool_busy(wp) == 1);
	/* the abandoned run returns later and touches nothing */
	int64_t end = util_monotonic_ms() + 5000;
	while (worker_pool_busy(wp) > 0 && util_monotonic_ms() < end)
		util_sleep_ms(10);
	CHECK(worker_pool_busy(wp) == 0);
	CHECK(worker_pool_abandoned(wp) == 0);
	CHECK(inprogress_len("IGNORE_STOP", pool_id) == 1);
	CHECK(status_is(stubborn, JOB_STATUS_RUNNING));
	free(quick);
	free(slow);
	free(stubborn);
}

static const char manifest_all[] =
	"plugin_dir: plugins\n"
	"plugins:\n"
	"  - {name: NOOP, file: engine.so}\n"
	"  - {name: SLEEPER, file: engine.so}\n"
	"  - {name: IGNORE_STOP, file: engine.so}\n"
	"  - {name: FLAKY, file: engine.so, max_fails: 3}\n"
	"  - {name: NORETRY, file: engine.so, max_fails: 3}\n"
	"  - name: DEMO\n"
	"    file: demo.so\n"
	"    priority: 1\n"
	"    settings: {long_wait_seconds: 0}\n";

int
main(void)
{
	test_backoff();

	const char *tp = getenv("BERTH_TEST_PLUGINS");
	const char *bp = getenv("BERTH_PLUGINS");
	if (!tp || !bp) {
		fprintf(stderr, "BERTH_TEST_PLUGINS and BERTH_PLUGINS must be "
				"set (run through ctest)\n");
		return 1;
	}
	const char *td = getenv("TMPDIR");
	snprintf(tmp, sizeof(tmp), "%s/berth-worker-XXXXXX",
		 td && td[0] ? td : "/tmp");
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	char *pdir = xasprintf("%s/plugins", tmp);
	char *src_engine = xasprintf("%s/engine.so", tp);
	char *dst_engine = xasprintf("%s/engine.so", pdir);
	char *src_demo = xasprintf("%s/demo.so", bp);
	char *dst_demo = xasprintf("%s/demo.so", pdir);
	char *manifest = xasprintf("%s/plugins.yml", tmp);
	mkdir(pdir, 0700);
	if (copy_file(src_engine, dst_engine) < 0 ||
	    copy_file(src_demo, dst_demo) < 0) {
		fprintf(stderr, "cannot copy the test plugins\n");
		return 1;
	}
	snprintf(log_path, sizeof(log_path), "%s/service.log", tmp);
	FILE *logf = fopen(log_path, "w");
	if (!logf)
		return 1;
	blog_set_output(logf);

	/* AOF: a kill -9 of Redis keeps what was written a second before */
	static const char *const aof[] = {"--appendonly", "yes",
					  "--appendfsync", "everysec", NULL};
	if (test_redis_start_args(&tr, aof) < 0)
		return 1;
	rp = test_redis_pool(&tr, 2000);
	struct berr err;
	berr_clear(&err);
	CHECK_MSG(scripts_load_all(rp, &err) == 0, "%s", err.msg);
	trk = tracker_new(rp, NS);
	tracker_set_event_fn(trk, on_event, NULL);
	q = queue_new(rp, NS);
	plant_dead_pools();
	test_store_reads();

	/* start with no job type at all */
	write_file(manifest, "plugin_dir: plugins\nplugins: []\n");
	reg = plugin_registry_new();
	CHECK_MSG(plugin_registry_load(reg, manifest, NULL, false, &err) == 0,
		  "%s", err.msg);
	hb = heartbeat_new(rp, NS, reg, WORKERS);
	CHECK_MSG(heartbeat_start(hb, &err) == 0, "%s", err.msg);
	pool_id = heartbeat_pool_id(hb);
	size_t nw = 0;
	const char *const *wids = heartbeat_worker_ids(hb, &nw);
	struct worker_pool_config cfg = {
		.workers = WORKERS,
		.pool_id = pool_id,
		.worker_ids = wids,
		.shutdown_grace_seconds = 1,
		.stop_grace_seconds = 1,
		.max_job_duration_seconds = 3600,
		.job_log_level = BLOG_INFO,
		/* the daemon's defaults (berth.dead_max_*) */
		.dead_max_jobs = 10000,
		.dead_max_age_seconds = 604800,
	};
	wp = worker_pool_new(&cfg, rp, NS, reg, trk, q);
	CHECK_MSG(worker_pool_start(wp, &err) == 0, "%s", err.msg);
	test_idle_without_types();

	/* a reload adds every type */
	write_file(manifest, manifest_all);
	CHECK_MSG(plugin_registry_load(reg, manifest, NULL, false, &err) == 0,
		  "%s", err.msg);
	heartbeat_refresh(hb);
	worker_pool_recover_now(wp);
	test_recovery_runs();

	test_generic();
	test_latency();
	test_scheduled();
	test_already_final();
	test_unparsable();
	test_unique();
	test_flaky();
	test_noretry();
	test_paused();
	test_max_concurrency();
	test_crash_accounting();
	test_mixed_requeue();
	test_stale_share();
	test_stop();
	test_stop_grace();
	test_redis_down();
	test_finish_outage();
	test_fetch_timeout();
	test_graceful_stop();

	heartbeat_stop(hb);
	worker_pool_free(wp);
	heartbeat_free(hb);
	plugin_registry_free(reg);
	queue_free(q);
	tracker_free(trk);
	redis_pool_free(rp);
	test_redis_stop(&tr);
	blog_set_output(NULL);
	fclose(logf);
	if (tl_failures) {
		/* show what the pool said */
		char *text = NULL;
		size_t len = 0;
		if (util_read_file(log_path, 64 << 20, &text, &len, &err) == 0)
			fprintf(stderr, "--- service log ---\n%s", text);
		free(text);
	}
	test_rm_rf(tmp);
	free(pdir);
	free(src_engine);
	free(dst_engine);
	free(src_demo);
	free(dst_demo);
	free(manifest);
	free(dead_job);
	free(orphan_job);
	TEST_DONE();
}

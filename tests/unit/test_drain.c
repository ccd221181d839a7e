/* test_drain.c - the drained job's two round trips (store/drain.h, issue
 * 12) against a real redis-server (private, unix socket), through the
 * public API only: drain_worker_new, drain_claim, drain_complete,
 * drain_pool_types, drain_observation_args.
 *
 * Claim: the ready index and the pool's type hash, the decisions (run,
 * reset, final, host) and what each writes (stats, job_track, worker
 * observation byte for byte), the fetch semantics of spec 5.4 (paused
 * types, max_concurrency, lock and lock_info per pool, the oldest message
 * first, the weighted random order of the priorities), the wake-up list,
 * the scan for messages Go pushed behind the index's back, and claims from
 * several threads. Complete: the claim's end (spec 5.5 step 4), the end of
 * the observation, the status CAS of spec 4.3 with its TTLs and the
 * in-progress counter, the retry ZADD, a mismatch, and "again". */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "store/drain.h"
#include "store/keys.h"
#include "store/redis_conn.h"
#include "store/scripts.h"
#include "redis_harness.h"
#include "testlib.h"
#include "common/util.h"

#define NS "{d}"
#define POOL "p1"
#define OBS_TTL 300

static struct redis_pool *pool;
static char *k_ready, *k_types, *k_track, *k_wake, *k_obs, *k_retry;

/* ---- helpers ------------------------------------------------------------ */

static char *
hget(const char *key, const char *field)
{
	return test_redis_str(pool, "HGET", key, field, NULL);
}

static long long
llen(const char *key)
{
	return test_redis_int(pool, "LLEN", key, NULL);
}

static long long
exists(const char *key)
{
	return test_redis_int(pool, "EXISTS", key, NULL);
}

static long long
ttl(const char *key)
{
	return test_redis_int(pool, "TTL", key, NULL);
}

static bool
ready_has(const char *type)
{
	return test_redis_int(pool, "SISMEMBER", k_ready, type, NULL) == 1;
}

#define CHECK_HGET(key, field, want)                                         \
	do {                                                                 \
		char *v_ = hget(key, field);                                 \
		CHECK_STR(v_, want);                                         \
		free(v_);                                                    \
	} while (0)

#define CHECK_GET(key, want)                                                 \
	do {                                                                 \
		char *v_ = test_redis_str(pool, "GET", key, NULL);           \
		CHECK_STR(v_, want);                                         \
		free(v_);                                                    \
	} while (0)

static void
flush(void)
{
	CHECK(test_redis_do(pool, "FLUSHALL", NULL) == 0);
}

/* The pool's type hash through the real writer. */
static void
types(const char *const *names, const uint32_t *prio, size_t n)
{
	struct berr e;
	berr_clear(&e);
	CHECK_MSG(drain_pool_types(pool, NS, POOL, names, prio, n, &e) == 0,
		  "%s", e.msg);
}

static void
types1(const char *name)
{
	const char *names[] = {name};
	types(names, NULL, 1);
}

/* A Berth enqueue: LPUSH and the ready index. */
static void
push(const char *type, const char *msg)
{
	char *q = key_jobs(NS, type);
	CHECK(test_redis_do(pool, "LPUSH", q, msg, NULL) == 0);
	CHECK(test_redis_do(pool, "SADD", k_ready, type, NULL) == 0);
	free(q);
}

/* A Go enqueue: LPUSH only. */
static void
push_go(const char *type, const char *msg)
{
	char *q = key_jobs(NS, type);
	CHECK(test_redis_do(pool, "LPUSH", q, msg, NULL) == 0);
	free(q);
}

static void
stats_put(const char *id, const char *status, const char *revision)
{
	char *k = key_job_stats(NS, id);
	CHECK(test_redis_do(pool, "HSET", k, "id", id, "status", status,
			    "revision", revision, "name", "A", NULL) == 0);
	free(k);
}

static char *
stats_get(const char *id, const char *field)
{
	char *k = key_job_stats(NS, id);
	char *v = hget(k, field);
	free(k);
	return v;
}

static long long
stats_ttl(const char *id)
{
	char *k = key_job_stats(NS, id);
	long long t = ttl(k);
	free(k);
	return t;
}

static int
claim(struct drain_worker *dw, bool scan, struct drain_claim *dc)
{
	struct berr e;
	berr_clear(&e);
	int rc = drain_claim(dw, OBS_TTL, scan, dc, &e);
	CHECK_MSG(rc >= 0, "claim: %s", e.msg);
	return rc;
}

static enum drain_status
complete(struct drain_worker *dw, struct drain_claim *dc, int64_t rev,
	 const char *target, bool again, const char *retry_msg,
	 int64_t retry_at, char **stored)
{
	struct berr e;
	berr_clear(&e);
	enum drain_status s = drain_complete(dw, &dc->c, dc->job_id, rev,
					     target, again, retry_msg,
					     retry_at, false, stored, NULL,
					     &e);
	CHECK_MSG(s != DRAIN_STATUS_ERROR, "complete: %s", e.msg);
	return s;
}

/* ---- claim: nothing, the type hash ----------------------------------- */

static void
empty_check(struct drain_worker *dw)
{
	flush();
	types1("A");
	struct drain_claim dc;
	/* nothing ready: 0, and the wake-up list goes (no stale wake-up) */
	CHECK(test_redis_do(pool, "LPUSH", k_wake, "1", NULL) == 0);
	CHECK(claim(dw, false, &dc) == 0);
	CHECK(exists(k_wake) == 0);
	CHECK(claim(dw, true, &dc) == 0);

	/* the pool's type hash missing while a type is ready: 2 */
	CHECK(test_redis_do(pool, "DEL", k_types, NULL) == 0);
	push("A", "{\"name\":\"A\",\"id\":\"x\",\"t\":1,\"args\":null}");
	CHECK(claim(dw, false, &dc) == 2);
	CHECK(ready_has("A"));
	char *q = key_jobs(NS, "A");
	CHECK(llen(q) == 1); /* nothing claimed */
	free(q);
	/* written again: claimable */
	types1("A");
	CHECK(claim(dw, false, &dc) == 1);
	CHECK(dc.decision == DRAIN_HOST); /* no stats */
	drain_claim_fini(&dc);

	/* missing with nothing ready: a scanning claim reports it too (a
	 * message a Go instance pushed would never be found otherwise) */
	CHECK(test_redis_do(pool, "DEL", k_types, NULL) == 0);
	CHECK(claim(dw, false, &dc) == 0);
	CHECK(claim(dw, true, &dc) == 2);
	types1("A");
}

/* ---- claim: decisions -------------------------------------------------- */

static void
run_check(struct drain_worker *dw)
{
	flush();
	types1("A");
	/* Go's key order: the observation's args are the message's bytes */
	const char *msg = "{\"name\":\"A\",\"id\":\"j1\",\"t\":1700000000,"
			  "\"args\":{\"f\":1.5,\"l\":[1,{\"k\":null}],\"n\":5,"
			  "\"u\":\"http://x/y?a=1\\u0026b=\\u003c2\\u003e\"}}";
	const char *args = "{\"f\":1.5,\"l\":[1,{\"k\":null}],\"n\":5,"
			   "\"u\":\"http://x/y?a=1\\u0026b=\\u003c2\\u003e\"}";
	stats_put("j1", "Pending", "100");
	push("A", msg);
	int64_t before = util_now();
	struct drain_claim dc;
	CHECK(claim(dw, false, &dc) == 1);
	CHECK(dc.decision == DRAIN_RUN);
	CHECK_STR(dc.c.raw, msg);
	CHECK_STR(dc.c.type, "A");
	CHECK(dc.c.parsed);
	CHECK_STR(dc.job_id, "j1");
	CHECK_STR(dc.was, "Pending");
	CHECK_STR(dc.stats.status, "Running");
	CHECK_STR(dc.stats.id, "j1");
	CHECK(dc.stats.revision == 100);
	CHECK(dc.stats.update_time >= before);
	CHECK(!dc.obs_args);
	CHECK(!dc.more); /* the only ready type is empty now */
	CHECK(!ready_has("A"));
	/* Redis */
	char *st = stats_get("j1", "status");
	CHECK_STR(st, "Running");
	free(st);
	st = stats_get("j1", "revision");
	CHECK_STR(st, "100");
	free(st);
	char *q = key_jobs(NS, "A");
	char *ip = key_inprogress(NS, "A", POOL);
	char *lock = key_lock(NS, "A"), *li = key_lock_info(NS, "A");
	CHECK(llen(q) == 0 && llen(ip) == 1);
	CHECK_GET(lock, "1");
	CHECK_HGET(li, POOL, "1");
	CHECK_STR(dc.c.inprogress_key, ip);
	/* the observation, byte for byte */
	CHECK_HGET(k_obs, "job_name", "A");
	CHECK_HGET(k_obs, "job_id", "j1");
	CHECK_HGET(k_obs, "args", args);
	char *sa = hget(k_obs, "started_at");
	CHECK(sa && atoll(sa) >= before && atoll(sa) <= util_now());
	free(sa);
	CHECK(test_redis_int(pool, "HLEN", k_obs, NULL) == 4);
	long long t = ttl(k_obs);
	CHECK(t > OBS_TTL - 5 && t <= OBS_TTL);

	/* complete Success: the claim, the observation and the job end */
	CHECK(test_redis_do(pool, "HSET", k_track, "j1", "1", NULL) == 0);
	CHECK(complete(dw, &dc, 100, "Success", false, NULL, 0, NULL) ==
	      DRAIN_STATUS_OK);
	CHECK(llen(ip) == 0);
	CHECK_GET(lock, "0");
	CHECK_HGET(li, POOL, "0");
	CHECK(exists(k_obs) == 0);
	st = stats_get("j1", "status");
	CHECK_STR(st, "Success");
	free(st);
	t = stats_ttl("j1");
	CHECK(t > 86390 && t <= 86400);
	/* no web_hook_url: no ACK will come, the field goes */
	CHECK(test_redis_int(pool, "HEXISTS", k_track, "j1", NULL) == 0);
	CHECK(test_redis_int(pool, "ZCARD", k_retry, NULL) == 0);
	drain_claim_fini(&dc);

	/* "again" after the claim is gone: nothing written, no status */
	struct drain_claim dc2;
	stats_put("j2", "Pending", "7");
	const char *msg2 = "{\"name\":\"A\",\"id\":\"j2\",\"t\":1,"
			   "\"args\":{},\"unique\":true}";
	push("A", msg2);
	CHECK(claim(dw, false, &dc2) == 1);
	CHECK(dc2.decision == DRAIN_RUN);
	CHECK(!dc2.obs_args);
	CHECK_HGET(k_obs, "args", "{}");
	CHECK(complete(dw, &dc2, 7, "Success", false, NULL, 0, NULL) ==
	      DRAIN_STATUS_OK);
	/* someone else moves on; a retry of the lost reply writes nothing */
	char *sk = key_job_stats(NS, "j2");
	CHECK(test_redis_do(pool, "HSET", sk, "status", "Pending", NULL) == 0);
	CHECK(complete(dw, &dc2, 7, "Error", true, "retry-msg", 5, NULL) ==
	      DRAIN_STATUS_OK);
	CHECK_HGET(sk, "status", "Pending");
	CHECK_GET(lock, "0"); /* not decremented twice */
	CHECK_HGET(li, POOL, "0");
	CHECK(test_redis_int(pool, "ZCARD", k_retry, NULL) == 0);
	/* "again" while the claim is still there (the first attempt never
	 * ran): everything is written */
	CHECK(test_redis_do(pool, "HSET", sk, "status", "Running", NULL) == 0);
	CHECK(test_redis_do(pool, "RPUSH", ip, msg2, NULL) == 0);
	CHECK(test_redis_do(pool, "SET", lock, "1", NULL) == 0);
	CHECK(complete(dw, &dc2, 7, "Success", true, NULL, 0, NULL) ==
	      DRAIN_STATUS_OK);
	CHECK_HGET(sk, "status", "Success");
	CHECK(llen(ip) == 0);
	CHECK_GET(lock, "0");
	/* no target: the claim ends, the status stays */
	CHECK(test_redis_do(pool, "HSET", sk, "status", "Running", NULL) == 0);
	CHECK(test_redis_do(pool, "RPUSH", ip, msg2, NULL) == 0);
	CHECK(complete(dw, &dc2, 7, NULL, false, NULL, 0, NULL) ==
	      DRAIN_STATUS_OK);
	CHECK_HGET(sk, "status", "Running");
	CHECK(llen(ip) == 0);
	drain_claim_fini(&dc2);
	free(sk);

	/* Scheduled runs as Pending */
	stats_put("j3", "Scheduled", "9");
	push("A", "{\"name\":\"A\",\"id\":\"j3\",\"t\":1,\"args\":null}");
	CHECK(claim(dw, false, &dc) == 1);
	CHECK(dc.decision == DRAIN_RUN);
	CHECK_STR(dc.was, "Scheduled");
	CHECK(!dc.obs_args);
	CHECK_HGET(k_obs, "args", ""); /* null args: "" as Go writes */
	drain_claim_fini(&dc);
	free(q);
	free(ip);
	free(lock);
	free(li);
}

/* A message not in Go's key order: the caller writes the args. */
static void
args_order_check(struct drain_worker *dw)
{
	static const struct {
		const char *msg, *args;
	} cases[] = {
		/* args before id and t */
		{"{\"name\":\"A\",\"args\":{\"a\":1},\"id\":\"k1\",\"t\":5}",
		 "{\"a\":1}"},
		/* no t: the key after args is another one */
		{"{\"name\":\"A\",\"id\":\"k1\",\"args\":{\"a\":1},"
		 "\"fails\":1}",
		 "{\"a\":1}"},
		/* id first */
		{"{\"id\":\"k1\",\"name\":\"A\",\"t\":5,\"args\":{\"a\":1}}",
		 "{\"a\":1}"},
		/* Lua's order with a re-encoded number (cjson) */
		{"{\"name\":\"A\",\"t\":5,\"id\":\"k1\",\"args\":{\"b\":2,"
		 "\"a\":1}}",
		 "{\"a\":1,\"b\":2}"},
		/* an explicit "unique":false after the args */
		{"{\"name\":\"A\",\"id\":\"k1\",\"t\":5,\"args\":{\"a\":1},"
		 "\"unique\":false}",
		 "{\"a\":1}"},
		/* a name Lua's cjson escapes differently from Go ("/") */
		{"{\"name\":\"A/b\",\"id\":\"k1\",\"t\":5,\"args\":{\"a\":1}}",
		 "{\"a\":1}"},
		/* whitespace */
		{"{\"name\": \"A\", \"id\": \"k1\", \"t\": 5, \"args\": "
		 "{\"a\": 1}}",
		 "{\"a\":1}"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		flush();
		types1("A");
		stats_put("k1", "Pending", "1");
		push("A", cases[i].msg);
		struct drain_claim dc;
		CHECK(claim(dw, false, &dc) == 1);
		CHECK(dc.decision == DRAIN_RUN);
		CHECK_MSG(dc.obs_args, "case %zu: args taken as exact", i);
		char *a = hget(k_obs, "args");
		CHECK_MSG(a && strcmp(a, "") == 0, "case %zu: args %s", i,
			  a ? a : "(nil)");
		free(a);
		struct berr e;
		berr_clear(&e);
		CHECK(drain_observation_args(dw, &dc.c.msg, &e) == 0);
		CHECK_HGET(k_obs, "args", cases[i].args);
		CHECK_HGET(k_obs, "job_id", "k1");
		drain_claim_fini(&dc);
	}
}

static void
reset_check(struct drain_worker *dw)
{
	flush();
	types1("A");
	char *sk = key_job_stats(NS, "r1");
	/* Running with a revision in the future: new = old + 1 */
	int64_t future = util_now() + 1000;
	char fut[24];
	snprintf(fut, sizeof(fut), "%lld", (long long)future);
	stats_put("r1", "Running", fut);
	CHECK(test_redis_do(pool, "HSET", sk, "ack",
			    "{\"status\":\"Running\",\"revision\":1,"
			    "\"check_in_at\":0}",
			    "check_in", "half", "check_in_at", "12",
			    "web_hook_url", "http://127.0.0.1:1/h", NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", k_track, "r1", "1", NULL) == 0);
	const char *msg = "{\"name\":\"A\",\"id\":\"r1\",\"t\":1,"
			  "\"args\":{\"x\":\"y\"}}";
	push("A", msg);
	struct drain_claim dc;
	CHECK(claim(dw, false, &dc) == 1);
	CHECK(dc.decision == DRAIN_RESET);
	CHECK_STR(dc.was, "Running");
	CHECK(dc.stats.revision == future + 1);
	CHECK_STR(dc.stats.status, "Running");
	CHECK(dc.stats.ack == NULL && dc.stats.check_in == NULL &&
	      dc.stats.check_in_at == 0);
	char *v = hget(sk, "revision");
	CHECK(v && atoll(v) == future + 1);
	free(v);
	CHECK_HGET(sk, "status", "Running");
	CHECK(test_redis_int(pool, "HEXISTS", sk, "ack", NULL) == 0);
	CHECK(test_redis_int(pool, "HEXISTS", sk, "check_in", NULL) == 0);
	CHECK(test_redis_int(pool, "HEXISTS", sk, "check_in_at", NULL) == 0);
	CHECK_HGET(k_track, "r1", "2");
	CHECK_HGET(k_obs, "args", "{\"x\":\"y\"}");

	/* complete Error with a retry: TTL 7 days, the ZADD, and the counter
	 * of a job with a hook decremented (its ACK comes later) */
	CHECK(complete(dw, &dc, future + 1, "Error", false, "retry-bytes",
		       4242, NULL) == DRAIN_STATUS_OK);
	CHECK_HGET(sk, "status", "Error");
	long long t = ttl(sk);
	CHECK(t > 604790 && t <= 604800);
	CHECK_HGET(k_track, "r1", "1");
	CHECK(test_redis_int(pool, "ZSCORE", k_retry, "retry-bytes", NULL) ==
	      4242);
	CHECK(exists(k_obs) == 0);
	drain_claim_fini(&dc);

	/* Error with an old revision: the new revision is now */
	stats_put("r2", "Error", "5");
	push("A", "{\"name\":\"A\",\"id\":\"r2\",\"t\":1,\"args\":null}");
	int64_t before = util_now();
	CHECK(claim(dw, false, &dc) == 1);
	CHECK(dc.decision == DRAIN_RESET);
	CHECK_STR(dc.was, "Error");
	CHECK(dc.stats.revision >= before && dc.stats.revision > 5);
	v = stats_get("r2", "revision");
	CHECK(v && atoll(v) == dc.stats.revision);
	free(v);
	CHECK_HGET(k_track, "r2", "2");
	/* a complete at the old revision is refused: Running is stored */
	char *stored = NULL;
	CHECK(complete(dw, &dc, 5, "Success", false, NULL, 0, &stored) ==
	      DRAIN_STATUS_MISMATCH);
	CHECK_STR(stored, "Running");
	free(stored);
	drain_claim_fini(&dc);
	free(sk);
}

static void
final_check(struct drain_worker *dw)
{
	flush();
	types1("A");
	const char *st[] = {"Stopped", "Success"};
	for (int i = 0; i < 2; i++) {
		char id[8];
		snprintf(id, sizeof(id), "f%d", i);
		stats_put(id, st[i], "3");
		char *sk = key_job_stats(NS, id);
		CHECK(test_redis_do(pool, "HSET", sk, "update_time", "11",
				    NULL) == 0);
		redisReply *before = test_redis_cmd(pool, "DUMP", sk, NULL);
		char *msg = xasprintf("{\"name\":\"A\",\"id\":\"%s\",\"t\":1,"
				      "\"args\":null}",
				      id);
		push("A", msg);
		struct drain_claim dc;
		CHECK(claim(dw, false, &dc) == 1);
		CHECK(dc.decision == DRAIN_FINAL);
		CHECK_STR(dc.was, st[i]);
		CHECK_STR(dc.stats.status, st[i]);
		/* the stats are untouched, byte for byte */
		redisReply *after = test_redis_cmd(pool, "DUMP", sk, NULL);
		CHECK(before && after && before->len == after->len &&
		      memcmp(before->str, after->str, after->len) == 0);
		freeReplyObject(before);
		freeReplyObject(after);
		CHECK(test_redis_int(pool, "HEXISTS", k_track, id, NULL) == 0);
		/* Stopped refuses the Success of the no-op (mismatch with the
		 * stored status); Success takes it again (quirk Q16) */
		char *stored = NULL;
		enum drain_status s = complete(dw, &dc, 3, "Success", false,
					       NULL, 0, &stored);
		if (i == 0) {
			CHECK(s == DRAIN_STATUS_MISMATCH);
			CHECK_STR(stored, "Stopped");
		} else {
			CHECK(s == DRAIN_STATUS_OK);
			CHECK(stored == NULL);
		}
		free(stored);
		CHECK_HGET(sk, "status", st[i]);
		CHECK(exists(k_obs) == 0);
		drain_claim_fini(&dc);
		free(msg);
		free(sk);
	}
	/* the stats gone since the claim: the CAS accepts (revision 0) */
	push("A", "{\"name\":\"A\",\"id\":\"gone\",\"t\":1,\"args\":null}");
	stats_put("gone", "Pending", "1");
	struct drain_claim dc;
	CHECK(claim(dw, false, &dc) == 1);
	char *sk = key_job_stats(NS, "gone");
	CHECK(test_redis_do(pool, "DEL", sk, NULL) == 0);
	char *junk = xstrdup("x"), *stored = junk;
	CHECK(complete(dw, &dc, 0, "Success", false, NULL, 0, &stored) ==
	      DRAIN_STATUS_OK); /* a missing hash accepts (revision 0) */
	CHECK(stored == NULL);    /* reset even when nothing is stored */
	free(junk);
	drain_claim_fini(&dc);
	free(sk);
}

static void
host_check(struct drain_worker *dw)
{
	flush();
	types1("A");
	char *ip = key_inprogress(NS, "A", POOL);
	char *lock = key_lock(NS, "A"), *li = key_lock_info(NS, "A");
	static const struct {
		const char *msg;
		bool parsed;
	} cases[] = {
		/* no stats */
		{"{\"name\":\"A\",\"id\":\"h1\",\"t\":1,\"args\":null}", true},
		/* a periodic mark that is not a string */
		{"{\"name\":\"A\",\"id\":\"h2\",\"t\":1,"
		 "\"args\":{\"_job_kind_periodic_\":5}}",
		 true},
		/* not JSON */
		{"not json {", false},
		/* JSON, but no string id */
		{"{\"name\":\"A\",\"id\":7,\"t\":1,\"args\":null}", false},
		/* fields message_parse refuses: nothing may be written */
		{"{\"name\":\"A\",\"id\":\"h4\",\"t\":\"x\",\"args\":null}",
		 false},
		{"{\"name\":\"A\",\"id\":\"h4\",\"t\":1,\"args\":[1]}", false},
		{"{\"name\":\"A\",\"id\":\"h4\",\"t\":1,\"unique\":1}", false},
	};
	stats_put("h2", "Pending", "1"); /* the id without the mark */
	stats_put("h4", "Pending", "1");
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		push("A", cases[i].msg);
		struct drain_claim dc;
		CHECK(claim(dw, false, &dc) == 1);
		CHECK_MSG(dc.decision == DRAIN_HOST, "case %zu", i);
		CHECK(dc.c.parsed == cases[i].parsed);
		CHECK(cases[i].parsed || dc.c.parse_error != NULL);
		CHECK_STR(dc.c.raw, cases[i].msg);
		CHECK(dc.was == NULL);
		/* still claimed: the caller finishes it */
		CHECK(llen(ip) == (long long)i + 1);
		char want[8];
		snprintf(want, sizeof(want), "%zu", i + 1);
		CHECK_GET(lock, want);
		CHECK_HGET(li, POOL, want);
		CHECK(exists(k_obs) == 0); /* the caller's to write */
		drain_claim_fini(&dc);
	}
	char *st = stats_get("h2", "status");
	CHECK_STR(st, "Pending");
	free(st);
	st = stats_get("h4", "status");
	CHECK_STR(st, "Pending");
	free(st);

	/* a string mark: the stats of "<id>@<mark>" */
	stats_put("h3@1700000000", "Pending", "1");
	push("A", "{\"name\":\"A\",\"id\":\"h3\",\"t\":1,"
		  "\"args\":{\"_job_kind_periodic_\":\"1700000000\"}}");
	struct drain_claim dc;
	CHECK(claim(dw, false, &dc) == 1);
	CHECK(dc.decision == DRAIN_RUN);
	CHECK_STR(dc.job_id, "h3@1700000000");
	st = stats_get("h3@1700000000", "status");
	CHECK_STR(st, "Running");
	free(st);
	CHECK_HGET(k_obs, "job_id", "h3"); /* the message's id */
	drain_claim_fini(&dc);
	free(ip);
	free(lock);
	free(li);
}

/* ---- claim: fetch semantics (spec 5.4) --------------------------------- */

static void
fetch_check(struct drain_worker *dw)
{
	flush();
	const char *names[] = {"A", "B"};
	types(names, NULL, 2);
	char *qa = key_jobs(NS, "A"), *qb = key_jobs(NS, "B");
	char *pa = key_paused(NS, "A");
	char *la = key_lock(NS, "A"), *lia = key_lock_info(NS, "A");
	char *ma = key_max_concurrency(NS, "A");
	char *ipa = key_inprogress(NS, "A", POOL);
	struct drain_claim dc;

	/* the oldest message (the tail) first; more while some are left */
	push("A", "a1");
	push("A", "a2");
	CHECK(claim(dw, false, &dc) == 1);
	CHECK_STR(dc.c.raw, "a1");
	CHECK(dc.more);
	drain_claim_fini(&dc);

	/* paused: skipped, its ready entry and message kept; nothing else
	 * ready is claimable, so the wake-ups are spent */
	CHECK(test_redis_do(pool, "SET", pa, "", NULL) == 0);
	CHECK(test_redis_do(pool, "LPUSH", k_wake, "1", NULL) == 0);
	CHECK(claim(dw, false, &dc) == 0);
	CHECK(ready_has("A"));
	CHECK(llen(qa) == 1);
	CHECK(exists(k_wake) == 0);
	/* another ready type is claimed meanwhile */
	push("B", "b1");
	CHECK(claim(dw, false, &dc) == 1);
	CHECK_STR(dc.c.raw, "b1");
	CHECK(!ready_has("B"));
	drain_claim_fini(&dc);
	CHECK(test_redis_do(pool, "DEL", pa, NULL) == 0);

	/* max_concurrency: A holds lock 1 */
	CHECK_GET(la, "1");
	CHECK(test_redis_do(pool, "SET", ma, "1", NULL) == 0);
	CHECK(claim(dw, false, &dc) == 0);
	CHECK(llen(qa) == 1 && ready_has("A"));
	CHECK(test_redis_do(pool, "SET", ma, "2", NULL) == 0);
	CHECK(claim(dw, false, &dc) == 1);
	CHECK_STR(dc.c.raw, "a2");
	CHECK(!dc.more);
	drain_claim_fini(&dc);
	CHECK_GET(la, "2");
	CHECK_HGET(lia, POOL, "2");
	CHECK(llen(ipa) == 2);
	/* a missing lock counts as free even with a limit; 0 = unlimited */
	CHECK(test_redis_do(pool, "DEL", la, NULL) == 0);
	push("A", "a3");
	CHECK(claim(dw, false, &dc) == 1);
	drain_claim_fini(&dc);
	CHECK_GET(la, "1");
	CHECK(test_redis_do(pool, "SET", ma, "0", NULL) == 0);
	CHECK(test_redis_do(pool, "SET", la, "50", NULL) == 0);
	push("A", "a4");
	CHECK(claim(dw, false, &dc) == 1);
	drain_claim_fini(&dc);
	CHECK_GET(la, "51");

	/* another pool: its own in-progress list, its own lock_info share,
	 * the one lock */
	struct drain_worker *other = drain_worker_new(pool, NS, "p2", "w2");
	struct berr e;
	berr_clear(&e);
	CHECK(drain_pool_types(pool, NS, "p2", names, NULL, 2, &e) == 0);
	push("A", "a5");
	CHECK(claim(other, false, &dc) == 1);
	CHECK_STR(dc.c.raw, "a5");
	char *ipo = key_inprogress(NS, "A", "p2");
	CHECK_STR(dc.c.inprogress_key, ipo);
	CHECK(llen(ipo) == 1);
	CHECK_HGET(lia, "p2", "1");
	CHECK_HGET(lia, POOL, "4");
	CHECK_GET(la, "52");
	CHECK(complete(other, &dc, 0, NULL, false, NULL, 0, NULL) ==
	      DRAIN_STATUS_OK);
	CHECK_HGET(lia, "p2", "0");
	CHECK_HGET(lia, POOL, "4");
	CHECK_GET(la, "51");
	CHECK(llen(ipo) == 0);
	drain_claim_fini(&dc);
	free(ipo);

	/* a ready type with an empty queue leaves the index */
	CHECK(test_redis_do(pool, "SADD", k_ready, "B", NULL) == 0);
	CHECK(claim(dw, false, &dc) == 0);
	CHECK(!ready_has("B"));

	/* a type the pool does not serve: never claimed, stays ready, and
	 * the wake-up list stays (another pool's workers wait on it) */
	push("X", "x1");
	CHECK(test_redis_do(pool, "LPUSH", k_wake, "1", NULL) == 0);
	CHECK(claim(dw, false, &dc) == 0);
	CHECK(claim(dw, true, &dc) == 0);
	char *qx = key_jobs(NS, "X");
	CHECK(llen(qx) == 1 && ready_has("X"));
	CHECK(exists(k_wake) == 1);
	/* the same with a served type paused beside it */
	push("A", "a6");
	CHECK(test_redis_do(pool, "SET", pa, "1", NULL) == 0);
	CHECK(claim(dw, false, &dc) == 0);
	CHECK(exists(k_wake) == 1);
	CHECK(test_redis_do(pool, "DEL", pa, NULL) == 0);
	CHECK(claim(dw, false, &dc) == 1);
	CHECK_STR(dc.c.raw, "a6");
	CHECK(dc.more); /* X is still ready */
	drain_claim_fini(&dc);
	CHECK(claim(other, false, &dc) == 0); /* p2 does not serve X */
	CHECK(llen(qx) == 1);

	/* scan: a queue filled behind the index's back (Go's LPUSH) */
	CHECK(test_redis_do(pool, "DEL", qx, k_ready, NULL) == 0);
	push_go("B", "b-go");
	push_go("X", "x-go");
	CHECK(claim(dw, false, &dc) == 0);
	CHECK(!ready_has("B"));
	CHECK(claim(dw, true, &dc) == 1);
	CHECK_STR(dc.c.raw, "b-go");
	CHECK_STR(dc.c.type, "B");
	drain_claim_fini(&dc);
	CHECK(!ready_has("X")); /* only served types are scanned */
	CHECK(llen(qx) == 1);

	/* a key of the wrong type: an error, not a claim */
	push("A", "a7");
	CHECK(test_redis_do(pool, "DEL", lia, NULL) == 0);
	CHECK(test_redis_do(pool, "SET", lia, "x", NULL) == 0);
	berr_clear(&e);
	CHECK(drain_claim(dw, OBS_TTL, false, &dc, &e) == -1);
	CHECK(e.msg[0] != '\0');
	CHECK(dc.c.raw == NULL);

	drain_worker_free(other);
	free(qa);
	free(qb);
	free(qx);
	free(pa);
	free(la);
	free(lia);
	free(ma);
	free(ipa);
}

/* ---- the weighted random order (spec 5.4 step 1) ----------------------- */

/* Claims n times with every type's queue refilled after each claim;
 * returns how often each type came first. */
/* A completion that claims the worker's next message (one round trip per
 * job through a backlog). */
static void
next_check(struct drain_worker *dw)
{
	flush();
	types1("A");
	stats_put("n1", "Pending", "1");
	stats_put("n2", "Pending", "1");
	push("A", "{\"name\":\"A\",\"id\":\"n1\",\"t\":1,\"args\":null}");
	push("A", "{\"name\":\"A\",\"id\":\"n2\",\"t\":1,\"args\":null}");
	struct drain_claim dc, next;
	CHECK(claim(dw, false, &dc) == 1);
	CHECK_STR(dc.job_id, "n1");
	CHECK(dc.more);
	int rc = -9;
	struct drain_next nx = {60, false, &next, &rc};
	struct berr e;
	berr_clear(&e);
	CHECK(drain_complete(dw, &dc.c, dc.job_id, dc.stats.revision,
			     "Success", false, NULL, 0, false, NULL, &nx,
			     &e) == DRAIN_STATUS_OK);
	CHECK(rc == 1);
	char *st = stats_get("n1", "status");
	CHECK_STR(st, "Success");
	free(st);
	CHECK_STR(next.job_id, "n2");
	CHECK(next.decision == DRAIN_RUN);
	CHECK(!next.more);
	st = stats_get("n2", "status");
	CHECK_STR(st, "Running");
	free(st);
	/* the observation is the next job's; one claim held */
	CHECK_HGET(k_obs, "job_id", "n2");
	char *lock = key_lock(NS, "A");
	CHECK_GET(lock, "1");
	CHECK(llen(next.c.inprogress_key) == 1);
	/* nothing left: the next claim is none, the completion went through */
	drain_claim_fini(&dc);
	rc = -9;
	struct drain_claim none;
	struct drain_next nx2 = {60, false, &none, &rc};
	CHECK(drain_complete(dw, &next.c, next.job_id, next.stats.revision,
			     "Success", false, NULL, 0, false, NULL, &nx2,
			     &e) == DRAIN_STATUS_OK);
	CHECK(rc == 0);
	drain_claim_fini(&next);
	CHECK_GET(lock, "0");
	st = stats_get("n2", "status");
	CHECK_STR(st, "Success");
	free(st);
	CHECK(exists(k_obs) == 0);
	free(lock);
}

static void
order_run(struct drain_worker *dw, const char *const *names, size_t nt,
	  int n, int *first)
{
	for (size_t i = 0; i < nt; i++) {
		first[i] = 0;
		push(names[i], "m");
	}
	for (int k = 0; k < n; k++) {
		struct drain_claim dc;
		if (claim(dw, false, &dc) != 1)
			break;
		for (size_t i = 0; i < nt; i++) {
			if (strcmp(dc.c.type, names[i]) == 0) {
				first[i]++;
				push(names[i], "m");
				CHECK(test_redis_do(pool, "DEL",
						    dc.c.inprogress_key,
						    NULL) == 0);
			}
		}
		drain_claim_fini(&dc);
	}
}

static void
order_check(struct drain_worker *dw)
{
	enum { N = 2000 };
	int first[3];

	flush();
	const char *hl[] = {"H", "L"};
	const uint32_t p_hl[] = {1000, 1};
	types(hl, p_hl, 2);
	order_run(dw, hl, 2, N, first);
	CHECK_MSG(first[0] + first[1] == N, "%d claims", first[0] + first[1]);
	CHECK_MSG(first[0] >= N * 99 / 100, "H first %d of %d", first[0], N);

	flush();
	const char *eq[] = {"E1", "E2"};
	const uint32_t p_eq[] = {7, 7};
	types(eq, p_eq, 2);
	order_run(dw, eq, 2, N, first);
	CHECK_MSG(first[0] >= N * 40 / 100 && first[0] <= N * 60 / 100,
		  "E1 first %d of %d", first[0], N);

	/* priority 0 counts as 1 (as written by hand, not drain_pool_types),
	 * and a type of priority 1000 still wins against two of them */
	flush();
	const char *abc[] = {"A", "B", "C"};
	CHECK(test_redis_do(pool, "HSET", k_types, "A", "1", "B", "1000", "C",
			    "0", NULL) == 0);
	order_run(dw, abc, 3, N, first);
	CHECK_MSG(first[1] >= N * 98 / 100, "B first %d of %d", first[1], N);
	flush();
	const char *ac[] = {"A", "C"};
	CHECK(test_redis_do(pool, "HSET", k_types, "A", "1", "C", "0",
			    NULL) == 0);
	order_run(dw, ac, 2, N, first);
	CHECK_MSG(first[1] >= N * 40 / 100 && first[1] <= N * 60 / 100,
		  "C (priority 0) first %d of %d", first[1], N);

	/* the whole order: with H's queue empty, L is taken (fall through) */
	flush();
	types(hl, p_hl, 2);
	push("L", "l1");
	CHECK(test_redis_do(pool, "SADD", k_ready, "H", NULL) == 0);
	struct drain_claim dc;
	CHECK(claim(dw, false, &dc) == 1);
	CHECK_STR(dc.c.type, "L");
	drain_claim_fini(&dc);
}

/* ---- several threads -------------------------------------------------- */

#define CLAIM_THREADS 4
#define CLAIM_MSGS 400

static int claimed_count[CLAIM_THREADS];

static void *
claim_thread(void *arg)
{
	int idx = (int)(intptr_t)arg;
	char wid[16];
	snprintf(wid, sizeof(wid), "w%d", idx);
	struct drain_worker *dw = drain_worker_new(pool, NS, POOL, wid);
	for (;;) {
		struct berr e;
		struct drain_claim dc;
		int rc = drain_claim(dw, OBS_TTL, false, &dc, &e);
		if (rc != 1)
			break;
		drain_claim_fini(&dc);
		claimed_count[idx]++;
	}
	drain_worker_free(dw);
	return NULL;
}

/* Every message exactly once, from an empty script cache. */
static void
threads_check(void)
{
	flush();
	types1("P");
	for (int i = 0; i < CLAIM_MSGS; i++) {
		char m[16];
		snprintf(m, sizeof(m), "m%d", i);
		push("P", m);
	}
	CHECK(test_redis_do(pool, "SCRIPT", "FLUSH", NULL) == 0);
	pthread_t th[CLAIM_THREADS];
	for (int i = 0; i < CLAIM_THREADS; i++)
		pthread_create(&th[i], NULL, claim_thread, (void *)(intptr_t)i);
	int total = 0;
	for (int i = 0; i < CLAIM_THREADS; i++) {
		pthread_join(th[i], NULL);
		total += claimed_count[i];
	}
	CHECK_MSG(total == CLAIM_MSGS, "claimed %d", total);
	char *q = key_jobs(NS, "P"), *ip = key_inprogress(NS, "P", POOL);
	char *lock = key_lock(NS, "P"), *li = key_lock_info(NS, "P");
	CHECK(llen(ip) == CLAIM_MSGS && llen(q) == 0);
	char want[16];
	snprintf(want, sizeof(want), "%d", CLAIM_MSGS);
	CHECK_GET(lock, want);
	CHECK_HGET(li, POOL, want);
	CHECK(!ready_has("P"));
	free(q);
	free(ip);
	free(lock);
	free(li);
}

int
main(void)
{
	struct test_redis tr;
	if (test_redis_start(&tr) < 0)
		return 1;
	pool = test_redis_pool(&tr, 5000);
	if (!pool) {
		test_redis_stop(&tr);
		return 1;
	}
	k_ready = key_ready_types(NS);
	k_types = key_pool_types(NS, POOL);
	k_track = key_job_track_inprogress(NS);
	k_wake = key_wakeup(NS);
	k_obs = key_worker_observation(NS, "w1");
	k_retry = key_retry(NS);
	struct drain_worker *dw = drain_worker_new(pool, NS, POOL, "w1");

	empty_check(dw);
	run_check(dw);
	args_order_check(dw);
	reset_check(dw);
	final_check(dw);
	host_check(dw);
	fetch_check(dw);
	order_check(dw);
	next_check(dw);
	threads_check();

	drain_worker_free(dw);
	free(k_ready);
	free(k_types);
	free(k_track);
	free(k_wake);
	free(k_obs);
	free(k_retry);
	redis_pool_free(pool);
	test_redis_stop(&tr);
	TEST_DONE();
}

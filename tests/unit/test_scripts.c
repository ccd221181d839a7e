/* test_scripts.c - every Lua script of scripts.c against a real
 * redis-server (private, unix socket): status compare-and-set (spec 4.3),
 * reset (4.5), ACK (7.4), requeue (5.6), unique enqueue
 * (5.7), dead-pool re-enqueue and stale locks (9.1), Berth's idempotent
 * finish and live-pool reconciliation, delete by score + id
 * (8.7), the periodic scheduler's own scripts (add once, trim, known,
 * unlock: 8.3-8.5, Q6, Q17), and the EVALSHA/NOSCRIPT handling of
 * script_run. The drain's claim and complete scripts (which hold the
 * fetch of spec 5.4) are tested through store/drain.h in test_drain.c. */
#include <stdlib.h>

#include "store/message.h"
#include "store/queue.h"
#include "store/redis_conn.h"
#include "redis_harness.h"
#include "store/scripts.h"
#include "testlib.h"
#include "common/util.h"

static struct redis_pool *pool;

#define NS "{t}"
#define STATS NS ":job_stats:j1"
#define INPROG NS ":job_track:inprogress"

/* ---- helpers ------------------------------------------------------------ */

/* String value of a reply (new string), NULL for nil/other. */
static char *
reply_str(redisReply *r)
{
	char *s = NULL;
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		s = xstrndup(r->str, r->len);
	else if (r->type == REDIS_REPLY_INTEGER)
		s = xasprintf("%lld", r->integer);
	freeReplyObject(r);
	return s;
}

static char *
hget(const char *key, const char *field)
{
	return test_redis_str(pool, "HGET", key, field, NULL);
}

static char *
get(const char *key)
{
	return test_redis_str(pool, "GET", key, NULL);
}

static long long
ttl(const char *key)
{
	return test_redis_int(pool, "TTL", key, NULL);
}

static long long
hlen(const char *key)
{
	return test_redis_int(pool, "HLEN", key, NULL);
}

static long long
llen(const char *key)
{
	return test_redis_int(pool, "LLEN", key, NULL);
}

static long long
zcard(const char *key)
{
	return test_redis_int(pool, "ZCARD", key, NULL);
}

static redisReply *
run(enum script_id id, int nkeys, const char **keys, int nargs,
    const char **args)
{
	struct berr e;
	berr_clear(&e);
	redisReply *r = script_run(pool, &e, id, nkeys, keys, nargs, args);
	if (!r) {
		fprintf(stderr, "script_run %s: %s\n", script_name(id), e.msg);
		exit(1);
	}
	return r;
}

/* The script's reply as a string ("ok", a status, ...), "(nil)" for nil,
 * "(error)" for an error, "(array)" for an array. New string. */
static char *
run_s(enum script_id id, int nkeys, const char **keys, int nargs,
      const char **args)
{
	redisReply *r = run(id, nkeys, keys, nargs, args);
	if (r->type == REDIS_REPLY_NIL) {
		freeReplyObject(r);
		return xstrdup("(nil)");
	}
	if (r->type == REDIS_REPLY_ERROR) {
		/* shown in case the check did not expect it */
		fprintf(stderr, "script %s: error reply: %s\n",
			script_name(id), r->str);
		freeReplyObject(r);
		return xstrdup("(error)");
	}
	if (r->type == REDIS_REPLY_ARRAY) {
		freeReplyObject(r);
		return xstrdup("(array)");
	}
	char *s = reply_str(r);
	return s ? s : xstrdup("(?)");
}

#define CHECK_RUN(want, id, nk, k, na, a)                                    \
	do {                                                                 \
		char *tr_s = run_s(id, nk, k, na, a);                        \
		CHECK_STR(tr_s, want);                                       \
		free(tr_s);                                                  \
	} while (0)

#define CHECK_HGET(key, field, want)                                         \
	do {                                                                 \
		char *th_s = hget(key, field);                               \
		const char *th_w = (want);                                   \
		if (th_w)                                                    \
			CHECK_STR(th_s, th_w);                               \
		else                                                         \
			CHECK_MSG(th_s == NULL, "%s %s = %s, want nil", key, \
				  field, th_s);                              \
		free(th_s);                                                  \
	} while (0)

#define CHECK_GET(key, want)                                                 \
	do {                                                                 \
		char *tg_s = get(key);                                       \
		const char *tg_w = (want);                                   \
		if (tg_w)                                                    \
			CHECK_STR(tg_s, tg_w);                               \
		else                                                         \
			CHECK_MSG(tg_s == NULL, "%s = %s, want nil", key,    \
				  tg_s);                                     \
		free(tg_s);                                                  \
	} while (0)

/* ---- status compare-and-set (spec 4.3) ----------------------------------- */

struct cas_case {
	const char *stored;   /* NULL: field absent */
	const char *srev;     /* NULL: field absent */
	const char *target;
	const char *crev;
	bool ok;
};

static const struct cas_case cas_cases[] = {
	/* same revision: forward moves */
	{"Pending", "100", "Running", "100", true},
	{"Scheduled", "100", "Running", "100", true},
	{"Pending", "100", "Scheduled", "100", true},
	{"Pending", "100", "Success", "100", true},
	{"Running", "100", "Error", "100", true},
	{"Scheduled", "100", "Stopped", "100", true},
	/* same revision: backwards and final -> other final refused */
	{"Running", "100", "Pending", "100", false},
	{"Running", "100", "Scheduled", "100", false},
	{"Success", "100", "Running", "100", false},
	{"Stopped", "100", "Success", "100", false},
	{"Stopped", "100", "Error", "100", false},
	{"Error", "100", "Success", "100", false},
	/* the same status again is allowed */
	{"Running", "100", "Running", "100", true},
	{"Pending", "100", "Pending", "100", true},
	{"Success", "100", "Success", "100", true},
	{"Stopped", "100", "Stopped", "100", true},
	/* a newer revision overwrites anything, an older one nothing */
	{"Success", "100", "Pending", "200", true},
	{"Error", "100", "Running", "101", true},
	{"Pending", "200", "Running", "100", false},
	{"Pending", "200", "Success", "199", false},
	/* unknown stored status counts as 0 */
	{"Bogus", "100", "Pending", "100", false},
	{"Bogus", "100", "Scheduled", "100", true},
	/* missing revision counts as 0 */
	{"Running", NULL, "Pending", "1", true},
	{"Pending", NULL, "Running", "0", true},
};

static void
cas_cases_check(void)
{
	const char *keys[] = {STATS, INPROG};
	for (size_t i = 0; i < ARRAY_LEN(cas_cases); i++) {
		const struct cas_case *c = &cas_cases[i];
		CHECK(test_redis_do(pool, "DEL", STATS, INPROG, NULL) == 0);
		CHECK(test_redis_do(pool, "HSET", STATS, "status", c->stored,
				    "update_time", "1", "name", "DEMO",
				    "web_hook_url", "http://core/hook",
				    NULL) == 0);
		if (c->srev)
			CHECK(test_redis_do(pool, "HSET", STATS, "revision",
					    c->srev, NULL) == 0);
		CHECK(test_redis_do(pool, "HSET", INPROG, "j1", "2",
				    NULL) == 0);
		const char *args[] = {c->target, c->crev, "5000", "j1"};
		char *got = run_s(SCRIPT_STATUS_CAS, 2, keys, 4, args);
		char *st = hget(STATS, "status");
		char *ut = hget(STATS, "update_time");
		char *cnt = hget(INPROG, "j1");
		bool final = strcmp(c->target, "Success") == 0 ||
			     strcmp(c->target, "Error") == 0 ||
			     strcmp(c->target, "Stopped") == 0;
		if (c->ok) {
			CHECK_MSG(strcmp(got, "ok") == 0,
				  "case %zu %s->%s: got %s", i, c->stored,
				  c->target, got);
			CHECK_MSG(st && strcmp(st, c->target) == 0,
				  "case %zu: status %s", i, st);
			CHECK_MSG(ut && strcmp(ut, "5000") == 0,
				  "case %zu: update_time %s", i, ut);
			CHECK_MSG(cnt && strcmp(cnt, final ? "1" : "2") == 0,
				  "case %zu: inprogress %s", i, cnt);
			long long t = ttl(STATS);
			if (!final)
				CHECK_MSG(t == -1, "case %zu: ttl %lld", i, t);
			else if (strcmp(c->target, "Error") == 0)
				CHECK_MSG(t > 604000 && t <= 604800,
					  "case %zu: ttl %lld", i, t);
			else
				CHECK_MSG(t > 86000 && t <= 86400,
					  "case %zu: ttl %lld", i, t);
		} else {
			/* mismatch: the stored status comes back, nothing
			 * changes */
			CHECK_MSG(strcmp(got, c->stored) == 0,
				  "case %zu %s->%s: got %s", i, c->stored,
				  c->target, got);
			CHECK_MSG(st && strcmp(st, c->stored) == 0,
				  "case %zu: status %s", i, st);
			CHECK_MSG(ut && strcmp(ut, "1") == 0,
				  "case %zu: update_time %s", i, ut);
			CHECK_MSG(cnt && strcmp(cnt, "2") == 0,
				  "case %zu: inprogress %s", i, cnt);
			CHECK(ttl(STATS) == -1);
		}
		CHECK_HGET(STATS, "name", "DEMO");
		/* Berth: without web_hook_url no ACK can come, so a final
		 * status removes the field at once; others keep it */
		if (c->ok) {
			CHECK(test_redis_do(pool, "DEL", STATS, INPROG,
					    NULL) == 0);
			CHECK(test_redis_do(pool, "HSET", STATS, "status",
					    c->stored, "name", "DEMO",
					    "web_hook_url", "", NULL) == 0);
			if (c->srev)
				CHECK(test_redis_do(pool, "HSET", STATS,
						    "revision", c->srev,
						    NULL) == 0);
			CHECK(test_redis_do(pool, "HSET", INPROG, "j1", "2",
					    NULL) == 0);
			free(run_s(SCRIPT_STATUS_CAS, 2, keys, 4, args));
			char *n2 = hget(INPROG, "j1");
			CHECK_MSG(final ? n2 == NULL
					: (n2 && strcmp(n2, "2") == 0),
				  "case %zu, no hook: inprogress %s", i, n2);
			free(n2);
		}
		free(got);
		free(st);
		free(ut);
		free(cnt);
	}
}

static void
cas_counter_check(void)
{
	const char *keys[] = {STATS, INPROG};
	const char *success[] = {"Success", "100", "6000", "j1"};

	/* final twice: 2 -> 1 -> field deleted (a job with a hook URL) */
	CHECK(test_redis_do(pool, "DEL", STATS, INPROG, NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", STATS, "status", "Running",
			    "revision", "100", "web_hook_url",
			    "http://core/hook", NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", INPROG, "j1", "2", "other", "2",
			    NULL) == 0);
	CHECK_RUN("ok", SCRIPT_STATUS_CAS, 2, keys, 4, success);
	CHECK_HGET(INPROG, "j1", "1");
	CHECK_RUN("ok", SCRIPT_STATUS_CAS, 2, keys, 4, success);
	CHECK_HGET(INPROG, "j1", NULL);
	CHECK_HGET(INPROG, "other", "2");
	/* a third time: no field -> -1 -> deleted again, never negative */
	CHECK_RUN("ok", SCRIPT_STATUS_CAS, 2, keys, 4, success);
	CHECK_HGET(INPROG, "j1", NULL);

	/* a malformed counter is removed, the write still happens */
	CHECK(test_redis_do(pool, "HSET", STATS, "status", "Running",
			    NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", INPROG, "j1", "garbage", NULL) == 0);
	CHECK_RUN("ok", SCRIPT_STATUS_CAS, 2, keys, 4, success);
	CHECK_HGET(STATS, "status", "Success");
	CHECK_HGET(INPROG, "j1", NULL);

	/* TTL refreshed by the same final status again */
	CHECK(test_redis_do(pool, "EXPIRE", STATS, "10", NULL) == 0);
	CHECK_RUN("ok", SCRIPT_STATUS_CAS, 2, keys, 4, success);
	CHECK(ttl(STATS) > 86000);

	/* Stopped -> 86400 */
	const char *stopped[] = {"Stopped", "300", "6000", "j1"};
	CHECK_RUN("ok", SCRIPT_STATUS_CAS, 2, keys, 4, stopped);
	CHECK(ttl(STATS) > 86000 && ttl(STATS) <= 86400);
	/* a newer Error -> 7 days */
	const char *error[] = {"Error", "400", "6000", "j1"};
	CHECK_RUN("ok", SCRIPT_STATUS_CAS, 2, keys, 4, error);
	CHECK(ttl(STATS) > 604000);

	/* quirk: missing hash + caller revision > 0 creates a hash with
	 * only status and update_time */
	CHECK(test_redis_do(pool, "DEL", STATS, INPROG, NULL) == 0);
	const char *running[] = {"Running", "5", "7000", "j1"};
	CHECK_RUN("ok", SCRIPT_STATUS_CAS, 2, keys, 4, running);
	CHECK(hlen(STATS) == 2);
	CHECK_HGET(STATS, "status", "Running");
	CHECK_HGET(STATS, "update_time", "7000");
	CHECK(hlen(INPROG) == 0);

	/* missing hash + revision 0: Pending is refused (nil back),
	 * Running is allowed */
	CHECK(test_redis_do(pool, "DEL", STATS, NULL) == 0);
	const char *pending0[] = {"Pending", "0", "7000", "j1"};
	CHECK_RUN("(nil)", SCRIPT_STATUS_CAS, 2, keys, 4, pending0);
	CHECK(hlen(STATS) == 0);
	const char *running0[] = {"Running", "0", "7000", "j1"};
	CHECK_RUN("ok", SCRIPT_STATUS_CAS, 2, keys, 4, running0);
	CHECK(hlen(STATS) == 2);
}

/* ---- reset (spec 4.5) ------------------------------------------------- */

static void
reset_check(void)
{
	const char *keys[] = {STATS, INPROG};
	CHECK(test_redis_do(pool, "DEL", STATS, INPROG, NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", STATS, "id", "j1", "name", "DEMO",
			    "status", "Error", "revision", "100", "update_time",
			    "150", "ack",
			    "{\"status\":\"Error\",\"revision\":100,"
			    "\"check_in_at\":0}",
			    "check_in", "[REDUNDANT]", "check_in_at", "120",
			    NULL) == 0);
	const char *args[] = {"200", "j1"};
	CHECK_RUN("ok", SCRIPT_RESET, 2, keys, 2, args);
	CHECK_HGET(STATS, "status", "Pending");
	CHECK_HGET(STATS, "revision", "200");
	CHECK_HGET(STATS, "update_time", "200");
	CHECK_HGET(STATS, "ack", NULL);
	CHECK_HGET(STATS, "check_in", NULL);
	CHECK_HGET(STATS, "check_in_at", NULL);
	CHECK_HGET(STATS, "id", "j1");
	CHECK_HGET(STATS, "name", "DEMO");
	CHECK_HGET(INPROG, "j1", "2");

	/* after a reset the old revision can no longer write */
	const char *old[] = {"Success", "100", "300", "j1"};
	CHECK_RUN("Pending", SCRIPT_STATUS_CAS, 2, keys, 4, old);
	const char *cur[] = {"Running", "200", "300", "j1"};
	CHECK_RUN("ok", SCRIPT_STATUS_CAS, 2, keys, 4, cur);
}

/* ---- ACK (spec 7.4) --------------------------------------------------- */

static void
check_ack(const char *status, long long rev, long long cia)
{
	char *a = hget(STATS, "ack");
	cJSON *j = a ? cJSON_Parse(a) : NULL;
	CHECK_MSG(j != NULL, "ack not JSON: %s", a ? a : "(nil)");
	if (j) {
		cJSON *s = cJSON_GetObjectItem(j, "status");
		cJSON *r = cJSON_GetObjectItem(j, "revision");
		cJSON *c = cJSON_GetObjectItem(j, "check_in_at");
		CHECK_STR(cJSON_GetStringValue(s), status);
		CHECK_MSG(cJSON_IsNumber(r) && r->valuedouble == (double)rev,
			  "ack revision in %s, want %lld", a, rev);
		CHECK_MSG(cJSON_IsNumber(c) && c->valuedouble == (double)cia,
			  "ack check_in_at in %s, want %lld", a, cia);
		CHECK(cJSON_GetArraySize(j) == 3);
	}
	cJSON_Delete(j);
	free(a);
}

static void
ack_check(void)
{
	const char *keys[] = {STATS, INPROG};
	CHECK(test_redis_do(pool, "DEL", STATS, INPROG, NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", STATS, "status", "Running",
			    "revision", "100", NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", INPROG, "j1", "2", NULL) == 0);

	/* no ack: accept iff stored revision <= new revision */
	const char *older[] = {"Running", "99", "0", "j1"};
	CHECK_RUN("none", SCRIPT_ACK, 2, keys, 4, older);
	CHECK_HGET(STATS, "ack", NULL);
	const char *running[] = {"Running", "100", "0", "j1"};
	CHECK_RUN("ok", SCRIPT_ACK, 2, keys, 4, running);
	check_ack("Running", 100, 0);
	CHECK_HGET(INPROG, "j1", "2"); /* not final: no decrement */

	/* with an ack: same revision, lower status refused ... */
	const char *pending[] = {"Pending", "100", "0", "j1"};
	CHECK_RUN("none", SCRIPT_ACK, 2, keys, 4, pending);
	check_ack("Running", 100, 0);
	/* ... unless it carries a check-in */
	const char *pending_ci[] = {"Pending", "100", "1700000005", "j1"};
	CHECK_RUN("ok", SCRIPT_ACK, 2, keys, 4, pending_ci);
	check_ack("Pending", 100, 1700000005);
	/* same status code again is fine, an older revision is not */
	const char *sched[] = {"Scheduled", "100", "0", "j1"};
	CHECK_RUN("ok", SCRIPT_ACK, 2, keys, 4, sched);
	const char *old_run[] = {"Running", "99", "7", "j1"};
	CHECK_RUN("none", SCRIPT_ACK, 2, keys, 4, old_run);
	check_ack("Scheduled", 100, 0);

	/* final status: decrement, HDEL at 0 */
	const char *success[] = {"Success", "100", "0", "j1"};
	CHECK_RUN("ok", SCRIPT_ACK, 2, keys, 4, success);
	check_ack("Success", 100, 0);
	CHECK_HGET(INPROG, "j1", "1");
	CHECK_RUN("ok", SCRIPT_ACK, 2, keys, 4, success);
	CHECK_HGET(INPROG, "j1", NULL);
	/* final -> other final at the same revision: same code, accepted */
	const char *error[] = {"Error", "100", "0", "j1"};
	CHECK_RUN("ok", SCRIPT_ACK, 2, keys, 4, error);
	/* a newer revision overrides any ack */
	const char *newer[] = {"Pending", "200", "0", "j1"};
	CHECK_RUN("ok", SCRIPT_ACK, 2, keys, 4, newer);
	check_ack("Pending", 200, 0);

	/* a stored ack written by another encoder (other key order) */
	CHECK(test_redis_do(pool, "HSET", STATS, "ack",
			    "{\"check_in_at\":0,\"revision\":300,"
			    "\"status\":\"Running\"}",
			    NULL) == 0);
	const char *r299[] = {"Success", "299", "0", "j1"};
	CHECK_RUN("none", SCRIPT_ACK, 2, keys, 4, r299);
	const char *r300[] = {"Scheduled", "300", "0", "j1"};
	CHECK_RUN("none", SCRIPT_ACK, 2, keys, 4, r300);
	/* an ack that is not JSON counts as absent (stored revision 100) */
	CHECK(test_redis_do(pool, "HSET", STATS, "ack", "not json", NULL) == 0);
	CHECK_RUN("ok", SCRIPT_ACK, 2, keys, 4, r300);
	check_ack("Scheduled", 300, 0);

	/* quirk: a missing hash accepts and is created with just ack */
	CHECK(test_redis_do(pool, "DEL", STATS, INPROG, NULL) == 0);
	CHECK_RUN("ok", SCRIPT_ACK, 2, keys, 4, running);
	CHECK(hlen(STATS) == 1);
	check_ack("Running", 100, 0);
}

/* ---- the keys of a job type -------------------------------------------- */

struct type_keys {
	char queue[64], inprog[64], paused[64], lock[64], lock_info[64],
		maxc[64];
};

static void
type_keys(struct type_keys *k, const char *type, const char *poolid)
{
	snprintf(k->queue, sizeof(k->queue), NS ":jobs:%s", type);
	snprintf(k->inprog, sizeof(k->inprog), NS ":jobs:%s:%s:inprogress",
		 type, poolid);
	snprintf(k->paused, sizeof(k->paused), NS ":jobs:%s:paused", type);
	snprintf(k->lock, sizeof(k->lock), NS ":jobs:%s:lock", type);
	snprintf(k->lock_info, sizeof(k->lock_info), NS ":jobs:%s:lock_info",
		 type);
	snprintf(k->maxc, sizeof(k->maxc), NS ":jobs:%s:max_concurrency",
		 type);
}

static void
type_keys_del(const struct type_keys *k)
{
	CHECK(test_redis_do(pool, "DEL", k->queue, k->inprog, k->paused,
			    k->lock, k->lock_info, k->maxc, NULL) == 0);
}

/* ---- requeue (spec 5.6) ------------------------------------------------ */

static void
requeue_check(void)
{
	const char *sched = NS ":scheduled", *dead = NS ":dead";
	const char *qa = NS ":jobs:A", *qb = NS ":jobs:B";
	CHECK(test_redis_do(pool, "DEL", sched, dead, qa, qb, NS ":jobs:Z",
			    NULL) == 0);
	const char *msg_a =
		"{\"name\":\"A\",\"id\":\"aaa\",\"t\":1,\"args\":{\"url\":"
		"\"http://x/y\",\"n\":5},\"unique\":true}";
	const char *msg_z =
		"{\"name\":\"Z\",\"id\":\"zzz\",\"t\":2,\"args\":null}";
	const char *msg_b =
		"{\"name\":\"B\",\"id\":\"bbb\",\"t\":3,\"args\":null}";
	CHECK(test_redis_do(pool, "ZADD", sched, "900", msg_a, "950", msg_z,
			    "2000", msg_b, NULL) == 0);

	const char *keys[] = {sched, dead, qa, qb};
	const char *args[] = {NS ":jobs:", "1000"};

	/* the most overdue first: A is registered -> queued, t = now */
	CHECK_RUN("ok", SCRIPT_REQUEUE, 4, keys, 2, args);
	CHECK(llen(qa) == 1);
	char *raw = test_redis_str(pool, "LINDEX", qa, "0", NULL);
	struct job_message m;
	struct berr e;
	CHECK(raw && message_parse(raw, strlen(raw), &m, &e) == 0);
	if (raw && m.id) {
		CHECK_STR(m.id, "aaa");
		CHECK_STR(m.name, "A");
		CHECK(m.t == 1000);
		CHECK(m.unique);
		CHECK_STR(cJSON_GetStringValue(
				  cJSON_GetObjectItem(m.args, "url")),
			  "http://x/y");
		/* Lua cjson re-encoded it: "/" became "\/" */
		CHECK_CONTAINS(raw, "http:\\/\\/x\\/y");
		message_fini(&m);
	}
	free(raw);

	/* Z is not registered -> dead with err and failed_at, score now */
	CHECK_RUN("dead", SCRIPT_REQUEUE, 4, keys, 2, args);
	CHECK(zcard(dead) == 1);
	redisReply *r = test_redis_cmd(pool, "ZRANGE", dead, "0", "-1",
				       "WITHSCORES", NULL);
	CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
		CHECK_STR(r->element[1]->str, "1000");
		CHECK(message_parse(r->element[0]->str, r->element[0]->len,
				    &m, &e) == 0);
		CHECK_STR(m.id, "zzz");
		CHECK_STR(m.err, "unknown job when requeueing");
		CHECK(m.failed_at == 1000);
		CHECK(m.t == 2);
		message_fini(&m);
	}
	freeReplyObject(r);
	CHECK(llen(NS ":jobs:Z") == 0);

	/* B is not due yet */
	CHECK_RUN("(nil)", SCRIPT_REQUEUE, 4, keys, 2, args);
	CHECK(zcard(sched) == 1);
	CHECK(llen(qb) == 0);

	/* the same on the retry zset; the zset and dead keys themselves do
	 * not count as registered queues */
	const char *retry = NS ":retry";
	CHECK(test_redis_do(pool, "DEL", retry, NULL) == 0);
	CHECK(test_redis_do(pool, "ZADD", retry, "10",
			    "{\"name\":\"B\",\"id\":\"r1\",\"t\":3,"
			    "\"args\":null,\"fails\":1,\"err\":\"x\","
			    "\"failed_at\":5}",
			    "20",
			    "{\"name\":\"dead\",\"id\":\"r2\",\"t\":3,"
			    "\"args\":null}",
			    NULL) == 0);
	const char *rkeys[] = {retry, NS ":jobs:dead", qb};
	const char *rargs[] = {NS ":jobs:", "1000"};
	CHECK_RUN("ok", SCRIPT_REQUEUE, 3, rkeys, 2, rargs);
	raw = test_redis_str(pool, "LINDEX", qb, "0", NULL);
	CHECK(raw && message_parse(raw, strlen(raw), &m, &e) == 0);
	if (raw && m.id) {
		CHECK_STR(m.id, "r1");
		CHECK(m.t == 1000 && m.fails == 1 && m.failed_at == 5);
		message_fini(&m);
	}
	free(raw);
	CHECK_RUN("dead", SCRIPT_REQUEUE, 3, rkeys, 2, rargs);
	CHECK(zcard(NS ":jobs:dead") == 1);
	CHECK(zcard(retry) == 0);

	/* Berth's "ask": an unknown type stays put and is reported */
	CHECK(test_redis_do(pool, "DEL", NS ":jobs:dead", NULL) == 0);
	CHECK(test_redis_do(pool, "ZADD", retry, "10",
	     "{\"name\":\"GO\",\"id\":\"r3\",\"t\":3,\"args\":null}",
	     NULL) == 0);
	const char *ask[] = {NS ":jobs:", "1000", "ask"};
	CHECK_RUN("unknown", SCRIPT_REQUEUE, 3, rkeys, 3, ask);
	CHECK(zcard(retry) == 1);
	CHECK(zcard(NS ":jobs:dead") == 0);
	/* served after all (the caller re-read the pools): queued */
	const char *gkeys[] = {retry, NS ":jobs:dead", NS ":jobs:GO"};
	CHECK_RUN("ok", SCRIPT_REQUEUE, 3, gkeys, 3, ask);
	CHECK(llen(NS ":jobs:GO") == 1);
	CHECK(zcard(retry) == 0);
	CHECK(test_redis_do(pool, "DEL", NS ":jobs:GO", NULL) == 0);

	/* a member that is not JSON goes to dead as it is */
	CHECK(test_redis_do(pool, "DEL", dead, NULL) == 0);
	CHECK(test_redis_do(pool, "ZADD", sched, "5", "not json", NULL) == 0);
	CHECK_RUN("dead", SCRIPT_REQUEUE, 4, keys, 2, args);
	r = test_redis_cmd(pool, "ZSCORE", dead, "not json", NULL);
	CHECK(r && r->type == REDIS_REPLY_STRING &&
	      strcmp(r->str, "1000") == 0);
	freeReplyObject(r);

	/* B becomes due */
	const char *later[] = {NS ":jobs:", "2000"};
	CHECK_RUN("ok", SCRIPT_REQUEUE, 4, keys, 2, later);
	CHECK(llen(qb) == 2);
	CHECK_RUN("(nil)", SCRIPT_REQUEUE, 4, keys, 2, later);
	CHECK(test_redis_do(pool, "DEL", sched, dead, qa, qb, retry,
			    NS ":jobs:dead", NULL) == 0);
}

/* ---- unique enqueue (spec 5.7) ------------------------------------------ */

static void
unique_check(void)
{
	cJSON *args = cJSON_Parse("{\"provider\":\"y\",\"image\":\"x\"}");
	char *ukey = queue_unique_key(NS, "P2P_PREHEAT", args);
	const char *q = NS ":jobs:P2P_PREHEAT";
	const char *sched = NS ":scheduled";
	CHECK(test_redis_do(pool, "DEL", ukey, q, sched, NULL) == 0);
	const char *msg1 = "{\"name\":\"P2P_PREHEAT\",\"id\":\"u1\",\"t\":1,"
			   "\"args\":{\"image\":\"x\",\"provider\":\"y\"},"
			   "\"unique\":true}";
	const char *msg2 = "{\"name\":\"P2P_PREHEAT\",\"id\":\"u2\",\"t\":1,"
			   "\"args\":{\"image\":\"x\",\"provider\":\"y\"},"
			   "\"unique\":true}";
	const char *keys[] = {q, ukey};
	const char *a1[] = {msg1}, *a2[] = {msg2};
	CHECK_RUN("ok", SCRIPT_ENQUEUE_UNIQUE, 2, keys, 1, a1);
	CHECK_GET(ukey, "1");
	CHECK(ttl(ukey) > 86000 && ttl(ukey) <= 86400);
	CHECK(llen(q) == 1);
	CHECK_RUN("dup", SCRIPT_ENQUEUE_UNIQUE, 2, keys, 1, a2);
	CHECK(llen(q) == 1);
	char *head = test_redis_str(pool, "LINDEX", q, "0", NULL);
	CHECK_STR(head, msg1);
	free(head);

	/* delayed: the same key blocks it too */
	const char *dkeys[] = {sched, ukey};
	const char *d2[] = {msg2, "5000"};
	CHECK_RUN("dup", SCRIPT_ENQUEUE_UNIQUE_DELAYED, 2, dkeys, 2, d2);
	CHECK(zcard(sched) == 0);
	/* dequeued (key deleted): enqueue works again */
	CHECK(test_redis_do(pool, "DEL", ukey, NULL) == 0);
	CHECK_RUN("ok", SCRIPT_ENQUEUE_UNIQUE_DELAYED, 2, dkeys, 2, d2);
	redisReply *r = test_redis_cmd(pool, "ZSCORE", sched, msg2, NULL);
	CHECK(r && r->type == REDIS_REPLY_STRING &&
	      strcmp(r->str, "5000") == 0);
	freeReplyObject(r);
	CHECK(ttl(ukey) > 86000);
	CHECK_RUN("dup", SCRIPT_ENQUEUE_UNIQUE, 2, keys, 1, a2);
	CHECK(llen(q) == 1);

	/* the key is binary data with a newline; another args value is
	 * another key */
	cJSON *args2 = cJSON_Parse("{\"image\":\"z\",\"provider\":\"y\"}");
	char *ukey2 = queue_unique_key(NS, "P2P_PREHEAT", args2);
	const char *keys2[] = {q, ukey2};
	CHECK_RUN("ok", SCRIPT_ENQUEUE_UNIQUE, 2, keys2, 1, a2);
	CHECK(llen(q) == 2);
	r = test_redis_cmd(pool, "EXISTS",
			   NS ":unique:P2P_PREHEAT:{\"image\":\"z\","
			   "\"provider\":\"y\"}\n",
			   NULL);
	CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
	freeReplyObject(r);

	CHECK(test_redis_do(pool, "DEL", ukey, ukey2, q, sched, NULL) == 0);
	free(ukey);
	free(ukey2);
	cJSON_Delete(args);
	cJSON_Delete(args2);
}

/* ---- dead pool: re-enqueue and stale locks (spec 9.1) ------------------- */

static void
reenqueue_check(void)
{
	struct type_keys a, b;
	type_keys(&a, "A", "dead1");
	type_keys(&b, "B", "dead1");
	type_keys_del(&a);
	type_keys_del(&b);
	CHECK(test_redis_do(pool, "RPUSH", a.inprog, "a1", NULL) == 0);
	CHECK(test_redis_do(pool, "RPUSH", b.inprog, "b1", "b2", NULL) == 0);
	CHECK(test_redis_do(pool, "SET", a.lock, "1", NULL) == 0);
	CHECK(test_redis_do(pool, "SET", b.lock, "3", NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", a.lock_info, "dead1", "1",
			    NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", b.lock_info, "dead1", "2", "alive",
			    "1", NULL) == 0);
	const char *keys[] = {a.inprog, a.queue, a.lock, a.lock_info,
			      b.inprog, b.queue, b.lock, b.lock_info};
	const char *args[] = {"dead1"};

	redisReply *r = run(SCRIPT_REENQUEUE_POOL, 8, keys, 1, args);
	CHECK(r->type == REDIS_REPLY_ARRAY && r->elements == 3);
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
		CHECK_STR(r->element[0]->str, "a1");
		CHECK_STR(r->element[1]->str, a.inprog);
		CHECK_STR(r->element[2]->str, a.queue);
	}
	freeReplyObject(r);
	CHECK_GET(a.lock, "0");
	CHECK_HGET(a.lock_info, "dead1", "0");
	CHECK(llen(a.queue) == 1 && llen(a.inprog) == 0);

	int moved = 0;
	for (int i = 0; i < 10; i++) {
		r = run(SCRIPT_REENQUEUE_POOL, 8, keys, 1, args);
		bool got = r->type == REDIS_REPLY_ARRAY;
		if (got && r->elements == 3)
			CHECK_STR(r->element[2]->str, b.queue);
		freeReplyObject(r);
		if (!got)
			break;
		moved++;
	}
	CHECK(moved == 2);
	CHECK(llen(b.queue) == 2 && llen(b.inprog) == 0);
	/* the in-progress tail (fetched first) moves first and ends up at
	 * the queue's tail again, next in line */
	char *tail = test_redis_str(pool, "LINDEX", b.queue, "-1", NULL);
	CHECK_STR(tail, "b2");
	free(tail);
	CHECK_GET(b.lock, "1");
	CHECK_HGET(b.lock_info, "dead1", "0");
	CHECK_HGET(b.lock_info, "alive", "1");
	CHECK_RUN("(nil)", SCRIPT_REENQUEUE_POOL, 8, keys, 1, args);
	type_keys_del(&a);
	type_keys_del(&b);
}

static void
stale_locks_check(void)
{
	struct type_keys a, b, c;
	type_keys(&a, "A", "x");
	type_keys(&b, "B", "x");
	type_keys(&c, "C", "x");
	type_keys_del(&a);
	type_keys_del(&b);
	type_keys_del(&c);
	CHECK(test_redis_do(pool, "SET", a.lock, "5", NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", a.lock_info, "dead1", "3", "alive",
			    "2", NULL) == 0);
	CHECK(test_redis_do(pool, "SET", b.lock, "1", NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", b.lock_info, "dead1", "4",
			    NULL) == 0);
	CHECK(test_redis_do(pool, "SET", c.lock, "7", NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", c.lock_info, "alive", "7",
			    NULL) == 0);
	const char *keys[] = {a.lock, a.lock_info, b.lock,
			      b.lock_info, c.lock, c.lock_info};
	const char *args[] = {"dead1"};
	CHECK_RUN("ok", SCRIPT_STALE_LOCKS, 6, keys, 1, args);
	CHECK_GET(a.lock, "2");
	CHECK_HGET(a.lock_info, "dead1", NULL);
	CHECK_HGET(a.lock_info, "alive", "2");
	CHECK_GET(b.lock, "0"); /* went below 0: clamped */
	CHECK_HGET(b.lock_info, "dead1", NULL);
	CHECK_GET(c.lock, "7"); /* no share of dead1: untouched */
	CHECK_HGET(c.lock_info, "alive", "7");
	/* idempotent */
	CHECK_RUN("ok", SCRIPT_STALE_LOCKS, 6, keys, 1, args);
	CHECK_GET(a.lock, "2");
	type_keys_del(&a);
	type_keys_del(&b);
	type_keys_del(&c);
}

/* ---- Berth: idempotent finish, reconciliation of a live pool ---------- */

static void
finish_check(void)
{
	struct type_keys a;
	type_keys(&a, "F", "p1");
	type_keys_del(&a);
	const char *retry = NS ":retry";
	CHECK(test_redis_do(pool, "DEL", retry, NULL) == 0);
	CHECK(test_redis_do(pool, "LPUSH", a.inprog, "m1", "m2", NULL) == 0);
	CHECK(test_redis_do(pool, "SET", a.lock, "2", NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", a.lock_info, "p1", "2", "p2", "5", NULL) == 0);
	const char *keys[] = {a.inprog, a.lock, a.lock_info, retry};
	const char *args[] = {"p1", "m1", "100", "m1-retry"};
	CHECK_RUN("1", SCRIPT_FINISH, 4, keys, 4, args);
	CHECK(llen(a.inprog) == 1);
	CHECK_GET(a.lock, "1");
	CHECK_HGET(a.lock_info, "p1", "1");
	CHECK(zcard(retry) == 1);
	/* sent again (the first reply was lost): nothing changes */
	CHECK_RUN("0", SCRIPT_FINISH, 4, keys, 4, args);
	CHECK(llen(a.inprog) == 1);
	CHECK_GET(a.lock, "1");
	CHECK_HGET(a.lock_info, "p1", "1");
	CHECK(zcard(retry) == 1);
	/* no retry: three keys, two args */
	const char *args2[] = {"p1", "m2"};
	CHECK_RUN("1", SCRIPT_FINISH, 3, keys, 2, args2);
	CHECK(llen(a.inprog) == 0);
	CHECK_GET(a.lock, "0");
	CHECK_HGET(a.lock_info, "p1", "0");
	CHECK_HGET(a.lock_info, "p2", "5");
	CHECK(zcard(retry) == 1);
	type_keys_del(&a);
	CHECK(test_redis_do(pool, "DEL", retry, NULL) == 0);
}

/* Runs the reconcile script; the three integers of its reply. */
static void
reconcile(const struct type_keys *k, const char *const *held, int n,
	  long long out[3])
{
	const char *keys[] = {k->inprog, k->queue, k->lock, k->lock_info,
			      "{t}:berth:ready"};
	const char *args[9] = {"p1", "R"};
	for (int i = 0; i < n && i < 7; i++)
		args[i + 2] = held[i];
	redisReply *r = run(SCRIPT_RECONCILE, 5, keys, n + 2, args);
	out[0] = out[1] = out[2] = -1;
	CHECK(r->type == REDIS_REPLY_ARRAY && r->elements == 3);
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < 3 &&
			   i < r->elements; i++)
		out[i] = r->element[i]->integer;
	freeReplyObject(r);
}

static void
reconcile_check(void)
{
	struct type_keys a;
	type_keys(&a, "R", "p1");
	type_keys_del(&a);
	long long o[3];
	/* four claims, m2 twice; the workers hold one m2 */
	CHECK(test_redis_do(pool, "LPUSH", a.inprog, "m1", "m2", "m2", "m3", NULL) == 0);
	CHECK(test_redis_do(pool, "LPUSH", a.queue, "q0", NULL) == 0);
	CHECK(test_redis_do(pool, "SET", a.lock, "7", NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", a.lock_info, "p1", "4", "p2", "3", NULL) == 0);
	const char *held[] = {"m2"};
	reconcile(&a, held, 1, o);
	CHECK(o[0] == 3 && o[1] == 4 && o[2] == 1);
	CHECK(llen(a.inprog) == 1);
	char *left = reply_str(test_redis_cmd(pool, "LINDEX", a.inprog, "0", NULL));
	CHECK_STR(left, "m2");
	free(left);
	CHECK(llen(a.queue) == 4);
	/* the type is ready again */
	CHECK(test_redis_int(pool, "SISMEMBER", "{t}:berth:ready", "R", NULL) == 1);
	CHECK(test_redis_do(pool, "DEL", "{t}:berth:ready", NULL) == 0);
	/* put back at the tail: fetched before q0 */
	char *next = reply_str(test_redis_cmd(pool, "LINDEX", a.queue, "-1", NULL));
	CHECK(next && strcmp(next, "q0") != 0);
	free(next);
	CHECK_GET(a.lock, "4");
	CHECK_HGET(a.lock_info, "p1", "1");
	CHECK_HGET(a.lock_info, "p2", "3");
	/* again: nothing to do */
	reconcile(&a, held, 1, o);
	CHECK(o[0] == 0 && o[1] == 1 && o[2] == 1);
	CHECK_GET(a.lock, "4");
	/* a held message that is no longer listed (its finish went through
	 * meanwhile) is not counted */
	CHECK(test_redis_do(pool, "DEL", a.inprog, NULL) == 0);
	reconcile(&a, held, 1, o);
	CHECK(o[0] == 0 && o[1] == 1 && o[2] == 0);
	CHECK_GET(a.lock, "3");
	CHECK_HGET(a.lock_info, "p1", NULL);
	/* a stale share larger than lock: lock never goes below 0 */
	CHECK(test_redis_do(pool, "SET", a.lock, "1", NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", a.lock_info, "p1", "4", NULL) == 0);
	reconcile(&a, NULL, 0, o);
	CHECK(o[0] == 0 && o[1] == 4 && o[2] == 0);
	CHECK_GET(a.lock, "0");
	CHECK_HGET(a.lock_info, "p1", NULL);
	type_keys_del(&a);
}

/* ---- delete by score + id (spec 8.7) ------------------------------------ */

static void
zrem_by_id_check(void)
{
	const char *z = NS ":scheduled";
	CHECK(test_redis_do(pool, "DEL", z, NULL) == 0);
	const char *p1a = "{\"name\":\"S\",\"id\":\"p1\",\"t\":1,\"args\":"
			  "{\"_job_kind_periodic_\":\"100\"}}";
	const char *p1b = "{\"args\":null,\"t\":2,\"id\":\"p1\","
			  "\"name\":\"S\",\"unique\":true}";
	const char *p2 = "{\"name\":\"S\",\"id\":\"p2\",\"t\":1,\"args\":null}";
	const char *p1late = "{\"name\":\"S\",\"id\":\"p1\",\"t\":3,"
			     "\"args\":null}";
	CHECK(test_redis_do(pool, "ZADD", z, "100", p1a, "100", p1b, "100", p2,
			    "100", "junk", "200", p1late, NULL) == 0);
	const char *keys[] = {z};
	const char *args[] = {"100", "p1"};
	redisReply *r = run(SCRIPT_ZREM_BY_ID, 1, keys, 2, args);
	CHECK(r->type == REDIS_REPLY_ARRAY && r->elements == 2);
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
		bool s1 = strcmp(r->element[0]->str, p1a) == 0 ||
			  strcmp(r->element[1]->str, p1a) == 0;
		bool s2 = strcmp(r->element[0]->str, p1b) == 0 ||
			  strcmp(r->element[1]->str, p1b) == 0;
		CHECK(s1 && s2);
	}
	freeReplyObject(r);
	CHECK(zcard(z) == 3);
	r = test_redis_cmd(pool, "ZSCORE", z, p1late, NULL);
	CHECK(r && r->type == REDIS_REPLY_STRING);
	freeReplyObject(r);
	r = test_redis_cmd(pool, "ZSCORE", z, p2, NULL);
	CHECK(r && r->type == REDIS_REPLY_STRING);
	freeReplyObject(r);

	/* nothing left to remove: an empty array */
	r = run(SCRIPT_ZREM_BY_ID, 1, keys, 2, args);
	CHECK(r->type == REDIS_REPLY_ARRAY && r->elements == 0);
	freeReplyObject(r);
	const char *args2[] = {"200", "p1"};
	r = run(SCRIPT_ZREM_BY_ID, 1, keys, 2, args2);
	CHECK(r->type == REDIS_REPLY_ARRAY && r->elements == 1);
	freeReplyObject(r);
	CHECK(zcard(z) == 2);
	CHECK(test_redis_do(pool, "DEL", z, NULL) == 0);
}

/* ---- the periodic scheduler's scripts (spec 8.3-8.5, Q6, Q17) ---------- */

static double
zscore(const char *key, const char *member)
{
	redisReply *r = test_redis_cmd(pool, "ZSCORE", key, member, NULL);
	double v = r && r->type == REDIS_REPLY_STRING ? atof(r->str) : -999;
	freeReplyObject(r);
	return v;
}

static void
period_add_once_check(void)
{
	const char *z = NS ":period:policies";
	CHECK(test_redis_do(pool, "DEL", z, NULL) == 0);
	const char *keys[] = {z};
	const char *a5[] = {"5", "{\"id\":\"a\"}"};
	const char *b5[] = {"5", "{\"id\":\"b\"}"};
	const char *b6[] = {"6", "{\"id\":\"b\"}"};
	const char *a6[] = {"6", "{\"id\":\"a\"}"};
	CHECK_RUN("1", SCRIPT_PERIOD_ADD_ONCE, 1, keys, 2, a5);
	CHECK_RUN("0", SCRIPT_PERIOD_ADD_ONCE, 1, keys, 2, b5); /* taken */
	CHECK(zcard(z) == 1);
	CHECK(zscore(z, a5[1]) == 5);
	CHECK_RUN("1", SCRIPT_PERIOD_ADD_ONCE, 1, keys, 2, b6);
	CHECK_RUN("0", SCRIPT_PERIOD_ADD_ONCE, 1, keys, 2, a6);
	CHECK(zcard(z) == 2);
	CHECK(zscore(z, a5[1]) == 5 && zscore(z, b6[1]) == 6);
	CHECK(test_redis_do(pool, "DEL", z, NULL) == 0);
}

static void
period_trim_check(void)
{
	const char *z = NS ":executions:p";
	CHECK(test_redis_do(pool, "DEL", z, NS ":job_stats:p@1", NULL) == 0);
	CHECK(test_redis_do(pool, "ZADD", z, "-1", "p@1", "-1", "p@2", "-1",
			    "p@3", "100", "p@4", NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", NS ":job_stats:p@1", "status",
			    "Success", NULL) == 0);
	const char *keys[] = {z};
	const char *args[] = {NS ":job_stats:", "10"};
	/* finished and expired: p@2, p@3; p@1 has stats, p@4 is pending */
	CHECK_RUN("2", SCRIPT_PERIOD_TRIM, 1, keys, 2, args);
	CHECK(zcard(z) == 2);
	CHECK(zscore(z, "p@1") == -1 && zscore(z, "p@4") == 100);
	CHECK_RUN("0", SCRIPT_PERIOD_TRIM, 1, keys, 2, args);

	/* at most ARGV[2] looked at, oldest (lowest member) first */
	CHECK(test_redis_do(pool, "ZADD", z, "-1", "p@5", "-1", "p@6", "-1",
			    "p@7", NULL) == 0);
	const char *two[] = {NS ":job_stats:", "2"};
	CHECK_RUN("1", SCRIPT_PERIOD_TRIM, 1, keys, 2, two); /* p@1, p@5 */
	CHECK(zscore(z, "p@5") == -999 && zscore(z, "p@6") == -1);
	CHECK_RUN("2", SCRIPT_PERIOD_TRIM, 1, keys, 2, args);
	CHECK(zcard(z) == 2);
	CHECK(test_redis_do(pool, "DEL", z, NS ":job_stats:p@1", NULL) == 0);
}

static void
period_known_check(void)
{
	const char *z = NS ":executions:k";
	CHECK(test_redis_do(pool, "DEL", z, NULL) == 0);
	CHECK(test_redis_do(pool, "ZADD", z, "1", "k@1", "-1", "k@2",
			    NULL) == 0);
	const char *keys[] = {z};
	const char *args[] = {"k@1", "k@3", "k@2"};
	redisReply *r = run(SCRIPT_PERIOD_KNOWN, 1, keys, 3, args);
	CHECK(r->type == REDIS_REPLY_ARRAY && r->elements == 3);
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
		CHECK(r->element[0]->type == REDIS_REPLY_INTEGER &&
		      r->element[0]->integer == 1);
		CHECK(r->element[1]->integer == 0);
		CHECK(r->element[2]->integer == 1); /* finished still known */
	}
	freeReplyObject(r);
	CHECK(zcard(z) == 2); /* read only */
	CHECK(test_redis_do(pool, "DEL", z, NULL) == 0);
}

static void
period_unlock_check(void)
{
	const char *lock = NS ":period:lock";
	CHECK(test_redis_do(pool, "SET", lock, "node-a", "EX", "30",
			    NULL) == 0);
	const char *keys[] = {lock};
	const char *other[] = {"node-b"};
	const char *mine[] = {"node-a"};
	CHECK_RUN("0", SCRIPT_PERIOD_UNLOCK, 1, keys, 1, other);
	CHECK_GET(lock, "node-a");
	CHECK_RUN("1", SCRIPT_PERIOD_UNLOCK, 1, keys, 1, mine);
	CHECK_GET(lock, NULL);
	CHECK_RUN("0", SCRIPT_PERIOD_UNLOCK, 1, keys, 1, mine);
}

/* ---- EVALSHA / NOSCRIPT / loading ---------------------------------------- */

static void
runner_check(struct test_redis *tr)
{
	struct berr e;
	berr_clear(&e);
	CHECK_MSG(scripts_load_all(pool, &e) == 0, "%s", e.msg);
	for (int i = 0; i < SCRIPT__COUNT; i++) {
		CHECK(script_source((enum script_id)i) != NULL);
		CHECK(strcmp(script_name((enum script_id)i), "unknown") != 0);
	}
	CHECK(script_source(SCRIPT__COUNT) == NULL);

	/* every script is in the server's cache after loading */
	redisReply *r = test_redis_cmd(pool, "SCRIPT", "LOAD",
				       script_source(SCRIPT_ACK), NULL);
	char sha[41] = "";
	if (r && r->type == REDIS_REPLY_STRING)
		snprintf(sha, sizeof(sha), "%s", r->str);
	freeReplyObject(r);
	r = test_redis_cmd(pool, "SCRIPT", "EXISTS", sha, NULL);
	CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	      r->element[0]->integer == 1);
	freeReplyObject(r);

	/* SCRIPT FLUSH: the next run gets NOSCRIPT, reloads and retries */
	const char *keys[] = {NS ":jobs:N", NS ":unique:N:"};
	const char *args[] = {"msg"};
	CHECK(test_redis_do(pool, "DEL", keys[0], keys[1], NULL) == 0);
	CHECK_RUN("ok", SCRIPT_ENQUEUE_UNIQUE, 2, keys, 1, args);
	CHECK(test_redis_do(pool, "SCRIPT", "FLUSH", NULL) == 0);
	r = test_redis_cmd(pool, "SCRIPT", "EXISTS", sha, NULL);
	CHECK(r && r->type == REDIS_REPLY_ARRAY && r->element[0]->integer == 0);
	freeReplyObject(r);
	CHECK_RUN("dup", SCRIPT_ENQUEUE_UNIQUE, 2, keys, 1, args);
	CHECK(llen(keys[0]) == 1); /* ran exactly once */
	CHECK(test_redis_do(pool, "DEL", keys[0], keys[1], NULL) == 0);

	/* a restarted server (empty script cache, new connection) */
	CHECK(test_redis_restart(tr) == 0);
	r = NULL;
	for (int i = 0; i < 3 && !r; i++)
		r = script_run(pool, &e, SCRIPT_ENQUEUE_UNIQUE, 2, keys, 1,
			       args); /* the first may see the dead socket */
	/* a Lua string comes back as a bulk string */
	CHECK(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "ok") == 0);
	if (r)
		freeReplyObject(r);
	CHECK(llen(keys[0]) == 1);
	CHECK(test_redis_do(pool, "DEL", keys[0], keys[1], NULL) == 0);

	/* binary-safe variant: a key with a NUL byte */
	const char bkey[] = NS ":unique:B:\0x";
	const char *bkeys[] = {NS ":jobs:B", bkey};
	size_t blens[] = {strlen(NS ":jobs:B"), sizeof(bkey) - 1};
	r = script_run_lens(pool, &e, SCRIPT_ENQUEUE_UNIQUE, 2, bkeys, blens,
			    1, args, NULL);
	CHECK(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "ok") == 0);
	if (r)
		freeReplyObject(r);
	const char *ex[] = {"EXISTS", bkey};
	size_t exl[] = {6, sizeof(bkey) - 1};
	r = redis_command_argv(pool, &e, 2, ex, exl);
	CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
	if (r)
		freeReplyObject(r);
	r = test_redis_cmd(pool, "EXISTS", NS ":unique:B:", NULL);
	CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
	freeReplyObject(r);

	/* bad arguments */
	berr_clear(&e);
	r = script_run(pool, &e, SCRIPT__COUNT, 0, NULL, 0, NULL);
	CHECK(r == NULL && e.msg[0]);
	r = script_run(pool, &e, SCRIPT_ACK, -1, NULL, 0, NULL);
	CHECK(r == NULL);
	/* a Lua runtime error is a reply, not a connection error */
	CHECK(test_redis_do(pool, "SET", NS ":badlock", "abc", NULL) == 0);
	CHECK(test_redis_do(pool, "HSET", NS ":badlock_info", "dead1", "1",
			    NULL) == 0);
	const char *bad[] = {NS ":badlock", NS ":badlock_info"};
	const char *dead1[] = {"dead1"};
	r = script_run(pool, &e, SCRIPT_STALE_LOCKS, 2, bad, 1, dead1);
	CHECK(r && r->type == REDIS_REPLY_ERROR);
	if (r)
		freeReplyObject(r);
	CHECK(test_redis_do(pool, "DEL", NS ":badlock", NS ":badlock_info",
			    NULL) == 0);
}

/* Redis down: script_run fails with a message, no reply. */
static void
down_check(struct test_redis *tr)
{
	CHECK(test_redis_kill9(tr) == 0);
	struct berr e;
	berr_clear(&e);
	const char *keys[] = {"a", "b"};
	const char *args[] = {"m"};
	redisReply *r = script_run(pool, &e, SCRIPT_ENQUEUE_UNIQUE, 2, keys, 1,
				   args);
	CHECK(r == NULL);
	CHECK(e.msg[0] != '\0');
	if (r)
		freeReplyObject(r);
	berr_clear(&e);
	CHECK(scripts_load_all(pool, &e) < 0 && e.msg[0]);
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
	cas_cases_check();
	cas_counter_check();
	reset_check();
	ack_check();
	requeue_check();
	unique_check();
	reenqueue_check();
	stale_locks_check();
	finish_check();
	reconcile_check();
	zrem_by_id_check();
	period_add_once_check();
	period_trim_check();
	period_known_check();
	period_unlock_check();
	runner_check(&tr);
	down_check(&tr);
	redis_pool_free(pool);
	test_redis_stop(&tr);
	TEST_DONE();
}

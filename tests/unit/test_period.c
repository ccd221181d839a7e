/* test_period.c - the periodic scheduler (host/period.c) against a private
 * redis-server: policy JSON and execution message golden bytes, policy
 * creation (member bytes, unique score, stats), materialised executions
 * (stats, executions zset, scheduled messages, seconds-level crons), two
 * instances on one Redis producing no duplicates (also against Go-style
 * re-adds), the lock/timestamp protocol, enqueue rounds over good and bad
 * members, unscheduling (policy, pending messages, Stopped stats and
 * hooks), executions paging with the non_dead_only quirk, the start-up
 * cleanup of overdue messages (Q14) and the enqueuer thread. */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/gojson.h"
#include "store/message.h"
#include "periodic/period.h"
#include "store/period_store.h"
#include "store/queue.h"
#include "store/redis_conn.h"
#include "redis_harness.h"
#include "testlib.h"
#include "store/tracker.h"
#include "common/util.h"

#define NS "{berth_ptest}"
#define K_POLICIES NS ":period:policies"
#define K_SCHED NS ":scheduled"
#define K_LOCK NS ":period:lock"
#define K_LAST NS ":last_periodic_enqueue_h"
#define T0 1700000000LL /* 2023-11-14T22:13:20Z */

static struct redis_pool *rp;
static struct tracker *trk;
static struct queue *que;

static int64_t fake_now = T0;

static int64_t
clock_fn(void)
{
	return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}

static void
set_now(int64_t t)
{
	__atomic_store_n(&fake_now, t, __ATOMIC_SEQ_CST);
}

/* ---- Redis helpers ---------------------------------------------------- */

static void
flush(void)
{
	CHECK(test_redis_do(rp, "FLUSHDB", NULL) == 0);
}

static char *
stat_field(const char *id, const char *field)
{
	char *key = xasprintf(NS ":job_stats:%s", id);
	char *v = test_redis_str(rp, "HGET", key, field, NULL);
	free(key);
	return v;
}

static void
check_field(const char *id, const char *field, const char *want)
{
	char *v = stat_field(id, field);
	CHECK_MSG(v && strcmp(v, want) == 0, "%s.%s = %s, want %s", id, field,
		  v ? v : "(nil)", want);
	free(v);
}

/* Number of members of NS:scheduled whose id is policy_id. */
static int
count_scheduled(const char *policy_id)
{
	redisReply *r = test_redis_cmd(rp, "ZRANGE", K_SCHED, "0", "-1", NULL);
	CHECK(r && r->type == REDIS_REPLY_ARRAY);
	int n = 0;
	for (size_t i = 0; r && i < r->elements; i++) {
		struct job_message m;
		struct berr e;
		if (message_parse(r->element[i]->str, r->element[i]->len, &m,
				  &e) == 0) {
			n += strcmp(m.id, policy_id) == 0;
			message_fini(&m);
		}
	}
	if (r)
		freeReplyObject(r);
	return n;
}

/* ---- hook events -------------------------------------------------------- */

static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static char ev_log[8192];

static void
on_event(void *data, const struct job_stats *snap, const char *check_in)
{
	(void)data, (void)check_in;
	pthread_mutex_lock(&ev_mu);
	size_t l = strlen(ev_log);
	snprintf(ev_log + l, sizeof(ev_log) - l, "%s=%s;", snap->id,
		 snap->status);
	pthread_mutex_unlock(&ev_mu);
}

static bool
saw_event(const char *id, const char *status)
{
	char *needle = xasprintf("%s=%s;", id, status);
	pthread_mutex_lock(&ev_mu);
	bool found = strstr(ev_log, needle) != NULL;
	pthread_mutex_unlock(&ev_mu);
	free(needle);
	return found;
}

static struct period *
new_period(void)
{
	struct period *pd = period_new(rp, NS, trk, que, NULL);
	period_set_clock(pd, clock_fn);
	return pd;
}

/* ---- golden bytes ------------------------------------------------------- */

static void
test_golden(void)
{
	/* spec 3.6 example member */
	struct period_policy p = {
		.id = "0123456789abcdef01234567",
		.job_name = "SCHEDULER",
		.cron_spec = "0 0 * * * *",
		.web_hook_url = "http://core:8080/service/notifications/tasks/77",
	};
	char *m = period_policy_encode(&p);
	CHECK_STR(m, "{\"id\":\"0123456789abcdef01234567\",\"job_name\":"
		     "\"SCHEDULER\",\"cron_spec\":\"0 0 * * * *\","
		     "\"web_hook_url\":\"http://core:8080/service/"
		     "notifications/tasks/77\"}");
	free(m);
	/* Appendix B step 3: the execution message at E */
	m = period_execution_message(&p, 1700003600);
	CHECK_STR(m, "{\"name\":\"SCHEDULER\",\"id\":\"0123456789abcdef"
		     "01234567\",\"t\":1700003600,\"args\":{"
		     "\"_job_kind_periodic_\":\"1700003600\"}}");
	free(m);
	char *eid = period_execution_id(p.id, 1700003600);
	CHECK_STR(eid, "0123456789abcdef01234567@1700003600");
	free(eid);

	/* parameters: a Go map (sorted keys), Go escapes and numbers; the
	 * struct keys stay in declaration order; numeric_id when set; a
	 * parameter named like the marker is replaced by it */
	cJSON *params = cJSON_Parse(
		"{\"zeta\":[1,2.5,1e21,1e-7],\"alpha\":\"a<b>&c/d\","
		"\"_job_kind_periodic_\":\"evil\",\"Beta\":{\"y\":null,"
		"\"x\":true},\"n\":100000000}");
	struct period_policy q = {
		.id = "abcdefabcdefabcdefabcdef",
		.job_name = "DEMO",
		.cron_spec = "TZ=UTC */5 * * * * *",
		.job_params = params,
		.numeric_id = 1700000004,
	};
	m = period_policy_encode(&q);
	CHECK_STR(m, "{\"id\":\"abcdefabcdefabcdefabcdef\",\"job_name\":"
		     "\"DEMO\",\"cron_spec\":\"TZ=UTC */5 * * * * *\","
		     "\"job_params\":{\"Beta\":{\"x\":true,\"y\":null},"
		     "\"_job_kind_periodic_\":\"evil\",\"alpha\":"
		     "\"a\\u003cb\\u003e\\u0026c/d\",\"n\":100000000,"
		     "\"zeta\":[1,2.5,1e+21,1e-7]},\"numeric_id\":1700000004}");
	free(m);
	m = period_execution_message(&q, 1700000005);
	CHECK_STR(m, "{\"name\":\"DEMO\",\"id\":\"abcdefabcdefabcdefabcdef\","
		     "\"t\":1700000005,\"args\":{\"Beta\":{\"x\":true,\"y\":"
		     "null},\"_job_kind_periodic_\":\"1700000005\",\"alpha\":"
		     "\"a\\u003cb\\u003e\\u0026c/d\",\"n\":100000000,"
		     "\"zeta\":[1,2.5,1e+21,1e-7]}}");
	free(m);
	/* the policy is not changed by building a message */
	CHECK_STR(cJSON_GetObjectItem(params, PERIOD_MARKER)->valuestring,
		  "evil");
	/* empty params are omitted */
	cJSON *empty = cJSON_CreateObject();
	q.job_params = empty;
	q.numeric_id = 0;
	m = period_policy_encode(&q);
	CHECK_STR(m, "{\"id\":\"abcdefabcdefabcdefabcdef\",\"job_name\":"
		     "\"DEMO\",\"cron_spec\":\"TZ=UTC */5 * * * * *\"}");
	free(m);
	cJSON_Delete(empty);
	cJSON_Delete(params);
}

static void
test_policy_parse(void)
{
	struct period_policy p;
	struct berr e;
	const char *raw = "{\"ID\":\"aaa\",\"Job_Name\":\"DEMO\",\"cron_spec\":"
			  "\"0 0 0 * * *\",\"job_params\":{\"k\":1},"
			  "\"web_hook_url\":null,\"numeric_id\":12,"
			  "\"extra\":[1],\"job_name\":\"LAST\"}";
	CHECK(period_policy_parse(raw, strlen(raw), &p, &e) == 0);
	CHECK_STR(p.id, "aaa");
	CHECK_STR(p.job_name, "LAST");
	CHECK(p.web_hook_url == NULL);
	CHECK(p.numeric_id == 12);
	CHECK(cJSON_GetObjectItem(p.job_params, "k") != NULL);
	CHECK(period_policy_validate(&p, &e) == 0);
	period_policy_fini(&p);

	const char *bad[] = {"[1]", "{\"id\":5}", "{\"job_params\":[]}",
			     "{\"numeric_id\":1.5}", "not json"};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		CHECK_MSG(period_policy_parse(bad[i], strlen(bad[i]), &p, &e) <
				  0,
			  "%s parsed", bad[i]);

	struct {
		struct period_policy p;
		const char *msg;
	} inval[] = {
		{{.id = " ", .job_name = "X", .cron_spec = "* * * * * *"},
		 "missing ID in the periodic job policy object"},
		{{.id = "a", .job_name = "", .cron_spec = "* * * * * *"},
		 "missing job name in the periodic job policy object"},
		{{.id = "a", .job_name = "X", .cron_spec = "* * * * *"},
		 "expected exactly 6 fields, found 5: [* * * * *]"},
		{{.id = "a", .job_name = "X", .cron_spec = "* * * * * *",
		  .web_hook_url = "http://host:port/x"},
		 "bad web hook URL: http://host:port/x"},
		{{.id = "a", .job_name = "X", .cron_spec = "* * * * * *",
		  .web_hook_url = ":nothing"},
		 "bad web hook URL: :nothing"},
		{{.id = "a", .job_name = "X", .cron_spec = "* * * * * *",
		  .web_hook_url = "http://a/%zz"},
		 "bad web hook URL: http://a/%zz"},
	};
	for (size_t i = 0; i < ARRAY_LEN(inval); i++) {
		berr_clear(&e);
		CHECK(period_policy_validate(&inval[i].p, &e) < 0);
		CHECK_STR(e.msg, inval[i].msg);
	}
	const char *good_urls[] = {"http://core:8080/service/notifications/"
				   "tasks/77",
				   "https://[::1]:443/x?q=%zz", "relative/path",
				   "   "};
	for (size_t i = 0; i < ARRAY_LEN(good_urls); i++) {
		struct period_policy g = {.id = "a", .job_name = "X",
					  .cron_spec = "* * * * * *",
					  .web_hook_url =
						  (char *)good_urls[i]};
		berr_clear(&e);
		CHECK_MSG(period_policy_validate(&g, &e) == 0, "%s: %s",
			  good_urls[i], e.msg);
	}
}

/* ---- creation and materialising ----------------------------------------- */

static void
test_create(void)
{
	flush();
	set_now(T0);
	struct period *pd = new_period();
	cJSON *params = cJSON_Parse("{\"image\":\"demo-1\",\"n\":3}");
	struct job_stats st;
	struct berr e;
	berr_clear(&e);
	int rc = period_create_policy(pd, "DEMO", "0 * * * * *", params,
				      "http://core/tasks/1", &st, &e);
	CHECK_MSG(rc == 0, "%s", e.msg);
	if (rc < 0) {
		period_free(pd);
		cJSON_Delete(params);
		return;
	}
	/* the response stats */
	CHECK_STR(st.kind, "Periodic");
	CHECK_STR(st.status, "Scheduled");
	CHECK(!st.unique);
	CHECK(st.numeric_policy_id >= T0 && st.numeric_policy_id <= T0 + 9);
	CHECK(st.enqueue_time == T0 && st.run_at == 0);
	cJSON *j = job_stats_to_json(&st, false);
	char *js = gojson_encode(j);
	char *want = xasprintf(
		"{\"cron_spec\":\"0 * * * * *\",\"enqueue_time\":%lld,"
		"\"id\":\"%s\",\"kind\":\"Periodic\",\"name\":\"DEMO\","
		"\"numeric_policy_id\":%lld,\"parameters\":{\"image\":"
		"\"demo-1\",\"n\":3},\"ref_link\":\"/api/v1/jobs/%s\","
		"\"revision\":%lld,\"status\":\"Scheduled\",\"unique\":false,"
		"\"update_time\":%lld,\"web_hook_url\":\"http://core/tasks/1\"}",
		(long long)T0, st.id, (long long)st.numeric_policy_id, st.id,
		(long long)st.revision, (long long)st.update_time);
	CHECK_STR(js, want);
	free(js);
	free(want);
	cJSON_Delete(j);

	/* the policy member, byte for byte, at the numeric id */
	char sc[24];
	snprintf(sc, sizeof(sc), "%lld", (long long)st.numeric_policy_id);
	redisReply *r =
		test_redis_cmd(rp, "ZRANGEBYSCORE", K_POLICIES, sc, sc, NULL);
	CHECK(r && r->elements == 1);
	if (r && r->elements == 1) {
		char *wantp = xasprintf(
			"{\"id\":\"%s\",\"job_name\":\"DEMO\",\"cron_spec\":"
			"\"0 * * * * *\",\"job_params\":{\"image\":\"demo-1\","
			"\"n\":3},\"web_hook_url\":\"http://core/tasks/1\"}",
			st.id);
		CHECK_STR(r->element[0]->str, wantp);
		free(wantp);
	}
	if (r)
		freeReplyObject(r);
	/* the stored policy stats */
	check_field(st.id, "kind", "Periodic");
	check_field(st.id, "status", "Scheduled");
	check_field(st.id, "numeric_policy_id", sc);
	check_field(st.id, "cron_spec", "0 * * * * *");
	check_field(st.id, "parameters", "{\"image\":\"demo-1\",\"n\":3}");

	/* executions of the first 240 s: minutes :14 :15 :16 :17 */
	static const int64_t runs[] = {T0 + 40, T0 + 100, T0 + 160, T0 + 220};
	CHECK(test_redis_int(rp, "ZCARD", K_SCHED, NULL) == 4);
	char *ekey = xasprintf(NS ":executions:%s", st.id);
	CHECK(test_redis_int(rp, "ZCARD", ekey, NULL) == 4);
	for (size_t i = 0; i < ARRAY_LEN(runs); i++) {
		char *eid = period_execution_id(st.id, runs[i]);
		char score[24];
		snprintf(score, sizeof(score), "%lld", (long long)runs[i]);
		CHECK(test_redis_int(rp, "ZSCORE", ekey, eid, NULL) == runs[i]);
		/* golden message at its score */
		redisReply *m = test_redis_cmd(rp, "ZRANGEBYSCORE", K_SCHED,
					       score, score, NULL);
		char *wantm = xasprintf(
			"{\"name\":\"DEMO\",\"id\":\"%s\",\"t\":%s,\"args\":{"
			"\"_job_kind_periodic_\":\"%s\",\"image\":\"demo-1\","
			"\"n\":3}}",
			st.id, score, score);
		CHECK(m && m->elements == 1);
		if (m && m->elements == 1)
			CHECK_STR(m->element[0]->str, wantm);
		if (m)
			freeReplyObject(m);
		free(wantm);
		/* execution stats */
		check_field(eid, "id", eid);
		check_field(eid, "kind", "Scheduled");
		check_field(eid, "status", "Scheduled");
		check_field(eid, "upstream_job_id", st.id);
		check_field(eid, "run_at", score);
		check_field(eid, "cron_spec", "0 * * * * *");
		check_field(eid, "web_hook_url", "http://core/tasks/1");
		check_field(eid, "parameters", "{\"image\":\"demo-1\",\"n\":3}");
		char *ref = xasprintf("/api/v1/jobs/%s", eid);
		check_field(eid, "ref_link", ref);
		free(ref);
		char *enq = xasprintf("%lld", (long long)T0);
		check_field(eid, "enqueue_time", enq);
		free(enq);
		free(eid);
	}
	free(ekey);
	job_stats_fini(&st);

	/* seconds-level: every execution of the horizon */
	berr_clear(&e);
	CHECK(period_create_policy(pd, "DEMO", "*/2 * * * * *", NULL, NULL,
				   &st, &e) == 0);
	CHECK(count_scheduled(st.id) == 119);
	job_stats_fini(&st);
	/* a cron with no next time creates the policy and no execution */
	CHECK(period_create_policy(pd, "DEMO", "0 0 0 30 2 *", NULL, NULL,
				   &st, &e) == 0);
	CHECK(count_scheduled(st.id) == 0);
	job_stats_fini(&st);
	/* invalid ones are refused and leave nothing behind */
	long long before = test_redis_int(rp, "ZCARD", K_POLICIES, NULL);
	berr_clear(&e);
	CHECK(period_create_policy(pd, "DEMO", "* * * * *", NULL, NULL, &st,
				   &e) < 0);
	CHECK_STR(e.msg, "expected exactly 6 fields, found 5: [* * * * *]");
	CHECK(period_create_policy(pd, "DEMO", "* * * * * *", NULL, "http://x:y",
				   &st, &e) < 0);
	CHECK_STR(e.msg, "bad web hook URL: http://x:y");
	CHECK(test_redis_int(rp, "ZCARD", K_POLICIES, NULL) == before);

	cJSON_Delete(params);
	period_free(pd);
}

/* Q6: policies created in the same second get distinct scores. */
static void
test_unique_scores(void)
{
	flush();
	set_now(T0);
	struct period *pd = new_period();
	for (int i = 0; i < 14; i++) {
		struct job_stats st;
		struct berr e;
		CHECK(period_create_policy(pd, "DEMO", "0 0 0 1 1 *", NULL, NULL,
					   &st, &e) == 0);
		job_stats_fini(&st);
	}
	redisReply *r = test_redis_cmd(rp, "ZRANGE", K_POLICIES, "0", "-1",
				       "WITHSCORES", NULL);
	CHECK(r && r->elements == 28);
	long long prev = -1;
	for (size_t i = 1; r && i < r->elements; i += 2) {
		long long s = strtoll(r->element[i]->str, NULL, 10);
		CHECK(s > prev); /* sorted and distinct */
		CHECK(s >= T0 && s < T0 + 30);
		CHECK(test_redis_int(rp, "ZCOUNT", K_POLICIES,
				     r->element[i]->str, r->element[i]->str,
				     NULL) == 1);
		prev = s;
	}
	/* the first ten take T0..T0+9 */
	CHECK(test_redis_int(rp, "ZCOUNT", K_POLICIES, "1700000000",
			     "1700000009", NULL) == 10);
	if (r)
		freeReplyObject(r);
	period_free(pd);
}

struct race {
	struct period *pd;
	struct period_policy *p;
	int rc;
};

static void *
race_main(void *arg)
{
	struct race *rc = arg;
	struct berr e;
	rc->rc = period_materialise(rc->pd, rc->p, T0, &e);
	return NULL;
}

/* Two instances materialising the same window: one execution each. */
static void
test_two_instances(void)
{
	flush();
	set_now(T0);
	struct period *a = new_period();
	struct period *b = new_period();
	period_set_node_id(b, "node-b");
	struct period_policy p = {
		.id = "feedfeedfeedfeedfeedfeed",
		.job_name = "NOOP",
		.cron_spec = "*/3 * * * * *",
		.job_params = cJSON_Parse("{\"x\":1}"),
	};
	struct berr e;
	int na = period_materialise(a, &p, T0, &e);
	CHECK(na == 80); /* T0 is :20 s, so T0+1, T0+4, ..., T0+238 */
	CHECK(period_materialise(b, &p, T0, &e) == 0);
	CHECK(test_redis_int(rp, "ZCARD", K_SCHED, NULL) == 80);
	/* a later, overlapping round only adds the new tail */
	CHECK(period_materialise(b, &p, T0 + 120, &e) == 40);
	CHECK(test_redis_int(rp, "ZCARD", K_SCHED, NULL) == 120);
	CHECK(test_redis_int(rp, "ZCARD",
			     NS ":executions:feedfeedfeedfeedfeedfeed",
			     NULL) == 120);

	/* Go re-adds executions it already wrote: the same bytes, so the
	 * zset does not grow (simulated by forgetting the executions) */
	CHECK(test_redis_do(rp, "DEL",
			    NS ":executions:feedfeedfeedfeedfeedfeed",
			    NULL) == 0);
	CHECK(period_materialise(a, &p, T0 + 120, &e) == 80);
	CHECK(test_redis_int(rp, "ZCARD", K_SCHED, NULL) == 120);

	/* both at once, from two threads, on a fresh Redis */
	flush();
	struct race ra = {a, &p, -1}, rb = {b, &p, -1};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, race_main, &ra);
	pthread_create(&tb, NULL, race_main, &rb);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK(ra.rc >= 0 && rb.rc >= 0 && ra.rc + rb.rc >= 80);
	CHECK(test_redis_int(rp, "ZCARD", K_SCHED, NULL) == 80);
	cJSON_Delete(p.job_params);
	period_free(a);
	period_free(b);
}

/* ---- the enqueuer ------------------------------------------------------- */

static void
test_should_enqueue(void)
{
	flush();
	set_now(T0);
	struct period *a = new_period();
	struct period *b = new_period();
	struct berr e;
	CHECK(period_should_enqueue(a, &e) == 1);
	char *last = test_redis_str(rp, "GET", K_LAST, NULL);
	CHECK_STR(last, "1700000000");
	free(last);
	CHECK(test_redis_int(rp, "EXISTS", K_LOCK, NULL) == 0); /* released */
	CHECK(period_should_enqueue(b, &e) == 0);  /* too early */
	set_now(T0 + 120);
	CHECK(period_should_enqueue(b, &e) == 0); /* not older than 120 s */
	set_now(T0 + 121);
	/* someone else holds the lock: no round, and the lock stays */
	CHECK(test_redis_do(rp, "SET", K_LOCK, "other-node", "EX", "30",
			    NULL) == 0);
	CHECK(period_should_enqueue(b, &e) == 0);
	char *holder = test_redis_str(rp, "GET", K_LOCK, NULL);
	CHECK_STR(holder, "other-node");
	free(holder);
	CHECK(test_redis_do(rp, "DEL", K_LOCK, NULL) == 0);
	CHECK(period_should_enqueue(b, &e) == 1);
	last = test_redis_str(rp, "GET", K_LAST, NULL);
	CHECK_STR(last, "1700000121");
	free(last);
	/* garbage in the timestamp counts as missing */
	CHECK(test_redis_do(rp, "SET", K_LAST, "yesterday", NULL) == 0);
	CHECK(period_should_enqueue(a, &e) == 1);
	period_free(a);
	period_free(b);
}

static void
test_enqueue_all(void)
{
	flush();
	set_now(T0);
	struct period *pd = new_period();
	struct berr e;
	struct job_stats st;
	CHECK(period_create_policy(pd, "DEMO", "0 * * * * *", NULL, NULL, &st,
				   &e) == 0);
	/* foreign members: malformed JSON, a bad cron, a Go-written policy
	 * with numeric_id and other key spelling */
	CHECK(test_redis_do(rp, "ZADD", K_POLICIES, "1", "{not json",
			    NULL) == 0);
	CHECK(test_redis_do(rp, "ZADD", K_POLICIES, "2",
			    "{\"id\":\"badbadbadbadbadbadbadbad\","
			    "\"job_name\":\"X\","
			    "\"cron_spec\":\"61 * * * * *\"}",
			    NULL) == 0);
	CHECK(test_redis_do(rp, "ZADD", K_POLICIES, "3",
			    "{\"id\":\"a0a0a0a0a0a0a0a0a0a0a0a0\","
			    "\"job_name\":\"GOJOB\","
			    "\"cron_spec\":\"30 * * * * *\",\"numeric_id\":3}",
			    NULL) == 0);
	/* two minutes later: the DEMO policy gets :16 :17 (known), :18 :19 */
	set_now(T0 + 120);
	int n = period_enqueue_all(pd, &e);
	CHECK_MSG(n == 2 + 4, "round wrote %d: %s", n, e.msg);
	CHECK(count_scheduled(st.id) == 6);
	CHECK(count_scheduled("a0a0a0a0a0a0a0a0a0a0a0a0") == 4);
	CHECK(count_scheduled("badbadbadbadbadbadbadbad") == 0);

	/* Q17: finished executions whose stats expired are forgotten */
	char *ekey = xasprintf(NS ":executions:%s", st.id);
	char *gone = xasprintf("%s@1600000000", st.id);
	char *kept = xasprintf("%s@1600000060", st.id);
	char *kkey = xasprintf(NS ":job_stats:%s", kept);
	char *pend = xasprintf("%s@1600000120", st.id);
	CHECK(test_redis_do(rp, "ZADD", ekey, "-1", gone, "-1", kept,
			    "1600000120", pend, NULL) == 0);
	CHECK(test_redis_do(rp, "HSET", kkey, "status", "Success", NULL) == 0);
	set_now(T0 + 240);
	CHECK(period_enqueue_all(pd, &e) >= 0);
	CHECK(test_redis_int(rp, "ZSCORE", ekey, gone,
			     NULL) == TEST_REDIS_NOINT); /* nil */
	CHECK(test_redis_int(rp, "ZSCORE", ekey, kept, NULL) == -1);
	CHECK(test_redis_int(rp, "ZSCORE", ekey, pend, NULL) == 1600000120);
	CHECK(test_redis_int(rp, "ZCARD", ekey, NULL) == 8 + 2);
	free(ekey);
	free(gone);
	free(kept);
	free(kkey);
	free(pend);
	job_stats_fini(&st);
	period_free(pd);
}

/* ---- unscheduling ------------------------------------------------------- */

static void
test_unschedule(void)
{
	flush();
	set_now(T0);
	struct period *pd = new_period();
	struct berr e;
	struct job_stats st;
	CHECK(period_create_policy(pd, "DEMO", "*/10 * * * * *", NULL,
				   "http://core/tasks/9", &st, &e) == 0);
	CHECK(count_scheduled(st.id) == 23); /* T0+10 .. T0+230 */
	/* one execution already runs, one finished: their messages have
	 * left NS:scheduled */
	char *run_id = period_execution_id(st.id, T0 + 10);
	char *done_id = period_execution_id(st.id, T0 + 20);
	char *k_run = xasprintf(NS ":job_stats:%s", run_id);
	char *k_done = xasprintf(NS ":job_stats:%s", done_id);
	char *ekey = xasprintf(NS ":executions:%s", st.id);
	CHECK(test_redis_do(rp, "HSET", k_run, "status", "Running", NULL) == 0);
	CHECK(test_redis_do(rp, "ZREMRANGEBYSCORE", K_SCHED, "1700000010",
			    "1700000020", NULL) == 0);
	CHECK(test_redis_do(rp, "HSET", k_done, "status", "Success",
			    NULL) == 0);
	CHECK(test_redis_do(rp, "ZADD", ekey, "XX", "-1", done_id, NULL) == 0);

	CHECK(period_unschedule(pd, st.id, &e) == 0);
	CHECK(test_redis_int(rp, "ZCARD", K_POLICIES, NULL) == 0);
	check_field(st.id, "status", "Stopped");
	CHECK(saw_event(st.id, "Stopped"));
	/* every pending message is gone */
	CHECK(count_scheduled(st.id) == 0);
	check_field(run_id, "status", "Stopped");
	check_field(done_id, "status", "Success");
	char *other = period_execution_id(st.id, T0 + 200);
	check_field(other, "status", "Stopped");
	CHECK(saw_event(other, "Stopped"));
	/* stopped ones are finished now; nothing expired, nothing trimmed */
	CHECK(test_redis_int(rp, "ZSCORE", ekey, other, NULL) == -1);
	CHECK(test_redis_int(rp, "ZSCORE", ekey, run_id, NULL) == -1);
	CHECK(test_redis_int(rp, "ZCARD", ekey, NULL) == 23);
	CHECK(test_redis_int(rp, "ZCOUNT", ekey, "0", "+inf", NULL) == 0);
	/* a round afterwards adds nothing for this policy */
	set_now(T0 + 130);
	CHECK(period_enqueue_all(pd, &e) == 0);
	CHECK(count_scheduled(st.id) == 0);

	/* stopping twice is fine */
	CHECK(period_unschedule(pd, st.id, &e) == 0);
	/* unknown ids */
	CHECK(period_unschedule(pd, "000000000000000000000000", &e) == 1);
	/* stats lost, policy still there: found by scanning the policies */
	struct job_stats st2;
	CHECK(period_create_policy(pd, "DEMO", "0 0 0 1 1 *", NULL, NULL,
				   &st2, &e) == 0);
	char *k2 = xasprintf(NS ":job_stats:%s", st2.id);
	CHECK(test_redis_do(rp, "DEL", k2, NULL) == 0);
	CHECK(period_unschedule(pd, st2.id, &e) == 0);
	CHECK(test_redis_int(rp, "ZCARD", K_POLICIES, NULL) == 0);
	/* stats of a non-periodic job: an error, nothing stopped */
	CHECK(test_redis_do(rp, "HSET", k2, "id", st2.id, "kind", "Generic",
			    "status", "Pending", NULL) == 0);
	berr_clear(&e);
	CHECK(period_unschedule(pd, st2.id, &e) < 0);
	char *want = xasprintf("numeric ID not found for job: %s", st2.id);
	CHECK_STR(e.msg, want);
	check_field(st2.id, "status", "Pending");
	free(want);
	free(k2);
	job_stats_fini(&st2);

	free(other);
	free(run_id);
	free(done_id);
	free(k_run);
	free(k_done);
	free(ekey);
	job_stats_fini(&st);
	period_free(pd);
}

/* ---- executions listing ------------------------------------------------- */

static void
test_list_executions(void)
{
	flush();
	struct period *pd = new_period();
	const char *key = NS ":executions:pol";
	CHECK(test_redis_do(rp, "ZADD", key, "100", "pol@100", "200", "pol@200",
			    "300", "pol@300", "-1", "pol@50", "-1", "pol@60",
			    NULL) == 0);
	char **ids;
	size_t n;
	int64_t total;
	struct berr e;
	CHECK(period_list_executions(pd, "pol", 1, 2, -1, &ids, &n, &total,
				     &e) == 0);
	CHECK(total == 5 && n == 2);
	CHECK_STR(ids[0], "pol@300");
	CHECK_STR(ids[1], "pol@200");
	CHECK(ids[2] == NULL);
	period_ids_free(ids);
	CHECK(period_list_executions(pd, "pol", 3, 2, -1, &ids, &n, &total,
				     &e) == 0);
	CHECK(total == 5 && n == 1); /* finished ones sort last */
	CHECK(n == 1 && (strcmp(ids[0], "pol@50") == 0 ||
			 strcmp(ids[0], "pol@60") == 0));
	period_ids_free(ids);
	CHECK(period_list_executions(pd, "pol", 4, 2, -1, &ids, &n, &total,
				     &e) == 0);
	CHECK(total == 5 && n == 0 && ids[0] == NULL);
	period_ids_free(ids);
	/* non_dead_only=true: only scores >= 0 */
	CHECK(period_list_executions(pd, "pol", 1, 10, 1, &ids, &n, &total,
				     &e) == 0);
	CHECK(total == 3 && n == 3);
	CHECK_STR(ids[0], "pol@300");
	CHECK_STR(ids[2], "pol@100");
	period_ids_free(ids);
	CHECK(period_list_executions(pd, "pol", 2, 2, 1, &ids, &n, &total,
				     &e) == 0);
	CHECK(total == 3 && n == 1);
	CHECK_STR(ids[0], "pol@100");
	period_ids_free(ids);
	/* non_dead_only=false: nothing (quirk Q4) */
	CHECK(period_list_executions(pd, "pol", 1, 10, 0, &ids, &n, &total,
				     &e) == 0);
	CHECK(total == 0 && n == 0);
	period_ids_free(ids);
	/* no zset at all */
	CHECK(period_list_executions(pd, "nope", 1, 10, -1, &ids, &n, &total,
				     &e) == 0);
	CHECK(total == 0 && n == 0);
	period_ids_free(ids);
	period_free(pd);
}

/* ---- start-up cleanup (spec 8.7, Q14) ----------------------------------- */

static void
save_stats(const char *id, const char *kind, const char *status,
	   int64_t run_at, const char *upstream)
{
	struct job_stats st;
	memset(&st, 0, sizeof(st));
	st.id = xstrdup(id);
	st.name = xstrdup("DEMO");
	st.kind = xstrdup(kind);
	st.status = xstrdup(status);
	st.run_at = run_at;
	st.upstream_job_id = upstream ? xstrdup(upstream) : NULL;
	/* status events are for jobs with a hook (tracker.h) */
	st.web_hook_url = xstrdup("http://127.0.0.1:9/hook");
	struct berr e;
	CHECK_MSG(tracker_save(trk, &st, &e) == 0, "%s", e.msg);
	job_stats_fini(&st);
}

static void
test_clear_dirty(void)
{
	flush();
	int64_t now = util_now();
	set_now(now);
	struct period *pd = new_period();
	char old[24], fresh[24];
	snprintf(old, sizeof(old), "%lld", (long long)(now - 300));
	snprintf(fresh, sizeof(fresh), "%lld", (long long)(now - 100));

	/* an overdue Scheduled job, a unique one, an overdue execution, a
	 * recent job, garbage, and an overdue job already Stopped */
	save_stats("aaaaaaaaaaaaaaaaaaaaaaaa", "Scheduled", "Scheduled",
		   now - 300, NULL);
	char *m1 = xasprintf("{\"name\":\"DEMO\",\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaa"
			     "\",\"t\":1,\"args\":{\"k\":1}}");
	char *m2 = xasprintf("{\"name\":\"DEMO\",\"id\":\"bbbbbbbbbbbbbbbbbbbbbbbb"
			     "\",\"t\":1,\"args\":{\"u\":1},\"unique\":true}");
	char *eid = xasprintf("pppppppppppppppppppppppp@%s", old);
	save_stats(eid, "Scheduled", "Scheduled", now - 300,
		   "pppppppppppppppppppppppp");
	char *m3 = xasprintf("{\"name\":\"DEMO\",\"id\":\"pppppppppppppppppppppppp"
			     "\",\"t\":%s,\"args\":{\"_job_kind_periodic_\":"
			     "\"%s\"}}",
			     old, old);
	save_stats("cccccccccccccccccccccccc", "Scheduled", "Scheduled",
		   now - 100, NULL);
	char *m4 = xasprintf("{\"name\":\"DEMO\",\"id\":\"cccccccccccccccccccccccc"
			     "\",\"t\":1,\"args\":null}");
	save_stats("dddddddddddddddddddddddd", "Scheduled", "Stopped",
		   now - 300, NULL);
	char *m5 = xasprintf("{\"name\":\"DEMO\",\"id\":\"dddddddddddddddddddddddd"
			     "\",\"t\":1,\"args\":null}");
	CHECK(test_redis_do(rp, "ZADD", K_SCHED, old, m1, old, m2, old, m3,
			    fresh, m4, old, "{garbage", old, m5, NULL) == 0);
	CHECK(test_redis_do(rp, "SET", NS ":unique:DEMO:{\"u\":1}\n", "1",
			    NULL) == 0);

	struct berr e;
	berr_clear(&e);
	int n = period_clear_dirty(pd, &e);
	CHECK_MSG(n == 4, "removed %d: %s", n, e.msg);
	/* fresh + garbage */
	CHECK(test_redis_int(rp, "ZCARD", K_SCHED, NULL) == 2);
	CHECK(test_redis_int(rp, "ZSCORE", K_SCHED, m4, NULL) == now - 100);
	CHECK(test_redis_int(rp, "EXISTS", NS ":unique:DEMO:{\"u\":1}\n",
			     NULL) == 0);
	check_field("aaaaaaaaaaaaaaaaaaaaaaaa", "status", "Error");
	CHECK(saw_event("aaaaaaaaaaaaaaaaaaaaaaaa", "Error"));
	check_field(eid, "status", "Error");
	CHECK(test_redis_int(rp, "ZSCORE",
			     NS ":executions:pppppppppppppppppppppppp", eid,
			     NULL) == -1);
	check_field("cccccccccccccccccccccccc", "status", "Scheduled");
	check_field("dddddddddddddddddddddddd", "status", "Stopped");
	free(m1);
	free(m2);
	free(m3);
	free(m4);
	free(m5);
	free(eid);
	period_free(pd);
}

/* ---- a finished execution (the worker, spec 6.2 step 7) ---------------- */

static void
test_execution_finish(void)
{
	flush();
	const char *key = NS ":executions:pf";
	CHECK(test_redis_do(rp, "ZADD", key, "100", "pf@100", NULL) == 0);
	struct berr e;
	berr_clear(&e);
	CHECK_MSG(period_store_execution_finish_ns(rp, NS, "pf", "pf@100",
						   &e) == 0,
		  "%s", e.msg);
	char *sc = test_redis_str(rp, "ZSCORE", key, "pf@100", NULL);
	CHECK_STR(sc, "-1");
	free(sc);
	/* XX: an execution that is not there is not added */
	CHECK(period_store_execution_finish_ns(rp, NS, "pf", "pf@200", &e) ==
	      0);
	CHECK(test_redis_int(rp, "ZCARD", key, NULL) == 1);
	/* a key of the wrong type is an error, not a silent success */
	CHECK(test_redis_do(rp, "SET", NS ":executions:bad", "x", NULL) == 0);
	berr_clear(&e);
	CHECK(period_store_execution_finish_ns(rp, NS, "bad", "bad@1", &e) <
	      0);
	CHECK(e.msg[0] != '\0');
}

/* ---- the enqueuer thread ------------------------------------------------ */

static void
test_thread(void)
{
	flush();
	set_now(util_now());
	struct period *pd = new_period();
	struct berr e;
	struct job_stats st;
	CHECK(period_create_policy(pd, "DEMO", "*/5 * * * * *", NULL, NULL,
				   &st, &e) == 0);
	int first = count_scheduled(st.id);
	CHECK(first == 47 || first == 48);
	/* 100 s later the thread's first round adds the new tail */
	set_now(clock_fn() + 100);
	CHECK(period_start(pd, &e) == 0);
	int64_t deadline = util_monotonic_ms() + 5000;
	while (util_monotonic_ms() < deadline &&
	       test_redis_int(rp, "EXISTS", K_LAST, NULL) != 1)
		util_sleep_ms(20);
	util_sleep_ms(200);
	CHECK(test_redis_int(rp, "EXISTS", K_LAST, NULL) == 1);
	CHECK(count_scheduled(st.id) == first + 20);
	int64_t t0 = util_monotonic_ms();
	period_stop(pd);
	CHECK(util_monotonic_ms() - t0 < 2000);
	period_stop(pd); /* idempotent */

	/* started again after a stop: a fresh thread runs a round at once
	 * and stops again */
	CHECK(test_redis_do(rp, "DEL", K_LAST, NULL) == 0);
	CHECK(period_start(pd, &e) == 0);
	deadline = util_monotonic_ms() + 5000;
	while (util_monotonic_ms() < deadline &&
	       test_redis_int(rp, "EXISTS", K_LAST, NULL) != 1)
		util_sleep_ms(20);
	CHECK(test_redis_int(rp, "EXISTS", K_LAST, NULL) == 1);
	t0 = util_monotonic_ms();
	period_stop(pd);
	CHECK(util_monotonic_ms() - t0 < 2000);
	job_stats_fini(&st);
	period_free(pd);
	period_free(NULL);
}

int
main(void)
{
	struct test_redis tr;
	if (test_redis_start(&tr) < 0)
		return 1;
	rp = test_redis_pool(&tr, 5000);
	trk = tracker_new(rp, NS);
	tracker_set_event_fn(trk, on_event, NULL);
	que = queue_new(rp, NS);

	test_golden();
	test_policy_parse();
	test_create();
	test_unique_scores();
	test_two_instances();
	test_should_enqueue();
	test_enqueue_all();
	test_unschedule();
	test_list_executions();
	test_clear_dirty();
	test_execution_finish();
	test_thread();

	queue_free(que);
	tracker_free(trk);
	redis_pool_free(rp);
	test_redis_stop(&tr);
	TEST_DONE();
}

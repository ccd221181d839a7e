/* test_tracker.c - the job stats tracker against a real redis-server:
 * save/load round trip, the JSON form, status compare-and-set with TTLs and
 * the in-progress counter, events and their snapshots, reset, check-in,
 * the retry list across a Redis outage, a CAS race between threads, and
 * what the tracker owns for the hook agent, the reaper and the API (ACK,
 * ack read, CAS without event, forget, list, the in-progress walk). */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/gojson.h"
#include "store/redis_conn.h"
#include "redis_harness.h"
#include "testlib.h"
#include "store/tracker.h"
#include "common/util.h"

#define NS "{berth_test}"
#define TRACK_KEY NS ":job_track:inprogress"

/* ---- Redis helpers ---------------------------------------------------- */

static char *
rget(struct redis_pool *p, const char *key, const char *field)
{
	return test_redis_str(p, "HGET", key, field, NULL);
}

static long long
rttl(struct redis_pool *p, const char *key)
{
	return test_redis_int(p, "TTL", key, NULL);
}

static bool
rhexists(struct redis_pool *p, const char *key, const char *field)
{
	return test_redis_int(p, "HEXISTS", key, field, NULL) == 1;
}

static char *
stats_key(const char *id)
{
	return xasprintf(NS ":job_stats:%s", id);
}

static char *
json_text(const cJSON *j)
{
	char *s = cJSON_PrintUnformatted(j);
	char *c = xstrdup(s ? s : "(null)");
	cJSON_free(s);
	return c;
}

/* ---- event recorder --------------------------------------------------- */

#define MAX_EVENTS 64

struct event {
	struct job_stats snap;
	char *check_in;
	char *stored_check_in_at; /* HGET at the time of the event */
	bool aliased;             /* the snapshot shared memory with live */
};

struct recorder {
	pthread_mutex_t mu;
	struct redis_pool *pool;  /* for stored_check_in_at, or NULL */
	const struct job_stats *live;
	struct event ev[MAX_EVENTS];
	int n;
};

static void
on_event(void *data, const struct job_stats *snap, const char *check_in)
{
	struct recorder *rec = data;
	char *stored = NULL;
	if (rec->pool && snap->id) {
		char *key = stats_key(snap->id);
		stored = rget(rec->pool, key, "check_in_at");
		free(key);
	}
	pthread_mutex_lock(&rec->mu);
	if (rec->n < MAX_EVENTS) {
		struct event *e = &rec->ev[rec->n++];
		job_stats_copy(&e->snap, snap);
		e->check_in = check_in ? xstrdup(check_in) : NULL;
		e->stored_check_in_at = stored;
		stored = NULL;
		const struct job_stats *l = rec->live;
		e->aliased = l && (snap == l || snap->id == l->id ||
				   snap->status == l->status ||
				   (l->parameters &&
				    snap->parameters == l->parameters));
	}
	pthread_mutex_unlock(&rec->mu);
	free(stored);
}

static void
recorder_init(struct recorder *rec)
{
	memset(rec, 0, sizeof(*rec));
	pthread_mutex_init(&rec->mu, NULL);
}

static void
recorder_reset(struct recorder *rec)
{
	for (int i = 0; i < rec->n; i++) {
		job_stats_fini(&rec->ev[i].snap);
		free(rec->ev[i].check_in);
		free(rec->ev[i].stored_check_in_at);
	}
	rec->n = 0;
	rec->live = NULL;
	rec->pool = NULL;
}

static void
recorder_fini(struct recorder *rec)
{
	recorder_reset(rec);
	pthread_mutex_destroy(&rec->mu);
}

/* ---- fixtures --------------------------------------------------------- */

static void
make_stats(struct job_stats *s, const char *id, const char *status)
{
	memset(s, 0, sizeof(*s));
	s->id = xstrdup(id);
	s->status = xstrdup(status);
	s->name = xstrdup("DEMO");
	s->kind = xstrdup(JOB_KIND_GENERIC);
	s->ref_link = xasprintf("/api/v1/jobs/%s", id);
	s->enqueue_time = util_now();
	s->update_time = s->enqueue_time;
	s->web_hook_url = xstrdup("http://core:8080/service/notifications/"
				  "tasks/42");
}

/* ---- tests ------------------------------------------------------------ */

static void
test_status_codes(void)
{
	CHECK(job_status_code("Pending") == 0);
	CHECK(job_status_code("Scheduled") == 1);
	CHECK(job_status_code("Running") == 2);
	CHECK(job_status_code("Stopped") == 3);
	CHECK(job_status_code("Error") == 3);
	CHECK(job_status_code("Success") == 3);
	CHECK(job_status_code("success") == -1);
	CHECK(job_status_code("") == -1);
	CHECK(job_status_code(NULL) == -1);
	CHECK(!job_status_final("Pending"));
	CHECK(!job_status_final("Scheduled"));
	CHECK(!job_status_final("Running"));
	CHECK(job_status_final("Stopped"));
	CHECK(job_status_final("Error"));
	CHECK(job_status_final("Success"));
	CHECK(!job_status_final("Done"));
	CHECK(!job_status_final(NULL));
}

static void
test_to_json(void)
{
	/* spec 2.5, Generic */
	struct job_stats s;
	memset(&s, 0, sizeof(s));
	s.id = xstrdup("5f3c2a1b9d8e7f6a5b4c3d2e");
	s.status = xstrdup("Pending");
	s.name = xstrdup("IMAGE_SCAN");
	s.kind = xstrdup("Generic");
	s.ref_link = xstrdup("/api/v1/jobs/5f3c2a1b9d8e7f6a5b4c3d2e");
	s.enqueue_time = 1700000000;
	s.update_time = 1700000000;
	s.web_hook_url =
		xstrdup("http://core:8080/service/notifications/tasks/42");
	s.parameters = cJSON_Parse("{\"mimeTypes\":[\"application/"
				   "vnd.security.vulnerability.report; "
				   "version=1.1\"]}");
	s.cron_spec = xstrdup("");
	s.upstream_job_id = xstrdup("");
	cJSON *j = job_stats_to_json(&s, true);
	char *txt = json_text(j);
	CHECK_STR(txt,
		  "{\"id\":\"5f3c2a1b9d8e7f6a5b4c3d2e\",\"status\":\"Pending\","
		  "\"name\":\"IMAGE_SCAN\",\"kind\":\"Generic\","
		  "\"unique\":false,\"ref_link\":\"/api/v1/jobs/"
		  "5f3c2a1b9d8e7f6a5b4c3d2e\",\"enqueue_time\":1700000000,"
		  "\"update_time\":1700000000,\"web_hook_url\":\"http://"
		  "core:8080/service/notifications/tasks/42\","
		  "\"parameters\":{\"mimeTypes\":[\"application/"
		  "vnd.security.vulnerability.report; version=1.1\"]}}");
	free(txt);
	cJSON_Delete(j);
	job_stats_fini(&s);

	/* spec 2.5, Periodic */
	memset(&s, 0, sizeof(s));
	s.id = xstrdup("0123456789abcdef01234567");
	s.status = xstrdup("Scheduled");
	s.name = xstrdup("SCHEDULER");
	s.kind = xstrdup("Periodic");
	s.ref_link = xstrdup("/api/v1/jobs/0123456789abcdef01234567");
	s.cron_spec = xstrdup("0 0 * * * *");
	s.enqueue_time = 1700000000;
	s.update_time = 1700000000;
	s.web_hook_url =
		xstrdup("http://core:8080/service/notifications/tasks/77");
	s.numeric_policy_id = 1700000004;
	s.parameters = cJSON_CreateObject(); /* empty: omitted */
	j = job_stats_to_json(&s, false);
	txt = json_text(j);
	CHECK_STR(txt,
		  "{\"id\":\"0123456789abcdef01234567\",\"status\":"
		  "\"Scheduled\",\"name\":\"SCHEDULER\",\"kind\":\"Periodic\","
		  "\"unique\":false,\"ref_link\":\"/api/v1/jobs/"
		  "0123456789abcdef01234567\",\"cron_spec\":\"0 0 * * * *\","
		  "\"enqueue_time\":1700000000,\"update_time\":1700000000,"
		  "\"web_hook_url\":\"http://core:8080/service/notifications/"
		  "tasks/77\",\"numeric_policy_id\":1700000004}");
	free(txt);
	cJSON_Delete(j);
	job_stats_fini(&s);

	/* spec 7.2 check-in payload metadata and 2.6 with an ack in Lua's
	 * key order (printed in Go's struct order) */
	memset(&s, 0, sizeof(s));
	s.id = xstrdup("0123456789abcdef01234567@1700003600");
	s.status = xstrdup("Running");
	s.name = xstrdup("SCHEDULER");
	s.kind = xstrdup("Scheduled");
	s.ref_link =
		xstrdup("/api/v1/jobs/0123456789abcdef01234567@1700003600");
	s.cron_spec = xstrdup("0 0 * * * *");
	s.enqueue_time = 1700003480;
	s.update_time = 1700003601;
	s.run_at = 1700003600;
	s.check_in = xstrdup("checkin");
	s.check_in_at = 1700003601;
	s.web_hook_url =
		xstrdup("http://core:8080/service/notifications/tasks/77");
	s.upstream_job_id = xstrdup("0123456789abcdef01234567");
	s.revision = 1700003480;
	j = job_stats_to_json(&s, true);
	txt = json_text(j);
	CHECK_STR(txt,
		  "{\"id\":\"0123456789abcdef01234567@1700003600\","
		  "\"status\":\"Running\",\"name\":\"SCHEDULER\","
		  "\"kind\":\"Scheduled\",\"unique\":false,\"ref_link\":"
		  "\"/api/v1/jobs/0123456789abcdef01234567@1700003600\","
		  "\"cron_spec\":\"0 0 * * * *\",\"enqueue_time\":1700003480,"
		  "\"update_time\":1700003601,\"run_at\":1700003600,"
		  "\"check_in\":\"checkin\",\"check_in_at\":1700003601,"
		  "\"web_hook_url\":\"http://core:8080/service/notifications/"
		  "tasks/77\",\"upstream_job_id\":\"0123456789abcdef01234567\","
		  "\"revision\":1700003480}");
	free(txt);
	cJSON_Delete(j);

	/* without check_in (GET), with die_at and an ack */
	free(s.status);
	s.status = xstrdup("Success");
	s.die_at = 5;
	s.unique = true;
	s.ack = cJSON_Parse("{\"check_in_at\":1700003601,\"revision\":"
			    "1700003480,\"status\":\"Success\"}");
	j = job_stats_to_json(&s, false);
	txt = json_text(j);
	CHECK_STR(txt,
		  "{\"id\":\"0123456789abcdef01234567@1700003600\","
		  "\"status\":\"Success\",\"name\":\"SCHEDULER\","
		  "\"kind\":\"Scheduled\",\"unique\":true,\"ref_link\":"
		  "\"/api/v1/jobs/0123456789abcdef01234567@1700003600\","
		  "\"cron_spec\":\"0 0 * * * *\",\"enqueue_time\":1700003480,"
		  "\"update_time\":1700003601,\"run_at\":1700003600,"
		  "\"check_in_at\":1700003601,\"die_at\":5,"
		  "\"web_hook_url\":\"http://core:8080/service/notifications/"
		  "tasks/77\",\"upstream_job_id\":\"0123456789abcdef01234567\","
		  "\"revision\":1700003480,\"ack\":{\"status\":\"Success\","
		  "\"revision\":1700003480,\"check_in_at\":1700003601}}");
	free(txt);
	cJSON_Delete(j);
	job_stats_fini(&s);

	/* all empty: the always-present keys only */
	memset(&s, 0, sizeof(s));
	j = job_stats_to_json(&s, true);
	txt = json_text(j);
	CHECK_STR(txt, "{\"id\":\"\",\"status\":\"\",\"name\":\"\","
		       "\"kind\":\"\",\"unique\":false,\"enqueue_time\":0,"
		       "\"update_time\":0}");
	free(txt);
	cJSON_Delete(j);
}

static void
test_save_load(struct tracker *t, struct redis_pool *p)
{
	const char *id = "0123456789abcdef01234567@1700003600";
	char *key = stats_key(id);
	struct job_stats s;
	memset(&s, 0, sizeof(s));
	s.id = xstrdup(id);
	s.status = xstrdup("Scheduled");
	s.name = xstrdup("SCHED \"quoted\"\r\n name");
	s.kind = xstrdup("Scheduled");
	s.unique = true;
	s.ref_link = xasprintf("/api/v1/jobs/%s", id);
	s.cron_spec = xstrdup("0 0 * * * *");
	s.enqueue_time = 1700003480;
	s.run_at = 1700003600;
	s.check_in = xstrdup("some text");
	s.check_in_at = 1700003500;
	s.die_at = 1700009999;
	s.web_hook_url = xstrdup("http://core:8080/x y");
	s.upstream_job_id = xstrdup("0123456789abcdef01234567");
	s.numeric_policy_id = 1700000004;
	s.parameters = cJSON_Parse("{\"z\":[true,null,\"/\"],\"b\":"
				   "\"x<y&z\",\"a\":1,\"n\":2.5}");
	s.ack = cJSON_Parse("{\"revision\":17,\"check_in_at\":3,"
			    "\"status\":\"Running\"}");
	struct berr e;
	berr_clear(&e);
	int64_t before = util_now();
	CHECK_MSG(tracker_save(t, &s, &e) == 0, "%s", e.msg);
	int64_t after = util_now();
	CHECK(s.revision >= before && s.revision <= after);
	CHECK(s.update_time >= before && s.update_time <= after);

	/* the stored text, field by field */
	struct {
		const char *field, *want;
	} want[] = {
		{"id", id},
		{"name", "SCHED \"quoted\"\r\n name"},
		{"kind", "Scheduled"},
		{"unique", "1"},
		{"status", "Scheduled"},
		{"ref_link",
		 "/api/v1/jobs/0123456789abcdef01234567@1700003600"},
		{"enqueue_time", "1700003480"},
		{"run_at", "1700003600"},
		{"cron_spec", "0 0 * * * *"},
		{"web_hook_url", "http://core:8080/x y"},
		{"numeric_policy_id", "1700000004"},
		{"check_in", "[REDUNDANT]"},
		{"check_in_at", "1700003500"},
		{"die_at", "1700009999"},
		{"upstream_job_id", "0123456789abcdef01234567"},
		{"parameters", "{\"a\":1,\"b\":\"x\\u003cy\\u0026z\","
			       "\"n\":2.5,\"z\":[true,null,\"/\"]}"},
		{"ack", "{\"status\":\"Running\",\"revision\":17,"
			"\"check_in_at\":3}"},
	};
	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		char *v = rget(p, key, want[i].field);
		CHECK_MSG(v && strcmp(v, want[i].want) == 0, "%s = %s",
			  want[i].field, v ? v : "(nil)");
		free(v);
	}
	char *v = rget(p, key, "revision");
	char *exp = xasprintf("%" PRId64, s.revision);
	CHECK_STR(v, exp);
	free(v);
	free(exp);
	v = rget(p, key, "update_time");
	exp = xasprintf("%" PRId64, s.update_time);
	CHECK_STR(v, exp);
	free(v);
	free(exp);
	CHECK(test_redis_int(p, "HLEN", key, NULL) == 19);
	v = rget(p, TRACK_KEY, id);
	CHECK_STR(v, "2");
	free(v);
	CHECK(rttl(p, key) == -1);
	const char *ekey = NS ":executions:0123456789abcdef01234567";
	v = test_redis_str(p, "ZSCORE", ekey, id, NULL);
	CHECK_STR(v, "1700003600");
	free(v);

	/* load: every field back */
	struct job_stats l;
	memset(&l, 0, sizeof(l));
	CHECK_MSG(tracker_load(t, id, &l, &e) == 0, "%s", e.msg);
	CHECK_STR(l.id, id);
	CHECK_STR(l.status, "Scheduled");
	CHECK_STR(l.name, s.name);
	CHECK_STR(l.kind, "Scheduled");
	CHECK(l.unique);
	CHECK_STR(l.ref_link, s.ref_link);
	CHECK_STR(l.cron_spec, "0 0 * * * *");
	CHECK(l.enqueue_time == 1700003480);
	CHECK(l.update_time == s.update_time);
	CHECK(l.run_at == 1700003600);
	CHECK(l.check_in == NULL); /* the placeholder is never read */
	CHECK(l.check_in_at == 1700003500);
	CHECK(l.die_at == 1700009999);
	CHECK_STR(l.web_hook_url, "http://core:8080/x y");
	CHECK_STR(l.upstream_job_id, "0123456789abcdef01234567");
	CHECK(l.numeric_policy_id == 1700000004);
	CHECK(l.revision == s.revision);
	char *pa = gojson_encode(l.parameters);
	char *pb = gojson_encode(s.parameters);
	CHECK_STR(pa, pb);
	free(pa);
	free(pb);
	char *ack = json_text(l.ack);
	CHECK_STR(ack, "{\"status\":\"Running\",\"revision\":17,"
		       "\"check_in_at\":3}");
	free(ack);
	job_stats_fini(&l);

	/* re-save: the stored revision wins; ZADD NX keeps the score */
	CHECK(test_redis_do(p, "HSET", key, "revision", "1234", NULL) == 0);
	CHECK(test_redis_do(p, "HSET", TRACK_KEY, id, "1", NULL) == 0);
	s.revision = 0;
	s.run_at = 1700007200;
	CHECK_MSG(tracker_save(t, &s, &e) == 0, "%s", e.msg);
	CHECK(s.revision == 1234);
	v = rget(p, key, "revision");
	CHECK_STR(v, "1234");
	free(v);
	v = rget(p, TRACK_KEY, id);
	CHECK_STR(v, "2");
	free(v);
	CHECK(test_redis_int(p, "ZCARD", ekey, NULL) == 1);
	CHECK(rttl(p, key) == -1);
	v = test_redis_str(p, "ZSCORE", ekey, id, NULL);
	CHECK_STR(v, "1700003600");
	free(v);
	job_stats_fini(&s);
	free(key);

	/* a fresh hash with a known revision (schedule sync): kept */
	make_stats(&s, "minimal1", "Pending");
	s.revision = 1500000000;
	s.parameters = cJSON_CreateObject();
	s.check_in_at = 5; /* no text: not stored */
	CHECK_MSG(tracker_save(t, &s, &e) == 0, "%s", e.msg);
	CHECK(s.revision == 1500000000);
	key = stats_key("minimal1");
	v = rget(p, key, "revision");
	CHECK_STR(v, "1500000000");
	free(v);
	v = rget(p, key, "unique");
	CHECK_STR(v, "0");
	free(v);
	v = rget(p, key, "cron_spec");
	CHECK_STR(v, "");
	free(v);
	static const char *const absent[] = {"check_in", "check_in_at",
					     "die_at", "upstream_job_id",
					     "parameters", "ack"};
	for (size_t i = 0; i < ARRAY_LEN(absent); i++)
		CHECK_MSG(!rhexists(p, key, absent[i]), "%s", absent[i]);
	CHECK(test_redis_int(p, "HLEN", key, NULL) == 13);
	memset(&l, 0, sizeof(l));
	CHECK(tracker_load(t, "minimal1", &l, &e) == 0);
	CHECK(l.parameters == NULL);
	CHECK(l.ack == NULL);
	CHECK(!l.unique);
	CHECK_STR(l.cron_spec, "");
	job_stats_fini(&l);
	job_stats_fini(&s);
	free(key);

	/* empty id is refused */
	memset(&s, 0, sizeof(s));
	CHECK(tracker_save(t, &s, &e) < 0);
	CHECK_CONTAINS(e.msg, "empty job id");

	/* absent */
	memset(&l, 0, sizeof(l));
	CHECK(tracker_load(t, "nosuchjob", &l, &e) == 1);
	CHECK(l.id == NULL);
	char *st = (char *)"x";
	CHECK(tracker_get_status(t, "nosuchjob", &st, &e) == 0);
	CHECK(st == NULL);
	CHECK(tracker_get_status(t, "minimal1", &st, &e) == 0);
	CHECK_STR(st, "Pending");
	free(st);
}

/* Lenient parsing of hashes not written by us (Go, dashboard, Lua). */
static void
test_load_lenient(struct tracker *t, struct redis_pool *p)
{
	static const struct {
		const char *v;
		bool want;
	} bools[] = {
		{"1", true},    {"t", true},     {"T", true},
		{"TRUE", true}, {"true", true},  {"True", true},
		{"0", false},   {"yes", false},  {"tRuE", false},
		{"", false},    {" 1", false},   {"2", false},
	};
	struct berr e;
	berr_clear(&e);
	for (size_t i = 0; i < ARRAY_LEN(bools); i++) {
		CHECK(test_redis_do(p, "HSET", NS ":job_stats:len1", "unique",
				    bools[i].v, NULL) == 0);
		struct job_stats l;
		CHECK(tracker_load(t, "len1", &l, &e) == 0);
		CHECK_MSG(l.unique == bools[i].want, "unique %s",
			  bools[i].v);
		job_stats_fini(&l);
	}
	CHECK(test_redis_do(p, "HSET", NS ":job_stats:len1", "enqueue_time",
			    "abc", "update_time", " 5", "run_at", "+7",
			    "check_in_at", "-3", "die_at",
			    "99999999999999999999", "numeric_policy_id", "12x",
			    "revision", "1.5e9", NULL) == 0);
	CHECK(test_redis_do(p, "HSET", NS ":job_stats:len1", "parameters",
			    "not json", "ack",
			    "{\"check_in_at\":4,\"status\":\"Error\","
			    "\"revision\":1.7e9}",
			    "check_in", "[REDUNDANT]", "other", "x",
			    NULL) == 0);
	struct job_stats l;
	CHECK(tracker_load(t, "len1", &l, &e) == 0);
	CHECK_STR(l.id, "len1"); /* no id field: taken from the key */
	CHECK(l.enqueue_time == 0);
	CHECK(l.update_time == 0);
	CHECK(l.run_at == 7);
	CHECK(l.check_in_at == -3);
	CHECK(l.die_at == 0);
	CHECK(l.numeric_policy_id == 0);
	CHECK(l.revision == 0);
	CHECK(l.parameters == NULL);
	CHECK(l.check_in == NULL);
	CHECK(l.status == NULL);
	char *ack = json_text(l.ack);
	CHECK_STR(ack, "{\"status\":\"Error\",\"revision\":1700000000,"
		       "\"check_in_at\":4}");
	free(ack);
	job_stats_fini(&l);

	/* parameters that are JSON but not an object are dropped */
	CHECK(test_redis_do(p, "HSET", NS ":job_stats:len1", "parameters",
			    "[1,2]", "ack", "null", NULL) == 0);
	CHECK(tracker_load(t, "len1", &l, &e) == 0);
	CHECK(l.parameters == NULL);
	CHECK(l.ack == NULL);
	job_stats_fini(&l);

	/* a key of the wrong type is an error, not "absent" */
	CHECK(test_redis_do(p, "SET", NS ":job_stats:len2", "x", NULL) == 0);
	CHECK(tracker_load(t, "len2", &l, &e) < 0);
	CHECK_CONTAINS(e.msg, "WRONGTYPE");
	char *st = NULL;
	CHECK(tracker_get_status(t, "len2", &st, &e) < 0);
	CHECK(st == NULL);
}

static void
check_event(struct recorder *rec, int i, const char *status,
	    const char *check_in)
{
	CHECK_MSG(rec->n > i, "event %d missing (have %d)", i, rec->n);
	if (rec->n <= i)
		return;
	CHECK_STR(rec->ev[i].snap.status, status);
	if (check_in)
		CHECK_STR(rec->ev[i].check_in, check_in);
	else
		CHECK(rec->ev[i].check_in == NULL);
	CHECK(!rec->ev[i].aliased);
}

static void
test_cas(struct tracker *t, struct redis_pool *p, struct recorder *rec)
{
	struct berr e;
	berr_clear(&e);
	struct job_stats s;
	make_stats(&s, "cas1", "Pending");
	s.parameters = cJSON_Parse("{\"k\":\"v\"}");
	CHECK(tracker_save(t, &s, &e) == 0);
	char *key = stats_key("cas1");
	recorder_reset(rec);
	rec->live = &s;

	char *cur = (char *)"junk";
	CHECK(tracker_set_status(t, &s, "Running", &cur, &e) == TRACKER_OK);
	CHECK(cur == NULL);
	CHECK_STR(s.status, "Running");
	char *v = rget(p, key, "status");
	CHECK_STR(v, "Running");
	free(v);
	CHECK(rttl(p, key) == -1);
	v = rget(p, TRACK_KEY, "cas1");
	CHECK_STR(v, "2");
	free(v);
	CHECK(rec->n == 1);
	check_event(rec, 0, "Running", NULL);
	/* the snapshot is a copy: later changes of s do not show */
	free(s.name);
	s.name = xstrdup("CHANGED");
	cJSON_AddStringToObject(s.parameters, "added", "1");
	CHECK_STR(rec->ev[0].snap.name, "DEMO");
	CHECK(cJSON_GetObjectItem(rec->ev[0].snap.parameters, "added") ==
	      NULL);
	CHECK(rec->ev[0].snap.revision == s.revision);

	int64_t before = util_now();
	CHECK(tracker_set_status(t, &s, "Success", NULL, &e) == TRACKER_OK);
	CHECK_STR(s.status, "Success");
	CHECK(s.update_time >= before);
	v = rget(p, key, "status");
	CHECK_STR(v, "Success");
	free(v);
	long long ttl = rttl(p, key);
	CHECK_MSG(ttl > 86390 && ttl <= 86400, "ttl %lld", ttl);
	v = rget(p, TRACK_KEY, "cas1");
	CHECK_STR(v, "1");
	free(v);
	CHECK(rec->n == 2);
	check_event(rec, 1, "Success", NULL);
	CHECK_STR(rec->ev[0].snap.status, "Running");

	/* final -> another final: refused, nothing fired */
	cur = NULL;
	CHECK(tracker_set_status(t, &s, "Stopped", &cur, &e) ==
	      TRACKER_MISMATCH);
	CHECK_STR(cur, "Success");
	CHECK_CONTAINS(e.msg, "mismatch");
	free(cur);
	CHECK_STR(s.status, "Success");
	CHECK(rec->n == 2);
	v = rget(p, TRACK_KEY, "cas1");
	CHECK_STR(v, "1");
	free(v);
	/* an older revision may change nothing */
	s.revision--;
	CHECK(tracker_set_status(t, &s, "Success", NULL, &e) ==
	      TRACKER_MISMATCH);
	s.revision++;
	CHECK(rec->n == 2);
	job_stats_fini(&s);
	free(key);

	/* Error: 7 days */
	make_stats(&s, "cas2", "Pending");
	CHECK(tracker_save(t, &s, &e) == 0);
	key = stats_key("cas2");
	rec->live = &s;
	CHECK(tracker_set_status(t, &s, "Running", NULL, &e) == TRACKER_OK);
	CHECK(tracker_set_status(t, &s, "Error", NULL, &e) == TRACKER_OK);
	ttl = rttl(p, key);
	CHECK_MSG(ttl > 604790 && ttl <= 604800, "ttl %lld", ttl);
	v = rget(p, TRACK_KEY, "cas2");
	CHECK_STR(v, "1");
	free(v);
	CHECK(rec->n == 4);
	check_event(rec, 3, "Error", NULL);
	job_stats_fini(&s);
	free(key);

	/* Stopped, then a late Success is a mismatch reporting Stopped */
	make_stats(&s, "cas3", "Pending");
	CHECK(tracker_save(t, &s, &e) == 0);
	key = stats_key("cas3");
	rec->live = &s;
	CHECK(tracker_set_status(t, &s, "Stopped", NULL, &e) == TRACKER_OK);
	ttl = rttl(p, key);
	CHECK_MSG(ttl > 86390 && ttl <= 86400, "ttl %lld", ttl);
	struct job_stats late;
	job_stats_copy(&late, &s);
	free(late.status);
	late.status = xstrdup("Running");
	cur = NULL;
	CHECK(tracker_set_status(t, &late, "Success", &cur, &e) ==
	      TRACKER_MISMATCH);
	CHECK_STR(cur, "Stopped");
	free(cur);
	CHECK_STR(late.status, "Running");
	CHECK(rec->n == 5);
	check_event(rec, 4, "Stopped", NULL);
	job_stats_fini(&late);
	job_stats_fini(&s);
	free(key);

	/* a bad target is refused before Redis, without an event */
	make_stats(&s, "cas4", "Pending");
	CHECK(tracker_set_status(t, &s, "Done", NULL, &e) ==
	      TRACKER_REDIS_ERROR);
	CHECK(tracker_retry_count(t) == 0);
	CHECK(rec->n == 5);
	job_stats_fini(&s);

	/* no web_hook_url: no hook, so no ACK will ever come; a final status
	 * removes the in-progress field at once (Success, Error, Stopped),
	 * a non-final one keeps it */
	static const char *const finals[] = {"Success", "Error", "Stopped"};
	for (int i = 0; i < 3; i++) {
		char id[16];
		snprintf(id, sizeof(id), "nohook%d", i);
		make_stats(&s, id, "Pending");
		free(s.web_hook_url);
		s.web_hook_url = i == 1 ? xstrdup("") : NULL;
		CHECK(tracker_save(t, &s, &e) == 0);
		rec->live = &s;
		CHECK(tracker_set_status(t, &s, "Running", NULL, &e) ==
		      TRACKER_OK);
		v = rget(p, TRACK_KEY, id);
		CHECK_STR(v, "2");
		free(v);
		CHECK(tracker_set_status(t, &s, finals[i], NULL, &e) ==
		      TRACKER_OK);
		v = rget(p, TRACK_KEY, id);
		CHECK_MSG(v == NULL, "%s after %s: %s", id, finals[i], v);
		free(v);
		key = stats_key(id);
		ttl = rttl(p, key);
		CHECK_MSG(ttl > 86390 && ttl <= 604800, "ttl %lld", ttl);
		free(key);
		/* a retry (reset) tracks it again */
		CHECK(tracker_reset(t, &s, &e) == 0);
		v = rget(p, TRACK_KEY, id);
		CHECK_STR(v, "2");
		free(v);
		job_stats_fini(&s);
	}
	recorder_reset(rec);
}

static void
test_reset(struct tracker *t, struct redis_pool *p, struct recorder *rec)
{
	struct berr e;
	berr_clear(&e);
	struct job_stats s;
	make_stats(&s, "reset1", "Pending");
	CHECK(tracker_save(t, &s, &e) == 0);
	char *key = stats_key("reset1");
	CHECK(tracker_set_status(t, &s, "Running", NULL, &e) == TRACKER_OK);
	CHECK(tracker_set_status(t, &s, "Error", NULL, &e) == TRACKER_OK);
	CHECK(test_redis_do(p, "HSET", key, "ack",
			    "{\"status\":\"Error\",\"revision\":1,"
			    "\"check_in_at\":0}",
			    "check_in_at", "77", "check_in", "[REDUNDANT]",
			    NULL) == 0);
	s.ack = cJSON_Parse("{\"status\":\"Error\"}");
	s.check_in = xstrdup("c");
	s.check_in_at = 77;
	recorder_reset(rec);
	int64_t old = s.revision;
	CHECK_MSG(tracker_reset(t, &s, &e) == 0, "%s", e.msg);
	CHECK(s.revision > old); /* bumped even within the same second */
	CHECK_STR(s.status, "Pending");
	CHECK(s.update_time == s.revision);
	CHECK(s.ack == NULL);
	CHECK(s.check_in == NULL);
	CHECK(s.check_in_at == 0);
	char *v = rget(p, key, "revision");
	char *exp = xasprintf("%" PRId64, s.revision);
	CHECK_STR(v, exp);
	free(v);
	free(exp);
	v = rget(p, key, "status");
	CHECK_STR(v, "Pending");
	free(v);
	CHECK(!rhexists(p, key, "ack"));
	CHECK(!rhexists(p, key, "check_in_at"));
	CHECK(!rhexists(p, key, "check_in"));
	v = rget(p, TRACK_KEY, "reset1");
	CHECK_STR(v, "2");
	free(v);
	CHECK(rec->n == 0); /* no event for the reset */
	/* the new run goes through with the new revision */
	CHECK(tracker_set_status(t, &s, "Running", NULL, &e) == TRACKER_OK);
	CHECK(rec->n == 1);
	CHECK(rec->n == 1 && rec->ev[0].snap.revision == s.revision);
	job_stats_fini(&s);
	free(key);
	recorder_reset(rec);
}

static void
test_checkin(struct tracker *t, struct redis_pool *p, struct recorder *rec)
{
	struct berr e;
	berr_clear(&e);
	struct job_stats s;
	make_stats(&s, "ci1", "Pending");
	CHECK(tracker_save(t, &s, &e) == 0);
	CHECK(tracker_set_status(t, &s, "Running", NULL, &e) == TRACKER_OK);
	char *key = stats_key("ci1");
	recorder_reset(rec);
	rec->live = &s;
	rec->pool = p;

	CHECK(tracker_checkin(t, &s, "", &e) < 0);
	CHECK_STR(e.msg, "check in error: empty message");
	berr_clear(&e);
	CHECK(tracker_checkin(t, &s, NULL, &e) < 0);
	CHECK_STR(e.msg, "check in error: empty message");
	CHECK(rec->n == 0);
	CHECK(s.check_in_at == 0);

	int64_t before = util_now();
	CHECK_MSG(tracker_checkin(t, &s, "{\"progress\":1}", &e) == 0, "%s",
		  e.msg);
	int64_t first = s.check_in_at;
	CHECK(first >= before && first <= util_now());
	CHECK_STR(s.check_in, "{\"progress\":1}");
	CHECK(s.update_time == first);
	CHECK(rec->n == 1);
	check_event(rec, 0, "Running", "{\"progress\":1}");
	if (rec->n >= 1) {
		CHECK_STR(rec->ev[0].snap.check_in, "{\"progress\":1}");
		CHECK(rec->ev[0].snap.check_in_at == first);
		/* fired before the HMSET */
		CHECK(rec->ev[0].stored_check_in_at == NULL);
		cJSON *j = job_stats_to_json(&rec->ev[0].snap, true);
		CHECK(cJSON_GetObjectItem(j, "check_in") != NULL);
		cJSON_Delete(j);
	}
	char *v = rget(p, key, "check_in_at");
	char *exp = xasprintf("%" PRId64, first);
	CHECK_STR(v, exp);
	free(v);
	free(exp);
	v = rget(p, key, "update_time");
	exp = xasprintf("%" PRId64, first);
	CHECK_STR(v, exp);
	free(v);
	free(exp);
	/* Berth stores the text in Harbor's check_in field (the detail
	 * view reads it back); no answer of Harbor's routes shows it */
	v = rget(p, key, "check_in");
	CHECK_STR(v, "{\"progress\":1}");
	free(v);
	char *text = NULL;
	int64_t at = 0;
	CHECK(tracker_get_checkin(t, s.id, &text, &at, &e) == 0);
	CHECK_STR(text, "{\"progress\":1}");
	CHECK(at == first);
	free(text);

	/* a second check-in in the same second still moves forward */
	CHECK(tracker_checkin(t, &s, "second", &e) == 0);
	int64_t second = s.check_in_at;
	CHECK(second > first);
	CHECK(rec->n == 2);
	check_event(rec, 1, "Running", "second");
	if (rec->n >= 2) {
		CHECK(rec->ev[1].snap.check_in_at == second);
		exp = xasprintf("%" PRId64, first);
		CHECK_STR(rec->ev[1].stored_check_in_at, exp);
		free(exp);
		CHECK_STR(rec->ev[0].snap.check_in, "{\"progress\":1}");
	}
	v = rget(p, key, "check_in_at");
	exp = xasprintf("%" PRId64, second);
	CHECK_STR(v, exp);
	free(v);
	free(exp);
	v = rget(p, key, "status");
	CHECK_STR(v, "Running");
	free(v);
	job_stats_fini(&s);
	free(key);
	recorder_reset(rec);
}

/* Redis goes away: the status write is queued, the event still fires; the
 * retry applies it once Redis is back. Uses its own server with an
 * always-fsynced AOF, so the stats survive the kill -9. */
static void
test_retry(struct recorder *rec)
{
	static const char *const extra[] = {"--appendonly", "yes",
					    "--appendfsync", "always", NULL};
	struct test_redis tr;
	if (test_redis_start_args(&tr, extra) < 0) {
		CHECK(!"cannot start the AOF redis-server");
		return;
	}
	struct redis_pool *p = test_redis_pool(&tr, 2000);
	struct tracker *t = tracker_new(p, NS);
	tracker_set_event_fn(t, on_event, rec);
	struct berr e;
	berr_clear(&e);
	struct job_stats a, b;
	make_stats(&a, "retryA", "Pending");
	make_stats(&b, "retryB", "Pending");
	CHECK(tracker_save(t, &a, &e) == 0);
	CHECK(tracker_save(t, &b, &e) == 0);
	CHECK(tracker_set_status(t, &a, "Running", NULL, &e) == TRACKER_OK);
	CHECK(tracker_set_status(t, &b, "Running", NULL, &e) == TRACKER_OK);
	recorder_reset(rec);
	rec->live = &a;

	CHECK(test_redis_kill9(&tr) == 0);
	berr_clear(&e);
	char *cur = (char *)"junk";
	CHECK(tracker_set_status(t, &a, "Success", &cur, &e) ==
	      TRACKER_REDIS_ERROR);
	CHECK(cur == NULL);
	CHECK(e.msg[0] != '\0');
	CHECK_CONTAINS(e.msg, "retryA");
	CHECK_STR(a.status, "Success");
	CHECK(tracker_retry_count(t) == 1);
	CHECK(rec->n == 1);
	check_event(rec, 0, "Success", NULL);
	/* retried later as a mismatch (Running -> Pending): dropped */
	rec->live = &b;
	CHECK(tracker_set_status(t, &b, "Pending", NULL, &e) ==
	      TRACKER_REDIS_ERROR);
	CHECK(tracker_retry_count(t) == 2);
	CHECK(rec->n == 2);
	/* other operations report the outage too */
	struct job_stats l;
	CHECK(tracker_load(t, "retryA", &l, &e) < 0);
	CHECK(tracker_checkin(t, &a, "x", &e) < 0);
	CHECK(tracker_reset(t, &b, &e) < 0);
	CHECK(tracker_save(t, &b, &e) < 0);
	char *st = NULL;
	CHECK(tracker_get_status(t, "retryA", &st, &e) < 0);
	/* still down: kept */
	CHECK(tracker_retry_pending(t) == 2);
	CHECK(tracker_retry_count(t) == 2);

	CHECK(test_redis_restart(&tr) == 0);
	CHECK(tracker_retry_pending(t) == 0);
	CHECK(tracker_retry_count(t) == 0);
	char *v = rget(p, NS ":job_stats:retryA", "status");
	CHECK_STR(v, "Success");
	free(v);
	long long ttl = rttl(p, NS ":job_stats:retryA");
	CHECK_MSG(ttl > 86390 && ttl <= 86400, "ttl %lld", ttl);
	v = rget(p, TRACK_KEY, "retryA");
	CHECK_STR(v, "1");
	free(v);
	v = rget(p, NS ":job_stats:retryB", "status");
	CHECK_STR(v, "Running");
	free(v);
	CHECK(rec->n == 3); /* the failed check-in fired; retries do not */
	/* nothing left to do */
	CHECK(tracker_retry_pending(t) == 0);

	job_stats_fini(&a);
	job_stats_fini(&b);
	recorder_reset(rec);
	tracker_free(t);
	redis_pool_free(p);
	test_redis_stop(&tr);
}

/* ---- the CAS race ----------------------------------------------------- */

#define RACE_THREADS 8

struct racer {
	struct tracker *t;
	const struct job_stats *base;
	pthread_barrier_t *barrier;
	const char *final; /* NULL: stop after Running */
	enum tracker_cas run_rc, final_rc;
	char *current;
	char err[BERR_MSG_MAX];
};

static void *
race_main(void *arg)
{
	struct racer *r = arg;
	struct job_stats s;
	job_stats_copy(&s, r->base);
	struct berr e;
	berr_clear(&e);
	pthread_barrier_wait(r->barrier);
	r->run_rc = tracker_set_status(r->t, &s, "Running", NULL, &e);
	snprintf(r->err, sizeof(r->err), "%s", e.msg);
	pthread_barrier_wait(r->barrier);
	if (r->final) {
		berr_clear(&e);
		r->final_rc = tracker_set_status(r->t, &s, r->final,
						 &r->current, &e);
		snprintf(r->err, sizeof(r->err), "%s", e.msg);
	}
	job_stats_fini(&s);
	return NULL;
}

/* RACE_THREADS threads move a fresh Pending job to Running at once (with
 * the same revision), then to finals[i] at once. Checks that every Running
 * write succeeded and that one final status won: returns the number of
 * successful final writes, *winner is their status (NULL when none). */
static int
race_run(struct tracker *t, struct redis_pool *p, const char *id,
	 const char *const *finals, const char **winner)
{
	struct berr e;
	berr_clear(&e);
	struct job_stats s;
	make_stats(&s, id, "Pending");
	CHECK(tracker_save(t, &s, &e) == 0);
	pthread_barrier_t barrier;
	pthread_barrier_init(&barrier, NULL, RACE_THREADS);
	struct racer r[RACE_THREADS];
	pthread_t th[RACE_THREADS];
	for (int i = 0; i < RACE_THREADS; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].t = t;
		r[i].base = &s;
		r[i].barrier = &barrier;
		r[i].final = finals[i];
		if (pthread_create(&th[i], NULL, race_main, &r[i]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			abort();
		}
	}
	for (int i = 0; i < RACE_THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&barrier);

	int ok = 0;
	*winner = NULL;
	for (int i = 0; i < RACE_THREADS; i++) {
		/* Running -> Running with one revision is allowed */
		CHECK_MSG(r[i].run_rc == TRACKER_OK, "%s: %s", id, r[i].err);
		if (r[i].final && r[i].final_rc == TRACKER_OK) {
			ok++;
			if (!*winner)
				*winner = r[i].final;
			CHECK_STR(r[i].final, *winner);
		}
	}
	CHECK_MSG(*winner != NULL, "%s: no final status won", id);
	for (int i = 0; i < RACE_THREADS && *winner; i++) {
		if (!r[i].final)
			continue;
		if (strcmp(r[i].final, *winner) == 0) {
			/* the same status again is allowed (spec 4.3) */
			CHECK_MSG(r[i].final_rc == TRACKER_OK, "%s: %s", id,
				  r[i].err);
		} else {
			CHECK_MSG(r[i].final_rc == TRACKER_MISMATCH,
				  "%s: %s got %d", id, r[i].final,
				  (int)r[i].final_rc);
			CHECK_STR(r[i].current, *winner);
		}
	}
	for (int i = 0; i < RACE_THREADS; i++)
		free(r[i].current);
	char *key = stats_key(id);
	char *v = rget(p, key, "status");
	if (*winner)
		CHECK_STR(v, *winner);
	free(v);
	free(key);
	job_stats_fini(&s);
	return ok;
}

static void
test_race(struct tracker *t, struct redis_pool *p, struct recorder *rec)
{
	/* three threads want distinct final statuses, five stop at
	 * Running: exactly one final write wins, the two others get a
	 * mismatch naming it, and the counter ends at 1 */
	static const char *const distinct[RACE_THREADS] = {
		"Success", "Error", "Stopped", NULL, NULL, NULL, NULL, NULL,
	};
	for (int round = 0; round < 10; round++) {
		char id[32];
		snprintf(id, sizeof(id), "race_distinct_%d", round);
		recorder_reset(rec);
		const char *winner = NULL;
		int ok = race_run(t, p, id, distinct, &winner);
		CHECK_MSG(ok == 1, "%s: %d final winners", id, ok);
		char *v = rget(p, TRACK_KEY, id);
		CHECK_STR(v, "1");
		free(v);
		CHECK_MSG(rec->n == RACE_THREADS + 1, "%s: %d events", id,
			  rec->n);
	}

	/* all eight want a final status (each wanted by 2-3 threads): one
	 * status wins; the threads that wanted it all succeed (writing the
	 * same status again is allowed and decrements the counter again),
	 * every other one gets a mismatch naming the winner */
	static const char *const mixed[RACE_THREADS] = {
		"Success", "Error",   "Stopped", "Success",
		"Error",   "Stopped", "Success", "Error",
	};
	for (int round = 0; round < 5; round++) {
		char id[32];
		snprintf(id, sizeof(id), "race_mixed_%d", round);
		recorder_reset(rec);
		const char *winner = NULL;
		int ok = race_run(t, p, id, mixed, &winner);
		int wanted = 0;
		for (int i = 0; i < RACE_THREADS; i++)
			if (winner && strcmp(mixed[i], winner) == 0)
				wanted++;
		CHECK_MSG(ok == wanted, "%s: ok %d, wanted %d", id, ok,
			  wanted);
		/* 2 - (>= 2 decrements): the field is gone */
		CHECK(!rhexists(p, TRACK_KEY, id));
		CHECK_MSG(rec->n == RACE_THREADS + ok, "%s: %d events", id,
			  rec->n);
	}
	recorder_reset(rec);
}

/* job_ack_diff: the order of spec 7.5 / 9.3 (revision, status code,
 * check_in_at); no ack is always behind. */
static void
test_ack_diff(void)
{
	cJSON *ack = cJSON_Parse("{\"status\":\"Running\",\"revision\":10,"
				 "\"check_in_at\":5}");
	CHECK(job_ack_diff(NULL, "Pending", 0, 0) == 1);
	CHECK(job_ack_diff(ack, "Pending", 11, 0) == 1);
	CHECK(job_ack_diff(ack, "Success", 9, 99) == -1);
	CHECK(job_ack_diff(ack, "Success", 10, 0) == 1);
	CHECK(job_ack_diff(ack, "Pending", 10, 99) == -1);
	CHECK(job_ack_diff(ack, "Running", 10, 6) == 1);
	CHECK(job_ack_diff(ack, "Running", 10, 5) == 0);
	CHECK(job_ack_diff(ack, "Running", 10, 4) == -1);
	cJSON_Delete(ack);
	/* a status that is no status sorts below every status */
	ack = cJSON_Parse("{\"status\":7,\"revision\":10}");
	CHECK(job_ack_diff(ack, "Pending", 10, 0) == 1);
	cJSON_Delete(ack);
}

/* What the hook agent, the reaper and the API used to do with Redis
 * themselves: the ACK and its read, the CAS without an event, forget, the
 * list of every job and the in-progress walk. A namespace of its own, so
 * the lists hold only what this test wrote. */
static void
test_owner(struct redis_pool *p, struct recorder *rec)
{
#define ONS "{berth_owner}"
	struct tracker *t = tracker_new(p, ONS);
	tracker_set_event_fn(t, on_event, rec);
	struct berr e;
	berr_clear(&e);
	struct job_stats s;
	make_stats(&s, "own1", "Pending");
	CHECK_MSG(tracker_save(t, &s, &e) == 0, "%s", e.msg);

	/* the ACK moves forward only; reads come back normalised */
	cJSON *ack = (cJSON *)1;
	CHECK(tracker_read_ack(t, "own1", &ack, &e) == 0);
	CHECK(ack == NULL);
	CHECK(tracker_ack(t, "own1", "Running", s.revision, 0, &e) == 1);
	CHECK(tracker_ack(t, "own1", "Pending", s.revision - 1, 0, &e) == 0);
	CHECK(tracker_read_ack(t, "own1", &ack, &e) == 0);
	char *txt = json_text(ack);
	char *want = xasprintf("{\"status\":\"Running\",\"revision\":%" PRId64
			       ",\"check_in_at\":0}", s.revision);
	CHECK_STR(txt, want);
	free(txt);
	free(want);
	cJSON_Delete(ack);
	CHECK(test_redis_do(p, "HSET", ONS ":job_stats:own1", "ack", "not json",
			    NULL) == 0);
	ack = (cJSON *)1;
	CHECK(tracker_read_ack(t, "own1", &ack, &e) == 0);
	CHECK(ack == NULL);
	/* a final ACK counts the job's in-progress entry down (2 -> 1) */
	CHECK(tracker_ack(t, "own1", "Success", s.revision, 0, &e) == 1);
	CHECK(test_redis_int(p, "HGET", ONS ":job_track:inprogress", "own1",
			     NULL) == 1);

	/* the CAS of the reaper: no event, no retry entry */
	recorder_reset(rec);
	char *cur = NULL;
	CHECK(tracker_cas_status(t, "own1", "Running", s.revision, &cur,
				 &e) == TRACKER_OK);
	CHECK(tracker_cas_status(t, "own1", "Pending", s.revision, &cur,
				 &e) == TRACKER_MISMATCH);
	CHECK_STR(cur, "Running");
	free(cur);
	CHECK(rec->n == 0);
	CHECK(tracker_retry_count(t) == 0);

	/* the list: SCAN until the cursor is back to 0 */
	struct job_stats s2;
	make_stats(&s2, "own2", "Pending");
	CHECK(tracker_save(t, &s2, &e) == 0);
	CHECK(test_redis_do(p, "SET", ONS ":job_statsX", "not a stats key",
			    NULL) == 0);
	bool seen1 = false, seen2 = false;
	size_t n = 0;
	char cursor[32] = "0";
	for (int i = 0; i < 100; i++) {
		struct tracker_page pg;
		CHECK_MSG(tracker_list(t, cursor, 1, &pg, &e) == 0, "%s",
			  e.msg);
		for (size_t k = 0; k < pg.n; k++) {
			seen1 |= strcmp(pg.ids[k], "own1") == 0;
			seen2 |= strcmp(pg.ids[k], "own2") == 0;
			n++;
		}
		snprintf(cursor, sizeof(cursor), "%s", pg.cursor);
		tracker_page_fini(&pg);
		if (strcmp(cursor, "0") == 0)
			break;
	}
	CHECK(seen1 && seen2);
	CHECK(n == 2);

	/* the in-progress walk: own1, own2 and a malformed entry */
	CHECK(test_redis_do(p, "HSET", ONS ":job_track:inprogress", "bad", "x",
			    NULL) == 0);
	size_t len = 0;
	CHECK(tracker_inprogress_count(t, &len, &e) == 0);
	CHECK(len == 3);
	struct tracker_page pg;
	CHECK(tracker_inprogress_scan(t, "0", 100, &pg, &e) == 0);
	CHECK_STR(pg.cursor, "0");
	CHECK(pg.n == 3);
	int good = 0, bad = 0;
	for (size_t k = 0; k < pg.n; k++) {
		if (!pg.ids[k])
			bad++;
		else if (strcmp(pg.ids[k], "own1") == 0 ||
			 strcmp(pg.ids[k], "own2") == 0)
			good++;
	}
	CHECK(good == 2 && bad == 1);
	tracker_page_fini(&pg);
	CHECK(tracker_untrack(t, "bad", &e) == 0);
	CHECK(!rhexists(p, ONS ":job_track:inprogress", "bad"));

	/* forget: the stats and the in-progress entry go */
	CHECK(tracker_forget(t, "own2", &e) == 0);
	CHECK(test_redis_int(p, "EXISTS", ONS ":job_stats:own2", NULL) == 0);
	CHECK(!rhexists(p, ONS ":job_track:inprogress", "own2"));
	struct job_stats gone;
	CHECK(tracker_load(t, "own2", &gone, &e) == 1);

	job_stats_fini(&s);
	job_stats_fini(&s2);
	tracker_free(t);
#undef ONS
}

int
main(void)
{
	test_status_codes();
	test_to_json();
	test_ack_diff();

	struct test_redis tr;
	if (test_redis_start(&tr) < 0)
		return 1;
	struct redis_pool *p = test_redis_pool(&tr, 5000);
	struct tracker *t = tracker_new(p, NS);
	struct recorder rec;
	recorder_init(&rec);
	tracker_set_event_fn(t, on_event, &rec);

	test_save_load(t, p);
	test_load_lenient(t, p);
	test_cas(t, p, &rec);
	test_reset(t, p, &rec);
	test_checkin(t, p, &rec);
	test_race(t, p, &rec);
	test_owner(p, &rec);
	test_retry(&rec);

	tracker_free(t);
	recorder_fini(&rec);
	redis_pool_free(p);
	test_redis_stop(&tr);
	TEST_DONE();
}

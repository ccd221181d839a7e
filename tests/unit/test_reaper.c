/* test_reaper.c - the stats/ACK reconciliation of spec 9.3 and the status
 * retry loop of spec 4.6 (host/reaper.c) against a real redis-server:
 * one job per branch (stats gone, final and ACKed, stale non-final ->
 * Error, Periodic exempt, no ACK -> re-fire, newer revision / check-in /
 * status -> re-fire, ACK ahead -> CAS without hook, ACK ahead but refused,
 * malformed counter), a second pass, bounded HSCAN over 1000 entries, and
 * the background thread running both loops. */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "engine/reaper.h"
#include "store/redis_conn.h"
#include "redis_harness.h"
#include "testlib.h"
#include "store/tracker.h"
#include "common/util.h"

#define NS "{berth_test}"
#define TRACK NS ":job_track:inprogress"
#define HOOK "http://core:8080/service/notifications/tasks/7"

/* ---- Redis helpers ------------------------------------------------------ */

static char *
hget(struct redis_pool *p, const char *key, const char *field)
{
	return test_redis_str(p, "HGET", key, field, NULL);
}

static bool
tracked(struct redis_pool *p, const char *id)
{
	return test_redis_int(p, "HEXISTS", TRACK, id, NULL) == 1;
}

static char *
stats_key(const char *id)
{
	return xasprintf("%s:job_stats:%s", NS, id);
}

static char *
status_of(struct redis_pool *p, const char *id)
{
	char *k = stats_key(id);
	char *v = hget(p, k, "status");
	free(k);
	return v;
}

/* A job as Redis holds it. ack_status NULL: no ack. */
struct job {
	const char *id;
	const char *kind;
	const char *status;
	int64_t revision;
	int64_t update_age_s; /* update_time = now - this */
	int64_t check_in_at;
	const char *hook;
	const char *ack_status;
	int64_t ack_revision;
	int64_t ack_check_in_at;
	const char *counter;  /* in the in-progress hash */
	bool no_stats;
};

static void
put_job(struct redis_pool *p, const struct job *j)
{
	if (!j->no_stats) {
		char *k = stats_key(j->id);
		char rev[24], upd[24], cia[24];
		snprintf(rev, sizeof(rev), "%" PRId64, j->revision);
		snprintf(upd, sizeof(upd), "%" PRId64,
			 util_now() - j->update_age_s);
		snprintf(cia, sizeof(cia), "%" PRId64, j->check_in_at);
		test_redis_do(p, "HSET", k, "id", j->id, "name", "NOOP", "kind",
			      j->kind, "status", j->status, "unique", "0",
			      "revision", rev, "update_time", upd,
			      "enqueue_time", upd, "check_in_at", cia,
			      "web_hook_url", j->hook ? j->hook : "", NULL);
		if (j->ack_status) {
			char *ack = xasprintf("{\"check_in_at\":%" PRId64
					      ",\"status\":\"%s\","
					      "\"revision\":%" PRId64 "}",
					      j->ack_check_in_at, j->ack_status,
					      j->ack_revision);
			CHECK(test_redis_do(p, "HSET", k, "ack", ack,
					    NULL) == 0);
			free(ack);
		}
		free(k);
	}
	CHECK(test_redis_do(p, "HSET", TRACK, j->id,
			    j->counter ? j->counter : "2", NULL) == 0);
}

/* ---- captured hooks ----------------------------------------------------- */

#define MAX_EVENTS 64

struct captured {
	char id[64];
	char status[16];
	int64_t revision;
	int64_t check_in_at;
	bool had_check_in;
};

struct capture {
	pthread_mutex_t mu;
	struct captured ev[MAX_EVENTS];
	size_t n;
};

static void
capture_fn(void *data, const struct job_stats *snap, const char *check_in)
{
	struct capture *c = data;
	pthread_mutex_lock(&c->mu);
	if (c->n < MAX_EVENTS) {
		struct captured *e = &c->ev[c->n++];
		snprintf(e->id, sizeof(e->id), "%s", snap->id ? snap->id : "");
		snprintf(e->status, sizeof(e->status), "%s",
			 snap->status ? snap->status : "");
		e->revision = snap->revision;
		e->check_in_at = snap->check_in_at;
		e->had_check_in = check_in != NULL || snap->check_in != NULL;
	}
	pthread_mutex_unlock(&c->mu);
}

static const struct captured *
find_event(struct capture *c, const char *id)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->ev[i].id, id) == 0)
			return &c->ev[i];
	return NULL;
}

static size_t
count_events(struct capture *c, const char *id)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->ev[i].id, id) == 0)
			n++;
	return n;
}

static void
capture_reset(struct capture *c)
{
	pthread_mutex_lock(&c->mu);
	c->n = 0;
	pthread_mutex_unlock(&c->mu);
}

/* The value of one reaper action in the exposition. */
static long long
action_count(const char *action)
{
	struct metrics_scrape sc = {.prefix = ""};
	char *t = metrics_render(&sc);
	char *pat = xasprintf("berth_reaper_actions_total{action=\"%s\"} ",
			      action);
	const char *hit = strstr(t, pat);
	long long v = hit ? strtoll(hit + strlen(pat), NULL, 10) : -1;
	free(pat);
	free(t);
	return v;
}

/* ---- every branch of spec 9.3 ------------------------------------------- */

static void
test_branches(struct redis_pool *p, struct tracker *t)
{
	struct capture hooks = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct capture refires = {.mu = PTHREAD_MUTEX_INITIALIZER};
	tracker_set_event_fn(t, capture_fn, &hooks);
	struct reaper *r = reaper_new(p, NS, t, NULL, 24);
	reaper_set_refire_fn(r, capture_fn, &refires);

	const int64_t H = 3600;
	const struct job jobs[] = {
		/* 1: stats gone -> HDEL */
		{.id = "gone", .no_stats = true},
		/* 2: diff 0, final -> HDEL, stats untouched */
		{.id = "final_acked", .kind = "Generic", .status = "Success",
		 .revision = 100, .ack_status = "Success", .ack_revision = 100,
		 .hook = HOOK, .counter = "1"},
		/* 3: diff 0, Running for 25 h -> Error (with hook) */
		{.id = "stale_running", .kind = "Generic", .status = "Running",
		 .revision = 100, .update_age_s = 25 * H, .hook = HOOK,
		 .ack_status = "Running", .ack_revision = 100},
		/* 4: diff 0, Running for 1 h -> nothing */
		{.id = "fresh_running", .kind = "Generic", .status = "Running",
		 .revision = 100, .update_age_s = 1 * H, .hook = HOOK,
		 .ack_status = "Running", .ack_revision = 100},
		/* 5: a Periodic policy ACKed Scheduled 48 h ago: exempt (Q8) */
		{.id = "periodic", .kind = "Periodic", .status = "Scheduled",
		 .revision = 100, .update_age_s = 48 * H, .hook = HOOK,
		 .ack_status = "Scheduled", .ack_revision = 100},
		/* 6: an execution (kind Scheduled) is not exempt */
		{.id = "stale_execution", .kind = "Scheduled",
		 .status = "Scheduled", .revision = 100,
		 .update_age_s = 48 * H, .ack_status = "Scheduled",
		 .ack_revision = 100},
		/* 7: no ack, hook URL -> re-fire the stored state */
		{.id = "no_ack", .kind = "Generic", .status = "Running",
		 .revision = 100, .check_in_at = 123, .hook = HOOK},
		/* 8: no ack, no hook URL -> nothing */
		{.id = "no_ack_no_hook", .kind = "Generic", .status = "Success",
		 .revision = 100},
		/* 9: newer revision than the ack -> re-fire */
		{.id = "rev_newer", .kind = "Generic", .status = "Pending",
		 .revision = 200, .hook = HOOK, .ack_status = "Error",
		 .ack_revision = 100},
		/* 10: same revision and code, newer check-in -> re-fire */
		{.id = "checkin_newer", .kind = "Generic", .status = "Running",
		 .revision = 100, .check_in_at = 50, .hook = HOOK,
		 .ack_status = "Running", .ack_revision = 100,
		 .ack_check_in_at = 40},
		/* 11: status after the ack's -> re-fire */
		{.id = "status_ahead", .kind = "Generic", .status = "Success",
		 .revision = 100, .hook = HOOK, .ack_status = "Running",
		 .ack_revision = 100},
		/* 12: ack ahead (Success vs Running) -> CAS, no hook */
		{.id = "ack_ahead", .kind = "Generic", .status = "Running",
		 .revision = 100, .hook = HOOK, .ack_status = "Success",
		 .ack_revision = 100},
		/* 13: ack of a newer revision -> CAS with the stored one */
		{.id = "ack_rev_ahead", .kind = "Generic", .status = "Running",
		 .revision = 100, .hook = HOOK, .ack_status = "Error",
		 .ack_revision = 200},
		/* 14: ack ahead by check-in but Stopped -> Success refused */
		{.id = "ack_refused", .kind = "Generic", .status = "Stopped",
		 .revision = 100, .check_in_at = 0, .hook = HOOK,
		 .ack_status = "Success", .ack_revision = 100,
		 .ack_check_in_at = 10},
		/* 15: malformed counter -> skipped (even without stats) */
		{.id = "malformed", .no_stats = true, .counter = "abc"},
	};
	for (size_t i = 0; i < ARRAY_LEN(jobs); i++)
		put_job(p, &jobs[i]);

	long long before_hdel = action_count("hdel");
	long long before_error = action_count("error");
	long long before_refire = action_count("refire");
	long long before_ack = action_count("apply_ack");

	struct reaper_pass pass;
	struct berr e;
	berr_clear(&e);
	CHECK_MSG(reaper_reconcile(r, &pass, &e) == 0, "%s", e.msg);
	CHECK(pass.complete);
	CHECK_MSG(pass.scanned == ARRAY_LEN(jobs), "scanned %zu",
		  pass.scanned);
	CHECK_MSG(pass.hdel == 2, "hdel %zu", pass.hdel);
	CHECK_MSG(pass.error == 2, "error %zu", pass.error);
	CHECK_MSG(pass.refire == 4, "refire %zu", pass.refire);
	CHECK_MSG(pass.apply_ack == 2, "apply_ack %zu", pass.apply_ack);
	CHECK_MSG(pass.skipped == 5, "skipped %zu", pass.skipped);
	CHECK(pass.batches == 1); /* 15 entries: one small HSCAN */

	/* 1, 2 */
	CHECK(!tracked(p, "gone"));
	CHECK(!tracked(p, "final_acked"));
	char *s = status_of(p, "final_acked");
	CHECK_STR(s, "Success");
	free(s);

	/* 3: Error, through the tracker (its event fires the hook) */
	s = status_of(p, "stale_running");
	CHECK_STR(s, "Error");
	free(s);
	const struct captured *ev = find_event(&hooks, "stale_running");
	CHECK(ev != NULL);
	if (ev) {
		CHECK_STR(ev->status, "Error");
		CHECK(ev->revision == 100);
	}
	char *k = stats_key("stale_running");
	CHECK(test_redis_int(p, "TTL", k, NULL) > 600000); /* Error: 7 days */
	free(k);
	CHECK(tracked(p, "stale_running")); /* counter 2 -> 1: not ACKed */
	{
		char *c = hget(p, TRACK, "stale_running");
		CHECK_STR(c, "1");
		free(c);
	}

	/* 4, 5: untouched; 6: Error */
	s = status_of(p, "fresh_running");
	CHECK_STR(s, "Running");
	free(s);
	s = status_of(p, "periodic");
	CHECK_STR(s, "Scheduled");
	free(s);
	CHECK(find_event(&hooks, "periodic") == NULL);
	CHECK(tracked(p, "periodic"));
	s = status_of(p, "stale_execution");
	CHECK_STR(s, "Error");
	free(s);

	/* 7, 9, 10, 11: re-fired with the stored state, no check-in text */
	ev = find_event(&refires, "no_ack");
	CHECK(ev != NULL);
	if (ev) {
		CHECK_STR(ev->status, "Running");
		CHECK(ev->revision == 100);
		CHECK(ev->check_in_at == 123);
		CHECK(!ev->had_check_in);
	}
	ev = find_event(&refires, "rev_newer");
	CHECK(ev && strcmp(ev->status, "Pending") == 0 && ev->revision == 200);
	ev = find_event(&refires, "checkin_newer");
	CHECK(ev && ev->check_in_at == 50);
	ev = find_event(&refires, "status_ahead");
	CHECK(ev && strcmp(ev->status, "Success") == 0);
	CHECK(refires.n == 4);
	/* re-fires do not go through the tracker's hook */
	CHECK(find_event(&hooks, "no_ack") == NULL);
	/* 8: nothing for a job without a hook URL */
	CHECK(find_event(&refires, "no_ack_no_hook") == NULL);
	CHECK(tracked(p, "no_ack_no_hook"));
	s = status_of(p, "rev_newer");
	CHECK_STR(s, "Pending");
	free(s);

	/* 12, 13: the acknowledged status, written without a hook */
	s = status_of(p, "ack_ahead");
	CHECK_STR(s, "Success");
	free(s);
	s = status_of(p, "ack_rev_ahead");
	CHECK_STR(s, "Error");
	free(s);
	k = stats_key("ack_ahead");
	char *rev = hget(p, k, "revision");
	CHECK_STR(rev, "100");
	free(rev);
	free(k);
	CHECK(find_event(&hooks, "ack_ahead") == NULL);
	CHECK(find_event(&hooks, "ack_rev_ahead") == NULL);
	CHECK(find_event(&refires, "ack_ahead") == NULL);

	/* 14: refused by the CAS (Stopped -> Success), left alone */
	s = status_of(p, "ack_refused");
	CHECK_STR(s, "Stopped");
	free(s);
	CHECK(tracked(p, "ack_refused"));

	/* 15 */
	CHECK(tracked(p, "malformed"));

	/* only the two Error writes fired tracker events, and of those only
	 * the job with a hook URL (stale_running; tracker.h) */
	CHECK_MSG(hooks.n == 1, "%zu hooks", hooks.n);

	CHECK(action_count("hdel") == before_hdel + 2);
	CHECK(action_count("error") == before_error + 2);
	CHECK(action_count("refire") == before_refire + 4);
	CHECK(action_count("apply_ack") == before_ack + 2);

	/* second pass: ack_ahead is now final and ACKed -> untracked; the
	 * Error jobs have an older ack -> their hook is re-fired */
	capture_reset(&hooks);
	capture_reset(&refires);
	berr_clear(&e);
	CHECK_MSG(reaper_reconcile(r, &pass, &e) == 0, "%s", e.msg);
	CHECK(!tracked(p, "ack_ahead"));
	ev = find_event(&refires, "stale_running");
	CHECK(ev && strcmp(ev->status, "Error") == 0);
	CHECK(count_events(&refires, "stale_running") == 1);
	/* no hook URL: not re-fired */
	CHECK(find_event(&refires, "stale_execution") == NULL);
	CHECK(hooks.n == 0);

	reaper_free(r);
	tracker_set_event_fn(t, NULL, NULL);
}

/* ---- bounded scanning --------------------------------------------------- */

static void
test_bounded_scan(struct redis_pool *p, struct tracker *t)
{
	CHECK(test_redis_do(p, "FLUSHALL", NULL) == 0);
	const size_t N = 1000;
	for (size_t i = 0; i < N; i++) {
		char id[32];
		snprintf(id, sizeof(id), "bulk%04zu", i);
		struct job j = {.id = id, .no_stats = i % 2 == 0,
				.kind = "Generic", .status = "Success",
				.revision = 7, .ack_status = "Success",
				.ack_revision = 7, .counter = "1"};
		put_job(p, &j);
	}
	CHECK(test_redis_int(p, "HLEN", TRACK, NULL) == (long long)N);
	struct reaper *r = reaper_new(p, NS, t, NULL, 24);
	struct reaper_pass pass;
	struct berr e;
	berr_clear(&e);
	int64_t t0 = util_monotonic_ms();
	CHECK_MSG(reaper_reconcile(r, &pass, &e) == 0, "%s", e.msg);
	int64_t ms = util_monotonic_ms() - t0;
	CHECK(pass.complete);
	CHECK_MSG(pass.scanned >= N, "scanned %zu", pass.scanned);
	CHECK_MSG(pass.hdel >= N, "hdel %zu", pass.hdel);
	CHECK(test_redis_int(p, "HLEN", TRACK, NULL) == 0);
	/* COUNT 100: several batches, none near the whole hash, within the
	 * bound 4 * (1000/100 + 1) + 16 = 60 */
	CHECK_MSG(pass.batches >= 5 && pass.batches <= 60, "batches %zu",
		  pass.batches);
	CHECK_MSG(pass.max_batch <= 300, "max batch %zu", pass.max_batch);
	/* 20 ms pauses between batches */
	CHECK_MSG(ms >= (int64_t)(pass.batches - 1) * 18, "%lld ms for %zu "
		  "batches", (long long)ms, pass.batches);
	fprintf(stderr, "bounded scan: %zu entries, %zu batches (max %zu), "
		"%lld ms\n", pass.scanned, pass.batches, pass.max_batch,
		(long long)ms);
	reaper_free(r);
}

/* ---- the thread: both loops --------------------------------------------- */

static void
test_thread(struct test_redis *tr, struct redis_pool *p, struct tracker *t)
{
	CHECK(test_redis_do(p, "FLUSHALL", NULL) == 0);

	/* default timings: nothing within the first 10 s, prompt stop */
	struct reaper *r = reaper_new(p, NS, t, NULL, 24);
	CHECK(test_redis_do(p, "HSET", TRACK, "early", "2", NULL) == 0);
	struct berr e;
	berr_clear(&e);
	CHECK(reaper_start(r, &e) == 0);
	CHECK(reaper_start(r, &e) < 0); /* twice */
	util_sleep_ms(300);
	CHECK(tracked(p, "early"));
	int64_t t0 = util_monotonic_ms();
	reaper_stop(r);
	CHECK(util_monotonic_ms() - t0 < 1000);
	reaper_stop(r); /* idempotent */
	reaper_free(r);

	/* a status write lost to a Redis outage lands on the retry list */
	struct job_stats st;
	memset(&st, 0, sizeof(st));
	st.id = xstrdup("retried");
	st.status = xstrdup("Running");
	st.revision = 5;
	test_redis_kill9(tr);
	CHECK(tracker_set_status(t, &st, JOB_STATUS_SUCCESS, NULL, &e) ==
	      TRACKER_REDIS_ERROR);
	job_stats_fini(&st);
	CHECK(tracker_retry_count(t) == 1);
	CHECK(test_redis_restart(tr) == 0);
	CHECK(test_redis_do(p, "HSET", NS ":job_stats:retried", "status",
			    "Running", NULL) == 0);
	CHECK(test_redis_do(p, "HSET", NS ":job_stats:retried", "revision", "5",
			    NULL) == 0);
	CHECK(test_redis_do(p, "HSET", TRACK, "gone", "2", NULL) == 0);
	long long retry0 = action_count("retry_status");

	r = reaper_new(p, NS, t, NULL, 24);
	reaper_set_interval(r, 1); /* berth.reaper_interval_seconds */
	CHECK(reaper_start(r, &e) == 0);
	util_sleep_ms(200);
	CHECK(tracked(p, "gone")); /* first run after min(10, 1) s */
	int64_t deadline = util_monotonic_ms() + 5000;
	while (util_monotonic_ms() < deadline &&
	       (tracked(p, "gone") || tracker_retry_count(t) > 0))
		util_sleep_ms(50);
	CHECK(!tracked(p, "gone"));
	CHECK(tracker_retry_count(t) == 0);
	char *s = status_of(p, "retried");
	CHECK_STR(s, "Success");
	free(s);
	CHECK(action_count("retry_status") == retry0 + 1);

	/* and again one interval later */
	CHECK(test_redis_do(p, "HSET", TRACK, "gone_again", "2", NULL) == 0);
	deadline = util_monotonic_ms() + 5000;
	while (util_monotonic_ms() < deadline && tracked(p, "gone_again"))
		util_sleep_ms(50);
	CHECK(!tracked(p, "gone_again"));

	/* Redis away during a pass: the thread survives it */
	test_redis_kill9(tr);
	util_sleep_ms(1500);
	CHECK(test_redis_restart(tr) == 0);
	CHECK(test_redis_do(p, "HSET", TRACK, "after_outage", "2", NULL) == 0);
	/* a failed pass retries after min(interval, 60 s) = 1 s */
	deadline = util_monotonic_ms() + 5000;
	while (util_monotonic_ms() < deadline && tracked(p, "after_outage"))
		util_sleep_ms(50);
	CHECK(!tracked(p, "after_outage"));

	t0 = util_monotonic_ms();
	reaper_free(r);
	CHECK(util_monotonic_ms() - t0 < 1000);
	reaper_free(NULL);
}

int
main(void)
{
	struct test_redis tr;
	if (test_redis_start(&tr) < 0)
		return 1;
	struct redis_pool *p = test_redis_pool(&tr, 2000);
	struct tracker *t = tracker_new(p, NS);
	test_branches(p, t);
	test_bounded_scan(p, t);
	test_thread(&tr, p, t);
	tracker_free(t);
	redis_pool_free(p);
	test_redis_stop(&tr);
	TEST_DONE();
}

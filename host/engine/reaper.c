/* reaper.c - stats/ACK reconciliation (spec 9.3) and the status-update
 * retry loop (spec 4.6); see reaper.h.
 *
 * One thread sleeps on a ticker (common/ticker.h, CLOCK_MONOTONIC) until
 * the next of the two loops is due or reaper_stop wakes it. A pass checks
 * the stop flag before every entry and in every pause between batches.
 * Every read and write of the stats and of the in-progress hash goes
 * through the tracker, which owns both (no Redis here). The diff < 0
 * repair uses tracker_cas_status: tracker_set_status would fire a hook,
 * and spec 9.3 wants none there. */
#include "engine/reaper.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/ticker.h"
#include "hooks/hook.h"
#include "logs/log.h"
#include "metrics/metrics.h"
#include "store/queue_ops.h"

#define REAPER_FIRST_MS 10000
#define REAPER_PERIOD_MS (3600 * 1000)
#define REAPER_FAILED_RETRY_MS 60000
#define RETRY_PERIOD_MS (300 * 1000)
#define RETRY_JITTER_MS 10000
#define REAPER_SCAN_COUNT 100
#define REAPER_BATCH_PAUSE_MS 20
#define REAPER_MAX_BATCHES 1000000
#define DEFAULT_MAX_UPDATE_HOURS 24

struct reaper {
	struct tracker *tracker;
	int64_t max_update_s;
	tracker_event_fn refire;
	void *refire_data;

	int64_t first_ms;
	int64_t reconcile_ms;
	int64_t retry_ms;
	int64_t retry_jitter_ms;

	/* the dead set's bound (reaper_set_dead_bound); NULL: none */
	struct queue *dead_queue;
	int64_t dead_max_jobs, dead_max_age;

	pthread_t thread;
	bool started;
	struct ticker tick; /* the thread's waits; stopped by reaper_stop */
};

/* --- timing -------------------------------------------------------------- */

/* Sleeps up to ms; true (early) once the reaper is stopping. */
static bool
reaper_sleep(struct reaper *r, int64_t ms)
{
	return ticker_sleep(&r->tick, ms > 0 ? ms : 0);
}

static bool
reaper_stopping(struct reaper *r)
{
	return ticker_stopping(&r->tick);
}

static void
timings_init(struct reaper *r)
{
	r->first_ms = REAPER_FIRST_MS;
	r->reconcile_ms = REAPER_PERIOD_MS;
	r->retry_ms = RETRY_PERIOD_MS;
	r->retry_jitter_ms = RETRY_JITTER_MS;
}

void
reaper_set_interval(struct reaper *r, int seconds)
{
	if (seconds <= 0) {
		timings_init(r);
		return;
	}
	int64_t n = seconds;
	r->reconcile_ms = n * 1000;
	r->retry_ms = n * 1000;
	r->retry_jitter_ms = 0;
	r->first_ms = (n < 10 ? n : 10) * 1000;
}

void
reaper_set_dead_bound(struct reaper *r, struct queue *q, int64_t max_jobs,
		      int64_t max_age_seconds)
{
	r->dead_queue = q;
	r->dead_max_jobs = max_jobs;
	r->dead_max_age = max_age_seconds;
}

/* Trims NS:dead to its bound (Berth). */
static void
run_dead_trim(struct reaper *r)
{
	if (!r->dead_queue)
		return;
	struct berr err;
	berr_clear(&err);
	int64_t removed = 0;
	if (queue_dead_trim(r->dead_queue, r->dead_max_jobs, r->dead_max_age,
			    util_now(), &removed, &err) < 0) {
		log_warn("reaper: cannot trim the dead set: %s", err.msg);
		return;
	}
	if (removed > 0) {
		metrics_dead_trimmed((uint64_t)removed);
		log_info("reaper: %lld jobs trimmed off the dead set",
			 (long long)removed);
	}
}

/* --- the pass ------------------------------------------------------------ */

static const char *
ack_status(const struct job_stats *s)
{
	const char *v = json_str(s->ack, "status");
	return v ? v : "";
}

/* spec 9.3 step 2: the sign of stats - ack. */
static int
ack_diff(const struct job_stats *s)
{
	return job_ack_diff(s->ack, s->status, s->revision, s->check_in_at);
}

/* spec 9.3 step 5: CAS to the ACKed status with the stored revision, no
 * hook. 1 applied, 0 refused, -1 Redis error. */
static int
apply_ack(struct reaper *r, const struct job_stats *s, struct berr *err)
{
	const char *target = ack_status(s);
	if (job_status_code(target) < 0) {
		log_warn("reaper: job %s: ack status \"%.40s\" is not a "
			 "status; left alone", s->id, target);
		return 0;
	}
	char *current = NULL;
	enum tracker_cas cas = tracker_cas_status(r->tracker, s->id, target,
						  s->revision, &current, err);
	int rc = cas == TRACKER_OK ? 1 : cas == TRACKER_MISMATCH ? 0 : -1;
	if (rc == 0) {
		log_debug("reaper: job %s: ack status %s not applied (stored "
			  "%s)",
			  s->id, target, current ? current : "none");
		if (err)
			berr_clear(err); /* a refusal is no error here */
	}
	free(current);
	return rc;
}

/* One entry of the in-progress hash. 0 done, -1 Redis error. */
static int
reconcile_one(struct reaper *r, const char *id, struct reaper_pass *p,
	      struct berr *err)
{
	struct job_stats st;
	int lr = tracker_load(r->tracker, id, &st, err);
	if (lr < 0)
		return -1;
	if (lr == 1) {
		if (tracker_untrack(r->tracker, id, err) < 0)
			return -1;
		p->hdel++;
		metrics_reaper_action("hdel");
		log_debug("reaper: job %s: stats gone; untracked", id);
		return 0;
	}
	int rc = 0;
	int diff = ack_diff(&st);
	int64_t now = util_now();
	if (diff == 0 && job_status_final(st.status)) {
		rc = tracker_untrack(r->tracker, id, err);
		if (rc == 0) {
			p->hdel++;
			metrics_reaper_action("hdel");
		}
	} else if (diff == 0 && (!st.kind ||
				 strcmp(st.kind, JOB_KIND_PERIODIC) != 0) &&
		   st.update_time + r->max_update_s < now) {
		char *current = NULL;
		enum tracker_cas cas = tracker_set_status(
			r->tracker, &st, JOB_STATUS_ERROR, &current, err);
		if (cas == TRACKER_OK) {
			p->error++;
			metrics_reaper_action("error");
			log_warn("reaper: job %s (%s) not updated for more "
				 "than %lld h: set to Error",
				 id, st.name ? st.name : "",
				 (long long)(r->max_update_s / 3600));
		} else if (cas == TRACKER_MISMATCH) {
			p->skipped++;
			log_debug("reaper: job %s: Error not written, status "
				  "is %s",
				  id, current ? current : "none");
		} else {
			rc = -1; /* queued on the retry list by the tracker */
		}
		free(current);
	} else if (diff > 0 && st.web_hook_url && st.web_hook_url[0] &&
		   r->refire) {
		/* the stored state as loaded: status, revision, check_in_at;
		 * check_in is never loaded (no text) */
		r->refire(r->refire_data, &st, NULL);
		p->refire++;
		metrics_reaper_action("refire");
		log_debug("reaper: job %s: hook re-fired with status %s",
			  id, st.status ? st.status : "");
	} else if (diff < 0) {
		int ar = apply_ack(r, &st, err);
		if (ar < 0) {
			rc = -1;
		} else if (ar == 1) {
			p->apply_ack++;
			metrics_reaper_action("apply_ack");
			log_info("reaper: job %s: status set to the "
				 "acknowledged %s",
				 id, ack_status(&st));
		} else {
			p->skipped++;
		}
	} else {
		p->skipped++;
	}
	job_stats_fini(&st);
	return rc;
}

/* The most HSCAN calls one pass makes. */
static size_t
batch_bound(struct reaper *r, struct berr *err, int *rc)
{
	size_t n = 0;
	*rc = tracker_inprogress_count(r->tracker, &n, err);
	if (*rc < 0)
		return 0;
	size_t bound = (n / 100 + 1) * 4 + 16;
	return bound > REAPER_MAX_BATCHES ? REAPER_MAX_BATCHES : bound;
}

int
reaper_reconcile(struct reaper *r, struct reaper_pass *out, struct berr *err)
{
	struct reaper_pass p;
	memset(&p, 0, sizeof(p));
	int rc = 0;
	size_t bound = batch_bound(r, err, &rc);
	char cursor[32] = "0";
	while (rc == 0) {
		if (p.batches > 0 &&
		    reaper_sleep(r, REAPER_BATCH_PAUSE_MS))
			break;
		struct tracker_page page;
		rc = tracker_inprogress_scan(r->tracker, cursor,
					     REAPER_SCAN_COUNT, &page, err);
		if (rc < 0)
			break;
		p.batches++;
		snprintf(cursor, sizeof(cursor), "%s", page.cursor);
		if (page.n > p.max_batch)
			p.max_batch = page.n;
		for (size_t i = 0; i < page.n && rc == 0; i++) {
			if (reaper_stopping(r))
				break;
			p.scanned++;
			if (!page.ids[i]) {
				p.skipped++; /* the counter is not an integer */
				continue;
			}
			rc = reconcile_one(r, page.ids[i], &p, err);
		}
		tracker_page_fini(&page);
		if (rc < 0 || reaper_stopping(r))
			break;
		if (strcmp(cursor, "0") == 0) {
			p.complete = true;
			break;
		}
		if (p.batches >= bound) {
			log_warn("reaper: the in-progress hash still not "
				 "scanned after %zu batches; the next pass "
				 "starts over",
				 p.batches);
			break;
		}
	}
	if (out)
		*out = p;
	return rc;
}

/* --- the thread ---------------------------------------------------------- */

static int
run_reconcile(struct reaper *r)
{
	struct reaper_pass p;
	struct berr err;
	berr_clear(&err);
	int64_t t0 = util_monotonic_ms();
	int rc = reaper_reconcile(r, &p, &err);
	long long ms = (long long)(util_monotonic_ms() - t0);
	int64_t again_ms = r->reconcile_ms < REAPER_FAILED_RETRY_MS
				   ? r->reconcile_ms
				   : REAPER_FAILED_RETRY_MS;
	if (rc < 0) {
		log_warn("reaper: pass stopped after %zu entries: %s; again "
			 "in %lld s",
			 p.scanned, err.msg, (long long)(again_ms / 1000));
	} else if (p.hdel || p.error || p.refire || p.apply_ack) {
		log_info("reaper: %zu tracked job(s) in %lld ms: %zu "
			 "untracked, %zu set to Error, %zu hook(s) re-fired, "
			 "%zu ack(s) applied",
			 p.scanned, ms, p.hdel, p.error, p.refire, p.apply_ack);
	} else {
		log_debug("reaper: %zu tracked job(s) in %lld ms: nothing to "
			  "do",
			  p.scanned, ms);
	}
	return rc;
}

static void
run_retry(struct reaper *r)
{
	size_t before = tracker_retry_count(r->tracker);
	if (before == 0)
		return;
	size_t left = tracker_retry_pending(r->tracker);
	metrics_reaper_action_add("retry_status",
				  before > left ? before - left : 0);
}

static void *
reaper_main(void *arg)
{
	struct reaper *r = arg;
	int64_t now = util_monotonic_ms();
	int64_t next_rec = now + r->first_ms;
	int64_t next_retry = now + r->first_ms;
	for (;;) {
		now = util_monotonic_ms();
		int64_t next = next_rec < next_retry ? next_rec : next_retry;
		if (next > now && reaper_sleep(r, next - now))
			break;
		if (reaper_stopping(r))
			break;
		now = util_monotonic_ms();
		if (now >= next_retry) {
			run_retry(r);
			int64_t jitter =
				r->retry_jitter_ms > 0
					? (int64_t)util_random_below(
						  (uint32_t)r->retry_jitter_ms)
					: 0;
			next_retry = util_monotonic_ms() + r->retry_ms + jitter;
		}
		if (now >= next_rec) {
			run_dead_trim(r);
			int rc = run_reconcile(r);
			int64_t wait = r->reconcile_ms;
			if (rc < 0 && wait > REAPER_FAILED_RETRY_MS)
				wait = REAPER_FAILED_RETRY_MS;
			next_rec = util_monotonic_ms() + wait;
		}
	}
	return NULL;
}

/* --- life cycle ---------------------------------------------------------- */

struct reaper *
reaper_new(struct redis_pool *redis, const char *ns, struct tracker *tracker,
	   struct hook_agent *hooks, int max_update_hours)
{
	(void)redis, (void)ns; /* the tracker owns every key used here */
	struct reaper *r = xcalloc(1, sizeof(*r));
	r->tracker = tracker;
	r->max_update_s = (int64_t)(max_update_hours > 0
					    ? max_update_hours
					    : DEFAULT_MAX_UPDATE_HOURS) *
			  3600;
	if (hooks) {
		r->refire = hook_agent_submit;
		r->refire_data = hooks;
	}
	timings_init(r);
	ticker_init(&r->tick);
	return r;
}

void
reaper_set_refire_fn(struct reaper *r, tracker_event_fn fn, void *data)
{
	r->refire = fn;
	r->refire_data = data;
}

int
reaper_start(struct reaper *r, struct berr *err)
{
	if (r->started)
		return berr_set(err, "reaper already started");
	if (ticker_stopping(&r->tick)) { /* a restart after reaper_stop */
		ticker_fini(&r->tick);
		ticker_init(&r->tick);
	}
	if (pthread_create(&r->thread, NULL, reaper_main, r) != 0)
		return berr_set(err, "cannot start the reaper thread");
	r->started = true;
	log_info("reaper: reconciliation in %lld s, then every %lld s; "
		 "status retries every %lld s",
		 (long long)(r->first_ms / 1000),
		 (long long)(r->reconcile_ms / 1000),
		 (long long)(r->retry_ms / 1000));
	return 0;
}

void
reaper_stop(struct reaper *r)
{
	if (!r || !r->started)
		return;
	ticker_stop(&r->tick);
	pthread_join(r->thread, NULL);
	r->started = false;
}

void
reaper_free(struct reaper *r)
{
	if (!r)
		return;
	reaper_stop(r);
	ticker_fini(&r->tick);
	free(r);
}

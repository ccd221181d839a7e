/* reaper.h - the Harbor reaper's stats/ACK reconciliation (spec 9.3) and
 * the status-update retry loop (spec 4.6, 9.4), on one thread.
 *
 * Reconciliation walks NS:job_track:inprogress through the tracker, which
 * owns it (tracker_inprogress_scan: HSCAN COUNT 100), pausing 20 ms
 * between batches and stopping after a bound of batches derived from HLEN ((HLEN/100 + 1) x 4 + 16), so one pass never hogs
 * Redis nor runs forever on a hash that keeps growing. For every job id (entries
 * whose counter is not an integer are skipped):
 *   stats missing                    -> HDEL the entry             "hdel"
 *   diff == 0, final status          -> HDEL the entry             "hdel"
 *   diff == 0, non-final, not updated for max_update_hours, kind not
 *   Periodic (quirk Q8)              -> status Error (fires a hook) "error"
 *   diff > 0, web_hook_url set       -> re-fire the hook with the stored
 *                                       status, revision and check_in_at,
 *                                       no check-in text            "refire"
 *   diff < 0                         -> status CAS to ack.status with the
 *                                       stored revision, no hook  "apply_ack"
 * where diff compares the stats with their ack: no ack -> > 0; else the
 * revision, then the status code, then check_in_at. The quoted words are
 * the action labels of berth_reaper_actions_total; "retry_status" counts
 * status writes of the retry list that were resolved (applied or found
 * outdated) by tracker_retry_pending.
 *
 * Timings. Reconciliation: first 10 s after reaper_start (Go waits 5 min),
 * then every hour; 60 s after a pass that failed on Redis errors. Retry
 * loop: first after 10 s, then every 5 min + rand[0,10) s.
 * BERTH_REAPER_INTERVAL_SECONDS=N (1..86400, for tests) runs both loops
 * every N s without jitter, the first time after min(10, N) s.
 *
 * Like Go's, an HDEL of a finished job may race with a retry resetting it
 * (the entry is then gone for the new run); the window is one round trip. */
#ifndef BERTH_REAPER_H
#define BERTH_REAPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/tracker.h"

struct hook_agent;
struct redis_pool;
struct reaper;

/* What one reconciliation pass did. */
struct reaper_pass {
	size_t scanned;    /* entries looked at */
	size_t batches;    /* HSCAN calls */
	size_t max_batch;  /* most entries returned by one HSCAN */
	size_t hdel;
	size_t error;
	size_t refire;
	size_t apply_ack;
	size_t skipped;    /* nothing to do (or malformed counter) */
	bool complete;     /* the cursor came back to 0 */
};

/* hooks may be NULL (no re-fire). max_update_hours <= 0 means 24. redis
 * and ns are not used any more (the tracker owns every key the reaper
 * touches); they stay so callers need not change. Nothing runs before
 * reaper_start. */
struct reaper *reaper_new(struct redis_pool *redis, const char *ns,
			  struct tracker *tracker, struct hook_agent *hooks,
			  int max_update_hours);
/* Both loops every `seconds` (first pass after min(seconds, 10));
 * 0 restores the built-in timings (berth.reaper_interval_seconds,
 * BERTH_REAPER_INTERVAL_SECONDS). Call before reaper_start. */
void reaper_set_interval(struct reaper *r, int seconds);
struct queue;
/* Berth: each reconciliation pass first trims NS:dead to max_jobs members
 * and max_age_seconds (store/queue_ops.h queue_dead_trim; 0 = no age
 * bound), counting berth_dead_trimmed_total. Call before reaper_start. */
void reaper_set_dead_bound(struct reaper *r, struct queue *q,
			   int64_t max_jobs, int64_t max_age_seconds);
/* Starts the thread. */
int reaper_start(struct reaper *r, struct berr *err);
/* Stops the thread (an ongoing pass stops at the next entry). Idempotent. */
void reaper_stop(struct reaper *r);
/* Stops and frees. NULL-safe. */
void reaper_free(struct reaper *r);

/* Replaces how hooks are re-fired (default: hook_agent_submit on hooks).
 * For tests; call before reaper_start. */
void reaper_set_refire_fn(struct reaper *r, tracker_event_fn fn, void *data);

/* One reconciliation pass now, on the calling thread (the background
 * thread uses the same). Returns 0, or -1 with err on a Redis error (the
 * pass stops there; out tells what was done until then). */
int reaper_reconcile(struct reaper *r, struct reaper_pass *out,
		     struct berr *err);

#endif

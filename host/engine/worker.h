/* worker.h - the worker pool (spec 5.4, 5.5, 5.8, 5.9, 6.2-6.5, 9.1, 9.2):
 * `workers` threads, each with its own Redis connection, claiming messages
 * with the fetch script and running them through the Harbor runner in the
 * plugin; the requeuers of NS:scheduled / NS:retry; recovery of messages
 * left in-progress by dead pools (kill -9 of any instance loses no job);
 * stop, stop-grace reporting and graceful shutdown. */
#ifndef BERTH_WORKER_H
#define BERTH_WORKER_H

#include <stddef.h>

#include "store/heartbeat.h"
#include "plugins/plugin_host.h"
#include "store/queue.h"
#include "store/tracker.h"

struct joblog;

struct worker_pool_config {
	int workers;
	const char *pool_id;            /* from the heartbeat */
	const char *const *worker_ids;  /* workers entries, from the heartbeat */
	int shutdown_grace_seconds;     /* let running jobs finish on SIGTERM */
	int stop_grace_seconds;         /* report plugins ignoring stop after */
	int64_t max_job_duration_seconds; /* TTL of NS:worker:<id> (spec 5.9) */
	int job_log_level;              /* enum blog_level for job logs */
	struct joblog *joblog;          /* job loggers; NULL: service log */
	/* Berth: a job that used up its attempts goes to NS:dead, bounded
	 * by these (berth.dead_max_jobs, 0 = keep none; berth.dead_max_age_
	 * seconds, 0 = no age bound), trimmed after each insert */
	int64_t dead_max_jobs;
	int64_t dead_max_age_seconds;
};

struct worker_pool;

struct worker_pool *worker_pool_new(const struct worker_pool_config *cfg,
				    struct redis_pool *redis, const char *ns,
				    struct plugin_registry *plugins,
				    struct tracker *tracker,
				    struct queue *queue);
/* Starts the workers, the requeuers and the recovery loop. */
int worker_pool_start(struct worker_pool *wp, struct berr *err);
/* Graceful stop: no more fetches; running jobs get shutdown_grace_seconds
 * to finish, then are asked to stop (stop_requested() turns true) for up
 * to stop_grace_seconds (10 when 0); messages of jobs still running, and
 * of jobs that returned BERTH_RUN_STOPPED because of this stop, are left
 * in-progress for recovery (spec 9.1/9.2: the re-run resets the stats to a
 * new revision). Returns even when some run() never returns: those threads
 * are left behind (see worker_pool_abandoned). Call before heartbeat_stop,
 * so the pool's in-progress messages become recoverable only once nobody
 * of this pool works on them any more. */
void worker_pool_stop(struct worker_pool *wp);
void worker_pool_free(struct worker_pool *wp);

/* Number of jobs running now (for stats and tests): workers holding a
 * claim, from the fetch until just before the finishing transaction, plus
 * runs abandoned by worker_pool_stop until their run() returns. */
size_t worker_pool_busy(struct worker_pool *wp);

/* After worker_pool_stop: how many threads are still inside a plugin's
 * run() that ignored the stop. While it is non-zero the caller must keep
 * the plugin registry loaded (no plugin_registry_free: its code is still
 * running) and should simply exit; worker_pool_free then leaks the pool's
 * memory instead of freeing what those threads may read. */
size_t worker_pool_abandoned(struct worker_pool *wp);

/* Runs a recovery pass (dead pools, orphaned in-progress messages) now
 * instead of at the next 30 s tick; call it after a plugin reload added
 * job types. Returns at once. */
void worker_pool_recover_now(struct worker_pool *wp);

#endif

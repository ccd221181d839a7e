/* worker.h - the worker pool (spec 5.4, 5.5, 5.8, 5.9, 6.2-6.5, 9.1, 9.2):
 * `workers` threads, each with its own Redis connection, claiming messages
 * with the fetch script and running them through the Harbor runner in the
 * plugin; the requeuers of NS:scheduled / NS:retry; recovery of messages
 * left in-progress by dead pools (kill -9 of any instance loses no job);
 * stop, stop-grace reporting and graceful shutdown. */
#ifndef BERTH_WORKER_H
#define BERTH_WORKER_H

#include <stddef.h>

#include "heartbeat.h"
#include "plugin.h"
#include "queue.h"
#include "tracker.h"

struct worker_pool_config {
	int workers;
	const char *pool_id;            /* from the heartbeat */
	const char *const *worker_ids;  /* workers entries, from the heartbeat */
	int shutdown_grace_seconds;     /* let running jobs finish on SIGTERM */
	int stop_grace_seconds;         /* report plugins ignoring stop after */
	int64_t max_job_duration_seconds; /* TTL of NS:worker:<id> (spec 5.9) */
	int job_log_level;              /* enum blog_level for job logs */
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
 * to finish, then are asked to stop (stop_requested() turns true); messages
 * of jobs still running are left in-progress for recovery. */
void worker_pool_stop(struct worker_pool *wp);
void worker_pool_free(struct worker_pool *wp);

/* Number of jobs running now (for stats and tests). */
size_t worker_pool_busy(struct worker_pool *wp);

#endif

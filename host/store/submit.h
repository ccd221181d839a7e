/* submit.h - new jobs saved and enqueued in one round trip (issue 12):
 * the stats save of spec 3.3 (tracker.c's commands) and the enqueue of
 * spec 5 (queue.c's commands) of one or many fresh job ids in one
 * MULTI/EXEC, sent as one pipeline: one write, one read of every reply.
 * Used by POST /api/v1/jobs (one job) and POST /api/v1/jobs/batch.
 *
 * A fresh id has no stored revision, so unlike tracker_save there is no
 * HGET first: the revision is stats->revision when > 0, else now. Re-saves
 * of an existing job go through tracker_save.
 *
 * The transaction, for jobs 1..n:
 *   MULTI
 *     HMSET NS:job_stats:<id> <fields of spec 3.3>
 *     HSET  NS:job_track:inprogress <id> 2
 *     LPUSH NS:jobs:<T> <msg> | ZADD NS:scheduled <run_at> <msg> |
 *       EVAL <unique script> (unique messages, queue.h)
 *   ... then once:
 *     SADD  NS:berth:ready <types pushed to a queue>
 *     SADD  NS:known_jobs <types> (when not done in 300 s)
 *     LPUSH NS:berth:wakeup <one token per pushed message, at most 64>
 *     LTRIM NS:berth:wakeup 0 1023
 *   EXEC
 * Nothing is written when the transaction is refused (a command Redis did
 * not queue, e.g. OOM under maxmemory) or Redis cannot be reached before
 * EXEC. A command that fails inside EXEC (a key of the wrong type) fails
 * its job, and a unique job whose unique key exists is a duplicate: such a
 * job's stats (and its message, if it went in) are removed again with one
 * more round trip. */
#ifndef BERTH_SUBMIT_H
#define BERTH_SUBMIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "store/job_stats.h"
#include "store/message.h"
#include "store/queue.h"
#include "store/redis_conn.h"
#include "store/tracker.h"

/* The most jobs one call takes (the batch route's limit). */
#define SUBMIT_MAX_JOBS 1000

struct submit_job {
	/* in */
	struct job_stats *stats;        /* a fresh id's stats; update_time
					 * and revision are set on success */
	const struct job_message *msg;  /* its queue message */
	int64_t run_at;                 /* > 0: delayed, NS:scheduled */
	/* out */
	enum queue_enqueue_result result;
	char *error;                    /* why, unless QUEUE_ENQUEUED
					 * (submit_job_fini frees it) */
};

/* Saves and enqueues jobs[0..n) (n <= SUBMIT_MAX_JOBS) in one transaction
 * on p, the Redis pool t and q were made with.
 * Returns 0 when the transaction ran: each job's result says whether it
 * was enqueued. Returns -1 with err when it did not (Redis unreachable,
 * transaction refused): every result is QUEUE_ERROR and nothing was
 * written, except after a connection lost while EXEC was on its way
 * (then it cannot be known). With a sentinel pool, the jobs are also
 * waited for on a replica (redis_pool_wait_replica); a connection lost
 * there is -1 too (the jobs exist on the master, a failover may lose
 * them). */
int submit_jobs(struct redis_pool *p, struct tracker *t, struct queue *q,
		struct submit_job *jobs, size_t n, struct berr *err);
void submit_job_fini(struct submit_job *j);

#endif

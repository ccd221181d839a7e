/* drain.h - the two round trips of a drained job (issue 12).
 *
 * A worker claims a message with drain_claim(): one script that fetches
 * (spec 5.4, over the ready types only), loads the stats, writes Running
 * (or resets a retried job to a new revision first, spec 4.5) and records
 * the worker observation (spec 5.9). After the run, drain_complete() is one
 * script for the end of the claim (spec 5.5 step 4), the end of the
 * observation and the final status (spec 4.3). Everything stored is what
 * the single-purpose calls of queue.h, tracker.h and heartbeat.h write,
 * byte for byte; only the number of round trips differs.
 *
 * The ready index NS:berth:ready (keys.h) keeps the fetch cost flat in the
 * number of job types: a Berth enqueue adds the type in the transaction of
 * its push, the claim removes a type whose queue it finds empty. Messages
 * pushed by Go instances (which do not know the index) are found by a claim
 * with scan set, which first adds every served type with a non-empty queue;
 * the pool asks for one every few seconds. */
#ifndef BERTH_DRAIN_H
#define BERTH_DRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "store/job_stats.h"
#include "store/queue.h"
#include "store/redis_conn.h"
#include "common/util.h"

enum drain_decision {
	DRAIN_RUN,   /* was Pending/Scheduled, now Running */
	DRAIN_RESET, /* was Running/Error: new revision, now Running */
	DRAIN_FINAL, /* Stopped/Success: nothing written */
	DRAIN_HOST,  /* the caller tracks the job itself (spec 6.2) */
};

struct drain_claim {
	struct queue_claim c;
	enum drain_decision decision;
	bool more;      /* another ready type or message may be left */
	bool obs_args;  /* the observation's args are the caller's to write */
	char *job_id;   /* message_job_id(), NULL when not parsed */
	char *was;      /* RUN/RESET/FINAL: the status found */
	/* RUN/RESET/FINAL: as stored after the script; for a job without a
	 * web_hook_url only id, status, revision, kind and update_time (what
	 * the run needs; status events are for jobs with a hook) */
	struct job_stats stats;
};
void drain_claim_fini(struct drain_claim *d);

/* One worker's drain: the keys of its two scripts, built once. */
struct drain_worker;
struct drain_worker *drain_worker_new(struct redis_pool *redis,
				      const char *ns, const char *pool_id,
				      const char *worker_id);
void drain_worker_free(struct drain_worker *d);

/* Claims one message for the worker. obs_ttl: the observation's TTL.
 * Returns 1 with *out filled, 0 when nothing is claimable, 2 when the
 * pool's type hash is missing (write it with drain_pool_types and call
 * again), -1 with err. */
int drain_claim(struct drain_worker *d, int64_t obs_ttl, bool scan,
		struct drain_claim *out, struct berr *err);

enum drain_status {
	DRAIN_STATUS_OK,       /* written, or nothing to write */
	DRAIN_STATUS_MISMATCH, /* refused by the CAS; *stored holds the status */
	DRAIN_STATUS_ERROR,    /* Redis error: call again with again = true */
};

/* A claim to make in the same round trip as a completion (a worker that
 * goes on with the next message of a backlog): the claim of drain_claim,
 * after the completion. *rc gets drain_claim's return (a claim error is
 * only logged: the completion went through), *out the claim. */
struct drain_next {
	int64_t obs_ttl;
	bool scan;
	struct drain_claim *out;
	int *rc;
};

/* Ends claim c of the worker: the claim's end (as queue_finish, with the
 * ZADD of retry_msg to NS:retry at retry_at when non-NULL, to NS:dead
 * when dead: a given-up job, retry_at its death), DEL of the
 * observation, then the CAS of target (NULL = none) at revision for
 * job_id; then, with next, the next claim. again: an earlier call's reply
 * was lost; the status is then written only if the claim was still
 * there. *stored (may be NULL) gets the stored status on a mismatch (NULL
 * when absent). */
enum drain_status drain_complete(struct drain_worker *d,
				 const struct queue_claim *c,
				 const char *job_id, int64_t revision,
				 const char *target, bool again,
				 const char *retry_msg, int64_t retry_at,
				 bool dead, char **stored,
				 const struct drain_next *next,
				 struct berr *err);

/* Writes the pool's type hash (type -> priority), replacing it. */
int drain_pool_types(struct redis_pool *redis, const char *ns,
		     const char *pool_id, const char *const *names,
		     const uint32_t *prio, size_t n, struct berr *err);
/* (It is deleted with the pool's heartbeat, heartbeat_pool_forget.) */

/* Writes the observation's args (Go JSON of m's args) after a claim with
 * obs_args set. */
int drain_observation_args(struct drain_worker *d,
			   const struct job_message *m, struct berr *err);

#endif

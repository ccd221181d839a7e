/* queue.h - the queue engine of spec 5 (goharbor/work semantics), shared
 * with Go instances: enqueue (plain, delayed, unique), the claimed message
 * (the fetch itself is store/drain.h's claim script: priority order,
 * paused, global max_concurrency, in-progress bookkeeping), finish (LREM/DECR/HINCRBY + retry ZADD in one idempotent script), the
 * reconciliation of a live pool's own in-progress lists, the requeuers
 * of NS:scheduled and NS:retry, re-enqueue of a dead pool's in-progress
 * messages and stale-lock cleanup (spec 9.1, 9.2).
 *
 * Wake-up (Berth only): every enqueue also pushes the type name onto the
 * list NS:berth:wakeup (trimmed to 1024 entries). Idle Berth workers block
 * on it with BRPOP instead of sleeping, so a new job starts within
 * milliseconds; Go instances never read the key and keep polling. The claim
 * script (store/drain.h) stays the only way to claim a job. */
#ifndef BERTH_QUEUE_H
#define BERTH_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "store/message.h"
#include "store/redis_conn.h"
#include "common/util.h"

#define QUEUE_UNIQUE_TTL 86400
/* queue_figures reads at most this many job types. */
#define QUEUE_FIGURES_MAX 1024

struct queue;

struct queue *queue_new(struct redis_pool *redis, const char *ns);
void queue_free(struct queue *q);
const char *queue_ns(const struct queue *q);
/* The connection pool q runs its commands on (store/queue_ops.c). */
struct redis_pool *queue_redis(const struct queue *q);

enum queue_enqueue_result {
	QUEUE_ENQUEUED = 0,
	QUEUE_DUPLICATE = 1, /* unique key already present (spec 5.7) */
	QUEUE_ERROR = -1,
};

/* Encodes m (message_encode) and enqueues it in one MULTI/EXEC (one round
 * trip): LPUSH NS:jobs:<name> + SADD NS:berth:ready <name>, or ZADD
 * NS:scheduled <run_at> when run_at > 0; unique messages (m->unique) go
 * through the unique scripts. Then SADD NS:known_jobs (cached 300 s) and the
 * wake-up push, in the same transaction. */
enum queue_enqueue_result queue_enqueue(struct queue *q,
					const struct job_message *m,
					int64_t run_at, struct berr *err);

/* --- the enqueue as part of a caller's transaction (store-internal) ---
 *
 * queue_enqueue above and store/submit.c build the same commands:
 *   MULTI
 *     queue_enqueue_append for each message (the caller may put other
 *     commands around them, e.g. the stats save)
 *     queue_enqueue_close once
 *   EXEC
 * then queue_enqueue_verdict for each message and queue_enqueue_done once.
 * Builders of store/pipe.h; nothing above the store can call them. */
struct pipe;
struct pipe_tx;
struct redisReply;

/* The messages of one transaction: what queue_enqueue_close appends once
 * for all of them. Names are borrowed from the messages. */
struct queue_enq_set {
	const char **ready; /* distinct types pushed to their queue */
	size_t n_ready, cap_ready;
	const char **types; /* distinct types of every message */
	size_t n_types, cap_types;
	const char **known; /* types whose NS:known_jobs SADD is due */
	size_t n_known;
	size_t n_plain;     /* messages pushed to their queue */
	size_t first, n;    /* the commands queue_enqueue_close appended */
	size_t known_cmd;   /* the SADD NS:known_jobs among them */
};
void queue_enq_set_init(struct queue_enq_set *set);
void queue_enq_set_fini(struct queue_enq_set *set);

/* One message's enqueue in the transaction. */
struct queue_enq {
	size_t first, n; /* its commands in the pipeline */
	size_t verdict;  /* the one whose reply says enqueued or duplicate */
	bool unique;
	bool plain;      /* pushed to NS:jobs:T (not delayed) */
};
/* Appends the enqueue of m (raw: message_encode(m), borrowed) to b:
 * LPUSH NS:jobs:<name>, or ZADD NS:scheduled <run_at> when run_at > 0; a
 * unique message runs the unique script instead (EVAL of its source, so
 * no NOSCRIPT can split the transaction). Records m in set. */
void queue_enqueue_append(struct queue *q, struct pipe *b,
			  const struct job_message *m, const char *raw,
			  int64_t run_at, struct queue_enq_set *set,
			  struct queue_enq *out);
/* Appends, once per transaction: SADD NS:berth:ready <types pushed to a
 * queue> (keys.h; in the MULTI of their LPUSHes), SADD NS:known_jobs of
 * the types not added in 300 s, and for messages pushed to a queue
 * LPUSH NS:berth:wakeup (one token each, at most 64) + LTRIM. A unique
 * message that turns out a duplicate still counts here: a type in
 * NS:berth:ready whose queue is empty costs the fetch one look (it drops
 * the type), a spare wake-up one idle fetch. */
void queue_enqueue_close(struct queue *q, struct pipe *b,
			 struct queue_enq_set *set);
/* The outcome of e in the EXEC array ex of tx (name for messages). */
enum queue_enqueue_result queue_enqueue_verdict(const struct queue_enq *e,
						const struct pipe_tx *tx,
						const struct redisReply *ex,
						const char *name,
						struct berr *err);
/* After EXEC: remembers the NS:known_jobs SADD (cached 300 s) and logs a
 * failed close command (the messages are queued anyway). */
void queue_enqueue_done(struct queue *q, const struct queue_enq_set *set,
			const struct pipe_tx *tx, const struct redisReply *ex);
/* Appends what removes an enqueued m again (LREM 1 / ZREM of raw, and DEL
 * of its unique key): for a job whose stats could not be written in the
 * same transaction. */
void queue_enqueue_undo_append(struct queue *q, struct pipe *b,
			       const struct job_message *m, const char *raw,
			       int64_t run_at);

/* Removes the NS:scheduled members with score run_at whose id is job_id
 * (stop of a Scheduled job, spec 2.7), deleting their unique keys. Returns
 * the number removed or -1. */
int queue_unschedule(struct queue *q, int64_t run_at, const char *job_id,
		     struct berr *err);

/* The unique key of a message named name with args (spec 5.7):
 * NS:unique:<name>:<message_unique_args>. New string. */
char *queue_unique_key(const char *ns, const char *name, const cJSON *args);
/* Deletes the unique key of m (spec 5.5 step 1: uniqueness covers queued
 * messages only). 0, or -1 with err. */
int queue_release_unique(struct queue *q, const struct job_message *m,
			 struct berr *err);

/* A claimed message (drain_claim, store/drain.h). A message that does not parse is still claimed (it
 * sits in the in-progress list): parsed is false, parse_error says why, and
 * msg is zeroed; the caller finishes it without retry. */
struct queue_claim {
	char *raw;            /* the exact bytes in the in-progress list */
	char *type;           /* job type of the queue it came from */
	char *queue_key;
	char *inprogress_key;
	bool parsed;
	char *parse_error;    /* NULL when parsed */
	struct job_message msg;
};
void queue_claim_fini(struct queue_claim *c);

/* Finishes a claim (spec 5.5 step 4) in one script: LREM of the claimed
 * bytes and, only when that removed them, DECR lock, HINCRBY lock_info -1
 * and the ZADD of retry_msg (when non-NULL) to NS:retry at retry_at, or
 * to NS:dead when dead (Berth: a given-up job, the score its death). So
 * calling it again after a lost reply is safe: a finish that went through
 * is not applied twice. 0 (done, now or earlier), or -1 with err. */
int queue_finish(struct queue *q, const char *pool_id,
		 const struct queue_claim *c, const char *retry_msg,
		 int64_t retry_at, bool dead, struct berr *err);

/* The same script for a message of pool_id's NS:jobs:T:<pool>:inprogress
 * given by its exact bytes (raw): the message is replaced by msg in
 * NS:retry (or NS:dead when dead) at score. Recovery uses it for the job a
 * dead pool was running (a crash counts as a failed attempt). 1 moved, 0
 * raw was no longer there, -1 with err. */
int queue_fail_inprogress(struct queue *q, const char *pool_id,
			  const char *type, const char *raw, bool dead,
			  int64_t score, const char *msg, struct berr *err);

/* The messages of NS:jobs:T:<pool>:inprogress (LRANGE 0 -1), exact bytes.
 * *raws (n strings) is freed with queue_strv_free. 0, or -1 with err. */
int queue_inprogress_list(struct queue *q, const char *pool_id,
			  const char *type, char ***raws, size_t *n,
			  struct berr *err);

/* What queue_reconcile did for one type. */
struct queue_reconciled {
	long long moved;     /* members put back to NS:jobs:T */
	long long old_share; /* lock_info[pool] before */
	long long kept;      /* lock_info[pool] now */
};
/* A live pool's own bookkeeping of type T against the held messages (the
 * exact bytes of the claims its workers hold, n_held of them): every
 * member of NS:jobs:T:<pool>:inprogress that no worker holds goes back to
 * the queue, lock_info[pool] becomes the number held and lock moves by
 * the difference, in one script (SCRIPT_RECONCILE). Call it only while no
 * worker of the pool is inside a fetch. 0, or -1 with err. */
int queue_reconcile(struct queue *q, const char *pool_id, const char *type,
		    const char *const *held, size_t n_held,
		    struct queue_reconciled *out, struct berr *err);

/* True when c's message is no longer in its in-progress list (LPOS): a
 * finish whose reply was lost went through. False when it is still there
 * or Redis cannot tell. */
bool queue_claim_gone(struct queue *q, const struct queue_claim *c);

/* Blocks up to timeout_ms on the wake-up list (BRPOP). Returns 1 when woken,
 * 0 on timeout, -1 on error. The read timeout of the thread's connection is
 * lengthened for this one command (and restored), so a pool command timeout
 * shorter than timeout_ms is fine. Fractional timeouts need Redis >= 6;
 * older servers are detected and waited on in whole seconds. */
int queue_wait_wakeup(struct queue *q, int timeout_ms, struct berr *err);
/* Pushes count (at most 64) wake-ups, e.g. to end idle waits at shutdown.
 * Errors are ignored (a lost wake-up costs one idle wait). */
void queue_wake(struct queue *q, size_t count);

/* The two sorted sets of due messages. */
enum queue_zset {
	QUEUE_SCHEDULED, /* NS:scheduled, delayed messages */
	QUEUE_RETRY,     /* NS:retry, failed messages waiting for a retry */
};
/* "scheduled" or "retry", for messages. */
const char *queue_zset_name(enum queue_zset z);

/* spec 5.6: moves every due member of z to its queue (or to NS:dead when
 * its type is not in types; Berth passes every type any registered pool
 * serves, see scripts.h SCRIPT_REQUEUE). Returns how many moved or -1. Wakes idle
 * workers when something moved. */
int queue_requeue_due(struct queue *q, enum queue_zset z,
		      const char *const *types, size_t n, struct berr *err);
/* The same, but a due message whose type is not in types stops the pass
 * and stays where it is: returns QUEUE_REQUEUE_UNKNOWN (after *moved
 * messages were moved), so the caller can re-read the types the pools
 * serve before letting queue_requeue_due dead-letter it. Otherwise as
 * above (*moved = the return value). */
#define QUEUE_REQUEUE_UNKNOWN (-2)
int queue_requeue_due_ask(struct queue *q, enum queue_zset z,
			  const char *const *types, size_t n, int *moved,
			  struct berr *err);

/* spec 9.1: re-enqueues every in-progress message of pool over types, then
 * clears its stale locks. Returns the number of messages moved or -1. */
int queue_recover_pool(struct queue *q, const char *pool_id,
		       const char *const *types, size_t n, struct berr *err);

/* spec 9.2: the pools holding locks of type (fields of NS:jobs:T:lock_info
 * with a count above 0, read with HSCAN). *pools (n strings, no
 * duplicates) is freed with queue_strv_free. 0, or -1 with err. */
int queue_lock_holders(struct queue *q, const char *type, char ***pools,
		       size_t *n, struct berr *err);
void queue_strv_free(char **v, size_t n);

/* The queue figures of spec 12.4 as the dashboard reads them: the length
 * of each queue and the age of its oldest message. */
struct queue_figure {
	char *type;
	int64_t length;          /* LLEN NS:jobs:T (0 on a wrong type) */
	double latency_seconds;  /* now - t of the oldest message, 0 when
				  * empty */
};
/* The job names of NS:known_jobs: every type any instance (Go or Berth)
 * ever registered in this namespace. *out (n strings) is freed with
 * queue_strv_free. 0, or -1 with err. */
int queue_known_types(struct queue *q, char ***out, size_t *n,
		      struct berr *err);
/* Figures for every type of NS:known_jobs plus extra (n_extra names, e.g.
 * the loaded plugins), deduplicated, at most QUEUE_FIGURES_MAX, in that
 * order; one pipeline. *out (n entries) is freed with queue_figures_free.
 * 0, or -1 with err. */
int queue_figures(struct queue *q, const char *const *extra, size_t n_extra,
		  struct queue_figure **out, size_t *n, struct berr *err);
void queue_figures_free(struct queue_figure *f, size_t n);

/* spec 5.5: fails^4 + 15 + rand[0,30) * (fails + 1) seconds. */
int64_t queue_backoff_seconds(int64_t fails);

/* --- scheduled-set reads for the API --- */

/* One member of NS:scheduled: the raw message (len bytes) and its score
 * (run_at) as Redis wrote it. Valid during the call only. */
typedef void (*queue_scheduled_fn)(void *data, const char *raw, size_t len,
				   const char *score);
/* A page of NS:scheduled by score (ZRANGEBYSCORE -inf +inf WITHSCORES
 * LIMIT offset count; GET /api/v1/jobs?kind=Scheduled, spec 2.8): fn is
 * called for each member in order, *total gets ZCARD. 0, or -1 with err
 * (before any call of fn). */
int queue_scheduled_page(struct queue *q, uint64_t offset, uint32_t count,
			 queue_scheduled_fn fn, void *data, int64_t *total,
			 struct berr *err);

#endif

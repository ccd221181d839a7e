/* queue_ops.h - the operator's reads and actions on the queue engine's
 * structures (the Operations API, host/api/api_queues.c and
 * api_sets.c; the dead set's bound, engine/ and the reaper): per-type
 * queue figures, pause and resume (NS:jobs:T:paused as Harbor's dashboard
 * writes it, spec 12.4), taking the pending messages out of a queue
 * (stop all), and the sorted sets NS:scheduled, NS:retry and NS:dead read
 * in bounded chunks, moved between, trimmed.
 *
 * The same owner as queue.h (the queue engine's keys); a file of its own
 * so queue.c stays the engine's hot path. Every function uses the calling
 * thread's Redis connection; errors are -1 with err (a connection error
 * or an error reply). */
#ifndef BERTH_QUEUE_OPS_H
#define BERTH_QUEUE_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "store/queue.h"

/* Members read or moved per Redis call. */
#define QUEUE_SET_CHUNK 1000

/* The three sorted sets of messages (spec 5.1). */
enum queue_set {
	QUEUE_SET_SCHEDULED, /* NS:scheduled, score = run at */
	QUEUE_SET_RETRY,     /* NS:retry, score = retry at */
	QUEUE_SET_DEAD,      /* NS:dead, score = died at */
};
/* "scheduled", "retry", "dead". */
const char *queue_set_name(enum queue_set s);

/* --- per-type figures ---------------------------------------------------- */

struct queue_type_info {
	int64_t pending;         /* LLEN NS:jobs:T */
	int64_t oldest_t;        /* t of the oldest pending message, -1 when
				  * none (or it has no t) */
	bool paused;             /* NS:jobs:T:paused exists */
	int64_t max_concurrency; /* 0 when absent */
	int64_t lock;            /* NS:jobs:T:lock, 0 when absent */
	int64_t in_progress;     /* sum of LLEN NS:jobs:T:<pool>:inprogress
				  * over pools */
};
/* The figures of n types (out has n slots) over the np pools, in one
 * pipeline of n * (5 + np) commands. 0, or -1 with err. */
int queue_types_info(struct queue *q, const char *const *types, size_t n,
		     const char *const *pools, size_t np,
		     struct queue_type_info *out, struct berr *err);

/* SET NS:jobs:T:paused 1 (Harbor's dashboard's value) or DEL it. */
int queue_set_paused(struct queue *q, const char *type, bool paused,
		     struct berr *err);

/* Takes up to max of the oldest messages out of NS:jobs:T: LRANGE -max
 * -1 and LTRIM 0 -(max+1) in one MULTI/EXEC, so a worker's fetch (which
 * pops the tail too) never gets one of them. *raws (n strings, oldest
 * first) is freed with queue_strv_free. 0, or -1 with err (nothing
 * taken). */
int queue_take_pending(struct queue *q, const char *type, size_t max,
		       char ***raws, size_t *n, struct berr *err);

/* --- the sorted sets ------------------------------------------------------ */

/* One member: its exact bytes (len, NUL-terminated) and score. Returns
 * non-zero to stop the walk. */
typedef int (*queue_member_fn)(void *data, const char *raw, size_t len,
			       int64_t score);

/* ZCARD of s. */
int queue_set_size(struct queue *q, enum queue_set s, int64_t *n,
		   struct berr *err);
/* The members of s ranked [offset, offset + count) by score (ZRANGE
 * WITHSCORES in chunks of QUEUE_SET_CHUNK), lowest first; total (may be
 * NULL) gets ZCARD. Members moved by others between chunks may be seen
 * twice or not at all, as with any paged read. 0, or -1 with err. */
int queue_set_each(struct queue *q, enum queue_set s, uint64_t offset,
		   uint64_t count, queue_member_fn fn, void *data,
		   int64_t *total, struct berr *err);
/* Up to count members of s with a score above after (ZRANGEBYSCORE
 * (after +inf LIMIT 0 count), lowest first. 0, or -1 with err. */
int queue_set_after(struct queue *q, enum queue_set s, int64_t after,
		    uint32_t count, queue_member_fn fn, void *data,
		    struct berr *err);

/* For each i < n (at most QUEUE_SET_CHUNK): when raws[i] is still a
 * member of src, ZREM it and, when news[i] is non-NULL, ZADD news[i] to
 * dst at score (dst may be src: a new score). One script
 * (SCRIPT_SET_MOVE). *moved gets how many were members. 0, or -1. */
int queue_set_move(struct queue *q, enum queue_set src, enum queue_set dst,
		   const char *const *raws, const char *const *news,
		   size_t n, int64_t score, int64_t *moved, struct berr *err);

/* The dead set's bound: removes the members older than now - max_age
 * (max_age <= 0: no age bound) and all but the newest max_jobs
 * (max_jobs < 0: no size bound; 0 keeps none), in one pipeline.
 * *removed gets how many went. 0, or -1 with err. */
int queue_dead_trim(struct queue *q, int64_t max_jobs, int64_t max_age,
		    int64_t now, int64_t *removed, struct berr *err);

#endif

/* period_store.h - the Redis structures of the periodic scheduler (spec 8,
 * 12.1), shared with Go instances; their one owner. The scheduling logic
 * (host/periodic/) reaches them only through these functions.
 *
 *   NS:period:policies          zset, member = policy JSON, score = numeric
 *                               policy id
 *   NS:period:lock              SET NX EX <ttl> <node id> around the
 *                               enqueuer's "is it time?" check
 *   NS:last_periodic_enqueue_h  epoch of the last enqueue round
 *   NS:executions:<policy>      zset, member = execution id, score = run
 *                               epoch (-1 once finished)
 *   NS:scheduled                the periodic messages (written here; the
 *                               requeuer of store/queue.c moves them on)
 *
 * Scripts (store/scripts.h): SCRIPT_PERIOD_ADD_ONCE, _TRIM, _KNOWN and
 * _UNLOCK. Thread-safety: every function may be called from any thread;
 * each uses the calling thread's Redis connection. Errors: -1 with err
 * (a connection error or a Redis error reply). */
#ifndef BERTH_PERIOD_STORE_H
#define BERTH_PERIOD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct redis_pool;
struct period_store;

struct period_store *period_store_new(struct redis_pool *redis,
				      const char *ns);
/* NULL-safe. */
void period_store_free(struct period_store *ps);

/* ---- NS:period:policies ------------------------------------------------- */

/* Calls fn for every member (raw bytes, length, score) in score order; fn
 * returns non-zero to stop. 0, or -1 when the set could not be read. */
int period_store_policies_each(struct period_store *ps,
			       int (*fn)(const char *member, size_t len,
					 int64_t score, void *data),
			       void *data, struct berr *err);
/* Adds member at score unless some member already has that score (Q6).
 * Returns 1 when added, 0 when the score is taken, -1 on error. */
int period_store_policy_add(struct period_store *ps, const char *member,
			    int64_t score, struct berr *err);
/* ZREM of member. 0 or -1. */
int period_store_policy_remove(struct period_store *ps, const char *member,
			       struct berr *err);
/* Removes every member with score numeric_id. Returns how many were
 * removed, or -1. */
int period_store_policy_remove_id(struct period_store *ps,
				  int64_t numeric_id, struct berr *err);

/* ---- NS:period:lock and NS:last_periodic_enqueue_h ---------------------- */

/* SET lock node_id NX EX ttl. 1 when taken, 0 when held by someone, -1. */
int period_store_lock(struct period_store *ps, const char *node_id,
		      int ttl, struct berr *err);
/* Deletes the lock while it still holds node_id. 0 or -1. */
int period_store_unlock(struct period_store *ps, const char *node_id,
			struct berr *err);
/* The last enqueue epoch: 1 with *last set, 0 when absent or not a
 * decimal integer, -1 on error. */
int period_store_last_enqueue(struct period_store *ps, int64_t *last,
			      struct berr *err);
/* Sets the last enqueue epoch. 0 or -1. */
int period_store_set_last_enqueue(struct period_store *ps, int64_t epoch,
				  struct berr *err);

/* ---- NS:executions:<policy> --------------------------------------------- */

/* known[i] = whether ids[i] is a member of the policy's executions. 0 or
 * -1. */
int period_store_executions_known(struct period_store *ps,
				  const char *policy_id,
				  const char *const *ids, size_t n,
				  bool *known, struct berr *err);
/* The unfinished executions (score >= 0), oldest first: *ids is
 * NULL-terminated (free with period_store_ids_free), *n its length. 0 or
 * -1 (*ids NULL). */
int period_store_executions_unfinished(struct period_store *ps,
				       const char *policy_id, char ***ids,
				       size_t *n, struct berr *err);
/* Marks an execution finished (ZADD XX -1: never adds one). 0 or -1. */
int period_store_execution_finish(struct period_store *ps,
				  const char *policy_id,
				  const char *execution_id, struct berr *err);
/* The same for a caller that has no period_store (the worker, spec 6.2
 * step 7). */
int period_store_execution_finish_ns(struct redis_pool *redis,
				     const char *ns, const char *policy_id,
				     const char *execution_id,
				     struct berr *err);
/* Q17: removes finished executions whose stats hash has expired, looking
 * at most at scan of them (oldest first). Returns the number removed or
 * -1. */
int period_store_executions_trim(struct period_store *ps,
				 const char *policy_id, int scan,
				 struct berr *err);
/* How many executions there are; unfinished_only counts score >= 0 only.
 * 0 or -1. */
int period_store_executions_count(struct period_store *ps,
				  const char *policy_id, bool unfinished_only,
				  int64_t *total, struct berr *err);
/* One page of executions, newest first (highest score), skipping off;
 * unfinished_only as above. *ids as for _unfinished. 0 or -1. */
int period_store_executions_page(struct period_store *ps,
				 const char *policy_id, bool unfinished_only,
				 uint64_t off, uint32_t size, char ***ids,
				 size_t *n, struct berr *err);
/* Frees a NULL-terminated id list. NULL-safe. */
void period_store_ids_free(char **ids);

/* ---- NS:scheduled ------------------------------------------------------- */

/* ZADD NS:scheduled epoch msg (the message of one execution). 0 or -1. */
int period_store_schedule(struct period_store *ps, const char *msg,
			  int64_t epoch, struct berr *err);
/* Calls fn for every member of NS:scheduled with a score in [0, max]
 * (raw bytes, length, score), lowest first; fn returns non-zero to stop.
 * 0 or -1. */
int period_store_scheduled_each(struct period_store *ps, int64_t max,
				int (*fn)(const char *member, size_t len,
					  int64_t score, void *data),
				void *data, struct berr *err);

#endif

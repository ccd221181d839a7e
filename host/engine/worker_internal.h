/* worker_internal.h - what the files of the worker pool share (worker.c:
 * the pool, its worker threads and fetch loop, the requeuer and the
 * stop-grace monitor; worker_run.c: one claimed message through the Harbor
 * runner; worker_recover.c: recovery of dead pools and orphaned messages).
 * Not for use outside host/worker*.c. Locking: see worker.c. */
#ifndef BERTH_WORKER_INTERNAL_H
#define BERTH_WORKER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/ticker.h"
#include "engine/worker.h"
#include "store/drain.h"

#define FETCH_ERROR_FIRST_MS 10
#define FETCH_ERROR_MAX_MS 1000
/* A finish that cannot reach Redis is tried again after 100 ms, doubling
 * up to 5 s, for as long as the pool runs (worker_run.c finish_claim). */
#define FINISH_RETRY_FIRST_MS 100
#define FINISH_RETRY_MAX_MS 5000
#define DEFAULT_MAX_FAILS 4
#define NEVER_RETRY_FAILS 10000000000LL
/* The reason a job that was running when its daemon died is failed with
 * (worker_recover.c). */
#define DAEMON_DIED_REASON "the daemon died while running this job"

struct worker_pool;

struct worker {
	struct worker_pool *wp;
	size_t index;
	char *id;
	pthread_t thread;
	bool started;
	bool joined;
	atomic_bool exited;
	/* under wp->lock */
	bool busy;            /* holds a claim, until just before finishing */
	bool in_run;          /* inside the plugin's run() */
	uint64_t seq;         /* bumped for every run */
	char *job_id;
	char *job_type;
	int64_t stop_seen_ms; /* monotonic; 0 = no stop seen yet */
	bool grace_warned;
	bool abandoned;       /* left inside run() by worker_pool_stop */
	/* The claim this worker holds, from the fetch reply until its end
	 * is recorded in Redis (or the pool stops): the exact bytes in the
	 * in-progress list and the type. The reconciliation keeps exactly
	 * these in the pool's in-progress lists (worker_recover.c). */
	char *held_raw;
	char *held_type;
	struct drain_worker *drain; /* this thread's drain (store/drain.h) */
};

struct worker_pool {
	struct worker_pool_config cfg;
	char *pool_id;
	struct redis_pool *redis;
	char *ns;
	struct plugin_registry *plugins;
	struct tracker *tracker;
	struct queue *queue;

	struct worker *workers;
	size_t n;

	pthread_t requeuer, recovery, monitor;
	bool requeuer_started, recovery_started, monitor_started;
	bool started;
	bool stopped;

	pthread_mutex_t lock;
	pthread_cond_t cond;     /* monotonic; broadcast on a thread's exit
				  * and on abandonment */

	/* The waits. Stopped by worker_pool_stop (with wp->lock held, so a
	 * reader under wp->lock sees a consistent phase):
	 *   tick      stopping: no more fetches; every periodic loop and
	 *             idle wait ends;
	 *   forced    the forced-stop phase: stop_requested() is true for
	 *             every job; ends the waits of a running job;
	 *   recovery  the recovery loop; kicked by worker_pool_recover_now. */
	struct ticker tick;
	struct ticker forced;
	struct ticker recovery_tick;

	atomic_bool abandoned;   /* worker_pool_stop gave up on some runs */
	pthread_rwlock_t hook_lock;

	/* The fetch gate (under lock): `fetching` workers are inside
	 * drain_claim; while `reconciling`, no fetch starts, and the
	 * reconciliation starts only once fetching is 0, so every message
	 * a fetch claimed is already in some worker's held_raw. */
	size_t fetching;
	bool reconciling;
	atomic_bool reconcile_due;      /* Redis is back: reconcile soon */
	atomic_bool pass_due;           /* worker_pool_recover_now */
	atomic_bool finish_outage;      /* logged once per outage */
	atomic_bool fetch_outage;       /* logged once per outage */
	atomic_bool requeue_outage;
	atomic_llong last_redis_error_ms; /* monotonic, 0 = never */

	/* Idle waits (under lock): one idle worker, the leader, blocks on
	 * the wake-up list; the others wait on idle_cond until a claim that
	 * left more work kicks one of them (idle_kicks), or the leader, woken
	 * for a job, hands the wake-up list over (idle_handover). */
	pthread_cond_t idle_cond;
	bool idle_leader;
	size_t idle_waiting;
	size_t idle_kicks;      /* work kicks: claim */
	bool idle_handover;     /* a follower is to become the leader */

	/* The served types (worker.c types_sync), under types_lock. */
	pthread_mutex_t types_lock;
	char *types_sig;      /* names and priorities last written */
	int64_t types_at;     /* monotonic ms of the last load */
	size_t types_n;
	atomic_llong scan_at; /* monotonic ms of the last scanning claim */
	size_t n_abandoned;
};

/* --- small helpers (worker.c) --------------------------------------------- */

void worker_note_redis_error(struct worker_pool *wp);
/* Redis works again after errors: the recovery thread reconciles the
 * pool's own in-progress lists shortly (worker_recover.c). */
void worker_reconcile_soon(struct worker_pool *wp);
/* Forgets the claim w holds (its end is recorded, or it is left). */
void worker_release_claim(struct worker *w);

/* No more fetches: worker_pool_stop began. */
static inline bool
worker_pool_stopping(struct worker_pool *wp)
{
	return ticker_stopping(&wp->tick);
}

/* The forced-stop phase of worker_pool_stop began. */
static inline bool
worker_pool_forced(struct worker_pool *wp)
{
	return ticker_stopping(&wp->forced);
}

/* Loaded job types with their priorities. */
struct type_list {
	char **names;
	uint32_t *prio;
	size_t n;
};

void worker_type_list_load(struct worker_pool *wp, struct type_list *tl);
void worker_type_list_free(struct type_list *tl);

/* A host line in the job log of job_id: through the job loggers (the open
 * run of job_id, found by id, so any thread may call it) with the caller's
 * file:line; without job loggers, the service log tagged with the id. */
#define job_log(wp, level, type, job_id, ...)                                \
	worker_job_log_at((wp), (level), (type), (job_id), __FILE__,         \
			  __LINE__, __VA_ARGS__)

__attribute__((format(printf, 7, 8))) void
worker_job_log_at(const struct worker_pool *wp, int level, const char *type,
		  const char *job_id, const char *file, int line,
		  const char *fmt, ...);

/* --- one claimed message (worker_run.c) ----------------------------------- */

void worker_set_busy(struct worker *w, bool busy);
/* The fetch gate around every claim (see `fetching` above): enter waits
 * while the pool reconciles, false when it stops; leave makes c (NULL when
 * nothing was claimed) the worker's held claim. */
bool worker_fetch_gate_enter(struct worker_pool *wp);
void worker_fetch_gate_leave(struct worker *w, const struct queue_claim *c);
bool worker_process_claim(struct worker *w, struct queue_claim *c);
/* A claim of drain_claim(): the runner around the claim script's Running,
 * then drain_complete(); DRAIN_HOST claims go to worker_process_claim.
 * Same return. With next (may be NULL), the completion also claims the
 * worker's next message when it can (*next->rc = 1; 0 otherwise). */
bool worker_process_drained(struct worker *w, struct drain_claim *dc,
			    const struct drain_next *next);

/* --- recovery (worker_recover.c) ------------------------------------------ */

void *worker_recovery_main(void *arg);
/* The pool's own in-progress lists and lock shares against the claims
 * its workers hold (queue_reconcile for every loaded or held type). 0, or
 * -1 (Redis error, or fetches did not drain). */
int worker_reconcile_own(struct worker_pool *wp);
/* Types whose due messages the requeuer moves to their queue: own (tl)
 * plus the job_names of every registered pool and every name of
 * NS:known_jobs. New strings into *out (n),
 * freed with queue_strv_free. On a Redis error *out holds tl alone and
 * -1 is returned (then nothing may be dead-lettered); 0 otherwise. */
int worker_served_types(struct worker_pool *wp, const struct type_list *tl,
			char ***out, size_t *n);

/* After a given-up job went to NS:dead: trims the set to the pool's
 * dead_max_jobs / dead_max_age_seconds (counted in dead_trimmed_total);
 * errors only logged (the reaper trims again). worker_run.c. */
void worker_dead_trim(struct worker_pool *wp);

#endif

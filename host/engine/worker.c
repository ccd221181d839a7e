/* worker.c - the worker pool; see worker.h.
 *
 * Threads of one pool:
 *   worker  x N  claim (store/drain.h: fetch over the ready types in the
 *                priority-sampled order, stats, Running, observation: one
 *                script), run the Harbor runner (spec 6.2) around the
 *                plugin's run(), complete (end of the claim, observation
 *                and final status: one script). Idle workers: one leader
 *                blocks on the wake-up list (2 s, then a claim), the others
 *                wait on wp->idle_cond until kicked: by the leader when a
 *                wake-up came, by a claim that left more work. A claim
 *                that took the last ready message goes straight to the
 *                idle wait. Every 5 s one claim also scans every served
 *                queue for messages Go instances pushed;
 *   requeuer     every 1 s: due members of NS:scheduled and NS:retry, to
 *                the queue of any type some registered pool serves;
 *   recovery     after 1 s, then every 30 s (and on worker_pool_recover_now):
 *                this pool's own in-progress lists and lock shares
 *                (reconciliation), dead pools (spec 9.1; a job a dead pool
 *                was running counts as a failed attempt) and orphaned
 *                in-progress messages (spec 9.2); also 1 s after Redis
 *                answers again following errors: the reconciliation alone;
 *   monitor      every 1 s: jobs stopped in Redis whose run() has not
 *                returned after stop_grace_seconds get one warning.
 *
 * Files: this one holds the pool, the worker threads (fetch loop), the
 * requeuer and the monitor; worker_run.c runs one claimed message;
 * worker_recover.c holds the recovery passes.
 *
 * Waits go through the tickers of worker_internal.h (CLOCK_MONOTONIC).
 *
 * Locking. wp->lock guards the per-worker run state read by the monitor
 * and by worker_pool_stop (busy, in_run, job id/type, stop_seen_ms). The
 * run hooks that touch Redis (check-in, stop check) hold wp->hook_lock for
 * reading; worker_pool_stop takes it for writing to mark the pool
 * abandoned, so no hook of an abandoned run is half-way through the
 * tracker when the caller goes on to tear things down.
 *
 * Shutdown and abandoned runs. worker_pool_stop gives running jobs
 * shutdown_grace_seconds, then turns stop_requested() true (the forced-stop
 * phase) for stop_grace_seconds more. A plugin still inside run() after
 * that is abandoned: its thread is left running, and when run() finally
 * returns it exits at once without touching Redis, the tracker or the
 * registry (its job-type reference is leaked on purpose). The message of
 * such a job, like that of a job that returned BERTH_RUN_STOPPED because
 * of the shutdown, stays in the pool's in-progress list: once the
 * heartbeat is gone, recovery by another instance (or by this one after a
 * restart, spec 9.2) re-enqueues it, and the re-run resets the stats
 * (Running -> Pending, new revision, spec 4.5). worker_pool_free leaks the
 * pool's memory when an abandoned thread is still running, rather than
 * free what it may still read. */
#include "engine/worker.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plugins/hostapi.h"
#include "logs/joblog.h"
#include "logs/log.h"
#include "engine/worker_internal.h"
#include "common/gojson.h"

#define IDLE_WAIT_MAX_MS 1000
#define REQUEUE_PERIOD_MS 1000
#define MONITOR_PERIOD_MS 1000
#define DEFAULT_STOP_GRACE_S 10
#define SERVED_REFRESH_MS 5000
#define TYPES_REFRESH_MS 1000
#define SCAN_PERIOD_MS 5000
#define LEADER_WAIT_MS 2000
#define FOLLOWER_WAIT_MS 30000
#define SHUTDOWN_REPORT_MS 5000 /* the shutdown's countdown lines */
#define SHUTDOWN_IDS_MAX 10     /* job ids named in one line */

/* --- small helpers -------------------------------------------------------- */

void
worker_note_redis_error(struct worker_pool *wp)
{
	atomic_store(&wp->last_redis_error_ms, (long long)util_monotonic_ms());
}

void
worker_reconcile_soon(struct worker_pool *wp)
{
	atomic_store(&wp->reconcile_due, true);
	ticker_kick(&wp->recovery_tick);
}

void
worker_release_claim(struct worker *w)
{
	pthread_mutex_lock(&w->wp->lock);
	free(w->held_raw);
	free(w->held_type);
	w->held_raw = NULL;
	w->held_type = NULL;
	pthread_mutex_unlock(&w->wp->lock);
}

void
worker_type_list_load(struct worker_pool *wp, struct type_list *tl)
{
	memset(tl, 0, sizeof(*tl));
	tl->names = plugin_registry_names(wp->plugins, &tl->n);
	tl->prio = xcalloc(tl->n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < tl->n; i++) {
		struct job_type *t = plugin_acquire(wp->plugins, tl->names[i]);
		tl->prio[i] = t ? t->priority : 1;
		if (t)
			plugin_release(wp->plugins, t);
	}
}

void
worker_type_list_free(struct type_list *tl)
{
	plugin_names_free(tl->names);
	free(tl->prio);
	memset(tl, 0, sizeof(*tl));
}

void
worker_job_log_at(const struct worker_pool *wp, int level, const char *type,
		  const char *job_id, const char *file, int line,
		  const char *fmt, ...)
{
	struct joblog *jl = wp->cfg.joblog;
	if (level < (jl ? joblog_min_level(jl) : wp->cfg.job_log_level))
		return;
	char msg[HOSTAPI_LOG_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (jl)
		joblog_write_id(jl, job_id, level, file, line, "%s", msg);
	else
		blog_write(level, type ? type : "job", 0, "[job %s] %s",
			   job_id, msg);
}

/* --- the worker thread ---------------------------------------------------- */

static void
fetch_outage_begin(struct worker_pool *wp, const struct berr *err)
{
	worker_note_redis_error(wp);
	if (!atomic_exchange(&wp->fetch_outage, true))
		log_warn("worker pool %s: cannot fetch jobs: %s; retrying",
			 wp->pool_id, err->msg);
}

static void
fetch_outage_end(struct worker_pool *wp)
{
	if (atomic_load(&wp->fetch_outage) &&
	    atomic_exchange(&wp->fetch_outage, false)) {
		log_info("worker pool %s: fetching jobs again", wp->pool_id);
		/* a fetch that timed out here may have claimed a message
		 * in Redis all the same: reconciliation puts it back */
		worker_reconcile_soon(wp);
	}
}

/* The fetch gate (worker_internal.h): waits while the pool reconciles;
 * false when the pool is stopping. */
bool
worker_fetch_gate_enter(struct worker_pool *wp)
{
	pthread_mutex_lock(&wp->lock);
	while (wp->reconciling && !worker_pool_stopping(wp)) {
		struct timespec ts = ticker_deadline_in(100);
		pthread_cond_timedwait(&wp->cond, &wp->lock, &ts);
	}
	bool ok = !worker_pool_stopping(wp);
	if (ok)
		wp->fetching++;
	pthread_mutex_unlock(&wp->lock);
	return ok;
}

/* Leaves the gate; c (NULL when nothing was claimed) becomes w's held
 * claim in the same critical section. */
void
worker_fetch_gate_leave(struct worker *w, const struct queue_claim *c)
{
	struct worker_pool *wp = w->wp;
	pthread_mutex_lock(&wp->lock);
	wp->fetching--;
	if (c) {
		free(w->held_raw);
		free(w->held_type);
		w->held_raw = xstrdup(c->raw);
		w->held_type = xstrdup(c->type);
		w->busy = true;
	}
	if (wp->fetching == 0 && wp->reconciling)
		pthread_cond_broadcast(&wp->cond);
	pthread_mutex_unlock(&wp->lock);
}

/* Loads the served types at most every TYPES_REFRESH_MS (or now, with
 * force) and writes the pool's type hash (store/drain.h) when they
 * changed. Returns the number of types served. */
static size_t
types_sync(struct worker_pool *wp, bool force)
{
	int64_t now = util_monotonic_ms();
	pthread_mutex_lock(&wp->types_lock);
	if (!force && wp->types_sig && now - wp->types_at < TYPES_REFRESH_MS) {
		size_t n = wp->types_n;
		pthread_mutex_unlock(&wp->types_lock);
		return n;
	}
	struct type_list tl;
	worker_type_list_load(wp, &tl);
	struct gbuf sig = {0};
	for (size_t i = 0; i < tl.n; i++) {
		char num[16];
		snprintf(num, sizeof(num), "=%u,", tl.prio[i]);
		gbuf_puts(&sig, tl.names[i]);
		gbuf_puts(&sig, num);
	}
	char *s = tl.n ? gbuf_take(&sig) : xstrdup("");
	wp->types_at = now;
	wp->types_n = tl.n;
	if (force || !wp->types_sig || strcmp(s, wp->types_sig) != 0) {
		struct berr err;
		berr_clear(&err);
		free(wp->types_sig);
		wp->types_sig = NULL; /* written again next time on an error */
		if (drain_pool_types(wp->redis, wp->ns, wp->pool_id,
				     (const char *const *)tl.names, tl.prio,
				     tl.n, &err) == 0) {
			wp->types_sig = s;
			s = NULL;
		} else {
			log_debug("worker pool %s: types not written: %s",
				  wp->pool_id, err.msg);
		}
	}
	free(s);
	worker_type_list_free(&tl);
	size_t n = wp->types_n;
	pthread_mutex_unlock(&wp->types_lock);
	return n;
}

/* True once every SCAN_PERIOD_MS, for one claim of the pool: it looks at
 * every served queue (messages Go instances enqueued, store/drain.h). */
static bool
scan_due(struct worker_pool *wp)
{
	long long now = (long long)util_monotonic_ms();
	long long at = atomic_load(&wp->scan_at);
	return now - at >= SCAN_PERIOD_MS &&
	       atomic_compare_exchange_strong(&wp->scan_at, &at, now);
}

/* A failed claim or idle wait. The first failure is retried at once
 * without a word: an idle worker's connection may have died with a Redis
 * restart it slept through, and the retry dials again. Then the outage is
 * logged (once per outage) and the worker backs off, 10 ms doubling to
 * 1 s. */
static void
fetch_failed(struct worker_pool *wp, const struct berr *err,
	     int64_t *err_wait)
{
	worker_note_redis_error(wp);
	if (*err_wait == 0) {
		*err_wait = FETCH_ERROR_FIRST_MS / 2;
		return;
	}
	fetch_outage_begin(wp, err);
	*err_wait *= 2;
	if (*err_wait > FETCH_ERROR_MAX_MS)
		*err_wait = FETCH_ERROR_MAX_MS;
	ticker_sleep(&wp->tick, *err_wait);
}

/* Wakes one idle follower: a claim left more work. */
static void
idle_kick(struct worker_pool *wp)
{
	pthread_mutex_lock(&wp->lock);
	if (wp->idle_waiting > wp->idle_kicks + (wp->idle_handover ? 1 : 0)) {
		wp->idle_kicks++;
		pthread_cond_signal(&wp->idle_cond);
	}
	pthread_mutex_unlock(&wp->lock);
}

/* An idle wait. The first idle worker becomes the leader and blocks on
 * the wake-up list (queue_wait_wakeup) for up to LEADER_WAIT_MS; every
 * other one waits (FOLLOWER_WAIT_MS at most) for a kick: a work kick (a
 * claim left more work: claim) or the hand-over of a leader that woke for
 * a job (become the leader at once, without a claim that would find
 * nothing). So an idle pool costs one BRPOP per LEADER_WAIT_MS, not one
 * per worker, and a trickle of jobs one BRPOP and one claim per job.
 * Returns false on a Redis error (the caller backs off). */
static bool
idle_wait(struct worker_pool *wp, struct berr *err)
{
	pthread_mutex_lock(&wp->lock);
	for (;;) {
		if (worker_pool_stopping(wp))
			break;
		if (!wp->idle_leader) {
			wp->idle_leader = true;
			pthread_mutex_unlock(&wp->lock);
			int wr = queue_wait_wakeup(wp->queue, LEADER_WAIT_MS,
						   err);
			pthread_mutex_lock(&wp->lock);
			wp->idle_leader = false;
			/* woken for a job: a follower takes over the wake-up
			 * list at once (after a timeout the leader stays) */
			if (wr == 1 && wp->idle_waiting > 0 &&
			    !wp->idle_handover) {
				wp->idle_handover = true;
				pthread_cond_signal(&wp->idle_cond);
			}
			pthread_mutex_unlock(&wp->lock);
			return wr >= 0;
		}
		wp->idle_waiting++;
		struct timespec ts = ticker_deadline_in(FOLLOWER_WAIT_MS);
		bool timed_out = false;
		while (wp->idle_kicks == 0 && !wp->idle_handover &&
		       !worker_pool_stopping(wp)) {
			if (pthread_cond_timedwait(&wp->idle_cond, &wp->lock,
						   &ts) != 0) {
				timed_out = true;
				break;
			}
		}
		wp->idle_waiting--;
		if (wp->idle_kicks > 0) {
			wp->idle_kicks--;
			break; /* work: claim */
		}
		if (wp->idle_handover && !timed_out) {
			wp->idle_handover = false;
			continue; /* lead */
		}
		break;
	}
	pthread_mutex_unlock(&wp->lock);
	return true;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct worker_pool *wp = w->wp;
	int64_t err_wait = 0;
	int64_t obs_ttl = wp->cfg.max_job_duration_seconds > 0
				  ? wp->cfg.max_job_duration_seconds
				  : 86400;
	bool wait_first = false;
	struct drain_claim dc;
	bool have = false; /* dc came with the last completion */
	/* a claim that came with a completion is run even when the pool
	 * began to stop meanwhile (as a claim made just before the stop) */
	while (have || !worker_pool_stopping(wp)) {
		struct berr err;
		berr_clear(&err);
		if (!have) {
			if (types_sync(wp, false) == 0) {
				/* nothing to run: do not eat wake-ups meant
				 * for other instances */
				ticker_sleep(&wp->tick, IDLE_WAIT_MAX_MS);
				continue;
			}
			if (wait_first) {
				/* the last claim took the last ready
				 * message: wait for a wake-up (an enqueue
				 * since then left one) */
				wait_first = false;
				if (!idle_wait(wp, &err))
					fetch_failed(wp, &err, &err_wait);
				continue;
			}
			if (!worker_fetch_gate_enter(wp))
				break;
			int rc = drain_claim(w->drain, obs_ttl, scan_due(wp),
					     &dc, &err);
			worker_fetch_gate_leave(w, rc == 1 ? &dc.c : NULL);
			if (rc == 2) {
				/* the pool's type hash is gone (Redis
				 * restarted empty, FLUSHALL): write it
				 * again */
				types_sync(wp, true);
				continue;
			}
			if (rc < 0) {
				atomic_store(&wp->scan_at, 0); /* scan soon */
				fetch_failed(wp, &err, &err_wait);
				continue;
			}
			err_wait = 0;
			fetch_outage_end(wp);
			if (rc == 0) {
				if (!idle_wait(wp, &err))
					fetch_failed(wp, &err, &err_wait);
				continue;
			}
		}
		have = false;
		if (dc.more)
			idle_kick(wp);
		else
			wait_first = true;
		/* more work left: the completion claims the next message in
		 * the same round trip */
		struct drain_claim next;
		int next_rc = 0;
		struct drain_next nx = {obs_ttl, scan_due(wp), &next,
					&next_rc};
		bool keep = worker_process_drained(w, &dc,
						   dc.more ? &nx : NULL);
		blog_set_context(NULL, NULL); /* set by the claim's handling */
		drain_claim_fini(&dc);
		if (next_rc == 1) {
			dc = next;
			have = true;
			wait_first = false;
		} else if (next_rc == 2) {
			types_sync(wp, true);
		}
		if (!keep) {
			if (have)
				drain_claim_fini(&dc);
			break; /* abandoned: leave without touching Redis */
		}
	}
	/* the last touch of shared memory: worker_pool_free joins or leaks
	 * by this flag */
	pthread_mutex_lock(&wp->lock);
	w->busy = false;
	atomic_store(&w->exited, true);
	pthread_cond_broadcast(&wp->cond);
	pthread_mutex_unlock(&wp->lock);
	return NULL;
}

/* --- requeuer ------------------------------------------------------------- */

static void *
requeuer_main(void *arg)
{
	struct worker_pool *wp = arg;
	char **served = NULL;
	size_t n_served = 0;
	int64_t served_at = 0;
	while (!ticker_sleep(&wp->tick, REQUEUE_PERIOD_MS)) {
		struct type_list tl;
		worker_type_list_load(wp, &tl);
		if (tl.n == 0) {
			/* with no type every due message would go to dead */
			worker_type_list_free(&tl);
			continue;
		}
		/* what every registered pool serves, read every 5 s: a due
		 * message of a type only another instance runs goes to its
		 * queue, not to dead (spec 5.6 dead-letters it in Go) */
		int64_t now_ms = util_monotonic_ms();
		if (!served || now_ms - served_at >= SERVED_REFRESH_MS) {
			queue_strv_free(served, n_served);
			/* on an error the list holds our own types: the ask
			 * pass below dead-letters nothing with it */
			worker_served_types(wp, &tl, &served, &n_served);
			served_at = now_ms;
		}
		static const enum queue_zset zsets[] = {QUEUE_SCHEDULED,
							QUEUE_RETRY};
		bool failed = false;
		for (size_t i = 0; i < ARRAY_LEN(zsets); i++) {
			struct berr err;
			berr_clear(&err);
			const char *name = queue_zset_name(zsets[i]);
			int moved = 0;
			int rc = queue_requeue_due_ask(
				wp->queue, zsets[i],
				(const char *const *)served, n_served, &moved,
				&err);
			if (rc == QUEUE_REQUEUE_UNKNOWN) {
				/* a type outside our last read: read what the
				 * pools serve again before anything goes to
				 * dead (a Go pool may have just started) */
				queue_strv_free(served, n_served);
				served_at = util_monotonic_ms();
				if (worker_served_types(wp, &tl, &served,
							&n_served) < 0) {
					/* unsure: dead-letter nothing now */
					queue_strv_free(served, n_served);
					served = NULL;
					n_served = 0;
					berr_set(&err, "cannot read the job "
						       "types of the pools");
					rc = -1;
				} else {
					int more = queue_requeue_due(
						wp->queue, zsets[i],
						(const char *const *)served,
						n_served, &err);
					rc = more < 0 ? -1 : moved + more;
				}
			}
			moved = rc < 0 ? -1 : rc;
			if (moved < 0) {
				failed = true;
				worker_note_redis_error(wp);
				if (!atomic_exchange(&wp->requeue_outage, true))
					log_warn("requeue of %s:%s failed: %s",
						 wp->ns, name, err.msg);
				break;
			}
			if (moved > 0)
				log_debug("requeued %d due message(s) of "
					  "%s:%s",
					  moved, wp->ns, name);
		}
		if (!failed && atomic_exchange(&wp->requeue_outage, false))
			log_info("requeuers work again");
		worker_type_list_free(&tl);
	}
	queue_strv_free(served, n_served);
	return NULL;
}

/* --- stop-grace monitor --------------------------------------------------- */

static void
monitor_pass(struct worker_pool *wp)
{
	int64_t grace_ms = (int64_t)(wp->cfg.stop_grace_seconds > 0
					     ? wp->cfg.stop_grace_seconds
					     : DEFAULT_STOP_GRACE_S) *
			   1000;
	for (size_t i = 0; i < wp->n; i++) {
		struct worker *w = &wp->workers[i];
		pthread_mutex_lock(&wp->lock);
		bool watch = w->in_run && !w->grace_warned;
		uint64_t seq = w->seq;
		int64_t seen = w->stop_seen_ms;
		char *id = watch ? xstrdup(w->job_id) : NULL;
		char *type = watch ? xstrdup(w->job_type) : NULL;
		pthread_mutex_unlock(&wp->lock);
		if (!watch)
			continue;
		int64_t now = util_monotonic_ms();
		if (seen == 0) {
			char *status = NULL;
			struct berr err;
			berr_clear(&err);
			if (tracker_get_status(wp->tracker, id, &status,
					       &err) == 0 &&
			    status && strcmp(status, JOB_STATUS_STOPPED) == 0) {
				pthread_mutex_lock(&wp->lock);
				if (w->seq == seq && w->in_run &&
				    w->stop_seen_ms == 0)
					w->stop_seen_ms = now;
				pthread_mutex_unlock(&wp->lock);
			}
			free(status);
		} else if (now - seen >= grace_ms) {
			bool warn = false;
			pthread_mutex_lock(&wp->lock);
			if (w->seq == seq && w->in_run && !w->grace_warned) {
				w->grace_warned = true;
				warn = true;
			}
			pthread_mutex_unlock(&wp->lock);
			if (warn) {
				long long secs =
					(long long)((now - seen) / 1000);
				log_warn("job %s (%s) ignores stop for %lld s",
					 id, type, secs);
				job_log(wp, BLOG_WARNING, type, id,
					"job %s (%s) ignores stop for %lld s",
					id, type, secs);
			}
		}
		free(id);
		free(type);
	}
}

static void *
monitor_main(void *arg)
{
	struct worker_pool *wp = arg;
	while (!ticker_sleep(&wp->tick, MONITOR_PERIOD_MS))
		monitor_pass(wp);
	return NULL;
}

/* --- the pool ------------------------------------------------------------- */

struct worker_pool *
worker_pool_new(const struct worker_pool_config *cfg,
		struct redis_pool *redis, const char *ns,
		struct plugin_registry *plugins, struct tracker *tracker,
		struct queue *queue)
{
	struct worker_pool *wp = xcalloc(1, sizeof(*wp));
	wp->cfg = *cfg;
	wp->cfg.worker_ids = NULL;
	wp->cfg.pool_id = NULL;
	wp->n = cfg->workers > 0 ? (size_t)cfg->workers : 0;
	if (cfg->pool_id && cfg->pool_id[0]) {
		wp->pool_id = xstrdup(cfg->pool_id);
	} else {
		char id[25];
		util_hex24(id);
		wp->pool_id = xstrdup(id);
	}
	wp->cfg.pool_id = wp->pool_id;
	wp->redis = redis;
	wp->ns = xstrdup(ns);
	wp->plugins = plugins;
	wp->tracker = tracker;
	wp->queue = queue;
	wp->workers = xcalloc(wp->n ? wp->n : 1, sizeof(struct worker));
	for (size_t i = 0; i < wp->n; i++) {
		struct worker *w = &wp->workers[i];
		w->wp = wp;
		w->index = i;
		if (cfg->worker_ids && cfg->worker_ids[i]) {
			w->id = xstrdup(cfg->worker_ids[i]);
		} else {
			char id[25];
			util_hex24(id);
			w->id = xstrdup(id);
		}
		atomic_init(&w->exited, false);
		w->drain = drain_worker_new(redis, ns, wp->pool_id, w->id);
	}
	pthread_mutex_init(&wp->lock, NULL);
	ticker_cond_init(&wp->cond);
	ticker_init(&wp->tick);
	ticker_init(&wp->forced);
	ticker_init(&wp->recovery_tick);
	pthread_rwlock_init(&wp->hook_lock, NULL);
	ticker_cond_init(&wp->idle_cond);
	pthread_mutex_init(&wp->types_lock, NULL);
	atomic_init(&wp->scan_at, 0);
	atomic_init(&wp->abandoned, false);
	atomic_init(&wp->fetch_outage, false);
	atomic_init(&wp->finish_outage, false);
	atomic_init(&wp->reconcile_due, false);
	atomic_init(&wp->pass_due, false);
	atomic_init(&wp->requeue_outage, false);
	atomic_init(&wp->last_redis_error_ms, 0);
	return wp;
}

int
worker_pool_start(struct worker_pool *wp, struct berr *err)
{
	if (wp->started)
		return berr_set(err, "worker pool already started");
	wp->started = true;
	for (size_t i = 0; i < wp->n; i++) {
		struct worker *w = &wp->workers[i];
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			berr_set(err, "cannot start worker thread %zu", i);
			worker_pool_stop(wp);
			return -1;
		}
		w->started = true;
	}
	if (pthread_create(&wp->requeuer, NULL, requeuer_main, wp) != 0) {
		berr_set(err, "cannot start the requeuer thread");
		worker_pool_stop(wp);
		return -1;
	}
	wp->requeuer_started = true;
	if (pthread_create(&wp->recovery, NULL, worker_recovery_main,
			   wp) != 0) {
		berr_set(err, "cannot start the recovery thread");
		worker_pool_stop(wp);
		return -1;
	}
	wp->recovery_started = true;
	if (pthread_create(&wp->monitor, NULL, monitor_main, wp) != 0) {
		berr_set(err, "cannot start the monitor thread");
		worker_pool_stop(wp);
		return -1;
	}
	wp->monitor_started = true;
	log_info("worker pool %s: %zu workers started", wp->pool_id, wp->n);
	return 0;
}

/* Workers still holding a claim (or inside run()), under wp->lock. */
static size_t
busy_locked(struct worker_pool *wp)
{
	size_t busy = 0;
	for (size_t i = 0; i < wp->n; i++)
		if (wp->workers[i].busy || wp->workers[i].in_run)
			busy++;
	return busy;
}

/* Workers still running (their thread has not left its loop), under
 * wp->lock. */
static size_t
running_locked(struct worker_pool *wp)
{
	size_t n = 0;
	for (size_t i = 0; i < wp->n; i++) {
		const struct worker *w = &wp->workers[i];
		if (w->started && !atomic_load(&w->exited))
			n++;
	}
	return n;
}

/* "2 running jobs: <id> (DEMO), <id> (SLACK)" of the workers holding a
 * claim, under wp->lock; n gets their number. */
static void
describe_busy_locked(struct worker_pool *wp, char *buf, size_t size,
		     size_t *n)
{
	size_t busy = busy_locked(wp), named = 0, off = 0;
	int m = snprintf(buf, size, "%zu running job%s", busy,
			 busy == 1 ? "" : "s");
	off = m > 0 ? (size_t)m : 0;
	for (size_t i = 0; i < wp->n && off < size; i++) {
		const struct worker *w = &wp->workers[i];
		if (!w->in_run || !w->job_id)
			continue; /* claimed, not (or no longer) in run() */
		if (named == SHUTDOWN_IDS_MAX) {
			snprintf(buf + off, size - off, ", ...");
			break;
		}
		m = snprintf(buf + off, size - off, "%s%s (%s)",
			     named ? ", " : ": ", w->job_id,
			     w->job_type ? w->job_type : "?");
		off += m > 0 ? (size_t)m : 0;
		named++;
	}
	*n = busy;
}

/* Waits up to ms for every worker thread to leave its loop (each finishes
 * the message it holds first); true when they all did. While jobs run,
 * says every SHUTDOWN_REPORT_MS which ones it waits for and how long it
 * still waits (what: "to finish" or "to stop"). */
static bool
wait_workers_done(struct worker_pool *wp, int64_t ms, const char *what)
{
	int64_t end = util_monotonic_ms() + ms;
	pthread_mutex_lock(&wp->lock);
	for (;;) {
		int64_t now = util_monotonic_ms();
		if (running_locked(wp) == 0 || now >= end)
			break;
		int64_t step = end - now < SHUTDOWN_REPORT_MS
				       ? end - now
				       : SHUTDOWN_REPORT_MS;
		struct timespec ts = ticker_deadline_in(step);
		while (running_locked(wp) > 0 &&
		       pthread_cond_timedwait(&wp->cond, &wp->lock, &ts) == 0)
			;
		now = util_monotonic_ms();
		if (running_locked(wp) == 0 || now >= end)
			break;
		char jobs[1024];
		size_t n;
		describe_busy_locked(wp, jobs, sizeof(jobs), &n);
		if (n > 0)
			log_info("shutdown: still waiting for %s %s, %lld s "
				 "left",
				 jobs, what, (long long)((end - now + 999) / 1000));
	}
	bool done = running_locked(wp) == 0;
	pthread_mutex_unlock(&wp->lock);
	return done;
}

static void
join_thread(pthread_t *t, bool *started)
{
	if (*started) {
		pthread_join(*t, NULL);
		*started = false;
	}
}

void
worker_pool_stop(struct worker_pool *wp)
{
	if (!wp || wp->stopped)
		return;
	wp->stopped = true;
	if (!wp->started)
		return;
	pthread_mutex_lock(&wp->lock);
	ticker_stop(&wp->tick);
	ticker_stop(&wp->recovery_tick);
	pthread_cond_broadcast(&wp->idle_cond);
	pthread_mutex_unlock(&wp->lock);
	/* end idle BRPOPs now rather than after their timeout */
	queue_wake(wp->queue, wp->n);

	int64_t grace = wp->cfg.shutdown_grace_seconds > 0
				? (int64_t)wp->cfg.shutdown_grace_seconds * 1000
				: 0;
	char jobs[1024];
	size_t busy;
	pthread_mutex_lock(&wp->lock);
	describe_busy_locked(wp, jobs, sizeof(jobs), &busy);
	pthread_mutex_unlock(&wp->lock);
	if (busy > 0 && grace > 0)
		log_info("shutdown: waiting up to %lld s for %s to finish "
			 "(berth.shutdown_grace_seconds)",
			 (long long)(grace / 1000), jobs);
	if (!wait_workers_done(wp, grace, "to finish")) {
		pthread_mutex_lock(&wp->lock);
		describe_busy_locked(wp, jobs, sizeof(jobs), &busy);
		ticker_stop(&wp->forced);
		pthread_mutex_unlock(&wp->lock);
		int64_t sg = wp->cfg.stop_grace_seconds > 0
				     ? wp->cfg.stop_grace_seconds
				     : DEFAULT_STOP_GRACE_S;
		log_info("worker pool %s: the shutdown grace is over with %s; "
			 "asking them to stop (up to %lld s, "
			 "berth.stop_grace_seconds)",
			 wp->pool_id, jobs, (long long)sg);
		wait_workers_done(wp, sg * 1000, "to stop");
	}

	/* Whatever is still inside run() now is abandoned. Taking the hook
	 * lock for writing waits for hooks half-way through the tracker. */
	pthread_rwlock_wrlock(&wp->hook_lock);
	pthread_mutex_lock(&wp->lock);
	for (size_t i = 0; i < wp->n; i++) {
		struct worker *w = &wp->workers[i];
		if (w->started && w->in_run) {
			w->abandoned = true;
			wp->n_abandoned++;
			log_warn("job %s (%s) did not return from run() "
				 "after stop; its thread is left behind and "
				 "its message stays in progress for recovery",
				 w->job_id, w->job_type);
		}
	}
	if (wp->n_abandoned)
		atomic_store(&wp->abandoned, true);
	pthread_cond_broadcast(&wp->cond);
	pthread_mutex_unlock(&wp->lock);
	pthread_rwlock_unlock(&wp->hook_lock);
	/* An abandoned run is no crash: drop its observation so recovery
	 * re-enqueues its message without counting a failed attempt. */
	for (size_t i = 0; i < wp->n; i++) {
		struct worker *w = &wp->workers[i];
		struct berr err;
		berr_clear(&err);
		if (w->abandoned &&
		    heartbeat_observe_end(wp->redis, wp->ns, w->id, &err) < 0)
			log_debug("worker %s: observation not removed: %s",
				  w->id, err.msg);
	}

	for (size_t i = 0; i < wp->n; i++) {
		struct worker *w = &wp->workers[i];
		if (w->started && !w->abandoned) {
			pthread_join(w->thread, NULL);
			w->joined = true;
		}
	}
	join_thread(&wp->requeuer, &wp->requeuer_started);
	join_thread(&wp->recovery, &wp->recovery_started);
	join_thread(&wp->monitor, &wp->monitor_started);
	log_info("worker pool %s stopped%s", wp->pool_id,
		 wp->n_abandoned ? " (some runs left behind)" : "");
}

size_t
worker_pool_abandoned(struct worker_pool *wp)
{
	if (!wp)
		return 0;
	size_t n = 0;
	pthread_mutex_lock(&wp->lock);
	for (size_t i = 0; i < wp->n; i++)
		if (wp->workers[i].abandoned &&
		    !atomic_load(&wp->workers[i].exited))
			n++;
	pthread_mutex_unlock(&wp->lock);
	return n;
}

void
worker_pool_free(struct worker_pool *wp)
{
	if (!wp)
		return;
	worker_pool_stop(wp);
	bool leak = false;
	for (size_t i = 0; i < wp->n; i++) {
		struct worker *w = &wp->workers[i];
		if (!w->started || w->joined)
			continue;
		if (atomic_load(&w->exited)) {
			pthread_join(w->thread, NULL);
			w->joined = true;
		} else {
			pthread_detach(w->thread);
			w->joined = true;
			leak = true;
		}
	}
	if (leak) {
		/* an abandoned run may still read the pool: leak it */
		log_warn("worker pool %s: memory left to abandoned runs",
			 wp->pool_id);
		return;
	}
	for (size_t i = 0; i < wp->n; i++) {
		free(wp->workers[i].id);
		free(wp->workers[i].job_id);
		free(wp->workers[i].job_type);
		free(wp->workers[i].held_raw);
		free(wp->workers[i].held_type);
		drain_worker_free(wp->workers[i].drain);
	}
	free(wp->workers);
	pthread_rwlock_destroy(&wp->hook_lock);
	pthread_cond_destroy(&wp->idle_cond);
	pthread_mutex_destroy(&wp->types_lock);
	free(wp->types_sig);
	ticker_fini(&wp->recovery_tick);
	ticker_fini(&wp->forced);
	ticker_fini(&wp->tick);
	pthread_cond_destroy(&wp->cond);
	pthread_mutex_destroy(&wp->lock);
	free(wp->pool_id);
	free(wp->ns);
	free(wp);
}

size_t
worker_pool_busy(struct worker_pool *wp)
{
	pthread_mutex_lock(&wp->lock);
	size_t n = busy_locked(wp);
	pthread_mutex_unlock(&wp->lock);
	return n;
}

void
worker_pool_recover_now(struct worker_pool *wp)
{
	atomic_store(&wp->pass_due, true);
	ticker_kick(&wp->recovery_tick);
}

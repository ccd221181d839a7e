/* worker_run.c - one claimed message of the worker pool (spec 5.5, 5.9,
 * 6.2): the run hooks handed to the plugin through the SDK context
 * (log, check-in, stop_requested), the observation NS:worker:<id>, the
 * Harbor runner around the plugin's run(), the final status, the retry
 * decision with back-off and the finishing transaction. See worker.c for
 * the threads and the locking. */
#include "engine/worker_internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/gojson.h"
#include "engine/isolate.h"
#include "plugins/hostapi.h"
#include "logs/joblog.h"
#include "logs/log.h"
#include "metrics/metrics.h"
#include "store/period_store.h"
#include "store/queue_ops.h"

#define STOP_CHECK_MIN_MS 100
#define RUN_ERROR_MAX 1024
#define PERIODIC_ARG "_job_kind_periodic_"

/* --- the run hooks -------------------------------------------------------- */

struct run_ctx {
	struct worker *w;
	struct job_stats *stats;
	const char *job_id;
	const char *type;
	struct joblog_run *jrun; /* NULL without job loggers */
	int64_t stop_checked_ms;
	bool stop_seen;
};

/* Plugin lines, tagged with the job type ("[DEMO]"). An abandoned run may
 * still log: its joblog_run is never closed and the joblog is then never
 * freed (joblog_free leaks while runs are open), so no lock is needed. */
static void
hook_log(void *opaque, int level, const char *message)
{
	struct run_ctx *rc = opaque;
	if (rc->jrun)
		joblog_run_write(rc->jrun, level, rc->type, 0, "%s", message);
	else
		blog_write(level, rc->type, 0, "[job %s] %s", rc->job_id,
			   message);
}

static int
hook_checkin(void *opaque, const char *message)
{
	struct run_ctx *rc = opaque;
	struct worker_pool *wp = rc->w->wp;
	int ret = -1;
	pthread_rwlock_rdlock(&wp->hook_lock);
	if (!atomic_load(&wp->abandoned)) {
		struct berr err;
		berr_clear(&err);
		if (rc->jrun) {
			char block[64];
			job_log(wp, BLOG_INFO, rc->type, rc->job_id,
				"check in: %s",
				joblog_checkin_text(message, block,
						    sizeof(block)));
		}
		ret = tracker_checkin(wp->tracker, rc->stats, message, &err);
		if (ret < 0)
			job_log(wp, BLOG_WARNING, rc->type, rc->job_id,
				"check-in not recorded: %s", err.msg);
	}
	pthread_rwlock_unlock(&wp->hook_lock);
	return ret < 0 ? -1 : 0;
}

static void
mark_stop_seen(struct worker *w)
{
	pthread_mutex_lock(&w->wp->lock);
	if (w->stop_seen_ms == 0)
		w->stop_seen_ms = util_monotonic_ms();
	pthread_mutex_unlock(&w->wp->lock);
}

/* True once the stored status is Stopped (read from Redis at most every
 * 100 ms; a Stopped answer is final) or the pool is force-stopping. */
static bool
hook_stop_requested(void *opaque)
{
	struct run_ctx *rc = opaque;
	struct worker *w = rc->w;
	struct worker_pool *wp = w->wp;
	if (worker_pool_forced(wp) || atomic_load(&wp->abandoned))
		return true;
	if (rc->stop_seen)
		return true;
	int64_t now = util_monotonic_ms();
	if (rc->stop_checked_ms &&
	    now - rc->stop_checked_ms < STOP_CHECK_MIN_MS)
		return false;
	rc->stop_checked_ms = now;
	/* the monitor may have seen it first */
	pthread_mutex_lock(&wp->lock);
	bool seen = w->stop_seen_ms != 0;
	pthread_mutex_unlock(&wp->lock);
	if (seen) {
		rc->stop_seen = true;
		return true;
	}
	pthread_rwlock_rdlock(&wp->hook_lock);
	if (atomic_load(&wp->abandoned)) {
		pthread_rwlock_unlock(&wp->hook_lock);
		return true;
	}
	char *status = NULL;
	struct berr err;
	berr_clear(&err);
	if (tracker_get_status(wp->tracker, rc->job_id, &status, &err) < 0) {
		/* an unreachable Redis is no stop: keep going */
		worker_note_redis_error(wp);
		log_debug("job %s: stop check failed: %s", rc->job_id,
			  err.msg);
	} else if (status && strcmp(status, JOB_STATUS_STOPPED) == 0) {
		rc->stop_seen = true;
	}
	pthread_rwlock_unlock(&wp->hook_lock);
	free(status);
	if (rc->stop_seen)
		mark_stop_seen(w);
	return rc->stop_seen;
}

/* --- observations (spec 5.9) ---------------------------------------------- */

static void
observation_start(struct worker *w, const struct job_message *m)
{
	struct worker_pool *wp = w->wp;
	int64_t ttl = wp->cfg.max_job_duration_seconds > 0
			      ? wp->cfg.max_job_duration_seconds
			      : 86400;
	struct berr err;
	berr_clear(&err);
	if (heartbeat_observe_start(wp->redis, wp->ns, w->id, m, ttl, &err) <
	    0)
		log_debug("worker %s: observation not written: %s", w->id,
			  err.msg);
}

static void
observation_end(struct worker *w)
{
	struct berr err;
	berr_clear(&err);
	if (heartbeat_observe_end(w->wp->redis, w->wp->ns, w->id, &err) < 0)
		log_debug("worker %s: observation not removed: %s", w->id,
			  err.msg);
}

/* --- the Harbor runner (spec 6.2) ----------------------------------------- */

enum outcome_result {
	OUT_SUCCESS,
	OUT_ERROR,
	OUT_STOPPED,
};

struct outcome {
	enum outcome_result result;
	bool write_status; /* an error of step 2 onwards: set Error */
	bool never_retry;
	bool leave;        /* leave the message in progress (shutdown) */
	bool abandoned;    /* run() outlived worker_pool_stop */
	struct joblog_run *jrun; /* job loggers of the run (step 3), closed by
				  * worker_process_claim after the last line */
	int64_t started_ms; /* monotonic, step 1: the process-time metric */
	char err[RUN_ERROR_MAX];
};

__attribute__((format(printf, 3, 4))) static void
outcome_error(struct outcome *o, bool write_status, const char *fmt, ...)
{
	va_list ap;
	o->result = OUT_ERROR;
	o->write_status = write_status;
	va_start(ap, fmt);
	vsnprintf(o->err, sizeof(o->err), fmt, ap);
	va_end(ap);
}

/* spec 6.2 step 1: waits of |-111x^2 + 666x + 500| ms, x = 0..5. */
static const int track_waits_ms[] = {500, 1055, 1388, 1499, 1388, 1055};

/* A Redis error before the plugin ran is no failure of the job: the
 * worker waits (FINISH_RETRY_FIRST_MS doubling to FINISH_RETRY_MAX_MS) and
 * tries again for as long as the pool runs. False once the pool stops:
 * the claim then stays in the in-progress list for recovery. */
static bool
redis_wait(struct worker_pool *wp, int64_t *wait)
{
	if (ticker_sleep(&wp->tick, *wait))
		return false;
	*wait = *wait * 2 > FINISH_RETRY_MAX_MS ? FINISH_RETRY_MAX_MS
						: *wait * 2;
	return true;
}

/* Loads the stats. 0 found, 1 absent after every attempt, 2 interrupted
 * by the stop (also while Redis is away: Redis errors are waited out). */
static int
track(struct worker *w, const char *job_id, struct job_stats *st,
      struct berr *err)
{
	struct worker_pool *wp = w->wp;
	int64_t wait = FINISH_RETRY_FIRST_MS;
	for (size_t attempt = 0;; attempt++) {
		job_stats_fini(st);
		memset(st, 0, sizeof(*st));
		int rc = tracker_load(wp->tracker, job_id, st, err);
		if (rc < 0) {
			/* Redis away: not the job's failure; wait for it */
			worker_note_redis_error(wp);
			if (!redis_wait(wp, &wait))
				return 2;
			attempt--;
			continue;
		}
		if (rc != 1)
			return rc;
		if (attempt >= ARRAY_LEN(track_waits_ms))
			return 1;
		if (ticker_sleep(&wp->forced, track_waits_ms[attempt]))
			return 2;
	}
}

/* Records that w runs a plugin now; false when the pool is stopping hard
 * (then the run must not start). */
static bool
run_begin(struct worker *w, const char *job_id, const char *type)
{
	struct worker_pool *wp = w->wp;
	bool ok;
	pthread_mutex_lock(&wp->lock);
	ok = !worker_pool_forced(wp) && !atomic_load(&wp->abandoned);
	if (ok) {
		w->in_run = true;
		w->seq++;
		free(w->job_id);
		free(w->job_type);
		w->job_id = xstrdup(job_id);
		w->job_type = xstrdup(type);
		w->stop_seen_ms = 0;
		w->grace_warned = false;
	}
	pthread_mutex_unlock(&wp->lock);
	return ok;
}

/* Returns true when worker_pool_stop abandoned this run meanwhile. */
static bool
run_end(struct worker *w)
{
	struct worker_pool *wp = w->wp;
	pthread_mutex_lock(&wp->lock);
	w->in_run = false;
	bool abandoned = w->abandoned;
	pthread_mutex_unlock(&wp->lock);
	return abandoned;
}

/* spec 6.2 step 7: ZADD NS:executions:<policy> XX -1 <execution id>. */
static void
mark_execution_done(struct worker_pool *wp, const struct job_message *m,
		    const char *job_id)
{
	const cJSON *p = m->args ? cJSON_GetObjectItemCaseSensitive(
					   m->args, PERIODIC_ARG)
				 : NULL;
	if (!p || !m->id)
		return;
	struct berr err;
	berr_clear(&err);
	if (period_store_execution_finish_ns(wp->redis, wp->ns, m->id, job_id,
					     &err) < 0)
		log_warn("job %s: cannot mark the execution finished: %s",
			 job_id, err.msg);
}

/* spec 6.2 step 2. Returns true when the job is to run; otherwise o holds
 * the result (a no-op success or an error). */
static bool
decide_status(struct worker_pool *wp, struct job_stats *st,
	      const char *job_id, const char *type, struct outcome *o)
{
	/* a copy: the reset replaces st->status */
	char *status = xstrdup(st->status ? st->status : "");
	bool run = false;
	struct berr err;
	berr_clear(&err);
	if (strcmp(status, JOB_STATUS_PENDING) == 0 ||
	    strcmp(status, JOB_STATUS_SCHEDULED) == 0) {
		run = true;
	} else if (strcmp(status, JOB_STATUS_STOPPED) == 0 ||
		   strcmp(status, JOB_STATUS_SUCCESS) == 0) {
		/* no-op; the success path then finds Stopped (no write) or
		 * writes Success once more (quirk Q16) */
		job_log(wp, BLOG_INFO, type, job_id,
			"job is already %s; not run again", status);
		o->result = OUT_SUCCESS;
	} else if (strcmp(status, JOB_STATUS_RUNNING) == 0 ||
		   strcmp(status, JOB_STATUS_ERROR) == 0) {
		/* a retry, or a re-run after a crash: new revision */
		int64_t wait = FINISH_RETRY_FIRST_MS;
		int rr;
		/* waited out while Redis is away (a reset that ran after its
		 * reply was lost is redone with a newer revision: harmless) */
		while ((rr = tracker_reset(wp->tracker, st, &err)) < 0) {
			worker_note_redis_error(wp);
			if (!redis_wait(wp, &wait))
				break;
			berr_clear(&err);
		}
		if (rr < 0) {
			o->leave = true; /* the pool stops; recovery re-runs it */
		} else {
			job_log(wp, BLOG_INFO, type, job_id,
				"retrying a job found %s (revision %lld)",
				status, (long long)st->revision);
			run = true;
		}
	} else {
		outcome_error(o, true,
			      "mismatch status for running job: expected "
			      "%s/%s but got %s",
			      JOB_STATUS_PENDING, JOB_STATUS_SCHEDULED,
			      status);
	}
	free(status);
	return run;
}

static void run_plugin(struct worker *w, const struct queue_claim *c,
		       struct job_type *t, const char *job_id,
		       const char *type, struct job_stats *st,
		       struct outcome *o);

/* Steps 1-8 of the runner. t may be NULL (type not loaded). */
static void
run_job(struct worker *w, const struct queue_claim *c, struct job_type *t,
	const char *job_id, const char *type, struct job_stats *st,
	struct outcome *o)
{
	struct worker_pool *wp = w->wp;
	struct berr err;
	berr_clear(&err);

	/* 1. track */
	int lr = track(w, job_id, st, &err);
	if (lr == 2) {
		o->leave = true;
		return;
	}
	if (lr == 1) {
		o->never_retry = true;
		outcome_error(o, false, "job stats of %s not found", job_id);
		return;
	}

	/* 2. decide by the stored status */
	if (!decide_status(wp, st, job_id, type, o))
		return;

	/* 4. Running (3, the job loggers, in run_plugin: after Running, so
	 * that the claim script of the drain can write Running at once) */
	char *current = NULL;
	enum tracker_cas cas = tracker_set_status(wp->tracker, st,
						  JOB_STATUS_RUNNING, &current,
						  &err);
	if (cas == TRACKER_MISMATCH) {
		outcome_error(o, true,
			      "cannot set job %s Running: status mismatch "
			      "(stored %s)",
			      job_id, current ? current : "none");
		free(current);
		return;
	}
	free(current);
	/* A Redis error: tracker_set_status queued the write for its retry
	 * loop and reported Running; the write itself is repeated here (the
	 * same status again is allowed, so an attempt that ran in Redis after
	 * its reply was lost does no harm) until Redis answers. */
	int64_t wait = FINISH_RETRY_FIRST_MS;
	while (cas == TRACKER_REDIS_ERROR) {
		worker_note_redis_error(wp);
		if (!redis_wait(wp, &wait)) {
			o->leave = true;
			return;
		}
		berr_clear(&err);
		current = NULL;
		cas = tracker_cas_status(wp->tracker, job_id,
					 JOB_STATUS_RUNNING, st->revision,
					 &current, &err);
		if (cas == TRACKER_MISMATCH) {
			outcome_error(o, true,
				      "cannot set job %s Running: status "
				      "mismatch (stored %s)",
				      job_id, current ? current : "none");
			free(current);
			return;
		}
		free(current);
	}
	run_plugin(w, c, t, job_id, type, st, o);
}

/* Steps 3 and 5-7 of the runner, the job's status being Running. */
static void
run_plugin(struct worker *w, const struct queue_claim *c, struct job_type *t,
	   const char *job_id, const char *type, struct job_stats *st,
	   struct outcome *o)
{
	struct worker_pool *wp = w->wp;
	const struct job_message *m = &c->msg;
	struct berr err;
	berr_clear(&err);
	/* 3. the job loggers; a log that cannot be opened fails the run */
	if (wp->cfg.joblog) {
		o->jrun = joblog_run_open(wp->cfg.joblog, job_id, st->revision,
					  &err);
		if (!o->jrun) {
			log_error("job %s (%s): %s", job_id, type, err.msg);
			outcome_error(o, true, "%s", err.msg);
			return;
		}
	}
	if (!t) {
		outcome_error(o, true,
			      "job type %s is not loaded on this instance",
			      type);
		return;
	}

	/* 5. run */
	struct run_ctx rc = {
		.w = w,
		.stats = st,
		.job_id = job_id,
		.type = type,
		.jrun = o->jrun,
	};
	struct hostapi_run_hooks hooks = {
		.opaque = &rc,
		.log_level = wp->cfg.joblog ? joblog_min_level(wp->cfg.joblog)
					    : wp->cfg.job_log_level,
		.log = hook_log,
		.checkin = hook_checkin,
		.stop_requested = hook_stop_requested,
		.property = NULL,
	};
	struct hostapi_job hj = {
		.id = job_id,
		.name = type,
		.kind = st->kind ? st->kind : JOB_KIND_GENERIC,
		.revision = st->revision,
		.params = m->args,
	};
	if (!run_begin(w, job_id, type)) {
		o->leave = true;
		return;
	}
	metrics_job_running(type, 1);
	job_log(wp, BLOG_INFO, type, job_id,
		"job %s (%s) starting, revision %lld", job_id, type,
		(long long)st->revision);
	char errbuf[RUN_ERROR_MAX];
	enum berth_run_result res =
		t->isolated ? isolate_run(t, &hj, &hooks,
					  wp->cfg.stop_grace_seconds, errbuf,
					  sizeof(errbuf))
			    : plugin_run(t, &hj, &hooks, errbuf,
					 sizeof(errbuf));
	metrics_job_running(type, -1);
	if (run_end(w)) {
		o->abandoned = true;
		return;
	}
	switch (res) {
	case BERTH_RUN_SUCCESS:
		o->result = OUT_SUCCESS;
		break;
	case BERTH_RUN_STOPPED:
		o->result = OUT_STOPPED;
		break;
	default:
		outcome_error(o, true, "%s", errbuf);
		break;
	}
	/* 6. should_retry */
	if (res != BERTH_RUN_SUCCESS && !plugin_should_retry(t))
		o->never_retry = true;
	/* 7. periodic executions */
	mark_execution_done(wp, m, job_id);
}

/* Step 9, the status part. May set o->leave. */
static void
finish_status(struct worker *w, const char *job_id, const char *type,
	      struct job_stats *st, struct outcome *o)
{
	struct worker_pool *wp = w->wp;
	struct berr err;
	berr_clear(&err);
	char *current = NULL;
	if (o->result == OUT_ERROR) {
		if (!o->write_status) {
			job_log(wp, BLOG_ERROR, type, job_id, "failed: %s",
				o->err);
			return;
		}
		metrics_task_done_since(type, "fail", o->started_ms);
		/* logged before the write: a client that sees the final
		 * status finds the line in the log */
		job_log(wp, BLOG_ERROR, type, job_id,
			"job finished with status %s: %s", JOB_STATUS_ERROR,
			o->err);
		enum tracker_cas cas = tracker_set_status(
			wp->tracker, st, JOB_STATUS_ERROR, &current, &err);
		if (cas == TRACKER_MISMATCH) {
			log_info("job %s: Error not written, status is %s",
				 job_id, current ? current : "none");
			job_log(wp, BLOG_INFO, type, job_id,
				"status Error not written: it is %s",
				current ? current : "none");
		} else if (cas != TRACKER_OK) {
			log_warn("job %s: cannot set Error: %s", job_id,
				 err.msg);
		}
		free(current);
		return;
	}
	char *latest = NULL;
	if (tracker_get_status(wp->tracker, job_id, &latest, &err) < 0) {
		/* go on: better a refused write than a lost one */
		log_warn("job %s: cannot read its status: %s", job_id,
			 err.msg);
		berr_clear(&err);
	} else if (latest && strcmp(latest, JOB_STATUS_STOPPED) == 0) {
		metrics_task_done_since(type, "stop", o->started_ms);
		job_log(wp, BLOG_INFO, type, job_id,
			"job finished with status %s", JOB_STATUS_STOPPED);
		free(latest);
		return;
	}
	free(latest);
	if (o->result == OUT_STOPPED && worker_pool_forced(wp)) {
		metrics_task_done_since(type, "stop", o->started_ms);
		/* stopped by the shutdown, not by a client: leave it for
		 * recovery, which re-runs it with a new revision */
		o->leave = true;
		return;
	}
	metrics_task_done_since(type, "success", o->started_ms);
	job_log(wp, BLOG_INFO, type, job_id, "job finished with status %s",
		JOB_STATUS_SUCCESS);
	enum tracker_cas cas = tracker_set_status(wp->tracker, st,
						  JOB_STATUS_SUCCESS, &current,
						  &err);
	if (cas == TRACKER_MISMATCH) {
		log_info("job %s: Success not written, status is %s", job_id,
			 current ? current : "none");
		job_log(wp, BLOG_INFO, type, job_id,
			"status Success not written: it is %s",
			current ? current : "none");
	} else if (cas != TRACKER_OK) {
		log_warn("job %s: cannot set Success: %s", job_id, err.msg);
	}
	free(current);
}

/* spec 5.5 step 3 for a failed run: the message's fails, err and
 * failed_at, and the message to put in NS:retry at *retry_at (NULL: no
 * retry; the caller frees it). Berth: a run that failed for the last
 * time goes to NS:dead instead (*dead, *retry_at = its death) with the
 * real number of attempts as fails (not Harbor's never-retry mark),
 * unless dead_max_jobs is 0. */
static char *
retry_decision(struct worker_pool *wp, struct job_message *m,
	       const struct outcome *o, const char *type, const char *job_id,
	       int64_t max_fails, int64_t *retry_at, bool *dead)
{
	*retry_at = 0;
	*dead = false;
	if (o->result != OUT_ERROR)
		return NULL;
	int64_t attempts = m->fails + 1;
	if (o->never_retry)
		m->fails = NEVER_RETRY_FAILS;
	m->fails++;
	free(m->err);
	m->err = xstrdup(o->err);
	m->failed_at = util_now();
	if (max_fails - m->fails <= 0) {
		if (wp->cfg.dead_max_jobs <= 0)
			return NULL;
		m->fails = attempts;
		*dead = true;
		*retry_at = m->failed_at;
		job_log(wp, BLOG_INFO, type, job_id,
			"attempt %lld failed; no retry: kept in the dead set",
			(long long)attempts);
		return message_encode(m);
	}
	metrics_job_retry(type);
	*retry_at = util_now() + queue_backoff_seconds(m->fails);
	job_log(wp, BLOG_INFO, type, job_id,
		"attempt %lld of %lld failed; retry in %lld s",
		(long long)m->fails, (long long)max_fails,
		(long long)(*retry_at - util_now()));
	return message_encode(m);
}

/* The retries of a job's end while Redis is away, shared by finish_claim
 * and drained_complete: one warning per outage (the first worker to fail),
 * one line when an end is recorded again, one when the pool stops first. */
static void
end_recorded(struct worker_pool *wp, unsigned tries)
{
	if (tries > 1 && atomic_exchange(&wp->finish_outage, false)) {
		log_info("worker pool %s: recording job ends again (after %u "
			 "attempts)",
			 wp->pool_id, tries);
		worker_reconcile_soon(wp);
	}
}

/* After a failed attempt: waits *wait ms (100 doubling to 5000); true when
 * the pool stops meanwhile. */
static bool
end_failed(struct worker_pool *wp, const char *type, const struct berr *err,
	   int64_t *wait)
{
	worker_note_redis_error(wp);
	if (!atomic_exchange(&wp->finish_outage, true))
		log_warn("worker pool %s: cannot record the end of a %s job: "
			 "%s; retrying until Redis is back",
			 wp->pool_id, type, err->msg);
	if (ticker_sleep(&wp->tick, *wait))
		return true;
	*wait = *wait * 2 > FINISH_RETRY_MAX_MS ? FINISH_RETRY_MAX_MS
						: *wait * 2;
	return false;
}

void
worker_dead_trim(struct worker_pool *wp)
{
	struct berr err;
	berr_clear(&err);
	int64_t removed = 0;
	if (queue_dead_trim(wp->queue, wp->cfg.dead_max_jobs,
			    wp->cfg.dead_max_age_seconds, util_now(), &removed,
			    &err) < 0)
		log_debug("cannot trim the dead set: %s", err.msg);
	else if (removed > 0)
		metrics_dead_trimmed((uint64_t)removed);
}

static void
end_given_up(struct worker_pool *wp, const struct queue_claim *c,
	     const struct berr *err)
{
	log_warn("worker pool %s stops: the end of a %s job was not recorded "
		 "(%s); its message stays in %s for recovery",
		 wp->pool_id, c->type, err->msg, c->inprogress_key);
}

/* queue_finish, retried while Redis is away: after 100 ms, doubling up to
 * 5 s, for as long as the pool runs. The finish script is idempotent
 * (queue.h), so an attempt whose reply was lost does no harm. Only the
 * shutdown ends the retries; the message then stays in the pool's
 * in-progress list, which recovery re-enqueues once the pool is gone. One
 * warning per outage (the first worker to fail), one line when a finish
 * works again. */
static void
finish_claim(struct worker *w, const struct queue_claim *c,
	     const char *retry_msg, int64_t retry_at, bool dead)
{
	struct worker_pool *wp = w->wp;
	int64_t wait = FINISH_RETRY_FIRST_MS;
	struct berr err;
	for (unsigned tries = 1;; tries++) {
		berr_clear(&err);
		if (queue_finish(wp->queue, wp->pool_id, c, retry_msg,
				 retry_at, dead, &err) == 0) {
			worker_release_claim(w);
			end_recorded(wp, tries);
			if (dead && retry_msg)
				worker_dead_trim(wp);
			return;
		}
		if (end_failed(wp, c->type, &err, &wait))
			break; /* shutdown */
	}
	end_given_up(wp, c, &err);
}

void
worker_set_busy(struct worker *w, bool busy)
{
	/* no broadcast: nobody waits for busy changes (waiters on wp->cond
	 * want a thread's exit), and waking the
	 * recovery thread and sleeping threads twice per job cost ~7% of
	 * the daemon's CPU in a drain */
	pthread_mutex_lock(&w->wp->lock);
	w->busy = busy;
	pthread_mutex_unlock(&w->wp->lock);
}

/* One claimed message, spec 5.5. Returns false when the run was abandoned
 * (the thread must exit without touching anything). */
bool
worker_process_claim(struct worker *w, struct queue_claim *c)
{
	struct worker_pool *wp = w->wp;
	struct berr err;
	berr_clear(&err);
	if (!c->parsed) {
		log_error("dropping an unparsable message from %s: %s",
			  c->queue_key, c->parse_error);
		worker_set_busy(w, false);
		finish_claim(w, c, NULL, 0, false);
		return true;
	}
	struct job_message *m = &c->msg;
	const char *type = m->name && m->name[0] ? m->name : c->type;

	/* 5.5 step 1: uniqueness covers queued jobs only */
	if (m->unique && queue_release_unique(wp->queue, m, &err) < 0)
		log_warn("cannot delete unique key of %s: %s", type, err.msg);

	char *job_id = message_job_id(m);
	struct job_type *t = plugin_acquire(wp->plugins, type);
	int64_t max_fails = t ? t->max_fails : DEFAULT_MAX_FAILS;
	observation_start(w, m);

	struct job_stats st;
	memset(&st, 0, sizeof(st));
	struct outcome o;
	memset(&o, 0, sizeof(o));
	o.started_ms = util_monotonic_ms();
	run_job(w, c, t, job_id, type, &st, &o);
	if (o.abandoned) {
		/* only this thread's own memory is freed; the type reference
		 * is leaked on purpose (the registry may be gone); the job log
		 * run stays open for the plugin still inside run() (the
		 * joblog is then never freed) */
		job_stats_fini(&st);
		free(job_id);
		return false;
	}
	if (!o.leave)
		finish_status(w, job_id, type, &st, &o);
	if (t)
		plugin_release(wp->plugins, t);

	if (o.leave) {
		log_info("job %s (%s) stopped by the shutdown; its message "
			 "stays in %s for recovery",
			 job_id, type, c->inprogress_key);
		worker_set_busy(w, false);
		worker_release_claim(w);
	} else {
		int64_t retry_at = 0;
		bool dead = false;
		char *retry_msg = retry_decision(wp, m, &o, type, job_id,
						 max_fails, &retry_at, &dead);
		worker_set_busy(w, false);
		finish_claim(w, c, retry_msg, retry_at, dead);
		free(retry_msg);
	}
	joblog_run_close(o.jrun); /* spec 6.2 step 8, after the last line */
	observation_end(w);
	job_stats_fini(&st);
	free(job_id);
	return true;
}

/* --- the drain's two round trips (store/drain.h) -------------------------- */

/* The target status of a finished run and the lines logged before it is
 * written; NULL when nothing is to be written. */
static const char *
drained_target(struct worker *w, const char *job_id, const char *type,
	       struct outcome *o)
{
	struct worker_pool *wp = w->wp;
	if (o->result == OUT_ERROR) {
		if (!o->write_status) {
			job_log(wp, BLOG_ERROR, type, job_id, "failed: %s",
				o->err);
			return NULL;
		}
		metrics_task_done_since(type, "fail", o->started_ms);
		job_log(wp, BLOG_ERROR, type, job_id,
			"job finished with status %s: %s", JOB_STATUS_ERROR,
			o->err);
		return JOB_STATUS_ERROR;
	}
	metrics_task_done_since(type, "success", o->started_ms);
	job_log(wp, BLOG_INFO, type, job_id, "job finished with status %s",
		JOB_STATUS_SUCCESS);
	return JOB_STATUS_SUCCESS;
}

/* drain_complete, retried while Redis is away like finish_claim. */
static void
drained_complete(struct worker *w, struct drain_claim *dc, const char *type,
		 const char *target, const char *retry_msg, int64_t retry_at,
		 bool dead, const struct drain_next *next)
{
	struct worker_pool *wp = w->wp;
	struct job_stats *st = &dc->stats;
	int64_t wait = FINISH_RETRY_FIRST_MS;
	struct berr err;
	/* a next claim is made inside the fetch gate, like every claim */
	if (next && (worker_pool_stopping(wp) || !worker_fetch_gate_enter(wp)))
		next = NULL;
	for (unsigned tries = 1;; tries++) {
		berr_clear(&err);
		char *stored = NULL;
		enum drain_status ds = drain_complete(
			w->drain, &dc->c, dc->job_id, st->revision, target,
			tries > 1, retry_msg, retry_at, dead, &stored, next,
			&err);
		if (next && ds == DRAIN_STATUS_ERROR) {
			/* not again while Redis is away: a claim whose reply
			 * was lost is the reconciliation's */
			worker_fetch_gate_leave(w, NULL);
			next = NULL;
		}
		if (ds != DRAIN_STATUS_ERROR) {
			worker_release_claim(w);
			if (next)
				worker_fetch_gate_leave(
					w, *next->rc == 1 ? &next->out->c
							  : NULL);
			if (ds == DRAIN_STATUS_MISMATCH) {
				log_info("job %s: %s not written, status is "
					 "%s",
					 dc->job_id, target,
					 stored ? stored : "none");
				job_log(wp, BLOG_INFO, type, dc->job_id,
					"status %s not written: it is %s",
					target, stored ? stored : "none");
			} else if (target) {
				free(st->status);
				st->status = xstrdup(target);
				st->update_time = util_now();
				tracker_announce(wp->tracker, st);
			}
			free(stored);
			end_recorded(wp, tries);
			if (dead && retry_msg)
				worker_dead_trim(wp);
			return;
		}
		if (end_failed(wp, dc->c.type, &err, &wait))
			break; /* shutdown */
	}
	end_given_up(wp, &dc->c, &err);
}

bool
worker_process_drained(struct worker *w, struct drain_claim *dc,
		       const struct drain_next *next)
{
	struct worker_pool *wp = w->wp;
	if (next)
		*next->rc = 0;
	if (dc->decision == DRAIN_HOST || !dc->c.parsed)
		return worker_process_claim(w, &dc->c);
	struct queue_claim *c = &dc->c;
	struct job_message *m = &c->msg;
	const char *type = m->name && m->name[0] ? m->name : c->type;
	const char *job_id = dc->job_id;
	struct job_stats *st = &dc->stats;
	struct berr err;
	berr_clear(&err);

	/* 5.5 step 1: uniqueness covers queued jobs only */
	if (m->unique && queue_release_unique(wp->queue, m, &err) < 0)
		log_warn("cannot delete unique key of %s: %s", type, err.msg);
	if (dc->obs_args && drain_observation_args(w->drain, m, &err) < 0)
		log_debug("worker %s: observation args not written: %s",
			  w->id, err.msg);

	struct job_type *t = plugin_acquire(wp->plugins, type);
	int64_t max_fails = t ? t->max_fails : DEFAULT_MAX_FAILS;
	struct outcome o;
	memset(&o, 0, sizeof(o));
	o.started_ms = util_monotonic_ms();
	if (dc->decision == DRAIN_FINAL) {
		/* spec 6.2 step 2: a no-op; Success is written once more
		 * (quirk Q16), Stopped refuses it */
		job_log(wp, BLOG_INFO, type, job_id,
			"job is already %s; not run again", dc->was);
		o.result = OUT_SUCCESS;
	} else {
		if (dc->decision == DRAIN_RESET)
			job_log(wp, BLOG_INFO, type, job_id,
				"retrying a job found %s (revision %lld)",
				dc->was, (long long)st->revision);
		tracker_announce(wp->tracker, st); /* Running */
		run_plugin(w, c, t, job_id, type, st, &o);
	}
	if (o.abandoned) {
		/* as in worker_process_claim: the type reference and the
		 * job log run stay with the plugin still inside run() */
		return false;
	}
	bool stopped = o.result == OUT_STOPPED;
	if (stopped)
		finish_status(w, job_id, type, st, &o); /* may leave */
	if (t)
		plugin_release(wp->plugins, t);
	if (o.leave) {
		log_info("job %s (%s) stopped by the shutdown; its message "
			 "stays in %s for recovery",
			 job_id, type, c->inprogress_key);
		worker_set_busy(w, false);
		worker_release_claim(w);
		joblog_run_close(o.jrun);
		observation_end(w);
		return true;
	}
	int64_t retry_at = 0;
	bool dead = false;
	char *retry_msg = retry_decision(wp, m, &o, type, job_id, max_fails,
					 &retry_at, &dead);
	/* a stopped run had its status settled by finish_status */
	const char *target = stopped ? NULL : drained_target(w, job_id, type,
							     &o);
	worker_set_busy(w, false);
	drained_complete(w, dc, type, target, retry_msg, retry_at, dead,
			 stopped ? NULL : next);
	free(retry_msg);
	joblog_run_close(o.jrun); /* spec 6.2 step 8, after the last line */
	return true;
}

/* worker.c - the worker pool; see worker.h.
 *
 * Threads of one pool:
 *   worker  x N  fetch (priority-sampled types, one script), run the Harbor
 *                runner (spec 6.2) around the plugin's run(), finish the
 *                message (spec 5.5); idle waits block on the wake-up list
 *                with timeouts of 10, 100, then 1000 ms (queue.h);
 *   requeuer     every 1 s: due members of NS:scheduled and NS:retry;
 *   recovery     after 1 s, then every 30 s (and on worker_pool_recover_now):
 *                dead pools (spec 9.1) and orphaned in-progress messages
 *                (spec 9.2);
 *   monitor      every 1 s: jobs stopped in Redis whose run() has not
 *                returned after stop_grace_seconds get one warning.
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
 * free what it may still read.
 *
 * Recovery safety. A pool is dead when its heartbeat is missing or older
 * than 10 s (the queue library's rule); our own pool never is. A pass is
 * skipped while this process saw Redis errors in the last 15 s: other
 * pools' heartbeats may be old only because Redis was away. Orphan
 * candidates of spec 9.2 are checked again 2 s later, sparing a pool that
 * fetched just before its first heartbeat. Two instances recovering the
 * same pool at once is harmless: each message moves in one script
 * (RPOPLPUSH), and the stale-lock script subtracts whatever share is left,
 * so lock stays consistent whatever the interleaving. */
#include "worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gojson.h"
#include "hostapi.h"
#include "joblog.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"

#define IDLE_WAIT_MAX_MS 1000
#define FETCH_ERROR_FIRST_MS 10
#define FETCH_ERROR_MAX_MS 1000
#define REQUEUE_PERIOD_MS 1000
#define RECOVERY_FIRST_MS 1000
#define RECOVERY_PERIOD_MS 30000
#define MONITOR_PERIOD_MS 1000
#define STOP_CHECK_MIN_MS 100
#define DEAD_POOL_AFTER_S 10
#define ORPHAN_RECHECK_MS 2000
/* After this process saw Redis errors, other pools' heartbeats may be old
 * only because Redis was away: judge them only once Redis has worked for
 * this long again. */
#define RECOVERY_QUIET_AFTER_ERROR_MS 15000
#define DEFAULT_STOP_GRACE_S 10
#define DEFAULT_MAX_FAILS 4
#define NEVER_RETRY_FAILS 10000000000LL
#define FINISH_TRIES 8
#define RUN_ERROR_MAX 1024
#define PERIODIC_ARG "_job_kind_periodic_"

struct worker_pool;

struct worker {
	struct worker_pool *wp;
	size_t index;
	char *id;
	char *obs_key; /* NS:worker:<id> */
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
	pthread_cond_t cond;     /* sleeps, stop, worker state changes */
	bool recover_now;        /* under lock */

	atomic_bool stopping;    /* no more fetches */
	atomic_bool forced_stop; /* stop_requested() is true for every job */
	atomic_bool abandoned;   /* worker_pool_stop gave up on some runs */
	pthread_rwlock_t hook_lock;

	atomic_bool fetch_outage;       /* logged once per outage */
	atomic_bool requeue_outage;
	atomic_llong last_redis_error_ms; /* monotonic, 0 = never */
	size_t n_abandoned;
};

/* --- small helpers -------------------------------------------------------- */

static void
note_redis_error(struct worker_pool *wp)
{
	atomic_store(&wp->last_redis_error_ms, (long long)util_monotonic_ms());
}

static struct timespec
deadline_in(int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Sleeps up to ms; returns true (early) once the pool is stopping, or,
 * with forced_only, once the forced-stop phase began. */
static bool
pool_sleep(struct worker_pool *wp, int64_t ms, bool forced_only)
{
	struct timespec ts = deadline_in(ms);
	bool interrupted = false;
	pthread_mutex_lock(&wp->lock);
	for (;;) {
		interrupted = forced_only ? atomic_load(&wp->forced_stop)
					  : atomic_load(&wp->stopping);
		if (interrupted)
			break;
		if (pthread_cond_timedwait(&wp->cond, &wp->lock, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&wp->lock);
	return interrupted;
}

static bool
reply_text(const redisReply *r)
{
	return r && r->str &&
	       (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

/* Loaded job types with their priorities. */
struct type_list {
	char **names;
	uint32_t *prio;
	size_t n;
};

static void
type_list_load(struct worker_pool *wp, struct type_list *tl)
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

static void
type_list_free(struct type_list *tl)
{
	plugin_names_free(tl->names);
	free(tl->prio);
	memset(tl, 0, sizeof(*tl));
}

/* A host line in the job log of job_id: through the job loggers (the open
 * run of job_id, found by id, so any thread may call it) with the caller's
 * file:line; without job loggers, the service log tagged with the id. */
#define job_log(wp, level, type, job_id, ...)                                \
	job_log_at((wp), (level), (type), (job_id), __FILE__, __LINE__,      \
		   __VA_ARGS__)

__attribute__((format(printf, 7, 8))) static void
job_log_at(const struct worker_pool *wp, int level, const char *type,
	   const char *job_id, const char *file, int line, const char *fmt,
	   ...)
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
	if (atomic_load(&wp->forced_stop) || atomic_load(&wp->abandoned))
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
		note_redis_error(wp);
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
	char started[24], ttl[24];
	snprintf(started, sizeof(started), "%lld", (long long)util_now());
	int64_t max = wp->cfg.max_job_duration_seconds > 0
			      ? wp->cfg.max_job_duration_seconds
			      : 86400;
	snprintf(ttl, sizeof(ttl), "%lld", (long long)max);
	char *args = m->args ? gojson_encode(m->args) : xstrdup("");
	struct berr err;
	berr_clear(&err);
	redisReply *r = redis_command(wp->redis, &err, "HMSET", w->obs_key,
				      "job_name", m->name ? m->name : "",
				      "job_id", m->id ? m->id : "",
				      "started_at", started, "args", args,
				      NULL);
	if (r) {
		freeReplyObject(r);
		r = redis_command(wp->redis, &err, "EXPIRE", w->obs_key, ttl,
				  NULL);
	}
	if (r)
		freeReplyObject(r);
	else
		log_debug("worker %s: observation not written: %s", w->id,
			  err.msg);
	free(args);
}

static void
observation_end(struct worker *w)
{
	struct berr err;
	berr_clear(&err);
	redisReply *r = redis_command(w->wp->redis, &err, "DEL", w->obs_key,
				      NULL);
	if (r)
		freeReplyObject(r);
	else
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
				  * process_claim after the last line */
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

/* Loads the stats. 0 found, 1 absent after every attempt, -1 Redis error,
 * 2 interrupted by the forced-stop phase. */
static int
track(struct worker *w, const char *job_id, struct job_stats *st,
      struct berr *err)
{
	struct worker_pool *wp = w->wp;
	for (size_t attempt = 0;; attempt++) {
		job_stats_fini(st);
		memset(st, 0, sizeof(*st));
		int rc = tracker_load(wp->tracker, job_id, st, err);
		if (rc != 1)
			return rc;
		if (attempt >= ARRAY_LEN(track_waits_ms))
			return 1;
		if (pool_sleep(wp, track_waits_ms[attempt], true))
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
	ok = !atomic_load(&wp->forced_stop) && !atomic_load(&wp->abandoned);
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
	pthread_cond_broadcast(&wp->cond);
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
	char *key = xasprintf("%s:executions:%s", wp->ns, m->id);
	struct berr err;
	berr_clear(&err);
	redisReply *r = redis_command(wp->redis, &err, "ZADD", key, "XX", "-1",
				      job_id, NULL);
	if (r)
		freeReplyObject(r);
	else
		log_warn("job %s: cannot mark the execution finished: %s",
			 job_id, err.msg);
	free(key);
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
		if (tracker_reset(wp->tracker, st, &err) < 0) {
			note_redis_error(wp);
			outcome_error(o, true, "cannot reset job %s: %s",
				      job_id, err.msg);
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

/* Steps 1-8 of the runner. t may be NULL (type not loaded). */
static void
run_job(struct worker *w, const struct queue_claim *c, struct job_type *t,
	const char *job_id, const char *type, struct job_stats *st,
	struct outcome *o)
{
	struct worker_pool *wp = w->wp;
	const struct job_message *m = &c->msg;
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
	if (lr < 0) {
		note_redis_error(wp);
		outcome_error(o, false, "cannot load the stats of job %s: %s",
			      job_id, err.msg);
		return;
	}

	/* 2. decide by the stored status */
	if (!decide_status(wp, st, job_id, type, o))
		return;

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

	/* 4. Running */
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
	if (cas != TRACKER_OK) {
		note_redis_error(wp);
		outcome_error(o, true, "cannot set job %s Running: %s", job_id,
			      err.msg);
		return;
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
	enum berth_run_result res = plugin_run(t, &hj, &hooks, errbuf,
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
	if (o->result == OUT_STOPPED && atomic_load(&wp->forced_stop)) {
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

/* True when raw is no longer in the in-progress list (a finish whose reply
 * was lost went through). False when present or unknown. */
static bool
claim_gone(struct worker_pool *wp, const struct queue_claim *c)
{
	struct berr err;
	berr_clear(&err);
	redisReply *r = redis_command(wp->redis, &err, "LPOS",
				      c->inprogress_key, c->raw, NULL);
	bool gone = r && r->type == REDIS_REPLY_NIL;
	if (r)
		freeReplyObject(r);
	return gone;
}

/* queue_finish, retried while Redis is away (and the pool is not
 * stopping). */
static void
finish_claim(struct worker *w, const struct queue_claim *c,
	     const char *retry_msg, int64_t retry_at)
{
	struct worker_pool *wp = w->wp;
	int64_t wait = FETCH_ERROR_FIRST_MS;
	struct berr err;
	for (int i = 0; i < FINISH_TRIES; i++) {
		berr_clear(&err);
		if (i > 0 && claim_gone(wp, c))
			return;
		if (queue_finish(wp->queue, wp->pool_id, c, retry_msg,
				 retry_at, &err) == 0)
			return;
		note_redis_error(wp);
		if (atomic_load(&wp->stopping))
			break;
		pool_sleep(wp, wait, false);
		wait = wait * 4 > FETCH_ERROR_MAX_MS ? FETCH_ERROR_MAX_MS
						     : wait * 4;
	}
	log_error("cannot finish a message of %s: %s; it stays in %s until "
		  "this pool is recovered",
		  c->type, err.msg, c->inprogress_key);
}

static void
set_busy(struct worker *w, bool busy)
{
	pthread_mutex_lock(&w->wp->lock);
	w->busy = busy;
	pthread_cond_broadcast(&w->wp->cond);
	pthread_mutex_unlock(&w->wp->lock);
}

/* One claimed message, spec 5.5. Returns false when the run was abandoned
 * (the thread must exit without touching anything). */
static bool
process_claim(struct worker *w, struct queue_claim *c)
{
	struct worker_pool *wp = w->wp;
	struct berr err;
	berr_clear(&err);
	if (!c->parsed) {
		log_error("dropping an unparsable message from %s: %s",
			  c->queue_key, c->parse_error);
		set_busy(w, false);
		finish_claim(w, c, NULL, 0);
		return true;
	}
	struct job_message *m = &c->msg;
	const char *type = m->name && m->name[0] ? m->name : c->type;

	/* 5.5 step 1: uniqueness covers queued jobs only */
	if (m->unique) {
		char *ukey = message_unique_key(wp->ns, m->name ? m->name : "",
					       m->args);
		redisReply *r = redis_command(wp->redis, &err, "DEL", ukey,
					      NULL);
		if (r)
			freeReplyObject(r);
		else
			log_warn("cannot delete unique key of %s: %s", type,
				 err.msg);
		free(ukey);
	}

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
		set_busy(w, false);
	} else {
		char *retry_msg = NULL;
		int64_t retry_at = 0;
		if (o.result == OUT_ERROR) {
			/* spec 5.5 step 3 */
			if (o.never_retry)
				m->fails = NEVER_RETRY_FAILS;
			m->fails++;
			free(m->err);
			m->err = xstrdup(o.err);
			m->failed_at = util_now();
			if (max_fails - m->fails > 0) {
				metrics_job_retry(type);
				retry_at = util_now() +
					   queue_backoff_seconds(m->fails);
				retry_msg = message_encode(m);
				job_log(wp, BLOG_INFO, type, job_id,
					"attempt %lld of %lld failed; retry "
					"in %lld s",
					(long long)m->fails,
					(long long)max_fails,
					(long long)(retry_at - util_now()));
			}
		}
		set_busy(w, false);
		finish_claim(w, c, retry_msg, retry_at);
		free(retry_msg);
	}
	joblog_run_close(o.jrun); /* spec 6.2 step 8, after the last line */
	observation_end(w);
	job_stats_fini(&st);
	free(job_id);
	return true;
}

/* --- the worker thread ---------------------------------------------------- */

static int
idle_wait_ms(int idle)
{
	return idle <= 1 ? 10 : idle == 2 ? 100 : IDLE_WAIT_MAX_MS;
}

static void
fetch_outage_begin(struct worker_pool *wp, const struct berr *err)
{
	note_redis_error(wp);
	if (!atomic_exchange(&wp->fetch_outage, true))
		log_warn("worker pool %s: cannot fetch jobs: %s; retrying",
			 wp->pool_id, err->msg);
}

static void
fetch_outage_end(struct worker_pool *wp)
{
	if (atomic_load(&wp->fetch_outage) &&
	    atomic_exchange(&wp->fetch_outage, false))
		log_info("worker pool %s: fetching jobs again", wp->pool_id);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct worker_pool *wp = w->wp;
	int idle = 0;
	int64_t err_wait = 0;
	while (!atomic_load(&wp->stopping)) {
		struct type_list tl;
		type_list_load(wp, &tl);
		if (tl.n == 0) {
			/* nothing to run: do not eat wake-ups meant for
			 * other instances */
			type_list_free(&tl);
			pool_sleep(wp, IDLE_WAIT_MAX_MS, false);
			continue;
		}
		const char **order = xcalloc(tl.n, sizeof(char *));
		queue_priority_order((const char *const *)tl.names, tl.prio,
				     tl.n, order);
		struct queue_claim c;
		struct berr err;
		berr_clear(&err);
		int rc = queue_fetch(wp->queue, wp->pool_id, order, tl.n, &c,
				     &err);
		free(order);
		type_list_free(&tl);
		if (rc < 0) {
			fetch_outage_begin(wp, &err);
			err_wait = err_wait ? err_wait * 2
					    : FETCH_ERROR_FIRST_MS;
			if (err_wait > FETCH_ERROR_MAX_MS)
				err_wait = FETCH_ERROR_MAX_MS;
			pool_sleep(wp, err_wait, false);
			continue;
		}
		err_wait = 0;
		fetch_outage_end(wp);
		if (rc == 0) {
			if (idle < 3)
				idle++;
			if (atomic_load(&wp->stopping))
				break;
			int wr = queue_wait_wakeup(wp->queue,
						   idle_wait_ms(idle), &err);
			if (wr < 0) {
				fetch_outage_begin(wp, &err);
				err_wait = FETCH_ERROR_FIRST_MS;
				pool_sleep(wp, err_wait, false);
			} else if (wr == 1) {
				idle = 0; /* fetch at once */
			}
			continue;
		}
		idle = 0;
		set_busy(w, true);
		bool keep = process_claim(w, &c);
		queue_claim_fini(&c);
		if (!keep)
			break; /* abandoned: leave without touching Redis */
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
	while (!pool_sleep(wp, REQUEUE_PERIOD_MS, false)) {
		struct type_list tl;
		type_list_load(wp, &tl);
		if (tl.n == 0) {
			/* with no type every due message would go to dead */
			type_list_free(&tl);
			continue;
		}
		static const char *const zsets[] = {"scheduled", "retry"};
		bool failed = false;
		for (size_t i = 0; i < ARRAY_LEN(zsets); i++) {
			struct berr err;
			berr_clear(&err);
			int moved = queue_requeue_due(
				wp->queue, zsets[i],
				(const char *const *)tl.names, tl.n, &err);
			if (moved < 0) {
				failed = true;
				note_redis_error(wp);
				if (!atomic_exchange(&wp->requeue_outage, true))
					log_warn("requeue of %s:%s failed: %s",
						 wp->ns, zsets[i], err.msg);
				break;
			}
			if (moved > 0)
				log_debug("requeued %d due message(s) of "
					  "%s:%s",
					  moved, wp->ns, zsets[i]);
		}
		if (!failed && atomic_exchange(&wp->requeue_outage, false))
			log_info("requeuers work again");
		type_list_free(&tl);
	}
	return NULL;
}

/* --- recovery (spec 9.1, 9.2) --------------------------------------------- */

struct strset {
	char **v;
	size_t n, cap;
};

static bool
strset_has(const struct strset *s, const char *x)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], x) == 0)
			return true;
	return false;
}

static void
strset_add(struct strset *s, const char *x, size_t len)
{
	char *copy = xstrndup(x, len);
	if (strset_has(s, copy)) {
		free(copy);
		return;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xrealloc(s->v, s->cap * sizeof(char *));
	}
	s->v[s->n++] = copy;
}

static void
strset_free(struct strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int
pool_members(struct worker_pool *wp, struct strset *out, struct berr *err)
{
	char *key = key_worker_pools(wp->ns);
	redisReply *r = redis_command(wp->redis, err, "SMEMBERS", key, NULL);
	free(key);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < r->elements; i++)
			if (reply_text(r->element[i]))
				strset_add(out, r->element[i]->str,
					   r->element[i]->len);
	} else {
		rc = berr_set(err, "SMEMBERS %s:worker_pools: unexpected reply",
			      wp->ns);
	}
	freeReplyObject(r);
	return rc;
}

/* Comma list into a set; empty parts skipped. */
static void
split_names(const char *s, struct strset *out)
{
	while (s && *s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		if (len)
			strset_add(out, s, len);
		s = comma ? comma + 1 : NULL;
	}
}

static int
recover_one(struct worker_pool *wp, const char *pool,
	    const struct strset *types, const char *why)
{
	struct berr err;
	berr_clear(&err);
	int moved = queue_recover_pool(wp->queue, pool,
				       (const char *const *)types->v, types->n,
				       &err);
	if (moved < 0) {
		note_redis_error(wp);
		log_warn("recovery of pool %s failed: %s", pool, err.msg);
		return -1;
	}
	if (moved > 0)
		log_warn("pool %s is %s: re-enqueued %d in-progress "
			 "message(s)",
			 pool, why, moved);
	else
		log_info("pool %s is %s: nothing was in progress", pool, why);
	return 0;
}

/* spec 9.1 for every pool of NS:worker_pools but ours. */
static int
recover_dead_pools(struct worker_pool *wp, const struct type_list *tl)
{
	struct berr err;
	berr_clear(&err);
	struct strset pools = {0};
	if (pool_members(wp, &pools, &err) < 0) {
		strset_free(&pools);
		note_redis_error(wp);
		log_warn("recovery: %s", err.msg);
		return -1;
	}
	int64_t now = util_now();
	for (size_t i = 0; i < pools.n; i++) {
		const char *pool = pools.v[i];
		if (strcmp(pool, wp->pool_id) == 0)
			continue;
		char *key = key_worker_pool(wp->ns, pool);
		redisReply *r = redis_command(wp->redis, &err, "HMGET", key,
					      "heartbeat_at", "job_names",
					      NULL);
		if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			if (r)
				freeReplyObject(r);
			else
				note_redis_error(wp);
			free(key);
			continue;
		}
		int64_t beat = 0;
		bool has_beat = reply_text(r->element[0]) &&
				util_parse_i64(r->element[0]->str, 0,
					       INT64_MAX, &beat) == 0;
		if (has_beat && beat + DEAD_POOL_AFTER_S >= now) {
			freeReplyObject(r);
			free(key);
			continue; /* alive */
		}
		struct strset types = {0};
		if (reply_text(r->element[1]))
			split_names(r->element[1]->str, &types);
		if (types.n == 0)
			for (size_t k = 0; k < tl->n; k++)
				strset_add(&types, tl->names[k],
					   strlen(tl->names[k]));
		freeReplyObject(r);
		int rc = recover_one(wp, pool, &types,
				     has_beat ? "dead (no heartbeat for more "
						"than 10 s)"
					      : "dead (no heartbeat)");
		strset_free(&types);
		if (rc < 0) {
			/* keep it registered: the next pass tries again */
			free(key);
			continue;
		}
		char *pools_key = key_worker_pools(wp->ns);
		r = redis_command(wp->redis, &err, "DEL", key, NULL);
		if (r) {
			freeReplyObject(r);
			r = redis_command(wp->redis, &err, "SREM", pools_key,
					  pool, NULL);
		}
		if (r)
			freeReplyObject(r);
		else
			note_redis_error(wp);
		free(pools_key);
		free(key);
	}
	strset_free(&pools);
	return 0;
}

/* spec 9.2: pools holding locks of our types without being registered. */
static int
recover_orphans(struct worker_pool *wp, const struct type_list *tl)
{
	if (tl->n == 0)
		return 0;
	struct berr err;
	berr_clear(&err);
	struct strset current = {0};
	if (pool_members(wp, &current, &err) < 0) {
		strset_free(&current);
		note_redis_error(wp);
		return -1;
	}
	struct strset orphans = {0};
	int rc = 0;
	for (size_t i = 0; i < tl->n && rc == 0; i++) {
		char *key = xasprintf("%s:jobs:%s:lock_info", wp->ns,
				      tl->names[i]);
		char cursor[32] = "0";
		do {
			redisReply *r = redis_command(wp->redis, &err, "HSCAN",
						      key, cursor, "COUNT",
						      "100", NULL);
			if (!r) {
				note_redis_error(wp);
				rc = -1;
				break;
			}
			if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
			    !reply_text(r->element[0]) ||
			    r->element[1]->type != REDIS_REPLY_ARRAY) {
				freeReplyObject(r);
				rc = -1;
				break;
			}
			snprintf(cursor, sizeof(cursor), "%s",
				 r->element[0]->str);
			redisReply *kv = r->element[1];
			for (size_t k = 0; k + 1 < kv->elements; k += 2) {
				redisReply *f = kv->element[k];
				redisReply *v = kv->element[k + 1];
				int64_t count = 0;
				if (!reply_text(f) || !reply_text(v) ||
				    util_parse_i64(v->str, INT64_MIN,
						   INT64_MAX, &count) < 0)
					continue;
				char *pool = xstrndup(f->str, f->len);
				if (count > 0 &&
				    strcmp(pool, wp->pool_id) != 0 &&
				    !strset_has(&current, pool))
					strset_add(&orphans, pool,
						   strlen(pool));
				free(pool);
			}
			freeReplyObject(r);
		} while (strcmp(cursor, "0") != 0);
		free(key);
	}
	if (orphans.n > 0 && rc == 0) {
		/* A pool may fetch a moment before its first heartbeat
		 * registers it (Go starts its workers first): look again
		 * after a pause and spare the pools that showed up. */
		if (pool_sleep(wp, ORPHAN_RECHECK_MS, false)) {
			rc = -1;
		} else {
			strset_free(&current);
			if (pool_members(wp, &current, &err) < 0) {
				note_redis_error(wp);
				rc = -1;
			}
		}
	}
	struct strset types = {0};
	for (size_t k = 0; k < tl->n; k++)
		strset_add(&types, tl->names[k], strlen(tl->names[k]));
	for (size_t i = 0; i < orphans.n && rc == 0; i++)
		if (!strset_has(&current, orphans.v[i]))
			recover_one(wp, orphans.v[i], &types,
				    "not registered but holds locks");
	strset_free(&types);
	strset_free(&orphans);
	strset_free(&current);
	return rc;
}

static void
recovery_pass(struct worker_pool *wp)
{
	long long last = atomic_load(&wp->last_redis_error_ms);
	if (last &&
	    util_monotonic_ms() - last < RECOVERY_QUIET_AFTER_ERROR_MS) {
		log_debug("recovery skipped: redis errors %lld ms ago",
			  (long long)(util_monotonic_ms() - last));
		return;
	}
	struct type_list tl;
	type_list_load(wp, &tl);
	if (recover_dead_pools(wp, &tl) == 0)
		recover_orphans(wp, &tl);
	type_list_free(&tl);
}

static void *
recovery_main(void *arg)
{
	struct worker_pool *wp = arg;
	int64_t wait = RECOVERY_FIRST_MS;
	for (;;) {
		struct timespec ts = deadline_in(wait);
		pthread_mutex_lock(&wp->lock);
		while (!atomic_load(&wp->stopping) && !wp->recover_now &&
		       pthread_cond_timedwait(&wp->cond, &wp->lock, &ts) == 0)
			;
		bool stop = atomic_load(&wp->stopping);
		wp->recover_now = false;
		pthread_mutex_unlock(&wp->lock);
		if (stop)
			break;
		recovery_pass(wp);
		wait = RECOVERY_PERIOD_MS;
	}
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
	while (!pool_sleep(wp, MONITOR_PERIOD_MS, false))
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
		w->obs_key = xasprintf("%s:worker:%s", ns, w->id);
		atomic_init(&w->exited, false);
	}
	pthread_mutex_init(&wp->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wp->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_rwlock_init(&wp->hook_lock, NULL);
	atomic_init(&wp->stopping, false);
	atomic_init(&wp->forced_stop, false);
	atomic_init(&wp->abandoned, false);
	atomic_init(&wp->fetch_outage, false);
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
	if (pthread_create(&wp->recovery, NULL, recovery_main, wp) != 0) {
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

/* Waits up to ms for every worker thread to leave its loop (each finishes
 * the message it holds first); true when they all did. */
static bool
wait_workers_done(struct worker_pool *wp, int64_t ms)
{
	struct timespec ts = deadline_in(ms);
	pthread_mutex_lock(&wp->lock);
	while (running_locked(wp) > 0 &&
	       pthread_cond_timedwait(&wp->cond, &wp->lock, &ts) == 0)
		;
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
	atomic_store(&wp->stopping, true);
	pthread_cond_broadcast(&wp->cond);
	pthread_mutex_unlock(&wp->lock);
	/* end idle BRPOPs now rather than after their timeout */
	queue_wake(wp->queue, wp->n);

	int64_t grace = wp->cfg.shutdown_grace_seconds > 0
				? (int64_t)wp->cfg.shutdown_grace_seconds * 1000
				: 0;
	if (!wait_workers_done(wp, grace)) {
		pthread_mutex_lock(&wp->lock);
		size_t busy = busy_locked(wp);
		atomic_store(&wp->forced_stop, true);
		pthread_cond_broadcast(&wp->cond);
		pthread_mutex_unlock(&wp->lock);
		int64_t sg = wp->cfg.stop_grace_seconds > 0
				     ? wp->cfg.stop_grace_seconds
				     : DEFAULT_STOP_GRACE_S;
		log_info("worker pool %s: %zu job(s) still running after the "
			 "shutdown grace; asking them to stop (up to %lld s)",
			 wp->pool_id, busy, (long long)sg);
		wait_workers_done(wp, sg * 1000);
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
		free(wp->workers[i].obs_key);
		free(wp->workers[i].job_id);
		free(wp->workers[i].job_type);
	}
	free(wp->workers);
	pthread_rwlock_destroy(&wp->hook_lock);
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
	pthread_mutex_lock(&wp->lock);
	wp->recover_now = true;
	pthread_cond_broadcast(&wp->cond);
	pthread_mutex_unlock(&wp->lock);
}

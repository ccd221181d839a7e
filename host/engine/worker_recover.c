/* worker_recover.c - recovery of the worker pool (spec 9.1, 9.2): messages
 * left in progress by dead pools (missing or stale heartbeat) and by pools
 * that hold locks of our job types without being registered are
 * re-enqueued, so kill -9 of any instance loses no job; the job a dead pool
 * was running counts as a failed attempt (crash accounting); this live
 * pool's own in-progress lists and lock shares are reconciled with the
 * claims its workers hold (see engine/README.md, "Faults").
 *
 * Recovery safety. A pool is dead when its heartbeat is missing or older
 * than 10 s (the queue library's rule), or when it ran on this host, its
 * process is gone and it missed a beat (a kill -9 and restart recovers in
 * seconds); our own pool never is. Dead pools are looked for every 5 s,
 * the orphan scan and the reconciliation run every 30 s. A pass is
 * skipped while this process saw Redis errors in the last 15 s: other
 * pools' heartbeats may be old only because Redis was away. Orphan
 * candidates of spec 9.2 are checked again 2 s later, sparing a pool that
 * fetched just before its first heartbeat. Two instances recovering the
 * same pool at once is harmless: each message moves in one script
 * (RPOPLPUSH), and the stale-lock script subtracts whatever share is left,
 * so lock stays consistent whatever the interleaving. */
#include "engine/worker_internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "logs/log.h"
#include "store/message.h"

#define RECOVERY_FIRST_MS 1000
#define RECOVERY_PERIOD_MS 30000
#define DEAD_POOL_AFTER_S 10
/* A pool beats every 5 s (spec 5.8): one older than this missed a beat. */
#define MISSED_BEAT_S 6
/* Dead pools are looked for this often (a few reads per other pool); the
 * orphan scan and the reconciliation keep RECOVERY_PERIOD_MS. */
#define DEAD_POOL_CHECK_MS 5000
#define ORPHAN_RECHECK_MS 2000
/* After this process saw Redis errors, other pools' heartbeats may be old
 * only because Redis was away: judge them only once Redis has worked for
 * this long again. */
#define RECOVERY_QUIET_AFTER_ERROR_MS 15000
/* After Redis came back, wait this long before reconciling: a command that
 * timed out on our side but was still queued in Redis (SIGSTOP, a stall)
 * runs first. The 30 s pass reconciles again in any case. */
#define RECONCILE_SETTLE_MS 1000
/* How long the reconciliation waits for fetches in flight to return. */
#define RECONCILE_DRAIN_MS 15000

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

/* The registered pools (NS:worker_pools) into out. */
static int
pool_members(struct worker_pool *wp, struct strset *out, struct berr *err)
{
	char **ids = NULL;
	size_t n = 0;
	if (heartbeat_pool_ids(wp->redis, wp->ns, &ids, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		strset_add(out, ids[i], strlen(ids[i]));
	heartbeat_ids_free(ids, n);
	return 0;
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

/* --- the pool's own in-progress lists ---------------------------------- */

struct held {
	char *type;
	char *raw;
};

int
worker_reconcile_own(struct worker_pool *wp)
{
	if (worker_pool_stopping(wp))
		return 0;
	pthread_mutex_lock(&wp->lock);
	wp->reconciling = true;
	struct timespec ts = ticker_deadline_in(RECONCILE_DRAIN_MS);
	while (wp->fetching > 0 && !worker_pool_stopping(wp) &&
	       pthread_cond_timedwait(&wp->cond, &wp->lock, &ts) == 0)
		;
	if (wp->fetching > 0 || worker_pool_stopping(wp)) {
		wp->reconciling = false;
		pthread_cond_broadcast(&wp->cond);
		pthread_mutex_unlock(&wp->lock);
		return -1;
	}
	/* no fetch runs now and none starts until reconciling ends: every
	 * message a fetch of this pool claimed is in some held_raw */
	struct held *h = xcalloc(wp->n + 1, sizeof(*h));
	size_t nh = 0;
	for (size_t i = 0; i < wp->n; i++) {
		const struct worker *w = &wp->workers[i];
		if (w->held_raw && w->held_type) {
			h[nh].type = xstrdup(w->held_type);
			h[nh].raw = xstrdup(w->held_raw);
			nh++;
		}
	}
	pthread_mutex_unlock(&wp->lock);

	struct type_list tl;
	worker_type_list_load(wp, &tl);
	struct strset types = {0};
	for (size_t i = 0; i < tl.n; i++)
		strset_add(&types, tl.names[i], strlen(tl.names[i]));
	for (size_t i = 0; i < nh; i++)
		strset_add(&types, h[i].type, strlen(h[i].type));
	worker_type_list_free(&tl);

	int rc = 0;
	const char **raws = xcalloc(nh + 1, sizeof(char *));
	for (size_t t = 0; t < types.n && rc == 0; t++) {
		size_t nr = 0;
		for (size_t i = 0; i < nh; i++)
			if (strcmp(h[i].type, types.v[t]) == 0)
				raws[nr++] = h[i].raw;
		struct queue_reconciled out;
		struct berr err;
		berr_clear(&err);
		if (queue_reconcile(wp->queue, wp->pool_id, types.v[t], raws,
				    nr, &out, &err) < 0) {
			worker_note_redis_error(wp);
			log_warn("worker pool %s: reconciliation of %s failed: "
				 "%s",
				 wp->pool_id, types.v[t], err.msg);
			rc = -1;
			break;
		}
		if (out.moved > 0 || out.old_share != out.kept)
			log_warn("worker pool %s: %lld in-progress message(s) "
				 "of %s held by no worker went back to the "
				 "queue; its lock share went from %lld to %lld",
				 wp->pool_id, out.moved, types.v[t],
				 out.old_share, out.kept);
	}
	free(raws);
	for (size_t i = 0; i < nh; i++) {
		free(h[i].type);
		free(h[i].raw);
	}
	free(h);
	strset_free(&types);

	pthread_mutex_lock(&wp->lock);
	wp->reconciling = false;
	pthread_cond_broadcast(&wp->cond);
	pthread_mutex_unlock(&wp->lock);
	return rc;
}

int
worker_served_types(struct worker_pool *wp, const struct type_list *tl,
		    char ***out, size_t *n)
{
	int rc = 0;
	struct strset types = {0};
	for (size_t i = 0; i < tl->n; i++)
		strset_add(&types, tl->names[i], strlen(tl->names[i]));
	struct strset pools = {0};
	struct berr err;
	berr_clear(&err);
	if (pool_members(wp, &pools, &err) < 0)
		rc = -1;
	for (size_t i = 0; i < pools.n && rc == 0; i++) {
		struct heartbeat_pool hp;
		int rd = heartbeat_pool_read(wp->redis, wp->ns, pools.v[i], &hp,
					     &err);
		if (rd < 0)
			rc = -1;
		else if (rd == 1)
			split_names(hp.job_names, &types);
		heartbeat_pool_fini(&hp);
	}
	/* and every type an instance ever registered here (known_jobs): a
	 * Go instance that is restarting has no heartbeat for a while, and
	 * its due retries must wait in their queue for it, not go dead */
	char **known = NULL;
	size_t nk = 0;
	if (rc == 0 && queue_known_types(wp->queue, &known, &nk, &err) < 0)
		rc = -1;
	for (size_t i = 0; i < nk; i++)
		strset_add(&types, known[i], strlen(known[i]));
	queue_strv_free(known, nk);
	if (rc < 0)
		worker_note_redis_error(wp);
	strset_free(&pools);
	*out = types.v; /* moved: a strset is an array of strings */
	*n = types.n;
	return rc;
}

/* --- a job that was running when its daemon died ------------------------ */

/* The message of pool's in-progress list of type whose id is id; a new
 * string, NULL when none. */
static char *
find_inprogress(struct worker_pool *wp, const char *pool, const char *type,
		const char *id, struct berr *err, int *rc)
{
	char **raws = NULL;
	size_t n = 0;
	*rc = queue_inprogress_list(wp->queue, pool, type, &raws, &n, err);
	char *found = NULL;
	for (size_t i = 0; i < n && !found && *rc == 0; i++) {
		struct job_message m;
		struct berr perr;
		memset(&m, 0, sizeof(m));
		berr_clear(&perr);
		if (message_parse(raws[i], strlen(raws[i]), &m, &perr) < 0)
			continue;
		if (m.id && strcmp(m.id, id) == 0)
			found = xstrdup(raws[i]);
		message_fini(&m);
	}
	queue_strv_free(raws, n);
	return found;
}

/* Marks the stats of job_id Error (the crash is its attempt's end). */
static void
crash_status(struct worker_pool *wp, const char *job_id, const char *type)
{
	struct job_stats st;
	memset(&st, 0, sizeof(st));
	struct berr err;
	berr_clear(&err);
	if (tracker_load(wp->tracker, job_id, &st, &err) == 0) {
		char *current = NULL;
		enum tracker_cas cas = tracker_set_status(
			wp->tracker, &st, JOB_STATUS_ERROR, &current, &err);
		if (cas == TRACKER_MISMATCH)
			log_info("job %s: Error not written, status is %s",
				 job_id, current ? current : "none");
		else if (cas != TRACKER_OK)
			log_warn("job %s: cannot set Error: %s", job_id,
				 err.msg);
		free(current);
	}
	job_stats_fini(&st);
	job_log(wp, BLOG_ERROR, type, job_id, "job finished with status %s: %s",
		JOB_STATUS_ERROR, DAEMON_DIED_REASON);
}

/* The job worker_id of the dead pool was running (its observation,
 * spec 5.9, is still there: the daemon died before the run ended) counts
 * as a failed attempt, so a plugin that kills its daemon cannot crash-loop:
 * retry with back-off, or NS:dead after max_fails. */
static void
crash_account(struct worker_pool *wp, const struct heartbeat_pool *hp,
	      const char *pool, const char *worker_id)
{
	char *name = NULL, *id = NULL;
	struct berr err;
	berr_clear(&err);
	int rd = heartbeat_observe_read(wp->redis, wp->ns, worker_id, &name,
					&id, &err);
	if (rd <= 0) {
		if (rd < 0)
			worker_note_redis_error(wp);
		return;
	}
	int rc = 0;
	char *raw = find_inprogress(wp, pool, name, id, &err, &rc);
	struct job_message m;
	memset(&m, 0, sizeof(m));
	struct berr perr;
	berr_clear(&perr);
	if (rc < 0) {
		worker_note_redis_error(wp);
		goto out; /* keep the observation: the next pass tries */
	}
	if (!raw || message_parse(raw, strlen(raw), &m, &perr) < 0)
		goto done; /* it ended after all: plain recovery */
	struct job_type *t = plugin_acquire(wp->plugins, name);
	int64_t max_fails = t ? t->max_fails : DEFAULT_MAX_FAILS;
	bool retry_ok = t ? plugin_should_retry(t) : true;
	if (t)
		plugin_release(wp->plugins, t);
	int64_t attempts = m.fails + 1;
	if (!retry_ok)
		m.fails = NEVER_RETRY_FAILS;
	m.fails++;
	free(m.err);
	m.err = xstrdup(DAEMON_DIED_REASON);
	m.failed_at = util_now();
	bool dead = max_fails - m.fails <= 0;
	int64_t counted = m.fails;
	if (dead)
		m.fails = attempts; /* the dead set shows real attempts */
	/* The first time, due at once: most daemon deaths are kills, OOM
	 * kills and restarts, not the job, and its run was only cut short.
	 * A job found running at a second death backs off like any failure;
	 * counting every death is what ends a crash loop at max_fails. */
	bool at_once = counted <= 1;
	int64_t score = dead || at_once
				? util_now()
				: util_now() + queue_backoff_seconds(m.fails);
	char *msg = message_encode(&m);
	int moved = queue_fail_inprogress(wp->queue, pool, name, raw, dead,
					  score, msg, &err);
	free(msg);
	if (moved < 0) {
		worker_note_redis_error(wp);
		goto out;
	}
	if (moved == 1) {
		char *job_id = message_job_id(&m);
		char when[64] = "";
		if (!dead)
			snprintf(when, sizeof(when),
				 at_once ? "; retried now" : "; retry in %lld s",
				 (long long)(score - util_now()));
		log_error("job %s (%s) was running when pool %s (pid %lld on "
			  "%s) died: counted as failed attempt %lld of %lld%s%s",
			  job_id, name, pool, (long long)hp->pid,
			  hp->host ? hp->host : "?",
			  (long long)(counted > max_fails ? max_fails : counted),
			  (long long)max_fails,
			  dead ? "; moved to the dead set" : "", when);
		crash_status(wp, job_id, name);
		free(job_id);
		if (dead)
			worker_dead_trim(wp);
	}
done:
	if (heartbeat_observe_end(wp->redis, wp->ns, worker_id, &err) < 0)
		worker_note_redis_error(wp);
out:
	if (raw)
		message_fini(&m);
	free(raw);
	free(name);
	free(id);
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
		worker_note_redis_error(wp);
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

/* True when pool hp ran on this host and its process is gone (and it
 * missed a beat): it died, whatever its heartbeat age says. The missed
 * beat guards against a pid of another pid namespace that shares our
 * host name (containers with a fixed hostname): such a pool keeps
 * beating, so it is never taken for dead here. */
static bool
process_gone(const struct heartbeat_pool *hp, int64_t now)
{
	char host[256];
	if (!hp->host || hp->pid <= 0 || hp->pid == (int64_t)getpid() ||
	    hp->pid > INT32_MAX || !hp->has_heartbeat ||
	    hp->heartbeat_at + MISSED_BEAT_S >= now)
		return false;
	if (gethostname(host, sizeof(host)) != 0)
		return false;
	host[sizeof(host) - 1] = '\0';
	if (strcmp(host, hp->host) != 0)
		return false;
	return kill((pid_t)hp->pid, 0) < 0 && errno == ESRCH;
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
		worker_note_redis_error(wp);
		log_warn("recovery: %s", err.msg);
		return -1;
	}
	int64_t now = util_now();
	for (size_t i = 0; i < pools.n; i++) {
		const char *pool = pools.v[i];
		if (strcmp(pool, wp->pool_id) == 0)
			continue;
		struct heartbeat_pool hp;
		int rd = heartbeat_pool_read(wp->redis, wp->ns, pool, &hp, &err);
		if (rd <= 0) {
			if (rd < 0)
				worker_note_redis_error(wp);
			continue;
		}
		bool has_beat = hp.has_heartbeat && hp.heartbeat_at >= 0;
		bool gone = process_gone(&hp, now);
		if (has_beat && !gone &&
		    hp.heartbeat_at + DEAD_POOL_AFTER_S >= now) {
			heartbeat_pool_fini(&hp);
			continue; /* alive */
		}
		struct strset types = {0};
		split_names(hp.job_names, &types);
		if (types.n == 0)
			for (size_t k = 0; k < tl->n; k++)
				strset_add(&types, tl->names[k],
					   strlen(tl->names[k]));
		struct strset workers = {0};
		split_names(hp.worker_ids, &workers);
		for (size_t k = 0; k < workers.n; k++)
			crash_account(wp, &hp, pool, workers.v[k]);
		strset_free(&workers);
		heartbeat_pool_fini(&hp);
		int rc = recover_one(wp, pool, &types,
				     gone ? "dead (its process on this host is "
					    "gone)"
				     : has_beat ? "dead (no heartbeat for more "
						  "than 10 s)"
						: "dead (no heartbeat)");
		strset_free(&types);
		if (rc < 0)
			continue; /* keep it registered: the next pass tries
				   * again */
		if (heartbeat_pool_forget(wp->redis, wp->ns, pool, &err) < 0)
			worker_note_redis_error(wp);
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
		worker_note_redis_error(wp);
		return -1;
	}
	struct strset orphans = {0};
	int rc = 0;
	for (size_t i = 0; i < tl->n && rc == 0; i++) {
		char **holders = NULL;
		size_t nh = 0;
		if (queue_lock_holders(wp->queue, tl->names[i], &holders, &nh,
				       &err) < 0) {
			worker_note_redis_error(wp);
			rc = -1;
			break;
		}
		for (size_t k = 0; k < nh; k++)
			if (strcmp(holders[k], wp->pool_id) != 0 &&
			    !strset_has(&current, holders[k]))
				strset_add(&orphans, holders[k],
					   strlen(holders[k]));
		queue_strv_free(holders, nh);
	}
	if (orphans.n > 0 && rc == 0) {
		/* A pool may fetch a moment before its first heartbeat
		 * registers it (Go starts its workers first): look again
		 * after a pause and spare the pools that showed up. */
		if (ticker_sleep(&wp->tick, ORPHAN_RECHECK_MS)) {
			rc = -1;
		} else {
			strset_free(&current);
			if (pool_members(wp, &current, &err) < 0) {
				worker_note_redis_error(wp);
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

static bool
recovery_quiet(struct worker_pool *wp)
{
	long long last = atomic_load(&wp->last_redis_error_ms);
	return last &&
	       util_monotonic_ms() - last < RECOVERY_QUIET_AFTER_ERROR_MS;
}

/* Between full passes: only spec 9.1, so a killed instance's messages
 * come back within seconds (Go checks every 10 min). */
static void
dead_pool_check(struct worker_pool *wp)
{
	if (recovery_quiet(wp))
		return;
	struct type_list tl;
	worker_type_list_load(wp, &tl);
	recover_dead_pools(wp, &tl);
	worker_type_list_free(&tl);
}

static void
recovery_pass(struct worker_pool *wp)
{
	/* our own lists need no quiet period: nothing there depends on
	 * other pools' heartbeats */
	worker_reconcile_own(wp);
	if (recovery_quiet(wp)) {
		log_debug("recovery skipped: redis errors in the last %d ms",
			  RECOVERY_QUIET_AFTER_ERROR_MS);
		return;
	}
	struct type_list tl;
	worker_type_list_load(wp, &tl);
	if (recover_dead_pools(wp, &tl) == 0)
		recover_orphans(wp, &tl);
	worker_type_list_free(&tl);
}

void *
worker_recovery_main(void *arg)
{
	struct worker_pool *wp = arg;
	int64_t next = util_monotonic_ms() + RECOVERY_FIRST_MS;
	int64_t next_dead = next + DEAD_POOL_CHECK_MS;
	/* a kick ends the wait early: worker_pool_recover_now (a pass now)
	 * or worker_reconcile_soon (Redis is back: reconcile) */
	while (!ticker_sleep(&wp->recovery_tick,
			     (next < next_dead ? next : next_dead) -
				     util_monotonic_ms())) {
		if (atomic_exchange(&wp->reconcile_due, false)) {
			if (ticker_sleep(&wp->tick, RECONCILE_SETTLE_MS))
				break;
			/* failed (Redis away again, fetches slow to drain):
			 * again at the next wake-up, within DEAD_POOL_CHECK_MS,
			 * not only at the next full pass */
			if (worker_reconcile_own(wp) < 0)
				atomic_store(&wp->reconcile_due, true);
		}
		int64_t now = util_monotonic_ms();
		if (atomic_exchange(&wp->pass_due, false) || now >= next) {
			recovery_pass(wp);
			next = util_monotonic_ms() + RECOVERY_PERIOD_MS;
			next_dead = util_monotonic_ms() + DEAD_POOL_CHECK_MS;
		} else if (now >= next_dead) {
			dead_pool_check(wp);
			next_dead = util_monotonic_ms() + DEAD_POOL_CHECK_MS;
		}
	}
	return NULL;
}

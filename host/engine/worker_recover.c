/* worker_recover.c - recovery of the worker pool (spec 9.1, 9.2): messages
 * left in progress by dead pools (missing or stale heartbeat) and by pools
 * that hold locks of our job types without being registered are
 * re-enqueued, so kill -9 of any instance loses no job.
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
#include "engine/worker_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "logs/log.h"

#define RECOVERY_FIRST_MS 1000
#define RECOVERY_PERIOD_MS 30000
#define DEAD_POOL_AFTER_S 10
#define ORPHAN_RECHECK_MS 2000
/* After this process saw Redis errors, other pools' heartbeats may be old
 * only because Redis was away: judge them only once Redis has worked for
 * this long again. */
#define RECOVERY_QUIET_AFTER_ERROR_MS 15000

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
		if (has_beat && hp.heartbeat_at + DEAD_POOL_AFTER_S >= now) {
			heartbeat_pool_fini(&hp);
			continue; /* alive */
		}
		struct strset types = {0};
		split_names(hp.job_names, &types);
		if (types.n == 0)
			for (size_t k = 0; k < tl->n; k++)
				strset_add(&types, tl->names[k],
					   strlen(tl->names[k]));
		heartbeat_pool_fini(&hp);
		int rc = recover_one(wp, pool, &types,
				     has_beat ? "dead (no heartbeat for more "
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
	worker_type_list_load(wp, &tl);
	if (recover_dead_pools(wp, &tl) == 0)
		recover_orphans(wp, &tl);
	worker_type_list_free(&tl);
}

void *
worker_recovery_main(void *arg)
{
	struct worker_pool *wp = arg;
	int64_t wait = RECOVERY_FIRST_MS;
	/* a kick (worker_pool_recover_now) ends the wait early */
	while (!ticker_sleep(&wp->recovery_tick, wait)) {
		recovery_pass(wp);
		wait = RECOVERY_PERIOD_MS;
	}
	return NULL;
}

/* hook.c - the status hook agent (spec 7); see hook.h.
 *
 * Files
 *   hook.c           the per-job queues, the delivery threads, one attempt
 *                    and its retry, the life cycle (this file)
 *   hook_host.c      the receivers and their circuit breaker
 *   hook_send.c      the payload, the HTTP POST and the ACK (through the
 *                    tracker, which owns the stats hash)
 *   hook_keeper.c    the records of pending events (through
 *                    store/hook_store.c), the keeper (heartbeat, late
 *                    persistence) and the takeover of the events of
 *                    stopped agents
 *   hook_internal.h  what they share
 *
 * Delivery
 *   hook_agent_submit builds the StatusChange payload of spec 7.2 from the
 *   snapshot at once (hook_send.c), persists the event (hook_keeper.c) and
 *   appends it to the queue of its job. Every job with queued events is
 *   dispatched to whichever of the `threads` delivery threads is free; a
 *   job is held by one thread at a time and only its head event is
 *   attempted, so the events of one job reach the receiver strictly in
 *   submit order while different jobs are delivered in parallel. A job
 *   waiting for a retry holds no thread. How an attempt is made (HTTP,
 *   proxies, TLS, timeouts) and the ACK after a 200 are described in
 *   hook_send.c.
 *
 * Receivers (a circuit breaker per receiver)
 *   A receiver is scheme://host:port of the event URL (the proxy plays no
 *   part). A healthy receiver gets as many parallel attempts as there are
 *   threads: Harbor sends every hook to core, so a fixed share would cut
 *   throughput. A receiver becomes degraded when an attempt gets no HTTP
 *   answer at all (connect or TLS error, timeout, no response headers in
 *   time: the failures that can hold a thread for 10-30 s), and healthy
 *   again on any HTTP answer, 200 or not (a quick 500 holds nothing).
 *   While degraded it gets one attempt at a time, a probe: a thread taking
 *   a job whose head event goes there while a probe runs parks the job in
 *   the receiver's list instead (out of the ready list, still queued,
 *   saved and counted in hook_agent_pending). When the probe ends, every
 *   parked job goes back to the ready list if the receiver answered, else
 *   only the next probe. So a receiver that accepts and never answers
 *   holds one thread, after the first wave of attempts to it has timed
 *   out, and hooks to every other receiver keep the rest. A degraded
 *   receiver is logged once (WARNING), its recovery once (INFO). The state
 *   lives as long as events for the receiver are queued; a stop leaves
 *   parked events in Redis like any other undelivered one.
 *
 * Retries (spec 7.5, plus a bound)
 *   A failed attempt is retried at once, then after waits drawn from
 *   [0.5*I, 1.5*I], I = 2, 4, 8, 16, 32, 60, 60 ... s, each multiplied by
 *   $BERTH_HOOK_RETRY_SCALE (float, default 1; tests use e.g. 0.01). An
 *   event is given up (hooks_dropped_total, WARNING) after max_attempts
 *   attempts or when the next wait would end more than retry_window_s after
 *   its first failure. Before every retry the job's `ack` is read: an event
 *   at or behind the ACKed state is outdated and dropped as done (a Redis
 *   error there does not block the attempt).
 *
 * Backlog (beyond Harbor, whose agent keeps everything)
 *   A receiver that is silent or slow must not make the pending events
 *   grow without limit. Every queued event is also on one agent-wide list
 *   ordered by creation time. When more than max_pending events are queued
 *   (berth.hooks.max_pending), the oldest are given up; any event older
 *   than max_age (berth.hooks.max_age_seconds, from its creation, adopted
 *   events keeping theirs) is given up too, by the keeper's sweep every
 *   second, at submit, or after its failed attempt. Events of a job a
 *   thread holds are left for later. A given-up event leaves its queue and
 *   its record in Redis, is counted in hooks_dropped_total{reason=
 *   "backlog"|"expired"} and logged (DEBUG each; a WARNING per reason
 *   with the count at most every 10 s);
 *   the reaper re-sends every state core has not acknowledged.
 *
 * Supersede policy
 *   A status event (no check-in text) that has failed at least once is
 *   dropped as soon as a newer status event of the same job is queued
 *   behind it: core only needs the newest status of a run, and the newer
 *   event carries newer metadata. Events never attempted are not dropped
 *   (core sees Running before Success whenever the receiver is up), and
 *   check-in events are never dropped (they carry data core acts on).
 *
 * Durability
 *   See store/hook_store.c (records, keys, takeover) and hook_keeper.c. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hooks/hook.h"
#include "hooks/hook_internal.h"
#include "logs/log.h"
#include "metrics/metrics.h"
#include "store/hook_store.h"

#define HOOK_DEF_THREADS 1
#define HOOK_DEF_MAX_ATTEMPTS 10
#define HOOK_DEF_WINDOW_S 300
#define HOOK_DEF_TIMEOUT_MS 30000
#define HOOK_DEF_CONNECT_MS 10000
#define HOOK_DEF_HEADER_MS 10000
#define HOOK_DEF_MAX_PENDING 100000
#define HOOK_DEF_MAX_AGE_S 3600
#define HOOK_TRIM_LOG_MS 10000 /* backlog WARNINGs at most this often */
#define HOOK_BACKOFF_FIRST_MS 2000
#define HOOK_BACKOFF_MAX_MS 60000
#define HOOK_LOG_TEXT_MAX 256 /* longer check-in texts are not logged */

/* ---- small helpers ------------------------------------------------------ */

void
hook_event_free(struct hook_event *e)
{
	if (!e)
		return;
	free(e->job_id);
	free(e->url);
	free(e->payload);
	free(e->status);
	free(e->check_in);
	free(e->host_key);
	free(e);
}

static void
event_list_free(struct hook_event *e)
{
	while (e) {
		struct hook_event *n = e->next;
		hook_event_free(e);
		e = n;
	}
}

/* ---- the agent-wide list of queued events (under a->mu) ---------------- */

/* Inserts e by created_at (new events go at the end at once; adopted
 * older ones walk back). */
static void
glist_insert(struct hook_agent *a, struct hook_event *e)
{
	struct hook_event *p = a->newest;
	while (p && p->created_at > e->created_at)
		p = p->gprev;
	e->gprev = p;
	e->gnext = p ? p->gnext : a->oldest;
	if (e->gnext)
		e->gnext->gprev = e;
	else
		a->newest = e;
	if (p)
		p->gnext = e;
	else
		a->oldest = e;
}

static void
glist_unlink(struct hook_agent *a, struct hook_event *e)
{
	if (e->gprev)
		e->gprev->gnext = e->gnext;
	else
		a->oldest = e->gnext;
	if (e->gnext)
		e->gnext->gprev = e->gprev;
	else
		a->newest = e->gprev;
	e->gprev = e->gnext = NULL;
}

/* "status change: job=<id>, status=<st>, revision=<rev>[, check_in=<text>]"
 * (spec 7.5). New string. */
static char *
event_describe(const struct hook_event *e)
{
	if (!e->check_in)
		return xasprintf("status change: job=%s, status=%s, "
				 "revision=%" PRId64, e->job_id, e->status,
				 e->revision);
	size_t n = strlen(e->check_in);
	if (n > HOOK_LOG_TEXT_MAX)
		return xasprintf("status change: job=%s, status=%s, "
				 "revision=%" PRId64
				 ", check_in=<DATA BLOCK: %zu bytes>",
				 e->job_id, e->status, e->revision, n);
	return xasprintf("status change: job=%s, status=%s, revision=%" PRId64
			 ", check_in=%s", e->job_id, e->status, e->revision,
			 e->check_in);
}

/* ---- jobs: hash table, ready list, timer heap (all under a->mu) -------- */

static void
jobs_grow(struct hook_agent *a)
{
	size_t n = a->nbuckets ? a->nbuckets * 2 : 64;
	struct hook_job **b = xcalloc(n, sizeof(*b));
	for (size_t i = 0; i < a->nbuckets; i++) {
		struct hook_job *j = a->buckets[i];
		while (j) {
			struct hook_job *next = j->hnext;
			size_t k = hook_str_hash(j->job_id) & (n - 1);
			j->hnext = b[k];
			b[k] = j;
			j = next;
		}
	}
	free(a->buckets);
	a->buckets = b;
	a->nbuckets = n;
}

static struct hook_job *
job_find(const struct hook_agent *a, const char *job_id)
{
	if (!a->nbuckets)
		return NULL;
	size_t k = hook_str_hash(job_id) & (a->nbuckets - 1);
	for (struct hook_job *j = a->buckets[k]; j; j = j->hnext)
		if (strcmp(j->job_id, job_id) == 0)
			return j;
	return NULL;
}

static struct hook_job *
job_get(struct hook_agent *a, const char *job_id, bool *created)
{
	*created = false;
	struct hook_job *found = job_find(a, job_id);
	if (found)
		return found;
	if (a->njobs >= a->nbuckets)
		jobs_grow(a);
	struct hook_job *j = xcalloc(1, sizeof(*j));
	j->job_id = xstrdup(job_id);
	j->heap_idx = NO_IDX;
	size_t k = hook_str_hash(job_id) & (a->nbuckets - 1);
	j->hnext = a->buckets[k];
	a->buckets[k] = j;
	a->njobs++;
	*created = true;
	return j;
}

static void
job_remove(struct hook_agent *a, struct hook_job *j)
{
	size_t k = hook_str_hash(j->job_id) & (a->nbuckets - 1);
	struct hook_job **pp = &a->buckets[k];
	while (*pp != j)
		pp = &(*pp)->hnext;
	*pp = j->hnext;
	a->njobs--;
	free(j->job_id);
	free(j);
}

void
hook_ready_push_locked(struct hook_agent *a, struct hook_job *j)
{
	j->ready = true;
	j->rnext = NULL;
	j->rprev = a->ready_tail;
	if (a->ready_tail)
		a->ready_tail->rnext = j;
	else
		a->ready_head = j;
	a->ready_tail = j;
}

static void
ready_unlink(struct hook_agent *a, struct hook_job *j)
{
	if (j->rprev)
		j->rprev->rnext = j->rnext;
	else
		a->ready_head = j->rnext;
	if (j->rnext)
		j->rnext->rprev = j->rprev;
	else
		a->ready_tail = j->rprev;
	j->rprev = j->rnext = NULL;
	j->ready = false;
}

static void
heap_set(struct hook_agent *a, size_t i, struct hook_job *j)
{
	a->heap[i] = j;
	j->heap_idx = i;
}

static void
heap_up(struct hook_agent *a, size_t i)
{
	struct hook_job *j = a->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (a->heap[p]->due <= j->due)
			break;
		heap_set(a, i, a->heap[p]);
		i = p;
	}
	heap_set(a, i, j);
}

static void
heap_down(struct hook_agent *a, size_t i)
{
	struct hook_job *j = a->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= a->nheap)
			break;
		if (c + 1 < a->nheap && a->heap[c + 1]->due < a->heap[c]->due)
			c++;
		if (a->heap[c]->due >= j->due)
			break;
		heap_set(a, i, a->heap[c]);
		i = c;
	}
	heap_set(a, i, j);
}

static void
heap_push(struct hook_agent *a, struct hook_job *j)
{
	if (a->nheap == a->capheap) {
		a->capheap = a->capheap ? a->capheap * 2 : 16;
		a->heap = xrealloc(a->heap, sizeof(*a->heap) * a->capheap);
	}
	heap_set(a, a->nheap++, j);
	heap_up(a, j->heap_idx);
}

static void
heap_remove(struct hook_agent *a, struct hook_job *j)
{
	size_t i = j->heap_idx;
	j->heap_idx = NO_IDX;
	struct hook_job *last = a->heap[--a->nheap];
	if (last == j)
		return;
	heap_set(a, i, last);
	heap_up(a, i);
	heap_down(a, last->heap_idx);
}

/* Takes j out of the ready list, the heap or its parked list. */
void
hook_job_unschedule(struct hook_agent *a, struct hook_job *j)
{
	if (j->ready)
		ready_unlink(a, j);
	if (j->heap_idx != NO_IDX)
		heap_remove(a, j);
	hook_host_unpark_locked(j);
}

/* Puts a job that nobody holds where it belongs: ready (head due), the
 * heap (head due later), or away (no events). A parked job stays. */
static void
job_schedule(struct hook_agent *a, struct hook_job *j)
{
	if (j->busy || j->ready || j->heap_idx != NO_IDX || j->parked)
		return;
	if (!j->head) {
		job_remove(a, j);
		return;
	}
	if (j->due <= util_monotonic_ms())
		hook_ready_push_locked(a, j);
	else
		heap_push(a, j);
	pthread_cond_signal(&a->cv);
}

/* Moves every job whose time has come from the heap to the ready list. */
static void
heap_release_due(struct hook_agent *a, int64_t now)
{
	size_t moved = 0;
	while (a->nheap && a->heap[0]->due <= now) {
		struct hook_job *j = a->heap[0];
		heap_remove(a, j);
		hook_ready_push_locked(a, j);
		moved++;
	}
	if (moved > 1)
		pthread_cond_broadcast(&a->cv);
}

/* The supersede policy (see the top of the file), on a job nobody holds.
 * Dropped events are unlinked and chained on *dropped. */
static void
job_prune(struct hook_agent *a, struct hook_job *j,
	  struct hook_event **dropped)
{
	struct hook_event *last = NULL;
	for (struct hook_event *e = j->head; e; e = e->next)
		if (!e->check_in)
			last = e;
	if (!last)
		return;
	struct hook_event **pp = &j->head;
	while (*pp != last) {
		struct hook_event *e = *pp;
		if (!e->check_in && e->attempts > 0) {
			*pp = e->next;
			e->next = *dropped;
			*dropped = e;
			a->pending--;
			glist_unlink(a, e);
			hook_host_kick_locked(a, e->host);
			hook_host_unref_locked(a, e);
			if (blog_min_level <= BLOG_DEBUG)
				log_debug("hook event %s of job %s (%s) "
					  "superseded by a newer status",
					  e->id, e->job_id, e->status);
			continue;
		}
		pp = &e->next;
	}
}

/* Releases a job this thread held: applies the supersede policy and puts
 * it back in the ready list or the heap. */
void
hook_job_release_locked(struct hook_agent *a, struct hook_job *j,
			struct hook_event **dropped)
{
	struct hook_event *before = j->head;
	j->busy = false;
	job_prune(a, j, dropped);
	if (j->head != before)
		j->due = util_monotonic_ms();
	job_schedule(a, j);
	metrics_hooks_pending((int64_t)a->pending);
}

/* Queues e on its job in seq order (never before an event being
 * attempted) and schedules the job. */
void
hook_enqueue_locked(struct hook_agent *a, struct hook_event *e,
		    struct hook_event **dropped)
{
	bool created;
	struct hook_job *j = job_get(a, e->job_id, &created);
	struct hook_event *before = j->head;
	struct hook_event **pp = &j->head;
	if (j->busy && *pp)
		pp = &(*pp)->next;
	while (*pp && (*pp)->seq <= e->seq)
		pp = &(*pp)->next;
	if (pp == &j->head && before) /* an older event from a takeover */
		hook_host_kick_locked(a, before->host);
	e->next = *pp;
	*pp = e;
	a->pending++;
	glist_insert(a, e);
	hook_host_ref_locked(a, e);
	if (!e->persisted)
		a->dirty = true;
	if (!j->busy) {
		job_prune(a, j, dropped);
		if (j->head != before) {
			hook_job_unschedule(a, j);
			j->due = util_monotonic_ms();
			job_schedule(a, j);
		}
	}
	metrics_hooks_pending((int64_t)a->pending);
}

/* Whether a status event (no check-in text) for the same job, URL, status,
 * revision and check_in_at is already queued here, being attempted or not.
 * The reaper re-fires every un-ACKed state (spec 9.3), also states whose
 * events still wait in this agent behind a slow receiver; without this
 * check each of them would be POSTed twice. */
static bool
duplicate_locked(const struct hook_agent *a, const struct job_stats *snap,
		 const char *check_in)
{
	if (!str_empty(check_in))
		return false;
	const struct hook_job *j = job_find(a, snap->id);
	for (const struct hook_event *q = j ? j->head : NULL; q; q = q->next)
		if (!q->check_in && q->revision == snap->revision &&
		    q->check_in_at == snap->check_in_at &&
		    strcmp(q->status, snap->status) == 0 &&
		    strcmp(q->url, snap->web_hook_url) == 0)
			return true;
	return false;
}

/* Epoch microseconds: the seq of an event is data (stored in its record
 * and compared with the seq of events adopted from other agents), so it is
 * wall-clock time, not a wait. */
static int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
hook_agent_submit(void *agent, const struct job_stats *snap,
		  const char *check_in)
{
	struct hook_agent *a = agent;
	if (!a || !snap || str_empty(snap->web_hook_url) ||
	    str_empty(snap->id) || str_empty(snap->status))
		return;
	pthread_mutex_lock(&a->mu);
	bool dup = duplicate_locked(a, snap, check_in);
	pthread_mutex_unlock(&a->mu);
	if (dup) {
		log_debug("status change: job=%s, status=%s, revision=%" PRId64
			  ": already queued for %s, not queued again",
			  snap->id, snap->status, snap->revision,
			  snap->web_hook_url);
		return;
	}
	struct hook_event *e = xcalloc(1, sizeof(*e));
	util_hex24(e->id);
	e->job_id = xstrdup(snap->id);
	e->url = xstrdup(snap->web_hook_url);
	e->status = xstrdup(snap->status);
	e->check_in = str_empty(check_in) ? NULL : xstrdup(check_in);
	e->host_key = hook_host_key(e->url);
	e->revision = snap->revision;
	e->check_in_at = snap->check_in_at;
	e->payload = hook_payload_encode(snap, check_in);
	e->created_at = util_now_ms();
	e->next_at = e->created_at;

	pthread_mutex_lock(&a->mu);
	int64_t seq = now_us();
	e->seq = seq > a->last_seq ? seq : a->last_seq + 1;
	a->last_seq = e->seq;
	pthread_mutex_unlock(&a->mu);

	struct berr err;
	berr_clear(&err);
	e->persisted = hook_event_persist(a, e, &err) == 0; /* not shared yet */
	if (!e->persisted)
		log_warn("hook event %s of job %s kept in memory until Redis "
			 "is back: %s", e->id, e->job_id, err.msg);
	struct hook_event *dropped = NULL;
	pthread_mutex_lock(&a->mu);
	hook_enqueue_locked(a, e, &dropped);
	pthread_mutex_unlock(&a->mu);
	hook_dropped_free(a, dropped);
	hook_trim_backlog(a);
}

/* ---- the backlog bounds ------------------------------------------------- */

/* Takes e (queued on j, which nobody holds) out of its queue and the
 * agent's list, and reschedules j when e was its head. Under a->mu. */
static void
event_unqueue_locked(struct hook_agent *a, struct hook_job *j,
		     struct hook_event *e)
{
	struct hook_event **pp = &j->head;
	while (*pp != e)
		pp = &(*pp)->next;
	bool was_head = pp == &j->head;
	*pp = e->next;
	e->next = NULL;
	a->pending--;
	glist_unlink(a, e);
	if (was_head)
		hook_job_unschedule(a, j);
	/* the job may have been this receiver's next probe */
	hook_host_kick_locked(a, e->host);
	hook_host_unref_locked(a, e);
	if (was_head) {
		j->due = util_monotonic_ms();
		job_schedule(a, j); /* frees j when it has no event left */
	}
}

void
hook_trim_backlog(struct hook_agent *a)
{
	struct hook_event *gone = NULL;
	size_t n[METRICS_HOOK_DROP_N] = {0};
	int64_t now = util_now_ms();
	pthread_mutex_lock(&a->mu);
	struct hook_event *e = a->oldest;
	while (e && (a->pending > a->max_pending ||
		     now - e->created_at > a->max_age_ms)) {
		struct hook_event *next = e->gnext;
		struct hook_job *j = job_find(a, e->job_id);
		if (!j || j->busy) { /* held by a thread: left for later */
			e = next;
			continue;
		}
		enum metrics_hook_drop why =
			a->pending > a->max_pending ? METRICS_HOOK_DROP_BACKLOG
						    : METRICS_HOOK_DROP_EXPIRED;
		event_unqueue_locked(a, j, e);
		e->next = gone;
		gone = e;
		n[why]++;
		metrics_hook_dropped(why);
		e = next;
	}
	if (gone)
		metrics_hooks_pending((int64_t)a->pending);
	/* one WARNING per reason at most every HOOK_TRIM_LOG_MS: a receiver
	 * down under load would otherwise log every submit */
	size_t nb = 0, ne = 0;
	a->unlogged[METRICS_HOOK_DROP_BACKLOG] += n[METRICS_HOOK_DROP_BACKLOG];
	a->unlogged[METRICS_HOOK_DROP_EXPIRED] += n[METRICS_HOOK_DROP_EXPIRED];
	int64_t mono = util_monotonic_ms();
	if ((a->unlogged[METRICS_HOOK_DROP_BACKLOG] ||
	     a->unlogged[METRICS_HOOK_DROP_EXPIRED]) &&
	    (!a->trim_logged_ms || mono - a->trim_logged_ms >= HOOK_TRIM_LOG_MS)) {
		nb = a->unlogged[METRICS_HOOK_DROP_BACKLOG];
		ne = a->unlogged[METRICS_HOOK_DROP_EXPIRED];
		a->unlogged[METRICS_HOOK_DROP_BACKLOG] = 0;
		a->unlogged[METRICS_HOOK_DROP_EXPIRED] = 0;
		a->trim_logged_ms = mono;
	}
	pthread_mutex_unlock(&a->mu);
	if (nb)
		log_warn("hook agent %s: %zu hook event(s) given up, oldest "
			 "first: more than berth.hooks.max_pending (%zu) "
			 "pending", a->id, nb, a->max_pending);
	if (ne)
		log_warn("hook agent %s: %zu hook event(s) given up: older "
			 "than berth.hooks.max_age_seconds (%" PRId64 " s)",
			 a->id, ne, a->max_age_ms / 1000);
	while (gone) {
		struct hook_event *nx = gone->next;
		if (blog_min_level <= BLOG_DEBUG) {
			char *desc = event_describe(gone);
			log_debug("%s: hook to %s given up (backlog bounds)",
				  desc, gone->url);
			free(desc);
		}
		/* the record may exist even when its last write failed */
		hook_record_delete(a, gone->id);
		hook_event_free(gone);
		gone = nx;
	}
}

/* ---- one attempt --------------------------------------------------------- */

/* Back-off before the attempt that follows `attempts` failed ones. */
static int64_t
backoff_ms(const struct hook_agent *a, int attempts)
{
	if (attempts <= 1)
		return 0;
	int64_t iv = HOOK_BACKOFF_FIRST_MS;
	for (int i = 2; i < attempts && iv < HOOK_BACKOFF_MAX_MS; i++)
		iv *= 2;
	if (iv > HOOK_BACKOFF_MAX_MS)
		iv = HOOK_BACKOFF_MAX_MS;
	double r = 0.5 + (double)util_random_below(1000001) / 1000000.0;
	return (int64_t)llround((double)iv * r * a->scale);
}

enum hook_outcome {
	HOOK_DONE,    /* delivered, outdated, superseded or given up */
	HOOK_RETRY,   /* kept; next attempt at j->due */
	HOOK_ABORTED, /* stop deadline: kept as it was */
};

/* True when a status event follows e in its queue. Under a->mu. */
static bool
later_status_locked(const struct hook_event *e)
{
	for (const struct hook_event *n = e->next; n; n = n->next)
		if (!n->check_in)
			return true;
	return false;
}

/* After a failed attempt: drop (superseded / bound) or plan the retry. */
static enum hook_outcome
event_failed(struct hook_agent *a, struct hook_event *e, const char *desc,
	     const char *errtxt, int64_t *wait, bool *persisted)
{
	int64_t now = util_now_ms();
	if (!e->retry_since)
		e->retry_since = now;
	pthread_mutex_lock(&a->mu);
	bool superseded = !e->check_in && later_status_locked(e);
	pthread_mutex_unlock(&a->mu);
	if (superseded) {
		log_warn("%s: hook to %s failed (attempt %d): %s; superseded "
			 "by a newer status", desc, e->url, e->attempts,
			 errtxt);
		return HOOK_DONE;
	}
	*wait = backoff_ms(a, e->attempts);
	if (now + *wait - e->created_at > a->max_age_ms) {
		metrics_hook_dropped(METRICS_HOOK_DROP_EXPIRED);
		log_warn("%s: hook to %s failed (attempt %d/%d): %s; giving up: "
			 "older than berth.hooks.max_age_seconds (%" PRId64
			 " s)", desc, e->url, e->attempts, a->max_attempts,
			 errtxt, a->max_age_ms / 1000);
		return HOOK_DONE;
	}
	if (e->attempts >= a->max_attempts ||
	    (e->attempts > 1 && now - e->retry_since + *wait > a->window_ms)) {
		metrics_hook_dropped(METRICS_HOOK_DROP_RETRY_BOUND);
		log_warn("%s: hook to %s failed (attempt %d/%d): %s; giving up "
			 "after %" PRId64 " s", desc, e->url, e->attempts,
			 a->max_attempts, errtxt,
			 (now - e->retry_since) / 1000);
		return HOOK_DONE;
	}
	e->next_at = now + *wait;
	log_warn("%s: hook to %s failed (attempt %d/%d): %s; retry in %" PRId64
		 " ms", desc, e->url, e->attempts, a->max_attempts, errtxt,
		 *wait);
	struct berr err;
	berr_clear(&err);
	*persisted = hook_event_persist(a, e, &err) == 0;
	if (!*persisted)
		log_warn("hook event %s: retry state not saved: %s", e->id,
			 err.msg);
	return HOOK_RETRY;
}

/* The breaker of a receiver changed state (see Receivers at the top).
 * Frees key. */
static void
log_host_change(enum hook_host_change change, char *key, const char *errtxt)
{
	if (change == HOOK_HOST_DEGRADED)
		log_warn("hook receiver %s does not answer (%s): its hooks go "
			 "one attempt at a time until it does", key, errtxt);
	else if (change == HOOK_HOST_RECOVERED)
		log_info("hook receiver %s answers again: its hooks go in "
			 "parallel again", key);
	free(key);
}

/* One attempt of the head event of j, which this thread holds and its
 * receiver admitted. */
static void
deliver_head(struct hook_agent *a, struct hook_http *h, struct hook_job *j)
{
	struct hook_event *e = j->head;
	char *desc = event_describe(e);
	enum hook_outcome out = HOOK_DONE;
	enum hook_reach reach = HOOK_REACH_NONE;
	int64_t wait = 0;
	bool persisted = e->persisted;
	char errtxt[1024] = "";
	if (e->attempts > 0 && hook_event_outdated(a, e)) {
		log_debug("%s: outdated (acknowledged), not retried", desc);
	} else if (util_now_ms() - e->created_at > a->max_age_ms) {
		/* e.g. adopted from an agent stopped long ago */
		metrics_hook_dropped(METRICS_HOOK_DROP_EXPIRED);
		log_warn("%s: hook to %s given up before attempt %d: older "
			 "than berth.hooks.max_age_seconds (%" PRId64 " s)",
			 desc, e->url, e->attempts + 1, a->max_age_ms / 1000);
	} else {
		if (!e->first_attempt_at)
			e->first_attempt_at = util_now_ms();
		int rc = hook_http_post(a, h, e, errtxt, sizeof(errtxt));
		if (rc != HOOK_POST_ABORTED)
			reach = rc == HOOK_POST_NO_ANSWER ? HOOK_REACH_SILENT
							  : HOOK_REACH_ANSWERED;
		if (rc == HOOK_POST_ABORTED) {
			out = HOOK_ABORTED;
		} else if (rc == HOOK_POST_OK) {
			e->attempts++;
			metrics_hook_delivered();
			log_debug("%s: delivered to %s (attempt %d)", desc,
				  e->url, e->attempts);
			hook_event_ack(a, e, desc);
		} else {
			e->attempts++;
			metrics_hook_failed();
			out = event_failed(a, e, desc, errtxt, &wait,
					   &persisted);
		}
	}
	if (out == HOOK_DONE && e->persisted)
		hook_record_delete(a, e->id);
	free(desc);

	struct hook_event *dropped = NULL;
	pthread_mutex_lock(&a->mu);
	enum hook_host_change change = hook_host_done_locked(a, e->host, reach);
	/* once j is released, e may go with another thread */
	char *key = change != HOOK_HOST_SAME ? xstrdup(e->host_key) : NULL;
	if (out == HOOK_DONE) {
		j->head = e->next;
		a->pending--;
		glist_unlink(a, e);
		hook_host_unref_locked(a, e);
	} else if (out == HOOK_RETRY) {
		j->due = util_monotonic_ms() + wait;
		e->persisted = persisted;
		if (!persisted)
			a->dirty = true;
	}
	hook_job_release_locked(a, j, &dropped);
	pthread_mutex_unlock(&a->mu);
	log_host_change(change, key, errtxt);
	if (out == HOOK_DONE)
		hook_event_free(e);
	hook_dropped_free(a, dropped);
}

/* pthread_cond_timedwait until a CLOCK_MONOTONIC time in ms (a->cv is
 * made with ticker_cond_init). */
static void
cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t mono_ms)
{
	struct timespec ts = {
		.tv_sec = (time_t)(mono_ms / 1000),
		.tv_nsec = (long)(mono_ms % 1000) * 1000000L,
	};
	pthread_cond_timedwait(cv, mu, &ts);
}

static void *
deliver_main(void *arg)
{
	struct hook_agent *a = arg;
	struct hook_http h;
	hook_http_init(a, &h);
	pthread_mutex_lock(&a->mu);
	while (!atomic_load(&a->abort)) {
		heap_release_due(a, util_monotonic_ms());
		struct hook_job *j = a->ready_head;
		if (j) {
			ready_unlink(a, j);
			if (!hook_host_admit_locked(j))
				continue; /* parked behind its host's probe */
			j->busy = true;
			pthread_mutex_unlock(&a->mu);
			deliver_head(a, &h, j);
			pthread_mutex_lock(&a->mu);
			continue;
		}
		if (a->stopping)
			break; /* drained: what waits for a retry stays */
		if (a->nheap)
			cond_wait_until(&a->cv, &a->mu, a->heap[0]->due);
		else
			pthread_cond_wait(&a->cv, &a->mu);
	}
	pthread_mutex_unlock(&a->mu);
	hook_http_fini(&h);
	pthread_mutex_lock(&a->mu);
	a->running--;
	pthread_cond_broadcast(&a->done_cv);
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* ---- life cycle --------------------------------------------------------- */

struct hook_agent *
hook_agent_new(const struct hook_agent_config *cfg, struct redis_pool *redis,
	       const char *ns, struct tracker *tracker)
{
	hook_http_global_init();
	struct hook_agent_config c = {0};
	if (cfg)
		c = *cfg;
	struct hook_agent *a = xcalloc(1, sizeof(*a));
	a->threads = c.threads > 0 ? c.threads : HOOK_DEF_THREADS;
	a->max_attempts = c.max_attempts > 0 ? c.max_attempts
					     : HOOK_DEF_MAX_ATTEMPTS;
	a->window_ms = (int64_t)(c.retry_window_s > 0 ? c.retry_window_s
						      : HOOK_DEF_WINDOW_S) *
		       1000;
	a->max_pending = (size_t)(c.max_pending > 0 ? c.max_pending
						    : HOOK_DEF_MAX_PENDING);
	a->max_age_ms = (int64_t)(c.max_age_s > 0 ? c.max_age_s
						  : HOOK_DEF_MAX_AGE_S) *
			1000;
	a->timeout_ms = c.timeout_ms > 0 ? c.timeout_ms : HOOK_DEF_TIMEOUT_MS;
	a->connect_ms = c.connect_timeout_ms > 0 ? c.connect_timeout_ms
						 : HOOK_DEF_CONNECT_MS;
	if (a->connect_ms > a->timeout_ms)
		a->connect_ms = a->timeout_ms;
	a->header_ms = c.header_timeout_ms > 0 ? c.header_timeout_ms
					       : HOOK_DEF_HEADER_MS;
	a->scale = c.retry_scale > 0 && isfinite(c.retry_scale)
			   ? c.retry_scale
			   : 1.0;
	if (!tracker)
		tracker = a->own_tracker = tracker_new(redis, ns);
	a->tracker = tracker;
	util_hex24(a->id);
	a->store = hook_store_new(redis, ns, a->id);
	a->policy = berth_http_policy_from_env();
	if (!a->policy) {
		fprintf(stderr, "berthd: out of memory (hook proxies)\n");
		abort();
	}
	if (berth_http_tls_from_env(&a->tls) != 0)
		log_warn("INTERNAL_VERIFY_CLIENT_CERT=true but "
			 "INTERNAL_TLS_CERT_PATH or INTERNAL_TLS_KEY_PATH is "
			 "not set: hooks go without a client certificate");
	pthread_mutex_init(&a->mu, NULL);
	ticker_cond_init(&a->cv);
	ticker_cond_init(&a->done_cv);
	ticker_init(&a->keeper_tick);
	atomic_init(&a->abort, false);
	atomic_init(&a->registered, false);
	return a;
}

int
hook_agent_start(struct hook_agent *a, struct berr *err)
{
	pthread_mutex_lock(&a->mu);
	if (a->started || a->stopped) {
		pthread_mutex_unlock(&a->mu);
		return 0;
	}
	a->started = true;
	pthread_mutex_unlock(&a->mu);

	hook_register_agent(a, util_now_ms());
	hook_adopt_orphans(a);
	a->tids = xcalloc((size_t)a->threads, sizeof(*a->tids));
	int rc = 0;
	while (a->ntids < a->threads) {
		pthread_mutex_lock(&a->mu);
		a->running++;
		pthread_mutex_unlock(&a->mu);
		rc = pthread_create(&a->tids[a->ntids], NULL, deliver_main, a);
		if (rc) {
			pthread_mutex_lock(&a->mu);
			a->running--;
			pthread_mutex_unlock(&a->mu);
			break;
		}
		a->ntids++;
	}
	if (!rc) {
		rc = pthread_create(&a->keeper, NULL, hook_keeper_main, a);
		a->keeper_running = rc == 0;
	}
	if (rc) {
		berr_set(err, "hook agent: cannot start a thread: %s",
			 strerror(rc));
		hook_agent_stop(a, 0);
		return -1;
	}
	log_info("hook agent %s: %d delivery thread(s), at most %d attempts "
		 "per event within %" PRId64 " s, back-off scale %g, at most "
		 "%zu pending events of at most %" PRId64 " s", a->id,
		 a->threads, a->max_attempts, a->window_ms / 1000, a->scale,
		 a->max_pending, a->max_age_ms / 1000);
	return 0;
}

void
hook_agent_stop(struct hook_agent *a, int deadline_ms)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	if (a->stopped) {
		pthread_mutex_unlock(&a->mu);
		return;
	}
	a->stopped = a->stopping = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);

	/* the delivery threads drain what is due until the deadline
	 * (monotonic: a wall-clock jump neither cuts nor stretches it), then
	 * running transfers are ended */
	struct timespec dl = ticker_deadline_in(deadline_ms > 0 ? deadline_ms
							      : 0);
	pthread_mutex_lock(&a->mu);
	while (a->running > 0 && !atomic_load(&a->abort) &&
	       pthread_cond_timedwait(&a->done_cv, &a->mu, &dl) == 0)
		;
	if (a->running > 0 && !atomic_load(&a->abort)) {
		atomic_store(&a->abort, true);
		pthread_cond_broadcast(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
	for (int i = 0; i < a->ntids; i++)
		pthread_join(a->tids[i], NULL);
	a->ntids = 0;
	if (a->keeper_running) {
		ticker_stop(&a->keeper_tick);
		pthread_join(a->keeper, NULL);
		a->keeper_running = false;
	}
	hook_persist_dirty(a);
	hook_retry_stale(a);

	pthread_mutex_lock(&a->mu);
	size_t nb = a->unlogged[METRICS_HOOK_DROP_BACKLOG];
	size_t ne = a->unlogged[METRICS_HOOK_DROP_EXPIRED];
	a->unlogged[METRICS_HOOK_DROP_BACKLOG] = 0;
	a->unlogged[METRICS_HOOK_DROP_EXPIRED] = 0;
	size_t left = a->pending, lost = 0;
	for (size_t b = 0; b < a->nbuckets; b++)
		for (struct hook_job *j = a->buckets[b]; j; j = j->hnext)
			for (struct hook_event *e = j->head; e; e = e->next)
				if (!e->persisted)
					lost++;
	pthread_mutex_unlock(&a->mu);
	if (nb || ne)
		log_warn("hook agent %s: %zu more hook event(s) given up over "
			 "berth.hooks.max_pending, %zu over "
			 "berth.hooks.max_age_seconds", a->id, nb, ne);
	/* "0": the next start (or another live agent) takes the rest over */
	if (atomic_load(&a->registered) || left)
		hook_register_agent(a, 0);
	atomic_store(&a->registered, false);
	if (lost)
		log_warn("hook agent %s stopped: %zu hook event(s) lost (Redis "
			 "unreachable)", a->id, lost);
	if (left > lost)
		log_info("hook agent %s stopped: %zu hook event(s) left in "
			 "Redis for the next start", a->id, left - lost);
}

void
hook_agent_free(struct hook_agent *a)
{
	if (!a)
		return;
	hook_agent_stop(a, 0);
	for (size_t b = 0; b < a->nbuckets; b++) {
		struct hook_job *j = a->buckets[b];
		while (j) {
			struct hook_job *next = j->hnext;
			event_list_free(j->head);
			free(j->job_id);
			free(j);
			j = next;
		}
	}
	free(a->buckets);
	free(a->heap);
	hook_hosts_free(a);
	for (size_t i = 0; i < a->nstale; i++)
		free(a->stale[i]);
	free(a->stale);
	free(a->tids);
	pthread_cond_destroy(&a->cv);
	pthread_cond_destroy(&a->done_cv);
	ticker_fini(&a->keeper_tick);
	pthread_mutex_destroy(&a->mu);
	tracker_free(a->own_tracker);
	hook_store_free(a->store);
	berth_http_policy_free(a->policy);
	berth_http_tls_fini(&a->tls);
	free(a);
}

size_t
hook_agent_pending(struct hook_agent *a)
{
	pthread_mutex_lock(&a->mu);
	size_t n = a->pending;
	pthread_mutex_unlock(&a->mu);
	return n;
}

const char *
hook_agent_id(const struct hook_agent *a)
{
	return a->id;
}

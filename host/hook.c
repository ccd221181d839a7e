/* hook.c - the status hook agent (spec 7); see hook.h.
 *
 * Delivery
 *   hook_agent_submit builds the StatusChange payload of spec 7.2 from the
 *   snapshot at once (Go JSON: struct key order, parameters sorted, `<>&`
 *   escaped), persists the event (below) and appends it to the queue of its
 *   job. Every job with queued events is dispatched to whichever of the
 *   `threads` delivery threads is free; a job is held by one thread at a
 *   time and only its head event is attempted, so the events of one job
 *   reach the receiver strictly in submit order while different jobs are
 *   delivered in parallel. A job waiting for a retry holds no thread.
 *   Each delivery thread keeps its own libcurl handle (keep-alive pool).
 *   POST with no Content-Type, Authorization, Expect or Accept header;
 *   success is HTTP 200 exactly (spec 7.3). Proxies follow Go's rules:
 *   HTTP_PROXY/http_proxy for http, HTTPS_PROXY/https_proxy for https,
 *   NO_PROXY/no_proxy, never for localhost or loopback addresses. TLS uses
 *   the system CA store ($SSL_CERT_FILE / $SSL_CERT_DIR when set) and,
 *   when INTERNAL_VERIFY_CLIENT_CERT=true, the client certificate
 *   INTERNAL_TLS_CERT_PATH / INTERNAL_TLS_KEY_PATH. Timeouts: connect 10 s,
 *   whole attempt 30 s (struct hook_agent_config).
 *
 * ACK
 *   Every HTTP 200 runs SCRIPT_ACK (spec 7.4) with the event's status,
 *   metadata.revision and metadata.check_in_at - after a successful retry
 *   too (Go skips that, quirk Q9, and lets the reaper re-send once). The
 *   script refuses an ACK older than the stored one, so this is harmless
 *   and spares core the duplicate.
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
 * Supersede policy
 *   A status event (no check-in text) that has failed at least once is
 *   dropped as soon as a newer status event of the same job is queued
 *   behind it: core only needs the newest status of a run, and the newer
 *   event carries newer metadata. Events never attempted are not dropped
 *   (core sees Running before Success whenever the receiver is up), and
 *   check-in events are never dropped (they carry data core acts on).
 *
 * Durability (beyond Harbor, whose retries live in memory only)
 *   Redis keys (Go instances never read them; ns is "{namespace}"):
 *     <ns>:berth:hook_agents          hash: agent id (hex24) -> heartbeat,
 *                                     epoch ms, refreshed every 5 s; "0"
 *                                     after a clean stop
 *     <ns>:berth:hook_events:<agent>  hash: event id (hex24) -> record
 *   record (JSON): {"id","job_id","seq","url","payload","created_at",
 *     "first_attempt_at","retry_since","next_at","attempts"}: payload is
 *     the exact body to POST; seq orders the events of one job (epoch
 *     microseconds, strictly increasing per agent); times are epoch ms
 *     (0 = not yet); attempts counts the attempts made.
 *   An event is written (HSET) before it is queued, rewritten after each
 *   failed attempt and removed (HDEL) once delivered, outdated, superseded
 *   or given up. If Redis is down at submit the event is kept in memory and
 *   written within a second of Redis coming back. Every Redis write of an
 *   event is done by the thread that holds its job, so they never race.
 *   Adoption: at start and every 30 s, the events of every other agent
 *   whose heartbeat is "0" or older than 30 s are moved into this agent's
 *   hash (WATCH/MULTI/EXEC, so two agents never adopt the same events) and
 *   queued, each attempted at once whatever its retry schedule, in seq
 *   order per job. A clean stop (SIGTERM) writes "0", so the next daemon
 *   delivers at start; after a kill -9 another live agent (or the next
 *   start) takes over within a minute. An agent that only lost Redis for
 *   more than 30 s may have its events adopted while it still holds them:
 *   core then gets a duplicate, which it tolerates (spec 7.5). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gojson.h"
#include "hook.h"
#include "log.h"
#include "metrics.h"
#include "scripts.h"

#define HOOK_DEF_THREADS 1
#define HOOK_DEF_MAX_ATTEMPTS 10
#define HOOK_DEF_WINDOW_S 300
#define HOOK_DEF_TIMEOUT_MS 30000
#define HOOK_DEF_CONNECT_MS 10000
#define HOOK_BACKOFF_FIRST_MS 2000
#define HOOK_BACKOFF_MAX_MS 60000
#define HOOK_HEARTBEAT_MS 5000
#define HOOK_STALE_MS 30000
#define HOOK_ADOPT_EVERY_MS 30000
#define HOOK_KEEPER_TICK_MS 1000
#define HOOK_BODY_MAX 4096     /* response bytes kept for the error text */
#define HOOK_LOG_TEXT_MAX 256  /* longer check-in texts are not logged */
#define HOOK_IDLE_S 30         /* keep-alive connections (spec 7.3) */

struct hook_event {
	struct hook_event *next;  /* in its job's queue, by seq */
	char id[25];
	char *job_id;
	char *url;
	char *payload;
	char *status;
	char *check_in;           /* NULL for status events */
	int64_t revision;
	int64_t check_in_at;
	int64_t seq;
	int64_t created_at;       /* epoch ms */
	int64_t first_attempt_at; /* epoch ms, 0 before the first attempt */
	int64_t retry_since;      /* epoch ms of the first failure, or 0 */
	int64_t next_at;          /* epoch ms of the next attempt */
	int attempts;
	bool persisted;           /* the record in Redis is current */
};

struct hook_job {
	struct hook_job *hnext;   /* hash chain */
	struct hook_job *rprev, *rnext; /* ready list */
	char *job_id;
	struct hook_event *head;
	int64_t due;              /* monotonic ms: the head may be attempted */
	size_t heap_idx;          /* in the timer heap, or NO_IDX */
	bool ready;               /* in the ready list */
	bool busy;                /* held by a thread (delivery or keeper) */
};

#define NO_IDX ((size_t)-1)

struct hook_agent {
	/* immutable after hook_agent_new */
	int threads, max_attempts;
	int64_t window_ms;
	long timeout_ms, connect_ms;
	double scale;
	struct redis_pool *redis;
	struct tracker *tracker;
	char *ns, *agents_key, *events_key, *track_key;
	char id[25];
	char *http_proxy, *https_proxy, *no_proxy;
	char *ca_file, *ca_dir, *client_cert, *client_key;

	pthread_mutex_t mu;
	pthread_cond_t cv;        /* delivery threads: work, stop */
	pthread_cond_t kcv;       /* keeper: stop */
	struct hook_job **buckets;
	size_t nbuckets, njobs;
	struct hook_job *ready_head, *ready_tail;
	struct hook_job **heap;
	size_t nheap, capheap;
	size_t pending;           /* events in memory */
	bool dirty;               /* some event may be unpersisted */
	char **stale;             /* event ids whose HDEL failed */
	size_t nstale, capstale;
	int64_t last_seq;
	bool started, stopping, stopped, keeper_stop;
	atomic_bool abort;        /* stop deadline passed: end transfers */
	atomic_bool registered;   /* our entry in hook_agents is written */
	pthread_t *tids;
	int ntids;
	pthread_t keeper;
	bool keeper_running;
};

/* ---- small helpers ------------------------------------------------------ */

static bool
is_empty(const char *s)
{
	return !s || !*s;
}

static cJSON *
jm(cJSON *v)
{
	if (!v) {
		fprintf(stderr, "berthd: out of memory (cJSON)\n");
		abort();
	}
	return v;
}

static int64_t
json_i64(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v) || !(v->valuedouble > -9.2e18 &&
				     v->valuedouble < 9.2e18))
		return 0;
	return (int64_t)v->valuedouble;
}

static const char *
json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static char *
env_dup(const char *upper, const char *lower)
{
	const char *v = getenv(upper);
	if (is_empty(v) && lower)
		v = getenv(lower);
	return is_empty(v) ? NULL : xstrdup(v);
}

static void
event_free(struct hook_event *e)
{
	if (!e)
		return;
	free(e->job_id);
	free(e->url);
	free(e->payload);
	free(e->status);
	free(e->check_in);
	free(e);
}

static void
event_list_free(struct hook_event *e)
{
	while (e) {
		struct hook_event *n = e->next;
		event_free(e);
		e = n;
	}
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

/* ---- the payload (spec 7.2) -------------------------------------------- */

/* Appends a struct-like object in its key order, as Go encodes a struct;
 * "parameters" is a Go map (sorted keys), nested objects (metadata, ack)
 * are structs again. */
static void
append_struct(struct gbuf *b, const cJSON *o)
{
	gbuf_putc(b, '{');
	for (const cJSON *it = o->child; it; it = it->next) {
		if (it != o->child)
			gbuf_putc(b, ',');
		gojson_append_string(b, it->string, strlen(it->string));
		gbuf_putc(b, ':');
		if (strcmp(it->string, "parameters") == 0)
			gojson_append(b, it);
		else if (cJSON_IsObject(it))
			append_struct(b, it);
		else if (cJSON_IsString(it))
			gojson_append_string(b, it->valuestring,
					     strlen(it->valuestring));
		else if (cJSON_IsNumber(it))
			gojson_append_int(b, (long long)it->valuedouble);
		else
			gojson_append(b, it);
	}
	gbuf_putc(b, '}');
}

static char *
payload_encode(const struct job_stats *snap, const char *check_in)
{
	cJSON *o = jm(cJSON_CreateObject());
	jm(cJSON_AddStringToObject(o, "job_id", snap->id));
	jm(cJSON_AddStringToObject(o, "status", snap->status));
	if (!is_empty(check_in))
		jm(cJSON_AddStringToObject(o, "check_in", check_in));
	cJSON_AddItemToObject(o, "metadata", job_stats_to_json(snap, true));
	struct gbuf b = {0};
	append_struct(&b, o);
	cJSON_Delete(o);
	return gbuf_take(&b);
}

/* ---- persistence -------------------------------------------------------- */

static char *
event_record(const struct hook_event *e)
{
	cJSON *o = jm(cJSON_CreateObject());
	jm(cJSON_AddStringToObject(o, "id", e->id));
	jm(cJSON_AddStringToObject(o, "job_id", e->job_id));
	jm(cJSON_AddNumberToObject(o, "seq", (double)e->seq));
	jm(cJSON_AddStringToObject(o, "url", e->url));
	jm(cJSON_AddStringToObject(o, "payload", e->payload));
	jm(cJSON_AddNumberToObject(o, "created_at", (double)e->created_at));
	jm(cJSON_AddNumberToObject(o, "first_attempt_at",
				   (double)e->first_attempt_at));
	jm(cJSON_AddNumberToObject(o, "retry_since", (double)e->retry_since));
	jm(cJSON_AddNumberToObject(o, "next_at", (double)e->next_at));
	jm(cJSON_AddNumberToObject(o, "attempts", e->attempts));
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s) {
		fprintf(stderr, "berthd: out of memory (cJSON)\n");
		abort();
	}
	char *r = xstrdup(s);
	cJSON_free(s);
	return r;
}

/* An event from a persisted record; NULL when the record is unusable. */
static struct hook_event *
event_from_record(const char *field, const char *text, size_t len)
{
	cJSON *o = cJSON_ParseWithLength(text, len);
	const char *job_id = json_str(o, "job_id");
	const char *url = json_str(o, "url");
	const char *payload = json_str(o, "payload");
	cJSON *p = payload ? cJSON_Parse(payload) : NULL;
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(p, "metadata");
	const char *status = json_str(p, "status");
	struct hook_event *e = NULL;
	if (strlen(field) == 24 && !is_empty(job_id) && !is_empty(url) &&
	    !is_empty(status) && cJSON_IsObject(md)) {
		e = xcalloc(1, sizeof(*e));
		memcpy(e->id, field, 25);
		e->job_id = xstrdup(job_id);
		e->url = xstrdup(url);
		e->payload = xstrdup(payload);
		e->status = xstrdup(status);
		const char *ci = json_str(p, "check_in");
		e->check_in = is_empty(ci) ? NULL : xstrdup(ci);
		e->revision = json_i64(md, "revision");
		e->check_in_at = json_i64(md, "check_in_at");
		e->seq = json_i64(o, "seq");
		e->created_at = json_i64(o, "created_at");
		e->first_attempt_at = json_i64(o, "first_attempt_at");
		e->retry_since = json_i64(o, "retry_since");
		e->next_at = json_i64(o, "next_at");
		int64_t at = json_i64(o, "attempts");
		e->attempts = at < 0 ? 0 : at > 1000000 ? 1000000 : (int)at;
		e->persisted = true;
	}
	cJSON_Delete(p);
	cJSON_Delete(o);
	return e;
}

static void
register_agent(struct hook_agent *a, int64_t beat)
{
	char v[24];
	snprintf(v, sizeof(v), "%" PRId64, beat);
	struct berr err;
	berr_clear(&err);
	redisReply *r = redis_command(a->redis, &err, "HSET", a->agents_key,
				      a->id, v, NULL);
	if (r && r->type != REDIS_REPLY_ERROR)
		atomic_store(&a->registered, true);
	else
		log_debug("hook agent %s: heartbeat: %s", a->id,
			  r ? r->str : err.msg);
	freeReplyObject(r);
}

/* HSET the event's record. 0, or -1 with err (Redis down). Does not touch
 * e->persisted: that flag is only written under a->mu. */
static int
event_persist(struct hook_agent *a, const struct hook_event *e,
	      struct berr *err)
{
	if (!atomic_load(&a->registered))
		register_agent(a, util_now_ms());
	char *rec = event_record(e);
	redisReply *r = redis_command(a->redis, err, "HSET", a->events_key,
				      e->id, rec, NULL);
	free(rec);
	int rc = 0;
	if (!r)
		rc = -1;
	else if (r->type == REDIS_REPLY_ERROR)
		rc = berr_set(err, "HSET: %s", r->str);
	freeReplyObject(r);
	return rc;
}

static void
stale_push_locked(struct hook_agent *a, const char *id)
{
	if (a->nstale == a->capstale) {
		a->capstale = a->capstale ? a->capstale * 2 : 16;
		a->stale = xrealloc(a->stale, sizeof(*a->stale) * a->capstale);
	}
	a->stale[a->nstale++] = xstrdup(id);
}

/* HDEL the record; on a Redis error the id is retried by the keeper. */
static void
record_delete(struct hook_agent *a, const char *id)
{
	struct berr err;
	berr_clear(&err);
	redisReply *r = redis_command(a->redis, &err, "HDEL", a->events_key,
				      id, NULL);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		pthread_mutex_lock(&a->mu);
		stale_push_locked(a, id);
		pthread_mutex_unlock(&a->mu);
	}
	freeReplyObject(r);
}

/* Removes the records of a list of dropped events and frees them. */
static void
dropped_free(struct hook_agent *a, struct hook_event *list)
{
	while (list) {
		struct hook_event *n = list->next;
		if (list->persisted)
			record_delete(a, list->id);
		event_free(list);
		list = n;
	}
}

/* ---- jobs: hash table, ready list, timer heap (all under a->mu) -------- */

static uint64_t
str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void
jobs_grow(struct hook_agent *a)
{
	size_t n = a->nbuckets ? a->nbuckets * 2 : 64;
	struct hook_job **b = xcalloc(n, sizeof(*b));
	for (size_t i = 0; i < a->nbuckets; i++) {
		struct hook_job *j = a->buckets[i];
		while (j) {
			struct hook_job *next = j->hnext;
			size_t k = str_hash(j->job_id) & (n - 1);
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
job_get(struct hook_agent *a, const char *job_id, bool *created)
{
	*created = false;
	if (a->nbuckets) {
		size_t k = str_hash(job_id) & (a->nbuckets - 1);
		for (struct hook_job *j = a->buckets[k]; j; j = j->hnext)
			if (strcmp(j->job_id, job_id) == 0)
				return j;
	}
	if (a->njobs >= a->nbuckets)
		jobs_grow(a);
	struct hook_job *j = xcalloc(1, sizeof(*j));
	j->job_id = xstrdup(job_id);
	j->heap_idx = NO_IDX;
	size_t k = str_hash(job_id) & (a->nbuckets - 1);
	j->hnext = a->buckets[k];
	a->buckets[k] = j;
	a->njobs++;
	*created = true;
	return j;
}

static void
job_remove(struct hook_agent *a, struct hook_job *j)
{
	size_t k = str_hash(j->job_id) & (a->nbuckets - 1);
	struct hook_job **pp = &a->buckets[k];
	while (*pp != j)
		pp = &(*pp)->hnext;
	*pp = j->hnext;
	a->njobs--;
	free(j->job_id);
	free(j);
}

static void
ready_push(struct hook_agent *a, struct hook_job *j)
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

/* Takes j out of the ready list or the heap. */
static void
job_unschedule(struct hook_agent *a, struct hook_job *j)
{
	if (j->ready)
		ready_unlink(a, j);
	if (j->heap_idx != NO_IDX)
		heap_remove(a, j);
}

/* Puts a job that nobody holds where it belongs: ready (head due), the
 * heap (head due later), or away (no events). */
static void
job_schedule(struct hook_agent *a, struct hook_job *j)
{
	if (j->busy || j->ready || j->heap_idx != NO_IDX)
		return;
	if (!j->head) {
		job_remove(a, j);
		return;
	}
	if (j->due <= util_monotonic_ms())
		ready_push(a, j);
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
		ready_push(a, j);
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
static void
job_release_locked(struct hook_agent *a, struct hook_job *j,
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
static void
enqueue_locked(struct hook_agent *a, struct hook_event *e,
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
	e->next = *pp;
	*pp = e;
	a->pending++;
	if (!e->persisted)
		a->dirty = true;
	if (!j->busy) {
		job_prune(a, j, dropped);
		if (j->head != before) {
			job_unschedule(a, j);
			j->due = util_monotonic_ms();
			job_schedule(a, j);
		}
	}
	metrics_hooks_pending((int64_t)a->pending);
}

/* Epoch microseconds. */
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
	if (!a || !snap || is_empty(snap->web_hook_url) ||
	    is_empty(snap->id) || is_empty(snap->status))
		return;
	struct hook_event *e = xcalloc(1, sizeof(*e));
	util_hex24(e->id);
	e->job_id = xstrdup(snap->id);
	e->url = xstrdup(snap->web_hook_url);
	e->status = xstrdup(snap->status);
	e->check_in = is_empty(check_in) ? NULL : xstrdup(check_in);
	e->revision = snap->revision;
	e->check_in_at = snap->check_in_at;
	e->payload = payload_encode(snap, check_in);
	e->created_at = util_now_ms();
	e->next_at = e->created_at;

	pthread_mutex_lock(&a->mu);
	int64_t seq = now_us();
	e->seq = seq > a->last_seq ? seq : a->last_seq + 1;
	a->last_seq = e->seq;
	pthread_mutex_unlock(&a->mu);

	struct berr err;
	berr_clear(&err);
	e->persisted = event_persist(a, e, &err) == 0; /* not shared yet */
	if (!e->persisted)
		log_warn("hook event %s of job %s kept in memory until Redis "
			 "is back: %s", e->id, e->job_id, err.msg);
	struct hook_event *dropped = NULL;
	pthread_mutex_lock(&a->mu);
	enqueue_locked(a, e, &dropped);
	pthread_mutex_unlock(&a->mu);
	dropped_free(a, dropped);
}

/* ---- HTTP (spec 7.3) ----------------------------------------------------- */

struct hook_http {
	CURL *curl;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	char body[HOOK_BODY_MAX + 1];
	size_t body_len;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init_once(void)
{
	CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK)
		log_error("hook agent: curl_global_init: %s",
			  curl_easy_strerror(rc));
}

static size_t
http_collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct hook_http *h = ud;
	size_t n = size * nmemb;
	size_t room = HOOK_BODY_MAX - h->body_len;
	size_t take = n < room ? n : room;
	memcpy(h->body + h->body_len, ptr, take);
	h->body_len += take;
	return n;
}

/* Ends a transfer once the stop deadline has passed. */
static int
http_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
	      curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	struct hook_agent *a = ud;
	return atomic_load(&a->abort) ? 1 : 0;
}

static struct curl_slist *
slist_add(struct curl_slist *l, const char *s)
{
	struct curl_slist *n = curl_slist_append(l, s);
	if (!n) {
		fprintf(stderr, "berthd: out of memory (curl)\n");
		abort();
	}
	return n;
}

static void
http_init(struct hook_agent *a, struct hook_http *h)
{
	memset(h, 0, sizeof(*h));
	CURL *c = curl_easy_init();
	if (!c) {
		log_error("hook agent: curl_easy_init failed; hooks of this "
			  "thread fail");
		return;
	}
	h->curl = c;
	/* no Content-Type (curl would add a form type), no Expect, no
	 * Accept: Go sends neither */
	h->hdrs = slist_add(NULL, "Content-Type:");
	h->hdrs = slist_add(h->hdrs, "Expect:");
	h->hdrs = slist_add(h->hdrs, "Accept:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, a->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, a->connect_ms);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 30L);
	curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, (long)HOOK_IDLE_S);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, http_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, a);
	if (a->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, a->ca_file);
	if (a->ca_dir)
		curl_easy_setopt(c, CURLOPT_CAPATH, a->ca_dir);
	if (a->client_cert && a->client_key) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, a->client_cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, a->client_key);
	}
}

static void
http_fini(struct hook_http *h)
{
	if (h->curl)
		curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->hdrs);
}

/* Go never proxies localhost nor loopback addresses. */
static bool
host_is_loopback(const char *host)
{
	char buf[64];
	size_t n = strlen(host);
	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (n >= 2 && n < sizeof(buf) && host[0] == '[' &&
	    host[n - 1] == ']') {
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		host = buf;
	}
	struct in_addr v4;
	struct in6_addr v6;
	if (inet_pton(AF_INET, host, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6) ||
		       (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
	return false;
}

/* Proxy as Go's http.ProxyFromEnvironment picks it; set explicitly so
 * libcurl's own environment rules (lowercase http_proxy only) never
 * apply. */
static void
http_set_proxy(struct hook_agent *a, CURL *c, const char *url)
{
	const char *proxy = NULL;
	char *scheme = NULL, *host = NULL;
	CURLU *u = curl_url();
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    !host_is_loopback(host))
		proxy = strcasecmp(scheme, "https") == 0 ? a->https_proxy
							 : a->http_proxy;
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	curl_easy_setopt(c, CURLOPT_PROXY, proxy ? proxy : "");
	curl_easy_setopt(c, CURLOPT_NOPROXY, a->no_proxy ? a->no_proxy : "");
}

/* Copies text into out for a log line: control bytes become spaces,
 * trailing space is cut. */
static void
clean_text(char *out, size_t n, const char *text, size_t len)
{
	size_t k = 0;
	for (size_t i = 0; i < len && k + 1 < n; i++) {
		unsigned char ch = (unsigned char)text[i];
		out[k++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	while (k > 0 && out[k - 1] == ' ')
		k--;
	out[k] = '\0';
}

/* One POST. 0: HTTP 200; -1: failure (errtxt); -2: ended by the stop
 * deadline. */
static int
http_post(struct hook_agent *a, struct hook_http *h,
	  const struct hook_event *e, char *errtxt, size_t n)
{
	if (!h->curl) {
		snprintf(errtxt, n, "no HTTP client (curl_easy_init failed)");
		return -1;
	}
	CURL *c = h->curl;
	h->body_len = 0;
	h->errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, e->url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, e->payload);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)strlen(e->payload));
	http_set_proxy(a, c, e->url);
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_ABORTED_BY_CALLBACK && atomic_load(&a->abort))
		return -2;
	if (rc != CURLE_OK) {
		snprintf(errtxt, n, "Post \"%s\": %s", e->url,
			 h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
		return -1;
	}
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (code == 200)
		return 0;
	clean_text(errtxt, n, h->body, h->body_len);
	if (!errtxt[0])
		snprintf(errtxt, n,
			 "failed to report status change via hook, expect "
			 "'200' but got '%ld'", code);
	return -1;
}

/* ---- one attempt --------------------------------------------------------- */

static char *
stats_key(const struct hook_agent *a, const char *job_id)
{
	return xasprintf("%s:job_stats:%s", a->ns, job_id);
}

/* spec 7.4 after an HTTP 200. */
static void
event_ack(struct hook_agent *a, const struct hook_event *e, const char *desc)
{
	char *skey = stats_key(a, e->job_id);
	char rev[24], cia[24];
	snprintf(rev, sizeof(rev), "%" PRId64, e->revision);
	snprintf(cia, sizeof(cia), "%" PRId64, e->check_in_at);
	const char *keys[] = {skey, a->track_key};
	const char *args[] = {e->status, rev, cia, e->job_id};
	struct berr err;
	berr_clear(&err);
	redisReply *r = script_run(a->redis, &err, SCRIPT_ACK, 2, keys, 4,
				   args);
	free(skey);
	if (!r)
		log_warn("%s: ack: %s", desc, err.msg);
	else if (r->type == REDIS_REPLY_ERROR)
		log_warn("%s: ack: %s", desc, r->str);
	else if (r->str && strcmp(r->str, "ok") != 0)
		log_debug("%s: no ack done for event", desc);
	freeReplyObject(r);
}

/* spec 7.5: true when the stored ack is at or past e. A Redis error or a
 * missing ack: false (the attempt goes ahead). */
static bool
event_outdated(struct hook_agent *a, const struct hook_event *e)
{
	char *skey = stats_key(a, e->job_id);
	struct berr err;
	berr_clear(&err);
	redisReply *r = redis_command(a->redis, &err, "HGET", skey, "ack",
				      NULL);
	free(skey);
	bool out = false;
	if (r && r->type == REDIS_REPLY_STRING) {
		cJSON *ack = cJSON_ParseWithLength(r->str, r->len);
		if (cJSON_IsObject(ack)) {
			int64_t arev = json_i64(ack, "revision");
			int ca = job_status_code(json_str(ack, "status"));
			int ce = job_status_code(e->status);
			out = arev > e->revision ||
			      (arev == e->revision &&
			       (ca > ce ||
				(ca == ce &&
				 json_i64(ack, "check_in_at") >=
					 e->check_in_at)));
		}
		cJSON_Delete(ack);
	} else if (!r) {
		log_debug("hook event %s: ack not read (%s); sending", e->id,
			  err.msg);
	}
	freeReplyObject(r);
	return out;
}

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
	if (e->attempts >= a->max_attempts ||
	    (e->attempts > 1 && now - e->retry_since + *wait > a->window_ms)) {
		metrics_hook_dropped();
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
	*persisted = event_persist(a, e, &err) == 0;
	if (!*persisted)
		log_warn("hook event %s: retry state not saved: %s", e->id,
			 err.msg);
	return HOOK_RETRY;
}

/* One attempt of the head event of j, which this thread holds. */
static void
deliver_head(struct hook_agent *a, struct hook_http *h, struct hook_job *j)
{
	struct hook_event *e = j->head;
	char *desc = event_describe(e);
	enum hook_outcome out = HOOK_DONE;
	int64_t wait = 0;
	bool persisted = e->persisted;
	if (e->attempts > 0 && event_outdated(a, e)) {
		log_debug("%s: outdated (acknowledged), not retried", desc);
	} else {
		char errtxt[1024];
		if (!e->first_attempt_at)
			e->first_attempt_at = util_now_ms();
		int rc = http_post(a, h, e, errtxt, sizeof(errtxt));
		if (rc == -2) {
			out = HOOK_ABORTED;
		} else if (rc == 0) {
			e->attempts++;
			metrics_hook_delivered();
			log_debug("%s: delivered to %s (attempt %d)", desc,
				  e->url, e->attempts);
			event_ack(a, e, desc);
		} else {
			e->attempts++;
			metrics_hook_failed();
			out = event_failed(a, e, desc, errtxt, &wait,
					   &persisted);
		}
	}
	if (out == HOOK_DONE && e->persisted)
		record_delete(a, e->id);
	free(desc);

	struct hook_event *dropped = NULL;
	pthread_mutex_lock(&a->mu);
	if (out == HOOK_DONE) {
		j->head = e->next;
		a->pending--;
	} else if (out == HOOK_RETRY) {
		j->due = util_monotonic_ms() + wait;
		e->persisted = persisted;
		if (!persisted)
			a->dirty = true;
	}
	job_release_locked(a, j, &dropped);
	pthread_mutex_unlock(&a->mu);
	if (out == HOOK_DONE)
		event_free(e);
	dropped_free(a, dropped);
}

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
	http_init(a, &h);
	pthread_mutex_lock(&a->mu);
	while (!atomic_load(&a->abort)) {
		heap_release_due(a, util_monotonic_ms());
		struct hook_job *j = a->ready_head;
		if (j) {
			ready_unlink(a, j);
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
	http_fini(&h);
	return NULL;
}

/* ---- the keeper: heartbeat, late persistence, adoption ------------------- */

/* Writes the records of events Redis refused at submit time. */
static void
persist_dirty(struct hook_agent *a)
{
	pthread_mutex_lock(&a->mu);
	if (!a->dirty) {
		pthread_mutex_unlock(&a->mu);
		return;
	}
	a->dirty = false;
	struct hook_job **held = NULL;
	struct hook_event **evs = NULL;
	size_t nheld = 0, nevs = 0, capheld = 0, capevs = 0;
	for (size_t b = 0; b < a->nbuckets; b++) {
		for (struct hook_job *j = a->buckets[b]; j; j = j->hnext) {
			size_t first = nevs;
			if (j->busy) {
				for (struct hook_event *e = j->head; e;
				     e = e->next)
					if (!e->persisted)
						a->dirty = true;
				continue;
			}
			for (struct hook_event *e = j->head; e; e = e->next) {
				if (e->persisted)
					continue;
				if (nevs == capevs) {
					capevs = capevs ? capevs * 2 : 16;
					evs = xrealloc(evs, sizeof(*evs) *
								    capevs);
				}
				evs[nevs++] = e;
			}
			if (nevs == first)
				continue;
			if (nheld == capheld) {
				capheld = capheld ? capheld * 2 : 16;
				held = xrealloc(held, sizeof(*held) * capheld);
			}
			job_unschedule(a, j);
			j->busy = true;
			held[nheld++] = j;
		}
	}
	pthread_mutex_unlock(&a->mu);
	if (!nheld)
		return;

	bool *ok = xcalloc(nevs, sizeof(*ok));
	size_t failed = 0;
	struct berr err;
	berr_clear(&err);
	for (size_t i = 0; i < nevs; i++) {
		ok[i] = event_persist(a, evs[i], &err) == 0;
		if (!ok[i])
			failed++;
	}
	if (failed)
		log_warn("hook agent %s: %zu hook event(s) still only in "
			 "memory: %s", a->id, failed, err.msg);
	else
		log_info("hook agent %s: %zu hook event(s) saved to Redis",
			 a->id, nevs);
	struct hook_event *dropped = NULL;
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < nevs; i++) {
		evs[i]->persisted = ok[i];
		if (!ok[i])
			a->dirty = true;
	}
	for (size_t i = 0; i < nheld; i++)
		job_release_locked(a, held[i], &dropped);
	pthread_mutex_unlock(&a->mu);
	dropped_free(a, dropped);
	free(ok);
	free(evs);
	free(held);
}

/* Retries the HDELs that failed. */
static void
retry_stale(struct hook_agent *a)
{
	pthread_mutex_lock(&a->mu);
	char **ids = a->stale;
	size_t n = a->nstale;
	a->stale = NULL;
	a->nstale = a->capstale = 0;
	pthread_mutex_unlock(&a->mu);
	for (size_t i = 0; i < n; i++) {
		record_delete(a, ids[i]);
		free(ids[i]);
	}
	free(ids);
}

/* One command of the adoption transaction: true when it was accepted
 * (QUEUED inside MULTI); false with err. The reply is freed. */
static bool
adopt_step(struct hook_agent *a, struct berr *err, int argc,
	   const char **argv, const size_t *lens)
{
	redisReply *r = redis_command_argv(a->redis, err, argc, argv, lens);
	bool ok = r && r->type != REDIS_REPLY_ERROR;
	if (r && !ok)
		berr_set(err, "%s: %s", argv[0], r->str);
	freeReplyObject(r);
	return ok;
}

/* Queues the events read from an adopted hash (field, value, ...). */
static void
adopt_records(struct hook_agent *a, const redisReply *all, const char *other)
{
	size_t got = 0, bad = 0;
	struct hook_event *dropped = NULL;
	for (size_t i = 0; i + 1 < all->elements; i += 2) {
		const redisReply *f = all->element[i];
		const redisReply *v = all->element[i + 1];
		struct hook_event *e = NULL;
		if (f->type == REDIS_REPLY_STRING &&
		    v->type == REDIS_REPLY_STRING)
			e = event_from_record(f->str, v->str, v->len);
		if (!e) {
			bad++;
			if (f->type == REDIS_REPLY_STRING)
				record_delete(a, f->str);
			continue;
		}
		pthread_mutex_lock(&a->mu);
		if (e->seq > a->last_seq)
			a->last_seq = e->seq;
		enqueue_locked(a, e, &dropped);
		pthread_mutex_unlock(&a->mu);
		got++;
	}
	dropped_free(a, dropped);
	if (got || bad)
		log_info("hook agent %s: took over %zu pending hook event(s) "
			 "of stopped agent %s%s", a->id, got, other,
			 bad ? " (unreadable ones dropped)" : "");
}

/* Moves the events of agent `other` into our hash (WATCH/MULTI/EXEC: an
 * agent adopting the same one at the same time makes our EXEC fail) and
 * queues them. */
static void
adopt_agent(struct hook_agent *a, const char *other)
{
	char *key = xasprintf("%s:berth:hook_events:%s", a->ns, other);
	struct berr err;
	berr_clear(&err);
	redisReply *all = NULL, *exec = NULL;
	const char **argv = NULL;
	size_t *lens = NULL;
	bool watching = false, multi = false;

	const char *watch[] = {"WATCH", key};
	if (!(watching = adopt_step(a, &err, 2, watch, NULL)))
		goto fail;
	all = redis_command(a->redis, &err, "HGETALL", key, NULL);
	if (!all || all->type != REDIS_REPLY_ARRAY) {
		if (all)
			berr_set(&err, "HGETALL: %s",
				 all->type == REDIS_REPLY_ERROR
					 ? all->str
					 : "unexpected reply");
		goto fail;
	}
	const char *multi_cmd[] = {"MULTI"};
	if (!(multi = adopt_step(a, &err, 1, multi_cmd, NULL)))
		goto fail;
	if (all->elements >= 2) {
		size_t n = 2 + all->elements;
		argv = xcalloc(n, sizeof(*argv));
		lens = xcalloc(n, sizeof(*lens));
		argv[0] = "HSET";
		lens[0] = 4;
		argv[1] = a->events_key;
		lens[1] = strlen(a->events_key);
		for (size_t i = 0; i < all->elements; i++) {
			argv[2 + i] = all->element[i]->str;
			lens[2 + i] = all->element[i]->len;
		}
		if (!adopt_step(a, &err, (int)n, argv, lens))
			goto fail;
	}
	const char *del[] = {"DEL", key};
	const char *hdel[] = {"HDEL", a->agents_key, other};
	if (!adopt_step(a, &err, 2, del, NULL) ||
	    !adopt_step(a, &err, 3, hdel, NULL))
		goto fail;
	exec = redis_command(a->redis, &err, "EXEC", NULL);
	watching = multi = false;
	if (exec && exec->type == REDIS_REPLY_NIL) {
		log_debug("hook agent %s: agent %s was taken over by another",
			  a->id, other);
		goto out;
	}
	if (!exec || exec->type != REDIS_REPLY_ARRAY) {
		if (exec)
			berr_set(&err, "EXEC: %s",
				 exec->type == REDIS_REPLY_ERROR
					 ? exec->str
					 : "unexpected reply");
		goto fail;
	}
	adopt_records(a, all, other);
	goto out;
fail:
	log_warn("hook agent %s: taking over the events of agent %s: %s",
		 a->id, other, err.msg);
	if (multi || watching) {
		/* harmless on a fresh connection after an error */
		const char *undo[] = {multi ? "DISCARD" : "UNWATCH"};
		struct berr e2;
		berr_clear(&e2);
		freeReplyObject(redis_command_argv(a->redis, &e2, 1, undo,
						   NULL));
	}
out:
	freeReplyObject(exec);
	freeReplyObject(all);
	free(argv);
	free(lens);
	free(key);
}

/* Takes over the events of every agent stopped or silent for 30 s. */
static void
adopt_orphans(struct hook_agent *a)
{
	struct berr err;
	berr_clear(&err);
	redisReply *r = redis_command(a->redis, &err, "HGETALL",
				      a->agents_key, NULL);
	if (!r || r->type != REDIS_REPLY_ARRAY) {
		log_warn("hook agent %s: reading %s: %s", a->id, a->agents_key,
			 r && r->type == REDIS_REPLY_ERROR ? r->str : err.msg);
		freeReplyObject(r);
		return;
	}
	int64_t now = util_now_ms();
	char **dead = NULL;
	size_t ndead = 0;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *f = r->element[i], *v = r->element[i + 1];
		if (f->type != REDIS_REPLY_STRING || strcmp(f->str, a->id) == 0)
			continue;
		int64_t beat = 0;
		if (v->type != REDIS_REPLY_STRING ||
		    util_parse_i64(v->str, 0, INT64_MAX, &beat) < 0)
			beat = 0;
		if (beat != 0 && now - beat <= HOOK_STALE_MS)
			continue;
		dead = xrealloc(dead, sizeof(*dead) * (ndead + 1));
		dead[ndead++] = xstrdup(f->str);
	}
	freeReplyObject(r);
	for (size_t i = 0; i < ndead; i++) {
		adopt_agent(a, dead[i]);
		free(dead[i]);
	}
	free(dead);
}

static void *
keeper_main(void *arg)
{
	struct hook_agent *a = arg;
	int64_t next_beat = util_monotonic_ms() + HOOK_HEARTBEAT_MS;
	int64_t next_adopt = util_monotonic_ms() + HOOK_ADOPT_EVERY_MS;
	pthread_mutex_lock(&a->mu);
	while (!a->keeper_stop) {
		pthread_mutex_unlock(&a->mu);
		int64_t now = util_monotonic_ms();
		if (now >= next_beat) {
			register_agent(a, util_now_ms());
			next_beat = now + HOOK_HEARTBEAT_MS;
		}
		if (now >= next_adopt) {
			adopt_orphans(a);
			next_adopt = now + HOOK_ADOPT_EVERY_MS;
		}
		persist_dirty(a);
		retry_stale(a);
		pthread_mutex_lock(&a->mu);
		if (!a->keeper_stop)
			cond_wait_until(&a->kcv, &a->mu,
					util_monotonic_ms() +
						HOOK_KEEPER_TICK_MS);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* ---- life cycle --------------------------------------------------------- */

static double
scale_from_env(void)
{
	const char *v = getenv("BERTH_HOOK_RETRY_SCALE");
	if (is_empty(v))
		return 1.0;
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || *end || !isfinite(d) || d <= 0 || d > 1000) {
		log_warn("BERTH_HOOK_RETRY_SCALE=%s is not a number in "
			 "(0, 1000]; using 1", v);
		return 1.0;
	}
	return d;
}

struct hook_agent *
hook_agent_new(const struct hook_agent_config *cfg, struct redis_pool *redis,
	       const char *ns, struct tracker *tracker)
{
	pthread_once(&curl_once, curl_init_once);
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
	a->timeout_ms = c.timeout_ms > 0 ? c.timeout_ms : HOOK_DEF_TIMEOUT_MS;
	a->connect_ms = c.connect_timeout_ms > 0 ? c.connect_timeout_ms
						 : HOOK_DEF_CONNECT_MS;
	if (a->connect_ms > a->timeout_ms)
		a->connect_ms = a->timeout_ms;
	a->scale = c.retry_scale > 0 && isfinite(c.retry_scale)
			   ? c.retry_scale
			   : scale_from_env();
	a->redis = redis;
	a->tracker = tracker;
	a->ns = xstrdup(ns);
	util_hex24(a->id);
	a->agents_key = xasprintf("%s:berth:hook_agents", ns);
	a->events_key = xasprintf("%s:berth:hook_events:%s", ns, a->id);
	a->track_key = xasprintf("%s:job_track:inprogress", ns);
	a->http_proxy = env_dup("HTTP_PROXY", "http_proxy");
	a->https_proxy = env_dup("HTTPS_PROXY", "https_proxy");
	a->no_proxy = env_dup("NO_PROXY", "no_proxy");
	a->ca_file = env_dup("SSL_CERT_FILE", NULL);
	a->ca_dir = env_dup("SSL_CERT_DIR", NULL);
	const char *verify = getenv("INTERNAL_VERIFY_CLIENT_CERT");
	if (verify && strcasecmp(verify, "true") == 0) {
		a->client_cert = env_dup("INTERNAL_TLS_CERT_PATH", NULL);
		a->client_key = env_dup("INTERNAL_TLS_KEY_PATH", NULL);
		if (!a->client_cert || !a->client_key)
			log_warn("INTERNAL_VERIFY_CLIENT_CERT=true but "
				 "INTERNAL_TLS_CERT_PATH or "
				 "INTERNAL_TLS_KEY_PATH is not set: hooks go "
				 "without a client certificate");
	}
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_cond_init(&a->kcv, &ca);
	pthread_condattr_destroy(&ca);
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

	register_agent(a, util_now_ms());
	adopt_orphans(a);
	a->tids = xcalloc((size_t)a->threads, sizeof(*a->tids));
	int rc = 0;
	while (a->ntids < a->threads) {
		rc = pthread_create(&a->tids[a->ntids], NULL, deliver_main, a);
		if (rc)
			break;
		a->ntids++;
	}
	if (!rc) {
		rc = pthread_create(&a->keeper, NULL, keeper_main, a);
		a->keeper_running = rc == 0;
	}
	if (rc) {
		berr_set(err, "hook agent: cannot start a thread: %s",
			 strerror(rc));
		hook_agent_stop(a, 0);
		return -1;
	}
	log_info("hook agent %s: %d delivery thread(s), at most %d attempts "
		 "per event within %" PRId64 " s, back-off scale %g", a->id,
		 a->threads, a->max_attempts, a->window_ms / 1000, a->scale);
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

	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	int64_t ms = deadline_ms > 0 ? deadline_ms : 0;
	dl.tv_sec += (time_t)(ms / 1000);
	dl.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	for (int i = 0; i < a->ntids; i++) {
		if (!atomic_load(&a->abort) &&
		    pthread_timedjoin_np(a->tids[i], NULL, &dl) == 0)
			continue;
		if (!atomic_load(&a->abort)) {
			atomic_store(&a->abort, true);
			pthread_mutex_lock(&a->mu);
			pthread_cond_broadcast(&a->cv);
			pthread_mutex_unlock(&a->mu);
		}
		pthread_join(a->tids[i], NULL);
	}
	a->ntids = 0;
	if (a->keeper_running) {
		pthread_mutex_lock(&a->mu);
		a->keeper_stop = true;
		pthread_cond_signal(&a->kcv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->keeper, NULL);
		a->keeper_running = false;
	}
	persist_dirty(a);
	retry_stale(a);

	pthread_mutex_lock(&a->mu);
	size_t left = a->pending, lost = 0;
	for (size_t b = 0; b < a->nbuckets; b++)
		for (struct hook_job *j = a->buckets[b]; j; j = j->hnext)
			for (struct hook_event *e = j->head; e; e = e->next)
				if (!e->persisted)
					lost++;
	pthread_mutex_unlock(&a->mu);
	/* "0": the next start (or another live agent) takes the rest over */
	if (atomic_load(&a->registered) || left)
		register_agent(a, 0);
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
	for (size_t i = 0; i < a->nstale; i++)
		free(a->stale[i]);
	free(a->stale);
	free(a->tids);
	pthread_cond_destroy(&a->cv);
	pthread_cond_destroy(&a->kcv);
	pthread_mutex_destroy(&a->mu);
	free(a->ns);
	free(a->agents_key);
	free(a->events_key);
	free(a->track_key);
	free(a->http_proxy);
	free(a->https_proxy);
	free(a->no_proxy);
	free(a->ca_file);
	free(a->ca_dir);
	free(a->client_cert);
	free(a->client_key);
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

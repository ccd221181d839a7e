/* queue.c - the queue engine of spec 5; see queue.h.
 *
 * Every function runs on the calling thread's Redis connection (the pool
 * gives each thread its own). Commands that belong together are pipelined
 * (redis_pipeline), so an enqueue or a finish costs one round trip. After
 * a connection error the thread's context is dropped and re-dialled on the
 * next call.
 *
 * Key names (spec 5.1, 12.2), all under the namespace prefix NS:
 *   NS:jobs:T                      pending messages (LPUSH head, pop tail)
 *   NS:jobs:T:<pool>:inprogress    messages claimed by one pool
 *   NS:jobs:T:paused               presence = paused
 *   NS:jobs:T:lock                 in-flight count of T (all pools)
 *   NS:jobs:T:lock_info            pool -> in-flight count
 *   NS:jobs:T:max_concurrency      global limit (0 = none)
 *   NS:known_jobs NS:scheduled NS:retry NS:dead
 *   NS:berth:wakeup                Berth's wake-up list (queue.h)
 *   NS:unique:<name>:<args>        unique marker (spec 5.7)
 * Their builders are in keys.h. */
#include "store/queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "store/keys.h"
#include "store/pipe.h"
#include "common/json.h"
#include "logs/log.h"
#include "store/redis_cmd.h"
#include "store/scripts.h"

#define KNOWN_JOBS_CACHE_MS (300 * 1000)
#define WAKEUP_KEEP 1024
#define WAKEUP_PUSH_MAX 64
/* How much longer than a BRPOP timeout the socket read may take. */
#define WAKEUP_READ_MARGIN_MS 2000
/* A runaway-loop guard for the script loops (each iteration moves one
 * message, so this is far above anything real per call). */
#define SCRIPT_LOOP_MAX 1000000

struct known_entry {
	char *name;
	int64_t added_ms; /* monotonic time of the last SADD */
};

struct queue {
	struct redis_pool *redis;
	char *ns;
	char *wakeup_key;
	char *ready_key;   /* NS:berth:ready (store/drain.h) */
	char *jobs_prefix; /* "NS:jobs:" */
	pthread_mutex_t lock;
	struct known_entry *known;
	size_t n_known, cap_known;
	/* Redis older than 6.0 refuses fractional BRPOP timeouts; then whole
	 * seconds are used (at least 1 s). */
	_Atomic bool brpop_whole_seconds;
};

/* --- helpers ------------------------------------------------------------- */

static void
free_strv(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* --- life cycle ----------------------------------------------------------- */

struct queue *
queue_new(struct redis_pool *redis, const char *ns)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	q->redis = redis;
	q->ns = xstrdup(ns);
	q->wakeup_key = key_wakeup(ns);
	q->ready_key = key_ready_types(ns);
	q->jobs_prefix = key_jobs_prefix(ns);
	pthread_mutex_init(&q->lock, NULL);
	return q;
}

void
queue_free(struct queue *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->n_known; i++)
		free(q->known[i].name);
	free(q->known);
	free(q->ns);
	free(q->wakeup_key);
	free(q->ready_key);
	free(q->jobs_prefix);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

const char *
queue_ns(const struct queue *q)
{
	return q->ns;
}

struct redis_pool *
queue_redis(const struct queue *q)
{
	return q->redis;
}

void
queue_claim_fini(struct queue_claim *c)
{
	if (!c)
		return;
	free(c->raw);
	free(c->type);
	free(c->queue_key);
	free(c->inprogress_key);
	free(c->parse_error);
	if (c->parsed)
		message_fini(&c->msg);
	memset(c, 0, sizeof(*c));
}

/* --- wake-ups ------------------------------------------------------------- */

/* LPUSH count tokens (at most WAKEUP_PUSH_MAX) and trim; errors are only
 * logged at debug level: a lost wake-up costs at most one idle wait. */
static void
wakeup_push(struct queue *q, const char *token, size_t count)
{
	if (count == 0)
		return;
	if (count > WAKEUP_PUSH_MAX)
		count = WAKEUP_PUSH_MAX;
	const char **argv = xcalloc(count + 2, sizeof(char *));
	argv[0] = "LPUSH";
	argv[1] = q->wakeup_key;
	for (size_t i = 0; i < count; i++)
		argv[i + 2] = token;
	char keep[16];
	snprintf(keep, sizeof(keep), "%d", WAKEUP_KEEP - 1);
	const char *trim[] = {"LTRIM", q->wakeup_key, "0", keep};
	struct redis_cmd cmds[] = {
		{(int)count + 2, argv, NULL},
		{4, trim, NULL},
	};
	struct berr err;
	berr_clear(&err);
	if (redis_pipeline(q->redis, &err, cmds, 2, NULL, 0) < 0)
		log_debug("wake-up push failed: %s", err.msg);
	free(argv);
}

void
queue_wake(struct queue *q, size_t count)
{
	wakeup_push(q, "wake", count);
}

/* The socket's receive timeout in ms (0 = none), -1 when unknown. */
static int
socket_timeout_ms(int fd)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);
	if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) != 0)
		return -1;
	return (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

static struct timeval
ms_tv(int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	return tv;
}

int
queue_wait_wakeup(struct queue *q, int timeout_ms, struct berr *err)
{
	if (timeout_ms < 1)
		timeout_ms = 1;
	redisContext *c = redis_pool_get(q->redis, err);
	if (!c)
		return -1;
	char secs[32];
	int wait_ms = timeout_ms;
	if (q->brpop_whole_seconds) {
		wait_ms = (timeout_ms + 999) / 1000 * 1000;
		snprintf(secs, sizeof(secs), "%d", wait_ms / 1000);
	} else {
		snprintf(secs, sizeof(secs), "%d.%03d", timeout_ms / 1000,
			 timeout_ms % 1000);
	}
	/* The pool's command timeout bounds each read; a BRPOP may block
	 * for wait_ms first, so lengthen the read timeout for this one
	 * command and restore it afterwards. */
	int old = socket_timeout_ms(c->fd);
	bool changed = old > 0 && old < wait_ms + WAKEUP_READ_MARGIN_MS;
	if (changed &&
	    redisSetTimeout(c, ms_tv(wait_ms + WAKEUP_READ_MARGIN_MS)) !=
		    REDIS_OK) {
		berr_set(err, "redis %s: cannot set a read timeout: %s",
			 redis_pool_describe(q->redis), c->errstr);
		redis_pool_drop(q->redis);
		return -1;
	}
	const char *argv[] = {"BRPOP", q->wakeup_key, secs};
	errno = 0;
	redisReply *r = redisCommandArgv(c, 3, argv, NULL);
	if (!r || c->err) {
		berr_set(err, "redis %s: BRPOP: %s",
			 redis_pool_describe(q->redis),
			 c->err && c->errstr[0] ? c->errstr : "no reply");
		if (r)
			freeReplyObject(r);
		redis_pool_drop(q->redis);
		return -1;
	}
	if (changed && redisSetTimeout(c, ms_tv(old)) != REDIS_OK) {
		freeReplyObject(r);
		redis_pool_drop(q->redis);
		return berr_set(err, "redis %s: cannot restore the read "
				     "timeout",
				redis_pool_describe(q->redis));
	}
	int rc;
	if (r->type == REDIS_REPLY_ARRAY) {
		rc = 1;
	} else if (r->type == REDIS_REPLY_NIL) {
		rc = 0;
	} else if (r->type == REDIS_REPLY_ERROR && !q->brpop_whole_seconds &&
		   r->str && strstr(r->str, "timeout")) {
		/* Redis < 6: no fractional timeouts. Wait in whole seconds
		 * from now on. */
		log_info("redis %s: BRPOP refuses fractional timeouts (%s); "
			 "idle workers wait in whole seconds",
			 redis_pool_describe(q->redis), r->str);
		q->brpop_whole_seconds = true;
		rc = 0;
	} else {
		redis_pool_check_reply(q->redis, r); /* READONLY: re-dial */
		rc = berr_set(err, "BRPOP %s: unexpected reply%s%s",
			      q->wakeup_key,
			      r->type == REDIS_REPLY_ERROR ? ": " : "",
			      r->type == REDIS_REPLY_ERROR && r->str ? r->str
								    : "");
	}
	freeReplyObject(r);
	return rc;
}

/* --- enqueue -------------------------------------------------------------- */

/* True when NS:known_jobs needs an SADD of name (not done in 300 s). */
static bool
known_due(struct queue *q, const char *name)
{
	int64_t now = util_monotonic_ms();
	bool due = true;
	pthread_mutex_lock(&q->lock);
	for (size_t i = 0; i < q->n_known; i++) {
		if (strcmp(q->known[i].name, name) == 0) {
			due = now - q->known[i].added_ms >= KNOWN_JOBS_CACHE_MS;
			break;
		}
	}
	pthread_mutex_unlock(&q->lock);
	return due;
}

static void
known_mark(struct queue *q, const char *name)
{
	int64_t now = util_monotonic_ms();
	pthread_mutex_lock(&q->lock);
	for (size_t i = 0; i < q->n_known; i++) {
		if (strcmp(q->known[i].name, name) == 0) {
			q->known[i].added_ms = now;
			pthread_mutex_unlock(&q->lock);
			return;
		}
	}
	if (q->n_known == q->cap_known) {
		q->cap_known = q->cap_known ? q->cap_known * 2 : 16;
		q->known = xrealloc(q->known,
				    q->cap_known * sizeof(*q->known));
	}
	q->known[q->n_known].name = xstrdup(name);
	q->known[q->n_known].added_ms = now;
	q->n_known++;
	pthread_mutex_unlock(&q->lock);
}

void
queue_enq_set_init(struct queue_enq_set *set)
{
	memset(set, 0, sizeof(*set));
}

void
queue_enq_set_fini(struct queue_enq_set *set)
{
	if (!set)
		return;
	free(set->ready);
	free(set->types);
	free(set->known);
	memset(set, 0, sizeof(*set));
}

/* Adds name to the list v (n entries, capacity *cap) unless it is there.
 * The strings are borrowed. */
static void
names_add(const char ***v, size_t *n, size_t *cap, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], name) == 0)
			return;
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = name;
}

void
queue_enqueue_append(struct queue *q, struct pipe *b,
		     const struct job_message *m, const char *raw,
		     int64_t run_at, struct queue_enq_set *set,
		     struct queue_enq *out)
{
	bool delayed = run_at > 0;
	memset(out, 0, sizeof(*out));
	out->unique = m->unique;
	out->plain = !delayed;
	out->first = pipe_count(b);
	out->verdict = pipe_begin(b);
	if (m->unique) {
		/* EVAL, not EVALSHA: inside a MULTI a NOSCRIPT (a Redis whose
		 * script cache was flushed) could not be retried without
		 * leaving the rest of the transaction applied */
		enum script_id id = delayed ? SCRIPT_ENQUEUE_UNIQUE_DELAYED
					    : SCRIPT_ENQUEUE_UNIQUE;
		pipe_str(b, "EVAL");
		pipe_str(b, script_source(id));
		pipe_str(b, "2");
		pipe_own(b, delayed ? key_scheduled(q->ns)
				    : key_jobs(q->ns, m->name));
		pipe_own(b, queue_unique_key(q->ns, m->name, m->args));
		pipe_str(b, raw);
		if (delayed)
			pipe_i64(b, run_at);
	} else if (delayed) {
		pipe_str(b, "ZADD");
		pipe_own(b, key_scheduled(q->ns));
		pipe_i64(b, run_at);
		pipe_str(b, raw);
	} else {
		pipe_str(b, "LPUSH");
		pipe_own(b, key_jobs(q->ns, m->name));
		pipe_str(b, raw);
	}
	out->n = pipe_count(b) - out->first;
	names_add(&set->types, &set->n_types, &set->cap_types, m->name);
	if (!delayed) {
		names_add(&set->ready, &set->n_ready, &set->cap_ready,
			  m->name);
		set->n_plain++;
	}
}

void
queue_enqueue_close(struct queue *q, struct pipe *b,
		    struct queue_enq_set *set)
{
	set->first = pipe_count(b);
	if (set->n_ready) {
		/* the index of non-empty types the fetch reads (keys.h): in
		 * the transaction of the LPUSHes */
		pipe_begin(b);
		pipe_str(b, "SADD");
		pipe_own(b, key_ready_types(q->ns));
		for (size_t i = 0; i < set->n_ready; i++)
			pipe_str(b, set->ready[i]);
	}
	size_t cap_known = 0;
	for (size_t i = 0; i < set->n_types; i++)
		if (known_due(q, set->types[i]))
			names_add(&set->known, &set->n_known, &cap_known,
				  set->types[i]);
	if (set->n_known) {
		set->known_cmd = pipe_begin(b);
		pipe_str(b, "SADD");
		pipe_own(b, key_known_jobs(q->ns));
		for (size_t i = 0; i < set->n_known; i++)
			pipe_str(b, set->known[i]);
	}
	/* one wake-up per message pushed to a queue, at most
	 * WAKEUP_PUSH_MAX; a delayed message wakes workers when the
	 * requeuer moves it */
	if (set->n_plain) {
		size_t tokens = set->n_plain < WAKEUP_PUSH_MAX
					? set->n_plain
					: WAKEUP_PUSH_MAX;
		pipe_begin(b);
		pipe_str(b, "LPUSH");
		pipe_str(b, q->wakeup_key);
		for (size_t i = 0; i < tokens; i++)
			pipe_str(b, set->ready[i % set->n_ready]);
		pipe_begin(b);
		pipe_str(b, "LTRIM");
		pipe_str(b, q->wakeup_key);
		pipe_str(b, "0");
		pipe_i64(b, WAKEUP_KEEP - 1);
	}
	set->n = pipe_count(b) - set->first;
}

/* True for a text reply equal to w. */
static bool
reply_word(const redisReply *r, const char *w)
{
	return redis_reply_is_text(r) && (size_t)r->len == strlen(w) &&
	       memcmp(r->str, w, (size_t)r->len) == 0;
}

enum queue_enqueue_result
queue_enqueue_verdict(const struct queue_enq *e, const struct pipe_tx *tx,
		      const redisReply *ex, const char *name,
		      struct berr *err)
{
	const redisReply *v = pipe_tx_reply(tx, ex, e->verdict);
	if (!v) {
		berr_set(err, "enqueue of %s: no reply", name);
		return QUEUE_ERROR;
	}
	if (v->type == REDIS_REPLY_ERROR) {
		berr_set(err, "enqueue of %s: %.*s", name, pipe_err_len(v),
			 pipe_err_str(v));
		return QUEUE_ERROR;
	}
	if (!e->unique && v->type == REDIS_REPLY_INTEGER)
		return QUEUE_ENQUEUED;
	if (e->unique && reply_word(v, "ok"))
		return QUEUE_ENQUEUED;
	if (e->unique && reply_word(v, "dup"))
		return QUEUE_DUPLICATE;
	berr_set(err, "enqueue of %s: unexpected reply", name);
	return QUEUE_ERROR;
}

void
queue_enqueue_done(struct queue *q, const struct queue_enq_set *set,
		   const struct pipe_tx *tx, const redisReply *ex)
{
	for (size_t i = set->first; i < set->first + set->n; i++) {
		const redisReply *r = pipe_tx_reply(tx, ex, i);
		if (r && r->type != REDIS_REPLY_ERROR) {
			if (set->n_known && i == set->known_cmd)
				for (size_t k = 0; k < set->n_known; k++)
					known_mark(q, set->known[k]);
			continue;
		}
		/* the messages are queued; an index or wake-up that did not
		 * take costs a later fetch (Go's messages are found the same
		 * way), not the jobs */
		log_warn("enqueue: bookkeeping command %zu of the "
			 "transaction failed: %.*s",
			 i - set->first, pipe_err_len(r),
			 r ? pipe_err_str(r) : "no reply");
	}
}

void
queue_enqueue_undo_append(struct queue *q, struct pipe *b,
			  const struct job_message *m, const char *raw,
			  int64_t run_at)
{
	pipe_begin(b);
	if (run_at > 0) {
		pipe_str(b, "ZREM");
		pipe_own(b, key_scheduled(q->ns));
	} else {
		pipe_str(b, "LREM");
		pipe_own(b, key_jobs(q->ns, m->name));
		pipe_str(b, "1");
	}
	pipe_str(b, raw);
	if (m->unique) {
		pipe_begin(b);
		pipe_str(b, "DEL");
		pipe_own(b, queue_unique_key(q->ns, m->name, m->args));
	}
}

enum queue_enqueue_result
queue_enqueue(struct queue *q, const struct job_message *m, int64_t run_at,
	      struct berr *err)
{
	if (!m || !m->name || !m->name[0] || !m->id || !m->id[0]) {
		berr_set(err, "cannot enqueue a message without a job name "
			      "and id");
		return QUEUE_ERROR;
	}
	char *raw = message_encode(m);
	struct pipe b;
	struct pipe_tx tx;
	struct queue_enq_set set;
	struct queue_enq e;
	pipe_init(&b);
	queue_enq_set_init(&set);
	pipe_tx_begin(&b, &tx);
	queue_enqueue_append(q, &b, m, raw, run_at, &set, &e);
	queue_enqueue_close(q, &b, &set);
	pipe_tx_end(&b, &tx);
	redisReply **replies = NULL;
	const redisReply *ex = pipe_run_tx(&b, q->redis, &tx, &replies, err);
	enum queue_enqueue_result res = QUEUE_ERROR;
	if (ex) {
		res = queue_enqueue_verdict(&e, &tx, ex, m->name, err);
		queue_enqueue_done(q, &set, &tx, ex);
		redis_replies_free(replies, pipe_count(&b));
		free(replies);
	}
	queue_enq_set_fini(&set);
	pipe_fini(&b);
	free(raw);
	return res;
}

int
queue_unschedule(struct queue *q, int64_t run_at, const char *job_id,
		 struct berr *err)
{
	char *sched = key_scheduled(q->ns);
	char score[24];
	snprintf(score, sizeof(score), "%lld", (long long)run_at);
	const char *keys[] = {sched};
	const char *args[] = {score, job_id};
	redisReply *r = script_run(q->redis, err, SCRIPT_ZREM_BY_ID, 1, keys,
				   2, args);
	free(sched);
	if (!r)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY) {
		int rc = berr_set(err, "unschedule %s: %s", job_id,
				  r->type == REDIS_REPLY_ERROR && r->str
					  ? r->str
					  : "unexpected reply");
		freeReplyObject(r);
		return rc;
	}
	int removed = (int)r->elements;
	for (size_t i = 0; i < r->elements; i++) {
		redisReply *e = r->element[i];
		if (!e || e->type != REDIS_REPLY_STRING)
			continue;
		struct job_message m;
		struct berr perr;
		memset(&m, 0, sizeof(m));
		berr_clear(&perr);
		if (message_parse(e->str, e->len, &m, &perr) < 0) {
			log_warn("unschedule %s: removed an unparsable message "
				 "(%s)",
				 job_id, perr.msg);
			continue;
		}
		struct berr derr;
		berr_clear(&derr);
		if (m.unique && queue_release_unique(q, &m, &derr) < 0)
			log_warn("unschedule %s: cannot delete the unique "
				 "key: %s",
				 job_id, derr.msg);
		message_fini(&m);
	}
	freeReplyObject(r);
	return removed;
}

/* --- finish ---------------------------------------------------------------- */

/* The finish script (scripts.h SCRIPT_FINISH): 1 removed and accounted,
 * 0 the message was no longer there, -1 error. zset may be NULL. */
static int
finish_script(struct queue *q, const char *pool_id, const char *type,
	      const char *inprogress_key, const char *raw, const char *zset,
	      int64_t score, const char *msg, struct berr *err)
{
	char *lock = key_lock(q->ns, type);
	char *info = key_lock_info(q->ns, type);
	char at[24];
	snprintf(at, sizeof(at), "%lld", (long long)score);
	const char *keys[] = {inprogress_key, lock, info, zset};
	const char *args[] = {pool_id, raw, at, msg};
	bool with = zset && msg;
	redisReply *r = script_run(q->redis, err, SCRIPT_FINISH, with ? 4 : 3,
				   keys, with ? 4 : 2, args);
	free(lock);
	free(info);
	if (!r)
		return -1;
	int rc;
	if (r->type == REDIS_REPLY_INTEGER)
		rc = r->integer == 1 ? 1 : 0;
	else
		rc = berr_set(err, "finish script: %s",
			      r->type == REDIS_REPLY_ERROR && r->str
				      ? r->str
				      : "unexpected reply");
	freeReplyObject(r);
	return rc;
}

int
queue_finish(struct queue *q, const char *pool_id,
	     const struct queue_claim *c, const char *retry_msg,
	     int64_t retry_at, bool dead, struct berr *err)
{
	char *retry = dead ? key_dead(q->ns) : key_retry(q->ns);
	int rc = finish_script(q, pool_id, c->type, c->inprogress_key, c->raw,
			       retry_msg ? retry : NULL, retry_at, retry_msg,
			       err);
	free(retry);
	return rc < 0 ? -1 : 0;
}

int
queue_fail_inprogress(struct queue *q, const char *pool_id, const char *type,
		      const char *raw, bool dead, int64_t score,
		      const char *msg, struct berr *err)
{
	char *inprog = key_inprogress(q->ns, type, pool_id);
	char *zset = dead ? key_dead(q->ns) : key_retry(q->ns);
	int rc = finish_script(q, pool_id, type, inprog, raw, zset, score, msg,
			       err);
	free(inprog);
	free(zset);
	return rc;
}

int
queue_inprogress_list(struct queue *q, const char *pool_id, const char *type,
		      char ***raws, size_t *n, struct berr *err)
{
	*raws = NULL;
	*n = 0;
	char *inprog = key_inprogress(q->ns, type, pool_id);
	redisReply *r = redis_command(q->redis, err, "LRANGE", inprog, "0",
				      "-1", NULL);
	free(inprog);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type == REDIS_REPLY_ARRAY) {
		*raws = xcalloc(r->elements + 1, sizeof(char *));
		for (size_t i = 0; i < r->elements; i++)
			if (redis_reply_is_text(r->element[i]))
				(*raws)[(*n)++] = xstrndup(r->element[i]->str,
							   r->element[i]->len);
	} else if (r->type == REDIS_REPLY_ERROR) {
		rc = berr_set(err, "LRANGE in-progress of %s: %s", type,
			      r->str ? r->str : "");
	}
	freeReplyObject(r);
	return rc;
}

int
queue_reconcile(struct queue *q, const char *pool_id, const char *type,
		const char *const *held, size_t n_held,
		struct queue_reconciled *out, struct berr *err)
{
	memset(out, 0, sizeof(*out));
	char *keys[5] = {
		key_inprogress(q->ns, type, pool_id),
		key_jobs(q->ns, type),
		key_lock(q->ns, type),
		key_lock_info(q->ns, type),
		key_ready_types(q->ns),
	};
	const char **args = xcalloc(n_held + 2, sizeof(char *));
	args[0] = pool_id;
	args[1] = type;
	for (size_t i = 0; i < n_held; i++)
		args[i + 2] = held[i];
	redisReply *r = script_run(q->redis, err, SCRIPT_RECONCILE, 5,
				   (const char **)keys, (int)n_held + 2, args);
	free(args);
	int rc = 0;
	if (!r) {
		rc = -1;
	} else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
		   r->element[0]->type == REDIS_REPLY_INTEGER &&
		   r->element[1]->type == REDIS_REPLY_INTEGER &&
		   r->element[2]->type == REDIS_REPLY_INTEGER) {
		out->moved = r->element[0]->integer;
		out->old_share = r->element[1]->integer;
		out->kept = r->element[2]->integer;
	} else {
		rc = berr_set(err, "reconcile of %s: %s", keys[0],
			      r->type == REDIS_REPLY_ERROR && r->str
				      ? r->str
				      : "unexpected reply");
	}
	if (r)
		freeReplyObject(r);
	if (rc == 0 && out->moved > 0)
		wakeup_push(q, "reconciled", (size_t)out->moved);
	for (size_t i = 0; i < 5; i++)
		free(keys[i]);
	return rc;
}

bool
queue_claim_gone(struct queue *q, const struct queue_claim *c)
{
	struct berr err;
	berr_clear(&err);
	redisReply *r = redis_command(q->redis, &err, "LPOS",
				      c->inprogress_key, c->raw, NULL);
	bool gone = r && r->type == REDIS_REPLY_NIL;
	if (r)
		freeReplyObject(r);
	return gone;
}

/* --- unique keys ---------------------------------------------------------- */

char *
queue_unique_key(const char *ns, const char *name, const cJSON *args)
{
	char *part = message_unique_args(args);
	char *key = key_unique(ns, name ? name : "", part);
	free(part);
	return key;
}

int
queue_release_unique(struct queue *q, const struct job_message *m,
		     struct berr *err)
{
	char *ukey = queue_unique_key(q->ns, m->name, m->args);
	redisReply *r = redis_command(q->redis, err, "DEL", ukey, NULL);
	free(ukey);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type == REDIS_REPLY_ERROR)
		rc = berr_set(err, "DEL unique key: %s", r->str ? r->str : "");
	freeReplyObject(r);
	return rc;
}

/* --- requeuers and recovery ----------------------------------------------- */

static bool
reply_equals(const redisReply *r, const char *s)
{
	return redis_reply_is_text(r) && strcmp(r->str, s) == 0;
}

const char *
queue_zset_name(enum queue_zset z)
{
	return z == QUEUE_RETRY ? "retry" : "scheduled";
}

static int requeue_run(struct queue *q, enum queue_zset z,
		       const char *const *types, size_t n, bool ask,
		       int *moved_out, struct berr *err);

int
queue_requeue_due(struct queue *q, enum queue_zset z,
		  const char *const *types, size_t n, struct berr *err)
{
	int moved = 0;
	return requeue_run(q, z, types, n, false, &moved, err);
}

int
queue_requeue_due_ask(struct queue *q, enum queue_zset z,
		      const char *const *types, size_t n, int *moved,
		      struct berr *err)
{
	return requeue_run(q, z, types, n, true, moved, err);
}

static int
requeue_run(struct queue *q, enum queue_zset z, const char *const *types,
	    size_t n, bool ask, int *moved_out, struct berr *err)
{
	size_t nk = n + 2;
	char **keys = xcalloc(nk, sizeof(char *));
	keys[0] = z == QUEUE_RETRY ? key_retry(q->ns) : key_scheduled(q->ns);
	keys[1] = key_dead(q->ns);
	for (size_t i = 0; i < n; i++)
		keys[i + 2] = key_jobs(q->ns, types[i]);
	int moved = 0, queued = 0;
	int rc = 0;
	for (int loops = 0; loops < SCRIPT_LOOP_MAX; loops++) {
		char now[24];
		snprintf(now, sizeof(now), "%lld", (long long)util_now());
		const char *args[] = {q->jobs_prefix, now, ask ? "ask" : "",
				      q->ready_key};
		redisReply *r = script_run(q->redis, err, SCRIPT_REQUEUE,
					   (int)nk, (const char **)keys, 4,
					   args);
		if (!r) {
			rc = -1;
			break;
		}
		if (r->type == REDIS_REPLY_NIL) {
			freeReplyObject(r);
			break;
		}
		if (reply_equals(r, "ok")) {
			moved++;
			queued++;
		} else if (ask && reply_equals(r, "unknown")) {
			freeReplyObject(r);
			rc = QUEUE_REQUEUE_UNKNOWN;
			break;
		} else if (reply_equals(r, "dead")) {
			moved++;
			log_warn("a due message of %s had a job type no "
				 "registered pool serves; moved to %s",
				 keys[0], keys[1]);
		} else {
			rc = berr_set(err, "requeue %s: %s", keys[0],
				      r->type == REDIS_REPLY_ERROR && r->str
					      ? r->str
					      : "unexpected reply");
			freeReplyObject(r);
			break;
		}
		freeReplyObject(r);
	}
	free_strv(keys, nk);
	if (queued > 0)
		wakeup_push(q, queue_zset_name(z), (size_t)queued);
	*moved_out = moved;
	if (rc == QUEUE_REQUEUE_UNKNOWN)
		return rc;
	return rc < 0 ? -1 : moved;
}

int
queue_recover_pool(struct queue *q, const char *pool_id,
		   const char *const *types, size_t n, struct berr *err)
{
	if (n == 0)
		return 0;
	size_t nk = n * 4;
	char **keys = xcalloc(nk, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		keys[i * 4 + 0] = key_inprogress(q->ns, types[i], pool_id);
		keys[i * 4 + 1] = key_jobs(q->ns, types[i]);
		keys[i * 4 + 2] = key_lock(q->ns, types[i]);
		keys[i * 4 + 3] = key_lock_info(q->ns, types[i]);
	}
	const char *args[] = {pool_id, q->ready_key, q->jobs_prefix};
	int moved = 0;
	int rc = 0;
	for (int loops = 0; loops < SCRIPT_LOOP_MAX; loops++) {
		redisReply *r = script_run(q->redis, err,
					   SCRIPT_REENQUEUE_POOL, (int)nk,
					   (const char **)keys, 3, args);
		if (!r) {
			rc = -1;
			break;
		}
		if (r->type == REDIS_REPLY_NIL) {
			freeReplyObject(r);
			break;
		}
		if (r->type != REDIS_REPLY_ARRAY) {
			rc = berr_set(err, "re-enqueue of pool %s: %s",
				      pool_id,
				      r->type == REDIS_REPLY_ERROR && r->str
					      ? r->str
					      : "unexpected reply");
			freeReplyObject(r);
			break;
		}
		moved++;
		freeReplyObject(r);
	}
	if (rc == 0) {
		/* the lock and lock_info keys are the 3rd and 4th of each
		 * group of four */
		char **lk = xcalloc(n * 2, sizeof(char *));
		for (size_t i = 0; i < n; i++) {
			lk[i * 2] = keys[i * 4 + 2];
			lk[i * 2 + 1] = keys[i * 4 + 3];
		}
		redisReply *r = script_run(q->redis, err, SCRIPT_STALE_LOCKS,
					   (int)(n * 2), (const char **)lk, 1,
					   args);
		free(lk);
		if (!r) {
			rc = -1;
		} else {
			if (r->type == REDIS_REPLY_ERROR)
				rc = berr_set(err, "stale locks of pool %s: %s",
					      pool_id, r->str ? r->str : "");
			freeReplyObject(r);
		}
	}
	free_strv(keys, nk);
	if (moved > 0)
		wakeup_push(q, "recovered", (size_t)moved);
	return rc < 0 ? -1 : moved;
}

static void
strv_add_unique(char ***v, size_t *n, size_t *cap, const char *s, size_t len)
{
	for (size_t i = 0; i < *n; i++)
		if (strlen((*v)[i]) == len && memcmp((*v)[i], s, len) == 0)
			return;
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = xrealloc(*v, *cap * sizeof(char *));
	}
	(*v)[(*n)++] = xstrndup(s, len);
}

int
queue_lock_holders(struct queue *q, const char *type, char ***pools,
		   size_t *n, struct berr *err)
{
	*pools = NULL;
	*n = 0;
	size_t cap = 0;
	char *key = key_lock_info(q->ns, type);
	char cursor[32] = "0";
	int rc = 0;
	do {
		redisReply *r = redis_command(q->redis, err, "HSCAN", key,
					      cursor, "COUNT", "100", NULL);
		if (!r) {
			rc = -1;
			break;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    !redis_reply_is_text(r->element[0]) ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			rc = berr_set(err, "HSCAN %s: unexpected reply", key);
			freeReplyObject(r);
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		redisReply *kv = r->element[1];
		for (size_t k = 0; k + 1 < kv->elements; k += 2) {
			redisReply *f = kv->element[k];
			redisReply *v = kv->element[k + 1];
			int64_t count = 0;
			if (!redis_reply_is_text(f) ||
			    !redis_reply_is_text(v) ||
			    util_parse_i64(v->str, INT64_MIN, INT64_MAX,
					   &count) < 0 ||
			    count <= 0)
				continue;
			strv_add_unique(pools, n, &cap, f->str, f->len);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	free(key);
	if (rc < 0) {
		queue_strv_free(*pools, *n);
		*pools = NULL;
		*n = 0;
	}
	return rc;
}

void
queue_strv_free(char **v, size_t n)
{
	free_strv(v, n);
}

/* --- queue figures (spec 12.4) -------------------------------------------- */

/* The message's t (enqueue epoch), -1 when absent. */
static double
message_t(const char *raw, size_t len)
{
	cJSON *j = json_parse(raw, len, NULL);
	const cJSON *t = j ? cJSON_GetObjectItemCaseSensitive(j, "t") : NULL;
	double v = cJSON_IsNumber(t) ? t->valuedouble : -1;
	cJSON_Delete(j);
	return v;
}

static void
figure_type_add(char ***v, size_t *n, size_t *cap, const char *s, size_t len)
{
	if (*n >= QUEUE_FIGURES_MAX || len == 0)
		return;
	strv_add_unique(v, n, cap, s, len);
}

int
queue_known_types(struct queue *q, char ***out, size_t *n, struct berr *err)
{
	*out = NULL;
	*n = 0;
	char *known = key_known_jobs(q->ns);
	redisReply *r = redis_command(q->redis, err, "SMEMBERS", known, NULL);
	free(known);
	if (!r)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(r);
		return berr_set(err, "SMEMBERS known_jobs: unexpected reply");
	}
	char **v = xcalloc(r->elements + 1, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; i < r->elements; i++)
		if (r->element[i]->type == REDIS_REPLY_STRING)
			v[k++] = xstrndup(r->element[i]->str,
					  (size_t)r->element[i]->len);
	freeReplyObject(r);
	*out = v;
	*n = k;
	return 0;
}

int
queue_figures(struct queue *q, const char *const *extra, size_t n_extra,
	      struct queue_figure **out, size_t *n, struct berr *err)
{
	*out = NULL;
	*n = 0;
	char **types = NULL;
	size_t nt = 0, cap = 0;
	char **known = NULL;
	size_t nk = 0;
	if (queue_known_types(q, &known, &nk, err) < 0)
		return -1;
	for (size_t i = 0; i < nk; i++)
		figure_type_add(&types, &nt, &cap, known[i], strlen(known[i]));
	queue_strv_free(known, nk);
	for (size_t i = 0; i < n_extra; i++)
		figure_type_add(&types, &nt, &cap, extra[i], strlen(extra[i]));
	if (nt == 0)
		return 0;
	/* LLEN and LINDEX -1 (the oldest message) per type, one pipeline */
	char **keys = xcalloc(nt, sizeof(char *));
	const char **argv = xcalloc(nt * 5, sizeof(char *));
	struct redis_cmd *cmds = xcalloc(nt * 2, sizeof(*cmds));
	for (size_t i = 0; i < nt; i++) {
		keys[i] = key_jobs(q->ns, types[i]);
		const char **a = argv + i * 5;
		a[0] = "LLEN";
		a[1] = keys[i];
		a[2] = "LINDEX";
		a[3] = keys[i];
		a[4] = "-1";
		cmds[i * 2] = (struct redis_cmd){2, a, NULL};
		cmds[i * 2 + 1] = (struct redis_cmd){3, a + 2, NULL};
	}
	redisReply **rep = xcalloc(nt * 2, sizeof(*rep));
	int rc = redis_pipeline(q->redis, err, cmds, nt * 2, rep, 0);
	free(cmds);
	free(argv);
	free_strv(keys, nt);
	if (rc < 0) {
		free(rep);
		free_strv(types, nt);
		return -1;
	}
	struct queue_figure *f = xcalloc(nt, sizeof(*f));
	double now = (double)util_now_ms() / 1000.0;
	for (size_t i = 0; i < nt; i++) {
		const redisReply *len = rep[i * 2];
		const redisReply *old = rep[i * 2 + 1];
		f[i].type = types[i]; /* moved */
		f[i].length = len->type == REDIS_REPLY_INTEGER
				      ? (int64_t)len->integer
				      : 0;
		if (old->type == REDIS_REPLY_STRING) {
			double t = message_t(old->str, (size_t)old->len);
			f[i].latency_seconds = t >= 0 && now > t ? now - t : 0;
		}
	}
	redis_replies_free(rep, nt * 2);
	free(rep);
	free(types);
	*out = f;
	*n = nt;
	return 0;
}

void
queue_figures_free(struct queue_figure *f, size_t n)
{
	for (size_t i = 0; f && i < n; i++)
		free(f[i].type);
	free(f);
}

int64_t
queue_backoff_seconds(int64_t fails)
{
	/* fails above 1000 only happens with the "never retry" marker,
	 * which never reaches here; clamp so fails^4 cannot overflow */
	if (fails < 0)
		fails = 0;
	if (fails > 1000)
		fails = 1000;
	int64_t f2 = fails * fails;
	return f2 * f2 + 15 + (int64_t)util_random_below(30) * (fails + 1);
}

/* --- scheduled-set reads for the API --- */

int
queue_scheduled_page(struct queue *q, uint64_t offset, uint32_t count,
		     queue_scheduled_fn fn, void *data, int64_t *total,
		     struct berr *err)
{
	*total = 0;
	char *key = key_scheduled(q->ns);
	char off[24], cnt[24];
	snprintf(off, sizeof(off), "%llu", (unsigned long long)offset);
	snprintf(cnt, sizeof(cnt), "%lu", (unsigned long)count);
	redisReply *r = redis_command(q->redis, err, "ZRANGEBYSCORE", key,
				      "-inf", "+inf", "WITHSCORES", "LIMIT",
				      off, cnt, NULL);
	redisReply *c = r ? redis_command(q->redis, err, "ZCARD", key, NULL)
			  : NULL;
	free(key);
	int rc = 0;
	if (!r || !c) {
		rc = -1;
	} else if (r->type != REDIS_REPLY_ARRAY ||
		   c->type != REDIS_REPLY_INTEGER) {
		const redisReply *bad = r->type == REDIS_REPLY_ERROR ? r : c;
		rc = berr_set(err, "%s",
			      bad->type == REDIS_REPLY_ERROR && bad->str
				      ? bad->str
				      : "unexpected reply");
	} else {
		*total = c->integer;
		for (size_t i = 0; i + 1 < r->elements; i += 2) {
			const redisReply *m = r->element[i];
			const redisReply *s = r->element[i + 1];
			if (m->type == REDIS_REPLY_STRING &&
			    s->type == REDIS_REPLY_STRING)
				fn(data, m->str, m->len, s->str);
		}
	}
	if (r)
		freeReplyObject(r);
	if (c)
		freeReplyObject(c);
	return rc;
}

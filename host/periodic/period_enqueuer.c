/* period_enqueuer.c - the enqueuer of the periodic scheduler (spec 8.4,
 * 8.5, 8.7): its thread, the rounds it runs, materialising the executions
 * of a policy, and the start-up cleanup of overdue scheduled messages; see
 * period.h, and period.c for the policy object, the policy set and the
 * API-facing operations.
 *
 * Two of Berth's own Lua scripts (see period.c for the others) run here
 * with EVAL:
 *   known     which execution ids are already in NS:executions:<policy>
 *   unlock    DEL NS:period:lock only while it still holds our node id
 *             (Go does GET then DEL; the script closes the gap between) */
#include "periodic/period_internal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "periodic/cron.h"
#include "logs/log.h"
#include "engine/message.h"

static const char lua_known[] =
	"local r = {}\n"
	"for i = 1, #ARGV do\n"
	"  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then r[i] = 1\n"
	"  else r[i] = 0 end\n"
	"end\n"
	"return r\n";

static const char lua_unlock[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
	"  return redis.call('DEL', KEYS[1])\n"
	"end\n"
	"return 0\n";

/* ---- the enqueuer thread ------------------------------------------------ */

/* Waits ms or until period_stop; true when stopping. */
static bool
wait_or_stop(struct period *pd, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&pd->lock);
	while (!pd->stopping &&
	       pthread_cond_timedwait(&pd->cond, &pd->lock, &ts) == 0)
		;
	bool stop = pd->stopping;
	pthread_mutex_unlock(&pd->lock);
	return stop;
}

static void *
enqueuer_main(void *arg)
{
	struct period *pd = arg;
	log_info("periodic enqueuer started (node %s)", pd->node_id);
	do {
		struct berr err;
		berr_clear(&err);
		int hit = period_should_enqueue(pd, &err);
		if (hit < 0) {
			log_warn("periodic enqueuer: %s", err.msg);
		} else if (hit) {
			int n = period_enqueue_all(pd, &err);
			if (n < 0)
				log_error("periodic enqueuer: %s", err.msg);
			else
				log_debug("periodic enqueuer: %d execution(s) "
					  "scheduled",
					  n);
		}
	} while (!wait_or_stop(pd, PERIOD_TRY_INTERVAL * 1000LL +
					   util_random_below(5000)));
	log_info("periodic enqueuer stopped");
	return NULL;
}

int
period_start(struct period *pd, struct berr *err)
{
	if (pd->running)
		return 0;
	struct berr cerr;
	berr_clear(&cerr);
	int n = period_clear_dirty(pd, &cerr);
	if (n < 0)
		log_warn("cleanup of overdue scheduled jobs failed: %s",
			 cerr.msg);
	else if (n > 0)
		log_warn("removed %d scheduled job(s) overdue by more than %d "
			 "s",
			 n, PERIOD_HORIZON);
	pd->stopping = false;
	int rc = pthread_create(&pd->thread, NULL, enqueuer_main, pd);
	if (rc != 0)
		return berr_set(err, "cannot start the periodic enqueuer: %s",
				strerror(rc));
	pd->running = true;
	return 0;
}

void
period_stop(struct period *pd)
{
	if (!pd || !pd->running)
		return;
	pthread_mutex_lock(&pd->lock);
	pd->stopping = true;
	pthread_cond_broadcast(&pd->cond);
	pthread_mutex_unlock(&pd->lock);
	pthread_join(pd->thread, NULL);
	pd->running = false;
}

/* ---- materialising ------------------------------------------------------ */

/* Marks which ids are already in the executions zset (known[i] = true). */
static int
find_known(struct period *pd, const char *policy_id, char **ids, size_t n,
	   bool *known, struct berr *err)
{
	char *key = key_executions(pd, policy_id);
	const char **argv = xmalloc(sizeof(*argv) * (n + 1));
	argv[0] = key;
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = ids[i];
	redisReply *r = period_eval(pd, err, lua_known, 1, (int)n + 1, argv);
	free(argv);
	free(key);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != n)
		rc = berr_set(err, "executions check: unexpected reply");
	for (size_t i = 0; rc == 0 && i < n; i++)
		known[i] = reply_i64(r->element[i]) == 1;
	freeReplyObject(r);
	return rc;
}

static void
fill_execution(struct job_stats *st, const struct period_policy *p,
	       const char *eid, int64_t epoch, int64_t now)
{
	memset(st, 0, sizeof(*st));
	st->id = xstrdup(eid);
	st->name = xstrdup(p->job_name);
	st->kind = xstrdup(JOB_KIND_SCHEDULED);
	st->status = xstrdup(JOB_STATUS_SCHEDULED);
	st->ref_link = xasprintf("/api/v1/jobs/%s", eid);
	st->enqueue_time = now;
	st->run_at = epoch;
	st->cron_spec = xstrdup(p->cron_spec);
	if (p->web_hook_url && p->web_hook_url[0])
		st->web_hook_url = xstrdup(p->web_hook_url);
	st->upstream_job_id = xstrdup(p->id);
	if (has_members(p->job_params))
		st->parameters = cJSON_Duplicate(p->job_params, true);
}

/* Saves the execution and puts its message into NS:scheduled. */
static int
write_execution(struct period *pd, const struct period_policy *p,
		const char *eid, int64_t epoch, int64_t now, struct berr *err)
{
	struct job_stats st;
	fill_execution(&st, p, eid, epoch, now);
	if (tracker_save(pd->tracker, &st, err) < 0) {
		job_stats_fini(&st);
		return -1;
	}
	char *msg = period_execution_message(p, epoch);
	char score[24];
	snprintf(score, sizeof(score), "%" PRId64, epoch);
	redisReply *r = redis_command(pd->redis, err, "ZADD", pd->k_scheduled,
				      score, msg, NULL);
	free(msg);
	r = checked(r, "ZADD scheduled", err);
	if (!r) {
		struct berr serr;
		berr_clear(&serr);
		if (tracker_set_status(pd->tracker, &st, JOB_STATUS_ERROR, NULL,
				       &serr) != TRACKER_OK)
			log_warn("execution %s: cannot mark it Error: %s", eid,
				 serr.msg);
		job_stats_fini(&st);
		return -1;
	}
	freeReplyObject(r);
	job_stats_fini(&st);
	return 0;
}

int
period_materialise(struct period *pd, const struct period_policy *p,
		   int64_t now, struct berr *err)
{
	struct cron_schedule s;
	if (cron_parse(p->cron_spec ? p->cron_spec : "", &s, err) < 0)
		return -1;
	int64_t horizon = now + PERIOD_HORIZON;
	int64_t *epochs = xmalloc(sizeof(*epochs) * (PERIOD_HORIZON + 1));
	size_t n = 0;
	for (int64_t t = cron_next(&s, now); t > now && t < horizon &&
					      n < PERIOD_HORIZON + 1;) {
		epochs[n++] = t;
		int64_t next = cron_next(&s, t);
		if (next <= t)
			break; /* no further match (Q18) */
		t = next;
	}
	if (n == 0) {
		free(epochs);
		return 0;
	}
	char **ids = xcalloc(n, sizeof(*ids));
	bool *known = xcalloc(n, sizeof(*known));
	for (size_t i = 0; i < n; i++)
		ids[i] = period_execution_id(p->id, epochs[i]);
	int done = -1;
	if (find_known(pd, p->id, ids, n, known, err) == 0) {
		done = 0;
		for (size_t i = 0; i < n; i++) {
			if (known[i])
				continue;
			if (write_execution(pd, p, ids[i], epochs[i], now,
					    err) < 0) {
				done = -1;
				break;
			}
			done++;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	free(known);
	free(epochs);
	return done;
}

/* ---- the enqueuer ------------------------------------------------------- */

int
period_should_enqueue(struct period *pd, struct berr *err)
{
	char ttl[12];
	snprintf(ttl, sizeof(ttl), "%d", PERIOD_LOCK_TTL);
	redisReply *r = checked(redis_command(pd->redis, err, "SET", pd->k_lock,
					      pd->node_id, "NX", "EX", ttl,
					      NULL),
				"SET period lock", err);
	if (!r)
		return -1;
	bool locked = r->type == REDIS_REPLY_STATUS;
	freeReplyObject(r);
	if (!locked)
		return 0;

	int rc = 0;
	int64_t now = pd->now();
	r = checked(redis_command(pd->redis, err, "GET", pd->k_last, NULL),
		    "GET last periodic enqueue", err);
	if (!r) {
		rc = -1;
	} else {
		char *end = NULL;
		long long last = r->type == REDIS_REPLY_STRING
					 ? strtoll(r->str, &end, 10)
					 : 0;
		bool valid = end && end != r->str && *end == '\0';
		freeReplyObject(r);
		if (!valid || last < now - PERIOD_MIN_INTERVAL) {
			char v[24];
			snprintf(v, sizeof(v), "%" PRId64, now);
			r = checked(redis_command(pd->redis, err, "SET",
						  pd->k_last, v, NULL),
				    "SET last periodic enqueue", err);
			if (r) {
				freeReplyObject(r);
				rc = 1;
			} else {
				rc = -1;
			}
		}
	}
	struct berr uerr;
	berr_clear(&uerr);
	const char *argv[] = {pd->k_lock, pd->node_id};
	r = period_eval(pd, &uerr, lua_unlock, 1, 2, argv);
	if (r)
		freeReplyObject(r);
	else
		log_warn("cannot release %s (it expires in %d s): %s",
			 pd->k_lock, PERIOD_LOCK_TTL, uerr.msg);
	return rc;
}

struct round {
	int64_t now;
	int written;
	int failed;
	struct berr first;
};

static int
round_one(struct period *pd, const struct period_policy *p, void *data)
{
	struct round *rd = data;
	struct berr err;
	berr_clear(&err);
	if (pd->plugins) {
		struct job_type *t = plugin_acquire(pd->plugins, p->job_name);
		if (t)
			plugin_release(pd->plugins, t);
		else
			log_debug("policy %s: job type %s is not loaded here; "
				  "another instance may run it",
				  p->id, p->job_name);
	}
	int n = period_materialise(pd, p, rd->now, &err);
	if (n < 0) {
		log_error("policy %s (%s): %s", p->id, p->job_name, err.msg);
		if (!rd->failed++)
			rd->first = err;
		return 0;
	}
	rd->written += n;
	berr_clear(&err);
	int gone = period_trim_executions(pd, p->id, &err);
	if (gone < 0)
		log_warn("policy %s: trimming executions: %s", p->id, err.msg);
	else if (gone > 0)
		log_debug("policy %s: forgot %d expired execution(s)", p->id,
			  gone);
	return 0;
}

int
period_enqueue_all(struct period *pd, struct berr *err)
{
	struct round rd = {.now = pd->now()};
	berr_clear(&rd.first);
	if (period_each_policy(pd, true, round_one, &rd, err) < 0)
		return -1;
	if (rd.failed) {
		berr_set(err, "%d polic%s failed, first: %s", rd.failed,
			 rd.failed == 1 ? "y" : "ies", rd.first.msg);
		return -1;
	}
	return rd.written;
}

/* ---- start-up cleanup (spec 8.7, Q14) ----------------------------------- */

/* Q14: the job of a dropped message must not stay Scheduled forever. */
static void
fail_dropped(struct period *pd, const struct job_message *m, int64_t score)
{
	char *jid = message_job_id(m);
	struct job_stats st;
	struct berr err;
	memset(&st, 0, sizeof(st));
	berr_clear(&err);
	int rc = tracker_load(pd->tracker, jid, &st, &err);
	if (rc == 0 && job_status_code(st.status) >= 0 &&
	    job_status_code(st.status) <= 1) {
		enum tracker_cas cas = tracker_set_status(
			pd->tracker, &st, JOB_STATUS_ERROR, NULL, &err);
		if (cas == TRACKER_OK)
			log_warn("job %s was due at %" PRId64 ", more than %d s "
				 "ago, while no instance ran: dropped and "
				 "marked Error",
				 jid, score, PERIOD_HORIZON);
		else if (cas == TRACKER_REDIS_ERROR)
			log_error("job %s: cannot mark it Error: %s", jid,
				  err.msg);
	} else if (rc < 0) {
		log_error("job %s: %s", jid, err.msg);
	}
	job_stats_fini(&st);
	if (cJSON_GetObjectItemCaseSensitive(m->args, PERIOD_MARKER)) {
		char *key = key_executions(pd, m->id);
		redisReply *r = redis_command(pd->redis, &err, "ZADD", key,
					      "XX", "-1", jid, NULL);
		if (r)
			freeReplyObject(r);
		free(key);
	}
	free(jid);
}

int
period_clear_dirty(struct period *pd, struct berr *err)
{
	int64_t max = pd->now() - PERIOD_HORIZON;
	char sc[24];
	snprintf(sc, sizeof(sc), "%" PRId64, max);
	redisReply *r = checked(redis_command(pd->redis, err, "ZRANGEBYSCORE",
					      pd->k_scheduled, "0", sc,
					      "WITHSCORES", NULL),
				"ZRANGEBYSCORE scheduled", err);
	if (!r)
		return -1;
	int removed = 0;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
	     i += 2) {
		const redisReply *mem = r->element[i];
		int64_t score = reply_i64(r->element[i + 1]);
		struct job_message m;
		struct berr perr;
		berr_clear(&perr);
		if (mem->type != REDIS_REPLY_STRING ||
		    message_parse(mem->str, mem->len, &m, &perr) < 0) {
			log_error("dirty scheduled job: %s", perr.msg);
			continue;
		}
		int n = queue_unschedule(pd->queue, score, m.id, &perr);
		if (n < 0) {
			log_error("remove dirty scheduled job %s: %s", m.id,
				  perr.msg);
		} else if (n > 0) {
			removed += n;
			fail_dropped(pd, &m, score);
		}
		message_fini(&m);
	}
	freeReplyObject(r);
	return removed;
}

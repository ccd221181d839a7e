/* period_enqueuer.c - the enqueuer of the periodic scheduler (spec 8.4,
 * 8.5, 8.7): its thread, the rounds it runs, materialising the executions
 * of a policy, and the start-up cleanup of overdue scheduled messages; see
 * period.h, and period.c for the policy object, the policy set and the
 * API-facing operations.
 *
 * Scheduling logic only: the Redis side (the lock, the timestamp, the
 * executions zsets, NS:scheduled) is store/period_store.h. */
#include "periodic/period_internal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "store/message.h"
#include "logs/log.h"
#include "periodic/cron.h"

/* ---- the enqueuer thread ------------------------------------------------ */

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
	} while (!ticker_sleep(&pd->ticker, PERIOD_TRY_INTERVAL * 1000LL +
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
	if (ticker_stopping(&pd->ticker)) {
		/* started again after period_stop: a fresh stop flag */
		ticker_fini(&pd->ticker);
		ticker_init(&pd->ticker);
	}
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
	ticker_stop(&pd->ticker);
	pthread_join(pd->thread, NULL);
	pd->running = false;
}

/* ---- materialising ------------------------------------------------------ */

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
		st->parameters =
			json_must(cJSON_Duplicate(p->job_params, true));
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
	int rc = period_store_schedule(pd->store, msg, epoch, err);
	free(msg);
	if (rc < 0) {
		struct berr serr;
		berr_clear(&serr);
		if (tracker_set_status(pd->tracker, &st, JOB_STATUS_ERROR, NULL,
				       &serr) != TRACKER_OK)
			log_warn("execution %s: cannot mark it Error: %s", eid,
				 serr.msg);
		job_stats_fini(&st);
		return -1;
	}
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
	if (period_store_executions_known(pd->store, p->id,
					  (const char *const *)ids, n, known,
					  err) == 0) {
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
	int locked = period_store_lock(pd->store, pd->node_id,
				       PERIOD_LOCK_TTL, err);
	if (locked <= 0)
		return locked;

	int rc = 0;
	int64_t now = pd->now();
	int64_t last = 0;
	int valid = period_store_last_enqueue(pd->store, &last, err);
	if (valid < 0) {
		rc = -1;
	} else if (!valid || last < now - PERIOD_MIN_INTERVAL) {
		rc = period_store_set_last_enqueue(pd->store, now, err) < 0
			     ? -1
			     : 1;
	}
	struct berr uerr;
	berr_clear(&uerr);
	if (period_store_unlock(pd->store, pd->node_id, &uerr) < 0)
		log_warn("cannot release the periodic enqueue lock (it "
			 "expires in %d s): %s",
			 PERIOD_LOCK_TTL, uerr.msg);
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
	int gone = period_store_executions_trim(pd->store, p->id,
						PERIOD_TRIM_SCAN, &err);
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
	berr_clear(&err);
	if (cJSON_GetObjectItemCaseSensitive(m->args, PERIOD_MARKER) &&
	    period_store_execution_finish(pd->store, m->id, jid, &err) < 0)
		log_warn("execution %s: cannot mark it finished: %s", jid,
			 err.msg);
	free(jid);
}

struct dirty {
	struct period *pd;
	int removed;
};

static int
clear_one(const char *raw, size_t len, int64_t score, void *data)
{
	struct dirty *d = data;
	struct job_message m;
	struct berr perr;
	berr_clear(&perr);
	if (message_parse(raw, len, &m, &perr) < 0) {
		log_error("dirty scheduled job: %s", perr.msg);
		return 0;
	}
	int n = queue_unschedule(d->pd->queue, score, m.id, &perr);
	if (n < 0) {
		log_error("remove dirty scheduled job %s: %s", m.id, perr.msg);
	} else if (n > 0) {
		d->removed += n;
		fail_dropped(d->pd, &m, score);
	}
	message_fini(&m);
	return 0;
}

int
period_clear_dirty(struct period *pd, struct berr *err)
{
	struct dirty d = {.pd = pd};
	if (period_store_scheduled_each(pd->store, pd->now() - PERIOD_HORIZON,
					clear_one, &d, err) < 0)
		return -1;
	return d.removed;
}

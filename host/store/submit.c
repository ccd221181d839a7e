/* submit.c - new jobs saved and enqueued in one round trip; see submit.h.
 * The commands are tracker.c's (tracker_save_append) and queue.c's
 * (queue_enqueue_*): this file only strings them into one transaction and
 * reads the outcome of each job. */
#include "store/submit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "logs/log.h"
#include "store/pipe.h"

/* What the transaction holds of one job. */
struct job_part {
	char *raw;            /* the encoded message */
	int64_t rev;
	size_t save_first, save_n;
	struct queue_enq enq;
};

void
submit_job_fini(struct submit_job *j)
{
	if (!j)
		return;
	free(j->error);
	j->error = NULL;
}

static void
job_fail(struct submit_job *j, enum queue_enqueue_result res,
	 const char *msg)
{
	free(j->error);
	j->result = res;
	j->error = xstrdup(msg);
}

/* The first error reply among the commands [first, first + n) of tx:
 * "<CMD>: <error>" in buf, or false when there is none. */
static bool
first_error(struct pipe *b, const struct pipe_tx *tx, const redisReply *ex,
	    size_t first, size_t n, char *buf, size_t len)
{
	for (size_t i = first; i < first + n; i++) {
		const redisReply *r = pipe_tx_reply(tx, ex, i);
		if (r && r->type != REDIS_REPLY_ERROR)
			continue;
		const struct redis_cmd *c = &pipe_cmds(b)[i];
		snprintf(buf, len, "%.*s: %.*s",
			 (int)(c->lens[0] < 32 ? c->lens[0] : 32), c->argv[0],
			 r ? pipe_err_len(r) : 8,
			 r ? pipe_err_str(r) : "no reply");
		return true;
	}
	return false;
}

int
submit_jobs(struct redis_pool *p, struct tracker *t, struct queue *q,
	    struct submit_job *jobs, size_t n, struct berr *err)
{
	for (size_t i = 0; i < n; i++) {
		jobs[i].result = QUEUE_ERROR;
		jobs[i].error = NULL;
	}
	if (n == 0)
		return 0;
	if (n > SUBMIT_MAX_JOBS)
		return berr_set(err, "submit of %zu jobs: at most %d at once",
				n, SUBMIT_MAX_JOBS);
	for (size_t i = 0; i < n; i++) {
		const struct job_stats *s = jobs[i].stats;
		const struct job_message *m = jobs[i].msg;
		if (!s || str_empty(s->id) || !m || str_empty(m->name) ||
		    str_empty(m->id))
			return berr_set(err, "submit: job %zu has no id or "
					     "name", i);
	}
	int64_t now = util_now();
	struct job_part *parts = xcalloc(n, sizeof(*parts));
	struct pipe b;
	struct pipe_tx tx;
	struct queue_enq_set set;
	pipe_init(&b);
	queue_enq_set_init(&set);
	pipe_tx_begin(&b, &tx);
	for (size_t i = 0; i < n; i++) {
		struct job_part *jp = &parts[i];
		const struct job_stats *s = jobs[i].stats;
		jp->raw = message_encode(jobs[i].msg);
		jp->rev = s->revision > 0 ? s->revision : now;
		jp->save_first = pipe_count(&b);
		tracker_save_append(t, &b, s, jp->rev, now);
		jp->save_n = pipe_count(&b) - jp->save_first;
		queue_enqueue_append(q, &b, jobs[i].msg, jp->raw,
				     jobs[i].run_at, &set, &jp->enq);
	}
	queue_enqueue_close(q, &b, &set);
	pipe_tx_end(&b, &tx);

	redisReply **replies = NULL;
	const redisReply *ex = pipe_run_tx(&b, p, &tx, &replies, err);
	int rc = 0;
	if (!ex) {
		for (size_t i = 0; i < n; i++)
			job_fail(&jobs[i], QUEUE_ERROR, err->msg);
		rc = -1;
		goto out;
	}

	/* the jobs that did not go through, undone in one more round
	 * trip */
	struct pipe undo;
	pipe_init(&undo);
	for (size_t i = 0; i < n; i++) {
		struct submit_job *j = &jobs[i];
		struct job_part *jp = &parts[i];
		char why[400];
		struct berr e;
		berr_clear(&e);
		enum queue_enqueue_result res = queue_enqueue_verdict(
			&jp->enq, &tx, ex, j->msg->name, &e);
		if (first_error(&b, &tx, ex, jp->save_first, jp->save_n, why,
				sizeof(why))) {
			char *msg = xasprintf("save stats of job %s: %s",
					      j->stats->id, why);
			job_fail(j, QUEUE_ERROR, msg);
			free(msg);
			if (res == QUEUE_ENQUEUED)
				queue_enqueue_undo_append(q, &undo, j->msg,
							  jp->raw,
							  j->run_at);
			tracker_forget_append(t, &undo, j->stats->id);
			continue;
		}
		if (res != QUEUE_ENQUEUED) {
			job_fail(j, res,
				 res == QUEUE_DUPLICATE ? "duplicate" : e.msg);
			tracker_forget_append(t, &undo, j->stats->id);
			continue;
		}
		j->result = QUEUE_ENQUEUED;
		j->stats->update_time = now;
		j->stats->revision = jp->rev;
	}
	queue_enqueue_done(q, &set, &tx, ex);
	size_t enqueued = 0;
	for (size_t i = 0; i < n; i++)
		enqueued += jobs[i].result == QUEUE_ENQUEUED;
	/* sentinel: a job is accepted once a replica has it (a failover
	 * keeps it); when that cannot be known, it is not accepted */
	if (enqueued && redis_pool_wait_replica(p, err) < 0) {
		for (size_t i = 0; i < n; i++)
			if (jobs[i].result == QUEUE_ENQUEUED)
				job_fail(&jobs[i], QUEUE_ERROR, err->msg);
		rc = -1;
	}
	if (pipe_count(&undo)) {
		struct berr ue;
		berr_clear(&ue);
		if (redis_pipeline(p, &ue, pipe_cmds(&undo), pipe_count(&undo),
				   NULL, 0) < 0)
			log_warn("cannot remove the stats of jobs that were "
				 "not enqueued: %s",
				 ue.msg);
	}
	pipe_fini(&undo);
	redis_replies_free(replies, pipe_count(&b));
	free(replies);
out:
	for (size_t i = 0; i < n; i++)
		free(parts[i].raw);
	free(parts);
	queue_enq_set_fini(&set);
	pipe_fini(&b);
	return rc;
}

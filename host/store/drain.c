/* drain.c - the claim and complete scripts of a drained job (drain.h). */
#include "store/drain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/keys.h"
#include "store/message.h"
#include "store/redis_cmd.h"
#include "store/scripts.h"
#include "store/tracker.h"
#include "common/gojson.h"
#include "common/json.h"
#include "logs/log.h"

/* The periodic mark of spec 3.4 (message.c reads the same). */
#define PERIODIC_MARK "_job_kind_periodic_"

struct drain_worker {
	struct redis_pool *redis;
	char *ns, *pool_id;
	/* claim: KEYS and the constant ARGV */
	char *ready, *types, *track, *wake, *obs, *jobs, *stats;
	struct key_type_suffixes sfx;
	/* complete: the lock keys of the last type completed */
	char *lock_type, *lock, *lock_info;
	char *retry, *dead;
};

struct drain_worker *
drain_worker_new(struct redis_pool *redis, const char *ns,
		 const char *pool_id, const char *worker_id)
{
	struct drain_worker *d = xcalloc(1, sizeof(*d));
	d->redis = redis;
	d->ns = xstrdup(ns);
	d->pool_id = xstrdup(pool_id);
	d->ready = key_ready_types(ns);
	d->types = key_pool_types(ns, pool_id);
	d->track = key_job_track_inprogress(ns);
	d->wake = key_wakeup(ns);
	d->obs = key_worker_observation(ns, worker_id);
	d->jobs = key_jobs_prefix(ns);
	d->stats = key_job_stats_prefix(ns);
	d->retry = key_retry(ns);
	d->dead = key_dead(ns);
	key_type_suffixes(&d->sfx, pool_id);
	return d;
}

void
drain_worker_free(struct drain_worker *d)
{
	if (!d)
		return;
	free(d->ns);
	free(d->pool_id);
	free(d->ready);
	free(d->types);
	free(d->track);
	free(d->wake);
	free(d->obs);
	free(d->jobs);
	free(d->stats);
	free(d->retry);
	free(d->dead);
	free(d->lock_type);
	free(d->lock);
	free(d->lock_info);
	key_type_suffixes_fini(&d->sfx);
	free(d);
}

void
drain_claim_fini(struct drain_claim *d)
{
	if (!d)
		return;
	queue_claim_fini(&d->c);
	job_stats_fini(&d->stats);
	free(d->job_id);
	free(d->was);
	memset(d, 0, sizeof(*d));
}

static bool
is_word(const redisReply *r, const char *w)
{
	return redis_reply_is_text(r) && r->len == strlen(w) &&
	       memcmp(r->str, w, r->len) == 0;
}

static char *
reply_dup(const redisReply *r)
{
	return xstrndup(r->str, r->len);
}

/* Fills d->stats from the HGETALL pairs, then applies what the script
 * wrote. */
static void
claim_stats(struct drain_claim *d, const redisReply *pairs, int64_t now,
	    int64_t revision)
{
	struct job_stats *st = &d->stats;
	for (size_t i = 0; i + 1 < pairs->elements; i += 2) {
		const redisReply *f = pairs->element[i];
		const redisReply *v = pairs->element[i + 1];
		if (!redis_reply_is_text(f) || !redis_reply_is_text(v))
			continue;
		char *fs = reply_dup(f);
		char *vs = reply_dup(v);
		tracker_load_field(st, d->job_id, fs, vs, v->len);
		free(fs);
		free(vs);
	}
	if (str_empty(st->id)) {
		free(st->id);
		st->id = xstrdup(d->job_id);
	}
	d->was = xstrdup(st->status ? st->status : "");
	if (d->decision == DRAIN_FINAL)
		return;
	free(st->status);
	st->status = xstrdup(JOB_STATUS_RUNNING);
	st->update_time = now;
	if (d->decision == DRAIN_RESET) {
		st->revision = revision;
		free(st->check_in);
		st->check_in = NULL;
		st->check_in_at = 0;
		cJSON_Delete(st->ack);
		st->ack = NULL;
	}
}

/* The claim part of a reply (r: nil, {"types"} or the claim's array).
 * Returns 1, 0, 2 or -1 as drain_claim. */
static int
claim_parse(struct drain_worker *d, const redisReply *r, int64_t now,
	    struct drain_claim *out, struct berr *err)
{
	memset(out, 0, sizeof(*out));
	int rc = 1;
	if (!r || r->type == REDIS_REPLY_NIL) {
		rc = 0;
	} else if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
		   is_word(r->element[0], "types")) {
		rc = 2;
	} else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 5 &&
		   redis_reply_is_text(r->element[0]) &&
		   redis_reply_is_text(r->element[1]) &&
		   redis_reply_is_text(r->element[2]) &&
		   redis_reply_is_text(r->element[3]) &&
		   r->element[4]->type == REDIS_REPLY_INTEGER) {
		struct queue_claim *c = &out->c;
		c->raw = reply_dup(r->element[0]);
		c->type = reply_dup(r->element[1]);
		c->inprogress_key = reply_dup(r->element[2]);
		c->queue_key = key_jobs(d->ns, c->type);
		out->more = r->element[4]->integer != 0;
		struct berr perr;
		berr_clear(&perr);
		if (message_parse(r->element[0]->str, r->element[0]->len,
				  &c->msg, &perr) == 0) {
			c->parsed = true;
			out->job_id = message_job_id(&c->msg);
		} else {
			memset(&c->msg, 0, sizeof(c->msg));
			c->parse_error = xstrdup(perr.msg[0] ? perr.msg
							     : "invalid JSON");
		}
		const redisReply *dw = r->element[3];
		out->decision = DRAIN_HOST;
		if (c->parsed && r->elements >= 8 &&
		    r->element[5]->type == REDIS_REPLY_ARRAY &&
		    r->element[6]->type == REDIS_REPLY_INTEGER &&
		    r->element[7]->type == REDIS_REPLY_INTEGER) {
			if (is_word(dw, "run"))
				out->decision = DRAIN_RUN;
			else if (is_word(dw, "reset"))
				out->decision = DRAIN_RESET;
			else if (is_word(dw, "final"))
				out->decision = DRAIN_FINAL;
		}
		if (out->decision != DRAIN_HOST) {
			claim_stats(out, r->element[5], now,
				    r->element[6]->integer);
			out->obs_args = r->element[7]->integer == 0;
		} else if (!is_word(dw, "host") && c->parsed) {
			/* the script ran its writes for a decision this
			 * side does not know: only a version skew could do
			 * that; track it the long way */
			log_warn("claim of %s: unexpected decision %.*s",
				 c->type, (int)dw->len, dw->str ? dw->str : "");
		}
	} else if (r->type == REDIS_REPLY_ERROR) {
		rc = berr_set(err, "claim script: %s", r->str ? r->str : "");
	} else {
		rc = berr_set(err, "claim script: unexpected reply type %d",
			      r->type);
	}
	if (rc != 1)
		drain_claim_fini(out);
	return rc;
}

/* The claim's ARGV (13 strings); the numbers are written into bufs. */
static void
claim_args(struct drain_worker *d, int64_t now, int64_t obs_ttl, bool scan,
	   char bufs[3][24], const char *args[13])
{
	snprintf(bufs[0], 24, "%lld", (long long)now);
	snprintf(bufs[1], 24, "%u", util_random_below(2147483646u));
	snprintf(bufs[2], 24, "%lld", (long long)obs_ttl);
	const char *a[13] = {d->pool_id,       bufs[0],
			     d->jobs,          d->stats,
			     d->sfx.inprogress, d->sfx.paused,
			     d->sfx.lock,      d->sfx.lock_info,
			     d->sfx.max_concurrency, bufs[1],
			     scan ? "1" : "0", bufs[2],
			     PERIODIC_MARK};
	memcpy(args, a, sizeof(a));
}

int
drain_claim(struct drain_worker *d, int64_t obs_ttl, bool scan,
	    struct drain_claim *out, struct berr *err)
{
	memset(out, 0, sizeof(*out));
	int64_t now = util_now();
	char bufs[3][24];
	const char *args[13];
	claim_args(d, now, obs_ttl, scan, bufs, args);
	const char *keys[] = {d->ready, d->types, d->track, d->wake, d->obs};
	redisReply *r = script_run(d->redis, err, SCRIPT_CLAIM,
				   (int)ARRAY_LEN(keys), keys,
				   (int)ARRAY_LEN(args), args);
	if (!r)
		return -1;
	int rc = claim_parse(d, r, now, out, err);
	freeReplyObject(r);
	return rc;
}

enum drain_status
drain_complete(struct drain_worker *d, const struct queue_claim *c,
	       const char *job_id, int64_t revision, const char *target,
	       bool again, const char *retry_msg, int64_t retry_at,
	       bool dead, char **stored, const struct drain_next *next,
	       struct berr *err)
{
	if (stored)
		*stored = NULL;
	if (next) {
		memset(next->out, 0, sizeof(*next->out));
		*next->rc = 0;
	}
	if (!d->lock_type || strcmp(d->lock_type, c->type) != 0) {
		free(d->lock_type);
		free(d->lock);
		free(d->lock_info);
		d->lock_type = xstrdup(c->type);
		d->lock = key_lock(d->ns, c->type);
		d->lock_info = key_lock_info(d->ns, c->type);
	}
	char skey[512];
	size_t sl = strlen(d->stats), il = job_id ? strlen(job_id) : 0;
	char *skey_heap = NULL;
	if (sl + il < sizeof(skey)) {
		memcpy(skey, d->stats, sl);
		memcpy(skey + sl, job_id ? job_id : "", il);
		skey[sl + il] = '\0';
	} else {
		skey_heap = key_job_stats(d->ns, job_id);
	}
	int64_t now = util_now();
	char rev_s[24], now_s[24], at[24];
	snprintf(rev_s, sizeof(rev_s), "%lld", (long long)revision);
	snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
	snprintf(at, sizeof(at), "%lld", (long long)retry_at);
	const char *keys[] = {c->inprogress_key, d->lock, d->lock_info,
			      d->obs, skey_heap ? skey_heap : skey,
			      d->track, dead ? d->dead : d->retry,
			      d->ready, d->types,
			      d->wake};
	const char *args[23] = {d->pool_id,
				c->raw,
				target && job_id ? target : "",
				rev_s,
				now_s,
				job_id ? job_id : "",
				again ? "again" : "first",
				at,
				retry_msg ? retry_msg : "",
				next ? "next" : ""};
	char bufs[3][24];
	if (next)
		claim_args(d, now, next->obs_ttl, next->scan, bufs, args + 10);
	redisReply *r = script_run(d->redis, err, SCRIPT_COMPLETE,
				   next ? 10 : 7, keys, next ? 23 : 10, args);
	free(skey_heap);
	if (!r)
		return DRAIN_STATUS_ERROR;
	enum drain_status rc;
	if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
	    redis_reply_is_text(r->element[1]) &&
	    redis_reply_is_text(r->element[2])) {
		if (is_word(r->element[1], "mismatch")) {
			rc = DRAIN_STATUS_MISMATCH;
			if (stored && r->element[2]->len > 0)
				*stored = reply_dup(r->element[2]);
		} else {
			rc = DRAIN_STATUS_OK;
		}
		if (next) {
			struct berr cerr;
			berr_clear(&cerr);
			*next->rc = claim_parse(
				d, r->elements >= 4 ? r->element[3] : NULL, now,
				next->out, &cerr);
			if (*next->rc < 0)
				log_debug("claim after a completion: %s",
					  cerr.msg);
		}
	} else {
		rc = DRAIN_STATUS_ERROR;
		berr_set(err, "complete script: %s",
			 r->type == REDIS_REPLY_ERROR && r->str
				 ? r->str
				 : "unexpected reply");
	}
	freeReplyObject(r);
	return rc;
}

int
drain_pool_types(struct redis_pool *redis, const char *ns,
		 const char *pool_id, const char *const *names,
		 const uint32_t *prio, size_t n, struct berr *err)
{
	char *key = key_pool_types(ns, pool_id);
	const char *del[] = {"DEL", key};
	const char **hset = xcalloc(2 + 2 * n, sizeof(char *));
	char(*num)[16] = xcalloc(n ? n : 1, sizeof(*num));
	hset[0] = "HSET";
	hset[1] = key;
	for (size_t i = 0; i < n; i++) {
		snprintf(num[i], sizeof(num[i]), "%u",
			 prio && prio[i] ? prio[i] : 1);
		hset[2 + 2 * i] = names[i];
		hset[3 + 2 * i] = num[i];
	}
	struct redis_cmd cmds[] = {
		{2, del, NULL},
		{(int)(2 + 2 * n), hset, NULL},
	};
	int rc = redis_pipeline(redis, err, cmds, n ? 2 : 1, NULL,
				REDIS_PIPE_TX | REDIS_PIPE_CHECK);
	free(hset);
	free(num);
	free(key);
	return rc;
}

int
drain_observation_args(struct drain_worker *d, const struct job_message *m,
		       struct berr *err)
{
	char *args = m->args && !cJSON_IsNull(m->args)
			     ? gojson_encode(m->args)
			     : xstrdup("");
	redisReply *r = redis_command(d->redis, err, "HSET", d->obs, "args",
				      args, NULL);
	free(args);
	if (!r)
		return -1;
	freeReplyObject(r);
	return 0;
}

/* queue_ops.c - the operator's reads and actions on the queue engine's
 * keys; see queue_ops.h. */
#include "store/queue_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "store/keys.h"
#include "store/pipe.h"
#include "store/redis_cmd.h"
#include "store/scripts.h"

const char *
queue_set_name(enum queue_set s)
{
	switch (s) {
	case QUEUE_SET_SCHEDULED:
		return "scheduled";
	case QUEUE_SET_RETRY:
		return "retry";
	case QUEUE_SET_DEAD:
		return "dead";
	}
	return "?";
}

static char *
set_key(const struct queue *q, enum queue_set s)
{
	const char *ns = queue_ns(q);
	switch (s) {
	case QUEUE_SET_SCHEDULED:
		return key_scheduled(ns);
	case QUEUE_SET_RETRY:
		return key_retry(ns);
	case QUEUE_SET_DEAD:
		break;
	}
	return key_dead(ns);
}

static int
reply_error(struct berr *err, const char *what, const redisReply *r)
{
	return berr_set(err, "%s: %s", what,
			r && r->type == REDIS_REPLY_ERROR && r->str
				? r->str
				: "unexpected reply");
}

static int64_t
reply_i64(const redisReply *r)
{
	if (!r)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return (int64_t)r->integer;
	if (r->type == REDIS_REPLY_STRING && r->str) {
		int64_t v;
		if (util_parse_i64(r->str, INT64_MIN, INT64_MAX, &v) == 0)
			return v;
	}
	return 0;
}

/* The t of a message, -1 when absent. */
static int64_t
message_t_of(const char *raw, size_t len)
{
	cJSON *j = json_parse(raw, len, NULL);
	const cJSON *t = j ? cJSON_GetObjectItemCaseSensitive(j, "t") : NULL;
	int64_t v = cJSON_IsNumber(t) ? (int64_t)t->valuedouble : -1;
	cJSON_Delete(j);
	return v;
}

/* --- per-type figures ---------------------------------------------------- */

#define INFO_CMDS 5 /* LLEN, LINDEX -1, EXISTS paused, GET max, GET lock */

int
queue_types_info(struct queue *q, const char *const *types, size_t n,
		 const char *const *pools, size_t np,
		 struct queue_type_info *out, struct berr *err)
{
	memset(out, 0, n * sizeof(*out));
	if (n == 0)
		return 0;
	const char *ns = queue_ns(q);
	size_t per = INFO_CMDS + np;
	size_t ncmds = n * per;
	struct pipe b;
	pipe_init(&b);
	for (size_t i = 0; i < n; i++) {
		char *jobs = key_jobs(ns, types[i]);
		pipe_begin(&b);
		pipe_str(&b, "LLEN");
		pipe_own(&b, jobs);
		pipe_words(&b, "LINDEX", jobs, "-1", NULL);
		pipe_begin(&b);
		pipe_str(&b, "EXISTS");
		pipe_own(&b, key_paused(ns, types[i]));
		pipe_begin(&b);
		pipe_str(&b, "GET");
		pipe_own(&b, key_max_concurrency(ns, types[i]));
		pipe_begin(&b);
		pipe_str(&b, "GET");
		pipe_own(&b, key_lock(ns, types[i]));
		for (size_t p = 0; p < np; p++) {
			pipe_begin(&b);
			pipe_str(&b, "LLEN");
			pipe_own(&b, key_inprogress(ns, types[i], pools[p]));
		}
	}
	redisReply **rep = xcalloc(ncmds, sizeof(*rep));
	int rc = redis_pipeline(queue_redis(q), err, pipe_cmds(&b), ncmds,
				rep, 0);
	pipe_fini(&b);
	if (rc < 0) {
		free(rep);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		redisReply **r = rep + i * per;
		struct queue_type_info *o = &out[i];
		o->pending = r[0] && r[0]->type == REDIS_REPLY_INTEGER
				     ? (int64_t)r[0]->integer
				     : 0;
		o->oldest_t = r[1] && r[1]->type == REDIS_REPLY_STRING
				      ? message_t_of(r[1]->str,
						     (size_t)r[1]->len)
				      : -1;
		o->paused = reply_i64(r[2]) > 0;
		o->max_concurrency = reply_i64(r[3]);
		o->lock = reply_i64(r[4]);
		for (size_t p = 0; p < np; p++) {
			const redisReply *l = r[INFO_CMDS + p];
			if (l && l->type == REDIS_REPLY_INTEGER)
				o->in_progress += (int64_t)l->integer;
		}
	}
	redis_replies_free(rep, ncmds);
	free(rep);
	return 0;
}

int
queue_set_paused(struct queue *q, const char *type, bool paused,
		 struct berr *err)
{
	char *key = key_paused(queue_ns(q), type);
	redisReply *r = paused ? redis_command(queue_redis(q), err, "SET", key,
					       "1", NULL)
			       : redis_command(queue_redis(q), err, "DEL", key,
					       NULL);
	free(key);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type == REDIS_REPLY_ERROR)
		rc = reply_error(err, paused ? "SET paused" : "DEL paused", r);
	freeReplyObject(r);
	return rc;
}

int
queue_take_pending(struct queue *q, const char *type, size_t max,
		   char ***raws, size_t *n, struct berr *err)
{
	*raws = NULL;
	*n = 0;
	if (max == 0)
		return 0;
	char *key = key_jobs(queue_ns(q), type);
	char from[32], keep[32];
	snprintf(from, sizeof(from), "-%zu", max);
	snprintf(keep, sizeof(keep), "-%zu", max + 1);
	const char *range[] = {"LRANGE", key, from, "-1"};
	const char *trim[] = {"LTRIM", key, "0", keep};
	struct redis_cmd cmds[] = {{4, range, NULL}, {4, trim, NULL}};
	redisReply *rep[2] = {NULL, NULL};
	int rc = redis_pipeline(queue_redis(q), err, cmds, 2, rep,
				REDIS_PIPE_TX | REDIS_PIPE_CHECK);
	free(key);
	if (rc < 0)
		return -1;
	const redisReply *r = rep[0];
	if (r && r->type == REDIS_REPLY_ARRAY) {
		*raws = xcalloc(r->elements + 1, sizeof(char *));
		/* LRANGE gives head to tail: the oldest is the last */
		for (size_t i = r->elements; i-- > 0;)
			if (redis_reply_is_text(r->element[i]))
				(*raws)[(*n)++] = xstrndup(
					r->element[i]->str,
					(size_t)r->element[i]->len);
	}
	redis_replies_free(rep, 2);
	return 0;
}

/* --- the sorted sets ------------------------------------------------------ */

int
queue_set_size(struct queue *q, enum queue_set s, int64_t *n,
	       struct berr *err)
{
	*n = 0;
	char *key = set_key(q, s);
	redisReply *r = redis_command(queue_redis(q), err, "ZCARD", key, NULL);
	free(key);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type == REDIS_REPLY_INTEGER)
		*n = (int64_t)r->integer;
	else
		rc = reply_error(err, "ZCARD", r);
	freeReplyObject(r);
	return rc;
}

/* Calls fn for each member/score pair of a WITHSCORES reply. Returns 1
 * when fn stopped the walk, else 0; *seen counts the members. */
static int
each_pair(const redisReply *r, queue_member_fn fn, void *data, size_t *seen)
{
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *m = r->element[i];
		const redisReply *sc = r->element[i + 1];
		(*seen)++;
		if (!redis_reply_is_text(m) || !redis_reply_is_text(sc))
			continue;
		int64_t score = (int64_t)strtod(sc->str, NULL);
		if (fn(data, m->str, (size_t)m->len, score))
			return 1;
	}
	return 0;
}

int
queue_set_each(struct queue *q, enum queue_set s, uint64_t offset,
	       uint64_t count, queue_member_fn fn, void *data, int64_t *total,
	       struct berr *err)
{
	char *key = set_key(q, s);
	int rc = 0;
	if (total) {
		redisReply *c = redis_command(queue_redis(q), err, "ZCARD",
					      key, NULL);
		if (!c) {
			free(key);
			return -1;
		}
		if (c->type == REDIS_REPLY_INTEGER)
			*total = (int64_t)c->integer;
		else
			rc = reply_error(err, "ZCARD", c);
		freeReplyObject(c);
	}
	uint64_t at = offset, end = offset + count;
	while (rc == 0 && at < end) {
		uint64_t last = at + QUEUE_SET_CHUNK - 1;
		if (last > end - 1)
			last = end - 1;
		char a[24], b[24];
		snprintf(a, sizeof(a), "%llu", (unsigned long long)at);
		snprintf(b, sizeof(b), "%llu", (unsigned long long)last);
		redisReply *r = redis_command(queue_redis(q), err, "ZRANGE",
					      key, a, b, "WITHSCORES", NULL);
		if (!r) {
			rc = -1;
			break;
		}
		if (r->type != REDIS_REPLY_ARRAY) {
			rc = reply_error(err, "ZRANGE", r);
			freeReplyObject(r);
			break;
		}
		size_t seen = 0;
		int stop = each_pair(r, fn, data, &seen);
		freeReplyObject(r);
		if (stop || seen < last - at + 1)
			break; /* stopped, or the end of the set */
		at = last + 1;
	}
	free(key);
	return rc;
}

int
queue_set_after(struct queue *q, enum queue_set s, int64_t after,
		uint32_t count, queue_member_fn fn, void *data,
		struct berr *err)
{
	char *key = set_key(q, s);
	char min[32], cnt[16];
	snprintf(min, sizeof(min), "(%lld", (long long)after);
	snprintf(cnt, sizeof(cnt), "%u", count);
	redisReply *r = redis_command(queue_redis(q), err, "ZRANGEBYSCORE",
				      key, min, "+inf", "WITHSCORES", "LIMIT",
				      "0", cnt, NULL);
	free(key);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type == REDIS_REPLY_ARRAY) {
		size_t seen = 0;
		each_pair(r, fn, data, &seen);
	} else {
		rc = reply_error(err, "ZRANGEBYSCORE", r);
	}
	freeReplyObject(r);
	return rc;
}

int
queue_set_move(struct queue *q, enum queue_set src, enum queue_set dst,
	       const char *const *raws, const char *const *news, size_t n,
	       int64_t score, int64_t *moved, struct berr *err)
{
	*moved = 0;
	if (n == 0)
		return 0;
	if (n > QUEUE_SET_CHUNK)
		return berr_set(err, "set move: %zu members (at most %d)", n,
				QUEUE_SET_CHUNK);
	char *keys[2] = {set_key(q, src), set_key(q, dst)};
	char sc[24];
	snprintf(sc, sizeof(sc), "%lld", (long long)score);
	const char **args = xcalloc(1 + 2 * n, sizeof(char *));
	args[0] = sc;
	for (size_t i = 0; i < n; i++) {
		args[1 + 2 * i] = raws[i];
		args[2 + 2 * i] = news[i] ? news[i] : "";
	}
	redisReply *r = script_run(queue_redis(q), err, SCRIPT_SET_MOVE, 2,
				   (const char **)keys, (int)(1 + 2 * n), args);
	free(args);
	free(keys[0]);
	free(keys[1]);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type == REDIS_REPLY_INTEGER)
		*moved = (int64_t)r->integer;
	else
		rc = reply_error(err, "set move script", r);
	freeReplyObject(r);
	return rc;
}

int
queue_dead_trim(struct queue *q, int64_t max_jobs, int64_t max_age,
		int64_t now, int64_t *removed, struct berr *err)
{
	*removed = 0;
	char *key = key_dead(queue_ns(q));
	char upto[32], rank[32];
	snprintf(upto, sizeof(upto), "(%lld", (long long)(now - max_age));
	snprintf(rank, sizeof(rank), "%lld", (long long)(-(max_jobs + 1)));
	const char *by_age[] = {"ZREMRANGEBYSCORE", key, "-inf", upto};
	const char *by_rank[] = {"ZREMRANGEBYRANK", key, "0", rank};
	struct redis_cmd cmds[2];
	size_t nc = 0;
	if (max_age > 0)
		cmds[nc++] = (struct redis_cmd){4, by_age, NULL};
	if (max_jobs >= 0)
		cmds[nc++] = (struct redis_cmd){4, by_rank, NULL};
	redisReply *rep[2] = {NULL, NULL};
	int rc = nc ? redis_pipeline(queue_redis(q), err, cmds, nc, rep,
				     REDIS_PIPE_CHECK)
		    : 0;
	free(key);
	if (rc < 0)
		return -1;
	for (size_t i = 0; i < nc; i++)
		*removed += reply_i64(rep[i]);
	redis_replies_free(rep, nc);
	return 0;
}

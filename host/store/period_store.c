/* period_store.c - the Redis structures of the periodic scheduler; see
 * period_store.h. Every command of the scheduler is issued here, and every
 * reply is freed by the function that issued the command. */
#include "store/period_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store/keys.h"
#include "store/redis_conn.h"
#include "store/scripts.h"

struct period_store {
	struct redis_pool *redis;
	char *ns;
	char *k_policies, *k_lock, *k_last, *k_scheduled, *stats_prefix;
};

struct period_store *
period_store_new(struct redis_pool *redis, const char *ns)
{
	struct period_store *ps = xcalloc(1, sizeof(*ps));
	ps->redis = redis;
	ps->ns = xstrdup(ns);
	ps->k_policies = key_period_policies(ns);
	ps->k_lock = key_period_lock(ns);
	ps->k_last = key_last_periodic_enqueue(ns);
	ps->k_scheduled = key_scheduled(ns);
	ps->stats_prefix = key_job_stats_prefix(ns);
	return ps;
}

void
period_store_free(struct period_store *ps)
{
	if (!ps)
		return;
	free(ps->ns);
	free(ps->k_policies);
	free(ps->k_lock);
	free(ps->k_last);
	free(ps->k_scheduled);
	free(ps->stats_prefix);
	free(ps);
}

/* ---- reply helpers ------------------------------------------------------ */

/* A reply that is not NULL and not an error; otherwise err is set and the
 * reply freed. */
static redisReply *
checked(redisReply *r, const char *what, struct berr *err)
{
	if (!r)
		return NULL; /* err already set */
	if (r->type == REDIS_REPLY_ERROR) {
		berr_set(err, "%s: %s", what, r->str ? r->str : "error");
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* Runs a command and frees its reply: 0, or -1 with err. */
static int
checked_free(redisReply *r, const char *what, struct berr *err)
{
	r = checked(r, what, err);
	if (!r)
		return -1;
	freeReplyObject(r);
	return 0;
}

static int64_t
reply_i64(const redisReply *r)
{
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	if (r->type == REDIS_REPLY_STRING && r->str)
		return (int64_t)strtod(r->str, NULL);
	return 0;
}

static redisReply *
run_script(struct period_store *ps, enum script_id id, int nkeys,
	   const char **keys, int nargs, const char **args, struct berr *err)
{
	redisReply *r = script_run(ps->redis, err, id, nkeys, keys, nargs,
				   args);
	return checked(r, script_name(id), err);
}

/* The string elements of an array reply as a NULL-terminated list. */
static void
take_ids(const redisReply *r, char ***ids, size_t *n)
{
	size_t cap = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
	*ids = xcalloc(cap + 1, sizeof(**ids));
	*n = 0;
	for (size_t i = 0; i < cap; i++)
		if (r->element[i]->type == REDIS_REPLY_STRING)
			(*ids)[(*n)++] = xstrndup(r->element[i]->str,
						  (size_t)r->element[i]->len);
}

void
period_store_ids_free(char **ids)
{
	if (!ids)
		return;
	for (char **p = ids; *p; p++)
		free(*p);
	free(ids);
}

/* Calls fn over the (member, score) pairs of a WITHSCORES reply; members
 * that are not strings are skipped. */
static void
each_pair(const redisReply *r,
	  int (*fn)(const char *, size_t, int64_t, void *), void *data)
{
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *m = r->element[i];
		if (m->type != REDIS_REPLY_STRING)
			continue;
		if (fn(m->str, (size_t)m->len, reply_i64(r->element[i + 1]),
		       data))
			break;
	}
}

/* ---- NS:period:policies ------------------------------------------------- */

int
period_store_policies_each(struct period_store *ps,
			   int (*fn)(const char *, size_t, int64_t, void *),
			   void *data, struct berr *err)
{
	redisReply *r = checked(redis_command(ps->redis, err, "ZRANGE",
					      ps->k_policies, "0", "-1",
					      "WITHSCORES", NULL),
				"ZRANGE policies", err);
	if (!r)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(r);
		return berr_set(err, "ZRANGE policies: unexpected reply");
	}
	each_pair(r, fn, data);
	freeReplyObject(r);
	return 0;
}

int
period_store_policy_add(struct period_store *ps, const char *member,
			int64_t score, struct berr *err)
{
	char sc[24];
	snprintf(sc, sizeof(sc), "%" PRId64, score);
	const char *keys[] = {ps->k_policies};
	const char *args[] = {sc, member};
	redisReply *r = run_script(ps, SCRIPT_PERIOD_ADD_ONCE, 1, keys, 2,
				   args, err);
	if (!r)
		return -1;
	int added = reply_i64(r) == 1;
	freeReplyObject(r);
	return added;
}

int
period_store_policy_remove(struct period_store *ps, const char *member,
			   struct berr *err)
{
	return checked_free(redis_command(ps->redis, err, "ZREM",
					  ps->k_policies, member, NULL),
			    "ZREM policies", err);
}

int
period_store_policy_remove_id(struct period_store *ps, int64_t numeric_id,
			      struct berr *err)
{
	char sc[24];
	snprintf(sc, sizeof(sc), "%" PRId64, numeric_id);
	redisReply *r = checked(redis_command(ps->redis, err,
					      "ZREMRANGEBYSCORE",
					      ps->k_policies, sc, sc, NULL),
				"ZREMRANGEBYSCORE policies", err);
	if (!r)
		return -1;
	int n = (int)reply_i64(r);
	freeReplyObject(r);
	return n;
}

/* ---- NS:period:lock and NS:last_periodic_enqueue_h ---------------------- */

int
period_store_lock(struct period_store *ps, const char *node_id, int ttl,
		  struct berr *err)
{
	char t[12];
	snprintf(t, sizeof(t), "%d", ttl);
	redisReply *r = checked(redis_command(ps->redis, err, "SET",
					      ps->k_lock, node_id, "NX", "EX",
					      t, NULL),
				"SET period lock", err);
	if (!r)
		return -1;
	int locked = r->type == REDIS_REPLY_STATUS; /* nil: taken */
	freeReplyObject(r);
	return locked;
}

int
period_store_unlock(struct period_store *ps, const char *node_id,
		    struct berr *err)
{
	const char *keys[] = {ps->k_lock};
	const char *args[] = {node_id};
	redisReply *r = run_script(ps, SCRIPT_PERIOD_UNLOCK, 1, keys, 1, args,
				   err);
	if (!r)
		return -1;
	freeReplyObject(r);
	return 0;
}

int
period_store_last_enqueue(struct period_store *ps, int64_t *last,
			  struct berr *err)
{
	redisReply *r = checked(redis_command(ps->redis, err, "GET",
					      ps->k_last, NULL),
				"GET last periodic enqueue", err);
	if (!r)
		return -1;
	char *end = NULL;
	long long v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, &end, 10)
						    : 0;
	bool valid = end && end != r->str && *end == '\0';
	freeReplyObject(r);
	*last = valid ? (int64_t)v : 0;
	return valid ? 1 : 0;
}

int
period_store_set_last_enqueue(struct period_store *ps, int64_t epoch,
			      struct berr *err)
{
	char v[24];
	snprintf(v, sizeof(v), "%" PRId64, epoch);
	return checked_free(redis_command(ps->redis, err, "SET", ps->k_last,
					  v, NULL),
			    "SET last periodic enqueue", err);
}

/* ---- NS:executions:<policy> --------------------------------------------- */

int
period_store_executions_known(struct period_store *ps, const char *policy_id,
			      const char *const *ids, size_t n, bool *known,
			      struct berr *err)
{
	if (n > INT32_MAX)
		return berr_set(err, "executions check: too many ids");
	char *key = key_executions(ps->ns, policy_id);
	const char *keys[] = {key};
	redisReply *r = run_script(ps, SCRIPT_PERIOD_KNOWN, 1, keys, (int)n,
				   (const char **)ids, err);
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

int
period_store_executions_unfinished(struct period_store *ps,
				   const char *policy_id, char ***ids,
				   size_t *n, struct berr *err)
{
	*ids = NULL;
	*n = 0;
	char *key = key_executions(ps->ns, policy_id);
	redisReply *r = checked(redis_command(ps->redis, err, "ZRANGEBYSCORE",
					      key, "0", "+inf", NULL),
				"ZRANGEBYSCORE executions", err);
	free(key);
	if (!r)
		return -1;
	take_ids(r, ids, n);
	freeReplyObject(r);
	return 0;
}

int
period_store_execution_finish_ns(struct redis_pool *redis, const char *ns,
				 const char *policy_id,
				 const char *execution_id, struct berr *err)
{
	char *key = key_executions(ns, policy_id);
	int rc = checked_free(redis_command(redis, err, "ZADD", key, "XX",
					    "-1", execution_id, NULL),
			      "ZADD executions", err);
	free(key);
	return rc;
}

int
period_store_execution_finish(struct period_store *ps, const char *policy_id,
			      const char *execution_id, struct berr *err)
{
	return period_store_execution_finish_ns(ps->redis, ps->ns, policy_id,
						execution_id, err);
}

int
period_store_executions_trim(struct period_store *ps, const char *policy_id,
			     int scan, struct berr *err)
{
	char *key = key_executions(ps->ns, policy_id);
	char sc[12];
	snprintf(sc, sizeof(sc), "%d", scan);
	const char *keys[] = {key};
	const char *args[] = {ps->stats_prefix, sc};
	redisReply *r = run_script(ps, SCRIPT_PERIOD_TRIM, 1, keys, 2, args,
				   err);
	free(key);
	if (!r)
		return -1;
	int n = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : 0;
	freeReplyObject(r);
	return n;
}

int
period_store_executions_count(struct period_store *ps, const char *policy_id,
			      bool unfinished_only, int64_t *total,
			      struct berr *err)
{
	char *key = key_executions(ps->ns, policy_id);
	redisReply *r = unfinished_only
				? redis_command(ps->redis, err, "ZCOUNT", key,
						"0", "+inf", NULL)
				: redis_command(ps->redis, err, "ZCARD", key,
						NULL);
	free(key);
	r = checked(r, "count executions", err);
	if (!r)
		return -1;
	*total = reply_i64(r);
	freeReplyObject(r);
	return 0;
}

int
period_store_executions_page(struct period_store *ps, const char *policy_id,
			     bool unfinished_only, uint64_t off,
			     uint32_t size, char ***ids, size_t *n,
			     struct berr *err)
{
	*ids = NULL;
	*n = 0;
	char *key = key_executions(ps->ns, policy_id);
	char a[24], b[24];
	snprintf(a, sizeof(a), "%" PRIu64, off);
	redisReply *r;
	if (unfinished_only) {
		snprintf(b, sizeof(b), "%" PRIu32, size);
		r = redis_command(ps->redis, err, "ZREVRANGEBYSCORE", key,
				  "+inf", "0", "LIMIT", a, b, NULL);
	} else {
		snprintf(b, sizeof(b), "%" PRIu64, off + size - 1);
		r = redis_command(ps->redis, err, "ZREVRANGE", key, a, b,
				  NULL);
	}
	free(key);
	r = checked(r, "list executions", err);
	if (!r)
		return -1;
	take_ids(r, ids, n);
	freeReplyObject(r);
	return 0;
}

/* ---- NS:scheduled ------------------------------------------------------- */

int
period_store_schedule(struct period_store *ps, const char *msg, int64_t epoch,
		      struct berr *err)
{
	char score[24];
	snprintf(score, sizeof(score), "%" PRId64, epoch);
	return checked_free(redis_command(ps->redis, err, "ZADD",
					  ps->k_scheduled, score, msg, NULL),
			    "ZADD scheduled", err);
}

int
period_store_scheduled_each(struct period_store *ps, int64_t max,
			    int (*fn)(const char *, size_t, int64_t, void *),
			    void *data, struct berr *err)
{
	char sc[24];
	snprintf(sc, sizeof(sc), "%" PRId64, max);
	redisReply *r = checked(redis_command(ps->redis, err, "ZRANGEBYSCORE",
					      ps->k_scheduled, "0", sc,
					      "WITHSCORES", NULL),
				"ZRANGEBYSCORE scheduled", err);
	if (!r)
		return -1;
	if (r->type == REDIS_REPLY_ARRAY)
		each_pair(r, fn, data);
	freeReplyObject(r);
	return 0;
}

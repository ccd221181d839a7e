/* api_stats.c - GET /api/v1/stats (spec 2.11): every worker pool heartbeat
 * in the namespace, Healthy or Dead. Open without authentication. */
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "store/keys.h"

#define POOL_DEAD_AFTER_S 10

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *
hash_get(const redisReply *r, const char *field)
{
	for (size_t i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[i]->str, field) == 0 &&
		    r->element[i + 1]->type == REDIS_REPLY_STRING)
			return r->element[i + 1]->str;
	return NULL;
}

static int64_t
hash_get_i64(const redisReply *r, const char *field)
{
	const char *v = hash_get(r, field);
	int64_t out = 0;
	if (!v || util_parse_i64(v, INT64_MIN, INT64_MAX, &out) < 0)
		return 0;
	return out;
}

static cJSON *
pool_json(const char *id, const redisReply *h, int64_t now)
{
	int64_t hb = hash_get_i64(h, "heartbeat_at");
	if (hb == 0)
		return NULL;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "worker_pool_id", id);
	cJSON_AddNumberToObject(o, "started_at",
				(double)hash_get_i64(h, "started_at"));
	cJSON_AddNumberToObject(o, "heartbeat_at", (double)hb);
	cJSON *names = cJSON_AddArrayToObject(o, "job_names");
	const char *jn = hash_get(h, "job_names");
	if (jn && *jn) {
		char *copy = xstrdup(jn);
		size_t n = 1;
		for (const char *c = copy; *c; c++)
			n += *c == ',';
		char **v = xcalloc(n, sizeof(char *));
		size_t k = 0;
		for (char *save = NULL, *t = strtok_r(copy, ",", &save); t;
		     t = strtok_r(NULL, ",", &save))
			v[k++] = t;
		qsort(v, k, sizeof(char *), cmp_str);
		for (size_t i = 0; i < k; i++)
			cJSON_AddItemToArray(names, cJSON_CreateString(v[i]));
		free(v);
		free(copy);
	}
	cJSON_AddNumberToObject(o, "concurrency",
				(double)hash_get_i64(h, "concurrency"));
	cJSON_AddStringToObject(o, "status",
				hb + POOL_DEAD_AFTER_S < now ? "Dead"
							     : "Healthy");
	return o;
}

int
api_stats_get(struct api_request *req)
{
	struct berthd *d = req->d;
	struct berr err;
	berr_clear(&err);
	char *key = key_worker_pools(d->ns);
	redisReply *m = redis_command(d->redis, &err, "SMEMBERS", key, NULL);
	free(key);
	if (!m || m->type != REDIS_REPLY_ARRAY) {
		if (m && m->type == REDIS_REPLY_ERROR)
			berr_set(&err, "%s", m->str);
		if (m)
			freeReplyObject(m);
		return api_send_error(req, 500, API_E_CHECK_STATS, "%s",
				      err.msg);
	}
	size_t n = m->elements;
	char **ids = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		ids[i] = m->element[i]->str;
	qsort(ids, n, sizeof(char *), cmp_str);

	int64_t now = util_now();
	cJSON *pools = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		char *pk = key_worker_pool(d->ns, ids[i]);
		redisReply *h = redis_command(d->redis, &err, "HGETALL", pk,
					      NULL);
		free(pk);
		if (!h) {
			free(ids);
			freeReplyObject(m);
			cJSON_Delete(pools);
			return api_send_error(req, 500, API_E_CHECK_STATS,
					      "%s", err.msg);
		}
		if (h->type == REDIS_REPLY_ARRAY) {
			cJSON *p = pool_json(ids[i], h, now);
			if (p)
				cJSON_AddItemToArray(pools, p);
		}
		freeReplyObject(h);
	}
	free(ids);
	freeReplyObject(m);
	if (cJSON_GetArraySize(pools) == 0) {
		cJSON_Delete(pools);
		return api_send_error(req, 500, API_E_CHECK_STATS,
				      "failed to get stats of worker pools");
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "worker_pools", pools);
	return api_send_json(req, 200, o);
}

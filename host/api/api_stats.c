/* api_stats.c - GET /api/v1/stats (spec 2.11): every worker pool heartbeat
 * in the namespace, Healthy or Dead. Open without authentication. */
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "common/json.h"
#include "logs/log.h"
#include "store/heartbeat.h"

#define POOL_DEAD_AFTER_S 10
#define STATS_STORE_DETAILS \
	"cannot read the worker pools from Redis (see the service log)"

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static cJSON *
pool_json(const char *id, const struct heartbeat_pool *h, int64_t now)
{
	int64_t hb = h->has_heartbeat ? h->heartbeat_at : 0;
	if (hb == 0)
		return NULL;
	cJSON *o = json_must(cJSON_CreateObject());
	cJSON_AddStringToObject(o, "worker_pool_id", id);
	cJSON_AddNumberToObject(o, "started_at", (double)h->started_at);
	cJSON_AddNumberToObject(o, "heartbeat_at", (double)hb);
	cJSON *names = cJSON_AddArrayToObject(o, "job_names");
	const char *jn = h->job_names;
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
			cJSON_AddItemToArray(
				names, json_must(cJSON_CreateString(v[i])));
		free(v);
		free(copy);
	}
	cJSON_AddNumberToObject(o, "concurrency", (double)h->concurrency);
	cJSON_AddStringToObject(o, "status",
				hb + POOL_DEAD_AFTER_S < now ? "Dead"
							     : "Healthy");
	return o;
}

/* The route is open (spec 2.2): the store's error text (it names the Redis
 * address or socket) goes to the service log, the client gets a fixed
 * details text in the same error shape. */
static int
store_failed(struct api_request *req, const struct berr *err)
{
	log_warn("GET /api/v1/stats: %s", err->msg);
	return api_send_error(req, 500, API_E_CHECK_STATS, "%s",
			      STATS_STORE_DETAILS);
}

int
api_stats_get(struct api_request *req)
{
	struct berthd *d = req->d;
	struct berr err;
	berr_clear(&err);
	char **ids = NULL;
	size_t n = 0;
	if (heartbeat_pool_ids(d->redis, d->ns, &ids, &n, &err) < 0)
		return store_failed(req, &err);
	int64_t now = util_now();
	cJSON *pools = json_must(cJSON_CreateArray());
	for (size_t i = 0; i < n; i++) {
		struct heartbeat_pool h;
		int rc = heartbeat_pool_read(d->redis, d->ns, ids[i], &h,
					     &err);
		if (rc < 0) {
			heartbeat_ids_free(ids, n);
			cJSON_Delete(pools);
			return store_failed(req, &err);
		}
		if (rc > 0) {
			cJSON *p = pool_json(ids[i], &h, now);
			if (p)
				cJSON_AddItemToArray(pools, p);
		}
		heartbeat_pool_fini(&h);
	}
	heartbeat_ids_free(ids, n);
	if (cJSON_GetArraySize(pools) == 0) {
		cJSON_Delete(pools);
		return api_send_error(req, 500, API_E_CHECK_STATS,
				      "failed to get stats of worker pools");
	}
	cJSON *o = json_must(cJSON_CreateObject());
	cJSON_AddItemToObject(o, "worker_pools", pools);
	return api_send_json(req, 200, o);
}

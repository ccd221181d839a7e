/* api_queues.c - the queue and pool routes of the Operations API (Berth;
 * README "Operations API"):
 *   GET /api/v1/queues               every job type's figures
 *   PUT /api/v1/queues/{type}        pause, resume, stop all ("*": every
 *                                    type)
 *   GET /api/v1/pools                the pools of every instance
 *   GET /api/v1/pools/{id}/workers   a pool's workers and their jobs
 * What they read and write in Redis is what Harbor's dashboard reads and
 * writes (spec 12.4), through store/queue_ops.h and store/heartbeat.h. */
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "common/json.h"
#include "logs/log.h"
#include "store/heartbeat.h"
#include "store/message.h"
#include "store/queue_ops.h"
#include "store/tracker.h"

/* The per-type counts of the sorted sets read at most this many members
 * of each. */
#define SET_COUNT_MAX 10000
/* Pending messages taken out of a queue per round trip by stop. */
#define STOP_BATCH 100
#define POOL_DEAD_AFTER_S 10

static const char *const no_params[] = {NULL};

/* --- the job types ------------------------------------------------------- */

struct type_row {
	char *name;
	bool known, loaded;
	int64_t in_set[3]; /* by enum queue_set */
};

struct type_table {
	struct type_row *v;
	size_t n, cap;
	bool full; /* QUEUE_FIGURES_MAX reached: later names dropped */
};

static struct type_row *
table_find(struct type_table *t, const char *name, bool add)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(t->v[mid].name, name);
		if (c == 0)
			return &t->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!add || !*name)
		return NULL;
	if (t->n >= QUEUE_FIGURES_MAX) {
		t->full = true;
		return NULL;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 32;
		t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	memmove(t->v + lo + 1, t->v + lo, (t->n - lo) * sizeof(*t->v));
	memset(&t->v[lo], 0, sizeof(t->v[lo]));
	t->v[lo].name = xstrdup(name);
	t->n++;
	return &t->v[lo];
}

static void
table_fini(struct type_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* Every type of NS:known_jobs and every loaded type. 0, or -1 with err. */
static int
table_load(struct berthd *d, struct type_table *t, struct berr *err)
{
	char **known = NULL;
	size_t nk = 0;
	if (queue_known_types(d->queue, &known, &nk, err) < 0)
		return -1;
	for (size_t i = 0; i < nk; i++) {
		struct type_row *r = table_find(t, known[i], true);
		if (r)
			r->known = true;
	}
	queue_strv_free(known, nk);
	size_t np = 0;
	char **names = plugin_registry_names(d->plugins, &np);
	for (size_t i = 0; i < np; i++) {
		struct type_row *r = table_find(t, names[i], true);
		if (r)
			r->loaded = true;
	}
	if (names)
		plugin_names_free(names);
	return 0;
}

/* --- GET /api/v1/queues --------------------------------------------------- */

struct set_count {
	struct type_table *t;
	enum queue_set s;
};

static int
count_member(void *data, const char *raw, size_t len, int64_t score)
{
	(void)score;
	struct set_count *sc = data;
	cJSON *j = json_parse(raw, len, NULL);
	const char *name = json_str(j, "name");
	struct type_row *r = name ? table_find(sc->t, name, true) : NULL;
	if (r)
		r->in_set[sc->s]++;
	cJSON_Delete(j);
	return 0;
}

int
api_queues_get(struct api_request *req)
{
	int rc = api_query_allowed(req, no_params);
	if (rc)
		return -rc;
	struct berthd *d = req->d;
	struct berr err;
	berr_clear(&err);
	struct type_table t = {0};
	char **pools = NULL;
	size_t np = 0;
	struct queue_type_info *info = NULL;
	int64_t totals[3] = {0, 0, 0};
	bool partial = false;
	if (table_load(d, &t, &err) < 0)
		goto fail;
	for (int s = QUEUE_SET_SCHEDULED; s <= QUEUE_SET_DEAD; s++) {
		struct set_count sc = {.t = &t, .s = (enum queue_set)s};
		if (queue_set_each(d->queue, (enum queue_set)s, 0,
				   SET_COUNT_MAX, count_member, &sc,
				   &totals[s], &err) < 0)
			goto fail;
		if (totals[s] > SET_COUNT_MAX)
			partial = true;
	}
	if (heartbeat_pool_ids(d->redis, d->ns, &pools, &np, &err) < 0)
		goto fail;
	const char **names = xcalloc(t.n + 1, sizeof(char *));
	for (size_t i = 0; i < t.n; i++)
		names[i] = t.v[i].name;
	info = xcalloc(t.n + 1, sizeof(*info));
	rc = queue_types_info(d->queue, names, t.n,
			      (const char *const *)pools, np, info, &err);
	free(names);
	if (rc < 0)
		goto fail;

	int64_t now = util_now();
	cJSON *o = json_must(cJSON_CreateObject());
	cJSON *arr = json_must(cJSON_AddArrayToObject(o, "queues"));
	for (size_t i = 0; i < t.n; i++) {
		const struct type_row *r = &t.v[i];
		const struct queue_type_info *f = &info[i];
		cJSON *q = json_must(cJSON_CreateObject());
		cJSON_AddStringToObject(q, "type", r->name);
		cJSON_AddNumberToObject(q, "pending", (double)f->pending);
		int64_t lat = f->pending > 0 && f->oldest_t >= 0 &&
					      now > f->oldest_t
				      ? now - f->oldest_t
				      : 0;
		cJSON_AddNumberToObject(q, "latency_seconds", (double)lat);
		cJSON_AddNumberToObject(q, "in_progress",
					(double)f->in_progress);
		cJSON_AddNumberToObject(q, "lock", (double)f->lock);
		cJSON_AddNumberToObject(q, "max_concurrency",
					(double)f->max_concurrency);
		cJSON_AddBoolToObject(q, "paused", f->paused);
		cJSON_AddNumberToObject(q, "scheduled",
					(double)r->in_set[QUEUE_SET_SCHEDULED]);
		cJSON_AddNumberToObject(q, "retry",
					(double)r->in_set[QUEUE_SET_RETRY]);
		cJSON_AddNumberToObject(q, "dead",
					(double)r->in_set[QUEUE_SET_DEAD]);
		cJSON_AddBoolToObject(q, "loaded", r->loaded);
		cJSON_AddBoolToObject(q, "known", r->known);
		cJSON_AddItemToArray(arr, q);
	}
	cJSON *tot = json_must(cJSON_AddObjectToObject(o, "totals"));
	cJSON_AddNumberToObject(tot, "scheduled",
				(double)totals[QUEUE_SET_SCHEDULED]);
	cJSON_AddNumberToObject(tot, "retry", (double)totals[QUEUE_SET_RETRY]);
	cJSON_AddNumberToObject(tot, "dead", (double)totals[QUEUE_SET_DEAD]);
	cJSON_AddBoolToObject(o, "counts_partial", partial);
	free(info);
	heartbeat_ids_free(pools, np);
	table_fini(&t);
	return api_send_json(req, 200, o);
fail:
	free(info);
	heartbeat_ids_free(pools, np);
	table_fini(&t);
	return api_store_failed(req, &err);
}

/* --- PUT /api/v1/queues/{type} -------------------------------------------- */

/* Stops job id as POST /api/v1/jobs/{id} does for a job that has stats
 * (Periodic policies are left alone: they are not in queues). 1 stopped,
 * 0 nothing to do, -1 Redis error. */
static int
stop_job(struct berthd *d, const char *id, struct berr *err)
{
	struct job_stats st;
	memset(&st, 0, sizeof(st));
	int rc = tracker_load(d->tracker, id, &st, err);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (job_status_final(st.status) ||
	    (st.kind && strcmp(st.kind, JOB_KIND_PERIODIC) == 0)) {
		job_stats_fini(&st);
		return 0;
	}
	char *current = NULL;
	enum tracker_cas cas = tracker_set_status(d->tracker, &st,
						  JOB_STATUS_STOPPED, &current,
						  err);
	free(current);
	job_stats_fini(&st);
	if (cas == TRACKER_REDIS_ERROR)
		return -1;
	return cas == TRACKER_OK ? 1 : 0;
}

/* The job id of a queue message, NULL when it does not parse. m is
 * filled (message_fini it) when the result is non-NULL. */
static char *
raw_job_id(const char *raw, struct job_message *m)
{
	struct berr perr;
	berr_clear(&perr);
	if (message_parse(raw, strlen(raw), m, &perr) < 0)
		return NULL;
	return message_job_id(m);
}

/* Harbor's "stop all" for one type: the pending messages out of the
 * queue (each job Stopped), then every job of the type in a pool's
 * in-progress list Stopped. 0, or -1 with err. */
static int
stop_type(struct berthd *d, const char *type, int64_t pending,
	  int64_t *n_pending, int64_t *n_running, struct berr *err)
{
	/* the queue may grow meanwhile: as many rounds as it held, plus one */
	int64_t rounds = pending / STOP_BATCH + 2;
	for (int64_t round = 0; round < rounds; round++) {
		char **raws = NULL;
		size_t n = 0;
		if (queue_take_pending(d->queue, type, STOP_BATCH, &raws, &n,
				       err) < 0)
			return -1;
		for (size_t i = 0; i < n; i++) {
			struct job_message m;
			memset(&m, 0, sizeof(m));
			char *id = raw_job_id(raws[i], &m);
			if (!id) {
				log_warn("stop of %s: dropped a message that "
					 "does not parse",
					 type);
				continue;
			}
			struct berr e2;
			berr_clear(&e2);
			if (m.unique && queue_release_unique(d->queue, &m,
							     &e2) < 0)
				log_warn("stop of %s: unique key of %s: %s",
					 type, id, e2.msg);
			int r = stop_job(d, id, &e2);
			if (r < 0)
				log_warn("stop of %s: job %s taken out of the "
					 "queue, its status not written: %s",
					 type, id, e2.msg);
			else
				(*n_pending)++;
			free(id);
			message_fini(&m);
		}
		queue_strv_free(raws, n);
		if (n < STOP_BATCH)
			break;
	}
	char **pools = NULL;
	size_t np = 0;
	if (heartbeat_pool_ids(d->redis, d->ns, &pools, &np, err) < 0)
		return -1;
	int rc = 0;
	for (size_t p = 0; p < np && rc == 0; p++) {
		char **raws = NULL;
		size_t n = 0;
		if (queue_inprogress_list(d->queue, pools[p], type, &raws, &n,
					  err) < 0) {
			rc = -1;
			break;
		}
		for (size_t i = 0; i < n; i++) {
			struct job_message m;
			memset(&m, 0, sizeof(m));
			char *id = raw_job_id(raws[i], &m);
			if (!id)
				continue;
			struct berr e2;
			berr_clear(&e2);
			int r = stop_job(d, id, &e2);
			if (r > 0)
				(*n_running)++;
			else if (r < 0)
				log_warn("stop of %s: running job %s: %s",
					 type, id, e2.msg);
			free(id);
			message_fini(&m);
		}
		queue_strv_free(raws, n);
	}
	heartbeat_ids_free(pools, np);
	return rc;
}

int
api_queue_put(struct api_request *req)
{
	static const char *const actions[] = {"pause", "resume", "stop",
					      NULL};
	int rc = api_query_allowed(req, no_params);
	if (rc)
		return -rc;
	const char *action;
	rc = api_body_action(req, actions, &action);
	if (rc)
		return -rc;
	struct berthd *d = req->d;
	const char *type = req->params[0];
	struct berr err;
	berr_clear(&err);
	struct type_table t = {0};
	if (table_load(d, &t, &err) < 0) {
		table_fini(&t);
		return api_store_failed(req, &err);
	}
	bool all = strcmp(type, "*") == 0;
	if (!all && !table_find(&t, type, false)) {
		table_fini(&t);
		return api_send_error(req, 404, API_E_NOT_FOUND, "%s", type);
	}
	size_t first = 0, end = t.n;
	if (!all) {
		for (first = 0; strcmp(t.v[first].name, type) != 0; first++)
			;
		end = first + 1;
	}
	cJSON *o = json_must(cJSON_CreateObject());
	cJSON_AddStringToObject(o, "action", action);
	cJSON *types = json_must(cJSON_AddArrayToObject(o, "types"));
	int64_t n_pending = 0, n_running = 0;
	rc = 0;
	for (size_t i = first; i < end && rc == 0; i++) {
		const char *name = t.v[i].name;
		if (strcmp(action, "stop") == 0) {
			struct queue_type_info info;
			const char *one[] = {name};
			rc = queue_types_info(d->queue, one, 1, NULL, 0, &info,
					      &err);
			if (rc == 0)
				rc = stop_type(d, name, info.pending,
					       &n_pending, &n_running, &err);
		} else {
			rc = queue_set_paused(d->queue, name,
					      strcmp(action, "pause") == 0,
					      &err);
		}
		if (rc == 0)
			cJSON_AddItemToArray(
				types, json_must(cJSON_CreateString(name)));
	}
	table_fini(&t);
	if (rc < 0) {
		cJSON_Delete(o);
		return api_store_failed(req, &err);
	}
	if (strcmp(action, "stop") == 0) {
		cJSON_AddNumberToObject(o, "stopped_pending",
					(double)n_pending);
		cJSON_AddNumberToObject(o, "stopped_running",
					(double)n_running);
		log_info("queue %s: stop all: %lld pending and %lld running "
			 "jobs stopped",
			 type, (long long)n_pending, (long long)n_running);
	} else {
		log_info("queue %s: %sd over REST", type, action);
	}
	return api_send_json(req, 200, o);
}

/* --- GET /api/v1/pools ---------------------------------------------------- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A comma list split and sorted (*n entries; free with
 * queue_strv_free). */
static char **
split_sorted(const char *list, size_t *n)
{
	*n = 0;
	size_t cap = 1;
	for (const char *c = list ? list : ""; *c; c++)
		cap += *c == ',';
	char **v = xcalloc(cap + 1, sizeof(char *));
	const char *p = list ? list : "";
	while (*p) {
		size_t l = strcspn(p, ",");
		if (l > 0)
			v[(*n)++] = xstrndup(p, l);
		p += l;
		if (*p == ',')
			p++;
	}
	qsort(v, *n, sizeof(char *), cmp_str);
	return v;
}

static cJSON *
str_array(char **v, size_t n)
{
	cJSON *a = json_must(cJSON_CreateArray());
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(a, json_must(cJSON_CreateString(v[i])));
	return a;
}

int
api_pools_get(struct api_request *req)
{
	int rc = api_query_allowed(req, no_params);
	if (rc)
		return -rc;
	struct berthd *d = req->d;
	struct berr err;
	berr_clear(&err);
	char **ids = NULL;
	size_t n = 0;
	if (heartbeat_pool_ids(d->redis, d->ns, &ids, &n, &err) < 0)
		return api_store_failed(req, &err);
	bool *berth = xcalloc(n + 1, sizeof(bool));
	if (heartbeat_pools_berth(d->redis, d->ns, (const char *const *)ids,
				  n, berth, &err) < 0) {
		free(berth);
		heartbeat_ids_free(ids, n);
		return api_store_failed(req, &err);
	}
	const char *self = d->heartbeat ? heartbeat_pool_id(d->heartbeat)
					: NULL;
	int64_t now = util_now();
	cJSON *o = json_must(cJSON_CreateObject());
	cJSON *arr = json_must(cJSON_AddArrayToObject(o, "pools"));
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct heartbeat_pool h;
		if (heartbeat_pool_read(d->redis, d->ns, ids[i], &h, &err) <
		    0) {
			rc = -1;
			break;
		}
		size_t nw = 0, nj = 0;
		char **wids = split_sorted(h.worker_ids, &nw);
		char **jobs = split_sorted(h.job_names, &nj);
		struct heartbeat_observation *obs =
			xcalloc(nw + 1, sizeof(*obs));
		if (heartbeat_observations_read(d->redis, d->ns,
						(const char *const *)wids, nw,
						obs, &err) < 0)
			rc = -1;
		size_t busy = 0;
		for (size_t w = 0; w < nw; w++) {
			busy += obs[w].busy;
			heartbeat_observation_fini(&obs[w]);
		}
		free(obs);
		cJSON *p = json_must(cJSON_CreateObject());
		int64_t hb = h.has_heartbeat ? h.heartbeat_at : 0;
		cJSON_AddStringToObject(p, "pool_id", ids[i]);
		cJSON_AddStringToObject(p, "host", h.host ? h.host : "");
		cJSON_AddNumberToObject(p, "pid", (double)h.pid);
		cJSON_AddNumberToObject(p, "started_at", (double)h.started_at);
		cJSON_AddNumberToObject(p, "heartbeat_at", (double)hb);
		cJSON_AddStringToObject(p, "status",
					hb > 0 && hb + POOL_DEAD_AFTER_S >= now
						? "Healthy"
						: "Dead");
		cJSON_AddNumberToObject(p, "concurrency",
					(double)h.concurrency);
		cJSON_AddItemToObject(p, "job_names", str_array(jobs, nj));
		cJSON_AddItemToObject(p, "worker_ids", str_array(wids, nw));
		cJSON_AddNumberToObject(p, "busy", (double)busy);
		cJSON_AddBoolToObject(p, "berth", berth[i]);
		cJSON_AddBoolToObject(p, "self",
				      self && strcmp(self, ids[i]) == 0);
		cJSON_AddItemToArray(arr, p);
		queue_strv_free(wids, nw);
		queue_strv_free(jobs, nj);
		heartbeat_pool_fini(&h);
	}
	free(berth);
	heartbeat_ids_free(ids, n);
	if (rc < 0) {
		cJSON_Delete(o);
		return api_store_failed(req, &err);
	}
	return api_send_json(req, 200, o);
}

/* --- GET /api/v1/pools/{id}/workers --------------------------------------- */

/* The stored args text as JSON: the parsed value, null when empty, the
 * text itself when it does not parse. */
static cJSON *
args_json(const char *text)
{
	if (!text || !*text)
		return json_must(cJSON_CreateNull());
	cJSON *j = json_parse(text, strlen(text), NULL);
	return j ? j : json_must(cJSON_CreateString(text));
}

int
api_pool_workers_get(struct api_request *req)
{
	int rc = api_query_allowed(req, no_params);
	if (rc)
		return -rc;
	struct berthd *d = req->d;
	const char *pool = req->params[0];
	struct berr err;
	berr_clear(&err);
	char **ids = NULL;
	size_t n = 0;
	if (heartbeat_pool_ids(d->redis, d->ns, &ids, &n, &err) < 0)
		return api_store_failed(req, &err);
	bool found = false;
	for (size_t i = 0; i < n; i++)
		found = found || strcmp(ids[i], pool) == 0;
	heartbeat_ids_free(ids, n);
	if (!found)
		return api_send_error(req, 404, API_E_NOT_FOUND, "%s", pool);
	struct heartbeat_pool h;
	if (heartbeat_pool_read(d->redis, d->ns, pool, &h, &err) < 0)
		return api_store_failed(req, &err);
	size_t nw = 0;
	char **wids = split_sorted(h.worker_ids, &nw);
	heartbeat_pool_fini(&h);
	struct heartbeat_observation *obs = xcalloc(nw + 1, sizeof(*obs));
	if (heartbeat_observations_read(d->redis, d->ns,
					(const char *const *)wids, nw, obs,
					&err) < 0) {
		free(obs);
		queue_strv_free(wids, nw);
		return api_store_failed(req, &err);
	}
	cJSON *o = json_must(cJSON_CreateObject());
	cJSON_AddStringToObject(o, "pool_id", pool);
	cJSON *arr = json_must(cJSON_AddArrayToObject(o, "workers"));
	for (size_t i = 0; i < nw; i++) {
		const struct heartbeat_observation *b = &obs[i];
		cJSON *w = json_must(cJSON_CreateObject());
		cJSON_AddStringToObject(w, "worker_id", wids[i]);
		cJSON_AddBoolToObject(w, "busy", b->busy);
		if (b->busy) {
			cJSON_AddStringToObject(w, "job_name",
						b->job_name ? b->job_name : "");
			cJSON_AddStringToObject(w, "job_id",
						b->job_id ? b->job_id : "");
			cJSON_AddNumberToObject(w, "started_at",
						(double)b->started_at);
			cJSON_AddItemToObject(w, "args", args_json(b->args));
			if (b->checkin)
				cJSON_AddStringToObject(w, "checkin",
							b->checkin);
			if (b->has_checkin_at)
				cJSON_AddNumberToObject(w, "checkin_at",
							(double)b->checkin_at);
		}
		cJSON_AddItemToArray(arr, w);
		heartbeat_observation_fini(&obs[i]);
	}
	free(obs);
	queue_strv_free(wids, nw);
	return api_send_json(req, 200, o);
}

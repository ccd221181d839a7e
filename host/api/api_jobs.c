/* api_jobs.c - the job routes (spec 2.5-2.8):
 *   POST /api/v1/jobs            submit (Generic, Scheduled; Periodic goes
 *                                to api_periodic.c)
 *   GET  /api/v1/jobs            list (tracker_list over the stats, or a
 *                                page of the scheduled zset)
 *   GET  /api/v1/jobs/{id}       one job's stats
 *   POST /api/v1/jobs/{id}       action: stop (a policy, or an id without
 *                                stats: api_periodic.c unschedules it)
 *   POST /api/v1/jobs/batch      Berth: up to 1,000 Generic/Scheduled jobs
 *                                in one request, one Redis round trip
 *
 * Berth saves the stats and enqueues the message in one MULTI/EXEC (Go
 * enqueues first, then saves): a worker never sees a message whose stats
 * are not written yet, and a failed enqueue leaves nothing half-made
 * (store/submit.h). */
#include <math.h>
#include <stdarg.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/gojson.h"
#include "common/json.h"
#include "api/http.h"
#include "logs/log.h"
#include "metrics/metrics.h"
#include "store/message.h"
#include "periodic/period.h"
#include "store/queue.h"
#include "store/queue_ops.h"
#include "store/submit.h"
#include "store/tracker.h"

/* Delays beyond ~100 years are refused (Go would overflow the epoch). */
#define MAX_SCHEDULE_DELAY 3153600000.0
#define SCHEDULED_PAGE_SIZE 20

static cJSON *
wrap_job(cJSON *stats)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "job", stats);
	return o;
}

/* A decode failure: the status, code and details api_jobs_post sends. */
static int
submit_fail(struct api_submit_error *e, int status, enum api_code code,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
submit_fail(struct api_submit_error *e, int status, enum api_code code,
	    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->details, sizeof(e->details), fmt, ap);
	va_end(ap);
	e->status = status;
	e->code = code;
	return status;
}

/* The body failed to decode into the request shape: 500 + 10001 (Go). */
static int
json_error(struct api_submit_error *e, const char *what)
{
	return submit_fail(e, 500, API_E_JSON, "%s", what);
}

/* Berth: a status hook must be an http:// or https:// URL (scheme case-
 * insensitive) with a non-empty host, and no spaces or control
 * characters anywhere (the hook agent could never deliver to it). */
static bool
hook_url_ok(const char *u)
{
	for (const char *c = u; *c; c++)
		if ((unsigned char)*c <= 0x20 || *c == 0x7f)
			return false;
	size_t skip;
	if (strncasecmp(u, "http://", 7) == 0)
		skip = 7;
	else if (strncasecmp(u, "https://", 8) == 0)
		skip = 8;
	else
		return false;
	const char *a = u + skip;
	size_t alen = strcspn(a, "/?#");
	const char *host = a;
	for (size_t i = 0; i < alen; i++)
		if (a[i] == '@')
			host = a + i + 1;
	size_t hlen = alen - (size_t)(host - a);
	if (hlen && host[0] == '[') {
		const char *rb = memchr(host, ']', hlen);
		return rb && rb > host + 1;
	}
	size_t name = strcspn(host, ":/?#");
	return name > 0 && name <= hlen;
}

/* Checks the parsed body in the order of spec 2.5. Returns 0 or the HTTP
 * status of the failure described in e. */
static int
decode_submit(cJSON *doc, struct api_submit *s, char *name_buf,
	      size_t name_len, struct api_submit_error *e)
{
	memset(s, 0, sizeof(*s));
	if (!cJSON_IsObject(doc))
		return json_error(e, "the request body must be a JSON object");
	const cJSON *job = cJSON_GetObjectItem(doc, "job");
	if (job && !cJSON_IsNull(job) && !cJSON_IsObject(job))
		return json_error(e, "'job' must be a JSON object");
	/* type errors anywhere in the shape are JSON errors (500) */
	const cJSON *name = job ? cJSON_GetObjectItem(job, "name") : NULL;
	const cJSON *params = job ? cJSON_GetObjectItem(job, "parameters") : NULL;
	const cJSON *meta = job ? cJSON_GetObjectItem(job, "metadata") : NULL;
	const cJSON *hook = job ? cJSON_GetObjectItem(job, "status_hook") : NULL;
	if (name && !cJSON_IsNull(name) && !cJSON_IsString(name))
		return json_error(e, "'job.name' must be a string");
	if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params))
		return json_error(e, "'job.parameters' must be a JSON object");
	if (hook && !cJSON_IsNull(hook) && !cJSON_IsString(hook))
		return json_error(e, "'job.status_hook' must be a string");
	if (meta && !cJSON_IsNull(meta) && !cJSON_IsObject(meta))
		return json_error(e, "'job.metadata' must be a JSON object");
	const cJSON *kind = meta ? cJSON_GetObjectItem(meta, "kind") : NULL;
	const cJSON *delay = meta ? cJSON_GetObjectItem(meta, "schedule_delay")
				  : NULL;
	const cJSON *cron = meta ? cJSON_GetObjectItem(meta, "cron_spec") : NULL;
	const cJSON *uniq = meta ? cJSON_GetObjectItem(meta, "unique") : NULL;
	if (kind && !cJSON_IsNull(kind) && !cJSON_IsString(kind))
		return json_error(e, "'metadata.kind' must be a string");
	if (cron && !cJSON_IsNull(cron) && !cJSON_IsString(cron))
		return json_error(e, "'metadata.cron_spec' must be a string");
	if (uniq && !cJSON_IsNull(uniq) && !cJSON_IsBool(uniq))
		return json_error(e, "'metadata.unique' must be a boolean");
	if (delay && !cJSON_IsNull(delay)) {
		double v = cJSON_IsNumber(delay) ? delay->valuedouble : -1;
		if (!cJSON_IsNumber(delay) || v < 0 || v != floor(v) ||
		    v > 18446744073709551615.0)
			return json_error(e,
					  "'metadata.schedule_delay' must be "
					  "an unsigned integer (seconds)");
		s->delay = v;
	}

	if (!job || cJSON_IsNull(job))
		return submit_fail(e, 400, API_E_BAD_REQUEST,
				   "empty job request is not allowed");
	const char *nm = cJSON_IsString(name) ? name->valuestring : "";
	snprintf(name_buf, name_len, "%s", nm);
	char *trimmed = util_trim(name_buf);
	if (!*trimmed)
		return submit_fail(e, 400, API_E_BAD_REQUEST,
				   "name of job must be specified");
	if (!meta || cJSON_IsNull(meta))
		return submit_fail(e, 400, API_E_BAD_REQUEST,
				   "metadata of job is missing");
	s->kind = cJSON_IsString(kind) ? kind->valuestring : "";
	if (strcmp(s->kind, JOB_KIND_GENERIC) != 0 &&
	    strcmp(s->kind, JOB_KIND_SCHEDULED) != 0 &&
	    strcmp(s->kind, JOB_KIND_PERIODIC) != 0)
		return submit_fail(e, 400, API_E_BAD_REQUEST,
				   "job kind '%.200s' is not supported, "
				   "only support 'Generic','Scheduled',"
				   "'Periodic'",
				   s->kind);
	if (strcmp(s->kind, JOB_KIND_SCHEDULED) == 0 && s->delay == 0)
		return submit_fail(e, 400, API_E_BAD_REQUEST,
				   "'schedule_delay' must be specified for "
				   "Scheduled job");
	if (strcmp(s->kind, JOB_KIND_SCHEDULED) == 0 &&
	    s->delay > MAX_SCHEDULE_DELAY)
		return submit_fail(e, 400, API_E_BAD_REQUEST,
				   "'schedule_delay' of %.0f s is too far "
				   "in the future (at most %.0f)",
				   s->delay, MAX_SCHEDULE_DELAY);
	s->cron = cJSON_IsString(cron) ? cron->valuestring : "";
	if (strcmp(s->kind, JOB_KIND_PERIODIC) == 0 && !*s->cron)
		return submit_fail(e, 400, API_E_BAD_REQUEST,
				   "'cron_spec' must be specified for the "
				   "Periodic job");
	s->name = trimmed;
	s->unique = cJSON_IsTrue(uniq);
	s->hook = cJSON_IsString(hook) ? hook->valuestring : "";
	s->params = cJSON_IsObject(params) ? params : NULL;
	if (*s->hook && !hook_url_ok(s->hook))
		return submit_fail(e, 400, API_E_BAD_REQUEST,
				   "'status_hook' must be an http or https "
				   "URL with a host: %.300s",
				   s->hook);
	return 0;
}

int
api_submit_decode(const char *body, size_t len, cJSON **doc,
		  struct api_submit *s, char *name_buf, size_t name_len,
		  struct api_submit_error *e)
{
	const char *end = NULL;
	memset(s, 0, sizeof(*s));
	*doc = NULL;
	/* json_parse refuses nesting past JSON_MAX_DEPTH before cJSON
	 * recurses (the route refused past 64 already, api_read_body; the
	 * fuzz target calls this directly on a 64 KiB stack) */
	*doc = json_parse(body ? body : "", len, &end);
	if (!*doc && body && !gojson_depth_ok(body, len, JSON_MAX_DEPTH))
		return submit_fail(e, 500, API_E_JSON,
				   "JSON nested deeper than %d levels",
				   JSON_MAX_DEPTH);
	if (!*doc) {
		size_t off = end && body ? (size_t)(end - body) : 0;
		return submit_fail(e, 500, API_E_JSON,
				   "malformed JSON at byte %zu", off);
	}
	int rc = decode_submit(*doc, s, name_buf, name_len, e);
	if (rc) {
		cJSON_Delete(*doc);
		*doc = NULL;
	}
	return rc;
}

/* Refusals of spec 2.5 that need the plugins: an unknown type, parameters
 * the plugin's validate refuses. 0, or the HTTP status with e filled. */
static int
check_job(struct berthd *d, const struct api_submit *s,
	  struct api_submit_error *e)
{
	struct job_type *t = plugin_acquire(d->plugins, s->name);
	if (!t)
		return submit_fail(e, 400, API_E_BAD_REQUEST,
				   "job with name '%.200s' is unknown",
				   s->name);
	char msg[1024];
	int invalid = plugin_validate(t, s->params, msg, sizeof(msg));
	plugin_release(d->plugins, t);
	if (invalid)
		return submit_fail(e, 400, API_E_BAD_REQUEST, "%s", msg);
	return 0;
}

/* A checked Generic or Scheduled job with a fresh id: its stats and queue
 * message (which point into the api_submit and its document). */
struct new_job {
	char id[25];
	struct job_stats st;
	struct job_message m;
	int64_t run_at;
};

static void
new_job_init(struct new_job *nj, const struct api_submit *s, int64_t now)
{
	util_hex24(nj->id);
	nj->run_at = strcmp(s->kind, JOB_KIND_SCHEDULED) == 0
			     ? now + (int64_t)s->delay
			     : 0;
	struct job_stats *st = &nj->st;
	memset(st, 0, sizeof(*st));
	st->id = xstrdup(nj->id);
	st->name = xstrdup(s->name);
	st->kind = xstrdup(s->kind);
	st->status = xstrdup(nj->run_at ? JOB_STATUS_SCHEDULED
					: JOB_STATUS_PENDING);
	st->unique = s->unique;
	st->ref_link = xasprintf("/api/v1/jobs/%s", nj->id);
	st->enqueue_time = now;
	st->update_time = now;
	st->run_at = nj->run_at;
	if (*s->hook)
		st->web_hook_url = xstrdup(s->hook);
	if (s->params && cJSON_GetArraySize(s->params) > 0)
		st->parameters = cJSON_Duplicate(s->params, true);
	nj->m = (struct job_message){
		.name = (char *)s->name,
		.id = nj->id,
		.t = now,
		.args = (cJSON *)s->params,
		.unique = s->unique,
	};
}

/* The accepted job as the submit routes answer it: {"job":{stats}}
 * without the revision. */
static cJSON *
new_job_json(const struct new_job *nj)
{
	cJSON *j = job_stats_to_json(&nj->st, false);
	cJSON_DeleteItemFromObjectCaseSensitive(j, "revision");
	return wrap_job(j);
}

/* Why a job was not enqueued, as the submit routes answer it. */
static void
not_enqueued(const struct submit_job *sj, const char *name,
	     struct api_submit_error *e)
{
	if (sj->result == QUEUE_DUPLICATE)
		submit_fail(e, 500, API_E_LAUNCH,
			    "job '%.200s' can not be enqueued, please check "
			    "the job metatdata",
			    name);
	else
		submit_fail(e, 500, API_E_LAUNCH, "%.500s",
			    sj->error ? sj->error : "not enqueued");
}

int
api_jobs_post(struct api_request *req)
{
	struct berthd *d = req->d;
	cJSON *doc = NULL;
	struct api_submit s;
	struct api_submit_error se;
	char name_buf[256];
	int rc = api_submit_decode(req->body, req->body_len, &doc, &s,
				   name_buf, sizeof(name_buf), &se);
	if (rc)
		return api_send_error(req, se.status, se.code, "%s",
				      se.details);
	if (strcmp(s.kind, JOB_KIND_PERIODIC) == 0) {
		rc = api_periodic_submit(req, s.name, s.cron, s.hook, s.params);
		cJSON_Delete(doc);
		return rc;
	}
	if (check_job(d, &s, &se)) {
		rc = api_send_error(req, se.status, se.code, "%s",
				    se.details);
		cJSON_Delete(doc);
		return rc;
	}
	struct new_job nj;
	new_job_init(&nj, &s, util_now());
	struct submit_job sj = {.stats = &nj.st, .msg = &nj.m,
				.run_at = nj.run_at};
	struct berr err;
	berr_clear(&err);
	submit_jobs(d->redis, d->tracker, d->queue, &sj, 1, &err);
	if (sj.result == QUEUE_ENQUEUED) {
		metrics_jobs_submitted(1);
		rc = api_send_json(req, 202, new_job_json(&nj));
	} else {
		not_enqueued(&sj, s.name, &se);
		rc = api_send_error(req, se.status, se.code, "%s",
				    se.details);
	}
	submit_job_fini(&sj);
	job_stats_fini(&nj.st);
	cJSON_Delete(doc);
	return rc;
}

/* ---- POST /api/v1/jobs/batch (Berth) ------------------------------------ */

/* One item of a batch. */
struct batch_item {
	char name_buf[256];
	struct api_submit s;
	struct api_submit_error e; /* e.status 0: accepted so far */
	struct new_job nj;
	bool made;                 /* nj holds stats to free */
};

/* Decodes and checks one item as POST /api/v1/jobs does its body. The
 * item is that body, {"job":{...}}, or (shorter) the job object itself,
 * {"name":...,"metadata":...}: an object with no "job" key but a "name"
 * is taken as the job. */
static void
batch_check(struct berthd *d, cJSON *item, struct batch_item *it)
{
	cJSON *wrapper = NULL;
	cJSON *doc = item;
	if (!cJSON_IsObject(item)) {
		json_error(&it->e, "each item of 'jobs' must be a JSON object");
		return;
	}
	if (!cJSON_GetObjectItem(item, "job") &&
	    cJSON_GetObjectItem(item, "name")) {
		/* {"job": item}, item referenced, not copied */
		wrapper = json_must(cJSON_CreateObject());
		cJSON_AddItemReferenceToObject(wrapper, "job", item);
		doc = wrapper;
	}
	if (decode_submit(doc, &it->s, it->name_buf, sizeof(it->name_buf),
			  &it->e))
		goto out;
	if (strcmp(it->s.kind, JOB_KIND_PERIODIC) == 0) {
		submit_fail(&it->e, 400, API_E_BAD_REQUEST,
			    "a Periodic job is not accepted in a batch: "
			    "submit it through POST /api/v1/jobs");
		goto out;
	}
	check_job(d, &it->s, &it->e);
out:
	cJSON_Delete(wrapper); /* frees the reference, not item */
}

int
api_jobs_batch(struct api_request *req)
{
	struct berthd *d = req->d;
	const char *end = NULL;
	cJSON *doc = json_parse(req->body ? req->body : "", req->body_len,
				&end);
	if (!doc) {
		size_t off = end && req->body ? (size_t)(end - req->body) : 0;
		return api_send_error(req, 500, API_E_JSON,
				      "malformed JSON at byte %zu", off);
	}
	int rc;
	const cJSON *jobs = cJSON_IsObject(doc)
				    ? cJSON_GetObjectItem(doc, "jobs")
				    : NULL;
	if (!cJSON_IsObject(doc)) {
		rc = api_send_error(req, 500, API_E_JSON,
				    "the request body must be a JSON object");
		goto done;
	}
	if (!jobs || cJSON_IsNull(jobs)) {
		rc = api_send_error(req, 400, API_E_BAD_REQUEST,
				    "a batch is {\"jobs\":[...]}: 'jobs' is "
				    "missing");
		goto done;
	}
	if (!cJSON_IsArray(jobs)) {
		rc = api_send_error(req, 500, API_E_JSON,
				    "'jobs' must be a JSON array");
		goto done;
	}
	int n = cJSON_GetArraySize(jobs);
	if (n == 0) {
		rc = api_send_error(req, 400, API_E_BAD_REQUEST,
				    "empty batch is not allowed");
		goto done;
	}
	if (n > SUBMIT_MAX_JOBS) {
		rc = api_send_error(req, 400, API_E_BAD_REQUEST,
				    "a batch holds at most %d jobs, got %d",
				    SUBMIT_MAX_JOBS, n);
		goto done;
	}

	struct batch_item *items = xcalloc((size_t)n, sizeof(*items));
	struct submit_job *sj = xcalloc((size_t)n, sizeof(*sj));
	size_t *of = xcalloc((size_t)n, sizeof(*of)); /* sj index -> item */
	size_t ns = 0;
	int64_t now = util_now();
	int i = 0;
	for (cJSON *item = jobs->child; item; item = item->next, i++) {
		struct batch_item *it = &items[i];
		batch_check(d, item, it);
		if (it->e.status)
			continue;
		new_job_init(&it->nj, &it->s, now);
		it->made = true;
		sj[ns] = (struct submit_job){.stats = &it->nj.st,
					     .msg = &it->nj.m,
					     .run_at = it->nj.run_at};
		of[ns++] = (size_t)i;
	}
	struct berr err;
	berr_clear(&err);
	if (ns && submit_jobs(d->redis, d->tracker, d->queue, sj, ns,
			      &err) < 0) {
		/* nothing was written: the batch as a whole failed */
		rc = api_send_error(req, 500, API_E_LAUNCH, "%s", err.msg);
		goto free_items;
	}
	for (size_t k = 0; k < ns; k++)
		if (sj[k].result != QUEUE_ENQUEUED)
			not_enqueued(&sj[k], items[of[k]].s.name,
				     &items[of[k]].e);
	cJSON *out = json_must(cJSON_CreateObject());
	cJSON *arr = json_must(cJSON_AddArrayToObject(out, "jobs"));
	size_t accepted = 0;
	for (i = 0; i < n; i++) {
		struct batch_item *it = &items[i];
		if (it->e.status) {
			cJSON_AddItemToArray(arr, api_error_json(it->e.code,
								 it->e.details));
		} else {
			cJSON_AddItemToArray(arr, new_job_json(&it->nj));
			accepted++;
		}
	}
	log_debug("batch of %d jobs: %zu enqueued", n, accepted);
	metrics_jobs_submitted(accepted);
	rc = api_send_json(req, 200, out);
free_items:
	for (size_t k = 0; k < ns; k++)
		submit_job_fini(&sj[k]);
	for (i = 0; i < n; i++)
		if (items[i].made)
			job_stats_fini(&items[i].nj.st);
	free(of);
	free(sj);
	free(items);
done:
	cJSON_Delete(doc);
	/* A 1,000-job batch passes through ~4 MiB of small blocks (the
	 * request and answer trees, the pipeline); freed, they stay in the
	 * heap wherever a live block sits above them. Hand the free pages
	 * back (glibc: madvise inside the heap too); ~1 ms per batch. */
	malloc_trim(0);
	return rc;
}

/* --- GET /api/v1/jobs/{id}[?detail=true] ------------------------------- */

/* Members of the retry and dead sets looked at by the detail view. */
#define DETAIL_SEARCH_MAX 100000

/* The job's message found in a sorted set. */
struct set_hit {
	const char *id;
	bool found;
	int64_t score;
	int64_t fails, failed_at;
	char *err;
};

static int
find_member(void *data, const char *raw, size_t len, int64_t score)
{
	struct set_hit *h = data;
	struct job_message m;
	if (!message_parse_job(raw, len, h->id, &m))
		return 0;
	h->found = true;
	h->score = score;
	h->fails = m.fails;
	h->failed_at = m.failed_at;
	h->err = m.err ? xstrdup(m.err) : NULL;
	message_fini(&m);
	return 1;
}

/* Looks for id in set; *partial when the set is larger than what was
 * read and id was not found. 0, or -1 with err. */
static int
find_in_set(struct berthd *d, enum queue_set set, const char *id,
	    struct set_hit *h, bool *partial, struct berr *err)
{
	memset(h, 0, sizeof(*h));
	h->id = id;
	int64_t total = 0;
	if (queue_set_each(d->queue, set, 0, DETAIL_SEARCH_MAX, find_member,
			   h, &total, err) < 0)
		return -1;
	if (!h->found && total > DETAIL_SEARCH_MAX)
		*partial = true;
	return 0;
}

/* The detail object of GET /api/v1/jobs/{id}?detail=true. NULL with err
 * on a Redis error. */
static cJSON *
job_detail(struct berthd *d, const char *id, struct berr *err)
{
	struct set_hit retry, dead;
	bool partial = false;
	if (find_in_set(d, QUEUE_SET_RETRY, id, &retry, &partial, err) < 0)
		return NULL;
	if (find_in_set(d, QUEUE_SET_DEAD, id, &dead, &partial, err) < 0) {
		free(retry.err);
		return NULL;
	}
	char *text = NULL;
	int64_t at = 0;
	if (tracker_get_checkin(d->tracker, id, &text, &at, err) < 0) {
		free(retry.err);
		free(dead.err);
		return NULL;
	}
	/* the retry set's message is the newer one when both exist */
	const struct set_hit *last = retry.found ? &retry
				     : dead.found ? &dead
						  : NULL;
	cJSON *o = json_must(cJSON_CreateObject());
	cJSON_AddNumberToObject(o, "fails", last ? (double)last->fails : 0);
	cJSON_AddStringToObject(o, "last_error",
				last && last->err ? last->err : "");
	cJSON_AddNumberToObject(o, "failed_at",
				last ? (double)last->failed_at : 0);
	cJSON_AddNumberToObject(o, "next_retry_at",
				retry.found ? (double)retry.score : 0);
	cJSON_AddBoolToObject(o, "dead", dead.found);
	cJSON_AddNumberToObject(o, "died_at",
				dead.found ? (double)dead.score : 0);
	cJSON_AddStringToObject(o, "check_in", text ? text : "");
	cJSON_AddNumberToObject(o, "check_in_at", (double)at);
	if (partial)
		cJSON_AddBoolToObject(o, "search_partial", true);
	free(text);
	free(retry.err);
	free(dead.err);
	return o;
}

int
api_job_get(struct api_request *req)
{
	static const char *const params[] = {"detail", NULL};
	int rc = api_query_allowed(req, params);
	if (rc)
		return -rc;
	bool detail = false;
	char dv[16];
	if (api_query_str(req, "detail", dv, sizeof(dv))) {
		if (strcmp(dv, "true") == 0 || strcmp(dv, "1") == 0)
			detail = true;
		else if (strcmp(dv, "false") != 0 && strcmp(dv, "0") != 0)
			return api_send_error(req, 400, API_E_BAD_REQUEST,
					      "detail must be true or false");
	} else if (req->query && mg_get_var(req->query, strlen(req->query),
					    "detail", dv, sizeof(dv)) == -2) {
		return api_send_error(req, 400, API_E_BAD_REQUEST,
				      "detail must be true or false");
	}
	struct berthd *d = req->d;
	const char *id = req->params[0];
	struct job_stats st;
	struct berr err;
	berr_clear(&err);
	memset(&st, 0, sizeof(st));
	rc = tracker_load(d->tracker, id, &st, &err);
	if (rc < 0)
		return api_send_error(req, 500, API_E_GET_STATS, "%s", err.msg);
	if (rc > 0)
		return api_send_error(req, 404, API_E_NOT_FOUND, "%s", id);
	cJSON *j = job_stats_to_json(&st, false);
	job_stats_fini(&st);
	cJSON *o = wrap_job(j);
	if (detail) {
		cJSON *det = job_detail(d, id, &err);
		if (!det) {
			cJSON_Delete(o);
			return api_send_error(req, 500, API_E_GET_STATS, "%s",
					      err.msg);
		}
		cJSON_AddItemToObject(o, "detail", det);
	}
	return api_send_json(req, 200, o);
}

int
api_job_action(struct api_request *req)
{
	struct berthd *d = req->d;
	const char *id = req->params[0];
	cJSON *doc = json_parse(req->body ? req->body : "", req->body_len,
				NULL);
	const cJSON *action = doc ? cJSON_GetObjectItem(doc, "action") : NULL;
	if (!doc || !cJSON_IsObject(doc) ||
	    (action && !cJSON_IsNull(action) && !cJSON_IsString(action))) {
		cJSON_Delete(doc);
		return api_send_error(req, 500, API_E_JSON,
				      "the body must be {\"action\":\"stop\"}");
	}
	const char *a = cJSON_IsString(action) ? action->valuestring : "";
	if (strcmp(a, "stop") != 0) {
		int rc = api_send_error(req, 501, API_E_UNKNOWN_ACTION,
					"command: %.200s", a);
		cJSON_Delete(doc);
		return rc;
	}
	cJSON_Delete(doc);

	struct job_stats st;
	struct berr err;
	berr_clear(&err);
	memset(&st, 0, sizeof(st));
	int rc = tracker_load(d->tracker, id, &st, &err);
	if (rc < 0)
		return api_send_error(req, 500, API_E_STOP, "%s", err.msg);
	/* spec 2.7 step 2: no stats, or a Periodic job: unschedule */
	if (rc > 0)
		return api_periodic_stop(req, id);
	if (st.kind && strcmp(st.kind, JOB_KIND_PERIODIC) == 0) {
		job_stats_fini(&st);
		return api_periodic_stop(req, id);
	}
	if (job_status_final(st.status)) {
		log_warn("stop of job %s ignored: it is already %s", id,
			 st.status);
		job_stats_fini(&st);
		return api_send_empty(req, 204);
	}
	char *current = NULL;
	enum tracker_cas cas = tracker_set_status(d->tracker, &st,
						  JOB_STATUS_STOPPED, &current,
						  &err);
	if (cas == TRACKER_MISMATCH) {
		rc = api_send_error(req, 500, API_E_STOP,
				    "stop: {\"code\":10016,\"message\":"
				    "\"mismatch job status\",\"details\":"
				    "\"current %s, setting to Stopped\"}",
				    current ? current : "");
		free(current);
		job_stats_fini(&st);
		return rc;
	}
	free(current);
	if (cas == TRACKER_REDIS_ERROR) {
		rc = api_send_error(req, 500, API_E_STOP, "stop: %s", err.msg);
		job_stats_fini(&st);
		return rc;
	}
	if (st.kind && strcmp(st.kind, JOB_KIND_SCHEDULED) == 0 &&
	    queue_unschedule(d->queue, st.run_at, id, &err) < 0)
		log_warn("stopped job %s: cannot remove it from the scheduled "
			 "set: %s",
			 id, err.msg);
	log_info("job %s (%s) stopped", id, st.name ? st.name : "");
	job_stats_fini(&st);
	return api_send_empty(req, 204);
}

/* Parses an unsigned query value; false when absent or invalid. */
static bool
query_u32(const struct api_request *req, const char *name, uint32_t *out)
{
	char buf[32];
	if (!req->query ||
	    mg_get_var(req->query, strlen(req->query), name, buf, sizeof(buf)) <
		    0)
		return false;
	int64_t v;
	if (util_parse_i64(buf, 0, UINT32_MAX, &v) < 0)
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool
query_str(const struct api_request *req, const char *name, char *buf,
	  size_t n)
{
	return req->query &&
	       mg_get_var(req->query, strlen(req->query), name, buf, n) >= 0;
}

/* Whether the loaded stats pass the filter (Berth's filters; NULL members
 * match anything). */
static bool
stats_pass(const struct job_stats *st, const struct tracker_filter *f)
{
	if (f->status && strcmp(st->status ? st->status : "", f->status))
		return false;
	if (f->type && strcmp(st->name ? st->name : "", f->type))
		return false;
	if (f->kind && strcmp(st->kind ? st->kind : "", f->kind))
		return false;
	return true;
}

/* Appends {"job":{stats}} of id (Harbor's list element: its Stats
 * serialised, spec 2.8) when it loads and passes f (may be NULL). */
static void
append_stats(struct berthd *d, cJSON *arr, const char *id,
	     const struct tracker_filter *f)
{
	struct job_stats st;
	struct berr err;
	berr_clear(&err);
	memset(&st, 0, sizeof(st));
	if (tracker_load(d->tracker, id, &st, &err) != 0)
		return; /* skipped, as Go does */
	if (!f || stats_pass(&st, f))
		cJSON_AddItemToArray(arr,
				     wrap_job(job_stats_to_json(&st, false)));
	job_stats_fini(&st);
}

struct scheduled_list {
	struct berthd *d;
	cJSON *arr;
	const struct tracker_filter *f;
};

/* One member of the scheduled zset: its job's stats (an execution of a
 * periodic policy is <policy>@<run_at>). */
static void
append_scheduled(void *data, const char *raw, size_t len, const char *score)
{
	struct scheduled_list *sl = data;
	struct job_message m;
	struct berr perr;
	if (message_parse(raw, len, &m, &perr) < 0)
		return;
	char *jid;
	if (m.args &&
	    cJSON_GetObjectItemCaseSensitive(m.args, "_job_kind_periodic_"))
		jid = xasprintf("%s@%s", m.id, score);
	else
		jid = xstrdup(m.id);
	append_stats(sl->d, sl->arr, jid, sl->f);
	free(jid);
	message_fini(&m);
}

static int
list_error(struct api_request *req, const char *extras, const char *why)
{
	/* spec 2.8: message carries the query extras as JSON */
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "code", API_E_GET_JOBS);
	char *msg = xasprintf("failed to get scheduled jobs, q=%s", extras);
	cJSON_AddStringToObject(o, "message", msg);
	cJSON_AddStringToObject(o, "details", why);
	free(msg);
	/* not api_send_error: the message itself carries the query */
	return api_send_json_headers(req, 500, NULL, o);
}

/* Keys per SCAN step at most (page_size above it is taken as this), and
 * the steps one filtered request makes at most. */
#define LIST_COUNT_MAX 1000
#define LIST_FILTER_STEPS 10

/* A filter value that must be one of words (NULL-terminated): NULL when
 * absent or empty, else 400 sent (*rc negative). */
static const char *
list_filter(struct api_request *req, const char *name, char *buf, size_t n,
	    const char *const *words, int *rc)
{
	*rc = 0;
	if (!query_str(req, name, buf, n) || !*buf)
		return NULL;
	for (size_t i = 0; words && words[i]; i++)
		if (strcmp(words[i], buf) == 0)
			return buf;
	if (!words)
		return buf;
	char list[200] = "";
	for (size_t i = 0; words[i]; i++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "",
			 words[i]);
	}
	*rc = -api_send_error(req, 400, API_E_BAD_REQUEST,
			      "%s must be one of %s, got '%.100s'", name, list,
			      buf);
	return NULL;
}

int
api_jobs_list(struct api_request *req)
{
	static const char *const params[] = {
		"page_number", "page", "page_size", "kind", "cursor",
		"non_dead_only", "status", "type", NULL};
	static const char *const statuses[] = {
		JOB_STATUS_PENDING, JOB_STATUS_SCHEDULED, JOB_STATUS_RUNNING,
		JOB_STATUS_STOPPED, JOB_STATUS_ERROR, JOB_STATUS_SUCCESS,
		NULL};
	static const char *const kinds[] = {JOB_KIND_GENERIC,
					    JOB_KIND_SCHEDULED,
					    JOB_KIND_PERIODIC, NULL};
	int rc = api_query_allowed(req, params);
	if (rc)
		return -rc;
	struct berthd *d = req->d;
	uint32_t page = 1, size = 25, v;
	if (query_u32(req, "page_number", &v) && v > 1)
		page = v;
	else if (query_u32(req, "page", &v) && v > 1)
		page = v;
	if (query_u32(req, "page_size", &v) && v > 0)
		size = v;
	if (size > LIST_COUNT_MAX)
		size = LIST_COUNT_MAX;
	char kind[64] = "", status[64], type[256], cursor_s[32] = "0";
	struct tracker_filter f = {0};
	const char *k = list_filter(req, "kind", kind, sizeof(kind), kinds,
				    &rc);
	if (rc)
		return -rc;
	f.status = list_filter(req, "status", status, sizeof(status),
			       statuses, &rc);
	if (rc)
		return -rc;
	if (query_str(req, "type", type, sizeof(type))) {
		if (!*type)
			return api_send_error(req, 400, API_E_BAD_REQUEST,
					      "type must not be empty");
		f.type = type;
	}
	bool scheduled = k && strcmp(k, JOB_KIND_SCHEDULED) == 0;
	if (k && !scheduled)
		f.kind = k;
	bool filtered = f.status || f.type || f.kind;
	int64_t cursor = 0;
	if (query_str(req, "cursor", cursor_s, sizeof(cursor_s)) &&
	    util_parse_i64(cursor_s, INT32_MIN, INT32_MAX, &cursor) < 0)
		cursor = 0;
	struct berr err;
	berr_clear(&err);
	cJSON *arr = cJSON_CreateArray();
	char hdr[96];

	if (scheduled) {
		struct scheduled_list sl = {.d = d, .arr = arr,
					    .f = filtered ? &f : NULL};
		int64_t total = 0;
		if (queue_scheduled_page(d->queue,
					 (uint64_t)(page - 1) *
						 SCHEDULED_PAGE_SIZE,
					 SCHEDULED_PAGE_SIZE, append_scheduled,
					 &sl, &total, &err) < 0) {
			cJSON_Delete(arr);
			return list_error(req, "{\"Kind\":\"Scheduled\"}",
					  err.msg[0] ? err.msg
						     : "unexpected reply");
		}
		snprintf(hdr, sizeof(hdr), "Total-Count: %lld\r\n",
			 (long long)total);
		return api_send_json_headers(req, 200, hdr, arr);
	}

	char cur[24];
	snprintf(cur, sizeof(cur), "%lld", (long long)cursor);
	struct tracker_page pg;
	rc = filtered ? tracker_list_filtered(d->tracker, cur, size,
					      LIST_FILTER_STEPS, size, &f,
					      &pg, &err)
		      : tracker_list(d->tracker, cur, size, &pg, &err);
	if (rc < 0) {
		char extras[128];
		snprintf(extras, sizeof(extras),
			 "{\"Cursor\":%lld,\"Kind\":\"%s\"}", (long long)cursor,
			 kind);
		cJSON_Delete(arr);
		return list_error(req, extras,
				  err.msg[0] ? err.msg : "unexpected reply");
	}
	for (size_t i = 0; i < pg.n; i++)
		append_stats(d, arr, pg.ids[i], filtered ? &f : NULL);
	snprintf(hdr, sizeof(hdr), "Next-Cursor: %s\r\n", pg.cursor);
	tracker_page_fini(&pg);
	return api_send_json_headers(req, 200, hdr, arr);
}

/* api_periodic.c - the periodic parts of the job routes (spec 2.5, 2.7,
 * 2.9):
 *   POST /api/v1/jobs                  kind Periodic: create a policy
 *   POST /api/v1/jobs/{id}             stop of a policy: unschedule
 *   GET  /api/v1/jobs/{id}/executions  the executions of a policy
 * The first two are reached from api_jobs.c once it has decoded the
 * request; the scheduling itself lives in period.c. */
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "common/json.h"
#include "logs/log.h"
#include "periodic/cron.h"
#include "periodic/period.h"
#include "store/tracker.h"

static cJSON *
wrap_job(cJSON *stats)
{
	cJSON *o = json_must(cJSON_CreateObject());
	cJSON_AddItemToObject(o, "job", stats);
	return o;
}

int
api_periodic_submit(struct api_request *req, const char *name,
		    const char *cron_spec, const char *hook,
		    const cJSON *params)
{
	struct berthd *d = req->d;
	struct cron_schedule sched;
	struct berr err;
	berr_clear(&err);
	if (cron_parse(cron_spec, &sched, &err) < 0)
		return api_send_error(req, 400, API_E_BAD_REQUEST,
				      "'cron_spec' is not correctly set: "
				      "%.200s: %s",
				      cron_spec, err.msg);
	struct job_type *t = plugin_acquire(d->plugins, name);
	if (!t)
		return api_send_error(req, 400, API_E_BAD_REQUEST,
				      "job with name '%.200s' is unknown", name);
	char msg[1024];
	int invalid = plugin_validate(t, params, msg, sizeof(msg));
	plugin_release(d->plugins, t);
	if (invalid)
		return api_send_error(req, 400, API_E_BAD_REQUEST, "%s", msg);
	if (!d->period)
		return api_send_error(req, 501, API_E_LAUNCH,
				      "the periodic scheduler is not running");

	struct job_stats st;
	if (period_create_policy(d->period, name, cron_spec, params, hook, &st,
				 &err) < 0)
		return api_send_error(req, 500, API_E_LAUNCH, "%s", err.msg);
	st.unique = false; /* ignored for Periodic: always false */
	cJSON *j = job_stats_to_json(&st, false);
	cJSON_DeleteItemFromObjectCaseSensitive(j, "revision");
	job_stats_fini(&st);
	return api_send_json(req, 202, wrap_job(j));
}

int
api_periodic_stop(struct api_request *req, const char *id)
{
	struct berthd *d = req->d;
	if (!d->period)
		return api_send_error(req, 404, API_E_NOT_FOUND, "%s", id);
	struct berr err;
	berr_clear(&err);
	int rc = period_unschedule(d->period, id, &err);
	if (rc < 0)
		return api_send_error(req, 500, API_E_STOP, "%s", err.msg);
	if (rc > 0)
		return api_send_error(req, 404, API_E_NOT_FOUND, "%s", id);
	return api_send_empty(req, 204);
}

/* Go's strconv.ParseBool; -1 when s is not one of its words. */
static int
parse_go_bool(const char *s)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true",
					  "True"};
	static const char *const no[] = {"0", "f", "F", "FALSE", "false",
					 "False"};
	for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
		if (strcmp(s, yes[i]) == 0)
			return 1;
		if (strcmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

/* An unsigned 32-bit query value (spec 2.8); false when absent/invalid. */
static bool
query_u32(const struct api_request *req, const char *name, uint32_t *out)
{
	char buf[32];
	int64_t v;
	if (!req->query ||
	    mg_get_var(req->query, strlen(req->query), name, buf,
		       sizeof(buf)) < 0 ||
	    util_parse_i64(buf, 0, UINT32_MAX, &v) < 0)
		return false;
	*out = (uint32_t)v;
	return true;
}

int
api_job_executions(struct api_request *req)
{
	struct berthd *d = req->d;
	const char *id = req->params[0];
	struct job_stats st;
	struct berr err;
	berr_clear(&err);
	memset(&st, 0, sizeof(st));
	int rc = tracker_load(d->tracker, id, &st, &err);
	if (rc < 0)
		return api_send_error(req, 500, API_E_EXECUTIONS, "%s", err.msg);
	if (rc > 0)
		return api_send_error(req, 404, API_E_NOT_FOUND, "%s", id);
	if (!st.kind || strcmp(st.kind, JOB_KIND_PERIODIC) != 0) {
		rc = api_send_error(req, 500, API_E_EXECUTIONS,
				    "only periodic job has executions: %s kind "
				    "is received",
				    st.kind ? st.kind : "");
		job_stats_fini(&st);
		return rc;
	}
	job_stats_fini(&st);
	if (!d->period)
		return api_send_error(req, 500, API_E_EXECUTIONS,
				      "the periodic scheduler is not running");

	uint32_t page = 1, size = 25, v;
	if (query_u32(req, "page_number", &v) && v > 1)
		page = v;
	if (query_u32(req, "page_size", &v) && v > 0)
		size = v;
	int non_dead = -1;
	char nd[16];
	if (req->query && mg_get_var(req->query, strlen(req->query),
				     "non_dead_only", nd, sizeof(nd)) >= 0)
		non_dead = parse_go_bool(nd);

	char **ids = NULL;
	size_t n = 0;
	int64_t total = 0;
	if (period_list_executions(d->period, id, page, size, non_dead, &ids,
				   &n, &total, &err) < 0)
		return api_send_error(req, 500, API_E_EXECUTIONS, "%s", err.msg);
	cJSON *arr = json_must(cJSON_CreateArray());
	for (size_t i = 0; i < n; i++) {
		struct job_stats es;
		struct berr lerr;
		memset(&es, 0, sizeof(es));
		berr_clear(&lerr);
		if (tracker_load(d->tracker, ids[i], &es, &lerr) != 0)
			continue; /* stats expire; the zset keeps the id */
		/* {"job":{...}} as Go serialises its Stats (spec 2.9) */
		cJSON_AddItemToArray(arr,
				     wrap_job(job_stats_to_json(&es, false)));
		job_stats_fini(&es);
	}
	period_ids_free(ids);
	if (cJSON_GetArraySize(arr) == 0) {
		/* quirk Q4: Go answers null, not [] */
		cJSON_Delete(arr);
		arr = json_must(cJSON_CreateNull());
	}
	char hdr[64];
	snprintf(hdr, sizeof(hdr), "Total-Count: %lld\r\n", (long long)total);
	return api_send_json_headers(req, 200, hdr, arr);
}

/* ---- GET /api/v1/periodic (Berth) --------------------------------------- */

#define NEXT_RUNS 3

static int
policy_json(const struct period_policy *p, void *data)
{
	cJSON *arr = data;
	cJSON *o = json_must(cJSON_CreateObject());
	cJSON_AddStringToObject(o, "id", p->id ? p->id : "");
	cJSON_AddStringToObject(o, "job_name", p->job_name ? p->job_name : "");
	cJSON_AddStringToObject(o, "cron_spec",
				p->cron_spec ? p->cron_spec : "");
	cJSON_AddNumberToObject(o, "numeric_id", (double)p->numeric_id);
	cJSON_AddStringToObject(o, "web_hook_url",
				p->web_hook_url ? p->web_hook_url : "");
	cJSON_AddItemToObject(o, "job_params",
			      p->job_params
				      ? json_must(cJSON_Duplicate(p->job_params,
								  true))
				      : json_must(cJSON_CreateNull()));
	struct cron_schedule sched;
	struct berr err;
	berr_clear(&err);
	cJSON *next = json_must(cJSON_CreateArray());
	if (cron_parse(p->cron_spec ? p->cron_spec : "", &sched, &err) < 0) {
		cJSON_AddStringToObject(o, "time_zone", "");
		cJSON_AddStringToObject(o, "error", err.msg);
	} else {
		cJSON_AddStringToObject(o, "time_zone",
					cron_zone_name(sched.zone));
		int64_t t = util_now();
		for (int i = 0; i < NEXT_RUNS; i++) {
			t = cron_next(&sched, t);
			if (t == 0)
				break;
			cJSON_AddItemToArray(
				next, json_must(cJSON_CreateNumber((double)t)));
		}
	}
	cJSON_AddItemToObject(o, "next_runs", next);
	cJSON_AddItemToArray(arr, o);
	return 0;
}

int
api_periodic_get(struct api_request *req)
{
	int rc = api_query_allowed(req, (const char *const[]){NULL});
	if (rc)
		return -rc;
	struct berthd *d = req->d;
	cJSON *o = json_must(cJSON_CreateObject());
	cJSON *arr = json_must(cJSON_AddArrayToObject(o, "policies"));
	struct berr err;
	berr_clear(&err);
	if (d->period && period_policies_each(d->period, policy_json, arr,
					      &err) < 0) {
		cJSON_Delete(o);
		return api_store_failed(req, &err);
	}
	return api_send_json(req, 200, o);
}

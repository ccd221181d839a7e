/* api_metrics.c - GET /api/v1/metrics (Berth): the recorded metric values
 * in the Prometheus text format on the API port, authenticated, for the
 * dashboard's overview totals; GET /api/v1/metrics/history: the
 * per-minute figures of the last hour, JSON, for its chart (see
 * api_ui.h). */
#include <stdlib.h>
#include <string.h>

#include "api/api_ui.h"
#include "api/http.h"
#include "common/http_reply.h"
#include "common/json.h"
#include "metrics/metrics.h"
#include "metrics/metrics_history.h"

#define HISTORY_MINUTES_DEFAULT 15

int
api_metrics_get(struct api_request *req)
{
	const struct berth_config *cfg = req->d->cfg;
	char *prefix = NULL;
	struct berr err;
	berr_clear(&err);
	/* refused at start-up only when metric.enabled */
	if (metrics_prefix_make(cfg->metric_namespace, cfg->metric_subsystem,
				&prefix, &err) < 0)
		return api_send_error(req, 500, API_E_INTERNAL, "%s",
				      err.msg);
	struct metrics_scrape sc = {.prefix = prefix};
	char *body = metrics_render(&sc);
	http_reply_send(req->conn, 200,
			"Content-Type: text/plain; version=0.0.4; "
			"charset=utf-8\r\nCache-Control: no-store\r\n",
			body, strlen(body));
	free(body);
	free(prefix);
	return 200;
}

int
api_metrics_history_get(struct api_request *req)
{
	static const char *const allowed[] = {"minutes", NULL};
	int rc = api_query_allowed(req, allowed);
	if (rc)
		return -rc;
	int64_t minutes = HISTORY_MINUTES_DEFAULT;
	if ((rc = api_query_int(req, "minutes", 1, METRICS_HISTORY_MINUTES,
				&minutes)) < 0)
		return -rc;
	if (!req->d->history)
		return api_send_error(req, 500, API_E_INTERNAL,
				      "the metrics history is not running");
	struct metrics_bucket b[METRICS_HISTORY_MINUTES];
	int64_t now = 0;
	size_t n = metrics_history_read_now(req->d->history, (size_t)minutes,
					    b, &now);
	cJSON *o = json_must(cJSON_CreateObject());
	cJSON_AddNumberToObject(o, "interval_seconds", 60);
	cJSON_AddNumberToObject(o, "now", (double)now);
	cJSON *arr = json_must(cJSON_AddArrayToObject(o, "buckets"));
	for (size_t i = 0; i < n; i++) {
		cJSON *e = json_must(cJSON_CreateObject());
		cJSON_AddNumberToObject(e, "t", (double)b[i].t);
		cJSON_AddNumberToObject(e, "submitted",
					(double)b[i].n.submitted);
		cJSON_AddNumberToObject(e, "started", (double)b[i].n.started);
		cJSON_AddNumberToObject(e, "success", (double)b[i].n.success);
		cJSON_AddNumberToObject(e, "error", (double)b[i].n.error);
		cJSON_AddNumberToObject(e, "stopped", (double)b[i].n.stopped);
		cJSON_AddItemToArray(arr, e);
	}
	return api_send_json_headers(req, 200, "Cache-Control: no-store\r\n",
				     o);
}

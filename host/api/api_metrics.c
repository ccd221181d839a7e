/* api_metrics.c - GET /api/v1/metrics (Berth): the recorded metric values
 * in the Prometheus text format on the API port, authenticated, for the
 * dashboard's overview chart (see api_ui.h). */
#include <stdlib.h>
#include <string.h>

#include "api/api_ui.h"
#include "api/http.h"
#include "common/http_reply.h"
#include "metrics/metrics.h"

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

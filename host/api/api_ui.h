/* api_ui.h - the web dashboard (/ui/) and the data routes it draws its
 * totals and chart from (GET /api/v1/metrics, /api/v1/metrics/history).
 *
 * The dashboard's files (host/api/ui/: HTML, CSS, JavaScript) are embedded
 * into the binary at build time: host/api/ui/embed.cmake turns each into
 * a byte array of ui_assets.c in the build tree, with its content type and
 * an ETag (the first 16 hex digits of its SHA-256). */
#ifndef BERTH_API_UI_H
#define BERTH_API_UI_H

#include <stddef.h>

struct mg_context;
struct api_request;

/* One embedded file, named as under /ui/ ("index.html"). */
struct ui_asset {
	const char *name;
	const char *content_type;
	const unsigned char *data;
	size_t len;
	const char *etag; /* with its quotes: "\"0123456789abcdef\"" */
};

/* Generated (ui_assets.c). */
extern const struct ui_asset ui_assets[];
extern const size_t ui_assets_count;

/* The embedded file of that name, or NULL. */
const struct ui_asset *ui_asset_find(const char *name);

/* Serves the dashboard at /ui and /ui/... on the REST listener, as its own
 * civetweb handler: no authentication (a static shell; every API call
 * the page makes carries the secret), GET and HEAD only, ETag and
 * If-None-Match, Cache-Control: no-cache, a strict
 * Content-Security-Policy (scripts, styles and connections from the
 * same origin only, no inline script or style). */
void api_ui_register(struct mg_context *ctx);

/* GET /api/v1/metrics (Berth, authenticated as every route): the values
 * the daemon records for its metrics listener (task totals by type and
 * status, process-time summaries, running jobs, retries, hooks, reaper,
 * Redis), in the same Prometheus text format, served on the API port so
 * the dashboard reaches them under its Content-Security-Policy and
 * whether or not metric.enabled. Without the info gauge and the queue
 * families (GET /api/v1/queues has those). */
int api_metrics_get(struct api_request *req);
/* GET /api/v1/metrics/history?minutes=N (Berth): this daemon's last N
 * minutes (1..60, default 15) from its per-minute history
 * (metrics/metrics_history.h), JSON, oldest first, the current partial
 * minute last: {"interval_seconds":60,"now":<unix>,"buckets":[{"t",
 * "submitted","started","success","error","stopped"},...]}. Any other
 * query parameter or a bad minutes: 400, code 10013. */
int api_metrics_history_get(struct api_request *req);

#endif

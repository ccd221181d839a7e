/* api_plugins.c - Berth extension routes:
 *   GET  /api/v1/plugins         loaded job plugins and refused ones
 *   POST /api/v1/plugins/reload  re-read the manifest (like SIGHUP) */
#include "api/http.h"
#include "logs/log.h"

int
api_plugins_get(struct api_request *req)
{
	return api_send_json(req, 200,
			     plugin_registry_describe(req->d->plugins));
}

int
api_plugins_reload(struct api_request *req)
{
	struct berr err;
	berr_clear(&err);
	log_info("plugin reload requested over REST");
	if (berthd_reload_plugins(req->d, &err) < 0) {
		char buf[BERR_MSG_MAX + 600];
		return api_send_error(req, 500, API_E_INTERNAL, "%s",
				      berr_str(&err, buf, sizeof(buf)));
	}
	return api_send_json(req, 200,
			     plugin_registry_describe(req->d->plugins));
}

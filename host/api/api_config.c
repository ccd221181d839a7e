/* api_config.c - GET /api/v1/config (spec 2.12): the Redis settings core's
 * dashboard uses to open its own connection. Keys are Go field names. */
#include "api/http.h"

int
api_config_get(struct api_request *req)
{
	struct berth_config *cfg = req->d->cfg;
	if (!req->d->redis_url_public || !cfg->namespace_)
		return api_send_error(req, 500, API_E_JSON, "no configuration");
	cJSON *o = cJSON_CreateObject();
	cJSON *p = cJSON_AddObjectToObject(o, "redis_pool_config");
	cJSON_AddStringToObject(p, "RedisURL", req->d->redis_url_public);
	cJSON_AddStringToObject(p, "Namespace", cfg->namespace_);
	cJSON_AddNumberToObject(p, "IdleTimeoutSecond",
				(double)cfg->idle_timeout_second);
	return api_send_json(req, 200, o);
}

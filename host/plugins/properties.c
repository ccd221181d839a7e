/* properties.c - the context properties of a job type; see properties.h. */
#include "plugins/properties.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/json.h"
#include "common/util.h"
#include "config/config.h"

/* Harbor's configuration names whose value Harbor itself takes from these
 * variables (spec 11.4); Berth does not fetch core's configuration. */
static const struct {
	const char *name;
	const char *env;
} env_props[] = {
	{"core_url", "CORE_URL"},
	{"registry_url", "REGISTRY_URL"},
	{"registry_controller_url", "REGISTRY_CONTROLLER_URL"},
};

static void
put(cJSON *o, const char *name, const char *value)
{
	if (str_empty(value) || cJSON_GetObjectItemCaseSensitive(o, name))
		return;
	json_must(cJSON_AddStringToObject(o, name, value));
}

cJSON *
props_from_config(const struct berth_config *cfg)
{
	cJSON *o = json_must(cJSON_CreateObject());
	if (!cfg)
		return o;
	put(o, "berth.data_dir", cfg->data_dir);
	put(o, "berth.namespace", cfg->namespace_);
	char workers[32];
	snprintf(workers, sizeof(workers), "%d",
		 cfg->workers > 0 ? cfg->workers : 10);
	put(o, "berth.workers", workers);
	return o;
}

/* settings.properties into o; -1 with *reason when malformed. */
static int
from_settings(cJSON *o, const cJSON *settings, char **reason)
{
	const cJSON *p = cJSON_IsObject(settings)
				 ? cJSON_GetObjectItemCaseSensitive(settings,
								    "properties")
				 : NULL;
	if (!p || cJSON_IsNull(p))
		return 0;
	if (!cJSON_IsObject(p)) {
		*reason = xasprintf("settings.properties is not a mapping; fix: "
				    "write it as `properties: {name: value}`");
		return -1;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, p)
	{
		if (cJSON_IsString(it)) {
			put(o, it->string, it->valuestring);
			continue;
		}
		if (!cJSON_IsNumber(it) && !cJSON_IsBool(it)) {
			*reason = xasprintf("settings.properties.%s is not a "
					    "string, number or boolean; fix: "
					    "quote it as a string",
					    it->string);
			return -1;
		}
		char *text = cJSON_PrintUnformatted(it);
		if (!text) {
			fprintf(stderr, "berthd: out of memory\n");
			abort();
		}
		put(o, it->string, text);
		cJSON_free(text);
	}
	return 0;
}

cJSON *
props_for_type(const cJSON *settings, const cJSON *service, char **reason)
{
	cJSON *o = json_must(cJSON_CreateObject());
	if (from_settings(o, settings, reason) != 0) {
		cJSON_Delete(o);
		return NULL;
	}
	for (size_t i = 0; i < ARRAY_LEN(env_props); i++)
		put(o, env_props[i].name, getenv(env_props[i].env));
	const cJSON *it;
	if (cJSON_IsObject(service)) {
		cJSON_ArrayForEach(it, service)
		{
			if (cJSON_IsString(it))
				put(o, it->string, it->valuestring);
		}
	}
	return o;
}

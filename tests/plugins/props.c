/* props: reads context properties, for the unit and integration tests.
 *   init: logs "init core_url=<v>" (properties work in every callback).
 *   run:  the parameter `names` (an array of strings, default the
 *         documented names) is looked up; the job log gets one line
 *         "property <name>=<value>" per name ("<name> unset" when it has
 *         none), and the check-in is "props ok". */
#include "testplug.h"

#include <stdio.h>
#include <string.h>

static const char *const default_names[] = {
	"core_url",       "registry_url",    "registry_controller_url",
	"berth.data_dir", "berth.namespace", "berth.workers",
};

static void
report(struct berth_job_ctx *ctx, const char *name)
{
	const char *v = berth_property(ctx, name);
	if (v)
		berth_log_info(ctx, "property %s=%s", name, v);
	else
		berth_log_info(ctx, "property %s unset", name);
}

static int
props_init(struct berth_job_ctx *ctx, void **type_state)
{
	(void)type_state;
	const char *v = berth_property(ctx, "core_url");
	berth_log_info(ctx, "init core_url=%s", v ? v : "(unset)");
	return 0;
}

static enum berth_run_result
props_run(struct berth_job_ctx *ctx, const char *params, char *err,
	  size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	if (berth_param_type(ctx, "names") == BERTH_JSON_ARRAY) {
		/* ["a","b"]: walk the JSON text, names have no quotes in them */
		const char *p = berth_param_json(ctx, "names");
		char name[128];
		while (p && (p = strchr(p, '"')) != NULL) {
			const char *q = strchr(p + 1, '"');
			if (!q)
				break;
			snprintf(name, sizeof(name), "%.*s", (int)(q - p - 1),
				 p + 1);
			report(ctx, name);
			p = q + 1;
		}
	} else {
		for (size_t i = 0; i < sizeof(default_names) /
					       sizeof(default_names[0]);
		     i++)
			report(ctx, default_names[i]);
	}
	berth_checkin(ctx, "props ok");
	return BERTH_RUN_SUCCESS;
}

static const struct berth_job_type t = {
	BERTH_JOB_TYPE_INIT,
	.name = "PROPS",
	.init = props_init,
	.run = props_run,
};
BERTH_PLUGIN_MAGIC("props", "0");
BERTH_PLUGIN_JOB_TYPES(&t);

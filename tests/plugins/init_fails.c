/* init_fails: init() logs why and refuses. */
#include "testplug.h"

static int
fail_init(struct berth_job_ctx *ctx, void **type_state)
{
	(void)type_state;
	berth_log_error(ctx, "cannot reach the frobnicator at %s",
			berth_setting_string(ctx, "frobnicator"));
	return 7;
}

static const struct berth_job_type t = {
	BERTH_JOB_TYPE_INIT,
	.name = "INIT_FAILS",
	.init = fail_init,
	.run = testplug_run,
};
BERTH_PLUGIN_MAGIC("init_fails", "0");
BERTH_PLUGIN_JOB_TYPES(&t);

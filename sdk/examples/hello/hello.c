/* hello.c - a complete Berth job plugin: job type HELLO greets `who`. */
#include <berth/plugin.h>
#include <stdio.h>

static int
hello_validate(struct berth_job_ctx *ctx, const char *params, char *err,
	       size_t errlen)
{
	(void)params;
	if (berth_param_string(ctx, "who"))
		return 0;
	snprintf(err, errlen, "parameter 'who' (a string) is required");
	return -1;
}

static enum berth_run_result
hello_run(struct berth_job_ctx *ctx, const char *params, char *err,
	  size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	berth_log_info(ctx, "hello, %s", berth_param_string(ctx, "who"));
	berth_checkin(ctx, "greeted");
	if (berth_stop_requested(ctx))
		return BERTH_RUN_STOPPED;
	return BERTH_RUN_SUCCESS;
}

static const struct berth_job_type hello = {
	BERTH_JOB_TYPE_INIT,
	.name = "HELLO",
	.description = "Logs a greeting",
	.validate = hello_validate,
	.run = hello_run,
};

BERTH_PLUGIN_MAGIC("hello", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&hello);

/* newer_minor: built against a NEWER minor of the SDK than the host's (the
 * generated header of tests/plugins/CMakeLists.txt: minor + 1, a host call
 * future_call, a job-type field future_callback, a limit future_limit).
 * It must load and degrade: it uses what the host has and checks the rest
 * with BERTH_HOST_HAS / BERTH_LIMITS_HAS, as the SDK tells authors to.
 *   init: sets max_fails 6 and concurrency 3 through the limits (a 1.1
 *         call, present), future_limit only if the host has it.
 *   run:  logs "future_call: <what it gave>" or "future_call: absent,
 *         degraded", and whether future_limit existed at init. */
#include "testplug.h"

#include <stdio.h>

#if BERTH_ABI_MINOR < 2
#error "newer_minor must be built against the generated newer header"
#endif

static bool had_future_limit; /* read-only after init */

static int
newer_init(struct berth_job_ctx *ctx, void **type_state)
{
	(void)type_state;
	if (!BERTH_HOST_HAS(ctx->host, limits)) {
		berth_log_error(ctx, "host without limits()");
		return -1;
	}
	struct berth_type_limits *l = berth_limits(ctx);
	l->max_fails = 6;
	l->max_concurrency = 3;
	had_future_limit = BERTH_LIMITS_HAS(l, future_limit);
	if (had_future_limit)
		l->future_limit = 1;
	return 0;
}

static int
newer_future(void *type_state)
{
	(void)type_state;
	return 1;
}

static enum berth_run_result
newer_run(struct berth_job_ctx *ctx, const char *params, char *err,
	  size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	if (BERTH_HOST_HAS(ctx->host, future_call))
		berth_log_info(ctx, "future_call: %s",
			       ctx->host->future_call(ctx));
	else
		berth_log_info(ctx, "future_call: absent, degraded");
	berth_log_info(ctx, "future_limit at init: %s",
		       had_future_limit ? "present" : "absent");
	return BERTH_RUN_SUCCESS;
}

static const struct berth_job_type t = {
	BERTH_JOB_TYPE_INIT,
	.name = "NEWER_MINOR",
	.init = newer_init,
	.run = newer_run,
	.future_callback = newer_future,
};
BERTH_PLUGIN_MAGIC("newer_minor", "0");
BERTH_PLUGIN_JOB_TYPES(&t);

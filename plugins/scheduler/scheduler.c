/* scheduler.c - SCHEDULER, Harbor's generic cron trigger, and its legacy
 * aliases IMAGE_REPLICATE, IMAGE_GC and IMAGE_SCAN_ALL (spec 13.1, 13.2,
 * Appendix B): four job-type tables over the same code.
 *
 * Core submits SCHEDULER as a Periodic job without parameters and with a
 * status hook; every execution checks in "checkin" and succeeds. Core runs
 * the schedule's callback when the check-in reaches the hook (deduplicated
 * by check_in_at), so the check-in is the whole job.
 *
 * validate: none (Harbor accepts anything).
 * run:      stop requested -> Stopped; check in "checkin"; if the host
 *           could not record the check-in the run fails (and is retried,
 *           max_fails 3), since core would otherwise never fire.
 * limits:   max_fails 3, max_concurrency 0, should_retry true,
 *           priority 1000 (all four names). */
#include <berth/plugin.h>

#include <stdio.h>

#define SCHEDULER_CHECKIN "checkin"

static enum berth_run_result
scheduler_run(struct berth_job_ctx *ctx, const char *params_json, char *err,
	      size_t errlen)
{
	(void)params_json;
	if (berth_stop_requested(ctx)) {
		berth_log_info(ctx, "stopped before the check-in");
		return BERTH_RUN_STOPPED;
	}
	berth_log_info(ctx, "Scheduler triggered");
	if (berth_checkin(ctx, SCHEDULER_CHECKIN) != 0) {
		snprintf(err, errlen, "failed to check in '%s'",
			 SCHEDULER_CHECKIN);
		return BERTH_RUN_ERROR;
	}
	return BERTH_RUN_SUCCESS;
}

static bool
scheduler_should_retry(void *type_state)
{
	(void)type_state;
	return true;
}

#define SCHEDULER_TYPE(type_name, desc)                                      \
	{                                                                    \
		BERTH_JOB_TYPE_INIT,                                         \
		.name = (type_name),                                         \
		.description = (desc),                                       \
		.max_fails = 3,                                              \
		.max_concurrency = 0,                                        \
		.priority = 1000,                                            \
		.should_retry = scheduler_should_retry,                      \
		.run = scheduler_run,                                        \
	}

static const struct berth_job_type scheduler_type = SCHEDULER_TYPE(
	"SCHEDULER", "Harbor's cron trigger: checks in \"checkin\" and "
		     "succeeds");
static const struct berth_job_type image_replicate_type = SCHEDULER_TYPE(
	"IMAGE_REPLICATE", "Legacy alias of SCHEDULER (pre-2.2 schedules)");
static const struct berth_job_type image_gc_type = SCHEDULER_TYPE(
	"IMAGE_GC", "Legacy alias of SCHEDULER (pre-2.2 schedules)");
static const struct berth_job_type image_scan_all_type = SCHEDULER_TYPE(
	"IMAGE_SCAN_ALL", "Legacy alias of SCHEDULER (pre-2.2 schedules)");

BERTH_PLUGIN_MAGIC("scheduler", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&scheduler_type, &image_replicate_type, &image_gc_type,
		       &image_scan_all_type);

/* corejobs: test stand-ins for the two job types whose check-in results
 * Harbor core stores (spec 7.2, 13.2), so the core-flow test
 * (tests/integration/test_core_flows.py) can play core's side end to end.
 * They do no real work; they reproduce what core sees on the wire.
 *
 *   GARBAGE_COLLECTION  params: ms (number, optional) of "work" in 10 ms
 *                       steps, honouring stop. Checks in
 *                       {"freed_space":<bytes>,"purged_blobs":<n>,
 *                        "purged_manifests":<n>} at the end and succeeds.
 *   RETENTION           params: repository (string), liteMeta (string),
 *                       dryRun (bool), all required (validated at submit,
 *                       as Harbor does). Checks in
 *                       {"total":n,"retained":n,"dry_run":bool,
 *                        "deleted":[...]} and succeeds.
 * Limits per spec 13.1 (GC: 1/1/no retry; RETENTION: 3/0/no retry). */
#include <berth/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static bool
never(void *type_state)
{
	(void)type_state;
	return false;
}

static enum berth_run_result
gc_run(struct berth_job_ctx *ctx, const char *params, char *err,
       size_t errlen)
{
	(void)params;
	double ms = 0;
	berth_param_number(ctx, "ms", &ms);
	for (long done = 0; done < (long)ms; done += 10) {
		if (berth_stop_requested(ctx)) {
			berth_log_info(ctx, "GC stopped after %ld ms", done);
			return BERTH_RUN_STOPPED;
		}
		struct timespec ts = {0, 10 * 1000000L};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	const char *result = "{\"freed_space\":1048576,\"purged_blobs\":3,"
			     "\"purged_manifests\":1}";
	if (berth_checkin(ctx, result) != 0) {
		snprintf(err, errlen, "check-in failed");
		return BERTH_RUN_ERROR;
	}
	berth_log_info(ctx, "GC done");
	return BERTH_RUN_SUCCESS;
}

static int
retention_validate(struct berth_job_ctx *ctx, const char *params, char *err,
		   size_t errlen)
{
	(void)params;
	bool dry;
	if (!berth_param_string(ctx, "repository")) {
		snprintf(err, errlen, "missing parameter: repository");
		return -1;
	}
	if (!berth_param_string(ctx, "liteMeta")) {
		snprintf(err, errlen, "missing parameter: liteMeta");
		return -1;
	}
	if (!berth_param_bool(ctx, "dryRun", &dry)) {
		snprintf(err, errlen, "missing parameter: dryRun");
		return -1;
	}
	return 0;
}

static enum berth_run_result
retention_run(struct berth_job_ctx *ctx, const char *params, char *err,
	      size_t errlen)
{
	(void)params;
	bool dry = false;
	berth_param_bool(ctx, "dryRun", &dry);
	char result[256];
	snprintf(result, sizeof result,
		 "{\"total\":3,\"retained\":1,\"dry_run\":%s,"
		 "\"deleted\":[\"v1\",\"v2\"]}", dry ? "true" : "false");
	if (berth_checkin(ctx, result) != 0) {
		snprintf(err, errlen, "check-in failed");
		return BERTH_RUN_ERROR;
	}
	return BERTH_RUN_SUCCESS;
}

static const struct berth_job_type gc = {
	BERTH_JOB_TYPE_INIT,
	.name = "GARBAGE_COLLECTION",
	.description = "test stand-in: checks in a GC result",
	.max_fails = 1,
	.max_concurrency = 1,
	.should_retry = never,
	.run = gc_run,
};

static const struct berth_job_type retention = {
	BERTH_JOB_TYPE_INIT,
	.name = "RETENTION",
	.description = "test stand-in: checks in a retention result",
	.max_fails = 3,
	.should_retry = never,
	.validate = retention_validate,
	.run = retention_run,
};

BERTH_PLUGIN_MAGIC("corejobs-test", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&gc, &retention);

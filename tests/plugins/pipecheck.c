/* pipecheck.c - PIPECHECK, a well-behaved job type that uses every host
 * service, for the tests of process isolation: run under `isolation:
 * process` each call crosses the daemon/runner socket.
 *   init()  keeps the setting `greeting` as its type state
 *   run()   logs "PIPECHECK pid=<pid> greeting=<state>", the job's identity,
 *           the parameter `word`, the properties `answer` and
 *           berth.namespace, a DEBUG line; checks in `checkin` (default
 *           "halfway") and logs the check-in's result; with wait_stop:
 *           true, waits for berth_stop_requested() and returns STOPPED;
 *           with fail: "<text>", returns an error with that text. */
#include <berth/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int
pc_init(struct berth_job_ctx *ctx, void **state)
{
	const char *g = berth_setting_string(ctx, "greeting");
	char *s = strdup(g ? g : "none");
	if (!s)
		return -1;
	*state = s;
	return 0;
}

static void
pc_fini(void *state)
{
	free(state);
}

static enum berth_run_result
pc_run(struct berth_job_ctx *ctx, const char *params, char *err,
       size_t errlen)
{
	(void)params;
	berth_log_info(ctx, "PIPECHECK pid=%ld greeting=%s", (long)getpid(),
		       (const char *)ctx->type_state);
	berth_log_info(ctx, "PIPECHECK job id=%s name=%s kind=%s rev=%lld",
		       berth_job_id(ctx), berth_job_name(ctx),
		       berth_job_kind(ctx), (long long)berth_job_revision(ctx));
	const char *word = berth_param_string(ctx, "word");
	berth_log_info(ctx, "PIPECHECK word=%s", word ? word : "(none)");
	const char *answer = berth_property(ctx, "answer");
	const char *ns = berth_property(ctx, "berth.namespace");
	berth_log_info(ctx, "PIPECHECK property answer=%s namespace=%s",
		       answer ? answer : "(unset)", ns ? ns : "(unset)");
	berth_log_debug(ctx, "PIPECHECK a debug line");
	const char *ci = berth_param_string(ctx, "checkin");
	int rc = berth_checkin(ctx, ci ? ci : "halfway");
	berth_log_info(ctx, "PIPECHECK checkin rc=%d", rc);
	bool wait_stop = false;
	berth_param_bool(ctx, "wait_stop", &wait_stop);
	if (wait_stop) {
		berth_log_info(ctx, "PIPECHECK waiting for stop");
		while (!berth_stop_requested(ctx)) {
			struct timespec ts = {0, 20 * 1000000L};
			nanosleep(&ts, NULL);
		}
		berth_log_info(ctx, "PIPECHECK saw the stop");
		return BERTH_RUN_STOPPED;
	}
	const char *fail = berth_param_string(ctx, "fail");
	if (fail) {
		snprintf(err, errlen, "asked to fail: %s", fail);
		return BERTH_RUN_ERROR;
	}
	return BERTH_RUN_SUCCESS;
}

static const struct berth_job_type pipecheck = {
	BERTH_JOB_TYPE_INIT,
	.name = "PIPECHECK",
	.init = pc_init,
	.fini = pc_fini,
	.run = pc_run,
};

BERTH_PLUGIN_MAGIC("pipecheck", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&pipecheck);

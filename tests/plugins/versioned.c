/* versioned: one job type, VERSIONED, built twice (versioned_v1.so and
 * versioned_v2.so) with VERSIONED_TAG "v1" / "v2", so the upgrade tests
 * can tell which file's code runs a job.
 *   settings: fini_marker (fini() appends "fini <tag>" to it)
 *   run:      logs "VERSIONED <tag> running", checks in "version <tag>";
 *             with param `gate` (a path) waits until that file exists (or a
 *             stop); then logs "VERSIONED <tag> done" and, with param `out`
 *             (a path), appends "<tag> <job id>" to it. */
#include "testplug.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef VERSIONED_TAG
#error "build with -DVERSIONED_TAG=\"vN\""
#endif

static const char tag[] = VERSIONED_TAG;

static void
append_line(const char *path, const char *a, const char *b)
{
	FILE *f = fopen(path, "a");
	if (f) {
		fprintf(f, "%s %s\n", a, b);
		fclose(f);
	}
}

static int
v_init(struct berth_job_ctx *ctx, void **type_state)
{
	const char *m = berth_setting_string(ctx, "fini_marker");
	*type_state = m ? strdup(m) : NULL;
	return 0;
}

static void
v_fini(void *type_state)
{
	if (type_state)
		append_line(type_state, "fini", tag);
	free(type_state);
}

static enum berth_run_result
v_run(struct berth_job_ctx *ctx, const char *params, char *err,
      size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	char msg[64];
	snprintf(msg, sizeof(msg), "version %s", tag);
	berth_log_info(ctx, "VERSIONED %s running", tag);
	berth_checkin(ctx, msg);
	const char *gate = berth_param_string(ctx, "gate");
	while (gate && access(gate, F_OK) != 0) {
		if (berth_stop_requested(ctx))
			return BERTH_RUN_STOPPED;
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	berth_log_info(ctx, "VERSIONED %s done", tag);
	const char *out = berth_param_string(ctx, "out");
	if (out)
		append_line(out, tag, berth_job_id(ctx));
	return BERTH_RUN_SUCCESS;
}

static const struct berth_job_type t = {
	BERTH_JOB_TYPE_INIT,
	.name = "VERSIONED",
	.description = "upgrade test plugin",
	.init = v_init,
	.fini = v_fini,
	.run = v_run,
};
BERTH_PLUGIN_MAGIC("versioned", VERSIONED_TAG);
BERTH_PLUGIN_JOB_TYPES(&t);

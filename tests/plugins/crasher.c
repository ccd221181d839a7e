/* crasher: a job type that takes its (in-process) daemon down, for the
 * fault tests (tests/integration/test_faults_engine.py).
 *   CRASHER  params: mode = "segv" (raise SIGSEGV), "exit" (exit(3)),
 *            anything else or absent: succeed; once = a path: crash
 *            only while that file does not exist (it is created first),
 *            so the run after the crash succeeds. */
#include "testplug.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum berth_run_result
crasher_run(struct berth_job_ctx *ctx, const char *params, char *err,
	    size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	const char *mode = berth_param_string(ctx, "mode");
	const char *once = berth_param_string(ctx, "once");
	berth_log_info(ctx, "crasher %s: mode %s", berth_job_id(ctx),
		       mode ? mode : "(none)");
	if (once) {
		int fd = open(once, O_CREAT | O_EXCL | O_WRONLY, 0600);
		if (fd < 0)
			return BERTH_RUN_SUCCESS; /* crashed once already */
		close(fd);
	}
	if (mode && strcmp(mode, "segv") == 0)
		raise(SIGSEGV);
	if (mode && strcmp(mode, "exit") == 0)
		exit(3);
	return BERTH_RUN_SUCCESS;
}

static const struct berth_job_type t = {
	BERTH_JOB_TYPE_INIT,
	.name = "CRASHER",
	.run = crasher_run,
};
BERTH_PLUGIN_MAGIC("crasher", "1");
BERTH_PLUGIN_JOB_TYPES(&t);

/* logspam: the job type LOGSPAM for the job-log tests (test_logs.py).
 *   params: lines (number, default 10): how many INFO lines to log, each
 *             "spam <n> <size x 'x'>";
 *           size (number, 0..3000, default 0): payload bytes per line;
 *           interval_ms (number, default 0): pause after each line;
 *           debug (string, optional): logged once at DEBUG first;
 *           fatal (string, optional): logged once at FATAL at the end
 *             (the host must log it and go on, not exit);
 *           checkin (string, optional): checked in before the lines.
 *   Returns BERTH_RUN_STOPPED as soon as a stop is requested, else
 *   success. */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <berth/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define LOGSPAM_MAX_SIZE 3000

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static long
param_long(struct berth_job_ctx *ctx, const char *key, long def, long max)
{
	double v = 0;
	if (!berth_param_number(ctx, key, &v) || v < 0)
		return def;
	return v > (double)max ? max : (long)v;
}

static enum berth_run_result
logspam_run(struct berth_job_ctx *ctx, const char *params, char *err,
	    size_t errlen)
{
	(void)params;
	long lines = param_long(ctx, "lines", 10, 1000000);
	long size = param_long(ctx, "size", 0, LOGSPAM_MAX_SIZE);
	long interval = param_long(ctx, "interval_ms", 0, 60000);
	const char *debug = berth_param_string(ctx, "debug");
	const char *fatal = berth_param_string(ctx, "fatal");
	const char *ci = berth_param_string(ctx, "checkin");
	char payload[LOGSPAM_MAX_SIZE + 1];
	memset(payload, 'x', (size_t)size);
	payload[size] = '\0';

	if (debug)
		berth_log_debug(ctx, "%s", debug);
	if (ci && berth_checkin(ctx, ci) != 0) {
		snprintf(err, errlen, "check-in refused");
		return BERTH_RUN_ERROR;
	}
	for (long i = 1; i <= lines; i++) {
		if (berth_stop_requested(ctx)) {
			berth_log_info(ctx, "stopped after %ld lines", i - 1);
			return BERTH_RUN_STOPPED;
		}
		berth_log_info(ctx, "spam %ld %s", i, payload);
		if (interval > 0)
			sleep_ms(interval);
	}
	if (fatal)
		berth_log_fatal(ctx, "%s", fatal);
	return BERTH_RUN_SUCCESS;
}

static const struct berth_job_type logspam = {
	BERTH_JOB_TYPE_INIT,
	.name = "LOGSPAM",
	.description = "logs many lines (job-log tests)",
	.run = logspam_run,
};

BERTH_PLUGIN_MAGIC("logspam-test", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&logspam);

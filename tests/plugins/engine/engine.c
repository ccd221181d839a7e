/* engine: job types for the worker-pool test (tests/unit/test_worker.c).
 *   NOOP         succeeds at once.
 *   SLEEPER      params: ms (number), checkin (string, optional: checked
 *                in first). Sleeps ms in 10 ms steps and returns
 *                BERTH_RUN_STOPPED as soon as a stop is requested.
 *   IGNORE_STOP  params: ms. Sleeps ms, never looking at stop; succeeds.
 *   FLAKY        params: fail_times (number), counter_file (path). Appends
 *                one byte to counter_file per attempt and fails while the
 *                attempt number is <= fail_times. max_fails comes from the
 *                manifest.
 *   NORETRY      always fails; should_retry() says no. */
#include <berth/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static long
param_ms(struct berth_job_ctx *ctx)
{
	double ms = 0;
	if (!berth_param_number(ctx, "ms", &ms) || ms < 0)
		return 0;
	return (long)ms;
}

static enum berth_run_result
noop_run(struct berth_job_ctx *ctx, const char *params, char *err,
	 size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	berth_log_info(ctx, "noop %s", berth_job_id(ctx));
	return BERTH_RUN_SUCCESS;
}

static enum berth_run_result
sleeper_run(struct berth_job_ctx *ctx, const char *params, char *err,
	    size_t errlen)
{
	(void)params;
	const char *ci = berth_param_string(ctx, "checkin");
	if (ci && berth_checkin(ctx, ci) != 0) {
		snprintf(err, errlen, "check-in refused");
		return BERTH_RUN_ERROR;
	}
	long ms = param_ms(ctx);
	for (long done = 0; done < ms; done += 10) {
		if (berth_stop_requested(ctx)) {
			berth_log_info(ctx, "stop after %ld ms", done);
			return BERTH_RUN_STOPPED;
		}
		sleep_ms(10);
	}
	return BERTH_RUN_SUCCESS;
}

static enum berth_run_result
ignore_stop_run(struct berth_job_ctx *ctx, const char *params, char *err,
		size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	sleep_ms(param_ms(ctx));
	return BERTH_RUN_SUCCESS;
}

static enum berth_run_result
flaky_run(struct berth_job_ctx *ctx, const char *params, char *err,
	  size_t errlen)
{
	(void)params;
	const char *path = berth_param_string(ctx, "counter_file");
	double fail_times = 0;
	berth_param_number(ctx, "fail_times", &fail_times);
	if (!path) {
		snprintf(err, errlen, "counter_file is required");
		return BERTH_RUN_ERROR;
	}
	FILE *f = fopen(path, "a");
	if (!f) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 strerror(errno));
		return BERTH_RUN_ERROR;
	}
	fputc('x', f);
	fclose(f);
	struct stat sb;
	if (stat(path, &sb) != 0) {
		snprintf(err, errlen, "cannot stat %s", path);
		return BERTH_RUN_ERROR;
	}
	long attempt = (long)sb.st_size;
	berth_log_info(ctx, "attempt %ld, revision %lld", attempt,
		       (long long)berth_job_revision(ctx));
	if (attempt <= (long)fail_times) {
		snprintf(err, errlen, "attempt %ld fails on purpose", attempt);
		return BERTH_RUN_ERROR;
	}
	return BERTH_RUN_SUCCESS;
}

static bool
never(void *type_state)
{
	(void)type_state;
	return false;
}

static enum berth_run_result
noretry_run(struct berth_job_ctx *ctx, const char *params, char *err,
	    size_t errlen)
{
	/* counts attempts like FLAKY when counter_file is given */
	if (berth_param_string(ctx, "counter_file"))
		flaky_run(ctx, params, err, errlen);
	snprintf(err, errlen, "always fails");
	return BERTH_RUN_ERROR;
}

static const struct berth_job_type noop = {
	BERTH_JOB_TYPE_INIT,
	.name = "NOOP",
	.description = "succeeds at once",
	.run = noop_run,
};

static const struct berth_job_type sleeper = {
	BERTH_JOB_TYPE_INIT,
	.name = "SLEEPER",
	.description = "sleeps ms, honouring stop",
	.run = sleeper_run,
};

static const struct berth_job_type ignore_stop = {
	BERTH_JOB_TYPE_INIT,
	.name = "IGNORE_STOP",
	.description = "sleeps ms, ignoring stop",
	.run = ignore_stop_run,
};

static const struct berth_job_type flaky = {
	BERTH_JOB_TYPE_INIT,
	.name = "FLAKY",
	.description = "fails the first fail_times attempts",
	.run = flaky_run,
};

static const struct berth_job_type noretry = {
	BERTH_JOB_TYPE_INIT,
	.name = "NORETRY",
	.description = "always fails, never retried",
	.should_retry = never,
	.run = noretry_run,
};

BERTH_PLUGIN_MAGIC("engine-test", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&noop, &sleeper, &ignore_stop, &flaky, &noretry);

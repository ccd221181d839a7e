/* misbehave.c - job types that do what a plugin must not, for the tests of
 * process isolation (tests/integration/test_isolation.py):
 *   SEGV   writes to a PROT_NONE page: a real SIGSEGV, and defined
 *          behaviour for the compiler and the sanitizers (a NULL store would
 *          be an UBSan report instead of a crash)
 *   EXIT3  calls exit(3)
 *   HANG   sleeps forever, never asks berth_stop_requested(); with the
 *          parameter ignore_term: true it also ignores SIGTERM
 *   LEAK   leaks `mb` MiB (default 1), 1 MiB at a time, every page
 *          touched, `step_ms` (default 0) apart, then succeeds
 * Each logs one line first, so a test sees that run() was entered. */
#include <berth/plugin.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void
nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static enum berth_run_result
segv_run(struct berth_job_ctx *ctx, const char *params, char *err,
	 size_t errlen)
{
	(void)params;
	berth_log_info(ctx, "SEGV about to crash");
	void *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	if (page == MAP_FAILED) {
		snprintf(err, errlen, "mmap failed");
		return BERTH_RUN_ERROR;
	}
	*(volatile char *)page = 1;
	return BERTH_RUN_SUCCESS;
}

static enum berth_run_result
exit3_run(struct berth_job_ctx *ctx, const char *params, char *err,
	  size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	berth_log_info(ctx, "EXIT3 about to exit");
	exit(3);
}

static enum berth_run_result
hang_run(struct berth_job_ctx *ctx, const char *params, char *err,
	 size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	bool ignore = false;
	berth_param_bool(ctx, "ignore_term", &ignore);
	if (ignore)
		signal(SIGTERM, SIG_IGN);
	berth_log_info(ctx, "HANG hanging (ignore_term %s)",
		       ignore ? "true" : "false");
	for (;;)
		nap_ms(1000);
	return BERTH_RUN_SUCCESS;
}

static enum berth_run_result
leak_run(struct berth_job_ctx *ctx, const char *params, char *err,
	 size_t errlen)
{
	(void)params;
	double mb = 1, step = 0;
	berth_param_number(ctx, "mb", &mb);
	berth_param_number(ctx, "step_ms", &step);
	berth_log_info(ctx, "LEAK leaking %.0f MiB", mb);
	for (long i = 0; i < (long)mb; i++) {
		char *p = malloc(1 << 20);
		if (!p) {
			snprintf(err, errlen, "out of memory after %ld MiB", i);
			return BERTH_RUN_ERROR;
		}
		memset(p, (int)(i & 0x7f) + 1, 1 << 20);
		if (step > 0)
			nap_ms((long)step);
	}
	return BERTH_RUN_SUCCESS;
}

static const struct berth_job_type segv = {
	BERTH_JOB_TYPE_INIT,
	.name = "SEGV",
	.run = segv_run,
};
static const struct berth_job_type exit3 = {
	BERTH_JOB_TYPE_INIT,
	.name = "EXIT3",
	.run = exit3_run,
};
static const struct berth_job_type hang = {
	BERTH_JOB_TYPE_INIT,
	.name = "HANG",
	.run = hang_run,
};
static const struct berth_job_type leak = {
	BERTH_JOB_TYPE_INIT,
	.name = "LEAK",
	.run = leak_run,
};

BERTH_PLUGIN_MAGIC("misbehave", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&segv, &exit3, &hang, &leak);

/* fault: job types for the fault-injection suite (tests/fault/run.py).
 * Every run first appends one line "<job id> <pid> <epoch ms>\n" to the file
 * named by the manifest setting `out_file` (O_APPEND, one write(), so
 * lines of several daemons sharing the file never interleave): the suite
 * counts the lines of a job id to see a job that ran twice or never.
 *   FSTAMP  params: ms (number). Stamps, sleeps ms, succeeds.
 *   CRASH   params: how ("segv", "exit" or "abort"). Stamps, then kills
 *           the process it runs in that way.
 *   HANG    Stamps, then sleeps for an hour, never looking at stop.
 *   LEAK    params: mib (number, default 1). Stamps, then allocates and
 *           touches mib MiB that it never frees.
 * Built twice: fault.so, and fault_alt.so with FAULT_ALT defined, whose
 * code starts 64 KiB later (the suite overwrites a loaded fault.so with
 * it in place). */
#include <berth/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef FAULT_ALT
/* 64 KiB of trap instructions ahead of every function of this file. */
__asm__(".text\n.skip 65536, 0xcc\n");
#endif

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int
fault_init(struct berth_job_ctx *ctx, void **state)
{
	const char *path = berth_setting_string(ctx, "out_file");
	if (!path) {
		berth_log_error(ctx, "setting out_file is required");
		return -1;
	}
	int *fd = malloc(sizeof(*fd));
	if (!fd)
		return -1;
	*fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (*fd < 0) {
		berth_log_error(ctx, "cannot open %s", path);
		free(fd);
		return -1;
	}
	*state = fd;
	return 0;
}

static void
fault_fini(void *state)
{
	int *fd = state;
	close(*fd);
	free(fd);
}

static int
stamp(struct berth_job_ctx *ctx, char *err, size_t errlen)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char line[160];
	int n = snprintf(line, sizeof(line), "%s %ld %lld\n",
			 berth_job_id(ctx), (long)getpid(),
			 (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	int *fd = ctx->type_state;
	if (n <= 0 || (size_t)n >= sizeof(line) ||
	    write(*fd, line, (size_t)n) != n) {
		snprintf(err, errlen, "cannot write the stamp");
		return -1;
	}
	return 0;
}

static enum berth_run_result
fstamp_run(struct berth_job_ctx *ctx, const char *params, char *err,
	   size_t errlen)
{
	(void)params;
	if (stamp(ctx, err, errlen) != 0)
		return BERTH_RUN_ERROR;
	double ms = 0;
	if (berth_param_number(ctx, "ms", &ms) && ms > 0)
		sleep_ms((long)ms);
	return BERTH_RUN_SUCCESS;
}

static enum berth_run_result
crash_run(struct berth_job_ctx *ctx, const char *params, char *err,
	  size_t errlen)
{
	(void)params;
	if (stamp(ctx, err, errlen) != 0)
		return BERTH_RUN_ERROR;
	const char *how = berth_param_string(ctx, "how");
	if (how && strcmp(how, "exit") == 0)
		exit(3);
	if (how && strcmp(how, "abort") == 0)
		abort();
	raise(SIGSEGV);
	snprintf(err, errlen, "still alive after SIGSEGV");
	return BERTH_RUN_ERROR;
}

static enum berth_run_result
hang_run(struct berth_job_ctx *ctx, const char *params, char *err,
	 size_t errlen)
{
	(void)params;
	if (stamp(ctx, err, errlen) != 0)
		return BERTH_RUN_ERROR;
	sleep_ms(3600L * 1000);
	return BERTH_RUN_SUCCESS;
}

static void *volatile leaked;

static enum berth_run_result
leak_run(struct berth_job_ctx *ctx, const char *params, char *err,
	 size_t errlen)
{
	(void)params;
	if (stamp(ctx, err, errlen) != 0)
		return BERTH_RUN_ERROR;
	double mib = 1;
	berth_param_number(ctx, "mib", &mib);
	size_t n = (size_t)(mib > 0 ? mib : 1) << 20;
	char *p = malloc(n);
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return BERTH_RUN_ERROR;
	}
	memset(p, 0x5a, n); /* touched, so it counts in the RSS */
	*(void **)p = leaked; /* never freed, and not optimised away */
	leaked = p;
	return BERTH_RUN_SUCCESS;
}

#define FAULT_TYPE(var, tname, fn, what)                                     \
	static const struct berth_job_type var = {                           \
		BERTH_JOB_TYPE_INIT,                                         \
		.name = tname,                                               \
		.description = what,                                         \
		.init = fault_init,                                          \
		.fini = fault_fini,                                          \
		.run = fn,                                                   \
	}

FAULT_TYPE(fstamp_type, "FSTAMP", fstamp_run, "records each run, sleeps ms");
FAULT_TYPE(crash_type, "CRASH", crash_run, "segfaults, exits or aborts");
FAULT_TYPE(hang_type, "HANG", hang_run, "hangs, ignoring stop");
FAULT_TYPE(leak_type, "LEAK", leak_run, "leaks memory on every run");

BERTH_PLUGIN_MAGIC("fault", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&fstamp_type, &crash_type, &hang_type, &leak_type);

/* record.c - the benchmark's no-op job types BENCH and BENCH_X00..BENCH_X99
 * (tests/bench/peer.py and tests/bench/suite.py load them; not a test).
 *
 * Every run appends one line
 *
 *     "<p> <i> <t_enq> <t_start> <t_done>\n"
 *
 * with a single write(2) to <out_dir>/w-<pid>.log, where out_dir is the
 * manifest setting `out_dir` (required). p and i are the job's integer
 * parameters `p` (phase) and `i` (index), t_enq its number parameter `t`
 * (submit time, ms since the epoch, as the client took it), t_start the
 * time run() was entered and t_done the time just before the write, both
 * ms since the epoch with microsecond precision. Missing parameters are
 * written as 0. The file is opened once per type in init() with O_APPEND,
 * so the lines of concurrent runs never interleave and nothing of the
 * measurement goes through Redis.
 *
 * A run with a string parameter `gate` (a file path) is a gate job: it
 * writes its line at once (t_done = t_start), then waits, polling the file
 * every millisecond and touching nothing else (no host call, so no Redis),
 * until the file is gone (at most 900 s), and succeeds. peer.py --gate
 * jobs holds every worker in one so none fetches while it enqueues.
 *
 * The 100 extra types exist so a benchmark can load 17 or 100 job types
 * from one shared object: list BENCH_X00, BENCH_X01, ... as further
 * manifest entries with the same `file`. They behave exactly as BENCH. */
#include <berth/plugin.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int
record_init(struct berth_job_ctx *ctx, void **state)
{
	const char *dir = berth_setting_string(ctx, "out_dir");
	if (!dir || !*dir) {
		berth_log_error(ctx, "setting out_dir is required");
		return -1;
	}
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/w-%ld.log", dir,
			 (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(path)) {
		berth_log_error(ctx, "out_dir is too long");
		return -1;
	}
	int *fd = malloc(sizeof(*fd));
	if (!fd)
		return -1;
	*fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (*fd < 0) {
		berth_log_error(ctx, "cannot open %s", path);
		free(fd);
		return -1;
	}
	*state = fd;
	return 0;
}

static void
record_fini(void *state)
{
	int *fd = state;
	close(*fd);
	free(fd);
}

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static long long
param_int(struct berth_job_ctx *ctx, const char *key)
{
	double v = 0;
	if (!berth_param_number(ctx, key, &v))
		return 0;
	return (long long)v;
}

static enum berth_run_result
record_run(struct berth_job_ctx *ctx, const char *params, char *err,
	   size_t errlen)
{
	(void)params;
	double t_start = now_ms();
	double t_enq = 0;
	berth_param_number(ctx, "t", &t_enq);
	long long p = param_int(ctx, "p");
	long long i = param_int(ctx, "i");
	const char *gate = berth_param_string(ctx, "gate");
	char line[160];
	int n = snprintf(line, sizeof(line), "%lld %lld %.3f %.3f %.3f\n", p,
			 i, t_enq, t_start, gate ? t_start : now_ms());
	if (n < 0 || (size_t)n >= sizeof(line)) {
		snprintf(err, errlen, "record line too long");
		return BERTH_RUN_ERROR;
	}
	int *fd = ctx->type_state;
	if (write(*fd, line, (size_t)n) != n) {
		snprintf(err, errlen, "cannot write the record");
		return BERTH_RUN_ERROR;
	}
	if (gate) {
		const struct timespec ms = {0, 1000000};
		for (long k = 0; k < 900000 && access(gate, F_OK) == 0; k++)
			nanosleep(&ms, NULL);
	}
	return BERTH_RUN_SUCCESS;
}

#define BENCH_TYPE(var, tname)                                               \
	static const struct berth_job_type var = {                           \
		BERTH_JOB_TYPE_INIT,                                         \
		.name = tname,                                               \
		.description = "benchmark: no-op, records when it ran",     \
		.init = record_init,                                         \
		.fini = record_fini,                                         \
		.run = record_run,                                           \
	}

BENCH_TYPE(bench, "BENCH");

/* BENCH_X<d><u> for d, u in 0..9 */
#define X1(d, u) BENCH_TYPE(bench_x##d##u, "BENCH_X" #d #u);
#define X10(d)                                                               \
	X1(d, 0) X1(d, 1) X1(d, 2) X1(d, 3) X1(d, 4)                         \
	X1(d, 5) X1(d, 6) X1(d, 7) X1(d, 8) X1(d, 9)
X10(0) X10(1) X10(2) X10(3) X10(4) X10(5) X10(6) X10(7) X10(8) X10(9)

#define P1(d, u) &bench_x##d##u,
#define P10(d)                                                               \
	P1(d, 0) P1(d, 1) P1(d, 2) P1(d, 3) P1(d, 4)                         \
	P1(d, 5) P1(d, 6) P1(d, 7) P1(d, 8) P1(d, 9)

BERTH_PLUGIN_MAGIC("bench-record", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&bench, P10(0) P10(1) P10(2) P10(3) P10(4) P10(5)
				      P10(6) P10(7) P10(8) P10(9));

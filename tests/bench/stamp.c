/* stamp.c - the benchmark's job type STAMP: appends "<job id> <epoch microseconds>\n"
 * to the file named by the manifest setting `out_file` when it runs, so the
 * benchmark can measure submit-to-run latency with microsecond precision. */
#include <berth/plugin.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int
stamp_init(struct berth_job_ctx *ctx, void **state)
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
stamp_fini(void *state)
{
	int *fd = state;
	close(*fd);
	free(fd);
}

static enum berth_run_result
stamp_run(struct berth_job_ctx *ctx, const char *params, char *err,
	  size_t errlen)
{
	(void)params;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char line[128];
	int n = snprintf(line, sizeof(line), "%s %lld\n", berth_job_id(ctx),
			 (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	int *fd = ctx->type_state;
	if (write(*fd, line, (size_t)n) != n) {
		snprintf(err, errlen, "cannot write the stamp");
		return BERTH_RUN_ERROR;
	}
	return BERTH_RUN_SUCCESS;
}

static const struct berth_job_type stamp = {
	BERTH_JOB_TYPE_INIT,
	.name = "STAMP",
	.description = "benchmark: records when it ran",
	.init = stamp_init,
	.fini = stamp_fini,
	.run = stamp_run,
};

BERTH_PLUGIN_MAGIC("bench-stamp", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&stamp);

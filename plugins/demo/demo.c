/* demo.c - the DEMO job type: Harbor's test job (spec 13.1, 13.2).
 *
 * validate: parameters required; `image` required, a string starting with
 *           "demo" (a non-string image is a clean 400 here, where Go's
 *           validator crashes).
 * run:      if env JOB_FAILED is non-empty, wait 3 s and fail; otherwise
 *           check in "progress data: %30", wait 1 s, check in
 *           "progress data: %60", hold for long_wait_seconds (default 30)
 *           and succeed. Every wait polls the stop flag every 100 ms.
 * settings: long_wait_seconds (number, 0..86400) - tests shorten the hold. */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <berth/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEMO_STEP_MS 100
#define DEMO_LONG_WAIT_S 30

struct demo_state {
	long long long_wait_ms;
};

static int
demo_init(struct berth_job_ctx *ctx, void **type_state)
{
	double secs = DEMO_LONG_WAIT_S;
	enum berth_json_type t = berth_setting_type(ctx, "long_wait_seconds");
	if (t != BERTH_JSON_ABSENT &&
	    (!berth_setting_number(ctx, "long_wait_seconds", &secs) ||
	     !(secs >= 0 && secs <= 86400))) {
		berth_log_error(ctx, "setting long_wait_seconds must be a "
				     "number of seconds in 0..86400");
		return -1;
	}
	struct demo_state *st = malloc(sizeof(*st));
	if (!st) {
		berth_log_error(ctx, "out of memory");
		return -1;
	}
	st->long_wait_ms = (long long)(secs * 1000.0);
	*type_state = st;
	return 0;
}

static void
demo_fini(void *type_state)
{
	free(type_state);
}

static bool
demo_should_retry(void *type_state)
{
	(void)type_state;
	return true;
}

/* True when params_json is an empty object. */
static bool
empty_object(const char *json)
{
	const char *p = json ? json : "";
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p != '{')
		return *p == '\0';
	p++;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return *p == '}';
}

static int
demo_validate(struct berth_job_ctx *ctx, const char *params_json, char *err,
	      size_t errlen)
{
	if (empty_object(params_json)) {
		/* Harbor's text, copied from its replication job */
		snprintf(err, errlen,
			 "parameters required for replication job");
		return -1;
	}
	enum berth_json_type t = berth_param_type(ctx, "image");
	if (t == BERTH_JSON_ABSENT) {
		snprintf(err, errlen, "missing parameter 'image'");
		return -1;
	}
	const char *image = berth_param_string(ctx, "image");
	if (!image) {
		const char *raw = berth_param_json(ctx, "image");
		snprintf(err, errlen,
			 "parameter 'image' must be a string, got %s",
			 raw ? raw : "?");
		return -1;
	}
	if (strncmp(image, "demo", 4) != 0) {
		snprintf(err, errlen, "expected '%s' but got '%s'", "demo *",
			 image);
		return -1;
	}
	return 0;
}

/* Waits ms milliseconds in small steps; true when a stop was requested. */
static bool
demo_wait(struct berth_job_ctx *ctx, long long ms)
{
	for (;;) {
		if (berth_stop_requested(ctx))
			return true;
		if (ms <= 0)
			return false;
		long long step = ms < DEMO_STEP_MS ? ms : DEMO_STEP_MS;
		struct timespec ts = {
			.tv_sec = (time_t)(step / 1000),
			.tv_nsec = (long)(step % 1000) * 1000000L,
		};
		while (nanosleep(&ts, &ts) != 0)
			;
		ms -= step;
	}
}

static enum berth_run_result
demo_stopped(struct berth_job_ctx *ctx)
{
	berth_log_info(ctx, "Exit for receiving stop signal");
	return BERTH_RUN_STOPPED;
}

static enum berth_run_result
demo_run(struct berth_job_ctx *ctx, const char *params_json, char *err,
	 size_t errlen)
{
	const struct demo_state *st = ctx->type_state;
	long long hold = st ? st->long_wait_ms : DEMO_LONG_WAIT_S * 1000LL;

	berth_log_info(ctx, "Demo job starting");
	berth_log_info(ctx, "Params: %s", params_json);

	const char *failed = getenv("JOB_FAILED");
	if (failed && failed[0]) {
		if (demo_wait(ctx, 3000))
			return demo_stopped(ctx);
		berth_log_info(ctx, "Job exit with error because `JOB_FAILED` "
				    "env is set");
		snprintf(err, errlen, "`JOB_FAILED` env is set");
		return BERTH_RUN_ERROR;
	}

	if (berth_checkin(ctx, "progress data: %30") != 0)
		berth_log_warning(ctx, "check in of 30%% failed");
	if (demo_wait(ctx, 1000))
		return demo_stopped(ctx);
	if (berth_checkin(ctx, "progress data: %60") != 0)
		berth_log_warning(ctx, "check in of 60%% failed");

	if (hold % 1000 == 0)
		berth_log_warning(ctx, "Holding for %lld seconds", hold / 1000);
	else
		berth_log_warning(ctx, "Holding for %lld ms", hold);
	if (demo_wait(ctx, hold))
		return demo_stopped(ctx);
	berth_log_info(ctx, "Demo job exit");
	return BERTH_RUN_SUCCESS;
}

static const struct berth_job_type demo_type = {
	BERTH_JOB_TYPE_INIT,
	.name = "DEMO",
	.description = "Harbor's demo job: checks in twice, holds, succeeds",
	.max_fails = 3,
	.max_concurrency = 1,
	.priority = 1,
	.init = demo_init,
	.fini = demo_fini,
	.should_retry = demo_should_retry,
	.validate = demo_validate,
	.run = demo_run,
};

BERTH_PLUGIN_MAGIC("demo", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&demo_type);

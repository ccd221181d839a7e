/* good_a: a valid plugin that exercises the host services, so the unit
 * test can check what a plugin sees.
 *   settings: fini_marker (file written by fini), greeting (string)
 *   validate: `n` must be a number >= 0; the job services must be inert
 *   run:      logs its identity, checks in, fails when `fail` is true,
 *             stops when asked. */
#include "testplug.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct good_a {
	char marker[512];
	char greeting[64];
};

static int
a_init(struct berth_job_ctx *ctx, void **type_state)
{
	struct good_a *st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	const char *m = berth_setting_string(ctx, "fini_marker");
	const char *g = berth_setting_string(ctx, "greeting");
	snprintf(st->marker, sizeof(st->marker), "%s", m ? m : "");
	snprintf(st->greeting, sizeof(st->greeting), "%s", g ? g : "hi");
	/* init sees no job */
	if (berth_param_type(ctx, "n") != BERTH_JSON_ABSENT ||
	    berth_checkin(ctx, "x") == 0) {
		berth_log_error(ctx, "job services active in init");
		free(st);
		return -1;
	}
	*type_state = st;
	return 0;
}

static void
a_fini(void *type_state)
{
	struct good_a *st = type_state;
	if (st && st->marker[0]) {
		FILE *f = fopen(st->marker, "w");
		if (f) {
			fputs("fini\n", f);
			fclose(f);
		}
	}
	free(st);
}

static int
a_validate(struct berth_job_ctx *ctx, const char *params, char *err,
	   size_t errlen)
{
	double n = -1;
	(void)params;
	if (berth_checkin(ctx, "x") == 0 || berth_stop_requested(ctx) ||
	    berth_job_id(ctx)[0] || !ctx->type_state) {
		snprintf(err, errlen, "job services active in validate");
		return -1;
	}
	if (!berth_param_number(ctx, "n", &n)) {
		snprintf(err, errlen, "n must be a number");
		return -1;
	}
	if (n < 0)
		return -1; /* no message: the host supplies one */
	return 0;
}

static enum berth_run_result
a_run(struct berth_job_ctx *ctx, const char *params, char *err,
      size_t errlen)
{
	const struct good_a *st = berth_type_state(ctx);
	const char *url = berth_property(ctx, "core_url");
	bool fail = false;
	berth_log_info(ctx, "%s %s id=%s kind=%s rev=%lld core_url=%s "
			    "params=%s",
		       st->greeting, berth_job_name(ctx), berth_job_id(ctx),
		       berth_job_kind(ctx), (long long)berth_job_revision(ctx),
		       url ? url : "(none)", params);
	berth_log_debug(ctx, "a debug line");
	if (!BERTH_HOST_HAS(ctx->host, type_state) ||
	    berth_checkin(ctx, "") == 0) {
		snprintf(err, errlen, "host table is wrong");
		return BERTH_RUN_ERROR;
	}
	if (berth_checkin(ctx, "half way") != 0) {
		snprintf(err, errlen, "check-in refused");
		return BERTH_RUN_ERROR;
	}
	if (berth_param_bool(ctx, "fail", &fail) && fail) {
		const char *why = berth_param_json(ctx, "why");
		snprintf(err, errlen, "asked to fail: %s", why ? why : "-");
		return BERTH_RUN_ERROR;
	}
	if (berth_stop_requested(ctx))
		return BERTH_RUN_STOPPED;
	return BERTH_RUN_SUCCESS;
}

static const struct berth_job_type t = {
	BERTH_JOB_TYPE_INIT,
	.name = "GOOD_A",
	.description = "test plugin A",
	.max_fails = 2,
	.init = a_init,
	.fini = a_fini,
	.validate = a_validate,
	.run = a_run,
};
BERTH_PLUGIN_MAGIC("good_a", "1.2.3");
BERTH_PLUGIN_JOB_TYPES(&t);

/* abi_1_0: an old plugin, built against the frozen ABI 1.0 header
 * (tests/plugins/abi_1_0/berth/plugin.h, table size and all). It must
 * still load on the newer host: its table's limits apply (max_fails 5),
 * its init/run see the 1.0 services, property() answers in run(). */
#include <berth/plugin.h>

#include <stdio.h>

#if BERTH_ABI_MAJOR != 1 || BERTH_ABI_MINOR != 0
#error "abi_1_0 must be built against the frozen 1.0 header"
#endif

static int
old_init(struct berth_job_ctx *ctx, void **type_state)
{
	static int state;
	berth_log_info(ctx, "old init, setting x=%s",
		       berth_setting_string(ctx, "x"));
	*type_state = &state;
	return 0;
}

static enum berth_run_result
old_run(struct berth_job_ctx *ctx, const char *params, char *err,
	size_t errlen)
{
	(void)err, (void)errlen;
	const char *url = berth_property(ctx, "core_url");
	berth_log_info(ctx, "old run %s params=%s core_url=%s state=%s",
		       berth_job_name(ctx), params, url ? url : "(none)",
		       berth_type_state(ctx) ? "set" : "NULL");
	return BERTH_RUN_SUCCESS;
}

static const struct berth_job_type t = {
	BERTH_JOB_TYPE_INIT,
	.name = "ABI_1_0",
	.max_fails = 5,
	.init = old_init,
	.run = old_run,
};
BERTH_PLUGIN_MAGIC("abi_1_0", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&t);

/* testplug.h - shared bits of the test plugins: a trivial run() and a magic
 * block with chosen fields, for the plugins that must be refused. */
#ifndef BERTH_TESTPLUG_H
#define BERTH_TESTPLUG_H

#include <berth/plugin.h>

/* inline: not every test plugin uses it */
static inline enum berth_run_result
testplug_run(struct berth_job_ctx *ctx, const char *params, char *err,
	     size_t errlen)
{
	(void)params, (void)err, (void)errlen;
	berth_log_info(ctx, "%s ran", berth_job_name(ctx));
	return BERTH_RUN_SUCCESS;
}

/* berth_plugin_magic() with every field given (what BERTH_PLUGIN_MAGIC
 * would fill in, except where a test plugin lies). */
#define TESTPLUG_MAGIC(major, minor, tag, ptr, sz, tt)                       \
	static const struct berth_magic testplug_magic_ = {                  \
		.size = sizeof(struct berth_magic),                          \
		.abi_major = (major),                                        \
		.abi_minor = (minor),                                        \
		.product = tag,                                              \
		.sizeof_pointer = (ptr),                                     \
		.sizeof_size_t = (sz),                                       \
		.sizeof_time_t = (tt),                                       \
		.plugin_name = "test",                                       \
		.plugin_version = "0",                                       \
	};                                                                   \
	BERTH_EXPORT const struct berth_magic *berth_plugin_magic(void)      \
	{                                                                    \
		return &testplug_magic_;                                     \
	}                                                                    \
	struct testplug_magic_defined_

#define TESTPLUG_SIMPLE_TYPE(var, type_name)                                 \
	static const struct berth_job_type var = {                           \
		BERTH_JOB_TYPE_INIT,                                         \
		.name = (type_name),                                         \
		.run = testplug_run,                                         \
	}

#endif

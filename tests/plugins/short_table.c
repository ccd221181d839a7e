/* short_table: a table whose size stops before run (an old or hand-made
 * header). */
#include "testplug.h"

static const struct berth_job_type t = {
	.size = offsetof(struct berth_job_type, run),
	.name = "SHORT_TABLE",
	.run = testplug_run,
};
BERTH_PLUGIN_MAGIC("short_table", "0");
BERTH_PLUGIN_JOB_TYPES(&t);

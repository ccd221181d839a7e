/* null_run: a table without run(). */
#include "testplug.h"

static const struct berth_job_type t = {
	BERTH_JOB_TYPE_INIT,
	.name = "NULL_RUN",
};
BERTH_PLUGIN_MAGIC("null_run", "0");
BERTH_PLUGIN_JOB_TYPES(&t);

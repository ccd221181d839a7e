/* no_types: a magic block but no berth_plugin_job_types(). */
#include "testplug.h"

BERTH_PLUGIN_MAGIC("no_types", "0");

/* no_magic: exports job types but no berth_plugin_magic(). */
#include "testplug.h"

TESTPLUG_SIMPLE_TYPE(t, "NO_MAGIC");
BERTH_PLUGIN_JOB_TYPES(&t);

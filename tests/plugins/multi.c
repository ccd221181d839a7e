/* multi: two job types from one file. */
#include "testplug.h"

TESTPLUG_SIMPLE_TYPE(one, "MULTI_ONE");
TESTPLUG_SIMPLE_TYPE(two, "MULTI_TWO");
BERTH_PLUGIN_MAGIC("multi", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&one, &two);

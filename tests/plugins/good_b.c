/* good_b: a plain valid plugin (added by the reload test). */
#include "testplug.h"

TESTPLUG_SIMPLE_TYPE(t, "GOOD_B");
BERTH_PLUGIN_MAGIC("good_b", "2.0.0");
BERTH_PLUGIN_JOB_TYPES(&t);

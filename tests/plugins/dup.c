/* dup: exports GOOD_A, the name good_a.so also exports. */
#include "testplug.h"

TESTPLUG_SIMPLE_TYPE(t, "GOOD_A");
BERTH_PLUGIN_MAGIC("dup", "0");
BERTH_PLUGIN_JOB_TYPES(&t);

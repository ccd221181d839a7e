/* wrong_major: built for ABI major + 1. */
#include "testplug.h"

TESTPLUG_MAGIC(BERTH_ABI_MAJOR + 1, 0, BERTH_PRODUCT_TAG, sizeof(void *),
	       sizeof(size_t), sizeof(time_t));
TESTPLUG_SIMPLE_TYPE(t, "WRONG_MAJOR");
BERTH_PLUGIN_JOB_TYPES(&t);

/* wrong_facts: claims another sizeof(time_t) (a 32-bit time_t build). */
#include "testplug.h"

TESTPLUG_MAGIC(BERTH_ABI_MAJOR, BERTH_ABI_MINOR, BERTH_PRODUCT_TAG,
	       sizeof(void *), sizeof(size_t), sizeof(time_t) == 8 ? 4 : 8);
TESTPLUG_SIMPLE_TYPE(t, "WRONG_FACTS");
BERTH_PLUGIN_JOB_TYPES(&t);

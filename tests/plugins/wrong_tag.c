/* wrong_tag: a magic block of another product. */
#include "testplug.h"

TESTPLUG_MAGIC(BERTH_ABI_MAJOR, BERTH_ABI_MINOR, "harbor", sizeof(void *),
	       sizeof(size_t), sizeof(time_t));
TESTPLUG_SIMPLE_TYPE(t, "WRONG_TAG");
BERTH_PLUGIN_JOB_TYPES(&t);

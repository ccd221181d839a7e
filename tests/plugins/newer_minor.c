/* newer_minor: built for a newer minor than the host's. */
#include "testplug.h"

TESTPLUG_MAGIC(BERTH_ABI_MAJOR, BERTH_ABI_MINOR + 1, BERTH_PRODUCT_TAG,
	       sizeof(void *), sizeof(size_t), sizeof(time_t));
TESTPLUG_SIMPLE_TYPE(t, "NEWER_MINOR");
BERTH_PLUGIN_JOB_TYPES(&t);

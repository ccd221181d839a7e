#ifndef BERTH_REG_INTERNAL_H
#define BERTH_REG_INTERNAL_H
#include <berth/registry.h>
#endif

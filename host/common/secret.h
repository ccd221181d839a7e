/* secret.h - the API secret. When CORE_SECRET is unset, berthd never runs
 * unauthenticated: it generates a random secret on first start, stores it
 * with mode 0600 as <data_dir>/core_secret and reuses it afterwards. */
#ifndef BERTH_SECRET_H
#define BERTH_SECRET_H

#include "common/util.h"

/* *secret: the secret (new string); *path: the file it came from or NULL
 * when it came from the environment. */
int secret_resolve(const char *data_dir, char **secret, char **path,
		   struct berr *err);

#endif

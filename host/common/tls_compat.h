/* tls_compat.h - makes civetweb's run-time OpenSSL loading work with
 * OpenSSL 3 (see host/ssl_compat/ssl_compat.c). */
#ifndef BERTH_TLS_COMPAT_H
#define BERTH_TLS_COMPAT_H

#include "common/util.h"

/* Call before mg_init_library(MG_FEATURES_TLS). Returns 0 when civetweb can
 * use TLS safely (the shim is loaded, or not needed), -1 with err. */
int tls_compat_prepare(struct berr *err);

#endif

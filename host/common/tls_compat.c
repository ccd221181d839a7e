/* tls_compat.c - see tls_compat.h. */
#include "common/tls_compat.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logs/log.h"

#ifndef BERTH_SSL_COMPAT_INSTALLED
#define BERTH_SSL_COMPAT_INSTALLED ""
#endif
#ifndef BERTH_SSL_COMPAT_RELATIVE
#define BERTH_SSL_COMPAT_RELATIVE ""
#endif

static void *shim;

int
tls_compat_prepare(struct berr *err)
{
	if (shim)
		return 0;
	void *real = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
	if (!real)
		return berr_set(err, "HTTPS needs OpenSSL 3 (libssl.so.3): %s; "
				     "install libssl3 and libssl-dev",
				dlerror());
	bool needed = dlsym(real, "SSL_get_peer_certificate") == NULL;
	dlclose(real);
	if (!needed)
		return 0;

	/* next to the binary (build tree), the installed location relative
	 * to the binary (a package's prefix), then the configured one */
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *candidates[3] = {NULL, NULL, NULL};
	if (n > 0) {
		exe[n] = '\0';
		char *dir = util_dirname(exe);
		candidates[0] = xasprintf("%s/ssl-compat/libssl.so", dir);
		if (BERTH_SSL_COMPAT_RELATIVE[0])
			candidates[1] = xasprintf("%s/%s", dir,
						  BERTH_SSL_COMPAT_RELATIVE);
		free(dir);
	}
	if (BERTH_SSL_COMPAT_INSTALLED[0])
		candidates[2] = xstrdup(BERTH_SSL_COMPAT_INSTALLED);
	for (size_t i = 0; i < 3 && !shim; i++) {
		if (!candidates[i] || access(candidates[i], R_OK) != 0)
			continue;
		shim = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
		if (shim)
			log_info("TLS: loaded OpenSSL 3 compatibility shim %s",
				 candidates[i]);
		else
			log_warn("TLS: cannot load %s: %s", candidates[i],
				 dlerror());
	}
	for (size_t i = 0; i < 3; i++)
		free(candidates[i]);
	if (!shim)
		return berr_set(err,
				"HTTPS: civetweb needs the ssl-compat shim "
				"(libssl.so next to berthd in ssl-compat/, or "
				"installed with cmake --install); rebuild "
				"with libssl-dev installed");
	return 0;
}

/* ssl_compat.c - a shim named libssl.so for Debian 12's civetweb 1.15.
 *
 * That civetweb loads OpenSSL at run time with dlopen("libssl.so") and
 * dlsym()s the OpenSSL 1.1 names. OpenSSL 3 turned SSL_get_peer_certificate
 * into a macro, so the lookup yields NULL and civetweb calls a NULL pointer
 * on the first HTTPS connection (civetweb issue #1334). No packaged library
 * fixes this, so Berth ships this one-function shim: berthd dlopen()s it by
 * path before civetweb initialises TLS; its SONAME "libssl.so" makes
 * civetweb's own dlopen("libssl.so") return it, and dlsym() through it finds
 * every other symbol in the real libssl.so.3 it depends on. */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate
X509 *SSL_get_peer_certificate(const SSL *s);

X509 *
SSL_get_peer_certificate(const SSL *s)
{
	/* same contract as 1.1: the caller owns one reference */
	return SSL_get1_peer_certificate(s);
}

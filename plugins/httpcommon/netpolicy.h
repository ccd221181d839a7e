/* netpolicy.h - where a WEBHOOK/SLACK request may go (internal to the
 * berth_httpcommon library; plugins include httpcommon.h only):
 *   - the proxy choice, with the rules of Go's http.ProxyFromEnvironment
 *     over HTTP_PROXY / HTTPS_PROXY / NO_PROXY (parsed once in init());
 *   - the address classes that block_private_addresses refuses.
 * IP addresses are handled in a 16-byte form: IPv6 as is, IPv4 mapped
 * (::ffff:a.b.c.d). Everything here is read-only after init() and safe on
 * any number of threads. */
#ifndef BERTH_NETPOLICY_H
#define BERTH_NETPOLICY_H

#include "httpcommon.h"

#include <stdbool.h>
#include <stddef.h>

/* The error text of a refused destination (address, class). */
#define HC_BLOCKED_FMT                                                       \
	"refusing to connect to %s: it is a %s address "                     \
	"(block_private_addresses is on)"

/* Parses a NO_PROXY value into s (Go ignores entries it cannot parse, so
 * does this). Returns 0, or -1 when out of memory. */
int hc_noproxy_parse(struct hc_settings *s, const char *list);
void hc_noproxy_free(struct hc_settings *s);

/* Go's useProxy(): false for localhost, loopback addresses and NO_PROXY
 * matches. host is lower case, IPv6 without brackets; port is explicit or
 * the scheme's default. */
bool hc_use_proxy(const struct hc_settings *s, const char *host, long port);

/* An IPv4 or IPv6 literal into the 16-byte form. */
bool hc_ip_parse(const char *s, unsigned char out[16]);
/* The 16-byte form of a sockaddr_in/sockaddr_in6 of len bytes; false for
 * other families. */
bool hc_sockaddr_ip(const void *sa, size_t len, unsigned char out[16]);
/* NULL for a public address, else its class ("loopback", "private",
 * "link-local", "unique-local", ...). */
const char *hc_addr_class(const unsigned char a[16]);
/* The address as text (dotted quad for IPv4). */
void hc_ip_text(const unsigned char a[16], char *out, size_t outlen);

/* With a proxy the proxy resolves the destination, so check what can be
 * checked here: IP literals, localhost and names that resolve locally.
 * True (and err written with HC_BLOCKED_FMT) when host is refused. */
bool hc_precheck_host(const char *host, char *err, size_t errlen);

#endif /* BERTH_NETPOLICY_H */

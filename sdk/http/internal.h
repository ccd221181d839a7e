/* internal.h - what the files of the berth_http library share (not
 * installed; the API is berth/http.h and berth/http_plugin.h).
 *   client.c   URLs, the client, one request and its redirects
 *   text.c     header lists, kept response headers, base64, URL escaping
 *   policy.c   the proxy choice (Go's rules) and the address classes
 *   plugin.c   the job-plugin helpers
 * IP addresses are handled in a 16-byte form: IPv6 as is, IPv4 mapped
 * (::ffff:a.b.c.d). */
#ifndef BERTH_HTTP_INTERNAL_H
#define BERTH_HTTP_INTERNAL_H

#include <berth/http.h>

#include <stdbool.h>
#include <stddef.h>

/* The error text of a refused destination (address, class). */
#define BH_BLOCKED_FMT                                                       \
	"refusing to connect to %s: it is a %s address "                     \
	"(block_private_addresses is on)"

/* One NO_PROXY entry, parsed once (Go's httpproxy matchers). */
struct bh_noproxy;

struct berth_http_policy {
	/* proxies, normalised ("" = none) */
	char *http_proxy;
	char *https_proxy;
	bool noproxy_all;
	struct bh_noproxy *noproxy;
	size_t n_noproxy;
	bool block_private;
};

/* A parsed absolute URL. */
struct bh_url {
	char scheme[33]; /* lower case */
	char host[256];  /* lower case, IPv6 without brackets */
	long port;       /* explicit or the scheme's default */
	bool ipv6;
};

/* Splits any absolute URL (no scheme check). 0, or -1 with err. */
int bh_url_split(const char *url, struct bh_url *u, char *err,
		 size_t errlen);
/* "scheme://host:port" of u. */
void bh_url_dest(const struct bh_url *u, char *out, size_t outlen);

/* The proxy for a request to u ("" = direct). */
const char *bh_policy_proxy(const struct berth_http_policy *p,
			    const struct bh_url *u);

/* An IPv4 or IPv6 literal into the 16-byte form. */
bool bh_ip_parse(const char *s, unsigned char out[16]);
/* The 16-byte form of a sockaddr_in/sockaddr_in6 of len bytes; false for
 * other families. */
bool bh_sockaddr_ip(const void *sa, size_t len, unsigned char out[16]);
/* NULL for a public address, else its class. */
const char *bh_addr_class(const unsigned char a[16]);
/* The address as text (dotted quad for IPv4). */
void bh_ip_text(const unsigned char a[16], char *out, size_t outlen);

/* The class of host without resolving it: an IP literal in any spelling
 * a resolver accepts (strict, IPv4-mapped, 2130706433, 0177.0.0.1, 127.1,
 * a trailing dot, an IPv6 zone) or a localhost name (localhost,
 * *.localhost, localhost.localdomain, ip6-localhost, ...). NULL when it is
 * neither a refused literal nor a localhost name; else the class, with
 * the address (or the name) written to shown. */
const char *bh_host_class(const char *host, char *shown, size_t shownlen);
/* With a proxy the proxy resolves the destination, so check what can be
 * checked here: bh_host_class, then the addresses the name resolves to
 * locally (a name that does not resolve here passes: only the proxy
 * knows where it goes). True (and err written with BH_BLOCKED_FMT) when
 * host is refused. */
bool bh_precheck_host(const char *host, char *err, size_t errlen);

/* A copy of src (NULL: empty) into dst. 0, or -1 when out of memory. */
int bh_headers_copy(struct berth_http_headers *dst,
		    const struct berth_http_headers *src);
/* The exact list handed to libcurl: h, then blanks that stop libcurl's
 * own Accept, Content-Type and Expect. NULL when out of memory. */
struct curl_slist *bh_headers_slist(const struct berth_http_headers *h);
/* Adds a received response header line (len bytes, no CRLF) to h as
 * "Name: value", the value trimmed; a folded line continues the last one.
 * 0, or -1 when out of memory. */
int bh_response_header_add(struct berth_http_headers *h, const char *data,
			   size_t len);

#endif /* BERTH_HTTP_INTERNAL_H */

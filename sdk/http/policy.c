/* policy.c - where a request of the berth_http library may go: the proxy
 * choice with the rules of Go's http.ProxyFromEnvironment
 * (golang.org/x/net/http/httpproxy) and the address classes refused by
 * block_private_addresses (struct berth_http_policy, see berth/http.h). */
#define _GNU_SOURCE
#include "internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* --- NO_PROXY and the proxy choice (golang.org/x/net/http/httpproxy) ----- */

enum np_kind { NP_IP, NP_CIDR, NP_DOMAIN };

struct bh_noproxy {
	enum np_kind kind;
	unsigned char ip[16]; /* NP_IP, NP_CIDR (IPv4 as ::ffff:a.b.c.d) */
	int prefix;           /* NP_CIDR, in bits of the 16-byte form */
	char *domain;         /* NP_DOMAIN, with a leading '.' */
	bool match_host;      /* NP_DOMAIN: also the domain itself */
	long port;            /* 0 = any */
};

bool
bh_ip_parse(const char *s, unsigned char out[16])
{
	struct in_addr a4;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		return true;
	}
	return inet_pton(AF_INET6, s, out) == 1;
}

static bool
ip_is_v4(const unsigned char a[16])
{
	static const unsigned char pfx[12] = {0, 0, 0, 0, 0, 0,
					      0, 0, 0, 0, 0xff, 0xff};
	return memcmp(a, pfx, 12) == 0;
}

static bool
prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, (size_t)bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

static int
noproxy_add(struct berth_http_policy *s, const struct bh_noproxy *e)
{
	struct bh_noproxy *v = realloc(s->noproxy,
				       (s->n_noproxy + 1) * sizeof(*v));
	if (!v)
		return -1;
	s->noproxy = v;
	v[s->n_noproxy++] = *e;
	return 0;
}

/* One trimmed, lower-cased entry. */
static int
noproxy_entry(struct berth_http_policy *s, char *p)
{
	struct bh_noproxy e = {0};
	if (strcmp(p, "*") == 0) {
		s->noproxy_all = true;
		return 0;
	}
	char *slash = strchr(p, '/');
	if (slash) { /* CIDR */
		*slash = '\0';
		char *end = NULL;
		long bits = strtol(slash + 1, &end, 10);
		bool v4 = strchr(p, ':') == NULL;
		if (!*(slash + 1) || *end || bits < 0 ||
		    bits > (v4 ? 32 : 128) ||
		    !bh_ip_parse(p, e.ip))
			return 0; /* Go ignores what it cannot parse */
		e.kind = NP_CIDR;
		e.prefix = (int)bits + (v4 ? 96 : 0);
		return noproxy_add(s, &e);
	}
	/* host:port, [v6]:port, or a bare host / IP */
	char *host = p;
	char *colon = strrchr(p, ':');
	if (p[0] == '[') {
		char *close = strchr(p, ']');
		if (!close)
			return 0;
		*close = '\0';
		host = p + 1;
		if (close[1] == ':')
			e.port = strtol(close + 2, NULL, 10);
	} else if (colon && strchr(p, ':') == colon) {
		*colon = '\0';
		e.port = strtol(colon + 1, NULL, 10);
	}
	if (!*host)
		return 0;
	if (bh_ip_parse(host, e.ip)) {
		e.kind = NP_IP;
		return noproxy_add(s, &e);
	}
	if (strncmp(host, "*.", 2) == 0)
		host++;
	e.kind = NP_DOMAIN;
	e.match_host = host[0] != '.';
	size_t n = strlen(host) + 2;
	e.domain = malloc(n);
	if (!e.domain)
		return -1;
	snprintf(e.domain, n, "%s%s", e.match_host ? "." : "", host);
	if (noproxy_add(s, &e) != 0) {
		free(e.domain);
		return -1;
	}
	return 0;
}

static int
noproxy_parse(struct berth_http_policy *s, const char *list)
{
	if (!list)
		return 0;
	char *copy = strdup(list);
	if (!copy)
		return -1;
	int rc = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*tok))
			tok++;
		size_t n = strlen(tok);
		while (n && isspace((unsigned char)tok[n - 1]))
			tok[--n] = '\0';
		for (char *c = tok; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (n)
			rc = noproxy_entry(s, tok);
	}
	free(copy);
	return rc;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Go's useProxy(): false for localhost, loopback IPs and NO_PROXY hits.
 * host is lower case, without brackets; port is explicit or the scheme's
 * default. */
static bool
use_proxy(const struct berth_http_policy *s, const char *host, long port)
{
	unsigned char ip[16];
	bool is_ip = bh_ip_parse(host, ip);
	if (strcmp(host, "localhost") == 0)
		return false;
	if (is_ip && ((ip_is_v4(ip) && ip[12] == 127) ||
		      (!ip_is_v4(ip) && memcmp(ip, in6addr_loopback.s6_addr,
					       16) == 0)))
		return false;
	if (s->noproxy_all)
		return false;
	for (size_t i = 0; i < s->n_noproxy; i++) {
		const struct bh_noproxy *e = &s->noproxy[i];
		switch (e->kind) {
		case NP_CIDR:
			if (is_ip && prefix_match(ip, e->ip, e->prefix))
				return false;
			break;
		case NP_IP:
			if (is_ip && memcmp(ip, e->ip, 16) == 0 &&
			    (e->port == 0 || e->port == port))
				return false;
			break;
		case NP_DOMAIN:
			if ((ends_with(host, e->domain) ||
			     (e->match_host &&
			      strcmp(host, e->domain + 1) == 0)) &&
			    (e->port == 0 || e->port == port))
				return false;
			break;
		}
	}
	return true;
}

/* --- address classes (block_private_addresses) -------------------------- */

static const char *
v4_class(const unsigned char *b)
{
	if (b[0] == 0)
		return "unspecified";
	if (b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
	    (b[0] == 192 && b[1] == 168))
		return "private";
	if (b[0] == 127)
		return "loopback";
	if (b[0] == 169 && b[1] == 254)
		return "link-local";
	if (b[0] == 100 && (b[1] & 0xc0) == 64)
		return "shared (carrier-grade NAT)";
	/* IETF protocol assignments, TEST-NET-1/2/3, the 6to4 relay
	 * anycast, benchmarking, 240/4 and the broadcast address */
	if ((b[0] == 192 && b[1] == 0 && (b[2] == 0 || b[2] == 2)) ||
	    (b[0] == 192 && b[1] == 88 && b[2] == 99) ||
	    (b[0] == 198 && b[1] == 51 && b[2] == 100) ||
	    (b[0] == 203 && b[1] == 0 && b[2] == 113) ||
	    (b[0] == 198 && (b[1] & 0xfe) == 18) || b[0] >= 240)
		return "reserved";
	if (b[0] >= 224)
		return "multicast";
	return NULL;
}

const char *
bh_addr_class(const unsigned char a[16])
{
	static const unsigned char zero[16];
	static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
	static const unsigned char nat64_local[6] = {0, 0x64, 0xff, 0x9b, 0,
						     1};
	static const unsigned char siit[12] = {0, 0, 0, 0, 0,    0,
					       0, 0, 0xff, 0xff, 0, 0};
	static const unsigned char discard[8] = {0x01, 0};
	if (ip_is_v4(a))
		return v4_class(a + 12);
	if (memcmp(a, zero, 16) == 0)
		return "unspecified";
	if (memcmp(a, in6addr_loopback.s6_addr, 16) == 0)
		return "loopback";
	/* IPv4-compatible, IPv4-translated (SIIT), NAT64 (well-known and
	 * local-use prefixes): the IPv4 address in the last 32 bits */
	if (memcmp(a, zero, 12) == 0 || memcmp(a, siit, 12) == 0 ||
	    memcmp(a, nat64, 12) == 0)
		return v4_class(a + 12);
	if (memcmp(a, nat64_local, 6) == 0)
		return v4_class(a + 12) ? v4_class(a + 12) : "reserved";
	if (memcmp(a, discard, 8) == 0 ||
	    (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8))
		return "reserved"; /* discard-only, documentation */
	if (a[0] == 0x20 && a[1] == 0x02)
		return v4_class(a + 2); /* 6to4 */
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return "link-local";
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
		return "site-local";
	if ((a[0] & 0xfe) == 0xfc)
		return "unique-local";
	if (a[0] == 0xff)
		return "multicast";
	return NULL;
}

void
bh_ip_text(const unsigned char a[16], char *out, size_t outlen)
{
	if (ip_is_v4(a))
		inet_ntop(AF_INET, a + 12, out, (socklen_t)outlen);
	else
		inet_ntop(AF_INET6, a, out, (socklen_t)outlen);
}

bool
bh_sockaddr_ip(const void *sa, size_t len, unsigned char out[16])
{
	sa_family_t fam;
	memcpy(&fam, (const char *)sa + offsetof(struct sockaddr, sa_family),
	       sizeof(fam));
	if (fam == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in in;
		memcpy(&in, sa, sizeof(in));
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &in.sin_addr, 4);
		return true;
	}
	if (fam == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 in6;
		memcpy(&in6, sa, sizeof(in6));
		memcpy(out, in6.sin6_addr.s6_addr, 16);
		return true;
	}
	return false;
}

/* An IP literal as any resolver would read it: the strict forms of
 * inet_pton, then the historical IPv4 forms of inet_aton that getaddrinfo
 * and many proxies still accept (2130706433, 0x7f.1, 0177.0.0.1, 127.1).
 * An IPv6 zone ("fe80::1%eth0") is ignored. */
static bool
ip_parse_loose(const char *s, unsigned char out[16])
{
	char buf[256];
	struct in_addr a4;
	if (bh_ip_parse(s, out))
		return true;
	size_t n = strcspn(s, "%");
	if (s[n] == '%' && n < sizeof(buf) && strchr(s, ':')) {
		memcpy(buf, s, n);
		buf[n] = '\0';
		return inet_pton(AF_INET6, buf, out) == 1;
	}
	/* inet_aton stops at white space and accepts what follows */
	if (!*s || strpbrk(s, " \t\r\n\v\f") || inet_aton(s, &a4) == 0)
		return false;
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, &a4, 4);
	return true;
}

/* Names every usual resolver (and /etc/hosts) maps to the loopback
 * interface, without their trailing dot (RFC 6761 reserves localhost and
 * everything under it). */
static bool
is_localhost_name(const char *h)
{
	static const char *const names[] = {
		"localhost", "localhost.localdomain", "localhost6",
		"localhost6.localdomain6", "ip6-localhost", "ip6-loopback"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(h, names[i]) == 0)
			return true;
	return ends_with(h, ".localhost");
}

const char *
bh_host_class(const char *host, char *shown, size_t shownlen)
{
	char h[256];
	unsigned char ip[16];
	size_t n = strlen(host);
	if (n >= sizeof(h))
		n = sizeof(h) - 1;
	memcpy(h, host, n);
	/* "localhost." and "127.0.0.1." are the same destination to a
	 * resolver; the root dot is no disguise */
	while (n > 1 && h[n - 1] == '.')
		n--;
	h[n] = '\0';
	for (char *c = h; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (ip_parse_loose(h, ip)) {
		const char *cls = bh_addr_class(ip);
		if (cls)
			bh_ip_text(ip, shown, shownlen);
		return cls;
	}
	if (is_localhost_name(h)) {
		snprintf(shown, shownlen, "%s", host);
		return "loopback";
	}
	return NULL;
}

/* With a proxy the proxy resolves the destination; check what can be
 * checked here: IP literals in every spelling, localhost names, and names
 * that resolve locally to a refused address. Returns true (and writes
 * err) when the destination is refused. */
bool
bh_precheck_host(const char *host, char *err, size_t errlen)
{
	unsigned char ip[16];
	char text[INET6_ADDRSTRLEN + 256];
	const char *cls = bh_host_class(host, text, sizeof(text));
	if (cls) {
		snprintf(err, errlen, BH_BLOCKED_FMT, text, cls);
		return true;
	}
	if (ip_parse_loose(host, ip))
		return false; /* a public literal */
	/* resolve the name as the proxy would see it, root dot removed */
	char name[256];
	size_t n = strlen(host);
	if (n >= sizeof(name))
		return false;
	memcpy(name, host, n + 1);
	while (n > 1 && name[n - 1] == '.')
		name[--n] = '\0';
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	if (getaddrinfo(name, NULL, &hints, &res) != 0)
		return false; /* only the proxy resolves it (residual risk) */
	bool refused = false;
	for (struct addrinfo *ai = res; ai && !refused; ai = ai->ai_next) {
		if (bh_sockaddr_ip(ai->ai_addr, ai->ai_addrlen, ip) &&
		    (cls = bh_addr_class(ip)) != NULL) {
			bh_ip_text(ip, text, sizeof(text));
			snprintf(err, errlen, BH_BLOCKED_FMT, text, cls);
			refused = true;
		}
	}
	freeaddrinfo(res);
	return refused;
}

/* --- the policy object --------------------------------------------------- */

static void
noproxy_free(struct berth_http_policy *s)
{
	for (size_t i = 0; i < s->n_noproxy; i++)
		free(s->noproxy[i].domain);
	free(s->noproxy);
	s->noproxy = NULL;
	s->n_noproxy = 0;
	s->noproxy_all = false;
}

/* Go's getEnvAny: the first of the names with a non-empty value. */
static const char *
env_any(const char *upper, const char *lower)
{
	const char *v = getenv(upper);
	if (v && *v)
		return v;
	v = getenv(lower);
	return v && *v ? v : NULL;
}

/* Go's parseProxy: a value without a scheme means http://value. */
static char *
proxy_normalise(const char *v)
{
	if (!v || !*v)
		return strdup("");
	if (strstr(v, "://"))
		return strdup(v);
	size_t n = strlen(v) + sizeof("http://");
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "http://%s", v);
	return s;
}

struct berth_http_policy *
berth_http_policy_new(const char *http_proxy, const char *https_proxy,
		      const char *no_proxy)
{
	struct berth_http_policy *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->http_proxy = proxy_normalise(http_proxy);
	p->https_proxy = proxy_normalise(https_proxy);
	if (!p->http_proxy || !p->https_proxy ||
	    noproxy_parse(p, no_proxy) != 0) {
		berth_http_policy_free(p);
		return NULL;
	}
	return p;
}

struct berth_http_policy *
berth_http_policy_from_env(void)
{
	return berth_http_policy_new(env_any("HTTP_PROXY", "http_proxy"),
				     env_any("HTTPS_PROXY", "https_proxy"),
				     env_any("NO_PROXY", "no_proxy"));
}

void
berth_http_policy_free(struct berth_http_policy *p)
{
	if (!p)
		return;
	free(p->http_proxy);
	free(p->https_proxy);
	noproxy_free(p);
	free(p);
}

void
berth_http_policy_set_block_private(struct berth_http_policy *p, bool on)
{
	p->block_private = on;
}

bool
berth_http_policy_blocks_private(const struct berth_http_policy *p)
{
	return p && p->block_private;
}

const char *
bh_policy_proxy(const struct berth_http_policy *p, const struct bh_url *u)
{
	if (!p)
		return "";
	const char *proxy = strcmp(u->scheme, "https") == 0 ? p->https_proxy
							   : p->http_proxy;
	if (!proxy[0] || !use_proxy(p, u->host, u->port))
		return "";
	return proxy;
}

const char *
berth_http_policy_proxy(const struct berth_http_policy *p, const char *url)
{
	struct bh_url u;
	if (!url || bh_url_split(url, &u, NULL, 0) != 0)
		return "";
	return bh_policy_proxy(p, &u);
}

const char *
berth_http_addr_class(const void *addr, size_t len)
{
	unsigned char ip[16];
	if (!addr || !bh_sockaddr_ip(addr, len, ip))
		return NULL;
	return bh_addr_class(ip);
}

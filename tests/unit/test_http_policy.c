/* test_http_policy.c - block_private_addresses of the berth_http library
 * (sdk/http/policy.c, client.c): the address classes, the spellings of a
 * refused destination (trailing dot, IPv4-mapped, 2130706433, 0177.0.0.1,
 * 127.1, localhost names), the check made before a request goes to a
 * proxy, the check at connect() without one, and the kept-alive
 * connection a checked request must not reuse. A tiny HTTP server in a
 * thread (127.0.0.1, port 0) stands for the destination and for the
 * forward proxy: it counts the connections it accepts. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"
#include "testlib.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- a keep-alive HTTP server, a thread per connection ------------------ */

#define SRV_MAX_CONNS 16

struct srv {
	int fd;
	int port;
	pthread_t tid;
	pthread_t conns[SRV_MAX_CONNS];
	int fds[SRV_MAX_CONNS];
	atomic_bool stop;
	atomic_int accepted;
	atomic_int requests;
	pthread_mutex_t mu;
	char last_line[512]; /* request line of the last request */
};

static bool
wait_readable(struct srv *s, int fd)
{
	while (!atomic_load(&s->stop)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int n = poll(&p, 1, 50);
		if (n > 0)
			return true;
		if (n < 0)
			return false;
	}
	return false;
}

/* Answers every request of one connection (no bodies expected) with a
 * kept-alive "200 ok" until the peer closes. */
static void
srv_serve(struct srv *s, int c)
{
	char buf[8192];
	size_t len = 0;
	while (wait_readable(s, c)) {
		ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return;
		len += (size_t)n;
		buf[len] = '\0';
		char *end;
		while ((end = strstr(buf, "\r\n\r\n")) != NULL) {
			size_t line = strcspn(buf, "\r\n");
			pthread_mutex_lock(&s->mu);
			snprintf(s->last_line, sizeof(s->last_line), "%.*s",
				 (int)line, buf);
			pthread_mutex_unlock(&s->mu);
			atomic_fetch_add(&s->requests, 1);
			static const char ok[] =
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
				"Content-Type: text/plain\r\n\r\nok";
			if (write(c, ok, sizeof(ok) - 1) < 0)
				return;
			size_t used = (size_t)(end + 4 - buf);
			memmove(buf, end + 4, len - used + 1);
			len -= used;
		}
		if (len == sizeof(buf) - 1)
			return;
	}
}

struct conn_arg {
	struct srv *s;
	int fd;
};

static void *
srv_conn(void *ud)
{
	struct conn_arg *a = ud;
	srv_serve(a->s, a->fd);
	free(a);
	return NULL;
}

static void *
srv_main(void *ud)
{
	struct srv *s = ud;
	int n = 0;
	while (wait_readable(s, s->fd)) {
		int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		atomic_fetch_add(&s->accepted, 1);
		struct conn_arg *a = malloc(sizeof(*a));
		if (n == SRV_MAX_CONNS || !a) {
			free(a);
			close(c);
			continue;
		}
		a->s = s;
		a->fd = c;
		s->fds[n] = c;
		pthread_create(&s->conns[n++], NULL, srv_conn, a);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(s->conns[i], NULL);
		close(s->fds[i]);
	}
	return NULL;
}

static void
srv_start(struct srv *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(s->fd, 16) != 0 ||
	    getsockname(s->fd, (struct sockaddr *)&a, &al) != 0) {
		perror("test server");
		exit(2);
	}
	s->port = ntohs(a.sin_port);
	pthread_create(&s->tid, NULL, srv_main, s);
}

static void
srv_stop(struct srv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->tid, NULL);
	close(s->fd);
	pthread_mutex_destroy(&s->mu);
}

static enum berth_http_result
get(struct berth_http_client *c, const struct berth_http_policy *p,
    const char *url, char *err, size_t errlen)
{
	struct berth_http_request req = {
		.method = "GET",
		.url = url,
		.timeout_ms = 5000,
		.max_response_bytes = 64,
		.policy = p,
	};
	struct berth_http_response resp;
	enum berth_http_result st = berth_http_send(c, &req, &resp, err, errlen);
	berth_http_response_fini(&resp);
	return st;
}

/* --- address classes and spellings, no network -------------------------- */

static void
test_classes(void)
{
	static const struct {
		const char *ip;
		const char *cls;
	} cases[] = {
		{"127.0.0.1", "loopback"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:0:192.168.1.1", "private"},   /* SIIT */
		{"::127.0.0.1", "loopback"},           /* IPv4-compatible */
		{"64:ff9b::a9fe:a9fe", "link-local"},  /* NAT64 169.254.169.254 */
		{"64:ff9b:1::a00:1", "private"},       /* local-use NAT64 */
		{"2002:7f00:1::", "loopback"},         /* 6to4 */
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"fec0::1", "site-local"},
		{"fd00::1", "unique-local"},
		{"fc00::1", "unique-local"},
		{"100.64.0.1", "shared (carrier-grade NAT)"},
		{"100.127.255.254", "shared (carrier-grade NAT)"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.0.1", "private"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "reserved"},
		{"192.0.2.1", "reserved"},
		{"198.51.100.7", "reserved"},
		{"203.0.113.9", "reserved"},
		{"198.18.0.1", "reserved"},
		{"2001:db8::1", "reserved"},
		{"100::1", "reserved"},
		/* public */
		{"93.184.216.34", NULL},
		{"100.128.0.1", NULL},
		{"172.32.0.1", NULL},
		{"2606:4700::1111", NULL},
		{"::ffff:8.8.8.8", NULL},
		{"64:ff9b::808:808", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned char ip[16];
		CHECK_MSG(bh_ip_parse(cases[i].ip, ip), "%s", cases[i].ip);
		const char *cls = bh_addr_class(ip);
		if (cases[i].cls)
			CHECK_MSG(cls && strcmp(cls, cases[i].cls) == 0,
				  "%s: %s, want %s", cases[i].ip,
				  cls ? cls : "public", cases[i].cls);
		else
			CHECK_MSG(cls == NULL, "%s: %s, want public",
				  cases[i].ip, cls);
	}
}

/* What a proxy (or getaddrinfo) would read as a refused address, however
 * it is spelled; host as bh_url_split leaves it (lower case). */
static void
test_spellings(void)
{
	static const struct {
		const char *host;
		const char *shown; /* NULL: passes */
		const char *cls;
	} cases[] = {
		{"localhost", "localhost", "loopback"},
		{"localhost.", "localhost.", "loopback"},
		{"localhost..", "localhost..", "loopback"},
		{"LocalHost.", "LocalHost.", "loopback"},
		{"a.b.localhost.", "a.b.localhost.", "loopback"},
		{"localhost.localdomain", "localhost.localdomain", "loopback"},
		{"ip6-localhost", "ip6-localhost", "loopback"},
		{"ip6-loopback.", "ip6-loopback.", "loopback"},
		{"127.0.0.1.", "127.0.0.1", "loopback"},
		{"2130706433", "127.0.0.1", "loopback"},
		{"0x7f000001", "127.0.0.1", "loopback"},
		{"0177.0.0.1", "127.0.0.1", "loopback"},
		{"0x7f.1", "127.0.0.1", "loopback"},
		{"127.1", "127.0.0.1", "loopback"},
		{"0", "0.0.0.0", "unspecified"},
		{"0.0.0.0.", "0.0.0.0", "unspecified"},
		{"::ffff:127.0.0.1", "127.0.0.1", "loopback"},
		{"::ffff:7f00:1", "127.0.0.1", "loopback"},
		{"fe80::1%eth0", "fe80::1", "link-local"},
		{"fe80::1%25eth0", "fe80::1", "link-local"},
		{"012.1", "10.0.0.1", "private"},
		{"167772161", "10.0.0.1", "private"},
		{"0xa9.0xfe.0xa9.0xfe", "169.254.169.254", "link-local"},
		{"100.64.1", "100.64.0.1", "shared (carrier-grade NAT)"},
		/* not refused by spelling */
		{"notlocalhost", NULL, NULL},
		{"localhost.example.com", NULL, NULL},
		{"93.184.216.34", NULL, NULL},
		{"1572395042", NULL, NULL}, /* 93.184.216.34 */
		{"127.0.0.1 x", NULL, NULL},
		{"example.com.", NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char shown[300] = "";
		const char *cls =
			bh_host_class(cases[i].host, shown, sizeof(shown));
		if (!cases[i].cls) {
			CHECK_MSG(cls == NULL, "%s: %s, want public",
				  cases[i].host, cls);
			continue;
		}
		CHECK_MSG(cls && strcmp(cls, cases[i].cls) == 0,
			  "%s: %s, want %s", cases[i].host,
			  cls ? cls : "public", cases[i].cls);
		CHECK_MSG(strcmp(shown, cases[i].shown) == 0,
			  "%s: shown %s, want %s", cases[i].host, shown,
			  cases[i].shown);
	}
	/* a name that resolves here to loopback is refused before the proxy;
	 * one that does not resolve is left to the proxy (residual risk) */
	char err[512] = "";
	CHECK(bh_precheck_host("localhost.", err, sizeof(err)));
	CHECK_CONTAINS(err, "refusing to connect to localhost.: it is a "
			    "loopback address (block_private_addresses is on)");
	CHECK(!bh_precheck_host("nowhere.berth-test.invalid", err,
				sizeof(err)));
	CHECK(!bh_precheck_host("93.184.216.34", err, sizeof(err)));
}

/* --- through a proxy: refused before anything is sent ------------------- */

static void
test_proxy(void)
{
	struct srv proxy;
	srv_start(&proxy);
	char purl[64], url[128], err[512];
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", proxy.port);
	struct berth_http_policy *p = berth_http_policy_new(purl, purl, "");
	berth_http_policy_set_block_private(p, true);
	struct berth_http_client *c = berth_http_client_new();
	/* loopback literals and "localhost" itself are never proxied (Go);
	 * every other spelling goes to the proxy, which would resolve it to
	 * its own loopback */
	static const char *const hosts[] = {
		"localhost.",   "LOCALHOST.",  "sub.localhost",
		"127.1",        "2130706433",  "0177.0.0.1",
		"0x7f.0.0.1",   "[::ffff:127.0.0.1]", "0",
		"[::]",         "[fe80::1]",   "[fd12:3456::1]",
		"100.64.0.7",   "169.254.169.254", "10.0.0.1",
		"127.0.0.1.",   "ip6-localhost",
	};
	size_t proxied = 0;
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		snprintf(url, sizeof(url), "http://%s:%d/x", hosts[i],
			 proxy.port);
		/* libcurl rewrites numeric IPv4 spellings to a dotted quad,
		 * which then goes direct (a loopback literal) */
		if (!berth_http_policy_proxy(p, url)[0])
			fprintf(stderr, "(direct: %s)\n", hosts[i]);
		else
			proxied++;
		enum berth_http_result st = get(c, p, url, err, sizeof(err));
		CHECK_MSG(st == BERTH_HTTP_REFUSED, "%s: %d %s", hosts[i], st,
			  err);
		CHECK_CONTAINS(err, "(block_private_addresses is on)");
	}
	CHECK(proxied >= 12);
	CHECK_MSG(atomic_load(&proxy.accepted) == 0,
		  "the proxy saw %d connections",
		  atomic_load(&proxy.accepted));
	/* a public destination still goes through the proxy */
	CHECK(get(c, p, "http://93.184.216.34/pub", err, sizeof(err)) ==
	      BERTH_HTTP_OK);
	CHECK(atomic_load(&proxy.requests) == 1);
	pthread_mutex_lock(&proxy.mu);
	CHECK_STR(proxy.last_line, "GET http://93.184.216.34/pub HTTP/1.1");
	pthread_mutex_unlock(&proxy.mu);
	/* the check off: the same spelling reaches the proxy */
	struct berth_http_policy *open = berth_http_policy_new(purl, purl, "");
	snprintf(url, sizeof(url), "http://localhost.:%d/open", proxy.port);
	CHECK(get(c, open, url, err, sizeof(err)) == BERTH_HTTP_OK);
	CHECK(atomic_load(&proxy.requests) == 2);
	berth_http_policy_free(open);
	berth_http_client_free(c);
	berth_http_policy_free(p);
	srv_stop(&proxy);
}

/* --- direct: the resolved address is checked at connect() --------------- */

static void
test_direct(void)
{
	struct srv dst;
	srv_start(&dst);
	char url[128], err[512];
	struct berth_http_policy *p = berth_http_policy_new(NULL, NULL, NULL);
	berth_http_policy_set_block_private(p, true);
	struct berth_http_client *c = berth_http_client_new();
	static const char *const hosts[] = {"127.0.0.1", "2130706433",
					    "127.1", "0x7f.0.0.1",
					    "[::ffff:127.0.0.1]"};
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		snprintf(url, sizeof(url), "http://%s:%d/x", hosts[i],
			 dst.port);
		enum berth_http_result st = get(c, p, url, err, sizeof(err));
		CHECK_MSG(st == BERTH_HTTP_REFUSED, "%s: %d %s", hosts[i], st,
			  err);
		CHECK_CONTAINS(err, "it is a loopback address");
	}
	CHECK(atomic_load(&dst.accepted) == 0);

	/* a connection kept alive by an unchecked request must not carry a
	 * checked one to the same destination */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/first", dst.port);
	CHECK(get(c, NULL, url, err, sizeof(err)) == BERTH_HTTP_OK);
	CHECK(atomic_load(&dst.requests) == 1);
	enum berth_http_result st = get(c, p, url, err, sizeof(err));
	CHECK_MSG(st == BERTH_HTTP_REFUSED, "reused: %d %s", st, err);
	CHECK(atomic_load(&dst.requests) == 1);
	/* and unchecked requests keep their connection */
	CHECK(get(c, NULL, url, err, sizeof(err)) == BERTH_HTTP_OK);
	CHECK(get(c, NULL, url, err, sizeof(err)) == BERTH_HTTP_OK);
	CHECK(atomic_load(&dst.requests) == 3);
	CHECK(atomic_load(&dst.accepted) == 2);
	berth_http_client_free(c);
	berth_http_policy_free(p);
	srv_stop(&dst);
}

int
main(void)
{
	if (berth_http_global_init() != 0)
		return 2;
	test_classes();
	test_spellings();
	test_proxy();
	test_direct();
	berth_http_global_cleanup();
	TEST_DONE();
}

/* test_http_stream.c - the berth_http client's methods and streaming
 * (sdk/http/client.c, text.c): HEAD, PUT/PATCH/DELETE, request bodies
 * streamed from body_read with a Content-Length or chunked (the server
 * checks every byte), response bodies streamed to body_sink (a 404's body
 * kept instead), aborts from either callback, kept response headers,
 * redirects of streamed bodies, the receive and send speed caps, the
 * stall timeout, base64 and URL escaping. A small HTTP/1.1 server in the
 * test (127.0.0.1, port 0, a thread per connection) parses each request,
 * checks its body against the test pattern and records what it saw. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"
#include "testlib.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MIB (1024L * 1024)

/* The body pattern: byte i of every body is i % 251 (a prime, so a piece
 * out of place shows). */
static unsigned char
pat(long long i)
{
	return (unsigned char)(i % 251);
}

/* --- the server --------------------------------------------------------- */

#define SRV_MAX_CONNS 64

/* What the server saw of the last request it read completely. */
struct seen {
	char method[16];
	char path[256];
	long long content_length; /* -1: no header */
	bool chunked;             /* Transfer-Encoding: chunked */
	bool expect;              /* an Expect header */
	long long body_len;       /* bytes received */
	bool body_ok;             /* every byte matched the pattern */
};

struct srv {
	int fd;
	int port;
	pthread_t tid;
	pthread_t conns[SRV_MAX_CONNS];
	int n_conns;
	atomic_bool stop;
	atomic_int requests; /* request heads read */
	atomic_int targets;  /* of them to /target */
	pthread_mutex_t mu;
	struct seen last;
};

/* One connection's buffered reader. */
struct conn {
	struct srv *s;
	int fd;
	char buf[65536];
	size_t start, end;
};

static bool
wait_fd(struct srv *s, int fd, short ev)
{
	while (!atomic_load(&s->stop)) {
		struct pollfd p = {.fd = fd, .events = ev};
		int n = poll(&p, 1, 50);
		if (n > 0)
			return true;
		if (n < 0)
			return false;
	}
	return false;
}

/* More bytes into the buffer; false at EOF, error or stop. */
static bool
conn_fill(struct conn *c)
{
	if (c->start == c->end)
		c->start = c->end = 0;
	if (c->end == sizeof(c->buf)) {
		memmove(c->buf, c->buf + c->start, c->end - c->start);
		c->end -= c->start;
		c->start = 0;
		if (c->end == sizeof(c->buf))
			return false;
	}
	if (!wait_fd(c->s, c->fd, POLLIN))
		return false;
	ssize_t n = read(c->fd, c->buf + c->end, sizeof(c->buf) - c->end);
	if (n <= 0)
		return false;
	c->end += (size_t)n;
	return true;
}

/* One CRLF-terminated line (without it) into out; false at EOF. */
static bool
conn_line(struct conn *c, char *out, size_t outlen)
{
	for (;;) {
		char *nl = memchr(c->buf + c->start, '\n', c->end - c->start);
		if (nl) {
			size_t n = (size_t)(nl - (c->buf + c->start));
			size_t k = n && nl[-1] == '\r' ? n - 1 : n;
			if (k >= outlen)
				k = outlen - 1;
			memcpy(out, c->buf + c->start, k);
			out[k] = '\0';
			c->start += n + 1;
			return true;
		}
		if (!conn_fill(c))
			return false;
	}
}

/* n body bytes, checked against the pattern from *off on. */
static bool
conn_body(struct conn *c, long long n, long long *off, bool *ok)
{
	while (n > 0) {
		if (c->start == c->end && !conn_fill(c))
			return false;
		size_t k = c->end - c->start;
		if ((long long)k > n)
			k = (size_t)n;
		const unsigned char *b =
			(const unsigned char *)c->buf + c->start;
		for (size_t i = 0; i < k; i++)
			if (b[i] != pat(*off + (long long)i))
				*ok = false;
		c->start += k;
		*off += (long long)k;
		n -= (long long)k;
	}
	return true;
}

static bool
send_all(struct srv *s, int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		if (!wait_fd(s, fd, POLLOUT))
			return false;
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

__attribute__((format(printf, 3, 4))) static bool
send_fmt(struct srv *s, int fd, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return n > 0 && send_all(s, fd, buf, (size_t)n);
}

/* n bytes of the pattern, from byte from on. */
static bool
send_pattern_at(struct srv *s, int fd, long long from, long long n)
{
	unsigned char buf[65536];
	for (long long off = 0; off < n;) {
		size_t k = sizeof(buf);
		if ((long long)k > n - off)
			k = (size_t)(n - off);
		for (size_t i = 0; i < k; i++)
			buf[i] = pat(from + off + (long long)i);
		if (!send_all(s, fd, buf, k))
			return false;
		off += (long long)k;
	}
	return true;
}

static bool
send_pattern(struct srv *s, int fd, long long n)
{
	return send_pattern_at(s, fd, 0, n);
}

/* The number after "n=" in path, or def. */
static long long
query_n(const char *path, long long def)
{
	const char *q = strstr(path, "n=");
	return q ? atoll(q + 2) : def;
}

/* Answers one request whose head and body were read; false closes. */
static bool
respond(struct srv *s, int fd, const struct seen *r)
{
	bool head = strcmp(r->method, "HEAD") == 0;
	if (strncmp(r->path, "/blob", 5) == 0) {
		long long n = query_n(r->path, 0);
		return send_fmt(s, fd,
				"HTTP/1.1 200 OK\r\nContent-Length: %lld\r\n"
				"Docker-Content-Digest: sha256:feed\r\n\r\n",
				n) &&
		       (head || send_pattern(s, fd, n));
	}
	if (strncmp(r->path, "/chunked", 8) == 0) {
		/* n bytes in chunks of 10000 */
		long long n = query_n(r->path, 0);
		if (!send_fmt(s, fd, "HTTP/1.1 200 OK\r\n"
				     "Transfer-Encoding: chunked\r\n\r\n"))
			return false;
		for (long long off = 0; off < n; off += 10000) {
			long long k = n - off < 10000 ? n - off : 10000;
			if (!send_fmt(s, fd, "%llx\r\n", k) ||
			    !send_pattern_at(s, fd, off, k) ||
			    !send_fmt(s, fd, "\r\n"))
				return false;
		}
		return send_fmt(s, fd, "0\r\n\r\n");
	}
	if (strncmp(r->path, "/close", 6) == 0) {
		/* n bytes ended by closing the connection */
		if (send_fmt(s, fd, "HTTP/1.1 200 OK\r\n"
				    "Connection: close\r\n\r\n"))
			send_pattern(s, fd, query_n(r->path, 0));
		return false;
	}
	if (strcmp(r->path, "/missing") == 0) {
		static const char b[] =
			"{\"errors\":[{\"code\":\"BLOB_UNKNOWN\"}]}";
		return send_fmt(s, fd,
				"HTTP/1.1 404 Not Found\r\n"
				"Content-Length: %zu\r\n"
				"Content-Type: application/json\r\n\r\n%s",
				sizeof(b) - 1, head ? "" : b);
	}
	if (strcmp(r->path, "/headers") == 0)
		return send_fmt(s, fd,
				"HTTP/1.1 200 OK\r\n"
				"X-Multi: first\r\n"
				"x-multi: second\r\n"
				"X-Pad:   padded value \t \r\n"
				"X-Empty:\r\n"
				"X-Folded: one\r\n"
				"   two\r\n"
				"Location: /v2/x/uploads/abc?_state=q%%3D\r\n"
				"Content-Length: 2\r\n\r\nok");
	if (strcmp(r->path, "/interim") == 0)
		return send_fmt(s, fd,
				"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
				"HTTP/1.1 201 Created\r\nX-Final: 1\r\n"
				"Content-Length: 0\r\n\r\n");
	if (strncmp(r->path, "/redirect/", 10) == 0) {
		/* /redirect/<code>: to /target, with a header of its own */
		return send_fmt(s, fd,
				"HTTP/1.1 %d Redirect\r\nLocation: /target\r\n"
				"X-Hop: 1\r\nContent-Length: 0\r\n\r\n",
				atoi(r->path + 10));
	}
	if (strncmp(r->path, "/stall", 6) == 0) {
		/* headers and 100 of 1000 bytes, then nothing until the
		 * client goes */
		if (!send_fmt(s, fd, "HTTP/1.1 200 OK\r\nContent-Length: "
				     "1000\r\n\r\n") ||
		    !send_pattern(s, fd, 100))
			return false;
		char b[256];
		while (wait_fd(s, fd, POLLIN) && read(fd, b, sizeof(b)) > 0)
			;
		return false;
	}
	/* /echo, /target, anything else: 201 for PUT, 202 for DELETE, else
	 * 200 */
	int code = strcmp(r->method, "PUT") == 0      ? 201
		   : strcmp(r->method, "DELETE") == 0 ? 202
						      : 200;
	char body[128];
	int n = snprintf(body, sizeof(body), "%s %lld", r->method, r->body_len);
	return send_fmt(s, fd,
			"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s", code,
			n, head ? "" : body);
}

/* Reads requests (head, then body by Content-Length or chunked) and
 * answers them until the peer closes. */
static void
serve(struct conn *c)
{
	char line[8192];
	for (;;) {
		struct seen r = {.content_length = -1, .body_ok = true};
		if (!conn_line(c, line, sizeof(line)))
			return;
		if (!line[0])
			continue;
		atomic_fetch_add(&c->s->requests, 1);
		if (sscanf(line, "%15s %255s", r.method, r.path) != 2)
			return;
		if (strcmp(r.path, "/target") == 0)
			atomic_fetch_add(&c->s->targets, 1);
		while (conn_line(c, line, sizeof(line)) && line[0]) {
			if (strncasecmp(line, "Content-Length:", 15) == 0)
				r.content_length = atoll(line + 15);
			else if (strncasecmp(line, "Transfer-Encoding:",
					     18) == 0)
				r.chunked = strstr(line, "chunked") != NULL;
			else if (strncasecmp(line, "Expect:", 7) == 0)
				r.expect = true;
		}
		long long off = 0;
		if (r.chunked) {
			for (;;) {
				if (!conn_line(c, line, sizeof(line)))
					return;
				long long k = strtoll(line, NULL, 16);
				if (k == 0)
					break;
				if (!conn_body(c, k, &off, &r.body_ok) ||
				    !conn_line(c, line, sizeof(line)))
					return;
			}
			/* trailers up to the blank line */
			while (conn_line(c, line, sizeof(line)) && line[0])
				;
		} else if (r.content_length > 0 &&
			   !conn_body(c, r.content_length, &off, &r.body_ok)) {
			return;
		}
		r.body_len = off;
		pthread_mutex_lock(&c->s->mu);
		c->s->last = r;
		pthread_mutex_unlock(&c->s->mu);
		if (!respond(c->s, c->fd, &r))
			return;
	}
}

static void *
srv_conn(void *ud)
{
	struct conn *c = ud;
	serve(c);
	close(c->fd);
	free(c);
	return NULL;
}

static void *
srv_main(void *ud)
{
	struct srv *s = ud;
	while (wait_fd(s, s->fd, POLLIN)) {
		int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		struct conn *c = calloc(1, sizeof(*c));
		if (s->n_conns == SRV_MAX_CONNS || !c) {
			free(c);
			close(fd);
			continue;
		}
		c->s = s;
		c->fd = fd;
		pthread_create(&s->conns[s->n_conns++], NULL, srv_conn, c);
	}
	for (int i = 0; i < s->n_conns; i++)
		pthread_join(s->conns[i], NULL);
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

static struct seen
srv_last(struct srv *s)
{
	pthread_mutex_lock(&s->mu);
	struct seen r = s->last;
	memset(&s->last, 0, sizeof(s->last));
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* --- the client side ---------------------------------------------------- */

static struct srv S;
static struct berth_http_client *C;

static void
url(char *out, size_t n, const char *path)
{
	snprintf(out, n, "http://127.0.0.1:%d%s", S.port, path);
}

/* body_read: the pattern, total bytes (or until the reader's limit),
 * at most piece bytes per call, aborting after abort_at bytes (-1:
 * never). */
struct reader {
	long long total;
	long long off;
	size_t piece;
	long long abort_at;
	int calls;
};

static size_t
read_pattern(void *ud, char *buf, size_t len)
{
	struct reader *r = ud;
	r->calls++;
	if (r->abort_at >= 0 && r->off >= r->abort_at)
		return BERTH_HTTP_READ_ABORT;
	long long left = r->total - r->off;
	size_t k = len < r->piece ? len : r->piece;
	if ((long long)k > left)
		k = (size_t)left;
	for (size_t i = 0; i < k; i++)
		buf[i] = (char)pat(r->off + (long long)i);
	r->off += (long long)k;
	return k;
}

/* body_sink: checks the pattern, counts, stops after stop_at bytes (-1:
 * never). */
struct sink {
	long long n;
	bool ok;
	int calls;
	long long stop_at;
};

static bool
sink_pattern(void *ud, const char *data, size_t len)
{
	struct sink *k = ud;
	k->calls++;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)data[i] != pat(k->n + (long long)i))
			k->ok = false;
	k->n += (long long)len;
	return k->stop_at < 0 || k->n < k->stop_at;
}

static enum berth_http_result
send_req(struct berth_http_request *req, struct berth_http_response *resp,
	 char *err, size_t errlen)
{
	if (!req->timeout_ms)
		req->timeout_ms = 20000;
	return berth_http_send(C, req, resp, err, errlen);
}

/* --- methods ------------------------------------------------------------ */

static void
test_methods(void)
{
	char u[128], err[256];
	struct berth_http_response resp;
	struct seen r;

	/* HEAD: no body read, the Content-Length kept; the connection
	 * still serves the next request */
	url(u, sizeof(u), "/blob?n=5000");
	struct berth_http_request head = {.method = "HEAD", .url = u,
					  .max_response_bytes = 64,
					  .keep_headers = true};
	CHECK(send_req(&head, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	CHECK(resp.status == 200);
	CHECK(resp.body_len == 0);
	CHECK_STR(berth_http_response_header(&resp, "content-length"), "5000");
	r = srv_last(&S);
	CHECK_STR(r.method, "HEAD");
	berth_http_response_fini(&resp);
	url(u, sizeof(u), "/echo");
	struct berth_http_request get = {.method = "get", .url = u,
					 .max_response_bytes = 64};
	CHECK(send_req(&get, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	CHECK_STR(resp.body, "GET 0");
	r = srv_last(&S);
	CHECK(r.content_length == -1 && !r.chunked);
	berth_http_response_fini(&resp);

	/* PUT, PATCH and DELETE with a body from memory */
	static const char *const m[] = {"PUT", "PATCH", "DELETE", "POST"};
	static const long codes[] = {201, 200, 202, 200};
	char body[300];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)pat((long long)i);
	for (size_t i = 0; i < 4; i++) {
		struct berth_http_request q = {.method = m[i], .url = u,
					       .body = body,
					       .body_len = sizeof(body),
					       .max_response_bytes = 64};
		CHECK(send_req(&q, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
		CHECK_MSG(resp.status == codes[i], "%s: %ld", m[i],
			  resp.status);
		r = srv_last(&S);
		CHECK_STR(r.method, m[i]);
		CHECK(r.content_length == (long long)sizeof(body));
		CHECK(r.body_len == (long long)sizeof(body) && r.body_ok);
		CHECK(!r.expect && !r.chunked);
		berth_http_response_fini(&resp);
	}
	/* an empty PUT says Content-Length: 0; a bodiless DELETE none */
	struct berth_http_request put0 = {.method = "PUT", .url = u};
	CHECK(send_req(&put0, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	r = srv_last(&S);
	CHECK(resp.status == 201 && r.content_length == 0);
	berth_http_response_fini(&resp);
	struct berth_http_request del = {.method = "DELETE", .url = u};
	CHECK(send_req(&del, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	r = srv_last(&S);
	CHECK(resp.status == 202 && r.content_length == -1 && !r.chunked);
	berth_http_response_fini(&resp);

	/* an unknown method is refused before anything is sent */
	int before = atomic_load(&S.requests);
	struct berth_http_request bad = {.method = "BREW", .url = u};
	CHECK(send_req(&bad, &resp, err, sizeof(err)) == BERTH_HTTP_REFUSED);
	CHECK_CONTAINS(err, "unsupported method \"BREW\"");
	CHECK(atomic_load(&S.requests) == before);
	berth_http_response_fini(&resp);
}

/* --- streamed request bodies -------------------------------------------- */

static void
test_upload(void)
{
	char u[128], err[256];
	struct berth_http_response resp;
	struct seen r;
	url(u, sizeof(u), "/echo");

	/* 4 MiB + 3 with a Content-Length, in odd pieces */
	struct reader rd = {.total = 4 * MIB + 3, .piece = 7001,
			    .abort_at = -1};
	struct berth_http_request put = {
		.method = "PUT", .url = u, .max_response_bytes = 64,
		.body = "ignored", .body_len = 7,
		.body_read = read_pattern, .body_read_ud = &rd,
		.body_read_len = 4 * MIB + 3,
	};
	CHECK(send_req(&put, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	CHECK(resp.status == 201);
	r = srv_last(&S);
	CHECK(r.content_length == 4 * MIB + 3 && !r.chunked && !r.expect);
	CHECK(r.body_len == 4 * MIB + 3 && r.body_ok);
	berth_http_response_fini(&resp);

	/* chunked (length -1), PATCH */
	rd = (struct reader){.total = 3 * MIB + 17, .piece = 65536,
			     .abort_at = -1};
	struct berth_http_request patch = {
		.method = "PATCH", .url = u, .max_response_bytes = 64,
		.body_read = read_pattern, .body_read_ud = &rd,
		.body_read_len = -1, .header_timeout_ms = 5000,
	};
	CHECK(send_req(&patch, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	CHECK(resp.status == 200);
	r = srv_last(&S);
	CHECK_STR(r.method, "PATCH");
	CHECK(r.chunked && r.content_length == -1 && !r.expect);
	CHECK(r.body_len == 3 * MIB + 17 && r.body_ok);
	berth_http_response_fini(&resp);

	/* an empty streamed body: Content-Length: 0 */
	rd = (struct reader){.total = 0, .piece = 10, .abort_at = -1};
	patch.body_read_len = 0;
	CHECK(send_req(&patch, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	r = srv_last(&S);
	CHECK(r.content_length == 0 && r.body_len == 0);
	berth_http_response_fini(&resp);

	/* body_read aborts: CANCELLED */
	rd = (struct reader){.total = 4 * MIB, .piece = 65536,
			     .abort_at = MIB};
	put.body_read_len = 4 * MIB;
	CHECK(send_req(&put, &resp, err, sizeof(err)) ==
	      BERTH_HTTP_CANCELLED);
	berth_http_response_fini(&resp);

	/* body_read ends before the Content-Length: FAILED, said so */
	rd = (struct reader){.total = 500, .piece = 100, .abort_at = -1};
	put.body_read_len = 1000;
	CHECK(send_req(&put, &resp, err, sizeof(err)) == BERTH_HTTP_FAILED);
	CHECK_CONTAINS(err, "ended after 500 of its 1000 bytes");
	berth_http_response_fini(&resp);

	/* a reader with more than the Content-Length is not asked for it */
	rd = (struct reader){.total = 5000, .piece = 4096, .abort_at = -1};
	put.body_read_len = 3000;
	CHECK(send_req(&put, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	r = srv_last(&S);
	CHECK(r.body_len == 3000 && r.body_ok && rd.off == 3000);
	berth_http_response_fini(&resp);
}

/* A streamed body is never sent twice: a 307/308 is the answer; a 303
 * still turns it into a GET. */
static void
test_redirects(void)
{
	char u[128], err[256];
	struct berth_http_response resp;
	struct seen r;
	for (int code = 307; code <= 308; code++) {
		char path[32];
		snprintf(path, sizeof(path), "/redirect/%d", code);
		url(u, sizeof(u), path);
		struct reader rd = {.total = 100000, .piece = 65536,
				    .abort_at = -1};
		struct berth_http_request q = {
			.method = "PUT", .url = u, .follow_redirects = true,
			.body_read = read_pattern, .body_read_ud = &rd,
			.body_read_len = 100000, .keep_headers = true,
		};
		int before = atomic_load(&S.targets);
		CHECK(send_req(&q, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
		CHECK(resp.status == code && resp.redirects == 0);
		CHECK(atomic_load(&S.targets) == before);
		CHECK_STR(berth_http_response_header(&resp, "Location"),
			  "/target");
		berth_http_response_fini(&resp);
		/* from memory, the body is repeated */
		q.body_read = NULL;
		q.body = "abc";
		q.body_len = 3;
		CHECK(send_req(&q, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
		r = srv_last(&S);
		CHECK(resp.status == 201 && resp.redirects == 1);
		CHECK_STR(r.method, "PUT");
		CHECK(r.body_len == 3);
		berth_http_response_fini(&resp);
	}
	url(u, sizeof(u), "/redirect/303");
	struct reader rd = {.total = 100000, .piece = 65536, .abort_at = -1};
	struct berth_http_request q = {
		.method = "PATCH", .url = u, .follow_redirects = true,
		.max_response_bytes = 64, .body_read = read_pattern,
		.body_read_ud = &rd, .body_read_len = -1, .keep_headers = true,
	};
	CHECK(send_req(&q, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	r = srv_last(&S);
	CHECK(resp.status == 200 && resp.redirects == 1);
	CHECK_STR(resp.body, "GET 0");
	CHECK(!r.chunked && r.content_length == -1);
	/* the headers are the final answer's, not the redirect's */
	CHECK(berth_http_response_header(&resp, "X-Hop") == NULL);
	CHECK_STR(berth_http_response_header(&resp, "content-length"), "5");
	berth_http_response_fini(&resp);
	/* HEAD stays HEAD */
	q = (struct berth_http_request){.method = "HEAD", .url = u,
					.follow_redirects = true};
	CHECK(send_req(&q, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	r = srv_last(&S);
	CHECK(resp.status == 200 && resp.redirects == 1);
	CHECK_STR(r.method, "HEAD");
	berth_http_response_fini(&resp);
}

/* --- streamed response bodies ------------------------------------------- */

static void
test_download(void)
{
	char u[128], err[256];
	struct berth_http_response resp;
	url(u, sizeof(u), "/blob?n=6291459"); /* 6 MiB + 3 */
	struct sink k = {.ok = true, .stop_at = -1};
	struct berth_http_request get = {
		.method = "GET", .url = u, .max_response_bytes = 1024,
		.body_sink = sink_pattern, .body_sink_ud = &k,
	};
	CHECK(send_req(&get, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	CHECK(resp.status == 200);
	CHECK(k.n == 6 * MIB + 3 && k.ok && k.calls > 1);
	CHECK(resp.body && resp.body_len == 0 && !resp.body[0]);
	CHECK(!resp.truncated);
	berth_http_response_fini(&resp);

	/* chunked, and ended by the connection's close */
	static const char *const framed[] = {"/chunked?n=2500001",
					     "/close?n=2500001"};
	for (size_t i = 0; i < 2; i++) {
		url(u, sizeof(u), framed[i]);
		k = (struct sink){.ok = true, .stop_at = -1};
		CHECK(send_req(&get, &resp, err, sizeof(err)) ==
		      BERTH_HTTP_OK);
		CHECK_MSG(k.n == 2500001 && k.ok, "%s: %lld", framed[i], k.n);
		CHECK(resp.status == 200 && resp.body_len == 0);
		berth_http_response_fini(&resp);
	}

	/* a 404's body is kept, the sink never called */
	url(u, sizeof(u), "/missing");
	k = (struct sink){.ok = true, .stop_at = -1};
	CHECK(send_req(&get, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	CHECK(resp.status == 404 && k.calls == 0);
	CHECK_CONTAINS(resp.body, "BLOB_UNKNOWN");
	berth_http_response_fini(&resp);

	/* the sink says stop: CANCELLED */
	url(u, sizeof(u), "/blob?n=8388608");
	k = (struct sink){.ok = true, .stop_at = MIB};
	CHECK(send_req(&get, &resp, err, sizeof(err)) ==
	      BERTH_HTTP_CANCELLED);
	CHECK(k.n >= MIB && k.n < 8 * MIB);
	berth_http_response_fini(&resp);

	/* HEAD with a sink: nothing to sink */
	url(u, sizeof(u), "/blob?n=1000");
	k = (struct sink){.ok = true, .stop_at = -1};
	get.method = "HEAD";
	CHECK(send_req(&get, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	CHECK(resp.status == 200 && k.calls == 0 && resp.body_len == 0);
	berth_http_response_fini(&resp);
}

/* --- response headers --------------------------------------------------- */

static void
test_headers(void)
{
	char u[128], err[256];
	struct berth_http_response resp;
	url(u, sizeof(u), "/headers");
	struct berth_http_request get = {.method = "GET", .url = u,
					 .max_response_bytes = 64};
	CHECK(send_req(&get, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	CHECK(resp.headers.n == 0);
	CHECK(berth_http_response_header(&resp, "X-Multi") == NULL);
	berth_http_response_fini(&resp);

	get.keep_headers = true;
	CHECK(send_req(&get, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	CHECK_STR(resp.body, "ok");
	CHECK_STR(berth_http_response_header(&resp, "X-MULTI"), "first");
	CHECK_STR(berth_http_response_header(&resp, "x-pad"), "padded value");
	CHECK_STR(berth_http_response_header(&resp, "X-Empty"), "");
	CHECK_STR(berth_http_response_header(&resp, "X-Folded"), "one two");
	CHECK_STR(berth_http_response_header(&resp, "location"),
		  "/v2/x/uploads/abc?_state=q%3D");
	CHECK(berth_http_response_header(&resp, "X-Mult") == NULL);
	CHECK(berth_http_response_header(&resp, "X-None") == NULL);
	CHECK(resp.headers.n == 7);
	CHECK_STR(resp.headers.v[1], "x-multi: second");
	berth_http_response_fini(&resp);
	CHECK(resp.headers.n == 0 && resp.headers.v == NULL);

	/* an interim 100's headers are not the answer's */
	url(u, sizeof(u), "/interim");
	get.method = "POST";
	CHECK(send_req(&get, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	CHECK(resp.status == 201);
	CHECK(berth_http_response_header(&resp, "X-Interim") == NULL);
	CHECK_STR(berth_http_response_header(&resp, "X-Final"), "1");
	berth_http_response_fini(&resp);
}

/* cancel: true once the monotonic time *ud has passed */
static bool
past(void *ud)
{
	return berth_http_now_ms() >= *(const long long *)ud;
}

/* --- speed caps and the stall timeout ---------------------------------- */

static void
test_speed(void)
{
	char u[128], err[256];
	struct berth_http_response resp;

	/* 1 MiB at 512 KiB/s: about 2 s; the stall timeout does not fire
	 * on a slow transfer that moves */
	url(u, sizeof(u), "/blob?n=1048576");
	struct sink k = {.ok = true, .stop_at = -1};
	struct berth_http_request get = {
		.method = "GET", .url = u, .body_sink = sink_pattern,
		.body_sink_ud = &k, .max_recv_bytes_per_s = 512 * 1024,
		.stall_timeout_ms = 1000,
	};
	long long t0 = berth_http_now_ms();
	CHECK(send_req(&get, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	long long ms = berth_http_now_ms() - t0;
	CHECK(k.n == MIB && k.ok);
	CHECK_MSG(ms >= 1500 && ms < 10000, "receive: %lld ms", ms);
	fprintf(stderr, "1 MiB received at 512 KiB/s in %lld ms\n", ms);
	berth_http_response_fini(&resp);

	/* paced bodies framed otherwise: chunked, ended by a close */
	static const char *const framed[] = {"/chunked?n=131072",
					     "/close?n=131072"};
	for (size_t i = 0; i < 2; i++) {
		url(u, sizeof(u), framed[i]);
		k = (struct sink){.ok = true, .stop_at = -1};
		get.max_recv_bytes_per_s = 256 * 1024;
		t0 = berth_http_now_ms();
		CHECK(send_req(&get, &resp, err, sizeof(err)) ==
		      BERTH_HTTP_OK);
		ms = berth_http_now_ms() - t0;
		CHECK(k.n == 131072 && k.ok);
		CHECK_MSG(ms >= 350 && ms < 5000, "%s: %lld ms", framed[i], ms);
		berth_http_response_fini(&resp);
	}

	/* cancel() ends a paced transfer on time */
	url(u, sizeof(u), "/blob?n=1048576");
	k = (struct sink){.ok = true, .stop_at = -1};
	long long until = berth_http_now_ms() + 300;
	get.max_recv_bytes_per_s = 64 * 1024;
	get.cancel = past;
	get.cancel_ud = &until;
	t0 = berth_http_now_ms();
	CHECK(send_req(&get, &resp, err, sizeof(err)) ==
	      BERTH_HTTP_CANCELLED);
	ms = berth_http_now_ms() - t0;
	CHECK_MSG(ms >= 250 && ms < 1500, "cancel: %lld ms", ms);
	CHECK(k.n > 0 && k.n < 200 * 1024);
	berth_http_response_fini(&resp);

	/* the same upwards */
	url(u, sizeof(u), "/echo");
	struct reader rd = {.total = MIB, .piece = 65536, .abort_at = -1};
	struct berth_http_request put = {
		.method = "PUT", .url = u, .body_read = read_pattern,
		.body_read_ud = &rd, .body_read_len = MIB,
		.max_send_bytes_per_s = 512 * 1024, .stall_timeout_ms = 1000,
	};
	t0 = berth_http_now_ms();
	CHECK(send_req(&put, &resp, err, sizeof(err)) == BERTH_HTTP_OK);
	ms = berth_http_now_ms() - t0;
	struct seen r = srv_last(&S);
	CHECK(resp.status == 201 && r.body_len == MIB && r.body_ok);
	CHECK_MSG(ms >= 1500 && ms < 10000, "send: %lld ms", ms);
	fprintf(stderr, "1 MiB sent at 512 KiB/s in %lld ms\n", ms);
	berth_http_response_fini(&resp);

	/* a server that stops sending: TIMEOUT after the stall time, long
	 * before timeout_ms */
	url(u, sizeof(u), "/stall");
	k = (struct sink){.ok = true, .stop_at = -1};
	get = (struct berth_http_request){
		.method = "GET", .url = u, .body_sink = sink_pattern,
		.body_sink_ud = &k, .stall_timeout_ms = 700,
		.timeout_ms = 20000,
	};
	t0 = berth_http_now_ms();
	CHECK(send_req(&get, &resp, err, sizeof(err)) == BERTH_HTTP_TIMEOUT);
	ms = berth_http_now_ms() - t0;
	CHECK_STR(err, "stalled for 700 ms");
	CHECK(k.n == 100);
	CHECK_MSG(ms >= 700 && ms < 5000, "stall: %lld ms", ms);
	berth_http_response_fini(&resp);
	get.stall_timeout_ms = 1000;
	CHECK(send_req(&get, &resp, err, sizeof(err)) == BERTH_HTTP_TIMEOUT);
	CHECK_STR(err, "stalled for 1 s");
	berth_http_response_fini(&resp);
}

/* --- base64, URL escaping, header lines (no network) -------------------- */

static void
test_text(void)
{
	static const char *const b64[][2] = {
		{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
		{"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
		{"foobar", "Zm9vYmFy"},
		{"user:p\xc3\xa4ss", "dXNlcjpww6Rzcw=="},
	};
	char out[64];
	for (size_t i = 0; i < sizeof(b64) / sizeof(b64[0]); i++) {
		int n = berth_http_base64(b64[i][0], strlen(b64[i][0]), out,
					  sizeof(out));
		CHECK_STR(out, b64[i][1]);
		CHECK(n == (int)strlen(b64[i][1]));
	}
	unsigned char bin[3] = {0xff, 0xfe, 0x00};
	CHECK(berth_http_base64(bin, 3, out, sizeof(out)) == 4);
	CHECK_STR(out, "//4A");
	/* no room for the NUL */
	CHECK(berth_http_base64("foobar", 6, out, 8) == -1);
	CHECK_STR(out, "");
	CHECK(berth_http_base64("foobar", 6, out, 9) == 8);

	CHECK(berth_http_url_escape("repository:lib/app:pull,push", out,
				    sizeof(out)) == 36);
	CHECK_STR(out, "repository%3Alib%2Fapp%3Apull%2Cpush");
	berth_http_url_escape("a b&c=d\xc3\xa9~._-Z9", out, sizeof(out));
	CHECK_STR(out, "a%20b%26c%3Dd%C3%A9~._-Z9");
	CHECK(berth_http_url_escape("", out, sizeof(out)) == 0);
	CHECK(berth_http_url_escape("a b", out, 5) == -1);
	CHECK_STR(out, "");
	CHECK(berth_http_url_escape("a b", out, 6) == 5);

	struct berth_http_headers h;
	berth_http_headers_init(&h);
	CHECK(bh_response_header_add(&h, " orphan", 7) == 0); /* nothing yet */
	CHECK(bh_response_header_add(&h, "no colon", 8) == 0);
	CHECK(bh_response_header_add(&h, ": no name", 9) == 0);
	CHECK(h.n == 0);
	CHECK(bh_response_header_add(&h, "A:", 2) == 0);
	CHECK(bh_response_header_add(&h, "\t x ", 4) == 0);
	CHECK(bh_response_header_add(&h, "B:\ty\t", 5) == 0);
	CHECK(h.n == 2);
	CHECK_STR(h.v[0], "A: x");
	CHECK_STR(h.v[1], "B: y");
	berth_http_headers_fini(&h);
}

int
main(void)
{
	if (berth_http_global_init() != 0)
		return 2;
	test_text();
	srv_start(&S);
	C = berth_http_client_new();
	CHECK(C != NULL);
	test_methods();
	test_upload();
	test_redirects();
	test_download();
	test_headers();
	test_speed();
	berth_http_client_free(C);
	srv_stop(&S);
	berth_http_global_cleanup();
	TEST_DONE();
}

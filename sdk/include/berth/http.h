/* berth/http.h - Berth's outgoing HTTP client: the one libcurl transport of
 * the daemon's status-hook agent and of the WEBHOOK and SLACK plugins, and
 * a supported helper library for plugin authors (berth/http_plugin.h adds
 * what a job plugin needs on top: manifest settings, stop, job-log lines).
 *
 * The library is libberth_http.a, a static, position-independent archive
 * compiled with hidden visibility, installed with the SDK:
 *
 *   find_package(Berth REQUIRED)
 *   berth_add_plugin(x SOURCES x.c LIBRARIES Berth::http)
 *
 * Each plugin (and berthd itself) links its own private copy, so nothing of
 * it is exported from a plugin and a plugin never depends on a daemon
 * symbol (plugins are built -fvisibility=hidden -Wl,-z,defs). Berth::http
 * brings libcurl along.
 *
 * What a request gets (berth_http_send)
 *   - libcurl, no signals, http and https only;
 *   - the methods GET, HEAD, POST, PUT, PATCH and DELETE;
 *   - exactly the caller's headers plus Host, Content-Length (or
 *     Transfer-Encoding: chunked for a streamed body of unknown length
 *     over HTTP/1.1) and User-Agent: none of libcurl's own Accept,
 *     Content-Type or Expect (so no "Expect: 100-continue" before a
 *     large body);
 *   - a body from memory or streamed from a read callback;
 *   - a timeout for the whole exchange (redirects included), a connect
 *     timeout, and optionally a response-header timeout counted from the
 *     moment the request is fully sent (Go's ResponseHeaderTimeout);
 *   - the response body kept up to a size cap, past which the transfer
 *     either ends (the status still counts) or is read and thrown away
 *     (the connection stays reusable); or, for a 2xx answer, streamed to
 *     a sink callback;
 *   - the response headers, when asked for;
 *   - redirects returned as responses, or followed with Go's rules;
 *   - the proxy and the address check of a struct berth_http_policy;
 *   - optional send and receive speed caps and a stall timeout;
 *   - a cancel callback polled at least every 100 ms.
 *
 * Threads: a struct berth_http_client belongs to one thread at a time; a
 * struct berth_http_policy and a struct berth_http_tls are read-only once
 * built and may be shared by any number of threads. Call
 * berth_http_global_init() before the first client is created (and, in a
 * plugin, berth_http_global_cleanup() once per successful init). */
#ifndef BERTH_HTTP_H
#define BERTH_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Redirects followed at most (Go's http.Client: 10). */
#define BERTH_HTTP_MAX_REDIRECTS 10
/* Room for "scheme://host:port" (response dest and proxy). */
#define BERTH_HTTP_DEST_MAX 320

/* libcurl's process-wide setup (curl_global_init / curl_global_cleanup,
 * reference counted). curl_global_init itself runs at the first request
 * (it starts the TLS library, ~2.3 MiB of RSS), so this returns 0; a
 * libcurl that cannot start fails that request instead. */
int berth_http_global_init(void);
void berth_http_global_cleanup(void);

/* ---- the policy: where a request may go --------------------------------
 *
 * Proxies with the rules of Go's http.ProxyFromEnvironment
 * (golang.org/x/net/http/httpproxy):
 *   - HTTP_PROXY for http:// URLs, HTTPS_PROXY for https:// URLs (tunnelled
 *     with CONNECT); the upper-case variable wins over the lower-case one
 *     when it is set and non-empty; a value without a scheme means
 *     http://<value>; ALL_PROXY is not used;
 *   - NO_PROXY: comma-separated; "*" disables proxies; "example.com"
 *     matches the name and its subdomains, ".example.com" and
 *     "*.example.com" only subdomains; IP addresses and CIDR ranges match
 *     IP literals; any entry may carry ":port"; unparsable entries are
 *     ignored;
 *   - localhost and loopback addresses are never proxied.
 * libcurl's own environment handling is never used: the client always sets
 * the proxy explicitly.
 *
 * Address check (block_private_addresses): when on, connections to
 * unspecified, loopback, private, shared (CGNAT), link-local, site-local,
 * unique-local, multicast and reserved addresses are refused. IPv4-mapped,
 * IPv4-compatible, NAT64 and 6to4 IPv6 forms count as the IPv4 address
 * they carry. The check follows the proxy choice. Without a proxy it
 * runs on every resolved address right before connect() (no DNS-rebinding
 * window); a client's kept-alive connection was checked when it was
 * opened, and connections opened without the check are dropped before a
 * checked request. With a proxy only the proxy is connected to, and the
 * destination is refused beforehand when it is a refused IP literal in
 * any spelling a resolver accepts (2130706433, 0177.0.0.1, 127.1,
 * ::ffff:127.0.0.1, a trailing dot, an IPv6 zone), a localhost name
 * (localhost., *.localhost, localhost.localdomain, ip6-localhost, ...),
 * or a name that resolves locally to a refused address. Residual risk: a
 * name that does not resolve locally but that the proxy resolves to an
 * internal address is sent; NO_PROXY or the proxy's own rules must cover
 * internal domains. */
struct berth_http_policy;

/* A policy from the environment (HTTP_PROXY/http_proxy,
 * HTTPS_PROXY/https_proxy, NO_PROXY/no_proxy, read now), address check
 * off. NULL when out of memory. */
struct berth_http_policy *berth_http_policy_from_env(void);
/* A policy from explicit values (NULL or "" = none), same rules. */
struct berth_http_policy *berth_http_policy_new(const char *http_proxy,
						const char *https_proxy,
						const char *no_proxy);
void berth_http_policy_free(struct berth_http_policy *p);
/* Turns the address check on or off (before the policy is shared). */
void berth_http_policy_set_block_private(struct berth_http_policy *p,
					 bool on);
bool berth_http_policy_blocks_private(const struct berth_http_policy *p);
/* The proxy URL for a request to url ("" = direct; never NULL). */
const char *berth_http_policy_proxy(const struct berth_http_policy *p,
				    const char *url);
/* NULL when addr (a struct sockaddr_in or sockaddr_in6 of len bytes) is a
 * public address, else its class: "unspecified", "loopback", "private",
 * "shared (carrier-grade NAT)", "link-local", "site-local",
 * "unique-local", "multicast", "reserved". */
const char *berth_http_addr_class(const void *addr, size_t len);

/* ---- TLS ---------------------------------------------------------------- */

/* Trust store and client certificate of a request (NULL fields: libcurl's
 * default CA store, no client certificate). */
struct berth_http_tls {
	char *ca_file;     /* PEM bundle (CURLOPT_CAINFO) */
	char *ca_dir;      /* hashed directory (CURLOPT_CAPATH) */
	char *client_cert; /* PEM certificate */
	char *client_key;  /* PEM key */
};

/* Fills t as Harbor's internal clients read their environment:
 * SSL_CERT_FILE, SSL_CERT_DIR, and, when INTERNAL_VERIFY_CLIENT_CERT is
 * "true" (any case), the client certificate INTERNAL_TLS_CERT_PATH and key
 * INTERNAL_TLS_KEY_PATH. Returns 0; 1 when INTERNAL_VERIFY_CLIENT_CERT is
 * true but a path is missing (then t has no client certificate: the
 * caller should warn). */
int berth_http_tls_from_env(struct berth_http_tls *t);
void berth_http_tls_fini(struct berth_http_tls *t);

/* ---- request headers ---------------------------------------------------- */

/* An ordered list of "Name: value" lines. */
struct berth_http_headers {
	char **v;
	size_t n;
	size_t cap;
};

void berth_http_headers_init(struct berth_http_headers *h);
void berth_http_headers_fini(struct berth_http_headers *h);
/* Appends one header; an empty value is sent as "Name:" with nothing
 * after it. 0, or -1 when out of memory. */
int berth_http_headers_add(struct berth_http_headers *h, const char *name,
			   const char *value);
/* Removes every header called name (case-insensitive). */
void berth_http_headers_remove(struct berth_http_headers *h,
			       const char *name);
bool berth_http_headers_has(const struct berth_http_headers *h,
			    const char *name);

/* ---- the client and one request ----------------------------------------- */

/* One libcurl handle and its pool of kept-alive connections (idle ones
 * are closed after 30 s; TCP keep-alive probes after 30 s). Reuse one per
 * thread to keep connections; free it to close them. */
struct berth_http_client;

/* NULL when libcurl cannot create a handle. */
struct berth_http_client *berth_http_client_new(void);
void berth_http_client_free(struct berth_http_client *c);

/* body_read's answer that ends the request (BERTH_HTTP_CANCELLED). */
#define BERTH_HTTP_READ_ABORT ((size_t)-1)

/* A request. Members added after the first version are at the end;
 * zero-initialised, each keeps the earlier behaviour. */
struct berth_http_request {
	/* "GET", "HEAD", "POST", "PUT", "PATCH" or "DELETE" (any case);
	 * NULL: POST; anything else is refused. GET and HEAD send no body
	 * (body, body_len and body_read are ignored); HEAD reads none. POST,
	 * PUT and PATCH always send one (from body/body_len, or body_read),
	 * an empty one as "Content-Length: 0"; DELETE sends one only when
	 * body_len > 0 or body_read is set. */
	const char *method;
	const char *url;    /* http:// or https:// */
	/* sent as they are, plus Host, Content-Length (or
	 * Transfer-Encoding) and User-Agent; NULL = none */
	const struct berth_http_headers *headers;
	/* the body of a method that sends one: body_len bytes (NULL:
	 * empty), unless body_read is set */
	const char *body;
	size_t body_len;
	const char *user_agent; /* unless headers has one; NULL: none */

	long timeout_ms;         /* whole exchange, redirects included; > 0 */
	long connect_timeout_ms; /* per connection; 0: timeout_ms */
	/* from the request being sent until the response headers; 0: none */
	long header_timeout_ms;

	/* follow 301/302/303/307/308 (at most BERTH_HTTP_MAX_REDIRECTS): as
	 * Go, 301/302/303 turn any method but GET and HEAD into a bodiless
	 * GET, 307/308 repeat the method and its body; a streamed body
	 * (body_read) is never sent twice: a 307/308 answering it is
	 * returned as the response. Authorization, Www-Authenticate, Cookie
	 * and Cookie2 are dropped when the host changes; every hop gets the
	 * proxy choice and the address check again. Off: a 3xx is returned
	 * as the response. */
	bool follow_redirects;
	size_t max_response_bytes; /* body bytes kept (0: none) */
	/* past max_response_bytes: false ends the transfer (resp.truncated,
	 * the status still counts), true reads and discards the rest so the
	 * connection can be reused */
	bool drain_excess;

	bool skip_cert_verify;            /* no chain or host-name check */
	const struct berth_http_tls *tls; /* NULL: defaults */
	const struct berth_http_policy *policy; /* NULL: direct, unchecked */

	/* polled at least every 100 ms while the request runs; true ends it
	 * with BERTH_HTTP_CANCELLED. NULL: never. */
	bool (*cancel)(void *ud);
	void *cancel_ud;

	/* ---- streaming (zero: off) ---- */

	/* A streamed request body, replacing body/body_len: called on the
	 * sending thread to fill buf with at most len bytes; returns the
	 * bytes written, 0 at the end of the body, or BERTH_HTTP_READ_ABORT
	 * to end the request (BERTH_HTTP_CANCELLED). body_read_len >= 0 is
	 * the Content-Length: body_read is not asked for more than that many
	 * bytes in all, and ending earlier fails the request
	 * (BERTH_HTTP_FAILED); -1 sends the body until body_read returns 0,
	 * with Transfer-Encoding: chunked over HTTP/1.1. The body is read
	 * once: it is never replayed, by a redirect or otherwise.
	 * body_read and body_sink run inside the transfer: while one of
	 * them blocks, neither cancel nor any timeout is checked, so they
	 * should wait briefly (or poll their own stop). */
	size_t (*body_read)(void *ud, char *buf, size_t len);
	void *body_read_ud;
	long long body_read_len;

	/* A streamed response body: when set, the body of a 2xx final
	 * response is handed to body_sink as it arrives (on the sending
	 * thread, in pieces of any size > 0) instead of being kept:
	 * resp->body stays "" and max_response_bytes does not apply to it.
	 * The body of any other answer (a 404's error text, a redirect not
	 * followed) is kept in resp->body as without a sink. body_sink
	 * returns false to end the request (BERTH_HTTP_CANCELLED). */
	bool (*body_sink)(void *ud, const char *data, size_t len);
	void *body_sink_ud;

	/* Keep the final response's header lines in resp->headers (see
	 * berth_http_response_header). */
	bool keep_headers;

	/* Bytes per second (0: no cap). The request body sent is capped by
	 * libcurl (CURLOPT_MAX_SEND_SPEED_LARGE); the response body read
	 * (sunk or kept) is paced by the client from its first byte, a
	 * piece of at most 16 KiB (smaller under 128 KiB/s) at a time, so
	 * even a short answer takes its time (1 MiB at 512 KiB/s: about
	 * 2 s). A pause of the pace is no stall. */
	long long max_send_bytes_per_s;
	long long max_recv_bytes_per_s;

	/* Ends a hop in which, for this long, no body byte was sent or
	 * received and no response header line arrived:
	 * BERTH_HTTP_TIMEOUT with err "stalled for N s" (or "N ms"). For
	 * long transfers whose timeout_ms is set generously; the connection
	 * and the wait for the response headers count as stalled time.
	 * 0: off. */
	long stall_timeout_ms;
};

struct berth_http_response {
	long status;
	char *body;      /* NUL-terminated, body_len bytes kept; malloc'ed */
	size_t body_len;
	bool truncated;  /* the body was longer than max_response_bytes */
	long long retry_after_s; /* Retry-After in seconds, -1 when absent */
	long long elapsed_ms;
	int redirects;   /* hops followed */
	/* scheme://host:port of the last hop and of its proxy ("" = none);
	 * never credentials, path or query. Set on failures too. */
	char dest[BERTH_HTTP_DEST_MAX];
	char proxy[BERTH_HTTP_DEST_MAX];
	/* req.keep_headers: the final response's header lines in the order
	 * received, each "Name: value" (name as sent, value without its
	 * leading and trailing blanks; folded lines joined); interim (1xx),
	 * proxy CONNECT and redirect responses' headers and trailers are not
	 * kept. Empty otherwise. */
	struct berth_http_headers headers;
};

enum berth_http_result {
	BERTH_HTTP_OK = 0,              /* resp holds an answer (any status) */
	BERTH_HTTP_FAILED = -1,         /* no answer: DNS, connect, TLS,
					 * transfer error, too many redirects */
	BERTH_HTTP_TIMEOUT = -2,        /* timeout_ms ran out, or the
					 * transfer stalled for
					 * stall_timeout_ms */
	BERTH_HTTP_HEADER_TIMEOUT = -3, /* header_timeout_ms ran out */
	BERTH_HTTP_CANCELLED = -4,      /* cancel() said so, or body_read
					 * (BERTH_HTTP_READ_ABORT) or
					 * body_sink (false) */
	BERTH_HTTP_REFUSED = -5,        /* not sent: unusable URL or
					 * method, the address check, out
					 * of memory */
};

/* Sends req over c (NULL: BERTH_HTTP_REFUSED). Always fills resp (free
 * it with berth_http_response_fini, whatever the result). err gets the
 * reason of a failure: for REFUSED a complete sentence; for FAILED and
 * TIMEOUT libcurl's reason or the client's own ("stalled for 30 s", "the
 * request body ended after 10 of its 20 bytes"; TIMEOUT: "" when the time
 * ran out between two redirects), callers prefix the destination; never
 * the body, credentials, path or query of a URL. */
enum berth_http_result berth_http_send(struct berth_http_client *c,
				       const struct berth_http_request *req,
				       struct berth_http_response *resp,
				       char *err, size_t errlen);
/* Frees body and headers (r may be NULL). */
void berth_http_response_fini(struct berth_http_response *r);

/* The value of the final response's header name (case-insensitive; the
 * first one; leading and trailing blanks trimmed), or NULL when absent.
 * Points into r->headers. Needs req.keep_headers. */
const char *berth_http_response_header(const struct berth_http_response *r,
				       const char *name);

static inline bool
berth_http_is_2xx(long status)
{
	return status >= 200 && status < 300;
}

/* ---- small helpers ------------------------------------------------------ */

/* Redacts url to scheme://host:port (no credentials, path or query);
 * "<scheme>://<unparsable address>" when it cannot be parsed. */
void berth_http_redact_url(const char *url, char *out, size_t outlen);
/* Monotonic milliseconds. */
long long berth_http_now_ms(void);

/* Base64 of len bytes of in (RFC 4648 standard alphabet, padded), e.g.
 * for "Authorization: Basic": writes the text and a NUL to out; returns
 * the characters written (4 * ((len + 2) / 3)), or -1 when outlen cannot
 * hold them and the NUL (out then holds ""). */
int berth_http_base64(const void *in, size_t len, char *out, size_t outlen);
/* Percent-encodes s for a URL query value or path segment: the RFC 3986
 * unreserved characters (A-Z a-z 0-9 - . _ ~) are kept, every other byte
 * becomes %XX (upper-case hex). Writes the text and a NUL to out; returns
 * the characters written, or -1 when outlen cannot hold them (out then
 * holds "") or out of memory. */
int berth_http_url_escape(const char *s, char *out, size_t outlen);

#ifdef __cplusplus
}
#endif

#endif /* BERTH_HTTP_H */

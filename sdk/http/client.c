/* client.c - the berth_http client (berth/http.h): libcurl setup, TLS,
 * URLs, one hop over a client's handles, and berth_http_send (hops and
 * redirects). Where a request may go (proxy choice, address classes) is
 * policy.c; header lists, base64 and URL escaping are text.c. */
#define _GNU_SOURCE /* SOCK_CLOEXEC, strcasecmp */
#include "internal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define BH_POLL_MS 100 /* longest wait between two progress checks */
#define BH_IDLE_S 30   /* kept-alive connections, TCP keep-alive */

/* --- small helpers ------------------------------------------------------ */

long long
berth_http_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 3, 4))) static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* libcurl is set up by the first request, not by berth_http_global_init:
 * curl_global_init starts its TLS library, which costs a daemon that never
 * sends a request (no hook URL, no webhook job) about 2.3 MiB of RSS.
 * libcurl >= 7.84 (Debian 12: 7.88) makes curl_global_init thread-safe;
 * the mutex keeps this copy's count (the SDK library is linked into the
 * daemon and into plugins separately). */
static pthread_mutex_t global_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned global_users; /* berth_http_global_init not cleaned up */
static bool global_live;      /* curl_global_init done by this copy */

int
berth_http_global_init(void)
{
	pthread_mutex_lock(&global_mu);
	global_users++;
	pthread_mutex_unlock(&global_mu);
	return 0;
}

void
berth_http_global_cleanup(void)
{
	pthread_mutex_lock(&global_mu);
	if (global_users > 0 && --global_users == 0 && global_live) {
		curl_global_cleanup();
		global_live = false;
	}
	pthread_mutex_unlock(&global_mu);
}

/* The real curl_global_init, once; 0 or -1. */
static int
global_start(void)
{
	int rc = 0;
	pthread_mutex_lock(&global_mu);
	if (!global_live) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
			global_live = true;
		else
			rc = -1;
	}
	pthread_mutex_unlock(&global_mu);
	return rc;
}

/* --- TLS ------------------------------------------------------------------ */

static char *
env_dup(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? strdup(v) : NULL;
}

int
berth_http_tls_from_env(struct berth_http_tls *t)
{
	memset(t, 0, sizeof(*t));
	t->ca_file = env_dup("SSL_CERT_FILE");
	t->ca_dir = env_dup("SSL_CERT_DIR");
	const char *verify = getenv("INTERNAL_VERIFY_CLIENT_CERT");
	if (!verify || strcasecmp(verify, "true") != 0)
		return 0;
	t->client_cert = env_dup("INTERNAL_TLS_CERT_PATH");
	t->client_key = env_dup("INTERNAL_TLS_KEY_PATH");
	if (t->client_cert && t->client_key)
		return 0;
	free(t->client_cert);
	free(t->client_key);
	t->client_cert = t->client_key = NULL;
	return 1;
}

void
berth_http_tls_fini(struct berth_http_tls *t)
{
	if (!t)
		return;
	free(t->ca_file);
	free(t->ca_dir);
	free(t->client_cert);
	free(t->client_key);
	memset(t, 0, sizeof(*t));
}

/* --- URLs ---------------------------------------------------------------- */


/* The scheme of url (letters, digits, + - . before ':'), lower-cased into
 * out; "" when there is none. */
static void
url_scheme(const char *url, char *out, size_t outlen)
{
	size_t i = 0;
	out[0] = '\0';
	if (!isalpha((unsigned char)url[0]))
		return;
	while (isalnum((unsigned char)url[i]) || url[i] == '+' ||
	       url[i] == '-' || url[i] == '.')
		i++;
	if (url[i] != ':')
		return;
	if (i >= outlen)
		i = outlen - 1;
	for (size_t k = 0; k < i; k++)
		out[k] = (char)tolower((unsigned char)url[k]);
	out[i] = '\0';
}

/* Splits any absolute URL into scheme, host and port (no scheme check). */
int
bh_url_split(const char *url, struct bh_url *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	url_scheme(url, u->scheme, sizeof(u->scheme));
	CURLU *h = curl_url();
	char *host = NULL, *port = NULL;
	int rc = -1;
	if (!h) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	CURLUcode uc = curl_url_set(h, CURLUPART_URL, url,
				    CURLU_NON_SUPPORT_SCHEME);
	if (uc == CURLUE_OK)
		uc = curl_url_get(h, CURLUPART_HOST, &host, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	if (uc != CURLUE_OK) {
		set_err(err, errlen, "address is not a valid %s URL: %s",
			u->scheme, curl_url_strerror(uc));
		goto out;
	}
	const char *hp = host;
	size_t hn = strlen(host);
	if (hn >= 2 && host[0] == '[' && host[hn - 1] == ']') {
		hp = host + 1;
		hn -= 2;
		u->ipv6 = true;
	}
	if (hn == 0 || hn >= sizeof(u->host)) {
		set_err(err, errlen, "address has no usable host");
		goto out;
	}
	for (size_t i = 0; i < hn; i++)
		u->host[i] = (char)tolower((unsigned char)hp[i]);
	u->host[hn] = '\0';
	u->port = strtol(port, NULL, 10);
	rc = 0;
out:
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(h);
	return rc;
}

/* An http or https URL (Go's client knows no other scheme). */
static int
url_parse(const char *url, struct bh_url *u, char *err, size_t errlen)
{
	char scheme[33];
	url_scheme(url, scheme, sizeof(scheme));
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		set_err(err, errlen, "unsupported protocol scheme \"%s\"",
			scheme);
		return -1;
	}
	return bh_url_split(url, u, err, errlen);
}

void
bh_url_dest(const struct bh_url *u, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s://%s%s%s:%ld", u->scheme, u->ipv6 ? "[" : "",
		 u->host, u->ipv6 ? "]" : "", u->port);
}

void
berth_http_redact_url(const char *url, char *out, size_t outlen)
{
	struct bh_url u;
	char scheme[33];
	if (bh_url_split(url ? url : "", &u, NULL, 0) == 0) {
		bh_url_dest(&u, out, outlen);
		return;
	}
	/* never echo what could not be parsed: it may hold a secret */
	url_scheme(url ? url : "", scheme, sizeof(scheme));
	snprintf(out, outlen, "%s%s<unparsable address>", scheme,
		 scheme[0] ? "://" : "");
}

/* --- the client ----------------------------------------------------------- */

struct berth_http_client {
	CURLM *multi; /* runs the transfers; holds the connections */
	CURL *curl;
	/* a direct connection was opened without the address check: the
	 * pool may hold one a checked request must not reuse */
	bool pool_unchecked;
};

struct berth_http_client *
berth_http_client_new(void)
{
	/* the libcurl handles are made by the first request */
	return calloc(1, sizeof(struct berth_http_client));
}

/* The client's libcurl handles, made on first use; 0 or -1. */
static int
client_ready(struct berth_http_client *c)
{
	if (c->curl && c->multi)
		return 0;
	if (global_start() < 0)
		return -1;
	if (!c->curl)
		c->curl = curl_easy_init();
	if (!c->multi)
		c->multi = curl_multi_init();
	return c->curl && c->multi ? 0 : -1;
}

void
berth_http_client_free(struct berth_http_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	if (c->multi)
		curl_multi_cleanup(c->multi);
	free(c);
}

/* --- one hop over the client's handles ------------------------------------ */

enum bh_method { BH_GET, BH_HEAD, BH_POST, BH_PUT, BH_PATCH, BH_DELETE };

static const char *const method_names[] = {"GET",   "HEAD",  "POST",
					   "PUT",   "PATCH", "DELETE"};

/* req->method as an enum bh_method (NULL: POST), or -1. */
static int
method_parse(const char *m)
{
	if (!m)
		return BH_POST;
	for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]);
	     i++)
		if (strcasecmp(m, method_names[i]) == 0)
			return (int)i;
	return -1;
}

struct hop {
	const struct berth_http_request *req;
	CURL *curl;
	bool check_sockets; /* block_private without a proxy */
	char blocked[256];  /* why a connect() was refused */
	char failed[160];   /* why a callback ended the transfer */
	char *body;
	size_t len;
	size_t cap; /* allocated */
	size_t max; /* max_response_bytes */
	bool truncated;
	bool cancelled;
	/* the request body from body_read */
	bool streamed;
	long long read_n;  /* bytes body_read gave */
	bool upload_done;  /* body_read reached the end */
	/* the response being read (reset by each status line) */
	bool mode_known;   /* to_sink is decided */
	bool to_sink;      /* a 2xx body for body_sink */
	bool headers_done; /* its blank line passed: what follows is trailers */
	struct berth_http_headers headers; /* keep_headers */
	long long sent_ms;   /* monotonic: request fully sent, or 0 */
	bool got_header;     /* a response header line arrived */
	bool header_timeout; /* ended: no response headers in time */
	/* stall_timeout_ms */
	long long last_move_ms; /* monotonic: the last byte moved */
	curl_off_t moved;       /* body bytes sent + received so far */
	bool stalled;
	/* max_recv_bytes_per_s */
	long long rx_start_ms; /* monotonic: the first body byte, or 0 */
	long long rx_bytes;    /* body bytes taken since */
	bool paused;           /* on_write paused the transfer ... */
	long long resume_ms;   /* ... until then */
};

/* The receive cap, paced here rather than by libcurl's
 * CURLOPT_MAX_RECV_SPEED_LARGE, which lets whatever the socket holds
 * through at the start of each 3 s window (a 1 MiB answer capped at
 * 512 KiB/s arrived in milliseconds): a piece is taken only once the
 * bytes before it have had their time since the first byte, else the
 * transfer pauses (libcurl hands the same piece again after
 * curl_easy_pause) until then. True when the piece of n bytes may be
 * taken now. */
static bool
rx_pace(struct hop *h, size_t n)
{
	long long cap = h->req->max_recv_bytes_per_s;
	if (cap <= 0 || n == 0)
		return true;
	long long now = berth_http_now_ms();
	if (!h->rx_start_ms)
		h->rx_start_ms = now;
	long long due = h->rx_start_ms + h->rx_bytes * 1000 / cap;
	if (now < due) {
		h->paused = true;
		h->resume_ms = due;
		return false;
	}
	h->rx_bytes += (long long)n;
	return true;
}

static size_t
on_write(char *data, size_t size, size_t nmemb, void *ud)
{
	struct hop *h = ud;
	size_t n = size * nmemb;
	if (!rx_pace(h, n))
		return CURL_WRITEFUNC_PAUSE;
	if (!h->mode_known) {
		long code = 0;
		curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &code);
		h->to_sink = h->req->body_sink && berth_http_is_2xx(code);
		h->mode_known = true;
	}
	if (h->to_sink) {
		if (n && !h->req->body_sink(h->req->body_sink_ud, data, n)) {
			h->cancelled = true;
			return 0; /* CURLE_WRITE_ERROR */
		}
		return n;
	}
	size_t take = h->max - h->len < n ? h->max - h->len : n;
	if (take) {
		if (h->len + take + 1 > h->cap) {
			size_t cap = h->cap ? h->cap : 1024;
			while (cap < h->len + take + 1)
				cap *= 2;
			if (cap > h->max + 1)
				cap = h->max + 1;
			char *b = realloc(h->body, cap);
			if (!b)
				return 0; /* fails the transfer */
			h->body = b;
			h->cap = cap;
		}
		memcpy(h->body + h->len, data, take);
		h->len += take;
	}
	if (take < n) {
		h->truncated = true;
		if (!h->req->drain_excess)
			return 0; /* stop reading: CURLE_WRITE_ERROR */
	}
	return n;
}

/* Gives libcurl the next piece of a streamed body, never more than
 * body_read_len in all. */
static size_t
on_read(char *buf, size_t size, size_t nitems, void *ud)
{
	struct hop *h = ud;
	const struct berth_http_request *req = h->req;
	size_t len = size * nitems;
	long long total = req->body_read_len;
	if (total >= 0) {
		if (h->read_n >= total) {
			h->upload_done = true;
			return 0;
		}
		if ((unsigned long long)(total - h->read_n) < len)
			len = (size_t)(total - h->read_n);
	}
	size_t got = req->body_read(req->body_read_ud, buf, len);
	if (got == BERTH_HTTP_READ_ABORT) {
		h->cancelled = true;
		return CURL_READFUNC_ABORT;
	}
	if (got > len) {
		snprintf(h->failed, sizeof(h->failed),
			 "body_read returned %zu bytes for a %zu-byte buffer",
			 got, len);
		return CURL_READFUNC_ABORT;
	}
	if (got == 0) {
		if (total >= 0) {
			snprintf(h->failed, sizeof(h->failed),
				 "the request body ended after %lld of its "
				 "%lld bytes",
				 h->read_n, total);
			return CURL_READFUNC_ABORT;
		}
		h->upload_done = true;
		return 0;
	}
	h->read_n += (long long)got;
	if (total >= 0 && h->read_n == total)
		h->upload_done = true;
	return got;
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct hop *h = ud;
	size_t n = size * nmemb;
	h->got_header = true;
	if (h->req->stall_timeout_ms > 0)
		h->last_move_ms = berth_http_now_ms();
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* a status line: an interim answer, a proxy's answer to
		 * CONNECT or the final response starts */
		berth_http_headers_fini(&h->headers);
		h->headers_done = false;
		h->mode_known = false;
		return n;
	}
	if (!h->req->keep_headers || h->headers_done)
		return n;
	size_t len = n;
	while (len && (data[len - 1] == '\r' || data[len - 1] == '\n'))
		len--;
	if (len == 0) {
		h->headers_done = true;
		return n;
	}
	if (bh_response_header_add(&h->headers, data, len) != 0) {
		snprintf(h->failed, sizeof(h->failed), "out of memory");
		return 0;
	}
	return n;
}

/* Whether the request is fully sent, for the header timeout. */
static bool
request_sent(struct hop *h, curl_off_t ultotal, curl_off_t ulnow)
{
	curl_off_t pre = 0;
	if (h->streamed && h->req->body_read_len < 0)
		return h->upload_done; /* chunked: the total is unknown */
	if (ultotal > 0)
		return ulnow >= ultotal;
	return curl_easy_getinfo(h->curl, CURLINFO_PRETRANSFER_TIME_T, &pre) ==
		       CURLE_OK &&
	       pre > 0;
}

/* Ends a transfer when cancel() says so; when nothing moved for
 * stall_timeout_ms; or when no response header arrived within
 * header_timeout_ms of the request being sent (Go's
 * ResponseHeaderTimeout): a receiver that accepts and never answers holds
 * the caller for that long, not the whole timeout. Called on every round
 * of multi_run, so at least every BH_POLL_MS. */
static int
on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
	    curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal;
	struct hop *h = ud;
	const struct berth_http_request *req = h->req;
	if (req->cancel && req->cancel(req->cancel_ud)) {
		h->cancelled = true;
		return 1; /* CURLE_ABORTED_BY_CALLBACK */
	}
	bool stall = req->stall_timeout_ms > 0;
	bool header = req->header_timeout_ms > 0 && !h->got_header;
	if (!stall && !header)
		return 0;
	long long now = berth_http_now_ms();
	if (stall) {
		if (h->paused || dlnow + ulnow != h->moved) {
			/* a pause of the receive cap is no stall */
			h->moved = dlnow + ulnow;
			h->last_move_ms = now;
		} else if (now - h->last_move_ms >= req->stall_timeout_ms) {
			h->stalled = true;
			return 1;
		}
	}
	if (!header)
		return 0;
	if (!h->sent_ms) {
		if (request_sent(h, ultotal, ulnow))
			h->sent_ms = now;
		return 0;
	}
	if (now - h->sent_ms >= req->header_timeout_ms) {
		h->header_timeout = true;
		return 1;
	}
	return 0;
}

/* Every connection libcurl opens passes here: the resolved address is
 * checked right before connect(), so DNS rebinding cannot slip past. */
static curl_socket_t
on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct hop *h = ud;
	unsigned char ip[16];
	const char *cls;
	if (purpose == CURLSOCKTYPE_IPCXN && h->check_sockets &&
	    bh_sockaddr_ip(&a->addr, a->addrlen, ip) &&
	    (cls = bh_addr_class(ip)) != NULL) {
		char text[64];
		bh_ip_text(ip, text, sizeof(text));
		snprintf(h->blocked, sizeof(h->blocked), BH_BLOCKED_FMT, text,
			 cls);
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* Runs the transfer set up on c->curl, as curl_easy_perform does, but
 * wakes up every BH_POLL_MS even when nothing happens, so that
 * on_progress sees cancel() and the timeouts on time (the easy loop
 * waits up to a second between checks), and resumes a transfer paused by
 * the receive cap on time. The connections stay in c->multi for the next
 * request. */
static CURLcode
multi_run(struct berth_http_client *c, struct hop *h, char *errbuf)
{
	CURLMcode mc = curl_multi_add_handle(c->multi, c->curl);
	int running = mc == CURLM_OK;
	while (running && mc == CURLM_OK) {
		mc = curl_multi_perform(c->multi, &running);
		if (mc != CURLM_OK || !running)
			break;
		long long wait = BH_POLL_MS;
		if (h->paused) {
			const struct berth_http_request *req = h->req;
			if (req->cancel && req->cancel(req->cancel_ud)) {
				h->cancelled = true;
				break;
			}
			wait = h->resume_ms - berth_http_now_ms();
			if (wait <= 0) {
				/* may call on_write, which may pause again */
				h->paused = false;
				h->last_move_ms = berth_http_now_ms();
				curl_easy_pause(c->curl, CURLPAUSE_CONT);
				continue;
			}
			if (wait > BH_POLL_MS)
				wait = BH_POLL_MS;
		}
		mc = curl_multi_poll(c->multi, NULL, 0, (int)wait, NULL);
	}
	CURLcode rc = CURLE_FAILED_INIT;
	int left;
	CURLMsg *m;
	while ((m = curl_multi_info_read(c->multi, &left)))
		if (m->msg == CURLMSG_DONE && m->easy_handle == c->curl)
			rc = m->data.result;
	if (mc != CURLM_OK && !errbuf[0])
		snprintf(errbuf, CURL_ERROR_SIZE, "%s",
			 curl_multi_strerror(mc));
	curl_multi_remove_handle(c->multi, c->curl);
	return rc;
}

struct hop_in {
	const char *url;
	int method;     /* enum bh_method */
	bool send_body; /* body/body_len or body_read */
	const struct berth_http_headers *headers;
	const char *proxy; /* "" = direct */
	long timeout_ms;   /* what is left of the whole exchange */
};

struct hop_out {
	long code;
	long long retry_after_s;
	char *redirect_url; /* malloc'ed, or NULL */
};

static enum berth_http_result
hop_run(struct berth_http_client *cl, struct hop *h, const struct hop_in *in,
	struct hop_out *out, char *err, size_t errlen)
{
	const struct berth_http_request *req = h->req;
	const struct berth_http_tls *tls = req->tls;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = bh_headers_slist(in->headers);
	CURL *c = cl->curl;
	if (!hdrs) {
		set_err(err, errlen, "out of memory");
		return BERTH_HTTP_REFUSED;
	}
	long connect_ms = in->timeout_ms;
	if (req->connect_timeout_ms > 0 && req->connect_timeout_ms < connect_ms)
		connect_ms = req->connect_timeout_ms;
	/* back to defaults; the connections, DNS and TLS session caches stay */
	curl_easy_reset(c);
	h->curl = c;
	curl_easy_setopt(c, CURLOPT_URL, in->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, in->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, (long)BH_IDLE_S);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, (long)BH_IDLE_S);
	curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, (long)BH_IDLE_S);
	/* always explicit: libcurl's own environment reading is replaced */
	curl_easy_setopt(c, CURLOPT_PROXY, in->proxy);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "");
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER,
			 req->skip_cert_verify ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST,
			 req->skip_cert_verify ? 0L : 2L);
	if (tls && tls->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, tls->ca_file);
	if (tls && tls->ca_dir)
		curl_easy_setopt(c, CURLOPT_CAPATH, tls->ca_dir);
	if (tls && tls->client_cert && tls->client_key) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, tls->client_cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, tls->client_key);
	}
	if (req->user_agent)
		curl_easy_setopt(c, CURLOPT_USERAGENT, req->user_agent);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (in->method == BH_HEAD) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (!in->send_body) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (h->streamed) {
		/* POST's machinery (the method is set below): Content-Length,
		 * or, when the length is -1, libcurl's own chunked encoding
		 * (HTTP/1.1; HTTP/2 needs none) */
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(req->body_read_len >= 0
						      ? req->body_read_len
						      : -1));
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, h);
	} else {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)req->body_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS,
				 req->body ? req->body : "");
	}
	if (in->method != BH_GET && in->method != BH_HEAD &&
	    in->method != BH_POST)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
				 method_names[in->method]);
	if (req->max_send_bytes_per_s > 0)
		curl_easy_setopt(c, CURLOPT_MAX_SEND_SPEED_LARGE,
				 (curl_off_t)req->max_send_bytes_per_s);
	if (req->max_recv_bytes_per_s > 0 &&
	    req->max_recv_bytes_per_s < 8 * CURL_MAX_WRITE_SIZE) {
		/* smaller pieces for a smoother pace (rx_pace) */
		long b = (long)(req->max_recv_bytes_per_s / 8);
		curl_easy_setopt(c, CURLOPT_BUFFERSIZE, b < 1024 ? 1024L : b);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, h);

	enum berth_http_result st = BERTH_HTTP_FAILED;
	CURLcode rc = multi_run(cl, h, errbuf);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (h->cancelled) {
		st = BERTH_HTTP_CANCELLED;
	} else if (h->failed[0]) {
		set_err(err, errlen, "%s", h->failed);
	} else if (h->stalled) {
		long ms = req->stall_timeout_ms;
		if (ms % 1000 == 0)
			set_err(err, errlen, "stalled for %ld s", ms / 1000);
		else
			set_err(err, errlen, "stalled for %ld ms", ms);
		st = BERTH_HTTP_TIMEOUT;
	} else if (h->header_timeout) {
		set_err(err, errlen, "no response headers within %ld ms",
			req->header_timeout_ms);
		st = BERTH_HTTP_HEADER_TIMEOUT;
	} else if (rc != CURLE_OK &&
		   !(rc == CURLE_WRITE_ERROR && h->truncated && code > 0)) {
		if (h->blocked[0]) {
			set_err(err, errlen, "%s", h->blocked);
			st = BERTH_HTTP_REFUSED;
		} else {
			set_err(err, errlen, "%s",
				errbuf[0] ? errbuf : curl_easy_strerror(rc));
			st = rc == CURLE_OPERATION_TIMEDOUT ? BERTH_HTTP_TIMEOUT
							    : BERTH_HTTP_FAILED;
		}
	} else {
		out->code = code;
		curl_off_t ra = -1;
		if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) !=
			    CURLE_OK ||
		    ra <= 0)
			ra = -1;
		/* libcurl reports 0 for "Retry-After: 0" and for no header */
		out->retry_after_s = (long long)ra;
		char *loc = NULL;
		if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) ==
			    CURLE_OK &&
		    loc)
			out->redirect_url = strdup(loc);
		st = BERTH_HTTP_OK;
	}
	/* nothing of this request may outlive it in the handle */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hdrs);
	return st;
}

/* --- berth_http_send: hops and redirects ---------------------------------- */

static bool
is_redirect(long code)
{
	return code == 301 || code == 302 || code == 303 || code == 307 ||
	       code == 308;
}

static enum berth_http_result
send_hops(struct berth_http_client *cl, const struct berth_http_request *req,
	  struct berth_http_response *resp, char *err, size_t errlen)
{
	const struct berth_http_policy *pol = req->policy;
	long long start = berth_http_now_ms();
	char *url = strdup(req->url ? req->url : "");
	struct berth_http_headers hdrs;
	struct bh_url u, prev = {0};
	int method = method_parse(req->method);
	bool send_body = method == BH_POST || method == BH_PUT ||
			 method == BH_PATCH ||
			 (method == BH_DELETE &&
			  (req->body_read || req->body_len > 0));
	enum berth_http_result st = BERTH_HTTP_REFUSED;
	if (bh_headers_copy(&hdrs, req->headers) != 0 || !url) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	if (method < 0) {
		/* the name only: it is the caller's constant, but bounded */
		set_err(err, errlen, "unsupported method \"%.16s\"",
			req->method);
		goto out;
	}
	/* one overall deadline, as Go's http.Client.Timeout */
	long long deadline = start + req->timeout_ms;
	for (int hops = 0;; hops++) {
		st = BERTH_HTTP_REFUSED;
		if (url_parse(url, &u, err, errlen) != 0)
			goto out;
		bh_url_dest(&u, resp->dest, sizeof(resp->dest));
		if (hops > 0 && strcmp(u.host, prev.host) != 0) {
			/* Go's rule: no credentials to another host */
			static const char *const sensitive[] = {
				"Authorization", "Www-Authenticate", "Cookie",
				"Cookie2"};
			for (size_t i = 0; i < 4; i++)
				berth_http_headers_remove(&hdrs, sensitive[i]);
		}
		prev = u;
		const char *proxy = bh_policy_proxy(pol, &u);
		if (proxy[0])
			berth_http_redact_url(proxy, resp->proxy,
					      sizeof(resp->proxy));
		else
			resp->proxy[0] = '\0';
		bool block = pol && pol->block_private;
		if (block && proxy[0] && bh_precheck_host(u.host, err, errlen))
			goto out;

		long left = (long)(deadline - berth_http_now_ms());
		if (left <= 0) {
			set_err(err, errlen, "%s", "");
			st = BERTH_HTTP_TIMEOUT;
			goto out;
		}
		if (block && !proxy[0] && cl->pool_unchecked) {
			/* the address check runs when a connection is opened:
			 * drop the connections opened without it */
			CURLM *m = curl_multi_init();
			if (!m) {
				set_err(err, errlen, "out of memory");
				goto out;
			}
			curl_multi_cleanup(cl->multi);
			cl->multi = m;
			cl->pool_unchecked = false;
		} else if (!block && !proxy[0]) {
			cl->pool_unchecked = true;
		}
		struct hop h = {
			.req = req,
			.check_sockets = block && !proxy[0],
			.max = req->max_response_bytes,
			.streamed = send_body && req->body_read,
			.last_move_ms = berth_http_now_ms(),
		};
		struct hop_in in = {
			.url = url,
			.method = method,
			.send_body = send_body,
			.headers = &hdrs,
			.proxy = proxy,
			.timeout_ms = left,
		};
		struct hop_out o = {0};
		st = hop_run(cl, &h, &in, &o, err, errlen);
		if (st != BERTH_HTTP_OK) {
			free(h.body);
			berth_http_headers_fini(&h.headers);
			goto out;
		}
		bool follow = req->follow_redirects && is_redirect(o.code) &&
			      o.redirect_url;
		/* Go: a 307/308 whose body cannot be sent again is the
		 * answer */
		if (follow && (o.code == 307 || o.code == 308) && h.streamed)
			follow = false;
		if (follow && hops >= BERTH_HTTP_MAX_REDIRECTS) {
			free(h.body);
			berth_http_headers_fini(&h.headers);
			free(o.redirect_url);
			set_err(err, errlen, "stopped after %d redirects",
				BERTH_HTTP_MAX_REDIRECTS);
			st = BERTH_HTTP_FAILED;
			goto out;
		}
		if (follow) {
			/* Go: 301/302/303 turn any method but GET and HEAD
			 * into a bodiless GET, 307/308 repeat it */
			if (o.code != 307 && o.code != 308 &&
			    method != BH_GET && method != BH_HEAD) {
				method = BH_GET;
				send_body = false;
			}
			free(h.body);
			berth_http_headers_fini(&h.headers);
			free(url);
			url = o.redirect_url;
			resp->redirects++;
			continue;
		}
		free(o.redirect_url);
		resp->status = o.code;
		resp->retry_after_s = o.retry_after_s;
		resp->headers = h.headers;
		resp->body = h.body ? h.body : strdup("");
		if (!resp->body) {
			set_err(err, errlen, "out of memory");
			st = BERTH_HTTP_REFUSED;
			goto out;
		}
		resp->body[h.len] = '\0';
		resp->body_len = h.len;
		resp->truncated = h.truncated;
		break;
	}
out:
	resp->elapsed_ms = berth_http_now_ms() - start;
	free(url);
	berth_http_headers_fini(&hdrs);
	return st;
}

enum berth_http_result
berth_http_send(struct berth_http_client *c,
		const struct berth_http_request *req,
		struct berth_http_response *resp, char *err, size_t errlen)
{
	memset(resp, 0, sizeof(*resp));
	resp->retry_after_s = -1;
	set_err(err, errlen, "%s", "");
	if (req->cancel && req->cancel(req->cancel_ud))
		return BERTH_HTTP_CANCELLED;
	if (!c) {
		set_err(err, errlen, "no HTTP client");
		return BERTH_HTTP_REFUSED;
	}
	if (client_ready(c) < 0) {
		set_err(err, errlen, "libcurl could not be started");
		return BERTH_HTTP_REFUSED;
	}
	return send_hops(c, req, resp, err, errlen);
}

void
berth_http_response_fini(struct berth_http_response *r)
{
	if (!r)
		return;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	berth_http_headers_fini(&r->headers);
}

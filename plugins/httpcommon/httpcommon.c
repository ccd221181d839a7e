/* httpcommon.c - the outgoing HTTP transport of WEBHOOK and SLACK; see
 * httpcommon.h for what it guarantees. Sections: small helpers, settings
 * and environment, headers, URLs, one hop over libcurl, hc_post (hops and
 * redirects), formatting. Where a request may go (proxy choice, address
 * classes) is netpolicy.c. */
#define _GNU_SOURCE /* SOCK_CLOEXEC, strcasecmp */
#include "httpcommon.h"
#include "netpolicy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define HC_STOP_POLL_MS 100

/* --- small helpers ------------------------------------------------------ */

long long
hc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
hc_wait(struct berth_job_ctx *ctx, long long ms)
{
	long long end = hc_now_ms() + (ms > 0 ? ms : 0);
	for (;;) {
		if (berth_stop_requested(ctx))
			return true;
		long long left = end - hc_now_ms();
		if (left <= 0)
			return false;
		if (left > HC_STOP_POLL_MS)
			left = HC_STOP_POLL_MS;
		struct timespec ts = {
			.tv_sec = (time_t)(left / 1000),
			.tv_nsec = (long)(left % 1000) * 1000000L,
		};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
}

const char *
hc_go_type_name(enum berth_json_type t)
{
	switch (t) {
	case BERTH_JSON_BOOL:
		return "bool";
	case BERTH_JSON_NUMBER:
		return "float64";
	case BERTH_JSON_STRING:
		return "string";
	case BERTH_JSON_ARRAY:
		return "[]interface {}";
	case BERTH_JSON_OBJECT:
		return "map[string]interface {}";
	default:
		return "<nil>";
	}
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

static char *
dup_str(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* --- settings and environment ------------------------------------------ */

uint32_t
hc_env_max_fails(void)
{
	const char *v = getenv("JOBSERVICE_WEBHOOK_JOB_MAX_RETRY");
	if (!v)
		return HC_DEFAULT_MAX_FAILS;
	/* strconv.ParseUint(v, 10, 32): digits only, no sign or spaces */
	if (!*v)
		return HC_DEFAULT_MAX_FAILS;
	unsigned long long n = 0;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return HC_DEFAULT_MAX_FAILS;
		n = n * 10 + (unsigned)(*p - '0');
		if (n > UINT32_MAX)
			return HC_DEFAULT_MAX_FAILS;
	}
	return (uint32_t)n;
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
	if (!v)
		return strdup("");
	if (strstr(v, "://"))
		return strdup(v);
	size_t n = strlen(v) + sizeof("http://");
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "http://%s", v);
	return s;
}

static int
read_bool_setting(struct berth_job_ctx *ctx, const char *key, bool *out)
{
	enum berth_json_type t = berth_setting_type(ctx, key);
	if (t == BERTH_JSON_ABSENT || t == BERTH_JSON_NULL)
		return 0;
	if (!berth_setting_bool(ctx, key, out)) {
		berth_log_error(ctx, "setting %s must be true or false", key);
		return -1;
	}
	return 0;
}

int
hc_settings_load(struct berth_job_ctx *ctx, struct hc_settings *s,
		 const char *user_agent)
{
	memset(s, 0, sizeof(*s));
	s->timeout_ms = HC_DEFAULT_TIMEOUT_S * 1000L;
	s->max_response_bytes = HC_DEFAULT_MAX_RESPONSE_BYTES;
	s->user_agent = user_agent;

	if (read_bool_setting(ctx, "follow_redirects", &s->follow_redirects) ||
	    read_bool_setting(ctx, "block_private_addresses",
			      &s->block_private))
		return -1;
	enum berth_json_type t = berth_setting_type(ctx, "max_response_bytes");
	if (t != BERTH_JSON_ABSENT && t != BERTH_JSON_NULL) {
		double d = -1;
		if (!berth_setting_number(ctx, "max_response_bytes", &d) ||
		    !(d >= 0 && d <= (double)HC_MAX_RESPONSE_BYTES_LIMIT) ||
		    d != (double)(long long)d) {
			berth_log_error(ctx, "setting max_response_bytes must be "
					     "an integer in 0..%ld",
					HC_MAX_RESPONSE_BYTES_LIMIT);
			return -1;
		}
		s->max_response_bytes = (size_t)d;
	}

	/* Go: strconv.ParseInt; Berth refuses <= 0 (Go's 0 = no timeout) */
	const char *tv = getenv("JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT");
	if (tv) {
		char *end = NULL;
		errno = 0;
		long long n = strtoll(tv, &end, 10);
		if (errno || !*tv || *end || n <= 0 || n > HC_MAX_TIMEOUT_S)
			berth_log_warning(
				ctx,
				"JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT=%s "
				"is not a number of seconds in 1..%d; using "
				"%d s",
				tv, HC_MAX_TIMEOUT_S, HC_DEFAULT_TIMEOUT_S);
		else
			s->timeout_ms = (long)n * 1000L;
	}

	s->http_proxy = proxy_normalise(env_any("HTTP_PROXY", "http_proxy"));
	s->https_proxy =
		proxy_normalise(env_any("HTTPS_PROXY", "https_proxy"));
	if (!s->http_proxy || !s->https_proxy ||
	    hc_noproxy_parse(s, env_any("NO_PROXY", "no_proxy")) != 0) {
		berth_log_error(ctx, "out of memory");
		hc_settings_fini(s);
		return -1;
	}
	return 0;
}

void
hc_settings_fini(struct hc_settings *s)
{
	if (!s)
		return;
	free(s->http_proxy);
	free(s->https_proxy);
	hc_noproxy_free(s);
	memset(s, 0, sizeof(*s));
}

/* --- headers ------------------------------------------------------------ */

void
hc_headers_init(struct hc_headers *h)
{
	memset(h, 0, sizeof(*h));
}

void
hc_headers_fini(struct hc_headers *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i]);
	free(h->v);
	memset(h, 0, sizeof(*h));
}

static int
headers_push(struct hc_headers *h, char *line)
{
	if (!line)
		return -1;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 8;
		char **v = realloc(h->v, cap * sizeof(*v));
		if (!v) {
			free(line);
			return -1;
		}
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n++] = line;
	return 0;
}

int
hc_headers_add(struct hc_headers *h, const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 3;
	char *line = malloc(n);
	if (!line)
		return -1;
	/* libcurl: "Name:" removes a header, "Name;" sends it empty */
	if (*value)
		snprintf(line, n, "%s: %s", name, value);
	else
		snprintf(line, n, "%s;", name);
	return headers_push(h, line);
}

static bool
line_is(const char *line, const char *name)
{
	size_t n = strlen(name);
	return strncasecmp(line, name, n) == 0 &&
	       (line[n] == ':' || line[n] == ';');
}

void
hc_headers_remove(struct hc_headers *h, const char *name)
{
	size_t j = 0;
	for (size_t i = 0; i < h->n; i++) {
		if (line_is(h->v[i], name))
			free(h->v[i]);
		else
			h->v[j++] = h->v[i];
	}
	h->n = j;
}

bool
hc_headers_has(const struct hc_headers *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (line_is(h->v[i], name))
			return true;
	return false;
}

static int
headers_copy(struct hc_headers *dst, const struct hc_headers *src)
{
	hc_headers_init(dst);
	for (size_t i = 0; src && i < src->n; i++)
		if (headers_push(dst, strdup(src->v[i])) != 0)
			return -1;
	return 0;
}

/* The exact list handed to libcurl: the caller's headers, then blanks
 * that stop libcurl from adding its own Accept, Content-Type and Expect. */
static struct curl_slist *
headers_slist(const struct hc_headers *h)
{
	static const char *const internal[] = {"Accept", "Content-Type",
					       "Expect"};
	struct curl_slist *l = NULL, *t;
	for (size_t i = 0; i < h->n; i++) {
		if (!(t = curl_slist_append(l, h->v[i])))
			goto oom;
		l = t;
	}
	for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++) {
		char blank[32];
		if (hc_headers_has(h, internal[i]))
			continue;
		snprintf(blank, sizeof(blank), "%s:", internal[i]);
		if (!(t = curl_slist_append(l, blank)))
			goto oom;
		l = t;
	}
	return l;
oom:
	curl_slist_free_all(l);
	return NULL;
}

/* --- URLs ---------------------------------------------------------------- */

struct hc_url {
	char scheme[33]; /* lower case */
	char host[256];  /* lower case, IPv6 without brackets */
	long port;       /* explicit or the scheme's default */
	bool ipv6;
};

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
static int
url_split(const char *url, struct hc_url *u, char *err, size_t errlen)
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
url_parse(const char *url, struct hc_url *u, char *err, size_t errlen)
{
	char scheme[33];
	url_scheme(url, scheme, sizeof(scheme));
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		set_err(err, errlen, "unsupported protocol scheme \"%s\"",
			scheme);
		return -1;
	}
	return url_split(url, u, err, errlen);
}

static void
url_dest(const struct hc_url *u, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s://%s%s%s:%ld", u->scheme, u->ipv6 ? "[" : "",
		 u->host, u->ipv6 ? "]" : "", u->port);
}

void
hc_redact_url(const char *url, char *out, size_t outlen)
{
	struct hc_url u;
	char scheme[33];
	if (url_split(url ? url : "", &u, NULL, 0) == 0) {
		url_dest(&u, out, outlen);
		return;
	}
	/* never echo what could not be parsed: it may hold a secret */
	url_scheme(url ? url : "", scheme, sizeof(scheme));
	snprintf(out, outlen, "%s%s<unparsable address>", scheme,
		 scheme[0] ? "://" : "");
}

/* --- one hop over libcurl ------------------------------------------------ */

struct hop {
	struct berth_job_ctx *ctx;
	bool check_sockets; /* block_private without a proxy */
	char blocked[256];  /* why a connect() was refused */
	char *body;
	size_t len;
	size_t cap;  /* allocated */
	size_t max;  /* max_response_bytes */
	bool truncated;
	bool stopped;
	long long stop_checked_ms;
};

static size_t
on_write(char *data, size_t size, size_t nmemb, void *ud)
{
	struct hop *h = ud;
	size_t n = size * nmemb;
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
		return 0; /* stop reading: CURLE_WRITE_ERROR */
	}
	return n;
}

static int
on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
	    curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	struct hop *h = ud;
	long long now = hc_now_ms();
	if (now - h->stop_checked_ms < HC_STOP_POLL_MS)
		return 0;
	h->stop_checked_ms = now;
	if (berth_stop_requested(h->ctx)) {
		h->stopped = true;
		return 1; /* CURLE_ABORTED_BY_CALLBACK */
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
	    hc_sockaddr_ip(&a->addr, a->addrlen, ip) &&
	    (cls = hc_addr_class(ip)) != NULL) {
		char text[INET6_ADDRSTRLEN];
		hc_ip_text(ip, text, sizeof(text));
		snprintf(h->blocked, sizeof(h->blocked), HC_BLOCKED_FMT, text,
			 cls);
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

struct hop_in {
	const char *url;
	bool post;
	const char *body;
	size_t body_len;
	const struct hc_headers *headers;
	bool skip_cert_verify;
	const char *proxy; /* "" = direct */
	long timeout_ms;
};

struct hop_out {
	long code;
	long long retry_after_s;
	char *redirect_url; /* malloc'ed, or NULL */
};

static enum hc_status
hop_run(struct hop *h, const struct hc_settings *s, const struct hop_in *in,
	struct hop_out *out, const char *dest, char *err, size_t errlen)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = headers_slist(in->headers);
	CURL *c = curl_easy_init();
	enum hc_status st = HC_FAILED;
	if (!c || !hdrs) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, in->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, in->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, in->timeout_ms);
	/* always explicit: libcurl's own environment reading is replaced */
	curl_easy_setopt(c, CURLOPT_PROXY, in->proxy);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER,
			 in->skip_cert_verify ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST,
			 in->skip_cert_verify ? 0L : 2L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, s->user_agent);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (in->post) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)in->body_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS,
				 in->body ? in->body : "");
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, h);

	CURLcode rc = curl_easy_perform(c);
	if (h->stopped) {
		st = HC_STOPPED;
		goto out;
	}
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && h->truncated &&
				code > 0)) {
		if (h->blocked[0])
			set_err(err, errlen, "%s", h->blocked);
		else if (rc == CURLE_OPERATION_TIMEDOUT)
			set_err(err, errlen,
				"POST %s: timeout after %ld ms (%s)", dest,
				s->timeout_ms,
				errbuf[0] ? errbuf : curl_easy_strerror(rc));
		else
			set_err(err, errlen, "POST %s: %s", dest,
				errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	out->code = code;
	curl_off_t ra = -1;
	if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK ||
	    ra <= 0)
		ra = -1;
	/* libcurl reports 0 for "Retry-After: 0" and for no header alike */
	out->retry_after_s = (long long)ra;
	char *loc = NULL;
	if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK &&
	    loc)
		out->redirect_url = strdup(loc);
	st = HC_RESPONSE;
out:
	if (c)
		curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	return st;
}

/* --- hc_post: hops and redirects ---------------------------------------- */

static bool
is_redirect(long code)
{
	return code == 301 || code == 302 || code == 303 || code == 307 ||
	       code == 308;
}

enum hc_status
hc_post(struct berth_job_ctx *ctx, const struct hc_settings *s,
	const struct hc_request *req, struct hc_response *resp, char *err,
	size_t errlen)
{
	memset(resp, 0, sizeof(*resp));
	resp->retry_after_s = -1;
	if (berth_stop_requested(ctx))
		return HC_STOPPED;

	long long start = hc_now_ms();
	char *url = dup_str(req->url ? req->url : "");
	struct hc_headers hdrs;
	struct hc_url u, prev = {0};
	bool post = true;
	enum hc_status st = HC_FAILED;
	if (headers_copy(&hdrs, req->headers) != 0 || !url) {
		set_err(err, errlen, "out of memory");
		goto out;
	}
	/* one overall deadline, as Go's http.Client.Timeout */
	long long deadline = start + s->timeout_ms;
	for (int hops = 0;; hops++) {
		if (url_parse(url, &u, err, errlen) != 0)
			goto out;
		url_dest(&u, resp->dest, sizeof(resp->dest));
		if (hops > 0 && strcmp(u.host, prev.host) != 0) {
			/* Go's rule: no credentials to another host */
			static const char *const sensitive[] = {
				"Authorization", "Www-Authenticate", "Cookie",
				"Cookie2"};
			for (size_t i = 0; i < 4; i++)
				hc_headers_remove(&hdrs, sensitive[i]);
		}
		prev = u;
		const char *proxy = strcmp(u.scheme, "https") == 0
					    ? s->https_proxy
					    : s->http_proxy;
		if (!proxy[0] || !hc_use_proxy(s, u.host, u.port))
			proxy = "";
		if (proxy[0])
			hc_redact_url(proxy, resp->proxy, sizeof(resp->proxy));
		else
			resp->proxy[0] = '\0';
		if (s->block_private && proxy[0] &&
		    hc_precheck_host(u.host, err, errlen))
			goto out;

		long left = (long)(deadline - hc_now_ms());
		if (left <= 0) {
			set_err(err, errlen, "POST %s: timeout after %ld ms",
				resp->dest, s->timeout_ms);
			goto out;
		}
		struct hop h = {
			.ctx = ctx,
			.check_sockets = s->block_private && !proxy[0],
			.max = s->max_response_bytes,
			.stop_checked_ms = hc_now_ms(),
		};
		struct hop_in in = {
			.url = url,
			.post = post,
			.body = req->body,
			.body_len = req->body_len,
			.headers = &hdrs,
			.skip_cert_verify = req->skip_cert_verify,
			.proxy = proxy,
			.timeout_ms = left,
		};
		struct hop_out o = {0};
		st = hop_run(&h, s, &in, &o, resp->dest, err, errlen);
		if (st != HC_RESPONSE) {
			free(h.body);
			goto out;
		}
		bool follow = s->follow_redirects && is_redirect(o.code) &&
			      o.redirect_url;
		if (follow && hops >= HC_MAX_REDIRECTS) {
			free(h.body);
			free(o.redirect_url);
			set_err(err, errlen, "POST %s: stopped after %d "
					     "redirects",
				resp->dest, HC_MAX_REDIRECTS);
			st = HC_FAILED;
			goto out;
		}
		if (follow) {
			/* Go: 301/302/303 turn a POST into a bodiless GET,
			 * 307/308 repeat it */
			if (o.code != 307 && o.code != 308)
				post = false;
			free(h.body);
			free(url);
			url = o.redirect_url;
			resp->redirects++;
			continue;
		}
		free(o.redirect_url);
		resp->code = o.code;
		resp->retry_after_s = o.retry_after_s;
		resp->body = h.body ? h.body : strdup("");
		if (!resp->body) {
			set_err(err, errlen, "out of memory");
			st = HC_FAILED;
			goto out;
		}
		resp->body[h.len] = '\0';
		resp->body_len = h.len;
		resp->truncated = h.truncated;
		break;
	}
out:
	resp->elapsed_ms = hc_now_ms() - start;
	free(url);
	hc_headers_fini(&hdrs);
	return st;
}

void
hc_response_fini(struct hc_response *r)
{
	if (!r)
		return;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

/* --- formatting ---------------------------------------------------------- */

void
hc_format_abnormal(char *err, size_t errlen, const struct hc_response *r)
{
	char body[HC_ERROR_BODY_MAX + 1];
	size_t n = r->body_len < HC_ERROR_BODY_MAX ? r->body_len
						   : HC_ERROR_BODY_MAX;
	bool cut = n < r->body_len || r->truncated;
	/* do not split a UTF-8 sequence */
	if (n < r->body_len)
		while (n > 0 && ((unsigned char)r->body[n] & 0xc0) == 0x80)
			n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)r->body[i];
		body[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	body[n] = '\0';
	set_err(err, errlen, "abnormal response code: %ld, body: %s%s",
		r->code, body, cut ? "... (truncated)" : "");
}

void
hc_log_exchange(struct berth_job_ctx *ctx, const struct hc_response *r,
		size_t sent)
{
	char via[HC_DEST_MAX + 16] = "";
	char redirs[48] = "";
	if (r->proxy[0])
		snprintf(via, sizeof(via), " via proxy %s", r->proxy);
	if (r->redirects)
		snprintf(redirs, sizeof(redirs), " after %d redirect(s)",
			 r->redirects);
	berth_log_info(ctx,
		       "POST %s%s: HTTP %ld%s in %lld ms, sent %zu bytes, "
		       "received %zu bytes%s",
		       r->dest, via, r->code, redirs, r->elapsed_ms, sent,
		       r->body_len, r->truncated ? " (truncated)" : "");
}

/* hook_send.c - what the hook agent sends and how: the payload, the HTTP
 * POST and the ACK (spec 7.2 - 7.4); see hook.c for the queues and the
 * retries.
 *
 * Payload
 *   The StatusChange payload of spec 7.2 is built from the snapshot at
 *   submit time, as Go encodes it: struct key order, parameters sorted,
 *   `<>&` escaped.
 *
 * HTTP
 *   Each delivery thread keeps its own libcurl easy and multi handles
 *   (keep-alive pool). POST with no Content-Type, Authorization, Expect or
 *   Accept header; success is HTTP 200 exactly (spec 7.3). Proxies:
 *   HTTP_PROXY/http_proxy for http, HTTPS_PROXY/https_proxy for https,
 *   never for localhost or loopback addresses (Go's rule);
 *   NO_PROXY/no_proxy is handed to libcurl's CURLOPT_NOPROXY, whose
 *   matching is close to Go's but not identical (no CIDR ranges in older
 *   libcurl). TLS uses the system CA store ($SSL_CERT_FILE /
 *   $SSL_CERT_DIR when set) and, when INTERNAL_VERIFY_CLIENT_CERT=true,
 *   the client certificate INTERNAL_TLS_CERT_PATH / INTERNAL_TLS_KEY_PATH.
 *   Timeouts: connect 10 s, response headers 10 s after the request is
 *   sent, whole attempt 30 s (struct hook_agent_config). A failure is
 *   either an answer other than 200 or no answer at all (connect, TLS or
 *   transfer error, a timeout): only the latter marks the receiver
 *   degraded (Receivers in hook.c).
 *
 * ACK
 *   The stats and their ack belong to the tracker: every HTTP 200 runs
 *   tracker_ack (SCRIPT_ACK, spec 7.4) with the event's status,
 *   metadata.revision and metadata.check_in_at - after a successful retry
 *   too (Go skips that, quirk Q9, and lets the reaper re-send once). The
 *   script refuses an ACK older than the stored one, so this is harmless
 *   and spares core the duplicate. The stored ack is also read before
 *   every retry (hook_event_outdated; see Retries in hook.c). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/gojson.h"
#include "hooks/hook.h"
#include "hooks/hook_internal.h"
#include "logs/log.h"

#define HOOK_IDLE_S 30 /* keep-alive connections (spec 7.3) */
#define HOOK_POLL_MS 100 /* longest wait between two progress checks */

/* ---- the payload (spec 7.2) -------------------------------------------- */

static void
append_member(struct gbuf *b, const char *key, const char *v)
{
	gbuf_puts(b, key);
	gojson_append_string(b, v, strlen(v));
}

/* {"job_id","status"[,"check_in"],"metadata"} in Go's struct order; the
 * metadata is the snapshot's own Go rendering (job_stats_append_go). */
char *
hook_payload_encode(const struct job_stats *snap, const char *check_in)
{
	struct gbuf b = {0};
	append_member(&b, "{\"job_id\":", snap->id ? snap->id : "");
	append_member(&b, ",\"status\":", snap->status ? snap->status : "");
	if (!str_empty(check_in))
		append_member(&b, ",\"check_in\":", check_in);
	gbuf_puts(&b, ",\"metadata\":");
	job_stats_append_go(&b, snap, true);
	gbuf_putc(&b, '}');
	return gbuf_take(&b);
}

/* ---- HTTP (spec 7.3) ----------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init_once(void)
{
	CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK)
		log_error("hook agent: curl_global_init: %s",
			  curl_easy_strerror(rc));
}

void
hook_http_global_init(void)
{
	pthread_once(&curl_once, curl_init_once);
}

static size_t
http_collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct hook_http *h = ud;
	size_t n = size * nmemb;
	size_t room = HOOK_BODY_MAX - h->body_len;
	size_t take = n < room ? n : room;
	memcpy(h->body + h->body_len, ptr, take);
	h->body_len += take;
	return n;
}

static size_t
http_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	(void)ptr;
	struct hook_http *h = ud;
	h->got_header = true;
	return size * nmemb;
}

/* Ends a transfer once the stop deadline has passed, or when no response
 * header arrived within header_ms of the request being sent (Go's
 * ResponseHeaderTimeout, spec 7.3): a receiver that accepts and never
 * answers holds a delivery thread for 10 s, not the whole 30 s. Called on
 * every round of http_perform, so at least every HOOK_POLL_MS. */
static int
http_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
	      curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow;
	struct hook_http *h = ud;
	if (atomic_load(&h->agent->abort))
		return 1;
	if (h->got_header)
		return 0;
	int64_t now = util_monotonic_ms();
	if (!h->sent_ms) {
		curl_off_t pre = 0;
		if (ultotal > 0 ? ulnow >= ultotal
				: (curl_easy_getinfo(h->curl,
						     CURLINFO_PRETRANSFER_TIME_T,
						     &pre) == CURLE_OK &&
				   pre > 0))
			h->sent_ms = now;
		return 0;
	}
	if (now - h->sent_ms >= h->agent->header_ms) {
		h->header_timeout = true;
		return 1;
	}
	return 0;
}

static struct curl_slist *
slist_add(struct curl_slist *l, const char *s)
{
	struct curl_slist *n = curl_slist_append(l, s);
	if (!n) {
		fprintf(stderr, "berthd: out of memory (curl)\n");
		abort();
	}
	return n;
}

void
hook_http_init(struct hook_agent *a, struct hook_http *h)
{
	memset(h, 0, sizeof(*h));
	h->agent = a;
	CURL *c = curl_easy_init();
	h->multi = curl_multi_init();
	if (!c || !h->multi) {
		log_error("hook agent: cannot create a libcurl handle; hooks "
			  "of this thread fail");
		if (c)
			curl_easy_cleanup(c);
		return;
	}
	h->curl = c;
	/* no Content-Type (curl would add a form type), no Expect, no
	 * Accept: Go sends neither */
	h->hdrs = slist_add(NULL, "Content-Type:");
	h->hdrs = slist_add(h->hdrs, "Expect:");
	h->hdrs = slist_add(h->hdrs, "Accept:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, a->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, a->connect_ms);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 30L);
	curl_easy_setopt(c, CURLOPT_MAXAGE_CONN, (long)HOOK_IDLE_S);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, http_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	if (a->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, a->ca_file);
	if (a->ca_dir)
		curl_easy_setopt(c, CURLOPT_CAPATH, a->ca_dir);
	if (a->client_cert && a->client_key) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, a->client_cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, a->client_key);
	}
}

void
hook_http_fini(struct hook_http *h)
{
	if (h->curl)
		curl_easy_cleanup(h->curl);
	if (h->multi)
		curl_multi_cleanup(h->multi);
	curl_slist_free_all(h->hdrs);
}

/* Go never proxies localhost nor loopback addresses. */
static bool
host_is_loopback(const char *host)
{
	char buf[64];
	size_t n = strlen(host);
	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (n >= 2 && n < sizeof(buf) && host[0] == '[' &&
	    host[n - 1] == ']') {
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		host = buf;
	}
	struct in_addr v4;
	struct in6_addr v6;
	if (inet_pton(AF_INET, host, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6) ||
		       (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
	return false;
}

/* Proxy as Go's http.ProxyFromEnvironment picks it; set explicitly so
 * libcurl's own environment rules (lowercase http_proxy only) never
 * apply. */
static void
http_set_proxy(struct hook_agent *a, CURL *c, const char *url)
{
	const char *proxy = NULL;
	char *scheme = NULL, *host = NULL;
	CURLU *u = curl_url();
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    !host_is_loopback(host))
		proxy = strcasecmp(scheme, "https") == 0 ? a->https_proxy
							 : a->http_proxy;
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	curl_easy_setopt(c, CURLOPT_PROXY, proxy ? proxy : "");
	curl_easy_setopt(c, CURLOPT_NOPROXY, a->no_proxy ? a->no_proxy : "");
}

/* Copies text into out for a log line: control bytes become spaces,
 * trailing space is cut. */
static void
clean_text(char *out, size_t n, const char *text, size_t len)
{
	size_t k = 0;
	for (size_t i = 0; i < len && k + 1 < n; i++) {
		unsigned char ch = (unsigned char)text[i];
		out[k++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	while (k > 0 && out[k - 1] == ' ')
		k--;
	out[k] = '\0';
}

/* Runs the transfer set up on h->curl, as curl_easy_perform does, but
 * wakes up every HOOK_POLL_MS even when nothing happens, so that
 * http_progress ends a silent receiver's attempt on time (the easy loop
 * waits up to a second between checks). The connections stay in h->multi
 * for the next attempt. */
static CURLcode
http_perform(struct hook_http *h)
{
	CURLMcode mc = curl_multi_add_handle(h->multi, h->curl);
	int running = mc == CURLM_OK;
	while (running && mc == CURLM_OK) {
		mc = curl_multi_perform(h->multi, &running);
		if (mc == CURLM_OK && running)
			mc = curl_multi_poll(h->multi, NULL, 0, HOOK_POLL_MS,
					     NULL);
	}
	CURLcode rc = CURLE_FAILED_INIT;
	int left;
	CURLMsg *m;
	while ((m = curl_multi_info_read(h->multi, &left)))
		if (m->msg == CURLMSG_DONE && m->easy_handle == h->curl)
			rc = m->data.result;
	if (mc != CURLM_OK && !h->errbuf[0])
		snprintf(h->errbuf, sizeof(h->errbuf), "%s",
			 curl_multi_strerror(mc));
	curl_multi_remove_handle(h->multi, h->curl);
	return rc;
}

/* One POST: an enum hook_post (errtxt on failure). */
int
hook_http_post(struct hook_agent *a, struct hook_http *h,
	       const struct hook_event *e, char *errtxt, size_t n)
{
	if (!h->curl) {
		snprintf(errtxt, n, "no HTTP client (libcurl handle missing)");
		return HOOK_POST_NO_ANSWER;
	}
	CURL *c = h->curl;
	h->body_len = 0;
	h->errbuf[0] = '\0';
	h->sent_ms = 0;
	h->got_header = false;
	h->header_timeout = false;
	curl_easy_setopt(c, CURLOPT_URL, e->url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, e->payload);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)strlen(e->payload));
	http_set_proxy(a, c, e->url);
	CURLcode rc = http_perform(h);
	if (rc == CURLE_ABORTED_BY_CALLBACK && atomic_load(&a->abort))
		return HOOK_POST_ABORTED;
	if (rc == CURLE_ABORTED_BY_CALLBACK && h->header_timeout) {
		snprintf(errtxt, n, "Post \"%s\": net/http: timeout awaiting "
				    "response headers", e->url);
		return HOOK_POST_NO_ANSWER;
	}
	if (rc != CURLE_OK) {
		snprintf(errtxt, n, "Post \"%s\": %s", e->url,
			 h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
		return HOOK_POST_NO_ANSWER;
	}
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (code == 200)
		return HOOK_POST_OK;
	clean_text(errtxt, n, h->body, h->body_len);
	if (!errtxt[0])
		snprintf(errtxt, n,
			 "failed to report status change via hook, expect "
			 "'200' but got '%ld'", code);
	return HOOK_POST_REFUSED;
}

/* ---- the ACK (spec 7.4, 7.5) -------------------------------------------- */

/* spec 7.4 after an HTTP 200. */
void
hook_event_ack(struct hook_agent *a, const struct hook_event *e,
	       const char *desc)
{
	struct berr err;
	berr_clear(&err);
	int rc = tracker_ack(a->tracker, e->job_id, e->status, e->revision,
			     e->check_in_at, &err);
	if (rc < 0)
		log_warn("%s: ack: %s", desc, err.msg);
	else if (rc == 0)
		log_debug("%s: no ack done for event", desc);
}

/* spec 7.5: true when the stored ack is at or past e. A Redis error or a
 * missing ack: false (the attempt goes ahead). */
bool
hook_event_outdated(struct hook_agent *a, const struct hook_event *e)
{
	cJSON *ack = NULL;
	struct berr err;
	berr_clear(&err);
	if (tracker_read_ack(a->tracker, e->job_id, &ack, &err) < 0) {
		log_debug("hook event %s: ack not read (%s); sending", e->id,
			  err.msg);
		return false;
	}
	bool out = ack && job_ack_diff(ack, e->status, e->revision,
				       e->check_in_at) <= 0;
	cJSON_Delete(ack);
	return out;
}

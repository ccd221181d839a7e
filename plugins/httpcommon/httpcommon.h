/* httpcommon.h - the outgoing HTTP transport shared by the WEBHOOK and SLACK
 * plugins (spec 13.2). A static, position-independent library linked into
 * both .so files; it is not a plugin and exports nothing from them.
 *
 * What it does for one POST (hc_post):
 *   - libcurl, one easy handle per call, no signals, http/https only;
 *   - the headers given by the caller and nothing else of libcurl's own
 *     (no Accept, Content-Type or Expect unless the caller sets them);
 *   - proxy chosen exactly like Go's http.ProxyFromEnvironment (HTTP_PROXY,
 *     HTTPS_PROXY, NO_PROXY, upper or lower case, loopback never proxied);
 *   - one overall timeout for the whole exchange, redirects included;
 *   - the response body kept up to max_response_bytes;
 *   - redirects returned as responses, or followed (at most 10) when the
 *     follow_redirects setting is on, every hop re-checked;
 *   - block_private_addresses: refuses loopback, private, link-local,
 *     unique-local, unspecified, multicast and reserved destinations,
 *     checked on the resolved address right before connect();
 *   - berth_stop_requested() polled while the transfer runs.
 *
 * Threads: hc_settings_load() runs in init(); everything else in run(), on
 * any number of worker threads at once (the settings are read-only then).
 */
#ifndef BERTH_HTTPCOMMON_H
#define BERTH_HTTPCOMMON_H

#include <berth/plugin.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Harbor's defaults (spec 11.4). */
#define HC_DEFAULT_TIMEOUT_S 3
#define HC_DEFAULT_MAX_FAILS 3
/* Berth's bounds. */
#define HC_DEFAULT_MAX_RESPONSE_BYTES 65536
#define HC_MAX_RESPONSE_BYTES_LIMIT (64L * 1024 * 1024)
#define HC_MAX_TIMEOUT_S 86400
#define HC_ERROR_BODY_MAX 512
#define HC_MAX_REDIRECTS 10
#define HC_DEST_MAX 320

/* One NO_PROXY entry, parsed once (Go's httpproxy matchers). */
struct hc_noproxy;

/* Everything a type reads once in init(): manifest settings and the
 * environment (Go reads both once per process too). */
struct hc_settings {
	long timeout_ms;           /* JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT */
	bool follow_redirects;     /* setting, default false */
	bool block_private;        /* setting block_private_addresses */
	size_t max_response_bytes; /* setting, default 65536 */
	const char *user_agent;    /* static; sent unless a header sets one */
	/* proxies from the environment, normalised ("" = none) */
	char *http_proxy;
	char *https_proxy;
	bool noproxy_all;
	struct hc_noproxy *noproxy;
	size_t n_noproxy;
};

/* Reads the common settings (follow_redirects, max_response_bytes,
 * block_private_addresses) and the environment into *s. Returns 0, or -1
 * after logging the reason with berth_log_error (a bad setting). */
int hc_settings_load(struct berth_job_ctx *ctx, struct hc_settings *s,
		     const char *user_agent);
void hc_settings_fini(struct hc_settings *s);

/* JOBSERVICE_WEBHOOK_JOB_MAX_RETRY as Go's MaxFails() reads it: unset or
 * not a decimal uint32 gives 3; any valid value (0 included) is used. Safe
 * in a constructor (getenv only). */
uint32_t hc_env_max_fails(void);

/* A list of request header lines ("Name: value"), in order. */
struct hc_headers {
	char **v;
	size_t n;
	size_t cap;
};

void hc_headers_init(struct hc_headers *h);
void hc_headers_fini(struct hc_headers *h);
/* Appends one header; an empty value is sent as "Name:" with nothing after
 * it. Returns 0, or -1 when out of memory. */
int hc_headers_add(struct hc_headers *h, const char *name, const char *value);
/* Removes every header called name (case-insensitive). */
void hc_headers_remove(struct hc_headers *h, const char *name);
bool hc_headers_has(const struct hc_headers *h, const char *name);

struct hc_request {
	const char *url;
	const char *body;
	size_t body_len;
	/* Exactly these headers are sent, plus Host, Content-Length and
	 * User-Agent (settings.user_agent unless the list has one). */
	const struct hc_headers *headers;
	bool skip_cert_verify;
};

struct hc_response {
	long code;
	char *body; /* NUL-terminated, body_len bytes kept */
	size_t body_len;
	bool truncated;       /* the body was longer than max_response_bytes */
	long long retry_after_s; /* Retry-After in seconds, -1 when absent */
	long long elapsed_ms;
	int redirects;          /* hops followed */
	char dest[HC_DEST_MAX]; /* scheme://host:port of the last hop */
	char proxy[HC_DEST_MAX]; /* scheme://host:port of its proxy, or "" */
};

enum hc_status {
	HC_RESPONSE = 0, /* *resp holds an HTTP response (any code) */
	HC_FAILED = -1,  /* no response; err says why */
	HC_STOPPED = -2, /* the job was stopped while sending */
};

/* POSTs req (run() only). On HC_RESPONSE free resp with hc_response_fini
 * (on the other results there is nothing to free). err gets the reason of
 * HC_FAILED: never the payload, never credentials, the query or the path
 * of a URL. */
enum hc_status hc_post(struct berth_job_ctx *ctx, const struct hc_settings *s,
		       const struct hc_request *req, struct hc_response *resp,
		       char *err, size_t errlen);
void hc_response_fini(struct hc_response *r);

static inline bool
hc_is_2xx(long code)
{
	return code >= 200 && code < 300;
}

/* "abnormal response code: <code>, body: <body>", the body cut at
 * HC_ERROR_BODY_MAX bytes (on a UTF-8 boundary) with control characters
 * flattened to spaces. */
void hc_format_abnormal(char *err, size_t errlen, const struct hc_response *r);

/* One INFO line in the job log describing the exchange (destination,
 * proxy, status, duration, bytes). */
void hc_log_exchange(struct berth_job_ctx *ctx, const struct hc_response *r,
		     size_t sent);

/* Redacts url to scheme://host:port (no credentials, path or query). */
void hc_redact_url(const char *url, char *out, size_t outlen);

/* Monotonic milliseconds. */
long long hc_now_ms(void);
/* Sleeps ms milliseconds polling berth_stop_requested() every 100 ms;
 * true when a stop was requested (then it returns at once). */
bool hc_wait(struct berth_job_ctx *ctx, long long ms);

/* Writes the Go type name of a parameter's JSON type ("float64", "bool",
 * "[]interface {}", "map[string]interface {}", "<nil>", "string"). */
const char *hc_go_type_name(enum berth_json_type t);

#endif /* BERTH_HTTPCOMMON_H */

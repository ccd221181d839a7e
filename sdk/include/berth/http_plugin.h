/* berth/http_plugin.h - berth/http.h for job plugins: what WEBHOOK and SLACK
 * share on top of the client, part of the same library (Berth::http).
 *
 *   struct berth_http_settings st;            in init():
 *   berth_http_settings_load(ctx, &st, "my-plugin/1.0");
 *   ... in run():
 *   berth_http_post(ctx, &st, &post, &resp, err, errlen);
 *   berth_http_log_exchange(ctx, &resp, post.body_len);
 *   ... in fini():
 *   berth_http_settings_fini(&st);
 *
 * berth_http_settings_load also calls berth_http_global_init(), and
 * berth_http_settings_fini the matching berth_http_global_cleanup().
 *
 * Threads: settings are loaded in init() and read-only afterwards; every
 * other function here runs in run() (or validate()) on any number of
 * worker threads at once. */
#ifndef BERTH_HTTP_PLUGIN_H
#define BERTH_HTTP_PLUGIN_H

#include <berth/http.h>
#include <berth/plugin.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Harbor's defaults (spec 11.4). */
#define BERTH_HTTP_DEFAULT_TIMEOUT_S 3
#define BERTH_HTTP_DEFAULT_MAX_FAILS 3
/* Berth's bounds. */
#define BERTH_HTTP_DEFAULT_MAX_RESPONSE_BYTES 65536
#define BERTH_HTTP_MAX_RESPONSE_BYTES_LIMIT (64L * 1024 * 1024)
#define BERTH_HTTP_MAX_TIMEOUT_S 86400
#define BERTH_HTTP_ERROR_BODY_MAX 512

/* What a plugin type reads once in init(). */
struct berth_http_settings {
	/* JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT (seconds, 1..86400,
	 * default 3: Harbor's notification client) */
	long timeout_ms;
	bool follow_redirects;     /* setting, default false */
	size_t max_response_bytes; /* setting, default 65536, 0..64 MiB */
	const char *user_agent;    /* static; sent unless a header sets one */
	/* the environment's proxies and the setting block_private_addresses
	 * (default false) */
	struct berth_http_policy *policy;
};

/* Reads the settings follow_redirects, max_response_bytes and
 * block_private_addresses, the timeout variable and the proxy environment
 * into *s, and starts libcurl. 0, or -1 after logging the reason with
 * berth_log_error (a bad setting, out of memory). */
int berth_http_settings_load(struct berth_job_ctx *ctx,
			     struct berth_http_settings *s,
			     const char *user_agent);
void berth_http_settings_fini(struct berth_http_settings *s);

/* One POST of a plugin. */
struct berth_http_post {
	const char *url;
	const char *body;
	size_t body_len;
	const struct berth_http_headers *headers; /* NULL: none */
	bool skip_cert_verify;
};

/* POSTs p with the settings s over a fresh client, ended by
 * berth_stop_requested(). BERTH_HTTP_OK, BERTH_HTTP_CANCELLED, or (every
 * other result) a failure whose err reads, as the WEBHOOK README lists:
 *   unsupported protocol scheme "ftp"          (a refused request: as is)
 *   POST <dest>: <reason>                      (no answer)
 *   POST <dest>: timeout after <ms> ms (<reason>)
 * Free resp with berth_http_response_fini in every case. */
enum berth_http_result berth_http_post(struct berth_job_ctx *ctx,
				       const struct berth_http_settings *s,
				       const struct berth_http_post *p,
				       struct berth_http_response *resp,
				       char *err, size_t errlen);

/* "abnormal response code: <code>, body: <body>", the body cut at
 * BERTH_HTTP_ERROR_BODY_MAX bytes (on a UTF-8 boundary, "... (truncated)"
 * appended) with control characters flattened to spaces. */
void berth_http_format_abnormal(char *err, size_t errlen,
				const struct berth_http_response *r);

/* One INFO line in the job log describing the exchange:
 * "POST <dest>[ via proxy <proxy>]: HTTP <code>[ after N redirect(s)] in
 * <ms> ms, sent <n> bytes, received <n> bytes[ (truncated)]". */
void berth_http_log_exchange(struct berth_job_ctx *ctx,
			     const struct berth_http_response *r, size_t sent);

/* Sleeps ms milliseconds polling berth_stop_requested() every 100 ms;
 * true when a stop was requested (then it returns at once). */
bool berth_http_wait(struct berth_job_ctx *ctx, long long ms);

/* The Go type name of a parameter's JSON type, for Harbor's error texts
 * ("float64", "bool", "string", "[]interface {}",
 * "map[string]interface {}", "<nil>"). */
const char *berth_http_go_type_name(enum berth_json_type t);

/* JOBSERVICE_WEBHOOK_JOB_MAX_RETRY as Go's MaxFails() reads it: unset or
 * not a decimal uint32 gives 3; any valid value (0 included) is used.
 * getenv only: safe anywhere. */
uint32_t berth_http_env_max_fails(void);

#ifdef __cplusplus
}
#endif

#endif /* BERTH_HTTP_PLUGIN_H */

/* http.h - the REST server on civetweb: routing under /api/v1, Harbor-Secret
 * authentication (spec 2.2), the request body cap, and the JSON/error
 * helpers every resource file uses. One file per REST resource registers
 * its handlers in the route table of http.c. */
#ifndef BERTH_API_HTTP_H
#define BERTH_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <civetweb.h>

#include "daemon.h"

/* Error codes of spec 2.3 (and one Berth extension). */
enum api_code {
	API_E_READ_BODY = 10000,
	API_E_JSON = 10001,
	API_E_LAUNCH = 10003,
	API_E_CHECK_STATS = 10004,
	API_E_GET_STATS = 10005,
	API_E_STOP = 10006,
	API_E_UNKNOWN_ACTION = 10008,
	API_E_JOB_LOG = 10009,
	API_E_NOT_FOUND = 10010,
	API_E_UNAUTHORIZED = 10011,
	API_E_CONFLICT = 10012,
	API_E_BAD_REQUEST = 10013,
	API_E_GET_JOBS = 10014,
	API_E_EXECUTIONS = 10015,
	API_E_MISMATCH = 10016,
	/* Berth: wrong method on a known path (Go answers 405 with no body) */
	API_E_METHOD = 10017,
	/* Berth: a Berth-only operation failed (plugins reload) */
	API_E_INTERNAL = 10018,
};

#define API_MAX_PARAMS 4

/* Request bodies nesting arrays/objects deeper than this get 400 before
 * any parser runs (cJSON recurses on a ~100 KiB civetweb stack). */
#define API_MAX_JSON_DEPTH 64
#define API_MAX_JSON_DEPTH_TEXT "64"

/* POST /api/v1/jobs/batch reads bodies up to this many times
 * max_body_bytes (1,000 jobs of about 8 KiB each with the default cap),
 * never more than API_BATCH_BODY_MAX bytes. Every other route keeps
 * max_body_bytes. */
#define API_BATCH_BODY_FACTOR 8
#define API_BATCH_BODY_FACTOR_TEXT "8"
#define API_BATCH_BODY_MAX ((int64_t)256 << 20)

struct api_request {
	struct berthd *d;
	struct mg_connection *conn;
	const struct mg_request_info *ri;
	const char *method;
	const char *path;      /* without the query */
	const char *query;     /* may be NULL */
	const char *params[API_MAX_PARAMS]; /* {x} path segments, decoded */
	size_t n_params;
	char *body;            /* read on demand by api_read_body */
	size_t body_len;
	bool batch_body;       /* the route takes a batch: a larger body cap */
};

typedef int (*api_handler)(struct api_request *req);

struct api_server;

/* Starts civetweb on cfg->listen_address:cfg->port (port 0 picks a free
 * one), HTTPS when cfg->https. */
struct api_server *api_server_start(struct berthd *d, struct berr *err);
int api_server_port(const struct api_server *s);
void api_server_stop(struct api_server *s);

/* Reads the whole body (up to cfg->max_body_bytes, or the batch cap above
 * when req->batch_body). On failure the error
 * response has already been sent: 413 past the cap, 400 for a body that
 * cannot be framed (duplicate, invalid or conflicting Content-Length,
 * malformed chunks, fewer bytes than Content-Length before civetweb's
 * request_timeout_ms) or JSON nested deeper than API_MAX_JSON_DEPTH.
 * Returns the status sent as a negative number. */
int api_read_body(struct api_request *req);

/* Sends 'status' with a JSON body (takes ownership of json; NULL = none). */
int api_send_json(struct api_request *req, int status, cJSON *json);
/* Sends the error body of spec 2.3: {"code","message","details"}. */
int api_send_error(struct api_request *req, int status, enum api_code code,
		   const char *details_fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The error object of spec 2.3, {"code","message","details"} (details
 * left out when empty): the body api_send_error sends, and one item of a
 * batch response. */
cJSON *api_error_json(enum api_code code, const char *details);
/* Sends a status with no body (e.g. 204). */
int api_send_empty(struct api_request *req, int status);
/* Sends extra headers with a JSON body. headers: "Name: value\r\n"... */
int api_send_json_headers(struct api_request *req, int status,
			  const char *headers, cJSON *json);

/* --- helpers of the Berth routes (the Operations API) ------------------- */

/* Refuses a query naming a parameter not in allowed (NULL-terminated):
 * 400, code 10013, "unknown query parameter '<name>'". 0 when every name
 * is allowed, else the status sent, negated. */
int api_query_allowed(struct api_request *req, const char *const *allowed);
/* The decoded value of query parameter name in buf (n bytes); false when
 * absent (or longer than buf). */
bool api_query_str(const struct api_request *req, const char *name,
		   char *buf, size_t n);
/* An integer query parameter in [lo, hi]: 1 read, 0 absent (*out keeps
 * its value), else 400 sent ("<name> must be an integer from lo to hi")
 * and the status negated. */
int api_query_int(struct api_request *req, const char *name, int64_t lo,
		  int64_t hi, int64_t *out);
/* The body {"action":"<word>"} with word one of allowed (NULL-terminated):
 * 0 and *action = that entry of allowed; else 400 sent (a body that is
 * not a JSON object, no string action, an unknown action) and the status
 * negated. */
int api_body_action(struct api_request *req, const char *const *allowed,
		    const char **action);
/* A store call failed: 500, code 10018, details = its error. */
int api_store_failed(struct api_request *req, const struct berr *err);

/* The body of POST /api/v1/jobs decoded into the request shape (spec 2.5).
 * The strings point into the parsed document (and name_buf). */
struct api_submit {
	const char *name;
	const char *kind;
	double delay;
	bool unique;
	const char *cron;
	const char *hook;
	const cJSON *params;
};
/* Why a body was refused: what api_jobs_post answers. */
struct api_submit_error {
	int status;
	enum api_code code;
	char details[1024];
};
/* Parses and checks the body (len bytes, need not be NUL-terminated) as
 * POST /api/v1/jobs does before anything touches Redis or a plugin.
 * Returns 0 with *doc (cJSON_Delete it; s points into it), or the HTTP
 * status with e filled in and *doc NULL. Shared by the route and the fuzz
 * target tests/fuzz/fuzz_submit.c. */
int api_submit_decode(const char *body, size_t len, cJSON **doc,
		      struct api_submit *s, char *name_buf, size_t name_len,
		      struct api_submit_error *e);

/* Resource handlers (one file each). */
int api_stats_get(struct api_request *req);
int api_config_get(struct api_request *req);
int api_plugins_get(struct api_request *req);
int api_plugins_reload(struct api_request *req);
int api_jobs_post(struct api_request *req);
int api_jobs_batch(struct api_request *req);
int api_jobs_list(struct api_request *req);
int api_job_get(struct api_request *req);
int api_job_action(struct api_request *req);
int api_job_executions(struct api_request *req);
int api_job_log(struct api_request *req);
/* The Operations API (Berth; README "Operations API"). */
int api_queues_get(struct api_request *req);
int api_queue_put(struct api_request *req);
int api_pools_get(struct api_request *req);
int api_pool_workers_get(struct api_request *req);
int api_retries_get(struct api_request *req);
int api_retries_post(struct api_request *req);
int api_retry_post(struct api_request *req);
int api_dead_get(struct api_request *req);
int api_dead_post(struct api_request *req);
int api_dead_one_post(struct api_request *req);
int api_periodic_get(struct api_request *req);

#endif

/* http.c - civetweb setup, routing, authentication, body reading and the
 * response helpers; see http.h. */
#include "api/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api_ui.h"
#include "api/conn_gate.h"
#include "common/gojson.h"
#include "common/http_reply.h"
#include "common/json.h"
#include "logs/log.h"

struct api_server {
	struct mg_context *ctx;
	struct berthd *d;
	int port;
	char *pem_path; /* cert+key bundle written for civetweb, or NULL */
};

struct route {
	const char *method;
	const char *pattern; /* segments; "{}" matches one non-empty segment */
	api_handler fn;
	bool batch_body;     /* the batch body cap (http.h) */
};

/* The route table: one row per method and path. */
static const struct route routes[] = {
	{"GET", "/api/v1/stats", api_stats_get, false},
	{"GET", "/api/v1/config", api_config_get, false},
	{"GET", "/api/v1/metrics", api_metrics_get, false},
	{"GET", "/api/v1/metrics/history", api_metrics_history_get, false},
	{"GET", "/api/v1/plugins", api_plugins_get, false},
	{"POST", "/api/v1/plugins/reload", api_plugins_reload, false},
	{"POST", "/api/v1/jobs", api_jobs_post, false},
	/* before /api/v1/jobs/{}, which would take "batch" as a job id */
	{"POST", "/api/v1/jobs/batch", api_jobs_batch, true},
	{"GET", "/api/v1/jobs", api_jobs_list, false},
	{"GET", "/api/v1/jobs/{}", api_job_get, false},
	{"POST", "/api/v1/jobs/{}", api_job_action, false},
	{"GET", "/api/v1/jobs/{}/executions", api_job_executions, false},
	{"GET", "/api/v1/jobs/{}/log", api_job_log, false},
	/* the Operations API (Berth) */
	{"GET", "/api/v1/queues", api_queues_get, false},
	{"PUT", "/api/v1/queues/{}", api_queue_put, false},
	{"GET", "/api/v1/pools", api_pools_get, false},
	{"GET", "/api/v1/pools/{}/workers", api_pool_workers_get, false},
	{"GET", "/api/v1/retries", api_retries_get, false},
	{"POST", "/api/v1/retries", api_retries_post, false},
	{"POST", "/api/v1/retries/{}", api_retry_post, false},
	{"GET", "/api/v1/dead", api_dead_get, false},
	{"POST", "/api/v1/dead", api_dead_post, false},
	{"POST", "/api/v1/dead/{}", api_dead_one_post, false},
	{"GET", "/api/v1/periodic", api_periodic_get, false},
};

static const char *const error_messages[] = {
	[0] = "read request body failed with error",
	[1] = "handle json data failed with error",
	[2] = "missing backend controller to handle the requests",
	[3] = "launch job failed with error",
	[4] = "check stats of server failed with error",
	[5] = "get job stats failed with error",
	[6] = "stop job failed with error",
	[7] = "retry job failed with error",
	[8] = "unknown job action name",
	[9] = "failed to get the job log",
	[10] = "object is not found",
	[11] = "unauthorized",
	[12] = "conflict",
	[13] = "bad request",
	[14] = "failed to get scheduled jobs",
	[15] = "failed to get periodic executions",
	[16] = "mismatch job status",
	[17] = "method not allowed",
	[18] = "internal error",
};

int
api_send_json_headers(struct api_request *req, int status,
		      const char *headers, cJSON *json)
{
	char *body = json ? cJSON_PrintUnformatted(json) : NULL;
	char hdr[512];
	snprintf(hdr, sizeof(hdr),
		 "Content-Type: application/json\r\n"
		 "Accept: application/json\r\n%s",
		 headers ? headers : "");
	http_reply_send(req->conn, status, hdr, body, body ? strlen(body) : 0);
	free(body);
	cJSON_Delete(json);
	return status;
}

int
api_send_json(struct api_request *req, int status, cJSON *json)
{
	return api_send_json_headers(req, status, NULL, json);
}

int
api_send_empty(struct api_request *req, int status)
{
	http_reply_send(req->conn, status, NULL, NULL, 0);
	return status;
}

cJSON *
api_error_json(enum api_code code, const char *details)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "code", code);
	size_t idx = (size_t)code - 10000;
	cJSON_AddStringToObject(o, "message",
				idx < ARRAY_LEN(error_messages)
					? error_messages[idx]
					: "error");
	if (details && details[0])
		cJSON_AddStringToObject(o, "details", details);
	return o;
}

static int
send_error_body(struct mg_connection *conn, int status, enum api_code code,
		const char *details, const char *extra_headers)
{
	cJSON *o = api_error_json(code, details);
	char *body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	char hdr[512];
	snprintf(hdr, sizeof(hdr), "Content-Type: application/json\r\n%s",
		 extra_headers ? extra_headers : "");
	http_reply_send(conn, status, hdr, body, strlen(body));
	free(body);
	return status;
}

int
api_send_error(struct api_request *req, int status, enum api_code code,
	       const char *details_fmt, ...)
{
	char details[2048] = "";
	if (details_fmt) {
		va_list ap;
		va_start(ap, details_fmt);
		vsnprintf(details, sizeof(details), details_fmt, ap);
		va_end(ap);
	}
	return send_error_body(req->conn, status, code, details, NULL);
}

/* --- helpers of the Berth routes ------------------------------------------ */

int
api_query_allowed(struct api_request *req, const char *const *allowed)
{
	const char *q = req->query;
	while (q && *q) {
		size_t len = strcspn(q, "&");
		size_t klen = strcspn(q, "=&");
		if (klen > len)
			klen = len;
		if (len > 0) {
			char raw[256], name[256];
			size_t cl = klen < sizeof(raw) - 1 ? klen
							   : sizeof(raw) - 1;
			memcpy(raw, q, cl);
			raw[cl] = '\0';
			if (mg_url_decode(raw, (int)cl, name, sizeof(name), 1) <
			    0)
				snprintf(name, sizeof(name), "%s", raw);
			bool ok = false;
			for (size_t i = 0; allowed && allowed[i]; i++)
				if (strcmp(allowed[i], name) == 0)
					ok = true;
			if (!ok)
				return -api_send_error(
					req, 400, API_E_BAD_REQUEST,
					"unknown query parameter '%.200s'",
					name);
		}
		q += len;
		if (*q == '&')
			q++;
	}
	return 0;
}

bool
api_query_str(const struct api_request *req, const char *name, char *buf,
	      size_t n)
{
	return req->query && mg_get_var(req->query, strlen(req->query), name,
					buf, n) >= 0;
}

int
api_query_int(struct api_request *req, const char *name, int64_t lo,
	      int64_t hi, int64_t *out)
{
	char buf[32];
	if (!req->query)
		return 0;
	int r = mg_get_var(req->query, strlen(req->query), name, buf,
			   sizeof(buf));
	if (r == -1)
		return 0; /* absent */
	int64_t v;
	if (r < 0 || util_parse_i64(buf, lo, hi, &v) < 0)
		return -api_send_error(req, 400, API_E_BAD_REQUEST,
				       "%s must be an integer from %lld to "
				       "%lld",
				       name, (long long)lo, (long long)hi);
	*out = v;
	return 1;
}

int
api_body_action(struct api_request *req, const char *const *allowed,
		const char **action)
{
	*action = NULL;
	cJSON *doc = json_parse(req->body ? req->body : "", req->body_len,
				NULL);
	const cJSON *a = cJSON_IsObject(doc)
				 ? cJSON_GetObjectItemCaseSensitive(doc,
								    "action")
				 : NULL;
	char list[200] = "";
	for (size_t i = 0; allowed[i]; i++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof(list) - l, "%s%s",
			 i == 0 ? "" : allowed[i + 1] ? ", " : " or ",
			 allowed[i]);
	}
	int rc;
	if (!cJSON_IsObject(doc)) {
		rc = api_send_error(req, 400, API_E_BAD_REQUEST,
				    "the body must be a JSON object "
				    "{\"action\":...} (%s)",
				    list);
	} else if (!cJSON_IsString(a)) {
		rc = api_send_error(req, 400, API_E_BAD_REQUEST,
				    "'action' must be a string: %s", list);
	} else {
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], a->valuestring) == 0)
				*action = allowed[i];
		rc = *action ? 0
			     : api_send_error(req, 400, API_E_BAD_REQUEST,
					      "unknown action '%.100s': use "
					      "%s",
					      a->valuestring, list);
	}
	cJSON_Delete(doc);
	return rc ? -rc : 0;
}

int
api_store_failed(struct api_request *req, const struct berr *err)
{
	log_warn("%s %s: %s", req->method, req->path, err->msg);
	return api_send_error(req, 500, API_E_INTERNAL, "%s", err->msg);
}

/* A request whose body cannot be framed (RFC 9112 6.3): answered 400 and
 * the connection closed, since where the next request would start is not
 * known. */
static int
framing_error(struct api_request *req, const char *details)
{
	mg_disable_connection_keep_alive(req->conn);
	log_debug("400 %s %s: %s", req->method, req->path, details);
	send_error_body(req->conn, 400, API_E_READ_BODY, details,
			"Connection: close\r\n");
	return -400;
}

/* Content-Length must be one header of decimal digits (civetweb itself
 * takes the first of several and the leading number of "3x"), and not
 * next to Transfer-Encoding (the smuggling pattern). NULL when fine. */
static const char *
framing_check(const struct mg_request_info *ri)
{
	int ncl = 0, nte = 0;
	const char *cl = NULL;
	for (int i = 0; i < ri->num_headers; i++) {
		const char *name = ri->http_headers[i].name;
		if (!name)
			continue;
		if (strcasecmp(name, "Content-Length") == 0) {
			ncl++;
			cl = ri->http_headers[i].value;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
			nte++;
		}
	}
	if (ncl > 1)
		return "more than one Content-Length header";
	if (nte > 1)
		return "more than one Transfer-Encoding header";
	if (ncl && nte)
		return "both Content-Length and Transfer-Encoding";
	if (cl) {
		const char *p = cl;
		while (*p == ' ' || *p == '\t')
			p++;
		const char *digits = p;
		while (*p >= '0' && *p <= '9')
			p++;
		bool any = p > digits;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!any || *p)
			return "invalid Content-Length";
	}
	return NULL;
}

int
api_read_body(struct api_request *req)
{
	if (req->body)
		return 0;
	const char *why = framing_check(req->ri);
	if (why)
		return framing_error(req, why);
	int64_t cap = req->d->cfg->max_body_bytes;
	const char *too_large = "request body is larger than the limit of "
				"max_body_bytes";
	if (req->batch_body) {
		cap = cap > API_BATCH_BODY_MAX / API_BATCH_BODY_FACTOR
			      ? API_BATCH_BODY_MAX
			      : cap * API_BATCH_BODY_FACTOR;
		too_large = "request body is larger than the limit of a "
			    "batch (" API_BATCH_BODY_FACTOR_TEXT
			    " x max_body_bytes)";
	}
	long long clen = req->ri->content_length;
	if (clen > cap) {
		/* the body is not read: close so it cannot be parsed as the
		 * next request on this connection */
		mg_disable_connection_keep_alive(req->conn);
		send_error_body(req->conn, 413, API_E_READ_BODY, too_large,
				"Connection: close\r\n");
		return -413;
	}
	size_t want = clen >= 0 ? (size_t)clen : (size_t)cap + 1;
	size_t alloc = clen >= 0 ? (size_t)clen : 4096;
	char *buf = xmalloc(alloc + 1);
	size_t n = 0;
	for (;;) {
		if (n == want)
			break;
		if (n == alloc) {
			alloc = alloc * 2 > want ? want : alloc * 2;
			buf = xrealloc(buf, alloc + 1);
		}
		int r = mg_read(req->conn, buf + n, alloc - n);
		if (r < 0) {
			/* civetweb: a malformed or unfinished chunked body
			 * (or the connection failed, when nobody reads the
			 * answer) */
			free(buf);
			return framing_error(req, "malformed chunked body");
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (clen < 0 && n > (size_t)cap) {
		free(buf);
		mg_disable_connection_keep_alive(req->conn);
		send_error_body(req->conn, 413, API_E_READ_BODY, too_large,
				"Connection: close\r\n");
		return -413;
	}
	if (clen >= 0 && n < (size_t)clen) {
		/* the client stopped sending before Content-Length bytes
		 * (civetweb gave up after request_timeout_ms) */
		free(buf);
		char details[120];
		snprintf(details, sizeof(details),
			 "request body ended after %zu of %lld bytes", n,
			 clen);
		return framing_error(req, details);
	}
	buf[n] = '\0';
	/* every JSON parser in the daemon (cJSON) recurses: refuse deep
	 * nesting before any of them sees the body */
	if (!gojson_depth_ok(buf, n, API_MAX_JSON_DEPTH)) {
		free(buf);
		log_debug("400 %s %s: JSON nested too deep", req->method,
			  req->path);
		send_error_body(req->conn, 400, API_E_BAD_REQUEST,
				"JSON nested deeper than "
				API_MAX_JSON_DEPTH_TEXT " levels",
				NULL);
		return -400;
	}
	req->body = buf;
	req->body_len = n;
	return 0;
}

/* spec 2.2. Returns NULL when authorised, else the 401 details text. */
static const char *
check_auth(struct api_request *req)
{
	const char *secret = req->d->core_secret;
	const char *h = mg_get_header(req->conn, "Authorization");
	if (!h)
		return "header 'Authorization' missing";
	char *copy = xstrdup(h);
	char *v = util_trim(copy);
	const char *why = NULL;
	static const char prefix[] = "Harbor-Secret";
	if (!*v) {
		why = "header 'Authorization' missing";
	} else if (strncmp(v, prefix, sizeof(prefix) - 1) != 0) {
		why = "'Authorization' should start with 'Harbor-Secret'";
	} else {
		char *s = util_trim(v + sizeof(prefix) - 1);
		if (!*s)
			why = "empty secret is not allowed";
		else if (!secret ||
			 !util_ct_equal(s, strlen(s), secret, strlen(secret)))
			why = "unauthorized";
	}
	free(copy);
	return why;
}

/* Matches path against pattern; fills params. */
static bool
route_match(const char *pattern, const char *path, struct api_request *req,
	    char *scratch, size_t scratch_len)
{
	size_t np = 0;
	const char *p = pattern, *s = path;
	size_t used = 0;
	while (*p && *s) {
		if (*p != '/' || *s != '/')
			return false;
		p++;
		s++;
		const char *pe = strchr(p, '/');
		const char *se = strchr(s, '/');
		size_t pl = pe ? (size_t)(pe - p) : strlen(p);
		size_t sl = se ? (size_t)(se - s) : strlen(s);
		if (pl == 2 && p[0] == '{' && p[1] == '}') {
			if (sl == 0 || np >= API_MAX_PARAMS ||
			    used + sl + 1 > scratch_len)
				return false;
			memcpy(scratch + used, s, sl);
			scratch[used + sl] = '\0';
			req->params[np++] = scratch + used;
			used += sl + 1;
		} else if (pl != sl || strncmp(p, s, pl) != 0) {
			return false;
		}
		p += pl;
		s += sl;
	}
	if (*p || *s)
		return false;
	req->n_params = np;
	return true;
}

static int
dispatch(struct mg_connection *conn, void *cbdata)
{
	struct api_server *srv = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct api_request req;
	memset(&req, 0, sizeof(req));
	req.d = srv->d;
	req.conn = conn;
	req.ri = ri;
	req.method = ri->request_method;
	req.path = ri->local_uri_raw ? ri->local_uri_raw : ri->local_uri;
	req.query = ri->query_string;
	if (!req.path)
		req.path = "";

	/* a request whose body cannot be delimited is refused whatever its
	 * route, method or credentials: civetweb would otherwise skip the
	 * first Content-Length's worth and parse the rest as the next
	 * request on the connection */
	const char *bad_framing = framing_check(ri);
	if (bad_framing)
		return -framing_error(&req, bad_framing);

	/* spec 2.2: only the exact URI /api/v1/stats is open, and auth runs
	 * before routing */
	bool open = strcmp(req.path, "/api/v1/stats") == 0 && !req.query;
	if (!open) {
		const char *why = check_auth(&req);
		if (why) {
			log_debug("401 %s %s: %s", req.method, req.path, why);
			return send_error_body(conn, 401, API_E_UNAUTHORIZED,
					       why, NULL);
		}
	}

	char scratch[4096];
	char allow[128] = "";
	for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
		if (!route_match(routes[i].pattern, req.path, &req, scratch,
				 sizeof(scratch)))
			continue;
		if (strcmp(routes[i].method, req.method) != 0) {
			size_t l = strlen(allow);
			snprintf(allow + l, sizeof(allow) - l, "%s%s",
				 l ? ", " : "", routes[i].method);
			continue;
		}
		/* every body is read (and capped) before the handler runs */
		req.batch_body = routes[i].batch_body;
		if (strcmp(req.method, "GET") != 0 &&
		    strcmp(req.method, "HEAD") != 0) {
			int rc = api_read_body(&req);
			if (rc < 0)
				return -rc;
		}
		int status = routes[i].fn(&req);
		free(req.body);
		return status < 0 ? -status : status;
	}
	if (allow[0]) {
		char hdr[160];
		snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
		char details[600];
		snprintf(details, sizeof(details), "%s %.500s", req.method,
			 req.path);
		return send_error_body(conn, 405, API_E_METHOD, details, hdr);
	}
	char details[600];
	snprintf(details, sizeof(details), "%.500s", req.path);
	return send_error_body(conn, 404, API_E_NOT_FOUND, details, NULL);
}

/* Errors civetweb answers itself, before any handler (a Content-Length
 * that is not a number: 411, a Transfer-Encoding other than chunked: 400,
 * headers past max_request_size: 413/431, ...): the JSON error body of
 * spec 2.3 instead of civetweb's text, and 400 for the invalid length. */
static int
http_error(struct mg_connection *conn, int status, const char *errmsg)
{
	enum api_code code = status >= 500   ? API_E_INTERNAL
			     : status == 411 ? API_E_READ_BODY
			     : status == 413 ? API_E_READ_BODY
					     : API_E_BAD_REQUEST;
	if (status == 411)
		status = 400;
	log_debug("civetweb error %d: %s", status, errmsg ? errmsg : "");
	mg_disable_connection_keep_alive(conn);
	send_error_body(conn, status, code, errmsg, "Connection: close\r\n");
	return 0;
}

static int
log_message(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	log_warn("http: %s", message);
	return 1;
}

/* civetweb takes one PEM with certificate and key; https_config has them
 * apart, so they are bundled into a 0600 file in the data directory. */
static char *
write_pem_bundle(struct berthd *d, struct berr *err)
{
	struct berth_config *cfg = d->cfg;
	char *cert = NULL, *key = NULL;
	size_t cl = 0, kl = 0;
	if (util_read_file(cfg->https_cert, 1 << 20, &cert, &cl, err) < 0)
		return NULL;
	if (util_read_file(cfg->https_key, 1 << 20, &key, &kl, err) < 0) {
		free(cert);
		return NULL;
	}
	char *path = xasprintf("%s/tls-bundle.pem", cfg->data_dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && fchmod(fd, 0600) == 0 &&
		  write(fd, cert, cl) == (ssize_t)cl &&
		  (cl == 0 || cert[cl - 1] == '\n' || write(fd, "\n", 1) == 1) &&
		  write(fd, key, kl) == (ssize_t)kl;
	if (fd >= 0)
		close(fd);
	free(cert);
	free(key);
	if (!ok) {
		berr_set(err, "cannot write %s: %s", path, strerror(errno));
		free(path);
		return NULL;
	}
	return path;
}

struct api_server *
api_server_start(struct berthd *d, struct berr *err)
{
	struct berth_config *cfg = d->cfg;
	struct api_server *srv = xcalloc(1, sizeof(*srv));
	srv->d = d;
	char ports[300], threads[16], maxreq[24], req_to[16], ka_to[16];
	const char *addr = cfg->listen_address ? cfg->listen_address : "0.0.0.0";
	snprintf(ports, sizeof(ports), "%s:%d%s", addr, cfg->port,
		 cfg->https ? "s" : "");
	snprintf(threads, sizeof(threads), "%d", cfg->api_threads);
	snprintf(maxreq, sizeof(maxreq), "%d", 64 * 1024);
	snprintf(req_to, sizeof(req_to), "%d", cfg->api_request_timeout_ms);
	snprintf(ka_to, sizeof(ka_to), "%d", cfg->api_keep_alive_timeout_ms);
	const char *opts[32];
	size_t n = 0;
	opts[n++] = "listening_ports";
	opts[n++] = ports;
	opts[n++] = "num_threads";
	opts[n++] = threads;
	/* spec 2.1: read 15 s, idle keep-alive 60 s (the defaults) */
	opts[n++] = "request_timeout_ms";
	opts[n++] = req_to;
	opts[n++] = "enable_keep_alive";
	opts[n++] = cfg->api_keep_alive_timeout_ms > 0 ? "yes" : "no";
	opts[n++] = "keep_alive_timeout_ms";
	opts[n++] = ka_to;
	opts[n++] = "tcp_nodelay";
	opts[n++] = "1";
	opts[n++] = "max_request_size"; /* request line + headers */
	opts[n++] = maxreq;
	/* no CORS: civetweb would answer preflights with
	 * Access-Control-Allow-Origin: * (its default); the API and the
	 * dashboard are same-origin only */
	opts[n++] = "access_control_allow_origin";
	opts[n++] = "";
	if (cfg->https) {
		srv->pem_path = write_pem_bundle(d, err);
		if (!srv->pem_path) {
			free(srv);
			return NULL;
		}
		opts[n++] = "ssl_certificate";
		opts[n++] = srv->pem_path;
		opts[n++] = "ssl_protocol_version";
		opts[n++] = "4"; /* TLS 1.2 and newer (spec 15.5) */
		opts[n++] = "ssl_cipher_list";
		opts[n++] = "ECDHE-ECDSA-AES256-GCM-SHA384:"
			    "ECDHE-RSA-AES256-GCM-SHA384:"
			    "ECDHE-ECDSA-CHACHA20-POLY1305:"
			    "ECDHE-RSA-CHACHA20-POLY1305:"
			    "ECDHE-ECDSA-AES128-GCM-SHA256:"
			    "ECDHE-RSA-AES128-GCM-SHA256";
	}
	opts[n] = NULL;

	struct mg_callbacks cb;
	memset(&cb, 0, sizeof(cb));
	cb.log_message = log_message;
	cb.http_error = http_error;
	struct mg_init_data init;
	memset(&init, 0, sizeof(init));
	init.callbacks = &cb;
	init.user_data = srv;
	init.configuration_options = opts;
	struct mg_error_data ed;
	char ebuf[256] = "";
	memset(&ed, 0, sizeof(ed));
	ed.text = ebuf;
	ed.text_buffer_size = sizeof(ebuf);
	srv->ctx = mg_start2(&init, &ed);
	if (!srv->ctx) {
		berr_set(err, "cannot listen on %s: %s", ports,
			 ebuf[0] ? ebuf : "civetweb failed to start");
		free(srv->pem_path);
		free(srv);
		return NULL;
	}
	mg_set_request_handler(srv->ctx, "/", dispatch, srv);
	api_ui_register(srv->ctx);
	struct mg_server_port sp[4];
	int np = mg_get_server_ports(srv->ctx, 4, sp);
	srv->port = np > 0 ? sp[0].port : cfg->port;
	conn_gate_start(srv->port, cfg->api_max_client_connections);
	log_info("REST API listening on %s:%d (%s)", addr, srv->port,
		 cfg->https ? "https" : "http");
	return srv;
}

int
api_server_port(const struct api_server *s)
{
	return s->port;
}

/* civetweb's master thread polls the listening socket for up to 2 s
 * between looks at its stop flag, so mg_stop() alone takes up to 2 s. A
 * connection to the listener wakes that poll: the waker connects (and
 * closes at once) every 20 ms until mg_stop() has returned. Such a
 * connection, if civetweb still accepts it, sends nothing and is closed,
 * so a worker is done with it at once. */
struct stop_waker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	struct sockaddr_storage addr;
	socklen_t addr_len;
};

static void *
stop_waker_run(void *arg)
{
	struct stop_waker *w = arg;
	pthread_mutex_lock(&w->lock);
	while (!w->done) {
		pthread_mutex_unlock(&w->lock);
		int fd = socket(w->addr.ss_family,
				SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd >= 0) {
			(void)!connect(fd, (struct sockaddr *)&w->addr,
				       w->addr_len);
			close(fd);
		}
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 20 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&w->lock);
		if (!w->done)
			pthread_cond_timedwait(&w->cond, &w->lock, &until);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* The address a local client reaches the listener on: the configured
 * one, loopback for a wildcard. false when there is none. */
static bool
stop_waker_addr(const struct api_server *s, struct stop_waker *w)
{
	const char *la = s->d->cfg->listen_address;
	if (!la || !*la || strcmp(la, "0.0.0.0") == 0)
		la = "127.0.0.1";
	else if (strcmp(la, "::") == 0 || strcmp(la, "[::]") == 0)
		la = "::1";
	char host[INET6_ADDRSTRLEN + 2];
	snprintf(host, sizeof(host), "%s", la);
	size_t hl = strlen(host);
	char *h = host;
	if (hl > 1 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		h++;
	}
	memset(&w->addr, 0, sizeof(w->addr));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&w->addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&w->addr;
	if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)s->port);
		w->addr_len = sizeof(*a4);
		return true;
	}
	if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)s->port);
		w->addr_len = sizeof(*a6);
		return true;
	}
	return false; /* a host name: mg_stop() takes its 2 s */
}

void
api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	conn_gate_stop();
	struct stop_waker w;
	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	pthread_t waker;
	bool waking = stop_waker_addr(s, &w) &&
		      pthread_create(&waker, NULL, stop_waker_run, &w) == 0;
	mg_stop(s->ctx);
	if (waking) {
		pthread_mutex_lock(&w.lock);
		w.done = true;
		pthread_cond_signal(&w.cond);
		pthread_mutex_unlock(&w.lock);
		pthread_join(waker, NULL);
	}
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	if (s->pem_path) {
		unlink(s->pem_path);
		free(s->pem_path);
	}
	free(s);
}

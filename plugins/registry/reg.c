/* reg.c - the registry handle (berth/registry.h): options, the one request
 * function every call goes through (authentication, retries with backoff,
 * cancel), error sentences, ping and the tags list. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- the handle --------------------------------------------------------- */

/* Splits url into base (no trailing "/") and origin (scheme://host:port,
 * host lower-case); 0 or BERTH_REG_INVALID with err set. */
static int
parse_url(const char *url, char **base, char **origin, char *err,
	  size_t errlen)
{
	const char *rest;
	const char *scheme;
	int port = 0;
	if (!url || !*url) {
		reg_errf(err, errlen, "registry URL is empty");
		return BERTH_REG_INVALID;
	}
	if (strncasecmp(url, "http://", 7) == 0) {
		scheme = "http";
		rest = url + 7;
		port = 80;
	} else if (strncasecmp(url, "https://", 8) == 0) {
		scheme = "https";
		rest = url + 8;
		port = 443;
	} else {
		reg_errf(err, errlen,
			 "registry URL must start with http:// or https://");
		return BERTH_REG_INVALID;
	}
	size_t alen = strcspn(rest, "/?#");
	if (rest[alen] == '?' || rest[alen] == '#' ||
	    (rest[alen] == '/' && rest[alen + 1] != '\0')) {
		reg_errf(err, errlen,
			 "registry URL must be scheme://host[:port] without a "
			 "path or query (the API lives at /v2/)");
		return BERTH_REG_INVALID;
	}
	if (alen == 0 || memchr(rest, '@', alen)) {
		reg_errf(err, errlen,
			 alen ? "registry URL must not carry credentials "
				"(use the username and password options)"
			      : "registry URL has no host");
		return BERTH_REG_INVALID;
	}
	/* host and port */
	char host[256];
	if (alen >= sizeof(host)) {
		reg_errf(err, errlen, "registry URL host is too long");
		return BERTH_REG_INVALID;
	}
	memcpy(host, rest, alen);
	host[alen] = '\0';
	char *colon = NULL;
	if (host[0] == '[') {
		char *close = strchr(host, ']');
		if (!close) {
			reg_errf(err, errlen, "registry URL has a bad IPv6 host");
			return BERTH_REG_INVALID;
		}
		if (close[1] == ':')
			colon = close + 1;
		else if (close[1] != '\0') {
			reg_errf(err, errlen, "registry URL has a bad IPv6 host");
			return BERTH_REG_INVALID;
		}
	} else {
		colon = strchr(host, ':');
	}
	if (colon) {
		char *end = NULL;
		long p = strtol(colon + 1, &end, 10);
		if (!colon[1] || *end || p <= 0 || p > 65535) {
			reg_errf(err, errlen, "registry URL has a bad port");
			return BERTH_REG_INVALID;
		}
		port = (int)p;
		*colon = '\0';
	}
	for (char *h = host; *h; h++)
		*h = (char)tolower((unsigned char)*h);
	*base = malloc(alen + 9);
	*origin = reg_asprintf("%s://%s:%d", scheme, host, port);
	if (!*base || !*origin) {
		free(*base);
		free(*origin);
		*base = *origin = NULL;
		reg_errf(err, errlen, "out of memory");
		return BERTH_REG_NOMEM;
	}
	snprintf(*base, alen + 9, "%s://%.*s", scheme, (int)alen, rest);
	return 0;
}

static void
reg_release(struct berth_reg *r)
{
	free(r->base);
	free(r->origin);
	free(r->username);
	if (r->password) {
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
	}
	if (r->bearer_token) {
		explicit_bzero(r->bearer_token, strlen(r->bearer_token));
		free(r->bearer_token);
	}
	free(r->user_agent);
	free(r->realm);
	free(r->service);
	reg_tokens_clear(r);
	berth_http_client_free(r->http);
	free(r);
}

struct berth_reg *
berth_reg_new(const struct berth_reg_options *o, char *err, size_t errlen)
{
	reg_errf(err, errlen, "%s", "");
	if (!o) {
		reg_errf(err, errlen, "no registry options");
		return NULL;
	}
	struct berth_reg *r = calloc(1, sizeof(*r));
	if (!r) {
		reg_errf(err, errlen, "out of memory");
		return NULL;
	}
	if (parse_url(o->url, &r->base, &r->origin, err, errlen)) {
		free(r);
		return NULL;
	}
	berth_http_global_init();
	r->username = o->username && *o->username ? strdup(o->username) : NULL;
	r->password = o->password ? strdup(o->password) : NULL;
	r->bearer_token = o->bearer_token && *o->bearer_token
				  ? strdup(o->bearer_token)
				  : NULL;
	r->user_agent =
		strdup(o->user_agent ? o->user_agent : "berth-registry/1");
	r->insecure = o->insecure;
	r->policy = o->policy;
	r->tls = o->tls;
	r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : REG_TIMEOUT_MS;
	r->stall_timeout_ms =
		o->stall_timeout_ms > 0 ? o->stall_timeout_ms : REG_STALL_MS;
	r->max_retries = o->max_retries == 0   ? REG_RETRIES
			 : o->max_retries < 0 ? 0
					      : o->max_retries;
	r->backoff_ms = o->backoff_ms > 0 ? o->backoff_ms : REG_BACKOFF_MS;
	r->cancel = o->cancel;
	r->cancel_ud = o->cancel_ud;
	r->http = berth_http_client_new();
	if (!r->user_agent || !r->http || (o->username && *o->username &&
					   !r->username) ||
	    (o->password && !r->password) ||
	    (o->bearer_token && *o->bearer_token && !r->bearer_token)) {
		reg_errf(err, errlen, "out of memory");
		reg_release(r);
		berth_http_global_cleanup();
		return NULL;
	}
	if (r->bearer_token)
		r->auth = REG_AUTH_BEARER;
	return r;
}

struct berth_reg *
berth_reg_dup(const struct berth_reg *r)
{
	if (!r)
		return NULL;
	struct berth_reg_options o = {
		.url = r->base,
		.username = r->username,
		.password = r->password,
		.bearer_token = r->bearer_token,
		.insecure = r->insecure,
		.policy = r->policy,
		.tls = r->tls,
		.timeout_ms = r->timeout_ms,
		.stall_timeout_ms = r->stall_timeout_ms,
		.max_retries = r->max_retries > 0 ? r->max_retries : -1,
		.backoff_ms = r->backoff_ms,
		.cancel = r->cancel,
		.cancel_ud = r->cancel_ud,
		.user_agent = r->user_agent,
	};
	struct berth_reg *d = berth_reg_new(&o, NULL, 0);
	if (!d)
		return NULL;
	d->auth = r->auth;
	d->realm = reg_strdup(r->realm);
	d->service = reg_strdup(r->service);
	if ((r->realm && !d->realm) || (r->service && !d->service) ||
	    reg_tokens_copy(d, r)) {
		berth_reg_free(d);
		return NULL;
	}
	return d;
}

void
berth_reg_free(struct berth_reg *r)
{
	if (!r)
		return;
	reg_release(r);
	berth_http_global_cleanup();
}

bool
berth_reg_same_registry(const struct berth_reg *a, const struct berth_reg *b)
{
	return a && b && strcmp(a->origin, b->origin) == 0;
}

const char *
berth_reg_url(const struct berth_reg *r)
{
	return r ? r->origin : "";
}

long
berth_reg_last_status(const struct berth_reg *r)
{
	return r ? r->last_status : 0;
}

/* ---- waiting ------------------------------------------------------------- */

bool
reg_cancelled(const struct berth_reg *r)
{
	return r->cancel && r->cancel(r->cancel_ud);
}

bool
reg_sleep(const struct berth_reg *r, long long ms, bool (*cancel2)(void *ud),
	  void *cancel2_ud)
{
	long long until = berth_http_now_ms() + ms;
	for (;;) {
		if (reg_cancelled(r) || (cancel2 && cancel2(cancel2_ud)))
			return false;
		long long left = until - berth_http_now_ms();
		if (left <= 0)
			return true;
		if (left > REG_POLL_MS)
			left = REG_POLL_MS;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = left * 1000000L};
		nanosleep(&ts, NULL);
	}
}

long long
reg_backoff(const struct berth_reg *r, int attempt, long long retry_after_s)
{
	if (retry_after_s >= 0) {
		long long ms = retry_after_s * 1000;
		return ms > REG_RETRY_AFTER_CAP_MS ? REG_RETRY_AFTER_CAP_MS : ms;
	}
	long long ms = r->backoff_ms;
	for (int i = 0; i < attempt && ms < REG_BACKOFF_CAP_MS; i++)
		ms *= 2;
	return ms > REG_BACKOFF_CAP_MS ? REG_BACKOFF_CAP_MS : ms;
}

char *
reg_resolve(const struct berth_reg *r, const char *loc)
{
	if (strncasecmp(loc, "http://", 7) == 0 ||
	    strncasecmp(loc, "https://", 8) == 0)
		return strdup(loc);
	if (loc[0] == '/')
		return reg_asprintf("%s%s", r->base, loc);
	return reg_asprintf("%s/%s", r->base, loc);
}

/* ---- one exchange ---------------------------------------------------------- */

struct cancel_pair {
	const struct berth_reg *r;
	const struct reg_req *q;
};

static bool
pair_cancel(void *ud)
{
	const struct cancel_pair *p = ud;
	return reg_cancelled(p->r) ||
	       (p->q->cancel2 && p->q->cancel2(p->q->cancel2_ud));
}

static bool
same_origin(const struct berth_reg *r, const char *url)
{
	size_t n = strlen(r->base);
	return strncasecmp(url, r->base, n) == 0 &&
	       (url[n] == '/' || url[n] == '\0' || url[n] == '?');
}

int
reg_do(struct berth_reg *r, const struct reg_req *q,
       struct berth_http_response *resp, const char *what, char *err,
       size_t errlen)
{
	memset(resp, 0, sizeof(*resp));
	resp->retry_after_s = -1;
	char *url = reg_resolve(r, q->path);
	char *scope = NULL;
	if (q->scope && q->scope2)
		scope = reg_asprintf("%s %s", q->scope, q->scope2);
	else if (q->scope)
		scope = strdup(q->scope);
	else
		scope = strdup("");
	if (!url || !scope) {
		free(url);
		free(scope);
		reg_errf(err, errlen, "out of memory");
		return BERTH_REG_NOMEM;
	}
	bool send_auth = same_origin(r, url);
	bool reauthed = false;
	int attempt = 0;
	int rc = 0;
	struct cancel_pair cp = {.r = r, .q = q};
	for (;;) {
		struct berth_http_headers h;
		berth_http_headers_init(&h);
		if (q->headers)
			for (size_t i = 0; i < q->headers->n; i++) {
				char *line = q->headers->v[i];
				char *colon = strchr(line, ':');
				if (!colon)
					continue;
				*colon = '\0';
				const char *v = colon + 1;
				while (*v == ' ')
					v++;
				int a = berth_http_headers_add(&h, line, v);
				*colon = ':';
				if (a < 0) {
					rc = BERTH_REG_NOMEM;
					break;
				}
			}
		if (!rc && send_auth)
			rc = reg_auth_header(r, scope, &h, err, errlen);
		if (rc) {
			berth_http_headers_fini(&h);
			if (rc == BERTH_REG_NOMEM)
				reg_errf(err, errlen, "out of memory");
			break;
		}
		struct berth_http_request req = {
			.method = q->method,
			.url = url,
			.headers = &h,
			.body = q->body,
			.body_len = q->body_len,
			.user_agent = r->user_agent,
			.timeout_ms = q->timeout_ms > 0 ? q->timeout_ms
				      : q->blob	    ? REG_BLOB_TIMEOUT_MS
						    : r->timeout_ms,
			.connect_timeout_ms =
				r->timeout_ms < 30000 ? r->timeout_ms : 30000,
			.follow_redirects = q->follow_redirects,
			.max_response_bytes = q->max_response_bytes
						      ? q->max_response_bytes
						      : REG_ERROR_BODY_MAX,
			.drain_excess = false,
			.skip_cert_verify = r->insecure,
			.tls = r->tls,
			.policy = r->policy,
			.cancel = pair_cancel,
			.cancel_ud = &cp,
			.body_read = q->body_read,
			.body_read_ud = q->body_read_ud,
			.body_read_len = q->body_read_len,
			.body_sink = q->body_sink,
			.body_sink_ud = q->body_sink_ud,
			.keep_headers = true,
			.stall_timeout_ms = q->blob ? r->stall_timeout_ms : 0,
		};
		char herr[256] = "";
		berth_http_response_fini(resp);
		enum berth_http_result hr =
			berth_http_send(r->http, &req, resp, herr, sizeof(herr));
		berth_http_headers_fini(&h);
		r->last_status = hr == BERTH_HTTP_OK ? resp->status : 0;
		if (hr == BERTH_HTTP_OK && resp->status == 401 && !reauthed &&
		    !r->bearer_token && send_auth) {
			reauthed = true;
			bool resend = false;
			rc = reg_auth_challenge(r, resp, scope, &resend, err,
						errlen);
			if (rc)
				break;
			if (resend && !q->body_read)
				continue;
			break; /* the caller reads the 401 */
		}
		if (hr == BERTH_HTTP_CANCELLED) {
			reg_errf(err, errlen, "registry %s: %s: cancelled",
				 r->origin, what);
			rc = BERTH_REG_CANCELLED;
			break;
		}
		if (hr == BERTH_HTTP_REFUSED) {
			reg_errf(err, errlen, "registry %s: %s: %s", r->origin,
				 what, herr);
			rc = BERTH_REG_INVALID;
			break;
		}
		bool transient = hr != BERTH_HTTP_OK || resp->status >= 500 ||
				 resp->status == 429;
		if (!transient)
			break;
		if (q->no_retry || attempt >= r->max_retries) {
			if (hr != BERTH_HTTP_OK) {
				reg_errf(err, errlen,
					 "registry %s: %s: %s%s (%d attempt%s)",
					 r->origin, what,
					 hr == BERTH_HTTP_TIMEOUT &&
							 strncmp(herr,
								 "stalled",
								 7) != 0
						 ? "timeout: "
						 : "",
					 herr[0] ? herr : "no answer",
					 attempt + 1, attempt ? "s" : "");
				rc = BERTH_REG_TRANSPORT;
			}
			break;
		}
		long long wait = reg_backoff(
			r, attempt,
			hr == BERTH_HTTP_OK ? resp->retry_after_s : -1);
		attempt++;
		if (!reg_sleep(r, wait, q->cancel2, q->cancel2_ud)) {
			reg_errf(err, errlen, "registry %s: %s: cancelled",
				 r->origin, what);
			rc = BERTH_REG_CANCELLED;
			break;
		}
	}
	r->last_attempts = attempt + 1;
	free(url);
	free(scope);
	return rc;
}

int
reg_repo_do(struct berth_reg *r, struct reg_req *q, const char *repo,
	    const char *actions, const long *ok,
	    struct berth_http_response *resp, const char *what, char *err,
	    size_t errlen, const char *pathfmt, ...)
{
	char *path = NULL;
	if (pathfmt) {
		va_list ap;
		va_start(ap, pathfmt);
		if (vasprintf(&path, pathfmt, ap) < 0)
			path = NULL;
		va_end(ap);
	}
	char *scope = reg_asprintf("repository:%s:%s", repo, actions);
	int rc;
	if ((pathfmt && !path) || !scope) {
		memset(resp, 0, sizeof(*resp));
		resp->retry_after_s = -1;
		reg_errf(err, errlen, "out of memory");
		rc = BERTH_REG_NOMEM;
	} else {
		const char *path0 = q->path, *scope0 = q->scope;
		if (path)
			q->path = path;
		q->scope = scope;
		rc = reg_do(r, q, resp, what, err, errlen);
		q->path = path0;
		q->scope = scope0;
	}
	if (!rc && ok) {
		const long *s = ok;
		while (*s && *s != resp->status)
			s++;
		if (!*s)
			rc = reg_status_error(r, resp, what, err, errlen);
	}
	free(path);
	free(scope);
	return rc;
}

int
reg_status_error(const struct berth_reg *r,
		 const struct berth_http_response *resp, const char *what,
		 char *err, size_t errlen)
{
	long st = resp->status;
	char code[64] = "";
	char msg[256] = "";
	cJSON *j = resp->body && resp->body_len
			   ? cJSON_ParseWithLength(resp->body, resp->body_len)
			   : NULL;
	cJSON *e0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "errors"), 0);
	const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(e0, "code"));
	const char *m =
		cJSON_GetStringValue(cJSON_GetObjectItem(e0, "message"));
	if (c)
		reg_clean(c, strlen(c), code, sizeof(code));
	if (m)
		reg_clean(m, strlen(m), msg, sizeof(msg));
	else if (!j && resp->body && resp->body_len && st != 401)
		reg_clean(resp->body, resp->body_len, msg, 160);
	cJSON_Delete(j);

	int rc;
	const char *hint = "";
	char hintbuf[64] = "";
	switch (st) {
	case 401:
		rc = BERTH_REG_UNAUTHORIZED;
		hint = r->username || r->bearer_token
			       ? " (check the credentials)"
			       : " (the registry requires credentials; none "
				 "are configured)";
		break;
	case 403:
		rc = BERTH_REG_DENIED;
		hint = " (the credentials lack the permission)";
		break;
	case 404:
		rc = BERTH_REG_NOT_FOUND;
		break;
	case 405:
		rc = BERTH_REG_UNSUPPORTED;
		hint = " (the registry does not allow this operation; are "
		       "deletes enabled?)";
		break;
	case 413:
		rc = BERTH_REG_TOO_LARGE;
		break;
	default:
		if (st == 429 || st >= 500) {
			rc = BERTH_REG_TRANSPORT;
			if (r->last_attempts > 1) {
				snprintf(hintbuf, sizeof(hintbuf),
					 " (%d attempts)", r->last_attempts);
				hint = hintbuf;
			}
		} else if (st == 400 && (strcmp(code, "DIGEST_INVALID") == 0 ||
					 strcmp(code, "SIZE_INVALID") == 0)) {
			rc = BERTH_REG_DIGEST_MISMATCH;
		} else {
			rc = BERTH_REG_PROTOCOL;
		}
	}
	reg_errf(err, errlen, "registry %s: %s: %ld%s%s%s%s%s", r->origin,
		 what, st, code[0] ? " " : "", code, msg[0] ? ": " : "", msg,
		 hint);
	return rc;
}

/* ---- ping ------------------------------------------------------------------ */

int
berth_reg_ping(struct berth_reg *r, char *err, size_t errlen)
{
	reg_errf(err, errlen, "%s", "");
	struct reg_req q = {.method = "GET", .path = "/v2/"};
	struct berth_http_response resp;
	int rc = reg_do(r, &q, &resp, "GET /v2/", err, errlen);
	if (!rc && resp.status != 200) {
		if (resp.status == 404)
			reg_errf(err, errlen,
				 "registry %s: GET /v2/: 404: not an OCI "
				 "distribution (Docker registry API v2) endpoint",
				 r->origin);
		rc = resp.status == 404
			     ? BERTH_REG_PROTOCOL
			     : reg_status_error(r, &resp, "GET /v2/", err,
						errlen);
	}
	berth_http_response_fini(&resp);
	return rc;
}

/* ---- tags ------------------------------------------------------------------ */

/* Whether the relation types in s (len bytes, space-separated, RFC 8288
 * 3.3) include "next" (case-insensitive). */
static bool
rel_has_next(const char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t n = 0;
		while (i + n < len && s[i + n] != ' ' && s[i + n] != '\t')
			n++;
		if (n == 4 && strncasecmp(s + i, "next", 4) == 0)
			return true;
		i += n ? n : 1;
	}
	return false;
}

/* Link: <uri>; param=value; param="quoted, value", <uri>; ... (RFC 8288):
 * a link-value's parameters run to the next comma outside a quoted string;
 * a quoted value may hold ',', ';', '<', '>' and "rel=next" (they once cut
 * the parameters short or were taken for a link). */
char *
reg_link_next(const char *link)
{
	const char *p = link;
	while (p && (p = strchr(p, '<'))) {
		const char *end = strchr(p, '>');
		if (!end)
			return NULL;
		bool next = false;
		const char *s = end + 1;
		while (*s && *s != ',') {
			if (*s != ';') {
				if (*s == '"') /* a stray quoted string */
					for (s++; *s && *s != '"'; s++)
						if (*s == '\\' && s[1])
							s++;
				if (*s)
					s++;
				continue;
			}
			/* ; name [= value] */
			s++;
			s = reg_skip_ows(s);
			const char *name = s;
			while (*s && !strchr(" \t=;,\"", *s))
				s++;
			size_t nlen = (size_t)(s - name);
			s = reg_skip_ows(s);
			if (*s != '=')
				continue;
			s++;
			s = reg_skip_ows(s);
			const char *v = s;
			size_t vlen;
			if (*s == '"') {
				v = ++s;
				while (*s && *s != '"')
					s += *s == '\\' && s[1] ? 2 : 1;
				vlen = (size_t)(s - v);
				if (*s)
					s++;
			} else {
				while (*s && !strchr(" \t;,", *s))
					s++;
				vlen = (size_t)(s - v);
			}
			if (nlen == 3 && strncasecmp(name, "rel", 3) == 0 &&
			    rel_has_next(v, vlen))
				next = true;
		}
		if (next)
			return strndup(p + 1, (size_t)(end - p - 1));
		p = s;
	}
	return NULL;
}

#define TAGS_MAX 1000000

int
berth_reg_tags(struct berth_reg *r, const char *repo, int page_size,
	       char ***tags, size_t *n, char *err, size_t errlen)
{
	reg_errf(err, errlen, "%s", "");
	*tags = NULL;
	*n = 0;
	if (!berth_reg_valid_repo(repo)) {
		reg_errf(err, errlen, "invalid repository name \"%.100s\"",
			 repo ? repo : "");
		return BERTH_REG_INVALID;
	}
	char what[400];
	snprintf(what, sizeof(what), "GET tags of %s", repo);
	char *path = reg_asprintf("/v2/%s/tags/list?n=%d", repo,
				  page_size > 0 ? page_size : 1000);
	char **v = NULL;
	size_t cnt = 0, cap = 0;
	int rc = path ? 0 : BERTH_REG_NOMEM;
	int pages = 0;
	while (!rc && path) {
		struct reg_req q = {
			.method = "GET",
			.path = path,
			.max_response_bytes = 64 * 1024 * 1024,
		};
		struct berth_http_response resp;
		rc = reg_repo_do(r, &q, repo, "pull", (const long[]){200, 0},
				 &resp, what, err, errlen, NULL);
		if (!rc && resp.truncated) {
			reg_errf(err, errlen,
				 "registry %s: %s: page over 64 MiB",
				 r->origin, what);
			rc = BERTH_REG_TOO_LARGE;
		}
		cJSON *j = NULL;
		if (!rc) {
			j = cJSON_ParseWithLength(resp.body, resp.body_len);
			cJSON *arr = cJSON_GetObjectItem(j, "tags");
			if (!cJSON_IsObject(j) ||
			    (arr && !cJSON_IsArray(arr) && !cJSON_IsNull(arr))) {
				reg_errf(err, errlen,
					 "registry %s: %s: the answer is not a "
					 "tags list",
					 r->origin, what);
				rc = BERTH_REG_PROTOCOL;
			}
			cJSON *list = cJSON_IsArray(arr) ? arr : NULL;
			cJSON *t;
			cJSON_ArrayForEach(t, list)
			{
				if (rc)
					break;
				const char *s = cJSON_GetStringValue(t);
				if (!s)
					continue;
				if (cnt >= TAGS_MAX) {
					reg_errf(err, errlen,
						 "registry %s: %s: more than "
						 "%d tags",
						 r->origin, what, TAGS_MAX);
					rc = BERTH_REG_TOO_LARGE;
					break;
				}
				if (cnt == cap) {
					size_t nc = cap ? cap * 2 : 64;
					char **nv = realloc(v, nc * sizeof(*v));
					if (!nv) {
						rc = BERTH_REG_NOMEM;
						break;
					}
					v = nv;
					cap = nc;
				}
				if (!(v[cnt] = strdup(s))) {
					rc = BERTH_REG_NOMEM;
					break;
				}
				cnt++;
			}
		}
		cJSON_Delete(j);
		char *next = NULL;
		if (!rc) {
			const char *link = reg_header(&resp, "Link");
			next = link ? reg_link_next(link) : NULL;
			if (next && (strcmp(next, path) == 0 ||
				     ++pages > TAGS_MAX)) {
				free(next); /* a loop: stop */
				next = NULL;
			}
		}
		berth_http_response_fini(&resp);
		free(path);
		path = next;
	}
	free(path);
	if (rc == BERTH_REG_NOMEM)
		reg_errf(err, errlen, "out of memory");
	if (rc) {
		berth_reg_strv_free(v, cnt);
		return rc;
	}
	*tags = v;
	*n = cnt;
	return 0;
}

void
berth_reg_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

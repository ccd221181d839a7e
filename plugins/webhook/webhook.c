/* webhook.c - WEBHOOK: delivers one Harbor webhook notification (spec 13.2).
 * The reference is plugins/webhook/README.md; in short:
 *
 * params:   payload (string, the body), address (string, http/https URL),
 *           header (optional JSON string {"Name":["v1",...]} that replaces
 *           every request header), skip_cert_verify (optional bool).
 * validate: none, as Harbor: a missing or non-string payload/address fails
 *           the run with "missing job parameter '...'" instead.
 * run:      POST payload to address; 2xx is success, anything else fails
 *           with "abnormal response code: <code>, body: <body>".
 * limits:   max_fails = JOBSERVICE_WEBHOOK_JOB_MAX_RETRY (default 3; read
 *           when the plugin is loaded), max_concurrency 0, priority 1000,
 *           should_retry true.
 * settings: follow_redirects, max_response_bytes, block_private_addresses
 *           (httpcommon.h), hmac_secret / hmac_secret_env (signature header
 *           X-Berth-Signature: sha256=<hex HMAC-SHA256 of the payload>). */
#define _GNU_SOURCE /* explicit_bzero */
#include "httpcommon.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define WEBHOOK_USER_AGENT "berth-webhook/1.0"
#define WEBHOOK_SIGNATURE_HEADER "X-Berth-Signature"

struct webhook_state {
	struct hc_settings http;
	char *hmac_secret; /* NULL = no signature */
	size_t hmac_len;
};

/* Not const: max_fails comes from the environment, filled in by the
 * constructor below when the host dlopen()s the plugin, i.e. before the
 * host calls berth_plugin_job_types() and copies the table. */
static struct berth_job_type webhook_type;

/* --- init / fini --------------------------------------------------------- */

static void
webhook_state_free(struct webhook_state *st)
{
	if (!st)
		return;
	hc_settings_fini(&st->http);
	if (st->hmac_secret) {
		explicit_bzero(st->hmac_secret, st->hmac_len);
		free(st->hmac_secret);
	}
	free(st);
}

/* hmac_secret (the secret itself) or hmac_secret_env (the name of an
 * environment variable holding it); at most one of them. */
static int
load_secret(struct berth_job_ctx *ctx, struct webhook_state *st)
{
	enum berth_json_type t1 = berth_setting_type(ctx, "hmac_secret");
	enum berth_json_type t2 = berth_setting_type(ctx, "hmac_secret_env");
	bool has1 = t1 != BERTH_JSON_ABSENT && t1 != BERTH_JSON_NULL;
	bool has2 = t2 != BERTH_JSON_ABSENT && t2 != BERTH_JSON_NULL;
	const char *secret = NULL;
	if (has1 && has2) {
		berth_log_error(ctx, "settings hmac_secret and hmac_secret_env "
				     "exclude each other; keep one");
		return -1;
	}
	if (has1) {
		secret = berth_setting_string(ctx, "hmac_secret");
		if (!secret || !*secret) {
			berth_log_error(ctx, "setting hmac_secret must be a "
					     "non-empty string");
			return -1;
		}
	} else if (has2) {
		const char *name = berth_setting_string(ctx, "hmac_secret_env");
		if (!name || !*name) {
			berth_log_error(ctx, "setting hmac_secret_env must be "
					     "the name of an environment "
					     "variable");
			return -1;
		}
		secret = getenv(name);
		if (!secret || !*secret) {
			berth_log_error(ctx, "setting hmac_secret_env: "
					     "environment variable %s is unset "
					     "or empty",
					name);
			return -1;
		}
	}
	if (!secret)
		return 0;
	st->hmac_len = strlen(secret);
	st->hmac_secret = strdup(secret);
	if (!st->hmac_secret) {
		berth_log_error(ctx, "out of memory");
		return -1;
	}
	return 0;
}

static int
webhook_init(struct berth_job_ctx *ctx, void **type_state)
{
	struct webhook_state *st = calloc(1, sizeof(*st));
	if (!st) {
		berth_log_error(ctx, "out of memory");
		return -1;
	}
	if (hc_settings_load(ctx, &st->http, WEBHOOK_USER_AGENT) != 0) {
		free(st);
		return -1;
	}
	if (load_secret(ctx, st) != 0) {
		webhook_state_free(st);
		return -1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		berth_log_error(ctx, "libcurl could not be initialised");
		webhook_state_free(st);
		return -1;
	}
	berth_log_info(ctx,
		       "ready: timeout %ld s, max_fails %u, "
		       "follow_redirects %s, max_response_bytes %zu, "
		       "block_private_addresses %s, signature %s",
		       st->http.timeout_ms / 1000, webhook_type.max_fails,
		       st->http.follow_redirects ? "on" : "off",
		       st->http.max_response_bytes,
		       st->http.block_private ? "on" : "off",
		       st->hmac_secret ? "on" : "off");
	*type_state = st;
	return 0;
}

static void
webhook_fini(void *type_state)
{
	webhook_state_free(type_state);
	curl_global_cleanup();
}

static bool
webhook_should_retry(void *type_state)
{
	(void)type_state;
	return true;
}

/* --- the `header` parameter: JSON {"Name": ["v1", ...] | null, ...} ------ */

struct jp {
	const char *p;
	const char *start;
	char err[160];
};

__attribute__((format(printf, 2, 3))) static bool
jp_fail(struct jp *j, const char *fmt, ...)
{
	if (!j->err[0]) {
		char msg[120];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		snprintf(j->err, sizeof(j->err), "%s at offset %td", msg,
			 j->p - j->start);
	}
	return false;
}

static void
jp_ws(struct jp *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
jp_hex4(struct jp *j, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(j->p[i]);
		if (h < 0)
			return jp_fail(j, "invalid \\u escape");
		v = v * 16 + (unsigned)h;
	}
	j->p += 4;
	*out = v;
	return true;
}

static size_t
utf8_put(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A JSON string at j->p into a new buffer (NULL on error). Embedded NULs
 * are kept as the byte 0x00 so the header check can refuse them; *len is
 * the decoded length. */
static char *
jp_string(struct jp *j, size_t *len)
{
	if (*j->p != '"') {
		jp_fail(j, "expected a string");
		return NULL;
	}
	j->p++;
	const char *q = j->p;
	while (*q && *q != '"')
		q += (*q == '\\' && q[1]) ? 2 : 1;
	/* decoded text is never longer than 4/6 of the escaped one, and
	 * plain bytes map 1:1 */
	char *out = malloc((size_t)(q - j->p) + 1);
	size_t n = 0;
	if (!out) {
		jp_fail(j, "out of memory");
		return NULL;
	}
	for (;;) {
		unsigned char c = (unsigned char)*j->p;
		if (c == '"') {
			j->p++;
			break;
		}
		if (c == '\0') {
			jp_fail(j, "unterminated string");
			goto bad;
		}
		if (c < 0x20) {
			jp_fail(j, "control character in string");
			goto bad;
		}
		if (c != '\\') {
			out[n++] = (char)c;
			j->p++;
			continue;
		}
		char e = j->p[1];
		if (e == '\0') {
			jp_fail(j, "unterminated string");
			goto bad;
		}
		j->p += 2;
		switch (e) {
		case '"':
		case '\\':
		case '/':
			out[n++] = e;
			break;
		case 'b':
			out[n++] = '\b';
			break;
		case 'f':
			out[n++] = '\f';
			break;
		case 'n':
			out[n++] = '\n';
			break;
		case 'r':
			out[n++] = '\r';
			break;
		case 't':
			out[n++] = '\t';
			break;
		case 'u': {
			unsigned cp = 0, lo = 0;
			if (!jp_hex4(j, &cp))
				goto bad;
			if (cp >= 0xd800 && cp < 0xdc00 && j->p[0] == '\\' &&
			    j->p[1] == 'u') {
				const char *save = j->p;
				j->p += 2;
				if (!jp_hex4(j, &lo))
					goto bad;
				if (lo >= 0xdc00 && lo < 0xe000)
					cp = 0x10000 + ((cp - 0xd800) << 10) +
					     (lo - 0xdc00);
				else
					j->p = save;
			}
			if (cp >= 0xd800 && cp < 0xe000)
				cp = 0xfffd; /* lone surrogate, as Go */
			n += utf8_put(out + n, cp);
			break;
		}
		default:
			j->p--;
			jp_fail(j, "invalid escape in string");
			goto bad;
		}
	}
	out[n] = '\0';
	*len = n;
	return out;
bad:
	free(out);
	return NULL;
}

struct hdr_entry {
	char *name;
	size_t name_len;
	char **values;
	size_t *value_lens;
	size_t n;
};

struct hdr_map {
	struct hdr_entry *v;
	size_t n;
};

static void
hdr_entry_fini(struct hdr_entry *e)
{
	free(e->name);
	for (size_t i = 0; i < e->n; i++)
		free(e->values[i]);
	free(e->values);
	free(e->value_lens);
	memset(e, 0, sizeof(*e));
}

static void
hdr_map_fini(struct hdr_map *m)
{
	for (size_t i = 0; i < m->n; i++)
		hdr_entry_fini(&m->v[i]);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static bool
jp_value_array(struct jp *j, struct hdr_entry *e)
{
	if (strncmp(j->p, "null", 4) == 0) {
		j->p += 4;
		return true;
	}
	if (*j->p != '[') {
		char c = *j->p;
		const char *kind = c == '"'   ? "string"
				   : c == '{' ? "object"
				   : (c == 't' || c == 'f') ? "bool"
				   : (c == '-' || (c >= '0' && c <= '9'))
					   ? "number"
					   : "an invalid value";
		return jp_fail(j, "cannot unmarshal %s into Go value of type "
				  "[]string",
			       kind);
	}
	j->p++;
	jp_ws(j);
	if (*j->p == ']') {
		j->p++;
		return true;
	}
	for (;;) {
		jp_ws(j);
		char *v;
		size_t vlen = 0;
		if (strncmp(j->p, "null", 4) == 0) { /* Go leaves "" */
			j->p += 4;
			v = strdup("");
			if (!v)
				return jp_fail(j, "out of memory");
		} else if (!(v = jp_string(j, &vlen))) {
			return false;
		}
		char **vv = realloc(e->values, (e->n + 1) * sizeof(*vv));
		size_t *ll = vv ? realloc(e->value_lens,
					  (e->n + 1) * sizeof(*ll))
				: NULL;
		if (vv)
			e->values = vv;
		if (!vv || !ll) {
			free(v);
			return jp_fail(j, "out of memory");
		}
		e->value_lens = ll;
		e->values[e->n] = v;
		e->value_lens[e->n++] = vlen;
		jp_ws(j);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p == ']') {
			j->p++;
			return true;
		}
		return jp_fail(j, "expected ',' or ']'");
	}
}

/* Parses text into m as Go's json.Unmarshal into http.Header would (a
 * repeated name replaces the earlier one). */
static bool
hdr_parse(const char *text, struct hdr_map *m, char *err, size_t errlen)
{
	struct jp j = {.p = text, .start = text};
	memset(m, 0, sizeof(*m));
	jp_ws(&j);
	if (*j.p != '{') {
		jp_fail(&j, "expected a JSON object");
		goto bad;
	}
	j.p++;
	jp_ws(&j);
	if (*j.p == '}') {
		j.p++;
		goto end;
	}
	for (;;) {
		struct hdr_entry e = {0};
		jp_ws(&j);
		if (!(e.name = jp_string(&j, &e.name_len)))
			goto bad;
		jp_ws(&j);
		if (*j.p != ':') {
			free(e.name);
			jp_fail(&j, "expected ':'");
			goto bad;
		}
		j.p++;
		jp_ws(&j);
		if (!jp_value_array(&j, &e)) {
			hdr_entry_fini(&e);
			goto bad;
		}
		size_t i;
		for (i = 0; i < m->n; i++)
			if (m->v[i].name_len == e.name_len &&
			    memcmp(m->v[i].name, e.name, e.name_len) == 0)
				break;
		if (i < m->n) {
			hdr_entry_fini(&m->v[i]);
			m->v[i] = e;
		} else {
			struct hdr_entry *v =
				realloc(m->v, (m->n + 1) * sizeof(*v));
			if (!v) {
				hdr_entry_fini(&e);
				jp_fail(&j, "out of memory");
				goto bad;
			}
			m->v = v;
			m->v[m->n++] = e;
		}
		jp_ws(&j);
		if (*j.p == ',') {
			j.p++;
			continue;
		}
		if (*j.p == '}') {
			j.p++;
			break;
		}
		jp_fail(&j, "expected ',' or '}'");
		goto bad;
	}
end:
	jp_ws(&j);
	if (*j.p) {
		jp_fail(&j, "unexpected data after the object");
		goto bad;
	}
	return true;
bad:
	snprintf(err, errlen, "error to unmarshal header: %s", j.err);
	hdr_map_fini(m);
	return false;
}

/* RFC 7230 token characters (Go's httpguts.ValidHeaderFieldName). */
static bool
valid_name(const char *s, size_t n)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z') || (c && strchr(extra, c))))
			return false;
	}
	return true;
}

/* No control characters but tab (httpguts.ValidHeaderFieldValue). */
static bool
valid_value(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* The request headers from the `header` JSON text. Host, Content-Length,
 * Transfer-Encoding and Trailer are the transport's (Go ignores them in a
 * request's header map too). */
static bool
build_headers(const char *text, struct hc_headers *h, char *err,
	      size_t errlen)
{
	static const char *const transport[] = {
		"Host", "Content-Length", "Transfer-Encoding", "Trailer"};
	struct hdr_map m;
	if (!hdr_parse(text, &m, err, errlen))
		return false;
	bool ok = true;
	for (size_t i = 0; i < m.n && ok; i++) {
		struct hdr_entry *e = &m.v[i];
		bool skip = false;
		if (!valid_name(e->name, e->name_len)) {
			snprintf(err, errlen,
				 "invalid header field name in header "
				 "parameter");
			ok = false;
			break;
		}
		for (size_t k = 0; k < 4; k++)
			skip = skip || strcasecmp(e->name, transport[k]) == 0;
		for (size_t k = 0; k < e->n && ok; k++) {
			if (!valid_value(e->values[k], e->value_lens[k])) {
				snprintf(err, errlen,
					 "invalid header field value for "
					 "\"%s\"",
					 e->name);
				ok = false;
			} else if (!skip &&
				   hc_headers_add(h, e->name, e->values[k])) {
				snprintf(err, errlen, "out of memory");
				ok = false;
			}
		}
	}
	hdr_map_fini(&m);
	return ok;
}

/* --- signature ----------------------------------------------------------- */

static bool
add_signature(const struct webhook_state *st, const char *payload,
	      size_t len, struct hc_headers *h)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 8];
	if (!HMAC(EVP_sha256(), st->hmac_secret, (int)st->hmac_len,
		  (const unsigned char *)payload, len, md, &mdlen))
		return false;
	memcpy(hex, "sha256=", 7);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 7 + 2 * (size_t)i, 3, "%02x", md[i]);
	hc_headers_remove(h, WEBHOOK_SIGNATURE_HEADER);
	return hc_headers_add(h, WEBHOOK_SIGNATURE_HEADER, hex) == 0;
}

/* --- run ------------------------------------------------------------------ */

static const char *
string_param(struct berth_job_ctx *ctx, const char *key, char *err,
	     size_t errlen)
{
	const char *v = berth_param_string(ctx, key);
	if (v)
		return v;
	enum berth_json_type t = berth_param_type(ctx, key);
	if (t == BERTH_JSON_ABSENT)
		snprintf(err, errlen, "missing job parameter '%s'", key);
	else
		snprintf(err, errlen,
			 "malformed job parameter '%s', expecting string but "
			 "got %s",
			 key, hc_go_type_name(t));
	return NULL;
}

static enum berth_run_result
webhook_run(struct berth_job_ctx *ctx, const char *params_json, char *err,
	    size_t errlen)
{
	(void)params_json;
	const struct webhook_state *st = ctx->type_state;
	const char *payload = string_param(ctx, "payload", err, errlen);
	const char *address = payload ? string_param(ctx, "address", err,
						     errlen)
				      : NULL;
	if (!payload || !address)
		return BERTH_RUN_ERROR;
	bool skip = false;
	if (!berth_param_bool(ctx, "skip_cert_verify", &skip))
		skip = false;

	struct hc_headers headers;
	hc_headers_init(&headers);
	enum berth_run_result res = BERTH_RUN_ERROR;
	enum berth_json_type ht = berth_param_type(ctx, "header");
	if (ht == BERTH_JSON_STRING) {
		if (!build_headers(berth_param_string(ctx, "header"), &headers,
				   err, errlen))
			goto out;
	} else if (ht != BERTH_JSON_ABSENT) {
		/* Harbor ignores a header that is not a string */
		berth_log_warning(ctx, "parameter 'header' is a %s, not a "
				       "JSON string; ignored",
				  hc_go_type_name(ht));
	}
	size_t len = strlen(payload);
	if (st->hmac_secret && !add_signature(st, payload, len, &headers)) {
		snprintf(err, errlen, "cannot compute the HMAC signature");
		goto out;
	}

	berth_log_info(ctx, "start to run webhook job");
	struct hc_request req = {
		.url = address,
		.body = payload,
		.body_len = len,
		.headers = &headers,
		.skip_cert_verify = skip,
	};
	struct hc_response resp;
	char why[768];
	enum hc_status hs = hc_post(ctx, &st->http, &req, &resp, why,
				    sizeof(why));
	if (hs == HC_STOPPED) {
		berth_log_info(ctx, "stopped while sending");
		res = BERTH_RUN_STOPPED;
		goto out;
	}
	if (hs == HC_FAILED) {
		snprintf(err, errlen, "error to send request: %s", why);
		goto out;
	}
	hc_log_exchange(ctx, &resp, len);
	if (hc_is_2xx(resp.code)) {
		berth_log_info(ctx, "success to run webhook job");
		res = BERTH_RUN_SUCCESS;
	} else {
		hc_format_abnormal(err, errlen, &resp);
	}
	hc_response_fini(&resp);
out:
	hc_headers_fini(&headers);
	return res;
}

static struct berth_job_type webhook_type = {
	BERTH_JOB_TYPE_INIT,
	.name = "WEBHOOK",
	.description = "Harbor's webhook notification: POSTs the payload to "
		       "the address",
	.max_fails = HC_DEFAULT_MAX_FAILS,
	.max_concurrency = 0,
	.priority = 1000,
	.init = webhook_init,
	.fini = webhook_fini,
	.should_retry = webhook_should_retry,
	.run = webhook_run,
};

/* Runs at dlopen(), before the host reads the table. Go reads the variable
 * when the job type is registered, i.e. once per process as well. */
__attribute__((constructor)) static void
webhook_load(void)
{
	webhook_type.max_fails = hc_env_max_fails();
}

BERTH_PLUGIN_MAGIC("webhook", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&webhook_type);

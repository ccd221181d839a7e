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
 *           by init() when the type is loaded), max_concurrency 0,
 *           priority 1000, should_retry true.
 * settings: follow_redirects, max_response_bytes, block_private_addresses
 *           (berth/http_plugin.h), hmac_secret / hmac_secret_env
 *           (signature header X-Berth-Signature: sha256=<hex HMAC-SHA256
 *           of the payload>). */
#define _GNU_SOURCE /* explicit_bzero */
#include <berth/http_plugin.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#define WEBHOOK_USER_AGENT "berth-webhook/1.0"
#define WEBHOOK_SIGNATURE_HEADER "X-Berth-Signature"

struct webhook_state {
	struct berth_http_settings http;
	char *hmac_secret; /* NULL = no signature */
	size_t hmac_len;
};

/* --- init / fini --------------------------------------------------------- */

static void
webhook_state_free(struct webhook_state *st)
{
	if (!st)
		return;
	berth_http_settings_fini(&st->http);
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
	if (berth_http_settings_load(ctx, &st->http, WEBHOOK_USER_AGENT) != 0) {
		free(st);
		return -1;
	}
	if (load_secret(ctx, st) != 0) {
		webhook_state_free(st);
		return -1;
	}
	/* Go reads the variable when the job type is registered: once per
	 * load here. (The manifest's max_fails still overrides it.) */
	uint32_t max_fails = BERTH_HTTP_DEFAULT_MAX_FAILS; /* the table's */
	if (BERTH_HOST_HAS(ctx->host, limits)) {
		max_fails = berth_http_env_max_fails();
		berth_limits(ctx)->max_fails = max_fails;
	}
	berth_log_info(ctx,
		       "ready: timeout %ld s, max_fails %u, "
		       "follow_redirects %s, max_response_bytes %zu, "
		       "block_private_addresses %s, signature %s",
		       st->http.timeout_ms / 1000, max_fails,
		       st->http.follow_redirects ? "on" : "off",
		       st->http.max_response_bytes,
		       berth_http_policy_blocks_private(st->http.policy)
			       ? "on"
			       : "off",
		       st->hmac_secret ? "on" : "off");
	*type_state = st;
	return 0;
}

static void
webhook_fini(void *type_state)
{
	webhook_state_free(type_state);
}

static bool
webhook_should_retry(void *type_state)
{
	(void)type_state;
	return true;
}

/* --- the `header` parameter: JSON {"Name": ["v1", ...] | null, ...} ------ */

/* RFC 7230 token characters (Go's httpguts.ValidHeaderFieldName). */
static bool
valid_name(const char *s)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z') || strchr(extra, c)))
			return false;
	}
	return true;
}

/* No control characters but tab (httpguts.ValidHeaderFieldValue). */
static bool
valid_value(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* Whether a JSON text contains the escape \u0000: cJSON would cut the
 * string there, and Go would keep the NUL and refuse the header. */
static bool
has_escaped_nul(const char *t)
{
	for (; *t; t++) {
		if (*t != '\\')
			continue;
		if (t[1] == 'u' && strncmp(t + 2, "0000", 4) == 0)
			return true;
		if (t[1])
			t++; /* skip the escaped character */
	}
	return false;
}

static const char *
go_kind(const cJSON *v)
{
	return cJSON_IsString(v)   ? "string"
	       : cJSON_IsNumber(v) ? "number"
	       : cJSON_IsBool(v)   ? "bool"
	       : cJSON_IsArray(v)  ? "array"
				   : "object";
}

/* The request headers from the `header` JSON text, decoded as Go's
 * json.Unmarshal into http.Header would (a repeated name replaces the
 * earlier one; null values are no header, null array items ""). Host,
 * Content-Length, Transfer-Encoding and Trailer are the transport's (Go
 * ignores them in a request's header map too). */
static bool
build_headers(const char *text, struct berth_http_headers *h, char *err,
	      size_t errlen)
{
	static const char *const transport[] = {
		"Host", "Content-Length", "Transfer-Encoding", "Trailer"};
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithOpts(text, &end, true);
	if (!doc || !cJSON_IsObject(doc)) {
		if (doc)
			snprintf(err, errlen, "error to unmarshal header: "
					      "cannot unmarshal %s into Go "
					      "value of type http.Header",
				 go_kind(doc));
		else
			snprintf(err, errlen, "error to unmarshal header: "
					      "invalid JSON at offset %td",
				 end ? end - text : (ptrdiff_t)0);
		cJSON_Delete(doc);
		return false;
	}
	bool ok = true;
	const cJSON *e;
	/* pass 1: types, as Unmarshal checks them before anything is sent */
	cJSON_ArrayForEach(e, doc)
	{
		const cJSON *v;
		if (!cJSON_IsNull(e) && !cJSON_IsArray(e)) {
			snprintf(err, errlen, "error to unmarshal header: cannot "
					      "unmarshal %s into Go value of "
					      "type []string",
				 go_kind(e));
			ok = false;
			break;
		}
		cJSON_ArrayForEach(v, e)
		{
			if (!cJSON_IsString(v) && !cJSON_IsNull(v)) {
				snprintf(err, errlen,
					 "error to unmarshal header: cannot "
					 "unmarshal %s into Go value of type "
					 "string",
					 go_kind(v));
				ok = false;
				break;
			}
		}
		if (!ok)
			break;
	}
	if (ok && has_escaped_nul(text)) {
		snprintf(err, errlen, "invalid header field value in header "
				      "parameter (NUL)");
		ok = false;
	}
	/* pass 2: names and values, the last of repeated names wins */
	for (e = doc->child; ok && e; e = e->next) {
		bool later = false;
		for (const cJSON *n = e->next; n && !later; n = n->next)
			later = strcmp(n->string, e->string) == 0;
		if (later)
			continue;
		if (!valid_name(e->string)) {
			snprintf(err, errlen, "invalid header field name in "
					      "header parameter");
			ok = false;
			break;
		}
		bool skip = false;
		for (size_t k = 0; k < 4; k++)
			skip = skip || strcasecmp(e->string, transport[k]) == 0;
		const cJSON *v;
		cJSON_ArrayForEach(v, e)
		{
			const char *s = cJSON_IsString(v) ? v->valuestring : "";
			if (!valid_value(s)) {
				snprintf(err, errlen,
					 "invalid header field value for "
					 "\"%s\"",
					 e->string);
				ok = false;
				break;
			}
			if (!skip && berth_http_headers_add(h, e->string, s)) {
				snprintf(err, errlen, "out of memory");
				ok = false;
				break;
			}
		}
	}
	cJSON_Delete(doc);
	return ok;
}

/* --- signature ----------------------------------------------------------- */

static bool
add_signature(const struct webhook_state *st, const char *payload,
	      size_t len, struct berth_http_headers *h)
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
	berth_http_headers_remove(h, WEBHOOK_SIGNATURE_HEADER);
	return berth_http_headers_add(h, WEBHOOK_SIGNATURE_HEADER, hex) == 0;
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
			 key, berth_http_go_type_name(t));
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

	struct berth_http_headers headers;
	berth_http_headers_init(&headers);
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
				  berth_http_go_type_name(ht));
	}
	size_t len = strlen(payload);
	if (st->hmac_secret && !add_signature(st, payload, len, &headers)) {
		snprintf(err, errlen, "cannot compute the HMAC signature");
		goto out;
	}

	berth_log_info(ctx, "start to run webhook job");
	struct berth_http_post post = {
		.url = address,
		.body = payload,
		.body_len = len,
		.headers = &headers,
		.skip_cert_verify = skip,
	};
	struct berth_http_response resp;
	char why[768];
	enum berth_http_result hs =
		berth_http_post(ctx, &st->http, &post, &resp, why, sizeof(why));
	if (hs == BERTH_HTTP_CANCELLED) {
		berth_log_info(ctx, "stopped while sending");
		res = BERTH_RUN_STOPPED;
	} else if (hs != BERTH_HTTP_OK) {
		snprintf(err, errlen, "error to send request: %s", why);
	} else {
		berth_http_log_exchange(ctx, &resp, len);
		if (berth_http_is_2xx(resp.status)) {
			berth_log_info(ctx, "success to run webhook job");
			res = BERTH_RUN_SUCCESS;
		} else {
			berth_http_format_abnormal(err, errlen, &resp);
		}
	}
	berth_http_response_fini(&resp);
out:
	berth_http_headers_fini(&headers);
	return res;
}

static const struct berth_job_type webhook_type = {
	BERTH_JOB_TYPE_INIT,
	.name = "WEBHOOK",
	.description = "Harbor's webhook notification: POSTs the payload to "
		       "the address",
	.max_fails = BERTH_HTTP_DEFAULT_MAX_FAILS,
	.max_concurrency = 0,
	.priority = 1000,
	.init = webhook_init,
	.fini = webhook_fini,
	.should_retry = webhook_should_retry,
	.run = webhook_run,
};

BERTH_PLUGIN_MAGIC("webhook", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&webhook_type);

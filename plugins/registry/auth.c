/* auth.c - registry authentication (berth/registry.h, "Authentication"):
 * WWW-Authenticate challenges, Basic credentials, the Bearer token flow
 * (https://distribution.github.io/distribution/spec/auth/token/) and the
 * per-scope token cache. No credential or token ever reaches an error
 * text. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKEN_DEFAULT_S 60
#define TOKEN_EARLY_MS 5000
#define TOKEN_BODY_MAX (1024 * 1024)

static void
token_free(struct reg_token *t)
{
	free(t->scope);
	if (t->token) {
		explicit_bzero(t->token, strlen(t->token));
		free(t->token);
	}
	memset(t, 0, sizeof(*t));
}

void
reg_tokens_clear(struct berth_reg *r)
{
	for (size_t i = 0; i < r->n_tokens; i++)
		token_free(&r->tokens[i]);
	r->n_tokens = 0;
}

int
reg_tokens_copy(struct berth_reg *dst, const struct berth_reg *src)
{
	reg_tokens_clear(dst);
	for (size_t i = 0; i < src->n_tokens; i++) {
		struct reg_token *t = &dst->tokens[i];
		t->scope = strdup(src->tokens[i].scope);
		t->token = strdup(src->tokens[i].token);
		t->expires_ms = src->tokens[i].expires_ms;
		t->used_ms = src->tokens[i].used_ms;
		dst->n_tokens = i + 1;
		if (!t->scope || !t->token)
			return BERTH_REG_NOMEM;
	}
	return 0;
}

static struct reg_token *
token_find(struct berth_reg *r, const char *scope)
{
	long long now = berth_http_now_ms();
	for (size_t i = 0; i < r->n_tokens; i++) {
		struct reg_token *t = &r->tokens[i];
		if (strcmp(t->scope, scope) == 0) {
			if (t->expires_ms - TOKEN_EARLY_MS <= now)
				return NULL;
			t->used_ms = now;
			return t;
		}
	}
	return NULL;
}

static void
token_drop(struct berth_reg *r, const char *scope)
{
	for (size_t i = 0; i < r->n_tokens; i++)
		if (strcmp(r->tokens[i].scope, scope) == 0) {
			token_free(&r->tokens[i]);
			r->tokens[i] = r->tokens[--r->n_tokens];
			memset(&r->tokens[r->n_tokens], 0,
			       sizeof(r->tokens[0]));
			return;
		}
}

/* Takes ownership of token. */
static int
token_put(struct berth_reg *r, const char *scope, char *token,
	  long long expires_ms)
{
	token_drop(r, scope);
	if (r->n_tokens == REG_TOKENS_MAX) {
		/* evict the least recently used */
		size_t old = 0;
		for (size_t i = 1; i < r->n_tokens; i++)
			if (r->tokens[i].used_ms < r->tokens[old].used_ms)
				old = i;
		token_free(&r->tokens[old]);
		r->tokens[old] = r->tokens[--r->n_tokens];
		memset(&r->tokens[r->n_tokens], 0, sizeof(r->tokens[0]));
	}
	struct reg_token *t = &r->tokens[r->n_tokens];
	t->scope = strdup(scope);
	if (!t->scope) {
		explicit_bzero(token, strlen(token));
		free(token);
		return BERTH_REG_NOMEM;
	}
	t->token = token;
	t->expires_ms = expires_ms;
	t->used_ms = berth_http_now_ms();
	r->n_tokens++;
	return 0;
}

/* "Authorization: Basic base64(user:pass)" */
static int
add_basic(const struct berth_reg *r, struct berth_http_headers *h)
{
	const char *pw = r->password ? r->password : "";
	size_t ulen = strlen(r->username), plen = strlen(pw);
	size_t raw_len = ulen + 1 + plen;
	char *raw = malloc(raw_len + 1);
	size_t cap = 6 + 4 * ((raw_len + 2) / 3) + 1;
	char *val = malloc(cap);
	int rc = 0;
	if (!raw || !val) {
		rc = BERTH_REG_NOMEM;
	} else {
		memcpy(raw, r->username, ulen);
		raw[ulen] = ':';
		memcpy(raw + ulen + 1, pw, plen);
		memcpy(val, "Basic ", 6);
		if (berth_http_base64(raw, raw_len, val + 6, cap - 6) < 0 ||
		    berth_http_headers_add(h, "Authorization", val) < 0)
			rc = BERTH_REG_NOMEM;
	}
	if (raw) {
		explicit_bzero(raw, raw_len);
		free(raw);
	}
	if (val) {
		explicit_bzero(val, strlen(val));
		free(val);
	}
	return rc;
}

static int
add_bearer(struct berth_http_headers *h, const char *token)
{
	char *val = reg_asprintf("Bearer %s", token);
	int rc = val && berth_http_headers_add(h, "Authorization", val) == 0
			 ? 0
			 : BERTH_REG_NOMEM;
	if (val) {
		explicit_bzero(val, strlen(val));
		free(val);
	}
	return rc;
}

/* ---- the token service ------------------------------------------------------ */

int
reg_parse_token(const char *body, size_t len, char **token,
		long long *expires_s)
{
	*token = NULL;
	*expires_s = TOKEN_DEFAULT_S;
	cJSON *j = body ? cJSON_ParseWithLength(body, len) : NULL;
	const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(j, "token"));
	if (!t || !*t)
		t = cJSON_GetStringValue(
			cJSON_GetObjectItem(j, "access_token"));
	cJSON *ex = cJSON_GetObjectItem(j, "expires_in");
	double secs = cJSON_IsNumber(ex) ? ex->valuedouble : 0;
	if (!(secs >= TOKEN_DEFAULT_S))
		secs = TOKEN_DEFAULT_S; /* the spec's minimum */
	if (secs > 86400)
		secs = 86400;
	int rc = 0;
	if (!t || !*t)
		rc = BERTH_REG_PROTOCOL;
	else if (!(*token = strdup(t)))
		rc = BERTH_REG_NOMEM;
	else
		*expires_s = (long long)secs;
	cJSON_Delete(j);
	return rc;
}

/* GET <realm>?service=..&scope=.. (each space-separated scope of scopes
 * its own parameter) with the basic credentials when there are any. */
static int
fetch_token(struct berth_reg *r, const char *scopes, char **token,
	    long long *expires_ms, char *err, size_t errlen)
{
	char realm[BERTH_HTTP_DEST_MAX];
	berth_http_redact_url(r->realm, realm, sizeof(realm));
	size_t nscopes = 1;
	for (const char *c = scopes; *c; c++)
		nscopes += *c == ' ';
	size_t cap = strlen(r->realm) + 16 +
		     3 * (r->service ? strlen(r->service) : 0) +
		     3 * strlen(scopes) + 8 * nscopes;
	char *url = malloc(cap);
	if (!url)
		return BERTH_REG_NOMEM;
	size_t o = (size_t)snprintf(url, cap, "%s", r->realm);
	char sep = strchr(r->realm, '?') ? '&' : '?';
	int rc = 0;
	if (r->service) {
		char *e = reg_escape(r->service);
		if (!e)
			rc = BERTH_REG_NOMEM;
		else
			o += (size_t)snprintf(url + o, cap - o, "%cservice=%s",
					      sep, e);
		free(e);
		sep = '&';
	}
	/* each scope */
	const char *p = scopes;
	while (!rc && *p) {
		size_t n = strcspn(p, " ");
		if (n) {
			char *one = strndup(p, n);
			char *e = one ? reg_escape(one) : NULL;
			if (!e)
				rc = BERTH_REG_NOMEM;
			else
				o += (size_t)snprintf(url + o, cap - o,
						      "%cscope=%s", sep, e);
			free(one);
			free(e);
			sep = '&';
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	if (rc) {
		free(url);
		return rc;
	}

	struct berth_http_headers h;
	berth_http_headers_init(&h);
	if (r->username)
		rc = add_basic(r, &h);
	struct berth_http_response resp;
	memset(&resp, 0, sizeof(resp));
	for (int attempt = 0; !rc; attempt++) {
		struct berth_http_request req = {
			.method = "GET",
			.url = url,
			.headers = &h,
			.user_agent = r->user_agent,
			.timeout_ms = r->timeout_ms,
			.follow_redirects = true,
			.max_response_bytes = TOKEN_BODY_MAX,
			.skip_cert_verify = r->insecure,
			.tls = r->tls,
			.policy = r->policy,
			.cancel = r->cancel,
			.cancel_ud = r->cancel_ud,
		};
		char herr[256] = "";
		berth_http_response_fini(&resp);
		enum berth_http_result hr =
			berth_http_send(r->http, &req, &resp, herr, sizeof(herr));
		if (hr == BERTH_HTTP_CANCELLED) {
			reg_errf(err, errlen,
				 "registry %s: token service %s: cancelled",
				 r->origin, realm);
			rc = BERTH_REG_CANCELLED;
			break;
		}
		bool transient = hr != BERTH_HTTP_OK || resp.status >= 500 ||
				 resp.status == 429;
		if (transient && hr != BERTH_HTTP_REFUSED &&
		    attempt < r->max_retries) {
			if (!reg_sleep(r,
				       reg_backoff(r, attempt,
						   hr == BERTH_HTTP_OK
							   ? resp.retry_after_s
							   : -1),
				       NULL, NULL)) {
				reg_errf(err, errlen,
					 "registry %s: token service %s: "
					 "cancelled",
					 r->origin, realm);
				rc = BERTH_REG_CANCELLED;
				break;
			}
			continue;
		}
		if (hr != BERTH_HTTP_OK) {
			reg_errf(err, errlen,
				 "registry %s: token service %s: %s",
				 r->origin, realm, herr[0] ? herr : "no answer");
			rc = hr == BERTH_HTTP_REFUSED ? BERTH_REG_INVALID
						      : BERTH_REG_TRANSPORT;
			break;
		}
		if (resp.status != 200) {
			char what[BERTH_HTTP_DEST_MAX + 32];
			snprintf(what, sizeof(what), "token service %s", realm);
			r->last_attempts = attempt + 1;
			rc = reg_status_error(r, &resp, what, err, errlen);
			/* the credentials refused: UNAUTHORIZED; anything
			 * but an overload: the token service is unusable */
			if (rc == BERTH_REG_DENIED)
				rc = BERTH_REG_UNAUTHORIZED;
			else if (rc != BERTH_REG_UNAUTHORIZED &&
				 rc != BERTH_REG_TRANSPORT)
				rc = BERTH_REG_PROTOCOL;
			break;
		}
		long long secs = 0;
		rc = reg_parse_token(resp.body, resp.body_len, token, &secs);
		if (rc == BERTH_REG_PROTOCOL)
			reg_errf(err, errlen,
				 "registry %s: token service %s: the answer "
				 "has no token",
				 r->origin, realm);
		else if (!rc)
			*expires_ms = berth_http_now_ms() + secs * 1000;
		if (resp.body)
			explicit_bzero(resp.body, resp.body_len);
		break;
	}
	berth_http_response_fini(&resp);
	berth_http_headers_fini(&h);
	free(url);
	if (rc == BERTH_REG_NOMEM)
		reg_errf(err, errlen, "out of memory");
	return rc;
}

int
reg_auth_header(struct berth_reg *r, const char *scope,
		struct berth_http_headers *h, char *err, size_t errlen)
{
	if (r->bearer_token)
		return add_bearer(h, r->bearer_token);
	if (r->auth == REG_AUTH_BASIC && r->username)
		return add_basic(r, h);
	if (r->auth != REG_AUTH_BEARER || !r->realm)
		return 0;
	struct reg_token *t = token_find(r, scope);
	if (t)
		return add_bearer(h, t->token);
	char *token = NULL;
	long long exp = 0;
	int rc = fetch_token(r, scope, &token, &exp, err, errlen);
	if (rc)
		return rc;
	rc = add_bearer(h, token);
	if (!rc)
		rc = token_put(r, scope, token, exp);
	else
		free(token);
	return rc;
}

/* ---- challenges ------------------------------------------------------------ */

/* White space is OWS/BWS of RFC 9110 5.6.3: spaces and tabs (a tab after a
 * comma once lost the parameter after it). */
void
reg_parse_challenge(const char *s, char *scheme, size_t slen, char **realm,
		char **service, char **scope)
{
	s = reg_skip_ows(s);
	size_t n = strcspn(s, " \t");
	snprintf(scheme, slen, "%.*s", (int)n, s);
	s += n;
	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		const char *k = s;
		size_t kl = strcspn(s, "=, \t");
		s += kl;
		s = reg_skip_ows(s);
		if (*s != '=')
			continue;
		s++;
		s = reg_skip_ows(s);
		char *v;
		if (*s == '"') {
			s++;
			size_t cap = strlen(s) + 1, o = 0;
			v = malloc(cap);
			if (!v)
				return;
			while (*s && *s != '"') {
				if (*s == '\\' && s[1])
					s++;
				v[o++] = *s++;
			}
			v[o] = '\0';
			if (*s == '"')
				s++;
		} else {
			size_t vl = strcspn(s, ", \t");
			v = strndup(s, vl);
			s += vl;
			if (!v)
				return;
		}
		char **dst = NULL;
		if (kl == 5 && strncasecmp(k, "realm", 5) == 0)
			dst = realm;
		else if (kl == 7 && strncasecmp(k, "service", 7) == 0)
			dst = service;
		else if (kl == 5 && strncasecmp(k, "scope", 5) == 0)
			dst = scope;
		if (dst && !*dst)
			*dst = v;
		else
			free(v);
	}
}

/* Does the space-separated set have this scope? */
static bool
has_scope(const char *set, const char *one)
{
	size_t n = strlen(one);
	for (const char *p = set; *p;) {
		size_t m = strcspn(p, " ");
		if (m == n && strncmp(p, one, n) == 0)
			return true;
		p += m;
		while (*p == ' ')
			p++;
	}
	return false;
}

int
reg_auth_challenge(struct berth_reg *r,
		   const struct berth_http_response *resp, const char *scope,
		   bool *resend, char *err, size_t errlen)
{
	*resend = false;
	/* the challenges: Bearer preferred over Basic */
	const char *basic = NULL, *bearer = NULL;
	for (size_t i = 0; i < resp->headers.n; i++) {
		const char *line = resp->headers.v[i];
		if (strncasecmp(line, "WWW-Authenticate:", 17) != 0)
			continue;
		const char *v = line + 17;
		while (*v == ' ' || *v == '\t')
			v++;
		if (strncasecmp(v, "Bearer", 6) == 0 && !bearer)
			bearer = v;
		else if (strncasecmp(v, "Basic", 5) == 0 && !basic)
			basic = v;
	}
	if (bearer) {
		char scheme[16];
		char *realm = NULL, *service = NULL, *cscope = NULL;
		reg_parse_challenge(bearer, scheme, sizeof(scheme), &realm,
				    &service, &cscope);
		if (!realm || (strncasecmp(realm, "http://", 7) != 0 &&
			       strncasecmp(realm, "https://", 8) != 0)) {
			free(realm);
			free(service);
			free(cscope);
			return 0;
		}
		free(r->realm);
		free(r->service);
		r->realm = realm;
		r->service = service;
		r->auth = REG_AUTH_BEARER;
		/* a cached token was refused (revoked, or expired early):
		 * ask again; the challenge's scope joins ours */
		token_drop(r, scope);
		char *want = NULL;
		if (cscope && *cscope && !has_scope(scope, cscope))
			want = *scope ? reg_asprintf("%s %s", scope, cscope)
				      : strdup(cscope);
		free(cscope);
		char *token = NULL;
		long long exp = 0;
		int rc = fetch_token(r, want ? want : scope, &token, &exp, err,
				     errlen);
		free(want);
		if (rc)
			return rc;
		rc = token_put(r, scope, token, exp);
		if (rc) {
			reg_errf(err, errlen, "out of memory");
			return rc;
		}
		*resend = true;
		return 0;
	}
	if (basic && r->username && r->auth != REG_AUTH_BASIC) {
		r->auth = REG_AUTH_BASIC;
		*resend = true;
	}
	return 0;
}

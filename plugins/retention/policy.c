/* policy.c - RETENTION's rule engine (see policy.h): the time parser,
 * the liteMeta parser and the "or" evaluation (the patterns are in
 * glob.c). No registry, no host. */
#include "policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include <berth/plugin.h>

/* Deepest nesting of a liteMeta, repository or extras text: validate()
 * parses them on a REST API thread with a small stack (plugin.h, "Stack"). */
#define MAX_DEPTH 64

void
ret_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ===================================================================== */
/* time                                                                   */
/* ===================================================================== */

static bool
digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static long long
days_from_civil(long long y, int m, int d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

bool
ret_parse_rfc3339(const char *s, long long *out)
{
	int Y, M, D, h, m, sec;
	if (!s || strlen(s) < 20)
		return false;
	if (!digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) ||
	    s[7] != '-' || !digits(s + 8, 2, &D) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    !digits(s + 11, 2, &h) || s[13] != ':' ||
	    !digits(s + 14, 2, &m) || s[16] != ':' ||
	    !digits(s + 17, 2, &sec))
		return false;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 ||
	    sec > 60)
		return false;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	long long off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (!digits(p + 1, 2, &oh) || p[3] != ':' ||
		    !digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return false;
		off = (oh * 3600LL + om * 60LL) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return false;
	}
	if (*p)
		return false;
	*out = days_from_civil(Y, M, D) * 86400LL + h * 3600LL + m * 60LL +
	       sec - off;
	return true;
}

/* ===================================================================== */
/* liteMeta                                                               */
/* ===================================================================== */

static void
selector_fini(struct ret_selector *s)
{
	free(s->pattern);
	ret_glob_free(s->glob);
}

static void
rule_fini(struct ret_rule *r)
{
	for (size_t i = 0; i < r->n_tags; i++)
		selector_fini(&r->tags[i]);
	free(r->tags);
	for (size_t i = 0; i < r->n_scope; i++)
		selector_fini(&r->scope[i]);
	free(r->scope);
}

void
ret_policy_fini(struct ret_policy *p)
{
	for (size_t i = 0; p->rules && i < p->n_rules; i++)
		rule_fini(&p->rules[i]);
	free(p->rules);
	p->rules = NULL;
	p->n_rules = 0;
}

static const char *
json_kind(const cJSON *v)
{
	if (!v)
		return "missing";
	if (cJSON_IsNull(v))
		return "null";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsArray(v))
		return "an array";
	return "an object";
}

/* The "untagged" flag of a tag selector from its extras text, as Go's
 * json.Unmarshal into struct{Untagged bool} decides it: a JSON object or
 * null sets the flag to its "untagged" member (false when absent); any
 * other text, or a non-boolean member, keeps the default. */
static bool
extras_untagged(const char *extras, bool def)
{
	if (!extras || !*extras || berth_json_too_deep(extras, MAX_DEPTH))
		return def;
	cJSON *doc = cJSON_Parse(extras);
	if (!doc)
		return def;
	bool v = def;
	if (cJSON_IsNull(doc)) {
		v = false;
	} else if (cJSON_IsObject(doc)) {
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(doc,
								  "untagged");
		if (!u || cJSON_IsNull(u))
			v = false;
		else if (cJSON_IsBool(u))
			v = cJSON_IsTrue(u);
	}
	cJSON_Delete(doc);
	return v;
}

/* One selector object; scope selects the decoration names. */
static int
parse_selector(const cJSON *o, bool scope, struct ret_selector *s,
	       const char *where, char *err, size_t errlen)
{
	if (!cJSON_IsObject(o)) {
		ret_seterr(err, errlen, "%s is %s, not an object", where,
		       json_kind(o));
		return -1;
	}
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
	const cJSON *dec = cJSON_GetObjectItemCaseSensitive(o, "decoration");
	const cJSON *pat = cJSON_GetObjectItemCaseSensitive(o, "pattern");
	const cJSON *ext = cJSON_GetObjectItemCaseSensitive(o, "extras");
	if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "doublestar")) {
		ret_seterr(err, errlen,
		       "%s: kind %s%s%s is not supported (only \"doublestar\"; "
		       "label selectors need Harbor's labels)",
		       where, cJSON_IsString(kind) ? "\"" : "",
		       cJSON_IsString(kind) ? kind->valuestring
					    : json_kind(kind),
		       cJSON_IsString(kind) ? "\"" : "");
		return -1;
	}
	if (!cJSON_IsString(dec)) {
		ret_seterr(err, errlen, "%s: decoration is %s, not a string",
		       where, json_kind(dec));
		return -1;
	}
	const char *d = dec->valuestring;
	if (!scope && strcmp(d, "matches") == 0) {
		s->decoration = RET_MATCHES;
	} else if (!scope && strcmp(d, "excludes") == 0) {
		s->decoration = RET_EXCLUDES;
	} else if (scope && strcmp(d, "repoMatches") == 0) {
		s->decoration = RET_MATCHES;
	} else if (scope && strcmp(d, "repoExcludes") == 0) {
		s->decoration = RET_EXCLUDES;
	} else if (scope && strcmp(d, "nsMatches") == 0) {
		s->decoration = RET_MATCHES;
		s->on_namespace = true;
	} else if (scope && strcmp(d, "nsExcludes") == 0) {
		s->decoration = RET_EXCLUDES;
		s->on_namespace = true;
	} else {
		ret_seterr(err, errlen, "%s: decoration \"%s\" is not supported "
				    "(%s)",
		       where, d,
		       scope ? "repoMatches, repoExcludes, nsMatches or "
			       "nsExcludes"
			     : "matches or excludes");
		return -1;
	}
	if (pat && !cJSON_IsString(pat) && !cJSON_IsNull(pat)) {
		ret_seterr(err, errlen, "%s: pattern is %s, not a string", where,
		       json_kind(pat));
		return -1;
	}
	if (ext && !cJSON_IsString(ext) && !cJSON_IsNull(ext)) {
		ret_seterr(err, errlen,
		       "%s: extras is %s, not a JSON string "
		       "(e.g. \"{\\\"untagged\\\":true}\")",
		       where, json_kind(ext));
		return -1;
	}
	s->pattern = strdup(cJSON_IsString(pat) ? pat->valuestring : "");
	if (!s->pattern) {
		ret_seterr(err, errlen, "out of memory");
		return -1;
	}
	char why[160];
	if (ret_glob_compile(s->pattern, &s->glob, why, sizeof(why)) != 0) {
		ret_seterr(err, errlen, "%s: malformed pattern \"%s\": %s", where,
		       s->pattern, why);
		return -1;
	}
	s->untagged = extras_untagged(
		cJSON_IsString(ext) ? ext->valuestring : NULL,
		s->decoration == RET_MATCHES);
	return 0;
}

/* A rule parameter as Harbor's utils.ParseJSONInt reads it: a JSON number
 * (truncated to an integer). Absent: the default. */
static int
parse_param(const cJSON *params, const char *key, long long max,
	    long long def, struct ret_rule *r, const char *where, char *err,
	    size_t errlen)
{
	const cJSON *v = cJSON_IsObject(params)
				 ? cJSON_GetObjectItemCaseSensitive(params,
								    key)
				 : NULL;
	if (!v) {
		r->param = def;
		r->param_default = true;
		return 0;
	}
	if (!cJSON_IsNumber(v)) {
		ret_seterr(err, errlen,
		       "%s: parameter %s is %s, not a number", where, key,
		       json_kind(v));
		return -1;
	}
	double d = v->valuedouble;
	if (d < 0) {
		ret_seterr(err, errlen, "%s: parameter %s is less than zero",
		       where, key);
		return -1;
	}
	if (d > (double)max) {
		ret_seterr(err, errlen, "%s: parameter %s is too large (at most "
				    "%lld)",
		       where, key, max);
		return -1;
	}
	r->param = (long long)d;
	return 0;
}

static int
parse_rule(const cJSON *o, size_t index, struct ret_rule *r, char *err,
	   size_t errlen)
{
	char where[96];
	r->index = index;
	if (!cJSON_IsObject(o)) {
		ret_seterr(err, errlen, "rule %zu is %s, not an object", index,
		       json_kind(o));
		return -1;
	}
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
	if (cJSON_IsNumber(id))
		r->id = (long long)id->valuedouble;
	if (r->id)
		snprintf(where, sizeof(where), "rule %zu (id %lld)", index,
			 r->id);
	else
		snprintf(where, sizeof(where), "rule %zu", index);
	const cJSON *dis = cJSON_GetObjectItemCaseSensitive(o, "disabled");
	if (dis && !cJSON_IsBool(dis) && !cJSON_IsNull(dis)) {
		ret_seterr(err, errlen, "%s: disabled is %s, not a boolean", where,
		       json_kind(dis));
		return -1;
	}
	r->disabled = cJSON_IsTrue(dis);
	if (r->disabled)
		return 0;

	const cJSON *act = cJSON_GetObjectItemCaseSensitive(o, "action");
	if (act && !(cJSON_IsString(act) &&
		     strcmp(act->valuestring, "retain") == 0)) {
		ret_seterr(err, errlen,
		       "%s: action %s%s%s is not supported (only \"retain\")",
		       where, cJSON_IsString(act) ? "\"" : "",
		       cJSON_IsString(act) ? act->valuestring
					   : json_kind(act),
		       cJSON_IsString(act) ? "\"" : "");
		return -1;
	}
	const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(o, "template");
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(o, "params");
	if (params && !cJSON_IsObject(params) && !cJSON_IsNull(params)) {
		ret_seterr(err, errlen, "%s: params is %s, not an object", where,
		       json_kind(params));
		return -1;
	}
	if (!cJSON_IsString(tpl)) {
		ret_seterr(err, errlen, "%s: template is %s, not a string", where,
		       json_kind(tpl));
		return -1;
	}
	const char *t = tpl->valuestring;
	int rc;
	if (strcmp(t, "latestPushedK") == 0) {
		r->tpl = RET_TPL_LATEST_PUSHED_K;
		rc = parse_param(params, t, 32766, RET_DEFAULT_K, r, where,
				 err, errlen);
	} else if (strcmp(t, "nDaysSinceLastPush") == 0) {
		r->tpl = RET_TPL_DAYS_SINCE_PUSH;
		rc = parse_param(params, t, 20190904, RET_DEFAULT_N, r, where,
				 err, errlen);
	} else if (strcmp(t, "always") == 0) {
		r->tpl = RET_TPL_ALWAYS;
		rc = 0;
	} else {
		ret_seterr(err, errlen,
		       "%s: template \"%s\" is not supported; Berth supports "
		       "latestPushedK, nDaysSinceLastPush and always (the "
		       "pull-based and label templates need Harbor's "
		       "database)",
		       where, t);
		return -1;
	}
	if (rc)
		return rc;

	const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "tag_selectors");
	if (!cJSON_IsArray(ts) || cJSON_GetArraySize(ts) == 0) {
		ret_seterr(err, errlen,
		       "%s: tag_selectors must be a non-empty array (e.g. "
		       "[{\"kind\":\"doublestar\",\"decoration\":\"matches\","
		       "\"pattern\":\"**\"}])",
		       where);
		return -1;
	}
	size_t n = (size_t)cJSON_GetArraySize(ts);
	r->tags = calloc(n, sizeof(*r->tags));
	if (!r->tags) {
		ret_seterr(err, errlen, "out of memory");
		return -1;
	}
	const cJSON *e;
	cJSON_ArrayForEach(e, ts)
	{
		char w2[128];
		snprintf(w2, sizeof(w2), "%s tag selector %zu", where,
			 r->n_tags + 1);
		if (parse_selector(e, false, &r->tags[r->n_tags], w2, err,
				   errlen) != 0) {
			r->n_tags++;
			return -1;
		}
		r->n_tags++;
	}

	const cJSON *ss =
		cJSON_GetObjectItemCaseSensitive(o, "scope_selectors");
	if (ss && !cJSON_IsObject(ss) && !cJSON_IsNull(ss)) {
		ret_seterr(err, errlen, "%s: scope_selectors is %s, not an object",
		       where, json_kind(ss));
		return -1;
	}
	const cJSON *repo = cJSON_IsObject(ss)
				    ? cJSON_GetObjectItemCaseSensitive(
					      ss, "repository")
				    : NULL;
	if (repo && !cJSON_IsArray(repo) && !cJSON_IsNull(repo)) {
		ret_seterr(err, errlen,
		       "%s: scope_selectors.repository is %s, not an array",
		       where, json_kind(repo));
		return -1;
	}
	if (cJSON_IsArray(repo) && cJSON_GetArraySize(repo) > 0) {
		n = (size_t)cJSON_GetArraySize(repo);
		r->scope = calloc(n, sizeof(*r->scope));
		if (!r->scope) {
			ret_seterr(err, errlen, "out of memory");
			return -1;
		}
		cJSON_ArrayForEach(e, repo)
		{
			char w2[128];
			snprintf(w2, sizeof(w2), "%s scope selector %zu",
				 where, r->n_scope + 1);
			if (parse_selector(e, true, &r->scope[r->n_scope], w2,
					   err, errlen) != 0) {
				r->n_scope++;
				return -1;
			}
			r->n_scope++;
		}
	}
	return 0;
}

int
ret_policy_parse(const char *lite_meta, struct ret_policy *p, char *err,
		 size_t errlen)
{
	memset(p, 0, sizeof(*p));
	if (berth_json_too_deep(lite_meta, MAX_DEPTH)) {
		ret_seterr(err, errlen, "nests arrays or objects deeper than %d "
				    "levels", MAX_DEPTH);
		return -1;
	}
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithOpts(lite_meta, &end, true);
	if (!doc) {
		ret_seterr(err, errlen, "not valid JSON (at offset %td)",
		       end ? end - lite_meta : (ptrdiff_t)0);
		return -1;
	}
	int rc = -1;
	if (!cJSON_IsObject(doc)) {
		ret_seterr(err, errlen, "not a JSON object");
		goto out;
	}
	const cJSON *alg = cJSON_GetObjectItemCaseSensitive(doc, "algorithm");
	if (alg && !cJSON_IsNull(alg) &&
	    !(cJSON_IsString(alg) && (strcmp(alg->valuestring, "or") == 0 ||
				      !*alg->valuestring))) {
		ret_seterr(err, errlen,
		       "algorithm %s%s%s is not supported (only \"or\")",
		       cJSON_IsString(alg) ? "\"" : "",
		       cJSON_IsString(alg) ? alg->valuestring : json_kind(alg),
		       cJSON_IsString(alg) ? "\"" : "");
		goto out;
	}
	const cJSON *rules = cJSON_GetObjectItemCaseSensitive(doc, "rules");
	if (!cJSON_IsArray(rules)) {
		ret_seterr(err, errlen, "rules is %s, not an array",
		       json_kind(rules));
		goto out;
	}
	size_t n = (size_t)cJSON_GetArraySize(rules);
	if (n) {
		p->rules = calloc(n, sizeof(*p->rules));
		if (!p->rules) {
			ret_seterr(err, errlen, "out of memory");
			goto out;
		}
	}
	const cJSON *e;
	cJSON_ArrayForEach(e, rules)
	{
		struct ret_rule *r = &p->rules[p->n_rules++];
		if (parse_rule(e, p->n_rules, r, err, errlen) != 0)
			goto out;
	}
	rc = 0;
out:
	cJSON_Delete(doc);
	if (rc)
		ret_policy_fini(p);
	return rc;
}

void
ret_rule_describe(const struct ret_rule *r, char *buf, size_t len)
{
	int k;
	if (r->id)
		k = snprintf(buf, len, "rule %zu (id %lld): ", r->index,
			     r->id);
	else
		k = snprintf(buf, len, "rule %zu: ", r->index);
	if (k < 0 || (size_t)k >= len)
		return;
	if (r->disabled) {
		snprintf(buf + k, len - (size_t)k, "disabled");
		return;
	}
	size_t off = (size_t)k;
	switch (r->tpl) {
	case RET_TPL_LATEST_PUSHED_K:
		k = snprintf(buf + off, len - off,
			     "retain the %lld most recently pushed%s",
			     r->param, r->param_default ? " (default)" : "");
		break;
	case RET_TPL_DAYS_SINCE_PUSH:
		k = snprintf(buf + off, len - off,
			     "retain those pushed within %lld days%s",
			     r->param, r->param_default ? " (default)" : "");
		break;
	default:
		k = snprintf(buf + off, len - off, "retain always");
		break;
	}
	for (size_t i = 0; k >= 0 && i < r->n_tags; i++) {
		off += (size_t)k;
		if (off >= len)
			return;
		const struct ret_selector *s = &r->tags[i];
		k = snprintf(buf + off, len - off,
			     "%s tags %s \"%s\" (untagged: %s)",
			     i ? " and" : ";",
			     s->decoration == RET_MATCHES ? "matching"
							  : "excluding",
			     s->pattern,
			     (s->decoration == RET_MATCHES) == s->untagged
				     ? "selected"
				     : "not selected");
	}
	for (size_t i = 0; k >= 0 && i < r->n_scope; i++) {
		off += (size_t)k;
		if (off >= len)
			return;
		const struct ret_selector *s = &r->scope[i];
		k = snprintf(buf + off, len - off, "; %s %s \"%s\"",
			     s->on_namespace ? "namespace" : "repository",
			     s->decoration == RET_MATCHES ? "matching"
							  : "excluding",
			     s->pattern);
	}
}

/* ===================================================================== */
/* repository                                                             */
/* ===================================================================== */

void
ret_repository_fini(struct ret_repository *r)
{
	free(r->namespace_);
	free(r->name);
	free(r->kind);
	free(r->path);
	memset(r, 0, sizeof(*r));
}

int
ret_repository_parse(const char *json, struct ret_repository *r, char *err,
		     size_t errlen)
{
	memset(r, 0, sizeof(*r));
	if (berth_json_too_deep(json, MAX_DEPTH)) {
		ret_seterr(err, errlen, "nests arrays or objects deeper than %d "
				    "levels", MAX_DEPTH);
		return -1;
	}
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithOpts(json, &end, true);
	if (!doc) {
		ret_seterr(err, errlen, "not valid JSON (at offset %td)",
		       end ? end - json : (ptrdiff_t)0);
		return -1;
	}
	int rc = -1;
	if (!cJSON_IsObject(doc)) {
		ret_seterr(err, errlen, "not a JSON object");
		goto out;
	}
	const cJSON *ns = cJSON_GetObjectItemCaseSensitive(doc, "namespace");
	const cJSON *nm = cJSON_GetObjectItemCaseSensitive(doc, "name");
	const cJSON *kd = cJSON_GetObjectItemCaseSensitive(doc, "kind");
	if (ns && !cJSON_IsString(ns) && !cJSON_IsNull(ns)) {
		ret_seterr(err, errlen, "namespace is %s, not a string",
		       json_kind(ns));
		goto out;
	}
	if (!cJSON_IsString(nm) || !*nm->valuestring) {
		ret_seterr(err, errlen, "name is %s",
		       cJSON_IsString(nm) ? "empty" : json_kind(nm));
		goto out;
	}
	if (kd && !cJSON_IsNull(kd) &&
	    !(cJSON_IsString(kd) && (strcmp(kd->valuestring, "image") == 0 ||
				     !*kd->valuestring))) {
		ret_seterr(err, errlen,
		       "kind %s%s%s is not supported (only \"image\")",
		       cJSON_IsString(kd) ? "\"" : "",
		       cJSON_IsString(kd) ? kd->valuestring : json_kind(kd),
		       cJSON_IsString(kd) ? "\"" : "");
		goto out;
	}
	const char *nss = cJSON_IsString(ns) ? ns->valuestring : "";
	r->namespace_ = strdup(nss);
	r->name = strdup(nm->valuestring);
	r->kind = strdup("image");
	size_t plen = strlen(nss) + strlen(nm->valuestring) + 2;
	r->path = malloc(plen);
	if (!r->namespace_ || !r->name || !r->kind || !r->path) {
		ret_seterr(err, errlen, "out of memory");
		goto out;
	}
	if (*nss)
		snprintf(r->path, plen, "%s/%s", nss, nm->valuestring);
	else
		snprintf(r->path, plen, "%s", nm->valuestring);
	rc = 0;
out:
	cJSON_Delete(doc);
	if (rc)
		ret_repository_fini(r);
	return rc;
}

/* ===================================================================== */
/* evaluation                                                             */
/* ===================================================================== */

bool
ret_selector_selects(const struct ret_selector *s,
		     const struct ret_candidate *c)
{
	if (c->n_tags == 0)
		return s->decoration == RET_MATCHES ? s->untagged
						    : !s->untagged;
	for (size_t i = 0; i < c->n_tags; i++) {
		bool m = ret_glob_match(s->glob, c->tags[i]);
		if (s->decoration == RET_MATCHES ? m : !m)
			return true;
	}
	return false;
}

static bool
in_scope(const struct ret_rule *r, const struct ret_repository *repo)
{
	for (size_t i = 0; i < r->n_scope; i++) {
		const struct ret_selector *s = &r->scope[i];
		const char *v = s->on_namespace ? repo->namespace_ : repo->name;
		bool m = ret_glob_match(s->glob, v ? v : "");
		if (s->decoration == RET_MATCHES ? !m : m)
			return false;
	}
	return true;
}

/* newest first; ties by digest, so the order of the input does not
 * matter */
static int
by_push_desc(const void *a, const void *b)
{
	const struct ret_candidate *x = *(const struct ret_candidate *const *)a;
	const struct ret_candidate *y = *(const struct ret_candidate *const *)b;
	if (x->pushed != y->pushed)
		return x->pushed > y->pushed ? -1 : 1;
	return strcmp(x->digest ? x->digest : "", y->digest ? y->digest : "");
}

size_t
ret_policy_evaluate(const struct ret_policy *p,
		    const struct ret_repository *repo,
		    struct ret_candidate *c, size_t n, long long now,
		    struct ret_rule_outcome *outcomes)
{
	struct ret_candidate **sel = n ? calloc(n, sizeof(*sel)) : NULL;
	if (n && !sel)
		return (size_t)-1;
	for (size_t i = 0; i < n; i++) {
		c[i].retained = false;
		c[i].rule = 0;
	}
	for (size_t ri = 0; ri < p->n_rules; ri++) {
		const struct ret_rule *r = &p->rules[ri];
		struct ret_rule_outcome o = {0};
		if (r->disabled) {
			o.skipped = true;
			o.why = "disabled";
		} else if (repo && !in_scope(r, repo)) {
			o.skipped = true;
			o.why = "repository out of scope";
		}
		if (o.skipped) {
			if (outcomes)
				outcomes[ri] = o;
			continue;
		}
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			bool all = true;
			for (size_t j = 0; all && j < r->n_tags; j++)
				all = ret_selector_selects(&r->tags[j], &c[i]);
			if (all)
				sel[k++] = &c[i];
		}
		o.selected = k;
		size_t keep = 0;
		if (r->tpl == RET_TPL_LATEST_PUSHED_K) {
			qsort(sel, k, sizeof(*sel), by_push_desc);
			keep = (size_t)r->param < k ? (size_t)r->param : k;
		} else if (r->tpl == RET_TPL_DAYS_SINCE_PUSH) {
			long long min = now - r->param * 86400LL;
			for (size_t i = 0; i < k; i++)
				if (sel[i]->pushed >= min)
					sel[keep++] = sel[i];
		} else {
			keep = k;
		}
		for (size_t i = 0; i < keep; i++) {
			if (!sel[i]->retained) {
				sel[i]->retained = true;
				sel[i]->rule = r->index;
			}
		}
		o.retained = keep;
		if (outcomes)
			outcomes[ri] = o;
	}
	free(sel);
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += c[i].retained;
	return total;
}

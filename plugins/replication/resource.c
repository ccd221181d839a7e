/* resource.c - parsing and checking REPLICATION's parameters (resource.h).
 *
 * Harbor sends src_resource and dst_resource as JSON strings of its
 * model.Resource; a JSON object is accepted too (easier by hand). Unknown
 * members are ignored, as Go's json.Unmarshal ignores them. */
#ifndef _GNU_SOURCE /* tests/fuzz builds this file with -D_GNU_SOURCE */
#define _GNU_SOURCE
#endif
#include "resource.h"

#include <berth/registry.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ARTIFACTS 10000
#define MAX_TAGS 10000
/* Deepest nesting of a resource text. A resource is 5 levels deep; cJSON
 * recurses once per level (up to 1,000) and validate() runs on a REST API
 * thread of about 100 KiB of stack, which a text of 700 nested arrays
 * overflowed (berthd died of SIGSEGV: tests/fuzz/corpus/repl_resource/
 * crash-deep-nesting). The REST API's own nesting check (64) never looks
 * inside a string parameter. */
#define MAX_DEPTH 64

static const char *
type_name(const cJSON *v)
{
	if (!v)
		return "nothing";
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

static char *
dup_str(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Member key of o: absent or null -> *out NULL and 0; a string -> *out;
 * anything else -> -1 with err. */
static int
opt_string(const cJSON *o, const char *key, const char *where,
	   const char **out, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v)) {
		snprintf(err, errlen, "%s.%s must be a string, not %s", where,
			 key, type_name(v));
		return -1;
	}
	*out = v->valuestring;
	return 0;
}

static int
opt_bool(const cJSON *o, const char *key, const char *where, bool *out,
	 char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	*out = false;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsBool(v)) {
		snprintf(err, errlen, "%s.%s must be true or false, not %s",
			 where, key, type_name(v));
		return -1;
	}
	*out = cJSON_IsTrue(v);
	return 0;
}

/* An object member (absent or null: NULL and 0). */
static int
opt_object(const cJSON *o, const char *key, const char *where,
	   const cJSON **out, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsObject(v)) {
		snprintf(err, errlen, "%s.%s must be an object, not %s", where,
			 key, type_name(v));
		return -1;
	}
	*out = v;
	return 0;
}

static int
parse_registry(const cJSON *res, const char *what, struct repl_registry *r,
	       char *err, size_t errlen)
{
	const cJSON *reg, *cred;
	const char *url, *type, *key, *secret;
	char where[64];
	snprintf(where, sizeof(where), "%s.registry", what);
	if (opt_object(res, "registry", what, &reg, err, errlen))
		return -1;
	if (!reg) {
		snprintf(err, errlen, "%s is missing (the registry's url and "
				      "credential)",
			 where);
		return -1;
	}
	if (opt_string(reg, "url", where, &url, err, errlen))
		return -1;
	if (!url || !*url) {
		snprintf(err, errlen, "%s.url is missing", where);
		return -1;
	}
	if (strncasecmp(url, "http://", 7) != 0 &&
	    strncasecmp(url, "https://", 8) != 0) {
		snprintf(err, errlen, "%s.url \"%.200s\" must start with "
				      "http:// or https://",
			 where, url);
		return -1;
	}
	if (opt_bool(reg, "insecure", where, &r->insecure, err, errlen))
		return -1;
	r->url = dup_str(url);

	snprintf(where, sizeof(where), "%s.registry.credential", what);
	if (opt_object(reg, "credential", where, &cred, err, errlen))
		return -1;
	if (!cred)
		return 0;
	if (opt_string(cred, "type", where, &type, err, errlen) ||
	    opt_string(cred, "access_key", where, &key, err, errlen) ||
	    opt_string(cred, "access_secret", where, &secret, err, errlen))
		return -1;
	if (!type || !*type) /* no type: basic when there is a key */
		type = key && *key ? "basic" : "";
	if (strcasecmp(type, "basic") == 0) {
		if (!key || !*key) {
			snprintf(err, errlen, "%s: type basic needs "
					      "access_key (the user name)",
				 where);
			return -1;
		}
		r->username = dup_str(key);
		r->password = dup_str(secret ? secret : "");
	} else if (strcasecmp(type, "bearer") == 0 ||
		   strcasecmp(type, "oauth") == 0) {
		if (!secret || !*secret) {
			snprintf(err, errlen, "%s: type %s needs access_secret "
					      "(the token)",
				 where, type);
			return -1;
		}
		r->token = dup_str(secret);
	} else if (*type) {
		snprintf(err, errlen, "%s.type \"%.40s\" is not supported "
				      "(basic, bearer or oauth; none for "
				      "anonymous access)",
			 where, type);
		return -1;
	}
	return 0;
}

static int
parse_artifact(const cJSON *a, const char *where, struct repl_artifact *out,
	       char *err, size_t errlen)
{
	const char *digest;
	const cJSON *tags, *t;
	if (!cJSON_IsObject(a)) {
		snprintf(err, errlen, "%s must be an object, not %s", where,
			 type_name(a));
		return -1;
	}
	if (opt_string(a, "digest", where, &digest, err, errlen))
		return -1;
	if (digest && *digest) {
		if (!berth_reg_is_digest(digest)) {
			snprintf(err, errlen, "%s.digest \"%.150s\" is not a "
					      "digest (sha256:<64 hex>)",
				 where, digest);
			return -1;
		}
		out->digest = dup_str(digest);
	}
	tags = cJSON_GetObjectItemCaseSensitive(a, "tags");
	if (tags && !cJSON_IsNull(tags)) {
		if (!cJSON_IsArray(tags)) {
			snprintf(err, errlen, "%s.tags must be an array of "
					      "strings, not %s",
				 where, type_name(tags));
			return -1;
		}
		int n = cJSON_GetArraySize(tags);
		if (n > MAX_TAGS) {
			snprintf(err, errlen, "%s.tags: %d tags, at most %d",
				 where, n, MAX_TAGS);
			return -1;
		}
		out->tags = calloc((size_t)n + 1, sizeof(char *));
		if (!out->tags) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		cJSON_ArrayForEach(t, tags)
		{
			if (!cJSON_IsString(t) ||
			    !berth_reg_valid_tag(t->valuestring)) {
				snprintf(err, errlen,
					 "%s.tags: %s%.130s%s is not a valid "
					 "tag ([A-Za-z0-9_][A-Za-z0-9._-], at "
					 "most 128 characters)",
					 where, cJSON_IsString(t) ? "\"" : "",
					 cJSON_IsString(t) ? t->valuestring
							   : type_name(t),
					 cJSON_IsString(t) ? "\"" : "");
				return -1;
			}
			bool dup = false;
			for (size_t k = 0; k < out->n_tags && !dup; k++)
				dup = strcmp(out->tags[k], t->valuestring) == 0;
			if (dup)
				continue;
			out->tags[out->n_tags] = dup_str(t->valuestring);
			if (!out->tags[out->n_tags]) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			out->n_tags++;
		}
	}
	if (!out->digest && out->n_tags == 0) {
		snprintf(err, errlen, "%s has neither a digest nor tags", where);
		return -1;
	}
	return 0;
}

/* One resource from its JSON text. is_src: artifacts are read (a
 * destination's are ignored) and the repository name is required. */
static int
parse_resource(const char *what, const char *text, bool is_src,
	       struct repl_resource *r, char *err, size_t errlen)
{
	const cJSON *meta = NULL, *repo = NULL, *arts;
	const char *type, *name = NULL;
	char where[96];
	int rc = -1;
	if (berth_json_too_deep(text, MAX_DEPTH)) {
		snprintf(err, errlen, "%s nests arrays or objects deeper than "
				      "%d levels",
			 what, MAX_DEPTH);
		return -1;
	}
	/* the error position of this parse (cJSON_GetErrorPtr is one global
	 * of the process, written by every thread's parse) */
	const char *at = NULL;
	cJSON *doc = cJSON_ParseWithOpts(text, &at, false);
	if (!doc) {
		size_t len = strlen(text);
		snprintf(err, errlen, "%s is not valid JSON (near offset %zu)",
			 what,
			 at && at >= text && at <= text + len
				 ? (size_t)(at - text)
				 : len);
		return -1;
	}
	if (!cJSON_IsObject(doc)) {
		snprintf(err, errlen, "%s must be a JSON object, not %s", what,
			 type_name(doc));
		goto out;
	}
	if (opt_string(doc, "type", what, &type, err, errlen))
		goto out;
	if (type && *type && strcmp(type, "image") != 0 &&
	    strcmp(type, "artifact") != 0) {
		snprintf(err, errlen, "%s.type \"%.40s\" is not supported "
				      "(image or artifact)",
			 what, type);
		goto out;
	}
	snprintf(where, sizeof(where), "%s.metadata", what);
	if (opt_object(doc, "metadata", what, &meta, err, errlen))
		goto out;
	if (meta && opt_object(meta, "repository", where, &repo, err, errlen))
		goto out;
	snprintf(where, sizeof(where), "%s.metadata.repository", what);
	if (repo && opt_string(repo, "name", where, &name, err, errlen))
		goto out;
	if (name && *name) {
		if (!berth_reg_valid_repo(name)) {
			snprintf(err, errlen, "%s.name \"%.200s\" is not a "
					      "valid repository name (lower-"
					      "case path components such as "
					      "library/app)",
				 where, name);
			goto out;
		}
		r->repo = dup_str(name);
	} else if (is_src) {
		snprintf(err, errlen, "%s.name is missing", where);
		goto out;
	}
	if (is_src && meta) {
		snprintf(where, sizeof(where), "%s.metadata.artifacts", what);
		arts = cJSON_GetObjectItemCaseSensitive(meta, "artifacts");
		if (arts && !cJSON_IsNull(arts) && !cJSON_IsArray(arts)) {
			snprintf(err, errlen, "%s must be an array, not %s",
				 where, type_name(arts));
			goto out;
		}
		int n = arts ? cJSON_GetArraySize(arts) : 0;
		if (n > MAX_ARTIFACTS) {
			snprintf(err, errlen, "%s: %d artifacts, at most %d",
				 where, n, MAX_ARTIFACTS);
			goto out;
		}
		if (n > 0) {
			r->arts = calloc((size_t)n, sizeof(*r->arts));
			if (!r->arts) {
				snprintf(err, errlen, "out of memory");
				goto out;
			}
		}
		const cJSON *a;
		cJSON_ArrayForEach(a, arts)
		{
			char w[128];
			snprintf(w, sizeof(w), "%s[%zu]", where, r->n_arts);
			if (parse_artifact(a, w, &r->arts[r->n_arts], err,
					   errlen)) {
				r->n_arts++; /* freed by the caller */
				goto out;
			}
			r->n_arts++;
		}
	}
	if (opt_bool(doc, "deleted", what, &r->deleted, err, errlen) ||
	    opt_bool(doc, "is_delete_tag", what, &r->is_delete_tag, err,
		     errlen) ||
	    opt_bool(doc, "override", what, &r->override, err, errlen))
		goto out;
	if (parse_registry(doc, what, &r->reg, err, errlen))
		goto out;
	rc = 0;
out:
	cJSON_Delete(doc);
	return rc;
}

/* The text of a resource parameter: a JSON string, or an object. */
static const char *
resource_text(struct berth_job_ctx *ctx, const char *key, char *err,
	      size_t errlen)
{
	switch (berth_param_type(ctx, key)) {
	case BERTH_JSON_STRING:
		return berth_param_string(ctx, key);
	case BERTH_JSON_OBJECT:
		return berth_param_json(ctx, key);
	case BERTH_JSON_ABSENT:
	case BERTH_JSON_NULL:
		snprintf(err, errlen, "parameter %s is missing (a JSON string "
				      "of a replication resource)",
			 key);
		return NULL;
	default:
		snprintf(err, errlen, "parameter %s must be a JSON string of a "
				      "replication resource",
			 key);
		return NULL;
	}
}

int
repl_params_parse(struct berth_job_ctx *ctx, struct repl_params *p,
		  char *err, size_t errlen)
{
	const char *src, *dst;
	double speed = 0;
	memset(p, 0, sizeof(*p));
	if (!(src = resource_text(ctx, "src_resource", err, errlen)) ||
	    parse_resource("src_resource", src, true, &p->src, err, errlen))
		goto fail;
	if (!(dst = resource_text(ctx, "dst_resource", err, errlen)) ||
	    parse_resource("dst_resource", dst, false, &p->dst, err, errlen))
		goto fail;
	if (!p->dst.repo && !(p->dst.repo = dup_str(p->src.repo))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	switch (berth_param_type(ctx, "speed")) {
	case BERTH_JSON_ABSENT:
	case BERTH_JSON_NULL:
		break;
	case BERTH_JSON_NUMBER:
		berth_param_number(ctx, "speed", &speed);
		/* KB/s as Harbor; 0 or less: unlimited */
		if (speed > 1e12) {
			snprintf(err, errlen, "parameter speed %.0f KB/s is "
					      "out of range",
				 speed);
			goto fail;
		}
		p->speed_bytes_per_s = speed > 0 ? (long long)(speed * 1024)
						 : 0;
		break;
	default:
		snprintf(err, errlen, "parameter speed must be a number (KB/s, "
				      "0 for unlimited)");
		goto fail;
	}
	switch (berth_param_type(ctx, "copy_by_chunk")) {
	case BERTH_JSON_ABSENT:
	case BERTH_JSON_NULL:
		break;
	case BERTH_JSON_BOOL:
		berth_param_bool(ctx, "copy_by_chunk", &p->copy_by_chunk);
		break;
	default:
		snprintf(err, errlen, "parameter copy_by_chunk must be true or "
				      "false");
		goto fail;
	}
	return 0;
fail:
	repl_params_fini(p);
	return -1;
}

static void
resource_fini(struct repl_resource *r)
{
	free(r->repo);
	for (size_t i = 0; i < r->n_arts; i++) {
		free(r->arts[i].digest);
		for (size_t k = 0; k < r->arts[i].n_tags; k++)
			free(r->arts[i].tags[k]);
		free(r->arts[i].tags);
	}
	free(r->arts);
	free(r->reg.url);
	free(r->reg.username);
	if (r->reg.password) {
		explicit_bzero(r->reg.password, strlen(r->reg.password));
		free(r->reg.password);
	}
	if (r->reg.token) {
		explicit_bzero(r->reg.token, strlen(r->reg.token));
		free(r->reg.token);
	}
	memset(r, 0, sizeof(*r));
}

void
repl_params_fini(struct repl_params *p)
{
	resource_fini(&p->src);
	resource_fini(&p->dst);
}

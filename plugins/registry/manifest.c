/* manifest.c - manifests and indexes (berth/registry.h): GET with digest
 * verification, HEAD, PUT, DELETE, and parsing of OCI image manifests and
 * indexes and Docker v2 manifests and manifest lists. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ACCEPT_MANIFESTS                                                    \
	BERTH_REG_MT_OCI_INDEX ", " BERTH_REG_MT_OCI_MANIFEST                 \
			       ", " BERTH_REG_MT_DOCKER_LIST                  \
			       ", " BERTH_REG_MT_DOCKER_MANIFEST

void
reg_descriptor_fini(struct berth_reg_descriptor *d)
{
	free(d->media_type);
	free(d->os);
	free(d->arch);
	free(d->variant);
	memset(d, 0, sizeof(*d));
	d->size = -1;
}

void
berth_reg_manifest_fini(struct berth_reg_manifest *m)
{
	if (!m)
		return;
	free(m->media_type);
	free(m->body);
	reg_descriptor_fini(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		reg_descriptor_fini(&m->layers[i]);
	free(m->layers);
	for (size_t i = 0; i < m->n_manifests; i++)
		reg_descriptor_fini(&m->manifests[i]);
	free(m->manifests);
	memset(m, 0, sizeof(*m));
	m->config.size = -1;
}

static char *
json_strdup(const cJSON *o, const char *key, bool *nomem)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*nomem = true;
	return d;
}

/* A descriptor object; 0, BERTH_REG_PROTOCOL (err set) or NOMEM. */
static int
parse_descriptor(const cJSON *o, struct berth_reg_descriptor *d,
		 const char *where, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	d->size = -1;
	bool nomem = false;
	const char *dg = cJSON_GetStringValue(cJSON_GetObjectItem(o, "digest"));
	if (!cJSON_IsObject(o) || !berth_reg_is_digest(dg)) {
		reg_errf(err, errlen, "%s: a descriptor without a valid digest",
			 where);
		return BERTH_REG_PROTOCOL;
	}
	snprintf(d->digest, sizeof(d->digest), "%s", dg);
	cJSON *sz = cJSON_GetObjectItem(o, "size");
	if (cJSON_IsNumber(sz)) {
		if (sz->valuedouble < 0 || sz->valuedouble > 9e15) {
			reg_errf(err, errlen, "%s: descriptor %s has a bad size",
				 where, dg);
			return BERTH_REG_PROTOCOL;
		}
		d->size = (long long)sz->valuedouble;
	}
	d->media_type = json_strdup(o, "mediaType", &nomem);
	cJSON *pf = cJSON_GetObjectItem(o, "platform");
	if (cJSON_IsObject(pf)) {
		d->os = json_strdup(pf, "os", &nomem);
		d->arch = json_strdup(pf, "architecture", &nomem);
		d->variant = json_strdup(pf, "variant", &nomem);
	}
	if (d->media_type && (strstr(d->media_type, ".foreign.") ||
			      strstr(d->media_type, "nondistributable")))
		d->foreign = true;
	if (nomem) {
		reg_descriptor_fini(d);
		return BERTH_REG_NOMEM;
	}
	return 0;
}

static int
parse_list(const cJSON *arr, struct berth_reg_descriptor **out, size_t *n,
	   const char *where, char *err, size_t errlen)
{
	*out = NULL;
	*n = 0;
	if (!arr || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr)) {
		reg_errf(err, errlen, "%s: not an array", where);
		return BERTH_REG_PROTOCOL;
	}
	int cnt = cJSON_GetArraySize(arr);
	if (cnt == 0)
		return 0;
	*out = calloc((size_t)cnt, sizeof(**out));
	if (!*out)
		return BERTH_REG_NOMEM;
	const cJSON *e;
	cJSON_ArrayForEach(e, arr)
	{
		int rc = parse_descriptor(e, &(*out)[*n], where, err, errlen);
		if (rc)
			return rc; /* the caller's fini frees the rest */
		(*n)++;
	}
	return 0;
}

static bool
generic_type(const char *mt)
{
	return !mt || !*mt || strcasecmp(mt, "application/json") == 0 ||
	       strcasecmp(mt, "text/plain") == 0 ||
	       strcasecmp(mt, "application/octet-stream") == 0;
}

/* Parses m->body (len bytes) into m; media_type is the answer's
 * Content-Type (may be NULL). */
static int
parse_into(struct berth_reg_manifest *m, const char *media_type, char *err,
	   size_t errlen)
{
	char where[128];
	cJSON *j = cJSON_ParseWithLength(m->body, m->len);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		reg_errf(err, errlen, "manifest %s: not a JSON object",
			 m->digest);
		return BERTH_REG_PROTOCOL;
	}
	int rc = 0;
	cJSON *sv = cJSON_GetObjectItem(j, "schemaVersion");
	const char *body_mt =
		cJSON_GetStringValue(cJSON_GetObjectItem(j, "mediaType"));
	char ct[200] = "";
	if (media_type) {
		size_t n = strcspn(media_type, "; ");
		snprintf(ct, sizeof(ct), "%.*s", (int)n, media_type);
	}
	const char *mt = !generic_type(ct) ? ct : body_mt;
	if ((cJSON_IsNumber(sv) && sv->valueint == 1) ||
	    (mt && strncmp(mt, "application/vnd.docker.distribution.manifest.v1",
			   47) == 0)) {
		reg_errf(err, errlen,
			 "manifest %s: Docker schema 1 is not supported",
			 m->digest);
		cJSON_Delete(j);
		return BERTH_REG_UNSUPPORTED;
	}
	cJSON *manifests = cJSON_GetObjectItem(j, "manifests");
	cJSON *layers = cJSON_GetObjectItem(j, "layers");
	cJSON *config = cJSON_GetObjectItem(j, "config");
	if (mt)
		m->is_index = strcmp(mt, BERTH_REG_MT_OCI_INDEX) == 0 ||
			      strcmp(mt, BERTH_REG_MT_DOCKER_LIST) == 0;
	if (!m->is_index && !config && cJSON_IsArray(manifests))
		m->is_index = true;
	if (mt && !(m->media_type = strdup(mt))) {
		cJSON_Delete(j);
		return BERTH_REG_NOMEM;
	}
	if (m->is_index) {
		snprintf(where, sizeof(where), "index %.80s: manifests",
			 m->digest);
		if (!cJSON_IsArray(manifests)) {
			reg_errf(err, errlen, "index %s: no manifests array",
				 m->digest);
			rc = BERTH_REG_PROTOCOL;
		} else {
			rc = parse_list(manifests, &m->manifests,
					&m->n_manifests, where, err, errlen);
		}
	} else {
		if (!config) {
			reg_errf(err, errlen,
				 "manifest %s: neither an image manifest "
				 "(config, layers) nor an index (manifests)",
				 m->digest);
			rc = BERTH_REG_PROTOCOL;
		}
		if (!rc) {
			snprintf(where, sizeof(where), "manifest %.80s: config",
				 m->digest);
			rc = parse_descriptor(config, &m->config, where, err,
					      errlen);
		}
		if (!rc) {
			snprintf(where, sizeof(where), "manifest %.80s: layers",
				 m->digest);
			rc = parse_list(layers, &m->layers, &m->n_layers, where,
					err, errlen);
		}
	}
	cJSON_Delete(j);
	return rc;
}

int
berth_reg_manifest_parse(const char *body, size_t len, const char *media_type,
			 struct berth_reg_manifest *m, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	m->config.size = -1;
	reg_errf(err, errlen, "%s", "");
	if (len > BERTH_REG_MANIFEST_MAX) {
		reg_errf(err, errlen, "manifest of %zu bytes: over the %d-byte "
			 "cap", len, BERTH_REG_MANIFEST_MAX);
		return BERTH_REG_TOO_LARGE;
	}
	m->body = malloc(len + 1);
	if (!m->body) {
		reg_errf(err, errlen, "out of memory");
		return BERTH_REG_NOMEM;
	}
	memcpy(m->body, body, len);
	m->body[len] = '\0';
	m->len = len;
	berth_reg_digest_of(body, len, m->digest);
	int rc = parse_into(m, media_type, err, errlen);
	if (rc) {
		if (rc == BERTH_REG_NOMEM)
			reg_errf(err, errlen, "out of memory");
		berth_reg_manifest_fini(m);
	}
	return rc;
}

/* "<repo>:<tag>" or "<repo>@<digest>" for messages */
static void
refname(char *out, size_t n, const char *repo, const char *ref)
{
	snprintf(out, n, "%.255s%c%.140s", repo,
		 berth_reg_is_digest(ref) ? '@' : ':', ref);
}

static int
check_ref(const char *repo, const char *ref, char *err, size_t errlen)
{
	if (!berth_reg_valid_repo(repo)) {
		reg_errf(err, errlen, "invalid repository name \"%.100s\"",
			 repo ? repo : "");
		return BERTH_REG_INVALID;
	}
	if (!berth_reg_is_digest(ref) && !berth_reg_valid_tag(ref)) {
		reg_errf(err, errlen,
			 "invalid reference \"%.140s\" (neither a tag nor a "
			 "sha256/sha512 digest)",
			 ref ? ref : "");
		return BERTH_REG_INVALID;
	}
	return 0;
}

/* The Accept header of a manifest GET or HEAD into h (initialised here;
 * fini it): 0, or BERTH_REG_NOMEM with err set. */
static int
accept_manifests(struct berth_http_headers *h, char *err, size_t errlen)
{
	berth_http_headers_init(h);
	if (berth_http_headers_add(h, "Accept", ACCEPT_MANIFESTS) < 0) {
		reg_errf(err, errlen, "out of memory");
		return BERTH_REG_NOMEM;
	}
	return 0;
}

int
berth_reg_manifest_get(struct berth_reg *r, const char *repo, const char *ref,
		       struct berth_reg_manifest *m, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	m->config.size = -1;
	reg_errf(err, errlen, "%s", "");
	int rc = check_ref(repo, ref, err, errlen);
	if (rc)
		return rc;
	char name[420], what[440];
	refname(name, sizeof(name), repo, ref);
	snprintf(what, sizeof(what), "GET manifest %s", name);
	struct berth_http_headers h;
	if ((rc = accept_manifests(&h, err, errlen))) {
		berth_http_headers_fini(&h);
		return rc;
	}
	struct reg_req q = {
		.method = "GET",
		.headers = &h,
		.max_response_bytes = BERTH_REG_MANIFEST_MAX + 1,
	};
	struct berth_http_response resp;
	rc = reg_repo_do(r, &q, repo, "pull", (const long[]){200, 0}, &resp,
			 what, err, errlen, "/v2/%s/manifests/%s", repo, ref);
	if (!rc && (resp.truncated || resp.body_len > BERTH_REG_MANIFEST_MAX)) {
		reg_errf(err, errlen,
			 "registry %s: %s: manifest over the %d-byte cap",
			 r->origin, what, BERTH_REG_MANIFEST_MAX);
		rc = BERTH_REG_TOO_LARGE;
	}
	if (!rc) {
		/* the bytes against the reference, or the registry's digest */
		char got[BERTH_REG_DIGEST_MAX], sha[BERTH_REG_DIGEST_MAX];
		berth_reg_digest_of(resp.body, resp.body_len, sha);
		const char *dcd = reg_header(&resp, "Docker-Content-Digest");
		const char *want = berth_reg_is_digest(ref) ? ref
				   : dcd && berth_reg_is_digest(dcd) ? dcd
								     : NULL;
		if (want) {
			if (reg_digest_like(want, resp.body, resp.body_len,
					    got)) {
				rc = BERTH_REG_NOMEM;
				reg_errf(err, errlen, "out of memory");
			} else if (strcmp(got, want) != 0) {
				char b1[32], b2[32];
				reg_errf(err, errlen,
					 "registry %s: manifest %s: digest "
					 "mismatch: expected %s, got %s",
					 r->origin, name, reg_short(want, b1),
					 reg_short(got, b2));
				rc = BERTH_REG_DIGEST_MISMATCH;
			}
		}
		if (!rc) {
			m->body = resp.body;
			m->len = resp.body_len;
			resp.body = NULL;
			resp.body_len = 0;
			snprintf(m->digest, sizeof(m->digest), "%s", sha);
			rc = parse_into(m, reg_header(&resp, "Content-Type"),
					err, errlen);
			if (rc == BERTH_REG_NOMEM) {
				reg_errf(err, errlen, "out of memory");
			} else if (rc) {
				/* prefix the registry and reference */
				char inner[512];
				snprintf(inner, sizeof(inner), "%s", err ? err : "");
				reg_errf(err, errlen, "registry %s: %s: %s",
					 r->origin, what, inner);
			}
			if (rc)
				berth_reg_manifest_fini(m);
		}
	}
	berth_http_response_fini(&resp);
	berth_http_headers_fini(&h);
	return rc;
}

int
berth_reg_manifest_head(struct berth_reg *r, const char *repo, const char *ref,
			bool *exists, char digest[BERTH_REG_DIGEST_MAX],
			char *err, size_t errlen)
{
	*exists = false;
	if (digest)
		digest[0] = '\0';
	reg_errf(err, errlen, "%s", "");
	int rc = check_ref(repo, ref, err, errlen);
	if (rc)
		return rc;
	char name[420], what[440];
	refname(name, sizeof(name), repo, ref);
	snprintf(what, sizeof(what), "HEAD manifest %s", name);
	struct berth_http_headers h;
	if ((rc = accept_manifests(&h, err, errlen))) {
		berth_http_headers_fini(&h);
		return rc;
	}
	struct reg_req q = {.method = "HEAD", .headers = &h};
	struct berth_http_response resp;
	rc = reg_repo_do(r, &q, repo, "pull", (const long[]){200, 404, 0},
			 &resp, what, err, errlen, "/v2/%s/manifests/%s", repo,
			 ref);
	if (!rc && resp.status == 200) {
		*exists = true;
		const char *d = reg_header(&resp, "Docker-Content-Digest");
		if (digest && d && berth_reg_is_digest(d))
			snprintf(digest, BERTH_REG_DIGEST_MAX, "%s", d);
	}
	berth_http_response_fini(&resp);
	berth_http_headers_fini(&h);
	return rc;
}

int
berth_reg_manifest_put(struct berth_reg *r, const char *repo, const char *ref,
		       const char *media_type, const char *body, size_t len,
		       char digest[BERTH_REG_DIGEST_MAX], char *err,
		       size_t errlen)
{
	if (digest)
		digest[0] = '\0';
	reg_errf(err, errlen, "%s", "");
	int rc = check_ref(repo, ref, err, errlen);
	if (rc)
		return rc;
	char name[420], what[440];
	refname(name, sizeof(name), repo, ref);
	snprintf(what, sizeof(what), "PUT manifest %s", name);
	if (len > BERTH_REG_MANIFEST_MAX) {
		reg_errf(err, errlen, "%s: manifest over the %d-byte cap", what,
			 BERTH_REG_MANIFEST_MAX);
		return BERTH_REG_TOO_LARGE;
	}
	char sha[BERTH_REG_DIGEST_MAX], got[BERTH_REG_DIGEST_MAX];
	berth_reg_digest_of(body, len, sha);
	if (berth_reg_is_digest(ref)) {
		reg_digest_like(ref, body, len, got);
		if (strcmp(got, ref) != 0) {
			char b1[32], b2[32];
			reg_errf(err, errlen,
				 "%s: the body's digest is %s, not the "
				 "reference %s",
				 what, reg_short(got, b1), reg_short(ref, b2));
			return BERTH_REG_DIGEST_MISMATCH;
		}
	}
	char *mt = NULL;
	if (media_type && *media_type) {
		mt = strdup(media_type);
	} else {
		cJSON *j = cJSON_ParseWithLength(body, len);
		const char *s =
			cJSON_GetStringValue(cJSON_GetObjectItem(j, "mediaType"));
		if (s)
			mt = strdup(s);
		cJSON_Delete(j);
		if (!s) {
			reg_errf(err, errlen,
				 "%s: no media type given and the body has no "
				 "mediaType",
				 what);
			return BERTH_REG_INVALID;
		}
	}
	struct berth_http_headers h;
	berth_http_headers_init(&h);
	if (!mt || berth_http_headers_add(&h, "Content-Type", mt) < 0) {
		free(mt);
		berth_http_headers_fini(&h);
		reg_errf(err, errlen, "out of memory");
		return BERTH_REG_NOMEM;
	}
	struct reg_req q = {
		.method = "PUT",
		.headers = &h,
		.body = body,
		.body_len = len,
	};
	struct berth_http_response resp;
	rc = reg_repo_do(r, &q, repo, "pull,push", (const long[]){201, 200, 0},
			 &resp, what, err, errlen, "/v2/%s/manifests/%s", repo,
			 ref);
	if (!rc) {
		const char *d = reg_header(&resp, "Docker-Content-Digest");
		if (d && berth_reg_is_digest(d) &&
		    strncmp(d, "sha256:", 7) == 0 && strcmp(d, sha) != 0) {
			char b1[32], b2[32];
			reg_errf(err, errlen,
				 "registry %s: %s: the registry stored digest "
				 "%s, the body's is %s",
				 r->origin, what, reg_short(d, b1),
				 reg_short(sha, b2));
			rc = BERTH_REG_DIGEST_MISMATCH;
		}
	}
	if (!rc && digest)
		snprintf(digest, BERTH_REG_DIGEST_MAX, "%s", sha);
	berth_http_response_fini(&resp);
	berth_http_headers_fini(&h);
	free(mt);
	return rc;
}

int
berth_reg_manifest_delete(struct berth_reg *r, const char *repo,
			  const char *digest, char *err, size_t errlen)
{
	reg_errf(err, errlen, "%s", "");
	int rc = check_ref(repo, digest, err, errlen);
	if (rc)
		return rc;
	if (!berth_reg_is_digest(digest)) {
		reg_errf(err, errlen,
			 "DELETE manifest %.255s:%.140s: a manifest is deleted "
			 "by digest, not by tag",
			 repo, digest);
		return BERTH_REG_INVALID;
	}
	char what[440];
	snprintf(what, sizeof(what), "DELETE manifest %.255s@%.140s", repo,
		 digest);
	struct reg_req q = {.method = "DELETE"};
	struct berth_http_response resp;
	rc = reg_repo_do(r, &q, repo, "pull,delete",
			 (const long[]){202, 200, 204, 0}, &resp, what, err,
			 errlen, "/v2/%s/manifests/%s", repo, digest);
	berth_http_response_fini(&resp);
	return rc;
}

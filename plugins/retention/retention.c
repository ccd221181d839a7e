/* retention.c - RETENTION: applies a Harbor tag-retention policy to one
 * repository of an OCI registry, over the registry client
 * <berth/registry.h>. README.md is the reference; in short:
 *
 * params:   repository ({"namespace","name","kind"} JSON string),
 *           liteMeta ({"algorithm":"or","rules":[...]} JSON string),
 *           dryRun (bool); all required (validate, as Harbor).
 * run:      candidates = the repository's manifests reached by a tag,
 *           grouped by digest (plus, with registry_storage, the untagged
 *           ones that are not children of an index); push time = the
 *           image config's "created" (an index: its newest child's); the
 *           rules (policy.c) retain some; the others are deleted by digest
 *           (with their index children no one else needs) unless dryRun;
 *           a table in the job log; check-in {"total","retained","dry_run",
 *           "deleted":[{"target":<candidate>,"error":null|"..."}]}.
 * limits:   max_fails 3, max_concurrency 0, priority 1000, never retried
 *           (spec 13.1: should_retry false).
 * settings: registry_url, registry_username, registry_password,
 *           registry_insecure, registry_storage, timeout_seconds,
 *           max_retries. */
#define _GNU_SOURCE
#include <berth/plugin.h>
#include <berth/registry.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "policy.h"

#define RET_USER_AGENT "berth-retention/1"
#define RET_CONFIG_MAX (1024 * 1024)

struct ret_settings {
	char *url;      /* registry_url (NULL: the registry_url property) */
	char *username; /* registry_username (NULL: property / env) */
	char *password;
	bool insecure;
	char *storage;  /* registry_storage: untagged candidates */
	long long timeout_s;
	long long max_retries;
};

/* --- settings ------------------------------------------------------------- */

static void
settings_free(struct ret_settings *s)
{
	if (!s)
		return;
	free(s->url);
	free(s->username);
	if (s->password) {
		explicit_bzero(s->password, strlen(s->password));
		free(s->password);
	}
	free(s->storage);
	free(s);
}

static bool
ret_should_retry(void *type_state)
{
	(void)type_state;
	return false; /* spec 13.1 */
}

static int
ret_init(struct berth_job_ctx *ctx, void **type_state)
{
	struct ret_settings *s = calloc(1, sizeof(*s));
	if (!s) {
		berth_log_error(ctx, "out of memory");
		return -1;
	}
	if (berth_setting_bool_in(ctx, "registry_insecure", &s->insecure))
		goto fail;
	if (berth_setting_strdup(ctx, "registry_url", NULL, &s->url) ||
	    berth_setting_strdup(ctx, "registry_username", NULL, &s->username) ||
	    berth_setting_strdup(ctx, "registry_password", NULL, &s->password) ||
	    berth_setting_strdup(ctx, "registry_storage", NULL, &s->storage) ||
	    berth_setting_int_in(ctx, "timeout_seconds", 30, 1, 3600, &s->timeout_s) ||
	    berth_setting_int_in(ctx, "max_retries", 3, 0, 10, &s->max_retries))
		goto fail;
	if (BERTH_HOST_HAS(ctx->host, limits)) {
		struct berth_type_limits *l = berth_limits(ctx);
		if (BERTH_LIMITS_HAS(l, should_retry))
			l->should_retry = ret_should_retry;
	}
	berth_log_info(ctx, "ready: registry %s, untagged candidates %s",
		       s->url ? s->url : "from the registry_url property",
		       s->storage ? "from registry_storage" : "not considered");
	*type_state = s;
	return 0;
fail:
	settings_free(s);
	return -1;
}

static void
ret_fini(void *type_state)
{
	settings_free(type_state);
}

/* --- parameters ------------------------------------------------------------ */

struct ret_params {
	struct ret_repository repo;
	struct ret_policy policy;
	bool dry_run;
};

static void
params_fini(struct ret_params *p)
{
	ret_repository_fini(&p->repo);
	ret_policy_fini(&p->policy);
}

/* Harbor's texts: "missing parameter: X", "invalid parameter: X", with
 * the reason after a colon. */
static int
read_params(struct berth_job_ctx *ctx, struct ret_params *p, char *err,
	    size_t errlen)
{
	static const char *const keys[] = {"repository", "liteMeta", "dryRun"};
	char why[512];
	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < 3; i++) {
		enum berth_json_type t = berth_param_type(ctx, keys[i]);
		if (t == BERTH_JSON_ABSENT) {
			snprintf(err, errlen, "missing parameter: %s", keys[i]);
			return -1;
		}
		if (t != (i < 2 ? BERTH_JSON_STRING : BERTH_JSON_BOOL)) {
			snprintf(err, errlen,
				 "invalid parameter: %s: must be %s", keys[i],
				 i < 2 ? "a JSON string" : "a boolean");
			return -1;
		}
	}
	if (ret_repository_parse(berth_param_string(ctx, "repository"),
				 &p->repo, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "invalid parameter: repository: %s", why);
		return -1;
	}
	if (!berth_reg_valid_repo(p->repo.path)) {
		snprintf(err, errlen,
			 "invalid parameter: repository: \"%s\" is not a "
			 "valid repository name",
			 p->repo.path);
		ret_repository_fini(&p->repo);
		return -1;
	}
	if (ret_policy_parse(berth_param_string(ctx, "liteMeta"), &p->policy,
			     why, sizeof(why)) != 0) {
		snprintf(err, errlen, "invalid parameter: liteMeta: %s", why);
		ret_repository_fini(&p->repo);
		return -1;
	}
	berth_param_bool(ctx, "dryRun", &p->dry_run);
	return 0;
}

static int
ret_validate(struct berth_job_ctx *ctx, const char *params_json, char *err,
	     size_t errlen)
{
	(void)params_json;
	struct ret_params p;
	if (read_params(ctx, &p, err, errlen) != 0)
		return -1;
	params_fini(&p);
	return 0;
}

/* --- candidates -------------------------------------------------------------- */

struct cand {
	char digest[BERTH_REG_DIGEST_MAX];
	char **tags;
	size_t n_tags;
	bool is_index;
	char config[BERTH_REG_DIGEST_MAX]; /* images */
	char **children;                   /* indexes */
	size_t n_children;
	long long pushed;
	const char *parent; /* digest of an index listing it, or NULL */
	/* outcome */
	bool attempted;
	bool deleted;
	char *error;
};

struct job {
	struct berth_job_ctx *ctx;
	const struct ret_settings *s;
	struct ret_params p;
	struct berth_reg *reg;
	struct cand *c;
	size_t n, cap;
	size_t n_deleted_children;
};

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void
cands_free(struct job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		strv_free(j->c[i].tags, j->c[i].n_tags);
		strv_free(j->c[i].children, j->c[i].n_children);
		free(j->c[i].error);
	}
	free(j->c);
	j->c = NULL;
	j->n = j->cap = 0;
}

static int
cand_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cand *)a)->digest,
		      ((const struct cand *)b)->digest);
}

static struct cand *
cand_find(struct job *j, const char *digest)
{
	struct cand k;
	if (!j->n || strlen(digest) >= sizeof(k.digest))
		return NULL;
	snprintf(k.digest, sizeof(k.digest), "%s", digest);
	return bsearch(&k, j->c, j->n, sizeof(*j->c), cand_cmp);
}

static bool
push_str(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		return false;
	*v = nv;
	if (!(nv[*n] = strdup(s)))
		return false;
	(*n)++;
	return true;
}

/* A new candidate from a parsed manifest (appended; the array is sorted
 * later). NULL when out of memory. */
static struct cand *
cand_add(struct job *j, const struct berth_reg_manifest *m)
{
	if (j->n == j->cap) {
		size_t nc = j->cap ? j->cap * 2 : 16;
		struct cand *v = realloc(j->c, nc * sizeof(*v));
		if (!v)
			return NULL;
		j->c = v;
		j->cap = nc;
	}
	struct cand *c = &j->c[j->n++];
	memset(c, 0, sizeof(*c));
	snprintf(c->digest, sizeof(c->digest), "%s", m->digest);
	c->is_index = m->is_index;
	snprintf(c->config, sizeof(c->config), "%s", m->config.digest);
	for (size_t i = 0; i < m->n_manifests; i++)
		if (!push_str(&c->children, &c->n_children,
			      m->manifests[i].digest))
			return NULL;
	return c;
}

static bool
cancel_cb(void *ud)
{
	struct job *j = ud;
	return berth_stop_requested(j->ctx);
}

/* The "created" time of an image config, 0 when it has none. */
static long long
config_created(struct job *j, const char *config)
{
	char *body = NULL, err[512];
	size_t len = 0;
	long long t = 0;
	if (!*config)
		return 0;
	if (berth_reg_blob_read(j->reg, j->p.repo.path, config, RET_CONFIG_MAX,
				&body, &len, err, sizeof(err)) != 0) {
		berth_log_warning(j->ctx, "config %s: %s; push time unknown",
				  config, err);
		return 0;
	}
	cJSON *doc = cJSON_ParseWithLength(body, len);
	const cJSON *cr = doc ? cJSON_GetObjectItemCaseSensitive(doc,
								 "created")
			      : NULL;
	if (!cJSON_IsString(cr) || !ret_parse_rfc3339(cr->valuestring, &t)) {
		berth_log_warning(j->ctx, "config %s has no usable \"created\" "
					  "time; taken as the oldest",
				  config);
		t = 0;
	}
	cJSON_Delete(doc);
	free(body);
	return t;
}

/* Push time of a candidate: its config's created; an index: the newest
 * of its children's. */
static int
push_time(struct job *j, struct cand *c, char *err, size_t errlen)
{
	if (!c->is_index) {
		c->pushed = config_created(j, c->config);
		return 0;
	}
	c->pushed = 0;
	for (size_t i = 0; i < c->n_children; i++) {
		struct berth_reg_manifest m;
		int rc = berth_reg_manifest_get(j->reg, j->p.repo.path,
						c->children[i], &m, err,
						errlen);
		if (rc == BERTH_REG_CANCELLED)
			return rc;
		if (rc) {
			berth_log_warning(j->ctx, "child of %s: %s", c->digest,
					  err);
			continue;
		}
		long long t = m.is_index ? 0 : config_created(j, m.config.digest);
		berth_reg_manifest_fini(&m);
		if (t > c->pushed)
			c->pushed = t;
	}
	return 0;
}

/* Whether digest is in the set (see collect_tagged); when not, records
 * it as the candidate about to be appended (index j->n). */
static bool
seen_digest(size_t *set, size_t mask, const struct job *j, const char *digest)
{
	size_t h = 1469598103934665603ULL;
	for (const char *p = digest; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		if (!set[i]) {
			set[i] = j->n + 1;
			return false;
		}
		if (strcmp(j->c[set[i] - 1].digest, digest) == 0)
			return true;
	}
}

struct tagref {
	char *tag;
	char digest[BERTH_REG_DIGEST_MAX];
};

static int
tagref_cmp(const void *a, const void *b)
{
	const struct tagref *x = a, *y = b;
	int c = strcmp(x->digest, y->digest);
	return c ? c : strcmp(x->tag, y->tag);
}

/* The tagged candidates: every tag's manifest, grouped by digest. */
static int
collect_tagged(struct job *j, char *err, size_t errlen)
{
	char **tags = NULL;
	size_t n = 0;
	int rc = berth_reg_tags(j->reg, j->p.repo.path, 0, &tags, &n, err,
				errlen);
	if (rc == BERTH_REG_NOT_FOUND) {
		berth_log_info(j->ctx, "repository %s has no tags (%s)",
			       j->p.repo.path, err);
		err[0] = '\0';
		return 0;
	}
	if (rc)
		return rc;
	struct tagref *refs = n ? calloc(n, sizeof(*refs)) : NULL;
	size_t k = 0;
	if (n && !refs) {
		berth_reg_strv_free(tags, n);
		snprintf(err, errlen, "out of memory");
		return BERTH_REG_NOMEM;
	}
	/* digests seen so far: an open-addressing set of indexes into j->c
	 * (+1; 0 is empty), at most half full */
	size_t mask = 15;
	while (mask < 2 * n)
		mask = mask * 2 + 1;
	size_t *set = calloc(mask + 1, sizeof(*set));
	if (!set) {
		free(refs);
		berth_reg_strv_free(tags, n);
		snprintf(err, errlen, "out of memory");
		return BERTH_REG_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct berth_reg_manifest m;
		rc = berth_reg_manifest_get(j->reg, j->p.repo.path, tags[i], &m,
					    err, errlen);
		if (rc == BERTH_REG_NOT_FOUND || rc == BERTH_REG_UNSUPPORTED) {
			/* deleted meanwhile, or a schema 1 manifest: not a
			 * candidate, so never deleted */
			berth_log_warning(j->ctx, "tag %s skipped: %s", tags[i],
					  err);
			rc = 0;
			continue;
		}
		if (rc)
			break;
		refs[k].tag = tags[i];
		tags[i] = NULL;
		snprintf(refs[k].digest, sizeof(refs[k].digest), "%s",
			 m.digest);
		k++;
		if (!seen_digest(set, mask, j, m.digest) && !cand_add(j, &m)) {
			berth_reg_manifest_fini(&m);
			snprintf(err, errlen, "out of memory");
			rc = BERTH_REG_NOMEM;
			break;
		}
		berth_reg_manifest_fini(&m);
	}
	free(set);
	if (rc == 0 && j->n)
		qsort(j->c, j->n, sizeof(*j->c), cand_cmp);
	if (rc == 0 && k)
		qsort(refs, k, sizeof(*refs), tagref_cmp);
	for (size_t i = 0; rc == 0 && i < k; i++) {
		struct cand *c = cand_find(j, refs[i].digest);
		if (c && !push_str(&c->tags, &c->n_tags, refs[i].tag)) {
			snprintf(err, errlen, "out of memory");
			rc = BERTH_REG_NOMEM;
		}
	}
	for (size_t i = 0; i < k; i++)
		free(refs[i].tag);
	free(refs);
	berth_reg_strv_free(tags, n);
	return rc;
}

/* The untagged candidates, from the registry's storage: the manifest
 * revisions of the repository that no tag names. */
static int
collect_untagged(struct job *j, char *err, size_t errlen)
{
	char path[4096];
	snprintf(path, sizeof(path),
		 "%s/docker/registry/v2/repositories/%s/_manifests/revisions",
		 j->s->storage, j->p.repo.path);
	DIR *d = opendir(path);
	if (!d) {
		if (errno != ENOENT)
			berth_log_warning(j->ctx, "registry_storage: cannot "
						  "read %s: %s",
					  path, strerror(errno));
		return 0;
	}
	char **found = NULL;
	size_t n_found = 0;
	struct dirent *a;
	int rc = 0;
	while (rc == 0 && (a = readdir(d)) != NULL) {
		if (a->d_name[0] == '.')
			continue;
		char sub[4400];
		snprintf(sub, sizeof(sub), "%s/%s", path, a->d_name);
		DIR *ad = opendir(sub);
		if (!ad)
			continue;
		struct dirent *h;
		while ((h = readdir(ad)) != NULL) {
			char link[4700], dg[BERTH_REG_DIGEST_MAX];
			struct stat st;
			if (h->d_name[0] == '.' || strlen(a->d_name) != 6 ||
			    strlen(h->d_name) > 128)
				continue;
			snprintf(link, sizeof(link), "%s/%s/link", sub,
				 h->d_name);
			/* a revision deleted through the API keeps its
			 * directory but loses its link */
			if (stat(link, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			snprintf(dg, sizeof(dg), "%.6s:%.128s", a->d_name,
				 h->d_name);
			if (!berth_reg_is_digest(dg) || cand_find(j, dg))
				continue;
			if (!push_str(&found, &n_found, dg)) {
				rc = BERTH_REG_NOMEM;
				break;
			}
		}
		closedir(ad);
	}
	closedir(d);
	size_t before = j->n;
	for (size_t i = 0; rc == 0 && i < n_found; i++) {
		struct berth_reg_manifest m;
		rc = berth_reg_manifest_get(j->reg, j->p.repo.path, found[i], &m,
					    err, errlen);
		if (rc == BERTH_REG_NOT_FOUND || rc == BERTH_REG_UNSUPPORTED) {
			rc = 0;
			continue;
		}
		if (rc)
			break;
		if (!cand_add(j, &m))
			rc = BERTH_REG_NOMEM;
		berth_reg_manifest_fini(&m);
	}
	if (rc == BERTH_REG_NOMEM)
		snprintf(err, errlen, "out of memory");
	strv_free(found, n_found);
	if (j->n != before)
		qsort(j->c, j->n, sizeof(*j->c), cand_cmp);
	return rc;
}

/* Untagged children of indexes are not candidates (they go with their
 * index); tagged ones are, and remember their index. */
static void
drop_children(struct job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		struct cand *ix = &j->c[i];
		for (size_t k = 0; k < ix->n_children; k++) {
			struct cand *c = cand_find(j, ix->children[k]);
			if (c && c != ix && !c->parent)
				c->parent = ix->digest;
		}
	}
	size_t w = 0;
	for (size_t i = 0; i < j->n; i++) {
		struct cand *c = &j->c[i];
		if (c->parent && c->n_tags == 0) {
			strv_free(c->children, c->n_children);
			free(c->error);
			continue;
		}
		if (w != i)
			j->c[w] = *c;
		w++;
	}
	j->n = w;
	/* parent pointers into the moved array: recompute */
	for (size_t i = 0; i < j->n; i++)
		j->c[i].parent = NULL;
	for (size_t i = 0; i < j->n; i++)
		for (size_t k = 0; k < j->c[i].n_children; k++) {
			struct cand *c = cand_find(j, j->c[i].children[k]);
			if (c && c != &j->c[i] && !c->parent)
				c->parent = j->c[i].digest;
		}
}

/* --- output ------------------------------------------------------------------ */

static void
fmt_time(long long t, char *buf, size_t len)
{
	if (t <= 0) {
		snprintf(buf, len, "unknown");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y/%m/%d %H:%M:%S", &tm);
}

static void
join_tags(const struct cand *c, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	if (!c->n_tags) {
		snprintf(buf, len, "<none>");
		return;
	}
	for (size_t i = 0; i < c->n_tags && off < len; i++) {
		int k = snprintf(buf + off, len - off, "%s%s", i ? "," : "",
				 c->tags[i]);
		if (k < 0)
			break;
		off += (size_t)k;
	}
	if (off >= len && len > 4)
		memcpy(buf + len - 4, "...", 4);
}

/* The table: one log line per row (the log flattens newlines). */
static void
log_table(struct job *j, const struct ret_candidate *rc)
{
	size_t wt = strlen("Tags");
	char tags[256], when[32];
	for (size_t i = 0; i < j->n; i++) {
		join_tags(&j->c[i], tags, sizeof(tags));
		if (strlen(tags) > wt)
			wt = strlen(tags);
	}
	berth_log_info(j->ctx, "| %-71s | %-*s | %-5s | %-19s | %-9s |",
		       "Artifact", (int)wt, "Tags", "Kind", "PushedTime",
		       "Retention");
	for (size_t i = 0; i < j->n; i++) {
		const struct cand *c = &j->c[i];
		const char *verdict =
			rc[i].retained
				? "RETAIN"
				: (c->error ? "ERR"
					    : (j->p.dry_run ? "DEL (dry)"
							    : "DEL"));
		join_tags(c, tags, sizeof(tags));
		fmt_time(c->pushed, when, sizeof(when));
		if (rc[i].retained)
			berth_log_info(j->ctx,
				       "| %-71s | %-*s | %-5s | %-19s | %-9s | "
				       "rule %zu",
				       c->digest, (int)wt, tags,
				       c->is_index ? "index" : "image", when,
				       verdict, rc[i].rule);
		else
			berth_log_info(j->ctx,
				       "| %-71s | %-*s | %-5s | %-19s | %-9s |",
				       c->digest, (int)wt, tags,
				       c->is_index ? "index" : "image", when,
				       verdict);
	}
	for (size_t i = 0; i < j->n; i++)
		if (j->c[i].error)
			berth_log_warning(j->ctx,
					  "Retention error for artifact %s@%s: "
					  "%s",
					  j->p.repo.path, j->c[i].digest,
					  j->c[i].error);
}

static cJSON *
cand_json(const struct job *j, const struct cand *c)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *tags = cJSON_CreateArray();
	if (!o || !tags) {
		cJSON_Delete(o);
		cJSON_Delete(tags);
		return NULL;
	}
	for (size_t i = 0; i < c->n_tags; i++)
		cJSON_AddItemToArray(tags, cJSON_CreateString(c->tags[i]));
	cJSON_AddNumberToObject(o, "namespace_id", 0);
	cJSON_AddStringToObject(o, "namespace", j->p.repo.namespace_);
	cJSON_AddStringToObject(o, "repository", j->p.repo.name);
	cJSON_AddStringToObject(o, "kind", j->p.repo.kind);
	cJSON_AddItemToObject(o, "tags", tags);
	cJSON_AddStringToObject(o, "digest", c->digest);
	cJSON_AddNumberToObject(o, "pushed_time_second", (double)c->pushed);
	cJSON_AddNumberToObject(o, "pulled_time_second", 0);
	cJSON_AddNumberToObject(o, "create_time_second", (double)c->pushed);
	cJSON_AddItemToObject(o, "labels", cJSON_CreateArray());
	return o;
}

static int
checkin(struct job *j, const struct ret_candidate *rc, size_t *failed)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *del = cJSON_CreateArray();
	size_t ok_deleted = 0;
	*failed = 0;
	if (!o || !del) {
		cJSON_Delete(o);
		cJSON_Delete(del);
		return -1;
	}
	for (size_t i = 0; i < j->n; i++) {
		if (rc[i].retained)
			continue;
		const struct cand *c = &j->c[i];
		cJSON *e = cJSON_CreateObject();
		cJSON *t = cand_json(j, c);
		if (!e || !t) {
			cJSON_Delete(e);
			cJSON_Delete(t);
			cJSON_Delete(o);
			cJSON_Delete(del);
			return -1;
		}
		cJSON_AddItemToObject(e, "target", t);
		if (c->error) {
			cJSON_AddStringToObject(e, "error", c->error);
			(*failed)++;
		} else {
			cJSON_AddNullToObject(e, "error");
			ok_deleted++;
		}
		cJSON_AddItemToArray(del, e);
	}
	cJSON_AddNumberToObject(o, "total", (double)j->n);
	cJSON_AddNumberToObject(o, "retained", (double)(j->n - ok_deleted));
	cJSON_AddBoolToObject(o, "dry_run", j->p.dry_run);
	cJSON_AddItemToObject(o, "deleted", del);
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!text)
		return -1;
	int r = berth_checkin(j->ctx, text);
	free(text);
	return r;
}

/* --- deletion ---------------------------------------------------------------- */

static bool
is_kept_child(struct job *j, const struct ret_candidate *rc,
	      const char *digest, const struct cand *except)
{
	/* a candidate of its own (tagged): its verdict decides */
	struct cand *self = cand_find(j, digest);
	if (self && self != except)
		return true;
	/* listed by another index that stays */
	for (size_t i = 0; i < j->n; i++) {
		const struct cand *ix = &j->c[i];
		if (ix == except || !ix->n_children || ix->deleted)
			continue;
		for (size_t k = 0; k < ix->n_children; k++)
			if (strcmp(ix->children[k], digest) == 0)
				return true;
	}
	(void)rc;
	return false;
}

static void
set_error(struct cand *c, const char *text)
{
	free(c->error);
	c->error = strdup(text ? text : "error");
}

/* Deletes one candidate (and the children of an index no one else
 * lists). */
static void
delete_one(struct job *j, const struct ret_candidate *rc, struct cand *c)
{
	char err[1024];
	c->attempted = true;
	if (c->parent) {
		const struct cand *p = cand_find(j, c->parent);
		size_t pi = p ? (size_t)(p - j->c) : 0;
		if (p && (rc[pi].retained || !p->deleted)) {
			snprintf(err, sizeof(err),
				 "not deleted: it is a child of the index %s, "
				 "which stays",
				 c->parent);
			set_error(c, err);
			return;
		}
	}
	int r = berth_reg_manifest_delete(j->reg, j->p.repo.path, c->digest,
					  err, sizeof(err));
	if (r && r != BERTH_REG_NOT_FOUND) {
		set_error(c, err);
		return;
	}
	c->deleted = true;
	berth_log_info(j->ctx, "deleted %s@%s", j->p.repo.path, c->digest);
	for (size_t k = 0; k < c->n_children; k++) {
		const char *ch = c->children[k];
		if (is_kept_child(j, rc, ch, c))
			continue;
		r = berth_reg_manifest_delete(j->reg, j->p.repo.path, ch, err,
					      sizeof(err));
		if (r == 0 || r == BERTH_REG_NOT_FOUND) {
			j->n_deleted_children++;
			berth_log_info(j->ctx, "deleted %s@%s (child of %s)",
				       j->p.repo.path, ch, c->digest);
		} else {
			berth_log_warning(j->ctx, "child %s of %s: %s", ch,
					  c->digest, err);
		}
	}
}

/* --- run ----------------------------------------------------------------------- */

static struct berth_reg *
open_registry(struct job *j, char *err, size_t errlen)
{
	const struct ret_settings *s = j->s;
	const char *url = s->url ? s->url : berth_property(j->ctx,
							   "registry_url");
	if (!url)
		url = getenv("REGISTRY_URL");
	const char *user = s->username;
	const char *pass = s->password;
	if (!user)
		user = berth_property(j->ctx, "registry_credential_username");
	if (!user)
		user = getenv("REGISTRY_CREDENTIAL_USERNAME");
	if (!pass)
		pass = berth_property(j->ctx, "registry_credential_password");
	if (!pass)
		pass = getenv("REGISTRY_CREDENTIAL_PASSWORD");
	if (!url || !*url) {
		snprintf(err, errlen, "no registry: set registry_url in the "
				      "plugin's settings (or REGISTRY_URL in "
				      "berthd's environment)");
		return NULL;
	}
	struct berth_reg_options o = {
		.url = url,
		.username = user && *user ? user : NULL,
		.password = user && *user ? pass : NULL,
		.insecure = s->insecure,
		.timeout_ms = s->timeout_s * 1000,
		.max_retries = s->max_retries ? (int)s->max_retries : -1,
		.cancel = cancel_cb,
		.cancel_ud = j,
		.user_agent = RET_USER_AGENT,
	};
	return berth_reg_new(&o, err, errlen);
}

static enum berth_run_result
ret_run(struct berth_job_ctx *ctx, const char *params_json, char *err,
	size_t errlen)
{
	(void)params_json;
	struct job j = {.ctx = ctx, .s = ctx->type_state};
	struct ret_candidate *rc = NULL;
	struct ret_rule_outcome *oc = NULL;
	enum berth_run_result res = BERTH_RUN_ERROR;
	char why[1024] = "";
	int r;

	if (read_params(ctx, &j.p, err, errlen) != 0)
		return BERTH_RUN_ERROR;
	berth_log_info(ctx, "Run retention process. Repository: %s, Rule "
			    "Algorithm: or, Dry Run: %s",
		       j.p.repo.path, j.p.dry_run ? "true" : "false");
	for (size_t i = 0; i < j.p.policy.n_rules; i++) {
		char line[1024];
		ret_rule_describe(&j.p.policy.rules[i], line, sizeof(line));
		berth_log_info(ctx, "%s", line);
	}
	if (berth_stop_requested(ctx)) {
		berth_log_info(ctx, "Retention job is stopped");
		res = BERTH_RUN_STOPPED;
		goto out;
	}
	if (!(j.reg = open_registry(&j, why, sizeof(why)))) {
		snprintf(err, errlen, "retention job: %s", why);
		goto out;
	}

	/* candidates */
	r = collect_tagged(&j, why, sizeof(why));
	if (r == 0 && j.s->storage)
		r = collect_untagged(&j, why, sizeof(why));
	if (r == 0) {
		drop_children(&j);
		for (size_t i = 0; r == 0 && i < j.n; i++)
			r = push_time(&j, &j.c[i], why, sizeof(why));
	}
	if (r == BERTH_REG_CANCELLED || berth_stop_requested(ctx)) {
		berth_log_info(ctx, "Retention job is stopped");
		res = BERTH_RUN_STOPPED;
		goto out;
	}
	if (r) {
		snprintf(err, errlen, "retention job: %s", why);
		goto out;
	}
	berth_log_info(ctx, "Load %zu candidates from repository %s", j.n,
		       j.p.repo.path);

	/* evaluation */
	rc = j.n ? calloc(j.n, sizeof(*rc)) : NULL;
	oc = j.p.policy.n_rules ? calloc(j.p.policy.n_rules, sizeof(*oc))
				: NULL;
	if ((j.n && !rc) || (j.p.policy.n_rules && !oc)) {
		snprintf(err, errlen, "retention job: out of memory");
		goto out;
	}
	for (size_t i = 0; i < j.n; i++)
		rc[i] = (struct ret_candidate){
			.digest = j.c[i].digest,
			.tags = (const char *const *)j.c[i].tags,
			.n_tags = j.c[i].n_tags,
			.pushed = j.c[i].pushed,
		};
	size_t kept = ret_policy_evaluate(&j.p.policy, &j.p.repo, rc, j.n,
					  (long long)time(NULL), oc);
	if (kept == (size_t)-1) {
		snprintf(err, errlen, "retention job: out of memory");
		goto out;
	}
	for (size_t i = 0; i < j.p.policy.n_rules; i++) {
		if (oc[i].skipped)
			berth_log_info(ctx, "rule %zu skipped: %s", i + 1,
				       oc[i].why);
		else
			berth_log_info(ctx, "rule %zu: %zu selected, %zu "
					    "retained",
				       i + 1, oc[i].selected, oc[i].retained);
	}
	if (berth_stop_requested(ctx)) {
		berth_log_info(ctx, "Retention job is stopped");
		res = BERTH_RUN_STOPPED;
		goto out;
	}

	/* deletion: indexes first, so that their tagged children may go
	 * with them */
	if (!j.p.dry_run) {
		for (int pass = 0; pass < 2; pass++) {
			for (size_t i = 0; i < j.n; i++) {
				struct cand *c = &j.c[i];
				if (rc[i].retained || c->is_index != (pass == 0))
					continue;
				if (berth_stop_requested(ctx)) {
					berth_log_info(ctx, "Retention job is "
							    "stopped during the "
							    "deletions");
					log_table(&j, rc);
					res = BERTH_RUN_STOPPED;
					goto out;
				}
				delete_one(&j, rc, c);
			}
		}
	}
	log_table(&j, rc);
	size_t failed = 0;
	if (checkin(&j, rc, &failed) != 0)
		berth_log_warning(ctx, "the check-in was not recorded");
	berth_log_info(ctx,
		       "%zu candidates: %zu retained, %zu %s%s, %zu failed",
		       j.n, kept, j.n - kept - failed,
		       j.p.dry_run ? "to delete (dry run: nothing deleted)"
				   : "deleted",
		       j.n_deleted_children ? " (and their index children)"
					    : "",
		       failed);
	if (failed) {
		const char *first = NULL;
		for (size_t i = 0; i < j.n && !first; i++)
			first = j.c[i].error;
		snprintf(err, errlen,
			 "retention job: %zu of %zu deletions failed; first: "
			 "%s",
			 failed, j.n - kept, first ? first : "?");
		goto out;
	}
	res = BERTH_RUN_SUCCESS;
out:
	free(rc);
	free(oc);
	cands_free(&j);
	berth_reg_free(j.reg);
	params_fini(&j.p);
	return res;
}

static const struct berth_job_type ret_type = {
	BERTH_JOB_TYPE_INIT,
	.name = "RETENTION",
	.description = "tag retention: applies a Harbor retention policy to "
		       "one repository of an OCI registry",
	.max_fails = 3,
	.max_concurrency = 0,
	.priority = 1000,
	.init = ret_init,
	.fini = ret_fini,
	.should_retry = ret_should_retry,
	.validate = ret_validate,
	.run = ret_run,
};

BERTH_PLUGIN_MAGIC("retention", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&ret_type);

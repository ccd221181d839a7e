/* replication.c - REPLICATION: copies artifacts (images, multi-arch
 * indexes, any OCI artifact) from one registry to another, or deletes
 * them from the destination, over the registry client <berth/registry.h>.
 * README.md is the reference; in short:
 *
 * params:   src_resource, dst_resource (Harbor's replication resources,
 *           JSON strings), speed (KB/s), copy_by_chunk (resource.c).
 * run:      per artifact: GET its manifest (an index: every child too),
 *           skip tags the destination has already (or, override off, has
 *           with another digest), copy the blobs on parallel_blobs
 *           threads (pool.c), PUT the children by digest, then the top
 *           manifest by tag (by digest when it has no tag). deleted: DELETE
 *           the artifacts on the destination instead.
 * limits:   max_fails 3, max_concurrency 0, priority 1000, retried (spec
 *           13.1).
 * settings: parallel_blobs, chunk_bytes, timeout_seconds,
 *           stall_timeout_seconds, max_retries. */
#define _GNU_SOURCE
#include "job.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPL_USER_AGENT "berth-replication/1"
#define REPL_MAX_DEPTH 3 /* index -> index -> manifest at most */
/* The child manifests of one artifact are held in memory until they are
 * pushed: their bytes together, at most (each is at most
 * BERTH_REG_MANIFEST_MAX; real indexes hold a few dozen of a few KiB). An
 * index of 14 children of 4 MiB grew the runner past 50 MiB, and nothing
 * bounded a bigger one (test_registry_faults, g/fatindex). */
#define REPL_CHILDREN_MAX (16LL * 1024 * 1024)

/* --- settings ------------------------------------------------------------- */

static void
settings_free(struct repl_settings *s)
{
	if (!s)
		return;
	berth_http_policy_free(s->policy);
	berth_http_tls_fini(&s->tls);
	free(s);
}

static int
repl_init(struct berth_job_ctx *ctx, void **type_state)
{
	long long par, chunk, timeout, stall, retries;
	struct repl_settings *s = calloc(1, sizeof(*s));
	if (!s) {
		berth_log_error(ctx, "out of memory");
		return -1;
	}
	if (berth_setting_int_in(ctx, "parallel_blobs", 4, 1, REPL_MAX_PARALLEL,
			&par) ||
	    berth_setting_int_in(ctx, "chunk_bytes", 10LL * 1024 * 1024, 4096,
			1LL << 30, &chunk) ||
	    berth_setting_int_in(ctx, "timeout_seconds", 30, 1, 3600, &timeout) ||
	    berth_setting_int_in(ctx, "stall_timeout_seconds", 60, 1, 3600, &stall) ||
	    berth_setting_int_in(ctx, "max_retries", 3, 0, 10, &retries)) {
		free(s);
		return -1;
	}
	s->parallel_blobs = (int)par;
	s->chunk_bytes = chunk;
	s->timeout_ms = (long)timeout * 1000;
	s->stall_timeout_ms = (long)stall * 1000;
	s->max_retries = retries == 0 ? -1 : (int)retries;
	s->policy = berth_http_policy_from_env();
	if (!s->policy) {
		berth_log_error(ctx, "out of memory");
		free(s);
		return -1;
	}
	/* the trust store of the environment; the internal client
	 * certificate is Harbor's own, not for remote registries */
	berth_http_tls_from_env(&s->tls);
	free(s->tls.client_cert);
	free(s->tls.client_key);
	s->tls.client_cert = s->tls.client_key = NULL;
	berth_log_info(ctx,
		       "ready: parallel_blobs %d, chunk_bytes %lld, timeout "
		       "%lld s, stall timeout %lld s, max_retries %lld",
		       s->parallel_blobs, s->chunk_bytes, timeout, stall,
		       retries);
	*type_state = s;
	return 0;
}

static void
repl_fini(void *type_state)
{
	settings_free(type_state);
}

/* --- validate ------------------------------------------------------------- */

static int
repl_validate(struct berth_job_ctx *ctx, const char *params_json, char *err,
	      size_t errlen)
{
	struct repl_params p;
	(void)params_json;
	if (repl_params_parse(ctx, &p, err, errlen) != 0)
		return -1;
	repl_params_fini(&p);
	return 0;
}

/* --- helpers of the run --------------------------------------------------- */

static struct berth_reg *
open_registry(struct repl_job *job, const struct repl_registry *r,
	      const char *what, char *err, size_t errlen)
{
	char e[512];
	struct berth_reg_options o = {
		.url = r->url,
		.username = r->username,
		.password = r->password,
		.bearer_token = r->token,
		.insecure = r->insecure,
		.policy = job->set->policy,
		.tls = &job->set->tls,
		.timeout_ms = job->set->timeout_ms,
		.stall_timeout_ms = job->set->stall_timeout_ms,
		.max_retries = job->set->max_retries,
		.cancel = repl_cancelled,
		.cancel_ud = job,
		.user_agent = REPL_USER_AGENT,
	};
	struct berth_reg *h = berth_reg_new(&o, e, sizeof(e));
	if (!h)
		repl_err(err, errlen, "%s.registry: %s", what, e);
	return h;
}

/* "repo:tag" or "repo@sha256:..." into out */
static const char *
ref_name(const char *repo, const char *ref, char *out, size_t len)
{
	snprintf(out, len, "%s%s%s", repo,
		 berth_reg_is_digest(ref) ? "@" : ":", ref);
	return out;
}

static const char *
kind_of(const struct berth_reg_manifest *m)
{
	if (m->is_index)
		return "index";
	return "image";
}

/* A growing list of manifests (children of an index, post-order). */
struct mlist {
	struct berth_reg_manifest *v;
	size_t n, cap;
	long long bytes; /* of the bodies held */
};

static void
mlist_fini(struct mlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		berth_reg_manifest_fini(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static bool
mlist_has(const struct mlist *l, const char *digest)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].digest, digest) == 0)
			return true;
	return false;
}

/* Takes m (moved in: zeroed on return). */
static int
mlist_push(struct mlist *l, struct berth_reg_manifest *m)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		struct berth_reg_manifest *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->bytes += (long long)m->len;
	l->v[l->n++] = *m;
	memset(m, 0, sizeof(*m));
	return 0;
}

/* The children of index m, fetched from the source, nested indexes'
 * children before them. */
static int
collect_children(struct repl_job *job, const struct berth_reg_manifest *m,
		 int depth, struct mlist *out, char *err, size_t errlen)
{
	for (size_t i = 0; i < m->n_manifests; i++) {
		const struct berth_reg_descriptor *c = &m->manifests[i];
		struct berth_reg_manifest cm;
		char e[1024];
		if (mlist_has(out, c->digest))
			continue;
		int rc = berth_reg_manifest_get(job->src, job->p.src.repo,
						c->digest, &cm, e, sizeof(e));
		if (rc != BERTH_REG_OK) {
			repl_err(err, errlen, "child manifest %s (%s/%s) of "
					      "index %s: %s",
				 c->digest, c->os ? c->os : "?",
				 c->arch ? c->arch : "?", m->digest, e);
			return rc;
		}
		if (out->bytes + (long long)cm.len > REPL_CHILDREN_MAX) {
			repl_err(err, errlen, "registry %s: index %s: its "
					      "child manifests hold more than "
					      "%lld MiB",
				 berth_reg_url(job->src), m->digest,
				 REPL_CHILDREN_MAX / (1024 * 1024));
			berth_reg_manifest_fini(&cm);
			return BERTH_REG_TOO_LARGE;
		}
		if (cm.is_index) {
			if (depth + 1 >= REPL_MAX_DEPTH) {
				repl_err(err, errlen, "index %s nests indexes "
						      "deeper than %d levels",
					 m->digest, REPL_MAX_DEPTH);
				berth_reg_manifest_fini(&cm);
				return BERTH_REG_UNSUPPORTED;
			}
			rc = collect_children(job, &cm, depth + 1, out, err,
					      errlen);
			if (rc != BERTH_REG_OK) {
				berth_reg_manifest_fini(&cm);
				return rc;
			}
		}
		if (mlist_push(out, &cm) != 0) {
			berth_reg_manifest_fini(&cm);
			repl_err(err, errlen, "out of memory");
			return BERTH_REG_NOMEM;
		}
	}
	return BERTH_REG_OK;
}

/* A set of the digests already in an artifact's blob list (open
 * addressing; the digests are borrowed from the manifests). A scan of the
 * list per blob was quadratic: 2 s of CPU for one 4 MiB manifest of
 * 38,000 layers, about a minute for 16 MiB of child manifests, with no
 * stop poll in between. */
struct dset {
	const char **v;
	size_t cap; /* a power of two (0: empty) */
	size_t n;
};

static size_t
dset_slot(const struct dset *d, const char *s)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return (size_t)h & (d->cap - 1);
}

/* 1: s added, 0: s was there, -1: out of memory. */
static int
dset_add(struct dset *d, const char *s)
{
	if (2 * (d->n + 1) > d->cap) {
		struct dset g = {.cap = d->cap ? 2 * d->cap : 64, .n = d->n};
		if (!(g.v = calloc(g.cap, sizeof(*g.v))))
			return -1;
		for (size_t i = 0; i < d->cap; i++) {
			if (!d->v[i])
				continue;
			size_t k = dset_slot(&g, d->v[i]);
			while (g.v[k])
				k = (k + 1) & (g.cap - 1);
			g.v[k] = d->v[i];
		}
		free(d->v);
		*d = g;
	}
	size_t k = dset_slot(d, s);
	for (; d->v[k]; k = (k + 1) & (d->cap - 1))
		if (strcmp(d->v[k], s) == 0)
			return 0;
	d->v[k] = s;
	d->n++;
	return 1;
}

/* Appends the config and layers of image manifest m to blobs (once per
 * digest, seen holding those already there; foreign layers skipped). */
static int
add_blobs(const struct berth_reg_manifest *m, struct dset *seen,
	  const struct berth_reg_descriptor ***blobs, size_t *n, size_t *cap,
	  long long *bytes)
{
	if (m->is_index)
		return 0;
	for (size_t i = 0; i <= m->n_layers; i++) {
		const struct berth_reg_descriptor *d =
			i == 0 ? &m->config : &m->layers[i - 1];
		if (!d->digest[0] || d->foreign)
			continue;
		int added = dset_add(seen, d->digest);
		if (added < 0)
			return -1;
		if (!added)
			continue;
		if (*n == *cap) {
			size_t c = *cap ? 2 * *cap : 16;
			const struct berth_reg_descriptor **v =
				realloc(*blobs, c * sizeof(*v));
			if (!v)
				return -1;
			*blobs = v;
			*cap = c;
		}
		(*blobs)[(*n)++] = d;
		/* saturated: a manifest's sizes (each up to 9e15) can add up
		 * past 2^63 (a signed overflow, caught by UBSan in
		 * test_registry_faults' garbage registry) */
		if (d->size > 0 && d->size > LLONG_MAX - *bytes)
			*bytes = LLONG_MAX;
		else if (d->size > 0)
			*bytes += d->size;
	}
	return 0;
}

/* The run's result for a registry failure: stopped, or an error. */
static enum berth_run_result
failed(struct repl_job *job, int rc)
{
	if (rc == BERTH_REG_CANCELLED && atomic_load(&job->stop))
		return BERTH_RUN_STOPPED;
	return BERTH_RUN_ERROR;
}

/* --- copy ----------------------------------------------------------------- */

/* Which of the artifact's tags to write on the destination: those it does
 * not have at this digest, and, with override off, not at another one
 * either. With no tags: whether the digest is to be written (*by_digest).
 * put[] receives pointers into a->tags. */
static int
plan_targets(struct repl_job *job, const struct repl_artifact *a,
	     const char *digest, const char **put, size_t *n_put,
	     bool *by_digest, char *err, size_t errlen)
{
	char e[1024], name[512];
	const char *dst_repo = job->p.dst.repo;
	*n_put = 0;
	*by_digest = false;
	for (size_t i = 0; i < a->n_tags; i++) {
		char have[BERTH_REG_DIGEST_MAX] = "";
		bool exists = false;
		int rc = berth_reg_manifest_head(job->dst, dst_repo, a->tags[i],
						 &exists, have, e, sizeof(e));
		if (rc != BERTH_REG_OK) {
			repl_err(err, errlen, "destination %s: %s",
				 ref_name(dst_repo, a->tags[i], name,
					  sizeof(name)),
				 e);
			return rc;
		}
		if (exists && strcmp(have, digest) == 0) {
			berth_log_info(job->ctx, "%s is %s on the destination "
						 "already",
				       ref_name(dst_repo, a->tags[i], name,
						sizeof(name)),
				       digest);
			continue;
		}
		if (exists && !job->p.dst.override) {
			berth_log_warning(job->ctx,
					  "%s skipped: the destination has it "
					  "at %s and override is off",
					  ref_name(dst_repo, a->tags[i], name,
						   sizeof(name)),
					  have[0] ? have : "another digest");
			continue;
		}
		put[(*n_put)++] = a->tags[i];
	}
	if (a->n_tags == 0) {
		bool exists = false;
		int rc = berth_reg_manifest_head(job->dst, dst_repo, digest,
						 &exists, NULL, e, sizeof(e));
		if (rc != BERTH_REG_OK) {
			repl_err(err, errlen, "destination %s: %s",
				 ref_name(dst_repo, digest, name, sizeof(name)),
				 e);
			return rc;
		}
		if (exists)
			berth_log_info(job->ctx, "%s is on the destination "
						 "already",
				       ref_name(dst_repo, digest, name,
						sizeof(name)));
		*by_digest = !exists;
	}
	return BERTH_REG_OK;
}

static enum berth_run_result
copy_artifact(struct repl_job *job, const struct repl_artifact *a,
	      char *err, size_t errlen)
{
	const char *src_repo = job->p.src.repo, *dst_repo = job->p.dst.repo;
	const char *ref = a->digest ? a->digest : a->tags[0];
	struct berth_reg_manifest top;
	struct mlist children = {0};
	struct dset seen = {0};
	const struct berth_reg_descriptor **blobs = NULL;
	const char **put = NULL;
	size_t n_blobs = 0, cap_blobs = 0, n_put = 0;
	long long bytes = 0, t0 = repl_now_ms();
	bool by_digest = false;
	char e[1024], name[512];
	enum berth_run_result res = BERTH_RUN_ERROR;
	int rc;

	ref_name(src_repo, ref, name, sizeof(name));
	rc = berth_reg_manifest_get(job->src, src_repo, ref, &top, e,
				    sizeof(e));
	if (rc != BERTH_REG_OK) {
		repl_err(err, errlen, "source %s: %s", name, e);
		return failed(job, rc);
	}
	put = calloc(a->n_tags + 1, sizeof(*put));
	if (!put) {
		repl_err(err, errlen, "out of memory");
		goto out;
	}
	rc = plan_targets(job, a, top.digest, put, &n_put, &by_digest, err,
			  errlen);
	if (rc != BERTH_REG_OK) {
		res = failed(job, rc);
		goto out;
	}
	if (n_put == 0 && !by_digest) {
		res = BERTH_RUN_SUCCESS;
		goto out;
	}
	if (top.is_index) {
		rc = collect_children(job, &top, 0, &children, e, sizeof(e));
		if (rc != BERTH_REG_OK) {
			repl_err(err, errlen, "source %s: %s", name, e);
			res = failed(job, rc);
			goto out;
		}
	}
	if (add_blobs(&top, &seen, &blobs, &n_blobs, &cap_blobs, &bytes) != 0)
		goto nomem;
	for (size_t i = 0; i < children.n; i++)
		if (add_blobs(&children.v[i], &seen, &blobs, &n_blobs,
			      &cap_blobs, &bytes) != 0)
			goto nomem;
	berth_log_info(job->ctx,
		       "copying %s (%s %s, %zu manifest%s, %zu blob%s, %.1f "
		       "MiB) to %s/%s",
		       name, kind_of(&top), top.digest, children.n + 1,
		       children.n ? "s" : "", n_blobs, n_blobs == 1 ? "" : "s",
		       (double)bytes / (1024 * 1024), berth_reg_url(job->dst),
		       dst_repo);
	pthread_mutex_lock(&job->mu);
	job->blobs += n_blobs;
	pthread_mutex_unlock(&job->mu);

	rc = repl_copy_blobs(job, blobs, n_blobs, e, sizeof(e));
	if (rc != BERTH_REG_OK) {
		repl_err(err, errlen, "%s: %s", name, e);
		res = failed(job, rc);
		goto out;
	}
	if (repl_poll_stop(job)) {
		res = BERTH_RUN_STOPPED;
		goto out;
	}
	/* children first, so that the index never points at nothing */
	for (size_t i = 0; i < children.n; i++) {
		const struct berth_reg_manifest *c = &children.v[i];
		bool exists = false;
		rc = berth_reg_manifest_head(job->dst, dst_repo, c->digest,
					     &exists, NULL, e, sizeof(e));
		if (rc == BERTH_REG_OK && !exists)
			rc = berth_reg_manifest_put(job->dst, dst_repo,
						    c->digest, c->media_type,
						    c->body, c->len, NULL, e,
						    sizeof(e));
		if (rc != BERTH_REG_OK) {
			repl_err(err, errlen, "destination %s: %s",
				 ref_name(dst_repo, c->digest, name,
					  sizeof(name)),
				 e);
			res = failed(job, rc);
			goto out;
		}
	}
	for (size_t i = 0; i < n_put || by_digest; i++) {
		const char *to = by_digest ? top.digest : put[i];
		rc = berth_reg_manifest_put(job->dst, dst_repo, to,
					    top.media_type, top.body, top.len,
					    NULL, e, sizeof(e));
		if (rc != BERTH_REG_OK) {
			repl_err(err, errlen, "destination %s: %s",
				 ref_name(dst_repo, to, name, sizeof(name)),
				 e);
			res = failed(job, rc);
			goto out;
		}
		berth_log_info(job->ctx, "pushed %s",
			       ref_name(dst_repo, to, name, sizeof(name)));
		if (by_digest)
			break;
	}
	double s = (repl_now_ms() - t0) / 1000.0;
	berth_log_info(job->ctx, "artifact %s done in %.2f s",
		       ref_name(src_repo, ref, name, sizeof(name)), s);
	res = BERTH_RUN_SUCCESS;
	goto out;
nomem:
	repl_err(err, errlen, "out of memory");
out:
	free(blobs);
	free(seen.v);
	free(put);
	mlist_fini(&children);
	berth_reg_manifest_fini(&top);
	return res;
}

/* An artifact per tag of the source repository (artifacts not given). */
static int
all_tags(struct repl_job *job, char *err, size_t errlen)
{
	char **tags = NULL, e[1024];
	size_t n = 0;
	int rc = berth_reg_tags(job->src, job->p.src.repo, 0, &tags, &n, e,
				sizeof(e));
	if (rc != BERTH_REG_OK) {
		repl_err(err, errlen, "source %s: listing the tags: %s",
			 job->p.src.repo, e);
		return rc;
	}
	berth_log_info(job->ctx, "no artifacts given: replicating the %zu "
				 "tag%s of %s",
		       n, n == 1 ? "" : "s", job->p.src.repo);
	if (n > 0) {
		job->p.src.arts = calloc(n, sizeof(*job->p.src.arts));
		if (!job->p.src.arts) {
			berth_reg_strv_free(tags, n);
			repl_err(err, errlen, "out of memory");
			return BERTH_REG_NOMEM;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct repl_artifact *a = &job->p.src.arts[i];
		a->tags = calloc(1, sizeof(char *));
		if (!a->tags) {
			berth_reg_strv_free(tags + i, n - i);
			free(tags);
			repl_err(err, errlen, "out of memory");
			return BERTH_REG_NOMEM;
		}
		a->tags[0] = tags[i]; /* moved */
		a->n_tags = 1;
		job->p.src.n_arts++;
	}
	free(tags);
	return BERTH_REG_OK;
}

static enum berth_run_result
run_copy(struct repl_job *job, char *err, size_t errlen)
{
	long long t0 = repl_now_ms();
	if (!(job->src = open_registry(job, &job->p.src.reg, "src_resource",
				       err, errlen)))
		return BERTH_RUN_ERROR;
	if (job->p.src.n_arts == 0) {
		int rc = all_tags(job, err, errlen);
		if (rc != BERTH_REG_OK)
			return failed(job, rc);
	}
	job->artifacts = job->p.src.n_arts;
	berth_log_info(job->ctx,
		       "replicating %zu artifact%s of %s/%s to %s/%s "
		       "(override %s, speed %s, %s upload, %d parallel blobs)",
		       job->artifacts, job->artifacts == 1 ? "" : "s",
		       berth_reg_url(job->src), job->p.src.repo,
		       berth_reg_url(job->dst), job->p.dst.repo,
		       job->p.dst.override ? "on" : "off",
		       job->throttle ? "limited" : "unlimited",
		       job->p.copy_by_chunk ? "chunked" : "monolithic",
		       job->set->parallel_blobs);
	if (job->throttle)
		berth_log_info(job->ctx, "speed limit %lld KB/s for the whole "
					 "job",
			       job->p.speed_bytes_per_s / 1024);
	repl_checkin(job, true);
	for (size_t i = 0; i < job->p.src.n_arts; i++) {
		if (repl_poll_stop(job))
			return BERTH_RUN_STOPPED;
		enum berth_run_result r =
			copy_artifact(job, &job->p.src.arts[i], err, errlen);
		if (r != BERTH_RUN_SUCCESS)
			return r;
		pthread_mutex_lock(&job->mu);
		job->artifacts_done++;
		pthread_mutex_unlock(&job->mu);
		repl_checkin(job, false);
	}
	repl_checkin(job, true);
	double s = (repl_now_ms() - t0) / 1000.0;
	berth_log_info(job->ctx,
		       "replicated %zu artifact%s in %.2f s: %zu blobs, %zu "
		       "skipped, %zu mounted, %lld bytes copied (%.1f MB/s)",
		       job->artifacts_done, job->artifacts_done == 1 ? "" : "s",
		       s, job->blobs_done, job->blobs_skipped,
		       job->blobs_mounted, job->bytes,
		       s > 0 ? job->bytes / 1e6 / s : 0.0);
	return BERTH_RUN_SUCCESS;
}

/* --- delete --------------------------------------------------------------- */

/* is_delete_tag: the registry API deletes manifests (with every tag on
 * them); a tag alone goes only when no other tag shares its manifest. */
static int
other_tags_on(struct repl_job *job, const char *digest,
	      const struct repl_artifact *a, char *others, size_t olen,
	      char *err, size_t errlen)
{
	char **tags = NULL, e[1024];
	size_t n = 0, used = 0;
	int rc = berth_reg_tags(job->dst, job->p.dst.repo, 0, &tags, &n, e,
				sizeof(e));
	others[0] = '\0';
	if (rc != BERTH_REG_OK) {
		repl_err(err, errlen, "destination %s: listing the tags: %s",
			 job->p.dst.repo, e);
		return rc;
	}
	for (size_t i = 0; i < n && rc == BERTH_REG_OK; i++) {
		bool mine = false, exists = false;
		char d[BERTH_REG_DIGEST_MAX] = "";
		for (size_t k = 0; k < a->n_tags && !mine; k++)
			mine = strcmp(a->tags[k], tags[i]) == 0;
		if (mine)
			continue;
		rc = berth_reg_manifest_head(job->dst, job->p.dst.repo, tags[i],
					     &exists, d, e, sizeof(e));
		if (rc != BERTH_REG_OK)
			repl_err(err, errlen, "destination %s:%s: %s",
				 job->p.dst.repo, tags[i], e);
		else if (exists && strcmp(d, digest) == 0 && used + 2 < olen)
			used += (size_t)snprintf(others + used, olen - used,
						 "%s%s", used ? ", " : "",
						 tags[i]);
	}
	berth_reg_strv_free(tags, n);
	return rc;
}

static enum berth_run_result
delete_digest(struct repl_job *job, const char *digest, const char *what,
	      char *err, size_t errlen)
{
	char e[1024];
	int rc = berth_reg_manifest_delete(job->dst, job->p.dst.repo, digest,
					   e, sizeof(e));
	if (rc == BERTH_REG_NOT_FOUND) {
		berth_log_info(job->ctx, "%s: not on the destination, nothing "
					 "to delete",
			       what);
		return BERTH_RUN_SUCCESS;
	}
	if (rc != BERTH_REG_OK) {
		repl_err(err, errlen, "deleting %s: %s", what, e);
		return failed(job, rc);
	}
	berth_log_info(job->ctx, "deleted %s (%s) from %s", what, digest,
		       berth_reg_url(job->dst));
	return BERTH_RUN_SUCCESS;
}

static enum berth_run_result
delete_artifact(struct repl_job *job, const struct repl_artifact *a,
		char *err, size_t errlen)
{
	const char *repo = job->p.dst.repo;
	char e[1024], name[512];
	if (a->digest && !job->p.src.is_delete_tag)
		return delete_digest(job, a->digest,
				     ref_name(repo, a->digest, name,
					      sizeof(name)),
				     err, errlen);
	for (size_t i = 0; i < a->n_tags; i++) {
		char d[BERTH_REG_DIGEST_MAX] = "";
		bool exists = false;
		ref_name(repo, a->tags[i], name, sizeof(name));
		int rc = berth_reg_manifest_head(job->dst, repo, a->tags[i],
						 &exists, d, e, sizeof(e));
		if (rc != BERTH_REG_OK) {
			repl_err(err, errlen, "destination %s: %s", name, e);
			return failed(job, rc);
		}
		if (!exists) {
			berth_log_info(job->ctx, "%s: not on the destination, "
						 "nothing to delete",
				       name);
			continue;
		}
		if (!d[0]) {
			repl_err(err, errlen, "destination %s: the registry "
					      "sent no Docker-Content-Digest",
				 name);
			return BERTH_RUN_ERROR;
		}
		if (a->digest && strcmp(d, a->digest) != 0) {
			berth_log_warning(job->ctx,
					  "%s skipped: it points at %s now, "
					  "not at %s",
					  name, d, a->digest);
			continue;
		}
		if (job->p.src.is_delete_tag) {
			char others[512];
			rc = other_tags_on(job, d, a, others, sizeof(others),
					   err, errlen);
			if (rc != BERTH_REG_OK)
				return failed(job, rc);
			if (others[0]) {
				repl_err(err, errlen,
					 "cannot delete the tag %s alone: the "
					 "registry API deletes the manifest %s "
					 "with every tag on it, and %s also "
					 "point%s at it",
					 name, d, others,
					 strchr(others, ',') ? "" : "s");
				return BERTH_RUN_ERROR;
			}
		}
		enum berth_run_result r = delete_digest(job, d, name, err,
							errlen);
		if (r != BERTH_RUN_SUCCESS)
			return r;
	}
	return BERTH_RUN_SUCCESS;
}

static enum berth_run_result
run_delete(struct repl_job *job, char *err, size_t errlen)
{
	if (job->p.src.n_arts == 0) {
		repl_err(err, errlen, "src_resource.metadata.artifacts is "
				      "empty: deleting needs the artifacts "
				      "to delete");
		return BERTH_RUN_ERROR;
	}
	job->artifacts = job->p.src.n_arts;
	berth_log_info(job->ctx, "deleting %zu artifact%s from %s/%s%s",
		       job->artifacts, job->artifacts == 1 ? "" : "s",
		       berth_reg_url(job->dst), job->p.dst.repo,
		       job->p.src.is_delete_tag ? " (tags only)" : "");
	for (size_t i = 0; i < job->p.src.n_arts; i++) {
		if (repl_poll_stop(job))
			return BERTH_RUN_STOPPED;
		enum berth_run_result r =
			delete_artifact(job, &job->p.src.arts[i], err, errlen);
		if (r != BERTH_RUN_SUCCESS)
			return r;
		job->artifacts_done++;
		repl_checkin(job, false);
	}
	repl_checkin(job, true);
	return BERTH_RUN_SUCCESS;
}

/* --- run ------------------------------------------------------------------ */

static enum berth_run_result
repl_run(struct berth_job_ctx *ctx, const char *params_json, char *err,
	 size_t errlen)
{
	struct repl_job job;
	enum berth_run_result res = BERTH_RUN_ERROR;
	(void)params_json;
	memset(&job, 0, sizeof(job));
	if (repl_params_parse(ctx, &job.p, err, errlen) != 0)
		return BERTH_RUN_ERROR;
	job.ctx = ctx;
	job.set = ctx->type_state;
	job.run_thread = pthread_self();
	job.last_stop_poll_ms = repl_now_ms();
	atomic_init(&job.stop, false);
	atomic_init(&job.abort, false);
	pthread_mutex_init(&job.mu, NULL);
	pthread_cond_init(&job.cv, NULL);
	for (int i = 0; i < REPL_MAX_PARALLEL; i++)
		atomic_init(&job.workers[i].inflight, 0);
	if (job.p.speed_bytes_per_s > 0 &&
	    !(job.throttle = berth_reg_throttle_new(job.p.speed_bytes_per_s))) {
		repl_err(err, errlen, "out of memory");
		goto out;
	}
	if (!(job.dst = open_registry(&job, &job.p.dst.reg, "dst_resource",
				      err, errlen)))
		goto out;
	if (job.p.src.deleted)
		res = run_delete(&job, err, errlen);
	else
		res = run_copy(&job, err, errlen);
	if (res == BERTH_RUN_STOPPED)
		berth_log_info(ctx, "stopped after %zu of %zu artifacts",
			       job.artifacts_done, job.artifacts);
out:
	repl_workers_fini(&job);
	berth_reg_free(job.src);
	berth_reg_free(job.dst);
	berth_reg_throttle_free(job.throttle);
	pthread_cond_destroy(&job.cv);
	pthread_mutex_destroy(&job.mu);
	repl_params_fini(&job.p);
	return res;
}

static const struct berth_job_type replication = {
	BERTH_JOB_TYPE_INIT,
	.name = "REPLICATION",
	.description = "Copies (or deletes) artifacts between OCI registries",
	.max_fails = 3,
	.max_concurrency = 0,
	.priority = 1000,
	.init = repl_init,
	.fini = repl_fini,
	.validate = repl_validate,
	.run = repl_run,
};

BERTH_PLUGIN_MAGIC("replication", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&replication);

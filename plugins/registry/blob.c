/* blob.c - blobs (berth/registry.h): HEAD, small reads, DELETE, and
 * uploads (monolithic or chunked, cross-repository mount; from a caller's
 * bytes, verified on the way). The copy between registries is copy.c. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small requests ---------------------------------------------------------- */

int
reg_blob_check_args(const char *repo, const char *digest, char *err,
		size_t errlen)
{
	if (!berth_reg_valid_repo(repo)) {
		reg_errf(err, errlen, "invalid repository name \"%.100s\"",
			 repo ? repo : "");
		return BERTH_REG_INVALID;
	}
	if (!berth_reg_is_digest(digest)) {
		reg_errf(err, errlen, "invalid blob digest \"%.140s\"",
			 digest ? digest : "");
		return BERTH_REG_INVALID;
	}
	return 0;
}

int
berth_reg_blob_head(struct berth_reg *r, const char *repo, const char *digest,
		    bool *exists, long long *size, char *err, size_t errlen)
{
	*exists = false;
	if (size)
		*size = -1;
	reg_errf(err, errlen, "%s", "");
	int rc = reg_blob_check_args(repo, digest, err, errlen);
	if (rc)
		return rc;
	char what[440], b[32];
	snprintf(what, sizeof(what), "HEAD blob %s of %.255s",
		 reg_short(digest, b), repo);
	struct reg_req q = {.method = "HEAD", .follow_redirects = true};
	struct berth_http_response resp;
	rc = reg_repo_do(r, &q, repo, "pull", (const long[]){200, 404, 0},
			 &resp, what, err, errlen, "/v2/%s/blobs/%s", repo,
			 digest);
	if (!rc && resp.status == 200) {
		*exists = true;
		const char *cl = reg_header(&resp, "Content-Length");
		if (size && cl) {
			char *end = NULL;
			long long v = strtoll(cl, &end, 10);
			if (end != cl && *end == '\0' && v >= 0)
				*size = v;
		}
	}
	berth_http_response_fini(&resp);
	return rc;
}

int
berth_reg_blob_read(struct berth_reg *r, const char *repo, const char *digest,
		    size_t max, char **body, size_t *len, char *err,
		    size_t errlen)
{
	*body = NULL;
	*len = 0;
	reg_errf(err, errlen, "%s", "");
	int rc = reg_blob_check_args(repo, digest, err, errlen);
	if (rc)
		return rc;
	char what[440], b[32];
	snprintf(what, sizeof(what), "GET blob %s of %.255s",
		 reg_short(digest, b), repo);
	struct reg_req q = {
		.method = "GET",
		.follow_redirects = true,
		/* one byte over max tells "too large"; max 0 still needs
		 * room for an error body */
		.max_response_bytes = max + 1 > REG_ERROR_BODY_MAX
					      ? max + 1
					      : REG_ERROR_BODY_MAX,
	};
	struct berth_http_response resp;
	rc = reg_repo_do(r, &q, repo, "pull", (const long[]){200, 0}, &resp,
			 what, err, errlen, "/v2/%s/blobs/%s", repo, digest);
	if (!rc && (resp.truncated || resp.body_len > max)) {
		reg_errf(err, errlen, "registry %s: %s: larger than %zu bytes",
			 r->origin, what, max);
		rc = BERTH_REG_TOO_LARGE;
	}
	if (!rc) {
		char got[BERTH_REG_DIGEST_MAX];
		reg_digest_like(digest, resp.body, resp.body_len, got);
		if (strcmp(got, digest) != 0) {
			char b2[32];
			reg_errf(err, errlen,
				 "registry %s: blob %s of %.255s: digest "
				 "mismatch: got %s",
				 r->origin, digest, repo, reg_short(got, b2));
			rc = BERTH_REG_DIGEST_MISMATCH;
		}
	}
	if (!rc) {
		if (!resp.body) {
			resp.body = calloc(1, 1);
			if (!resp.body) {
				reg_errf(err, errlen, "out of memory");
				rc = BERTH_REG_NOMEM;
			}
		}
		if (!rc) {
			*body = resp.body;
			*len = resp.body_len;
			resp.body = NULL;
		}
	}
	berth_http_response_fini(&resp);
	return rc;
}

int
berth_reg_blob_delete(struct berth_reg *r, const char *repo,
		      const char *digest, char *err, size_t errlen)
{
	reg_errf(err, errlen, "%s", "");
	int rc = reg_blob_check_args(repo, digest, err, errlen);
	if (rc)
		return rc;
	char what[440];
	snprintf(what, sizeof(what), "DELETE blob %.140s of %.255s", digest,
		 repo);
	struct reg_req q = {.method = "DELETE"};
	struct berth_http_response resp;
	rc = reg_repo_do(r, &q, repo, "pull,delete",
			 (const long[]){202, 200, 204, 0}, &resp, what, err,
			 errlen, "/v2/%s/blobs/%s", repo, digest);
	berth_http_response_fini(&resp);
	return rc;
}

/* ---- upload sessions ------------------------------------------------------- */

/* POST /v2/<repo>/blobs/uploads/ (with ?mount=&from= when from is set).
 * 0 with *mounted (201 of a mount) or *location (a session, malloc'ed). */
int
reg_upload_open(struct berth_reg *r, const char *repo, const char *digest,
	    const char *from, bool *mounted, char **location, char *err,
	    size_t errlen)
{
	*mounted = false;
	*location = NULL;
	char what[600], b[32];
	char *ed = NULL, *ef = NULL, *scope2 = NULL;
	if (from) {
		ed = reg_escape(digest);
		ef = reg_escape(from);
		scope2 = reg_asprintf("repository:%s:pull", from);
		snprintf(what, sizeof(what), "mount blob %s from %.255s to %.255s",
			 reg_short(digest, b), from, repo);
	} else {
		snprintf(what, sizeof(what), "start upload of blob %s to %.255s",
			 reg_short(digest, b), repo);
	}
	if (from && (!ed || !ef || !scope2)) {
		free(ed);
		free(ef);
		free(scope2);
		reg_errf(err, errlen, "out of memory");
		return BERTH_REG_NOMEM;
	}
	struct reg_req q = {.method = "POST", .scope2 = scope2};
	struct berth_http_response resp;
	int rc = from ? reg_repo_do(r, &q, repo, "pull,push", NULL, &resp, what,
				    err, errlen,
				    "/v2/%s/blobs/uploads/?mount=%s&from=%s",
				    repo, ed, ef)
		      : reg_repo_do(r, &q, repo, "pull,push", NULL, &resp, what,
				    err, errlen, "/v2/%s/blobs/uploads/", repo);
	free(ed);
	free(ef);
	if (!rc) {
		const char *loc = reg_header(&resp, "Location");
		if (from && resp.status == 201) {
			*mounted = true;
		} else if (resp.status == 202) {
			if (!loc || !*loc) {
				reg_errf(err, errlen,
					 "registry %s: %s: 202 without a "
					 "Location",
					 r->origin, what);
				rc = BERTH_REG_PROTOCOL;
			} else if (!(*location = reg_resolve(r, loc))) {
				reg_errf(err, errlen, "out of memory");
				rc = BERTH_REG_NOMEM;
			}
		} else {
			rc = reg_status_error(r, &resp, what, err, errlen);
		}
	}
	berth_http_response_fini(&resp);
	free(scope2);
	return rc;
}

/* Cancels an upload session (best effort: one try, 5 s). Distribution 2.8
 * answers 404 BLOB_UPLOAD_INVALID ("upload resumed at wrong offset") to
 * the DELETE of a session whose last PATCH/PUT was cut mid-body, and keeps
 * its partial data until its upload purging (a week by default); nothing
 * of it is committed either way. */
void
reg_upload_cancel(struct berth_reg *r, const char *repo, const char *location)
{
	if (!location)
		return;
	struct reg_req q = {
		.method = "DELETE",
		.path = location,
		.no_retry = true,
		.timeout_ms = 5000,
	};
	/* the handle's cancel may be what ended the upload: this DELETE
	 * must still go out */
	bool (*c)(void *) = r->cancel;
	r->cancel = NULL;
	struct berth_http_response resp;
	char err[64];
	reg_repo_do(r, &q, repo, "pull,push", NULL, &resp, "cancel upload",
		    err, sizeof(err), NULL);
	r->cancel = c;
	berth_http_response_fini(&resp);
}


static size_t
up_read(void *ud, char *buf, size_t len)
{
	struct reg_upload *u = ud;
	if (u->chunk_left == 0 || u->src_end)
		return 0;
	if (u->chunk_left > 0 && (long long)len > u->chunk_left)
		len = (size_t)u->chunk_left;
	size_t n = u->read(u->read_ud, buf, len);
	if (n == BERTH_HTTP_READ_ABORT)
		return n;
	if (n == 0) {
		u->src_end = true;
		return 0;
	}
	u->sent += (long long)n;
	if (u->chunk_left > 0)
		u->chunk_left -= (long long)n;
	if (u->o && u->o->progress)
		u->o->progress(u->o->progress_ud, u->sent);
	return n;
}

/* location + "digest=<digest>" */
static char *
with_digest(const char *location, const char *digest)
{
	char *e = reg_escape(digest);
	if (!e)
		return NULL;
	char *s = reg_asprintf("%s%cdigest=%s", location,
			       strchr(location, '?') ? '&' : '?', e);
	free(e);
	return s;
}

/* A PATCH or PUT of the session; takes the new Location of a 202. */
static int
upload_request(struct reg_upload *u, const char *method, const char *url,
	       long long body_len, bool with_body, const char *range,
	       long want, char *err, size_t errlen)
{
	struct berth_reg *r = u->r;
	struct berth_http_headers h;
	berth_http_headers_init(&h);
	if (berth_http_headers_add(&h, "Content-Type",
				   "application/octet-stream") < 0 ||
	    (range && berth_http_headers_add(&h, "Content-Range", range) < 0)) {
		berth_http_headers_fini(&h);
		reg_errf(err, errlen, "out of memory");
		return BERTH_REG_NOMEM;
	}
	struct reg_req q = {
		.method = method,
		.path = url,
		.headers = &h,
		.body_read = with_body ? up_read : NULL,
		.body_read_ud = u,
		.body_read_len = body_len,
		.blob = true,
		.no_retry = true,
		.cancel2 = u->cancel2,
		.cancel2_ud = u->cancel2_ud,
	};
	struct berth_http_response resp;
	int rc = reg_repo_do(r, &q, u->repo, "pull,push",
			     (const long[]){want, 0}, &resp, u->what, err,
			     errlen, NULL);
	if (!rc && want == 202) {
		const char *loc = reg_header(&resp, "Location");
		char *nl = loc && *loc ? reg_resolve(r, loc) : NULL;
		if (!nl) {
			reg_errf(err, errlen,
				 "registry %s: %s: 202 without a Location",
				 r->origin, u->what);
			rc = BERTH_REG_PROTOCOL;
		} else {
			free(u->location);
			u->location = nl;
		}
		/* Range: 0-<last byte received> */
		const char *rg = reg_header(&resp, "Range");
		const char *dash = rg ? strchr(rg, '-') : NULL;
		if (!rc && dash && u->sent > 0 &&
		    strtoll(dash + 1, NULL, 10) != u->sent - 1) {
			reg_errf(err, errlen,
				 "registry %s: %s: the registry has %s of the "
				 "%lld bytes sent",
				 r->origin, u->what, rg, u->sent);
			rc = BERTH_REG_PROTOCOL;
		}
	}
	if (!rc && want == 201) {
		const char *d = reg_header(&resp, "Docker-Content-Digest");
		if (d && berth_reg_is_digest(d) &&
		    strncmp(d, u->digest, 7) == 0 && strcmp(d, u->digest) != 0) {
			char b[32];
			reg_errf(err, errlen,
				 "registry %s: %s: the registry stored digest "
				 "%s",
				 r->origin, u->what, reg_short(d, b));
			rc = BERTH_REG_DIGEST_MISMATCH;
		}
	}
	berth_http_response_fini(&resp);
	berth_http_headers_fini(&h);
	return rc;
}

/* Sends the whole blob into the session u->location: one PUT, or PATCHes
 * of chunk_bytes and an empty PUT. */
int
reg_upload_send(struct reg_upload *u, char *err, size_t errlen)
{
	long long chunk = u->o ? u->o->chunk_bytes : 0;
	int rc = 0;
	if (chunk <= 0) {
		char *url = with_digest(u->location, u->digest);
		if (!url) {
			reg_errf(err, errlen, "out of memory");
			return BERTH_REG_NOMEM;
		}
		u->chunk_left = -1;
		rc = upload_request(u, "PUT", url, u->size, true, NULL, 201,
				    err, errlen);
		free(url);
		return rc;
	}
	for (;;) {
		long long n = chunk;
		if (u->size >= 0) {
			if (u->sent >= u->size)
				break;
			if (n > u->size - u->sent)
				n = u->size - u->sent;
		} else if (u->src_end) {
			break;
		}
		char range[64] = "";
		if (u->size >= 0)
			snprintf(range, sizeof(range), "%lld-%lld", u->sent,
				 u->sent + n - 1);
		u->chunk_left = n;
		char *url = strdup(u->location);
		if (!url) {
			reg_errf(err, errlen, "out of memory");
			return BERTH_REG_NOMEM;
		}
		rc = upload_request(u, "PATCH", url, u->size >= 0 ? n : -1,
				    true, u->size >= 0 ? range : NULL, 202, err,
				    errlen);
		free(url);
		if (rc)
			return rc;
	}
	char *url = with_digest(u->location, u->digest);
	if (!url) {
		reg_errf(err, errlen, "out of memory");
		return BERTH_REG_NOMEM;
	}
	u->chunk_left = 0;
	rc = upload_request(u, "PUT", url, 0, false, NULL, 201, err, errlen);
	free(url);
	return rc;
}

/* ---- a verified source (blob_upload, blob_push) -----------------------------
 *
 * Reads the caller's bytes through a staging buffer, hashes them, and
 * keeps the last byte back until the end is known and the digest (and the
 * size) matched. */
#define VSRC_BUF (64 * 1024)

struct vsrc {
	size_t (*read)(void *ud, char *buf, size_t len);
	void *ud;
	const char *digest;
	long long size;
	struct reg_hash hash;
	long long total;
	char *buf; /* VSRC_BUF bytes: n of them from off */
	size_t off, n;
	bool end;      /* the caller's bytes are all read */
	bool verified; /* ...and matched */
	bool failed;   /* mismatch or abort */
	char got[BERTH_REG_DIGEST_MAX];
	struct berth_reg_throttle *throttle;
	struct berth_reg *r;
};

static bool
handle_cancelled(void *ud)
{
	return reg_cancelled(ud);
}

static size_t
vsrc_read(void *ud, char *out, size_t len)
{
	struct vsrc *v = ud;
	for (;;) {
		if (v->failed)
			return BERTH_HTTP_READ_ABORT;
		size_t can = v->verified ? v->n : (v->n > 0 ? v->n - 1 : 0);
		if (can > 0 || v->verified || len == 0) {
			size_t k = len < can ? len : can;
			memcpy(out, v->buf + v->off, k);
			v->off += k;
			v->n -= k;
			return k;
		}
		if (v->off) {
			memmove(v->buf, v->buf + v->off, v->n);
			v->off = 0;
		}
		if (v->end) {
			reg_hash_final(&v->hash, v->got);
			if (v->size >= 0 && v->total != v->size) {
				snprintf(v->got, sizeof(v->got),
					 "%lld bytes of %lld", v->total,
					 v->size);
				v->failed = true;
			} else if (strcmp(v->got, v->digest) != 0) {
				v->failed = true;
			} else {
				v->verified = true;
			}
			continue;
		}
		size_t want = VSRC_BUF - v->n;
		if (v->size >= 0 && (long long)want > v->size - v->total + 1)
			want = (size_t)(v->size - v->total + 1);
		size_t k = v->read(v->ud, v->buf + v->n, want);
		if (k == BERTH_HTTP_READ_ABORT) {
			v->failed = true;
			return k;
		}
		if (k == 0) {
			v->end = true;
			continue;
		}
		if (k > want) {
			v->failed = true;
			return BERTH_HTTP_READ_ABORT;
		}
		if (v->throttle &&
		    !berth_reg_throttle_take(v->throttle, (long long)k,
					     handle_cancelled, v->r)) {
			v->failed = true;
			return BERTH_HTTP_READ_ABORT;
		}
		reg_hash_update(&v->hash, v->buf + v->n, k);
		v->total += (long long)k;
		v->n += k;
		if (v->size >= 0 && v->total > v->size) {
			snprintf(v->got, sizeof(v->got), "more than %lld bytes",
				 v->size);
			v->failed = true;
		} else if (v->size >= 0 && v->total == v->size) {
			v->end = true; /* a Content-Length upload asks no more */
		}
	}
}

/* a memory source */
struct memsrc {
	const char *p;
	size_t left;
};

static size_t
mem_read(void *ud, char *buf, size_t len)
{
	struct memsrc *m = ud;
	size_t n = len < m->left ? len : m->left;
	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	return n;
}

static bool
cancel_none(void *ud)
{
	(void)ud;
	return false;
}

/* One upload from a verified source into a new session. */
static int
upload_from(struct berth_reg *r, const char *repo, const char *digest,
	    long long size, size_t (*read)(void *ud, char *buf, size_t len),
	    void *ud, const struct berth_reg_copy_options *o,
	    struct berth_reg_throttle *throttle, bool *streamed, char *err,
	    size_t errlen)
{
	*streamed = false;
	struct vsrc v = {
		.read = read,
		.ud = ud,
		.digest = digest,
		.size = size,
		.throttle = throttle,
		.r = r,
	};
	const EVP_MD *md = reg_digest_md(digest);
	v.buf = malloc(VSRC_BUF);
	if (!v.buf || reg_hash_init(&v.hash, md ? md : EVP_sha256())) {
		free(v.buf);
		reg_errf(err, errlen, "out of memory");
		return BERTH_REG_NOMEM;
	}
	char b[32];
	struct reg_upload u = {
		.r = r,
		.repo = repo,
		.digest = digest,
		.size = size,
		.o = o,
		.read = vsrc_read,
		.read_ud = &v,
		.cancel2 = cancel_none,
	};
	snprintf(u.what, sizeof(u.what), "upload blob %s to %.255s",
		 reg_short(digest, b), repo);
	if (size == 0) {
		/* nothing will be read: check the empty digest now */
		char got[BERTH_REG_DIGEST_MAX];
		reg_digest_like(digest, "", 0, got);
		if (strcmp(got, digest) != 0) {
			reg_hash_fini(&v.hash);
			free(v.buf);
			reg_errf(err, errlen,
				 "blob %s of %.255s: digest mismatch: the "
				 "empty content is %s",
				 digest, repo, reg_short(got, b));
			return BERTH_REG_DIGEST_MISMATCH;
		}
	}
	bool mounted = false;
	int rc = reg_upload_open(r, repo, digest, NULL, &mounted, &u.location,
			     err, errlen);
	if (!rc) {
		*streamed = true;
		rc = reg_upload_send(&u, err, errlen);
		if (rc && v.failed && v.got[0] && !reg_cancelled(r)) {
			reg_errf(err, errlen,
				 "blob %s of %.255s: digest mismatch: got %s "
				 "(nothing committed)",
				 digest, repo, v.got);
			rc = BERTH_REG_DIGEST_MISMATCH;
		}
		if (rc)
			reg_upload_cancel(r, repo, u.location);
	}
	reg_hash_fini(&v.hash);
	free(v.buf);
	free(u.location);
	return rc;
}

int
berth_reg_blob_upload(struct berth_reg *r, const char *repo,
		      const char *digest, long long size,
		      size_t (*read)(void *ud, char *buf, size_t len), void *ud,
		      const struct berth_reg_copy_options *o, char *err,
		      size_t errlen)
{
	reg_errf(err, errlen, "%s", "");
	int rc = reg_blob_check_args(repo, digest, err, errlen);
	if (rc)
		return rc;
	if (!read) {
		reg_errf(err, errlen, "blob upload: no read callback");
		return BERTH_REG_INVALID;
	}
	struct berth_reg_throttle *own = NULL;
	struct berth_reg_throttle *t = o ? o->throttle : NULL;
	if (!t && o && o->max_bytes_per_s > 0)
		t = own = berth_reg_throttle_new(o->max_bytes_per_s);
	bool streamed;
	rc = upload_from(r, repo, digest, size < 0 ? -1 : size, read, ud, o, t,
			 &streamed, err, errlen);
	berth_reg_throttle_free(own);
	return rc;
}

int
berth_reg_blob_push(struct berth_reg *r, const char *repo, const void *data,
		    size_t len, const struct berth_reg_copy_options *o,
		    char digest[BERTH_REG_DIGEST_MAX], char *err, size_t errlen)
{
	char d[BERTH_REG_DIGEST_MAX];
	berth_reg_digest_of(data, len, d);
	if (digest)
		snprintf(digest, BERTH_REG_DIGEST_MAX, "%s", d);
	reg_errf(err, errlen, "%s", "");
	int rc = reg_blob_check_args(repo, d, err, errlen);
	if (rc)
		return rc;
	if (!o || !o->no_skip) {
		bool exists = false;
		rc = berth_reg_blob_head(r, repo, d, &exists, NULL, err,
					 errlen);
		if (rc || exists)
			return rc;
	}
	struct berth_reg_throttle *own = NULL;
	struct berth_reg_throttle *t = o ? o->throttle : NULL;
	if (!t && o && o->max_bytes_per_s > 0)
		t = own = berth_reg_throttle_new(o->max_bytes_per_s);
	for (int attempt = 0;; attempt++) {
		struct memsrc m = {.p = data, .left = len};
		bool streamed;
		rc = upload_from(r, repo, d, (long long)len, mem_read, &m, o, t,
				 &streamed, err, errlen);
		if (rc != BERTH_REG_TRANSPORT || !streamed ||
		    attempt >= r->max_retries)
			break;
		if (!reg_sleep(r, reg_backoff(r, attempt, -1), NULL, NULL)) {
			reg_errf(err, errlen, "registry %s: upload: cancelled",
				 r->origin);
			rc = BERTH_REG_CANCELLED;
			break;
		}
	}
	berth_reg_throttle_free(own);
	return rc;
}

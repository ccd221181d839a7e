/* copy.c - the blob copy between two registries (berth/registry.h,
 * berth_reg_blob_copy): a download thread fills a bounded ring buffer that
 * the upload drains, the digest checked on the way, the upload's last byte
 * held back until the download matched; whole-blob retries. */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the copy: a ring buffer between a download thread and the upload ---- */

struct ring {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *buf;
	size_t cap;
	size_t rpos; /* next byte to read */
	size_t len;  /* bytes in the ring */
	/* both sides stop: a failure or a cancel on either */
	atomic_bool abort;
	/* the download's end: done, and its result (0: verified) */
	bool done;
	int prc;
	char perr[640];

	/* download side */
	struct berth_reg *src;
	const char *src_repo;
	const char *digest;
	long long size;
	struct reg_hash hash;
	long long total;
	struct berth_reg_throttle *throttle;
	bool too_long;
	/* upload side */
	struct berth_reg *dst;
};

static bool
ring_aborted(void *ud)
{
	struct ring *g = ud;
	return atomic_load(&g->abort);
}

static void
ring_wait(struct ring *g)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += 100L * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&g->cv, &g->mu, &ts);
}

static bool
throttle_cancel(void *ud)
{
	struct ring *g = ud;
	return atomic_load(&g->abort) || reg_cancelled(g->src);
}

/* the download's body_sink: into the ring (waits while it is full) */
static bool
ring_put(void *ud, const char *data, size_t len)
{
	struct ring *g = ud;
	if (atomic_load(&g->abort))
		return false;
	g->total += (long long)len;
	if (g->size >= 0 && g->total > g->size) {
		g->too_long = true;
		return false;
	}
	reg_hash_update(&g->hash, data, len);
	if (g->throttle &&
	    !berth_reg_throttle_take(g->throttle, (long long)len,
				     throttle_cancel, g))
		return false;
	pthread_mutex_lock(&g->mu);
	while (len > 0) {
		if (atomic_load(&g->abort) || reg_cancelled(g->src)) {
			pthread_mutex_unlock(&g->mu);
			return false;
		}
		size_t space = g->cap - g->len;
		if (space == 0) {
			ring_wait(g);
			continue;
		}
		size_t wpos = (g->rpos + g->len) % g->cap;
		size_t n = len < space ? len : space;
		if (n > g->cap - wpos)
			n = g->cap - wpos;
		memcpy(g->buf + wpos, data, n);
		g->len += n;
		data += n;
		len -= n;
		pthread_cond_broadcast(&g->cv);
	}
	pthread_mutex_unlock(&g->mu);
	return true;
}

/* the upload's source: out of the ring, the last byte held until the
 * download is verified */
static size_t
ring_get(void *ud, char *buf, size_t len)
{
	struct ring *g = ud;
	pthread_mutex_lock(&g->mu);
	size_t n = 0;
	for (;;) {
		if (atomic_load(&g->abort) || (g->done && g->prc)) {
			pthread_mutex_unlock(&g->mu);
			return BERTH_HTTP_READ_ABORT;
		}
		if (reg_cancelled(g->dst)) {
			atomic_store(&g->abort, true);
			pthread_cond_broadcast(&g->cv);
			pthread_mutex_unlock(&g->mu);
			return BERTH_HTTP_READ_ABORT;
		}
		size_t avail = g->done ? g->len : (g->len > 0 ? g->len - 1 : 0);
		if (avail > 0 || g->done) {
			n = len < avail ? len : avail;
			break;
		}
		ring_wait(g);
	}
	size_t first = g->cap - g->rpos;
	if (first > n)
		first = n;
	memcpy(buf, g->buf + g->rpos, first);
	memcpy(buf + first, g->buf, n - first);
	g->rpos = (g->rpos + n) % g->cap;
	g->len -= n;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	return n;
}

static void *
download_main(void *ud)
{
	struct ring *g = ud;
	struct berth_reg *r = g->src;
	char what[440], b[32];
	snprintf(what, sizeof(what), "GET blob %s of %.255s",
		 reg_short(g->digest, b), g->src_repo);
	char err[sizeof(g->perr)] = "";
	struct reg_req q = {
		.method = "GET",
		.body_sink = ring_put,
		.body_sink_ud = g,
		.blob = true,
		.follow_redirects = true,
		.no_retry = true,
		.cancel2 = ring_aborted,
		.cancel2_ud = g,
	};
	struct berth_http_response resp;
	/* the status is checked below, after a body too long */
	int rc = reg_repo_do(r, &q, g->src_repo, "pull", NULL, &resp,
			     what, err, sizeof(err), "/v2/%s/blobs/%s",
			     g->src_repo, g->digest);
	if (g->too_long) {
		reg_errf(err, sizeof(err),
			 "registry %s: blob %s of %.255s: digest "
			 "mismatch: more than the %lld bytes of its "
			 "descriptor",
			 r->origin, g->digest, g->src_repo, g->size);
		rc = BERTH_REG_DIGEST_MISMATCH;
	} else if (!rc && resp.status != 200) {
		rc = reg_status_error(r, &resp, what, err, sizeof(err));
	} else if (!rc) {
		char got[BERTH_REG_DIGEST_MAX];
		reg_hash_final(&g->hash, got);
		if (g->size >= 0 && g->total != g->size) {
			reg_errf(err, sizeof(err),
				 "registry %s: blob %s of %.255s: "
				 "digest mismatch: %lld bytes, its "
				 "descriptor says %lld",
				 r->origin, g->digest, g->src_repo,
				 g->total, g->size);
			rc = BERTH_REG_DIGEST_MISMATCH;
		} else if (strcmp(got, g->digest) != 0) {
			char b2[32];
			reg_errf(err, sizeof(err),
				 "registry %s: blob %s of %.255s: "
				 "digest mismatch: got %s",
				 r->origin, g->digest, g->src_repo,
				 reg_short(got, b2));
			rc = BERTH_REG_DIGEST_MISMATCH;
		}
	}
	berth_http_response_fini(&resp);
	pthread_mutex_lock(&g->mu);
	g->done = true;
	g->prc = rc;
	snprintf(g->perr, sizeof(g->perr), "%s", err);
	if (rc)
		atomic_store(&g->abort, true);
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

/* One attempt of a copy. *transient: a failure worth another attempt
 * (the transfer itself failed on the way). */
static int
copy_once(struct berth_reg *src, const char *src_repo, struct berth_reg *dst,
	  const char *dst_repo, const struct berth_reg_descriptor *d,
	  const struct berth_reg_copy_options *o,
	  struct berth_reg_throttle *throttle, struct berth_reg_copy_stats *st,
	  bool *transient, char *err, size_t errlen)
{
	*transient = false;
	int rc;
	long long size = d->size;
	if (!o->no_skip) {
		bool exists = false;
		rc = berth_reg_blob_head(dst, dst_repo, d->digest, &exists, NULL,
					 err, errlen);
		if (rc)
			return rc;
		if (exists) {
			st->skipped = true;
			return 0;
		}
	}
	if (size == 0) {
		/* an empty blob: nothing to stream (an upload of
		 * Content-Length 0 would never wait for the download) */
		char *body = NULL;
		size_t len = 0;
		rc = berth_reg_blob_read(src, src_repo, d->digest, 0, &body, &len,
					 err, errlen);
		free(body);
		if (!rc) {
			struct berth_reg_copy_options po = *o;
			po.no_skip = true;
			rc = berth_reg_blob_push(dst, dst_repo, "", 0, &po, NULL,
						 err, errlen);
		}
		return rc;
	}
	char *location = NULL;
	bool mounted = false;
	if (!o->no_mount && berth_reg_same_registry(src, dst) &&
	    strcmp(src_repo, dst_repo) != 0) {
		rc = reg_upload_open(dst, dst_repo, d->digest, src_repo, &mounted,
				 &location, err, errlen);
		if (rc)
			return rc;
		if (mounted) {
			st->mounted = true;
			return 0;
		}
	} else {
		rc = reg_upload_open(dst, dst_repo, d->digest, NULL, &mounted,
				 &location, err, errlen);
		if (rc)
			return rc;
	}

	/* the stream */
	struct berth_reg *dl = src == dst ? berth_reg_dup(src) : src;
	struct ring g = {
		.src = dl,
		.src_repo = src_repo,
		.digest = d->digest,
		.size = size,
		.throttle = throttle,
		.dst = dst,
	};
	g.cap = BERTH_REG_COPY_BUFFER;
	if (size > 0 && (unsigned long long)size < g.cap)
		g.cap = (size_t)size + 1;
	g.buf = malloc(g.cap);
	const EVP_MD *md = reg_digest_md(d->digest);
	if (!dl || !g.buf || reg_hash_init(&g.hash, md ? md : EVP_sha256())) {
		if (dl && dl != src)
			berth_reg_free(dl);
		free(g.buf);
		reg_hash_fini(&g.hash);
		reg_upload_cancel(dst, dst_repo, location);
		free(location);
		reg_errf(err, errlen, "out of memory");
		return BERTH_REG_NOMEM;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g.cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&g.mu, NULL);
	atomic_init(&g.abort, false);

	char b[32];
	struct reg_upload u = {
		.r = dst,
		.repo = dst_repo,
		.digest = d->digest,
		.size = size,
		.location = location,
		.o = o,
		.read = ring_get,
		.read_ud = &g,
		.cancel2 = ring_aborted,
		.cancel2_ud = &g,
	};
	snprintf(u.what, sizeof(u.what), "upload blob %s to %.255s",
		 reg_short(d->digest, b), dst_repo);
	pthread_t th;
	int urc;
	char uerr[640] = "";
	if (pthread_create(&th, NULL, download_main, &g) != 0) {
		urc = BERTH_REG_NOMEM;
		reg_errf(err, errlen, "cannot start the download thread");
		reg_upload_cancel(dst, dst_repo, u.location);
		rc = urc;
	} else {
		urc = reg_upload_send(&u, uerr, sizeof(uerr));
		if (urc) {
			atomic_store(&g.abort, true);
			pthread_mutex_lock(&g.mu);
			pthread_cond_broadcast(&g.cv);
			pthread_mutex_unlock(&g.mu);
		}
		pthread_join(th, NULL);
		bool user_cancel = reg_cancelled(src) || reg_cancelled(dst);
		if (user_cancel && (urc || g.prc)) {
			reg_errf(err, errlen,
				 "blob %s from %.255s to %.255s: cancelled",
				 d->digest, src_repo, dst_repo);
			rc = BERTH_REG_CANCELLED;
		} else if (g.prc && g.prc != BERTH_REG_CANCELLED) {
			reg_errf(err, errlen, "%s (source; nothing committed)",
				 g.perr);
			rc = g.prc;
			*transient = rc == BERTH_REG_TRANSPORT;
		} else if (urc) {
			reg_errf(err, errlen, "%s (destination)", uerr);
			rc = urc;
			*transient = rc == BERTH_REG_TRANSPORT;
		} else {
			rc = g.prc;
			if (rc)
				reg_errf(err, errlen, "%s", g.perr);
		}
		if (rc)
			reg_upload_cancel(dst, dst_repo, u.location);
		else
			st->bytes = u.sent;
	}
	pthread_mutex_destroy(&g.mu);
	pthread_cond_destroy(&g.cv);
	reg_hash_fini(&g.hash);
	free(g.buf);
	free(u.location);
	if (dl != src)
		berth_reg_free(dl);
	return rc;
}

static bool
either_cancelled(void *ud)
{
	struct berth_reg **two = ud;
	return reg_cancelled(two[0]) || reg_cancelled(two[1]);
}

int
berth_reg_blob_copy(struct berth_reg *src, const char *src_repo,
		    struct berth_reg *dst, const char *dst_repo,
		    const struct berth_reg_descriptor *d,
		    const struct berth_reg_copy_options *o,
		    struct berth_reg_copy_stats *st, char *err, size_t errlen)
{
	static const struct berth_reg_copy_options defaults;
	struct berth_reg_copy_stats local;
	if (!o)
		o = &defaults;
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	reg_errf(err, errlen, "%s", "");
	long long t0 = berth_http_now_ms();
	if (!d || !src || !dst) {
		reg_errf(err, errlen, "blob copy: no descriptor or registry");
		return BERTH_REG_INVALID;
	}
	int rc = reg_blob_check_args(src_repo, d->digest, err, errlen);
	if (!rc)
		rc = reg_blob_check_args(dst_repo, d->digest, err, errlen);
	if (rc)
		return rc;
	struct berth_reg_throttle *own = NULL;
	struct berth_reg_throttle *t = o->throttle;
	if (!t && o->max_bytes_per_s > 0)
		t = own = berth_reg_throttle_new(o->max_bytes_per_s);
	struct berth_reg *two[2] = {src, dst};
	for (int attempt = 0;; attempt++) {
		bool transient = false;
		rc = copy_once(src, src_repo, dst, dst_repo, d, o, t, st,
			       &transient, err, errlen);
		if (!rc || !transient || attempt >= dst->max_retries)
			break;
		if (!reg_sleep(dst, reg_backoff(dst, attempt, -1),
			       either_cancelled, two)) {
			reg_errf(err, errlen,
				 "blob %s from %.255s to %.255s: cancelled",
				 d->digest, src_repo, dst_repo);
			rc = BERTH_REG_CANCELLED;
			break;
		}
		st->retries++;
	}
	if (rc && st->retries > 0 && err && errlen > 0) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n, " (the blob tried %d times)",
			 st->retries + 1);
	}
	berth_reg_throttle_free(own);
	st->elapsed_ms = berth_http_now_ms() - t0;
	return rc;
}

/* pool.c - REPLICATION's blob copiers: the blobs of one artifact are
 * copied by up to parallel_blobs threads, each with its own pair of
 * registry handles (berth_reg_dup), through berth_reg_blob_copy (which
 * streams, verifies the digest, skips present blobs and mounts within one
 * registry). The run thread meanwhile polls stop, writes the copiers' log
 * lines and checks in; the plugin API is only ever called from it. */
#define _GNU_SOURCE
#include "job.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
repl_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

long long
repl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
repl_poll_stop(struct repl_job *job)
{
	job->last_stop_poll_ms = repl_now_ms();
	if (!atomic_load(&job->stop) && berth_stop_requested(job->ctx))
		atomic_store(&job->stop, true);
	return atomic_load(&job->stop);
}

bool
repl_cancelled(void *ud)
{
	struct repl_job *job = ud;
	if (atomic_load(&job->stop) || atomic_load(&job->abort))
		return true;
	/* the run thread's own requests: poll the host (it may only be
	 * asked from this thread), at most every 100 ms */
	if (pthread_equal(pthread_self(), job->run_thread) &&
	    repl_now_ms() - job->last_stop_poll_ms >= 100)
		return repl_poll_stop(job);
	return false;
}

void
repl_checkin(struct repl_job *job, bool force)
{
	char msg[320];
	long long now = repl_now_ms();
	if (!force && now - job->last_checkin_ms < 1000)
		return;
	job->last_checkin_ms = now;
	pthread_mutex_lock(&job->mu);
	long long bytes = job->bytes;
	for (int i = 0; i < job->n_workers; i++)
		bytes += atomic_load(&job->workers[i].inflight);
	snprintf(msg, sizeof(msg),
		 "{\"artifacts_done\":%zu,\"artifacts\":%zu,\"blobs_done\":%zu,"
		 "\"blobs\":%zu,\"bytes\":%lld,\"skipped_blobs\":%zu,"
		 "\"mounted_blobs\":%zu}",
		 job->artifacts_done, job->artifacts, job->blobs_done,
		 job->blobs, bytes, job->blobs_skipped, job->blobs_mounted);
	pthread_mutex_unlock(&job->mu);
	berth_checkin(job->ctx, msg);
}

/* --- one batch ------------------------------------------------------------ */

struct repl_batch {
	const struct berth_reg_descriptor *const *d;
	size_t n;
	size_t next;    /* next blob to hand out */
	int running;    /* copier threads not finished */
	int rc;         /* first failure */
	char err[1024];
};

/* under job->mu */
static void
push_line(struct repl_job *job, char *line)
{
	if (!line)
		return;
	if (job->n_lines == job->cap_lines) {
		size_t cap = job->cap_lines ? 2 * job->cap_lines : 16;
		char **v = realloc(job->lines, cap * sizeof(*v));
		if (!v) {
			free(line);
			return;
		}
		job->lines = v;
		job->cap_lines = cap;
	}
	job->lines[job->n_lines++] = line;
}

/* The run thread writes the copiers' lines. */
static void
drain_lines(struct repl_job *job)
{
	pthread_mutex_lock(&job->mu);
	char **v = job->lines;
	size_t n = job->n_lines;
	job->lines = NULL;
	job->n_lines = job->cap_lines = 0;
	pthread_mutex_unlock(&job->mu);
	for (size_t i = 0; i < n; i++) {
		berth_log_info(job->ctx, "%s", v[i]);
		free(v[i]);
	}
	free(v);
}

static void
human_size(long long n, char *out, size_t len)
{
	if (n < 0)
		snprintf(out, len, "size unknown");
	else if (n < 1024)
		snprintf(out, len, "%lld B", n);
	else if (n < 1024 * 1024)
		snprintf(out, len, "%.1f KiB", (double)n / 1024);
	else
		snprintf(out, len, "%.1f MiB", (double)n / (1024 * 1024));
}

static char *
blob_line(const struct repl_job *job, const struct berth_reg_descriptor *d,
	  const struct berth_reg_copy_stats *st)
{
	char size[32], *line = NULL;
	int rc;
	human_size(d->size, size, sizeof(size));
	if (st->skipped) {
		rc = asprintf(&line, "blob %s (%s): skipped, the destination "
				     "has it",
			      d->digest, size);
	} else if (st->mounted) {
		rc = asprintf(&line, "blob %s (%s): mounted from %s", d->digest,
			      size, job->p.src.repo);
	} else {
		double s = st->elapsed_ms > 0 ? st->elapsed_ms / 1000.0 : 0.001;
		char retries[40] = "";
		if (st->retries > 0)
			snprintf(retries, sizeof(retries), " after %d "
							   "retr%s",
				 st->retries, st->retries == 1 ? "y" : "ies");
		rc = asprintf(&line, "blob %s (%s): copied in %.2f s, %.1f "
				     "MB/s%s",
			      d->digest, size, s, st->bytes / 1e6 / s, retries);
	}
	return rc < 0 ? NULL : line;
}

static void
on_progress(void *ud, long long bytes)
{
	struct repl_worker *w = ud;
	atomic_store(&w->inflight, bytes);
}

static void *
copier(void *arg)
{
	struct repl_worker *w = arg;
	struct repl_job *job = w->job;
	struct repl_batch *b = job->batch;
	struct berth_reg_copy_options o = {
		.chunk_bytes = job->p.copy_by_chunk ? job->set->chunk_bytes : 0,
		.throttle = job->throttle,
		.progress = on_progress,
		.progress_ud = w,
	};
	for (;;) {
		pthread_mutex_lock(&job->mu);
		if (b->next >= b->n || atomic_load(&job->stop) ||
		    atomic_load(&job->abort)) {
			b->running--;
			pthread_cond_broadcast(&job->cv);
			pthread_mutex_unlock(&job->mu);
			return NULL;
		}
		const struct berth_reg_descriptor *d = b->d[b->next++];
		pthread_mutex_unlock(&job->mu);

		struct berth_reg_copy_stats st;
		char err[1024] = "";
		memset(&st, 0, sizeof(st));
		atomic_store(&w->inflight, 0);
		int rc = berth_reg_blob_copy(w->src, job->p.src.repo, w->dst,
					     job->p.dst.repo, d, &o, &st, err,
					     sizeof(err));
		char *line = rc == BERTH_REG_OK ? blob_line(job, d, &st) : NULL;

		pthread_mutex_lock(&job->mu);
		atomic_store(&w->inflight, 0);
		if (rc == BERTH_REG_OK) {
			job->blobs_done++;
			job->blobs_skipped += st.skipped;
			job->blobs_mounted += st.mounted;
			job->bytes += st.bytes;
			push_line(job, line);
		} else {
			/* the first real failure wins over the
			 * cancellations it causes */
			if (b->rc == BERTH_REG_OK ||
			    (b->rc == BERTH_REG_CANCELLED &&
			     rc != BERTH_REG_CANCELLED)) {
				b->rc = rc;
				repl_err(b->err, sizeof(b->err), "%s", err);
			}
			atomic_store(&job->abort, true);
		}
		pthread_cond_broadcast(&job->cv);
		pthread_mutex_unlock(&job->mu);
	}
}

/* Handles of copier i, made on first use (on the run thread). */
static int
worker_ready(struct repl_job *job, int i)
{
	struct repl_worker *w = &job->workers[i];
	w->job = job;
	if (!w->src)
		w->src = berth_reg_dup(job->src);
	if (!w->dst)
		w->dst = berth_reg_dup(job->dst);
	if (!w->src || !w->dst)
		return -1;
	if (i >= job->n_workers)
		job->n_workers = i + 1;
	return 0;
}

int
repl_copy_blobs(struct repl_job *job,
		const struct berth_reg_descriptor *const *d, size_t n,
		char *err, size_t errlen)
{
	struct repl_batch b;
	int want = job->set->parallel_blobs, started = 0;
	if (n == 0)
		return BERTH_REG_OK;
	if ((size_t)want > n)
		want = (int)n;
	memset(&b, 0, sizeof(b));
	b.d = d;
	b.n = n;
	atomic_store(&job->abort, false);
	job->batch = &b;
	pthread_mutex_lock(&job->mu);
	for (int i = 0; i < want; i++) {
		if (worker_ready(job, i) != 0)
			break;
		b.running++;
		int rc = pthread_create(&job->workers[i].thread, NULL, copier,
					&job->workers[i]);
		if (rc != 0) {
			b.running--;
			break;
		}
		started++;
	}
	pthread_mutex_unlock(&job->mu);
	if (started == 0) {
		job->batch = NULL;
		repl_err(err, errlen, "cannot start a blob copier (out of "
				      "memory or threads)");
		return BERTH_REG_NOMEM;
	}

	/* the run thread: log lines, stop, check-ins, until all are done */
	pthread_mutex_lock(&job->mu);
	while (b.running > 0) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&job->cv, &job->mu, &until);
		pthread_mutex_unlock(&job->mu);
		drain_lines(job);
		repl_poll_stop(job);
		repl_checkin(job, false);
		pthread_mutex_lock(&job->mu);
	}
	pthread_mutex_unlock(&job->mu);
	for (int i = 0; i < started; i++)
		pthread_join(job->workers[i].thread, NULL);
	drain_lines(job);
	job->batch = NULL;
	atomic_store(&job->abort, false);

	if (b.rc == BERTH_REG_OK && b.next < b.n) /* stopped between blobs */
		b.rc = BERTH_REG_CANCELLED;
	if (b.rc == BERTH_REG_CANCELLED && atomic_load(&job->stop))
		repl_err(err, errlen, "stopped");
	else if (b.rc != BERTH_REG_OK)
		repl_err(err, errlen, "%s", b.err);
	return b.rc;
}

void
repl_workers_fini(struct repl_job *job)
{
	for (int i = 0; i < REPL_MAX_PARALLEL; i++) {
		berth_reg_free(job->workers[i].src);
		berth_reg_free(job->workers[i].dst);
		job->workers[i].src = job->workers[i].dst = NULL;
	}
}

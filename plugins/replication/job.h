/* job.h - one REPLICATION run: its handles, its counters and the blob
 * copiers (pool.c) it hands the blobs of an artifact to. */
#ifndef REPL_JOB_H
#define REPL_JOB_H

#include "resource.h"

#include <berth/plugin.h>
#include <berth/registry.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define REPL_MAX_PARALLEL 16

/* The type's settings, read once in init(). */
struct repl_settings {
	int parallel_blobs;       /* 1..REPL_MAX_PARALLEL, default 4 */
	long long chunk_bytes;    /* copy_by_chunk's chunk size */
	long timeout_ms;          /* metadata requests */
	long stall_timeout_ms;    /* blob transfers */
	int max_retries;
	struct berth_http_policy *policy; /* proxies from the environment */
	struct berth_http_tls tls;        /* SSL_CERT_FILE / SSL_CERT_DIR */
};

/* A blob copier thread's pair of handles, kept for the whole run so that
 * its connections are reused from one artifact to the next. */
struct repl_worker {
	struct repl_job *job;
	struct berth_reg *src;
	struct berth_reg *dst;
	_Atomic long long inflight; /* bytes of the blob being copied */
	pthread_t thread;
};

struct repl_job {
	struct berth_job_ctx *ctx; /* the run thread's only */
	const struct repl_settings *set;
	struct repl_params p;
	pthread_t run_thread;
	struct berth_reg *src; /* NULL on the delete path */
	struct berth_reg *dst;
	struct berth_reg_throttle *throttle; /* NULL: unlimited */

	atomic_bool stop;  /* berth_stop_requested() seen by the run thread */
	atomic_bool abort; /* a blob failed: end the other copies */
	long long last_stop_poll_ms;

	/* Counters of the check-in. Under mu while copiers run. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t artifacts, artifacts_done;
	size_t blobs, blobs_done, blobs_skipped, blobs_mounted;
	long long bytes;           /* uploaded by finished copies */
	long long last_checkin_ms;

	/* log lines of the copiers, written by the run thread (the log
	 * service is the run thread's) */
	char **lines;
	size_t n_lines, cap_lines;

	struct repl_worker workers[REPL_MAX_PARALLEL];
	int n_workers;            /* workers with handles */
	struct repl_batch *batch; /* the blobs being copied (pool.c) */
};

long long repl_now_ms(void);
/* snprintf into an error buffer (a sentence cut at errlen is fine). */
void repl_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* berth_reg cancel callback: the job's stop (polled from the run thread
 * at most every 100 ms) or abort flag. */
bool repl_cancelled(void *ud);
/* On the run thread: polls berth_stop_requested() (sets job->stop). */
bool repl_poll_stop(struct repl_job *job);
/* On the run thread: a check-in of the counters when a second has passed
 * since the last one (force: now). */
void repl_checkin(struct repl_job *job, bool force);

/* Copies the n blobs d[] (pointers into manifests the caller keeps) from
 * src_repo to dst_repo on up to parallel_blobs threads, logging each, and
 * checking in on the run thread as they go. BERTH_REG_OK, or the first
 * failure's result with its sentence in err (BERTH_REG_CANCELLED when the
 * job was stopped). */
int repl_copy_blobs(struct repl_job *job,
		    const struct berth_reg_descriptor *const *d, size_t n,
		    char *err, size_t errlen);
/* Frees the copiers' handles (after the last repl_copy_blobs). */
void repl_workers_fini(struct repl_job *job);

#endif /* REPL_JOB_H */

/* hook_internal.h - what the files of the status hook agent share (hook.c:
 * queues, threads, retries, life cycle; hook_send.c: payload, HTTP, ACK;
 * hook_store.c: Redis records, keeper, takeover). Not for other modules:
 * they use hook.h. */
#ifndef BERTH_HOOK_INTERNAL_H
#define BERTH_HOOK_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "hook.h"
#include "redis_conn.h"
#include "tracker.h"
#include "util.h"

#define HOOK_BODY_MAX 4096 /* response bytes kept for the error text */

struct hook_event {
	struct hook_event *next;  /* in its job's queue, by seq */
	char id[25];
	char *job_id;
	char *url;
	char *payload;
	char *status;
	char *check_in;           /* NULL for status events */
	int64_t revision;
	int64_t check_in_at;
	int64_t seq;
	int64_t created_at;       /* epoch ms */
	int64_t first_attempt_at; /* epoch ms, 0 before the first attempt */
	int64_t retry_since;      /* epoch ms of the first failure, or 0 */
	int64_t next_at;          /* epoch ms of the next attempt */
	int attempts;
	bool persisted;           /* the record in Redis is current */
};

struct hook_job {
	struct hook_job *hnext;   /* hash chain */
	struct hook_job *rprev, *rnext; /* ready list */
	char *job_id;
	struct hook_event *head;
	int64_t due;              /* monotonic ms: the head may be attempted */
	size_t heap_idx;          /* in the timer heap, or NO_IDX */
	bool ready;               /* in the ready list */
	bool busy;                /* held by a thread (delivery or keeper) */
};

#define NO_IDX ((size_t)-1)

struct hook_agent {
	/* immutable after hook_agent_new */
	int threads, max_attempts;
	int64_t window_ms;
	long timeout_ms, connect_ms, header_ms;
	double scale;
	struct redis_pool *redis;
	struct tracker *tracker;
	char *ns, *agents_key, *events_key, *track_key;
	char id[25];
	char *http_proxy, *https_proxy, *no_proxy;
	char *ca_file, *ca_dir, *client_cert, *client_key;

	pthread_mutex_t mu;
	pthread_cond_t cv;        /* delivery threads: work, stop */
	pthread_cond_t kcv;       /* keeper: stop */
	struct hook_job **buckets;
	size_t nbuckets, njobs;
	struct hook_job *ready_head, *ready_tail;
	struct hook_job **heap;
	size_t nheap, capheap;
	size_t pending;           /* events in memory */
	bool dirty;               /* some event may be unpersisted */
	char **stale;             /* event ids whose HDEL failed */
	size_t nstale, capstale;
	int64_t last_seq;
	bool started, stopping, stopped, keeper_stop;
	atomic_bool abort;        /* stop deadline passed: end transfers */
	atomic_bool registered;   /* our entry in hook_agents is written */
	pthread_t *tids;
	int ntids;
	pthread_t keeper;
	bool keeper_running;
};

/* One delivery thread's HTTP client (hook_send.c). */
struct hook_http {
	struct hook_agent *agent;
	CURL *curl;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	char body[HOOK_BODY_MAX + 1];
	size_t body_len;
	int64_t sent_ms;     /* monotonic: request fully sent, or 0 */
	bool got_header;     /* a response header line arrived */
	bool header_timeout; /* ended: no response headers in time */
};

/* ---- small helpers ------------------------------------------------------ */

static inline bool
is_empty(const char *s)
{
	return !s || !*s;
}

static inline cJSON *
jm(cJSON *v)
{
	if (!v) {
		fprintf(stderr, "berthd: out of memory (cJSON)\n");
		abort();
	}
	return v;
}

static inline int64_t
json_i64(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v) || !(v->valuedouble > -9.2e18 &&
				     v->valuedouble < 9.2e18))
		return 0;
	return (int64_t)v->valuedouble;
}

static inline const char *
json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- hook.c: events and the per-job queues ----------------------------- */

void hook_event_free(struct hook_event *e);
/* Takes j out of the ready list or the heap. Under a->mu. */
void hook_job_unschedule(struct hook_agent *a, struct hook_job *j);
/* Releases a job the calling thread held (busy): applies the supersede
 * policy and schedules it again; dropped events are chained on *dropped.
 * Under a->mu. */
void hook_job_release_locked(struct hook_agent *a, struct hook_job *j,
			     struct hook_event **dropped);
/* Queues e on its job in seq order and schedules the job; events the
 * supersede policy drops are chained on *dropped. Under a->mu. */
void hook_enqueue_locked(struct hook_agent *a, struct hook_event *e,
			 struct hook_event **dropped);
/* pthread_cond_timedwait until a CLOCK_MONOTONIC time in ms (the agent's
 * condition variables use that clock). */
void hook_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
			  int64_t mono_ms);

/* ---- hook_send.c: payload, HTTP, ACK ------------------------------------ */

/* The StatusChange body of spec 7.2 (Go's byte order). New string. */
char *hook_payload_encode(const struct job_stats *snap, const char *check_in);
/* curl_global_init, once per process. */
void hook_http_global_init(void);
/* A delivery thread's client; on failure h->curl stays NULL and every
 * hook_http_post fails. */
void hook_http_init(struct hook_agent *a, struct hook_http *h);
void hook_http_fini(struct hook_http *h);
/* One POST. 0: HTTP 200; -1: failure (errtxt); -2: ended by the stop
 * deadline. */
int hook_http_post(struct hook_agent *a, struct hook_http *h,
		   const struct hook_event *e, char *errtxt, size_t n);
/* spec 7.4 after an HTTP 200; errors are logged with desc. */
void hook_event_ack(struct hook_agent *a, const struct hook_event *e,
		    const char *desc);
/* spec 7.5: true when the stored ack is at or past e (false on a Redis
 * error). */
bool hook_event_outdated(struct hook_agent *a, const struct hook_event *e);

/* ---- hook_store.c: Redis records, keeper, takeover ---------------------- */

/* HSET our heartbeat (epoch ms, or 0 for "stopped") in hook_agents. */
void hook_register_agent(struct hook_agent *a, int64_t beat);
/* HSET the event's record. 0, or -1 with err (Redis down). */
int hook_event_persist(struct hook_agent *a, const struct hook_event *e,
		       struct berr *err);
/* HDEL the record; on a Redis error the id is retried by the keeper. */
void hook_record_delete(struct hook_agent *a, const char *id);
/* Removes the records of a list of dropped events and frees them. */
void hook_dropped_free(struct hook_agent *a, struct hook_event *list);
/* Writes the records of events Redis refused at submit time. */
void hook_persist_dirty(struct hook_agent *a);
/* Retries the HDELs that failed. */
void hook_retry_stale(struct hook_agent *a);
/* Takes over the events of every agent stopped or silent for 30 s. */
void hook_adopt_orphans(struct hook_agent *a);
/* The keeper thread (pthread_create): heartbeat, late persistence, failed
 * deletes, adoption; runs until a->keeper_stop. */
void *hook_keeper_main(void *arg);

#endif

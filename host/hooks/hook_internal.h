/* hook_internal.h - what the files of the status hook agent share (hook.c:
 * queues, threads, retries, life cycle; hook_host.c: receivers and their
 * circuit breaker; hook_send.c: payload, HTTP, ACK; hook_keeper.c: records,
 * keeper, takeover). Not for other modules: they use hook.h. No Redis here:
 * the records live in store/hook_store.c, the stats and their ACK in the
 * tracker. */
#ifndef BERTH_HOOK_INTERNAL_H
#define BERTH_HOOK_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <berth/http.h>
#include <cjson/cJSON.h>

#include "common/json.h"
#include "common/ticker.h"
#include "common/util.h"
#include "hooks/hook.h"
#include "store/tracker.h"

#define HOOK_BODY_MAX 4096 /* response bytes kept for the error text */

struct hook_host;
struct hook_store;

struct hook_event {
	struct hook_event *next;  /* in its job's queue, by seq */
	/* in the agent's list of queued events, oldest created_at first
	 * (the backlog bounds), while queued (under mu) */
	struct hook_event *gprev, *gnext;
	char id[25];
	char *job_id;
	char *url;
	char *payload;
	char *status;
	char *check_in;           /* NULL for status events */
	char *host_key;           /* hook_host_key(url), set at creation */
	struct hook_host *host;   /* its receiver, while queued (under mu) */
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
	struct hook_job *rprev, *rnext; /* ready list or a parked list */
	char *job_id;
	struct hook_event *head;
	int64_t due;              /* monotonic ms: the head may be attempted */
	size_t heap_idx;          /* in the timer heap, or NO_IDX */
	struct hook_host *parked; /* in this host's parked list, or NULL */
	bool ready;               /* in the ready list */
	bool busy;                /* held by a thread (delivery or keeper) */
};

/* One receiver, scheme://host:port (hook_host.c). Exists while events
 * for it are queued. */
struct hook_host {
	struct hook_host *hnext;  /* hash chain */
	char *key;
	size_t nevents;           /* queued events whose URL is here */
	int inflight;             /* attempts running */
	bool degraded;            /* the last attempt got no HTTP answer */
	struct hook_job *parked_head, *parked_tail; /* wait for the probe */
	size_t nparked;
};

#define NO_IDX ((size_t)-1)

struct hook_agent {
	/* immutable after hook_agent_new */
	int threads, max_attempts;
	int64_t window_ms;
	size_t max_pending;       /* backlog bounds (see Backlog in hook.c) */
	int64_t max_age_ms;
	long timeout_ms, connect_ms, header_ms;
	double scale;
	struct hook_store *store;  /* our records and the agent registry */
	struct tracker *tracker;  /* the stats: ACK and its read */
	struct tracker *own_tracker; /* made by hook_agent_new, or NULL */
	char id[25];
	struct berth_http_policy *policy; /* proxies from the environment */
	struct berth_http_tls tls;        /* CA store, client certificate */

	pthread_mutex_t mu;
	pthread_cond_t cv;        /* delivery threads: work, stop (monotonic) */
	pthread_cond_t done_cv;   /* a delivery thread ended (monotonic) */
	struct ticker keeper_tick; /* the keeper's waits; stopped at stop */
	struct hook_job **buckets;
	size_t nbuckets, njobs;
	struct hook_job *ready_head, *ready_tail;
	struct hook_job **heap;
	size_t nheap, capheap;
	struct hook_host **hosts; /* hash table (hook_host.c) */
	size_t nhbuckets, nhosts;
	size_t pending;           /* events in memory */
	struct hook_event *oldest, *newest; /* every queued event (gprev) */
	size_t unlogged[3];       /* given up by the bounds, not yet logged */
	int64_t trim_logged_ms;   /* monotonic ms of the last such log */
	bool dirty;               /* some event may be unpersisted */
	char **stale;             /* event ids whose HDEL failed */
	size_t nstale, capstale;
	int64_t last_seq;
	bool started, stopping, stopped;
	int running;              /* delivery threads not yet ended */
	atomic_bool abort;        /* stop deadline passed: end transfers */
	atomic_bool registered;   /* our entry in hook_agents is written */
	pthread_t *tids;
	int ntids;
	pthread_t keeper;
	bool keeper_running;
};

/* One delivery thread's HTTP client (hook_send.c): a berth_http client
 * whose connections are kept alive between the thread's attempts. */
struct hook_http {
	struct hook_agent *agent;
	struct berth_http_client *client; /* NULL: could not be created */
};

/* What one POST came to (hook_http_post). */
enum hook_post {
	HOOK_POST_OK = 0,         /* HTTP 200 */
	HOOK_POST_REFUSED = -1,   /* answered with another status (errtxt) */
	HOOK_POST_ABORTED = -2,   /* ended by the stop deadline */
	HOOK_POST_NO_ANSWER = -3, /* no HTTP answer (errtxt): connect, TLS
				   * or transfer error, timeout, no response
				   * headers in time */
};

/* ---- small helpers ------------------------------------------------------ */

/* FNV-1a. */
static inline uint64_t
hook_str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* ---- hook.c: events and the per-job queues ----------------------------- */

void hook_event_free(struct hook_event *e);
/* Appends j to the ready list (no wake-up). Under a->mu. */
void hook_ready_push_locked(struct hook_agent *a, struct hook_job *j);
/* Takes j out of the ready list, the heap or its parked list. Under
 * a->mu. */
void hook_job_unschedule(struct hook_agent *a, struct hook_job *j);
/* Releases a job the calling thread held (busy): applies the supersede
 * policy and schedules it again; dropped events are chained on *dropped.
 * Under a->mu. */
void hook_job_release_locked(struct hook_agent *a, struct hook_job *j,
			     struct hook_event **dropped);
/* Queues e (host_key set) on its job in seq order and schedules the job;
 * events the supersede policy drops are chained on *dropped. Under
 * a->mu. */
void hook_enqueue_locked(struct hook_agent *a, struct hook_event *e,
			 struct hook_event **dropped);

/* Gives up the oldest events beyond max_pending and those older than
 * max_age (never one of a job a thread holds): removes them from their
 * queues, their records from Redis, counts and logs them. Called by
 * submit and by the keeper every second. */
void hook_trim_backlog(struct hook_agent *a);

/* ---- hook_host.c: receivers and their circuit breaker ------------------- */

/* What an admitted attempt came to, for its receiver's state. */
enum hook_reach {
	HOOK_REACH_NONE,     /* no verdict: not sent, or ended by the stop */
	HOOK_REACH_ANSWERED, /* an HTTP answer, whatever its status */
	HOOK_REACH_SILENT,   /* no HTTP answer (HOOK_POST_NO_ANSWER) */
};

/* A receiver's breaker changing state after an attempt. */
enum hook_host_change {
	HOOK_HOST_SAME,
	HOOK_HOST_DEGRADED,  /* it stopped answering */
	HOOK_HOST_RECOVERED, /* it answers again */
};

/* "scheme://host:port" of url (lowercase, default port filled in; the
 * proxy plays no part); the url itself when libcurl cannot parse it. New
 * string. */
char *hook_host_key(const char *url);
/* Ties a queued event to its receiver (e->host), creating the entry.
 * Under a->mu. */
void hook_host_ref_locked(struct hook_agent *a, struct hook_event *e);
/* Unties an event leaving its queue; the entry goes with its last event.
 * Under a->mu. */
void hook_host_unref_locked(struct hook_agent *a, struct hook_event *e);
/* Before attempting the head of j (taken off the ready list): true when
 * the attempt may start (counted in flight), false when j was parked
 * instead. Under a->mu. */
bool hook_host_admit_locked(struct hook_job *j);
/* Takes j out of its host's parked list (no-op when not parked). Under
 * a->mu. */
void hook_host_unpark_locked(struct hook_job *j);
/* After an admitted attempt to h: updates the breaker and moves the jobs
 * it lets go to the ready list (waking threads). Under a->mu. */
enum hook_host_change hook_host_done_locked(struct hook_agent *a,
					    struct hook_host *h,
					    enum hook_reach r);
/* When h is degraded and nothing runs there, moves its oldest parked job
 * to the ready list to be the next probe. done_locked does this after
 * each attempt; call it too when a job may have been released as that
 * probe and its head event no longer goes to h (dropped, or an older
 * event queued in front of it), else the parked jobs would wait for a
 * probe that never comes. A job released too many is parked again.
 * NULL-safe. Under a->mu. */
void hook_host_kick_locked(struct hook_agent *a, struct hook_host *h);
/* Frees every entry (hook_agent_free). */
void hook_hosts_free(struct hook_agent *a);

/* ---- hook_send.c: payload, HTTP, ACK ------------------------------------ */

/* The StatusChange body of spec 7.2 (Go's byte order). New string. */
char *hook_payload_encode(const struct job_stats *snap, const char *check_in);
/* libcurl's global setup, once per process. */
void hook_http_global_init(void);
/* A delivery thread's client; on failure h->client stays NULL and every
 * hook_http_post fails (HOOK_POST_NO_ANSWER). */
void hook_http_init(struct hook_agent *a, struct hook_http *h);
void hook_http_fini(struct hook_http *h);
/* One POST: an enum hook_post (errtxt on failure). */
int hook_http_post(struct hook_agent *a, struct hook_http *h,
		   const struct hook_event *e, char *errtxt, size_t n);
/* spec 7.4 after an HTTP 200 (tracker_ack); errors are logged with
 * desc. */
void hook_event_ack(struct hook_agent *a, const struct hook_event *e,
		    const char *desc);
/* spec 7.5: true when the stored ack (tracker_read_ack) is at or past e
 * (false on a Redis error). */
bool hook_event_outdated(struct hook_agent *a, const struct hook_event *e);

/* ---- hook_keeper.c: records, keeper, takeover --------------------------- */

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
 * deletes, adoption; runs until a->keeper_tick is stopped. */
void *hook_keeper_main(void *arg);

#endif

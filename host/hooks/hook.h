/* hook.h - the status hook agent (spec 7): delivers every status change and
 * check-in of a job to its `web_hook_url` as the StatusChange payload of
 * spec 7.2, built from an immutable snapshot.
 *
 * Beyond Harbor: the first attempt does not run on the worker thread. Events
 * are handed to a dedicated agent (its own threads and libcurl handles), so
 * a slow or dead receiver never stalls job processing, while events of one
 * job are delivered in order. A receiver (scheme://host:port) that stops
 * answering gets one attempt at a time until it answers again, so it
 * cannot hold the threads that deliver hooks to the others. Pending events
 * are also written to Redis so a restart does not lose them (keys
 * documented in store/hook_store.c and the README; Go instances never read
 * them). Every 200 answer, first attempt or retry, runs the ACK script
 * (spec 7.4; Go ACKs first attempts only and leaves the rest to the
 * reaper). Failed deliveries are retried with the spec's exponential
 * back-off, and every event gives up after a bound, so a deleted task
 * cannot cause an endless retry storm. */
#ifndef BERTH_HOOK_H
#define BERTH_HOOK_H

#include <stddef.h>
#include <stdint.h>

#include "store/tracker.h"

struct hook_agent;
struct redis_pool;

/* Zero or negative values take the defaults in brackets. */
struct hook_agent_config {
	int threads;            /* delivery threads (the worker count) [1] */
	int max_attempts;       /* bound per event (retries included) [10] */
	int retry_window_s;     /* give up after this long (spec 7.5) [300] */
	int timeout_ms;         /* whole attempt (spec 7.3: 30 s) [30000] */
	int connect_timeout_ms; /* TCP + TLS connect [10000] */
	int header_timeout_ms;  /* request sent -> response headers (spec 7.3:
				 * 10 s) [10000] */
	double retry_scale;     /* multiplies every back-off wait (not the
				 * window); [1] (berth.hooks.retry_scale) */
	int max_pending;        /* events kept; beyond, the oldest are given
				 * up [100000] (berth.hooks.max_pending) */
	int max_age_s;          /* an event older (from its creation) is
				 * given up [3600] (berth.hooks.max_age_seconds) */
};

/* redis holds the agent's pending events (store/hook_store.c); the ACK
 * and its read go through tracker (NULL: the agent makes its own on redis
 * and ns, for tests). */
struct hook_agent *hook_agent_new(const struct hook_agent_config *cfg,
				  struct redis_pool *redis, const char *ns,
				  struct tracker *tracker);
/* Starts the threads and re-queues events persisted by a previous run. */
int hook_agent_start(struct hook_agent *a, struct berr *err);
/* Delivers what is due for up to deadline_ms (events waiting for a retry
 * are not waited for), then stops; a transfer still running at the
 * deadline is ended. Undelivered events stay persisted in Redis and the
 * agent is marked stopped there, so the next start takes them over at
 * once. Idempotent. */
void hook_agent_stop(struct hook_agent *a, int deadline_ms);
/* Stops (deadline 0) if needed and frees. NULL-safe. Unset the tracker's
 * event fn first. */
void hook_agent_free(struct hook_agent *a);

/* Queues one event (copies snap; the payload is built here). No-op when
 * snap has no web_hook_url. Writes the event to Redis on the calling
 * thread (one HSET; kept in memory if Redis is down) and never waits for
 * the receiver. Matches tracker_event_fn, so it plugs into
 * tracker_set_event_fn. */
void hook_agent_submit(void *agent, const struct job_stats *snap,
		       const char *check_in);

/* Events queued or being retried (for metrics and tests). */
size_t hook_agent_pending(struct hook_agent *a);

/* The agent's id (hex24): its events live in <ns>:berth:hook_events:<id>. */
const char *hook_agent_id(const struct hook_agent *a);

#endif

/* metrics.h - process-wide counters and gauges, exposed in the Prometheus
 * text format 0.0.4 (spec 14.1) on `metric.port` / `metric.path` when
 * `metric.enabled`. Every recording function is thread-safe and cheap
 * (atomics or a short mutex); modules call them unconditionally, whether
 * or not a listener runs. Names exported:
 *
 * Harbor's (prefix <METRIC_NAMESPACE>_<METRIC_SUBSYSTEM>_, i.e.
 * berth.metrics.namespace / .subsystem; when unset the installer values
 * are used, harbor / jobservice; an empty value omits that part):
 *   info{node,pool,workers}                         gauge 1
 *   task_total{status,type}  (status success|fail|stop)    counter
 *   task_process_time_seconds{status,type}          summary (quantiles
 *                             0.5, 0.9, 0.99 over the last 10 min, _sum,
 *                             _count), seconds from fetch to finish
 * Berth's own (prefix berth_):
 *   queue_length{type}, queue_latency_seconds{type}   gauges read from Redis
 *                             at scrape time, as Harbor's dashboard does
 *                             (known_jobs, LLEN, LINDEX -1 -> now - t)
 *   jobs_running{type}                                gauge
 *   job_retries_total{type}                           counter
 *   hooks_delivered_total, hooks_failed_total,
 *   hooks_dropped_total{reason} (retry_bound, backlog,
 *                             expired: events given up)  counters
 *   hooks_pending                                     gauge
 *   reaper_actions_total{action}  (hdel, error, refire, apply_ack,
 *                             retry_status)           counter
 *   dead_jobs (ZCARD NS:dead at scrape time)          gauge
 *   dead_trimmed_total (members trimmed off NS:dead by
 *                       berth.dead_max_jobs / _age_seconds) counter
 *   redis_up (1/0: the last dial succeeded / a context was dropped after
 *             an error), redis_errors_total (failed dials and contexts
 *             dropped after an error, from redis_conn.c)   gauge/counter
 * Label values longer than 200 bytes are cut; at most 2048 label sets are
 * kept per family (later ones are not recorded, with one warning).
 *
 * The totals of task_total by status, of the runs started and of the jobs
 * submitted (metrics_counts_read) also feed the per-minute history of
 * metrics_history.h; the runs started and the jobs submitted are not
 * exported here. */
#ifndef BERTH_METRICS_H
#define BERTH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct berth_config;
struct plugin_registry;
struct redis_pool;

/* A finished run of a job of `type`: status "success", "fail" or "stop";
 * seconds = process time (spec 14.1). */
void metrics_task_done(const char *type, const char *status, double seconds);
/* Same, seconds = now - started_ms (util_monotonic_ms at the start). */
void metrics_task_done_since(const char *type, const char *status,
			     int64_t started_ms);
/* A run of a job of `type` starts (delta +1; also counted among the runs
 * started, see metrics_counts) or ends (-1). */
void metrics_job_running(const char *type, int delta);
/* n jobs accepted by this daemon's submit routes (POST /api/v1/jobs,
 * Generic and Scheduled, and the accepted items of the batch route). */
void metrics_jobs_submitted(uint64_t n);
void metrics_job_retry(const char *type);
void metrics_hook_delivered(void);
void metrics_hook_failed(void);
/* Why a status hook event was given up (label reason of
 * hooks_dropped_total). */
enum metrics_hook_drop {
	METRICS_HOOK_DROP_RETRY_BOUND, /* "retry_bound": max_attempts or the
					* retry window */
	METRICS_HOOK_DROP_BACKLOG,     /* "backlog": over max_pending */
	METRICS_HOOK_DROP_EXPIRED,     /* "expired": older than max_age */
	METRICS_HOOK_DROP_N,
};
void metrics_hook_dropped(enum metrics_hook_drop reason);
void metrics_hooks_pending(int64_t n);
void metrics_reaper_action(const char *action);
/* Same, counting n actions at once (n = 0 is a no-op). */
void metrics_reaper_action_add(const char *action, uint64_t n);
/* n members trimmed off NS:dead by its bound (dead_trimmed_total). */
void metrics_dead_trimmed(uint64_t n);
void metrics_redis_state(int up);
void metrics_redis_error(void);

/* The running totals of this process the per-minute history
 * (metrics_history.h) is derived from. */
struct metrics_counts {
	uint64_t submitted; /* metrics_jobs_submitted */
	uint64_t started;   /* runs started: metrics_job_running(+1) */
	uint64_t success;   /* runs finished, task_total by status: */
	uint64_t error;     /* "success", "fail" (status Error), */
	uint64_t stopped;   /* "stop" (Stopped) */
};
/* The totals now: task_total and the runs started summed over the job
 * types (under the families' mutex: a few dozen series). */
void metrics_counts_read(struct metrics_counts *out);

/* --- the exposition ------------------------------------------------------ */

/* One job type's queue, read at scrape time. */
struct metrics_queue_stat {
	const char *type;
	int64_t length;
	double latency_seconds; /* now - t of the oldest message; 0 if empty */
};

/* What a scrape adds to the recorded values. NULL node/pool: no info
 * family; queues may be NULL (n_queues 0): no queue families. */
struct metrics_scrape {
	const char *prefix; /* Harbor's prefix, e.g. "harbor_jobservice_" */
	const char *node;
	const char *pool;
	int workers;
	const struct metrics_queue_stat *queues;
	size_t n_queues;
	/* ZCARD NS:dead (dead_jobs), when has_dead */
	bool has_dead;
	int64_t dead_jobs;
};

/* The whole exposition text (HELP and TYPE before each family, families
 * without samples left out, label sets sorted). New string. */
char *metrics_render(const struct metrics_scrape *s);

/* The Harbor prefix from the namespace and subsystem parts (see above;
 * berth.metrics.namespace / .subsystem, env METRIC_NAMESPACE /
 * METRIC_SUBSYSTEM; NULL means the default part, "" omits it), "" or
 * ending with '_'. Fails when a part is not a valid metric name part
 * ([a-zA-Z_:][a-zA-Z0-9_:]*). *out is a new string. */
int metrics_prefix_make(const char *ns, const char *sub, char **out,
			struct berr *err);

/* Text of a label value in the exposition format: '\\', '"' and newline
 * escaped, invalid UTF-8 bytes replaced by U+FFFD. New string. */
char *metrics_escape_label(const char *value);

/* --- the listener --------------------------------------------------------- */

struct metrics_server;

/* When cfg->metric_enabled: starts a civetweb listener (its own 2 threads)
 * on cfg->listen_address:cfg->metric_port serving GET/HEAD
 * cfg->metric_path (other paths 404, other methods 405), no auth, no TLS.
 * cfg->metric_port may be 0 (a free port: BERTH_METRICS_PORT=0 in tests);
 * cfg->metrics_port_file, when set, gets the bound port. Logs "metrics
 * listening on <addr>:<port>".
 * ns is "{namespace}"; plugins (may be NULL) adds the loaded job types to
 * the queue families; pool_id labels the info gauge, whose node is
 * <hostname>:<first non-loopback IPv4> (a hex24 when unknown).
 * Returns the server; NULL with err->msg set on failure; NULL with
 * err->msg empty when metrics are disabled (nothing started). */
struct metrics_server *metrics_server_start(const struct berth_config *cfg,
					    struct redis_pool *redis,
					    const char *ns,
					    struct plugin_registry *plugins,
					    const char *pool_id,
					    struct berr *err);
/* The bound port. */
int metrics_server_port(const struct metrics_server *s);
/* Stops the listener and frees the server. NULL-safe. */
void metrics_server_stop(struct metrics_server *s);

#endif

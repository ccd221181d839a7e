/* metrics.h - process-wide counters and gauges, exposed in the Prometheus
 * text format (spec 14.1) on `metric.port` / `metric.path` when
 * `metric.enabled`. Every function is thread-safe and cheap (atomics or a
 * short mutex); modules call them unconditionally. Names exported:
 *
 * Harbor's (prefix <METRIC_NAMESPACE>_<METRIC_SUBSYSTEM>_, default
 * harbor_jobservice_):
 *   info{node,pool,workers}                              gauge 1
 *   task_total{type,status}        (status success|fail|stop)  counter
 *   task_process_time_seconds{type,status}                   gauge
 * Berth's own (prefix berth_):
 *   queue_length{type}, queue_latency_seconds{type}   gauges read from Redis
 *                                                   at scrape time
 *   jobs_running{type}                                gauge
 *   job_retries_total{type}                           counter
 *   hooks_delivered_total, hooks_failed_total,
 *   hooks_dropped_total (gave up at the bound), hooks_pending    counters/gauge
 *   reaper_actions_total{action}                      counter
 *   redis_up (1/0), redis_errors_total                gauge/counter */
#ifndef BERTH_METRICS_H
#define BERTH_METRICS_H

#include <stdint.h>

/* A finished run of a job of `type`: status "success", "fail" or "stop";
 * seconds = process time (spec 14.1). */
void metrics_task_done(const char *type, const char *status, double seconds);
void metrics_job_running(const char *type, int delta);
void metrics_job_retry(const char *type);
void metrics_hook_delivered(void);
void metrics_hook_failed(void);
void metrics_hook_dropped(void);
void metrics_hooks_pending(int64_t n);
void metrics_reaper_action(const char *action);
void metrics_redis_state(int up);
void metrics_redis_error(void);

#endif

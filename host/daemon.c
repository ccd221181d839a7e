/* daemon.c - start-up and shutdown order of berthd; see daemon.h. */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/http.h"
#include "store/heartbeat.h"
#include "hooks/hook.h"
#include "logs/joblog.h"
#include "metrics/metrics.h"
#include "metrics/metrics_history.h"
#include "periodic/period.h"
#include "engine/reaper.h"
#include "store/keys.h"
#include "logs/log.h"
#include "store/queue.h"
#include "store/scripts.h"
#include "common/secret.h"
#include "store/tracker.h"
#include "engine/worker.h"

#define REDIS_CONNECT_TIMEOUT_MS 5000
#define REDIS_COMMAND_TIMEOUT_MS 10000
#define REDIS_START_TRIES 10

int
berthd_reload_plugins(struct berthd *d, struct berr *err)
{
	pthread_mutex_lock(&d->reload_lock);
	int rc = plugin_registry_load(d->plugins, d->manifest_path,
				      d->plugin_dir_override, d->strict, err);
	if (rc == 0 && d->heartbeat)
		heartbeat_refresh(d->heartbeat);
	/* messages of newly loaded types left by dead pools run now */
	if (rc == 0 && d->workers)
		worker_pool_recover_now(d->workers);
	pthread_mutex_unlock(&d->reload_lock);
	return rc;
}

/* The password is kept: core's dashboard needs it to connect (spec 2.12). */
static char *
public_redis_url(const struct berth_config *cfg, const struct redis_target *t)
{
	if (strcmp(cfg->redis_url, "embedded") == 0)
		return xasprintf("unix://%s", t->path);
	return xstrdup(cfg->redis_url);
}

/* spec 1.1 step 13: PING up to 10 times, sleeping 5, 6, ... 14 s. */
static int
wait_for_redis(struct berthd *d, const char *what, struct berr *err)
{
	for (int i = 0; i < REDIS_START_TRIES; i++) {
		if (redis_ping(d->redis, err) == 0)
			return 0;
		if (i + 1 == REDIS_START_TRIES || d->stopping)
			break;
		log_warn("redis %s not reachable (%s); retry %d/%d in %d s",
			 what, err->msg, i + 1, REDIS_START_TRIES - 1, 5 + i);
		for (int s = 0; s < 5 + i && !d->stopping; s++)
			util_sleep_ms(1000);
	}
	return -1;
}

static int
start_redis(struct berthd *d, struct berr *err)
{
	struct berth_config *cfg = d->cfg;
	struct redis_target t;
	redis_target_init(&t);
	if (strcmp(cfg->redis_url, "embedded") == 0) {
		if (embedded_redis_start(cfg->redis_server, cfg->data_dir,
					 cfg->redis_appendfsync, &d->embedded,
					 &t, err) < 0)
			return -1;
		log_info("embedded redis-server on unix socket %s", t.path);
	} else if (redis_url_parse(cfg->redis_url, &t, err) < 0) {
		return -1;
	}
	if (t.idle_timeout_seconds < 0) /* the URL's value wins (spec 11.3) */
		t.idle_timeout_seconds = (int)cfg->idle_timeout_second;
	d->redis_url_public = public_redis_url(cfg, &t);
	d->redis = redis_pool_new(&t, REDIS_CONNECT_TIMEOUT_MS,
				  REDIS_COMMAND_TIMEOUT_MS);
	const char *what = t.sentinel ? redis_pool_describe(d->redis)
			   : t.unix_socket ? t.path : t.host;
	if (wait_for_redis(d, what, err) < 0)
		return -1;
	return 0;
}

/* spec 11.4: berth.max_job_duration_seconds (MAX_JOB_DURATION_SECONDS),
 * else max_update_hours * 3600 (an integer: Berth fixes quirk Q12). */
static int64_t
max_job_duration(const struct berth_config *cfg)
{
	if (cfg->max_job_duration_seconds > 0)
		return cfg->max_job_duration_seconds;
	return (int64_t)cfg->max_update_hours * 3600;
}

/* The lowest level any job logger wants. */
static int
job_log_level(const struct berth_config *cfg)
{
	int lvl = BLOG_FATAL;
	for (size_t i = 0; i < cfg->n_job_loggers; i++)
		if (cfg->job_loggers[i].level < lvl)
			lvl = cfg->job_loggers[i].level;
	return lvl;
}

int
berthd_start(struct berthd *d, struct berth_config *cfg,
	     const struct berthd_options *opts, struct berr *err)
{
	d->cfg = cfg;
	pthread_mutex_init(&d->reload_lock, NULL);
	d->manifest_path = cfg->manifest;
	d->plugin_dir_override = opts->plugin_dir ? opts->plugin_dir
						  : cfg->plugin_dir;
	d->strict = opts->strict;
	d->ns = key_namespace_prefix(cfg->namespace_);

	if (util_mkdir_p(cfg->data_dir, 0700) < 0) {
		berr_set(err, "cannot create data directory %s: %s",
			 cfg->data_dir, strerror(errno));
		goto fail;
	}
	char *secret_path = NULL;
	if (secret_resolve(cfg->data_dir, &d->core_secret, &secret_path,
			   err) < 0)
		goto fail;
	if (secret_path)
		log_info("CORE_SECRET is not set: clients must send "
			 "'Authorization: Harbor-Secret <secret>' with the "
			 "secret stored in %s",
			 secret_path);
	free(secret_path);

	if (start_redis(d, err) < 0)
		goto fail;
	if (heartbeat_migrate_schema(d->redis, d->ns, err) < 0)
		log_warn("schema version check failed: %s", err->msg);

	d->plugins = plugin_registry_new();
	plugin_registry_set_config(d->plugins, cfg);
	char *copies = util_path_join(cfg->data_dir, "plugin-copies");
	plugin_registry_set_copy_dir(d->plugins, copies);
	free(copies);
	if (plugin_registry_load(d->plugins, d->manifest_path,
				 d->plugin_dir_override, d->strict, err) < 0)
		goto fail;

	d->joblog = joblog_new(cfg);
	if (joblog_start_sweepers(d->joblog, err) < 0)
		goto fail;

	if (scripts_load_all(d->redis, err) < 0)
		goto fail;
	d->tracker = tracker_new(d->redis, d->ns);
	d->queue = queue_new(d->redis, d->ns);
	struct hook_agent_config hc = {
		.threads = cfg->workers > 0 ? cfg->workers : 10,
		.max_attempts = cfg->hook_max_attempts,
		.retry_window_s = cfg->hook_retry_window_seconds,
		.max_pending = cfg->hook_max_pending,
		.max_age_s = cfg->hook_max_age_seconds,
		.retry_scale = cfg->hook_retry_scale,
	};
	d->hooks = hook_agent_new(&hc, d->redis, d->ns, d->tracker);
	tracker_set_event_fn(d->tracker, hook_agent_submit, d->hooks);
	if (hook_agent_start(d->hooks, err) < 0)
		goto fail;

	d->heartbeat = heartbeat_new(d->redis, d->ns, d->plugins,
				     cfg->workers);
	if (heartbeat_start(d->heartbeat, err) < 0)
		goto fail;

	/* before the workers: every run of this daemon is counted */
	struct metrics_counts base;
	metrics_counts_read(&base);
	d->history = metrics_history_new(util_now(), &base);
	if (metrics_history_start(d->history, err) < 0)
		goto fail;

	size_t n_ids = 0;
	const char *const *ids = heartbeat_worker_ids(d->heartbeat, &n_ids);
	struct worker_pool_config wc = {
		.workers = (int)n_ids,
		.pool_id = heartbeat_pool_id(d->heartbeat),
		.worker_ids = ids,
		.shutdown_grace_seconds = cfg->shutdown_grace_seconds,
		.stop_grace_seconds = cfg->stop_grace_seconds,
		.max_job_duration_seconds = max_job_duration(cfg),
		.job_log_level = job_log_level(cfg),
		.joblog = d->joblog,
		.dead_max_jobs = cfg->dead_max_jobs,
		.dead_max_age_seconds = cfg->dead_max_age_seconds,
	};
	d->workers = worker_pool_new(&wc, d->redis, d->ns, d->plugins,
				     d->tracker, d->queue);
	if (worker_pool_start(d->workers, err) < 0)
		goto fail;

	d->period = period_new(d->redis, d->ns, d->tracker, d->queue,
			       d->plugins);
	if (period_start(d->period, err) < 0)
		goto fail;
	d->reaper = reaper_new(d->redis, d->ns, d->tracker, d->hooks,
			       cfg->max_update_hours);
	reaper_set_interval(d->reaper, cfg->reaper_interval_seconds);
	reaper_set_dead_bound(d->reaper, d->queue, cfg->dead_max_jobs,
			      cfg->dead_max_age_seconds);
	if (reaper_start(d->reaper, err) < 0)
		goto fail;
	if (cfg->metric_enabled) {
		d->metrics = metrics_server_start(cfg, d->redis, d->ns,
						  d->plugins,
						  heartbeat_pool_id(d->heartbeat),
						  err);
		if (!d->metrics)
			goto fail;
	}

	d->api = api_server_start(d, err);
	if (!d->api)
		goto fail;
	if (opts->port_file &&
	    util_write_port_file(opts->port_file, api_server_port(d->api),
				 err) < 0)
		goto fail;
	if (cfg->port == 0) {
		/* a free port: berthctl finds it here */
		char *pf = util_path_join(cfg->data_dir, "api_port");
		if (util_write_port_file(pf, api_server_port(d->api), err) < 0) {
			log_warn("%s", err->msg);
			berr_clear(err);
		}
		free(pf);
	}
	return 0;
fail:
	berthd_stop(d);
	return -1;
}

void
berthd_stop(struct berthd *d)
{
	d->stopping = true;
	api_server_stop(d->api);
	d->api = NULL;
	metrics_history_free(d->history); /* read by the API only */
	d->history = NULL;
	metrics_server_stop(d->metrics);
	d->metrics = NULL;
	period_stop(d->period);
	reaper_stop(d->reaper);
	size_t abandoned = 0;
	if (d->workers) {
		worker_pool_stop(d->workers);
		abandoned = worker_pool_abandoned(d->workers);
	}
	worker_pool_free(d->workers);
	d->workers = NULL;
	heartbeat_stop(d->heartbeat);
	if (d->hooks)
		hook_agent_stop(d->hooks, 5000);
	if (abandoned > 0) {
		/* a plugin is still inside run(): its code, the registry and
		 * the connections must outlive it, so they are left to the
		 * process exit instead of being freed under it */
		log_warn("%zu job(s) still running at exit; their messages stay "
			 "in-progress and will be recovered",
			 abandoned);
		embedded_redis_stop(d->embedded); /* flushes its AOF */
		d->embedded = NULL;
		return;
	}
	heartbeat_free(d->heartbeat);
	d->heartbeat = NULL;
	period_free(d->period);
	d->period = NULL;
	reaper_free(d->reaper);
	d->reaper = NULL;
	queue_free(d->queue);
	d->queue = NULL;
	if (d->tracker)
		tracker_set_event_fn(d->tracker, NULL, NULL);
	hook_agent_free(d->hooks);
	d->hooks = NULL;
	tracker_free(d->tracker);
	d->tracker = NULL;
	plugin_registry_free(d->plugins);
	d->plugins = NULL;
	joblog_free(d->joblog);
	d->joblog = NULL;
	redis_pool_free(d->redis);
	d->redis = NULL;
	embedded_redis_stop(d->embedded);
	d->embedded = NULL;
	free(d->ns);
	free(d->core_secret);
	free(d->redis_url_public);
	d->ns = d->core_secret = d->redis_url_public = NULL;
}

/* daemon.h - the one explicit handle that ties the daemon's parts together.
 * main.c builds it in start-up order; the API handlers and background
 * threads receive it (no hidden globals). */
#ifndef BERTH_DAEMON_H
#define BERTH_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "config/config.h"
#include "plugins/plugin_host.h"
#include "store/redis_conn.h"

struct heartbeat;
struct api_server;
struct tracker;
struct queue;
struct worker_pool;
struct period;
struct joblog;
struct hook_agent;
struct reaper;
struct metrics_server;
struct metrics_history;

struct berthd {
	struct berth_config *cfg;
	struct plugin_registry *plugins;
	struct redis_pool *redis;
	struct embedded_redis *embedded;
	struct heartbeat *heartbeat;
	struct api_server *api;
	struct tracker *tracker;
	struct queue *queue;
	struct worker_pool *workers;
	struct period *period;          /* periodic policies and enqueuer */
	struct joblog *joblog;          /* per-job loggers and sweepers */
	struct hook_agent *hooks;       /* status hook delivery */
	struct reaper *reaper;          /* stats/ACK reconciliation */
	struct metrics_server *metrics; /* Prometheus endpoint, or NULL */
	struct metrics_history *history; /* per-minute figures, last hour */

	char *ns;             /* "{namespace}" - key prefix without ':' */
	char *core_secret;    /* what Authorization: Harbor-Secret must carry */
	char *redis_url_public; /* RedisURL reported by GET /api/v1/config */

	const char *manifest_path;
	const char *plugin_dir_override; /* --plugin-dir / berth.plugin_dir */
	bool strict;

	pthread_mutex_t reload_lock;
	atomic_bool stopping;
};

/* Re-reads the manifest and loads newly listed plugins; refreshes the job
 * names the heartbeat publishes. Serialised. Returns 0 or -1 with err. */
int berthd_reload_plugins(struct berthd *d, struct berr *err);


/* Options from the command line. */
struct berthd_options {
	const char *config_path;
	const char *plugin_dir;  /* --plugin-dir (wins over berth.plugin_dir
				  * and BERTH_PLUGIN_DIR) */
	const char *data_dir;    /* --data-dir (overrides the config) */
	const char *port_file;   /* write the bound port here once listening */
	bool strict;
};

/* Start-up in order: data dir, secret, Redis (embedded or URL), schema
 * version, plugins, heartbeat, REST API. On failure everything already
 * started is stopped again. */
int berthd_start(struct berthd *d, struct berth_config *cfg,
		 const struct berthd_options *opts, struct berr *err);
/* Shutdown in order: REST API, heartbeat (pool removed from Redis),
 * plugins, Redis. */
void berthd_stop(struct berthd *d);

#endif

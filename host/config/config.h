/* config.h - the service configuration (berth.yml).
 *
 * The file follows the Harbor jobservice schema (spec section 11) plus a
 * Berth-only top-level block `berth:` that Harbor ignores. Parsing is driven
 * by a table of rows (key path, type, default, bounds); every error carries
 * file:line:column, the key path and what was expected. Unknown keys are
 * warnings with a "did you mean" hint (errors in strict mode). */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct logger_config {
	char *name;       /* STD_OUTPUT | FILE | DB */
	int level;        /* enum blog_level */
	char *base_dir;   /* FILE: settings.base_dir (resolved) */
	char *filename;   /* FILE service logger: settings.filename */
	char *output;     /* STD_OUTPUT: settings.output std_out|std_err */
	bool has_sweeper;
	int sweeper_duration; /* days, <= 0 means 1 */
	char *work_dir;       /* sweeper.settings.work_dir (resolved) */
};

struct berth_config {
	char *path;       /* the file this was read from */
	char *dir;        /* its directory; relative paths resolve here */

	/* Harbor schema */
	char *protocol;   /* "http" | "https" */
	int port;         /* 0 allowed only for tests via JOB_SERVICE_PORT=0 */
	bool https;       /* https_config present, or protocol https */
	char *https_cert;
	char *https_key;
	int workers;      /* effective: 0 in the file means 10 */
	char *backend;    /* "redis" */
	char *redis_url;  /* normalised (redis:// added), or "embedded" */
	char *namespace_; /* raw namespace, without braces */
	int64_t idle_timeout_second;
	struct logger_config *job_loggers;
	size_t n_job_loggers;
	struct logger_config *loggers;
	size_t n_loggers;
	bool metric_enabled;
	char *metric_path;
	int metric_port;
	int max_update_hours;   /* effective (>= 24) */
	int max_dangling_hours; /* effective (>= 168) */
	int64_t max_retrieve_size_mb;

	/* Berth extensions, under `berth:` */
	char *data_dir;        /* resolved; see config_default_data_dir */
	char *manifest;        /* resolved path of plugins.yml */
	char *plugin_dir;      /* override of the manifest's plugin_dir, or NULL */
	char *listen_address;  /* default "0.0.0.0" */
	int64_t max_body_bytes; /* REST request body cap (413 past it) */
	int api_threads;
	int api_request_timeout_ms;    /* header + body read of a request */
	int api_keep_alive_timeout_ms; /* idle between requests */
	int api_max_client_connections; /* per client address, 0: no cap */
	char *redis_server;    /* embedded: redis-server binary */
	char *redis_appendfsync; /* embedded: always | everysec | no */
	int shutdown_grace_seconds;
	int stop_grace_seconds; /* a job ignoring stop this long is reported */
	int log_level;          /* service log before/without loggers */
	int64_t max_job_duration_seconds; /* 0: max_update_hours * 3600 */
	int reaper_interval_seconds; /* 0: the built-in reaper timings */
	int log_sweep_interval_seconds; /* 0: each sweeper's duration */
	int64_t dead_max_jobs;        /* NS:dead bound; 0: keep none */
	int64_t dead_max_age_seconds; /* NS:dead bound; 0: no age bound */
	int hook_max_attempts;       /* per status hook event */
	int hook_retry_window_seconds;
	int hook_max_pending;        /* hook events kept per agent */
	int hook_max_age_seconds;    /* a hook event older is given up */
	double hook_retry_scale;     /* multiplies every hook back-off wait */
	char *metric_namespace;  /* metric name prefix parts ("" omits) */
	char *metric_subsystem;
	char *metrics_port_file; /* write the bound metrics port here */

	/* unknown keys and other non-fatal findings, one "file:line: ..." each */
	char **warnings;
	size_t n_warnings;
};

struct config_options {
	bool strict;      /* unknown keys are errors */
	bool apply_env;   /* apply the environment overrides of spec 11.2 */
};

/* Reads, applies env overrides, normalises and validates. On failure err
 * carries file:line:col and a message naming the key path and what was
 * expected; *cfg is left empty (config_fini is still safe). */
int config_load(const char *path, const struct config_options *opts,
		struct berth_config *cfg, struct berr *err);
void config_fini(struct berth_config *cfg);

/* $BERTH_DATA_DIR, else $XDG_STATE_HOME/berth, else $HOME/.local/state/berth,
 * else ./berth-data. New string. */
char *config_default_data_dir(void);

#endif

/* config.c - see config.h.
 *
 * Every key the daemon understands is one row of a table (config_rows for
 * the file, logger_rows for each entry of job_loggers / loggers): its key
 * path, type, default, bounds, flags, the field it fills and the environment
 * variable that may override it. Loading is a fixed sequence of passes over
 * the table:
 *
 *   1. unknown keys       walk the YAML tree; keys no row names are warnings
 *                         (errors in strict mode), with a "did you mean"
 *   2. defaults           every row's default into the struct
 *   3. file               every row's value from the file, type-checked
 *   4. environment        spec 11.2 overrides (opts->apply_env only)
 *   5. normalise          generic (paths, ${data_dir}, non-blank) and the
 *                         row's own fix hook (workers 0 -> 10, redis://...)
 *   6. loggers            each entry through logger_rows, then checks
 *
 * This file has the tables, pass 4, the fix hooks, pass 6 and the driver;
 * the generic passes 1, 2, 3 and 5 are in config_engine.c.
 */
#include "config/config_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "logs/log.h"

#include "config/yamltree.h"

#define CFG_OFF(f) offsetof(struct berth_config, f)
#define LOG_OFF(f) offsetof(struct logger_config, f)

static int fix_workers(struct cfg_ctx *c, const struct cfg_row *row,
		       struct row_state *st);
static int fix_at_least(struct cfg_ctx *c, const struct cfg_row *row,
			struct row_state *st);
static int fix_https(struct cfg_ctx *c, const struct cfg_row *row,
		     struct row_state *st);
static int fix_redis_url(struct cfg_ctx *c, const struct cfg_row *row,
			 struct row_state *st);
static int fix_data_dir(struct cfg_ctx *c, const struct cfg_row *row,
			struct row_state *st);
static int fix_empty_null(struct cfg_ctx *c, const struct cfg_row *row,
			  struct row_state *st);

static const struct cfg_row config_rows[] = {
	/* Harbor schema (spec 11.1) */
	{.path = "protocol", .type = CT_ENUM, .choices = "http|https",
	 .flags = CF_REQUIRED, .offset = CFG_OFF(protocol),
	 .env = "JOB_SERVICE_PROTOCOL"},
	/* 1..65535 in the file; JOB_SERVICE_PORT=0 is also accepted so tests
	 * can bind an ephemeral port and read the real one back. */
	{.path = "port", .type = CT_INT, .min = 1, .max = 65535,
	 .flags = CF_REQUIRED | CF_ENV_ZERO, .offset = CFG_OFF(port),
	 .env = "JOB_SERVICE_PORT"},
	/* its presence alone turns https on (spec quirk Q3) */
	{.path = "https_config", .type = CT_SECTION, .offset = CFG_OFF(https)},
	{.path = "https_config.cert", .type = CT_STRING,
	 .flags = CF_PATH | CF_ENV_HTTPS, .offset = CFG_OFF(https_cert),
	 .env = "JOB_SERVICE_HTTPS_CERT"},
	{.path = "https_config.key", .type = CT_STRING,
	 .flags = CF_PATH | CF_ENV_HTTPS, .offset = CFG_OFF(https_key),
	 .env = "JOB_SERVICE_HTTPS_KEY", .fix = fix_https},
	{.path = "worker_pool", .type = CT_SECTION, .flags = CF_REQUIRED,
	 .offset = NO_OFFSET},
	{.path = "worker_pool.workers", .type = CT_INT, .def = "0", .min = 0,
	 .max = 10000, .offset = CFG_OFF(workers),
	 .env = "JOB_SERVICE_POOL_WORKERS", .fix = fix_workers, .aux = 10},
	{.path = "worker_pool.backend", .type = CT_ENUM, .def = "redis",
	 .choices = "redis", .offset = CFG_OFF(backend),
	 .env = "JOB_SERVICE_POOL_BACKEND"},
	{.path = "worker_pool.redis_pool", .type = CT_SECTION,
	 .flags = CF_REQUIRED, .offset = NO_OFFSET},
	{.path = "worker_pool.redis_pool.redis_url", .type = CT_STRING,
	 .flags = CF_REQUIRED | CF_NONBLANK | CF_ENV_REDIS,
	 .offset = CFG_OFF(redis_url), .env = "JOB_SERVICE_POOL_REDIS_URL",
	 .fix = fix_redis_url},
	{.path = "worker_pool.redis_pool.namespace", .type = CT_STRING,
	 .flags = CF_REQUIRED | CF_NONBLANK | CF_ENV_REDIS,
	 .offset = CFG_OFF(namespace_),
	 .env = "JOB_SERVICE_POOL_REDIS_NAMESPACE"},
	{.path = "worker_pool.redis_pool.idle_timeout_second",
	 .type = CT_INT64, .def = "0", .min = 0, .max = INT32_MAX,
	 .flags = CF_ENV_REDIS | CF_ENV_SOFT,
	 .offset = CFG_OFF(idle_timeout_second),
	 .env = "JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND"},
	{.path = "job_loggers", .type = CT_LOGGERS, .flags = CF_REQUIRED,
	 .offset = CFG_OFF(job_loggers), .aux = CFG_OFF(n_job_loggers)},
	{.path = "loggers", .type = CT_LOGGERS,
	 .flags = CF_REQUIRED | CF_SERVICE, .offset = CFG_OFF(loggers),
	 .aux = CFG_OFF(n_loggers)},
	{.path = "metric", .type = CT_SECTION, .offset = NO_OFFSET},
	{.path = "metric.enabled", .type = CT_BOOL, .def = "false",
	 .offset = CFG_OFF(metric_enabled), .env = "BERTH_METRICS_ENABLED"},
	{.path = "metric.path", .type = CT_STRING, .def = "/metrics",
	 .flags = CF_NONBLANK, .offset = CFG_OFF(metric_path)},
	/* BERTH_METRICS_PORT=0 binds a free port (tests) */
	{.path = "metric.port", .type = CT_INT, .def = "9090", .min = 1,
	 .max = 65535, .flags = CF_ENV_ZERO, .offset = CFG_OFF(metric_port),
	 .env = "BERTH_METRICS_PORT"},
	{.path = "reaper", .type = CT_SECTION, .offset = NO_OFFSET},
	/* values at or below the floor are ignored (the floor is used) */
	{.path = "reaper.max_update_hours", .type = CT_INT, .def = "24",
	 .min = INT32_MIN, .max = 876000, .offset = CFG_OFF(max_update_hours),
	 .fix = fix_at_least, .aux = 24},
	{.path = "reaper.max_dangling_hours", .type = CT_INT, .def = "168",
	 .min = INT32_MIN, .max = 876000,
	 .offset = CFG_OFF(max_dangling_hours), .fix = fix_at_least,
	 .aux = 168},
	{.path = "max_retrieve_size_mb", .type = CT_INT64, .def = "0",
	 .min = 0, .max = 1048576, .offset = CFG_OFF(max_retrieve_size_mb)},

	/* Berth extensions */
	{.path = "berth", .type = CT_SECTION, .offset = NO_OFFSET},
	{.path = "berth.data_dir", .type = CT_STRING, .def = "",
	 .offset = CFG_OFF(data_dir), .env = "BERTH_DATA_DIR",
	 .fix = fix_data_dir},
	{.path = "berth.plugin_manifest", .type = CT_STRING,
	 .def = "plugins.yml", .flags = CF_PATH | CF_NONBLANK,
	 .offset = CFG_OFF(manifest)},
	{.path = "berth.plugin_dir", .type = CT_STRING, .flags = CF_PATH,
	 .offset = CFG_OFF(plugin_dir), .env = "BERTH_PLUGIN_DIR",
	 .fix = fix_empty_null},
	{.path = "berth.listen_address", .type = CT_STRING, .def = "0.0.0.0",
	 .flags = CF_NONBLANK, .offset = CFG_OFF(listen_address),
	 .env = "BERTH_LISTEN_ADDRESS"},
	{.path = "berth.max_body_bytes", .type = CT_INT64, .def = "1048576",
	 .min = 1024, .max = 268435456, .offset = CFG_OFF(max_body_bytes)},
	{.path = "berth.api_threads", .type = CT_INT, .def = "64", .min = 1,
	 .max = 1024, .offset = CFG_OFF(api_threads)},
	/* civetweb request_timeout_ms: headers and body of one request */
	{.path = "berth.api_request_timeout_ms", .type = CT_INT,
	 .def = "15000", .min = 100, .max = 3600000,
	 .offset = CFG_OFF(api_request_timeout_ms)},
	{.path = "berth.api_keep_alive_timeout_ms", .type = CT_INT,
	 .def = "60000", .min = 0, .max = 3600000,
	 .offset = CFG_OFF(api_keep_alive_timeout_ms)},
	/* open connections per client address; 0 = no cap */
	{.path = "berth.api_max_client_connections", .type = CT_INT,
	 .def = "32", .min = 0, .max = 65535,
	 .offset = CFG_OFF(api_max_client_connections)},
	{.path = "berth.embedded_redis", .type = CT_SECTION,
	 .offset = NO_OFFSET},
	{.path = "berth.embedded_redis.binary", .type = CT_STRING,
	 .def = "redis-server", .flags = CF_NONBLANK,
	 .offset = CFG_OFF(redis_server)},
	{.path = "berth.embedded_redis.appendfsync", .type = CT_ENUM,
	 .def = "everysec", .choices = "always|everysec|no",
	 .offset = CFG_OFF(redis_appendfsync)},
	{.path = "berth.shutdown_grace_seconds", .type = CT_INT, .def = "30",
	 .min = 0, .max = 86400, .offset = CFG_OFF(shutdown_grace_seconds)},
	{.path = "berth.stop_grace_seconds", .type = CT_INT, .def = "60",
	 .min = 1, .max = 86400, .offset = CFG_OFF(stop_grace_seconds)},
	/* the service log's level before the loggers are opened, and when
	 * none of them can be used (spec 11.4) */
	{.path = "berth.log_level", .type = CT_LEVEL, .def = "INFO",
	 .flags = CF_ENV_SOFT, .offset = CFG_OFF(log_level),
	 .env = "LOG_LEVEL"},
	/* TTL of the worker observation hashes (spec 11.4); 0 means
	 * reaper.max_update_hours * 3600 */
	{.path = "berth.max_job_duration_seconds", .type = CT_INT64,
	 .def = "0", .min = 0, .max = INT32_MAX, .flags = CF_ENV_SOFT,
	 .offset = CFG_OFF(max_job_duration_seconds),
	 .env = "MAX_JOB_DURATION_SECONDS"},
	/* 0: the reaper's own timings; else both of its loops every N s */
	{.path = "berth.reaper_interval_seconds", .type = CT_INT, .def = "0",
	 .min = 0, .max = 86400, .flags = CF_ENV_SOFT,
	 .offset = CFG_OFF(reaper_interval_seconds),
	 .env = "BERTH_REAPER_INTERVAL_SECONDS"},
	/* 0: each sweeper runs every `duration` days; else every N s */
	{.path = "berth.log_sweep_interval_seconds", .type = CT_INT,
	 .def = "0", .min = 0, .max = 31536000, .flags = CF_ENV_SOFT,
	 .offset = CFG_OFF(log_sweep_interval_seconds),
	 .env = "BERTH_SWEEP_INTERVAL_SECONDS"},
	/* the dead set of given-up jobs (a Berth behaviour Go ignores) */
	{.path = "berth.dead_max_jobs", .type = CT_INT64, .def = "10000",
	 .min = 0, .max = 100000000, .offset = CFG_OFF(dead_max_jobs),
	 .env = "BERTH_DEAD_MAX_JOBS"},
	{.path = "berth.dead_max_age_seconds", .type = CT_INT64,
	 .def = "604800", .min = 0, .max = 315360000,
	 .offset = CFG_OFF(dead_max_age_seconds),
	 .env = "BERTH_DEAD_MAX_AGE_SECONDS"},
	{.path = "berth.hooks", .type = CT_SECTION, .offset = NO_OFFSET},
	{.path = "berth.hooks.max_attempts", .type = CT_INT, .def = "10",
	 .min = 1, .max = 1000, .offset = CFG_OFF(hook_max_attempts)},
	{.path = "berth.hooks.retry_window_seconds", .type = CT_INT,
	 .def = "300", .min = 1, .max = 86400,
	 .offset = CFG_OFF(hook_retry_window_seconds)},
	/* the backlog of one agent: beyond it the oldest events go */
	{.path = "berth.hooks.max_pending", .type = CT_INT, .def = "100000",
	 .min = 1, .max = 10000000, .offset = CFG_OFF(hook_max_pending)},
	/* an event older than this is given up (the reaper re-fires every
	 * state core has not acknowledged) */
	{.path = "berth.hooks.max_age_seconds", .type = CT_INT, .def = "3600",
	 .min = 1, .max = 604800,
	 .offset = CFG_OFF(hook_max_age_seconds)},
	{.path = "berth.hooks.retry_scale", .type = CT_DOUBLE, .def = "1",
	 .min = 0, .max = 1000, .flags = CF_GT_MIN | CF_ENV_SOFT,
	 .offset = CFG_OFF(hook_retry_scale),
	 .env = "BERTH_HOOK_RETRY_SCALE"},
	{.path = "berth.metrics", .type = CT_SECTION, .offset = NO_OFFSET},
	/* the metric name prefix (spec 14.1); an empty variable omits the
	 * part */
	{.path = "berth.metrics.namespace", .type = CT_STRING,
	 .def = "harbor", .flags = CF_ENV_EMPTY,
	 .offset = CFG_OFF(metric_namespace), .env = "METRIC_NAMESPACE"},
	{.path = "berth.metrics.subsystem", .type = CT_STRING,
	 .def = "jobservice", .flags = CF_ENV_EMPTY,
	 .offset = CFG_OFF(metric_subsystem), .env = "METRIC_SUBSYSTEM"},
	{.path = "berth.metrics.port_file", .type = CT_STRING,
	 .flags = CF_PATH, .offset = CFG_OFF(metrics_port_file),
	 .env = "BERTH_METRICS_PORT_FILE", .fix = fix_empty_null},
};

/* One entry of job_loggers / loggers (spec 10.1). Inside the two
 * settings mappings only the keys below are read; others are the
 * back-end's business and not reported. */
static const struct cfg_row logger_rows[] = {
	{.path = "name", .type = CT_ENUM, .choices = "STD_OUTPUT|FILE|DB",
	 .flags = CF_REQUIRED, .offset = LOG_OFF(name)},
	{.path = "level", .type = CT_LEVEL, .def = "WARNING",
	 .offset = LOG_OFF(level)},
	{.path = "settings", .type = CT_FREEFORM, .offset = NO_OFFSET},
	{.path = "settings.base_dir", .type = CT_STRING,
	 .flags = CF_PATH | CF_EXPAND, .offset = LOG_OFF(base_dir)},
	{.path = "settings.filename", .type = CT_STRING, .flags = CF_EXPAND,
	 .offset = LOG_OFF(filename)},
	{.path = "settings.output", .type = CT_ENUM,
	 .choices = "std_out|std_err", .offset = LOG_OFF(output)},
	{.path = "sweeper", .type = CT_SECTION,
	 .offset = LOG_OFF(has_sweeper)},
	{.path = "sweeper.duration", .type = CT_INT, .def = "1",
	 .min = INT32_MIN, .max = 36500,
	 .offset = LOG_OFF(sweeper_duration)},
	{.path = "sweeper.settings", .type = CT_FREEFORM, .offset = NO_OFFSET},
	{.path = "sweeper.settings.work_dir", .type = CT_STRING,
	 .flags = CF_PATH | CF_EXPAND, .offset = LOG_OFF(work_dir)},
};

#define N_CONFIG_ROWS ARRAY_LEN(config_rows)
#define N_LOGGER_ROWS ARRAY_LEN(logger_rows)

/* ---- pass 1: unknown keys in logger entries ----------------------------- */

int
config_walk_loggers(struct cfg_ctx *c, const struct ynode *seq,
		    const char *shown)
{
	char item[PATH_MAXLEN];
	for (size_t i = 0; i < seq->n; i++) {
		if (seq->items[i]->kind != YNODE_MAPPING)
			continue; /* reported by the type check */
		config_path_fmt(item, sizeof(item), "%s[%zu]", shown, i);
		if (config_walk_unknown(c, logger_rows, N_LOGGER_ROWS,
					seq->items[i], "", item) < 0)
			return -1;
	}
	return 0;
}

/* ---- pass 4: environment ------------------------------------------------- */

/* An env value that does not parse: an error, or with CF_ENV_SOFT a
 * warning that leaves the row as it was. */
static int
env_refused(struct cfg_ctx *c, const struct cfg_row *row, const char *val,
	    const char *expected)
{
	if (row->flags & CF_ENV_SOFT) {
		config_warn(c, xasprintf("%s: ignoring \"%s\": expected %s; "
					 "%s is unchanged",
					 row->env, val, expected, row->path));
		return 1;
	}
	return berr_set(c->err, "%s: %s: expected %s, got \"%s\"", row->env,
			row->path, expected, val);
}

/* Applies one variable to its row: 0 applied, 1 ignored, -1 error. */
static int
apply_env_row(struct cfg_ctx *c, const struct cfg_row *row, const char *val)
{
	struct berth_config *cfg = c->cfg;
	char exp[96], hint[96];
	int64_t v, lo = row->min;
	char *end;
	double d;
	int lvl;

	switch (row->type) {
	case CT_ENUM:
		if (!config_choice_ok(row->choices, val)) {
			config_choice_hint(row->choices, val, hint,
					   sizeof(hint));
			return berr_set(c->err,
					"%s: %s: expected %s, got \"%s\"%s",
					row->env, row->path,
					config_expected(row, exp, sizeof(exp)),
					val, hint);
		}
		set_str(cfg, row, val);
		return 0;
	case CT_STRING:
		set_str(cfg, row, val);
		return 0;
	case CT_INT:
	case CT_INT64:
		if (row->flags & CF_ENV_ZERO)
			lo = 0;
		if (util_parse_i64(val, lo, row->max, &v) < 0) {
			if (row->flags & CF_ENV_SOFT) {
				config_warn(c,
					    xasprintf("%s: ignoring \"%s\": "
						      "expected an integer in "
						      "%lld..%lld; %s stays "
						      "%lld",
						      row->env, val,
						      (long long)lo,
						      (long long)row->max,
						      row->path,
						      (long long)get_int(cfg,
									 row)));
				return 1;
			}
			return berr_set(c->err,
					"%s: %s: expected an integer in "
					"%lld..%lld, got \"%s\"",
					row->env, row->path, (long long)lo,
					(long long)row->max, val);
		}
		set_int(cfg, row, v);
		return 0;
	case CT_DOUBLE:
		errno = 0;
		d = strtod(val, &end);
		if (errno || *end || end == val ||
		    !config_double_in_range(row, d))
			return env_refused(c, row, val,
					   config_expected(row, exp,
							   sizeof(exp)));
		*(double *)((char *)cfg + row->offset) = d;
		return 0;
	case CT_BOOL:
		if (strcasecmp(val, "true") != 0 &&
		    strcasecmp(val, "false") != 0)
			return env_refused(c, row, val,
					   config_expected(row, exp,
							   sizeof(exp)));
		*(bool *)((char *)cfg + row->offset) =
			strcasecmp(val, "true") == 0;
		return 0;
	case CT_LEVEL:
		if ((lvl = blog_level_parse(val)) < 0)
			return env_refused(c, row, val,
					   config_expected(row, exp,
							   sizeof(exp)));
		*(int *)((char *)cfg + row->offset) = lvl;
		return 0;
	case CT_SECTION:
	case CT_FREEFORM:
	case CT_LOGGERS:
	case CT_SEQUENCE:
	case CT_JSON:
		break;
	}
	return 1;
}

static int
apply_env(struct cfg_ctx *c)
{
	struct berth_config *cfg = c->cfg;

	for (size_t i = 0; i < N_CONFIG_ROWS; i++) {
		const struct cfg_row *row = &config_rows[i];
		if (!row->env)
			continue;
		const char *val = getenv(row->env);
		if (!val || (!*val && !(row->flags & CF_ENV_EMPTY)))
			continue;
		if ((row->flags & CF_ENV_HTTPS) &&
		    (!cfg->protocol || strcmp(cfg->protocol, "https") != 0))
			continue;
		if ((row->flags & CF_ENV_REDIS) &&
		    (!cfg->backend || strcmp(cfg->backend, "redis") != 0))
			continue;
		int rc = apply_env_row(c, row, val);
		if (rc < 0)
			return -1;
		if (rc > 0)
			continue;
		c->st[i].env = row->env;
		c->st[i].node = NULL;
		/* JOB_SERVICE_HTTPS_*: "creates the block" */
		if (row->flags & CF_ENV_HTTPS)
			cfg->https = true;
	}
	return 0;
}

/* ---- pass 5: normalisation ----------------------------------------------- */

static int
fix_workers(struct cfg_ctx *c, const struct cfg_row *row,
	    struct row_state *st)
{
	(void)st;
	if (get_int(c->cfg, row) == 0)
		set_int(c->cfg, row, row->aux);
	return 0;
}

static int
fix_at_least(struct cfg_ctx *c, const struct cfg_row *row,
	     struct row_state *st)
{
	(void)st;
	if (get_int(c->cfg, row) <= row->aux)
		set_int(c->cfg, row, row->aux);
	return 0;
}

/* The value row filling a field (sections share no field with it). */
static size_t
row_index(size_t offset)
{
	size_t i;
	for (i = 0; i < N_CONFIG_ROWS; i++)
		if (config_rows[i].offset == offset &&
		    config_rows[i].type != CT_SECTION)
			break;
	return i;
}

static int
check_file_exists(struct cfg_ctx *c, struct row_state *st, const char *shown,
		  const char *file)
{
	if (access(file, F_OK) == 0)
		return 0;
	return config_row_fail(c, st, shown, "file %s does not exist", file);
}

/* Runs on the https_config.key row, after protocol, cert and key are
 * final. https is on when the block is present (even with protocol
 * http, spec quirk Q3), when protocol is https, or when an env variable
 * created the block. It then needs both files, which must exist. */
static int
fix_https(struct cfg_ctx *c, const struct cfg_row *row,
	  struct row_state *st)
{
	struct berth_config *cfg = c->cfg;
	struct row_state *proto = &c->st[row_index(CFG_OFF(protocol))];
	size_t cert = row_index(CFG_OFF(https_cert));
	const struct ynode *block = ynode_get(c->doc->root, "https_config");

	if (strcmp(cfg->protocol, "https") == 0)
		cfg->https = true;
	if (!cfg->https)
		return 0;
	struct {
		struct row_state *st;
		const char *path, *value, *env;
	} files[] = {
		{&c->st[cert], config_rows[cert].path, cfg->https_cert,
		 config_rows[cert].env},
		{st, row->path, cfg->https_key, row->env},
	};
	for (size_t i = 0; i < ARRAY_LEN(files); i++) {
		if (files[i].value && *files[i].value) {
			if (check_file_exists(c, files[i].st, files[i].path,
					      files[i].value) < 0)
				return -1;
			continue;
		}
		/* missing: point at the block, else at protocol */
		struct row_state at = {.node = NULL,
				       .parent = block,
				       .env = NULL};
		if (!block) {
			at.node = proto->node;
			at.env = proto->env;
		}
		return config_row_fail(
			c, &at, files[i].path,
			"required key is missing (certificate must "
			"be configured if serve with protocol "
			"https%s%s)",
			c->opts->apply_env ? "; or set " : "",
			c->opts->apply_env ? files[i].env : "");
	}
	return 0;
}

/* spec 11.2/11.3: "redis://" is prepended when there is no scheme, except
 * for Berth's own forms: "embedded" (the daemon starts redis-server) and
 * unix sockets ("/path" or "unix://path"), which are kept as they are. */
static int
fix_redis_url(struct cfg_ctx *c, const struct cfg_row *row,
	      struct row_state *st)
{
	static const char *const schemes[] = {
		"redis://", "rediss://", "redis+sentinel://",
		"rediss+sentinel://", "unix://",
	};
	char **f = str_field(c->cfg, row);
	const char *u = *f;

	if (strcmp(u, "embedded") == 0 || u[0] == '/')
		return 0;
	if (!strstr(u, "://")) {
		char *n = xasprintf("redis://%s", u);
		free(*f);
		*f = n;
		u = n;
	}
	for (size_t i = 0; i < ARRAY_LEN(schemes); i++)
		if (strncmp(u, schemes[i], strlen(schemes[i])) == 0 &&
		    u[strlen(schemes[i])] != '\0')
			return 0;
	return config_row_fail(c, st, row->path,
			       "invalid redis URL \"%s\" (expected host:port, "
			       "redis://, rediss://, redis+sentinel://, "
			       "rediss+sentinel://, unix://, a socket path or "
			       "embedded)",
			       u);
}

/* "" means config_default_data_dir(); a relative value from the file is
 * relative to the config file, one from BERTH_DATA_DIR to the cwd. */
static int
fix_data_dir(struct cfg_ctx *c, const struct cfg_row *row,
	     struct row_state *st)
{
	char **f = str_field(c->cfg, row);
	if (!*f || !**f) {
		free(*f);
		*f = config_default_data_dir();
	} else if (!st->env && (*f)[0] != '/') {
		char *p = util_path_join(c->cfg->dir, *f);
		free(*f);
		*f = p;
	}
	return 0;
}

static int
fix_empty_null(struct cfg_ctx *c, const struct cfg_row *row,
	       struct row_state *st)
{
	char **f = str_field(c->cfg, row);
	(void)st;
	if (*f && !**f) {
		free(*f);
		*f = NULL;
	}
	return 0;
}

/* ---- pass 6: loggers ------------------------------------------------------ */

static void
logger_free(struct logger_config *l)
{
	for (size_t i = 0; i < N_LOGGER_ROWS; i++) {
		const struct cfg_row *row = &logger_rows[i];
		if ((row->type == CT_STRING || row->type == CT_ENUM) &&
		    row->offset != NO_OFFSET) {
			char **f = str_field(l, row);
			free(*f);
			*f = NULL;
		}
	}
}

/* spec 10.1/10.4: what each back-end needs */
static int
check_logger(struct cfg_ctx *c, const struct cfg_row *list,
	     const char *shown_prefix, const struct ynode *entry,
	     struct logger_config *l)
{
	const struct ynode *sweeper = ynode_get(entry, "sweeper");
	const struct ynode *settings = ynode_get(entry, "settings");
	const struct ynode *sw_settings = ynode_get(sweeper, "settings");
	char shown[PATH_MAXLEN];

	if (l->has_sweeper && strcmp(l->name, "STD_OUTPUT") == 0)
		return berr_set_at(c->err, c->doc->path, sweeper->line,
				   sweeper->col,
				   "%s.sweeper: no sweeper provided for the "
				   "logger STD_OUTPUT",
				   shown_prefix);
	if (strcmp(l->name, "STD_OUTPUT") == 0 && !l->output)
		l->output = xstrdup("std_out");
	if (strcmp(l->name, "FILE") == 0) {
		const struct ynode *at = settings && settings->kind ==
							    YNODE_MAPPING
						 ? settings
						 : entry;
		if (!l->base_dir || !*l->base_dir)
			return berr_set_at(
				c->err, c->doc->path, at->line, at->col,
				"%s: required key is missing (the FILE logger "
				"needs a base directory)",
				config_show_path(shown_prefix,
						 "settings.base_dir", shown,
						 sizeof(shown)));
		if ((list->flags & CF_SERVICE) &&
		    (!l->filename || !*l->filename))
			return berr_set_at(
				c->err, c->doc->path, at->line, at->col,
				"%s: required key is missing (the FILE "
				"service logger needs a file name)",
				config_show_path(shown_prefix,
						 "settings.filename", shown,
						 sizeof(shown)));
		if (l->has_sweeper && (!l->work_dir || !*l->work_dir)) {
			at = sw_settings && sw_settings->kind == YNODE_MAPPING
				     ? sw_settings
				     : sweeper;
			return berr_set_at(
				c->err, c->doc->path, at->line, at->col,
				"%s: required key is missing (the FILE "
				"sweeper needs a work directory)",
				config_show_path(shown_prefix,
						 "sweeper.settings.work_dir",
						 shown, sizeof(shown)));
		}
	}
	if (l->has_sweeper && l->sweeper_duration <= 0)
		l->sweeper_duration = 1;
	if (!l->has_sweeper)
		l->sweeper_duration = 0;
	return 0;
}

static int
load_loggers(struct cfg_ctx *c, const struct cfg_row *list,
	     const struct ynode *seq)
{
	struct logger_config **arr =
		(struct logger_config **)((char *)c->cfg + list->offset);
	size_t *count = (size_t *)((char *)c->cfg + (size_t)list->aux);
	char shown[PATH_MAXLEN], got[64];

	/* counted up front: entries are zeroed, config_fini frees them */
	*arr = xcalloc(seq->n, sizeof(**arr));
	*count = seq->n;
	for (size_t i = 0; i < seq->n; i++) {
		const struct ynode *entry = seq->items[i];
		struct logger_config *l = &(*arr)[i];
		struct row_state states[N_LOGGER_ROWS];

		config_path_fmt(shown, sizeof(shown), "%s[%zu]", list->path, i);
		if (entry->kind != YNODE_MAPPING)
			return berr_set_at(c->err, c->doc->path, entry->line,
					   entry->col,
					   "%s: expected a mapping with name "
					   "and level, got %s",
					   shown,
					   ynode_describe(entry, got,
							  sizeof(got)));
		memset(states, 0, sizeof(states));
		config_apply_defaults(logger_rows, N_LOGGER_ROWS, l);
		if (config_apply_file(c, logger_rows, N_LOGGER_ROWS, entry,
				      shown, states, l) < 0 ||
		    config_normalise_rows(c, logger_rows, N_LOGGER_ROWS, shown,
					  states, l) < 0 ||
		    check_logger(c, list, shown, entry, l) < 0)
			return -1;
	}
	return 0;
}

/* ---- driver ----------------------------------------------------------------- */

static int
load_all(struct cfg_ctx *c)
{
	const struct ynode *root = c->doc->root;
	char got[64];

	if (root->kind != YNODE_MAPPING)
		return berr_set_at(c->err, c->doc->path, root->line, root->col,
				   "expected a mapping at the top level, "
				   "got %s",
				   ynode_describe(root, got, sizeof(got)));
	if (config_walk_unknown(c, config_rows, N_CONFIG_ROWS, root, "",
				"") < 0)
		return -1;
	config_apply_defaults(config_rows, N_CONFIG_ROWS, c->cfg);
	if (config_apply_file(c, config_rows, N_CONFIG_ROWS, root, "", c->st,
			      c->cfg) < 0)
		return -1;
	if (c->opts->apply_env && apply_env(c) < 0)
		return -1;
	if (config_normalise_rows(c, config_rows, N_CONFIG_ROWS, "", c->st,
				  c->cfg) < 0)
		return -1;
	for (size_t i = 0; i < N_CONFIG_ROWS; i++)
		if (config_rows[i].type == CT_LOGGERS && c->st[i].node &&
		    load_loggers(c, &config_rows[i], c->st[i].node) < 0)
			return -1;
	return 0;
}

int
config_load(const char *path, const struct config_options *opts,
	    struct berth_config *cfg, struct berr *err)
{
	static const struct config_options no_opts;
	struct ydoc doc;

	memset(cfg, 0, sizeof(*cfg));
	berr_clear(err);
	if (ydoc_load(&doc, path, err) < 0)
		return -1;
	cfg->path = xstrdup(path);
	cfg->dir = xstrdup(doc.dir);

	struct cfg_ctx *c =
		xcalloc(1, sizeof(*c) + N_CONFIG_ROWS * sizeof(c->st[0]));
	c->cfg = cfg;
	c->warnings = &cfg->warnings;
	c->n_warnings = &cfg->n_warnings;
	c->opts = opts ? opts : &no_opts;
	c->doc = &doc;
	c->err = err;
	int rc = load_all(c);
	free(c);
	ydoc_fini(&doc);
	if (rc < 0)
		config_fini(cfg);
	return rc;
}

void
config_fini(struct berth_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < N_CONFIG_ROWS; i++) {
		const struct cfg_row *row = &config_rows[i];
		if (row->type == CT_STRING || row->type == CT_ENUM)
			free(*str_field(cfg, row));
	}
	for (size_t i = 0; i < cfg->n_job_loggers; i++)
		logger_free(&cfg->job_loggers[i]);
	free(cfg->job_loggers);
	for (size_t i = 0; i < cfg->n_loggers; i++)
		logger_free(&cfg->loggers[i]);
	free(cfg->loggers);
	for (size_t i = 0; i < cfg->n_warnings; i++)
		free(cfg->warnings[i]);
	free(cfg->warnings);
	free(cfg->path);
	free(cfg->dir);
	memset(cfg, 0, sizeof(*cfg));
}

char *
config_default_data_dir(void)
{
	const char *v = getenv("BERTH_DATA_DIR");
	if (v && *v)
		return xstrdup(v);
	/* the XDG spec says relative values are invalid and ignored */
	v = getenv("XDG_STATE_HOME");
	if (v && v[0] == '/')
		return util_path_join(v, "berth");
	v = getenv("HOME");
	if (v && *v)
		return util_path_join(v, ".local/state/berth");
	return xstrdup("./berth-data");
}

/* test_config.c - config_load against the fixtures in
 * $BERTH_FIXTURES/config: every good file field by field, one bad file per
 * error class with its exact position and message, unknown keys in both
 * modes, and the environment overrides of spec 11.2. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "fixtures.h"
#include "logs/log.h"
#include "testlib.h"

static void
clear_env(void)
{
	static const char *const vars[] = {
		"JOB_SERVICE_PROTOCOL",
		"JOB_SERVICE_PORT",
		"JOB_SERVICE_HTTPS_CERT",
		"JOB_SERVICE_HTTPS_KEY",
		"JOB_SERVICE_POOL_BACKEND",
		"JOB_SERVICE_POOL_WORKERS",
		"JOB_SERVICE_POOL_REDIS_URL",
		"JOB_SERVICE_POOL_REDIS_NAMESPACE",
		"JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND",
		"BERTH_DATA_DIR",
		"BERTH_LISTEN_ADDRESS",
		"BERTH_PLUGIN_DIR",
		"BERTH_METRICS_ENABLED",
		"BERTH_METRICS_PORT",
		"BERTH_METRICS_PORT_FILE",
		"METRIC_NAMESPACE",
		"METRIC_SUBSYSTEM",
		"LOG_LEVEL",
		"MAX_JOB_DURATION_SECONDS",
		"BERTH_REAPER_INTERVAL_SECONDS",
		"BERTH_SWEEP_INTERVAL_SECONDS",
		"BERTH_HOOK_RETRY_SCALE",
	};
	for (size_t i = 0; i < ARRAY_LEN(vars); i++)
		unsetenv(vars[i]);
}

static int
load(const char *name, bool strict, bool env, struct berth_config *cfg,
     struct berr *e)
{
	struct config_options o = {.strict = strict, .apply_env = env};
	int rc = config_load(fx(name), &o, cfg, e);
	if (rc < 0) {
		char buf[2048];
		/* a failed load leaves nothing behind but its findings */
		CHECK(cfg->protocol == NULL && cfg->job_loggers == NULL &&
		      cfg->path == NULL);
		fprintf(stderr, "  (%s: %s)\n", name,
			berr_str(e, buf, sizeof(buf)));
	}
	return rc;
}

static void
test_harbor(void)
{
	struct berth_config c;
	struct berr e;

	CHECK(load("good_harbor.yml", true, false, &c, &e) == 0);
	CHECK_STR(c.path, fx("good_harbor.yml"));
	CHECK_STR(c.dir, fixdir);
	CHECK_STR(c.protocol, "http");
	CHECK(c.port == 8080);
	CHECK(!c.https);
	CHECK(c.https_cert == NULL && c.https_key == NULL);
	CHECK(c.workers == 10);
	CHECK_STR(c.backend, "redis");
	CHECK_STR(c.redis_url,
		  "redis://redis:6379/2?idle_timeout_seconds=30");
	CHECK_STR(c.namespace_, "harbor_job_service_namespace");
	CHECK(c.idle_timeout_second == 3600);
	CHECK(c.n_job_loggers == 3);
	if (c.n_job_loggers == 3) {
		CHECK_STR(c.job_loggers[0].name, "STD_OUTPUT");
		CHECK(c.job_loggers[0].level == BLOG_INFO);
		CHECK(!c.job_loggers[0].has_sweeper);
		CHECK_STR(c.job_loggers[0].output, "std_out");
		CHECK_STR(c.job_loggers[1].name, "FILE");
		CHECK_STR(c.job_loggers[1].base_dir, "/var/log/jobs");
		CHECK(c.job_loggers[1].has_sweeper);
		CHECK(c.job_loggers[1].sweeper_duration == 1);
		CHECK_STR(c.job_loggers[1].work_dir, "/var/log/jobs");
		CHECK_STR(c.job_loggers[2].name, "DB");
		CHECK(c.job_loggers[2].has_sweeper);
		CHECK(c.job_loggers[2].work_dir == NULL);
	}
	CHECK(c.n_loggers == 1);
	if (c.n_loggers == 1) {
		CHECK_STR(c.loggers[0].name, "STD_OUTPUT");
		CHECK(c.loggers[0].level == BLOG_INFO);
	}
	CHECK(c.metric_enabled);
	CHECK_STR(c.metric_path, "/metrics");
	CHECK(c.metric_port == 9090);
	CHECK(c.max_update_hours == 24);
	CHECK(c.max_dangling_hours == 168);
	CHECK(c.max_retrieve_size_mb == 10);
	CHECK(c.n_warnings == 0);
	config_fini(&c);
	CHECK(c.protocol == NULL && c.loggers == NULL);
	config_fini(&c); /* twice is fine */
}

static void
test_minimal_defaults(void)
{
	struct berth_config c;
	struct berr e;
	char *want;

	setenv("BERTH_DATA_DIR", "/srv/berth-state", 1);
	CHECK(load("good_minimal.yml", false, false, &c, &e) == 0);
	CHECK_STR(c.redis_url, "redis://redis:6379");
	CHECK(c.workers == 10);
	CHECK_STR(c.backend, "redis");
	CHECK(c.idle_timeout_second == 0);
	CHECK(c.n_job_loggers == 1 && c.n_loggers == 1);
	if (c.n_job_loggers == 1 && c.n_loggers == 1) {
		/* no level -> WARNING (Harbor) */
		CHECK(c.job_loggers[0].level == BLOG_WARNING);
		CHECK(c.loggers[0].level == BLOG_DEBUG);
	}
	CHECK(!c.metric_enabled);
	CHECK_STR(c.metric_path, "/metrics");
	CHECK(c.metric_port == 9090);
	CHECK(c.max_update_hours == 24 && c.max_dangling_hours == 168);
	CHECK(c.max_retrieve_size_mb == 0);
	/* berth: block absent -> defaults; data_dir from
	 * config_default_data_dir() even without apply_env */
	CHECK_STR(c.data_dir, "/srv/berth-state");
	want = xasprintf("%s/plugins.yml", fixdir);
	CHECK_STR(c.manifest, want);
	free(want);
	CHECK(c.plugin_dir == NULL);
	CHECK_STR(c.listen_address, "0.0.0.0");
	CHECK(c.max_body_bytes == 1048576);
	CHECK(c.api_threads == 64);
	CHECK_STR(c.redis_server, "redis-server");
	CHECK_STR(c.redis_appendfsync, "everysec");
	CHECK(c.shutdown_grace_seconds == 30);
	CHECK(c.log_level == BLOG_INFO);
	CHECK(c.max_job_duration_seconds == 0);
	CHECK(c.reaper_interval_seconds == 0);
	CHECK(c.log_sweep_interval_seconds == 0);
	CHECK(c.hook_max_attempts == 10);
	CHECK(c.hook_retry_window_seconds == 300);
	CHECK(c.hook_retry_scale == 1.0);
	CHECK_STR(c.metric_namespace, "harbor");
	CHECK_STR(c.metric_subsystem, "jobservice");
	CHECK(c.metrics_port_file == NULL);
	CHECK(c.n_warnings == 0);
	config_fini(&c);
	unsetenv("BERTH_DATA_DIR");
}

/* The Berth knobs: each from the file, then from its variable. */
static void
test_knobs(void)
{
	struct berth_config c;
	struct berr e;
	char want[PATH_MAX + 64];

	CHECK(load("good_knobs.yml", true, false, &c, &e) == 0);
	CHECK(c.metric_enabled && c.metric_port == 9191);
	CHECK(c.log_level == BLOG_DEBUG);
	CHECK(c.max_job_duration_seconds == 7200);
	CHECK(c.reaper_interval_seconds == 5);
	CHECK(c.log_sweep_interval_seconds == 60);
	CHECK(c.hook_max_attempts == 3);
	CHECK(c.hook_retry_window_seconds == 30);
	CHECK(c.hook_retry_scale == 0.5);
	CHECK_STR(c.metric_namespace, "acme");
	CHECK_STR(c.metric_subsystem, "");
	snprintf(want, sizeof(want), "%s/run/metrics.port", fixdir);
	CHECK_STR(c.metrics_port_file, want);
	CHECK(c.n_warnings == 0);
	config_fini(&c);

	setenv("BERTH_LISTEN_ADDRESS", "127.0.0.2", 1);
	setenv("BERTH_PLUGIN_DIR", "rel/plugins", 1);
	setenv("BERTH_METRICS_ENABLED", "FALSE", 1);
	setenv("BERTH_METRICS_PORT", "0", 1);
	setenv("BERTH_METRICS_PORT_FILE", "/tmp/mport", 1);
	setenv("METRIC_NAMESPACE", "", 1); /* empty omits the part */
	setenv("METRIC_SUBSYSTEM", "js", 1);
	setenv("LOG_LEVEL", "error", 1);
	setenv("MAX_JOB_DURATION_SECONDS", "60", 1);
	setenv("BERTH_REAPER_INTERVAL_SECONDS", "1", 1);
	setenv("BERTH_SWEEP_INTERVAL_SECONDS", "2", 1);
	setenv("BERTH_HOOK_RETRY_SCALE", "0.01", 1);
	CHECK(load("good_knobs.yml", true, true, &c, &e) == 0);
	CHECK_STR(c.listen_address, "127.0.0.2");
	CHECK_STR(c.plugin_dir, "rel/plugins"); /* env paths: from the cwd */
	CHECK(!c.metric_enabled && c.metric_port == 0);
	CHECK_STR(c.metrics_port_file, "/tmp/mport");
	CHECK_STR(c.metric_namespace, "");
	CHECK_STR(c.metric_subsystem, "js");
	CHECK(c.log_level == BLOG_ERROR);
	CHECK(c.max_job_duration_seconds == 60);
	CHECK(c.reaper_interval_seconds == 1);
	CHECK(c.log_sweep_interval_seconds == 2);
	CHECK(c.hook_retry_scale == 0.01);
	CHECK(c.n_warnings == 0);
	config_fini(&c);
	clear_env();

	/* the soft ones warn and keep the file's value */
	setenv("BERTH_SWEEP_INTERVAL_SECONDS", "soon", 1);
	setenv("BERTH_HOOK_RETRY_SCALE", "0", 1);
	setenv("LOG_LEVEL", "loud", 1);
	CHECK(load("good_knobs.yml", true, true, &c, &e) == 0);
	CHECK(c.log_sweep_interval_seconds == 60);
	CHECK(c.hook_retry_scale == 0.5);
	CHECK(c.log_level == BLOG_DEBUG);
	CHECK(c.n_warnings == 3);
	if (c.n_warnings == 3) {
		CHECK_STR(c.warnings[0],
			  "LOG_LEVEL: ignoring \"loud\": expected a log level "
			  "(DEBUG, INFO, WARNING, ERROR or FATAL); "
			  "berth.log_level is unchanged");
		CHECK_STR(c.warnings[1],
			  "BERTH_SWEEP_INTERVAL_SECONDS: ignoring \"soon\": "
			  "expected an integer in 0..31536000; "
			  "berth.log_sweep_interval_seconds stays 60");
		CHECK_STR(c.warnings[2],
			  "BERTH_HOOK_RETRY_SCALE: ignoring \"0\": expected a "
			  "number in (0, 1000]; berth.hooks.retry_scale is "
			  "unchanged");
	}
	config_fini(&c);
	clear_env();

	/* the hard ones fail the load */
	setenv("BERTH_METRICS_PORT", "x", 1);
	CHECK(load("good_knobs.yml", true, true, &c, &e) < 0);
	CHECK_STR(e.msg, "BERTH_METRICS_PORT: metric.port: expected an "
			 "integer in 0..65535, got \"x\"");
	clear_env();
	setenv("BERTH_METRICS_ENABLED", "yes", 1);
	CHECK(load("good_knobs.yml", true, true, &c, &e) < 0);
	CHECK_STR(e.msg, "BERTH_METRICS_ENABLED: metric.enabled: expected a "
			 "boolean (true or false), got \"yes\"");
	clear_env();

	/* bounds in the file, with a did-you-mean under berth.hooks */
	CHECK(load("bad_knobs.yml", false, false, &c, &e) < 0);
	CHECK(e.line == 4 && e.col == 18);
	CHECK_STR(e.msg, "berth.hooks.retry_scale: expected a number in "
			 "(0, 1000], got \"-1\"");
	CHECK(load("warn_knobs.yml", false, false, &c, &e) == 0);
	CHECK(c.n_warnings == 1);
	if (c.n_warnings == 1) {
		snprintf(want, sizeof(want),
			 "%s:13: unknown key 'max_attempt' at "
			 "berth.hooks.max_attempt (did you mean "
			 "'max_attempts'?)",
			 fx("warn_knobs.yml"));
		CHECK_STR(c.warnings[0], want);
	}
	config_fini(&c);
}

static void
test_https(void)
{
	struct berth_config c;
	struct berr e;

	CHECK(load("good_https.yml", true, false, &c, &e) == 0);
	CHECK_STR(c.protocol, "https");
	CHECK(c.https);
	CHECK(c.port == 8443);
	CHECK_STR(c.https_cert, fx("certs/job.crt"));
	CHECK_STR(c.https_key, fx("certs/job.key"));
	CHECK_STR(c.redis_url,
		  "rediss+sentinel://:pw@s1:26379,s2:26379/mymaster/2");
	CHECK(c.workers == 4);
	if (c.n_loggers == 1 && c.n_job_loggers == 1) {
		CHECK(c.job_loggers[0].level == BLOG_INFO); /* "info" */
		CHECK(c.loggers[0].level == BLOG_ERROR);
		CHECK_STR(c.loggers[0].output, "std_err");
	}
	config_fini(&c);

	/* quirk Q3: the block alone turns TLS on */
	CHECK(load("good_https_quirk.yml", true, false, &c, &e) == 0);
	CHECK_STR(c.protocol, "http");
	CHECK(c.https);
	CHECK_STR(c.https_cert, fx("certs/job.crt"));
	CHECK_STR(c.redis_url, "embedded");
	config_fini(&c);
}

static void
test_berth_block(void)
{
	struct berth_config c;
	struct berr e;
	char want[PATH_MAX + 64];

	CHECK(load("good_berth.yml", true, false, &c, &e) == 0);
	snprintf(want, sizeof(want), "%s/state", fixdir);
	CHECK_STR(c.data_dir, want);
	snprintf(want, sizeof(want), "%s/../manifest/good.yml", fixdir);
	CHECK_STR(c.manifest, want);
	CHECK_STR(c.plugin_dir, "/opt/berth/plugins");
	CHECK_STR(c.listen_address, "127.0.0.1");
	CHECK(c.max_body_bytes == 65536);
	CHECK(c.api_threads == 4);
	CHECK_STR(c.redis_server, "/usr/bin/redis-server");
	CHECK_STR(c.redis_appendfsync, "always");
	CHECK(c.shutdown_grace_seconds == 5);
	CHECK(c.workers == 10);            /* 0 -> 10 */
	CHECK(c.max_update_hours == 24);   /* 10 <= 24 -> 24 */
	CHECK(c.max_dangling_hours == 200); /* > 168 kept */
	CHECK(c.n_job_loggers == 1 && c.n_loggers == 1);
	if (c.n_job_loggers == 1 && c.n_loggers == 1) {
		snprintf(want, sizeof(want), "%s/state/logs/jobs", fixdir);
		CHECK_STR(c.job_loggers[0].base_dir, want);
		CHECK_STR(c.job_loggers[0].work_dir, want);
		CHECK(c.job_loggers[0].sweeper_duration == 1); /* 0 -> 1 */
		CHECK(c.job_loggers[0].level == BLOG_DEBUG);
		snprintf(want, sizeof(want), "%s/logs", fixdir);
		CHECK_STR(c.loggers[0].base_dir, want);
		CHECK_STR(c.loggers[0].filename, "berthd.log");
		CHECK(c.loggers[0].level == BLOG_WARNING); /* "WARN" */
	}
	/* free-form settings keys are not reported */
	CHECK(c.n_warnings == 0);
	config_fini(&c);

	/* ${data_dir} follows BERTH_DATA_DIR when env applies */
	setenv("BERTH_DATA_DIR", "/var/lib/berth", 1);
	CHECK(load("good_berth.yml", true, true, &c, &e) == 0);
	CHECK_STR(c.data_dir, "/var/lib/berth");
	if (c.n_job_loggers == 1)
		CHECK_STR(c.job_loggers[0].base_dir,
			  "/var/lib/berth/logs/jobs");
	config_fini(&c);
	unsetenv("BERTH_DATA_DIR");
}

static void
test_normalise(void)
{
	struct berth_config c;
	struct berr e;
	char want[PATH_MAX + 128];

	CHECK(load("good_normalise.yml", false, false, &c, &e) == 0);
	CHECK_STR(c.redis_url, "/run/redis/redis.sock"); /* no redis:// */
	CHECK(c.workers == 10);
	CHECK(c.idle_timeout_second == 30);
	CHECK(c.max_update_hours == 100);
	CHECK(c.max_dangling_hours == 168);
	CHECK(!c.metric_enabled && c.metric_port == 9090); /* "metric:" */
	CHECK(c.n_job_loggers == 2);
	if (c.n_job_loggers == 2 && c.n_loggers == 1) {
		CHECK(c.job_loggers[0].level == BLOG_WARNING);
		CHECK_STR(c.job_loggers[1].name, "DB");
		CHECK(c.job_loggers[1].sweeper_duration == 1); /* -3 -> 1 */
		CHECK(c.loggers[0].level == BLOG_WARNING); /* "" */
	}
	/* an unknown level is a warning, an empty one is silent */
	CHECK(c.n_warnings == 1);
	if (c.n_warnings == 1) {
		snprintf(want, sizeof(want),
			 "%s:11: job_loggers[0].level: unknown level "
			 "\"LOUD\", using WARNING",
			 fx("good_normalise.yml"));
		CHECK_STR(c.warnings[0], want);
	}
	config_fini(&c);
}

static void
test_unknown_keys(void)
{
	struct berth_config c;
	struct berr e;
	const char *f = fx("warn_unknown.yml");
	char want[5][PATH_MAX + 160];

	snprintf(want[0], sizeof(want[0]),
		 "%s:4: unknown key 'wrokers' at worker_pool.wrokers "
		 "(did you mean 'workers'?)",
		 f);
	snprintf(want[1], sizeof(want[1]),
		 "%s:10: unknown key 'levle' at job_loggers[0].levle "
		 "(did you mean 'level'?)",
		 f);
	snprintf(want[2], sizeof(want[2]),
		 "%s:18: unknown key 'api_thread' at berth.api_thread "
		 "(did you mean 'api_threads'?)",
		 f);
	snprintf(want[3], sizeof(want[3]),
		 "%s:19: unknown key 'completely_different' at "
		 "completely_different",
		 f);
	/* a dotted key is not a path into the schema */
	snprintf(want[4], sizeof(want[4]),
		 "%s:20: unknown key 'worker_pool.workers' at "
		 "worker_pool.workers",
		 f);
	CHECK(load("warn_unknown.yml", false, false, &c, &e) == 0);
	CHECK(c.n_warnings == 5);
	for (size_t i = 0; i < 5 && i < c.n_warnings; i++)
		CHECK_STR(c.warnings[i], want[i]);
	/* the misspelt key had no effect */
	CHECK(c.workers == 10);
	CHECK(c.api_threads == 64);
	config_fini(&c);

	/* strict: every unknown key is reported (with its column), then
	 * the load fails */
	CHECK(load("warn_unknown.yml", true, false, &c, &e) < 0);
	CHECK_STR(e.file, f);
	CHECK(e.line == 4 && e.col == 3);
	CHECK_STR(e.msg, "5 unknown keys (strict mode)");
	static const int cols[5] = {3, 5, 3, 1, 1};
	CHECK(c.n_errors == 5 && c.n_warnings == 0);
	for (size_t i = 0; i < 5 && i < c.n_errors; i++) {
		char at[PATH_MAX + 32];
		/* want[i] is "<file>:<line>: ..."; the error has the column */
		const char *rest = strchr(want[i] + strlen(f) + 1, ':');
		snprintf(at, sizeof(at), "%.*s:%d%s",
			 (int)(rest - want[i]), want[i], cols[i], rest);
		CHECK_STR(c.errors[i], at);
	}
	config_fini(&c);
	CHECK(c.errors == NULL && c.n_errors == 0);
}

/* A load that fails keeps the warnings found before the failure (a
 * misspelt key is often why a required one is missing). */
static void
test_findings_kept(void)
{
	struct berth_config c;
	struct berr e;
	CHECK(load("bad_missing_protocol.yml", false, false, &c, &e) < 0);
	CHECK(c.n_warnings == 1);
	if (c.n_warnings == 1)
		CHECK_CONTAINS(c.warnings[0], "unknown key 'protocl' at protocl "
					      "(did you mean 'protocol'?)");
	config_fini(&c);
	CHECK(c.warnings == NULL && c.n_warnings == 0);
}

/* settings.format: text (default) or json, for the service loggers and
 * the STD_OUTPUT job logger; a FILE job log keeps the text format */
static void
test_log_format(void)
{
	struct berth_config c;
	struct berr e;
	CHECK(load("good_log_format.yml", true, false, &c, &e) == 0);
	CHECK(c.n_loggers == 2 && c.n_job_loggers == 2);
	if (c.n_loggers == 2 && c.n_job_loggers == 2) {
		CHECK_STR(c.loggers[0].format, "json");
		CHECK_STR(c.loggers[1].format, "text");
		CHECK_STR(c.job_loggers[0].format, "json");
	}
	CHECK(c.n_warnings == 1);
	if (c.n_warnings == 1)
		CHECK_CONTAINS(c.warnings[0],
			       ":14: job_loggers[1].settings.format: job logs "
			       "in FILE keep the text format; ignored");
	config_fini(&c);

	CHECK(load("bad_log_format.yml", false, false, &c, &e) < 0);
	CHECK(e.line == 13 && e.col == 15);
	CHECK_STR(e.msg, "loggers[0].settings.format: expected one of "
			 "text|json, got \"jsno\" (did you mean 'json'?)");
	config_fini(&c);
}

struct bad_case {
	const char *file;
	int line, col;
	const char *msg; /* exact message (without file:line:col) */
};

static const struct bad_case bad_cases[] = {
	{"bad_type_port.yml", 3, 7,
	 "port: expected an integer in 1..65535, got \"abc\""},
	{"bad_quoted_port.yml", 2, 7,
	 "port: expected an integer in 1..65535, got \"8080\" (quoted, so a "
	 "string)"},
	{"bad_range_port.yml", 2, 7,
	 "port: expected an integer in 1..65535, got \"70000\""},
	{"bad_range_threads.yml", 12, 16,
	 "berth.api_threads: expected an integer in 1..1024, got \"0\""},
	{"bad_type_section.yml", 4, 15,
	 "worker_pool.redis_pool: expected a mapping, got \"redis:6379\""},
	{"bad_bool.yml", 12, 12,
	 "metric.enabled: expected a boolean (true or false), got \"yes\""},
	{"bad_missing_namespace.yml", 6, 5,
	 "worker_pool.redis_pool.namespace: required key is missing "
	 "(expected a non-empty string)"},
	{"bad_missing_protocol.yml", 1, 1,
	 "protocol: required key is missing (expected one of http|https; is "
	 "'protocl' on line 1 a typo?)"},
	{"bad_blank_namespace.yml", 6, 16,
	 "worker_pool.redis_pool.namespace: expected a non-empty string, got "
	 "\"  \""},
	{"bad_enum_protocol.yml", 1, 11,
	 "protocol: expected one of http|https, got \"HTTP\" (did you mean "
	 "'http'?)"},
	{"bad_enum_logger.yml", 9, 11,
	 "job_loggers[1].name: expected one of STD_OUTPUT|FILE|DB, got "
	 "\"file\" (did you mean 'FILE'?)"},
	{"bad_syntax.yml", 7, 1,
	 "found unexpected end of stream (while scanning a quoted scalar "
	 "started at 5:16)"},
	{"bad_indent.yml", 3, 14,
	 "mapping values are not allowed in this context"},
	{"bad_stdout_sweeper.yml", 11, 7,
	 "job_loggers[0].sweeper: no sweeper provided for the logger "
	 "STD_OUTPUT"},
	{"bad_https_nocert.yml", 1, 11,
	 "https_config.cert: required key is missing (certificate must be "
	 "configured if serve with protocol https)"},
	{"bad_https_nokey.yml", 4, 3,
	 "https_config.key: required key is missing (certificate must be "
	 "configured if serve with protocol https)"},
	{"bad_file_nobase.yml", 11, 7,
	 "job_loggers[0].settings.base_dir: required key is missing (the "
	 "FILE logger needs a base directory)"},
	{"bad_file_nofilename.yml", 12, 7,
	 "loggers[0].settings.filename: required key is missing (the FILE "
	 "service logger needs a file name)"},
	{"bad_file_noworkdir.yml", 12, 7,
	 "job_loggers[0].sweeper.settings.work_dir: required key is missing "
	 "(the FILE sweeper needs a work directory)"},
	{"bad_empty_loggers.yml", 9, 10,
	 "loggers: expected a sequence of at least one logger ({name, level, "
	 "settings, sweeper}), got an empty sequence"},
	{"bad_missing_loggers.yml", 1, 1,
	 "job_loggers: required key is missing (expected a sequence of at "
	 "least one logger ({name, level, settings, sweeper}))"},
	{"bad_redis_url.yml", 5, 16,
	 "worker_pool.redis_pool.redis_url: invalid redis URL "
	 "\"http://redis:6379\" (expected host:port, redis://, rediss://, "
	 "redis+sentinel://, rediss+sentinel://, unix://, a socket path or "
	 "embedded)"},
	{"bad_alias.yml", 7, 13, "aliases (*pool) are not supported"},
	{"bad_duplicate.yml", 7, 1,
	 "duplicate key 'port' (first defined at line 2)"},
	{"bad_root.yml", 1, 1,
	 "expected a mapping at the top level, got a sequence"},
	{"empty.yml", 1, 1,
	 "protocol: required key is missing (expected one of http|https)"},
};

static void
test_bad_files(void)
{
	for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++) {
		const struct bad_case *b = &bad_cases[i];
		struct berth_config c;
		struct berr e;
		int rc = load(b->file, false, false, &c, &e);
		CHECK_MSG(rc < 0, "%s loaded", b->file);
		CHECK_STR(e.file, fx(b->file));
		CHECK_MSG(e.line == b->line && e.col == b->col,
			  "%s: at %d:%d, want %d:%d", b->file, e.line, e.col,
			  b->line, b->col);
		CHECK_STR(e.msg, b->msg);
		config_fini(&c);
	}

	/* a missing key file is found once the paths are resolved */
	struct berth_config c;
	struct berr e;
	char want[PATH_MAX + 128];
	CHECK(load("bad_https_nofile.yml", false, false, &c, &e) < 0);
	CHECK(e.line == 5 && e.col == 8);
	snprintf(want, sizeof(want),
		 "https_config.key: file %s does not exist",
		 fx("certs/missing.key"));
	CHECK_STR(e.msg, want);

	/* the whole message, as the daemon prints it */
	char buf[2048];
	CHECK(load("bad_type_port.yml", false, false, &c, &e) < 0);
	snprintf(want, sizeof(want),
		 "%s:3:7: port: expected an integer in 1..65535, got \"abc\"",
		 fx("bad_type_port.yml"));
	CHECK_STR(berr_str(&e, buf, sizeof(buf)), want);

	CHECK(load("does_not_exist.yml", false, false, &c, &e) < 0);
	CHECK_CONTAINS(e.msg, "cannot open");
	CHECK_CONTAINS(e.msg, "does_not_exist.yml");
}

static void
test_env(void)
{
	struct berth_config c;
	struct berr e;
	char buf[2048];

	/* not applied unless asked */
	setenv("JOB_SERVICE_PORT", "abc", 1);
	CHECK(load("good_minimal.yml", false, false, &c, &e) == 0);
	CHECK(c.port == 8080);
	config_fini(&c);

	CHECK(load("good_minimal.yml", false, true, &c, &e) < 0);
	CHECK(e.line == 0 && e.file[0] == '\0');
	CHECK_STR(e.msg, "JOB_SERVICE_PORT: port: expected an integer in "
			 "0..65535, got \"abc\"");
	CHECK_STR(berr_str(&e, buf, sizeof(buf)), e.msg);

	setenv("JOB_SERVICE_PORT", "70000", 1);
	CHECK(load("good_minimal.yml", false, true, &c, &e) < 0);
	CHECK_CONTAINS(e.msg, "JOB_SERVICE_PORT");

	/* 0: tests bind an ephemeral port */
	setenv("JOB_SERVICE_PORT", "0", 1);
	CHECK(load("good_minimal.yml", false, true, &c, &e) == 0);
	CHECK(c.port == 0);
	config_fini(&c);

	/* empty values are ignored */
	setenv("JOB_SERVICE_PORT", "", 1);
	CHECK(load("good_minimal.yml", false, true, &c, &e) == 0);
	CHECK(c.port == 8080);
	config_fini(&c);
	unsetenv("JOB_SERVICE_PORT");

	/* cert/key only count when the protocol is https */
	setenv("JOB_SERVICE_HTTPS_CERT", fx("certs/job.crt"), 1);
	setenv("JOB_SERVICE_HTTPS_KEY", fx("certs/job.key"), 1);
	CHECK(load("good_minimal.yml", false, true, &c, &e) == 0);
	CHECK(!c.https && c.https_cert == NULL);
	config_fini(&c);
	setenv("JOB_SERVICE_PROTOCOL", "https", 1);
	CHECK(load("good_minimal.yml", false, true, &c, &e) == 0);
	CHECK_STR(c.protocol, "https");
	CHECK(c.https);
	CHECK_STR(c.https_cert, fx("certs/job.crt"));
	CHECK_STR(c.https_key, fx("certs/job.key"));
	config_fini(&c);
	unsetenv("JOB_SERVICE_HTTPS_KEY");
	CHECK(load("good_minimal.yml", false, true, &c, &e) < 0);
	CHECK_STR(e.msg, "JOB_SERVICE_PROTOCOL: https_config.key: required "
			 "key is missing (certificate must be configured if "
			 "serve with protocol https; or set "
			 "JOB_SERVICE_HTTPS_KEY)");
	unsetenv("JOB_SERVICE_HTTPS_CERT");
	setenv("JOB_SERVICE_PROTOCOL", "ftp", 1);
	CHECK(load("good_minimal.yml", false, true, &c, &e) < 0);
	CHECK_STR(e.msg, "JOB_SERVICE_PROTOCOL: protocol: expected one of "
			 "http|https, got \"ftp\" (did you mean 'http'?)");
	unsetenv("JOB_SERVICE_PROTOCOL");

	/* pool */
	setenv("JOB_SERVICE_POOL_WORKERS", "7", 1);
	setenv("JOB_SERVICE_POOL_REDIS_URL", "other:6380", 1);
	setenv("JOB_SERVICE_POOL_REDIS_NAMESPACE", "ns2", 1);
	setenv("JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND", "45", 1);
	setenv("JOB_SERVICE_POOL_BACKEND", "redis", 1);
	setenv("BERTH_DATA_DIR", "/tmp/berth-env", 1);
	CHECK(load("good_minimal.yml", false, true, &c, &e) == 0);
	CHECK(c.workers == 7);
	CHECK_STR(c.redis_url, "redis://other:6380");
	CHECK_STR(c.namespace_, "ns2");
	CHECK(c.idle_timeout_second == 45);
	CHECK_STR(c.data_dir, "/tmp/berth-env");
	CHECK(c.n_warnings == 0);
	config_fini(&c);

	/* an unparsable idle timeout is only a warning */
	setenv("JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND", "soon", 1);
	CHECK(load("good_minimal.yml", false, true, &c, &e) == 0);
	CHECK(c.idle_timeout_second == 0);
	CHECK(c.n_warnings == 1);
	if (c.n_warnings == 1)
		CHECK_STR(c.warnings[0],
			  "JOB_SERVICE_POOL_REDIS_CONN_IDLE_TIMEOUT_SECOND: "
			  "ignoring \"soon\": expected an integer in "
			  "0..2147483647; worker_pool.redis_pool."
			  "idle_timeout_second stays 0");
	config_fini(&c);

	setenv("JOB_SERVICE_POOL_WORKERS", "many", 1);
	CHECK(load("good_minimal.yml", false, true, &c, &e) < 0);
	CHECK_STR(e.msg, "JOB_SERVICE_POOL_WORKERS: worker_pool.workers: "
			 "expected an integer in 0..10000, got \"many\"");
	unsetenv("JOB_SERVICE_POOL_WORKERS");

	setenv("JOB_SERVICE_POOL_BACKEND", "memory", 1);
	CHECK(load("good_minimal.yml", false, true, &c, &e) < 0);
	CHECK_CONTAINS(e.msg, "JOB_SERVICE_POOL_BACKEND: worker_pool.backend");
	clear_env();

	/* the file's own cert may be overridden too */
	setenv("JOB_SERVICE_HTTPS_CERT", "/nonexistent/job.crt", 1);
	CHECK(load("good_https.yml", false, true, &c, &e) < 0);
	CHECK_STR(e.msg, "JOB_SERVICE_HTTPS_CERT: https_config.cert: file "
			 "/nonexistent/job.crt does not exist");
	clear_env();
}

static void
test_default_data_dir(void)
{
	char *d;
	char *home = getenv("HOME") ? xstrdup(getenv("HOME")) : NULL;
	char *xdg = getenv("XDG_STATE_HOME") ? xstrdup(getenv("XDG_STATE_HOME"))
					     : NULL;

	setenv("BERTH_DATA_DIR", "/d", 1);
	setenv("XDG_STATE_HOME", "/xdg", 1);
	setenv("HOME", "/home/u", 1);
	d = config_default_data_dir();
	CHECK_STR(d, "/d");
	free(d);
	unsetenv("BERTH_DATA_DIR");
	d = config_default_data_dir();
	CHECK_STR(d, "/xdg/berth");
	free(d);
	setenv("XDG_STATE_HOME", "relative", 1); /* invalid per XDG */
	d = config_default_data_dir();
	CHECK_STR(d, "/home/u/.local/state/berth");
	free(d);
	unsetenv("XDG_STATE_HOME");
	unsetenv("HOME");
	d = config_default_data_dir();
	CHECK_STR(d, "./berth-data");
	free(d);

	if (home)
		setenv("HOME", home, 1);
	if (xdg)
		setenv("XDG_STATE_HOME", xdg, 1);
	free(home);
	free(xdg);
}

static void
test_fini_zeroed(void)
{
	struct berth_config c;
	memset(&c, 0, sizeof(c));
	config_fini(&c);
	config_fini(NULL);
	CHECK(c.path == NULL);
}

int
main(void)
{
	if (fixtures_init("config") < 0)
		return 2;
	clear_env();

	test_harbor();
	test_minimal_defaults();
	test_knobs();
	test_https();
	test_berth_block();
	test_normalise();
	test_unknown_keys();
	test_findings_kept();
	test_log_format();
	test_bad_files();
	test_env();
	test_default_data_dir();
	test_fini_zeroed();
	TEST_DONE();
}

/* main.c - berthd: arguments, start-up, signals, shutdown. Nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <civetweb.h>

#include "config/config.h"
#include "daemon.h"
#include "engine/isolate.h"
#include "logs/log.h"
#include "plugins/plugin_host.h"
#include "store/redis_conn.h"
#include "common/tls_compat.h"

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: berthd -c <berth.yml> [options]\n"
		"  -c, --config FILE      service configuration (required)\n"
		"      --plugin-dir DIR   plugin directory (overrides the "
		"manifest;\n"
		"                         env BERTH_PLUGIN_DIR does the same)\n"
		"      --data-dir DIR     data directory (secret, embedded "
		"redis, logs)\n"
		"      --check-config     validate the configuration and "
		"manifest, then exit\n"
		"      --strict           unknown keys are errors (all are "
		"reported)\n"
		"  -v, --verbose          --check-config: also INFO lines "
		"(-vv: DEBUG)\n"
		"      --port-file FILE   write the bound API port to FILE\n"
		"  -V, --version          print the version\n"
		"  -h, --help             this text\n");
}

/* Service loggers (spec 10.3): every STD_OUTPUT and FILE entry of
 * `loggers` gets its own output and level. A FILE log is opened for
 * appending and created 0600 (it can name job ids and URLs). When none
 * can be used, lines go to stderr. */
static void
open_service_logs(const struct berth_config *cfg)
{
	size_t n = 0;
	for (size_t i = 0; i < cfg->n_loggers; i++) {
		const struct logger_config *l = &cfg->loggers[i];
		FILE *f = NULL;
		bool owned = false;
		if (strcmp(l->name, "STD_OUTPUT") == 0) {
			f = l->output && strcmp(l->output, "std_err") == 0
				    ? stderr
				    : stdout;
		} else if (strcmp(l->name, "FILE") == 0 && l->base_dir &&
			   l->filename) {
			char *p = util_path_join(l->base_dir, l->filename);
			util_mkdir_p(l->base_dir, 0700);
			int fd = open(p, O_WRONLY | O_APPEND | O_CREAT |
						 O_CLOEXEC, 0600);
			f = fd >= 0 ? fdopen(fd, "a") : NULL;
			if (!f) {
				fprintf(stderr, "berthd: cannot open service "
						"log %s: %s\n", p,
					strerror(errno));
				if (fd >= 0)
					close(fd);
			}
			free(p);
			owned = true;
		}
		int format = blog_format_parse(l->format);
		if (f && blog_add_output(f, l->level, owned,
					 format < 0 ? BLOG_FORMAT_TEXT
						    : (enum blog_format)format) == 0)
			n++;
		else if (f && owned)
			fclose(f);
	}
	if (n == 0)
		blog_set_output(stderr);
}

/* The findings of a configuration load: each once, warnings first, then
 * the errors (strict mode: every unknown key) and the error. */
static void
print_findings(char **warnings, size_t n_warnings, char **errors,
	       size_t n_errors, const struct berr *err)
{
	for (size_t i = 0; i < n_warnings; i++)
		fprintf(stderr, "warning: %s\n", warnings[i]);
	for (size_t i = 0; i < n_errors; i++)
		fprintf(stderr, "error: %s\n", errors[i]);
	if (err) {
		char buf[BERR_MSG_MAX + 600];
		fprintf(stderr, "berthd: %s\n", berr_str(err, buf, sizeof(buf)));
	}
}

/* --check-config: the configuration is loaded already (its warnings are
 * printed here); the manifest and the plugins are loaded as the daemon
 * would, without Redis. Every finding is printed once: the manifest's and
 * the plugins' through the service log, which goes to stderr as
 * "warning: ..." lines. "is valid" only when nothing failed. */
static int
check_config(const struct berth_config *cfg, const struct berthd_options *o)
{
	print_findings(cfg->warnings, cfg->n_warnings, NULL, 0, NULL);
	/* the whole redis URL (the config rows check only its scheme) */
	if (strcmp(cfg->redis_url, "embedded") != 0) {
		struct redis_target t;
		struct berr uerr;
		berr_clear(&uerr);
		int bad = redis_url_parse(cfg->redis_url, &t, &uerr);
		explicit_bzero(&t, sizeof(t));
		if (bad < 0) {
			fprintf(stderr, "berthd: %s: worker_pool.redis_pool."
				"redis_url: %s\n", cfg->path, uerr.msg);
			return 1;
		}
	}
	struct plugin_registry *r = plugin_registry_new();
	const char *dir = o->plugin_dir ? o->plugin_dir : cfg->plugin_dir;
	struct berr err;
	berr_clear(&err);
	int rc = 0;
	if (plugin_registry_load(r, cfg->manifest, dir, o->strict, &err) < 0) {
		print_findings(NULL, 0, NULL, 0, &err);
		rc = 1;
	} else {
		cJSON *desc = plugin_registry_describe(r);
		cJSON *it;
		size_t loaded = 0, refused = 0;
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(desc, "plugins")) {
			printf("loaded %s (%s)\n",
			       cJSON_GetStringValue(cJSON_GetObjectItem(it, "name")),
			       cJSON_GetStringValue(cJSON_GetObjectItem(it, "file")));
			loaded++;
		}
		/* each refusal was logged with its reason */
		refused = (size_t)cJSON_GetArraySize(
			cJSON_GetObjectItem(desc, "refused"));
		if (refused > 0) {
			fprintf(stderr, "berthd: %zu job type%s of %s refused\n",
				refused, refused == 1 ? "" : "s", cfg->manifest);
			rc = 1;
		} else {
			printf("configuration %s is valid; manifest %s: %zu job "
			       "type%s loaded\n",
			       cfg->path, cfg->manifest, loaded,
			       loaded == 1 ? "" : "s");
		}
		cJSON_Delete(desc);
	}
	plugin_registry_free(r);
	return rc;
}

/* --check-config is quiet: the service log shows warnings and errors only,
 * as "warning: ..." lines on stderr, unless -v (INFO), -vv (DEBUG) or
 * LOG_LEVEL ask for more. */
static void
check_config_log(int verbose)
{
	int level = BLOG_WARNING;
	int env = blog_level_parse(getenv("LOG_LEVEL"));
	if (env >= 0)
		level = env;
	if (verbose == 1 && level > BLOG_INFO)
		level = BLOG_INFO;
	if (verbose >= 2)
		level = BLOG_DEBUG;
	blog_set_output(NULL);
	blog_add_output(stderr, level, false, BLOG_FORMAT_PLAIN);
}

/* glibc's allocator tuned for a small, steady footprint (issue 12: RSS
 * <= 12 MiB idle, <= 16 MiB through a 1,000,000-job backlog):
 *   - one arena: 64 API threads would otherwise get up to 16, each
 *     keeping what a large batch request left behind (a 1,000-job batch:
 *     peak 14.2 MiB with 4 arenas, 12.6 with one); the per-thread caches
 *     (tcache) keep small allocations off its lock (drain throughput
 *     unchanged, ~22-24k jobs/s);
 *   - a fixed mmap threshold of 128 KiB: glibc raises it after the first
 *     free of a large block (up to 32 MiB), so a 1,000-job batch's buffers
 *     would come from the heap and stay there; fixed, they are mapped and
 *     returned to the system when freed;
 *   - heap tops above 256 KiB are trimmed. */
static void
tune_malloc(void)
{
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TRIM_THRESHOLD, 256 * 1024);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"plugin-dir", required_argument, NULL, 'p'},
		{"data-dir", required_argument, NULL, 'd'},
		{"check-config", no_argument, NULL, 'k'},
		{"strict", no_argument, NULL, 's'},
		{"port-file", required_argument, NULL, 'f'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	/* a plugin runner of an isolated job type (engine/isolate.h) */
	if (argc >= 2 && strcmp(argv[1], ISOLATE_RUNNER_ARG) == 0)
		return isolate_runner_main(argc, argv);
	struct berthd_options o = {0};
	bool check = false;
	int verbose = 0;
	int c;
	while ((c = getopt_long(argc, argv, "c:vVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o.config_path = optarg; break;
		case 'p': o.plugin_dir = optarg; break;
		case 'd': o.data_dir = optarg; break;
		case 'k': check = true; break;
		case 's': o.strict = true; break;
		case 'f': o.port_file = optarg; break;
		case 'v': verbose++; break;
		case 'V': printf("berthd %s\n", BERTH_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.config_path || optind != argc) {
		usage(stderr);
		return 2;
	}
	struct berth_config cfg;
	struct berr err;
	berr_clear(&err);
	memset(&cfg, 0, sizeof(cfg));
	struct config_options copts = {.strict = o.strict, .apply_env = true};
	if (config_load(o.config_path, &copts, &cfg, &err) < 0) {
		print_findings(cfg.warnings, cfg.n_warnings, cfg.errors,
			       cfg.n_errors, &err);
		config_fini(&cfg);
		return 2;
	}
	if (o.data_dir) {
		free(cfg.data_dir);
		cfg.data_dir = xstrdup(o.data_dir);
	}
	blog_set_level(cfg.log_level); /* berth.log_level / LOG_LEVEL */
	if (check) {
		check_config_log(verbose);
		int rc = check_config(&cfg, &o);
		blog_set_output(NULL);
		config_fini(&cfg);
		return rc;
	}

	/* Signals are taken synchronously by this thread only. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	tune_malloc();

	open_service_logs(&cfg);
	for (size_t i = 0; i < cfg.n_warnings; i++)
		log_warn("%s", cfg.warnings[i]);
	log_info("berthd %s starting with %s", BERTH_VERSION, cfg.path);
	if (cfg.https && tls_compat_prepare(&err) < 0) {
		log_error("%s", err.msg);
		fprintf(stderr, "berthd: %s\n", err.msg);
		config_fini(&cfg);
		return 1;
	}
	mg_init_library(cfg.https ? MG_FEATURES_TLS : 0);

	struct berthd d;
	memset(&d, 0, sizeof(d));
	int rc = 0;
	if (berthd_start(&d, &cfg, &o, &err) < 0) {
		char buf[BERR_MSG_MAX + 600];
		log_error("start-up failed: %s",
			  berr_str(&err, buf, sizeof(buf)));
		fprintf(stderr, "berthd: start-up failed: %s\n", buf);
		rc = 1;
	} else {
		log_info("berthd ready (data dir %s)", cfg.data_dir);
		for (;;) {
			int sig = 0;
			if (sigwait(&set, &sig) != 0)
				continue;
			if (sig == SIGHUP) {
				log_info("SIGHUP: reloading plugins");
				berr_clear(&err);
				if (berthd_reload_plugins(&d, &err) < 0)
					log_error("plugin reload failed: %s",
						  err.msg);
				continue;
			}
			log_info("signal %d: shutting down", sig);
			break;
		}
		berthd_stop(&d);
	}
	mg_exit_library();
	log_info("berthd stopped");
	blog_set_output(NULL);
	config_fini(&cfg);
	return rc;
}

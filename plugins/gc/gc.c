/* gc.c - GARBAGE_COLLECTION: reclaims a distribution registry's storage
 * with the registry's own offline mark-and-sweep (`docker-registry
 * garbage-collect`), as Harbor's registry controller once did.
 * README.md is the reference; in short:
 *
 * params:   delete_untagged (default true), dry_run (default false);
 *           Harbor's workers, time_window, redis_url_reg and delete_tag
 *           are accepted and ignored (README: why).
 * run:      1. measure the storage (blobs, bytes, manifest revisions);
 *           2. readonly_enter_command (optional);
 *           3. delete_untagged: remove the manifests no tag reaches
 *              (storage.c, index-aware), or let the tool do it
 *              (untagged_deleter: registry);
 *           4. `<registry_binary> garbage-collect [--dry-run]
 *              [--delete-untagged] <registry_config>`, its output into the
 *              job log line by line;
 *           5. readonly_leave_command (always, once 2 succeeded);
 *           6. measure again; check in
 *              {"freed_space":<bytes>,"purged_blobs":<n>,
 *               "purged_manifests":<n>} (plus dry-run estimates).
 *           Stop is honoured between the phases and kills the tool.
 * limits:   max_fails 1, max_concurrency 1, priority 1000, never retried
 *           (spec 13.1).
 * settings: registry_config (required), registry_binary, registry_storage,
 *           readonly_enter_command, readonly_leave_command,
 *           command_timeout_seconds, timeout_seconds, untagged_deleter. */
#define _GNU_SOURCE
#include <berth/plugin.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "proc.h"
#include "storage.h"

struct gc_settings {
	char *binary;        /* registry_binary */
	char *config;        /* registry_config */
	char *storage;       /* registry_storage (NULL: from the config) */
	char *enter;         /* readonly_enter_command */
	char *leave;         /* readonly_leave_command */
	long long command_timeout_s;
	long long timeout_s; /* 0: none */
	bool tool_untagged;  /* untagged_deleter: registry */
};

struct gc_params {
	bool delete_untagged;
	bool dry_run;
};

/* --- settings ------------------------------------------------------------- */

static void
settings_free(struct gc_settings *s)
{
	if (!s)
		return;
	free(s->binary);
	free(s->config);
	free(s->storage);
	free(s->enter);
	free(s->leave);
	free(s);
}

static bool
gc_should_retry(void *type_state)
{
	(void)type_state;
	return false; /* spec 13.1: GARBAGE_COLLECTION is never retried */
}

static int
gc_init(struct berth_job_ctx *ctx, void **type_state)
{
	struct gc_settings *s = calloc(1, sizeof(*s));
	char *deleter = NULL;
	if (!s) {
		berth_log_error(ctx, "out of memory");
		return -1;
	}
	if (berth_setting_strdup(ctx, "registry_binary", "docker-registry",
			&s->binary) ||
	    berth_setting_strdup(ctx, "registry_config", NULL, &s->config) ||
	    berth_setting_strdup(ctx, "registry_storage", NULL, &s->storage) ||
	    berth_setting_strdup(ctx, "readonly_enter_command", NULL, &s->enter) ||
	    berth_setting_strdup(ctx, "readonly_leave_command", NULL, &s->leave) ||
	    berth_setting_strdup(ctx, "untagged_deleter", "berth", &deleter) ||
	    berth_setting_int_in(ctx, "command_timeout_seconds", 300, 1, 86400,
			&s->command_timeout_s) ||
	    berth_setting_int_in(ctx, "timeout_seconds", 0, 0, 31536000,
			&s->timeout_s))
		goto fail;
	if (!s->config) {
		berth_log_error(ctx, "setting registry_config is required: the "
				     "path of the registry's config.yml (the "
				     "file `docker-registry serve` uses)");
		goto fail;
	}
	if (!s->enter != !s->leave) {
		berth_log_error(ctx, "settings readonly_enter_command and "
				     "readonly_leave_command go together: set "
				     "both or neither");
		goto fail;
	}
	if (strcmp(deleter, "berth") == 0) {
		s->tool_untagged = false;
	} else if (strcmp(deleter, "registry") == 0) {
		s->tool_untagged = true;
	} else {
		berth_log_error(ctx, "setting untagged_deleter must be \"berth\" "
				     "or \"registry\"");
		goto fail;
	}
	free(deleter);
	if (BERTH_HOST_HAS(ctx->host, limits)) {
		struct berth_type_limits *l = berth_limits(ctx);
		l->max_fails = 1;
		l->max_concurrency = 1;
		if (BERTH_LIMITS_HAS(l, should_retry))
			l->should_retry = gc_should_retry;
	}
	berth_log_info(ctx,
		       "ready: %s garbage-collect %s; read-only window: %s; "
		       "untagged manifests removed by %s",
		       s->binary, s->config, s->enter ? "commands set" : "none",
		       s->tool_untagged ? "the registry's tool" : "Berth");
	*type_state = s;
	return 0;
fail:
	free(deleter);
	settings_free(s);
	return -1;
}

static void
gc_fini(void *type_state)
{
	settings_free(type_state);
}

/* --- parameters ------------------------------------------------------------ */

static const char *
type_name(enum berth_json_type t)
{
	switch (t) {
	case BERTH_JSON_NULL:
		return "null";
	case BERTH_JSON_BOOL:
		return "a boolean";
	case BERTH_JSON_NUMBER:
		return "a number";
	case BERTH_JSON_STRING:
		return "a string";
	case BERTH_JSON_ARRAY:
		return "an array";
	case BERTH_JSON_OBJECT:
		return "an object";
	default:
		return "absent";
	}
}

/* Harbor's parameters: the two that act, and four accepted for
 * compatibility (checked for their JSON type only). */
static int
read_params(struct berth_job_ctx *ctx, struct gc_params *p, char *err,
	    size_t errlen)
{
	static const struct {
		const char *key;
		enum berth_json_type type;
	} known[] = {
		{"delete_untagged", BERTH_JSON_BOOL},
		{"dry_run", BERTH_JSON_BOOL},
		{"delete_tag", BERTH_JSON_BOOL},
		{"workers", BERTH_JSON_NUMBER},
		{"time_window", BERTH_JSON_NUMBER},
		{"redis_url_reg", BERTH_JSON_STRING},
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		enum berth_json_type t = berth_param_type(ctx, known[i].key);
		if (t == BERTH_JSON_ABSENT || t == BERTH_JSON_NULL ||
		    t == known[i].type)
			continue;
		snprintf(err, errlen, "parameter %s must be %s, not %s",
			 known[i].key, type_name(known[i].type), type_name(t));
		return -1;
	}
	p->delete_untagged = true; /* Harbor's default */
	p->dry_run = false;
	bool b;
	if (berth_param_bool(ctx, "delete_untagged", &b))
		p->delete_untagged = b;
	if (berth_param_bool(ctx, "dry_run", &b))
		p->dry_run = b;
	return 0;
}

static int
gc_validate(struct berth_job_ctx *ctx, const char *params_json, char *err,
	    size_t errlen)
{
	(void)params_json;
	struct gc_params p;
	return read_params(ctx, &p, err, errlen);
}

/* --- run ------------------------------------------------------------------- */

struct gc_run {
	struct berth_job_ctx *ctx;
	const struct gc_settings *s;
	struct gc_params p;
	const char *root; /* NULL: not a filesystem storage */
	/* the tool's output */
	const char *tag;  /* prefix of the output lines */
	size_t tool_marked, tool_blobs, tool_manifests;
	bool tool_summary;
	size_t eligible_lines;
	long long eligible_bytes; /* of the blobs named eligible */
	const struct gc_snapshot *before;
	char last_line[512];
};

static bool
stop_cb(void *ud)
{
	struct gc_run *r = ud;
	return berth_stop_requested(r->ctx);
}

static void
say_cb(void *ud, int level, const char *msg)
{
	struct gc_run *r = ud;
	berth_log(r->ctx,
		  level >= 2   ? BERTH_LOG_WARNING
		  : level == 1 ? BERTH_LOG_INFO
			       : BERTH_LOG_DEBUG,
		  "%s", msg);
}

/* One output line of a command or of the tool. */
static void
line_cb(void *ud, const char *line)
{
	struct gc_run *r = ud;
	size_t a, b, c;
	int level = BERTH_LOG_INFO;
	if (!*line)
		return;
	snprintf(r->last_line, sizeof(r->last_line), "%s", line);
	if (strcmp(r->tag, "garbage-collect") == 0) {
		const char *dg;
		if (sscanf(line,
			   "%zu blobs marked, %zu blobs and %zu manifests "
			   "eligible for deletion",
			   &a, &b, &c) == 3) {
			r->tool_marked = a;
			r->tool_blobs = b;
			r->tool_manifests = c;
			r->tool_summary = true;
		} else if ((dg = strstr(line, "blob eligible for deletion: "))) {
			long long sz = r->before
					       ? gc_snapshot_size(
							 r->before,
							 dg + strlen("blob eligible "
								     "for "
								     "deletion: "))
					       : -1;
			r->eligible_lines++;
			if (sz > 0)
				r->eligible_bytes += sz;
		} else if (strstr(line, ": marking ")) {
			level = BERTH_LOG_DEBUG; /* one per blob: many */
		}
		if (strstr(line, "level=error") || strstr(line, "level=fatal") ||
		    strstr(line, "level=panic") ||
		    strstr(line, "failed to garbage collect"))
			level = BERTH_LOG_WARNING;
	}
	berth_log(r->ctx, level, "[%s] %s", r->tag, line);
}

static const char *
human(long long bytes, char *buf, size_t len)
{
	if (bytes >= 1024LL * 1024 * 1024)
		snprintf(buf, len, "%.2f GiB",
			 (double)bytes / (1024.0 * 1024 * 1024));
	else if (bytes >= 1024 * 1024)
		snprintf(buf, len, "%.2f MiB", (double)bytes / (1024.0 * 1024));
	else if (bytes >= 1024)
		snprintf(buf, len, "%.1f KiB", (double)bytes / 1024.0);
	else
		snprintf(buf, len, "%lld B", bytes);
	return buf;
}

/* Runs a read-only window command with sh -c. 0 when it exited 0. */
static int
run_command(struct gc_run *r, const char *what, const char *cmd,
	    bool stoppable, char *err, size_t errlen)
{
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	struct gc_proc p = {
		.argv = argv,
		.timeout_ms = r->s->command_timeout_s * 1000,
		.stop = stoppable ? stop_cb : NULL,
		.stop_ud = r,
		.line = line_cb,
		.line_ud = r,
	};
	int status = 0;
	char why[512] = "";
	berth_log_info(r->ctx, "running %s", what);
	r->tag = what;
	r->last_line[0] = '\0';
	enum gc_proc_end end = gc_proc_run(&p, &status, why, sizeof(why));
	switch (end) {
	case GC_PROC_EXITED:
		if (status == 0) {
			berth_log_info(r->ctx, "%s done", what);
			return 0;
		}
		snprintf(err, errlen, "%s failed (exit status %d)%s%s", what,
			 status, r->last_line[0] ? ": " : "", r->last_line);
		return -1;
	case GC_PROC_TIMEOUT:
		snprintf(err, errlen,
			 "%s did not finish within command_timeout_seconds "
			 "(%lld s); killed",
			 what, r->s->command_timeout_s);
		return -1;
	case GC_PROC_FAILED:
		snprintf(err, errlen, "%s: %s", what, why);
		return -1;
	default:
		snprintf(err, errlen, "%s was killed by signal %d", what,
			 status);
		return -1;
	}
}

/* The registry's storage root: registry_storage, else the variable the
 * registry itself would read, else the config's. NULL for a storage that
 * is not the filesystem driver. */
static char *
storage_root(struct gc_run *r, char *err, size_t errlen)
{
	if (r->s->storage)
		return strdup(r->s->storage);
	struct gc_regconfig rc;
	if (gc_regconfig_read(r->s->config, &rc, err, errlen) != 0)
		return NULL;
	const char *env = getenv("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY");
	char *root = NULL;
	if (rc.driver && strcmp(rc.driver, "filesystem") == 0)
		root = strdup(env && *env ? env : rc.rootdirectory);
	else
		berth_log_warning(r->ctx,
				  "the registry's storage driver is %s, not "
				  "filesystem: the storage cannot be measured "
				  "(set registry_storage if it is a "
				  "filesystem after all)",
				  rc.driver ? rc.driver : "unset");
	gc_regconfig_fini(&rc);
	err[0] = '\0';
	return root;
}

static int
measure(struct gc_run *r, const char *when, struct gc_snapshot *snap,
	char *err, size_t errlen)
{
	char h1[32], h2[32];
	int rc = gc_snapshot_take(r->root, snap, stop_cb, r, err, errlen);
	if (rc)
		return rc;
	berth_log_info(r->ctx,
		       "storage %s %s: %zu blobs (%s), %zu manifest revisions "
		       "in %zu repositories, %s in all",
		       r->root, when, snap->n_blobs,
		       human(snap->blob_bytes, h1, sizeof(h1)),
		       snap->revisions, snap->repositories,
		       human(snap->total_bytes, h2, sizeof(h2)));
	return 0;
}

static int
checkin(struct gc_run *r, long long freed, size_t blobs, size_t manifests,
	long long eligible_bytes, size_t eligible_blobs,
	size_t eligible_manifests)
{
	cJSON *o = cJSON_CreateObject();
	char *text = NULL;
	if (!o ||
	    !cJSON_AddNumberToObject(o, "freed_space", (double)freed) ||
	    !cJSON_AddNumberToObject(o, "purged_blobs", (double)blobs) ||
	    !cJSON_AddNumberToObject(o, "purged_manifests",
				     (double)manifests) ||
	    (r->p.dry_run &&
	     (!cJSON_AddBoolToObject(o, "dry_run", true) ||
	      !cJSON_AddNumberToObject(o, "eligible_space",
				       (double)eligible_bytes) ||
	      !cJSON_AddNumberToObject(o, "eligible_blobs",
				       (double)eligible_blobs) ||
	      !cJSON_AddNumberToObject(o, "eligible_manifests",
				       (double)eligible_manifests))) ||
	    !(text = cJSON_PrintUnformatted(o))) {
		cJSON_Delete(o);
		return -1;
	}
	cJSON_Delete(o);
	int rc = berth_checkin(r->ctx, text); /* the host logs it */
	free(text);
	return rc;
}

static enum berth_run_result
stopped(struct gc_run *r, const char *where)
{
	berth_log_info(r->ctx, "stopped %s", where);
	return BERTH_RUN_STOPPED;
}

static enum berth_run_result
gc_run(struct berth_job_ctx *ctx, const char *params_json, char *err,
       size_t errlen)
{
	(void)params_json;
	struct gc_run r = {.ctx = ctx, .s = ctx->type_state};
	const struct gc_settings *s = r.s;
	struct gc_snapshot before = {0}, after = {0};
	struct gc_untagged_stats ust = {0};
	char *root = NULL;
	bool entered = false, have_before = false;
	enum berth_run_result res = BERTH_RUN_ERROR;
	char why[1024] = "";
	char h[32];

	if (read_params(ctx, &r.p, err, errlen) != 0)
		return BERTH_RUN_ERROR;
	berth_log_info(ctx, "garbage collection: delete_untagged %s, dry_run "
			    "%s",
		       r.p.delete_untagged ? "true" : "false",
		       r.p.dry_run ? "true" : "false");
	if (berth_param_type(ctx, "workers") == BERTH_JSON_NUMBER ||
	    berth_param_type(ctx, "time_window") == BERTH_JSON_NUMBER ||
	    berth_param_type(ctx, "redis_url_reg") == BERTH_JSON_STRING ||
	    berth_param_type(ctx, "delete_tag") == BERTH_JSON_BOOL)
		berth_log_info(ctx, "parameters workers, time_window, "
				    "redis_url_reg and delete_tag do not apply "
				    "to the registry's offline garbage "
				    "collection and are ignored");
	if (access(s->config, R_OK) != 0) {
		snprintf(err, errlen, "cannot read the registry config %s "
				      "(setting registry_config): %s",
			 s->config, strerror(errno));
		return BERTH_RUN_ERROR;
	}
	root = storage_root(&r, why, sizeof(why));
	if (!root && why[0]) {
		snprintf(err, errlen, "%s", why);
		return BERTH_RUN_ERROR;
	}
	r.root = root;
	if (r.p.delete_untagged && !s->tool_untagged && !root) {
		snprintf(err, errlen,
			 "delete_untagged needs the filesystem storage for "
			 "Berth's index-aware removal of untagged manifests; "
			 "set untagged_deleter: registry to let the registry's "
			 "tool do it (it also removes the children of "
			 "multi-arch images), or submit delete_untagged: "
			 "false");
		goto out;
	}
	if (!s->enter)
		berth_log_warning(ctx, "no read-only window is configured "
				       "(readonly_enter_command): the registry "
				       "must not accept pushes during the sweep, "
				       "or blobs of a push in progress may be "
				       "deleted");

	/* 1. measure */
	if (root) {
		int rc = measure(&r, "before", &before, why, sizeof(why));
		if (rc == -2) {
			res = stopped(&r, "while measuring the storage");
			goto out;
		}
		if (rc) {
			snprintf(err, errlen, "%s", why);
			goto out;
		}
		have_before = true;
		r.before = &before;
	}
	if (berth_stop_requested(ctx)) {
		res = stopped(&r, "before the sweep; nothing was changed");
		goto out;
	}

	/* 2. the read-only window */
	if (s->enter) {
		if (run_command(&r, "readonly_enter_command", s->enter, false,
				err, errlen) != 0)
			goto out; /* not entered: no leave */
		entered = true;
		if (berth_stop_requested(ctx)) {
			res = stopped(&r, "before the sweep; nothing was "
					  "changed");
			goto leave;
		}
	}

	/* 3. untagged manifests, Berth's way */
	if (r.p.delete_untagged && !s->tool_untagged) {
		berth_log_info(ctx, "%s the manifests no tag reaches%s",
			       r.p.dry_run ? "looking for" : "removing",
			       r.p.dry_run ? " (dry run: nothing is removed)"
					   : "");
		int rc = gc_untagged_sweep(root, r.p.dry_run, say_cb, &r,
					   stop_cb, &r, &ust, why,
					   sizeof(why));
		berth_log_info(ctx,
			       "untagged manifests: %zu repositories, %zu "
			       "revisions, %zu kept, %zu eligible, %zu removed",
			       ust.repositories, ust.revisions, ust.kept,
			       ust.eligible, ust.removed);
		if (rc == -2) {
			res = stopped(&r, "during the removal of untagged "
					  "manifests");
			goto leave;
		}
		if (rc) {
			snprintf(err, errlen, "%s", why);
			goto leave;
		}
		if (berth_stop_requested(ctx)) {
			res = stopped(&r, "after the removal of untagged "
					  "manifests, before the sweep");
			goto leave;
		}
	}

	/* 4. the registry's mark and sweep */
	{
		const char *argv[6];
		size_t n = 0;
		argv[n++] = s->binary;
		argv[n++] = "garbage-collect";
		if (r.p.dry_run)
			argv[n++] = "--dry-run";
		if (r.p.delete_untagged && s->tool_untagged)
			argv[n++] = "--delete-untagged";
		argv[n++] = s->config;
		argv[n] = NULL;
		struct gc_proc p = {
			.argv = argv,
			.timeout_ms = s->timeout_s * 1000,
			.stop = stop_cb,
			.stop_ud = &r,
			.line = line_cb,
			.line_ud = &r,
		};
		int status = 0;
		berth_log_info(ctx, "running %s garbage-collect%s%s %s",
			       s->binary, r.p.dry_run ? " --dry-run" : "",
			       r.p.delete_untagged && s->tool_untagged
				       ? " --delete-untagged"
				       : "",
			       s->config);
		r.tag = "garbage-collect";
		r.last_line[0] = '\0';
		enum gc_proc_end end =
			gc_proc_run(&p, &status, why, sizeof(why));
		if (end == GC_PROC_STOPPED) {
			res = stopped(&r, "during the sweep (garbage-collect "
					  "killed)");
			goto leave;
		}
		if (end == GC_PROC_TIMEOUT) {
			snprintf(err, errlen,
				 "garbage-collect did not finish within "
				 "timeout_seconds (%lld s); killed",
				 s->timeout_s);
			goto leave;
		}
		if (end == GC_PROC_FAILED) {
			snprintf(err, errlen, "garbage-collect: %s (setting "
					      "registry_binary)",
				 why);
			goto leave;
		}
		if (end == GC_PROC_SIGNALED || status != 0) {
			snprintf(err, errlen,
				 "garbage-collect %s %d%s%s",
				 end == GC_PROC_SIGNALED
					 ? "was killed by signal"
					 : "exited with status",
				 status, r.last_line[0] ? ": " : "",
				 r.last_line);
			goto leave;
		}
		if (!r.tool_summary)
			berth_log_warning(ctx, "garbage-collect printed no "
					       "summary line");
	}
	res = BERTH_RUN_SUCCESS;

leave:
	/* 5. leave the read-only window, whatever happened */
	if (entered) {
		char lerr[1024];
		if (run_command(&r, "readonly_leave_command", s->leave, false,
				lerr, sizeof(lerr)) != 0) {
			berth_log_error(ctx, "%s; the registry may still be "
					     "read-only",
					lerr);
			if (res != BERTH_RUN_ERROR)
				snprintf(err, errlen,
					 "%s; the registry may still be "
					 "read-only",
					 lerr);
			res = BERTH_RUN_ERROR;
		}
	}
	/* a sweep that ran to its summary is reported, even when leaving
	 * the window failed afterwards */
	if (!r.tool_summary || res == BERTH_RUN_STOPPED)
		goto out;

	/* 6. measure again, check in */
	{
		size_t purged_blobs = 0, purged_manifests = 0;
		long long freed = 0;
		if (!r.p.dry_run) {
			purged_manifests = s->tool_untagged ? r.tool_manifests
							    : ust.removed;
			if (have_before) {
				int rc = measure(&r, "after", &after, why,
						 sizeof(why));
				if (rc) {
					berth_log_warning(
						ctx, "cannot measure the storage "
						     "after the sweep: %s",
						rc == -2 ? "stopped" : why);
					purged_blobs = r.tool_blobs;
				} else {
					gc_snapshot_gone(&before, &after,
							 &purged_blobs, &freed);
					if (purged_blobs != r.tool_blobs)
						berth_log_warning(
							ctx,
							"garbage-collect named "
							"%zu blobs eligible; %zu "
							"are gone from the "
							"storage",
							r.tool_blobs,
							purged_blobs);
				}
			} else {
				purged_blobs = r.tool_blobs;
			}
			berth_log_info(ctx,
				       "freed %s (%lld bytes): %zu blobs and "
				       "%zu manifests purged",
				       human(freed, h, sizeof(h)), freed,
				       purged_blobs, purged_manifests);
		} else {
			size_t em = s->tool_untagged ? r.tool_manifests
						     : ust.eligible;
			berth_log_info(ctx,
				       "dry run: %zu blobs (%s) and %zu "
				       "manifests are eligible for deletion; "
				       "nothing was deleted",
				       r.tool_blobs,
				       human(r.eligible_bytes, h, sizeof(h)),
				       em);
		}
		if (checkin(&r, freed, purged_blobs, purged_manifests,
			    r.eligible_bytes, r.tool_blobs,
			    s->tool_untagged ? r.tool_manifests
					     : ust.eligible) != 0)
			berth_log_warning(ctx, "the check-in was not recorded");
	}
	if (res == BERTH_RUN_SUCCESS)
		berth_log_info(ctx, "garbage collection done");
out:
	gc_snapshot_fini(&before);
	gc_snapshot_fini(&after);
	free(root);
	return res;
}

static const struct berth_job_type gc_type = {
	BERTH_JOB_TYPE_INIT,
	.name = "GARBAGE_COLLECTION",
	.description = "registry garbage collection: the registry's offline "
		       "mark-and-sweep, storage measured before and after",
	.max_fails = 1,
	.max_concurrency = 1,
	.priority = 1000,
	.init = gc_init,
	.fini = gc_fini,
	.should_retry = gc_should_retry,
	.validate = gc_validate,
	.run = gc_run,
};

BERTH_PLUGIN_MAGIC("gc", "1.0.0");
BERTH_PLUGIN_JOB_TYPES(&gc_type);

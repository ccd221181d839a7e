/* manifest.h - the plugin manifest (plugins.yml).
 *
 *   plugin_dir: ../build/plugins      # relative to the manifest's directory
 *   plugins:
 *     - name: DEMO                    # the job type name the plugin exports
 *       file: demo.so                 # inside plugin_dir
 *       enabled: true                 # default true
 *       max_fails: 3                  # optional overrides of the plugin's table
 *       max_concurrency: 1
 *       priority: 1
 *       settings: { any: yaml }       # handed to the plugin's init() as JSON
 *       isolation: process            # thread (default: in the daemon) or
 *                                     # process (each job in a child process)
 *       max_run_seconds: 600          # process only: kill a longer run
 *       max_rss_mb: 512               # process only: kill a bigger child
 *
 * One .so may export several job types; it is then listed once per type with
 * the same `file`. */
#ifndef BERTH_MANIFEST_H
#define BERTH_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct manifest_entry {
	char *name;
	char *file;          /* as written */
	bool enabled;
	int64_t max_fails;       /* -1 when not overridden */
	int64_t max_concurrency; /* -1 when not overridden */
	int64_t priority;        /* -1 when not overridden */
	char *settings_json;     /* JSON object text, "{}" when absent */
	char *isolation;         /* "thread" (default) or "process" */
	int64_t max_run_seconds; /* 0: no limit (process isolation only) */
	int64_t max_rss_mb;      /* 0: no limit (process isolation only) */
	int line;                /* line of the entry in the manifest */
};

struct manifest {
	char *path;
	char *plugin_dir;   /* resolved against the manifest's directory */
	struct manifest_entry *entries;
	size_t n_entries;
	char **warnings;    /* unknown keys etc., "file:line: ..." */
	size_t n_warnings;
	char **errors;      /* strict mode: the unknown keys after the first
			     * (the error itself), "file:line:col: ..." */
	size_t n_errors;
};

/* On failure err says what is wrong and *m is empty but for the findings
 * made before the failure (warnings, errors), which the caller reports;
 * manifest_fini frees them. */
int manifest_load(const char *path, bool strict, struct manifest *m,
		  struct berr *err);
void manifest_fini(struct manifest *m);

#endif

/* plugin_host.h - the plugin host: dlopen of job plugins listed in the manifest,
 * the ABI checks, the registry of job types by name, and reload.
 *
 * Threading: lookups (plugin_acquire) may run on any thread; load/reload runs
 * on one thread at a time (main thread or the reload route, serialised by
 * the registry). A job type is never unloaded while it has references. */
#ifndef BERTH_PLUGIN_HOST_H
#define BERTH_PLUGIN_HOST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <berth/plugin.h>
#include <cjson/cJSON.h>

#include "config/manifest.h"
#include "common/util.h"

struct plugin_lib; /* one dlopen'ed file */
struct hostapi_job;        /* hostapi.h */
struct hostapi_run_hooks;  /* hostapi.h */

/* The host's own copy of one job type (the plugin's table is copied into a
 * zeroed host-owned struct, min(plugin size, host size) bytes). */
struct job_type {
	char *name;
	char *file;            /* resolved path of the .so */
	char *plugin_name;     /* from the magic */
	char *plugin_version;  /* from the magic */
	unsigned abi_major, abi_minor;
	/* effective limits: the manifest's, else what init() left in
	 * struct berth_type_limits (prefilled from the table), else the
	 * defaults */
	uint32_t max_fails;       /* effective: 0 in the table means 4 */
	uint32_t max_concurrency; /* 0 = unlimited */
	uint32_t priority;        /* effective: 0 in the table means 1000 */
	struct berth_job_type table;
	void *type_state;         /* what init() stored */
	char *settings_json;
	cJSON *settings;
	cJSON *properties;        /* berth_property(): properties.h */
	char *description;        /* from the table, "" when none */
	char *entry_file;         /* `file` as written in the manifest */
	int entry_line;           /* line of the manifest entry */
	/* manifest isolation: process: each run() in a child process, with
	 * these limits (0: none); the job engine dispatches (engine/isolate.h) */
	bool isolated;
	int64_t max_run_seconds;
	int64_t max_rss_mb;
	struct plugin_lib *lib;
	atomic_int refs;          /* acquisitions in flight (runs, validations) */
	bool retired;             /* removed from the manifest or replaced by a
				   * newer generation, waiting for refs */
};

struct plugin_refusal {
	char *name;   /* manifest entry name */
	char *file;   /* as written in the manifest */
	char *reason; /* what is wrong and how to fix it */
};

struct plugin_registry;

struct berth_config; /* config/config.h */

struct plugin_registry *plugin_registry_new(void);
void plugin_registry_free(struct plugin_registry *r);

/* The service configuration whose facts berth_property() gives plugins
 * ("berth.data_dir", ...; properties.h). Applies to the job types loaded
 * afterwards: call it before the first plugin_registry_load(). Nothing is
 * kept of cfg itself. */
void plugin_registry_set_config(struct plugin_registry *r,
				const struct berth_config *cfg);

/* Where the private copies of plugin files go (plugin_file.h): a 0700
 * directory the daemon owns, swept of earlier runs' copies by the first
 * load. NULL (the default): a private temporary directory, removed by
 * plugin_registry_free(). Call it before the first plugin_registry_load(). */
void plugin_registry_set_copy_dir(struct plugin_registry *r, const char *dir);

/* Loads every enabled entry of the manifest at manifest_path (plugin_dir_override,
 * when non-NULL, replaces the manifest's plugin_dir). Each file is checked
 * (plugin_source_open) and dlopen'ed from a private copy. On reload, newly
 * listed entries are loaded, removed or disabled ones are unloaded once
 * idle, and already loaded ones are kept while their file has the same
 * content; a file with new content is loaded as a new generation beside the
 * old one, which serves new jobs from then on, while the old generation is
 * retired and unloaded once its last reference is released. A new version
 * that is refused leaves the loaded generation serving (the refusal says
 * so). Refusals are logged (one line each) and
 * recorded. Returns 0 when the manifest itself could be read (even if some
 * plugins were refused), -1 with err otherwise (the registry is unchanged);
 * a plugin_dir that does not exist while some entry is enabled is such an
 * error too, so a typo on reload cannot unload every plugin. */
int plugin_registry_load(struct plugin_registry *r, const char *manifest_path,
			 const char *plugin_dir_override, bool strict,
			 struct berr *err);

/* Takes a reference on the job type called name, or NULL. */
struct job_type *plugin_acquire(struct plugin_registry *r, const char *name);
void plugin_release(struct plugin_registry *r, struct job_type *t);

/* Sorted names of the loaded job types (NULL-terminated; free with
 * plugin_names_free). */
char **plugin_registry_names(struct plugin_registry *r, size_t *n);
void plugin_names_free(char **names);

/* {"plugins":[{name, file, plugin, version, abi, description, max_fails,
 *  max_concurrency, priority, refs, generation, hash, inode, size, mtime,
 *  copy}], "refused":[{name, file, reason}],
 *  "retiring":[same fields as plugins: removed types still referenced],
 *  "manifest": path, "plugin_dir": dir} for GET /api/v1/plugins. Plugins
 *  are sorted by name; refusals are those of the latest load. */
cJSON *plugin_registry_describe(struct plugin_registry *r);

/* Calls the type's validate() with the given parameters (a JSON object or
 * NULL). Returns 0 when valid; otherwise -1 and msg holds the plugin's text
 * ("invalid parameters" when the plugin gave none). Any thread; the caller
 * holds a reference on t. */
int plugin_validate(struct job_type *t, const cJSON *params, char *msg,
		    size_t msglen);

/* Calls the type's run() on the calling (worker) thread with a RUN context
 * built from job and hooks (hostapi.h; hooks may be NULL). The caller holds a
 * reference on t. On BERTH_RUN_ERROR err holds the plugin's text ("run()
 * failed without a message" when it gave none); a result outside the enum is
 * reported as BERTH_RUN_ERROR. */
enum berth_run_result plugin_run(struct job_type *t,
				 const struct hostapi_job *job,
				 const struct hostapi_run_hooks *hooks,
				 char *err, size_t errlen);

/* The type's should_retry() (true when it has none), on the worker thread
 * after a run that did not succeed. The caller holds a reference on t. */
bool plugin_should_retry(struct job_type *t);

#endif

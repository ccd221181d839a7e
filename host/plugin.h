/* plugin.h - the plugin host: dlopen of job plugins listed in the manifest,
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

#include "manifest.h"
#include "util.h"

struct plugin_lib; /* one dlopen'ed file */

/* The host's own copy of one job type (the plugin's table is copied into a
 * zeroed host-owned struct, min(plugin size, host size) bytes). */
struct job_type {
	char *name;
	char *file;            /* resolved path of the .so */
	char *plugin_name;     /* from the magic */
	char *plugin_version;  /* from the magic */
	unsigned abi_major, abi_minor;
	uint32_t max_fails;       /* effective: 0 in the table means 4 */
	uint32_t max_concurrency; /* 0 = unlimited */
	uint32_t priority;        /* effective: 0 in the table means 1000 */
	struct berth_job_type table;
	void *type_state;         /* what init() stored */
	char *settings_json;
	cJSON *settings;
	struct plugin_lib *lib;
	atomic_int refs;          /* acquisitions in flight (runs, validations) */
	bool retired;             /* removed from the manifest, waiting for refs */
};

struct plugin_refusal {
	char *name;   /* manifest entry name */
	char *file;   /* as written in the manifest */
	char *reason; /* what is wrong and how to fix it */
};

struct plugin_registry;

struct plugin_registry *plugin_registry_new(void);
void plugin_registry_free(struct plugin_registry *r);

/* Loads every enabled entry of the manifest at manifest_path (plugin_dir_override,
 * when non-NULL, replaces the manifest's plugin_dir). On reload, newly listed
 * entries are loaded, removed or disabled ones are unloaded once idle, and
 * already loaded ones are kept. Refusals are logged (one line each) and
 * recorded. Returns 0 when the manifest itself could be read (even if some
 * plugins were refused), -1 with err otherwise (the registry is unchanged). */
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

/* {"plugins":[{name, file, plugin, version, abi, max_fails, max_concurrency,
 *  priority, refs}], "refused":[{name, file, reason}], "manifest": path,
 *  "plugin_dir": dir} for GET /api/v1/plugins. */
cJSON *plugin_registry_describe(struct plugin_registry *r);

/* Calls the type's validate() with the given parameters (a JSON object or
 * NULL). Returns 0 when valid; otherwise -1 and msg holds the plugin's text. */
int plugin_validate(struct job_type *t, const cJSON *params, char *msg,
		    size_t msglen);

#endif

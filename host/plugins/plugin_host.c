/* plugin_host.c - the plugin host; see plugin_host.h.
 *
 * Locking. load_lock serialises loads, reloads and unloads, and guards the
 * list of dlopen'ed files (struct plugin_lib). The rwlock guards what
 * lookups read: the live and retired job types, the refusals and the
 * manifest/plugin_dir strings. Both are taken for a change (load_lock
 * first); the load thread may read the lists holding only load_lock, since
 * nobody else changes them.
 *
 * References. plugin_acquire() takes a reference under the read lock, so a
 * type that was retired (removed from the manifest) under the write lock is
 * never handed out again. A retired type is unloaded (fini, then dlclose of
 * its file when no other type uses it) as soon as its reference count is
 * zero: at once by the reload, or by the plugin_release() that drops the last
 * reference, or at the next reload. The count is decremented under the read
 * lock, so the reload's check of it cannot race with the decrement.
 *
 * Generations. Every file is dlopen'ed from a private copy (plugin_file.h);
 * a plugin_lib is one content of one file. When a reload finds that a listed
 * file has new content, the entry is loaded again as a new job_type on a new
 * plugin_lib, published in place of the old one, and the old one is retired
 * exactly like a removed type: it keeps serving the references it has and is
 * unloaded after the last one. Lookups therefore always get the newest
 * generation, and a running job keeps the one it was given. */
#include "plugins/plugin_host.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "plugins/hostapi.h"
#include "plugins/plugin_file.h"
#include "plugins/properties.h"
#include "common/json.h"
#include "logs/log.h"

#define MAGIC_SIZE_MAX 4096u
#define TABLE_SIZE_MAX 4096u
#define EXPORTED_TYPES_MAX 256u
#define DEFAULT_MAX_FAILS 4u
#define DEFAULT_PRIORITY 1000u
#define VALIDATE_MSG_MAX 1024

typedef const struct berth_magic *(*magic_fn)(void);
typedef const struct berth_job_type *const *(*job_types_fn)(size_t *count);

/* One content of one plugin file, dlopen'ed from a private copy. A file
 * rewritten with other content is another plugin_lib (a new generation);
 * the old one stays mapped for the types still using it. */
struct plugin_lib {
	char *path;   /* realpath of the source file; key with id's content */
	char *copy;   /* the private copy that is mapped */
	struct plugin_file_id id; /* of the source when it was copied */
	unsigned generation;      /* grows with each lib the registry opens */
	void *handle;
	int refs;     /* job types (live or retired) using the handle */
	struct plugin_lib *next;
};

struct type_list {
	struct job_type **v;
	size_t n;
};

struct plugin_registry {
	pthread_mutex_t load_lock;
	pthread_rwlock_t lock;
	struct type_list live;    /* acquirable */
	struct type_list retired; /* removed, waiting for their refs */
	struct plugin_refusal *refusals;
	size_t n_refusals;
	struct plugin_lib *libs;  /* load_lock */
	unsigned generations;     /* load_lock; last plugin_lib generation */
	char *copies_wanted;      /* load_lock; NULL: a private temp dir */
	struct plugin_copies *copies; /* load_lock; opened by the first load */
	char *manifest_path;
	char *plugin_dir;
	cJSON *service_props;     /* load_lock; props_from_config() */
};

/* An enabled manifest entry that holds a name during one load. */
struct claim {
	const char *name;
	const char *file;
	int line;
};

/* --- small helpers ------------------------------------------------------ */

static void
list_push(struct type_list *l, struct job_type *t)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = t;
}

static void
list_remove_at(struct type_list *l, size_t i)
{
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
	l->n--;
}

static struct job_type *
list_find(const struct type_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i]->name, name) == 0)
			return l->v[i];
	return NULL;
}

static const struct claim *
claim_find(const struct claim *c, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(c[i].name, name) == 0)
			return &c[i];
	return NULL;
}

/* Printable copy of an untrusted fixed-size string from a plugin. */
static void
printable(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t i = 0;
	for (; i < srclen && i + 1 < dstlen && src[i]; i++) {
		unsigned char ch = (unsigned char)src[i];
		dst[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	dst[i] = '\0';
}

/* --- dlopen'ed files ---------------------------------------------------- */

/* The lib of src's content: an open one (same file, same content), or a
 * new private copy of it, dlopen'ed. Under load_lock. */
static struct plugin_lib *
lib_get(struct plugin_registry *r, const struct plugin_source *src,
	char **reason)
{
	for (struct plugin_lib *l = r->libs; l; l = l->next) {
		if (strcmp(l->path, src->real) == 0 &&
		    plugin_file_same_content(&l->id, &src->id)) {
			l->refs++;
			return l;
		}
	}
	unsigned gen = ++r->generations;
	char *copy = plugin_copy_make(r->copies, src, gen, reason);
	if (!copy)
		return NULL;
	dlerror();
	void *h = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *de = dlerror();
		*reason = xasprintf("dlopen failed: %s; fix: check missing "
				 "dependencies with ldd %s",
				 de ? de : "unknown error", src->real);
		plugin_copy_remove(copy);
		free(copy);
		return NULL;
	}
	struct plugin_lib *l = xcalloc(1, sizeof(*l));
	l->path = xstrdup(src->real);
	l->copy = copy;
	l->id = src->id;
	l->generation = gen;
	l->handle = h;
	l->refs = 1;
	l->next = r->libs;
	r->libs = l;
	char id[256];
	log_debug("plugin file %s (%s): generation %u mapped from its "
		  "private copy %s",
		  l->path, plugin_file_id_str(&l->id, id, sizeof(id)), gen,
		  copy);
	return l;
}

static void
lib_put(struct plugin_registry *r, struct plugin_lib *lib)
{
	if (!lib || --lib->refs > 0)
		return;
	for (struct plugin_lib **pp = &r->libs; *pp; pp = &(*pp)->next) {
		if (*pp == lib) {
			*pp = lib->next;
			break;
		}
	}
	if (dlclose(lib->handle) != 0)
		log_warn("dlclose %s: %s", lib->copy, dlerror());
	plugin_copy_remove(lib->copy);
	log_info("plugin file %s generation %u unmapped; its copy %s is "
		 "removed",
		 lib->path, lib->generation, lib->copy);
	free(lib->path);
	free(lib->copy);
	free(lib);
}

/* --- job types ---------------------------------------------------------- */

static void
job_type_free(struct job_type *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->file);
	free(t->plugin_name);
	free(t->plugin_version);
	free(t->settings_json);
	cJSON_Delete(t->settings);
	cJSON_Delete(t->properties);
	free(t->description);
	free(t->entry_file);
	free(t);
}

/* Under load_lock, with t unreachable and unreferenced. */
static void
unload_type(struct plugin_registry *r, struct job_type *t)
{
	if (t->table.fini)
		t->table.fini(t->type_state);
	log_info("plugin %s generation %u (%s) unloaded", t->name,
		 t->lib ? t->lib->generation : 0, t->file);
	lib_put(r, t->lib);
	job_type_free(t);
}

/* The magic block: present, sane, same ABI, product and build facts. */
static char *
check_magic(void *handle, const char *real, const struct berth_magic **out)
{
	magic_fn mf = (magic_fn)dlsym(handle, "berth_plugin_magic");
	if (!mf)
		return xasprintf("no berth_plugin_magic symbol: not a Berth "
			      "plugin, or built without its magic block; fix: "
			      "add BERTH_PLUGIN_MAGIC(\"name\", \"version\"); "
			      "to one source file and rebuild");
	const struct berth_magic *mg = mf();
	if (!mg)
		return xasprintf("berth_plugin_magic() returned NULL; fix: define "
			      "it with BERTH_PLUGIN_MAGIC(\"name\", "
			      "\"version\") and rebuild");
	size_t min = offsetof(struct berth_magic, plugin_version) +
		     sizeof(mg->plugin_version);
	if (mg->size < min || mg->size > MAGIC_SIZE_MAX)
		return xasprintf("magic block size %u is not between %zu and %u "
			      "(corrupt, or not made by BERTH_PLUGIN_MAGIC); "
			      "fix: rebuild against the installed Berth SDK",
			      mg->size, min, MAGIC_SIZE_MAX);
	if (mg->abi_major != BERTH_ABI_MAJOR)
		return xasprintf("ABI major %u of the plugin differs from the "
			      "host's %d (plugin built for Berth ABI %u.%u, "
			      "host is %d.%d); fix: rebuild the plugin "
			      "against the installed Berth SDK",
			      mg->abi_major, BERTH_ABI_MAJOR, mg->abi_major,
			      mg->abi_minor, BERTH_ABI_MAJOR, BERTH_ABI_MINOR);
	/* Any minor loads: a newer one sees the host table's size and finds
	 * the calls it lacks with BERTH_HOST_HAS() (load_entry logs it). */
	if (strncmp(mg->product, BERTH_PRODUCT_TAG, sizeof(mg->product)) !=
	    0) {
		char tag[sizeof(mg->product) + 1];
		printable(tag, sizeof(tag), mg->product, sizeof(mg->product));
		return xasprintf("product tag \"%s\" is not \"%s\": the file was "
			      "not built as a Berth plugin; fix: rebuild it "
			      "with the Berth SDK (BERTH_PLUGIN_MAGIC)",
			      tag, BERTH_PRODUCT_TAG);
	}
	const struct {
		const char *name;
		unsigned plugin;
		size_t host;
	} facts[] = {
		{"sizeof_pointer", mg->sizeof_pointer, sizeof(void *)},
		{"sizeof_size_t", mg->sizeof_size_t, sizeof(size_t)},
		{"sizeof_time_t", mg->sizeof_time_t, sizeof(time_t)},
	};
	for (size_t i = 0; i < ARRAY_LEN(facts); i++) {
		if (facts[i].plugin != facts[i].host)
			return xasprintf("build fact %s is %u in the plugin but "
				      "%zu in the host (built for another "
				      "architecture or C library ABI); fix: "
				      "rebuild %s with the host's compiler and "
				      "target flags",
				      facts[i].name, facts[i].plugin,
				      facts[i].host, real);
	}
	*out = mg;
	return NULL;
}

/* The exported tables: present, each one sane. */
static char *
check_tables(void *handle, const struct berth_job_type *const **out,
	     size_t *count)
{
	job_types_fn tf = (job_types_fn)dlsym(handle, "berth_plugin_job_types");
	if (!tf)
		return xasprintf("no berth_plugin_job_types symbol, so it exports "
			      "no job type; fix: add "
			      "BERTH_PLUGIN_JOB_TYPES(&your_type); and "
			      "rebuild");
	size_t n = 0;
	const struct berth_job_type *const *v = tf(&n);
	if (!v || n == 0)
		return xasprintf("berth_plugin_job_types() returned no job type; "
			      "fix: list at least one table in "
			      "BERTH_PLUGIN_JOB_TYPES(...)");
	if (n > EXPORTED_TYPES_MAX)
		return xasprintf("berth_plugin_job_types() returned %zu job types "
			      "(more than %u, corrupt); fix: rebuild with "
			      "BERTH_PLUGIN_JOB_TYPES(...)",
			      n, EXPORTED_TYPES_MAX);
	size_t min = offsetof(struct berth_job_type, run) +
		     sizeof(((struct berth_job_type *)0)->run);
	for (size_t i = 0; i < n; i++) {
		const struct berth_job_type *tb = v[i];
		if (!tb)
			return xasprintf("job type table #%zu is NULL; fix: list "
				      "only tables in "
				      "BERTH_PLUGIN_JOB_TYPES(...)",
				      i);
		if (tb->size < min)
			return xasprintf("job type table #%zu is too short: size "
				      "%u, at least %zu needed to reach run; "
				      "fix: start the table with "
				      "BERTH_JOB_TYPE_INIT and rebuild against "
				      "the installed Berth SDK",
				      i, tb->size, min);
		if (tb->size > TABLE_SIZE_MAX)
			return xasprintf("job type table #%zu has an absurd size "
				      "%u (corrupt); fix: start the table with "
				      "BERTH_JOB_TYPE_INIT",
				      i, tb->size);
		if (!tb->name || !tb->name[0])
			return xasprintf("job type table #%zu has no name; fix: "
				      "set .name in the table",
				      i);
		if (!tb->run)
			return xasprintf("job type %s has no run callback (run is "
				      "NULL); fix: set .run in the table",
				      tb->name);
	}
	*out = v;
	*count = n;
	return NULL;
}

static char *
exported_names(const struct berth_job_type *const *v, size_t n)
{
	char *s = xstrdup("");
	for (size_t i = 0; i < n; i++) {
		char *next = xasprintf("%s%s%s", s, i ? ", " : "", v[i]->name);
		free(s);
		s = next;
	}
	return s;
}

static uint32_t
override_u32(int64_t manifest, uint32_t table)
{
	if (manifest < 0)
		return table;
	return manifest > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)manifest;
}

/* Loads one manifest entry from its checked, open file (src): the magic
 * and tables, the name, settings, init(). Returns the new (unpublished)
 * type, or NULL with *reason set. */
static struct job_type *
load_entry(struct plugin_registry *r, const struct manifest_entry *e,
	   const struct plugin_source *src, const struct claim *claims,
	   size_t n_claims, char **reason)
{
	const char *real = src->real;
	struct job_type *t = NULL;
	struct plugin_lib *lib = lib_get(r, src, reason);
	if (!lib)
		goto out;
	const struct berth_magic *mg = NULL;
	if ((*reason = check_magic(lib->handle, real, &mg)))
		goto out;
	const struct berth_job_type *const *tables = NULL;
	size_t n_tables = 0;
	if ((*reason = check_tables(lib->handle, &tables, &n_tables)))
		goto out;

	const struct berth_job_type *tb = NULL;
	for (size_t i = 0; i < n_tables && !tb; i++)
		if (strcmp(tables[i]->name, e->name) == 0)
			tb = tables[i];
	if (!tb) {
		char *names = exported_names(tables, n_tables);
		*reason = xasprintf("%s does not export job type %s (it exports: "
				 "%s); fix: set the entry's name to one of "
				 "those",
				 real, e->name, names);
		free(names);
		goto out;
	}
	const struct claim *holder = claim_find(claims, n_claims, e->name);
	if (holder) {
		*reason = xasprintf("job type %s is already provided by the entry "
				 "at line %d (file %s); fix: remove or disable "
				 "one of the two entries",
				 e->name, holder->line, holder->file);
		goto out;
	}

	t = xcalloc(1, sizeof(*t));
	size_t copy = tb->size < sizeof(t->table) ? tb->size
						  : sizeof(t->table);
	memcpy(&t->table, tb, copy);
	t->name = xstrdup(tb->name);
	t->file = xstrdup(real);
	t->plugin_name = xstrdup(mg->plugin_name ? mg->plugin_name : "");
	t->plugin_version =
		xstrdup(mg->plugin_version ? mg->plugin_version : "");
	t->abi_major = mg->abi_major;
	t->abi_minor = mg->abi_minor;
	t->description =
		xstrdup(t->table.description ? t->table.description : "");
	t->entry_file = xstrdup(e->file);
	t->entry_line = e->line;
	t->isolated = e->isolation && strcmp(e->isolation, "process") == 0;
	t->max_run_seconds = t->isolated ? e->max_run_seconds : 0;
	t->max_rss_mb = t->isolated ? e->max_rss_mb : 0;
	t->settings_json =
		xstrdup(e->settings_json ? e->settings_json : "{}");
	t->settings = json_parse(t->settings_json, strlen(t->settings_json), NULL);
	if (!cJSON_IsObject(t->settings)) {
		*reason = xasprintf("settings are not a JSON object; fix: write "
				 "`settings:` as a mapping");
		goto out;
	}
	t->properties = props_for_type(t->settings, r->service_props, reason);
	if (!t->properties)
		goto out;
	atomic_init(&t->refs, 0);
	t->lib = lib;
	if (mg->abi_minor > BERTH_ABI_MINOR)
		log_warn("plugin %s (%s) was built for Berth ABI %u.%u, newer "
			 "than this host's %d.%d: running it with the %d.%d "
			 "host services (calls it checks with BERTH_HOST_HAS "
			 "that were added after %d.%d are absent)",
			 t->name, real, mg->abi_major, mg->abi_minor,
			 BERTH_ABI_MAJOR, BERTH_ABI_MINOR, BERTH_ABI_MAJOR,
			 BERTH_ABI_MINOR, BERTH_ABI_MAJOR, BERTH_ABI_MINOR);

	if (t->table.init) {
		struct hostapi_ctx c;
		void *state = NULL;
		struct berth_type_limits lim = {
			.size = sizeof(lim),
			.max_fails = t->table.max_fails,
			.max_concurrency = t->table.max_concurrency,
			.priority = t->table.priority,
			.should_retry = t->table.should_retry,
		};
		hostapi_ctx_init_load(&c, t->name, t->settings, t->properties,
				      &lim);
		int rc = t->table.init(&c.pub, &state);
		if (rc != 0) {
			*reason = xasprintf("init() failed (returned %d): %s; "
					 "fix: check the entry's settings and "
					 "the plugin's log",
					 rc,
					 c.last_error[0]
						 ? c.last_error
						 : "the plugin logged no "
						   "reason");
			hostapi_ctx_fini(&c);
			goto out;
		}
		hostapi_ctx_fini(&c);
		t->type_state = state;
		t->table.max_fails = lim.max_fails;
		t->table.max_concurrency = lim.max_concurrency;
		t->table.priority = lim.priority;
		t->table.should_retry = lim.should_retry;
	}
	/* effective limits: the manifest's, else the table's as init() left
	 * them, else the defaults */
	t->max_fails = override_u32(e->max_fails, t->table.max_fails);
	if (t->max_fails == 0)
		t->max_fails = DEFAULT_MAX_FAILS;
	t->max_concurrency =
		override_u32(e->max_concurrency, t->table.max_concurrency);
	t->priority = override_u32(e->priority, t->table.priority);
	if (t->priority == 0)
		t->priority = DEFAULT_PRIORITY;
	lib = NULL; /* the type owns the reference now */

out:
	if (*reason && t) {
		job_type_free(t);
		t = NULL;
	}
	lib_put(r, lib);
	return t;
}

/* --- registry ----------------------------------------------------------- */

struct plugin_registry *
plugin_registry_new(void)
{
	struct plugin_registry *r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->load_lock, NULL);
	pthread_rwlock_init(&r->lock, NULL);
	return r;
}

static void
refusals_free(struct plugin_refusal *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].file);
		free(v[i].reason);
	}
	free(v);
}

void
plugin_registry_free(struct plugin_registry *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->load_lock);
	struct type_list *lists[] = {&r->live, &r->retired};
	for (size_t k = 0; k < ARRAY_LEN(lists); k++) {
		for (size_t i = 0; i < lists[k]->n; i++) {
			struct job_type *t = lists[k]->v[i];
			int refs = atomic_load(&t->refs);
			if (refs > 0)
				log_warn("plugin %s unloaded at shutdown with "
					 "%d reference(s) still held",
					 t->name, refs);
			unload_type(r, t);
		}
		free(lists[k]->v);
		lists[k]->v = NULL;
		lists[k]->n = 0;
	}
	while (r->libs) { /* only if a type leaked its reference */
		struct plugin_lib *l = r->libs;
		l->refs = 1;
		lib_put(r, l);
	}
	plugin_copies_close(r->copies);
	free(r->copies_wanted);
	refusals_free(r->refusals, r->n_refusals);
	cJSON_Delete(r->service_props);
	free(r->manifest_path);
	free(r->plugin_dir);
	pthread_mutex_unlock(&r->load_lock);
	pthread_rwlock_destroy(&r->lock);
	pthread_mutex_destroy(&r->load_lock);
	free(r);
}

void
plugin_registry_set_config(struct plugin_registry *r,
			   const struct berth_config *cfg)
{
	pthread_mutex_lock(&r->load_lock);
	cJSON_Delete(r->service_props);
	r->service_props = props_from_config(cfg);
	pthread_mutex_unlock(&r->load_lock);
}

void
plugin_registry_set_copy_dir(struct plugin_registry *r, const char *dir)
{
	pthread_mutex_lock(&r->load_lock);
	free(r->copies_wanted);
	r->copies_wanted = dir ? xstrdup(dir) : NULL;
	pthread_mutex_unlock(&r->load_lock);
}

/* Under load_lock: the copies directory, opened (and swept) once. */
static int
copies_ready(struct plugin_registry *r, struct berr *err)
{
	if (r->copies)
		return 0;
	int swept = 0;
	r->copies = plugin_copies_open(r->copies_wanted, &swept, err);
	if (!r->copies)
		return -1;
	if (swept > 0)
		log_info("removed %d plugin cop%s left by an earlier run from "
			 "%s",
			 swept, swept == 1 ? "y" : "ies",
			 plugin_copies_dir(r->copies));
	log_debug("plugins are mapped from private copies in %s",
		  plugin_copies_dir(r->copies));
	return 0;
}

static void
refusal_add(struct plugin_refusal **v, size_t *n,
	    const struct manifest_entry *e, char *reason)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = (struct plugin_refusal){xstrdup(e->name),
					       xstrdup(e->file), reason};
}

/* The new type replacing one of the same name in added, or NULL. */
static struct job_type *
replacement(const struct type_list *added, const struct job_type *old)
{
	struct job_type *t = list_find(added, old->name);
	return t != old ? t : NULL;
}

int
plugin_registry_load(struct plugin_registry *r, const char *manifest_path,
		     const char *plugin_dir_override, bool strict,
		     struct berr *err)
{
	struct manifest m;
	memset(&m, 0, sizeof(m));
	pthread_mutex_lock(&r->load_lock);
	if (copies_ready(r, err) != 0) {
		pthread_mutex_unlock(&r->load_lock);
		return -1;
	}
	int mrc = manifest_load(manifest_path, strict, &m, err);
	/* each finding once, also those made before a failure */
	for (size_t i = 0; i < m.n_warnings; i++)
		log_warn("%s", m.warnings[i]);
	for (size_t i = 0; i < m.n_errors; i++)
		log_error("%s", m.errors[i]);
	if (mrc != 0) {
		manifest_fini(&m);
		pthread_mutex_unlock(&r->load_lock);
		return -1;
	}

	const char *dir = plugin_dir_override ? plugin_dir_override
					      : m.plugin_dir;
	bool any_enabled = false;
	for (size_t i = 0; i < m.n_entries; i++)
		any_enabled |= m.entries[i].enabled;
	char *real_dir = dir ? realpath(dir, NULL) : NULL;
	if (!real_dir && any_enabled) {
		berr_set(err, "%s: plugin_dir %s: %s", manifest_path,
			 dir ? dir : "(none)",
			 dir ? strerror(errno) : "not set");
		manifest_fini(&m);
		pthread_mutex_unlock(&r->load_lock);
		return -1;
	}

	struct claim *claims = xcalloc(m.n_entries + 1, sizeof(*claims));
	size_t n_claims = 0;
	struct type_list added = {0};
	struct plugin_refusal *refusals = NULL;
	size_t n_refusals = 0;

	for (size_t i = 0; i < m.n_entries; i++) {
		const struct manifest_entry *e = &m.entries[i];
		if (!e->enabled) {
			log_debug("%s:%d: plugin %s is disabled", m.path,
				  e->line, e->name);
			continue;
		}
		bool held = claim_find(claims, n_claims, e->name) != NULL;
		struct job_type *kept =
			held ? NULL : list_find(&r->live, e->name);
		const char *settings =
			e->settings_json ? e->settings_json : "{}";
		char *reason = NULL;
		struct plugin_source src;
		if (plugin_source_open(dir, real_dir, e->file, &src,
				       &reason) != 0) {
			if (kept) {
				/* its private copy is intact: keep it */
				char *why = xasprintf(
					"%s; generation %u, loaded earlier, "
					"keeps serving %s",
					reason, kept->lib->generation,
					e->name);
				free(reason);
				reason = why;
				claims[n_claims++] = (struct claim){
					e->name, e->file, e->line};
			}
			log_error("%s:%d: plugin %s (file %s) refused: %s",
				  m.path, e->line, e->name, e->file, reason);
			refusal_add(&refusals, &n_refusals, e, reason);
			continue;
		}
		if (kept && strcmp(kept->lib->path, src.real) == 0 &&
		    plugin_file_same_content(&kept->lib->id, &src.id)) {
			claims[n_claims++] =
				(struct claim){e->name, e->file, e->line};
			if (strcmp(kept->entry_file, e->file) != 0 ||
			    strcmp(kept->settings_json, settings) != 0)
				log_warn("%s:%d: plugin %s is kept as loaded; "
					 "its new settings take effect when "
					 "its file changes, or after "
					 "disabling it, reloading and enabling "
					 "it again (or a restart)",
					 m.path, e->line, e->name);
			plugin_source_fini(&src);
			continue; /* kept as loaded */
		}
		struct job_type *t = load_entry(r, e, &src, claims, n_claims,
						&reason);
		if (!t) {
			if (kept) {
				char *why = xasprintf(
					"new version of %s refused: %s; "
					"generation %u, loaded earlier, keeps "
					"serving %s",
					src.real, reason,
					kept->lib->generation, e->name);
				free(reason);
				reason = why;
				claims[n_claims++] = (struct claim){
					e->name, e->file, e->line};
			}
			plugin_source_fini(&src);
			log_error("%s:%d: plugin %s (file %s) refused: %s",
				  m.path, e->line, e->name, e->file, reason);
			refusal_add(&refusals, &n_refusals, e, reason);
			continue;
		}
		claims[n_claims++] = (struct claim){e->name, e->file, e->line};
		list_push(&added, t);
		char id[256];
		plugin_file_id_str(&t->lib->id, id, sizeof(id));
		if (kept) {
			char old[256];
			log_info("plugin %s: file %s changed (generation "
				 "%u was %s; now %s): generation %u loaded "
				 "from its private copy %s beside generation "
				 "%u",
				 t->name, t->file, kept->lib->generation,
				 plugin_file_id_str(&kept->lib->id, old,
						    sizeof(old)),
				 id, t->lib->generation, t->lib->copy,
				 kept->lib->generation);
		}
		log_info("plugin %s loaded from %s (%s %s, ABI %u.%u, "
			 "generation %u, %s, private copy %s): max_fails %u, "
			 "max_concurrency %u, priority %u",
			 t->name, t->file, t->plugin_name, t->plugin_version,
			 t->abi_major, t->abi_minor, t->lib->generation, id,
			 t->lib->copy, t->max_fails, t->max_concurrency,
			 t->priority);
		plugin_source_fini(&src);
	}

	/* Publish: retire what the manifest no longer lists, add the new. */
	struct type_list doomed = {0};
	pthread_rwlock_wrlock(&r->lock);
	for (size_t i = r->live.n; i-- > 0;) {
		struct job_type *t = r->live.v[i];
		struct job_type *next = replacement(&added, t);
		if (!next && claim_find(claims, n_claims, t->name))
			continue;
		list_remove_at(&r->live, i);
		t->retired = true;
		int refs = atomic_load(&t->refs);
		if (next)
			log_info("plugin %s: new jobs run generation %u; "
				 "generation %u is retired%s",
				 t->name, next->lib->generation,
				 t->lib->generation,
				 refs ? " and drains its running jobs" : "");
		if (refs == 0) {
			list_push(&doomed, t);
		} else {
			log_info("plugin %s generation %u retired; unloading "
				 "it once its %d reference(s) are released",
				 t->name, t->lib->generation, refs);
			list_push(&r->retired, t);
		}
	}
	/* Earlier retirees whose last release found a reload in progress.
	 * (Decrements happen under the read lock: none races with this.) */
	for (size_t i = r->retired.n; i-- > 0;) {
		struct job_type *t = r->retired.v[i];
		if (atomic_load(&t->refs) == 0) {
			list_remove_at(&r->retired, i);
			list_push(&doomed, t);
		}
	}
	for (size_t i = 0; i < added.n; i++)
		list_push(&r->live, added.v[i]);
	struct plugin_refusal *old_refusals = r->refusals;
	size_t n_old_refusals = r->n_refusals;
	r->refusals = refusals;
	r->n_refusals = n_refusals;
	free(r->manifest_path);
	r->manifest_path = xstrdup(m.path ? m.path : manifest_path);
	free(r->plugin_dir);
	r->plugin_dir = xstrdup(real_dir ? real_dir : (dir ? dir : ""));
	pthread_rwlock_unlock(&r->lock);

	for (size_t i = 0; i < doomed.n; i++)
		unload_type(r, doomed.v[i]);
	pthread_mutex_unlock(&r->load_lock);

	refusals_free(old_refusals, n_old_refusals);
	free(doomed.v);
	free(added.v);
	free(claims);
	free(real_dir);
	manifest_fini(&m);
	return 0;
}

struct job_type *
plugin_acquire(struct plugin_registry *r, const char *name)
{
	if (!r || !name)
		return NULL;
	pthread_rwlock_rdlock(&r->lock);
	struct job_type *t = list_find(&r->live, name);
	if (t)
		atomic_fetch_add(&t->refs, 1);
	pthread_rwlock_unlock(&r->lock);
	return t;
}

void
plugin_release(struct plugin_registry *r, struct job_type *t)
{
	if (!r || !t)
		return;
	pthread_rwlock_rdlock(&r->lock);
	int prev = atomic_fetch_sub(&t->refs, 1);
	bool retired = t->retired;
	pthread_rwlock_unlock(&r->lock);
	if (prev != 1 || !retired)
		return;

	/* Last reference of a retired type: unload it, unless a reload got
	 * there first (then it is no longer in the retired list; t is only
	 * compared, never dereferenced, until found). */
	struct job_type *found = NULL;
	pthread_mutex_lock(&r->load_lock);
	pthread_rwlock_wrlock(&r->lock);
	for (size_t i = 0; i < r->retired.n; i++) {
		if (r->retired.v[i] == t && atomic_load(&t->refs) == 0) {
			found = t;
			list_remove_at(&r->retired, i);
			break;
		}
	}
	pthread_rwlock_unlock(&r->lock);
	if (found)
		unload_type(r, found);
	pthread_mutex_unlock(&r->load_lock);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **
plugin_registry_names(struct plugin_registry *r, size_t *n)
{
	pthread_rwlock_rdlock(&r->lock);
	size_t count = r->live.n;
	char **names = xcalloc(count + 1, sizeof(*names));
	for (size_t i = 0; i < count; i++)
		names[i] = xstrdup(r->live.v[i]->name);
	pthread_rwlock_unlock(&r->lock);
	qsort(names, count, sizeof(*names), name_cmp);
	if (n)
		*n = count;
	return names;
}

void
plugin_names_free(char **names)
{
	if (!names)
		return;
	for (char **p = names; *p; p++)
		free(*p);
	free(names);
}

static int
type_cmp(const void *a, const void *b)
{
	const struct job_type *x = *(struct job_type *const *)a;
	const struct job_type *y = *(struct job_type *const *)b;
	return strcmp(x->name, y->name);
}

static cJSON *
describe_type(const struct job_type *t)
{
	cJSON *o = cJSON_CreateObject();
	char abi[32];
	snprintf(abi, sizeof(abi), "%u.%u", t->abi_major, t->abi_minor);
	cJSON_AddStringToObject(o, "name", t->name);
	cJSON_AddStringToObject(o, "file", t->file);
	cJSON_AddStringToObject(o, "plugin", t->plugin_name);
	cJSON_AddStringToObject(o, "version", t->plugin_version);
	cJSON_AddStringToObject(o, "abi", abi);
	cJSON_AddStringToObject(o, "description", t->description);
	cJSON_AddNumberToObject(o, "max_fails", t->max_fails);
	cJSON_AddNumberToObject(o, "max_concurrency", t->max_concurrency);
	cJSON_AddNumberToObject(o, "priority", t->priority);
	cJSON_AddNumberToObject(o, "refs", atomic_load(&t->refs));
	const struct plugin_lib *l = t->lib;
	char h[32], when[40];
	struct tm tm;
	time_t sec = l->id.mtime.tv_sec;
	size_t w = gmtime_r(&sec, &tm)
			   ? strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S",
				      &tm)
			   : 0;
	snprintf(when + w, sizeof(when) - w, ".%09ldZ",
		 (long)l->id.mtime.tv_nsec);
	cJSON_AddNumberToObject(o, "generation", l->generation);
	cJSON_AddStringToObject(o, "hash",
				plugin_file_hash_str(l->id.hash, h, sizeof(h)));
	cJSON_AddNumberToObject(o, "inode", (double)l->id.ino);
	cJSON_AddNumberToObject(o, "size", (double)l->id.size);
	cJSON_AddStringToObject(o, "mtime", when);
	cJSON_AddStringToObject(o, "copy", l->copy);
	return o;
}

cJSON *
plugin_registry_describe(struct plugin_registry *r)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *plugins = cJSON_AddArrayToObject(root, "plugins");
	cJSON *refused = cJSON_AddArrayToObject(root, "refused");
	cJSON *retiring = cJSON_AddArrayToObject(root, "retiring");

	pthread_rwlock_rdlock(&r->lock);
	struct job_type **sorted = xcalloc(r->live.n + 1, sizeof(*sorted));
	if (r->live.n) { /* v is NULL before the first type */
		memcpy(sorted, r->live.v, r->live.n * sizeof(*sorted));
		qsort(sorted, r->live.n, sizeof(*sorted), type_cmp);
	}
	for (size_t i = 0; i < r->live.n; i++)
		cJSON_AddItemToArray(plugins, describe_type(sorted[i]));
	free(sorted);
	for (size_t i = 0; i < r->n_refusals; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", r->refusals[i].name);
		cJSON_AddStringToObject(o, "file", r->refusals[i].file);
		cJSON_AddStringToObject(o, "reason", r->refusals[i].reason);
		cJSON_AddItemToArray(refused, o);
	}
	for (size_t i = 0; i < r->retired.n; i++)
		cJSON_AddItemToArray(retiring, describe_type(r->retired.v[i]));
	cJSON_AddStringToObject(root, "manifest",
				r->manifest_path ? r->manifest_path : "");
	cJSON_AddStringToObject(root, "plugin_dir",
				r->plugin_dir ? r->plugin_dir : "");
	pthread_rwlock_unlock(&r->lock);
	return root;
}

/* --- calls into a type -------------------------------------------------- */

int
plugin_validate(struct job_type *t, const cJSON *params, char *msg,
		size_t msglen)
{
	if (msg && msglen)
		msg[0] = '\0';
	if (!t->table.validate)
		return 0;
	struct hostapi_ctx c;
	char buf[VALIDATE_MSG_MAX];
	memset(buf, 0, sizeof(buf));
	hostapi_ctx_init_validate(&c, t->name, t->type_state, t->settings,
				  t->properties, params);
	int rc = t->table.validate(&c.pub, hostapi_ctx_params_json(&c), buf,
				   sizeof(buf));
	hostapi_ctx_fini(&c);
	if (rc == 0)
		return 0;
	buf[sizeof(buf) - 1] = '\0';
	if (msg && msglen)
		snprintf(msg, msglen, "%s",
			 buf[0] ? buf : "invalid parameters");
	return -1;
}

enum berth_run_result
plugin_run(struct job_type *t, const struct hostapi_job *job,
	   const struct hostapi_run_hooks *hooks, char *err, size_t errlen)
{
	struct hostapi_ctx c;
	char buf[VALIDATE_MSG_MAX];
	memset(buf, 0, sizeof(buf));
	if (err && errlen)
		err[0] = '\0';
	hostapi_ctx_init_run(&c, t->name, t->type_state, t->settings,
			     t->properties, job, hooks);
	enum berth_run_result res = t->table.run(
		&c.pub, hostapi_ctx_params_json(&c), buf, sizeof(buf));
	hostapi_ctx_fini(&c);
	buf[sizeof(buf) - 1] = '\0';
	int code = (int)res;
	switch (code) {
	case BERTH_RUN_SUCCESS:
	case BERTH_RUN_STOPPED:
		return res;
	case BERTH_RUN_ERROR:
		if (err && errlen)
			snprintf(err, errlen, "%s",
				 buf[0] ? buf
					: "run() failed without a message");
		return BERTH_RUN_ERROR;
	default:
		if (err && errlen)
			snprintf(err, errlen,
				 "run() returned unknown result %d%s%s",
				 code, buf[0] ? ": " : "", buf);
		return BERTH_RUN_ERROR;
	}
}

bool
plugin_should_retry(struct job_type *t)
{
	if (!t->table.should_retry)
		return true;
	return t->table.should_retry(t->type_state);
}

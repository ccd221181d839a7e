/* manifest.c - see manifest.h. The keys are described by two tables of
 * rows (the top level and one plugin entry) that the YAML row engine of
 * the configuration (config_internal.h) applies: the same types, bounds,
 * positions and "did you mean" hints as berth.yml. Duplicate plugin names
 * are left to the plugin host. */
#include "config/manifest.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "config/yamltree.h"

#define ENTRY_OFF(f) offsetof(struct manifest_entry, f)
#define MF_OFF(f) offsetof(struct manifest, f)

static bool valid_name(const char *s);
static bool nonempty(const char *s);
static int fix_plugin_dir(struct cfg_ctx *c, const struct cfg_row *row,
			  struct row_state *st);

/* The top level. plugins is read entry by entry (entry_rows), after the
 * top level's unknown keys are reported. */
static const struct cfg_row top_rows[] = {
	/* absent or empty: the manifest's own directory */
	{.path = "plugin_dir", .type = CT_STRING, .expect = "a path",
	 .flags = CF_PATH, .offset = MF_OFF(plugin_dir),
	 .fix = fix_plugin_dir},
	{.path = "plugins", .type = CT_SEQUENCE,
	 .expect = "a sequence of mappings", .offset = NO_OFFSET},
};

/* One entry of plugins. */
static const struct cfg_row entry_rows[] = {
	{.path = "name", .type = CT_STRING, .flags = CF_REQUIRED,
	 .valid = valid_name,
	 .expect = "a non-empty name of letters, digits, '_', '.' or '-'",
	 .offset = ENTRY_OFF(name)},
	{.path = "file", .type = CT_STRING, .flags = CF_REQUIRED,
	 .valid = nonempty, .expect = "a non-empty string",
	 .offset = ENTRY_OFF(file)},
	{.path = "enabled", .type = CT_BOOL, .def = "true",
	 .offset = ENTRY_OFF(enabled)},
	/* -1: not overridden (the plugin's table decides) */
	{.path = "max_fails", .type = CT_INT64, .def = "-1", .min = 0,
	 .max = 1000000, .offset = ENTRY_OFF(max_fails)},
	{.path = "max_concurrency", .type = CT_INT64, .def = "-1", .min = 0,
	 .max = 1000000, .offset = ENTRY_OFF(max_concurrency)},
	/* Harbor refuses job priorities above 100000 */
	{.path = "priority", .type = CT_INT64, .def = "-1", .min = 1,
	 .max = 100000, .offset = ENTRY_OFF(priority)},
	/* handed to the plugin's init() as JSON */
	{.path = "settings", .type = CT_JSON, .def = "{}",
	 .offset = ENTRY_OFF(settings_json)},
	/* thread: run() on the worker thread; process: each job in a child
	 * process (engine/isolate.h) */
	{.path = "isolation", .type = CT_ENUM, .def = "thread",
	 .choices = "thread|process", .offset = ENTRY_OFF(isolation)},
	/* 0: no limit; enforced with isolation: process only */
	{.path = "max_run_seconds", .type = CT_INT64, .def = "0", .min = 0,
	 .max = 31536000, .offset = ENTRY_OFF(max_run_seconds)},
	{.path = "max_rss_mb", .type = CT_INT64, .def = "0", .min = 0,
	 .max = 1048576, .offset = ENTRY_OFF(max_rss_mb)},
};

static bool
valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		char ch = *s;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
		      ch == '-'))
			return false;
	}
	return true;
}

static bool
nonempty(const char *s)
{
	return *s != '\0';
}

static int
fix_plugin_dir(struct cfg_ctx *c, const struct cfg_row *row,
	       struct row_state *st)
{
	struct manifest *m = c->owner;
	(void)row;
	(void)st;
	if (!m->plugin_dir || !*m->plugin_dir) {
		free(m->plugin_dir);
		m->plugin_dir = xstrdup(c->doc->dir);
	}
	return 0;
}

static int
load_entry(struct cfg_ctx *c, size_t idx, const struct ynode *node,
	   struct manifest_entry *e)
{
	struct row_state states[ARRAY_LEN(entry_rows)];
	char shown[48], got[64];

	config_apply_defaults(entry_rows, ARRAY_LEN(entry_rows), e);
	e->line = node->line;
	snprintf(shown, sizeof(shown), "plugins[%zu]", idx);
	if (node->kind != YNODE_MAPPING)
		return berr_set_at(c->err, c->doc->path, node->line, node->col,
				   "%s: expected a mapping with name and "
				   "file, got %s",
				   shown, ynode_describe(node, got, sizeof(got)));
	memset(states, 0, sizeof(states));
	if (config_apply_file(c, entry_rows, ARRAY_LEN(entry_rows), node, shown,
			      states, e) < 0)
		return -1;
	/* a limit that cannot be enforced is said, not silently dropped */
	if (strcmp(e->isolation, "process") != 0 &&
	    (e->max_run_seconds > 0 || e->max_rss_mb > 0))
		config_warn(c, xasprintf("%s:%d: %s: max_run_seconds and "
					 "max_rss_mb apply only with "
					 "isolation: process; ignored",
					 c->doc->path, node->line, shown));
	return 0;
}

static int
load_root(struct cfg_ctx *c)
{
	const struct ynode *root = c->doc->root;
	struct manifest *m = c->owner;
	struct row_state states[ARRAY_LEN(top_rows)];
	char got[64];

	if (root->kind != YNODE_MAPPING)
		return berr_set_at(c->err, c->doc->path, root->line, root->col,
				   "expected a mapping with plugin_dir and "
				   "plugins at the top level, got %s",
				   ynode_describe(root, got, sizeof(got)));
	/* pass 1 over the whole file first: strict mode reports every
	 * unknown key before it fails */
	if (config_walk_unknown(c, top_rows, ARRAY_LEN(top_rows), root, "",
				"") < 0)
		return -1;
	const struct ynode *plugins = ynode_get(root, "plugins");
	for (size_t i = 0; plugins && plugins->kind == YNODE_SEQUENCE &&
			   i < plugins->n;
	     i++) {
		char shown[48];
		if (plugins->items[i]->kind != YNODE_MAPPING)
			continue; /* reported by load_entry */
		snprintf(shown, sizeof(shown), "plugins[%zu]", i);
		if (config_walk_unknown(c, entry_rows, ARRAY_LEN(entry_rows),
					plugins->items[i], "", shown) < 0)
			return -1;
	}
	memset(states, 0, sizeof(states));
	if (config_unknown_verdict(c) < 0 ||
	    config_apply_file(c, top_rows, ARRAY_LEN(top_rows), root, "",
			      states, m) < 0 ||
	    config_normalise_rows(c, top_rows, ARRAY_LEN(top_rows), "", states,
				  m) < 0)
		return -1;

	const struct ynode *list = states[1].node;
	if (!list)
		return 0;
	m->entries = xcalloc(list->n ? list->n : 1, sizeof(*m->entries));
	for (size_t i = 0; i < list->n; i++) {
		/* counted first so manifest_fini frees a half-filled entry */
		m->n_entries++;
		if (load_entry(c, i, list->items[i], &m->entries[i]) < 0)
			return -1;
	}
	return 0;
}

int
manifest_load(const char *path, bool strict, struct manifest *m,
	      struct berr *err)
{
	struct ydoc doc;

	memset(m, 0, sizeof(*m));
	berr_clear(err);
	if (ydoc_load(&doc, path, err) < 0)
		return -1;
	struct config_options opts = {.strict = strict};
	struct cfg_ctx c = {
		.owner = m,
		.opts = &opts,
		.doc = &doc,
		.err = err,
		.warnings = &m->warnings,
		.n_warnings = &m->n_warnings,
		.errors = &m->errors,
		.n_errors = &m->n_errors,
		.container_wording = true,
	};
	m->path = xstrdup(path);
	int rc = load_root(&c);
	ydoc_fini(&doc);
	if (rc < 0) {
		/* only the findings stay, for the caller to report */
		char **w = m->warnings, **e = m->errors;
		size_t nw = m->n_warnings, ne = m->n_errors;
		m->warnings = m->errors = NULL;
		m->n_warnings = m->n_errors = 0;
		manifest_fini(m);
		m->warnings = w;
		m->n_warnings = nw;
		m->errors = e;
		m->n_errors = ne;
	}
	return rc;
}

void
manifest_fini(struct manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_entries; i++) {
		free(m->entries[i].name);
		free(m->entries[i].file);
		free(m->entries[i].settings_json);
		free(m->entries[i].isolation);
	}
	free(m->entries);
	for (size_t i = 0; i < m->n_warnings; i++)
		free(m->warnings[i]);
	free(m->warnings);
	for (size_t i = 0; i < m->n_errors; i++)
		free(m->errors[i]);
	free(m->errors);
	free(m->path);
	free(m->plugin_dir);
	memset(m, 0, sizeof(*m));
}

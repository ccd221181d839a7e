/* manifest.c - see manifest.h. The keys of an entry are described by one
 * table; loading walks the YAML tree (yamltree.h) and checks each value
 * against its row. Duplicate plugin names are left to the plugin host. */
#include "config/manifest.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/yamltree.h"

enum mf_type {
	MF_NAME,     /* non-empty [A-Za-z0-9_.-]+ */
	MF_STRING,   /* non-empty string */
	MF_BOOL,
	MF_INT,      /* int64_t in [min, max] */
	MF_SETTINGS, /* mapping -> JSON object text */
};

struct mf_row {
	const char *key;
	enum mf_type type;
	bool required;
	int64_t min, max;
	size_t offset; /* into struct manifest_entry */
};

#define ENTRY_OFF(f) offsetof(struct manifest_entry, f)

static const struct mf_row entry_rows[] = {
	{"name", MF_NAME, true, 0, 0, ENTRY_OFF(name)},
	{"file", MF_STRING, true, 0, 0, ENTRY_OFF(file)},
	{"enabled", MF_BOOL, false, 0, 0, ENTRY_OFF(enabled)},
	{"max_fails", MF_INT, false, 0, 1000000, ENTRY_OFF(max_fails)},
	{"max_concurrency", MF_INT, false, 0, 1000000,
	 ENTRY_OFF(max_concurrency)},
	/* Harbor refuses job priorities above 100000 */
	{"priority", MF_INT, false, 1, 100000, ENTRY_OFF(priority)},
	{"settings", MF_SETTINGS, false, 0, 0, ENTRY_OFF(settings_json)},
};

static const char *const top_keys[] = {"plugin_dir", "plugins"};

struct mf_ctx {
	struct manifest *m;
	const struct ydoc *doc;
	bool strict;
	struct berr *err;
};

static void
push_warning(struct manifest *m, char *w)
{
	m->warnings = xrealloc(m->warnings,
			       (m->n_warnings + 1) * sizeof(*m->warnings));
	m->warnings[m->n_warnings++] = w;
}

/* where: "in plugins[2]" or "at the top level" */
static int
unknown_key(struct mf_ctx *c, const struct ynode *key, const char *where,
	    const char *const *cands, size_t n)
{
	const char *s = ynode_suggest(key->text, cands, n);
	char hint[128] = "";
	if (s)
		snprintf(hint, sizeof(hint), " (did you mean '%s'?)", s);
	if (c->strict)
		return berr_set_at(c->err, c->doc->path, key->line, key->col,
				   "unknown key '%s' %s%s", key->text, where,
				   hint);
	push_warning(c->m, xasprintf("%s:%d: unknown key '%s' %s%s",
				     c->doc->path, key->line, key->text,
				     where, hint));
	return 0;
}

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

static int
apply_row(struct mf_ctx *c, const struct mf_row *row, size_t idx,
	  const struct ynode *v, struct manifest_entry *e)
{
	char *field = (char *)e + row->offset;
	const char *path = c->doc->path;
	char got[64];
	const char *s;
	int64_t i;

	ynode_describe(v, got, sizeof(got));
	switch (row->type) {
	case MF_NAME:
		s = ynode_str(v);
		if (!s || !valid_name(s))
			return berr_set_at(c->err, path, v->line, v->col,
					   "plugins[%zu].%s: expected a "
					   "non-empty name of letters, "
					   "digits, '_', '.' or '-', got %s",
					   idx, row->key, got);
		*(char **)field = xstrdup(s);
		return 0;
	case MF_STRING:
		s = ynode_str(v);
		if (!s || !*s)
			return berr_set_at(c->err, path, v->line, v->col,
					   "plugins[%zu].%s: expected a "
					   "non-empty string, got %s",
					   idx, row->key, got);
		*(char **)field = xstrdup(s);
		return 0;
	case MF_BOOL:
		if (ynode_as_bool(v, (bool *)field) < 0)
			return berr_set_at(c->err, path, v->line, v->col,
					   "plugins[%zu].%s: expected a "
					   "boolean (true or false), got %s",
					   idx, row->key, got);
		return 0;
	case MF_INT:
		if (ynode_as_int(v, &i) < 0 || i < row->min || i > row->max)
			return berr_set_at(c->err, path, v->line, v->col,
					   "plugins[%zu].%s: expected an "
					   "integer in %lld..%lld, got %s",
					   idx, row->key, (long long)row->min,
					   (long long)row->max, got);
		*(int64_t *)field = i;
		return 0;
	case MF_SETTINGS:
		if (v->kind != YNODE_MAPPING)
			return berr_set_at(c->err, path, v->line, v->col,
					   "plugins[%zu].%s: expected a "
					   "mapping, got %s",
					   idx, row->key, got);
		cJSON *j = ynode_to_json(v);
		char *text = cJSON_PrintUnformatted(j);
		cJSON_Delete(j);
		if (!text) {
			fprintf(stderr, "berthd: out of memory printing "
					"JSON\n");
			abort();
		}
		/* cJSON's allocator is malloc; keep ours for free() */
		*(char **)field = xstrdup(text);
		cJSON_free(text);
		return 0;
	}
	return 0;
}

static int
load_entry(struct mf_ctx *c, size_t idx, const struct ynode *node,
	   struct manifest_entry *e)
{
	const char *cands[ARRAY_LEN(entry_rows)];
	char where[48];

	e->enabled = true;
	e->max_fails = -1;
	e->max_concurrency = -1;
	e->priority = -1;
	e->line = node->line;
	if (node->kind != YNODE_MAPPING) {
		char got[64];
		return berr_set_at(c->err, c->doc->path, node->line, node->col,
				   "plugins[%zu]: expected a mapping with "
				   "name and file, got %s",
				   idx, ynode_describe(node, got, sizeof(got)));
	}
	for (size_t r = 0; r < ARRAY_LEN(entry_rows); r++) {
		const struct mf_row *row = &entry_rows[r];
		const struct ynode *v = ynode_get(node, row->key);
		cands[r] = row->key;
		if (!v && row->required)
			return berr_set_at(c->err, c->doc->path, node->line,
					   node->col,
					   "plugins[%zu].%s: required key is "
					   "missing",
					   idx, row->key);
		/* an explicit null is "not given", except where required */
		if (ynode_is_null(v) && !row->required)
			continue;
		if (apply_row(c, row, idx, v, e) < 0)
			return -1;
	}
	if (!e->settings_json)
		e->settings_json = xstrdup("{}");
	snprintf(where, sizeof(where), "in plugins[%zu]", idx);
	for (size_t k = 0; k < node->n; k++) {
		const struct ynode *key = node->pairs[k].key;
		bool known = false;
		for (size_t r = 0; r < ARRAY_LEN(entry_rows) && !known; r++)
			known = strcmp(key->text, entry_rows[r].key) == 0;
		if (!known && unknown_key(c, key, where, cands,
					  ARRAY_LEN(cands)) < 0)
			return -1;
	}
	return 0;
}

static int
load_root(struct mf_ctx *c)
{
	const struct ynode *root = c->doc->root;
	const char *path = c->doc->path;
	struct manifest *m = c->m;
	char got[64];

	if (root->kind != YNODE_MAPPING)
		return berr_set_at(c->err, path, root->line, root->col,
				   "expected a mapping with plugin_dir and "
				   "plugins at the top level, got %s",
				   ynode_describe(root, got, sizeof(got)));
	for (size_t k = 0; k < root->n; k++) {
		const struct ynode *key = root->pairs[k].key;
		bool known = false;
		for (size_t i = 0; i < ARRAY_LEN(top_keys) && !known; i++)
			known = strcmp(key->text, top_keys[i]) == 0;
		if (!known && unknown_key(c, key, "at the top level", top_keys,
					  ARRAY_LEN(top_keys)) < 0)
			return -1;
	}

	const struct ynode *dir = ynode_get(root, "plugin_dir");
	if (!ynode_is_null(dir) && !ynode_str(dir))
		return berr_set_at(c->err, path, dir->line, dir->col,
				   "plugin_dir: expected a path, got %s",
				   ynode_describe(dir, got, sizeof(got)));
	const char *d = ynode_str(dir);
	/* absent or empty: the manifest's own directory */
	m->plugin_dir = d && *d ? util_path_join(c->doc->dir, d)
				: xstrdup(c->doc->dir);

	const struct ynode *list = ynode_get(root, "plugins");
	if (ynode_is_null(list))
		return 0;
	if (list->kind != YNODE_SEQUENCE)
		return berr_set_at(c->err, path, list->line, list->col,
				   "plugins: expected a sequence of "
				   "mappings, got %s",
				   ynode_describe(list, got, sizeof(got)));
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
	struct mf_ctx c = {.m = m, .doc = &doc, .strict = strict, .err = err};
	m->path = xstrdup(path);
	int rc = load_root(&c);
	ydoc_fini(&doc);
	if (rc < 0)
		manifest_fini(m);
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
	}
	free(m->entries);
	for (size_t i = 0; i < m->n_warnings; i++)
		free(m->warnings[i]);
	free(m->warnings);
	free(m->path);
	free(m->plugin_dir);
	memset(m, 0, sizeof(*m));
}

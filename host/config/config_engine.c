/* config_engine.c - the YAML row engine: the passes that apply a table
 * of rows to the YAML tree, and the messages they write. It knows rows,
 * types and flags, not the keys of a file: config.c (berth.yml) and
 * manifest.c (plugins.yml) have the tables; config.c also has the
 * environment (pass 4), the fix hooks, the loggers and the order of the
 * passes.
 *
 *   1. unknown keys       walk the YAML tree; keys no row names are warnings
 *                         (errors in strict mode), with a "did you mean"
 *   2. defaults           every row's default into the struct
 *   3. file               every row's value from the file, type-checked
 *   5. normalise          generic (paths, ${data_dir}, non-blank), then the
 *                         row's own fix hook
 */
#include "config/config_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "logs/log.h"
#include "config/yamltree.h"

#define DATA_DIR_VAR "${data_dir}"

/* ---- small helpers ---------------------------------------------------- */

void
config_warn(struct cfg_ctx *c, char *w)
{
	*c->warnings = xrealloc(*c->warnings,
				(*c->n_warnings + 1) * sizeof(**c->warnings));
	(*c->warnings)[(*c->n_warnings)++] = w;
}

static bool
is_blank(const char *s)
{
	for (; s && *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	return true;
}

bool
config_double_in_range(const struct cfg_row *row, double d)
{
	if (!isfinite(d) || d > (double)row->max)
		return false;
	return row->flags & CF_GT_MIN ? d > (double)row->min
				      : d >= (double)row->min;
}

/* "a|b|c" contains s as a whole alternative */
bool
config_choice_ok(const char *choices, const char *s)
{
	size_t n = strlen(s);
	for (const char *p = choices; *p;) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == n && strncmp(p, s, n) == 0)
			return true;
		if (!bar)
			break;
		p = bar + 1;
	}
	return false;
}

/* " (did you mean 'FILE'?)" for an enum value off by case or a typo */
void
config_choice_hint(const char *choices, const char *s, char *buf, size_t size)
{
	char tmp[128];
	const char *cands[16];
	size_t n = 0;

	buf[0] = '\0';
	snprintf(tmp, sizeof(tmp), "%s", choices);
	for (char *save = NULL, *t = strtok_r(tmp, "|", &save);
	     t && n < ARRAY_LEN(cands); t = strtok_r(NULL, "|", &save)) {
		if (strcasecmp(t, s) == 0) {
			snprintf(buf, size, " (did you mean '%s'?)", t);
			return;
		}
		cands[n++] = t;
	}
	const char *best = ynode_suggest(s, cands, n);
	if (best)
		snprintf(buf, size, " (did you mean '%s'?)", best);
}

const char *
config_expected(const struct cfg_row *row, char *buf, size_t size)
{
	if (row->expect)
		return row->expect;
	switch (row->type) {
	case CT_SECTION:
	case CT_FREEFORM:
	case CT_JSON:
		return "a mapping";
	case CT_SEQUENCE:
		return "a sequence";
	case CT_DOUBLE:
		if (row->flags & CF_GT_MIN)
			snprintf(buf, size, "a number in (%lld, %lld]",
				 (long long)row->min, (long long)row->max);
		else
			snprintf(buf, size, "a number in %lld..%lld",
				 (long long)row->min, (long long)row->max);
		return buf;
	case CT_STRING:
		return row->flags & CF_NONBLANK ? "a non-empty string"
						: "a string";
	case CT_ENUM:
		snprintf(buf, size, "one of %s", row->choices);
		return buf;
	case CT_INT:
	case CT_INT64:
		snprintf(buf, size, "an integer in %lld..%lld",
			 (long long)row->min, (long long)row->max);
		return buf;
	case CT_BOOL:
		return "a boolean (true or false)";
	case CT_LEVEL:
		return "a log level (DEBUG, INFO, WARNING, ERROR or FATAL)";
	case CT_LOGGERS:
		return "a sequence of at least one logger "
		       "({name, level, settings, sweeper})";
	}
	return "?";
}

/* snprintf for key paths in messages, where cutting a pathological
 * (very long) key short is fine. */
void
config_path_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

/* prefix "" -> "a.b"; prefix "loggers[1]" -> "loggers[1].a.b" */
const char *
config_show_path(const char *prefix, const char *path, char *buf, size_t size)
{
	if (prefix[0])
		config_path_fmt(buf, size, "%s.%s", prefix, path);
	else
		config_path_fmt(buf, size, "%s", path);
	return buf;
}

/* Fails at a row's value: its node in the file, the variable that set
 * it, or just the file for a default. msg is prefixed with the key path. */
int
config_row_fail(struct cfg_ctx *c, const struct row_state *st,
		const char *shown, const char *fmt, ...)
{
	char msg[BERR_MSG_MAX - 300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (st->env)
		return berr_set(c->err, "%s: %s: %s", st->env, shown, msg);
	if (st->node)
		return berr_set_at(c->err, c->doc->path, st->node->line,
				   st->node->col, "%s: %s", shown, msg);
	if (st->parent)
		return berr_set_at(c->err, c->doc->path, st->parent->line,
				   st->parent->col, "%s: %s", shown, msg);
	return berr_set_at(c->err, c->doc->path, 0, 0, "%s: %s", shown, msg);
}

/* Finds a dotted path under base. *parent is the deepest node reached on
 * the way (the mapping that lacks the key, for positions). */
static const struct ynode *
lookup(const struct ynode *base, const char *path,
       const struct ynode **parent)
{
	const struct ynode *cur = base;
	const char *p = path;
	char seg[64];

	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if (len >= sizeof(seg))
			len = sizeof(seg) - 1;
		memcpy(seg, p, len);
		seg[len] = '\0';
		*parent = cur;
		if (cur->kind != YNODE_MAPPING)
			return NULL;
		const struct ynode *next = ynode_get(cur, seg);
		if (!next || !dot)
			return next;
		cur = next;
		p = dot + 1;
	}
}

/* ---- pass 1: unknown keys ---------------------------------------------- */

/* The distinct key names one level below prefix, for suggestions. */
static size_t
child_keys(const struct cfg_row *rows, size_t n, const char *prefix,
	   char names[][48], size_t max)
{
	size_t plen = strlen(prefix), count = 0;
	for (size_t i = 0; i < n; i++) {
		const char *p = rows[i].path;
		if (plen) {
			if (strncmp(p, prefix, plen) != 0 || p[plen] != '.')
				continue;
			p += plen + 1;
		}
		size_t len = strcspn(p, ".");
		if (len >= 48)
			continue;
		bool dup = false;
		for (size_t j = 0; j < count && !dup; j++)
			dup = strlen(names[j]) == len &&
			      strncmp(names[j], p, len) == 0;
		if (dup || count == max)
			continue;
		memcpy(names[count], p, len);
		names[count][len] = '\0';
		count++;
	}
	return count;
}

/* The row named exactly by path; *inner is set when some row lies below
 * it (it is a section the walk may descend into). */
static const struct cfg_row *
find_row(const struct cfg_row *rows, size_t n, const char *path, bool *inner)
{
	const struct cfg_row *exact = NULL;
	size_t len = strlen(path);
	*inner = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].path, path) == 0)
			exact = &rows[i];
		else if (strncmp(rows[i].path, path, len) == 0 &&
			 rows[i].path[len] == '.')
			*inner = true;
	}
	return exact;
}

static int
report_unknown(struct cfg_ctx *c, const struct cfg_row *rows, size_t n,
	       const char *prefix, const char *shown_prefix,
	       const struct ynode *key)
{
	char names[32][48];
	const char *cands[32];
	char shown[PATH_MAXLEN + 8], where[PATH_MAXLEN], hint[96] = "";
	size_t k = child_keys(rows, n, prefix, names, ARRAY_LEN(names));

	for (size_t i = 0; i < k; i++)
		cands[i] = names[i];
	const char *s = ynode_suggest(key->text, cands, k);
	if (s)
		snprintf(hint, sizeof(hint), " (did you mean '%s'?)", s);
	if (c->container_wording)
		config_path_fmt(shown, sizeof(shown), "%s%s",
				shown_prefix[0] ? "in " : "at the top level",
				shown_prefix);
	else
		config_path_fmt(shown, sizeof(shown), "at %s",
				config_show_path(shown_prefix, key->text, where,
						 sizeof(where)));
	if (!c->opts->strict) {
		config_warn(c, xasprintf("%s:%d: unknown key '%s' %s%s",
					 c->doc->path, key->line, key->text,
					 shown, hint));
		return 0;
	}
	/* strict: every unknown key is reported, then the load fails */
	c->unknown = xrealloc(c->unknown,
			      (c->n_unknown + 1) * sizeof(*c->unknown));
	c->unknown[c->n_unknown++] = (struct cfg_unknown){
		key->line, key->col,
		xasprintf("unknown key '%s' %s%s", key->text, shown, hint)};
	return 0;
}

static int
unknown_cmp(const void *a, const void *b)
{
	const struct cfg_unknown *x = a, *y = b;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->col < y->col ? -1 : x->col > y->col;
}

int
config_unknown_verdict(struct cfg_ctx *c)
{
	size_t n = c->n_unknown;
	if (n == 0)
		return 0;
	qsort(c->unknown, n, sizeof(*c->unknown), unknown_cmp);
	const struct cfg_unknown *u = c->unknown;
	if (n == 1) {
		berr_set_at(c->err, c->doc->path, u->line, u->col, "%s",
			    u->msg);
	} else {
		*c->errors = xrealloc(*c->errors, (*c->n_errors + n) *
							  sizeof(**c->errors));
		for (size_t i = 0; i < n; i++)
			(*c->errors)[(*c->n_errors)++] =
				xasprintf("%s:%d:%d: %s", c->doc->path,
					  u[i].line, u[i].col, u[i].msg);
		berr_set_at(c->err, c->doc->path, u->line, u->col,
			    "%zu unknown keys (strict mode)", n);
	}
	for (size_t i = 0; i < n; i++)
		free(c->unknown[i].msg);
	free(c->unknown);
	c->unknown = NULL;
	c->n_unknown = 0;
	return -1;
}

/* prefix is the schema path of map ("" at the top); shown_prefix is what
 * messages print ("job_loggers[1]" for a logger entry). */
int
config_walk_unknown(struct cfg_ctx *c, const struct cfg_row *rows, size_t n,
		    const struct ynode *map, const char *prefix,
		    const char *shown_prefix)
{
	char path[PATH_MAXLEN], shown[PATH_MAXLEN];

	for (size_t i = 0; i < map->n; i++) {
		const struct ynode *key = map->pairs[i].key;
		const struct ynode *val = map->pairs[i].value;
		bool inner;

		config_show_path(prefix, key->text, path, sizeof(path));
		const struct cfg_row *row = find_row(rows, n, path, &inner);
		/* "worker_pool.workers: 3" is not a nested key */
		if (strchr(key->text, '.')) {
			row = NULL;
			inner = false;
		}
		if (!row && !inner) {
			if (report_unknown(c, rows, n, prefix, shown_prefix,
					   key) < 0)
				return -1;
			continue;
		}
		config_show_path(shown_prefix, key->text, shown, sizeof(shown));
		if (row && row->type == CT_LOGGERS &&
		    val->kind == YNODE_SEQUENCE) {
			if (config_walk_loggers(c, val, shown) < 0)
				return -1;
		} else if (inner && val->kind == YNODE_MAPPING &&
			   !(row && row->type == CT_FREEFORM)) {
			if (config_walk_unknown(c, rows, n, val, path,
						shown) < 0)
				return -1;
		}
	}
	return 0;
}

/* ---- passes 2 and 3: defaults and file values --------------------------- */

void
config_apply_defaults(const struct cfg_row *rows, size_t n, void *obj)
{
	int64_t v;
	for (size_t i = 0; i < n; i++) {
		const struct cfg_row *row = &rows[i];
		if (!row->def || row->offset == NO_OFFSET)
			continue;
		switch (row->type) {
		case CT_STRING:
		case CT_ENUM:
			set_str(obj, row, row->def);
			break;
		case CT_INT:
		case CT_INT64:
			if (util_parse_i64(row->def, INT64_MIN, INT64_MAX, &v) ==
			    0)
				set_int(obj, row, v);
			break;
		case CT_BOOL:
			*(bool *)((char *)obj + row->offset) =
				strcmp(row->def, "true") == 0;
			break;
		case CT_LEVEL:
			*(int *)((char *)obj + row->offset) =
				blog_level_parse(row->def);
			break;
		case CT_DOUBLE:
			*(double *)((char *)obj + row->offset) =
				strtod(row->def, NULL);
			break;
		case CT_JSON:
			set_str(obj, row, row->def);
			break;
		case CT_SECTION:
		case CT_FREEFORM:
		case CT_LOGGERS:
		case CT_SEQUENCE:
			break;
		}
	}
}

/* " (is 'protocl' on line 2 a typo?)" when the mapping lacking key has a
 * key close to it */
static void
missing_hint(const struct ynode *map, const char *path, char *buf,
	     size_t size)
{
	const char *last = strrchr(path, '.');
	last = last ? last + 1 : path;
	buf[0] = '\0';
	if (!map || map->kind != YNODE_MAPPING)
		return;
	for (size_t i = 0; i < map->n; i++) {
		const struct ynode *k = map->pairs[i].key;
		const char *cand[1] = {last};
		if (ynode_suggest(k->text, cand, 1)) {
			snprintf(buf, size, "; is '%s' on line %d a typo?",
				 k->text, k->line);
			return;
		}
	}
}

static int
apply_node(struct cfg_ctx *c, const struct cfg_row *row, const char *shown,
	   struct row_state *st, void *obj)
{
	const struct ynode *v = st->node;
	char got[64], exp[96], hint[96];
	int64_t i;
	const char *s;

	ynode_describe(v, got, sizeof(got));
	switch (row->type) {
	case CT_SECTION:
	case CT_FREEFORM:
		if (v->kind != YNODE_MAPPING)
			break;
		if (row->offset != NO_OFFSET)
			*(bool *)((char *)obj + row->offset) = true;
		return 0;
	case CT_LOGGERS:
		if (v->kind != YNODE_SEQUENCE || v->n == 0)
			break;
		return 0;
	case CT_SEQUENCE:
		if (v->kind != YNODE_SEQUENCE)
			break;
		return 0;
	case CT_STRING:
		if (!(s = ynode_str(v)) || (row->valid && !row->valid(s)))
			break;
		set_str(obj, row, s);
		return 0;
	case CT_DOUBLE: {
		double d;
		if (ynode_as_double(v, &d) < 0 || !config_double_in_range(row, d))
			break;
		*(double *)((char *)obj + row->offset) = d;
		return 0;
	}
	case CT_JSON: {
		if (v->kind != YNODE_MAPPING)
			break;
		cJSON *j = ynode_to_json(v);
		char *text = cJSON_PrintUnformatted(j);
		cJSON_Delete(j);
		if (!text)
			json_must(NULL); /* out of memory: aborts */
		set_str(obj, row, text);
		cJSON_free(text);
		return 0;
	}
	case CT_ENUM:
		if (!(s = ynode_str(v)))
			break;
		if (!config_choice_ok(row->choices, s)) {
			config_choice_hint(row->choices, s, hint, sizeof(hint));
			return config_row_fail(
				c, st, shown, "expected %s, got %s%s",
				config_expected(row, exp, sizeof(exp)), got,
				hint);
		}
		set_str(obj, row, s);
		return 0;
	case CT_INT:
	case CT_INT64:
		if (ynode_as_int(v, &i) < 0 || i < row->min || i > row->max)
			break;
		set_int(obj, row, i);
		return 0;
	case CT_BOOL:
		if (ynode_as_bool(v, (bool *)((char *)obj + row->offset)) < 0)
			break;
		return 0;
	case CT_LEVEL: {
		if (v->kind != YNODE_SCALAR)
			break;
		int lvl = blog_level_parse(v->text);
		if (lvl < 0) {
			/* Harbor: unknown or empty -> WARNING */
			lvl = BLOG_WARNING;
			if (!is_blank(v->text))
				config_warn(
					c, xasprintf("%s:%d: %s: unknown "
							  "level %s, using "
							  "WARNING",
							  c->doc->path, v->line,
							  shown, got));
		}
		*(int *)((char *)obj + row->offset) = lvl;
		return 0;
	}
	}
	/* port: "8080" is a string to YAML (and to Harbor's parser) */
	bool quoted_hint = v->kind == YNODE_SCALAR && v->quoted &&
			   (row->type == CT_INT || row->type == CT_INT64 ||
			    row->type == CT_DOUBLE || row->type == CT_BOOL);
	return config_row_fail(c, st, shown, "expected %s, got %s%s",
			       config_expected(row, exp, sizeof(exp)), got,
			       quoted_hint ? " (quoted, so a string)" : "");
}

int
config_apply_file(struct cfg_ctx *c, const struct cfg_row *rows, size_t n,
		  const struct ynode *base, const char *shown_prefix,
		  struct row_state *states, void *obj)
{
	char shown[PATH_MAXLEN], exp[96], hint[96];

	for (size_t i = 0; i < n; i++) {
		const struct cfg_row *row = &rows[i];
		struct row_state *st = &states[i];
		config_show_path(shown_prefix, row->path, shown, sizeof(shown));
		st->node = lookup(base, row->path, &st->parent);
		if (!st->node) {
			/* a missing section was reported by its own row,
			 * which comes first in the table */
			if (!(row->flags & CF_REQUIRED))
				continue;
			missing_hint(st->parent, row->path, hint,
				     sizeof(hint));
			if (c->container_wording)
				return berr_set_at(
					c->err, c->doc->path,
					st->parent->line, st->parent->col,
					"%s: required key is missing%s%s%s",
					shown, hint[0] ? " (" : "",
					hint[0] ? hint + 2 : "",
					hint[0] ? ")" : "");
			return berr_set_at(
				c->err, c->doc->path, st->parent->line,
				st->parent->col,
				"%s: required key is missing "
				"(expected %s%s)",
				shown, config_expected(row, exp, sizeof(exp)),
				hint);
		}
		/* an explicit null is "not given", unless required */
		if (ynode_is_null(st->node) && !(row->flags & CF_REQUIRED)) {
			st->node = NULL;
			continue;
		}
		if (apply_node(c, row, shown, st, obj) < 0)
			return -1;
	}
	return 0;
}

/* ---- pass 5: generic normalisation -------------------------------------- */

/* Generic string normalisation: ${data_dir} expansion, then relative
 * paths from the file (or defaults) against the config's directory. */
int
config_normalise_rows(struct cfg_ctx *c, const struct cfg_row *rows, size_t n,
		      const char *shown_prefix, struct row_state *states,
		      void *obj)
{
	char shown[PATH_MAXLEN], exp[96];

	for (size_t i = 0; i < n; i++) {
		const struct cfg_row *row = &rows[i];
		struct row_state *st = &states[i];
		if (row->type == CT_STRING && row->offset != NO_OFFSET) {
			char **f = str_field(obj, row);
			bool expanded = false;
			config_show_path(shown_prefix, row->path, shown,
					 sizeof(shown));
			if ((row->flags & CF_NONBLANK) && is_blank(*f))
				return config_row_fail(
					c, st, shown, "expected %s, got \"%s\"",
					config_expected(row, exp, sizeof(exp)),
					*f ? *f : "");
			if (*f && (row->flags & CF_EXPAND) && c->cfg &&
			    strncmp(*f, DATA_DIR_VAR,
				    strlen(DATA_DIR_VAR)) == 0) {
				char *p = xasprintf(
					"%s%s", c->cfg->data_dir,
					*f + strlen(DATA_DIR_VAR));
				free(*f);
				*f = p;
				expanded = true;
			}
			if (*f && **f && **f != '/' && !expanded &&
			    (row->flags & CF_PATH) && !st->env) {
				char *p = util_path_join(c->doc->dir, *f);
				free(*f);
				*f = p;
			}
		}
		if (row->fix && row->fix(c, row, st) < 0)
			return -1;
	}
	return 0;
}

/* config_internal.h - the YAML row engine (config_engine.c) and what its
 * two users share: config.c (berth.yml: the row tables, the environment,
 * the normalisation hooks, the loggers, the load sequence) and manifest.c
 * (plugins.yml: its own row tables). A row names a key path, its type,
 * default, bounds and flags and the field it fills; the engine applies a
 * table to the YAML tree and writes the messages (file:line:col, the key
 * path, what was expected, "did you mean" for unknown keys). Not for other
 * modules: they use config.h and manifest.h. */
#ifndef BERTH_CONFIG_INTERNAL_H
#define BERTH_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "config/config.h"
#include "common/util.h"
#include "config/yamltree.h"

enum cfg_type {
	CT_SECTION,  /* a mapping; offset (if any) is a bool set when present */
	CT_FREEFORM, /* a mapping whose keys are not checked (settings:) */
	CT_STRING,   /* char *; any non-null scalar */
	CT_ENUM,     /* char *; one of row->choices */
	CT_INT,      /* int in [min, max] */
	CT_INT64,    /* int64_t in [min, max] */
	CT_BOOL,     /* bool; true / false */
	CT_LEVEL,    /* int; blog_level_parse, unknown or empty -> WARNING */
	CT_LOGGERS,  /* sequence of logger entries, parsed with logger_rows */
	CT_DOUBLE,   /* double in [min, max] ((min, max] with CF_GT_MIN) */
	CT_SEQUENCE, /* a sequence; the caller reads its items */
	CT_JSON,     /* char *; a mapping, stored as JSON object text */
};

/* row flags */
#define CF_REQUIRED 0x001u  /* missing key is an error */
#define CF_PATH 0x002u      /* relative values resolve against cfg->dir */
#define CF_EXPAND 0x004u    /* may start with ${data_dir} */
#define CF_NONBLANK 0x008u  /* must contain a non-space character */
#define CF_ENV_HTTPS 0x010u /* env applies only if protocol is https */
#define CF_ENV_REDIS 0x020u /* env applies only if backend is redis */
#define CF_ENV_SOFT 0x040u  /* unparsable env value: warning, unchanged */
#define CF_ENV_ZERO 0x080u  /* env may also set 0 (see port) */
#define CF_SERVICE 0x100u   /* CT_LOGGERS: the service loggers */
#define CF_ENV_EMPTY 0x200u /* an empty variable is a value too */
#define CF_GT_MIN 0x400u    /* CT_DOUBLE: min itself is refused */

#define NO_OFFSET ((size_t)-1)

struct cfg_ctx;
struct cfg_row;

/* Where a row's value came from, for messages and path resolution. */
struct row_state {
	const struct ynode *node;   /* the value in the file, or NULL */
	const struct ynode *parent; /* deepest mapping on the way to it */
	const char *env;            /* the variable that set it, or NULL */
};

typedef int (*cfg_fix_fn)(struct cfg_ctx *c, const struct cfg_row *row,
			  struct row_state *st);

struct cfg_row {
	const char *path;    /* dotted key path */
	enum cfg_type type;
	const char *def;     /* default, as text; NULL = none */
	int64_t min, max;    /* CT_INT / CT_INT64 */
	unsigned flags;
	const char *choices; /* CT_ENUM: "a|b|c" */
	size_t offset;       /* field, or NO_OFFSET */
	const char *env;     /* overriding variable (spec 11.2), or NULL */
	cfg_fix_fn fix;      /* normalisation / cross-check after env */
	int64_t aux;         /* fix parameter; CT_LOGGERS: offset of count */
	const char *expect;  /* what messages say is expected, if not the
			      * type's own text */
	bool (*valid)(const char *s); /* CT_STRING: refuses a file value */
};

#define PATH_MAXLEN 256

/* an unknown key found in strict mode */
struct cfg_unknown {
	int line, col;
	char *msg;
};

struct cfg_ctx {
	struct berth_config *cfg; /* NULL when loading the manifest */
	void *owner;              /* the manifest's struct manifest */
	const struct config_options *opts;
	const struct ydoc *doc;
	struct berr *err;
	char ***warnings;         /* where findings go */
	size_t *n_warnings;
	/* strict mode: every unknown key when there are several (see
	 * config_unknown_verdict) */
	char ***errors;
	size_t *n_errors;
	struct cfg_unknown *unknown; /* strict mode: found so far */
	size_t n_unknown;
	/* manifest wording: "unknown key 'k' in plugins[0]" (or "at the top
	 * level") rather than "at plugins[0].k", and a missing key without
	 * what was expected */
	bool container_wording;
	struct row_state st[]; /* one per row of config_rows (config.c) */
};

/* ---- small helpers ------------------------------------------------------ */

static inline char **
str_field(void *obj, const struct cfg_row *row)
{
	return (char **)((char *)obj + row->offset);
}

static inline void
set_str(void *obj, const struct cfg_row *row, const char *v)
{
	char **f = str_field(obj, row);
	free(*f);
	*f = v ? xstrdup(v) : NULL;
}

static inline void
set_int(void *obj, const struct cfg_row *row, int64_t v)
{
	char *f = (char *)obj + row->offset;
	if (row->type == CT_INT64)
		*(int64_t *)f = v;
	else
		*(int *)f = (int)v;
}

static inline int64_t
get_int(const void *obj, const struct cfg_row *row)
{
	const char *f = (const char *)obj + row->offset;
	return row->type == CT_INT64 ? *(const int64_t *)f : *(const int *)f;
}

/* ---- config_engine.c: helpers and messages ------------------------------ */

/* Appends w (taken over) to the context's warnings. */
void config_warn(struct cfg_ctx *c, char *w);
/* CT_DOUBLE: d is finite and within the row's bounds */
bool config_double_in_range(const struct cfg_row *row, double d);
/* "a|b|c" contains s as a whole alternative */
bool config_choice_ok(const char *choices, const char *s);
/* " (did you mean 'FILE'?)" for an enum value off by case or a typo */
void config_choice_hint(const char *choices, const char *s, char *buf,
			size_t size);
/* What a row expects, for messages ("an integer in 1..65535"); buf may be
 * used for the text. */
const char *config_expected(const struct cfg_row *row, char *buf,
			    size_t size);
/* snprintf for key paths in messages, where cutting a pathological
 * (very long) key short is fine. */
void config_path_fmt(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* prefix "" -> "a.b"; prefix "loggers[1]" -> "loggers[1].a.b" */
const char *config_show_path(const char *prefix, const char *path, char *buf,
			     size_t size);
/* Fails at a row's value: its node in the file, the variable that set
 * it, or just the file for a default. msg is prefixed with the key path. */
int config_row_fail(struct cfg_ctx *c, const struct row_state *st,
		    const char *shown, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- config_engine.c: the passes over a table --------------------------- */

/* pass 1: keys under map that no row names are warnings (errors in strict
 * mode). prefix is the schema path of map ("" at the top); shown_prefix
 * is what messages print ("job_loggers[1]" for a logger entry). */
int config_walk_unknown(struct cfg_ctx *c, const struct cfg_row *rows,
			size_t n, const struct ynode *map, const char *prefix,
			const char *shown_prefix);
/* After pass 1 (every walk of a file): in strict mode, fails when an
 * unknown key was found. One key is the error itself; several are each
 * added to c->errors in file order and the error says how many ("3
 * unknown keys (strict mode)", at the first), so that every unknown key
 * is reported, not only the first. */
int config_unknown_verdict(struct cfg_ctx *c);
/* pass 2: every row's default into obj. */
void config_apply_defaults(const struct cfg_row *rows, size_t n, void *obj);
/* pass 3: every row's value from the mapping base into obj, type-checked;
 * states[i] records where row i came from. */
int config_apply_file(struct cfg_ctx *c, const struct cfg_row *rows,
		      size_t n, const struct ynode *base,
		      const char *shown_prefix, struct row_state *states,
		      void *obj);
/* pass 5: generic string normalisation (${data_dir}, relative paths,
 * non-blank), then each row's fix hook. */
int config_normalise_rows(struct cfg_ctx *c, const struct cfg_row *rows,
			  size_t n, const char *shown_prefix,
			  struct row_state *states, void *obj);

/* ---- config.c ----------------------------------------------------------- */

/* pass 1 for the entries of a CT_LOGGERS sequence (through logger_rows). */
int config_walk_loggers(struct cfg_ctx *c, const struct ynode *seq,
			const char *shown);

#endif

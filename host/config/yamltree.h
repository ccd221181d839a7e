/* yamltree.h - a YAML file loaded (libyaml) into a small tree of mappings,
 * sequences and scalars. Every node keeps its 1-based line and column, and
 * scalars remember whether they were written plain or quoted, so callers can
 * type-check values and report "file:line:col: ..." themselves.
 *
 * Deliberately limited: one document per file, no aliases, no merge keys
 * ("<<"), only scalar mapping keys, no duplicate keys, nesting at most
 * YDOC_MAX_DEPTH levels and files of at most YDOC_MAX_BYTES. Anything else
 * is refused with a positioned error instead of being half-understood.
 *
 * Scalar typing (used by the ynode_as_* helpers and ynode_to_json) follows
 * the YAML 1.2 core schema for plain scalars only:
 *   null   ""  ~  null Null NULL
 *   bool   true True TRUE false False FALSE   (yes/no/on/off stay strings)
 *   int    [-+]?[0-9]+  0x[0-9a-fA-F]+  0o[0-7]+
 *   float  [-+]?(.[0-9]+|[0-9]+(.[0-9]*)?)([eE][-+]?[0-9]+)?
 * A quoted scalar (or one tagged !!str) is always a string. */
#ifndef BERTH_YAMLTREE_H
#define BERTH_YAMLTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define YDOC_MAX_BYTES (1024 * 1024)
#define YDOC_MAX_DEPTH 64

struct cJSON;

enum ynode_kind {
	YNODE_SCALAR,
	YNODE_MAPPING,
	YNODE_SEQUENCE,
};

struct ynode;

struct ypair {
	struct ynode *key; /* always a scalar */
	struct ynode *value;
};

struct ynode {
	enum ynode_kind kind;
	int line; /* 1-based */
	int col;  /* 1-based, in characters */
	/* YNODE_SCALAR */
	char *text;  /* NUL-terminated (NUL bytes inside are refused) */
	size_t len;
	bool quoted; /* single/double quoted, block scalar, or !!str */
	/* YNODE_MAPPING: pairs[0..n), in file order */
	struct ypair *pairs;
	/* YNODE_SEQUENCE: items[0..n) */
	struct ynode **items;
	size_t n;
};

struct ydoc {
	char *path;         /* as given, used in messages */
	char *dir;          /* absolute directory of path */
	struct ynode *root; /* an empty mapping at 1:1 for an empty file */
};

/* Reads and parses path. On failure err is "path:line:col: <problem>"
 * (berr_set_at) and doc is left empty; ydoc_fini is always safe. */
int ydoc_load(struct ydoc *doc, const char *path, struct berr *err);
/* Same from memory; name is used as the file name in positions. */
int ydoc_parse(struct ydoc *doc, const char *name, const char *text,
	       size_t len, struct berr *err);
void ydoc_fini(struct ydoc *doc);

/* Value of key in a mapping, NULL when absent or when map is not a
 * mapping. ynode_get_pair gives the pair (for the key's position). */
const struct ynode *ynode_get(const struct ynode *map, const char *key);
const struct ypair *ynode_get_pair(const struct ynode *map, const char *key);

/* True for a NULL pointer and for a plain null scalar. */
bool ynode_is_null(const struct ynode *n);
/* Plain scalars only; return 0 and store, or -1 (out untouched). */
int ynode_as_bool(const struct ynode *n, bool *out);
int ynode_as_int(const struct ynode *n, int64_t *out);
int ynode_as_double(const struct ynode *n, double *out);
/* Scalar text (quoted or plain, not null), or NULL. */
const char *ynode_str(const struct ynode *n);

/* For "got ..." in messages: "a mapping", "a sequence" (or "an empty
 * mapping" / "an empty sequence"), "null", or the
 * scalar text in double quotes (cut at ~40 characters). */
const char *ynode_describe(const struct ynode *n, char *buf, size_t size);

/* The candidate closest to word by edit distance when it is close enough
 * to be a plausible typo (distance <= 2 and less than word's length),
 * else NULL. For "did you mean" hints. */
const char *ynode_suggest(const char *word, const char *const *cands,
			  size_t n);

/* A new cJSON tree (cJSON_Delete it): mappings -> objects, sequences ->
 * arrays, scalars typed as above (.inf/.nan stay strings). */
struct cJSON *ynode_to_json(const struct ynode *n);

#endif

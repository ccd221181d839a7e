/* yamltree.c - see yamltree.h. Built on libyaml's event parser: each event
 * either opens a container (pushed on a bounded stack), closes one, or adds
 * a scalar to the innermost open container. */
#include "config/yamltree.h"

#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "common/json.h"

#define YAML_STR_TAG "tag:yaml.org,2002:str"

struct ybuilder {
	const char *name;
	const char *text;
	size_t len;
	struct ynode *stack[YDOC_MAX_DEPTH];
	struct ynode *pending_key[YDOC_MAX_DEPTH]; /* mapping awaiting value */
	int depth;
	struct ynode *root;
	int ndocs;
	struct berr *err;
};

static void
ynode_free(struct ynode *n)
{
	if (!n)
		return;
	switch (n->kind) {
	case YNODE_SCALAR:
		free(n->text);
		break;
	case YNODE_MAPPING:
		for (size_t i = 0; i < n->n; i++) {
			ynode_free(n->pairs[i].key);
			ynode_free(n->pairs[i].value);
		}
		free(n->pairs);
		break;
	case YNODE_SEQUENCE:
		for (size_t i = 0; i < n->n; i++)
			ynode_free(n->items[i]);
		free(n->items);
		break;
	}
	free(n);
}

static struct ynode *
ynode_new(enum ynode_kind kind, const yaml_mark_t *mark)
{
	struct ynode *n = xcalloc(1, sizeof(*n));
	n->kind = kind;
	n->line = (int)mark->line + 1;
	n->col = (int)mark->column + 1;
	return n;
}

/* Arrays grow to 4, 8, 16...: reallocate exactly when n reaches 0 or a
 * power of two >= 4, so no capacity field is needed. */
static bool
needs_growth(size_t n)
{
	return n == 0 || (n >= 4 && (n & (n - 1)) == 0);
}

static size_t
grown_cap(size_t n)
{
	return n == 0 ? 4 : n * 2;
}

static int
builder_fail(struct ybuilder *b, const struct ynode *at, const char *fmt,
	     ...) __attribute__((format(printf, 3, 4)));

static int
builder_fail(struct ybuilder *b, const struct ynode *at, const char *fmt, ...)
{
	char msg[BERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return berr_set_at(b->err, b->name, at->line, at->col, "%s", msg);
}

/* Adds node (already built) to the innermost open container. Takes
 * ownership of node, also on failure. */
static int
builder_attach(struct ybuilder *b, struct ynode *node)
{
	if (b->depth == 0) {
		b->root = node;
		return 0;
	}
	struct ynode *parent = b->stack[b->depth - 1];
	if (parent->kind == YNODE_SEQUENCE) {
		if (needs_growth(parent->n))
			parent->items = xrealloc(
				parent->items,
				grown_cap(parent->n) * sizeof(*parent->items));
		parent->items[parent->n++] = node;
		return 0;
	}
	struct ynode *key = b->pending_key[b->depth - 1];
	if (!key) {
		int rc = 0;
		if (node->kind != YNODE_SCALAR)
			rc = builder_fail(b, node,
					  "only scalar mapping keys are "
					  "supported");
		else if (!node->quoted && strcmp(node->text, "<<") == 0)
			rc = builder_fail(b, node,
					  "merge keys (<<) are not supported");
		if (rc < 0) {
			ynode_free(node);
			return rc;
		}
		b->pending_key[b->depth - 1] = node;
		return 0;
	}
	if (needs_growth(parent->n))
		parent->pairs = xrealloc(parent->pairs, grown_cap(parent->n) *
							sizeof(*parent->pairs));
	parent->pairs[parent->n].key = key;
	parent->pairs[parent->n].value = node;
	parent->n++;
	b->pending_key[b->depth - 1] = NULL;
	return 0;
}

static bool
pos_before(const struct ynode *a, const struct ynode *b)
{
	return a->line < b->line || (a->line == b->line && a->col < b->col);
}

static int
cmp_pair_key(const void *a, const void *b)
{
	const struct ypair *pa = *(const struct ypair *const *)a;
	const struct ypair *pb = *(const struct ypair *const *)b;
	int c = strcmp(pa->key->text, pb->key->text);
	if (c)
		return c;
	/* equal keys: in file order */
	if (pos_before(pa->key, pb->key))
		return -1;
	return pos_before(pb->key, pa->key) ? 1 : 0;
}

/* Duplicate keys are refused: which one would win is a guess. Sorting a
 * copy keeps this O(n log n) even for very large mappings. The reported
 * duplicate is the earliest second occurrence in file order. */
static int
check_duplicates(struct ybuilder *b, const struct ynode *map)
{
	if (map->n < 2)
		return 0;
	const struct ypair **v = xmalloc(map->n * sizeof(*v));
	for (size_t i = 0; i < map->n; i++)
		v[i] = &map->pairs[i];
	qsort(v, map->n, sizeof(*v), cmp_pair_key);
	const struct ypair *dup = NULL, *first = NULL;
	for (size_t i = 1; i < map->n; i++) {
		/* v[i] is a second occurrence when it equals v[i-1] and
		 * v[i-1] starts its group */
		if (strcmp(v[i - 1]->key->text, v[i]->key->text) != 0)
			continue;
		if (i >= 2 && strcmp(v[i - 2]->key->text, v[i]->key->text) == 0)
			continue;
		if (!dup || pos_before(v[i]->key, dup->key)) {
			dup = v[i];
			first = v[i - 1];
		}
	}
	int rc = 0;
	if (dup)
		rc = builder_fail(b, dup->key,
				  "duplicate key '%s' (first defined at line "
				  "%d)",
				  dup->key->text, first->key->line);
	free(v);
	return rc;
}

static bool
is_null_text(const char *s, size_t len)
{
	return len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	       strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static int
builder_event(struct ybuilder *b, const yaml_event_t *ev)
{
	struct ynode *n;

	switch (ev->type) {
	case YAML_STREAM_START_EVENT:
	case YAML_STREAM_END_EVENT:
	case YAML_DOCUMENT_END_EVENT:
	case YAML_NO_EVENT:
		return 0;
	case YAML_DOCUMENT_START_EVENT:
		if (++b->ndocs > 1)
			return berr_set_at(b->err, b->name,
					   (int)ev->start_mark.line + 1,
					   (int)ev->start_mark.column + 1,
					   "more than one YAML document in "
					   "the file");
		return 0;
	case YAML_ALIAS_EVENT:
		return berr_set_at(b->err, b->name,
				   (int)ev->start_mark.line + 1,
				   (int)ev->start_mark.column + 1,
				   "aliases (*%s) are not supported",
				   (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT: {
		size_t len = ev->data.scalar.length;
		const char *v = (const char *)ev->data.scalar.value;
		const char *tag = (const char *)ev->data.scalar.tag;
		n = ynode_new(YNODE_SCALAR, &ev->start_mark);
		if (memchr(v, '\0', len)) {
			int rc = builder_fail(b, n, "NUL character in a "
						    "scalar");
			ynode_free(n);
			return rc;
		}
		n->text = xstrndup(v, len);
		n->len = len;
		n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
			    (tag && (strcmp(tag, YAML_STR_TAG) == 0 ||
				     strcmp(tag, "!") == 0));
		return builder_attach(b, n);
	}
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		n = ynode_new(ev->type == YAML_SEQUENCE_START_EVENT
				      ? YNODE_SEQUENCE
				      : YNODE_MAPPING,
			      &ev->start_mark);
		if (b->depth >= YDOC_MAX_DEPTH) {
			int rc = builder_fail(b, n,
					      "nesting deeper than %d levels",
					      YDOC_MAX_DEPTH);
			ynode_free(n);
			return rc;
		}
		if (builder_attach(b, n) < 0)
			return -1;
		b->stack[b->depth] = n;
		b->pending_key[b->depth] = NULL;
		b->depth++;
		return 0;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth == 0)
			return berr_set(b->err, "%s: unbalanced YAML events",
					b->name);
		b->depth--;
		n = b->stack[b->depth];
		if (n->kind == YNODE_MAPPING)
			return check_duplicates(b, n);
		return 0;
	}
	return 0;
}

/* Line and column (1-based) of a byte offset, for reader errors, which
 * libyaml reports as an offset only. */
static void
offset_position(const char *text, size_t len, size_t off, int *line,
		int *col)
{
	int l = 1, c = 1;
	if (off > len)
		off = len;
	for (size_t i = 0; i < off; i++) {
		if (text[i] == '\n') {
			l++;
			c = 1;
		} else if (((unsigned char)text[i] & 0xC0) != 0x80) {
			c++;
		}
	}
	*line = l;
	*col = c;
}

static int
parser_error(struct ybuilder *b, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "invalid YAML";
	int line, col;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return berr_set(b->err, "%s: out of memory parsing YAML",
				b->name);
	case YAML_READER_ERROR:
		offset_position(b->text, b->len, p->problem_offset, &line,
				&col);
		if (p->problem_value != -1)
			return berr_set_at(b->err, b->name, line, col,
					   "%s (byte 0x%02X)", problem,
					   (unsigned)p->problem_value);
		return berr_set_at(b->err, b->name, line, col, "%s",
				   problem);
	default:
		line = (int)p->problem_mark.line + 1;
		col = (int)p->problem_mark.column + 1;
		if (p->context)
			return berr_set_at(b->err, b->name, line, col,
					   "%s (%s started at %d:%d)", problem,
					   p->context,
					   (int)p->context_mark.line + 1,
					   (int)p->context_mark.column + 1);
		return berr_set_at(b->err, b->name, line, col, "%s", problem);
	}
}

static char *
absolute_dir(const char *path)
{
	char *d = util_dirname(path);
	if (d[0] == '/')
		return d;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return d;
	char *r;
	if (strcmp(d, ".") == 0)
		r = xstrdup(cwd);
	else if (strncmp(d, "./", 2) == 0)
		r = util_path_join(cwd, d + 2);
	else
		r = util_path_join(cwd, d);
	free(d);
	return r;
}

int
ydoc_parse(struct ydoc *doc, const char *name, const char *text, size_t len,
	   struct berr *err)
{
	struct ybuilder b;
	yaml_parser_t parser;
	yaml_event_t ev;
	int rc = 0;

	memset(doc, 0, sizeof(*doc));
	memset(&b, 0, sizeof(b));
	b.name = name;
	b.text = text;
	b.len = len;
	b.err = err;
	if (len > YDOC_MAX_BYTES)
		return berr_set(err, "%s is larger than %d bytes", name,
				YDOC_MAX_BYTES);
	if (!yaml_parser_initialize(&parser))
		return berr_set(err, "%s: cannot initialise the YAML parser",
				name);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text,
				     len);
	for (;;) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = parser_error(&b, &parser);
			break;
		}
		rc = builder_event(&b, &ev);
		bool end = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		if (rc < 0 || end)
			break;
	}
	yaml_parser_delete(&parser);
	for (int i = 0; i < b.depth; i++)
		ynode_free(b.pending_key[i]);
	if (rc < 0) {
		ynode_free(b.root);
		return -1;
	}
	if (!b.root || (b.root->kind == YNODE_SCALAR && !b.root->quoted &&
			is_null_text(b.root->text, b.root->len))) {
		/* empty file (or a lone "---"): an empty mapping */
		yaml_mark_t m = {0, 0, 0};
		if (b.root)
			m.line = (size_t)b.root->line - 1;
		ynode_free(b.root);
		b.root = ynode_new(YNODE_MAPPING, &m);
	}
	doc->path = xstrdup(name);
	doc->dir = absolute_dir(name);
	doc->root = b.root;
	return 0;
}

int
ydoc_load(struct ydoc *doc, const char *path, struct berr *err)
{
	char *text = NULL;
	size_t len = 0;

	memset(doc, 0, sizeof(*doc));
	if (util_read_file(path, YDOC_MAX_BYTES, &text, &len, err) < 0)
		return -1;
	int rc = ydoc_parse(doc, path, text, len, err);
	free(text);
	return rc;
}

void
ydoc_fini(struct ydoc *doc)
{
	if (!doc)
		return;
	ynode_free(doc->root);
	free(doc->path);
	free(doc->dir);
	memset(doc, 0, sizeof(*doc));
}

const struct ypair *
ynode_get_pair(const struct ynode *map, const char *key)
{
	if (!map || map->kind != YNODE_MAPPING)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->pairs[i].key->text, key) == 0)
			return &map->pairs[i];
	return NULL;
}

const struct ynode *
ynode_get(const struct ynode *map, const char *key)
{
	const struct ypair *p = ynode_get_pair(map, key);
	return p ? p->value : NULL;
}

static bool
is_plain(const struct ynode *n)
{
	return n && n->kind == YNODE_SCALAR && !n->quoted;
}

bool
ynode_is_null(const struct ynode *n)
{
	return !n || (is_plain(n) && is_null_text(n->text, n->len));
}

int
ynode_as_bool(const struct ynode *n, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE"};
	static const char *const no[] = {"false", "False", "FALSE"};

	if (!is_plain(n))
		return -1;
	for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
		if (strcmp(n->text, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(n->text, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static bool
all_in(const char *s, const char *set)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr(set, *s))
			return false;
	return true;
}

int
ynode_as_int(const struct ynode *n, int64_t *out)
{
	if (!is_plain(n))
		return -1;
	const char *s = n->text;
	int base = 10;
	const char *digits = s;

	if (strncmp(s, "0x", 2) == 0) {
		base = 16;
		digits = s + 2;
		if (!all_in(digits, "0123456789abcdefABCDEF"))
			return -1;
	} else if (strncmp(s, "0o", 2) == 0) {
		base = 8;
		digits = s + 2;
		if (!all_in(digits, "01234567"))
			return -1;
	} else {
		const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
		if (!all_in(d, "0123456789"))
			return -1;
	}
	errno = 0;
	char *end = NULL;
	long long v = strtoll(digits, &end, base);
	if (errno || *end)
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* [-+]?(.[0-9]+|[0-9]+(.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool
looks_like_float(const char *s)
{
	bool digits = false;
	if (*s == '-' || *s == '+')
		s++;
	while (*s >= '0' && *s <= '9') {
		s++;
		digits = true;
	}
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9') {
			s++;
			digits = true;
		}
	}
	if (!digits)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

static int
special_float(const char *s, double *out)
{
	static const char *const inf[] = {".inf", ".Inf", ".INF"};
	static const char *const nan_[] = {".nan", ".NaN", ".NAN"};
	double sign = 1.0;
	const char *t = s;
	if (*t == '-' || *t == '+') {
		sign = *t == '-' ? -1.0 : 1.0;
		t++;
	}
	for (size_t i = 0; i < ARRAY_LEN(inf); i++) {
		if (strcmp(t, inf[i]) == 0) {
			*out = sign * INFINITY;
			return 0;
		}
		if (t == s && strcmp(t, nan_[i]) == 0) {
			*out = NAN;
			return 0;
		}
	}
	return -1;
}

int
ynode_as_double(const struct ynode *n, double *out)
{
	if (!is_plain(n))
		return -1;
	int64_t i;
	if (ynode_as_int(n, &i) == 0) {
		*out = (double)i;
		return 0;
	}
	if (special_float(n->text, out) == 0)
		return 0;
	if (!looks_like_float(n->text))
		return -1;
	errno = 0;
	char *end = NULL;
	double v = strtod(n->text, &end);
	if (*end || (errno == ERANGE && isinf(v)))
		return -1;
	*out = v;
	return 0;
}

const char *
ynode_str(const struct ynode *n)
{
	if (!n || n->kind != YNODE_SCALAR || ynode_is_null(n))
		return NULL;
	return n->text;
}

const char *
ynode_describe(const struct ynode *n, char *buf, size_t size)
{
	if (ynode_is_null(n))
		snprintf(buf, size, "null");
	else if (n->kind == YNODE_MAPPING)
		snprintf(buf, size, n->n ? "a mapping" : "an empty mapping");
	else if (n->kind == YNODE_SEQUENCE)
		snprintf(buf, size, n->n ? "a sequence" : "an empty sequence");
	else if (n->len > 40)
		snprintf(buf, size, "\"%.37s...\"", n->text);
	else
		snprintf(buf, size, "\"%s\"", n->text);
	return buf;
}

const char *
ynode_suggest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	int best_d = 3;
	int len = (int)strlen(word);
	for (size_t i = 0; i < n; i++) {
		int d = util_edit_distance(word, cands[i]);
		if (d < best_d && d < len) {
			best_d = d;
			best = cands[i];
		}
	}
	return best;
}

static cJSON *
scalar_to_json(const struct ynode *n)
{
	bool b;
	int64_t i;
	double d;

	if (n->quoted)
		return json_must(cJSON_CreateString(n->text));
	if (ynode_is_null(n))
		return json_must(cJSON_CreateNull());
	if (ynode_as_bool(n, &b) == 0)
		return json_must(cJSON_CreateBool(b));
	if (ynode_as_int(n, &i) == 0) {
		/* doubles hold integers exactly only up to 2^53 */
		const int64_t exact = (int64_t)1 << 53;
		if (i >= -exact && i <= exact)
			return json_must(cJSON_CreateNumber((double)i));
		char raw[32];
		snprintf(raw, sizeof(raw), "%lld", (long long)i);
		return json_must(cJSON_CreateRaw(raw));
	}
	if (ynode_as_double(n, &d) == 0 && isfinite(d))
		return json_must(cJSON_CreateNumber(d));
	return json_must(cJSON_CreateString(n->text));
}

struct cJSON *
ynode_to_json(const struct ynode *n)
{
	cJSON *j;

	if (!n)
		return json_must(cJSON_CreateNull());
	switch (n->kind) {
	case YNODE_MAPPING:
		j = json_must(cJSON_CreateObject());
		for (size_t i = 0; i < n->n; i++)
			cJSON_AddItemToObject(j, n->pairs[i].key->text,
					      ynode_to_json(n->pairs[i].value));
		return j;
	case YNODE_SEQUENCE:
		j = json_must(cJSON_CreateArray());
		for (size_t i = 0; i < n->n; i++)
			cJSON_AddItemToArray(j, ynode_to_json(n->items[i]));
		return j;
	case YNODE_SCALAR:
		break;
	}
	return scalar_to_json(n);
}

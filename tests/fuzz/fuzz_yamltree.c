/* fuzz_yamltree.c - fuzz target for the YAML tree (host/config/yamltree.c):
 * ydoc_parse on the input, then every accessor on every node.
 *
 * Properties: a failed parse leaves a positioned message and no tree; a
 * tree has positive line/column everywhere; ynode_get finds every key of a
 * mapping (keys are unique); ynode_to_json gives a tree for every node. */
#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "config/yamltree.h"

static const char *const fuzz_words[] = {"port", "loggers", "plugins",
					 "name", "settings"};

static void
walk(const struct ynode *n, int depth)
{
	if (!n)
		fuzz_fail("NULL node in a tree");
	if (n->line < 1 || n->col < 1)
		fuzz_fail("node without a position");
	if (depth > YDOC_MAX_DEPTH + 2)
		fuzz_fail("tree deeper than YDOC_MAX_DEPTH");
	char buf[64];
	if (!ynode_describe(n, buf, sizeof(buf)))
		fuzz_fail("ynode_describe gave NULL");
	bool b;
	int64_t i;
	double d;
	(void)ynode_as_bool(n, &b);
	(void)ynode_as_int(n, &i);
	(void)ynode_as_double(n, &d);
	(void)ynode_is_null(n);
	const char *s = ynode_str(n);
	if (s)
		(void)ynode_suggest(s, fuzz_words,
				    sizeof(fuzz_words) / sizeof(*fuzz_words));
	cJSON *j = ynode_to_json(n);
	if (!j)
		fuzz_fail("ynode_to_json gave NULL");
	cJSON_Delete(j);
	switch (n->kind) {
	case YNODE_SCALAR:
		if (!n->text || strlen(n->text) != n->len)
			fuzz_fail("scalar text and length differ");
		break;
	case YNODE_MAPPING:
		for (size_t k = 0; k < n->n; k++) {
			const struct ypair *p = &n->pairs[k];
			if (!p->key || p->key->kind != YNODE_SCALAR)
				fuzz_fail("mapping key is not a scalar");
			if (ynode_get_pair(n, p->key->text) != p)
				fuzz_fail("ynode_get_pair misses a key");
			walk(p->key, depth + 1);
			walk(p->value, depth + 1);
		}
		break;
	case YNODE_SEQUENCE:
		for (size_t k = 0; k < n->n; k++)
			walk(n->items[k], depth + 1);
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	struct ydoc doc;
	struct berr e;
	berr_clear(&e);
	memset(&doc, 0, sizeof(doc));
	if (ydoc_parse(&doc, "fuzz.yml", (const char *)data, size, &e) < 0) {
		if (!e.msg[0] || doc.root)
			fuzz_fail("failed parse without message, or with a tree");
	} else {
		if (!doc.root)
			fuzz_fail("parse ok without a tree");
		walk(doc.root, 0);
	}
	ydoc_fini(&doc);
	return 0;
}

/* test_manifest.c - the YAML tree (yamltree.h) and manifest_load against
 * the fixtures in $BERTH_FIXTURES/manifest. */
#include <cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/manifest.h"
#include "fixtures.h"
#include "testlib.h"
#include "config/yamltree.h"

/* ---- yamltree ------------------------------------------------------------ */

static int
parse(struct ydoc *d, const char *text, struct berr *e)
{
	return ydoc_parse(d, "mem.yml", text, strlen(text), e);
}

static char *
json_of(const char *text)
{
	struct ydoc d;
	struct berr e;
	if (parse(&d, text, &e) < 0)
		return xstrdup(e.msg);
	cJSON *j = ynode_to_json(d.root);
	char *p = cJSON_PrintUnformatted(j);
	char *r = xstrdup(p);
	cJSON_free(p);
	cJSON_Delete(j);
	ydoc_fini(&d);
	return r;
}

static void
test_tree_positions(void)
{
	struct ydoc d;
	struct berr e;
	const char *text = "# comment\n"
			   "a: 1\n"
			   "b:\n"
			   "  - x\n"
			   "  - 'y'\n"
			   "c: {d: \"e\"}\n";

	CHECK(parse(&d, text, &e) == 0);
	CHECK(d.root->kind == YNODE_MAPPING && d.root->n == 3);
	CHECK(d.root->line == 2 && d.root->col == 1);
	const struct ynode *a = ynode_get(d.root, "a");
	CHECK(a && a->kind == YNODE_SCALAR && !a->quoted);
	CHECK(a && a->line == 2 && a->col == 4);
	int64_t i = 0;
	CHECK(ynode_as_int(a, &i) == 0 && i == 1);
	const struct ynode *b = ynode_get(d.root, "b");
	CHECK(b && b->kind == YNODE_SEQUENCE && b->n == 2);
	if (b && b->n == 2) {
		CHECK(b->items[0]->line == 4 && b->items[0]->col == 5);
		CHECK(!b->items[0]->quoted && b->items[1]->quoted);
		CHECK_STR(b->items[1]->text, "y");
	}
	const struct ypair *p = ynode_get_pair(d.root, "c");
	CHECK(p && p->key->line == 6 && p->key->col == 1);
	CHECK(p && p->value->col == 4);
	CHECK_STR(ynode_str(ynode_get(ynode_get(d.root, "c"), "d")), "e");
	CHECK(ynode_get(d.root, "zz") == NULL);
	CHECK(ynode_get(a, "x") == NULL); /* not a mapping */
	ydoc_fini(&d);
	ydoc_fini(&d);
}

static void
test_tree_scalars(void)
{
	struct ydoc d;
	struct berr e;
	bool bv;
	int64_t iv;
	double dv;
	char buf[64];

	CHECK(parse(&d,
		    "t: True\nf: false\ny: yes\nq: \"true\"\nn: ~\ne:\n"
		    "i: -42\nh: 0x1f\no: 0o17\nbig: 99999999999999999999\n"
		    "fl: 2.5e3\ninf: -.inf\ns: 1.2.3\n",
		    &e) == 0);
	const struct ynode *r = d.root;
	CHECK(ynode_as_bool(ynode_get(r, "t"), &bv) == 0 && bv);
	CHECK(ynode_as_bool(ynode_get(r, "f"), &bv) == 0 && !bv);
	CHECK(ynode_as_bool(ynode_get(r, "y"), &bv) < 0);
	CHECK(ynode_as_bool(ynode_get(r, "q"), &bv) < 0); /* quoted */
	CHECK(ynode_is_null(ynode_get(r, "n")));
	CHECK(ynode_is_null(ynode_get(r, "e")));
	CHECK(ynode_is_null(ynode_get(r, "missing")));
	CHECK(!ynode_is_null(ynode_get(r, "q")));
	CHECK(ynode_str(ynode_get(r, "n")) == NULL);
	CHECK(ynode_as_int(ynode_get(r, "i"), &iv) == 0 && iv == -42);
	CHECK(ynode_as_int(ynode_get(r, "h"), &iv) == 0 && iv == 31);
	CHECK(ynode_as_int(ynode_get(r, "o"), &iv) == 0 && iv == 15);
	CHECK(ynode_as_int(ynode_get(r, "big"), &iv) < 0); /* overflow */
	CHECK(ynode_as_int(ynode_get(r, "fl"), &iv) < 0);
	CHECK(ynode_as_double(ynode_get(r, "fl"), &dv) == 0 && dv == 2500.0);
	CHECK(ynode_as_double(ynode_get(r, "inf"), &dv) == 0 && dv < -1e308);
	CHECK(ynode_as_double(ynode_get(r, "s"), &dv) < 0);
	CHECK_STR(ynode_describe(ynode_get(r, "s"), buf, sizeof(buf)),
		  "\"1.2.3\"");
	CHECK_STR(ynode_describe(ynode_get(r, "n"), buf, sizeof(buf)),
		  "null");
	CHECK_STR(ynode_describe(r, buf, sizeof(buf)), "a mapping");
	ydoc_fini(&d);
}

static void
test_tree_json(void)
{
	char *j;

	j = json_of("a: 1\nb: [x, 'y', 2.5, true, ~]\nc: {}\nd: \"7\"\n"
		    "e: yes\nf: .nan\ng: 9007199254740993\nh: 0x10\n");
	CHECK_STR(j, "{\"a\":1,\"b\":[\"x\",\"y\",2.5,true,null],\"c\":{},"
		     "\"d\":\"7\",\"e\":\"yes\",\"f\":\".nan\","
		     "\"g\":9007199254740993,\"h\":16}");
	free(j);
	j = json_of("- !!str 12\n- |\n  block\n- -0.5\n");
	CHECK_STR(j, "[\"12\",\"block\\n\",-0.5]");
	free(j);
	j = json_of("");
	CHECK_STR(j, "{}");
	free(j);
}

static void
test_tree_refusals(void)
{
	struct ydoc d;
	struct berr e;

	CHECK(parse(&d, "a: &x 1\nb: *x\n", &e) < 0);
	CHECK(e.line == 2 && e.col == 4);
	CHECK_STR(e.msg, "aliases (*x) are not supported");
	CHECK(d.root == NULL);

	CHECK(parse(&d, "base: {a: 1}\nx:\n  <<: {b: 2}\n", &e) < 0);
	CHECK(e.line == 3 && e.col == 3);
	CHECK_STR(e.msg, "merge keys (<<) are not supported");

	CHECK(parse(&d, "a: 1\nb: 2\na: 3\n", &e) < 0);
	CHECK(e.line == 3 && e.col == 1);
	CHECK_STR(e.msg, "duplicate key 'a' (first defined at line 1)");

	CHECK(parse(&d, "? [a]\n: 1\n", &e) < 0);
	CHECK_STR(e.msg, "only scalar mapping keys are supported");

	CHECK(parse(&d, "a: 1\n---\nb: 2\n", &e) < 0);
	CHECK(e.line == 2 && e.col == 1);
	CHECK_STR(e.msg, "more than one YAML document in the file");

	CHECK(parse(&d, "a: \"x\\0y\"\n", &e) < 0);
	CHECK_STR(e.msg, "NUL character in a scalar");

	/* nesting: 64 levels are fine, 65 are not */
	char deep[200];
	memset(deep, '[', 64);
	memset(deep + 64, ']', 64);
	deep[128] = '\0';
	CHECK(parse(&d, deep, &e) == 0);
	ydoc_fini(&d);
	memset(deep, '[', 65);
	memset(deep + 65, ']', 65);
	deep[130] = '\0';
	CHECK(parse(&d, deep, &e) < 0);
	CHECK(e.line == 1 && e.col == 65);
	CHECK_STR(e.msg, "nesting deeper than 64 levels");

	/* size bound */
	size_t big = YDOC_MAX_BYTES + 1;
	char *text = xmalloc(big + 1);
	memset(text, ' ', big);
	text[big] = '\0';
	CHECK(ydoc_parse(&d, "big.yml", text, big, &e) < 0);
	CHECK_CONTAINS(e.msg, "larger than");
	free(text);

	/* reader errors (bad UTF-8) get a position from their offset */
	CHECK(parse(&d, "a: 1\nb: \xff\n", &e) < 0);
	CHECK(e.line == 2 && e.col == 4);
	CHECK_CONTAINS(e.msg, "invalid");
	CHECK_STR(e.file, "mem.yml");
}

static void
test_suggest(void)
{
	static const char *const cands[] = {"name", "file", "priority"};
	CHECK_STR(ynode_suggest("prority", cands, 3), "priority");
	CHECK_STR(ynode_suggest("nmae", cands, 3), "name");
	CHECK(ynode_suggest("x", cands, 3) == NULL);
	CHECK(ynode_suggest("settings", cands, 3) == NULL);
}

/* ---- manifest ------------------------------------------------------------ */

static void
test_good(void)
{
	struct manifest m;
	struct berr e;
	char want[PATH_MAX + 64];

	CHECK(manifest_load(fx("good.yml"), true, &m, &e) == 0);
	CHECK_STR(m.path, fx("good.yml"));
	snprintf(want, sizeof(want), "%s/../plugins", fixdir);
	CHECK_STR(m.plugin_dir, want);
	CHECK(m.n_warnings == 0);
	CHECK(m.n_entries == 3);
	if (m.n_entries == 3) {
		const struct manifest_entry *d = &m.entries[0];
		CHECK_STR(d->name, "DEMO");
		CHECK_STR(d->file, "demo.so");
		CHECK(d->enabled);
		CHECK(d->max_fails == 3 && d->max_concurrency == 1 &&
		      d->priority == 1);
		CHECK(d->line == 4);
		CHECK_STR(d->settings_json,
			  "{\"url\":\"http://example.com/hook\",\"retries\":3,"
			  "\"ratio\":0.5,\"big\":9007199254740993,"
			  "\"hex\":31,\"on\":true,\"off\":false,"
			  "\"nothing\":null,\"quoted\":\"123\","
			  "\"yes_is_text\":\"yes\","
			  "\"list\":[1,\"two\",{\"k\":\"v\"}],"
			  "\"nested\":{\"empty\":{}}}");

		const struct manifest_entry *g = &m.entries[1];
		CHECK_STR(g->name, "GARBAGE_COLLECTION");
		CHECK(g->enabled);
		CHECK(g->max_fails == -1 && g->max_concurrency == -1 &&
		      g->priority == -1);
		CHECK_STR(g->settings_json, "{}");
		CHECK(g->line == 24);

		/* a duplicate name is the plugin host's business */
		const struct manifest_entry *d2 = &m.entries[2];
		CHECK_STR(d2->name, "DEMO");
		CHECK(!d2->enabled);
		CHECK(d2->priority == 100000 && d2->max_fails == 0 &&
		      d2->max_concurrency == 1000000);
		CHECK_STR(d2->settings_json, "{}");
	}
	manifest_fini(&m);
	CHECK(m.entries == NULL && m.path == NULL);
	manifest_fini(&m);
}

static void
test_relative(void)
{
	struct manifest m;
	struct berr e;
	char cwd[PATH_MAX], want[PATH_MAX + 64];

	/* no plugin_dir: the manifest's own directory */
	CHECK(manifest_load(fx("no_dir.yml"), false, &m, &e) == 0);
	CHECK_STR(m.plugin_dir, fixdir);
	CHECK(m.n_entries == 0);
	manifest_fini(&m);

	/* a relative manifest path resolves against the cwd first */
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK(chdir(fixdir) == 0);
	CHECK(chdir("..") == 0);
	char here[PATH_MAX];
	CHECK(getcwd(here, sizeof(here)) != NULL);
	CHECK(manifest_load("manifest/good.yml", false, &m, &e) == 0);
	snprintf(want, sizeof(want), "%s/manifest/../plugins", here);
	CHECK_STR(m.plugin_dir, want);
	manifest_fini(&m);
	CHECK(manifest_load("./manifest/no_dir.yml", false, &m, &e) == 0);
	snprintf(want, sizeof(want), "%s/manifest", here);
	CHECK_STR(m.plugin_dir, want);
	manifest_fini(&m);
	CHECK(chdir(cwd) == 0);
}

static void
test_unknown(void)
{
	struct manifest m;
	struct berr e;
	char want[2][PATH_MAX + 128];

	snprintf(want[0], sizeof(want[0]),
		 "%s:6: unknown key 'plugin_dri' at the top level (did you "
		 "mean 'plugin_dir'?)",
		 fx("unknown.yml"));
	snprintf(want[1], sizeof(want[1]),
		 "%s:5: unknown key 'prority' in plugins[0] (did you mean "
		 "'priority'?)",
		 fx("unknown.yml"));
	CHECK(manifest_load(fx("unknown.yml"), false, &m, &e) == 0);
	CHECK(m.n_warnings == 2);
	for (size_t i = 0; i < 2 && i < m.n_warnings; i++)
		CHECK_STR(m.warnings[i], want[i]);
	CHECK(m.n_entries == 1);
	if (m.n_entries == 1)
		CHECK(m.entries[0].priority == -1);
	manifest_fini(&m);

	/* strict: every unknown key, in file order, then the load fails */
	snprintf(want[0], sizeof(want[0]),
		 "%s:5:5: unknown key 'prority' in plugins[0] (did you mean "
		 "'priority'?)",
		 fx("unknown.yml"));
	snprintf(want[1], sizeof(want[1]),
		 "%s:6:1: unknown key 'plugin_dri' at the top level (did you "
		 "mean 'plugin_dir'?)",
		 fx("unknown.yml"));
	CHECK(manifest_load(fx("unknown.yml"), true, &m, &e) < 0);
	CHECK(e.line == 5 && e.col == 5);
	CHECK_STR(e.msg, "2 unknown keys (strict mode)");
	CHECK(m.n_entries == 0 && m.path == NULL && m.n_warnings == 0);
	CHECK(m.n_errors == 2);
	for (size_t i = 0; i < 2 && i < m.n_errors; i++)
		CHECK_STR(m.errors[i], want[i]);
	manifest_fini(&m);
	CHECK(m.errors == NULL && m.n_errors == 0);
}

/* `flie:` for `file:`: lenient, the load fails on the missing file and
 * keeps the warning with its suggestion; strict, the one unknown key is
 * the error. */
static void
test_typo(void)
{
	struct manifest m;
	struct berr e;
	char want[PATH_MAX + 128];

	CHECK(manifest_load(fx("typo_file.yml"), false, &m, &e) < 0);
	CHECK_STR(e.msg, "plugins[0].file: required key is missing (is "
			 "'flie' on line 4 a typo?)");
	CHECK(m.n_entries == 0 && m.path == NULL && m.n_errors == 0);
	snprintf(want, sizeof(want),
		 "%s:4: unknown key 'flie' in plugins[0] (did you mean "
		 "'file'?)",
		 fx("typo_file.yml"));
	CHECK(m.n_warnings == 1);
	if (m.n_warnings == 1)
		CHECK_STR(m.warnings[0], want);
	manifest_fini(&m);

	CHECK(manifest_load(fx("typo_file.yml"), true, &m, &e) < 0);
	CHECK(e.line == 4 && e.col == 5);
	CHECK_STR(e.msg, "unknown key 'flie' in plugins[0] (did you mean "
			 "'file'?)");
	CHECK(m.n_warnings == 0 && m.n_errors == 0);
	manifest_fini(&m);
}

struct bad_case {
	const char *file;
	int line, col;
	const char *msg;
};

static const struct bad_case bad_cases[] = {
	{"bad_not_list.yml", 3, 3,
	 "plugins: expected a sequence of mappings, got a mapping"},
	{"bad_entry_scalar.yml", 2, 5,
	 "plugins[0]: expected a mapping with name and file, got "
	 "\"demo.so\""},
	{"bad_missing_file.yml", 4, 5,
	 "plugins[1].file: required key is missing"},
	{"bad_priority.yml", 4, 15,
	 "plugins[0].priority: expected an integer in 1..100000, got "
	 "\"100001\""},
	{"bad_priority_zero.yml", 4, 15,
	 "plugins[0].priority: expected an integer in 1..100000, got \"0\""},
	{"bad_max_fails.yml", 4, 16,
	 "plugins[0].max_fails: expected an integer in 0..1000000, got "
	 "\"-1\""},
	{"bad_enabled.yml", 4, 14,
	 "plugins[0].enabled: expected a boolean (true or false), got "
	 "\"maybe\""},
	{"bad_settings.yml", 4, 15,
	 "plugins[0].settings: expected a mapping, got a sequence"},
	{"bad_name.yml", 2, 11,
	 "plugins[0].name: expected a non-empty name of letters, digits, "
	 "'_', '.' or '-', got \"DEMO JOB\""},
	{"bad_syntax.yml", 4, 1,
	 "did not find expected ',' or ']' (while parsing a flow sequence "
	 "started at 3:11)"},
};

static void
test_bad(void)
{
	for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++) {
		const struct bad_case *b = &bad_cases[i];
		struct manifest m;
		struct berr e;
		char buf[2048];
		int rc = manifest_load(fx(b->file), false, &m, &e);
		CHECK_MSG(rc < 0, "%s loaded", b->file);
		if (rc < 0)
			fprintf(stderr, "  (%s)\n",
				berr_str(&e, buf, sizeof(buf)));
		CHECK(m.entries == NULL && m.n_entries == 0);
		CHECK_STR(e.file, fx(b->file));
		CHECK_MSG(e.line == b->line && e.col == b->col,
			  "%s: at %d:%d, want %d:%d", b->file, e.line, e.col,
			  b->line, b->col);
		CHECK_STR(e.msg, b->msg);
		manifest_fini(&m);
	}

	struct manifest m;
	struct berr e;
	CHECK(manifest_load(fx("nope.yml"), false, &m, &e) < 0);
	CHECK_CONTAINS(e.msg, "cannot open");
}

int
main(void)
{
	if (fixtures_init("manifest") < 0)
		return 2;

	test_tree_positions();
	test_tree_scalars();
	test_tree_json();
	test_tree_refusals();
	test_suggest();
	test_good();
	test_relative();
	test_unknown();
	test_typo();
	test_bad();
	TEST_DONE();
}

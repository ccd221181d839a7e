/* test_plugin.c - the plugin host against the real test plugins
 * (tests/plugins/, $BERTH_TEST_PLUGINS) and the bundled DEMO plugin
 * ($BERTH_PLUGINS): every refusal reason, the one-line refusal log, the
 * host services a plugin sees, reload and retirement, DEMO behaviour. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "plugins/hostapi.h"
#include "logs/log.h"
#include "plugins/plugin_host.h"
#include "testlib.h"
#include "common/util.h"

static const char *test_plugins; /* $BERTH_TEST_PLUGINS */
static const char *plugins;      /* $BERTH_PLUGINS */
static const char *fixtures;     /* $BERTH_FIXTURES */

/* --- helpers ------------------------------------------------------------ */

static const char *
need_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		fprintf(stderr, "test_plugin: %s is not set (run via ctest)\n",
			name);
		exit(2);
	}
	return v;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void
rm_rf(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *
make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *tmpl = xasprintf("%s/berth-test-plugin-XXXXXX",
			       base && *base ? base : "/tmp");
	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		exit(2);
	}
	return tmpl;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

static void
copy_file(const char *from, const char *to, mode_t mode)
{
	char *data = NULL;
	size_t len = 0;
	struct berr e;
	if (util_read_file(from, 64u << 20, &data, &len, &e) != 0) {
		fprintf(stderr, "read %s: %s\n", from, e.msg);
		exit(2);
	}
	int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		perror(to);
		exit(2);
	}
	fchmod(fd, mode); /* explicit, whatever the umask */
	close(fd);
	free(data);
}

static bool
file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static cJSON *
find_named(const cJSON *arr, const char *name, const char *file)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
	{
		const char *n = cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(it, "name"));
		const char *f = cJSON_GetStringValue(
			cJSON_GetObjectItemCaseSensitive(it, "file"));
		if (n && strcmp(n, name) == 0 &&
		    (!file || (f && strcmp(f, file) == 0)))
			return (cJSON *)it;
	}
	return NULL;
}

static double
num_field(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : -12345;
}

static const char *
str_field(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* The refusal reason of entry name/file in the registry, or NULL. */
static char *
refusal(struct plugin_registry *r, const char *name, const char *file)
{
	cJSON *d = plugin_registry_describe(r);
	cJSON *o = find_named(cJSON_GetObjectItemCaseSensitive(d, "refused"),
			      name, file);
	const char *s = o ? str_field(o, "reason") : NULL;
	char *copy = s ? xstrdup(s) : NULL;
	cJSON_Delete(d);
	return copy;
}

#define CHECK_REFUSED(r, name, file, ...)                                    \
	do {                                                                 \
		char *why_ = refusal((r), (name), (file));                   \
		CHECK_MSG(why_ != NULL, "%s (%s) should be refused", (name), \
			  (file));                                           \
		const char *needles_[] = {__VA_ARGS__};                      \
		for (size_t k_ = 0; why_ && k_ < ARRAY_LEN(needles_); k_++)  \
			CHECK_CONTAINS(why_, needles_[k_]);                  \
		free(why_);                                                  \
	} while (0)

static int
array_size(const cJSON *d, const char *key)
{
	return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, key));
}

static int
validate_json(struct job_type *t, const char *json, char *msg, size_t n)
{
	cJSON *p = json ? cJSON_Parse(json) : NULL;
	if (json && !p) {
		fprintf(stderr, "bad test JSON %s\n", json);
		exit(2);
	}
	int rc = plugin_validate(t, p, msg, n);
	cJSON_Delete(p);
	return rc;
}

/* A job engine stand-in: records what the plugin does through the hooks. */
struct rec {
	char log[16384];
	char checkins[8][128];
	int n_checkins;
	bool stop;
	bool stop_on_checkin;
	int64_t checkin_ms[8];
};

static void
rec_log(void *opaque, int level, const char *msg)
{
	struct rec *r = opaque;
	size_t used = strlen(r->log);
	snprintf(r->log + used, sizeof(r->log) - used, "[%d] %s\n", level,
		 msg);
}

static int
rec_checkin(void *opaque, const char *msg)
{
	struct rec *r = opaque;
	if (r->n_checkins < 8) {
		snprintf(r->checkins[r->n_checkins], 128, "%s", msg);
		r->checkin_ms[r->n_checkins] = util_monotonic_ms();
	}
	r->n_checkins++;
	if (r->stop_on_checkin)
		r->stop = true;
	return 0;
}

static bool
rec_stop(void *opaque)
{
	return ((struct rec *)opaque)->stop;
}

static const char *
rec_property(void *opaque, const char *key)
{
	(void)opaque;
	return strcmp(key, "core_url") == 0 ? "http://core:8080" : NULL;
}

static struct hostapi_run_hooks
rec_hooks(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	return (struct hostapi_run_hooks){
		.opaque = r,
		.log_level = BERTH_LOG_INFO,
		.log = rec_log,
		.checkin = rec_checkin,
		.stop_requested = rec_stop,
		.property = rec_property,
	};
}

static enum berth_run_result
run_json(struct job_type *t, const char *params_json,
	 const struct hostapi_run_hooks *hooks, char *err, size_t n)
{
	cJSON *p = params_json ? cJSON_Parse(params_json) : NULL;
	struct hostapi_job job = {
		.id = "5f3c2a1b9d8e7f6a5b4c3d2e",
		.name = t->name,
		.kind = "Generic",
		.revision = 7,
		.params = p,
	};
	enum berth_run_result res = plugin_run(t, &job, hooks, err, n);
	cJSON_Delete(p);
	return res;
}

/* --- every test plugin, from the fixture manifest ----------------------- */

static void
test_refusals_and_loads(void)
{
	struct plugin_registry *r = plugin_registry_new();
	struct berr err;
	char *manifest = xasprintf("%s/plugins/all.yml", fixtures);

	/* capture the service log: one line per refusal */
	FILE *logf = tmpfile();
	blog_set_output(logf);
	int rc = plugin_registry_load(r, manifest, test_plugins, false, &err);
	blog_set_output(NULL);
	CHECK_MSG(rc == 0, "load: %s", err.msg);

	CHECK_REFUSED(r, "NO_MAGIC", "no_magic.so", "berth_plugin_magic",
		      "fix: add BERTH_PLUGIN_MAGIC");
	CHECK_REFUSED(r, "WRONG_MAJOR", "wrong_major.so",
		      "ABI major 2 of the plugin differs from the host's 1",
		      "rebuild the plugin against the installed Berth SDK");
	CHECK(refusal(r, "NEWER_MINOR", NULL) == NULL); /* loads, degraded */
	CHECK_REFUSED(r, "WRONG_TAG", "wrong_tag.so",
		      "product tag \"harbor\" is not \"berth\"");
	CHECK_REFUSED(r, "WRONG_FACTS", "wrong_facts.so",
		      "build fact sizeof_time_t is 4 in the plugin but 8",
		      "fix: rebuild");
	CHECK_REFUSED(r, "SHORT_TABLE", "short_table.so", "too short",
		      "needed to reach run", "BERTH_JOB_TYPE_INIT");
	CHECK_REFUSED(r, "NULL_RUN", "null_run.so", "run is NULL",
		      "fix: set .run");
	CHECK_REFUSED(r, "NO_TYPES", "no_types.so",
		      "no berth_plugin_job_types symbol",
		      "BERTH_PLUGIN_JOB_TYPES");
	CHECK_REFUSED(r, "INIT_FAILS", "init_fails.so",
		      "init() failed (returned 7)",
		      "cannot reach the frobnicator at mars");
	CHECK_REFUSED(r, "GOOD_A", "dup.so",
		      "job type GOOD_A is already provided by the entry at "
		      "line",
		      "(file good_a.so)", "fix: remove or disable one");
	CHECK_REFUSED(r, "NOT_EXPORTED", "multi.so",
		      "does not export job type NOT_EXPORTED",
		      "(it exports: MULTI_ONE, MULTI_TWO)");
	CHECK_REFUSED(r, "MISSING", "missing.so", "missing.so",
		      "No such file or directory", "fix: build the plugin");
	CHECK(refusal(r, "DISABLED", NULL) == NULL);
	CHECK(refusal(r, "GOOD_A", "good_a.so") == NULL);

	cJSON *d = plugin_registry_describe(r);
	CHECK(array_size(d, "refused") == 11);
	CHECK(array_size(d, "plugins") == 5);
	CHECK_STR(str_field(d, "manifest"), manifest);
	char *real_tp = realpath(test_plugins, NULL);
	CHECK_STR(str_field(d, "plugin_dir"), real_tp);
	const cJSON *pl = cJSON_GetObjectItemCaseSensitive(d, "plugins");
	const cJSON *a = find_named(pl, "GOOD_A", NULL);
	const cJSON *b = find_named(pl, "GOOD_B", NULL);
	const cJSON *m1 = find_named(pl, "MULTI_ONE", NULL);
	const cJSON *m2 = find_named(pl, "MULTI_TWO", NULL);
	CHECK(a && b && m1 && m2);
	if (a && b && m1 && m2) {
		char *fa = xasprintf("%s/good_a.so", real_tp);
		CHECK_STR(str_field(a, "file"), fa);
		free(fa);
		CHECK_STR(str_field(a, "plugin"), "good_a");
		CHECK_STR(str_field(a, "version"), "1.2.3");
		char *abi = xasprintf("%d.%d", BERTH_ABI_MAJOR,
				      BERTH_ABI_MINOR);
		CHECK_STR(str_field(a, "abi"), abi); /* the SDK's own */
		free(abi);
		CHECK_STR(str_field(a, "description"), "test plugin A");
		CHECK(num_field(a, "max_fails") == 2);       /* table */
		CHECK(num_field(a, "max_concurrency") == 0); /* unlimited */
		CHECK(num_field(a, "priority") == 1000);     /* default */
		CHECK(num_field(a, "refs") == 0);
		CHECK(num_field(b, "max_fails") == 9); /* manifest overrides */
		CHECK(num_field(b, "max_concurrency") == 2);
		CHECK(num_field(b, "priority") == 5);
		CHECK(num_field(m1, "max_fails") == 4); /* 0 in the table */
		CHECK_STR(str_field(m1, "file"), str_field(m2, "file"));
	}
	/* built against a newer minor: loaded, its init() set limits */
	const cJSON *nm = find_named(pl, "NEWER_MINOR", NULL);
	CHECK(nm != NULL);
	if (nm) {
		char *abi = xasprintf("%d.%d", BERTH_ABI_MAJOR,
				      BERTH_ABI_MINOR + 1);
		CHECK_STR(str_field(nm, "abi"), abi);
		free(abi);
		CHECK(num_field(nm, "max_fails") == 6);
		CHECK(num_field(nm, "max_concurrency") == 3);
		CHECK(num_field(nm, "priority") == 1000);
	}
	cJSON_Delete(d);

	/* the log: exactly one line per refusal, naming entry, file, fix */
	fflush(logf);
	rewind(logf);
	char line[4096];
	int refused_lines = 0;
	int newer_lines = 0;
	bool all_fix = true;
	char *newer = xasprintf("plugin NEWER_MINOR (%s/newer_minor.so) was "
				"built for Berth ABI %d.%d, newer than this "
				"host's %d.%d: running it",
				real_tp, BERTH_ABI_MAJOR, BERTH_ABI_MINOR + 1,
				BERTH_ABI_MAJOR, BERTH_ABI_MINOR);
	while (fgets(line, sizeof(line), logf)) {
		if (strstr(line, newer) && strstr(line, "[WARNING]"))
			newer_lines++;
		if (!strstr(line, " refused: "))
			continue;
		refused_lines++;
		all_fix &= strstr(line, "[ERROR]") && strstr(line, "fix: ") &&
			   strstr(line, "all.yml:") && strstr(line, "(file ");
	}
	free(newer);
	fclose(logf);
	CHECK(refused_lines == 11);
	CHECK(all_fix);
	CHECK(newer_lines == 1);

	/* names, acquire, release */
	size_t n = 0;
	char **names = plugin_registry_names(r, &n);
	CHECK(n == 5);
	if (n == 5) {
		CHECK_STR(names[0], "GOOD_A");
		CHECK_STR(names[1], "GOOD_B");
		CHECK_STR(names[2], "MULTI_ONE");
		CHECK_STR(names[3], "MULTI_TWO");
		CHECK_STR(names[4], "NEWER_MINOR");
		CHECK(names[5] == NULL);
	}
	plugin_names_free(names);
	CHECK(plugin_acquire(r, "WRONG_MAJOR") == NULL);
	CHECK(plugin_acquire(r, "DISABLED") == NULL);
	CHECK(plugin_acquire(r, "good_a") == NULL); /* case-sensitive */
	struct job_type *one = plugin_acquire(r, "MULTI_ONE");
	struct job_type *two = plugin_acquire(r, "MULTI_TWO");
	CHECK(one && two && one != two);
	if (one && two)
		CHECK(one->lib == two->lib);
	d = plugin_registry_describe(r);
	CHECK(num_field(find_named(cJSON_GetObjectItemCaseSensitive(
					   d, "plugins"),
				   "MULTI_ONE", NULL),
			"refs") == 1);
	cJSON_Delete(d);
	plugin_release(r, one);
	plugin_release(r, two);

	/* what a plugin sees through the host API */
	struct job_type *ga = plugin_acquire(r, "GOOD_A");
	CHECK(ga != NULL);
	if (ga) {
		char msg[256];
		CHECK(validate_json(ga, "{\"n\":3}", msg, sizeof(msg)) == 0);
		CHECK_STR(msg, "");
		CHECK(validate_json(ga, NULL, msg, sizeof(msg)) == -1);
		CHECK_STR(msg, "n must be a number");
		CHECK(validate_json(ga, "{\"n\":\"3\"}", msg, sizeof(msg)) ==
		      -1);
		CHECK_STR(msg, "n must be a number");
		CHECK(validate_json(ga, "{\"n\":-1}", msg, sizeof(msg)) == -1);
		CHECK_STR(msg, "invalid parameters");
		char tiny[8];
		CHECK(validate_json(ga, "{}", tiny, sizeof(tiny)) == -1);
		CHECK_STR(tiny, "n must ");

		struct rec rec;
		struct hostapi_run_hooks hooks = rec_hooks(&rec);
		char e[256];
		CHECK(run_json(ga, "{\"n\":1}", &hooks, e, sizeof(e)) ==
		      BERTH_RUN_SUCCESS);
		CHECK_CONTAINS(rec.log,
			       "[1] hello GOOD_A id=5f3c2a1b9d8e7f6a5b4c3d2e "
			       "kind=Generic rev=7 core_url=http://core:8080 "
			       "params={\"n\":1}\n");
		CHECK(strstr(rec.log, "a debug line") == NULL);
		CHECK(rec.n_checkins == 1);
		CHECK_STR(rec.checkins[0], "half way");

		hooks = rec_hooks(&rec);
		hooks.log_level = BERTH_LOG_DEBUG;
		CHECK(run_json(ga, "{\"fail\":true,\"why\":{\"a\":[1,2]}}",
			       &hooks, e, sizeof(e)) == BERTH_RUN_ERROR);
		CHECK_STR(e, "asked to fail: {\"a\":[1,2]}");
		CHECK_CONTAINS(rec.log, "[0] a debug line");

		hooks = rec_hooks(&rec);
		rec.stop = true;
		CHECK(run_json(ga, NULL, &hooks, e, sizeof(e)) ==
		      BERTH_RUN_STOPPED);
		CHECK_CONTAINS(rec.log, "params={}");

		/* no hooks at all: checkin accepted, no stop, no props */
		CHECK(run_json(ga, "{}", NULL, e, sizeof(e)) ==
		      BERTH_RUN_SUCCESS);
		CHECK(plugin_should_retry(ga));
		plugin_release(r, ga);
	}

	/* the newer-minor plugin finds the calls this host lacks absent, at
	 * run time, and degrades */
	struct job_type *nt = plugin_acquire(r, "NEWER_MINOR");
	CHECK(nt != NULL);
	if (nt) {
		struct rec rec;
		struct hostapi_run_hooks hooks = rec_hooks(&rec);
		char e[256];
		CHECK(run_json(nt, "{}", &hooks, e, sizeof(e)) ==
		      BERTH_RUN_SUCCESS);
		CHECK_CONTAINS(rec.log, "[1] future_call: absent, degraded\n");
		CHECK_CONTAINS(rec.log, "[1] future_limit at init: absent\n");
		/* its table is longer; the host copied what it knows */
		CHECK(nt->table.size > sizeof(struct berth_job_type));
		CHECK(plugin_should_retry(nt));
		plugin_release(r, nt);
	}

	plugin_registry_free(r);
	free(real_tp);
	free(manifest);
}

/* --- files outside plugin_dir, symlinks, modes -------------------------- */

static void
test_file_checks(void)
{
	char *tmp = make_tmpdir();
	char *pdir = xasprintf("%s/plugins", tmp);
	char *odir = xasprintf("%s/outside", tmp);
	mkdir(pdir, 0755);
	mkdir(odir, 0755);
	char *src = xasprintf("%s/good_b.so", test_plugins);
	char *p;

	p = xasprintf("%s/good_b.so", odir);
	copy_file(src, p, 0755);
	free(p);
	p = xasprintf("%s/good_b.so", pdir);
	copy_file(src, p, 0755);
	free(p);
	p = xasprintf("%s/ww.so", pdir);
	copy_file(src, p, 0757);
	free(p);
	p = xasprintf("%s/gw.so", pdir);
	copy_file(src, p, 0775);
	free(p);
	p = xasprintf("%s/dir.so", pdir);
	mkdir(p, 0755);
	free(p);
	p = xasprintf("%s/link.so", pdir);
	CHECK(symlink("../outside/good_b.so", p) == 0);
	free(p);
	p = xasprintf("%s/alias.so", pdir);
	CHECK(symlink("good_b.so", p) == 0); /* inside: fine */
	free(p);

	char *manifest = xasprintf("%s/plugins.yml", tmp);
	write_file(manifest, "plugin_dir: plugins\n"
			     "plugins:\n"
			     "  - {name: GOOD_B, file: link.so}\n"
			     "  - {name: GOOD_B, file: ../outside/good_b.so}\n"
			     "  - {name: GOOD_B, file: ww.so}\n"
			     "  - {name: GOOD_B, file: gw.so}\n"
			     "  - {name: GOOD_B, file: dir.so}\n"
			     "  - {name: GOOD_B, file: alias.so}\n");
	struct plugin_registry *r = plugin_registry_new();
	struct berr err;
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	char *real_p = realpath(pdir, NULL);
	char *fix = xasprintf("outside plugin_dir %s; fix: move the plugin "
			      "into %s",
			      real_p, real_p);
	CHECK_REFUSED(r, "GOOD_B", "link.so", fix);
	CHECK_REFUSED(r, "GOOD_B", "../outside/good_b.so", fix);
	CHECK_REFUSED(r, "GOOD_B", "ww.so", "is world-writable (mode 0757)",
		      "fix: chmod go-w");
	CHECK_REFUSED(r, "GOOD_B", "gw.so", "gw.so is group-writable (mode 0775)",
		      "fix: chmod go-w");
	CHECK_REFUSED(r, "GOOD_B", "dir.so", "is not a regular file");
	CHECK(refusal(r, "GOOD_B", "alias.so") == NULL);
	struct job_type *t = plugin_acquire(r, "GOOD_B");
	CHECK(t != NULL);
	if (t) {
		char *want = xasprintf("%s/good_b.so", real_p);
		CHECK_STR(t->file, want); /* the resolved path */
		CHECK_STR(t->entry_file, "alias.so");
		free(want);
	}
	plugin_release(r, t);
	plugin_registry_free(r);

	/* errors of the manifest itself leave the caller with -1 */
	r = plugin_registry_new();
	p = xasprintf("%s/nope.yml", tmp);
	CHECK(plugin_registry_load(r, p, NULL, false, &err) == -1);
	CHECK(err.msg[0] != '\0');
	free(p);
	p = xasprintf("%s/nodir.yml", tmp);
	write_file(p, "plugin_dir: does-not-exist\n"
		      "plugins:\n  - {name: GOOD_B, file: good_b.so}\n");
	CHECK(plugin_registry_load(r, p, NULL, false, &err) == -1);
	CHECK_CONTAINS(err.msg, "does-not-exist");
	free(p);
	plugin_registry_free(r);

	free(fix);
	free(real_p);
	free(manifest);
	free(src);
	rm_rf(tmp);
	free(odir);
	free(pdir);
	free(tmp);
}

/* --- reload ------------------------------------------------------------- */

static void
write_reload_manifest(const char *path, const char *marker, bool a,
		      bool a_enabled, bool b, bool missing)
{
	char *text = xasprintf(
		"plugin_dir: plugins\n"
		"plugins:\n"
		"%s%s%s%s%s",
		a ? "  - name: GOOD_A\n    file: good_a.so\n" : "",
		a ? (a_enabled ? "    enabled: true\n"
			       : "    enabled: false\n")
		  : "",
		a ? "    settings:\n      fini_marker: " : "",
		a ? marker : "", a ? "\n" : "");
	char *full = xasprintf("%s%s%s", text,
			       b ? "  - {name: GOOD_B, file: good_b.so}\n" : "",
			       missing ? "  - {name: GONE, file: gone.so}\n"
				       : "");
	write_file(path, full);
	free(full);
	free(text);
}

static void
test_reload(void)
{
	char *tmp = make_tmpdir();
	char *pdir = xasprintf("%s/plugins", tmp);
	mkdir(pdir, 0755);
	char *p, *q;
	p = xasprintf("%s/good_a.so", test_plugins);
	q = xasprintf("%s/good_a.so", pdir);
	copy_file(p, q, 0755);
	free(p);
	free(q);
	p = xasprintf("%s/good_b.so", test_plugins);
	q = xasprintf("%s/good_b.so", pdir);
	copy_file(p, q, 0755);
	free(p);
	free(q);
	char *marker = xasprintf("%s/fini_a", tmp);
	char *manifest = xasprintf("%s/plugins.yml", tmp);
	struct berr err;
	struct plugin_registry *r = plugin_registry_new();

	/* 1: GOOD_A only, plus one refused entry */
	write_reload_manifest(manifest, marker, true, true, false, true);
	CHECK_MSG(plugin_registry_load(r, manifest, NULL, false, &err) == 0,
		  "%s", err.msg);
	struct job_type *a1 = plugin_acquire(r, "GOOD_A");
	CHECK(a1 != NULL);
	plugin_release(r, a1);
	CHECK(plugin_acquire(r, "GOOD_B") == NULL);
	cJSON *d = plugin_registry_describe(r);
	CHECK(array_size(d, "refused") == 1);
	cJSON_Delete(d);

	/* 2: add GOOD_B; GOOD_A is kept as it is; refusals replaced */
	write_reload_manifest(manifest, marker, true, true, true, false);
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	struct job_type *b = plugin_acquire(r, "GOOD_B");
	CHECK(b != NULL);
	plugin_release(r, b);
	struct job_type *a2 = plugin_acquire(r, "GOOD_A");
	CHECK(a2 != NULL && a2 == a1);
	d = plugin_registry_describe(r);
	CHECK(array_size(d, "refused") == 0);
	CHECK(array_size(d, "plugins") == 2);
	cJSON_Delete(d);

	/* 3: remove GOOD_A while a reference is held: retired, not unloaded */
	write_reload_manifest(manifest, marker, false, false, true, false);
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	CHECK(plugin_acquire(r, "GOOD_A") == NULL);
	CHECK(!file_exists(marker)); /* fini not called yet */
	d = plugin_registry_describe(r);
	CHECK(array_size(d, "plugins") == 1);
	const cJSON *ret = find_named(
		cJSON_GetObjectItemCaseSensitive(d, "retiring"), "GOOD_A",
		NULL);
	CHECK(ret != NULL && num_field(ret, "refs") == 1);
	cJSON_Delete(d);
	if (a2) {
		/* its code is still mapped and runs */
		char e[128];
		CHECK(run_json(a2, "{}", NULL, e, sizeof(e)) ==
		      BERTH_RUN_SUCCESS);
		CHECK(a2->retired);
	}
	/* a reload while still held keeps it */
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	CHECK(!file_exists(marker));
	plugin_release(r, a2); /* last reference: fini + unload now */
	CHECK(file_exists(marker));
	d = plugin_registry_describe(r);
	CHECK(array_size(d, "retiring") == 0);
	cJSON_Delete(d);
	remove(marker);

	/* 4: listed again (fresh load), then disabled while idle: unloaded
	 * by the reload itself */
	write_reload_manifest(manifest, marker, true, true, true, false);
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	struct job_type *a3 = plugin_acquire(r, "GOOD_A");
	CHECK(a3 != NULL);
	plugin_release(r, a3);
	write_reload_manifest(manifest, marker, true, false, true, false);
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	CHECK(file_exists(marker));
	CHECK(plugin_acquire(r, "GOOD_A") == NULL);

	/* 5: a broken manifest leaves the registry as it was */
	write_file(manifest, "plugins: [ {name: GOOD_A\n");
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == -1);
	b = plugin_acquire(r, "GOOD_B");
	CHECK(b != NULL);
	plugin_release(r, b);

	/* 6: nothing listed: everything idle is unloaded */
	write_file(manifest, "plugin_dir: plugins\nplugins: []\n");
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	CHECK(plugin_acquire(r, "GOOD_B") == NULL);
	d = plugin_registry_describe(r);
	CHECK(array_size(d, "plugins") == 0 && array_size(d, "retiring") == 0);
	cJSON_Delete(d);

	plugin_registry_free(r);
	rm_rf(tmp);
	free(manifest);
	free(marker);
	free(pdir);
	free(tmp);
}

/* --- lookups and runs racing with reloads ------------------------------ */

struct stress {
	struct plugin_registry *r;
	atomic_bool done;
	atomic_int uses;
	atomic_int bad;
};

static void *
stress_worker(void *arg)
{
	struct stress *s = arg;
	const char *names[] = {"GOOD_A", "GOOD_B"};
	while (!atomic_load(&s->done)) {
		for (size_t i = 0; i < ARRAY_LEN(names); i++) {
			struct job_type *t = plugin_acquire(s->r, names[i]);
			if (!t)
				continue;
			char e[128];
			if (i == 0 &&
			    validate_json(t, "{\"n\":1}", e, sizeof(e)) != 0)
				atomic_fetch_add(&s->bad, 1);
			if (run_json(t, "{\"n\":1}", NULL, e, sizeof(e)) !=
			    BERTH_RUN_SUCCESS)
				atomic_fetch_add(&s->bad, 1);
			plugin_release(s->r, t);
			atomic_fetch_add(&s->uses, 1);
		}
	}
	return NULL;
}

static void
test_reload_race(void)
{
	char *tmp = make_tmpdir();
	char *manifest = xasprintf("%s/plugins.yml", tmp);
	const char *variants[] = {
		"plugins:\n  - {name: GOOD_A, file: good_a.so}\n"
		"  - {name: GOOD_B, file: good_b.so}\n",
		"plugins:\n  - {name: GOOD_B, file: good_b.so}\n",
		"plugins:\n  - {name: GOOD_A, file: good_a.so}\n",
		"plugins: []\n",
	};
	struct stress s = {.r = plugin_registry_new()};
	atomic_init(&s.done, false);
	atomic_init(&s.uses, 0);
	atomic_init(&s.bad, 0);
	struct berr err;
	write_file(manifest, variants[0]);
	CHECK(plugin_registry_load(s.r, manifest, test_plugins, false, &err) ==
	      0);

	int saved = blog_min_level;
	blog_set_level(BLOG_WARNING); /* thousands of load/unload lines */
	pthread_t th[4];
	for (size_t i = 0; i < ARRAY_LEN(th); i++)
		pthread_create(&th[i], NULL, stress_worker, &s);
	int failed_loads = 0;
	for (int k = 0; k < 200; k++) {
		write_file(manifest, variants[k % ARRAY_LEN(variants)]);
		if (plugin_registry_load(s.r, manifest, test_plugins, false,
					 &err) != 0)
			failed_loads++;
		util_sleep_ms(1);
	}
	atomic_store(&s.done, true);
	for (size_t i = 0; i < ARRAY_LEN(th); i++)
		pthread_join(th[i], NULL);
	blog_set_level(saved);

	CHECK(failed_loads == 0);
	CHECK(atomic_load(&s.bad) == 0);
	CHECK(atomic_load(&s.uses) > 0);
	cJSON *d = plugin_registry_describe(s.r);
	CHECK(array_size(d, "retiring") == 0); /* all released, all unloaded */
	cJSON_Delete(d);
	plugin_registry_free(s.r);
	rm_rf(tmp);
	free(manifest);
	free(tmp);
}

/* --- file and directory permissions ------------------------------------- */

/* Loads GOOD_B from file (relative to tmp/anc/plugins) after setting the
 * modes of tmp/anc, tmp/anc/plugins and tmp/anc/plugins/sub; returns the
 * refusal reason (NULL when it loaded). */
static char *
load_with_modes(const char *tmp, mode_t anc, mode_t pdir, mode_t sub,
		const char *file)
{
	char *a = xasprintf("%s/anc", tmp);
	char *p = xasprintf("%s/anc/plugins", tmp);
	char *s = xasprintf("%s/anc/plugins/sub", tmp);
	char *manifest = xasprintf("%s/perm.yml", tmp);
	char *text = xasprintf("plugin_dir: anc/plugins\n"
			       "plugins:\n  - {name: GOOD_B, file: %s}\n",
			       file);
	write_file(manifest, text);
	CHECK(chmod(a, anc) == 0 && chmod(p, pdir) == 0 && chmod(s, sub) == 0);
	struct plugin_registry *r = plugin_registry_new();
	struct berr err;
	CHECK_MSG(plugin_registry_load(r, manifest, NULL, false, &err) == 0,
		  "%s", err.msg);
	char *why = refusal(r, "GOOD_B", file);
	struct job_type *t = plugin_acquire(r, "GOOD_B");
	CHECK((t != NULL) == (why == NULL));
	plugin_release(r, t);
	plugin_registry_free(r);
	chmod(a, 0755);
	chmod(p, 0755);
	chmod(s, 0755);
	free(text);
	free(manifest);
	free(s);
	free(p);
	free(a);
	return why;
}

#define CHECK_MODES_REFUSED(tmp, anc, pdir, sub, file, ...)                  \
	do {                                                                 \
		char *why_ = load_with_modes(tmp, anc, pdir, sub, file);     \
		CHECK_MSG(why_ != NULL, "modes %04o %04o %04o: %s loaded",   \
			  anc, pdir, sub, file);                             \
		const char *needles_[] = {__VA_ARGS__};                      \
		for (size_t k_ = 0; why_ && k_ < ARRAY_LEN(needles_); k_++)  \
			CHECK_CONTAINS(why_, needles_[k_]);                  \
		free(why_);                                                  \
	} while (0)

static void
test_dir_checks(void)
{
	char *made = make_tmpdir();
	char *tmp = realpath(made, NULL);
	char *anc = xasprintf("%s/anc", tmp);
	char *pdir = xasprintf("%s/anc/plugins", tmp);
	char *sub = xasprintf("%s/anc/plugins/sub", tmp);
	mkdir(anc, 0755);
	mkdir(pdir, 0755);
	mkdir(sub, 0755);
	char *src = xasprintf("%s/good_b.so", test_plugins);
	char *p = xasprintf("%s/good_b.so", pdir);
	copy_file(src, p, 0755);
	free(p);
	p = xasprintf("%s/good_b.so", sub);
	copy_file(src, p, 0755);
	free(p);

	char *why = load_with_modes(tmp, 0755, 0755, 0755, "good_b.so");
	CHECK_MSG(why == NULL, "%s", why);
	free(why);
	char *fix = xasprintf("fix: chmod go-w %s", pdir);
	CHECK_MODES_REFUSED(tmp, 0755, 0775, 0755, "good_b.so", "plugin_dir ",
			    pdir, "is group-writable (mode 0775)", fix);
	CHECK_MODES_REFUSED(tmp, 0755, 0757, 0755, "good_b.so",
			    "is world-writable (mode 0757)", fix);
	/* the sticky bit does not make plugin_dir itself acceptable */
	CHECK_MODES_REFUSED(tmp, 0755, 01777, 0755, "good_b.so",
			    "is world-writable (mode 1777)", fix);
	free(fix);
	fix = xasprintf("directory %s is world-writable", sub);
	CHECK_MODES_REFUSED(tmp, 0755, 0755, 0777, "sub/good_b.so", fix);
	free(fix);
	why = load_with_modes(tmp, 0755, 0755, 0777, "good_b.so");
	CHECK_MSG(why == NULL, "%s", why); /* sub is not on its path */
	free(why);
	/* above plugin_dir: only without the sticky bit */
	fix = xasprintf("directory %s above plugin_dir is world-writable "
			"without the sticky bit (mode 0777)",
			anc);
	CHECK_MODES_REFUSED(tmp, 0777, 0755, 0755, "good_b.so", fix,
			    "fix: chmod go-w");
	free(fix);
	fix = xasprintf("directory %s above plugin_dir is group-writable",
			anc);
	CHECK_MODES_REFUSED(tmp, 0775, 0755, 0755, "good_b.so", fix);
	free(fix);
	why = load_with_modes(tmp, 01777, 0755, 0755, "good_b.so");
	CHECK_MSG(why == NULL, "%s", why); /* as under /tmp */
	free(why);

	free(src);
	rm_rf(tmp);
	free(sub);
	free(pdir);
	free(anc);
	free(tmp);
	free(made);
}

/* --- private copies and generations ------------------------------------ */

/* The describe() object of the live (plugins) or retiring type name. */
static cJSON *
described(cJSON *d, const char *list, const char *name)
{
	return find_named(cJSON_GetObjectItemCaseSensitive(d, list), name,
			  NULL);
}

static bool
run_says(struct job_type *t, const char *text)
{
	struct rec rec;
	struct hostapi_run_hooks h = rec_hooks(&rec);
	char e[128];
	bool ok = run_json(t, "{}", &h, e, sizeof(e)) == BERTH_RUN_SUCCESS;
	CHECK_MSG(ok && strstr(rec.log, text), "want %s in: %s", text, rec.log);
	return ok && strstr(rec.log, text);
}

static char *
read_text(const char *path)
{
	char *data = NULL;
	size_t len = 0;
	struct berr e;
	if (util_read_file(path, 1 << 20, &data, &len, &e) != 0)
		return xstrdup("");
	return data;
}

static void
test_private_copy(void)
{
	char *made = make_tmpdir();
	char *tmp = realpath(made, NULL);
	char *pdir = xasprintf("%s/plugins", tmp);
	char *copies = xasprintf("%s/copies", tmp);
	mkdir(pdir, 0755);
	mkdir(copies, 0755); /* forced to 0700 */
	char *v1 = xasprintf("%s/versioned_v1.so", test_plugins);
	char *v2 = xasprintf("%s/versioned_v2.so", test_plugins);
	char *so = xasprintf("%s/versioned.so", pdir);
	copy_file(v1, so, 0755);
	/* left by earlier runs: this pid (reused), a pid that is gone */
	char *stale1 = xasprintf("%s/%ld-7-versioned.so", copies,
				 (long)getpid());
	char *stale2 = xasprintf("%s/999999999-1-versioned.so", copies);
	char *other = xasprintf("%s/keep.txt", copies);
	write_file(stale1, "x");
	write_file(stale2, "x");
	write_file(other, "x");
	char *marker = xasprintf("%s/fini", tmp);
	char *manifest = xasprintf("%s/plugins.yml", tmp);
	char *text = xasprintf("plugin_dir: plugins\nplugins:\n"
			       "  - name: VERSIONED\n    file: versioned.so\n"
			       "    settings: {fini_marker: %s}\n",
			       marker);
	write_file(manifest, text);

	struct plugin_registry *r = plugin_registry_new();
	plugin_registry_set_copy_dir(r, copies);
	struct berr err;
	CHECK_MSG(plugin_registry_load(r, manifest, NULL, false, &err) == 0,
		  "%s", err.msg);
	CHECK(!file_exists(stale1) && !file_exists(stale2));
	CHECK(file_exists(other));
	struct stat st;
	CHECK(stat(copies, &st) == 0 && (st.st_mode & 07777) == 0700);

	struct job_type *t = plugin_acquire(r, "VERSIONED");
	CHECK(t != NULL);
	cJSON *d = plugin_registry_describe(r);
	const cJSON *o = described(d, "plugins", "VERSIONED");
	const char *cp = o ? str_field(o, "copy") : NULL;
	char *copy = xstrdup(cp ? cp : "");
	cJSON_Delete(d);
	CHECK_MSG(strncmp(copy, copies, strlen(copies)) == 0 &&
			  copy[strlen(copies)] == '/',
		  "copy %s is not in %s", copy, copies);
	struct stat sst;
	CHECK(stat(copy, &st) == 0 && (st.st_mode & 07777) == 0500);
	CHECK(stat(so, &sst) == 0 && sst.st_ino != st.st_ino);
	if (t) {
		/* the code that runs is mapped from the copy */
		Dl_info info;
		memset(&info, 0, sizeof(info));
		CHECK(dladdr((void *)t->table.run, &info) != 0);
		CHECK_STR(info.dli_fname ? info.dli_fname : "", copy);
		CHECK(run_says(t, "VERSIONED v1 running"));
		/* cp over the file in place: same inode, new bytes */
		copy_file(v2, so, 0755);
		struct stat now;
		CHECK(stat(so, &now) == 0 && now.st_ino == sst.st_ino);
		/* the mapped code is untouched */
		CHECK(run_says(t, "VERSIONED v1 running"));
		CHECK_STR(t->plugin_version, "v1");
	}
	plugin_release(r, t);
	plugin_registry_free(r);
	/* unloaded: fini ran, the copy is gone, the directory stays */
	char *fini = read_text(marker);
	CHECK_STR(fini, "fini v1\n");
	free(fini);
	CHECK(!file_exists(copy));
	CHECK(file_exists(copies) && file_exists(other));

	/* without a copy directory: a private temporary one, removed */
	r = plugin_registry_new();
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	d = plugin_registry_describe(r);
	o = described(d, "plugins", "VERSIONED");
	cp = o ? str_field(o, "copy") : NULL;
	char *tdir = xstrdup(cp ? cp : "/");
	cJSON_Delete(d);
	*strrchr(tdir, '/') = '\0';
	CHECK(stat(tdir, &st) == 0 && (st.st_mode & 07777) == 0700);
	plugin_registry_free(r);
	CHECK(!file_exists(tdir));
	free(tdir);

	rm_rf(tmp);
	free(copy);
	free(text);
	free(manifest);
	free(marker);
	free(other);
	free(stale2);
	free(stale1);
	free(so);
	free(v2);
	free(v1);
	free(copies);
	free(pdir);
	free(tmp);
	free(made);
}

static double
generation_of(struct plugin_registry *r, const char *list, const char *name)
{
	cJSON *d = plugin_registry_describe(r);
	const cJSON *o = described(d, list, name);
	double g = o ? num_field(o, "generation") : -1;
	cJSON_Delete(d);
	return g;
}

static void
test_versions(void)
{
	char *made = make_tmpdir();
	char *tmp = realpath(made, NULL);
	char *pdir = xasprintf("%s/plugins", tmp);
	mkdir(pdir, 0755);
	char *v1 = xasprintf("%s/versioned_v1.so", test_plugins);
	char *v2 = xasprintf("%s/versioned_v2.so", test_plugins);
	char *bad = xasprintf("%s/no_magic.so", test_plugins);
	char *so = xasprintf("%s/versioned.so", pdir);
	char *tmpname = xasprintf("%s/.versioned.so.new", pdir);
	copy_file(v1, so, 0755);
	char *marker = xasprintf("%s/fini", tmp);
	char *manifest = xasprintf("%s/plugins.yml", tmp);
	char *text = xasprintf("plugin_dir: plugins\nplugins:\n"
			       "  - name: VERSIONED\n    file: versioned.so\n"
			       "    settings: {fini_marker: %s}\n",
			       marker);
	write_file(manifest, text);
	struct plugin_registry *r = plugin_registry_new();
	struct berr err;
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);

	/* a job holds generation 1 while the file is rewritten in place */
	struct job_type *t1 = plugin_acquire(r, "VERSIONED");
	double g1 = generation_of(r, "plugins", "VERSIONED");
	CHECK(t1 != NULL && g1 > 0);
	cJSON *d = plugin_registry_describe(r);
	const cJSON *o = described(d, "plugins", "VERSIONED");
	char *copy1 = xstrdup(o ? str_field(o, "copy") : "");
	cJSON_Delete(d);
	copy_file(v2, so, 0755);
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	struct job_type *t2 = plugin_acquire(r, "VERSIONED");
	CHECK(t2 != NULL && t2 != t1);
	double g2 = generation_of(r, "plugins", "VERSIONED");
	CHECK(g2 > g1);
	CHECK(generation_of(r, "retiring", "VERSIONED") == g1);
	if (t1 && t2 && t2 != t1) {
		CHECK_STR(t2->plugin_version, "v2");
		CHECK(run_says(t2, "VERSIONED v2 running"));
		CHECK(run_says(t1, "VERSIONED v1 running"));
		CHECK(t1->retired && !t2->retired);
	}
	d = plugin_registry_describe(r);
	o = described(d, "retiring", "VERSIONED");
	CHECK(o && num_field(o, "refs") == 1);
	CHECK(o && strcmp(str_field(o, "version"), "v1") == 0);
	o = described(d, "plugins", "VERSIONED");
	CHECK(o && strcmp(str_field(o, "version"), "v2") == 0);
	CHECK(o && strncmp(str_field(o, "hash"), "fnv1a64:", 8) == 0);
	cJSON_Delete(d);
	CHECK(!file_exists(marker) && file_exists(copy1));

	/* unchanged, or only touched: kept */
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	struct timespec times[2] = {{1000000, 0}, {1000000, 0}};
	CHECK(utimensat(AT_FDCWD, so, times, 0) == 0);
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	struct job_type *same = plugin_acquire(r, "VERSIONED");
	CHECK(same == t2);
	plugin_release(r, same);
	CHECK(generation_of(r, "retiring", "VERSIONED") == g1);

	/* the job on generation 1 ends: it is unloaded, its copy removed */
	plugin_release(r, t1);
	char *fini = read_text(marker);
	CHECK_STR(fini, "fini v1\n");
	free(fini);
	CHECK(!file_exists(copy1));
	CHECK(generation_of(r, "retiring", "VERSIONED") == -1);
	plugin_release(r, t2);

	/* the safe upgrade: a temporary name, then rename; the idle
	 * generation 2 is unloaded by the reload itself */
	copy_file(v1, tmpname, 0755);
	CHECK(rename(tmpname, so) == 0);
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	struct job_type *t3 = plugin_acquire(r, "VERSIONED");
	double g3 = generation_of(r, "plugins", "VERSIONED");
	CHECK(t3 != NULL && g3 > g2);
	if (t3)
		CHECK_STR(t3->plugin_version, "v1");
	fini = read_text(marker);
	CHECK_STR(fini, "fini v1\nfini v2\n");
	free(fini);
	CHECK(generation_of(r, "retiring", "VERSIONED") == -1);

	/* a refused new version leaves the loaded generation serving */
	copy_file(bad, so, 0755);
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	CHECK_REFUSED(r, "VERSIONED", "versioned.so", "new version of ",
		      "no berth_plugin_magic symbol",
		      "keeps serving VERSIONED");
	CHECK(generation_of(r, "plugins", "VERSIONED") == g3);
	chmod(so, 0775);
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	CHECK_REFUSED(r, "VERSIONED", "versioned.so", "is group-writable",
		      "keeps serving VERSIONED");
	remove(so);
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	CHECK_REFUSED(r, "VERSIONED", "versioned.so", "No such file",
		      "keeps serving VERSIONED");
	struct job_type *t4 = plugin_acquire(r, "VERSIONED");
	CHECK(t4 == t3);
	if (t3)
		CHECK(run_says(t3, "VERSIONED v1 running"));
	plugin_release(r, t4);
	plugin_release(r, t3);
	plugin_registry_free(r);

	rm_rf(tmp);
	free(copy1);
	free(text);
	free(manifest);
	free(marker);
	free(tmpname);
	free(so);
	free(bad);
	free(v2);
	free(v1);
	free(pdir);
	free(tmp);
	free(made);
}

/* --- DEMO --------------------------------------------------------------- */

static void
test_demo(void)
{
	struct plugin_registry *r = plugin_registry_new();
	struct berr err;
	char *manifest = xasprintf("%s/plugins/demo.yml", fixtures);
	CHECK_MSG(plugin_registry_load(r, manifest, plugins, false, &err) == 0,
		  "%s", err.msg);
	struct job_type *t = plugin_acquire(r, "DEMO");
	CHECK(t != NULL);
	if (!t) {
		plugin_registry_free(r);
		free(manifest);
		return;
	}
	CHECK(t->max_fails == 3);
	CHECK(t->max_concurrency == 1);
	CHECK(t->priority == 1);
	CHECK(plugin_should_retry(t));

	char msg[256];
	CHECK(validate_json(t, NULL, msg, sizeof(msg)) == -1);
	CHECK_STR(msg, "parameters required for replication job");
	CHECK(validate_json(t, "{}", msg, sizeof(msg)) == -1);
	CHECK_STR(msg, "parameters required for replication job");
	CHECK(validate_json(t, "{\"img\":\"demo\"}", msg, sizeof(msg)) == -1);
	CHECK_STR(msg, "missing parameter 'image'");
	CHECK(validate_json(t, "{\"image\":5}", msg, sizeof(msg)) == -1);
	CHECK_STR(msg, "parameter 'image' must be a string, got 5");
	CHECK(validate_json(t, "{\"image\":null}", msg, sizeof(msg)) == -1);
	CHECK_STR(msg, "parameter 'image' must be a string, got null");
	CHECK(validate_json(t, "{\"image\":\"busybox\"}", msg, sizeof(msg)) ==
	      -1);
	CHECK_STR(msg, "expected 'demo *' but got 'busybox'");
	CHECK(validate_json(t, "{\"image\":\"demo-1\"}", msg, sizeof(msg)) ==
	      0);
	CHECK(validate_json(t, "{\"image\":\"demo\",\"_job_kind_periodic_\":"
			       "\"1700000000\"}",
			    msg, sizeof(msg)) == 0);

	/* success: two check-ins one second apart, then the (0.3 s) hold */
	struct rec rec;
	struct hostapi_run_hooks hooks = rec_hooks(&rec);
	char e[256];
	int64_t t0 = util_monotonic_ms();
	CHECK(run_json(t, "{\"image\":\"demo-1\"}", &hooks, e, sizeof(e)) ==
	      BERTH_RUN_SUCCESS);
	int64_t took = util_monotonic_ms() - t0;
	CHECK_MSG(took >= 1250 && took < 5000, "took %lld ms", (long long)took);
	CHECK(rec.n_checkins == 2);
	CHECK_STR(rec.checkins[0], "progress data: %30");
	CHECK_STR(rec.checkins[1], "progress data: %60");
	CHECK(rec.checkin_ms[1] - rec.checkin_ms[0] >= 950);
	CHECK_CONTAINS(rec.log, "Params: {\"image\":\"demo-1\"}");
	CHECK_CONTAINS(rec.log, "[2] Holding for 300 ms");

	/* stop during the first wait */
	hooks = rec_hooks(&rec);
	rec.stop_on_checkin = true;
	t0 = util_monotonic_ms();
	CHECK(run_json(t, "{\"image\":\"demo-1\"}", &hooks, e, sizeof(e)) ==
	      BERTH_RUN_STOPPED);
	took = util_monotonic_ms() - t0;
	CHECK_MSG(took < 500, "stop took %lld ms", (long long)took);
	CHECK(rec.n_checkins == 1);
	CHECK_CONTAINS(rec.log, "Exit for receiving stop signal");

	/* JOB_FAILED: fails after 3 s, or stops early when asked */
	setenv("JOB_FAILED", "1", 1);
	hooks = rec_hooks(&rec);
	t0 = util_monotonic_ms();
	CHECK(run_json(t, "{\"image\":\"demo-1\"}", &hooks, e, sizeof(e)) ==
	      BERTH_RUN_ERROR);
	took = util_monotonic_ms() - t0;
	CHECK_STR(e, "`JOB_FAILED` env is set");
	CHECK_MSG(took >= 2900 && took < 6000, "took %lld ms", (long long)took);
	CHECK(rec.n_checkins == 0);
	hooks = rec_hooks(&rec);
	rec.stop = true;
	CHECK(run_json(t, "{\"image\":\"demo-1\"}", &hooks, e, sizeof(e)) ==
	      BERTH_RUN_STOPPED);
	unsetenv("JOB_FAILED");

	plugin_release(r, t);
	plugin_registry_free(r);
	free(manifest);

	/* a bad setting makes init() refuse the type with its reason */
	char *tmp = make_tmpdir();
	char *m2 = xasprintf("%s/demo.yml", tmp);
	char *text = xasprintf("plugin_dir: %s\n"
			       "plugins:\n"
			       "  - name: DEMO\n"
			       "    file: demo.so\n"
			       "    max_fails: 5\n"
			       "    settings: {long_wait_seconds: soon}\n"
			       "  - name: DEMO\n"
			       "    file: demo.so\n"
			       "    priority: 7\n",
			       plugins);
	write_file(m2, text);
	r = plugin_registry_new();
	CHECK(plugin_registry_load(r, m2, NULL, false, &err) == 0);
	CHECK_REFUSED(r, "DEMO", "demo.so", "init() failed (returned -1)",
		      "long_wait_seconds must be a number");
	/* the second entry of the same name loads, with its override */
	t = plugin_acquire(r, "DEMO");
	CHECK(t != NULL && t->priority == 7 && t->max_fails == 3);
	plugin_release(r, t);
	plugin_registry_free(r);
	rm_rf(tmp);
	free(text);
	free(m2);
	free(tmp);
}

/* --- the SDK example of the README ------------------------------------- */

static void
test_hello(void)
{
	struct plugin_registry *r = plugin_registry_new();
	struct berr err;
	char *manifest = xasprintf("%s/plugins/hello.yml", fixtures);
	CHECK_MSG(plugin_registry_load(r, manifest, test_plugins, false,
				       &err) == 0,
		  "%s", err.msg);
	struct job_type *t = plugin_acquire(r, "HELLO");
	CHECK(t != NULL);
	if (t) {
		char msg[256];
		CHECK(validate_json(t, "{\"who\":1}", msg, sizeof(msg)) == -1);
		CHECK_STR(msg, "parameter 'who' (a string) is required");
		CHECK(validate_json(t, "{\"who\":\"world\"}", msg,
				    sizeof(msg)) == 0);
		struct rec rec;
		struct hostapi_run_hooks hooks = rec_hooks(&rec);
		CHECK(run_json(t, "{\"who\":\"world\"}", &hooks, msg,
			       sizeof(msg)) == BERTH_RUN_SUCCESS);
		CHECK_STR(rec.log, "[1] hello, world\n");
		CHECK(rec.n_checkins == 1);
		hooks = rec_hooks(&rec);
		rec.stop = true;
		CHECK(run_json(t, "{\"who\":\"world\"}", &hooks, msg,
			       sizeof(msg)) == BERTH_RUN_STOPPED);
	}
	plugin_release(r, t);
	plugin_registry_free(r);
	free(manifest);
}

/* --- ABI 1.0 plugins, init()'s limits, properties ----------------------- */

static bool
log_has(FILE *f, const char *needle)
{
	char line[4096];
	fflush(f);
	rewind(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			return true;
	return false;
}

static void
test_compat_and_properties(void)
{
	char *tmp = make_tmpdir();
	char *manifest = xasprintf("%s/plugins.yml", tmp);
	char *text = xasprintf(
		"plugin_dir: %s\n"
		"plugins:\n"
		"  - {name: ABI_1_0, file: abi_1_0.so, settings: {x: y}}\n"
		"  - name: PROPS\n"
		"    file: props.so\n"
		"    settings:\n"
		"      properties: {core_url: 'http://from-manifest',\n"
		"                   answer: 42, ratio: 0.5, flag: true}\n"
		"  - {name: NEWER_MINOR, file: newer_minor.so, max_fails: 2}\n"
		"  - name: GOOD_B\n"
		"    file: good_b.so\n"
		"    settings: {properties: {bad: [1]}}\n"
		"  - name: MULTI_ONE\n"
		"    file: multi.so\n"
		"    settings: {properties: [a]}\n",
		test_plugins);
	write_file(manifest, text);
	setenv("CORE_URL", "http://core-env:8080", 1);
	setenv("REGISTRY_URL", "http://registry:5000", 1);
	unsetenv("REGISTRY_CONTROLLER_URL");
	struct berth_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.data_dir = "/var/lib/berth";
	cfg.namespace_ = "harbor_job_service_namespace";
	cfg.workers = 0; /* the default, 10 */

	struct plugin_registry *r = plugin_registry_new();
	plugin_registry_set_config(r, &cfg);
	struct berr err;
	FILE *logf = tmpfile();
	blog_set_output(logf);
	int rc = plugin_registry_load(r, manifest, NULL, false, &err);
	blog_set_output(NULL);
	CHECK_MSG(rc == 0, "load: %s", err.msg);
	CHECK(log_has(logf, "old init, setting x=y"));
	/* properties answer in init() too */
	CHECK(log_has(logf, "init core_url=http://from-manifest"));
	fclose(logf);

	CHECK_REFUSED(r, "GOOD_B", "good_b.so",
		      "settings.properties.bad is not a string, number or "
		      "boolean",
		      "fix: ");
	CHECK_REFUSED(r, "MULTI_ONE", "multi.so",
		      "settings.properties is not a mapping", "fix: ");

	cJSON *d = plugin_registry_describe(r);
	const cJSON *pl = cJSON_GetObjectItemCaseSensitive(d, "plugins");
	const cJSON *old = find_named(pl, "ABI_1_0", NULL);
	const cJSON *nm = find_named(pl, "NEWER_MINOR", NULL);
	CHECK(old && nm);
	if (old && nm) {
		CHECK_STR(str_field(old, "abi"), "1.0");
		CHECK(num_field(old, "max_fails") == 5); /* its table */
		CHECK(num_field(nm, "max_fails") == 2);  /* manifest > init */
		CHECK(num_field(nm, "max_concurrency") == 3); /* init */
	}
	cJSON_Delete(d);

	/* the old plugin runs with the 1.0 services; no engine property
	 * hook: the type's properties answer */
	struct rec rec;
	struct hostapi_run_hooks hooks = rec_hooks(&rec);
	hooks.property = NULL;
	char e[256];
	struct job_type *t = plugin_acquire(r, "ABI_1_0");
	CHECK(t != NULL);
	if (t) {
		CHECK(run_json(t, "{\"k\":1}", &hooks, e, sizeof(e)) ==
		      BERTH_RUN_SUCCESS);
		CHECK_CONTAINS(rec.log,
			       "[1] old run ABI_1_0 params={\"k\":1} "
			       "core_url=http://core-env:8080 state=set\n");
		plugin_release(r, t);
	}

	t = plugin_acquire(r, "PROPS");
	CHECK(t != NULL);
	if (t) {
		hooks = rec_hooks(&rec);
		hooks.property = NULL;
		CHECK(run_json(t, "{}", &hooks, e, sizeof(e)) ==
		      BERTH_RUN_SUCCESS);
		CHECK_STR(rec.log,
			  "[1] property core_url=http://from-manifest\n"
			  "[1] property registry_url=http://registry:5000\n"
			  "[1] property registry_controller_url unset\n"
			  "[1] property berth.data_dir=/var/lib/berth\n"
			  "[1] property berth.namespace="
			  "harbor_job_service_namespace\n"
			  "[1] property berth.workers=10\n");
		CHECK(rec.n_checkins == 1);
		CHECK_STR(rec.checkins[0], "props ok");

		hooks = rec_hooks(&rec);
		hooks.property = NULL;
		CHECK(run_json(t,
			       "{\"names\":[\"answer\",\"ratio\",\"flag\","
			       "\"nope\",\"settings\"]}",
			       &hooks, e, sizeof(e)) == BERTH_RUN_SUCCESS);
		CHECK_STR(rec.log, "[1] property answer=42\n"
				   "[1] property ratio=0.5\n"
				   "[1] property flag=true\n"
				   "[1] property nope unset\n"
				   "[1] property settings unset\n");

		/* an engine's own property of the run comes first */
		hooks = rec_hooks(&rec);
		CHECK(run_json(t, "{\"names\":[\"core_url\",\"answer\"]}",
			       &hooks, e, sizeof(e)) == BERTH_RUN_SUCCESS);
		CHECK_STR(rec.log, "[1] property core_url=http://core:8080\n"
				   "[1] property answer=42\n");
		plugin_release(r, t);
	}
	plugin_registry_free(r);

	/* without a service configuration (berthd --check-config): only the
	 * manifest and the environment */
	unsetenv("CORE_URL");
	r = plugin_registry_new();
	CHECK(plugin_registry_load(r, manifest, NULL, false, &err) == 0);
	t = plugin_acquire(r, "PROPS");
	CHECK(t != NULL);
	if (t) {
		hooks = rec_hooks(&rec);
		hooks.property = NULL;
		CHECK(run_json(t,
			       "{\"names\":[\"berth.workers\","
			       "\"registry_url\"]}",
			       &hooks, e, sizeof(e)) == BERTH_RUN_SUCCESS);
		CHECK_STR(rec.log,
			  "[1] property berth.workers unset\n"
			  "[1] property registry_url=http://registry:5000\n");
		plugin_release(r, t);
	}
	t = plugin_acquire(r, "ABI_1_0");
	if (t) {
		hooks = rec_hooks(&rec);
		hooks.property = NULL;
		CHECK(run_json(t, "{}", &hooks, e, sizeof(e)) ==
		      BERTH_RUN_SUCCESS);
		CHECK_CONTAINS(rec.log, "core_url=(none)");
		plugin_release(r, t);
	}
	plugin_registry_free(r);
	unsetenv("REGISTRY_URL");

	rm_rf(tmp);
	free(text);
	free(manifest);
	free(tmp);
}

/* --- the host API table itself ------------------------------------------ */

static void
test_hostapi(void)
{
	const struct berth_host_api *api = hostapi_table();
	CHECK(api->size == sizeof(struct berth_host_api));
	CHECK(BERTH_HOST_HAS(api, log));
	CHECK(BERTH_HOST_HAS(api, type_state));

	/* an older host (smaller table) lacks the later calls */
	struct berth_host_api old = *api;
	old.size = (uint32_t)offsetof(struct berth_host_api, params_json);
	CHECK(BERTH_HOST_HAS(&old, job_revision));
	CHECK(!BERTH_HOST_HAS(&old, params_json));
	CHECK(!BERTH_HOST_HAS(&old, type_state));

	/* settings getters in an init context */
	CHECK(BERTH_HOST_HAS(api, limits));
	CHECK(!BERTH_HOST_HAS(&old, limits));

	cJSON *s = cJSON_Parse("{\"s\":\"x\",\"n\":2.5,\"b\":false,"
			       "\"o\":{\"k\":[1]},\"z\":null}");
	cJSON *props = cJSON_Parse("{\"core_url\":\"http://c\"}");
	struct berth_type_limits lim = {.size = sizeof(lim), .max_fails = 2};
	struct hostapi_ctx c;
	hostapi_ctx_init_load(&c, "T", s, props, &lim);
	struct berth_job_ctx *ctx = &c.pub;
	CHECK(berth_limits(ctx) == &lim);
	CHECK(BERTH_LIMITS_HAS(berth_limits(ctx), should_retry));
	CHECK_STR(berth_property(ctx, "core_url"), "http://c");
	CHECK(berth_property(ctx, "registry_url") == NULL);
	double n = 0;
	bool b = true;
	CHECK(berth_setting_type(ctx, "s") == BERTH_JSON_STRING);
	CHECK(berth_setting_type(ctx, "z") == BERTH_JSON_NULL);
	CHECK(berth_setting_type(ctx, "o") == BERTH_JSON_OBJECT);
	CHECK(berth_setting_type(ctx, "nope") == BERTH_JSON_ABSENT);
	CHECK(berth_setting_type(ctx, NULL) == BERTH_JSON_ABSENT);
	CHECK_STR(berth_setting_string(ctx, "s"), "x");
	CHECK(berth_setting_string(ctx, "n") == NULL);
	CHECK(berth_setting_number(ctx, "n", &n) && n == 2.5);
	CHECK(!berth_setting_number(ctx, "s", &n));
	CHECK(berth_setting_bool(ctx, "b", &b) && !b);
	CHECK_STR(berth_setting_json(ctx, "o"), "{\"k\":[1]}");
	CHECK(berth_setting_json(ctx, "nope") == NULL);
	CHECK_STR(berth_params_json(ctx), "{}");
	CHECK(berth_param_type(ctx, "s") == BERTH_JSON_ABSENT);
	CHECK(berth_checkin(ctx, "x") == -1);
	CHECK(!berth_stop_requested(ctx));
	CHECK_STR(berth_job_id(ctx), "");
	CHECK(berth_job_revision(ctx) == 0);
	CHECK(berth_type_state(ctx) == NULL);
	berth_log_error(ctx, "boom %d\nsecond line", 42);
	CHECK_STR(c.last_error, "boom 42 second line");
	hostapi_ctx_fini(&c);

	/* parameter getters in a validate context; a non-object reads as {} */
	cJSON *arr = cJSON_Parse("[1,2]");
	hostapi_ctx_init_validate(&c, "T", &n, s, NULL, arr);
	CHECK_STR(berth_params_json(ctx), "{}");
	CHECK(berth_limits(ctx) == NULL); /* init() only */
	CHECK(berth_property(ctx, "core_url") == NULL);
	CHECK(berth_param_type(ctx, "s") == BERTH_JSON_ABSENT);
	CHECK(berth_type_state(ctx) == &n);
	hostapi_ctx_fini(&c);
	hostapi_ctx_init_validate(&c, "T", NULL, NULL, props, s);
	CHECK_STR(berth_property(ctx, "core_url"), "http://c");
	CHECK(berth_param_type(ctx, "b") == BERTH_JSON_BOOL);
	CHECK(berth_param_bool(ctx, "b", &b) && !b);
	CHECK(berth_param_type(ctx, "n") == BERTH_JSON_NUMBER);
	CHECK_STR(berth_param_json(ctx, "s"), "\"x\"");
	CHECK(berth_setting_type(ctx, "s") == BERTH_JSON_ABSENT);
	hostapi_ctx_fini(&c);

	/* a foreign ctx pointer is answered with neutral values */
	struct berth_job_ctx fake = {sizeof(fake), api, NULL, NULL};
	CHECK(berth_checkin(&fake, "x") == -1);
	CHECK_STR(berth_job_id(&fake), "");
	CHECK(berth_param_string(&fake, "s") == NULL);
	berth_log_info(&fake, "logged without a context");

	cJSON_Delete(arr);
	cJSON_Delete(props);
	cJSON_Delete(s);
}

int
main(void)
{
	test_plugins = need_env("BERTH_TEST_PLUGINS");
	plugins = need_env("BERTH_PLUGINS");
	fixtures = need_env("BERTH_FIXTURES");
	unsetenv("JOB_FAILED");

	test_hostapi();
	test_refusals_and_loads();
	test_compat_and_properties();
	test_file_checks();
	test_reload();
	test_reload_race();
	test_dir_checks();
	test_private_copy();
	test_versions();
	test_demo();
	test_hello();
	TEST_DONE();
}

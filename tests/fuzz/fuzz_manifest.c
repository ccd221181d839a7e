/* fuzz_manifest.c - fuzz target for the plugin manifest plugins.yml
 * (host/config/manifest.c): the input is written to a scratch file and
 * loaded, strict and lenient.
 *
 * Properties: a failed load leaves a message and an empty manifest (but
 * for its findings); a strict load succeeds only if the lenient one does,
 * without unknown keys; every entry of a loaded manifest has a name, a
 * file and settings that are a JSON object. */
#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "config/manifest.h"

static int
load(const char *path, bool strict, struct manifest *m)
{
	struct berr e;
	berr_clear(&e);
	memset(m, 0, sizeof(*m));
	if (manifest_load(path, strict, m, &e) < 0) {
		if (!e.msg[0])
			fuzz_fail("failed load without a message");
		if (m->entries || m->plugin_dir || m->path)
			fuzz_fail("failed load left a manifest behind");
		return -1;
	}
	if (!m->plugin_dir)
		fuzz_fail("loaded manifest without plugin_dir");
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct manifest_entry *me = &m->entries[i];
		if (!me->name || !me->file || !me->settings_json)
			fuzz_fail("entry without name, file or settings");
		cJSON *s = cJSON_Parse(me->settings_json);
		if (!cJSON_IsObject(s))
			fuzz_fail("entry settings are not a JSON object");
		cJSON_Delete(s);
	}
	return 0;
}

/* "<path>:<line>: unknown key '...": the warning strict mode turns into an
 * error (a value may contain the same words: match the whole prefix). */
static bool
is_unknown_key(const char *path, const char *w)
{
	size_t n = strlen(path);
	if (strncmp(w, path, n) != 0 || w[n] != ':')
		return false;
	w += n + 1;
	if (*w < '0' || *w > '9')
		return false;
	while (*w >= '0' && *w <= '9')
		w++;
	return strncmp(w, ": unknown key '", 15) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	const char *path = fuzz_write_file("plugins.yml", data, size);
	struct manifest lenient, strict;
	int rl = load(path, false, &lenient);
	int rs = load(path, true, &strict);
	if (rs == 0 && rl < 0)
		fuzz_fail("strict load ok, lenient load failed");
	for (size_t i = 0; rs == 0 && i < strict.n_warnings; i++)
		if (is_unknown_key(path, strict.warnings[i]))
			fuzz_fail("strict load ok with an unknown key");
	manifest_fini(&lenient);
	manifest_fini(&strict);
	return 0;
}

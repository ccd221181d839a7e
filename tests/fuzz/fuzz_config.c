/* fuzz_config.c - fuzz target for berth.yml loading (host/config/config.c
 * and its row engine config_engine.c): the input is written to a scratch
 * file and loaded, strict and lenient, without the environment overrides.
 *
 * Properties: a failed load leaves a message and an empty config (but
 * for its findings); a strict load succeeds only if the lenient one does,
 * without unknown keys; a successful load has a non-empty namespace
 * (every key is built on it). */
#include "fuzz_common.h"
#include "config/config.h"

static int
load(const char *path, bool strict, struct berth_config *cfg)
{
	struct config_options o = {.strict = strict, .apply_env = false};
	struct berr e;
	berr_clear(&e);
	int rc = config_load(path, &o, cfg, &e);
	if (rc < 0) {
		if (!e.msg[0])
			fuzz_fail("failed load without a message");
		if (cfg->path || cfg->job_loggers || cfg->protocol)
			fuzz_fail("failed load left a config behind");
		return -1;
	}
	for (size_t i = 0; i < cfg->n_warnings; i++)
		if (!cfg->warnings[i] || !cfg->warnings[i][0])
			fuzz_fail("empty warning");
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
	const char *path = fuzz_write_file("berth.yml", data, size);
	struct berth_config lenient, strict;
	int rl = load(path, false, &lenient);
	int rs = load(path, true, &strict);
	if (rs == 0 && rl < 0)
		fuzz_fail("strict load ok, lenient load failed");
	for (size_t i = 0; rs == 0 && i < strict.n_warnings; i++)
		if (is_unknown_key(path, strict.warnings[i]))
			fuzz_fail("strict load ok with an unknown key");
	if (rl == 0 && (!lenient.namespace_ || !*lenient.namespace_))
		fuzz_fail("loaded config without a namespace");
	config_fini(&lenient);
	config_fini(&strict);
	return 0;
}

/* fuzz_common.h - shared by the fuzz targets of tests/fuzz: the libFuzzer
 * entry point, a property-failure helper, and a per-process scratch
 * directory for the targets whose code under test reads a file. */
#ifndef BERTH_FUZZ_COMMON_H
#define BERTH_FUZZ_COMMON_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property of the code under test does not hold: a crash the fuzzer
 * records (and the replay test fails on). */
__attribute__((noreturn, unused)) static void
fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz_%s: %s\n", BERTH_FUZZ_NAME, what);
	abort();
}

/* Writes data to <scratch dir>/name and returns that path (static
 * storage). The directory is made once per process and removed at exit. */
static char fuzz_dir_path[64];

static void
fuzz_dir_cleanup(void)
{
	if (!fuzz_dir_path[0])
		return;
	DIR *d = opendir(fuzz_dir_path);
	for (struct dirent *de; d && (de = readdir(d));) {
		char p[512];
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", fuzz_dir_path, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(fuzz_dir_path);
}

__attribute__((unused)) static const char *
fuzz_write_file(const char *name, const uint8_t *data, size_t size)
{
	static char path[128];
	if (!fuzz_dir_path[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(fuzz_dir_path, sizeof(fuzz_dir_path), "%s/berth-fuzz-XXXXXX",
			 tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
		if (!mkdtemp(fuzz_dir_path))
			fuzz_fail("mkdtemp");
		atexit(fuzz_dir_cleanup);
	}
	snprintf(path, sizeof(path), "%s/%s", fuzz_dir_path, name);
	FILE *f = fopen(path, "wb");
	if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
		fuzz_fail("cannot write the scratch file");
	return path;
}

#endif

/* replay.c - main() of the plain (non-libFuzzer) build of every fuzz
 * target: feeds each file of the directories or files given on the command
 * line, in name order, to LLVMFuzzerTestOneInput. A target reports a broken
 * property by abort(), so a replay either finishes or crashes on the input
 * it was given (its name is printed first). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static int
replay_file(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	struct berr e;
	berr_clear(&e);
	if (util_read_file(path, 1 << 22, &buf, &len, &e) < 0) {
		fprintf(stderr, "fuzz_%s: %s\n", BERTH_FUZZ_NAME, e.msg);
		return -1;
	}
	if (getenv("BERTH_FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz_%s: %s\n", BERTH_FUZZ_NAME, path);
	LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
	free(buf);
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
	int files = 0, failed = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "fuzz_%s: cannot stat %s\n",
				BERTH_FUZZ_NAME, argv[i]);
			failed++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			failed += replay_file(argv[i]) < 0;
			files++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		if (!d) {
			failed++;
			continue;
		}
		char **names = NULL;
		size_t n = 0;
		for (struct dirent *de; (de = readdir(d));) {
			if (de->d_name[0] == '.')
				continue;
			names = xrealloc(names, (n + 1) * sizeof(*names));
			names[n++] = util_path_join(argv[i], de->d_name);
		}
		closedir(d);
		qsort(names, n, sizeof(*names), cmp_str);
		for (size_t k = 0; k < n; k++) {
			failed += replay_file(names[k]) < 0;
			files++;
			free(names[k]);
		}
		free(names);
	}
	fprintf(stderr, "fuzz_%s: replayed %d input(s), %d unreadable\n",
		BERTH_FUZZ_NAME, files, failed);
	return failed || files == 0 ? 1 : 0;
}

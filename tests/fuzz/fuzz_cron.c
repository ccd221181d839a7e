/* fuzz_cron.c - fuzz target for the cron parser and Next (host/cron.c,
 * zones in host/tz.c).
 *
 * Built with -fsanitize=fuzzer (clang) it is a libFuzzer target; built as
 * a plain program (the default, BERTH_FUZZ_REPLAY) it replays every file
 * of the directories or files given on the command line, so the corpus in
 * tests/fuzz/corpus/cron runs in every ctest (fuzz_cron_replay), also
 * under the sanitizers. Inputs that once crashed stay in the corpus.
 *
 * Properties checked for each input:
 *   - parse either succeeds or leaves a non-empty message and a zeroed
 *     schedule;
 *   - Next from a handful of instants (epoch 0, 2023, a DST change, 2099,
 *     the edges of the supported range) is 0 or strictly later, and a
 *     chain of Next calls is strictly increasing;
 *   - for UTC schedules, Next of a result minus one second gives that
 *     result again (the result matches the spec). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "periodic/cron.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT 4096
/* cron_next answers for instants up to ~year 9990 only */
#define FUZZ_CHECK_BELOW 250000000000LL

static void
fuzz_fail(const char *spec, const char *what, int64_t a, int64_t b)
{
	fprintf(stderr, "fuzz_cron: \"%s\": %s (%lld, %lld)\n", spec, what,
		(long long)a, (long long)b);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_MAX_INPUT)
		return 0;
	char *spec = xmalloc(size + 1);
	memcpy(spec, data, size);
	spec[size] = '\0';
	struct cron_schedule s;
	struct berr e;
	berr_clear(&e);
	if (cron_parse(spec, &s, &e) < 0) {
		if (!e.msg[0] || s.second || s.zone)
			fuzz_fail(spec, "error without message", 0, 0);
		free(spec);
		return 0;
	}
	static const int64_t starts[] = {
		0, 1700000000, 1352005200, 1331442000, 4102444800,
		-62135596800LL, 253087804800LL, INT64_MAX,
	};
	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		int64_t t = starts[i];
		for (int k = 0; k < 8; k++) {
			int64_t n = cron_next(&s, t);
			if (n == 0)
				break;
			if (n <= t)
				fuzz_fail(spec, "next is not later", t, n);
			/* in a DST zone robfig may return a time a later
			 * step moved off the spec; in UTC never */
			if (!s.zone && n < FUZZ_CHECK_BELOW &&
			    cron_next(&s, n - 1) != n)
				fuzz_fail(spec, "next(result - 1) differs", n,
					  cron_next(&s, n - 1));
			t = n;
		}
	}
	free(spec);
	return 0;
}

#ifdef BERTH_FUZZ_REPLAY
#include <dirent.h>
#include <sys/stat.h>

static int
replay_file(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	struct berr e;
	berr_clear(&e);
	if (util_read_file(path, 1 << 20, &buf, &len, &e) < 0) {
		fprintf(stderr, "fuzz_cron: %s\n", e.msg);
		return -1;
	}
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
			fprintf(stderr, "fuzz_cron: cannot stat %s\n", argv[i]);
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
	fprintf(stderr, "fuzz_cron: replayed %d input(s), %d unreadable\n",
		files, failed);
	return failed || files == 0 ? 1 : 0;
}
#endif

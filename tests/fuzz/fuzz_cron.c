/* fuzz_cron.c - fuzz target for the cron parser and Next (host/cron.c,
 * zones in host/tz.c).
 *
 * Built with -DBERTH_FUZZ=ON (clang) it is a libFuzzer target; built as
 * a plain program (the default, replay.c) it replays every file of the
 * directories or files given on the command line, so the corpus in
 * tests/fuzz/corpus/cron runs in every ctest (fuzz_cron_replay), also
 * under the sanitizers. Inputs that once crashed stay in the corpus
 * (tests/fuzz/fuzz.cmake).
 *
 * Properties checked for each input:
 *   - parse either succeeds or leaves a non-empty message and a zeroed
 *     schedule;
 *   - Next from a handful of instants (epoch 0, 2023, a DST change, 2099,
 *     the edges of the supported range) is 0 or strictly later, and a
 *     chain of Next calls is strictly increasing;
 *   - for UTC schedules, Next of a result minus one second gives that
 *     result again (the result matches the spec). */
#include "fuzz_common.h"
#include "periodic/cron.h"

#define FUZZ_MAX_INPUT 4096
/* cron_next answers for instants up to ~year 9990 only */
#define FUZZ_CHECK_BELOW 250000000000LL

static void
cron_fail(const char *spec, const char *what, int64_t a, int64_t b)
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
			cron_fail(spec, "error without message", 0, 0);
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
				cron_fail(spec, "next is not later", t, n);
			/* in a DST zone robfig may return a time a later
			 * step moved off the spec; in UTC never */
			if (!s.zone && n < FUZZ_CHECK_BELOW &&
			    cron_next(&s, n - 1) != n)
				cron_fail(spec, "next(result - 1) differs", n,
					  cron_next(&s, n - 1));
			t = n;
		}
	}
	free(spec);
	return 0;
}

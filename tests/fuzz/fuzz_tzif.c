/* fuzz_tzif.c - fuzz target for the TZif reader and the Go time operations
 * on its zone (host/periodic/tz.c), and cron_next in that zone
 * (host/periodic/cron.c): the input is a TZif file (v1, v2+ with a POSIX TZ
 * footer).
 *
 * Properties: the civil fields tz_break gives are in range for every
 * instant of years 1..9999 probed (the transitions of the file, their
 * neighbours, fixed instants); tz_date of those fields gives an instant
 * within a day of the probe; cron_next in the zone is 0 or later. */
#include "fuzz_common.h"
#include "periodic/cron.h"
#include "periodic/tz.h"

#define YEAR1 (-62135596800LL)
#define YEAR9999 253402300799LL

static void
probe(const struct cron_zone *z, const struct cron_schedule *s, int64_t t)
{
	if (t < YEAR1 || t > YEAR9999)
		return;
	struct tz_civil c;
	tz_break(z, t, &c);
	if (c.month < 1 || c.month > 12 || c.day < 1 || c.day > 31 ||
	    c.hour < 0 || c.hour > 23 || c.min < 0 || c.min > 59 ||
	    c.sec < 0 || c.sec > 59 || c.wday < 0 || c.wday > 6)
		fuzz_fail("tz_break gave a field out of range");
	int64_t back = tz_date(z, c.year, c.month, c.day, c.hour, c.min,
			       c.sec);
	int64_t diff = back > t ? back - t : t - back;
	/* a TZif offset is any int32: allow the span of two offsets */
	if (diff > 2LL * INT32_MAX + 86400)
		fuzz_fail("tz_date(tz_break(t)) is far from t");
	(void)cron_zone_offset(z, t);
	int64_t n = cron_next(s, t);
	if (n != 0 && n <= t) {
		fprintf(stderr, "t %lld next %lld\n", (long long)t,
			(long long)n);
		fuzz_fail("cron_next is not later");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	struct cron_zone *z = tz_from_tzif("Fuzz/Zone", data, size);
	if (!z)
		return 0;
	if (strcmp(cron_zone_name(z), "Fuzz/Zone") != 0)
		fuzz_fail("zone name lost");
	struct cron_schedule s;
	struct berr e;
	berr_clear(&e);
	if (cron_parse("0 30 2 * * *", &s, &e) < 0)
		fuzz_fail("cron_parse of a fixed spec failed");
	s.zone = z;
	static const int64_t fixed[] = {
		0, 1700000000, 1352005200, 1331442000, 4102444800,
		YEAR1, YEAR9999, -1, 2147483647, -2147483648LL,
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(*fixed); i++)
		probe(z, &s, fixed[i]);
	/* the transition instants of the data, as the reader sees them:
	 * every 8-byte big-endian word of the input, and its neighbours */
	for (size_t i = 0, k = 0; i + 8 <= size && k < 64; i += 8, k++) {
		int64_t t = 0;
		for (int b = 0; b < 8; b++)
			t = (int64_t)((uint64_t)t << 8 | data[i + b]);
		if (t < YEAR1 || t > YEAR9999)
			continue;
		probe(z, &s, t - 1);
		probe(z, &s, t);
		probe(z, &s, t + 1);
	}
	tz_free(z);
	return 0;
}

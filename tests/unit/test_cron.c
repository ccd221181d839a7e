/* test_cron.c - the cron parser and Next (host/cron.c, zones in host/tz.c)
 * against tables:
 * robfig/cron v3's own TestNext vectors (DST in New York and Sao Paulo
 * included), the examples of spec 8.2 and Harbor's schedules, names,
 * ranges, steps, the day-of-month / day-of-week OR rule, unsatisfiable
 * specs (Q18), time-zone prefixes and zone offsets, and every parser error
 * with robfig's message. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "periodic/cron.h"
#include "periodic/tz.h"
#include "testlib.h"
#include "common/util.h"

struct next_case {
	const char *spec;
	int64_t from;
	int64_t want; /* 0 = no next time */
};

static const struct next_case next_cases[] = {
	/* robfig/cron v3 spec_test.go TestNext (times as epochs) */
	{"0 0/15 * * * *", 1341845100, 1341846000},
	{"0 0/15 * * * *", 1341845940, 1341846000},
	{"0 0/15 * * * *", 1341845999, 1341846000},
	{"0 20-35/15 * * * *", 1341848700, 1341850800},
	{"0 */15 * * * *", 1341877560, 1341878400},
	{"0 20-35/15 * * * *", 1341877500, 1341879600},
	{"15/35 20-35/15 * * * *", 1341876951, 1341879615},
	{"15/35 20-35/15 1/2 * * *", 1341876951, 1341883215},
	{"15/35 20-35/15 10-12 * * *", 1341876951, 1341915615},
	{"15/35 20-35/15 1/2 */2 * *", 1341876951, 1341969615},
	{"15/35 20-35/15 * 9-20 * *", 1341876951, 1341879615},
	{"15/35 20-35/15 * 9-20 Jul *", 1341876951, 1341879615},
	{"0 0 0 9 Apr-Oct ?", 1341876900, 1344470400},
	{"0 0 0 */5 Apr,Aug,Oct Mon", 1341876900, 1343779200},
	{"0 0 0 */5 Oct Mon", 1341876900, 1349049600},
	{"0 0 0 * Feb Mon", 1341876900, 1359936000},
	{"0 0 0 * Feb Mon/2", 1341876900, 1359676800},
	{"0 * * * * *", 1356998385, 1356998400},
	{"0 0 0 29 Feb ?", 1341876900, 1456704000},
	/* EST -> EDT: 02:30 does not exist on 2012-03-11 */
	{"TZ=America/New_York 0 30 2 11 Mar ?", 1331442000, 1362983400},
	{"TZ=America/New_York 0 0 * * * ?", 1331442000, 1331445600},
	{"TZ=America/New_York 0 0 * * * ?", 1331445600, 1331449200},
	{"TZ=America/New_York 0 0 * * * ?", 1331449200, 1331452800},
	{"TZ=America/New_York 0 0 * * * ?", 1331452800, 1331456400},
	{"CRON_TZ=America/New_York 0 0 * * * ?", 1331445600, 1331449200},
	{"TZ=America/New_York 0 0 1 * * ?", 1331442000, 1331445600},
	{"TZ=America/New_York 0 0 1 * * ?", 1331445600, 1331528400},
	{"TZ=America/New_York 0 0 2 * * ?", 1331442000, 1331532000},
	/* EDT -> EST: 01:00-01:59 happens twice; robfig fires in both */
	{"TZ=America/New_York 0 30 2 04 Nov ?", 1352001600, 1352014200},
	{"TZ=America/New_York 0 30 1 04 Nov ?", 1352007900, 1352010600},
	{"TZ=America/New_York 0 0 * * * ?", 1352001600, 1352005200},
	{"TZ=America/New_York 0 0 * * * ?", 1352005200, 1352008800},
	{"TZ=America/New_York 0 0 * * * ?", 1352008800, 1352012400},
	{"TZ=America/New_York 0 0 1 * * ?", 1352001600, 1352005200},
	{"TZ=America/New_York 0 0 1 * * ?", 1352005200, 1352008800},
	{"TZ=America/New_York 0 0 1 * * ?", 1352008800, 1352095200},
	{"TZ=America/New_York 0 0 2 * * ?", 1352001600, 1352012400},
	{"TZ=America/New_York 0 0 2 * * ?", 1352012400, 1352098800},
	{"TZ=America/New_York 0 0 3 * * ?", 1352001600, 1352016000},
	{"TZ=America/New_York 0 0 3 * * ?", 1352016000, 1352102400},
	{"0 0 0 30 Feb ?", 1341876900, 0},
	{"0 0 0 31 Apr ?", 1341876900, 0},
	{"TZ=America/New_York 0 0 3 3 * ?", 1352001600, 1354521600},
	/* robfig issue 157: midnight skipped by DST in Sao Paulo */
	{"TZ=America/Sao_Paulo 0 0 9 10 * ?", 1539766800, 1541847600},
	{"TZ=America/Sao_Paulo 0 0 9 22 * ?", 1518602400, 1519300800},

	/* spec 8.2 and Harbor: daily execution sweep, hourly schedules */
	{"0 0 0 * * *", 1700000000, 1700006400},
	{"0 0 0 * * *", 1700006400, 1700092800},
	{"0 0 * * * *", 1700000000, 1700002800},
	{"0 0 * * * *", 1700002800, 1700006400},
	{"*/2 * * * * *", 1700000000, 1700000002},
	{"*/2 * * * * *", 1700000001, 1700000002},
	{"* * * * * *", 1700000000, 1700000001},
	{"0 */15 * * * *", 1700000000, 1700000100},
	{"0 */15 * * * *", 1700000100, 1700001000},
	/* names, case-insensitive */
	{"30 5 4 1 jan *", 1700000000, 1704081930},
	{"30 5 4 1 jan *", 1704081930, 1735704330},
	{"0 0 12 * JAN-mar MON-fri", 1700000000, 1704110400},
	{"0 0 12 * JAN-mar MON-fri", 1704110400, 1704196800},
	{"0 0 12 * Dec sun", 1700000000, 1701604800},
	{"0 0 12 * Dec sun", 1701604800, 1702209600},
	{"0 0 0 ? * SAT", 1700000000, 1700265600},
	{"0 0 0 ? * SAT", 1700265600, 1700870400},
	{"0 0 6 * * 0", 1700000000, 1700373600},
	{"0 0 6 * * 6", 1700000000, 1700287200},
	/* lists, ranges, steps, N/step = N-max/step */
	{"0 0 0 1,15 * *", 1700000000, 1700006400},
	{"0 0 0 1,15 * *", 1700006400, 1701388800},
	{"5/20 * * * * *", 1700000000, 1700000005},
	{"5/20 * * * * *", 1700000005, 1700000025},
	{"0 10-20/5 * * * *", 1700000000, 1700000100},
	{"0 10-20/5 * * * *", 1700000100, 1700000400},
	{"0 0 0 1 1/3 *", 1700000000, 1704067200},
	{"0 0 0 1 1/3 *", 1704067200, 1711929600},
	{"0 0 0 * * */2", 1700000000, 1700092800},
	{"0 0 0 * * */2", 1700092800, 1700265600},
	/* OR rule: both restricted -> either matches */
	{"0 0 0 1 * mon", 1700000000, 1700438400},
	{"0 0 0 1 * mon", 1700438400, 1701043200},
	{"0 0 0 13 * fri", 1700000000, 1700179200},
	{"0 0 0 13 * fri", 1700179200, 1700784000},
	/* a step > 1 clears the star bit: OR again */
	{"0 0 0 */10 * sun", 1700000000, 1700352000},
	{"0 0 0 */10 * sun", 1700352000, 1700524800},
	/* month ends, leap day, year end */
	{"0 0 0 29 2 *", 1700000000, 1709164800},
	{"0 0 0 29 2 *", 1709164800, 1835395200},
	{"0 0 0 31 * *", 1700000000, 1703980800},
	{"0 0 0 31 * *", 1703980800, 1706659200},
	{"59 59 23 31 12 *", 1700000000, 1704067199},
	{"59 59 23 31 12 *", 1704067199, 1735689599},
	/* unsatisfiable: Feb 30, an empty list (Q18: returns at once) */
	{"0 0 0 30 2 *", 1700000000, 0},
	{"0 0 0 31 4,6,9,11 *", 1700000000, 0},
	{", * * * * *", 1700000000, 0},
	{"0 0 0 ,,, * *", 1700000000, 0},
	/* zones: the same wall clock in UTC and with a prefix */
	{"TZ=UTC 0 0 0 * * *", 1700000000, 1700006400},
	{"TZ=Local 0 0 0 * * *", 1700000000, 1700006400},
	{"TZ=Asia/Kolkata 0 0 0 * * *", 1700000000, 1700073000},
	{"CRON_TZ=Europe/Berlin 0 0 9 * * *", 1700000000, 1700035200},
	{"TZ=Etc/GMT-14 0 0 0 * * *", 1700000000, 1700042400},
	/* a zone past its last listed transition (the POSIX footer) */
	{"TZ=Europe/Berlin 0 0 12 1 7 *", 4102444800, 4118119200},
};

struct err_case {
	const char *spec;
	const char *msg;
};

static const struct err_case err_cases[] = {
	{"", "empty spec string"},
	{"0 0 * * *", "expected exactly 6 fields, found 5: [0 0 * * *]"},
	{"0 0 0 * * * 2024",
	 "expected exactly 6 fields, found 7: [0 0 0 * * * 2024]"},
	{"   ", "expected exactly 6 fields, found 0: []"},
	{"@daily", "parser does not accept descriptors: @daily"},
	{"@every 1h", "parser does not accept descriptors: @every 1h"},
	{"TZ=UTC @hourly ", "parser does not accept descriptors: @hourly"},
	{" @daily", "expected exactly 6 fields, found 1: [@daily]"},
	{"0 0 0 * * 7", "end of range (7) above maximum (6): 7"},
	{"60 * * * * *", "end of range (60) above maximum (59): 60"},
	{"0 60 * * * *", "end of range (60) above maximum (59): 60"},
	{"0 0 24 * * *", "end of range (24) above maximum (23): 24"},
	{"0 0 0 0 * *", "beginning of range (0) below minimum (1): 0"},
	{"0 0 0 32 * *", "end of range (32) above maximum (31): 32"},
	{"0 0 0 * 0 *", "beginning of range (0) below minimum (1): 0"},
	{"0 0 0 * 13 *", "end of range (13) above maximum (12): 13"},
	{"0 0 0 * * 5-3",
	 "beginning of range (5) beyond end of range (3): 5-3"},
	{"0 0 0 * dec-jan *",
	 "beginning of range (12) beyond end of range (1): dec-jan"},
	{"*/0 * * * * *", "step of range should be a positive number: */0"},
	{"0 0 0 1-5/0 * *",
	 "step of range should be a positive number: 1-5/0"},
	{"0 1-2-3 * * * *", "too many hyphens: 1-2-3"},
	{"0 */2/3 * * * *", "too many slashes: */2/3"},
	{"x * * * * *",
	 "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid "
	 "syntax"},
	{"0 0 0 * * funday",
	 "failed to parse int from funday: strconv.Atoi: parsing \"funday\": "
	 "invalid syntax"},
	{"0 0 0 * jan-x *",
	 "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid "
	 "syntax"},
	{"*/ * * * * *",
	 "failed to parse int from : strconv.Atoi: parsing \"\": invalid "
	 "syntax"},
	{"-1 * * * * *",
	 "failed to parse int from : strconv.Atoi: parsing \"\": invalid "
	 "syntax"},
	{"*/-1 * * * * *", "negative number (-1) not allowed: -1"},
	{"99999999999999999999 * * * * *",
	 "failed to parse int from 99999999999999999999: strconv.Atoi: "
	 "parsing \"99999999999999999999\": value out of range"},
	{"0 0 0 L * *",
	 "failed to parse int from L: strconv.Atoi: parsing \"L\": invalid "
	 "syntax"},
	{"TZ=Mars/Olympus 0 0 0 * * *",
	 "provided bad location Mars/Olympus: unknown time zone "
	 "Mars/Olympus"},
	{"TZ=../etc/passwd 0 0 0 * * *",
	 "provided bad location ../etc/passwd: time: invalid location name"},
	{"TZ=/etc/localtime 0 0 0 * * *",
	 "provided bad location /etc/localtime: time: invalid location "
	 "name"},
};

/* Specs that parse (the spec 8.2 vocabulary). */
static const char *const ok_specs[] = {
	"0 0 0 * * *",         "0 0 * * * *",        "? ? ? ? ? ?",
	"0 0 0 * * 0-6",       "0 0 0 * * sun-sat",  "0 0 0 * JAN-DEC *",
	"+5 * * * * *",        "007 * * * * *",      "0 0 0 * * *-3",
	"0\t0\t0 * *  *",      "0 0 0 * * * ",       "*/1 * * * * *",
	"TZ= 0 0 0 * * *",     "CRON_TZ=UTC * * * * * *",
	"0 0 0 1,,15 * *",     "0 0 0 * * Mon,wed,FRI",
};

static void
test_next_table(void)
{
	for (size_t i = 0; i < ARRAY_LEN(next_cases); i++) {
		const struct next_case *c = &next_cases[i];
		struct cron_schedule s;
		struct berr e;
		berr_clear(&e);
		int rc = cron_parse(c->spec, &s, &e);
		CHECK_MSG(rc == 0, "%s: %s", c->spec, e.msg);
		if (rc < 0)
			continue;
		int64_t got = cron_next(&s, c->from);
		CHECK_MSG(got == c->want,
			  "%s from %" PRId64 ": got %" PRId64 ", want %" PRId64,
			  c->spec, c->from, got, c->want);
	}
}

static void
test_errors(void)
{
	for (size_t i = 0; i < ARRAY_LEN(err_cases); i++) {
		struct cron_schedule s;
		struct berr e;
		berr_clear(&e);
		int rc = cron_parse(err_cases[i].spec, &s, &e);
		CHECK_MSG(rc < 0, "\"%s\" parsed", err_cases[i].spec);
		CHECK_STR(e.msg, err_cases[i].msg);
		CHECK(s.zone == NULL && s.second == 0);
	}
	for (size_t i = 0; i < ARRAY_LEN(ok_specs); i++) {
		struct cron_schedule s;
		struct berr e;
		berr_clear(&e);
		CHECK_MSG(cron_parse(ok_specs[i], &s, &e) == 0, "\"%s\": %s",
			  ok_specs[i], e.msg);
	}
}

/* Bits and the star bit as robfig builds them. */
static void
test_bits(void)
{
	struct cron_schedule s;
	struct berr e;
	CHECK(cron_parse("5/20 1-3,7 * ? jan,MAR */2", &s, &e) == 0);
	CHECK(s.second == (UINT64_C(1) << 5 | UINT64_C(1) << 25 |
			   UINT64_C(1) << 45));
	CHECK(s.minute == (UINT64_C(0xe) | UINT64_C(1) << 7));
	CHECK(s.hour == (UINT64_C(0xffffff) | CRON_STAR_BIT));
	CHECK(s.dom == (UINT64_C(0xfffffffe) | CRON_STAR_BIT));
	CHECK(s.month == (UINT64_C(1) << 1 | UINT64_C(1) << 3));
	CHECK(s.dow == (UINT64_C(1) << 0 | UINT64_C(1) << 2 |
			UINT64_C(1) << 4 | UINT64_C(1) << 6));
	/* "*-3" is a star (robfig ignores what follows the star) */
	CHECK(cron_parse("0 0 0 * * *-3", &s, &e) == 0);
	CHECK(s.dow == (UINT64_C(0x7f) | CRON_STAR_BIT));
	/* a step of 1 keeps the star bit, a step of 2 drops it */
	CHECK(cron_parse("0 0 0 */1 * */2", &s, &e) == 0);
	CHECK(s.dom & CRON_STAR_BIT);
	CHECK(!(s.dow & CRON_STAR_BIT));
}

/* Every result of a run of Next matches the spec and is increasing; Feb
 * 30 and empty lists come back at once (no five-year crawl, Q18). */
static void
test_sequences(void)
{
	struct cron_schedule s;
	struct berr e;
	CHECK(cron_parse("*/7 */13 1-23/5 * * mon-fri", &s, &e) == 0);
	int64_t t = 1700000000;
	for (int i = 0; i < 2000; i++) {
		int64_t n = cron_next(&s, t);
		CHECK(n > t);
		time_t tt = (time_t)n;
		struct tm tm;
		gmtime_r(&tt, &tm);
		CHECK(tm.tm_sec % 7 == 0 && tm.tm_min % 13 == 0 &&
		      tm.tm_hour % 5 == 1 && tm.tm_wday >= 1 &&
		      tm.tm_wday <= 5);
		t = n;
	}
	/* a horizon of 240 s holds every second of "* * * * * *" */
	CHECK(cron_parse("* * * * * *", &s, &e) == 0);
	int count = 0;
	for (t = cron_next(&s, 1700000000); t && t < 1700000240;
	     t = cron_next(&s, t))
		count++;
	CHECK(count == 239);

	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	const char *never[] = {"0 0 0 30 2 *", ", * * * * *",
			       "* , * * * *", "0 0 0 31 2,4 *",
			       "TZ=America/New_York 0 0 0 30 2 *"};
	for (size_t i = 0; i < ARRAY_LEN(never); i++) {
		CHECK(cron_parse(never[i], &s, &e) == 0);
		CHECK(cron_next(&s, 1700000000) == 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 +
		    (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	CHECK_MSG(ms < 500, "unsatisfiable specs took %.0f ms", ms);

	/* out-of-range instants give no answer instead of overflowing */
	CHECK(cron_parse("* * * * * *", &s, &e) == 0);
	CHECK(cron_next(&s, INT64_MAX) == 0);
	CHECK(cron_next(&s, INT64_MIN) == 0);
	CHECK(cron_next(NULL, 0) == 0);
	CHECK(cron_next(&s, 0) == 1);
}

/* Zone offsets against the system tz database as Python's zoneinfo reads
 * it (values taken from it), before and after the last transition. */
static void
test_zones(void)
{
	static const struct {
		const char *zone;
		int64_t t;
		int off;
	} z[] = {
		{"America/New_York", 0, -18000},
		{"America/New_York", 1352005200, -14400},
		{"America/New_York", 1700000000, -18000},
		{"America/New_York", 2000000000, -14400},
		{"America/New_York", 4102444800, -18000},
		{"America/New_York", 4118000000, -14400},
		{"Europe/Berlin", 3500000000, 3600},
		{"Europe/Berlin", 2000000000, 7200},
		{"Europe/Berlin", 4118000000, 7200},
		{"Europe/Berlin", 4102444800, 3600},
		{"Australia/Sydney", 4102444800, 39600},
		{"Australia/Sydney", 4118000000, 36000},
		{"Asia/Kolkata", 1700000000, 19800},
		{"Etc/GMT-14", 1700000000, 50400},
		{"Europe/London", 1700000000, 0},
		{"Europe/London", 2000000000, 3600},
	};
	for (size_t i = 0; i < ARRAY_LEN(z); i++) {
		char spec[128];
		snprintf(spec, sizeof(spec), "TZ=%s * * * * * *", z[i].zone);
		struct cron_schedule s;
		struct berr e;
		berr_clear(&e);
		CHECK_MSG(cron_parse(spec, &s, &e) == 0, "%s", e.msg);
		CHECK_MSG(cron_zone_offset(s.zone, z[i].t) == z[i].off,
			  "%s at %" PRId64 ": %d, want %d", z[i].zone, z[i].t,
			  cron_zone_offset(s.zone, z[i].t), z[i].off);
		CHECK_STR(cron_zone_name(s.zone), z[i].zone);
	}
	/* zones are cached: the same object twice */
	struct cron_schedule a, b;
	struct berr e;
	CHECK(cron_parse("TZ=Europe/Paris * * * * * *", &a, &e) == 0);
	CHECK(cron_parse("CRON_TZ=Europe/Paris 0 0 0 * * *", &b, &e) == 0);
	CHECK(a.zone && a.zone == b.zone);
	CHECK(cron_parse("TZ=UTC * * * * * *", &a, &e) == 0);
	CHECK(a.zone == NULL);
	CHECK_STR(cron_zone_name(NULL), "UTC");
}

static long
rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Issue 11: 20,000 distinct zone names, invalid ones and aliases of one
 * zone file, keep the cache bounded: at most TZ_NAME_CACHE names, one zone
 * per file. (Before, every alias was a new cached zone: +31 MiB.) */
static void
test_zone_cache_bounded(void)
{
	long before = rss_kib();
	size_t names0, zones0;
	tz_cache_counts(&names0, &zones0);
	char spec[300];
	struct cron_schedule s;
	struct berr e;
	for (int i = 0; i < 20000; i++) {
		snprintf(spec, sizeof(spec), "TZ=Mars/Base%d * * * * * *", i);
		berr_clear(&e);
		CHECK(cron_parse(spec, &s, &e) < 0);
	}
	size_t names, zones;
	tz_cache_counts(&names, &zones);
	CHECK(names == names0 && zones == zones0);
	const struct cron_zone *paris = NULL;
	for (int i = 0; i < 20000; i++) {
		/* Europe/Paris spelled with a distinct run of "/" and "./" */
		char mid[64] = "";
		size_t n = 0;
		for (int k = 0; k < 15; k++)
			n += (size_t)snprintf(mid + n, sizeof(mid) - n, "%s",
					      (i >> k) & 1 ? "./" : "/");
		snprintf(spec, sizeof(spec), "TZ=Europe/%sParis * * * * * *",
			 mid);
		berr_clear(&e);
		CHECK_MSG(cron_parse(spec, &s, &e) == 0, "%s: %s", spec,
			  e.msg);
		if (!paris)
			paris = s.zone;
		CHECK(s.zone == paris);
	}
	tz_cache_counts(&names, &zones);
	CHECK_MSG(names <= TZ_NAME_CACHE, "%zu names", names);
	CHECK_MSG(zones <= zones0 + 1, "%zu zones, %zu before", zones,
		  zones0);
	/* the LRU still answers the recent and the frequent names */
	CHECK(cron_parse("TZ=Europe/Paris * * * * * *", &s, &e) == 0);
	CHECK(s.zone == paris);
	CHECK(cron_parse("TZ=America/New_York * * * * * *", &s, &e) == 0);
	CHECK(cron_zone_offset(s.zone, 1700000000) == -18000);
	printf("zone cache: %zu names, %zu zones; RSS %ld -> %ld KiB\n",
	       names, zones, before, rss_kib());
}

int
main(void)
{
	test_next_table();
	test_errors();
	test_bits();
	test_sequences();
	test_zones();
	test_zone_cache_bounded();
	TEST_DONE();
}

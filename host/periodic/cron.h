/* cron.h - cron specs exactly as Harbor's Go jobservice reads them: the
 * robfig/cron v3 parser configured with Second | Minute | Hour | Dom |
 * Month | Dow (spec 8.2), and its SpecSchedule.Next.
 *
 *   spec   = [ ("TZ=" | "CRON_TZ=") zone " " ] field{6}
 *   field  = range { "," range }
 *   range  = ( "*" | "?" | value [ "-" value ] ) [ "/" step ]
 *
 * Fields: second 0-59, minute 0-59, hour 0-23, day of month 1-31, month
 * 1-12 (jan-dec), day of week 0-6 (sun-sat; 7 is out of range). Names are
 * case-insensitive. "N/step" means "N-max/step". When the day-of-month or
 * the day-of-week field holds a `*` or `?` (without a step > 1) both must
 * match, otherwise either one (the robfig "star bit"). Descriptors
 * (@daily, @every 1h) and 5- or 7-field specs are refused. Error messages
 * are robfig's, word for word.
 *
 * Time zones: without a prefix the schedule runs in UTC (Go's time.Local
 * in Harbor's containers, and the enqueuer hands Next UTC times). A zone
 * name is read from the system tz database (/usr/share/zoneinfo, or
 * $ZONEINFO first, as Go does) by a small TZif reader in tz.c, including
 * the POSIX TZ footer for dates past the last listed transition. Nothing
 * touches the TZ environment variable or the C library's zone state, so
 * every function here is thread-safe; loaded zones are cached for the
 * life of the process. Local times that do not exist or exist twice
 * resolve exactly as Go's time.Date does, so DST behaves as in robfig's
 * own tests: a time inside a spring-forward gap is skipped that day
 * ("0 0 2 * * ?" in New York fires on the next day), and a wall-clock
 * time inside the repeated hour of a fall-back fires at both occurrences
 * ("0 0 1 * * ?" runs twice that night).
 * "TZ=Local" and "TZ=UTC" are UTC: in Go a Local schedule is evaluated in
 * the location of the time passed to Next, which the enqueuer makes UTC. */
#ifndef BERTH_CRON_H
#define BERTH_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct cron_zone;

struct cron_schedule {
	/* bit n set = value n matches; bit 63 = the field had a `*`/`?` */
	uint64_t second, minute, hour, dom, month, dow;
	const struct cron_zone *zone; /* NULL = UTC; owned by the cache */
};

#define CRON_STAR_BIT (UINT64_C(1) << 63)

/* Parses spec. Returns 0, or -1 with e->msg = robfig's message, e.g.
 *   "expected exactly 6 fields, found 5: [0 0 * * *]"
 *   "end of range (60) above maximum (59): 60"
 *   "parser does not accept descriptors: @daily"
 *   "provided bad location Mars/Base: unknown time zone Mars/Base". */
int cron_parse(const char *spec, struct cron_schedule *out, struct berr *e);

/* The first epoch strictly after t (whole seconds) that matches s,
 * searching at most five calendar years ahead as robfig does; 0 when
 * there is none (e.g. "0 0 0 30 2 *"). Never loops unbounded. */
int64_t cron_next(const struct cron_schedule *s, int64_t t);

/* The zone's UTC offset in seconds at epoch t (0 for UTC / NULL). The
 * zone functions are defined in tz.c. */
int cron_zone_offset(const struct cron_zone *z, int64_t t);
/* The name the zone was first loaded by ("UTC" for NULL): names of the
 * same zone file share one zone. */
const char *cron_zone_name(const struct cron_zone *z);

#endif

/* tz.h - time zones for the cron schedules: a reader of the system tz
 * database (TZif files plus their POSIX TZ footer) and the few Go time
 * operations cron_next is written in terms of, evaluated in such a zone.
 * Used by cron.c; other modules see zones only through cron.h (struct
 * cron_zone, cron_zone_offset, cron_zone_name, which tz.c defines).
 *
 * A NULL zone is UTC everywhere. Loaded zones are cached for the life of
 * the process and never freed, one per zone file (so at most as many as
 * the tz database has files); the names that led to them are kept in an
 * LRU of TZ_NAME_CACHE entries, and names that load nothing are not kept.
 * Nothing touches TZ or the C library's zone state, so every function
 * here is thread-safe. */
#ifndef BERTH_TZ_H
#define BERTH_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct cron_zone;

#define TZ_NAME_CACHE 64

/* The fields of an instant in a zone (Go's Time.Date, Clock, Weekday). */
struct tz_civil {
	int64_t year;
	int month, day, hour, min, sec, wday;
};

/* Go's LoadLocation for a name other than "", "UTC" and "Local": the zone
 * from $ZONEINFO or the usual zoneinfo directories, cached. NULL with e set
 * ("unknown time zone Mars/Base", "time: invalid location name", ...). */
const struct cron_zone *tz_load(const char *name, struct berr *e);

/* How many names and zones the cache holds (tests). */
void tz_cache_counts(size_t *names, size_t *zones);
/* A zone from TZif data in memory, outside the cache (free it with
 * tz_free); NULL when the data is malformed. For the fuzz target
 * tests/fuzz/fuzz_tzif.c; the daemon goes through tz_load. */
struct cron_zone *tz_from_tzif(const char *name, const void *data,
			       size_t len);
void tz_free(struct cron_zone *z);

/* The civil fields of epoch t in zone z. */
void tz_break(const struct cron_zone *z, int64_t t, struct tz_civil *c);

/* time.Date(y, mo, d, h, mi, s, 0, z): out-of-range fields normalised as
 * Go does, and a local time in a DST gap or overlap resolved by Go's
 * two-step offset guess. */
int64_t tz_date(const struct cron_zone *z, int64_t y, int64_t mo, int64_t d,
		int64_t h, int64_t mi, int64_t s);

/* a mod b rounded towards negative infinity (b > 0: in [0, b)). */
int64_t tz_floor_mod(int64_t a, int64_t b);

#endif

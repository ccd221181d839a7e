/* tz.c - the time zones of cron specs (TZ=/CRON_TZ=) and the Go time
 * operations Next is written in terms of; see tz.h, and cron.c for Next.
 *
 * Times are whole epoch seconds. The Go time operations are reproduced on
 * top of a zone "lookup" that returns, like Go's Location.lookup, the
 * offset in force at an instant and the bounds of the period that offset
 * is valid for:
 *   - fields of an instant (Year, Month, ..., Weekday) = civil date of
 *     sec + offset (tz_break);
 *   - time.Date(y, m, d, h, mi, s, loc) = Go's normalisation, then Go's
 *     two-step offset guess (this is what decides where a local time in a
 *     DST gap or overlap lands) (tz_date).
 * Zone data: the 64-bit section of a TZif v2+ file (the 32-bit one for v1)
 * and the POSIX TZ footer for instants after the last transition, exactly
 * as Go's LoadLocationFromTZData / tzset use them (leap seconds ignored,
 * as Go does). */
#include "periodic/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "periodic/cron.h"

/* ---- small time arithmetic -------------------------------------------- */

#define SECS_PER_DAY 86400

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

int64_t
tz_floor_mod(int64_t a, int64_t b)
{
	return a - floor_div(a, b) * b;
}

/* Days since 1970-01-01 of y-m-d (m in 1..12; d may be out of range and
 * counts linearly). H. Hinnant's days_from_civil. */
static int64_t
days_from_civil(int64_t y, int m, int64_t d)
{
	y -= m <= 2;
	int64_t era = floor_div(y, 400);
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468 + (d - 1);
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static bool
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int m, int64_t y)
{
	static const int dim[] = {31, 28, 31, 30, 31, 30,
				  31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* ---- zones ------------------------------------------------------------ */

#define ALPHA INT64_MIN
#define OMEGA INT64_MAX

enum rule_kind { RULE_JULIAN, RULE_DOY, RULE_MWD };

struct tz_rule {
	enum rule_kind kind;
	int day, week, mon;
	int time; /* seconds after local midnight */
};

/* A parsed POSIX TZ string (Go's tzset). */
struct tz_extend {
	int std_off; /* seconds east of UTC */
	bool has_dst;
	int dst_off;
	struct tz_rule start, end;
};

struct cron_zone {
	struct cron_zone *next;
	char *name;     /* the name it was first loaded by */
	dev_t dev;      /* identity of its file */
	ino_t ino;
	size_t ntx;
	int64_t *tx_when;
	uint8_t *tx_idx;
	size_t ntypes;
	int32_t *type_off;
	uint8_t *type_dst;
	size_t first_zone;
	bool has_extend;
	struct tz_extend ext;
};

/* Zones are cached in two levels under zone_lock. The zones themselves,
 * one per zone file (device and inode), are never freed, since schedules
 * borrow them: there are at most as many as the tz database has files
 * (about 600 on Debian), however many names reach them ("Europe/Paris",
 * "Europe/./Paris", "Europe//Paris", ...). The names, which a client can
 * vary without bound, sit in a fixed LRU of TZ_NAME_CACHE entries; a name
 * that misses it costs one read of the file. Names that load no zone are
 * never cached. */
static pthread_mutex_t zone_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cron_zone *zone_cache;

struct name_entry {
	char *name;
	const struct cron_zone *zone;
	uint64_t used;
};
static struct name_entry name_cache[TZ_NAME_CACHE];
static uint64_t name_clock;

/* tzsetNum: digits in [min, max]. Returns chars consumed, 0 on failure. */
static size_t
tz_num(const char *s, int min, int max, int *out)
{
	size_t i = 0;
	int num = 0;
	if (!s[0])
		return 0;
	while (s[i] >= '0' && s[i] <= '9') {
		num = num * 10 + (s[i] - '0');
		if (num > max)
			return 0;
		i++;
	}
	if (i == 0 || num < min)
		return 0;
	*out = num;
	return i;
}

/* tzsetOffset: [+-]hh[:mm[:ss]]. */
static size_t
tz_offset(const char *s, int *out)
{
	size_t i = 0;
	bool neg = false;
	if (!s[0])
		return 0;
	if (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-';
		i++;
	}
	int v, off;
	size_t n = tz_num(s + i, 0, 24 * 7, &v);
	if (!n)
		return 0;
	i += n;
	off = v * 3600;
	for (int part = 0; part < 2 && s[i] == ':'; part++) {
		n = tz_num(s + i + 1, 0, 59, &v);
		if (!n)
			return 0;
		i += 1 + n;
		off += part == 0 ? v * 60 : v;
	}
	*out = neg ? -off : off;
	return i;
}

/* tzsetName: <...> or at least three characters up to a digit/,/+/-. */
static size_t
tz_name(const char *s)
{
	if (!s[0])
		return 0;
	if (s[0] == '<') {
		const char *gt = strchr(s, '>');
		return gt ? (size_t)(gt - s) + 1 : 0;
	}
	size_t i = 0;
	while (s[i] && !strchr("0123456789,-+", s[i]))
		i++;
	return i < 3 ? 0 : i;
}

static size_t
tz_rule_parse(const char *s, struct tz_rule *r)
{
	size_t i = 0, n;
	memset(r, 0, sizeof(*r));
	if (s[0] == 'J') {
		n = tz_num(s + 1, 1, 365, &r->day);
		if (!n)
			return 0;
		r->kind = RULE_JULIAN;
		i = 1 + n;
	} else if (s[0] == 'M') {
		n = tz_num(s + 1, 1, 12, &r->mon);
		if (!n || s[1 + n] != '.')
			return 0;
		i = 2 + n;
		n = tz_num(s + i, 1, 5, &r->week);
		if (!n || s[i + n] != '.')
			return 0;
		i += n + 1;
		n = tz_num(s + i, 0, 6, &r->day);
		if (!n)
			return 0;
		i += n;
		r->kind = RULE_MWD;
	} else {
		n = tz_num(s, 0, 365, &r->day);
		if (!n)
			return 0;
		r->kind = RULE_DOY;
		i = n;
	}
	if (s[i] != '/') {
		r->time = 2 * 3600;
		return i;
	}
	n = tz_offset(s + i + 1, &r->time);
	return n ? i + 1 + n : 0;
}

/* Parses a POSIX TZ string the way Go's tzset does; false when Go would
 * not use it. */
static bool
tz_extend_parse(const char *s, struct tz_extend *x)
{
	memset(x, 0, sizeof(*x));
	size_t n = tz_name(s);
	if (!n)
		return false;
	s += n;
	int off;
	n = tz_offset(s, &off);
	if (!n)
		return false;
	s += n;
	x->std_off = -off;
	if (!s[0] || s[0] == ',')
		return true; /* no daylight saving time */
	n = tz_name(s);
	if (!n)
		return false;
	s += n;
	if (!s[0] || s[0] == ',') {
		x->dst_off = x->std_off + 3600;
	} else {
		n = tz_offset(s, &off);
		if (!n)
			return false;
		s += n;
		x->dst_off = -off;
	}
	x->has_dst = true;
	if (!s[0])
		s = ",M3.2.0,M11.1.0"; /* tzcode's default rules */
	if (s[0] != ',' && s[0] != ';')
		return false;
	s++;
	n = tz_rule_parse(s, &x->start);
	if (!n || s[n] != ',')
		return false;
	s += n + 1;
	n = tz_rule_parse(s, &x->end);
	return n && !s[n];
}

/* Go's tzruleTime: seconds after the start of the year (UTC). */
static int64_t
tz_rule_time(int64_t year, const struct tz_rule *r, int off)
{
	int64_t s = 0;
	static const int before[] = {0,   31,  59,  90,  120, 151,
				     181, 212, 243, 273, 304, 334};
	switch (r->kind) {
	case RULE_JULIAN:
		s = (int64_t)(r->day - 1) * SECS_PER_DAY;
		if (is_leap(year) && r->day >= 60)
			s += SECS_PER_DAY;
		break;
	case RULE_DOY:
		s = (int64_t)r->day * SECS_PER_DAY;
		break;
	case RULE_MWD: {
		/* weekday of the first day of r->mon */
		int64_t first = days_from_civil(year, r->mon, 1);
		int dow = (int)tz_floor_mod(first + 4, 7);
		int d = r->day - dow;
		if (d < 0)
			d += 7;
		for (int i = 1; i < r->week; i++) {
			if (d + 7 >= days_in_month(r->mon, year))
				break;
			d += 7;
		}
		d += before[r->mon - 1];
		if (is_leap(year) && r->mon > 2)
			d++;
		s = (int64_t)d * SECS_PER_DAY;
		break;
	}
	}
	return s + r->time - off;
}

/* Go's tzset for an instant past the last transition. */
static void
tz_extend_lookup(const struct tz_extend *x, int64_t last_tx, int64_t sec,
		 int *off, int64_t *start, int64_t *end)
{
	if (!x->has_dst) {
		*off = x->std_off;
		*start = last_tx;
		*end = OMEGA;
		return;
	}
	int64_t days = floor_div(sec, SECS_PER_DAY);
	int64_t year;
	int m, d;
	civil_from_days(days, &year, &m, &d);
	int64_t soy = days_from_civil(year, 1, 1);
	int64_t ysec = (days - soy) * SECS_PER_DAY + sec % SECS_PER_DAY;
	int64_t abs = soy * SECS_PER_DAY;
	int std_off = x->std_off, dst_off = x->dst_off;
	int64_t s0 = tz_rule_time(year, &x->start, std_off);
	int64_t s1 = tz_rule_time(year, &x->end, dst_off);
	if (s1 < s0) {
		int64_t ts = s0;
		s0 = s1;
		s1 = ts;
		int to = std_off;
		std_off = dst_off;
		dst_off = to;
	}
	if (ysec < s0) {
		*off = std_off;
		*start = abs;
		*end = s0 + abs;
	} else if (ysec >= s1) {
		*off = std_off;
		*start = s1 + abs;
		*end = abs + 365LL * SECS_PER_DAY; /* sic, as Go */
	} else {
		*off = dst_off;
		*start = s0 + abs;
		*end = s1 + abs;
	}
}

/* Go's Location.lookup: offset at sec and the [start, end) it holds. */
static void
zone_lookup(const struct cron_zone *z, int64_t sec, int *off, int64_t *start,
	    int64_t *end)
{
	if (!z || z->ntypes == 0) {
		*off = 0;
		*start = ALPHA;
		*end = OMEGA;
		return;
	}
	if (sec < z->tx_when[0]) {
		*off = z->type_off[z->first_zone];
		*start = ALPHA;
		*end = z->tx_when[0];
		return;
	}
	size_t lo = 0, hi = z->ntx;
	*end = OMEGA;
	while (hi - lo > 1) {
		size_t m = lo + (hi - lo) / 2;
		if (sec < z->tx_when[m]) {
			*end = z->tx_when[m];
			hi = m;
		} else {
			lo = m;
		}
	}
	*off = z->type_off[z->tx_idx[lo]];
	*start = z->tx_when[lo];
	if (lo == z->ntx - 1 && z->has_extend)
		tz_extend_lookup(&z->ext, *start, sec, off, start, end);
}

int
cron_zone_offset(const struct cron_zone *z, int64_t t)
{
	int off;
	int64_t s, e;
	zone_lookup(z, t, &off, &s, &e);
	return off;
}

const char *
cron_zone_name(const struct cron_zone *z)
{
	return z ? z->name : "UTC";
}

static void
zone_free(struct cron_zone *z)
{
	if (!z)
		return;
	free(z->name);
	free(z->tx_when);
	free(z->tx_idx);
	free(z->type_off);
	free(z->type_dst);
	free(z);
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t
be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

#define TZIF_HEADER 44

/* Parses TZif data (Go's LoadLocationFromTZData). NULL when malformed. */
static struct cron_zone *
zone_from_tzif(const char *name, const unsigned char *p, size_t len)
{
	if (len < TZIF_HEADER || memcmp(p, "TZif", 4) != 0)
		return NULL;
	int version = p[4] ? p[4] - '0' : 1;
	size_t cnt[6];
	for (int i = 0; i < 6; i++)
		cnt[i] = be32(p + 20 + 4 * i);
	/* isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt */
	size_t tsize = 4;
	size_t v1 = cnt[3] * 5 + cnt[4] * 6 + cnt[5] + cnt[2] * 8 + cnt[1] +
		    cnt[0];
	const unsigned char *d = p + TZIF_HEADER;
	if (version >= 2) {
		if (len < TZIF_HEADER + v1 + TZIF_HEADER)
			return NULL;
		d = p + TZIF_HEADER + v1;
		if (memcmp(d, "TZif", 4) != 0)
			return NULL;
		for (int i = 0; i < 6; i++)
			cnt[i] = be32(d + 20 + 4 * i);
		d += TZIF_HEADER;
		tsize = 8;
	}
	if (cnt[4] == 0 || cnt[3] > 100000 || cnt[4] > 256)
		return NULL;
	size_t need = cnt[3] * (tsize + 1) + cnt[4] * 6 + cnt[5] +
		      cnt[2] * (tsize + 4) + cnt[1] + cnt[0];
	size_t avail = len - (size_t)(d - p);
	if (need > avail)
		return NULL;

	struct cron_zone *z = xcalloc(1, sizeof(*z));
	z->name = xstrdup(name);
	z->ntypes = cnt[4];
	z->type_off = xcalloc(z->ntypes, sizeof(*z->type_off));
	z->type_dst = xcalloc(z->ntypes, sizeof(*z->type_dst));
	size_t ntx = cnt[3] ? cnt[3] : 1;
	z->ntx = ntx;
	z->tx_when = xcalloc(ntx, sizeof(*z->tx_when));
	z->tx_idx = xcalloc(ntx, sizeof(*z->tx_idx));
	const unsigned char *when = d, *idx = d + cnt[3] * tsize;
	const unsigned char *types = idx + cnt[3];
	for (size_t i = 0; i < cnt[3]; i++) {
		z->tx_when[i] = tsize == 8 ? be64(when + 8 * i)
					   : (int32_t)be32(when + 4 * i);
		z->tx_idx[i] = idx[i];
		/* RFC 8536 3.2: transition times strictly ascending. The
		 * lookups binary-search them; unsorted ones sent cron_next
		 * back in time (tests/fuzz/corpus/tzif/
		 * crash-next-before-start). */
		if (idx[i] >= z->ntypes ||
		    (i > 0 && z->tx_when[i] <= z->tx_when[i - 1])) {
			zone_free(z);
			return NULL;
		}
	}
	if (cnt[3] == 0) {
		/* Go: a fake transition covering all time (fixed zones) */
		z->tx_when[0] = ALPHA;
		z->tx_idx[0] = 0;
	}
	for (size_t i = 0; i < z->ntypes; i++) {
		z->type_off[i] = (int32_t)be32(types + 6 * i);
		z->type_dst[i] = types[6 * i + 4] != 0;
		/* RFC 8536 3.2: utoff in [-89999, 93599] (-25 h .. +26 h).
		 * Go takes any int32, but an offset of years sends
		 * cron_next back in time (tests/fuzz/corpus/tzif/
		 * crash-offset-of-years): such data is malformed here. */
		if (z->type_off[i] < -89999 || z->type_off[i] > 93599) {
			zone_free(z);
			return NULL;
		}
	}
	/* Go's lookupFirstZone */
	bool used0 = false;
	for (size_t i = 0; i < cnt[3]; i++)
		used0 |= z->tx_idx[i] == 0;
	z->first_zone = 0;
	if (used0) {
		bool found = false;
		if (cnt[3] > 0 && z->type_dst[z->tx_idx[0]]) {
			for (int zi = (int)z->tx_idx[0] - 1; zi >= 0; zi--) {
				if (!z->type_dst[zi]) {
					z->first_zone = (size_t)zi;
					found = true;
					break;
				}
			}
		}
		for (size_t zi = 0; !found && zi < z->ntypes; zi++) {
			if (!z->type_dst[zi]) {
				z->first_zone = zi;
				found = true;
			}
		}
	}
	if (version >= 2) {
		const unsigned char *rest = d + need;
		size_t rlen = len - (size_t)(rest - p);
		if (rlen > 2 && rest[0] == '\n' && rest[rlen - 1] == '\n') {
			char *ext = xstrndup((const char *)rest + 1, rlen - 2);
			z->has_extend = tz_extend_parse(ext, &z->ext);
			free(ext);
		}
	}
	return z;
}

struct cron_zone *
tz_from_tzif(const char *name, const void *data, size_t len)
{
	return zone_from_tzif(name, data, len);
}

void
tz_free(struct cron_zone *z)
{
	zone_free(z);
}

/* Reads a zone file and its identity; 0, 1 when absent (ENOENT), -1 with
 * e set. */
static int
zone_read(const char *path, unsigned char **out, size_t *len, dev_t *dev,
	  ino_t *ino, struct berr *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 1;
		return berr_set(e, "open %s: %s", path, strerror(errno));
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode) ||
	    st.st_size > (1 << 20)) {
		int rc = berr_set(e, "read %s: %s", path,
				  S_ISDIR(st.st_mode) ? "is a directory"
						      : "file too large");
		close(fd);
		return rc;
	}
	size_t n = (size_t)st.st_size, got = 0;
	unsigned char *buf = xmalloc(n ? n : 1);
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	*out = buf;
	*len = got;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

static const struct cron_zone *
name_lookup(const char *name)
{
	for (size_t i = 0; i < TZ_NAME_CACHE; i++) {
		struct name_entry *n = &name_cache[i];
		if (n->name && strcmp(n->name, name) == 0) {
			n->used = ++name_clock;
			return n->zone;
		}
	}
	return NULL;
}

/* Remembers name -> z in place of the least recently used name. */
static void
name_remember(const char *name, const struct cron_zone *z)
{
	struct name_entry *victim = &name_cache[0];
	for (size_t i = 0; i < TZ_NAME_CACHE; i++) {
		struct name_entry *n = &name_cache[i];
		if (!n->name) {
			victim = n;
			break;
		}
		if (n->used < victim->used)
			victim = n;
	}
	free(victim->name);
	victim->name = xstrdup(name);
	victim->zone = z;
	victim->used = ++name_clock;
}

void
tz_cache_counts(size_t *names, size_t *zones)
{
	pthread_mutex_lock(&zone_lock);
	size_t n = 0, z = 0;
	for (size_t i = 0; i < TZ_NAME_CACHE; i++)
		n += name_cache[i].name != NULL;
	for (const struct cron_zone *c = zone_cache; c; c = c->next)
		z++;
	pthread_mutex_unlock(&zone_lock);
	*names = n;
	*zones = z;
}

/* Go's LoadLocation for a name other than "", "UTC" and "Local". */
const struct cron_zone *
tz_load(const char *name, struct berr *e)
{
	if (strstr(name, "..") || name[0] == '/' || name[0] == '\\') {
		berr_set(e, "time: invalid location name");
		return NULL;
	}
	pthread_mutex_lock(&zone_lock);
	const struct cron_zone *hit = name_lookup(name);
	if (hit) {
		pthread_mutex_unlock(&zone_lock);
		return hit;
	}
	const char *env = getenv("ZONEINFO");
	const char *dirs[] = {env && *env ? env : NULL,
			      "/usr/share/zoneinfo", "/usr/share/lib/zoneinfo",
			      "/usr/lib/locale/TZ", "/etc/zoneinfo"};
	struct cron_zone *z = NULL;
	bool fresh = false;
	struct berr first;
	berr_clear(&first);
	for (size_t i = 0; i < ARRAY_LEN(dirs) && !z; i++) {
		if (!dirs[i])
			continue;
		char *path = xasprintf("%s/%s", dirs[i], name);
		unsigned char *data = NULL;
		size_t len = 0;
		dev_t dev = 0;
		ino_t ino = 0;
		struct berr re;
		berr_clear(&re);
		int rc = zone_read(path, &data, &len, &dev, &ino, &re);
		free(path);
		if (rc == 0) {
			for (struct cron_zone *c = zone_cache; c && !z;
			     c = c->next)
				if (c->dev == dev && c->ino == ino)
					z = c;
			if (!z) {
				z = zone_from_tzif(name, data, len);
				fresh = z != NULL;
				if (z) {
					z->dev = dev;
					z->ino = ino;
				}
			}
			if (!z && !first.msg[0])
				berr_set(&first,
					 "malformed time zone information");
		} else if (rc < 0 && !first.msg[0]) {
			berr_set(&first, "%s", re.msg);
		}
		free(data);
	}
	if (fresh) {
		z->next = zone_cache;
		zone_cache = z;
	}
	if (z)
		name_remember(name, z);
	pthread_mutex_unlock(&zone_lock);
	if (!z) {
		if (first.msg[0])
			berr_set(e, "%s", first.msg);
		else
			berr_set(e, "unknown time zone %s", name);
	}
	return z;
}

/* ---- Go time on top of a zone ----------------------------------------- */

void
tz_break(const struct cron_zone *z, int64_t t, struct tz_civil *c)
{
	int64_t abs = t + cron_zone_offset(z, t);
	int64_t days = floor_div(abs, SECS_PER_DAY);
	int64_t rem = abs - days * SECS_PER_DAY;
	civil_from_days(days, &c->year, &c->month, &c->day);
	c->hour = (int)(rem / 3600);
	c->min = (int)(rem / 60 % 60);
	c->sec = (int)(rem % 60);
	/* 1970-01-01 was a Thursday */
	c->wday = (int)tz_floor_mod(days + 4, 7);
}

/* time.Date(y, mo, d, h, mi, s, 0, z) */
int64_t
tz_date(const struct cron_zone *z, int64_t y, int64_t mo, int64_t d, int64_t h,
	int64_t mi, int64_t s)
{
	int64_t m0 = mo - 1;
	y += floor_div(m0, 12);
	m0 = tz_floor_mod(m0, 12);
	int64_t secs = days_from_civil(y, (int)m0 + 1, d) * SECS_PER_DAY +
		       h * 3600 + mi * 60 + s;
	int off;
	int64_t start, end;
	zone_lookup(z, secs, &off, &start, &end);
	if (off != 0) {
		int64_t utc = secs - off;
		if (utc < start || utc >= end) {
			int64_t s2, e2;
			zone_lookup(z, utc, &off, &s2, &e2);
		}
		secs -= off;
	}
	return secs;
}

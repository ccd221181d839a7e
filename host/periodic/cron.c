/* cron.c - robfig/cron v3 specs (Second Minute Hour Dom Month Dow) and
 * SpecSchedule.Next; see cron.h. The TZ=/CRON_TZ= zones, and the Go time
 * operations Next is written in terms of, are in tz.c:
 *   - fields of an instant (Year, Month, ..., Weekday): tz_break;
 *   - time.Date(y, m, d, h, mi, s, loc): tz_date;
 *   - AddDate = Date with the fields bumped; Add = plain seconds;
 *     Truncate(Minute) = floor to a multiple of 60 of the epoch (Go's
 *     zero time is a whole number of minutes before the Unix epoch).
 * Times are whole epoch seconds. */
#include "periodic/cron.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/gojson.h"
#include "common/utf8.h"
#include "periodic/tz.h"

/* ---- Next ------------------------------------------------------------- */

/* Instants Next accepts: year 1 .. about year 9990, so that five years of
 * searching never leave the range the civil-date code is exact in. */
#define CRON_MIN_T (-62135596800LL)
#define CRON_MAX_T (253087804800LL)
/* Safety net (Q18): no sane schedule needs a fraction of this. */
#define CRON_MAX_STEPS 20000000L

#define BIT(n) (UINT64_C(1) << (unsigned)(n))
#define RANGE_BITS(f) ((f) & ~CRON_STAR_BIT)

static bool
day_matches(const struct cron_schedule *s, const struct tz_civil *c)
{
	bool dom = (BIT(c->day) & s->dom) != 0;
	bool dow = (BIT(c->wday) & s->dow) != 0;
	if ((s->dom & CRON_STAR_BIT) || (s->dow & CRON_STAR_BIT))
		return dom && dow;
	return dom || dow;
}

/* A field that can never match (an empty list such as ","): Go would
 * search the full five years second by second before giving up. */
static bool
never_matches(const struct cron_schedule *s)
{
	if (!RANGE_BITS(s->second) || !RANGE_BITS(s->minute) ||
	    !RANGE_BITS(s->hour) || !RANGE_BITS(s->month))
		return true;
	bool star = (s->dom & CRON_STAR_BIT) || (s->dow & CRON_STAR_BIT);
	if (star)
		return !RANGE_BITS(s->dom) || !RANGE_BITS(s->dow);
	return !RANGE_BITS(s->dom) && !RANGE_BITS(s->dow);
}

int64_t
cron_next(const struct cron_schedule *s, int64_t t)
{
	if (!s || t < CRON_MIN_T || t > CRON_MAX_T || never_matches(s))
		return 0;
	const struct cron_zone *z = s->zone;
	struct tz_civil c;
	long steps = 0;
	bool added = false;
	const int64_t start = t;
	t += 1; /* the upcoming second */
	tz_break(z, t, &c);
	int64_t year_limit = c.year + 5;
#define STEP()                                                               \
	do {                                                                 \
		tz_break(z, t, &c);                                          \
		if (++steps > CRON_MAX_STEPS)                                \
			return 0;                                            \
	} while (0)
wrap:
	STEP();
	if (c.year > year_limit)
		return 0;
	while (!(BIT(c.month) & s->month)) {
		if (!added) {
			added = true;
			t = tz_date(z, c.year, c.month, 1, 0, 0, 0);
			STEP();
		}
		t = tz_date(z, c.year, c.month + 1, c.day, c.hour, c.min,
			    c.sec);
		STEP();
		if (c.month == 1)
			goto wrap;
	}
	while (!day_matches(s, &c)) {
		if (!added) {
			added = true;
			t = tz_date(z, c.year, c.month, c.day, 0, 0, 0);
			STEP();
		}
		t = tz_date(z, c.year, c.month, c.day + 1, c.hour, c.min,
			    c.sec);
		STEP();
		/* a midnight that DST moved: back to the day's start */
		if (c.hour != 0) {
			if (c.hour > 12)
				t += (int64_t)(24 - c.hour) * 3600;
			else
				t -= (int64_t)c.hour * 3600;
			STEP();
		}
		if (c.day == 1)
			goto wrap;
	}
	while (!(BIT(c.hour) & s->hour)) {
		if (!added) {
			added = true;
			t = tz_date(z, c.year, c.month, c.day, c.hour, 0, 0);
			STEP();
		}
		t += 3600;
		STEP();
		if (c.hour == 0)
			goto wrap;
	}
	while (!(BIT(c.min) & s->minute)) {
		if (!added) {
			added = true;
			t -= tz_floor_mod(t, 60);
			STEP();
		}
		t += 60;
		STEP();
		if (c.min == 0)
			goto wrap;
	}
	while (!(BIT(c.sec) & s->second)) {
		added = true; /* Truncate(Second) is a no-op on whole seconds */
		t += 1;
		STEP();
		if (c.sec == 0)
			goto wrap;
	}
#undef STEP
	/* robfig's truncations use time.Date, which resolves a local time
	 * in an overlap to the earlier offset: in a zone whose clock jumps
	 * back by hours the search can land before its start, and Go then
	 * returns a time in the past. The contract here is "strictly
	 * later": such a result counts as no next time
	 * (tests/fuzz/corpus/tzif/crash-next-before-start-overlap). */
	return t > start ? t : 0;
}
/* ---- parser ----------------------------------------------------------- */

struct bounds {
	unsigned min, max;
	const char *const *names; /* index = value, NULL-terminated */
};

static const char *const month_names[] = {
	"", "jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu",
					"fri", "sat", NULL};

static const struct bounds b_seconds = {0, 59, NULL};
static const struct bounds b_minutes = {0, 59, NULL};
static const struct bounds b_hours = {0, 23, NULL};
static const struct bounds b_dom = {1, 31, NULL};
static const struct bounds b_months = {1, 12, month_names};
static const struct bounds b_dow = {0, 6, dow_names};

/* Length of the Unicode white space (Go's unicode.IsSpace) at s, 0 if
 * none. */
static size_t
space_len(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	if (u[0] == ' ' || (u[0] >= '\t' && u[0] <= '\r'))
		return 1;
	if (u[0] == 0xc2 && (u[1] == 0x85 || u[1] == 0xa0))
		return 2;
	if (u[0] == 0xe1 && u[1] == 0x9a && u[2] == 0x80)
		return 3; /* U+1680 */
	if (u[0] == 0xe2 && u[1] == 0x80 &&
	    ((u[2] >= 0x80 && u[2] <= 0x8a) || u[2] == 0xa8 || u[2] == 0xa9 ||
	     u[2] == 0xaf))
		return 3; /* U+2000-200A, 2028, 2029, 202F */
	if (u[0] == 0xe2 && u[1] == 0x81 && u[2] == 0x9f)
		return 3; /* U+205F */
	if (u[0] == 0xe3 && u[1] == 0x80 && u[2] == 0x80)
		return 3; /* U+3000 */
	return 0;
}

/* Go's strconv.Quote, close enough for error messages. */
static void
go_quote(struct gbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	gbuf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\a': esc = "\\a"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\v': esc = "\\v"; break;
		default: break;
		}
		if (esc) {
			gbuf_puts(b, esc);
		} else if (c < 0x20 || c == 0x7f || c >= 0x80) {
			/* multi-byte text is kept when it is valid UTF-8 */
			size_t len = c >= 0x80 ? utf8_decode(
				(const unsigned char *)s + i, n - i, NULL) : 0;
			if (len) {
				gbuf_put(b, s + i, len);
				i += len - 1;
			} else {
				char x[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
				gbuf_put(b, x, 4);
			}
		} else {
			gbuf_putc(b, (char)c);
		}
	}
	gbuf_putc(b, '"');
}

/* mustParseInt: strconv.Atoi, then "negative number" check. */
static int
must_parse_int(const char *s, size_t n, unsigned long long *out,
	       struct berr *e)
{
	size_t i = 0;
	bool neg = false;
	if (n > 0 && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	const char *why = NULL;
	unsigned long long v = 0;
	bool range = false;
	if (i == n)
		why = "invalid syntax";
	for (; !why && i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			why = "invalid syntax";
			break;
		}
		if (v > (UINT64_MAX - 9) / 10)
			range = true;
		else
			v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (!why && (range || v > (neg ? (unsigned long long)INT64_MAX + 1
				       : (unsigned long long)INT64_MAX)))
		why = "value out of range";
	if (why) {
		struct gbuf b = {0};
		go_quote(&b, s, n);
		char *q = gbuf_take(&b);
		berr_set(e,
			 "failed to parse int from %.*s: strconv.Atoi: "
			 "parsing %s: %s",
			 (int)n, s, q, why);
		free(q);
		return -1;
	}
	if (neg && v != 0) {
		if (v == (unsigned long long)INT64_MAX + 1)
			return berr_set(e, "negative number (%" PRId64
					") not allowed: %.*s",
					INT64_MIN, (int)n, s);
		return berr_set(e, "negative number (-%llu) not allowed: %.*s",
				v, (int)n, s);
	}
	*out = v;
	return 0;
}

static int
parse_int_or_name(const char *s, size_t n, const struct bounds *r,
		  unsigned long long *out, struct berr *e)
{
	if (r->names) {
		for (unsigned i = 0; r->names[i]; i++) {
			if (r->names[i][0] && strlen(r->names[i]) == n &&
			    strncasecmp(r->names[i], s, n) == 0) {
				*out = i;
				return 0;
			}
		}
	}
	return must_parse_int(s, n, out, e);
}

/* getRange: one element of a comma list, expr = s[0..n). */
static int
get_range(const char *s, size_t n, const struct bounds *r, uint64_t *bits,
	  struct berr *e)
{
	const char *slash = memchr(s, '/', n);
	size_t rlen = slash ? (size_t)(slash - s) : n;
	const char *dash = memchr(s, '-', rlen);
	bool single = dash == NULL;
	unsigned long long start, end, step = 1;
	uint64_t extra = 0;
	size_t l0 = dash ? (size_t)(dash - s) : rlen;
	if ((l0 == 1 && (s[0] == '*' || s[0] == '?'))) {
		start = r->min;
		end = r->max;
		extra = CRON_STAR_BIT;
	} else {
		if (parse_int_or_name(s, l0, r, &start, e) < 0)
			return -1;
		if (!dash) {
			end = start;
		} else {
			const char *hi = dash + 1;
			size_t hl = rlen - l0 - 1;
			if (memchr(hi, '-', hl))
				return berr_set(e, "too many hyphens: %.*s",
						(int)n, s);
			if (parse_int_or_name(hi, hl, r, &end, e) < 0)
				return -1;
		}
	}
	if (slash) {
		const char *st = slash + 1;
		size_t sl = n - rlen - 1;
		if (memchr(st, '/', sl))
			return berr_set(e, "too many slashes: %.*s", (int)n, s);
		if (must_parse_int(st, sl, &step, e) < 0)
			return -1;
		if (single)
			end = r->max;
		if (step > 1)
			extra = 0;
	}
	if (start < r->min)
		return berr_set(e,
				"beginning of range (%llu) below minimum "
				"(%u): %.*s",
				start, r->min, (int)n, s);
	if (end > r->max)
		return berr_set(e,
				"end of range (%llu) above maximum (%u): %.*s",
				end, r->max, (int)n, s);
	if (start > end)
		return berr_set(e,
				"beginning of range (%llu) beyond end of "
				"range (%llu): %.*s",
				start, end, (int)n, s);
	if (step == 0)
		return berr_set(e,
				"step of range should be a positive number: "
				"%.*s",
				(int)n, s);
	uint64_t b = 0;
	for (unsigned long long i = start; i <= end; i += step)
		b |= BIT(i);
	*bits = b | extra;
	return 0;
}

/* getField: a comma list; empty elements are skipped (strings.FieldsFunc). */
static int
get_field(const char *s, size_t n, const struct bounds *r, uint64_t *out,
	  struct berr *e)
{
	uint64_t bits = 0;
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && s[j] != ',')
			j++;
		if (j > i) {
			uint64_t b = 0;
			if (get_range(s + i, j - i, r, &b, e) < 0)
				return -1;
			bits |= b;
		}
		i = j + 1;
	}
	*out = bits;
	return 0;
}

struct field {
	const char *p;
	size_t n;
};

int
cron_parse(const char *spec, struct cron_schedule *out, struct berr *e)
{
	memset(out, 0, sizeof(*out));
	if (!spec || !spec[0])
		return berr_set(e, "empty spec string");
	const char *s = spec;
	bool trim = false;
	if (strncmp(s, "TZ=", 3) == 0 || strncmp(s, "CRON_TZ=", 8) == 0) {
		const char *eq = strchr(s, '=');
		const char *sp = strchr(s, ' ');
		if (!sp)
			return berr_set(e,
					"provided bad location %s: no schedule "
					"after the time zone",
					eq + 1);
		char *name = xstrndup(eq + 1, (size_t)(sp - eq - 1));
		struct berr le;
		berr_clear(&le);
		if (name[0] && strcmp(name, "UTC") != 0 &&
		    strcmp(name, "Local") != 0) {
			out->zone = tz_load(name, &le);
			if (!out->zone) {
				berr_set(e, "provided bad location %s: %s",
					 name, le.msg);
				free(name);
				return -1;
			}
		}
		free(name);
		s = sp;
		for (size_t l; (l = space_len(s)) > 0;)
			s += l; /* TrimSpace (the tail is trimmed below) */
		trim = true;
		if (s[0] == '@')
			goto descriptor;
	} else if (s[0] == '@') {
		goto descriptor;
	}

	/* strings.Fields */
	struct field f[7];
	size_t nf = 0, total = 0;
	struct gbuf all = {0};
	gbuf_putc(&all, '[');
	for (const char *p = s; *p;) {
		size_t l = space_len(p);
		if (l) {
			p += l;
			continue;
		}
		const char *b = p;
		while (*p && !space_len(p))
			p++;
		if (nf < ARRAY_LEN(f))
			f[nf++] = (struct field){b, (size_t)(p - b)};
		if (total++)
			gbuf_putc(&all, ' ');
		gbuf_put(&all, b, (size_t)(p - b));
	}
	gbuf_putc(&all, ']');
	if (total != 6) {
		char *txt = gbuf_take(&all);
		berr_set(e, "expected exactly 6 fields, found %zu: %s", total,
			 txt);
		free(txt);
		out->zone = NULL;
		return -1;
	}
	gbuf_free(&all);
	const struct bounds *b[6] = {&b_seconds, &b_minutes, &b_hours,
				     &b_dom,     &b_months,  &b_dow};
	uint64_t *dst[6] = {&out->second, &out->minute, &out->hour,
			    &out->dom,    &out->month,  &out->dow};
	for (int i = 0; i < 6; i++) {
		if (get_field(f[i].p, f[i].n, b[i], dst[i], e) < 0) {
			memset(out, 0, sizeof(*out));
			return -1;
		}
	}
	return 0;

descriptor:;
	/* the descriptor text as robfig prints it (trimmed after a TZ) */
	size_t n = strlen(s);
	while (trim && n > 0) {
		size_t k = 0;
		/* trailing white space (ASCII and the multi-byte forms) */
		for (size_t back = 1; back <= 3 && back <= n; back++) {
			if (space_len(s + n - back) == back) {
				k = back;
				break;
			}
		}
		if (!k)
			break;
		n -= k;
	}
	memset(out, 0, sizeof(*out));
	return berr_set(e, "parser does not accept descriptors: %.*s", (int)n,
			s);
}

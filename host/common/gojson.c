/* gojson.c - JSON text byte-identical to Go's encoding/json; see gojson.h.
 *
 * Strings (encode.go appendString, escapeHTML on): bytes < 0x20, `"`, `\`,
 * `<`, `>`, `&` are escaped (\n \r \t \b \f by name, since Go 1.22, the
 * rest as \u00xx with lowercase hex), U+2028/U+2029 as \u2028/\u2029,
 * everything else is copied. A byte that does not start a valid UTF-8
 * sequence (utf8.DecodeRune rules: no overlongs, no surrogates, nothing
 * above U+10FFFF) is one U+FFFD.
 *
 * Numbers (floatEncoder, 64 bit): the shortest digits that read back as
 * the same double; 'f' layout unless abs < 1e-6 or abs >= 1e21, where
 * strconv's 'e' layout (exponent of at least two digits) is used and then
 * "e-0d" is shortened to "e-d": 1e21 -> 1e+21, 1e-7 -> 1e-7,
 * 1.5e-10 -> 1.5e-10. Negative zero prints "-0". */
#include "common/gojson.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

/* ---- gbuf -------------------------------------------------------------- */

static void
gbuf_reserve(struct gbuf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void
gbuf_put(struct gbuf *b, const char *s, size_t n)
{
	gbuf_reserve(b, n);
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
gbuf_puts(struct gbuf *b, const char *s)
{
	gbuf_put(b, s, strlen(s));
}

void
gbuf_putc(struct gbuf *b, char c)
{
	gbuf_reserve(b, 1);
	b->p[b->len++] = c;
	b->p[b->len] = '\0';
}

void
gbuf_printf(struct gbuf *b, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n > 0) {
		gbuf_reserve(b, (size_t)n);
		vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap2);
		b->len += (size_t)n;
	} else {
		gbuf_put(b, "", 0);
	}
	va_end(ap2);
}

char *
gbuf_take(struct gbuf *b)
{
	char *s = b->p ? b->p : xstrdup("");
	b->p = NULL;
	b->len = b->cap = 0;
	return s;
}

void
gbuf_free(struct gbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- strings ------------------------------------------------------------ */

static const char hexdig[] = "0123456789abcdef";

/* decoded: s is a string Go got from json.Unmarshal, which had already
 * turned every invalid byte into a real U+FFFD; the encoder then copies
 * that character. Otherwise (a Go string of arbitrary bytes) an invalid
 * byte is written as the escape \ufffd. */
static void
append_string(struct gbuf *b, const char *str, size_t n, bool decoded)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t start = 0, i = 0;
	gbuf_putc(b, '"');
	while (i < n) {
		unsigned char c = s[i];
		if (c < 0x80) {
			if (c >= 0x20 && c != '"' && c != '\\' && c != '<' &&
			    c != '>' && c != '&') {
				i++;
				continue;
			}
			gbuf_put(b, str + start, i - start);
			switch (c) {
			case '"':
				gbuf_puts(b, "\\\"");
				break;
			case '\\':
				gbuf_puts(b, "\\\\");
				break;
			case '\b':
				gbuf_puts(b, "\\b");
				break;
			case '\f':
				gbuf_puts(b, "\\f");
				break;
			case '\n':
				gbuf_puts(b, "\\n");
				break;
			case '\r':
				gbuf_puts(b, "\\r");
				break;
			case '\t':
				gbuf_puts(b, "\\t");
				break;
			default: {
				char u[6] = {'\\', 'u', '0', '0',
					     hexdig[c >> 4], hexdig[c & 0xF]};
				gbuf_put(b, u, sizeof(u));
			}
			}
			i++;
			start = i;
			continue;
		}
		uint32_t cp;
		size_t len = utf8_decode(s + i, n - i, &cp);
		if (len == 0) {
			gbuf_put(b, str + start, i - start);
			gbuf_puts(b, decoded ? "\xEF\xBF\xBD" : "\\ufffd");
			i++;
			start = i;
			continue;
		}
		if (cp == 0x2028 || cp == 0x2029) {
			gbuf_put(b, str + start, i - start);
			gbuf_puts(b, cp == 0x2028 ? "\\u2028" : "\\u2029");
			i += len;
			start = i;
			continue;
		}
		i += len;
	}
	gbuf_put(b, str + start, n - start);
	gbuf_putc(b, '"');
}

void
gojson_append_string(struct gbuf *b, const char *s, size_t n)
{
	append_string(b, s, n, false);
}

void
gojson_append_decoded_string(struct gbuf *b, const char *s, size_t n)
{
	append_string(b, s, n, true);
}

/* ---- numbers ------------------------------------------------------------ */

void
gojson_append_int(struct gbuf *b, long long v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%lld", v);
	gbuf_put(b, tmp, (size_t)n);
}

/* Shortest decimal digits of d (> 0, finite) that read back as d:
 * digits[0..*nd) without trailing zeros, value = 0.d1d2... * 10^(*x + 1),
 * i.e. *x is the exponent of scientific notation d1.d2... * 10^x. */
static void
shortest_digits(double d, char digits[20], int *nd, int *x)
{
	char tmp[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
		if (prec == 17 || strtod(tmp, NULL) == d)
			break;
	}
	/* tmp is "D[.DDD]e[+-]XX" (any decimal point character). */
	const char *p = tmp;
	int n = 0;
	while (*p && *p != 'e') {
		if (*p >= '0' && *p <= '9' && n < 19)
			digits[n++] = *p;
		p++;
	}
	*x = *p == 'e' ? atoi(p + 1) : 0;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	digits[n] = '\0';
	*nd = n;
}

void
gojson_append_number(struct gbuf *b, double d)
{
	if (isnan(d) || isinf(d)) {
		gbuf_puts(b, "null");
		return;
	}
	if (d == 0) {
		gbuf_puts(b, signbit(d) ? "-0" : "0");
		return;
	}
	/* Integers below 2^53 are exact: their shortest form is themselves.
	 * (No libm calls here: berthcore does not link -lm.) */
	double a = d < 0 ? -d : d;
	if (a < 9007199254740992.0 && d == (double)(long long)d) {
		gojson_append_int(b, (long long)d);
		return;
	}
	char digits[20];
	int nd, x;
	shortest_digits(a, digits, &nd, &x);
	if (d < 0)
		gbuf_putc(b, '-');
	if (a < 1e-6 || a >= 1e21) {
		gbuf_putc(b, digits[0]);
		if (nd > 1) {
			gbuf_putc(b, '.');
			gbuf_put(b, digits + 1, (size_t)nd - 1);
		}
		char e[16];
		int ax = x < 0 ? -x : x;
		/* strconv pads to two digits; encoding/json then turns
		 * e-0d into e-d (but keeps e+0d, which cannot occur). */
		if (x < 0 && ax < 10)
			snprintf(e, sizeof(e), "e-%d", ax);
		else
			snprintf(e, sizeof(e), "e%c%02d", x < 0 ? '-' : '+',
				 ax);
		gbuf_puts(b, e);
		return;
	}
	if (x >= 0) {
		/* integer part: digits[0..x], padded with zeros */
		if (nd > x + 1) {
			gbuf_put(b, digits, (size_t)x + 1);
			gbuf_putc(b, '.');
			gbuf_put(b, digits + x + 1, (size_t)(nd - x - 1));
		} else {
			gbuf_put(b, digits, (size_t)nd);
			for (int i = nd; i <= x; i++)
				gbuf_putc(b, '0');
		}
	} else {
		gbuf_puts(b, "0.");
		for (int i = 0; i < -x - 1; i++)
			gbuf_putc(b, '0');
		gbuf_put(b, digits, (size_t)nd);
	}
}

/* ---- values ------------------------------------------------------------- */

struct okey {
	const cJSON *item;
	char *key; /* as Go's decoder would hold it (invalid bytes -> U+FFFD) */
	size_t len;
	size_t idx;
};

/* The key bytes with every invalid UTF-8 byte replaced by U+FFFD. */
static char *
sanitize_utf8(const char *str, size_t n, size_t *out_len)
{
	const unsigned char *s = (const unsigned char *)str;
	struct gbuf b = {0};
	size_t start = 0, i = 0;
	while (i < n) {
		uint32_t cp;
		size_t len;
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		len = utf8_decode(s + i, n - i, &cp);
		if (len) {
			i += len;
			continue;
		}
		gbuf_put(&b, str + start, i - start);
		gbuf_puts(&b, "\xEF\xBF\xBD");
		start = ++i;
	}
	gbuf_put(&b, str + start, n - start);
	*out_len = b.len;
	return gbuf_take(&b);
}

static int
okey_cmp(const void *pa, const void *pb)
{
	const struct okey *a = pa, *b = pb;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->key, b->key, n);
	if (c)
		return c;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx ? 1 : 0;
}

/* The members of obj in Go's map order: sorted by sanitized key bytes, and
 * of duplicate keys only the last (a Go map keeps the last). Returns the
 * count; *out is NULL when there are none. */
static size_t
object_keys(const cJSON *obj, struct okey **out)
{
	size_t n = 0;
	for (const cJSON *c = obj->child; c; c = c->next)
		n++;
	*out = NULL;
	if (n == 0)
		return 0;
	struct okey *keys = xcalloc(n, sizeof(*keys));
	size_t i = 0;
	for (const cJSON *c = obj->child; c; c = c->next, i++) {
		const char *k = c->string ? c->string : "";
		keys[i].item = c;
		keys[i].key = sanitize_utf8(k, strlen(k), &keys[i].len);
		keys[i].idx = i;
	}
	qsort(keys, n, sizeof(*keys), okey_cmp);
	size_t w = 0;
	for (i = 0; i < n; i++) {
		if (i + 1 < n && keys[i + 1].len == keys[i].len &&
		    memcmp(keys[i + 1].key, keys[i].key, keys[i].len) == 0) {
			free(keys[i].key);
			continue;
		}
		keys[w++] = keys[i];
	}
	*out = keys;
	return w;
}

/* Writes a scalar; false for an array or object (a container). */
static bool
append_scalar(struct gbuf *b, const cJSON *v)
{
	switch (v->type & 0xFF) {
	case cJSON_False:
		gbuf_puts(b, "false");
		return true;
	case cJSON_True:
		gbuf_puts(b, "true");
		return true;
	case cJSON_Number:
		gojson_append_number(b, v->valuedouble);
		return true;
	case cJSON_String: {
		const char *s = v->valuestring ? v->valuestring : "";
		append_string(b, s, strlen(s), true);
		return true;
	}
	case cJSON_Array:
	case cJSON_Object:
		return false;
	case cJSON_Raw:
		gbuf_puts(b, v->valuestring ? v->valuestring : "null");
		return true;
	default: /* cJSON_NULL, cJSON_Invalid */
		gbuf_puts(b, "null");
		return true;
	}
}

/* One open array or object of the walk. */
struct frame {
	const cJSON *next; /* array: the next element */
	struct okey *keys; /* object: sorted members */
	size_t n, i;       /* object: count and the next one */
	bool is_object, wrote;
};

/* Iterative, with the open containers on a heap stack: a value nested
 * arbitrarily deep (cJSON parses up to CJSON_NESTING_LIMIT, Redis may hold
 * anything) cannot overflow a small thread stack. */
void
gojson_append(struct gbuf *b, const cJSON *v)
{
	if (!v) {
		gbuf_puts(b, "null");
		return;
	}
	if (append_scalar(b, v))
		return;
	struct frame *st = NULL;
	size_t depth = 0, cap = 0;
	const cJSON *cur = v; /* a container to open, or NULL */
	for (;;) {
		if (cur) {
			if (depth == cap) {
				cap = cap ? cap * 2 : 16;
				st = xrealloc(st, cap * sizeof(*st));
			}
			struct frame *f = &st[depth++];
			memset(f, 0, sizeof(*f));
			f->is_object = (cur->type & 0xFF) == cJSON_Object;
			if (f->is_object)
				f->n = object_keys(cur, &f->keys);
			else
				f->next = cur->child;
			gbuf_putc(b, f->is_object ? '{' : '[');
			cur = NULL;
		}
		struct frame *f = &st[depth - 1];
		const cJSON *item = NULL;
		if (f->is_object && f->i < f->n) {
			struct okey *k = &f->keys[f->i++];
			if (f->wrote)
				gbuf_putc(b, ',');
			append_string(b, k->key, k->len, true);
			gbuf_putc(b, ':');
			item = k->item;
		} else if (!f->is_object && f->next) {
			item = f->next;
			f->next = item->next;
			if (f->wrote)
				gbuf_putc(b, ',');
		}
		if (item) {
			f->wrote = true;
			if (!append_scalar(b, item))
				cur = item;
			continue;
		}
		/* the container is complete */
		gbuf_putc(b, f->is_object ? '}' : ']');
		for (size_t i = 0; i < f->n; i++)
			free(f->keys[i].key);
		free(f->keys);
		if (--depth == 0)
			break;
	}
	free(st);
}

int
gojson_depth_ok(const char *s, size_t n, int max_depth)
{
	int depth = 0;
	bool in_string = false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (in_string) {
			if (c == '\\')
				i++; /* the escaped byte cannot end the string */
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth)
				return 0;
		} else if (c == ']' || c == '}') {
			if (depth > 0)
				depth--;
		}
	}
	return 1;
}

char *
gojson_encode(const cJSON *v)
{
	struct gbuf b = {0};
	gojson_append(&b, v);
	return gbuf_take(&b);
}

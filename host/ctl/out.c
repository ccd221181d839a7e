/* out.c - berthctl's human output: text made safe for a terminal (a job
 * parameter can hold escape sequences), aligned tables, times and ages. */
#include "ctl/ctl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "common/utf8.h"
#include "common/util.h"

/* ---- a growing string ---------------------------------------------------- */

void
sbuf_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->s = xrealloc(b->s, cap);
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	sbuf_add(b, s, strlen(s));
	free(s);
}

void
sbuf_fini(struct sbuf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/* ---- terminal-safe text -------------------------------------------------- */

/* C1 controls (U+0080..U+009F, two bytes in UTF-8): U+009B is a CSI
 * for some terminals. */
static bool
is_c1(const unsigned char *s)
{
	return s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f;
}

char *
out_safe(const char *s)
{
	struct sbuf b = {0};
	sbuf_add(&b, "", 0);
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		size_t n = utf8_len(p);
		if (n == 1 && (*p < 0x20 || *p == 0x7f)) {
			sbuf_add(&b, *p == '\t' ? " " : "?", 1);
			p++;
		} else if (n == 2 && is_c1(p)) {
			sbuf_add(&b, "?", 1);
			p += 2;
		} else if (n == 0) {
			sbuf_add(&b, "?", 1);
			p++;
		} else {
			sbuf_add(&b, (const char *)p, n);
			p += n;
		}
	}
	return b.s;
}

/* Characters (code points) of safe text. */
static int
width_of(const char *s)
{
	int w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* Bytes of the first w characters of safe text s. */
static size_t
bytes_of(const char *s, int w)
{
	size_t i = 0;
	while (s[i] && w > 0) {
		i++;
		while (((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
		w--;
	}
	return i;
}

/* ---- tables -------------------------------------------------------------- */

struct table {
	int ncols;
	int *cap;
	char **cells; /* rows x ncols, row 0 = headers */
	int nrows;
	int rows_cap;
};

struct table *
table_new(int ncols, const char *const *headers)
{
	struct table *t = xcalloc(1, sizeof(*t));
	t->ncols = ncols;
	t->cap = xcalloc((size_t)ncols, sizeof(int));
	table_row(t, headers);
	return t;
}

void
table_cap(struct table *t, int col, int width)
{
	t->cap[col] = width;
}

void
table_row(struct table *t, const char *const *cells)
{
	if (t->nrows == t->rows_cap) {
		t->rows_cap = t->rows_cap ? t->rows_cap * 2 : 16;
		t->cells = xrealloc(t->cells, (size_t)t->rows_cap *
					      (size_t)t->ncols *
					      sizeof(char *));
	}
	for (int i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] =
			out_safe(cells[i] && *cells[i] ? cells[i] : "-");
	t->nrows++;
}

int
table_rows(const struct table *t)
{
	return t->nrows - 1;
}

void
table_render(const struct table *t, struct sbuf *b, int width)
{
	int *w = xcalloc((size_t)t->ncols, sizeof(int));
	for (int r = 0; r < t->nrows; r++)
		for (int i = 0; i < t->ncols; i++) {
			int cw = width_of(t->cells[r * t->ncols + i]);
			if (t->cap[i] > 0 && cw > t->cap[i])
				cw = t->cap[i];
			if (cw > w[i])
				w[i] = cw;
		}
	struct sbuf line = {0};
	for (int r = 0; r < t->nrows; r++) {
		line.len = 0;
		sbuf_add(&line, "", 0);
		for (int i = 0; i < t->ncols; i++) {
			const char *c = t->cells[r * t->ncols + i];
			int cw = width_of(c);
			bool cut = t->cap[i] > 0 && cw > t->cap[i];
			if (cut) {
				sbuf_add(&line, c, bytes_of(c, t->cap[i] - 1));
				sbuf_add(&line, "\xe2\x80\xa6", 3); /* ... */
				cw = t->cap[i];
			} else {
				sbuf_add(&line, c, strlen(c));
			}
			if (i + 1 < t->ncols)
				for (int k = cw; k < w[i] + 2; k++)
					sbuf_add(&line, " ", 1);
		}
		/* no trailing blanks */
		while (line.len && line.s[line.len - 1] == ' ')
			line.s[--line.len] = '\0';
		size_t n = width > 0 ? bytes_of(line.s, width) : line.len;
		sbuf_add(b, line.s, n);
		sbuf_add(b, "\n", 1);
	}
	sbuf_fini(&line);
	free(w);
}

void
table_print(const struct table *t, FILE *f)
{
	struct sbuf b = {0};
	table_render(t, &b, 0);
	if (b.s)
		fputs(b.s, f);
	sbuf_fini(&b);
}

void
table_show(struct table *t, const char *none)
{
	if (table_rows(t))
		table_print(t, stdout);
	else if (none)
		fprintf(stderr, "berthctl: no %s\n", none);
	table_free(t);
}

void
table_free(struct table *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->cap);
	free(t);
}

/* ---- values -------------------------------------------------------------- */

const char *
out_time(int64_t epoch, char buf[32])
{
	if (epoch <= 0)
		return strcpy(buf, "-");
	time_t tt = (time_t)epoch;
	struct tm tm;
	if (!localtime_r(&tt, &tm) ||
	    !strftime(buf, 32, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, 32, "%lld", (long long)epoch);
	return buf;
}

const char *
out_age(int64_t s, char buf[32])
{
	if (s < 0)
		snprintf(buf, 32, "-");
	else if (s < 60)
		snprintf(buf, 32, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, 32, "%lldm%02llds", (long long)(s / 60),
			 (long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, 32, "%lldh%02lldm", (long long)(s / 3600),
			 (long long)(s % 3600 / 60));
	else
		snprintf(buf, 32, "%lldd%02lldh", (long long)(s / 86400),
			 (long long)(s % 86400 / 3600));
	return buf;
}

char *
out_json(const cJSON *v)
{
	if (!v)
		return xstrdup("");
	char *s = cJSON_PrintUnformatted(v);
	char *r = xstrdup(s ? s : "");
	cJSON_free(s);
	return r;
}

const char *
out_field(const cJSON *o, const char *key, char *buf, size_t n)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);
	if (cJSON_IsString(v))
		snprintf(buf, n, "%s", v->valuestring);
	else if (cJSON_IsNumber(v))
		snprintf(buf, n, "%lld", (long long)json_i64(o, key));
	else if (cJSON_IsBool(v))
		snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
	else
		buf[0] = '\0';
	return buf;
}

const char *
out_int(long long v, char buf[32])
{
	snprintf(buf, 32, "%lld", v);
	return buf;
}

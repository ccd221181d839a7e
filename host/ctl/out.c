/* out.c - berthctl's human output: text made safe for a terminal (a job
 * parameter can hold escape sequences), aligned tables, times and ages. */
#include "ctl/ctl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "common/utf8.h"
#include "common/util.h"

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
	struct gbuf b = {0};
	gbuf_put(&b, "", 0);
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		size_t n = utf8_len(p);
		if (n == 1 && (*p < 0x20 || *p == 0x7f)) {
			gbuf_put(&b, *p == '\t' ? " " : "?", 1);
			p++;
		} else if (n == 2 && is_c1(p)) {
			gbuf_put(&b, "?", 1);
			p += 2;
		} else if (n == 0) {
			gbuf_put(&b, "?", 1);
			p++;
		} else {
			gbuf_put(&b, (const char *)p, n);
			p += n;
		}
	}
	return b.p;
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
table_render(const struct table *t, struct gbuf *b, int width)
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
	struct gbuf line = {0};
	for (int r = 0; r < t->nrows; r++) {
		line.len = 0;
		gbuf_put(&line, "", 0);
		for (int i = 0; i < t->ncols; i++) {
			const char *c = t->cells[r * t->ncols + i];
			int cw = width_of(c);
			bool cut = t->cap[i] > 0 && cw > t->cap[i];
			if (cut) {
				gbuf_put(&line, c, bytes_of(c, t->cap[i] - 1));
				gbuf_put(&line, "\xe2\x80\xa6", 3); /* ... */
				cw = t->cap[i];
			} else {
				gbuf_put(&line, c, strlen(c));
			}
			if (i + 1 < t->ncols)
				for (int k = cw; k < w[i] + 2; k++)
					gbuf_put(&line, " ", 1);
		}
		/* no trailing blanks */
		while (line.len && line.p[line.len - 1] == ' ')
			line.p[--line.len] = '\0';
		size_t n = width > 0 ? bytes_of(line.p, width) : line.len;
		gbuf_put(b, line.p, n);
		gbuf_put(b, "\n", 1);
	}
	gbuf_free(&line);
	free(w);
}

void
table_print(const struct table *t, FILE *f)
{
	struct gbuf b = {0};
	table_render(t, &b, 0);
	if (b.p)
		fputs(b.p, f);
	gbuf_free(&b);
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

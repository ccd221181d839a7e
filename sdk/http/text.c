/* text.c - the text a request is made of and an answer brings back:
 * request header lists (berth/http.h), the exact list handed to libcurl,
 * the kept response headers, base64 and URL escaping. */
#define _GNU_SOURCE /* strncasecmp */
#include "internal.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- request headers ---------------------------------------------------- */

void
berth_http_headers_init(struct berth_http_headers *h)
{
	memset(h, 0, sizeof(*h));
}

void
berth_http_headers_fini(struct berth_http_headers *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i]);
	free(h->v);
	memset(h, 0, sizeof(*h));
}

static int
headers_push(struct berth_http_headers *h, char *line)
{
	if (!line)
		return -1;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 8;
		char **v = realloc(h->v, cap * sizeof(*v));
		if (!v) {
			free(line);
			return -1;
		}
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n++] = line;
	return 0;
}

int
berth_http_headers_add(struct berth_http_headers *h, const char *name,
		       const char *value)
{
	size_t n = strlen(name) + strlen(value) + 3;
	char *line = malloc(n);
	if (!line)
		return -1;
	/* libcurl: "Name:" removes a header, "Name;" sends it empty */
	if (*value)
		snprintf(line, n, "%s: %s", name, value);
	else
		snprintf(line, n, "%s;", name);
	return headers_push(h, line);
}

static bool
line_is(const char *line, const char *name)
{
	size_t n = strlen(name);
	return strncasecmp(line, name, n) == 0 &&
	       (line[n] == ':' || line[n] == ';');
}

void
berth_http_headers_remove(struct berth_http_headers *h, const char *name)
{
	size_t j = 0;
	for (size_t i = 0; i < h->n; i++) {
		if (line_is(h->v[i], name))
			free(h->v[i]);
		else
			h->v[j++] = h->v[i];
	}
	h->n = j;
}

bool
berth_http_headers_has(const struct berth_http_headers *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (line_is(h->v[i], name))
			return true;
	return false;
}

int
bh_headers_copy(struct berth_http_headers *dst,
		const struct berth_http_headers *src)
{
	berth_http_headers_init(dst);
	for (size_t i = 0; src && i < src->n; i++)
		if (headers_push(dst, strdup(src->v[i])) != 0)
			return -1;
	return 0;
}

/* The exact list handed to libcurl: the caller's headers, then blanks
 * that stop libcurl from adding its own Accept, Content-Type and Expect. */
struct curl_slist *
bh_headers_slist(const struct berth_http_headers *h)
{
	static const char *const internal[] = {"Accept", "Content-Type",
					       "Expect"};
	struct curl_slist *l = NULL, *t;
	for (size_t i = 0; i < h->n; i++) {
		if (!(t = curl_slist_append(l, h->v[i])))
			goto oom;
		l = t;
	}
	for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++) {
		char blank[32];
		if (berth_http_headers_has(h, internal[i]))
			continue;
		snprintf(blank, sizeof(blank), "%s:", internal[i]);
		if (!(t = curl_slist_append(l, blank)))
			goto oom;
		l = t;
	}
	return l;
oom:
	curl_slist_free_all(l);
	return NULL;
}

/* --- response headers ---------------------------------------------------- */

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Adds a received header line (len bytes, no CRLF) to h as "Name: value",
 * the value trimmed; a folded line (starting with a blank) continues the
 * last one. Lines without a name are skipped. 0, or -1 when out of
 * memory. */
int
bh_response_header_add(struct berth_http_headers *h, const char *data,
		       size_t len)
{
	const char *v = data, *end = data + len;
	if (is_blank(*data)) {
		while (v < end && is_blank(*v))
			v++;
		while (end > v && is_blank(end[-1]))
			end--;
		if (h->n == 0 || v == end)
			return 0;
		char *last = h->v[h->n - 1];
		size_t ln = strlen(last);
		bool sep = last[ln - 1] != ' '; /* "Name: " had no value */
		char *t = realloc(last, ln + sep + (size_t)(end - v) + 1);
		if (!t)
			return -1;
		if (sep)
			t[ln++] = ' ';
		memcpy(t + ln, v, (size_t)(end - v));
		t[ln + (size_t)(end - v)] = '\0';
		h->v[h->n - 1] = t;
		return 0;
	}
	const char *colon = memchr(data, ':', len);
	if (!colon || colon == data)
		return 0;
	for (v = colon + 1; v < end && is_blank(*v); v++)
		;
	while (end > v && is_blank(end[-1]))
		end--;
	size_t nl = (size_t)(colon - data), vl = (size_t)(end - v);
	char *line = malloc(nl + 2 + vl + 1);
	if (!line)
		return -1;
	memcpy(line, data, nl);
	memcpy(line + nl, ": ", 2);
	memcpy(line + nl + 2, v, vl);
	line[nl + 2 + vl] = '\0';
	return headers_push(h, line);
}

const char *
berth_http_response_header(const struct berth_http_response *r,
			   const char *name)
{
	if (!r || !name)
		return NULL;
	size_t n = strlen(name);
	for (size_t i = 0; i < r->headers.n; i++) {
		const char *l = r->headers.v[i];
		if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
			l += n + 1;
			while (is_blank(*l))
				l++;
			return l;
		}
	}
	return NULL;
}

/* --- base64, URL escaping ------------------------------------------------- */

int
berth_http_base64(const void *in, size_t len, char *out, size_t outlen)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = in;
	if (outlen > 0)
		out[0] = '\0';
	if (len > (size_t)(INT_MAX / 4 - 1) * 3 ||
	    outlen < (len + 2) / 3 * 4 + 1)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = i + 1 < len ? abc[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? abc[v & 63] : '=';
	}
	out[o] = '\0';
	return (int)o;
}

/* libcurl's curl_easy_escape (a NULL handle is fine since 7.82) keeps
 * exactly RFC 3986's unreserved characters. */
int
berth_http_url_escape(const char *s, char *out, size_t outlen)
{
	if (outlen > 0)
		out[0] = '\0';
	size_t n = strlen(s);
	if (n > INT_MAX / 3)
		return -1;
	char *e = curl_easy_escape(NULL, s, (int)n);
	if (!e)
		return -1;
	size_t el = strlen(e);
	int rc = -1;
	if (el < outlen) {
		memcpy(out, e, el + 1);
		rc = (int)el;
	}
	curl_free(e);
	return rc;
}

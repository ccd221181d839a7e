/* glob.c - doublestar patterns (see policy.h): brace alternatives
 * expanded at compile time, '/'-separated components, "**" components,
 * and per-component matching of '*', '?', classes and escapes. */
#include "policy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GLOB_MAX_ALTS 256
#define GLOB_MAX_LEN 1024

/* ===================================================================== */
/* doublestar patterns                                                    */
/* ===================================================================== */

struct glob_alt {
	char **comps;
	size_t n;
};

struct ret_glob {
	bool match_all; /* the empty pattern */
	struct glob_alt *alts;
	size_t n_alts;
};

/* One UTF-8 character at s: its length (>= 1) and code point (a byte that
 * starts no valid sequence counts as one character of its own value). */
static size_t
u8dec(const char *s, unsigned *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len;
	unsigned v;
	if (u[0] < 0x80) {
		*cp = u[0];
		return 1;
	}
	if ((u[0] & 0xe0) == 0xc0) {
		len = 2;
		v = u[0] & 0x1f;
	} else if ((u[0] & 0xf0) == 0xe0) {
		len = 3;
		v = u[0] & 0x0f;
	} else if ((u[0] & 0xf8) == 0xf0) {
		len = 4;
		v = u[0] & 0x07;
	} else {
		*cp = u[0];
		return 1;
	}
	for (size_t i = 1; i < len; i++) {
		if ((u[i] & 0xc0) != 0x80) {
			*cp = u[0];
			return 1;
		}
		v = (v << 6) | (u[i] & 0x3f);
	}
	*cp = v;
	return len;
}

/* p points at '['; the position after the closing ']', or NULL when the
 * class is empty or unclosed. */
static const char *
class_end(const char *p)
{
	p++;
	if (*p == '^' || *p == '!')
		p++;
	if (*p == ']')
		return NULL;
	while (*p && *p != ']') {
		if (*p == '\\' && !*++p)
			return NULL;
		p++;
	}
	return *p == ']' ? p + 1 : NULL;
}

/* Does the class at p ('[' .. ']', well formed) hold the character c? */
static bool
class_match(const char *p, unsigned c)
{
	bool neg = false, hit = false;
	p++;
	if (*p == '^' || *p == '!') {
		neg = true;
		p++;
	}
	while (*p != ']') {
		unsigned lo, hi;
		if (*p == '\\')
			p++;
		p += u8dec(p, &lo);
		hi = lo;
		if (p[0] == '-' && p[1] != ']' && p[1]) {
			p++;
			if (*p == '\\')
				p++;
			p += u8dec(p, &hi);
		}
		if (c >= lo && c <= hi)
			hit = true;
	}
	return hit != neg;
}

/* One component, no braces: '*', '?', classes, escapes, literals.
 * Iterative, backtracking only to the last '*' (linear for a pattern
 * with one star, quadratic at worst). */
static bool
comp_match(const char *p, const char *s)
{
	const char *star_p = NULL, *star_s = NULL;
	while (*s) {
		if (*p == '*') {
			while (*p == '*')
				p++;
			star_p = p;
			star_s = s;
			continue;
		}
		unsigned c;
		size_t sl = u8dec(s, &c);
		if (*p == '?') {
			p++;
			s += sl;
			continue;
		}
		if (*p == '[') {
			if (class_match(p, c)) {
				p = class_end(p);
				s += sl;
				continue;
			}
		} else if (*p) {
			const char *q = *p == '\\' ? p + 1 : p;
			unsigned pc;
			size_t pl = u8dec(q, &pc);
			if (pl == sl && memcmp(q, s, sl) == 0) {
				p = q + pl;
				s += sl;
				continue;
			}
		}
		if (!star_p)
			return false;
		unsigned skip;
		star_s += u8dec(star_s, &skip);
		s = star_s;
		p = star_p;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

static bool
alt_match(char *const *pc, size_t np, char *const *sc, size_t ns)
{
	if (np == 0)
		return ns == 0;
	if (strcmp(pc[0], "**") == 0) {
		if (np == 1)
			return true;
		for (size_t k = 0; k <= ns; k++)
			if (alt_match(pc + 1, np - 1, sc + k, ns - k))
				return true;
		return false;
	}
	if (ns == 0 || !comp_match(pc[0], sc[0]))
		return false;
	return alt_match(pc + 1, np - 1, sc + 1, ns - 1);
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* Splits s at '/' outside classes and escapes; NULL when out of memory. */
static char **
split_components(const char *s, bool pattern, size_t *n)
{
	size_t cap = 1;
	for (const char *q = s; *q; q++)
		cap += *q == '/';
	char **v = calloc(cap, sizeof(*v));
	if (!v)
		return NULL;
	size_t k = 0;
	const char *start = s, *q = s;
	for (;;) {
		if (pattern && *q == '\\' && q[1]) {
			q += 2;
			continue;
		}
		if (pattern && *q == '[') {
			const char *e = class_end(q);
			if (e) {
				q = e;
				continue;
			}
		}
		if (*q == '/' || *q == '\0') {
			v[k] = strndup(start, (size_t)(q - start));
			if (!v[k]) {
				strv_free(v, k);
				return NULL;
			}
			k++;
			if (!*q)
				break;
			start = q + 1;
		}
		q++;
	}
	*n = k;
	return v;
}

struct expansion {
	char **v;
	size_t n, cap;
};

/* Checks the syntax of a brace-free stretch [p, e): escapes and classes.
 * 0, or -1 with err. */
static int
check_plain(const char *p, const char *e, char *err, size_t errlen)
{
	while (p < e) {
		if (*p == '\\') {
			if (p + 1 >= e) {
				ret_seterr(err, errlen, "pattern ends with a '\\'");
				return -1;
			}
			p += 2;
		} else if (*p == '[') {
			const char *ce = class_end(p);
			if (!ce || ce > e) {
				ret_seterr(err, errlen,
				       "unclosed or empty character class '['");
				return -1;
			}
			p = ce;
		} else {
			p++;
		}
	}
	return 0;
}

/* From p (inside a {} group) to the first '}' (or, with commas, ',') at
 * depth 0, or to stop; skips escapes and classes. NULL when the group is
 * unclosed or a class in it malformed (*bad_class set then). */
static const char *
group_scan(const char *p, const char *stop, bool commas, bool *bad_class)
{
	int depth = 0;
	while (*p && p != stop) {
		if (*p == '\\') {
			if (!p[1])
				return NULL;
			p += 2;
			continue;
		}
		if (*p == '[') {
			const char *ce = class_end(p);
			if (!ce) {
				*bad_class = true;
				return NULL;
			}
			p = ce;
			continue;
		}
		if (*p == '{')
			depth++;
		else if (*p == '}' && depth-- == 0)
			return p;
		else if (*p == ',' && depth == 0 && commas)
			return p;
		p++;
	}
	return p == stop && stop ? p : NULL;
}

/* open points at '{': the matching '}', NULL when unclosed, or open
 * itself when a class inside is malformed. */
static const char *
brace_scan(const char *open)
{
	bool bad = false;
	const char *c = group_scan(open + 1, NULL, false, &bad);
	return bad ? open : c;
}

/* The next top-level ',' of the group after p, or close. */
static const char *
next_cut(const char *p, const char *close)
{
	bool bad = false;
	const char *c = group_scan(p, close, true, &bad);
	return c ? c : close;
}

/* Expands the first top-level {..} of pat, recursively, into x. */
static int
expand(const char *pat, struct expansion *x, char *err, size_t errlen)
{
	const char *p = pat, *open = NULL;
	while (*p) {
		if (*p == '\\') {
			if (!p[1]) {
				ret_seterr(err, errlen, "pattern ends with a '\\'");
				return -1;
			}
			p += 2;
		} else if (*p == '[') {
			const char *ce = class_end(p);
			if (!ce) {
				ret_seterr(err, errlen,
				       "unclosed or empty character class '['");
				return -1;
			}
			p = ce;
		} else if (*p == '{') {
			open = p;
			break;
		} else {
			p++;
		}
	}
	if (!open) {
		if (x->n == GLOB_MAX_ALTS) {
			ret_seterr(err, errlen, "more than %d {} alternatives",
			       GLOB_MAX_ALTS);
			return -1;
		}
		if (x->n == x->cap) {
			size_t nc = x->cap ? 2 * x->cap : 4;
			char **nv = realloc(x->v, nc * sizeof(*nv));
			if (!nv) {
				ret_seterr(err, errlen, "out of memory");
				return -1;
			}
			x->v = nv;
			x->cap = nc;
		}
		if (!(x->v[x->n] = strdup(pat))) {
			ret_seterr(err, errlen, "out of memory");
			return -1;
		}
		x->n++;
		return 0;
	}
	/* the matching '}' */
	const char *close = brace_scan(open);
	if (close == open) {
		ret_seterr(err, errlen, "unclosed or empty character class '['");
		return -1;
	}
	if (!close) {
		ret_seterr(err, errlen, "unclosed '{'");
		return -1;
	}
	size_t pre = (size_t)(open - pat), post = strlen(close + 1);
	for (const char *a = open; a != close;) {
		/* the alternative after a: up to the next top-level ',' */
		const char *b = next_cut(a + 1, close);
		size_t alen = (size_t)(b - a - 1);
		char *s = malloc(pre + alen + post + 1);
		if (!s) {
			ret_seterr(err, errlen, "out of memory");
			return -1;
		}
		memcpy(s, pat, pre);
		memcpy(s + pre, a + 1, alen);
		memcpy(s + pre + alen, close + 1, post + 1);
		int rc = expand(s, x, err, errlen);
		free(s);
		if (rc)
			return rc;
		a = b;
	}
	return 0;
}

void
ret_glob_free(struct ret_glob *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n_alts; i++)
		strv_free(g->alts[i].comps, g->alts[i].n);
	free(g->alts);
	free(g);
}

int
ret_glob_compile(const char *pattern, struct ret_glob **out, char *err,
		 size_t errlen)
{
	*out = NULL;
	if (strlen(pattern) > GLOB_MAX_LEN) {
		ret_seterr(err, errlen, "pattern longer than %d bytes",
		       GLOB_MAX_LEN);
		return -1;
	}
	struct ret_glob *g = calloc(1, sizeof(*g));
	if (!g) {
		ret_seterr(err, errlen, "out of memory");
		return -1;
	}
	if (!*pattern) {
		g->match_all = true;
		*out = g;
		return 0;
	}
	struct expansion x = {0};
	if (expand(pattern, &x, err, errlen) != 0)
		goto fail;
	for (size_t i = 0; i < x.n; i++)
		if (check_plain(x.v[i], x.v[i] + strlen(x.v[i]), err,
				errlen) != 0)
			goto fail;
	g->alts = calloc(x.n, sizeof(*g->alts));
	if (!g->alts) {
		ret_seterr(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < x.n; i++) {
		g->alts[i].comps =
			split_components(x.v[i], true, &g->alts[i].n);
		if (!g->alts[i].comps) {
			ret_seterr(err, errlen, "out of memory");
			goto fail;
		}
		g->n_alts++;
	}
	strv_free(x.v, x.n);
	*out = g;
	return 0;
fail:
	strv_free(x.v, x.n);
	ret_glob_free(g);
	return -1;
}

bool
ret_glob_match(const struct ret_glob *g, const char *s)
{
	if (g->match_all)
		return true;
	size_t ns = 0;
	char **sc = split_components(s, false, &ns);
	if (!sc)
		return false;
	bool hit = false;
	for (size_t i = 0; i < g->n_alts && !hit; i++)
		hit = alt_match(g->alts[i].comps, g->alts[i].n, sc, ns);
	strv_free(sc, ns);
	return hit;
}


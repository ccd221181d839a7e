/* fuzz_reg_challenge.c - fuzz target for the registry client's
 * WWW-Authenticate parser (reg_parse_challenge, plugins/registry/auth.c):
 * what a 401 from any registry (or anything answering in its place) is
 * read with before the Bearer token flow starts.
 *
 * Two runs per input:
 *   1. the input as a header value (up to its first NUL);
 *   2. a round trip: the input is cut at 0x00 / 0x01 bytes into a realm,
 *      a service and a scope (and the first byte picks the separators
 *      and parameter order), which are written as RFC 7235 quoted strings
 *      (backslash before '"' and '\') into a challenge
 *      `Bearer realm="..",service="..",scope=".."`, with optional white
 *      space around "=" and after ",", and an unknown parameter between.
 *
 * Properties: the scheme is NUL-terminated inside its buffer; the parsed
 * values are NUL-terminated strings no longer than the input; the round
 * trip gives back exactly the three values (quoted commas, equals signs,
 * escaped quotes and blanks included). */
#include "fuzz_common.h"

#include "internal.h"

static void
free3(char **a, char **b, char **c)
{
	free(*a);
	free(*b);
	free(*c);
	*a = *b = *c = NULL;
}

static void
raw_run(const char *s, size_t n)
{
	char scheme[16];
	char *realm = NULL, *service = NULL, *scope = NULL;
	memset(scheme, 'x', sizeof(scheme));
	reg_parse_challenge(s, scheme, sizeof(scheme), &realm, &service,
			    &scope);
	if (!memchr(scheme, '\0', sizeof(scheme)))
		fuzz_fail("the scheme is not NUL-terminated");
	if ((realm && strlen(realm) > n) || (service && strlen(service) > n) ||
	    (scope && strlen(scope) > n))
		fuzz_fail("a value longer than the header");
	free3(&realm, &service, &scope);
}

/* Appends s as a quoted string. */
static size_t
put_quoted(char *out, size_t o, const char *s)
{
	out[o++] = '"';
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o++] = '"';
	return o;
}

static void
round_trip(const uint8_t *data, size_t size)
{
	if (size < 1)
		return;
	uint8_t mode = data[0];
	data++;
	size--;
	/* three values cut at 0x00 / 0x01; no NUL inside a C string */
	char *v[3];
	size_t start = 0;
	for (int i = 0; i < 3; i++) {
		size_t end = start;
		while (end < size && data[end] > 0x01)
			end++;
		v[i] = strndup((const char *)data + start,
			       end > start ? end - start : 0);
		start = end < size ? end + 1 : size;
	}
	static const char *const keys[3] = {"realm", "service", "scope"};
	static const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
					 {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
	const int *ord = orders[mode % 6];
	const char *eq = (mode & 0x08) ? " = " : "=";
	const char *sep = (mode & 0x10) ? ", " : ",";
	if (mode & 0x40)
		sep = ",\t"; /* OWS is spaces and tabs (RFC 9110 5.6.3) */
	bool extra = mode & 0x20;
	const char *scheme_name = (mode & 0x80) ? "bearer" : "Bearer";

	size_t cap = 64 + 2 * (strlen(v[0]) + strlen(v[1]) + strlen(v[2])) +
		     64;
	char *h = malloc(cap);
	size_t o = (size_t)sprintf(h, "%s ", scheme_name);
	for (int i = 0; i < 3; i++) {
		if (i)
			o += (size_t)sprintf(h + o, "%s", sep);
		if (extra && i == 1)
			o += (size_t)sprintf(h + o,
					     "error%s\"invalid_token\"%s", eq,
					     sep);
		o += (size_t)sprintf(h + o, "%s%s", keys[ord[i]], eq);
		o = put_quoted(h, o, v[ord[i]]);
	}
	h[o] = '\0';

	char scheme[16];
	char *got[3] = {NULL, NULL, NULL};
	reg_parse_challenge(h, scheme, sizeof(scheme), &got[0], &got[1],
			    &got[2]);
	if (strcmp(scheme, scheme_name) != 0)
		fuzz_fail("round trip: the scheme changed");
	for (int i = 0; i < 3; i++)
		if (!got[i] || strcmp(got[i], v[i]) != 0) {
			fprintf(stderr,
				"header: %s\n%s: want \"%s\", got %s%s%s\n", h,
				keys[i], v[i], got[i] ? "\"" : "",
				got[i] ? got[i] : "NULL", got[i] ? "\"" : "");
			fuzz_fail("round trip: a value changed");
		}
	free3(&got[0], &got[1], &got[2]);
	free(h);
	for (int i = 0; i < 3; i++)
		free(v[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	char *s = strndup((const char *)data, size);
	if (!s)
		return 0;
	raw_run(s, size);
	free(s);
	round_trip(data, size);
	return 0;
}

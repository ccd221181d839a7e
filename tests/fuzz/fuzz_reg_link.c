/* fuzz_reg_link.c - fuzz target for the registry client's Link header
 * parser (reg_link_next, plugins/registry/reg.c), which berth_reg_tags
 * follows page after page, and of reg_resolve, which turns the target
 * into the next request's URL.
 *
 * Two runs per input:
 *   1. the input as a Link header value (up to its first NUL);
 *   2. a round trip: the input is cut at 0x00 / 0x01 bytes into two
 *      URI references and a parameter value (with '<', '>' and control
 *      bytes dropped from the references, as RFC 3986 has them), written
 *      as `<first>; rel="prev"; title="<value>", <second>; rel="next"`
 *      (the first byte picks the blanks and whether rel is quoted).
 *
 * Properties: a target found lies between '<' and '>' of the header and
 * has no '>'; it resolves to an http:// URL; the round trip finds exactly
 * the second reference (a quoted parameter value may hold any of '<', '>',
 * ',', ';' and "rel=next", RFC 8288 3). */
#include "fuzz_common.h"

#include "internal.h"

static struct berth_reg *reg;

static void
raw_run(const char *s)
{
	char *next = reg_link_next(s);
	if (!next)
		return;
	if (strchr(next, '>'))
		fuzz_fail("a target with a '>'");
	size_t n = strlen(next);
	bool found = false;
	for (const char *at = strchr(s, '<'); at && !found;
	     at = strchr(at + 1, '<'))
		found = strncmp(at + 1, next, n) == 0 && at[1 + n] == '>';
	if (!found)
		fuzz_fail("a target that is not between '<' and '>'");
	char *url = reg_resolve(reg, next);
	if (!url || (strncasecmp(url, "http://", 7) != 0 &&
		     strncasecmp(url, "https://", 8) != 0))
		fuzz_fail("a target that does not resolve to a URL");
	free(url);
	free(next);
}

/* The next piece of data up to a 0x00 / 0x01 byte, without the bytes a
 * URI reference cannot hold when uri is set (and no '"' or '\' in a
 * parameter value, kept simple: a quoted-string without escapes). */
static char *
piece(const uint8_t *data, size_t size, size_t *pos, bool uri)
{
	char *out = malloc(size + 1);
	size_t o = 0;
	while (*pos < size && data[*pos] > 0x01) {
		uint8_t c = data[(*pos)++];
		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\' ||
		    (uri && (c == '<' || c == '>' || c == ' ' || c >= 0x80)))
			continue;
		out[o++] = (char)c;
	}
	if (*pos < size)
		(*pos)++;
	out[o] = '\0';
	return out;
}

static void
round_trip(const uint8_t *data, size_t size)
{
	if (size < 1)
		return;
	uint8_t mode = data[0];
	size_t pos = 1;
	char *first = piece(data, size, &pos, true);
	char *second = piece(data, size, &pos, true);
	char *title = piece(data, size, &pos, false);
	if (!*second) {
		free(first);
		free(second);
		free(title);
		return; /* "<>" has no target to find */
	}
	const char *sp = (mode & 1) ? " " : "";
	const char *rel = (mode & 2) ? "rel=next" : "rel=\"next\"";
	size_t cap = strlen(first) + strlen(second) + strlen(title) + 64;
	char *h = malloc(cap);
	snprintf(h, cap, "<%s>;%srel=\"prev\";%stitle=\"%s\",%s<%s>;%s%s",
		 first, sp, sp, title, sp, second, sp, rel);
	char *next = reg_link_next(h);
	if (!next || strcmp(next, second) != 0) {
		fprintf(stderr, "header: %s\nwant <%s>, got %s\n", h, second,
			next ? next : "NULL");
		fuzz_fail("round trip: not the rel=\"next\" target");
	}
	free(next);
	free(h);
	free(first);
	free(second);
	free(title);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	if (!reg) {
		struct berth_reg_options o = {.url = "http://127.0.0.1:5000"};
		char err[256];
		if (!(reg = berth_reg_new(&o, err, sizeof(err))))
			fuzz_fail(err);
	}
	char *s = strndup((const char *)data, size);
	if (!s)
		return 0;
	raw_run(s);
	free(s);
	round_trip(data, size);
	return 0;
}

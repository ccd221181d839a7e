/* fuzz_gojson.c - fuzz target for the Go JSON encoder
 * (host/common/gojson.c).
 *
 * The input is parsed by cJSON; when it is JSON, its tree is encoded.
 * Independently of that, the raw input is encoded as a Go string (both
 * forms) and its first 8 bytes, read as a double, as a number.
 *
 * Properties: every encoding is valid JSON for cJSON; the encoding of a
 * tree reaches a fixed point after one round (encode, parse, encode gives
 * the same bytes); a Go string literal decodes to the input when the input
 * is valid UTF-8 without NUL; a finite number reads back as the same
 * double (shortest round-trip form). */
#include <math.h>

#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "common/gojson.h"

static cJSON *
must_parse(const char *text, const char *what)
{
	cJSON *j = cJSON_Parse(text);
	if (!j) {
		fprintf(stderr, "%s: %s\n", what, text);
		fuzz_fail("gojson output is not valid JSON");
	}
	return j;
}

static void
fuzz_tree(const uint8_t *data, size_t size)
{
	cJSON *v = cJSON_ParseWithLength((const char *)data, size);
	if (!v)
		return;
	char *e1 = gojson_encode(v);
	cJSON_Delete(v);
	cJSON *v1 = must_parse(e1, "tree");
	char *e2 = gojson_encode(v1);
	cJSON_Delete(v1);
	cJSON *v2 = must_parse(e2, "tree again");
	char *e3 = gojson_encode(v2);
	cJSON_Delete(v2);
	if (strcmp(e2, e3) != 0) {
		fprintf(stderr, "e2 %s\ne3 %s\n", e2, e3);
		fuzz_fail("encode(parse(encode)) is not a fixed point");
	}
	free(e1);
	free(e2);
	free(e3);
}

static bool
valid_utf8_no_nul(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint8_t c = s[i];
		size_t k;
		uint32_t cp;
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, cp = c & 0x07;
		} else {
			return false;
		}
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) ||
		    (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static void
fuzz_string(const uint8_t *data, size_t size)
{
	for (int decoded = 0; decoded < 2; decoded++) {
		struct gbuf b = {0};
		if (decoded)
			gojson_append_decoded_string(&b, (const char *)data,
						     size);
		else
			gojson_append_string(&b, (const char *)data, size);
		char *text = gbuf_take(&b);
		cJSON *j = must_parse(text, "string");
		if (!cJSON_IsString(j))
			fuzz_fail("a Go string literal is not a string");
		if (valid_utf8_no_nul(data, size) &&
		    (strlen(j->valuestring) != size ||
		     memcmp(j->valuestring, data, size) != 0))
			fuzz_fail("a valid UTF-8 string did not round-trip");
		cJSON_Delete(j);
		free(text);
	}
}

static void
fuzz_number(const uint8_t *data, size_t size)
{
	if (size < 8)
		return;
	double d;
	memcpy(&d, data, sizeof(d));
	struct gbuf b = {0};
	gojson_append_number(&b, d);
	char *text = gbuf_take(&b);
	if (isfinite(d)) {
		char *end = NULL;
		double back = strtod(text, &end);
		if (*end || back != d) {
			fprintf(stderr, "%.17g -> %s\n", d, text);
			fuzz_fail("a number does not read back");
		}
		cJSON_Delete(must_parse(text, "number"));
	}
	free(text);
	char *i = NULL;
	b = (struct gbuf){0};
	long long ll;
	memcpy(&ll, data, sizeof(ll));
	gojson_append_int(&b, ll);
	i = gbuf_take(&b);
	if (strtoll(i, NULL, 10) != ll)
		fuzz_fail("an int does not read back");
	free(i);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	fuzz_tree(data, size);
	fuzz_string(data, size);
	fuzz_number(data, size);
	return 0;
}

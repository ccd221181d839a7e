/* test_gojson.c - gojson: JSON text byte-identical to Go's encoding/json.
 *
 * The expected strings are what Go (>= 1.22) prints for
 * json.Marshal(v) where v came from json.Unmarshal of the input into an
 * interface{}: sorted map keys, HTML escapes, \b and \f by name, float64
 * numbers in shortest form with ES6-like exponent cut-offs. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/gojson.h"
#include "common/json.h"
#include "common/utf8.h"
#include "testlib.h"

struct json_case {
	const char *in;   /* JSON text parsed by cJSON */
	const char *want; /* Go's output */
};

static const struct json_case json_cases[] = {
	/* scalars */
	{"null", "null"},
	{"true", "true"},
	{"false", "false"},
	{"\"\"", "\"\""},
	{"{}", "{}"},
	{"[]", "[]"},
	/* map keys sorted by bytes: "" < "B" < "_" < "a" < "aa" < "b" */
	{"{\"b\":1,\"a\":2,\"B\":3,\"_\":4,\"aa\":5,\"\":6}",
	 "{\"\":6,\"B\":3,\"_\":4,\"a\":2,\"aa\":5,\"b\":1}"},
	/* multi-byte keys sort after ASCII ("Z" 5A < "z" 7A < "é" C3) */
	{"{\"\xc3\xa9\":1,\"z\":2,\"Z\":3}",
	 "{\"Z\":3,\"z\":2,\"\xc3\xa9\":1}"},
	/* a Go map keeps the last of duplicate keys */
	{"{\"a\":1,\"b\":0,\"a\":2}", "{\"a\":2,\"b\":0}"},
	/* whitespace dropped, arrays keep their order */
	{" { \"a\" : [ 3 , 1 , 2 ] , \"b\" : { } } ",
	 "{\"a\":[3,1,2],\"b\":{}}"},
	/* nested objects sorted at every level, inside arrays too */
	{"{\"z\":[{\"b\":null,\"a\":true}],\"y\":{\"d\":{\"c\":false,"
	 "\"a\":[[],{}]}}}",
	 "{\"y\":{\"d\":{\"a\":[[],{}],\"c\":false}},\"z\":[{\"a\":true,"
	 "\"b\":null}]}"},
	/* HTML escapes; '/' is not escaped (and "\/" reads as '/') */
	{"{\"h\":\"<a href=\\\"x\\\">&amp;</a>\"}",
	 "{\"h\":\"\\u003ca href=\\\"x\\\"\\u003e\\u0026amp;\\u003c/a"
	 "\\u003e\"}"},
	{"\"a/b\\/c\"", "\"a/b/c\""},
	/* keys are escaped the same way */
	{"{\"<k&>\":\"v\"}", "{\"\\u003ck\\u0026\\u003e\":\"v\"}"},
	/* backslash and quote */
	{"\"q\\\"b\\\\\"", "\"q\\\"b\\\\\""},
	/* U+2028 / U+2029, from escapes and from raw bytes */
	{"\"\\u2028x\\u2029\"", "\"\\u2028x\\u2029\""},
	{"\"\xe2\x80\xa8\xe2\x80\xa9\"", "\"\\u2028\\u2029\""},
	/* control characters: \n \r \t \b \f by name, others \u00xx
	 * (lowercase hex); DEL (0x7f) is copied */
	{"\"a\\u0001b\\u001fc\\n\\r\\t\\b\\f\\u007f\\u000b\"",
	 "\"a\\u0001b\\u001fc\\n\\r\\t\\b\\f\x7f\\u000b\""},
	{"\"\\u001B[0m\"", "\"\\u001b[0m\""},
	/* unicode is copied, escapes are decoded (incl. surrogate pairs) */
	{"\"h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80\"",
	 "\"h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80\""},
	{"\"\\u00e9\\ud83d\\ude00\\uFFFD\"",
	 "\"\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbd\""},
	/* invalid UTF-8 in a decoded string: Go's decoder turns each bad
	 * byte into U+FFFD, which the encoder then copies as raw bytes */
	{"\"a\xffz\"", "\"a\xef\xbf\xbdz\""},
	{"\"\xc3\x28\"", "\"\xef\xbf\xbd(\""},
	{"\"\xed\xa0\x80\"", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
	{"\"\xc0\xaf\"", "\"\xef\xbf\xbd\xef\xbf\xbd\""},
	{"\"\xf4\x90\x80\x80\"",
	 "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
	{"\"x\xe2\x82\"", "\"x\xef\xbf\xbd\xef\xbf\xbd\""},
	{"\"\xf0\x9f\x98\"", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
	/* overlong forms and bytes past U+10FFFF; U+0800 and U+10000 are
	 * the smallest valid 3- and 4-byte forms */
	{"\"\xe0\x80\xaf\"", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
	{"\"\xf0\x80\x80\xaf\"",
	 "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
	{"\"\xf5\x80\x80\x80\"",
	 "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
	{"\"\xe0\xa0\x80\xf0\x90\x80\x80\"", "\"\xe0\xa0\x80\xf0\x90\x80\x80\""},
	/* keys with invalid bytes become U+FFFD before sorting: both keys
	 * below are the same Go map key, the last value wins */
	{"{\"\xff\":1,\"\xef\xbf\xbd\":2,\"a\":0}",
	 "{\"a\":0,\"\xef\xbf\xbd\":2}"},
	/* numbers are float64 */
	{"[0,-0,5,-5,2.5,1e21,1e20,0.000001,1e-7,123456789.123,0.1]",
	 "[0,-0,5,-5,2.5,1e+21,100000000000000000000,0.000001,1e-7,"
	 "123456789.123,0.1]"},
	{"[9007199254740992,9007199254740993,-9007199254740992,"
	 "12345678901234567890,1.5E-10,1.0,100e-2,5e-324]",
	 "[9007199254740992,9007199254740992,-9007199254740992,"
	 "12345678901234567000,1.5e-10,1,1,5e-324]"},
	{"{\"n\":1.7e+09,\"f\":1.2345678901234e+19,\"p\":0.30000000000000004}",
	 "{\"f\":12345678901234000000,\"n\":1700000000,"
	 "\"p\":0.30000000000000004}"},
};

struct num_case {
	double d;
	const char *want;
};

static void
num_cases_check(void)
{
	const struct num_case cases[] = {
		{0.0, "0"},
		{-0.0, "-0"},
		{5, "5"},
		{-5, "-5"},
		{2.5, "2.5"},
		{0.1, "0.1"},
		{0.3, "0.3"},
		{1.0 / 3.0, "0.3333333333333333"},
		{-100.5, "-100.5"},
		{123456789.123, "123456789.123"},
		{1e20, "100000000000000000000"},
		{1e21, "1e+21"},
		{-1e21, "-1e+21"},
		{999999999999999999999.0, "1e+21"},
		{1.5e21, "1.5e+21"},
		{1e22, "1e+22"},
		{1e100, "1e+100"},
		{1.7976931348623157e308, "1.7976931348623157e+308"},
		{0.000001, "0.000001"},
		{0.0000012, "0.0000012"},
		/* Go's floatEncoder cleans "e-07" up to "e-7" */
		{1e-7, "1e-7"},
		{-1e-7, "-1e-7"},
		{1.5e-7, "1.5e-7"},
		{9.5e-9, "9.5e-9"},
		{1e-10, "1e-10"},
		{1.23e-18, "1.23e-18"},
		{5e-324, "5e-324"},
		{9007199254740992.0, "9007199254740992"},
		{9007199254740994.0, "9007199254740994"},
		{9223372036854775808.0, "9223372036854776000"},
		{1700000000, "1700000000"},
		{10000000000.0, "10000000000"},
		{4.35, "4.35"},
		{NAN, "null"},
		{INFINITY, "null"},
		{-INFINITY, "null"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct gbuf b = {0};
		gojson_append_number(&b, cases[i].d);
		char *s = gbuf_take(&b);
		CHECK_MSG(strcmp(s, cases[i].want) == 0,
			  "number %.17g: got %s, want %s", cases[i].d, s,
			  cases[i].want);
		free(s);
	}
}

/* Every double prints as its shortest round-trip text: read it back. */
static void
num_roundtrip_check(void)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;
	int bad = 0;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double d;
		memcpy(&d, &x, sizeof(d));
		if (!isfinite(d))
			continue;
		struct gbuf b = {0};
		gojson_append_number(&b, d);
		char *s = gbuf_take(&b);
		if (strtod(s, NULL) != d || strlen(s) > 25)
			bad++;
		free(s);
	}
	CHECK_MSG(bad == 0, "%d doubles did not round-trip", bad);
}

static void
json_cases_check(void)
{
	for (size_t i = 0; i < ARRAY_LEN(json_cases); i++) {
		cJSON *v = cJSON_Parse(json_cases[i].in);
		CHECK_MSG(v != NULL, "cJSON could not parse case %zu: %s", i,
			  json_cases[i].in);
		if (!v)
			continue;
		char *s = gojson_encode(v);
		CHECK_MSG(strcmp(s, json_cases[i].want) == 0,
			  "case %zu: %s\n  got  %s\n  want %s", i,
			  json_cases[i].in, s, json_cases[i].want);
		free(s);
		cJSON_Delete(v);
	}
}

/* gojson_append_string: a Go string of arbitrary bytes (json.Marshal of a
 * string that did not come from JSON): invalid bytes -> the \ufffd escape. */
static void
string_check(void)
{
	const struct {
		const char *in;
		size_t n;
		const char *want;
	} cases[] = {
		{"plain", 5, "\"plain\""},
		{"a\xffz", 3, "\"a\\ufffdz\""},
		{"\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""},
		{"\xef\xbf\xbd", 3, "\"\xef\xbf\xbd\""},
		{"x\xe2\x82", 3, "\"x\\ufffd\\ufffd\""},
		{"<&>\n\"\\/", 7, "\"\\u003c\\u0026\\u003e\\n\\\"\\\\/\""},
		{"nul\0end", 7, "\"nul\\u0000end\""},
		{"\xe2\x80\xa9", 3, "\"\\u2029\""},
		{"\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\""},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct gbuf b = {0};
		gojson_append_string(&b, cases[i].in, cases[i].n);
		char *s = gbuf_take(&b);
		CHECK_MSG(strcmp(s, cases[i].want) == 0,
			  "string case %zu: got %s, want %s", i, s,
			  cases[i].want);
		free(s);
	}
	struct gbuf b = {0};
	gojson_append_decoded_string(&b, "a\xff", 2);
	CHECK_STR(b.p, "\"a\xef\xbf\xbd\"");
	gbuf_free(&b);
}

static void
misc_check(void)
{
	/* NULL value, ints, gbuf */
	char *s = gojson_encode(NULL);
	CHECK_STR(s, "null");
	free(s);

	struct gbuf b = {0};
	s = gbuf_take(&b);
	CHECK_STR(s, "");
	free(s);

	gojson_append_int(&b, INT64_MIN);
	gbuf_putc(&b, ' ');
	gojson_append_int(&b, INT64_MAX);
	gbuf_puts(&b, " x");
	gbuf_put(&b, "yz", 1);
	CHECK_STR(b.p, "-9223372036854775808 9223372036854775807 xy");
	CHECK(b.len == strlen(b.p));
	s = gbuf_take(&b);
	CHECK(b.p == NULL && b.len == 0);
	free(s);
	gbuf_free(&b);

	/* gbuf_printf: formatted text, and an empty one still gives "" */
	gbuf_printf(&b, "%s", "");
	CHECK_STR(b.p, "");
	gbuf_printf(&b, "%d-%s-%.1f", 42, "ab", 0.5);
	gbuf_printf(&b, "|%300s|", "z");
	CHECK(b.len == 9 + 302 && strncmp(b.p, "42-ab-0.5|", 10) == 0);
	CHECK(b.p[b.len - 2] == 'z' && b.p[b.len - 1] == '|' &&
	      b.p[b.len] == '\0');
	gbuf_free(&b);

	/* a long string grows the buffer correctly */
	char big[5000];
	memset(big, '<', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	gojson_append_string(&b, big, strlen(big));
	CHECK(b.len == 2 + 6 * (sizeof(big) - 1));
	CHECK(strncmp(b.p, "\"\\u003c\\u003c", 13) == 0);
	gbuf_free(&b);

	/* a built object (no parse), with a number node and a raw node */
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "b", 0.5);
	cJSON_AddStringToObject(o, "a", "x");
	cJSON_AddItemToObject(o, "c", cJSON_CreateRaw("[1, 2]"));
	s = gojson_encode(o);
	CHECK_STR(s, "{\"a\":\"x\",\"b\":0.5,\"c\":[1, 2]}");
	free(s);
	cJSON_Delete(o);
}

/* A value nested far deeper than any thread stack allows recursion for is
 * encoded (on a small stack: the check runs in a thread with 64 KiB), and
 * sorted objects keep working at every level. */
#define DEEP 200000

static void *
deep_encode(void *arg)
{
	cJSON *root = arg;
	return gojson_encode(root);
}

static void
deep_check(void)
{
	/* [[[...{"b":1,"a":[]}...]]] built without the parser */
	cJSON *inner = cJSON_CreateObject();
	cJSON_AddNumberToObject(inner, "b", 1);
	cJSON_AddItemToObject(inner, "a", cJSON_CreateArray());
	cJSON *v = inner;
	for (int i = 0; i < DEEP; i++) {
		cJSON *a = (i % 2) ? cJSON_CreateArray() : cJSON_CreateObject();
		if (i % 2)
			cJSON_AddItemToArray(a, v);
		else
			cJSON_AddItemToObject(a, "k", v);
		v = a;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_t t;
	CHECK(pthread_create(&t, &attr, deep_encode, v) == 0);
	void *res = NULL;
	pthread_join(t, &res);
	pthread_attr_destroy(&attr);
	char *s = res;
	CHECK(s != NULL);
	size_t len = strlen(s);
	/* DEEP/2 of "{\"k\":" and of "[", the core, then the closers */
	const char *core = "{\"a\":[],\"b\":1}";
	CHECK(len == (size_t)DEEP / 2 * 5 + (size_t)DEEP / 2 * 1 +
			     strlen(core) + DEEP);
	CHECK(strncmp(s, "[{\"k\":[{\"k\":", 12) == 0);
	CHECK(strstr(s, core) != NULL);
	CHECK(strcmp(s + len - 4, "}]}]") == 0);
	free(s);
	/* cJSON_Delete recurses: free level by level */
	while (v) {
		cJSON *child = v->child;
		v->child = NULL;
		cJSON_Delete(v);
		v = child && ((child->type & 0xFF) == cJSON_Array ||
			      (child->type & 0xFF) == cJSON_Object)
			    ? child
			    : (cJSON_Delete(child), NULL);
	}

	/* siblings after a nested container are still separated */
	cJSON *p = cJSON_Parse("[[1,[2,{\"z\":[3],\"y\":4}]],5,{}]");
	s = gojson_encode(p);
	CHECK_STR(s, "[[1,[2,{\"y\":4,\"z\":[3]}]],5,{}]");
	free(s);
	cJSON_Delete(p);
}

static void
depth_scan_check(void)
{
	CHECK(gojson_depth_ok("", 0, 64));
	const char *s = "{\"a\":[1,{\"b\":[]}]}";
	CHECK(gojson_depth_ok(s, strlen(s), 4));
	CHECK(!gojson_depth_ok(s, strlen(s), 3));
	/* brackets inside strings do not count, escaped quotes do not end
	 * the string */
	s = "{\"x\":\"[[[[\\\"{{{{\"}";
	CHECK(gojson_depth_ok(s, strlen(s), 1));
	/* an escaped backslash does end before the quote */
	s = "[\"\\\\\",[[\"]";
	CHECK(!gojson_depth_ok(s, strlen(s), 2));
	/* closers lower the depth again */
	char buf[1000];
	size_t n = 0;
	for (int r = 0; r < 10; r++) {
		for (int i = 0; i < 40; i++)
			buf[n++] = '[';
		for (int i = 0; i < 40; i++)
			buf[n++] = ']';
	}
	CHECK(gojson_depth_ok(buf, n, 40));
	CHECK(!gojson_depth_ok(buf, n, 39));
	/* 800 levels (the report of issue 11) is refused at 64 */
	n = 0;
	for (int i = 0; i < 800; i++)
		buf[n++] = i % 2 ? '[' : '{';
	CHECK(!gojson_depth_ok(buf, n, 64));
	CHECK(gojson_depth_ok(buf, 64, 64));
	CHECK(!gojson_depth_ok(buf, 65, 64));
}

/* json_parse: the one parser entry of the daemon refuses nesting past
 * JSON_MAX_DEPTH before cJSON recurses (data read back from Redis may have
 * been written by anyone). */
static void
json_parse_check(void)
{
	size_t n = 2 * (JSON_MAX_DEPTH + 1);
	char *buf = malloc(n);
	for (int depth = JSON_MAX_DEPTH; depth <= JSON_MAX_DEPTH + 1; depth++) {
		size_t k = 0;
		for (int i = 0; i < depth; i++)
			buf[k++] = '[';
		for (int i = 0; i < depth; i++)
			buf[k++] = ']';
		const char *end = NULL;
		cJSON *v = json_parse(buf, k, &end);
		if (depth <= JSON_MAX_DEPTH)
			CHECK(v && cJSON_IsArray(v) && end == buf + k);
		else
			CHECK(!v && end == buf);
		cJSON_Delete(v);
	}
	free(buf);
	const char *end = NULL;
	CHECK(!json_parse("{\"a\":", 5, &end));
	CHECK(!json_parse(NULL, 0, NULL));
	cJSON *v = json_parse("{\"a\":1} ", 9, &end);
	CHECK(v && json_i64(v, "a") == 1);
	cJSON_Delete(v);
}

/* common/utf8.c: lengths and code points by Go's utf8.DecodeRune rules */
static void
utf8_check(void)
{
	static const struct {
		const char *s;
		size_t n, want;
		uint32_t cp;
	} cases[] = {
		{"a", 1, 1, 'a'},
		{"", 1, 1, 0},
		{"\xc3\xa9", 2, 2, 0xe9},
		{"\xe2\x82\xac", 3, 3, 0x20ac},
		{"\xf0\x9f\x98\x80", 4, 4, 0x1f600},
		{"\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff},
		{"\xc3\xa9", 1, 0, 0},         /* cut short */
		{"\xc0\x80", 2, 0, 0},         /* overlong NUL */
		{"\xc1\xbf", 2, 0, 0},         /* overlong */
		{"\xe0\x9f\xbf", 3, 0, 0},     /* overlong */
		{"\xf0\x8f\xbf\xbf", 4, 0, 0}, /* overlong */
		{"\xed\xa0\x80", 3, 0, 0},     /* surrogate U+D800 */
		{"\xf4\x90\x80\x80", 4, 0, 0}, /* above U+10FFFF */
		{"\xf5\x80\x80\x80", 4, 0, 0},
		{"\x80", 1, 0, 0},
		{"\xe2\x28\xa1", 3, 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t cp = 0;
		size_t got = utf8_decode((const unsigned char *)cases[i].s,
					 cases[i].n, &cp);
		CHECK_MSG(got == cases[i].want && (!got || cp == cases[i].cp),
			  "utf8 case %zu: %zu U+%04X", i, got, (unsigned)cp);
	}
	CHECK(utf8_decode((const unsigned char *)"a", 0, NULL) == 0);
	/* NUL-terminated: the terminator ends a sequence */
	CHECK(utf8_len((const unsigned char *)"\xe2\x82") == 0);
	CHECK(utf8_len((const unsigned char *)"\xe2\x82\xac!") == 3);
	CHECK(utf8_len((const unsigned char *)"") == 1);
}

int
main(void)
{
	json_parse_check();
	json_cases_check();
	num_cases_check();
	num_roundtrip_check();
	string_check();
	misc_check();
	deep_check();
	depth_scan_check();
	utf8_check();
	TEST_DONE();
}

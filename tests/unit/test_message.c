/* test_message.c - the queue message (spec 3.7): parse, Go encoding in
 * declaration order with omitempty, messages re-encoded by Lua cjson, the
 * periodic execution id (spec 6.2) and the unique key (spec 5.7). */
#include <stdlib.h>

#include "store/message.h"
#include "store/queue.h"
#include "testlib.h"

static int
parse(const char *raw, struct job_message *m, struct berr *e)
{
	berr_clear(e);
	return message_parse(raw, strlen(raw), m, e);
}

/* parse + encode gives back exactly the same bytes */
static void
roundtrip_check(void)
{
	const char *golden[] = {
		"{\"name\":\"IMAGE_SCAN\",\"id\":\"5f3c2a1b9d8e7f6a5b4c3d2e\","
		"\"t\":1700000000,\"args\":{\"authType\":\"Bearer\"}}",
		"{\"name\":\"IMAGE_SCAN\",\"id\":\"5f3c2a1b9d8e7f6a5b4c3d2e\","
		"\"t\":1700000000,\"args\":{\"authType\":\"Bearer\","
		"\"mimeTypes\":[\"application/vnd.a+json\",\"x\"]}}",
		"{\"id\":\"0123456789abcdef01234567\",\"t\":1,\"args\":null}",
		"{\"name\":\"GARBAGE_COLLECTION\",\"id\":\"a\",\"t\":5,"
		"\"args\":{},\"unique\":true,\"fails\":10000000000,"
		"\"err\":\"boom \\u003cx\\u003e \\u0026 \\\"q\\\"\","
		"\"failed_at\":1700000001}",
		"{\"name\":\"X\",\"id\":\"b\",\"t\":0,\"args\":{\"f\":2.5,"
		"\"n\":null,\"big\":1e+21,\"small\":1e-7,\"nest\":{\"b\":true,"
		"\"a\":[1,\"\\u2028\"]}}}",
	};
	/* the last one is not in Go order: its args keys get sorted */
	const char *last_want =
		"{\"name\":\"X\",\"id\":\"b\",\"t\":0,\"args\":{\"big\":1e+21,"
		"\"f\":2.5,\"n\":null,\"nest\":{\"a\":[1,\"\\u2028\"],"
		"\"b\":true},\"small\":1e-7}}";
	for (size_t i = 0; i < ARRAY_LEN(golden); i++) {
		struct job_message m;
		struct berr e;
		int rc = parse(golden[i], &m, &e);
		CHECK_MSG(rc == 0, "golden %zu: %s", i, e.msg);
		if (rc)
			continue;
		char *s = message_encode(&m);
		const char *want =
			i == ARRAY_LEN(golden) - 1 ? last_want : golden[i];
		CHECK_MSG(strcmp(s, want) == 0, "golden %zu:\n got  %s\n want %s",
			  i, s, want);
		free(s);
		message_fini(&m);
	}
}

static void
fields_check(void)
{
	struct job_message m;
	struct berr e;
	int rc = parse("{\"name\":\"GARBAGE_COLLECTION\",\"id\":\"a\",\"t\":5,"
		       "\"args\":{\"k\":\"v\"},\"unique\":true,"
		       "\"fails\":10000000000,\"err\":\"boom\","
		       "\"failed_at\":1700000001}",
		       &m, &e);
	CHECK(rc == 0);
	CHECK_STR(m.name, "GARBAGE_COLLECTION");
	CHECK_STR(m.id, "a");
	CHECK(m.t == 5);
	CHECK(cJSON_IsObject(m.args));
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(m.args, "k")), "v");
	CHECK(m.unique);
	CHECK(m.fails == 10000000000LL);
	CHECK_STR(m.err, "boom");
	CHECK(m.failed_at == 1700000001);
	message_fini(&m);
	message_fini(&m); /* safe twice */

	/* missing fields take defaults; args absent or null -> NULL */
	rc = parse("{}", &m, &e);
	CHECK(rc == 0);
	CHECK_STR(m.name, "");
	CHECK_STR(m.id, "");
	CHECK(m.t == 0 && m.args == NULL && !m.unique && m.fails == 0 &&
	      m.err == NULL && m.failed_at == 0);
	char *s = message_encode(&m);
	CHECK_STR(s, "{\"id\":\"\",\"t\":0,\"args\":null}");
	free(s);
	message_fini(&m);

	rc = parse("{\"id\":\"x\",\"t\":1,\"args\":null,\"name\":null,"
		   "\"err\":\"\",\"unique\":false,\"fails\":0}",
		   &m, &e);
	CHECK(rc == 0);
	CHECK(m.args == NULL && m.err == NULL);
	s = message_encode(&m);
	CHECK_STR(s, "{\"id\":\"x\",\"t\":1,\"args\":null}");
	free(s);
	message_fini(&m);

	/* empty args object stays {} (not null) */
	rc = parse("{\"id\":\"x\",\"t\":1,\"args\":{}}", &m, &e);
	CHECK(rc == 0 && cJSON_IsObject(m.args));
	s = message_encode(&m);
	CHECK_STR(s, "{\"id\":\"x\",\"t\":1,\"args\":{}}");
	free(s);
	message_fini(&m);

	/* Go matches field names case-insensitively; the last one wins;
	 * unknown keys are ignored */
	rc = parse("{\"NAME\":\"a\",\"Id\":\"1\",\"t\":1,\"name\":\"b\","
		   "\"extra\":[1,2],\"T\":2}",
		   &m, &e);
	CHECK(rc == 0);
	CHECK_STR(m.name, "b");
	CHECK_STR(m.id, "1");
	CHECK(m.t == 2);
	message_fini(&m);
	rc = parse("{\"NAME\":\"a\",\"ID\":\"1\",\"T\":7,\"ARGS\":{},"
		   "\"Unique\":true,\"FAILS\":2,\"Err\":\"e\",\"Failed_At\":3}",
		   &m, &e);
	CHECK(rc == 0);
	CHECK_STR(m.name, "a");
	CHECK_STR(m.id, "1");
	CHECK(m.t == 7 && m.args && m.unique && m.fails == 2 &&
	      m.failed_at == 3);
	CHECK_STR(m.err, "e");
	message_fini(&m);
}

/* A message after a requeuer (Lua cjson): other key order, "\/", numbers
 * with 14 significant digits in exponent form. */
static void
lua_cjson_check(void)
{
	const char *raw =
		"{\"args\":{\"url\":\"http:\\/\\/core:8080\\/api\",\"n\":"
		"1.2345678901234e+19,\"_job_kind_periodic_\":\"1700000000\"},"
		"\"t\":1.7e+09,\"failed_at\":1.700000001e+09,\"unique\":false,"
		"\"id\":\"0123456789abcdef01234567\",\"name\":\"SCHEDULER\","
		"\"fails\":1e+10,\"err\":\"unknown job when requeueing\"}";
	struct job_message m;
	struct berr e;
	int rc = parse(raw, &m, &e);
	CHECK_MSG(rc == 0, "%s", e.msg);
	if (rc)
		return;
	CHECK(m.t == 1700000000);
	CHECK(m.failed_at == 1700000001);
	CHECK(m.fails == 10000000000LL);
	CHECK_STR(m.name, "SCHEDULER");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(m.args, "url")),
		  "http://core:8080/api");
	char *s = message_encode(&m);
	CHECK_STR(s, "{\"name\":\"SCHEDULER\",\"id\":\"0123456789abcdef01234567\","
		     "\"t\":1700000000,\"args\":{\"_job_kind_periodic_\":"
		     "\"1700000000\",\"n\":12345678901234000000,"
		     "\"url\":\"http://core:8080/api\"},\"fails\":10000000000,"
		     "\"err\":\"unknown job when requeueing\","
		     "\"failed_at\":1700000001}");
	free(s);
	s = message_job_id(&m);
	CHECK_STR(s, "0123456789abcdef01234567@1700000000");
	free(s);
	message_fini(&m);

	/* whitespace around the value is fine (Go too) */
	rc = parse(" \n{\"id\":\"x\",\"t\":1.5,\"args\":null}\n ", &m, &e);
	CHECK(rc == 0 && m.t == 1);
	message_fini(&m);
}

static void
errors_check(void)
{
	const char *bad[] = {
		"",
		"not json",
		"[1,2]",
		"\"str\"",
		"null",
		"{\"id\":\"x\"",
		"{\"id\":\"x\"} trailing",
		"{\"id\":1}",
		"{\"name\":true}",
		"{\"t\":\"1700000000\"}",
		"{\"args\":[1,2]}",
		"{\"args\":\"x\"}",
		"{\"unique\":1}",
		"{\"fails\":\"2\"}",
		"{\"err\":5}",
		"{\"failed_at\":{}}",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct job_message m;
		struct berr e;
		int rc = parse(bad[i], &m, &e);
		CHECK_MSG(rc < 0, "accepted bad message %zu: %s", i, bad[i]);
		CHECK_MSG(e.msg[0] != '\0', "no error text for %zu", i);
		CHECK(m.name == NULL && m.id == NULL && m.args == NULL);
		message_fini(&m);
	}
	struct job_message m;
	struct berr e;
	CHECK(message_parse(NULL, 0, &m, &e) < 0);
	/* length is honoured: the bytes after len are not read */
	const char *raw = "{\"id\":\"x\",\"t\":1,\"args\":null}GARBAGE";
	CHECK(message_parse(raw, strlen(raw) - 7, &m, &e) == 0);
	CHECK_STR(m.id, "x");
	message_fini(&m);
}

/* omitempty, built in code */
static void
encode_check(void)
{
	struct job_message m = {0};
	m.id = "5f3c2a1b9d8e7f6a5b4c3d2e";
	m.t = 1700000000;
	char *s = message_encode(&m);
	CHECK_STR(s, "{\"id\":\"5f3c2a1b9d8e7f6a5b4c3d2e\",\"t\":1700000000,"
		     "\"args\":null}");
	free(s);

	m.name = "DEMO";
	m.err = "";
	m.fails = -1;
	s = message_encode(&m);
	CHECK_STR(s, "{\"name\":\"DEMO\",\"id\":\"5f3c2a1b9d8e7f6a5b4c3d2e\","
		     "\"t\":1700000000,\"args\":null,\"fails\":-1}");
	free(s);

	m.fails = 0;
	m.unique = true;
	m.err = "bad \xff byte\n";
	m.failed_at = 3;
	m.args = cJSON_Parse("{\"z\":\"<\",\"a\":[]}");
	s = message_encode(&m);
	CHECK_STR(s, "{\"name\":\"DEMO\",\"id\":\"5f3c2a1b9d8e7f6a5b4c3d2e\","
		     "\"t\":1700000000,\"args\":{\"a\":[],\"z\":\"\\u003c\"},"
		     "\"unique\":true,\"err\":\"bad \\ufffd byte\\n\","
		     "\"failed_at\":3}");
	free(s);
	cJSON_Delete(m.args);
}

static void
job_id_check(void)
{
	const struct {
		const char *raw;
		const char *want;
	} cases[] = {
		{"{\"id\":\"abc\",\"t\":1,\"args\":null}", "abc"},
		{"{\"id\":\"abc\",\"t\":1,\"args\":{\"x\":1}}", "abc"},
		{"{\"id\":\"abc\",\"t\":1,\"args\":{\"_job_kind_periodic_\":"
		 "\"1700000000\"}}",
		 "abc@1700000000"},
		/* a number (after Lua cjson) is printed as an integer */
		{"{\"id\":\"abc\",\"t\":1,\"args\":{\"_job_kind_periodic_\":"
		 "1.7e+09}}",
		 "abc@1700000000"},
		{"{\"id\":\"abc\",\"t\":1,\"args\":{\"_job_kind_periodic_\":"
		 "1700000123}}",
		 "abc@1700000123"},
		/* the last duplicate wins, as in a Go map */
		{"{\"id\":\"abc\",\"t\":1,\"args\":{\"_job_kind_periodic_\":"
		 "\"1\",\"_job_kind_periodic_\":\"2\"}}",
		 "abc@2"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct job_message m;
		struct berr e;
		CHECK(parse(cases[i].raw, &m, &e) == 0);
		char *s = message_job_id(&m);
		CHECK_STR(s, cases[i].want);
		free(s);
		message_fini(&m);
	}
}

static void
unique_key_check(void)
{
	cJSON *args = cJSON_Parse("{\"provider\":\"y\",\"image\":\"x\"}");
	char *k = queue_unique_key("{harbor_job_service_namespace}",
				   "P2P_PREHEAT", args);
	CHECK_STR(k, "{harbor_job_service_namespace}:unique:P2P_PREHEAT:"
		     "{\"image\":\"x\",\"provider\":\"y\"}\n");
	free(k);
	cJSON_Delete(args);

	k = queue_unique_key("{ns}", "P2P_PREHEAT", NULL);
	CHECK_STR(k, "{ns}:unique:P2P_PREHEAT:");
	free(k);

	cJSON *null = cJSON_CreateNull();
	k = queue_unique_key("{ns}", "T", null);
	CHECK_STR(k, "{ns}:unique:T:");
	free(k);
	cJSON_Delete(null);

	args = cJSON_CreateObject();
	k = queue_unique_key("{ns}", "T", args);
	CHECK_STR(k, "{ns}:unique:T:{}\n");
	free(k);
	cJSON_Delete(args);

	/* HTML escapes and float formatting inside the key */
	args = cJSON_Parse("{\"q\":\"a<b&c>/d\",\"n\":1e21,\"m\":0.0000001,"
			   "\"i\":42,\"l\":[true,null]}");
	k = queue_unique_key("{ns}", "T", args);
	CHECK_STR(k, "{ns}:unique:T:{\"i\":42,\"l\":[true,null],\"m\":1e-7,"
		     "\"n\":1e+21,\"q\":\"a\\u003cb\\u0026c\\u003e/d\"}\n");
	free(k);
	cJSON_Delete(args);
}

int
main(void)
{
	roundtrip_check();
	fields_check();
	lua_cjson_check();
	errors_check();
	encode_check();
	job_id_check();
	unique_key_check();
	TEST_DONE();
}

/* fuzz_message.c - fuzz target for the queue message (host/store/message.c)
 * and the stats decoding (host/store/tracker.c tracker_load_field,
 * host/store/job_stats.c).
 *
 * An input starting with "stats\n" is a stats hash: the rest is read as
 * lines "field", "value", "field", "value", ... (a value may hold any byte
 * but '\n'), decoded field by field as tracker_load does, then rendered in
 * both JSON forms, copied and freed. Any other input is a raw queue
 * message.
 *
 * Message properties: a failed parse leaves a message and an empty struct;
 * after one round (parse, encode) the Go JSON is a fixed point: encoding
 * the parse of an encoding gives the same bytes; message_job_id and
 * message_unique_args never fail on a parsed message.
 * Stats properties: the API JSON is an object, the Go bytes parse as JSON,
 * and a copy renders the same bytes. */
#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "common/gojson.h"
#include "logs/log.h"
#include "store/job_stats.h"
#include "store/message.h"
#include "store/tracker.h"

#define STATS_PREFIX "stats\n"

static char *
round_trip(const char *raw, size_t len, bool must_parse)
{
	struct job_message m;
	struct berr e;
	berr_clear(&e);
	if (message_parse(raw, len, &m, &e) < 0) {
		if (must_parse)
			fuzz_fail("an encoded message does not parse");
		if (!e.msg[0] || m.name || m.id || m.args || m.err)
			fuzz_fail("failed parse without message, or with data");
		return NULL;
	}
	if (!m.name || !m.id)
		fuzz_fail("parsed message without name or id");
	char *jid = message_job_id(&m);
	char *ua = message_unique_args(m.args);
	if (!jid || !ua)
		fuzz_fail("job id or unique args NULL");
	free(jid);
	free(ua);
	char *enc = message_encode(&m);
	message_fini(&m);
	return enc;
}

static void
fuzz_message(const uint8_t *data, size_t size)
{
	char *e1 = round_trip((const char *)data, size, false);
	if (!e1)
		return;
	char *e2 = round_trip(e1, strlen(e1), true);
	char *e3 = round_trip(e2, strlen(e2), true);
	if (strcmp(e2, e3) != 0) {
		fprintf(stderr, "e2 %s\ne3 %s\n", e2, e3);
		fuzz_fail("encode(parse(encode)) is not a fixed point");
	}
	free(e1);
	free(e2);
	free(e3);
}

static char *
stats_go(const struct job_stats *s)
{
	struct gbuf b = {0};
	job_stats_append_go(&b, s, true);
	return gbuf_take(&b);
}

static void
fuzz_stats(const uint8_t *data, size_t size)
{
	struct job_stats st;
	memset(&st, 0, sizeof(st));
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *fe = nl ? nl : end;
		char *f = xstrndup(p, (size_t)(fe - p));
		p = nl ? nl + 1 : end;
		nl = memchr(p, '\n', (size_t)(end - p));
		const char *ve = nl ? nl : end;
		size_t vlen = (size_t)(ve - p);
		char *v = xstrndup(p, vlen);
		p = nl ? nl + 1 : end;
		tracker_load_field(&st, "fuzz", f, v, vlen);
		free(f);
		free(v);
	}
	cJSON *j = job_stats_to_json(&st, true);
	if (!cJSON_IsObject(j))
		fuzz_fail("stats JSON is not an object");
	cJSON_Delete(j);
	char *go = stats_go(&st);
	cJSON *back = cJSON_Parse(go);
	if (!cJSON_IsObject(back)) {
		fprintf(stderr, "go: %s\n", go);
		fuzz_fail("stats Go JSON does not parse as an object");
	}
	cJSON_Delete(back);
	struct job_stats cp;
	job_stats_copy(&cp, &st);
	char *go2 = stats_go(&cp);
	if (strcmp(go, go2) != 0)
		fuzz_fail("a copy of the stats renders differently");
	(void)job_stats_has_parameters(&cp);
	(void)job_status_code(st.status);
	(void)job_status_final(st.status);
	free(go);
	free(go2);
	job_stats_fini(&cp);
	job_stats_fini(&st);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	if (!quiet) {
		blog_set_level(BLOG_FATAL);
		quiet = true;
	}
	if (size > 65536)
		return 0;
	if (size >= strlen(STATS_PREFIX) &&
	    memcmp(data, STATS_PREFIX, strlen(STATS_PREFIX)) == 0)
		fuzz_stats(data + strlen(STATS_PREFIX),
			   size - strlen(STATS_PREFIX));
	else
		fuzz_message(data, size);
	return 0;
}

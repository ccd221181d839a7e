/* fuzz_submit.c - fuzz target for the body of POST /api/v1/jobs: the same
 * api_submit_decode (host/api/api_jobs.c) the route calls, then the pure
 * steps that follow it for an accepted body: the queue message with the
 * parameters as args (host/store/message.c), its unique key part, and the
 * parameters as stored (Go JSON, host/common/gojson.c).
 *
 * Each input runs on a thread with a 64 KiB stack (a route handler has
 * far more, but deep recursion on attacker-shaped input must be bounded by
 * the code, not by the stack size), so unbounded recursion in the parser,
 * the checks or the encoders crashes here first.
 *
 * Properties: a refusal has a status 400 or 500, a code and details; an
 * accepted body has a kind of Generic, Scheduled or Periodic, a non-empty
 * trimmed name, a delay for Scheduled and a cron spec for Periodic; the
 * message encoding parses back to the same name and args. */
#include <pthread.h>

#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "api/http.h"
#include "common/gojson.h"
#include "store/job_stats.h"
#include "store/message.h"

#define FUZZ_STACK (64 * 1024)

struct fuzz_input {
	const uint8_t *data;
	size_t size;
};

static bool
is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

static void
check_accepted(const struct api_submit *s)
{
	if (!s->kind || !s->name || !s->cron || !s->hook)
		fuzz_fail("accepted body with a NULL field");
	if (strcmp(s->kind, JOB_KIND_GENERIC) != 0 &&
	    strcmp(s->kind, JOB_KIND_SCHEDULED) != 0 &&
	    strcmp(s->kind, JOB_KIND_PERIODIC) != 0)
		fuzz_fail("accepted an unknown kind");
	if (!*s->name || s->name[0] == ' ' ||
	    s->name[strlen(s->name) - 1] == ' ')
		fuzz_fail("accepted an empty or untrimmed name");
	if (strcmp(s->kind, JOB_KIND_SCHEDULED) == 0 &&
	    !(s->delay > 0))
		fuzz_fail("accepted a Scheduled job without delay");
	if (strcmp(s->kind, JOB_KIND_PERIODIC) == 0 && !*s->cron)
		fuzz_fail("accepted a Periodic job without cron spec");
	if (s->params && !cJSON_IsObject(s->params))
		fuzz_fail("accepted parameters that are not an object");

	/* what api_jobs_post and queue_enqueue make of it */
	struct job_message m = {
		.name = (char *)s->name,
		.id = "0123456789abcdef01234567",
		.t = 1700000000,
		.args = (cJSON *)s->params,
		.unique = s->unique,
	};
	char *raw = message_encode(&m);
	struct job_message back;
	struct berr e;
	berr_clear(&e);
	if (message_parse(raw, strlen(raw), &back, &e) < 0) {
		fprintf(stderr, "%s: %s\n", e.msg, raw);
		fuzz_fail("the encoded message does not parse");
	}
	if (strcmp(back.name, s->name) != 0 && is_ascii(s->name))
		fuzz_fail("the message lost the job name");
	if (!back.args != !s->params)
		fuzz_fail("the message lost the parameters");
	message_fini(&back);
	free(raw);
	free(message_unique_args(s->params));
	free(gojson_encode(s->params));
}

static void *
run_one(void *arg)
{
	const struct fuzz_input *in = arg;
	cJSON *doc = NULL;
	struct api_submit s;
	struct api_submit_error e;
	char name_buf[256];
	memset(&e, 0, sizeof(e));
	int rc = api_submit_decode((const char *)in->data, in->size, &doc, &s,
				   name_buf, sizeof(name_buf), &e);
	if (rc) {
		if (doc)
			fuzz_fail("refused body left a document");
		if ((rc != 400 && rc != 500) || rc != e.status ||
		    !e.code || !e.details[0])
			fuzz_fail("refusal without status, code or details");
		return NULL;
	}
	if (!doc)
		fuzz_fail("accepted body without a document");
	check_accepted(&s);
	cJSON_Delete(doc);
	return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	struct fuzz_input in = {data, size};
	pthread_attr_t attr;
	pthread_t th;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, FUZZ_STACK);
	if (pthread_create(&th, &attr, run_one, &in) != 0)
		fuzz_fail("pthread_create");
	pthread_join(th, NULL);
	pthread_attr_destroy(&attr);
	return 0;
}

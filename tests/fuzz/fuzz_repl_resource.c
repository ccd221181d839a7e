/* fuzz_repl_resource.c - fuzz target for REPLICATION's parameters
 * (repl_params_parse, plugins/replication/resource.c): what the plugin's
 * validate() runs on the REST API thread for every submission, and run()
 * again on the worker, through the host's real parameter getters
 * (host/plugins/hostapi.c, a validate context).
 *
 * The input is the parameters object when it is one with src_resource or
 * dst_resource; any other input is taken as the text of a resource and
 * submitted as both, once as a JSON string (as Harbor core sends it) and
 * once, when it is an object, as the object.
 *
 * Each input runs on a thread with a 64 KiB stack, like fuzz_submit: the
 * REST API's threads have about 100 KiB, and a resource is a string the
 * body's nesting check never looks into, so the parser's recursion must be
 * bounded by the plugin, not by the stack.
 *
 * Properties: a refusal has a message and leaves nothing allocated (the
 * leak checker sees it); an accepted resource has a valid repository name
 * on both sides, a registry URL starting with http:// or https://,
 * artifacts that each have a digest or tags (valid ones), no credential
 * of both kinds, and a speed of 0 or more. */
#include <pthread.h>

#include <berth/registry.h>
#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "api/http.h"
#include "plugins/hostapi.h"
#include "resource.h"

#define FUZZ_STACK (64 * 1024)

static void
check_resource(const struct repl_resource *r, bool is_src)
{
	if (!r->repo || !berth_reg_valid_repo(r->repo))
		fuzz_fail("accepted without a valid repository name");
	if (!r->reg.url || (strncasecmp(r->reg.url, "http://", 7) != 0 &&
			    strncasecmp(r->reg.url, "https://", 8) != 0))
		fuzz_fail("accepted a registry URL that is not http(s)");
	if (r->reg.token && (r->reg.username || r->reg.password))
		fuzz_fail("accepted both a token and basic credentials");
	if (r->reg.username && !r->reg.password)
		fuzz_fail("a user name without a password");
	if (!is_src && r->n_arts)
		fuzz_fail("destination artifacts were kept");
	for (size_t i = 0; i < r->n_arts; i++) {
		const struct repl_artifact *a = &r->arts[i];
		if (!a->digest && !a->n_tags)
			fuzz_fail("an artifact with neither digest nor tags");
		if (a->digest && !berth_reg_is_digest(a->digest))
			fuzz_fail("an artifact with an invalid digest");
		for (size_t k = 0; k < a->n_tags; k++) {
			if (!berth_reg_valid_tag(a->tags[k]))
				fuzz_fail("an invalid tag was accepted");
			for (size_t j = 0; j < k; j++)
				if (strcmp(a->tags[j], a->tags[k]) == 0)
					fuzz_fail("a duplicate tag was kept");
		}
	}
}

static void
parse_params(const cJSON *params)
{
	struct hostapi_ctx c;
	hostapi_ctx_init_validate(&c, "REPLICATION", NULL, NULL, NULL, params);
	struct repl_params p;
	char err[1024];
	err[0] = '\0';
	if (repl_params_parse(&c.pub, &p, err, sizeof(err)) != 0) {
		if (!err[0])
			fuzz_fail("a refusal without a message");
		if (p.src.repo || p.dst.repo || p.src.arts || p.src.reg.url)
			fuzz_fail("a refusal left parameters behind");
	} else {
		check_resource(&p.src, true);
		check_resource(&p.dst, false);
		if (p.speed_bytes_per_s < 0)
			fuzz_fail("a negative speed");
		repl_params_fini(&p);
	}
	hostapi_ctx_fini(&c);
}

/* The nesting depth of v (0 for a scalar). */
static int
depth_of(const cJSON *v)
{
	int d = 0;
	for (const cJSON *c = v && (cJSON_IsArray(v) || cJSON_IsObject(v))
				      ? v->child
				      : NULL;
	     c; c = c->next) {
		int k = depth_of(c);
		if (k > d)
			d = k;
	}
	return v && (cJSON_IsArray(v) || cJSON_IsObject(v)) ? d + 1 : 0;
}

/* The parameters objects to submit, made on the main thread (its stack
 * is the fuzzer's, not the code under test's). */
struct fuzz_input {
	cJSON *params[3];
	size_t n;
};

static void *
run_one(void *arg)
{
	struct fuzz_input *in = arg;
	for (size_t i = 0; i < in->n; i++)
		parse_params(in->params[i]);
	return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	struct fuzz_input in = {.n = 0};
	cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
	/* deeper bodies get 400 from the REST API before any parser runs */
	bool shallow = depth_of(doc) <= API_MAX_JSON_DEPTH - 1;
	char *text = NULL;
	if (cJSON_IsObject(doc) &&
	    (cJSON_GetObjectItem(doc, "src_resource") ||
	     cJSON_GetObjectItem(doc, "dst_resource"))) {
		if (shallow) {
			in.params[in.n++] = doc;
			doc = NULL;
		}
	} else {
		/* a resource: as a string, and as an object when it is one */
		text = strndup((const char *)data, size);
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "src_resource", text);
		cJSON_AddStringToObject(p, "dst_resource", text);
		in.params[in.n++] = p;
		if (cJSON_IsObject(doc) && shallow) {
			p = cJSON_CreateObject();
			cJSON_AddItemReferenceToObject(p, "src_resource", doc);
			cJSON_AddItemReferenceToObject(p, "dst_resource", doc);
			cJSON_AddNumberToObject(p, "speed",
						(double)(size % 7) - 1);
			cJSON_AddBoolToObject(p, "copy_by_chunk", size & 1);
			in.params[in.n++] = p;
		}
	}
	pthread_attr_t attr;
	pthread_t th;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, FUZZ_STACK);
	if (pthread_create(&th, &attr, run_one, &in) != 0)
		fuzz_fail("pthread_create");
	pthread_join(th, NULL);
	pthread_attr_destroy(&attr);
	for (size_t i = 0; i < in.n; i++)
		cJSON_Delete(in.params[i]);
	cJSON_Delete(doc);
	free(text);
	return 0;
}

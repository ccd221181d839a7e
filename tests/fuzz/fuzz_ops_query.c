/* fuzz_ops_query.c - fuzz target for the request parsing of the
 * Operations API (host/api/http.c): api_query_allowed, api_query_int,
 * api_query_str and api_body_action, which the routes of api_jobs.c
 * (list filters, ?detail), api_queues.c (PUT /queues/{type} actions) and
 * api_sets.c (paging, retry/delete actions) call before anything touches
 * the store. The handlers themselves go to Redis right after and are not
 * pure; their own steps over these values (api_jobs.c's list_filter and
 * query_u32, static) are civetweb's mg_get_var plus comparisons.
 *
 * The input is "<query>\n<body>" (no newline: a query alone). Each call
 * gets a request without a connection: the error answer is written
 * nowhere (mg_write on no connection does nothing).
 *
 * Properties: every call answers 0 (or 1: found) or -400; a query the
 * route without parameters accepts has no parameter; a query with only
 * allowed names is accepted by a route allowing them; an integer found is
 * within its bounds; a string read is NUL-terminated in its buffer; an
 * action is accepted exactly when the body is a JSON object whose
 * "action" is one of the route's, and is then that very string. */
#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "api/http.h"
#include "common/json.h"

static const char *const no_params[] = {NULL};
static const char *const list_params[] = {
	"page_number", "page", "page_size", "kind", "cursor",
	"non_dead_only", "status", "type", NULL};
static const char *const set_params[] = {"page", "page_number", "page_size",
					 "type", NULL};
static const char *const get_params[] = {"detail", NULL};
static const char *const *const param_lists[] = {no_params, list_params,
						 set_params, get_params};

static const char *const queue_actions[] = {"pause", "resume", "stop", NULL};
static const char *const set_actions[] = {"retry", "delete", NULL};

static void
check_rc(int rc, bool int_call)
{
	if (rc == 0 || (int_call && rc == 1) || rc == -400)
		return;
	fprintf(stderr, "rc %d\n", rc);
	fuzz_fail("an answer other than 0, 1 or -400");
}

/* Whether the query has a non-empty segment between '&'s. */
static bool
has_param(const char *q)
{
	while (q && *q) {
		size_t n = strcspn(q, "&");
		if (n)
			return true;
		q += n + (q[n] == '&');
	}
	return false;
}

static void
query_calls(struct api_request *req)
{
	for (size_t i = 0; i < sizeof(param_lists) / sizeof(*param_lists);
	     i++) {
		int rc = api_query_allowed(req, param_lists[i]);
		check_rc(rc, false);
		if (i == 0 && (rc == 0) == has_param(req->query))
			fuzz_fail("the route without parameters got it wrong");
	}
	static const struct {
		const char *name;
		int64_t lo, hi;
	} ints[] = {{"page_number", 1, INT32_MAX},
		    {"page", 1, INT32_MAX},
		    {"page_size", 1, 1000},
		    {"cursor", INT32_MIN, INT32_MAX}};
	for (size_t i = 0; i < sizeof(ints) / sizeof(*ints); i++) {
		int64_t v = -7;
		int rc = api_query_int(req, ints[i].name, ints[i].lo,
				       ints[i].hi, &v);
		check_rc(rc, true);
		if (rc == 1 && (v < ints[i].lo || v > ints[i].hi))
			fuzz_fail("an integer outside its bounds");
		if (rc != 1 && v != -7)
			fuzz_fail("an integer written without being found");
	}
	static const char *const strs[] = {"type", "status", "kind", "detail",
					   "cursor"};
	for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++) {
		char buf[16];
		memset(buf, 'x', sizeof(buf));
		if (api_query_str(req, strs[i], buf, sizeof(buf)) &&
		    !memchr(buf, '\0', sizeof(buf)))
			fuzz_fail("a query string not NUL-terminated");
	}
}

static void
body_call(struct api_request *req, const char *const *allowed)
{
	const char *action = (const char *)1;
	int rc = api_body_action(req, allowed, &action);
	check_rc(rc, false);
	cJSON *doc = json_parse(req->body ? req->body : "", req->body_len,
				NULL);
	const char *want = cJSON_GetStringValue(
		cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc,
								       "action")
				    : NULL);
	bool ok = false;
	for (size_t i = 0; want && allowed[i]; i++)
		ok |= strcmp(allowed[i], want) == 0;
	cJSON_Delete(doc);
	if (ok != (rc == 0))
		fuzz_fail("an action accepted or refused wrongly");
	if (rc == 0) {
		bool mine = false;
		for (size_t i = 0; allowed[i]; i++)
			mine |= action == allowed[i];
		if (!mine)
			fuzz_fail("the action is not the route's own string");
	} else if (action) {
		fuzz_fail("a refused body with an action");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	const char *nl = memchr(data, '\n', size);
	size_t qlen = nl ? (size_t)(nl - (const char *)data) : size;
	char *query = strndup((const char *)data, qlen);
	struct api_request req;
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.path = "/api/v1/fuzz";
	req.query = query;
	query_calls(&req);
	req.query = NULL;
	query_calls(&req);
	if (nl) {
		size_t blen = size - qlen - 1;
		req.body = malloc(blen + 1);
		memcpy(req.body, nl + 1, blen);
		req.body[blen] = '\0';
		req.body_len = blen;
		body_call(&req, queue_actions);
		body_call(&req, set_actions);
		free(req.body);
	}
	free(query);
	return 0;
}

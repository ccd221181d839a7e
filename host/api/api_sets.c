/* api_sets.c - the retry and dead sets in the Operations API (Berth;
 * README "Operations API"):
 *   GET  /api/v1/retries, /api/v1/dead          a page of the set
 *   POST /api/v1/retries, /api/v1/dead          retry or delete them all
 *   POST /api/v1/retries/{id}, /api/v1/dead/{id}  retry or delete one job
 * A retry of a retry-set member makes it due now (the requeuer moves it to
 * its queue); a retry of a dead member moves it to the retry set, due now,
 * with fails, err and failed_at cleared. Everything goes through
 * store/queue_ops.h. */
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "common/json.h"
#include "logs/log.h"
#include "store/message.h"
#include "store/queue_ops.h"

#define PAGE_SIZE_DEFAULT 25
#define PAGE_SIZE_MAX 1000
/* Members looked at to find one job id. */
#define FIND_MAX 100000

/* --- GET ------------------------------------------------------------------ */

struct page_fill {
	cJSON *items;
	enum queue_set set;
	const char *type; /* filter, or NULL */
};

static int
page_member(void *data, const char *raw, size_t len, int64_t score)
{
	struct page_fill *pf = data;
	struct job_message m;
	struct berr perr;
	memset(&m, 0, sizeof(m));
	berr_clear(&perr);
	cJSON *it = json_must(cJSON_CreateObject());
	if (message_parse(raw, len, &m, &perr) < 0) {
		/* shown, so it can be deleted: its raw text as the error */
		if (pf->type) {
			cJSON_Delete(it);
			return 0;
		}
		cJSON_AddStringToObject(it, "job_id", "");
		cJSON_AddStringToObject(it, "name", "");
		cJSON_AddStringToObject(it, "error", perr.msg);
		cJSON_AddStringToObject(it, "raw", raw);
	} else {
		if (pf->type && strcmp(m.name ? m.name : "", pf->type) != 0) {
			message_fini(&m);
			cJSON_Delete(it);
			return 0;
		}
		char *id = message_job_id(&m);
		cJSON_AddStringToObject(it, "job_id", id);
		free(id);
		cJSON_AddStringToObject(it, "name", m.name ? m.name : "");
		cJSON_AddStringToObject(it, "error", m.err ? m.err : "");
		cJSON_AddNumberToObject(it, "fails", (double)m.fails);
		cJSON_AddNumberToObject(it, "enqueued_at", (double)m.t);
		cJSON_AddNumberToObject(it, "failed_at", (double)m.failed_at);
	}
	cJSON_AddNumberToObject(it,
				pf->set == QUEUE_SET_DEAD ? "died_at"
							  : "retry_at",
				(double)score);
	if (!cJSON_GetObjectItemCaseSensitive(it, "raw"))
		cJSON_AddItemToObject(it, "args",
				      m.args ? json_must(cJSON_Duplicate(
						       m.args, true))
					     : json_must(cJSON_CreateNull()));
	cJSON_AddItemToArray(pf->items, it);
	message_fini(&m);
	return 0;
}

static int
set_get(struct api_request *req, enum queue_set set)
{
	static const char *const params[] = {"page", "page_number",
					     "page_size", "type", NULL};
	int rc = api_query_allowed(req, params);
	if (rc)
		return -rc;
	int64_t page = 1, size = PAGE_SIZE_DEFAULT;
	if ((rc = api_query_int(req, "page_number", 1, INT32_MAX, &page)) < 0 ||
	    (rc = api_query_int(req, "page", 1, INT32_MAX, &page)) < 0 ||
	    (rc = api_query_int(req, "page_size", 1, PAGE_SIZE_MAX, &size)) <
		    0)
		return -rc;
	char type[256];
	bool has_type = api_query_str(req, "type", type, sizeof(type));
	if (has_type && !*type)
		return api_send_error(req, 400, API_E_BAD_REQUEST,
				      "type must not be empty");
	struct berr err;
	berr_clear(&err);
	cJSON *o = json_must(cJSON_CreateObject());
	cJSON *items = json_must(cJSON_CreateArray());
	struct page_fill pf = {.items = items, .set = set,
			       .type = has_type ? type : NULL};
	int64_t total = 0;
	if (queue_set_each(req->d->queue, set,
			   (uint64_t)(page - 1) * (uint64_t)size,
			   (uint64_t)size, page_member, &pf, &total,
			   &err) < 0) {
		cJSON_Delete(o);
		cJSON_Delete(items);
		return api_store_failed(req, &err);
	}
	cJSON_AddNumberToObject(o, "total", (double)total);
	cJSON_AddNumberToObject(o, "page", (double)page);
	cJSON_AddNumberToObject(o, "page_size", (double)size);
	cJSON_AddItemToObject(o, "items", items);
	return api_send_json(req, 200, o);
}

int
api_retries_get(struct api_request *req)
{
	return set_get(req, QUEUE_SET_RETRY);
}

int
api_dead_get(struct api_request *req)
{
	return set_get(req, QUEUE_SET_DEAD);
}

/* --- actions -------------------------------------------------------------- */

/* What a retry writes for raw: the same bytes for the retry set (a new
 * score only), for the dead set the message with fails, err and
 * failed_at cleared (Go JSON), or NULL when it does not parse (then the
 * member is only removed). New string. */
static char *
retry_member(enum queue_set set, const char *raw, size_t len)
{
	if (set == QUEUE_SET_RETRY)
		return xstrndup(raw, len);
	struct job_message m;
	struct berr perr;
	memset(&m, 0, sizeof(m));
	berr_clear(&perr);
	if (message_parse(raw, len, &m, &perr) < 0)
		return NULL;
	m.fails = 0;
	free(m.err);
	m.err = NULL;
	m.failed_at = 0;
	char *out = message_encode(&m);
	message_fini(&m);
	return out;
}

/* A chunk of members and what to write for each. */
struct chunk {
	char **raws;
	char **news;
	size_t n;
	enum queue_set set;
	bool retry;
	const char *id; /* only the members of this job id, or NULL */
};

static void
chunk_fini(struct chunk *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->raws[i]);
		free(c->news[i]);
	}
	free(c->raws);
	free(c->news);
	c->raws = c->news = NULL;
	c->n = 0;
}

static int
chunk_add(void *data, const char *raw, size_t len, int64_t score)
{
	(void)score;
	struct chunk *c = data;
	if (c->id) {
		struct job_message m;
		if (!message_parse_job(raw, len, c->id, &m))
			return 0;
		message_fini(&m);
	}
	if (c->n >= QUEUE_SET_CHUNK)
		return 1;
	if (!c->raws) {
		c->raws = xcalloc(QUEUE_SET_CHUNK, sizeof(char *));
		c->news = xcalloc(QUEUE_SET_CHUNK, sizeof(char *));
	}
	c->raws[c->n] = xstrndup(raw, len);
	c->news[c->n] = c->retry ? retry_member(c->set, raw, len) : NULL;
	c->n++;
	return 0;
}

/* Applies the chunk: retry (to NS:retry at now) or delete. */
static int
chunk_apply(struct berthd *d, struct chunk *c, int64_t *moved,
	    struct berr *err)
{
	return queue_set_move(d->queue, c->set, QUEUE_SET_RETRY,
			      (const char *const *)c->raws,
			      (const char *const *)c->news, c->n, util_now(),
			      moved, err);
}

static const char *const set_actions[] = {"retry", "delete", NULL};

static int
action_done(struct api_request *req, const char *action, int64_t n)
{
	cJSON *o = json_must(cJSON_CreateObject());
	cJSON_AddStringToObject(o, "action", action);
	cJSON_AddNumberToObject(o, "affected", (double)n);
	return api_send_json(req, 200, o);
}

/* POST on the whole set. */
static int
set_post_all(struct api_request *req, enum queue_set set)
{
	int rc = api_query_allowed(req, (const char *const[]){NULL});
	if (rc)
		return -rc;
	const char *action;
	if ((rc = api_body_action(req, set_actions, &action)))
		return -rc;
	struct berthd *d = req->d;
	bool retry = strcmp(action, "retry") == 0;
	struct berr err;
	berr_clear(&err);
	int64_t total = 0, done = 0;
	if (queue_set_size(d->queue, set, &total, &err) < 0)
		return api_store_failed(req, &err);
	/* every round takes members out of the set (or, for a retry of the
	 * retry set, out of the scores above now): as many rounds as the
	 * set held, plus one */
	int64_t rounds = total / QUEUE_SET_CHUNK + 2;
	for (int64_t r = 0; r < rounds; r++) {
		struct chunk c = {.set = set, .retry = retry};
		int64_t now = util_now();
		int rr = set == QUEUE_SET_RETRY && retry
				 ? queue_set_after(d->queue, set, now,
						   QUEUE_SET_CHUNK, chunk_add,
						   &c, &err)
				 : queue_set_each(d->queue, set, 0,
						  QUEUE_SET_CHUNK, chunk_add,
						  &c, NULL, &err);
		int64_t moved = 0;
		if (rr == 0 && c.n)
			rr = chunk_apply(d, &c, &moved, &err);
		size_t got = c.n;
		chunk_fini(&c);
		if (rr < 0)
			return api_store_failed(req, &err);
		done += moved;
		if (got < QUEUE_SET_CHUNK)
			break;
	}
	log_info("%s set: %s of every member over REST: %lld",
		 queue_set_name(set), action, (long long)done);
	return action_done(req, action, done);
}

/* POST on one job id. */
static int
set_post_one(struct api_request *req, enum queue_set set)
{
	int rc = api_query_allowed(req, (const char *const[]){NULL});
	if (rc)
		return -rc;
	const char *action;
	if ((rc = api_body_action(req, set_actions, &action)))
		return -rc;
	struct berthd *d = req->d;
	const char *id = req->params[0];
	struct berr err;
	berr_clear(&err);
	struct chunk c = {.set = set, .retry = strcmp(action, "retry") == 0,
			  .id = id};
	if (queue_set_each(d->queue, set, 0, FIND_MAX, chunk_add, &c, NULL,
			   &err) < 0) {
		chunk_fini(&c);
		return api_store_failed(req, &err);
	}
	int64_t moved = 0;
	rc = c.n ? chunk_apply(d, &c, &moved, &err) : 0;
	chunk_fini(&c);
	if (rc < 0)
		return api_store_failed(req, &err);
	if (moved == 0)
		return api_send_error(req, 404, API_E_NOT_FOUND, "%s", id);
	log_info("%s set: %s of job %s over REST", queue_set_name(set),
		 action, id);
	return action_done(req, action, moved);
}

int
api_retries_post(struct api_request *req)
{
	return set_post_all(req, QUEUE_SET_RETRY);
}

int
api_retry_post(struct api_request *req)
{
	return set_post_one(req, QUEUE_SET_RETRY);
}

int
api_dead_post(struct api_request *req)
{
	return set_post_all(req, QUEUE_SET_DEAD);
}

int
api_dead_one_post(struct api_request *req)
{
	return set_post_one(req, QUEUE_SET_DEAD);
}

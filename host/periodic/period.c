/* period.c - the periodic scheduler (spec 8); see period.h. This file has
 * the policy object, the policy set and the API-facing operations (create,
 * unschedule, list executions); period_enqueuer.c has the enqueuer thread,
 * its rounds, materialising and the start-up cleanup.
 *
 * Scheduling logic only: every Redis structure (policies, executions, the
 * lock, the periodic messages) is reached through store/period_store.h. */
#include "periodic/period_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/gojson.h"
#include "common/json.h"
#include "store/message.h"
#include "logs/log.h"
#include "periodic/cron.h"

/* ---- policy object ------------------------------------------------------ */

void
period_policy_fini(struct period_policy *p)
{
	if (!p)
		return;
	free(p->id);
	free(p->job_name);
	free(p->cron_spec);
	cJSON_Delete(p->job_params);
	free(p->web_hook_url);
	memset(p, 0, sizeof(*p));
}

static void
put_str_field(struct gbuf *b, const char *key, const char *v, bool first)
{
	if (!first)
		gbuf_putc(b, ',');
	gbuf_putc(b, '"');
	gbuf_puts(b, key);
	gbuf_puts(b, "\":");
	v = v ? v : "";
	gojson_append_decoded_string(b, v, strlen(v));
}

char *
period_policy_encode(const struct period_policy *p)
{
	struct gbuf b = {0};
	gbuf_putc(&b, '{');
	put_str_field(&b, "id", p->id, true);
	put_str_field(&b, "job_name", p->job_name, false);
	put_str_field(&b, "cron_spec", p->cron_spec, false);
	if (has_members(p->job_params)) {
		gbuf_puts(&b, ",\"job_params\":");
		gojson_append(&b, p->job_params);
	}
	if (p->web_hook_url && p->web_hook_url[0])
		put_str_field(&b, "web_hook_url", p->web_hook_url, false);
	if (p->numeric_id) {
		gbuf_puts(&b, ",\"numeric_id\":");
		gojson_append_int(&b, (long long)p->numeric_id);
	}
	gbuf_putc(&b, '}');
	return gbuf_take(&b);
}

static int
set_policy_str(char **dst, const cJSON *v)
{
	if (!cJSON_IsString(v))
		return -1;
	free(*dst);
	*dst = xstrdup(v->valuestring);
	return 0;
}

int
period_policy_parse(const char *raw, size_t len, struct period_policy *p,
		    struct berr *err)
{
	memset(p, 0, sizeof(*p));
	cJSON *root = json_parse(raw ? raw : "", len, NULL);
	if (!root)
		return berr_set(err, "policy: invalid JSON");
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return berr_set(err, "policy: not a JSON object");
	}
	const char *bad = NULL;
	for (const cJSON *c = root->child; c && !bad; c = c->next) {
		const char *k = c->string ? c->string : "";
		if (cJSON_IsNull(c))
			continue; /* Go leaves the field alone */
		if (strcasecmp(k, "id") == 0) {
			if (set_policy_str(&p->id, c) < 0)
				bad = k;
		} else if (strcasecmp(k, "job_name") == 0) {
			if (set_policy_str(&p->job_name, c) < 0)
				bad = k;
		} else if (strcasecmp(k, "cron_spec") == 0) {
			if (set_policy_str(&p->cron_spec, c) < 0)
				bad = k;
		} else if (strcasecmp(k, "web_hook_url") == 0) {
			if (set_policy_str(&p->web_hook_url, c) < 0)
				bad = k;
		} else if (strcasecmp(k, "job_params") == 0) {
			if (!cJSON_IsObject(c)) {
				bad = k;
			} else {
				cJSON_Delete(p->job_params);
				p->job_params =
					json_must(cJSON_Duplicate(c, true));
			}
		} else if (strcasecmp(k, "numeric_id") == 0) {
			double d = cJSON_IsNumber(c) ? c->valuedouble : 0.5;
			if (d != (double)(int64_t)d || d >= 9.2e18 ||
			    d <= -9.2e18)
				bad = k;
			else
				p->numeric_id = (int64_t)d;
		}
	}
	if (bad) {
		berr_set(err, "policy: field \"%s\" has the wrong type", bad);
		cJSON_Delete(root);
		period_policy_fini(p);
		return -1;
	}
	cJSON_Delete(root);
	return 0;
}

/* Go's utils.IsEmptyStr: blank after TrimSpace. */
static bool
is_blank(const char *s)
{
	if (!s)
		return true;
	for (; *s; s++)
		if (*s != ' ' && (*s < '\t' || *s > '\r'))
			return false;
	return true;
}

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* What makes Go's url.Parse fail, in the cases a hook URL can meet:
 * control characters, a missing scheme before ':', broken %-escapes
 * outside the query, a bad port or a character not allowed in the host. */
static bool
url_parses(const char *u)
{
	for (const char *c = u; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	if (u[0] == ':')
		return false; /* "missing protocol scheme" */
	const char *q = strchr(u, '?');
	const char *h = strchr(u, '#');
	for (const char *c = u; *c; c++) {
		bool in_query = q && c > q && (!h || c < h);
		if (*c == '%' && !in_query &&
		    !(is_hex(c[1]) && is_hex(c[2])))
			return false;
	}
	const char *rest = u;
	const char *colon = strchr(u, ':');
	if (colon) {
		bool scheme = (u[0] >= 'a' && u[0] <= 'z') ||
			      (u[0] >= 'A' && u[0] <= 'Z');
		for (const char *c = u + 1; scheme && c < colon; c++)
			scheme = (*c >= 'a' && *c <= 'z') ||
				 (*c >= 'A' && *c <= 'Z') ||
				 (*c >= '0' && *c <= '9') || *c == '+' ||
				 *c == '-' || *c == '.';
		if (scheme)
			rest = colon + 1;
	}
	if (strncmp(rest, "//", 2) != 0)
		return true;
	const char *a = rest + 2;
	size_t alen = strcspn(a, "/?#");
	const char *at = NULL;
	for (size_t i = 0; i < alen; i++)
		if (a[i] == '@')
			at = a + i;
	const char *host = at ? at + 1 : a;
	size_t hlen = alen - (size_t)(host - a);
	size_t port_at = hlen;
	if (hlen && host[0] == '[') {
		const char *rb = memchr(host, ']', hlen);
		if (!rb)
			return false;
		port_at = (size_t)(rb - host) + 1;
		if (port_at < hlen && host[port_at] != ':')
			return false;
	} else {
		for (size_t i = 0; i < hlen; i++) {
			char c = host[i];
			if (c == ':')
				port_at = i;
			if ((unsigned char)c < 0x80 &&
			    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') ||
			      strchr("-_.~!$&'()*+,;=:[]<>\"%", c)))
				return false;
		}
	}
	for (size_t i = port_at + 1; i < hlen; i++)
		if (host[i] < '0' || host[i] > '9')
			return false;
	return true;
}

int
period_policy_validate(const struct period_policy *p, struct berr *err)
{
	if (is_blank(p->id))
		return berr_set(err, "missing ID in the periodic job policy "
				     "object");
	if (is_blank(p->job_name))
		return berr_set(err, "missing job name in the periodic job "
				     "policy object");
	if (!is_blank(p->web_hook_url) && !url_parses(p->web_hook_url))
		return berr_set(err, "bad web hook URL: %s", p->web_hook_url);
	struct cron_schedule s;
	return cron_parse(p->cron_spec ? p->cron_spec : "", &s, err);
}

char *
period_execution_id(const char *policy_id, int64_t epoch)
{
	return xasprintf("%s@%" PRId64, policy_id, epoch);
}

char *
period_execution_message(const struct period_policy *p, int64_t epoch)
{
	cJSON *args = json_must(has_members(p->job_params)
					? cJSON_Duplicate(p->job_params, true)
					: cJSON_CreateObject());
	/* a Go map: the marker replaces any parameter of that name */
	while (cJSON_GetObjectItemCaseSensitive(args, PERIOD_MARKER))
		cJSON_DeleteItemFromObjectCaseSensitive(args, PERIOD_MARKER);
	char t[24];
	snprintf(t, sizeof(t), "%" PRId64, epoch);
	json_must(cJSON_AddStringToObject(args, PERIOD_MARKER, t));
	struct job_message m = {
		.name = p->job_name,
		.id = p->id,
		.t = epoch,
		.args = args,
	};
	char *raw = message_encode(&m);
	cJSON_Delete(args);
	return raw;
}

/* ---- life cycle --------------------------------------------------------- */

struct period *
period_new(struct redis_pool *redis, const char *ns, struct tracker *tracker,
	   struct queue *queue, struct plugin_registry *plugins)
{
	struct period *pd = xcalloc(1, sizeof(*pd));
	pd->store = period_store_new(redis, ns);
	pd->tracker = tracker;
	pd->queue = queue;
	pd->plugins = plugins;
	char id[25];
	util_hex24(id);
	snprintf(pd->node_id, sizeof(pd->node_id), "%s", id);
	pd->now = util_now;
	ticker_init(&pd->ticker);
	return pd;
}

void
period_set_clock(struct period *pd, int64_t (*now)(void))
{
	pd->now = now ? now : util_now;
}

void
period_set_node_id(struct period *pd, const char *node_id)
{
	snprintf(pd->node_id, sizeof(pd->node_id), "%s", node_id);
}

const char *
period_node_id(const struct period *pd)
{
	return pd->node_id;
}

void
period_free(struct period *pd)
{
	if (!pd)
		return;
	period_stop(pd);
	ticker_fini(&pd->ticker);
	period_store_free(pd->store);
	free(pd);
}

/* ---- the policy set ----------------------------------------------------- */

struct each_policy {
	struct period *pd;
	bool validate;
	int (*fn)(struct period *, const struct period_policy *, void *);
	void *data;
};

static int
each_policy_member(const char *member, size_t len, int64_t score,
		   void *data)
{
	struct each_policy *e = data;
	struct period_policy p;
	struct berr perr;
	berr_clear(&perr);
	if (period_policy_parse(member, len, &p, &perr) < 0) {
		log_error("malformed policy %.200s: %s", member, perr.msg);
		return 0;
	}
	if (e->validate && period_policy_validate(&p, &perr) < 0) {
		log_error("policy %s: %s", p.id ? p.id : "?", perr.msg);
		period_policy_fini(&p);
		return 0;
	}
	p.numeric_id = score;
	int stop = e->fn(e->pd, &p, e->data);
	period_policy_fini(&p);
	return stop;
}

/* Calls fn for every member of NS:period:policies that parses (numeric id
 * = score); fn returns non-zero to stop. */
int
period_each_policy(struct period *pd, bool validate,
		   int (*fn)(struct period *, const struct period_policy *,
			     void *),
		   void *data, struct berr *err)
{
	struct each_policy e = {
		.pd = pd, .validate = validate, .fn = fn, .data = data};
	return period_store_policies_each(pd->store, each_policy_member, &e,
					  err);
}

struct policies_each {
	int (*fn)(const struct period_policy *p, void *data);
	void *data;
};

static int
policies_each_one(struct period *pd, const struct period_policy *p,
		  void *data)
{
	(void)pd;
	struct policies_each *e = data;
	return e->fn(p, e->data);
}

int
period_policies_each(struct period *pd,
		     int (*fn)(const struct period_policy *p, void *data),
		     void *data, struct berr *err)
{
	struct policies_each e = {.fn = fn, .data = data};
	return period_each_policy(pd, false, policies_each_one, &e, err);
}

/* ---- creating a policy -------------------------------------------------- */

/* Stops what is left of a policy's executions (spec 8.6 step 2); a
 * stopped one is marked finished (-1), then expired ones are trimmed. */
static void
stop_executions(struct period *pd, const char *policy_id)
{
	struct berr err;
	berr_clear(&err);
	char **ids = NULL;
	size_t n = 0;
	if (period_store_executions_unfinished(pd->store, policy_id, &ids, &n,
					       &err) < 0) {
		log_error("executions of %s: %s", policy_id, err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *eid = ids[i];
		struct job_stats st;
		memset(&st, 0, sizeof(st));
		berr_clear(&err);
		int rc = tracker_load(pd->tracker, eid, &st, &err);
		if (rc != 0) {
			if (rc < 0)
				log_error("execution %s: %s", eid, err.msg);
			continue;
		}
		if (st.status && strcmp(st.status, JOB_STATUS_SCHEDULED) == 0 &&
		    queue_unschedule(pd->queue, st.run_at, policy_id, &err) < 0)
			log_error("execution %s: cannot remove its message: %s",
				  eid, err.msg);
		int code = job_status_code(st.status);
		if (code >= 0 && code <= 2) {
			char *cur = NULL;
			enum tracker_cas cas = tracker_set_status(
				pd->tracker, &st, JOB_STATUS_STOPPED, &cur, &err);
			if (cas == TRACKER_MISMATCH)
				log_warn("execution %s: not stopped, it is %s",
					 eid, cur ? cur : "gone");
			else if (cas != TRACKER_OK)
				log_error("execution %s: stop: %s", eid,
					  err.msg);
			free(cur);
			if (cas == TRACKER_OK &&
			    period_store_execution_finish(pd->store, policy_id,
							  eid, &err) < 0)
				log_warn("execution %s: cannot mark it "
					 "finished: %s",
					 eid, err.msg);
		}
		job_stats_fini(&st);
	}
	period_store_ids_free(ids);
	berr_clear(&err);
	if (period_store_executions_trim(pd->store, policy_id,
					 PERIOD_TRIM_SCAN, &err) < 0)
		log_warn("policy %s: trimming executions: %s", policy_id,
			 err.msg);
}

/* ZADD the policy at now + 0..9 (a random start, then the other nine),
 * then further up, at a score no member has (Q6). */
static int
add_policy(struct period *pd, const char *member, int64_t now,
	   int64_t *score, struct berr *err)
{
	uint32_t r0 = util_random_below(10);
	for (int i = 0; i < 10 + 1000; i++) {
		int64_t s = i < 10 ? now + (r0 + (uint32_t)i) % 10 : now + i;
		int added = period_store_policy_add(pd->store, member, s, err);
		if (added < 0)
			return -1;
		if (added) {
			*score = s;
			return 0;
		}
	}
	return berr_set(err, "no free numeric policy id near %" PRId64, now);
}

int
period_create_policy(struct period *pd, const char *job_name,
		     const char *cron_spec, const cJSON *params,
		     const char *hook, struct job_stats *out, struct berr *err)
{
	memset(out, 0, sizeof(*out));
	char id[25];
	util_hex24(id);
	struct period_policy p = {
		.id = xstrdup(id),
		.job_name = xstrdup(job_name ? job_name : ""),
		.cron_spec = xstrdup(cron_spec ? cron_spec : ""),
		.job_params = has_members(params)
				      ? json_must(cJSON_Duplicate(params, true))
				      : NULL,
		.web_hook_url = hook && hook[0] ? xstrdup(hook) : NULL,
	};
	int rc = -1;
	char *member = NULL;
	if (period_policy_validate(&p, err) < 0)
		goto out;
	int64_t now = pd->now();
	struct berr merr;
	berr_clear(&merr);
	int n = period_materialise(pd, &p, now, &merr);
	if (n < 0)
		log_error("policy %s: first executions: %s", id, merr.msg);

	member = period_policy_encode(&p);
	int64_t score = 0;
	if (add_policy(pd, member, now, &score, err) < 0) {
		stop_executions(pd, id);
		goto out;
	}

	struct job_stats *st = out;
	st->id = xstrdup(id);
	st->name = xstrdup(p.job_name);
	st->kind = xstrdup(JOB_KIND_PERIODIC);
	st->status = xstrdup(JOB_STATUS_SCHEDULED);
	st->ref_link = xasprintf("/api/v1/jobs/%s", id);
	st->cron_spec = xstrdup(p.cron_spec);
	st->enqueue_time = now;
	st->update_time = now;
	if (p.web_hook_url)
		st->web_hook_url = xstrdup(p.web_hook_url);
	st->numeric_policy_id = score;
	if (p.job_params)
		st->parameters =
			json_must(cJSON_Duplicate(p.job_params, true));
	if (tracker_save(pd->tracker, st, err) < 0) {
		struct berr rerr;
		berr_clear(&rerr);
		if (period_store_policy_remove(pd->store, member, &rerr) < 0)
			log_error("policy %s: cannot remove it again: %s", id,
				  rerr.msg);
		stop_executions(pd, id);
		job_stats_fini(st);
		goto out;
	}
	log_info("periodic job %s (%s, \"%s\") scheduled, numeric id %" PRId64
		 ", %d execution(s) in the next %d s",
		 id, p.job_name, p.cron_spec, score, n < 0 ? 0 : n,
		 PERIOD_HORIZON);
	rc = 0;
out:
	free(member);
	period_policy_fini(&p);
	return rc;
}

/* ---- unscheduling ------------------------------------------------------- */

struct find {
	const char *id;
	bool found;
	int64_t score;
};

static int
find_one(struct period *pd, const struct period_policy *p, void *data)
{
	(void)pd;
	struct find *f = data;
	if (p->id && strcmp(p->id, f->id) == 0) {
		f->found = true;
		f->score = p->numeric_id;
		return 1;
	}
	return 0;
}

int
period_unschedule(struct period *pd, const char *policy_id,
		  struct berr *err)
{
	struct job_stats st;
	memset(&st, 0, sizeof(st));
	int rc = tracker_load(pd->tracker, policy_id, &st, err);
	if (rc < 0)
		return -1;
	int64_t numeric = 0;
	if (rc == 0) {
		if (!st.kind || strcmp(st.kind, JOB_KIND_PERIODIC) != 0 ||
		    st.numeric_policy_id <= 0) {
			job_stats_fini(&st);
			return berr_set(err, "numeric ID not found for job: %s",
					policy_id);
		}
		numeric = st.numeric_policy_id;
		if (!job_status_final(st.status)) {
			char *cur = NULL;
			struct berr serr;
			berr_clear(&serr);
			enum tracker_cas cas = tracker_set_status(
				pd->tracker, &st, JOB_STATUS_STOPPED, &cur,
				&serr);
			if (cas == TRACKER_MISMATCH)
				log_warn("periodic job %s: not stopped, it is "
					 "%s",
					 policy_id, cur ? cur : "gone");
			else if (cas != TRACKER_OK)
				log_error("periodic job %s: stop: %s",
					  policy_id, serr.msg);
			free(cur);
		}
		job_stats_fini(&st);
	} else {
		struct find f = {.id = policy_id};
		if (period_each_policy(pd, false, find_one, &f, err) < 0)
			return -1;
		if (!f.found)
			return 1;
		numeric = f.score;
	}

	int removed = period_store_policy_remove_id(pd->store, numeric, err);
	if (removed < 0)
		return -1;
	if (removed == 0)
		log_warn("no periodic job with ID=%s and numeric ID=%" PRId64
			 " removed from the periodic job policy set",
			 policy_id, numeric);
	stop_executions(pd, policy_id);
	log_info("periodic job %s unscheduled", policy_id);
	return 0;
}

/* ---- executions listing (spec 2.9) -------------------------------------- */

void
period_ids_free(char **ids)
{
	period_store_ids_free(ids);
}

int
period_list_executions(struct period *pd, const char *policy_id,
		       uint32_t page, uint32_t size, int non_dead,
		       char ***ids, size_t *n, int64_t *total,
		       struct berr *err)
{
	*ids = NULL;
	*n = 0;
	*total = 0;
	if (page < 1)
		page = 1;
	if (size < 1)
		size = 1;
	uint64_t off = (uint64_t)(page - 1) * size;
	if (non_dead != 0) {
		if (period_store_executions_count(pd->store, policy_id,
						  non_dead > 0, total,
						  err) < 0)
			return -1;
		if (off < (uint64_t)(*total > 0 ? *total : 0))
			return period_store_executions_page(
				pd->store, policy_id, non_dead > 0, off, size,
				ids, n, err);
	} /* else quirk Q4: non_dead_only=false lists nothing */
	*ids = xcalloc(1, sizeof(**ids));
	return 0;
}

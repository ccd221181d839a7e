/* tracker.c - the job stats hash and its life cycle (spec 3.3-3.5, 4, 6.5
 * Checkin, 7.1 events).
 *
 * Choices beyond the spec, all on purpose:
 *  - save keeps the revision already stored in the hash (one HGET before the
 *    MULTI); without one it uses s->revision when > 0 (the DB->Redis sync
 *    restores a known revision), else now. So re-saving an execution does
 *    not make core count a new run. The HGET and the MULTI are not one
 *    atomic step: a reset racing a save of the same job may lose its bump
 *    (save only happens at creation and in the schedule sync).
 *  - save writes `ack` with its JSON value (fixes quirk Q7).
 *  - reset uses max(now, s->revision + 1) as the new revision, and check-in
 *    uses max(now, s->check_in_at + 1) as check_in_at (update_time follows
 *    it): core treats a larger revision as a new run and dedupes scheduler
 *    check-ins by check_in_at, so both must grow even within one second.
 *  - the event fn fires for every ok / Redis-error status write and every
 *    check-in, whether or not web_hook_url is set: the hook agent decides
 *    (spec 7.1 sends nothing without a URL). It gets a deep copy that is
 *    valid for the duration of the call only.
 *  - a Lua error reply of the CAS script counts as a Redis error (queued
 *    for retry), like any failure that is not a mismatch (spec 4.3). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/gojson.h"
#include "common/json.h"
#include "logs/log.h"
#include "store/keys.h"
#include "store/pipe.h"
#include "store/redis_conn.h"
#include "store/scripts.h"
#include "store/tracker.h"

/* ---- small helpers ------------------------------------------------------ */

static void
set_str(char **dst, const char *v)
{
	char *n = v ? xstrdup(v) : NULL;
	free(*dst);
	*dst = n;
}

/* ---- the tracker ------------------------------------------------------ */

struct retry_entry {
	char *id;
	char *target;
	int64_t revision;
};

struct tracker {
	struct redis_pool *redis;
	char *ns;
	char *track_key;

	pthread_mutex_t mu; /* guards fn, fn_data and the retry list */
	tracker_event_fn fn;
	void *fn_data;
	struct retry_entry *retry;
	size_t nretry, capretry;
};

struct tracker *
tracker_new(struct redis_pool *redis, const char *ns)
{
	struct tracker *t = xcalloc(1, sizeof(*t));
	t->redis = redis;
	t->ns = xstrdup(ns);
	t->track_key = key_job_track_inprogress(ns);
	pthread_mutex_init(&t->mu, NULL);
	return t;
}

static void
retry_entry_fini(struct retry_entry *e)
{
	free(e->id);
	free(e->target);
}

void
tracker_free(struct tracker *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nretry; i++)
		retry_entry_fini(&t->retry[i]);
	free(t->retry);
	pthread_mutex_destroy(&t->mu);
	free(t->track_key);
	free(t->ns);
	free(t);
}

void
tracker_set_event_fn(struct tracker *t, tracker_event_fn fn, void *data)
{
	pthread_mutex_lock(&t->mu);
	t->fn = fn;
	t->fn_data = data;
	pthread_mutex_unlock(&t->mu);
}

/* Calls the event fn (if any) with a deep copy of s. */
static void
fire_event(struct tracker *t, const struct job_stats *s, const char *check_in)
{
	if (str_empty(s->web_hook_url))
		return;
	pthread_mutex_lock(&t->mu);
	tracker_event_fn fn = t->fn;
	void *data = t->fn_data;
	pthread_mutex_unlock(&t->mu);
	if (!fn)
		return;
	struct job_stats snap;
	job_stats_copy(&snap, s);
	fn(data, &snap, check_in);
	job_stats_fini(&snap);
}

void
tracker_announce(struct tracker *t, const struct job_stats *s)
{
	fire_event(t, s, NULL);
}

/* ---- helpers for replies ---------------------------------------------- */

static bool
reply_is(const redisReply *r, const char *s)
{
	return r &&
	       (r->type == REDIS_REPLY_STATUS ||
		r->type == REDIS_REPLY_STRING) &&
	       r->str && (size_t)r->len == strlen(s) &&
	       memcmp(r->str, s, (size_t)r->len) == 0;
}

static int
reply_err_len(const redisReply *r)
{
	return (int)(r->len > 300 ? 300 : r->len);
}

/* Prefixes err->msg with "what: " (err may be NULL). Returns -1. */
static int
berr_prefix(struct berr *err, const char *what)
{
	if (!err)
		return -1;
	char old[BERR_MSG_MAX];
	snprintf(old, sizeof(old), "%s", err->msg);
	return berr_set(err, "%s: %s", what, old);
}

/* Go's strconv.ParseInt(v, 10, 64) with errors mapped to 0. */
static int64_t
parse_i64_lenient(const char *s)
{
	int64_t v = 0;
	if (!s || !(*s == '-' || *s == '+' || (*s >= '0' && *s <= '9')))
		return 0;
	if (util_parse_i64(s, INT64_MIN, INT64_MAX, &v) < 0)
		return 0;
	return v;
}

/* Go's strconv.ParseBool with errors mapped to false. */
static bool
parse_bool_lenient(const char *s)
{
	static const char *const yes[] = {"1",    "t",    "T",
					  "TRUE", "true", "True"};
	for (size_t i = 0; i < ARRAY_LEN(yes); i++)
		if (strcmp(s, yes[i]) == 0)
			return true;
	return false;
}

/* ---- save (spec 3.3) -------------------------------------------------- */

/* The stored revision: 0 and *rev set (0 when absent or not a number). */
static int
stored_revision(struct tracker *t, const char *key, int64_t *rev,
		struct berr *err)
{
	const char *argv[] = {"HGET", key, "revision"};
	*rev = 0;
	redisReply *r = redis_command_argv(t->redis, err, 3, argv, NULL);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type == REDIS_REPLY_ERROR)
		rc = berr_set(err, "HGET revision: %.*s", reply_err_len(r),
			      r->str);
	else if (r->type == REDIS_REPLY_STRING && r->str)
		*rev = parse_i64_lenient(r->str);
	freeReplyObject(r);
	return rc;
}

void
tracker_save_append(struct tracker *t, struct pipe *b,
		    const struct job_stats *s, int64_t rev, int64_t now)
{
	pipe_begin(b);
	pipe_str(b, "HMSET");
	pipe_own(b, key_job_stats(t->ns, s->id));
	pipe_str(b, "id");
	pipe_str(b, s->id);
	pipe_str(b, "name");
	pipe_str(b, s->name);
	pipe_str(b, "kind");
	pipe_str(b, s->kind);
	pipe_str(b, "unique");
	pipe_str(b, s->unique ? "1" : "0");
	pipe_str(b, "status");
	pipe_str(b, s->status);
	pipe_str(b, "ref_link");
	pipe_str(b, s->ref_link);
	pipe_str(b, "enqueue_time");
	pipe_i64(b, s->enqueue_time);
	pipe_str(b, "run_at");
	pipe_i64(b, s->run_at);
	pipe_str(b, "cron_spec");
	pipe_str(b, s->cron_spec);
	pipe_str(b, "web_hook_url");
	pipe_str(b, s->web_hook_url);
	pipe_str(b, "numeric_policy_id");
	pipe_i64(b, s->numeric_policy_id);
	if (s->check_in_at > 0 && !str_empty(s->check_in)) {
		pipe_str(b, "check_in");
		pipe_str(b, "[REDUNDANT]");
		pipe_str(b, "check_in_at");
		pipe_i64(b, s->check_in_at);
	}
	if (s->die_at > 0) {
		pipe_str(b, "die_at");
		pipe_i64(b, s->die_at);
	}
	if (!str_empty(s->upstream_job_id)) {
		pipe_str(b, "upstream_job_id");
		pipe_str(b, s->upstream_job_id);
	}
	if (job_stats_has_parameters(s)) {
		pipe_str(b, "parameters");
		pipe_own(b, gojson_encode(s->parameters));
	}
	cJSON *ack = job_ack_normalise(s->ack);
	if (ack) {
		char *txt = cJSON_PrintUnformatted(ack);
		cJSON_Delete(ack);
		if (!txt) {
			fprintf(stderr, "berthd: out of memory (cJSON)\n");
			abort();
		}
		pipe_str(b, "ack");
		/* cJSON's malloc'ed text; free() is its free by default */
		pipe_own(b, xstrdup(txt));
		cJSON_free(txt);
	}
	pipe_str(b, "update_time");
	pipe_i64(b, now);
	pipe_str(b, "revision");
	pipe_i64(b, rev);

	pipe_words(b, "HSET", t->track_key, s->id, "2", NULL);
	if (!str_empty(s->upstream_job_id)) {
		pipe_begin(b);
		pipe_str(b, "ZADD");
		pipe_own(b, key_executions(t->ns, s->upstream_job_id));
		pipe_str(b, "NX");
		pipe_i64(b, s->run_at);
		pipe_str(b, s->id);
	}
}

void
tracker_forget_append(struct tracker *t, struct pipe *b, const char *job_id)
{
	pipe_begin(b);
	pipe_str(b, "DEL");
	pipe_own(b, key_job_stats(t->ns, job_id));
	pipe_words(b, "HDEL", t->track_key, job_id, NULL);
}

int
tracker_save(struct tracker *t, struct job_stats *s, struct berr *err)
{
	if (str_empty(s->id))
		return berr_set(err, "save job stats: empty job id");
	char *key = key_job_stats(t->ns, s->id);
	char *what = xasprintf("save stats of job %s", s->id);
	int64_t rev = 0;
	int rc = stored_revision(t, key, &rev, err);
	if (rc < 0) {
		berr_prefix(err, what);
		goto out;
	}
	int64_t now = util_now();
	if (rev <= 0)
		rev = s->revision > 0 ? s->revision : now;

	struct pipe b;
	pipe_init(&b);
	tracker_save_append(t, &b, s, rev, now);
	rc = redis_pipeline(t->redis, err, pipe_cmds(&b), pipe_count(&b),
			    NULL, REDIS_PIPE_TX | REDIS_PIPE_CHECK);
	pipe_fini(&b);
	if (rc < 0) {
		berr_prefix(err, what);
		goto out;
	}
	s->update_time = now;
	s->revision = rev;
out:
	free(what);
	free(key);
	return rc;
}

/* ---- load ------------------------------------------------------------- */

static cJSON *
parse_json_field(const char *id, const char *field, const char *v,
		 size_t len)
{
	cJSON *j = json_parse(v, len, NULL);
	if (!j)
		log_error("stats of job %s: field %s is not valid JSON; "
			  "ignored", id, field);
	return j;
}

void
tracker_load_field(struct job_stats *o, const char *id, const char *f,
		   const char *v, size_t len)
{
	if (strcmp(f, "id") == 0) {
		set_str(&o->id, v);
	} else if (strcmp(f, "name") == 0) {
		set_str(&o->name, v);
	} else if (strcmp(f, "kind") == 0) {
		set_str(&o->kind, v);
	} else if (strcmp(f, "unique") == 0) {
		o->unique = parse_bool_lenient(v);
	} else if (strcmp(f, "status") == 0) {
		set_str(&o->status, v);
	} else if (strcmp(f, "ref_link") == 0) {
		set_str(&o->ref_link, v);
	} else if (strcmp(f, "enqueue_time") == 0) {
		o->enqueue_time = parse_i64_lenient(v);
	} else if (strcmp(f, "update_time") == 0) {
		o->update_time = parse_i64_lenient(v);
	} else if (strcmp(f, "run_at") == 0) {
		o->run_at = parse_i64_lenient(v);
	} else if (strcmp(f, "check_in_at") == 0) {
		o->check_in_at = parse_i64_lenient(v);
	} else if (strcmp(f, "cron_spec") == 0) {
		set_str(&o->cron_spec, v);
	} else if (strcmp(f, "web_hook_url") == 0) {
		set_str(&o->web_hook_url, v);
	} else if (strcmp(f, "die_at") == 0) {
		o->die_at = parse_i64_lenient(v);
	} else if (strcmp(f, "upstream_job_id") == 0) {
		set_str(&o->upstream_job_id, v);
	} else if (strcmp(f, "numeric_policy_id") == 0) {
		o->numeric_policy_id = parse_i64_lenient(v);
	} else if (strcmp(f, "revision") == 0) {
		o->revision = parse_i64_lenient(v);
	} else if (strcmp(f, "parameters") == 0) {
		cJSON *p = parse_json_field(id, f, v, len);
		if (p && !cJSON_IsObject(p)) {
			if (!cJSON_IsNull(p))
				log_error("stats of job %s: parameters is "
					  "not an object; ignored", id);
			cJSON_Delete(p);
			p = NULL;
		}
		cJSON_Delete(o->parameters);
		o->parameters = p;
	} else if (strcmp(f, "ack") == 0) {
		cJSON *a = parse_json_field(id, f, v, len);
		cJSON *n = job_ack_normalise(a);
		if (a && !n && !cJSON_IsNull(a))
			log_error("stats of job %s: ack is not an object; "
				  "ignored", id);
		cJSON_Delete(a);
		cJSON_Delete(o->ack);
		o->ack = n;
	}
	/* check_in holds a placeholder and is never read; others ignored */
}

int
tracker_load(struct tracker *t, const char *id, struct job_stats *out,
	     struct berr *err)
{
	memset(out, 0, sizeof(*out));
	char *key = key_job_stats(t->ns, id);
	const char *argv[] = {"HGETALL", key};
	redisReply *r = redis_command_argv(t->redis, err, 2, argv, NULL);
	free(key);
	if (!r)
		return berr_prefix(err, "load job stats");
	int rc = 0;
	if (r->type == REDIS_REPLY_ERROR) {
		rc = berr_set(err, "load job stats: HGETALL: %.*s",
			      reply_err_len(r), r->str);
	} else if (r->type != REDIS_REPLY_ARRAY) {
		rc = berr_set(err, "load job stats: HGETALL: unexpected reply");
	} else if (r->elements == 0) {
		rc = 1;
	} else {
		for (size_t i = 0; i + 1 < r->elements; i += 2) {
			const redisReply *f = r->element[i];
			const redisReply *v = r->element[i + 1];
			if (!f || !v || f->type != REDIS_REPLY_STRING ||
			    v->type != REDIS_REPLY_STRING)
				continue;
			/* values may hold NUL bytes: copy with the length */
			char *fs = xstrndup(f->str, (size_t)f->len);
			char *vs = xstrndup(v->str, (size_t)v->len);
			tracker_load_field(out, id, fs, vs, (size_t)v->len);
			free(fs);
			free(vs);
		}
		/* a hash recreated by a late status write has no id field
		 * (spec quirk Q15): the key names the job anyway */
		if (str_empty(out->id))
			set_str(&out->id, id);
	}
	freeReplyObject(r);
	return rc;
}

int
tracker_get_status(struct tracker *t, const char *id, char **status,
		   struct berr *err)
{
	*status = NULL;
	char *key = key_job_stats(t->ns, id);
	const char *argv[] = {"HGET", key, "status"};
	redisReply *r = redis_command_argv(t->redis, err, 3, argv, NULL);
	free(key);
	if (!r)
		return berr_prefix(err, "get job status");
	int rc = 0;
	if (r->type == REDIS_REPLY_STRING && r->str)
		*status = xstrndup(r->str, (size_t)r->len);
	else if (r->type == REDIS_REPLY_ERROR)
		rc = berr_set(err, "get job status: HGET: %.*s",
			      reply_err_len(r), r->str);
	else if (r->type != REDIS_REPLY_NIL)
		rc = berr_set(err, "get job status: HGET: unexpected reply");
	freeReplyObject(r);
	return rc;
}

/* ---- status compare-and-set (spec 4.3) -------------------------------- */

/* One run of the CAS script. */
static enum tracker_cas
cas_run(struct tracker *t, const char *id, const char *target,
	int64_t revision, int64_t now, char **current, struct berr *err)
{
	char *key = key_job_stats(t->ns, id);
	char rev_s[24], now_s[24];
	snprintf(rev_s, sizeof(rev_s), "%" PRId64, revision);
	snprintf(now_s, sizeof(now_s), "%" PRId64, now);
	const char *keys[] = {key, t->track_key};
	const char *args[] = {target, rev_s, now_s, id};
	redisReply *r = script_run(t->redis, err, SCRIPT_STATUS_CAS, 2, keys,
				   4, args);
	free(key);
	char what[200];
	snprintf(what, sizeof(what), "set status of job %.100s to %.20s", id,
		 target);
	if (!r) {
		berr_prefix(err, what);
		return TRACKER_REDIS_ERROR;
	}
	enum tracker_cas rc;
	if (reply_is(r, "ok")) {
		rc = TRACKER_OK;
	} else if (r->type == REDIS_REPLY_STRING ||
		   r->type == REDIS_REPLY_STATUS ||
		   r->type == REDIS_REPLY_NIL) {
		rc = TRACKER_MISMATCH;
		bool nil = r->type == REDIS_REPLY_NIL || !r->str;
		berr_set(err,
			 "mismatch job status: current %.*s, setting to %s",
			 nil ? 0 : reply_err_len(r), nil ? "" : r->str,
			 target);
		if (current)
			*current = nil ? NULL
				       : xstrndup(r->str, (size_t)r->len);
	} else if (r->type == REDIS_REPLY_ERROR) {
		rc = TRACKER_REDIS_ERROR;
		berr_set(err, "%s: %.*s", what, reply_err_len(r), r->str);
	} else {
		rc = TRACKER_REDIS_ERROR;
		berr_set(err, "%s: unexpected reply", what);
	}
	freeReplyObject(r);
	return rc;
}

static void
retry_push(struct tracker *t, const char *id, const char *target,
	   int64_t revision)
{
	pthread_mutex_lock(&t->mu);
	if (t->nretry == t->capretry) {
		t->capretry = t->capretry ? t->capretry * 2 : 8;
		t->retry = xrealloc(t->retry,
				    sizeof(*t->retry) * t->capretry);
	}
	struct retry_entry *e = &t->retry[t->nretry++];
	e->id = xstrdup(id);
	e->target = xstrdup(target);
	e->revision = revision;
	pthread_mutex_unlock(&t->mu);
}

enum tracker_cas
tracker_set_status(struct tracker *t, struct job_stats *s, const char *target,
		   char **current, struct berr *err)
{
	if (current)
		*current = NULL;
	if (str_empty(s->id) || job_status_code(target) < 0) {
		berr_set(err, "set status: %s",
			 str_empty(s->id) ? "empty job id"
					 : "invalid target status");
		return TRACKER_REDIS_ERROR;
	}
	int64_t now = util_now();
	enum tracker_cas rc =
		cas_run(t, s->id, target, s->revision, now, current, err);
	if (rc == TRACKER_MISMATCH)
		return rc;
	if (rc == TRACKER_REDIS_ERROR)
		retry_push(t, s->id, target, s->revision);
	set_str(&s->status, target);
	s->update_time = now;
	fire_event(t, s, NULL);
	return rc;
}

/* ---- reset (spec 4.5) ------------------------------------------------- */

int
tracker_reset(struct tracker *t, struct job_stats *s, struct berr *err)
{
	if (str_empty(s->id))
		return berr_set(err, "reset job: empty job id");
	int64_t rev = util_now();
	if (rev <= s->revision)
		rev = s->revision + 1;
	char *key = key_job_stats(t->ns, s->id);
	char rev_s[24];
	snprintf(rev_s, sizeof(rev_s), "%" PRId64, rev);
	const char *keys[] = {key, t->track_key};
	const char *args[] = {rev_s, s->id};
	redisReply *r = script_run(t->redis, err, SCRIPT_RESET, 2, keys, 2,
				   args);
	free(key);
	char what[160];
	snprintf(what, sizeof(what), "reset job %.100s", s->id);
	if (!r)
		return berr_prefix(err, what);
	int rc = 0;
	if (r->type == REDIS_REPLY_ERROR)
		rc = berr_set(err, "%s: %.*s", what, reply_err_len(r),
			      r->str);
	else if (!reply_is(r, "ok"))
		rc = berr_set(err, "%s: unexpected reply", what);
	freeReplyObject(r);
	if (rc < 0)
		return rc;
	set_str(&s->status, JOB_STATUS_PENDING);
	s->revision = rev;
	s->update_time = rev;
	set_str(&s->check_in, NULL);
	s->check_in_at = 0;
	cJSON_Delete(s->ack);
	s->ack = NULL;
	return 0;
}

/* ---- check-in (spec 6.5) ---------------------------------------------- */

int
tracker_checkin(struct tracker *t, struct job_stats *s, const char *text,
		struct berr *err)
{
	if (str_empty(text))
		return berr_set(err, "check in error: empty message");
	if (str_empty(s->id))
		return berr_set(err, "check in: empty job id");
	int64_t at = util_now();
	if (at <= s->check_in_at)
		at = s->check_in_at + 1; /* core dedupes by check_in_at */
	set_str(&s->check_in, text);
	s->check_in_at = at;
	s->update_time = at;
	fire_event(t, s, text);

	struct pipe b;
	pipe_init(&b);
	pipe_begin(&b);
	pipe_str(&b, "HMSET");
	pipe_own(&b, key_job_stats(t->ns, s->id));
	pipe_str(&b, "update_time");
	pipe_i64(&b, at);
	pipe_str(&b, "check_in_at");
	pipe_i64(&b, at);
	/* Berth: the text too, in Harbor's field (Go writes a placeholder
	 * there and never answers it); the detail view reads it */
	pipe_str(&b, "check_in");
	pipe_str(&b, text);
	const struct redis_cmd *c = pipe_cmds(&b);
	redisReply *r = redis_command_argv(t->redis, err, c->argc, c->argv,
					   c->lens);
	pipe_fini(&b);
	char what[160];
	snprintf(what, sizeof(what), "check in of job %.100s", s->id);
	if (!r)
		return berr_prefix(err, what);
	int rc = 0;
	if (r->type == REDIS_REPLY_ERROR)
		rc = berr_set(err, "%s: HMSET: %.*s", what, reply_err_len(r),
			      r->str);
	freeReplyObject(r);
	return rc;
}

/* ---- retry list (spec 4.6) -------------------------------------------- */

size_t
tracker_retry_pending(struct tracker *t)
{
	pthread_mutex_lock(&t->mu);
	struct retry_entry *list = t->retry;
	size_t n = t->nretry;
	t->retry = NULL;
	t->nretry = t->capretry = 0;
	pthread_mutex_unlock(&t->mu);
	if (n == 0)
		return tracker_retry_count(t);

	size_t kept = 0, applied = 0, outdated = 0;
	struct berr err, first;
	berr_clear(&first);
	for (size_t i = 0; i < n; i++) {
		struct retry_entry *e = &list[i];
		berr_clear(&err);
		enum tracker_cas rc = cas_run(t, e->id, e->target, e->revision,
					      util_now(), NULL, &err);
		if (rc == TRACKER_REDIS_ERROR) {
			if (!first.msg[0])
				first = err;
			list[kept++] = *e;
			continue;
		}
		if (rc == TRACKER_OK)
			applied++;
		else
			outdated++;
		retry_entry_fini(e);
	}
	log_info("status update retry: %zu applied, %zu outdated, %zu still "
		 "pending", applied, outdated, kept);
	if (kept)
		log_warn("status update retry: %s", first.msg);

	/* kept entries go first: they are older than any queued meanwhile */
	pthread_mutex_lock(&t->mu);
	size_t total = kept + t->nretry;
	if (total > 0) {
		struct retry_entry *merged =
			xmalloc(sizeof(*merged) * total);
		if (kept)
			memcpy(merged, list, sizeof(*merged) * kept);
		if (t->nretry)
			memcpy(merged + kept, t->retry,
			       sizeof(*merged) * t->nretry);
		free(t->retry);
		t->retry = merged;
		t->nretry = t->capretry = total;
	}
	pthread_mutex_unlock(&t->mu);
	free(list);
	return total;
}

size_t
tracker_retry_count(struct tracker *t)
{
	pthread_mutex_lock(&t->mu);
	size_t n = t->nretry;
	pthread_mutex_unlock(&t->mu);
	return n;
}

enum tracker_cas
tracker_cas_status(struct tracker *t, const char *job_id, const char *target,
		   int64_t revision, char **current, struct berr *err)
{
	if (current)
		*current = NULL;
	return cas_run(t, job_id, target, revision, util_now(), current, err);
}

/* ---- the hook ACK (spec 7.4, 7.5) ---------------------------------------- */

int
tracker_ack(struct tracker *t, const char *job_id, const char *status,
	    int64_t revision, int64_t check_in_at, struct berr *err)
{
	char *key = key_job_stats(t->ns, job_id);
	char rev[24], cia[24];
	snprintf(rev, sizeof(rev), "%" PRId64, revision);
	snprintf(cia, sizeof(cia), "%" PRId64, check_in_at);
	const char *keys[] = {key, t->track_key};
	const char *args[] = {status, rev, cia, job_id};
	redisReply *r = script_run(t->redis, err, SCRIPT_ACK, 2, keys, 4, args);
	free(key);
	if (!r)
		return -1;
	int rc;
	if (r->type == REDIS_REPLY_ERROR)
		rc = berr_set(err, "%.*s", reply_err_len(r), r->str);
	else
		rc = reply_is(r, "ok") ? 1 : 0;
	freeReplyObject(r);
	return rc;
}

int
tracker_read_ack(struct tracker *t, const char *job_id, cJSON **ack,
		 struct berr *err)
{
	*ack = NULL;
	char *key = key_job_stats(t->ns, job_id);
	const char *argv[] = {"HGET", key, "ack"};
	redisReply *r = redis_command_argv(t->redis, err, 3, argv, NULL);
	free(key);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type == REDIS_REPLY_STRING) {
		cJSON *a = json_parse(r->str, r->len, NULL);
		*ack = job_ack_normalise(a);
		cJSON_Delete(a);
	} else if (r->type == REDIS_REPLY_ERROR) {
		rc = berr_set(err, "HGET ack: %.*s", reply_err_len(r), r->str);
	}
	freeReplyObject(r);
	return rc;
}

/* ---- forget, list ------------------------------------------------------- */

int
tracker_forget(struct tracker *t, const char *job_id, struct berr *err)
{
	struct pipe b;
	pipe_init(&b);
	tracker_forget_append(t, &b, job_id);
	int rc = redis_pipeline(t->redis, err, pipe_cmds(&b), pipe_count(&b),
				NULL, 0);
	pipe_fini(&b);
	return rc;
}

void
tracker_page_fini(struct tracker_page *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->ids[i]);
	free(p->ids);
	memset(p, 0, sizeof(*p));
}

static bool
reply_text(const redisReply *r)
{
	return r && r->str &&
	       (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

/* Checks a SCAN/HSCAN reply {cursor, [items]} and copies the cursor. */
static int
scan_reply(const redisReply *r, const char *what, struct tracker_page *out,
	   struct berr *err)
{
	if (r->type == REDIS_REPLY_ERROR)
		return berr_set(err, "%s: %.*s", what, reply_err_len(r),
				r->str);
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    !reply_text(r->element[0]) ||
	    r->element[1]->type != REDIS_REPLY_ARRAY)
		return berr_set(err, "%s: unexpected reply", what);
	snprintf(out->cursor, sizeof(out->cursor), "%s", r->element[0]->str);
	out->ids = xcalloc(r->element[1]->elements + 1, sizeof(*out->ids));
	return 0;
}

int
tracker_list(struct tracker *t, const char *cursor, unsigned count,
	     struct tracker_page *out, struct berr *err)
{
	memset(out, 0, sizeof(*out));
	char *match = key_job_stats_match(t->ns);
	char cnt[16];
	snprintf(cnt, sizeof(cnt), "%u", count);
	const char *argv[] = {"SCAN", cursor, "MATCH", match, "COUNT", cnt};
	redisReply *r = redis_command_argv(t->redis, err, 6, argv, NULL);
	free(match);
	if (!r)
		return -1;
	int rc = scan_reply(r, "SCAN", out, err);
	for (size_t i = 0; rc == 0 && i < r->element[1]->elements; i++) {
		const redisReply *k = r->element[1]->element[i];
		const char *colon = reply_text(k) ? strrchr(k->str, ':') : NULL;
		if (colon && colon[1])
			out->ids[out->n++] = xstrdup(colon + 1);
	}
	freeReplyObject(r);
	return rc;
}

/* Whether the HMGET reply (kind, name, status) of a stats hash passes f. */
static bool
filter_pass(const struct tracker_filter *f, const redisReply *r)
{
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
		return false;
	const char *want[3] = {f->kind, f->type, f->status};
	for (size_t i = 0; i < 3; i++) {
		if (!want[i])
			continue;
		const redisReply *v = r->element[i];
		if (!reply_text(v) || strcmp(v->str, want[i]) != 0)
			return false;
	}
	return true;
}

int
tracker_list_filtered(struct tracker *t, const char *cursor, unsigned count,
		      unsigned max_steps, size_t want,
		      const struct tracker_filter *f,
		      struct tracker_page *out, struct berr *err)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->cursor, sizeof(out->cursor), "%s", cursor);
	char *match = key_job_stats_match(t->ns);
	char cnt[16];
	snprintf(cnt, sizeof(cnt), "%u", count);
	size_t cap = 0;
	int rc = 0;
	for (unsigned step = 0; step < max_steps && out->n < want; step++) {
		const char *argv[] = {"SCAN", out->cursor, "MATCH", match,
				      "COUNT", cnt};
		redisReply *r = redis_command_argv(t->redis, err, 6, argv,
						   NULL);
		if (!r) {
			rc = -1;
			break;
		}
		struct tracker_page pg;
		memset(&pg, 0, sizeof(pg));
		rc = scan_reply(r, "SCAN", &pg, err);
		if (rc < 0) {
			freeReplyObject(r);
			break;
		}
		const redisReply *keys = r->element[1];
		size_t nk = keys->elements;
		const char **argv2 = xcalloc(nk * 5 + 1, sizeof(char *));
		struct redis_cmd *cmds = xcalloc(nk + 1, sizeof(*cmds));
		size_t nc = 0;
		for (size_t i = 0; i < nk; i++) {
			const redisReply *k = keys->element[i];
			if (!reply_text(k))
				continue;
			const char **a = argv2 + nc * 5;
			a[0] = "HMGET";
			a[1] = k->str;
			a[2] = "kind";
			a[3] = "name";
			a[4] = "status";
			cmds[nc++] = (struct redis_cmd){5, a, NULL};
		}
		redisReply **rep = xcalloc(nc + 1, sizeof(*rep));
		if (nc)
			rc = redis_pipeline(t->redis, err, cmds, nc, rep, 0);
		for (size_t i = 0; rc == 0 && i < nc; i++) {
			if (!filter_pass(f, rep[i]))
				continue;
			const char *colon = strrchr(cmds[i].argv[1], ':');
			if (!colon || !colon[1])
				continue;
			if (out->n == cap) {
				cap = cap ? cap * 2 : 32;
				out->ids = xrealloc(out->ids,
						    (cap + 1) * sizeof(char *));
			}
			out->ids[out->n++] = xstrdup(colon + 1);
		}
		redis_replies_free(rep, nc);
		free(rep);
		free(cmds);
		free(argv2);
		if (rc == 0)
			snprintf(out->cursor, sizeof(out->cursor), "%s",
				 pg.cursor);
		tracker_page_fini(&pg);
		freeReplyObject(r);
		if (rc < 0 || strcmp(out->cursor, "0") == 0)
			break;
	}
	free(match);
	if (rc < 0)
		tracker_page_fini(out);
	return rc;
}

int
tracker_get_checkin(struct tracker *t, const char *id, char **text,
		    int64_t *at, struct berr *err)
{
	*text = NULL;
	*at = 0;
	char *key = key_job_stats(t->ns, id);
	const char *argv[] = {"HMGET", key, "check_in", "check_in_at"};
	redisReply *r = redis_command_argv(t->redis, err, 4, argv, NULL);
	free(key);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
		const redisReply *v = r->element[0];
		if (reply_text(v) && v->len > 0 &&
		    strcmp(v->str, TRACKER_CHECKIN_PLACEHOLDER) != 0)
			*text = xstrndup(v->str, v->len);
		if (reply_text(r->element[1]))
			*at = parse_i64_lenient(r->element[1]->str);
	} else if (r->type == REDIS_REPLY_ERROR) {
		rc = berr_set(err, "HMGET check_in: %.*s", reply_err_len(r),
			      r->str);
	}
	freeReplyObject(r);
	return rc;
}

/* ---- the in-progress hash (spec 9.3) -------------------------------------- */

int
tracker_inprogress_count(struct tracker *t, size_t *n, struct berr *err)
{
	*n = 0;
	const char *argv[] = {"HLEN", t->track_key};
	redisReply *r = redis_command_argv(t->redis, err, 2, argv, NULL);
	if (!r)
		return -1;
	if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
		*n = (size_t)r->integer;
	freeReplyObject(r);
	return 0;
}

int
tracker_inprogress_scan(struct tracker *t, const char *cursor, unsigned count,
			struct tracker_page *out, struct berr *err)
{
	memset(out, 0, sizeof(*out));
	char cnt[16];
	snprintf(cnt, sizeof(cnt), "%u", count);
	const char *argv[] = {"HSCAN", t->track_key, cursor, "COUNT", cnt};
	redisReply *r = redis_command_argv(t->redis, err, 5, argv, NULL);
	if (!r)
		return -1;
	char what[160];
	snprintf(what, sizeof(what), "HSCAN %.140s", t->track_key);
	int rc = scan_reply(r, what, out, err);
	const redisReply *kv = rc == 0 ? r->element[1] : NULL;
	for (size_t i = 0; kv && i + 1 < kv->elements; i += 2) {
		const redisReply *f = kv->element[i];
		const redisReply *v = kv->element[i + 1];
		int64_t counter;
		bool ok = reply_text(f) && reply_text(v) &&
			  util_parse_i64(v->str, INT64_MIN, INT64_MAX,
					 &counter) == 0;
		out->ids[out->n++] = ok ? xstrndup(f->str, (size_t)f->len)
					: NULL;
	}
	freeReplyObject(r);
	return rc;
}

int
tracker_untrack(struct tracker *t, const char *job_id, struct berr *err)
{
	const char *argv[] = {"HDEL", t->track_key, job_id};
	redisReply *r = redis_command_argv(t->redis, err, 3, argv, NULL);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type == REDIS_REPLY_ERROR)
		rc = berr_set(err, "HDEL %s %s: %.*s", t->track_key, job_id,
			      reply_err_len(r), r->str);
	freeReplyObject(r);
	return rc;
}

/* hook_store.c - the hook agent's pending events in Redis: records,
 * the keeper thread (heartbeat, late persistence, failed deletes) and the
 * takeover of the events of stopped agents; see hook.c.
 *
 * Durability (beyond Harbor, whose retries live in memory only)
 *   Redis keys (Go instances never read them; ns is "{namespace}"):
 *     <ns>:berth:hook_agents          hash: agent id (hex24) -> heartbeat,
 *                                     epoch ms, refreshed every 5 s; "0"
 *                                     after a clean stop
 *     <ns>:berth:hook_events:<agent>  hash: event id (hex24) -> record
 *   record (JSON): {"id","job_id","seq","url","payload","created_at",
 *     "first_attempt_at","retry_since","next_at","attempts"}: payload is
 *     the exact body to POST; seq orders the events of one job (epoch
 *     microseconds, strictly increasing per agent); times are epoch ms
 *     (0 = not yet); attempts counts the attempts made.
 *   An event is written (HSET) before it is queued, rewritten after each
 *   failed attempt and removed (HDEL) once delivered, outdated, superseded
 *   or given up. If Redis is down at submit the event is kept in memory and
 *   written within a second of Redis coming back. Every Redis write of an
 *   event is done by the thread that holds its job, so they never race.
 *   Adoption: at start and every 30 s, the events of every other agent
 *   whose heartbeat is "0" or older than 30 s are moved into this agent's
 *   hash (WATCH/MULTI/EXEC, so two agents never adopt the same events) and
 *   queued, each attempted at once whatever its retry schedule, in seq
 *   order per job. A clean stop (SIGTERM) writes "0", so the next daemon
 *   delivers at start; after a kill -9 another live agent (or the next
 *   start) takes over within a minute. An agent that only lost Redis for
 *   more than 30 s may have its events adopted while it still holds them:
 *   core then gets a duplicate, which it tolerates (spec 7.5). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks/hook.h"
#include "hooks/hook_internal.h"
#include "logs/log.h"
#include "store/keys.h"
#include "store/redis_cmd.h"

#define HOOK_HEARTBEAT_MS 5000
#define HOOK_STALE_MS 30000
#define HOOK_ADOPT_EVERY_MS 30000
#define HOOK_KEEPER_TICK_MS 1000

/* ---- keys --------------------------------------------------------------- */

void
hook_store_init(struct hook_agent *a)
{
	a->agents_key = key_hook_agents(a->ns);
	a->events_key = key_hook_events(a->ns, a->id);
}

void
hook_store_fini(struct hook_agent *a)
{
	free(a->agents_key);
	free(a->events_key);
	a->agents_key = a->events_key = NULL;
}

/* ---- persistence -------------------------------------------------------- */

static char *
event_record(const struct hook_event *e)
{
	cJSON *o = json_must(cJSON_CreateObject());
	json_must(cJSON_AddStringToObject(o, "id", e->id));
	json_must(cJSON_AddStringToObject(o, "job_id", e->job_id));
	json_must(cJSON_AddNumberToObject(o, "seq", (double)e->seq));
	json_must(cJSON_AddStringToObject(o, "url", e->url));
	json_must(cJSON_AddStringToObject(o, "payload", e->payload));
	json_must(cJSON_AddNumberToObject(o, "created_at", (double)e->created_at));
	json_must(cJSON_AddNumberToObject(o, "first_attempt_at",
				   (double)e->first_attempt_at));
	json_must(cJSON_AddNumberToObject(o, "retry_since", (double)e->retry_since));
	json_must(cJSON_AddNumberToObject(o, "next_at", (double)e->next_at));
	json_must(cJSON_AddNumberToObject(o, "attempts", e->attempts));
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s) {
		fprintf(stderr, "berthd: out of memory (cJSON)\n");
		abort();
	}
	char *r = xstrdup(s);
	cJSON_free(s);
	return r;
}

/* An event from a persisted record; NULL when the record is unusable. */
static struct hook_event *
event_from_record(const char *field, const char *text, size_t len)
{
	cJSON *o = cJSON_ParseWithLength(text, len);
	const char *job_id = json_str(o, "job_id");
	const char *url = json_str(o, "url");
	const char *payload = json_str(o, "payload");
	cJSON *p = payload ? cJSON_Parse(payload) : NULL;
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(p, "metadata");
	const char *status = json_str(p, "status");
	struct hook_event *e = NULL;
	if (strlen(field) == 24 && !str_empty(job_id) && !str_empty(url) &&
	    !str_empty(status) && cJSON_IsObject(md)) {
		e = xcalloc(1, sizeof(*e));
		memcpy(e->id, field, 25);
		e->job_id = xstrdup(job_id);
		e->url = xstrdup(url);
		e->payload = xstrdup(payload);
		e->status = xstrdup(status);
		const char *ci = json_str(p, "check_in");
		e->check_in = str_empty(ci) ? NULL : xstrdup(ci);
		e->host_key = hook_host_key(e->url);
		e->revision = json_i64(md, "revision");
		e->check_in_at = json_i64(md, "check_in_at");
		e->seq = json_i64(o, "seq");
		e->created_at = json_i64(o, "created_at");
		e->first_attempt_at = json_i64(o, "first_attempt_at");
		e->retry_since = json_i64(o, "retry_since");
		e->next_at = json_i64(o, "next_at");
		int64_t at = json_i64(o, "attempts");
		e->attempts = at < 0 ? 0 : at > 1000000 ? 1000000 : (int)at;
		e->persisted = true;
	}
	cJSON_Delete(p);
	cJSON_Delete(o);
	return e;
}

void
hook_register_agent(struct hook_agent *a, int64_t beat)
{
	char v[24];
	snprintf(v, sizeof(v), "%" PRId64, beat);
	struct berr err;
	berr_clear(&err);
	redisReply *r = redis_command(a->redis, &err, "HSET", a->agents_key,
				      a->id, v, NULL);
	if (r && r->type != REDIS_REPLY_ERROR)
		atomic_store(&a->registered, true);
	else
		log_debug("hook agent %s: heartbeat: %s", a->id,
			  r ? r->str : err.msg);
	freeReplyObject(r);
}

/* HSET the event's record. 0, or -1 with err (Redis down). Does not touch
 * e->persisted: that flag is only written under a->mu. */
int
hook_event_persist(struct hook_agent *a, const struct hook_event *e,
		   struct berr *err)
{
	if (!atomic_load(&a->registered))
		hook_register_agent(a, util_now_ms());
	char *rec = event_record(e);
	redisReply *r = redis_command(a->redis, err, "HSET", a->events_key,
				      e->id, rec, NULL);
	free(rec);
	int rc = 0;
	if (!r)
		rc = -1;
	else if (r->type == REDIS_REPLY_ERROR)
		rc = berr_set(err, "HSET: %s", r->str);
	freeReplyObject(r);
	return rc;
}

static void
stale_push_locked(struct hook_agent *a, const char *id)
{
	if (a->nstale == a->capstale) {
		a->capstale = a->capstale ? a->capstale * 2 : 16;
		a->stale = xrealloc(a->stale, sizeof(*a->stale) * a->capstale);
	}
	a->stale[a->nstale++] = xstrdup(id);
}

/* HDEL the record; on a Redis error the id is retried by the keeper. */
void
hook_record_delete(struct hook_agent *a, const char *id)
{
	struct berr err;
	berr_clear(&err);
	redisReply *r = redis_command(a->redis, &err, "HDEL", a->events_key,
				      id, NULL);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		pthread_mutex_lock(&a->mu);
		stale_push_locked(a, id);
		pthread_mutex_unlock(&a->mu);
	}
	freeReplyObject(r);
}

/* Removes the records of a list of dropped events and frees them. */
void
hook_dropped_free(struct hook_agent *a, struct hook_event *list)
{
	while (list) {
		struct hook_event *n = list->next;
		if (list->persisted)
			hook_record_delete(a, list->id);
		hook_event_free(list);
		list = n;
	}
}

/* ---- the keeper: heartbeat, late persistence, adoption ------------------- */

/* Writes the records of events Redis refused at submit time. */
void
hook_persist_dirty(struct hook_agent *a)
{
	pthread_mutex_lock(&a->mu);
	if (!a->dirty) {
		pthread_mutex_unlock(&a->mu);
		return;
	}
	a->dirty = false;
	struct hook_job **held = NULL;
	struct hook_event **evs = NULL;
	size_t nheld = 0, nevs = 0, capheld = 0, capevs = 0;
	for (size_t b = 0; b < a->nbuckets; b++) {
		for (struct hook_job *j = a->buckets[b]; j; j = j->hnext) {
			size_t first = nevs;
			if (j->busy) {
				for (struct hook_event *e = j->head; e;
				     e = e->next)
					if (!e->persisted)
						a->dirty = true;
				continue;
			}
			for (struct hook_event *e = j->head; e; e = e->next) {
				if (e->persisted)
					continue;
				if (nevs == capevs) {
					capevs = capevs ? capevs * 2 : 16;
					evs = xrealloc(evs, sizeof(*evs) *
								    capevs);
				}
				evs[nevs++] = e;
			}
			if (nevs == first)
				continue;
			if (nheld == capheld) {
				capheld = capheld ? capheld * 2 : 16;
				held = xrealloc(held, sizeof(*held) * capheld);
			}
			hook_job_unschedule(a, j);
			j->busy = true;
			held[nheld++] = j;
		}
	}
	pthread_mutex_unlock(&a->mu);
	if (!nheld)
		return;

	bool *ok = xcalloc(nevs, sizeof(*ok));
	size_t failed = 0;
	struct berr err;
	berr_clear(&err);
	for (size_t i = 0; i < nevs; i++) {
		ok[i] = hook_event_persist(a, evs[i], &err) == 0;
		if (!ok[i])
			failed++;
	}
	if (failed)
		log_warn("hook agent %s: %zu hook event(s) still only in "
			 "memory: %s", a->id, failed, err.msg);
	else
		log_info("hook agent %s: %zu hook event(s) saved to Redis",
			 a->id, nevs);
	struct hook_event *dropped = NULL;
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < nevs; i++) {
		evs[i]->persisted = ok[i];
		if (!ok[i])
			a->dirty = true;
	}
	for (size_t i = 0; i < nheld; i++)
		hook_job_release_locked(a, held[i], &dropped);
	pthread_mutex_unlock(&a->mu);
	hook_dropped_free(a, dropped);
	free(ok);
	free(evs);
	free(held);
}

/* Retries the HDELs that failed. */
void
hook_retry_stale(struct hook_agent *a)
{
	pthread_mutex_lock(&a->mu);
	char **ids = a->stale;
	size_t n = a->nstale;
	a->stale = NULL;
	a->nstale = a->capstale = 0;
	pthread_mutex_unlock(&a->mu);
	for (size_t i = 0; i < n; i++) {
		hook_record_delete(a, ids[i]);
		free(ids[i]);
	}
	free(ids);
}

/* One command of the adoption transaction: true when it was accepted
 * (QUEUED inside MULTI); false with err. The reply is freed. */
static bool
adopt_step(struct hook_agent *a, struct berr *err, int argc,
	   const char **argv, const size_t *lens)
{
	redisReply *r = redis_command_argv(a->redis, err, argc, argv, lens);
	bool ok = r && r->type != REDIS_REPLY_ERROR;
	if (r && !ok)
		berr_set(err, "%s: %s", argv[0], r->str);
	freeReplyObject(r);
	return ok;
}

/* Queues the events read from an adopted hash (field, value, ...). */
static void
adopt_records(struct hook_agent *a, const redisReply *all, const char *other)
{
	size_t got = 0, bad = 0;
	struct hook_event *dropped = NULL;
	for (size_t i = 0; i + 1 < all->elements; i += 2) {
		const redisReply *f = all->element[i];
		const redisReply *v = all->element[i + 1];
		struct hook_event *e = NULL;
		if (f->type == REDIS_REPLY_STRING &&
		    v->type == REDIS_REPLY_STRING)
			e = event_from_record(f->str, v->str, v->len);
		if (!e) {
			bad++;
			if (f->type == REDIS_REPLY_STRING)
				hook_record_delete(a, f->str);
			continue;
		}
		pthread_mutex_lock(&a->mu);
		if (e->seq > a->last_seq)
			a->last_seq = e->seq;
		hook_enqueue_locked(a, e, &dropped);
		pthread_mutex_unlock(&a->mu);
		got++;
	}
	hook_dropped_free(a, dropped);
	if (got || bad)
		log_info("hook agent %s: took over %zu pending hook event(s) "
			 "of stopped agent %s%s", a->id, got, other,
			 bad ? " (unreadable ones dropped)" : "");
}

/* Moves the events of agent `other` into our hash (WATCH/MULTI/EXEC: an
 * agent adopting the same one at the same time makes our EXEC fail) and
 * queues them. */
static void
adopt_agent(struct hook_agent *a, const char *other)
{
	char *key = key_hook_events(a->ns, other);
	struct berr err;
	berr_clear(&err);
	redisReply *all = NULL, *exec = NULL;
	const char **argv = NULL;
	size_t *lens = NULL;
	bool watching = false, multi = false;

	const char *watch[] = {"WATCH", key};
	if (!(watching = adopt_step(a, &err, 2, watch, NULL)))
		goto fail;
	all = redis_command(a->redis, &err, "HGETALL", key, NULL);
	if (!all || all->type != REDIS_REPLY_ARRAY) {
		if (all)
			berr_set(&err, "HGETALL: %s",
				 all->type == REDIS_REPLY_ERROR
					 ? all->str
					 : "unexpected reply");
		goto fail;
	}
	const char *multi_cmd[] = {"MULTI"};
	if (!(multi = adopt_step(a, &err, 1, multi_cmd, NULL)))
		goto fail;
	if (all->elements >= 2) {
		size_t n = 2 + all->elements;
		argv = xcalloc(n, sizeof(*argv));
		lens = xcalloc(n, sizeof(*lens));
		argv[0] = "HSET";
		lens[0] = 4;
		argv[1] = a->events_key;
		lens[1] = strlen(a->events_key);
		for (size_t i = 0; i < all->elements; i++) {
			argv[2 + i] = all->element[i]->str;
			lens[2 + i] = all->element[i]->len;
		}
		if (!adopt_step(a, &err, (int)n, argv, lens))
			goto fail;
	}
	const char *del[] = {"DEL", key};
	const char *hdel[] = {"HDEL", a->agents_key, other};
	if (!adopt_step(a, &err, 2, del, NULL) ||
	    !adopt_step(a, &err, 3, hdel, NULL))
		goto fail;
	exec = redis_command(a->redis, &err, "EXEC", NULL);
	watching = multi = false;
	if (exec && exec->type == REDIS_REPLY_NIL) {
		log_debug("hook agent %s: agent %s was taken over by another",
			  a->id, other);
		goto out;
	}
	if (!exec || exec->type != REDIS_REPLY_ARRAY) {
		if (exec)
			berr_set(&err, "EXEC: %s",
				 exec->type == REDIS_REPLY_ERROR
					 ? exec->str
					 : "unexpected reply");
		goto fail;
	}
	adopt_records(a, all, other);
	goto out;
fail:
	log_warn("hook agent %s: taking over the events of agent %s: %s",
		 a->id, other, err.msg);
	if (multi || watching) {
		/* harmless on a fresh connection after an error */
		const char *undo[] = {multi ? "DISCARD" : "UNWATCH"};
		struct berr e2;
		berr_clear(&e2);
		freeReplyObject(redis_command_argv(a->redis, &e2, 1, undo,
						   NULL));
	}
out:
	freeReplyObject(exec);
	freeReplyObject(all);
	free(argv);
	free(lens);
	free(key);
}

/* Takes over the events of every agent stopped or silent for 30 s. */
void
hook_adopt_orphans(struct hook_agent *a)
{
	struct berr err;
	berr_clear(&err);
	redisReply *r = redis_command(a->redis, &err, "HGETALL",
				      a->agents_key, NULL);
	if (!r || r->type != REDIS_REPLY_ARRAY) {
		log_warn("hook agent %s: reading %s: %s", a->id, a->agents_key,
			 r && r->type == REDIS_REPLY_ERROR ? r->str : err.msg);
		freeReplyObject(r);
		return;
	}
	int64_t now = util_now_ms();
	char **dead = NULL;
	size_t ndead = 0;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *f = r->element[i], *v = r->element[i + 1];
		if (f->type != REDIS_REPLY_STRING || strcmp(f->str, a->id) == 0)
			continue;
		int64_t beat = 0;
		if (v->type != REDIS_REPLY_STRING ||
		    util_parse_i64(v->str, 0, INT64_MAX, &beat) < 0)
			beat = 0;
		if (beat != 0 && now - beat <= HOOK_STALE_MS)
			continue;
		dead = xrealloc(dead, sizeof(*dead) * (ndead + 1));
		dead[ndead++] = xstrdup(f->str);
	}
	freeReplyObject(r);
	for (size_t i = 0; i < ndead; i++) {
		adopt_agent(a, dead[i]);
		free(dead[i]);
	}
	free(dead);
}

void *
hook_keeper_main(void *arg)
{
	struct hook_agent *a = arg;
	int64_t next_beat = util_monotonic_ms() + HOOK_HEARTBEAT_MS;
	int64_t next_adopt = util_monotonic_ms() + HOOK_ADOPT_EVERY_MS;
	while (!ticker_stopping(&a->keeper_tick)) {
		int64_t now = util_monotonic_ms();
		if (now >= next_beat) {
			hook_register_agent(a, util_now_ms());
			next_beat = now + HOOK_HEARTBEAT_MS;
		}
		if (now >= next_adopt) {
			hook_adopt_orphans(a);
			next_adopt = now + HOOK_ADOPT_EVERY_MS;
		}
		hook_persist_dirty(a);
		hook_retry_stale(a);
		if (ticker_sleep(&a->keeper_tick, HOOK_KEEPER_TICK_MS))
			break;
	}
	return NULL;
}

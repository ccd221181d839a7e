/* hook_keeper.c - the hook agent's side of its Redis records: the record
 * <-> event conversion, the writes and deletes of records by the threads
 * that hold their job, the keeper thread (heartbeat, late persistence of
 * events Redis refused at submit, retries of failed deletes) and the
 * takeover of the events of stopped agents. The Redis side (keys, record
 * format, the adoption transaction) is store/hook_store.c, which documents
 * the durability scheme; this file speaks to it through store/hook_store.h
 * only. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks/hook.h"
#include "hooks/hook_internal.h"
#include "common/json.h"
#include "logs/log.h"
#include "store/hook_store.h"

#define HOOK_HEARTBEAT_MS 5000
#define HOOK_STALE_MS 30000
#define HOOK_ADOPT_EVERY_MS 30000
#define HOOK_KEEPER_TICK_MS 1000

/* ---- records ------------------------------------------------------------ */

/* The record of an event (JSON, the format of store/hook_store.c). New
 * string. */
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
	cJSON *o = json_parse(text, len, NULL);
	const char *job_id = json_str(o, "job_id");
	const char *url = json_str(o, "url");
	const char *payload = json_str(o, "payload");
	cJSON *p = payload ? json_parse(payload, strlen(payload), NULL) : NULL;
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
	struct berr err;
	berr_clear(&err);
	if (hook_store_beat(a->store, beat, &err) == 0)
		atomic_store(&a->registered, true);
	else
		log_debug("hook agent %s: heartbeat: %s", a->id, err.msg);
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
	int rc = hook_store_put(a->store, e->id, rec, err);
	free(rec);
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
	if (hook_store_del(a->store, id, &err) < 0) {
		pthread_mutex_lock(&a->mu);
		stale_push_locked(a, id);
		pthread_mutex_unlock(&a->mu);
	}
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

/* ---- the keeper: late persistence, failed deletes ---------------------- */

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

/* ---- takeover ---------------------------------------------------------- */

/* Queues the events of adopted records. */
static void
adopt_records(struct hook_agent *a, const struct hook_record *recs, size_t n,
	      const char *other)
{
	size_t got = 0, bad = 0;
	struct hook_event *dropped = NULL;
	for (size_t i = 0; i < n; i++) {
		struct hook_event *e = NULL;
		if (recs[i].id && recs[i].text)
			e = event_from_record(recs[i].id, recs[i].text,
					      recs[i].len);
		if (!e) {
			bad++;
			if (recs[i].id)
				hook_record_delete(a, recs[i].id);
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
	hook_trim_backlog(a); /* adopted events keep their age */
	if (got || bad)
		log_info("hook agent %s: took over %zu pending hook event(s) "
			 "of stopped agent %s%s", a->id, got, other,
			 bad ? " (unreadable ones dropped)" : "");
}

/* Moves the events of agent `other` into ours (an agent adopting the same
 * one at the same time makes one of the two fail) and queues them. */
static void
adopt_agent(struct hook_agent *a, const char *other)
{
	struct hook_record *recs = NULL;
	size_t n = 0;
	struct berr err;
	berr_clear(&err);
	switch (hook_store_adopt(a->store, other, &recs, &n, &err)) {
	case HOOK_ADOPT_DONE:
		adopt_records(a, recs, n, other);
		break;
	case HOOK_ADOPT_RACED:
		log_debug("hook agent %s: agent %s was taken over by another",
			  a->id, other);
		break;
	case HOOK_ADOPT_FAILED:
		log_warn("hook agent %s: taking over the events of agent "
			 "%s: %s", a->id, other, err.msg);
		break;
	}
	hook_records_free(recs, n);
}

/* Takes over the events of every agent stopped or silent for 30 s. */
void
hook_adopt_orphans(struct hook_agent *a)
{
	struct hook_peer *peers = NULL;
	size_t n = 0;
	struct berr err;
	berr_clear(&err);
	if (hook_store_peers(a->store, &peers, &n, &err) < 0) {
		log_warn("hook agent %s: %s", a->id, err.msg);
		return;
	}
	int64_t now = util_now_ms();
	for (size_t i = 0; i < n; i++) {
		int64_t beat = peers[i].beat;
		if (beat != 0 && now - beat <= HOOK_STALE_MS)
			continue;
		adopt_agent(a, peers[i].id);
	}
	hook_peers_free(peers, n);
}

/* ---- the keeper thread ------------------------------------------------- */

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
		hook_trim_backlog(a);
		hook_persist_dirty(a);
		hook_retry_stale(a);
		if (ticker_sleep(&a->keeper_tick, HOOK_KEEPER_TICK_MS))
			break;
	}
	return NULL;
}

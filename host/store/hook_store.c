/* hook_store.c - the hook agent's pending events and its agent registry in
 * Redis: the keys, the records as opaque text, the heartbeat and the
 * adoption transaction. What a record holds and when it is written, read
 * or adopted is the hook agent's: hooks/hook_keeper.c (the keeper thread,
 * the record <-> event conversion) and hooks/hook.c.
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/hook_store.h"
#include "store/keys.h"
#include "store/redis_cmd.h"

struct hook_store {
	struct redis_pool *redis;
	char *id;          /* our agent id (hex24) */
	char *ns;
	char *agents_key;  /* <ns>:berth:hook_agents */
	char *events_key;  /* <ns>:berth:hook_events:<id> */
};

struct hook_store *
hook_store_new(struct redis_pool *redis, const char *ns, const char *agent_id)
{
	struct hook_store *s = xcalloc(1, sizeof(*s));
	s->redis = redis;
	s->id = xstrdup(agent_id);
	s->ns = xstrdup(ns);
	s->agents_key = key_hook_agents(ns);
	s->events_key = key_hook_events(ns, agent_id);
	return s;
}

void
hook_store_free(struct hook_store *s)
{
	if (!s)
		return;
	free(s->id);
	free(s->ns);
	free(s->agents_key);
	free(s->events_key);
	free(s);
}

/* ---- registry and records ------------------------------------------------ */

/* 0 for a reply that is not an error; -1 with err otherwise (prefix, when
 * not NULL, names the command of an error reply). Frees r. */
static int
reply_done(redisReply *r, const char *prefix, struct berr *err)
{
	int rc = 0;
	if (!r)
		rc = -1;
	else if (r->type == REDIS_REPLY_ERROR)
		rc = prefix ? berr_set(err, "%s: %s", prefix, r->str)
			    : berr_set(err, "%s", r->str);
	freeReplyObject(r);
	return rc;
}

int
hook_store_beat(struct hook_store *s, int64_t beat, struct berr *err)
{
	char v[24];
	snprintf(v, sizeof(v), "%" PRId64, beat);
	return reply_done(redis_command(s->redis, err, "HSET", s->agents_key,
					s->id, v, NULL),
			  NULL, err);
}

int
hook_store_put(struct hook_store *s, const char *id, const char *text,
	       struct berr *err)
{
	return reply_done(redis_command(s->redis, err, "HSET", s->events_key,
					id, text, NULL),
			  "HSET", err);
}

int
hook_store_del(struct hook_store *s, const char *id, struct berr *err)
{
	return reply_done(redis_command(s->redis, err, "HDEL", s->events_key,
					id, NULL),
			  "HDEL", err);
}

int
hook_store_peers(struct hook_store *s, struct hook_peer **peers, size_t *n,
		 struct berr *err)
{
	*peers = NULL;
	*n = 0;
	redisReply *r = redis_command(s->redis, err, "HGETALL", s->agents_key,
				      NULL);
	if (!r || r->type != REDIS_REPLY_ARRAY) {
		char why[BERR_MSG_MAX];
		const char *what = "unexpected reply";
		if (!r)
			what = err->msg;
		else if (r->type == REDIS_REPLY_ERROR)
			what = r->str;
		snprintf(why, sizeof(why), "%s", what);
		berr_set(err, "reading %s: %s", s->agents_key, why);
		freeReplyObject(r);
		return -1;
	}
	struct hook_peer *out = NULL;
	size_t k = 0;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *f = r->element[i], *v = r->element[i + 1];
		if (f->type != REDIS_REPLY_STRING || strcmp(f->str, s->id) == 0)
			continue;
		int64_t beat = 0;
		if (v->type != REDIS_REPLY_STRING ||
		    util_parse_i64(v->str, 0, INT64_MAX, &beat) < 0)
			beat = 0;
		out = xrealloc(out, sizeof(*out) * (k + 1));
		out[k].id = xstrdup(f->str);
		out[k].beat = beat;
		k++;
	}
	freeReplyObject(r);
	*peers = out;
	*n = k;
	return 0;
}

void
hook_peers_free(struct hook_peer *peers, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(peers[i].id);
	free(peers);
}

void
hook_records_free(struct hook_record *recs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(recs[i].id);
		free(recs[i].text);
	}
	free(recs);
}

/* ---- adoption ------------------------------------------------------------ */

/* The records of an HGETALL reply (field, value, ...), copied. */
static struct hook_record *
records_of(const redisReply *all, size_t *n)
{
	size_t k = all->elements / 2;
	struct hook_record *recs = k ? xcalloc(k, sizeof(*recs)) : NULL;
	for (size_t i = 0; i < k; i++) {
		const redisReply *f = all->element[2 * i];
		const redisReply *v = all->element[2 * i + 1];
		if (f->type == REDIS_REPLY_STRING)
			recs[i].id = xstrndup(f->str, f->len);
		if (v->type == REDIS_REPLY_STRING) {
			recs[i].text = xstrndup(v->str, v->len);
			recs[i].len = v->len;
		}
	}
	*n = k;
	return recs;
}

/* -1 with err "<cmd>: <error>" when r is an error reply, else 0. */
static int
reply_refused(const redisReply *r, const char *cmd, struct berr *err)
{
	if (r && r->type == REDIS_REPLY_ERROR)
		return berr_set(err, "%s: %s", cmd, r->str);
	return 0;
}

/* Round trip 1: WATCH the other agent's hash and read it (HGETALL). Round
 * trip 2: MULTI, HSET its records into ours (when there are any), DEL its
 * hash, HDEL it from the registry, EXEC. EXEC answers nil when the hash
 * changed since the WATCH: another agent adopted it first. */
enum hook_adopt
hook_store_adopt(struct hook_store *s, const char *other,
		 struct hook_record **recs, size_t *n, struct berr *err)
{
	*recs = NULL;
	*n = 0;
	char *key = key_hook_events(s->ns, other);
	enum hook_adopt rc = HOOK_ADOPT_FAILED;
	redisReply *rd[2] = {NULL, NULL};
	redisReply **tx = NULL;
	const char **argv = NULL;
	size_t *lens = NULL;
	size_t ntx = 0;
	bool watching = false;

	const char *watch[] = {"WATCH", key};
	const char *hgetall[] = {"HGETALL", key};
	const struct redis_cmd read[] = {{2, watch, NULL}, {2, hgetall, NULL}};
	if (redis_pipeline(s->redis, err, read, 2, rd, 0) < 0 ||
	    reply_refused(rd[0], "WATCH", err) < 0)
		goto out;
	watching = true;
	const redisReply *all = rd[1];
	if (all->type != REDIS_REPLY_ARRAY) {
		berr_set(err, "HGETALL: %s",
			 all->type == REDIS_REPLY_ERROR ? all->str
							: "unexpected reply");
		goto out;
	}

	const char *multi[] = {"MULTI"};
	const char *del[] = {"DEL", key};
	const char *hdel[] = {"HDEL", s->agents_key, other};
	const char *exec[] = {"EXEC"};
	struct redis_cmd cmds[5];
	const char *names[5];
	cmds[ntx] = (struct redis_cmd){1, multi, NULL};
	names[ntx++] = "MULTI";
	if (all->elements >= 2) {
		size_t argc = 2 + all->elements;
		argv = xcalloc(argc, sizeof(*argv));
		lens = xcalloc(argc, sizeof(*lens));
		argv[0] = "HSET";
		lens[0] = 4;
		argv[1] = s->events_key;
		lens[1] = strlen(s->events_key);
		for (size_t i = 0; i < all->elements; i++) {
			argv[2 + i] = all->element[i]->str;
			lens[2 + i] = all->element[i]->len;
		}
		cmds[ntx] = (struct redis_cmd){(int)argc, argv, lens};
		names[ntx++] = "HSET";
	}
	cmds[ntx] = (struct redis_cmd){2, del, NULL};
	names[ntx++] = "DEL";
	cmds[ntx] = (struct redis_cmd){3, hdel, NULL};
	names[ntx++] = "HDEL";
	cmds[ntx] = (struct redis_cmd){1, exec, NULL};
	names[ntx++] = "EXEC";
	tx = xcalloc(ntx, sizeof(*tx));
	/* EXEC (or the dropped connection) ends the WATCH and the MULTI */
	watching = false;
	if (redis_pipeline(s->redis, err, cmds, ntx, tx, 0) < 0)
		goto out;
	for (size_t i = 0; i + 1 < ntx; i++)
		if (reply_refused(tx[i], names[i], err) < 0)
			goto out;
	const redisReply *ex = tx[ntx - 1];
	if (ex->type == REDIS_REPLY_NIL) {
		rc = HOOK_ADOPT_RACED;
		goto out;
	}
	if (ex->type != REDIS_REPLY_ARRAY) {
		berr_set(err, "EXEC: %s",
			 ex->type == REDIS_REPLY_ERROR ? ex->str
						       : "unexpected reply");
		goto out;
	}
	*recs = records_of(all, n);
	rc = HOOK_ADOPT_DONE;
out:
	if (watching) {
		/* the WATCH alone is left after a failed read */
		struct berr e2;
		berr_clear(&e2);
		freeReplyObject(redis_command(s->redis, &e2, "UNWATCH", NULL));
	}
	redis_replies_free(rd, 2);
	if (tx)
		redis_replies_free(tx, ntx);
	free(tx);
	free(argv);
	free(lens);
	free(key);
	return rc;
}

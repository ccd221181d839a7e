/* hook_store.h - the hook agent's pending events and its agent registry in
 * Redis (Berth keys Go never reads; layout and record format in
 * hook_store.c). The store keeps records as opaque text: what a record
 * holds and when it is written is the hook agent's (hooks/hook_keeper.c).
 * A handle is immutable once made and may be used from any thread. */
#ifndef BERTH_HOOK_STORE_H
#define BERTH_HOOK_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "store/redis_conn.h"

struct hook_store;

/* One record as read from an events hash. id (the hash field) and text
 * (the value, len bytes, NUL-terminated) are NULL when Redis returned
 * something else than a string there. */
struct hook_record {
	char *id;
	char *text;
	size_t len;
};

/* Another agent of the registry and its heartbeat (epoch ms; 0 after a
 * clean stop or when the stored value is not an integer). */
struct hook_peer {
	char *id;
	int64_t beat;
};

/* The store of agent agent_id under namespace ns (both copied). */
struct hook_store *hook_store_new(struct redis_pool *redis, const char *ns,
				  const char *agent_id);
/* NULL-safe. */
void hook_store_free(struct hook_store *s);

/* HSET our heartbeat (epoch ms, or 0 for "stopped") in the registry. 0, or
 * -1 with err (the error reply's text, or the connection error). */
int hook_store_beat(struct hook_store *s, int64_t beat, struct berr *err);
/* HSET record id (hex24) to text in our events hash. 0, or -1 with err
 * ("HSET: <error>" for an error reply). */
int hook_store_put(struct hook_store *s, const char *id, const char *text,
		   struct berr *err);
/* HDEL record id from our events hash. 0, or -1 with err. */
int hook_store_del(struct hook_store *s, const char *id, struct berr *err);

/* Every agent of the registry but ours, in the order Redis returns them.
 * 0 with *peers (*n entries; free with hook_peers_free), or -1 with err
 * ("reading <key>: <error>"). */
int hook_store_peers(struct hook_store *s, struct hook_peer **peers,
		     size_t *n, struct berr *err);
void hook_peers_free(struct hook_peer *peers, size_t n);

/* What hook_store_adopt came to. */
enum hook_adopt {
	HOOK_ADOPT_DONE = 0,   /* the records are ours now (*recs) */
	HOOK_ADOPT_RACED = 1,  /* another agent took them first (EXEC nil) */
	HOOK_ADOPT_FAILED = -1 /* err says why; nothing moved */
};
/* Moves the records of agent other into our events hash and drops other
 * from the registry, in one WATCH/MULTI/EXEC transaction, so that two
 * agents never adopt the same records. On HOOK_ADOPT_DONE *recs (*n
 * entries, possibly 0; free with hook_records_free) are the records moved,
 * as they were read. */
enum hook_adopt hook_store_adopt(struct hook_store *s, const char *other,
				 struct hook_record **recs, size_t *n,
				 struct berr *err);
void hook_records_free(struct hook_record *recs, size_t n);

#endif

/* scripts.h - the Lua scripts of spec 12.3 and Berth's own scripts of the
 * periodic scheduler, loaded once per Redis (SCRIPT LOAD) and run with
 * EVALSHA; a NOSCRIPT reply (Redis restarted or flushed its script
 * cache) reloads the script and retries once. Every script is documented
 * here with its KEYS and ARGV, in order. */
#ifndef BERTH_SCRIPTS_H
#define BERTH_SCRIPTS_H

#include "store/redis_cmd.h"

#include "store/redis_conn.h"
#include "common/util.h"

enum script_id {
	/* spec 4.3. KEYS: stats, NS:job_track:inprogress.
	 * ARGV: target status, caller revision, now, job id.
	 * Returns "ok" or the stored status (nil when absent) on mismatch.
	 * A final status decrements the in-progress counter, or removes the
	 * field when the stats have no web_hook_url (no ACK can come). */
	SCRIPT_STATUS_CAS,
	/* spec 4.5. KEYS: stats, NS:job_track:inprogress.
	 * ARGV: now (new revision and update_time), job id.
	 * HMSET status=Pending revision=now update_time=now, HDEL ack
	 * check_in check_in_at, HSET inprogress id 2. Returns "ok". */
	SCRIPT_RESET,
	/* spec 7.4. KEYS: stats, NS:job_track:inprogress.
	 * ARGV: status, revision, check_in_at, job id. Returns "ok"/"none". */
	SCRIPT_ACK,
	/* spec 5.6. KEYS: the zset (NS:scheduled or NS:retry), NS:dead, then
	 * NS:jobs:T for every type to move to its queue: Go passes its own
	 * registered types; Berth passes every type some registered pool
	 * serves (its own plus the job_names of NS:worker_pools), so a due
	 * message of a type only another instance runs waits in its queue
	 * for that instance instead of going to dead.
	 * ARGV: NS:jobs: prefix ("<ns>:jobs:"), now, "ask" or "", and
	 * NS:berth:ready (a queued message's type is added to it).
	 * Moves one due message: "ok" (queued), "dead" (unknown type), or nil
	 * when nothing is due. Re-encodes with cjson, t = now. With "ask", a
	 * message of an unknown type stays and the reply is "unknown". */
	SCRIPT_REQUEUE,
	/* spec 5.7. KEYS: NS:jobs:T, unique key. ARGV: message.
	 * SET unique 1 NX EX 86400, then LPUSH. Returns "ok" or "dup". */
	SCRIPT_ENQUEUE_UNIQUE,
	/* spec 5.7. KEYS: NS:scheduled, unique key. ARGV: message, run_at.
	 * SET unique 1 NX EX 86400, then ZADD. Returns "ok" or "dup". */
	SCRIPT_ENQUEUE_UNIQUE_DELAYED,
	/* spec 9.1. KEYS: 4 per type: NS:jobs:T:<pool>:inprogress, NS:jobs:T,
	 * NS:jobs:T:lock, NS:jobs:T:lock_info. ARGV: dead pool id,
	 * NS:berth:ready, "<ns>:jobs:" (T joins the ready set).
	 * Moves one message back; returns {msg, inprogress, queue} or nil. */
	SCRIPT_REENQUEUE_POOL,
	/* spec 9.1. KEYS: 2 per type: NS:jobs:T:lock, NS:jobs:T:lock_info.
	 * ARGV: dead pool id. Returns "ok". */
	SCRIPT_STALE_LOCKS,
	/* spec 8.7 / 2.7. KEYS: zset. ARGV: score, job id.
	 * Removes the members with that score whose decoded "id" equals the
	 * job id and returns them as an array of raw messages (empty when
	 * none matched): the count is its length, the last removed member
	 * its last element. Deleting the unique key of a removed message
	 * with "unique":true is left to the caller (message_unique_key). */
	SCRIPT_ZREM_BY_ID,
	/* Berth, spec 8.3 / Q6. KEYS: NS:period:policies.
	 * ARGV: score (numeric policy id), policy JSON.
	 * ZADD only when no member has that score. Returns 1 (added) or 0. */
	SCRIPT_PERIOD_ADD_ONCE,
	/* Berth, Q17. KEYS: NS:executions:<policy>.
	 * ARGV: stats key prefix ("<ns>:job_stats:"), how many to look at.
	 * Removes finished members (score -1) whose stats hash (prefix ..
	 * member) no longer exists, oldest first, looking at most ARGV[2]
	 * of them. The stats keys share the {namespace} hash tag of the
	 * zset (one cluster slot). Returns the number removed. */
	SCRIPT_PERIOD_TRIM,
	/* Berth, spec 8.5. KEYS: NS:executions:<policy>.
	 * ARGV: execution ids. Returns an array, one integer per id: 1 when
	 * the id is a member, 0 when not. */
	SCRIPT_PERIOD_KNOWN,
	/* Berth, spec 8.4. KEYS: NS:period:lock. ARGV: node id.
	 * DEL the lock only while it still holds this node id (Go does GET
	 * then DEL; the script closes the gap). Returns 1 (deleted) or 0. */
	SCRIPT_PERIOD_UNLOCK,
	/* Berth, spec 5.5 step 4 (idempotent). KEYS: the in-progress list,
	 * NS:jobs:T:lock, NS:jobs:T:lock_info, and optionally the zset that
	 * receives the re-encoded message (NS:retry; NS:dead for a job that
	 * crashed its daemon too often). ARGV: pool id, the claimed message
	 * (exact bytes), then optionally score and the new message.
	 * When LREM removes the message: DECR lock, HINCRBY lock_info pool -1,
	 * ZADD; returns 1. Returns 0 (nothing written) when the message was
	 * no longer there (an earlier attempt went through). */
	SCRIPT_FINISH,
	/* Berth. KEYS: NS:jobs:T:<pool>:inprogress, NS:jobs:T,
	 * NS:jobs:T:lock, NS:jobs:T:lock_info, NS:berth:ready. ARGV: pool
	 * id, T, then the messages of type T this pool's workers hold
	 * (exact bytes); T joins the ready set when a message moved.
	 * Moves every other member back to the tail of NS:jobs:T, sets
	 * lock_info[pool] to the number kept (HDEL at 0) and moves lock by
	 * the same difference (not below 0). Returns {moved, old share,
	 * kept}. */
	SCRIPT_RECONCILE,
	/* Berth, issue 12: fetch, track, Running and observation in one
	 * script (store/drain.h). KEYS: NS:berth:ready, NS:berth:pool_types:
	 * <pool> (hash type -> priority), NS:job_track:inprogress, the
	 * wake-up list, this worker's NS:worker:<id>.
	 * ARGV: pool id, now, "<ns>:jobs:", "<ns>:job_stats:", then the key
	 * suffixes ":<pool>:inprogress", ":paused", ":lock", ":lock_info",
	 * ":max_concurrency", a random seed, "1" to first add every served
	 * type with a non-empty queue to the ready set (messages enqueued by
	 * Go), the observation TTL, the periodic mark of args.
	 * Fetches as spec 5.4 over the ready types this pool serves, in
	 * the weighted random order of step 1 (priorities from the hash, a
	 * priority below 1 counts as 1): a type whose NS:jobs:T:paused
	 * exists is skipped, so is one whose NS:jobs:T:max_concurrency is
	 * non-zero and its NS:jobs:T:lock at or above it (no lock = free);
	 * else RPOPLPUSH of the oldest message to NS:jobs:T:<pool>:
	 * inprogress, INCR lock, HINCRBY lock_info pool 1;
	 * types found empty leave the ready set, and the wake-up list is
	 * deleted (no stale wake-ups) when the set is empty or nothing was
	 * claimable while every ready type is served by this pool (a type
	 * only another pool serves keeps its wake-ups). Returns nil,
	 * {"types"} when the pool's type hash is missing (and some type is
	 * ready), {msg, type,
	 * inprogress key, "host", more} when the caller must track the job
	 * itself (message not decodable, no stats status, an unexpected
	 * status), else {msg, type, inprogress key, decision, more, stats
	 * (field/value pairs before the writes: all of them for a job with a
	 * web_hook_url, else status, revision and kind), new revision, args
	 * exact} with decision "run"
	 * (Pending/Scheduled -> Running), "reset" (Running/Error: spec 4.5
	 * with the new revision, then Running) or "final" (Stopped/Success,
	 * nothing written); the observation is written for these three,
	 * its args copied from the message when it is exactly Go's layout
	 * {"name":..,"id":..,"t":<digits>,"args":..[,"unique":true]}, else
	 * args = "" and args exact = 0 (the caller writes them). more = 0
	 * when no ready type is left. */
	SCRIPT_CLAIM,
	/* Berth, issue 12. KEYS: the in-progress list, NS:jobs:T:lock,
	 * NS:jobs:T:lock_info, NS:worker:<id>, the stats, NS:job_track:
	 * inprogress, NS:retry (NS:dead for a given-up job); with a next
	 * claim also NS:berth:ready, NS:berth:pool_types:<pool> and the
	 * wake-up list.
	 * ARGV: pool id, the claimed message, target status ("" = none),
	 * revision, now, job id, "first" or "again", score and the new
	 * message for that zset ("" = none), "next" or "", then with "next"
	 * the 13 ARGV of SCRIPT_CLAIM. SCRIPT_FINISH's effects, DEL of the
	 * observation, the status CAS of spec 4.3 unless this is an "again"
	 * whose message was already gone (the earlier attempt went through),
	 * then with "next" SCRIPT_CLAIM for the same worker. Returns
	 * {removed, "ok" | "none" | "mismatch", stored status or ""[, the
	 * claim's reply]}. */
	SCRIPT_COMPLETE,
	/* Berth, the Operations API (store/queue_ops.h). KEYS: the source
	 * zset, the destination zset (may be the same). ARGV: score, then
	 * pairs (member, new member or ""). For each pair whose member is in
	 * the source: ZREM it, then ZADD the new member (when not "") to the
	 * destination at score. Returns how many members were found. */
	SCRIPT_SET_MOVE,
	SCRIPT__COUNT
};

/* Runs a script on this thread's connection: nkeys keys then nargs args,
 * NUL-terminated (script_run_lens below takes lengths). Returns the reply
 * (caller frees) or NULL with err on a connection error. A Lua error comes
 * back as a REDIS_REPLY_ERROR reply. Words a script returns ("ok", "dup",
 * "none", a status) arrive as REDIS_REPLY_STRING, a Lua nil as
 * REDIS_REPLY_NIL, tables as REDIS_REPLY_ARRAY. Thread-safe: the SHA1 of
 * each script is cached process-wide under a mutex. */
redisReply *script_run(struct redis_pool *p, struct berr *err,
		       enum script_id id, int nkeys, const char **keys,
		       int nargs, const char **args);

/* Same with binary-safe lengths: klens/alens give the length of each key
 * and argument (either may be NULL: strlen). */
redisReply *script_run_lens(struct redis_pool *p, struct berr *err,
			    enum script_id id, int nkeys, const char **keys,
			    const size_t *klens, int nargs, const char **args,
			    const size_t *alens);

/* Loads every script (SCRIPT LOAD); called at start-up so a broken script is
 * found early. */
int scripts_load_all(struct redis_pool *p, struct berr *err);

/* The Lua source (for tests and docs); NULL for an unknown id. */
const char *script_source(enum script_id id);
/* Short name ("status_cas", "claim", ...) for messages. */
const char *script_name(enum script_id id);

#endif

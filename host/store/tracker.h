/* tracker.h - the one owner of the job stats hash NS:job_stats:<id> and of
 * the in-progress hash NS:job_track:inprogress (spec 3.3, 3.5, 4, 7.4, 9.3):
 * save, load, status compare-and-set (one Lua script), reset for retry
 * (revision bump), check-in, the hook ACK, forget, the list of every job,
 * the in-progress walk of the reaper, and the in-memory retry list of status
 * writes that failed on Redis errors (spec 4.6). Nobody else reads or
 * writes these keys. Thread-safe: every call uses the calling thread's
 * Redis connection. The stats struct and its JSON forms are in
 * store/job_stats.h. */
#ifndef BERTH_TRACKER_H
#define BERTH_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/util.h"
#include "store/job_stats.h"

struct redis_pool;

struct tracker;

/* Called after every status write and check-in that the spec says fires a
 * hook (spec 7.1), with an immutable snapshot, for jobs that have a hook
 * URL (web_hook_url; the others have nobody to tell, and their snapshot is
 * not worth its copy); check_in is NULL except for check-ins. The hook
 * agent plugs in here. */
typedef void (*tracker_event_fn)(void *data, const struct job_stats *snap,
				 const char *check_in);

struct tracker *tracker_new(struct redis_pool *redis, const char *ns);
void tracker_free(struct tracker *t);
void tracker_set_event_fn(struct tracker *t, tracker_event_fn fn, void *data);
/* Reports a status change written by another store call (the drain's
 * scripts, store/drain.h) to the event fn, as tracker_set_status does. */
void tracker_announce(struct tracker *t, const struct job_stats *s);

/* spec 3.3 save: one MULTI/EXEC with HMSET of all fields (revision = the
 * stored one if any, else now), HSET NS:job_track:inprogress <id> 2, and
 * ZADD NS:executions:<upstream> NX <run_at> <id> for executions. s->revision
 * and s->update_time are filled in. */
int tracker_save(struct tracker *t, struct job_stats *s, struct berr *err);

/* Store-internal (store/pipe.h; used by tracker_save and store/submit.c):
 * appends the commands of the spec 3.3 save of s with revision rev and
 * update_time now to b, for a MULTI the caller wraps around them: HMSET of
 * the stats hash (the one field list), HSET NS:job_track:inprogress <id> 2
 * and, for executions, ZADD NS:executions:<upstream> NX <run_at> <id>. The
 * arguments borrow s's strings until the pipeline has run. */
struct pipe;
#define TRACKER_SAVE_CMDS_MAX 3
void tracker_save_append(struct tracker *t, struct pipe *b,
			 const struct job_stats *s, int64_t rev, int64_t now);
/* Store-internal: appends what tracker_forget sends (DEL of the stats
 * hash, HDEL of its in-progress entry). */
void tracker_forget_append(struct tracker *t, struct pipe *b,
			   const char *job_id);

/* Loads NS:job_stats:<id>. Returns 0 when found, 1 when absent, -1 on a
 * Redis error. */
int tracker_load(struct tracker *t, const char *id, struct job_stats *out,
		 struct berr *err);

/* One field f of the stats hash (value v, len bytes, NUL-terminated) read
 * into o as tracker_load does; unknown fields are ignored, bad values
 * logged and dropped. id names the job in messages. Used by tracker_load
 * and by the fuzz target tests/fuzz/fuzz_message.c. */
void tracker_load_field(struct job_stats *o, const char *id, const char *f,
			const char *v, size_t len);

/* Only the status field (HGET), for stop checks. Returns 0 and *status (new
 * string, NULL when the hash or field is absent) or -1. */
int tracker_get_status(struct tracker *t, const char *id, char **status,
		       struct berr *err);

enum tracker_cas {
	TRACKER_OK = 0,
	TRACKER_MISMATCH = 1, /* *current holds the stored status */
	TRACKER_REDIS_ERROR = -1,
};

/* spec 4.3 via SCRIPT_STATUS_CAS with s->revision. On ok, s->status and
 * s->update_time are updated and the event fn fires; on a Redis error the
 * write is queued on the retry list (spec 4.6) and the event fn fires too.
 * current (optional) receives the stored status on a mismatch. */
enum tracker_cas tracker_set_status(struct tracker *t, struct job_stats *s,
				    const char *target, char **current,
				    struct berr *err);

/* spec 4.5 via SCRIPT_RESET: new revision = now; s is updated (status
 * Pending, revision, update_time, ack/check-in cleared). No event. */
int tracker_reset(struct tracker *t, struct job_stats *s, struct berr *err);

/* spec 6.5 Checkin: empty text -> error "check in error: empty message".
 * Sets s->check_in(_at), update_time; fires the event with the text; then
 * HMSET check_in_at, update_time and (Berth) check_in = the text. */
int tracker_checkin(struct tracker *t, struct job_stats *s, const char *text,
		    struct berr *err);

/* spec 4.6: retries every queued status write once; drops it on ok or
 * mismatch. Returns the number still queued. */
size_t tracker_retry_pending(struct tracker *t);
size_t tracker_retry_count(struct tracker *t);

/* spec 4.3 via SCRIPT_STATUS_CAS for job_id with revision, and nothing
 * else: no event, no retry list, no struct to update (the reaper's repair
 * to the ACKed status, spec 9.3, which fires no hook). current as in
 * tracker_set_status. */
enum tracker_cas tracker_cas_status(struct tracker *t, const char *job_id,
				    const char *target, int64_t revision,
				    char **current, struct berr *err);

/* ---- the hook ACK (spec 7.4, 7.5) ---------------------------------------- */

/* SCRIPT_ACK: records that core got status / revision / check_in_at of
 * job_id (the stored ack only moves forward). Returns 1 when written, 0
 * when the script refused it (older than the stored ack, or no stats), -1
 * with err on a Redis error. */
int tracker_ack(struct tracker *t, const char *job_id, const char *status,
		int64_t revision, int64_t check_in_at, struct berr *err);
/* The stored ack of job_id (HGET), normalised as job_ack_normalise does:
 * 0 and *ack (a new object, NULL when absent or not a JSON object), or -1
 * with err on a Redis error. */
int tracker_read_ack(struct tracker *t, const char *job_id, cJSON **ack,
		     struct berr *err);

/* ---- forget, list ------------------------------------------------------- */

/* Removes the stats hash of job_id and its in-progress entry (a submission
 * that could not be enqueued), in one round trip. 0, or -1 with err (a
 * connection error). */
int tracker_forget(struct tracker *t, const char *job_id, struct berr *err);

/* One step of a cursor walk: job ids and the cursor of the next step ("0"
 * when the walk is complete). */
struct tracker_page {
	char **ids;   /* tracker_inprogress_scan: NULL for a malformed entry */
	size_t n;
	char cursor[32];
};
void tracker_page_fini(struct tracker_page *p);

/* One SCAN step (cursor, COUNT count) over the stats hashes: the ids of
 * the hashes it returned (GET /api/v1/jobs, spec 2.8). 0, or -1 with
 * err. */
int tracker_list(struct tracker *t, const char *cursor, unsigned count,
		 struct tracker_page *out, struct berr *err);

/* What tracker_list_filtered keeps: NULL members match anything. */
struct tracker_filter {
	const char *status;
	const char *type; /* the job name */
	const char *kind;
};
/* Berth's filtered list: up to max_steps SCAN steps (COUNT count) from
 * cursor, each followed by one pipelined HMGET kind name status of the
 * keys it returned; the ids of the hashes that pass f. Stops after the
 * step in which want ids matched, or when the walk is complete
 * (out->cursor "0"), so a page may hold fewer (even none, with a cursor
 * to go on from) or more than want. 0, or -1 with err. */
int tracker_list_filtered(struct tracker *t, const char *cursor,
			  unsigned count, unsigned max_steps, size_t want,
			  const struct tracker_filter *f,
			  struct tracker_page *out, struct berr *err);

/* The placeholder Go saves as check_in (spec 3.3), never a check-in. */
#define TRACKER_CHECKIN_PLACEHOLDER "[REDUNDANT]"
/* The latest check-in of job id: Berth stores its text in the stats
 * hash's check_in field (tracker_checkin). *text: a new string, NULL when
 * none (or Go's placeholder); *at: check_in_at, 0 when none. 0, or -1. */
int tracker_get_checkin(struct tracker *t, const char *id, char **text,
			int64_t *at, struct berr *err);

/* ---- the in-progress hash (spec 9.3) -------------------------------------- */

/* HLEN: *n entries (0 on an unexpected reply). 0, or -1 with err. */
int tracker_inprogress_count(struct tracker *t, size_t *n, struct berr *err);
/* One HSCAN step (cursor, COUNT count): ids[i] is the job id, or NULL when
 * the entry's counter is not an integer. 0, or -1 with err. */
int tracker_inprogress_scan(struct tracker *t, const char *cursor,
			    unsigned count, struct tracker_page *out,
			    struct berr *err);
/* HDEL job_id from the in-progress hash. 0, or -1 with err. */
int tracker_untrack(struct tracker *t, const char *job_id, struct berr *err);

#endif

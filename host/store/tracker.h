/* tracker.h - the job stats hash NS:job_stats:<id> and its life cycle
 * (spec 3.3, 3.5, 4): save, load, status compare-and-set (one Lua script),
 * reset for retry (revision bump), check-in, and the in-memory retry list of
 * status writes that failed on Redis errors (spec 4.6). Thread-safe: every
 * call uses the calling thread's Redis connection. */
#ifndef BERTH_TRACKER_H
#define BERTH_TRACKER_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "store/redis_conn.h"
#include "common/util.h"

#define JOB_STATUS_PENDING "Pending"
#define JOB_STATUS_SCHEDULED "Scheduled"
#define JOB_STATUS_RUNNING "Running"
#define JOB_STATUS_STOPPED "Stopped"
#define JOB_STATUS_ERROR "Error"
#define JOB_STATUS_SUCCESS "Success"

#define JOB_KIND_GENERIC "Generic"
#define JOB_KIND_SCHEDULED "Scheduled"
#define JOB_KIND_PERIODIC "Periodic"

/* 0 Pending, 1 Scheduled, 2 Running, 3 Stopped/Error/Success, -1 other. */
int job_status_code(const char *status);
bool job_status_final(const char *status);

/* One job's stats (spec 3.3). Strings are owned (NULL = empty). */
struct job_stats {
	char *id;
	char *status;
	char *name;
	char *kind;
	bool unique;
	char *ref_link;
	char *cron_spec;
	int64_t enqueue_time;
	int64_t update_time;
	int64_t run_at;
	char *check_in;        /* only in hook payloads */
	int64_t check_in_at;
	int64_t die_at;
	char *web_hook_url;
	char *upstream_job_id;
	int64_t numeric_policy_id;
	cJSON *parameters;     /* object or NULL */
	int64_t revision;
	cJSON *ack;            /* {"status","revision","check_in_at"} or NULL */
};

void job_stats_fini(struct job_stats *s);
/* Deep copy (an immutable snapshot for hooks). */
void job_stats_copy(struct job_stats *dst, const struct job_stats *src);
/* The JSON object of spec 3.3 in its key order, with omitempty rules;
 * with_check_in adds check_in (hook payloads only). */
cJSON *job_stats_to_json(const struct job_stats *s, bool with_check_in);

struct tracker;

/* Called after every status write and check-in that the spec says fires a
 * hook (spec 7.1), with an immutable snapshot; check_in is NULL except for
 * check-ins. The hook agent (a later module) plugs in here. */
typedef void (*tracker_event_fn)(void *data, const struct job_stats *snap,
				 const char *check_in);

struct tracker *tracker_new(struct redis_pool *redis, const char *ns);
void tracker_free(struct tracker *t);
void tracker_set_event_fn(struct tracker *t, tracker_event_fn fn, void *data);

/* spec 3.3 save: one MULTI/EXEC with HMSET of all fields (revision = the
 * stored one if any, else now), HSET NS:job_track:inprogress <id> 2, and
 * ZADD NS:executions:<upstream> NX <run_at> <id> for executions. s->revision
 * and s->update_time are filled in. */
int tracker_save(struct tracker *t, struct job_stats *s, struct berr *err);

/* Loads NS:job_stats:<id>. Returns 0 when found, 1 when absent, -1 on a
 * Redis error. */
int tracker_load(struct tracker *t, const char *id, struct job_stats *out,
		 struct berr *err);

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
 * HMSET check_in_at and update_time. */
int tracker_checkin(struct tracker *t, struct job_stats *s, const char *text,
		    struct berr *err);

/* spec 4.6: retries every queued status write once; drops it on ok or
 * mismatch. Returns the number still queued. */
size_t tracker_retry_pending(struct tracker *t);
size_t tracker_retry_count(struct tracker *t);

#endif

/* period.h - the periodic scheduler of spec 8, shared with Go instances:
 * policies in NS:period:policies, executions materialised into
 * NS:scheduled with byte-identical Go JSON, the enqueuer loop with the
 * NS:period:lock / NS:last_periodic_enqueue_h protocol, unscheduling, the
 * start-up cleanup of overdue scheduled messages, and the executions
 * listing of GET /api/v1/jobs/{id}/executions.
 *
 * Keys (spec 12.1; all Redis access is store/period_store.h):
 *   NS:period:policies          zset, member = policy JSON, score = numeric
 *                               policy id (unique here: spec 3.6 / Q6)
 *   NS:period:lock              SET NX EX 30 <node id> around the
 *                               "is it time?" check
 *   NS:last_periodic_enqueue_h  epoch of the last enqueue round
 *   NS:executions:<policy>      zset, member = execution id, score = run
 *                               epoch (-1 once run)
 *   NS:job_stats:<policy>@<t>   execution stats (kind Scheduled)
 *   NS:scheduled                {"name","id":<policy>,"t":<t>,"args":{...,
 *                               "_job_kind_periodic_":"<t>"}} at score t
 *
 * Timing: an enqueue round materialises every policy for (now, now+240 s).
 * Go tries a round every ~2 minutes; Berth tries every 30 s (+0..5 s), and
 * the shared timestamp still lets only one round in 120 s happen across
 * all instances, Go or Berth, so nothing changes for Go while a lost
 * instance is replaced within ~35 s instead of ~2 min (the 240 s horizon
 * always overlaps the next round). A new policy is materialised at once
 * (spec 8.3). A seconds-level cron gets every execution in the horizon.
 *
 * Duplicates: every instance writes identical message bytes for one
 * execution, so ZADD of an execution that is already pending is a no-op.
 * Berth also skips an execution whose id is already in
 * NS:executions:<policy> (it was materialised by an earlier round or
 * another instance): Go re-saves those, which resets a stats hash that may
 * already be Running and, when the requeuer has just moved the message,
 * adds it a second time. Skipping them is invisible to Go.
 *
 * Thread-safety: every function may be called from any thread (each uses
 * the calling thread's Redis connection); the enqueuer runs on one thread
 * of its own between period_start and period_stop. */
#ifndef BERTH_PERIOD_H
#define BERTH_PERIOD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/util.h"

struct job_stats;
struct plugin_registry;
struct queue;
struct redis_pool;
struct tracker;

#define PERIOD_HORIZON 240        /* seconds materialised ahead (Go: 4 min) */
#define PERIOD_MIN_INTERVAL 120   /* seconds between rounds (Go: 2 min) */
#define PERIOD_TRY_INTERVAL 30    /* Berth: how often a round is attempted */
#define PERIOD_LOCK_TTL 30        /* NS:period:lock expiry */
#define PERIOD_MARKER "_job_kind_periodic_"

/* The policy object of spec 3.6. Strings are owned; job_params is an
 * object or NULL; web_hook_url NULL or "" when there is none. */
struct period_policy {
	char *id;
	char *job_name;
	char *cron_spec;
	cJSON *job_params;
	char *web_hook_url;
	int64_t numeric_id;
};

void period_policy_fini(struct period_policy *p);
/* Go JSON of the policy, keys in struct order id, job_name, cron_spec,
 * job_params (omitempty; a map, so sorted keys), web_hook_url (omitempty),
 * numeric_id (omitempty). Strings are written as Go writes strings it
 * decoded from JSON. New string. */
char *period_policy_encode(const struct period_policy *p);
/* Parses a member of NS:period:policies as Go's json.Unmarshal into the
 * policy struct does (keys case-insensitive, the last duplicate wins,
 * unknown keys ignored, a wrong type is an error). */
int period_policy_parse(const char *raw, size_t len, struct period_policy *p,
			struct berr *err);
/* Go's Policy.Validate: id and job name non-blank, a non-blank hook URL
 * must parse as a URL, the cron spec must parse. */
int period_policy_validate(const struct period_policy *p, struct berr *err);

/* The NS:scheduled member of the execution of p at epoch (spec 8.5):
 * message_encode of {name: job_name, id: policy id, t: epoch, args:
 * job_params + {"_job_kind_periodic_": "<epoch>"}}. New string. */
char *period_execution_message(const struct period_policy *p, int64_t epoch);
/* "<policy>@<epoch>". New string. */
char *period_execution_id(const char *policy_id, int64_t epoch);

struct period;

/* plugins may be NULL (it is only used for log messages about policies
 * whose job type this instance does not run). Nothing starts yet. */
struct period *period_new(struct redis_pool *redis, const char *ns,
			  struct tracker *tracker, struct queue *queue,
			  struct plugin_registry *plugins);
/* Runs the start-up cleanup of spec 8.7 once (errors are logged), then
 * starts the enqueuer thread, which tries a round at once. */
int period_start(struct period *pd, struct berr *err);
/* Stops the enqueuer thread (returns within a Redis command timeout).
 * Idempotent; the API functions below keep working. */
void period_stop(struct period *pd);
/* Stops if needed and frees. NULL-safe. */
void period_free(struct period *pd);

/* Test hooks: the clock used for "now" (NULL = util_now) and the node id
 * written into NS:period:lock (default: a random hex24). */
void period_set_clock(struct period *pd, int64_t (*now)(void));
void period_set_node_id(struct period *pd, const char *node_id);
const char *period_node_id(const struct period *pd);

/* spec 8.3: a new policy (hex24 id) for job_name / cron_spec / params (an
 * object or NULL) / hook (NULL or "" = none). The caller has checked that
 * the job type exists and accepts params. Validates the policy,
 * materialises the next 240 s (errors only logged), adds the policy to
 * NS:period:policies with a score nobody else has (creation epoch +
 * 0..9, further up when all ten are taken), then saves the policy stats
 * (kind Periodic, status Scheduled, numeric_policy_id, cron_spec,
 * parameters, web_hook_url); when that save fails the policy and its
 * executions are removed again. On success *out holds the saved stats.
 * Returns 0, or -1 with err (API: 500, code 10003). */
int period_create_policy(struct period *pd, const char *job_name,
			 const char *cron_spec, const cJSON *params,
			 const char *hook, struct job_stats *out,
			 struct berr *err);

/* spec 8.5 for one policy over (now, now + PERIOD_HORIZON): for each run
 * epoch not yet in NS:executions:<id>, save the execution stats (which
 * adds it there) and ZADD the message to NS:scheduled; a failed ZADD marks
 * the execution Error and ends this policy's round. Returns the number of
 * executions written, or -1 with err. */
int period_materialise(struct period *pd, const struct period_policy *p,
		       int64_t now, struct berr *err);

/* spec 8.4 should_enqueue: lock, timestamp check (and update), unlock.
 * Returns 1 when this instance must run a round now, 0 when not, -1 on a
 * Redis error. */
int period_should_enqueue(struct period *pd, struct berr *err);
/* enqueue_all: loads every policy (members that do not parse or validate
 * are skipped with a log line) and materialises each. Then (Q17, which
 * allows it) finished members of NS:executions:<policy> whose stats have
 * expired are removed, up to 2000 looked at per policy and round, so the
 * zset no longer grows forever. Returns the number of executions
 * written, or -1 when the policies could not be read or some policy
 * failed (the others were still done). */
int period_enqueue_all(struct period *pd, struct berr *err);

/* spec 8.6 unschedule of policy_id. Returns 0 when done, 1 when neither
 * stats nor a policy with that id exist (API 404), -1 with err (API 500,
 * code 10006; e.g. "numeric ID not found for job: <id>").
 * Order: policy stats Stopped (with hook; errors logged) - policy removed
 * from NS:period:policies (so no later round can add executions) - every
 * unfinished execution: its message removed from NS:scheduled when it is
 * Scheduled, its stats Stopped when Pending/Scheduled/Running. Go removes
 * the policy last; the end state is the same. Berth also marks each
 * execution it stopped finished (score -1: non_dead_only listings skip
 * it, as they skip executions that ran) and trims expired ones (Q17). */
int period_unschedule(struct period *pd, const char *policy_id,
		      struct berr *err);

/* spec 8.7 (and Q14): removes every NS:scheduled member overdue by more
 * than PERIOD_HORIZON s (by score + id, unique keys included). Berth then
 * marks the job of each removed message Error (with its hook) when its
 * stats are still Pending or Scheduled, instead of leaving them Scheduled
 * until a reaper gives up on them, and marks a removed periodic execution
 * finished (score -1 in NS:executions:<policy>). Returns the number of
 * messages removed, or -1 with err. */
int period_clear_dirty(struct period *pd, struct berr *err);

/* spec 2.9 executions of policy_id, newest first. non_dead: -1 when the
 * query parameter was absent (or not a boolean), 0 false, 1 true.
 * page >= 1, size >= 1. *ids (NULL-terminated, free with
 * period_ids_free) may be empty; *total is the Total-Count. 0, or -1 with
 * *ids NULL. */
int period_list_executions(struct period *pd, const char *policy_id,
			   uint32_t page, uint32_t size, int non_dead,
			   char ***ids, size_t *n, int64_t *total,
			   struct berr *err);
void period_ids_free(char **ids);

/* Every member of NS:period:policies that parses, in score order
 * (numeric_id = score; not validated: GET /api/v1/periodic shows broken
 * policies too); fn returns non-zero to stop. 0, or -1 with err. */
int period_policies_each(struct period *pd,
			 int (*fn)(const struct period_policy *p, void *data),
			 void *data, struct berr *err);

/* ---- REST glue (host/api/api_periodic.c) -----------------------------
 * Declared here so api_jobs.c can hand over its Periodic branches without
 * growing http.h. */
struct api_request;
/* POST /api/v1/jobs with kind Periodic, after the shape checks of
 * api_jobs.c: cron check (400), job type and parameters (400),
 * period_create_policy (500/10003), 202 with the policy stats. */
int api_periodic_submit(struct api_request *req, const char *name,
			const char *cron_spec, const char *hook,
			const cJSON *params);
/* POST /api/v1/jobs/{id} stop when the stats are missing or Periodic:
 * period_unschedule -> 204, 404 (10010) or 500 (10006). */
int api_periodic_stop(struct api_request *req, const char *id);

#endif

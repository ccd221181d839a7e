/* keys.h - Redis key names under the namespace prefix (spec section 12).
 * Every builder returns a new string "<ns>:<rest>"; ns is "{namespace}".
 * Only host/store/ uses the keys themselves; the builders live here so no
 * other file spells a key name. */
#ifndef BERTH_KEYS_H
#define BERTH_KEYS_H

/* --- worker pools, job names, limits, schema --- */

/* <ns>:worker_pools, the set of pool ids (spec 5.2). */
char *key_worker_pools(const char *ns);
/* <ns>:worker_pools:<pool_id>, one pool's heartbeat hash. */
char *key_worker_pool(const char *ns, const char *pool_id);
/* <ns>:known_jobs, every job name any pool has registered. */
char *key_known_jobs(const char *ns);
/* <ns>:jobs:<type>:max_concurrency. */
char *key_max_concurrency(const char *ns, const char *type);
/* <ns>:_schema_version. */
char *key_schema_version(const char *ns);
/* "{namespace}" */
char *key_namespace_prefix(const char *namespace_);

/* --- job stats, in-progress tracking, hook events --- */

/* <ns>:job_stats:<job_id>, the stats hash of one job (spec 3.3). */
char *key_job_stats(const char *ns, const char *job_id);
/* <ns>:job_stats:*, the SCAN pattern of every stats hash. */
char *key_job_stats_match(const char *ns);
/* "<ns>:job_stats:", the prefix of every stats hash (for scripts that
 * build the key of a job themselves). */
char *key_job_stats_prefix(const char *ns);
/* <ns>:job_track:inprogress, job id -> counter of jobs not yet done
 * (spec 3.3, 9.3). */
char *key_job_track_inprogress(const char *ns);
/* <ns>:berth:hook_agents, hook agent id -> heartbeat (Berth only). */
char *key_hook_agents(const char *ns);
/* <ns>:berth:hook_events:<agent_id>, an agent's pending hook events
 * (Berth only). */
char *key_hook_events(const char *ns, const char *agent_id);

/* --- periodic policies and executions --- */

/* <ns>:period:policies, zset: member = policy JSON (spec 3.6), score =
 * numeric policy id. */
char *key_period_policies(const char *ns);
/* <ns>:period:lock, SET NX EX <node id> around the enqueuer's check (8.4). */
char *key_period_lock(const char *ns);
/* <ns>:last_periodic_enqueue_h, epoch of the last enqueue round (8.4). */
char *key_last_periodic_enqueue(const char *ns);
/* <ns>:executions:<policy_id>, zset: member = execution id, score = run
 * epoch, -1 once finished; tracker_save adds executions to it too. */
char *key_executions(const char *ns, const char *policy_id);
/* <ns>:scheduled, zset of delayed messages by run time (periodic
 * executions too). */
char *key_scheduled(const char *ns);

/* --- queues, locks, pause flags, pools, observations --- */

/* --- queues, locks, pause flags, pools, observations --- */

/* NS:jobs:T, the pending messages of job type T (spec 5.1). */
char *key_jobs(const char *ns, const char *type);
/* "NS:jobs:", the prefix of key_jobs (the requeue script appends T). */
char *key_jobs_prefix(const char *ns);
/* NS:jobs:T:<pool>:inprogress, the messages pool claimed. */
char *key_inprogress(const char *ns, const char *type, const char *pool_id);
/* NS:jobs:T:paused: present = T is paused. */
char *key_paused(const char *ns, const char *type);
/* NS:jobs:T:lock, the in-flight count of T over every pool. */
char *key_lock(const char *ns, const char *type);
/* NS:jobs:T:lock_info, pool id -> in-flight count of T. */
char *key_lock_info(const char *ns, const char *type);
/* NS:retry, failed messages by retry time. */
char *key_retry(const char *ns);
/* NS:dead, messages of unknown job types. */
char *key_dead(const char *ns);
/* NS:unique:<name>:<args part> (spec 5.7); args_part is
 * message_unique_args (Go JSON of the args and a newline, or ""). */
char *key_unique(const char *ns, const char *name, const char *args_part);
/* NS:berth:wakeup, Berth's wake-up list of idle workers (queue.h). */
char *key_wakeup(const char *ns);
/* NS:berth:ready, Berth's index of job types whose queue may be non-empty
 * (a set of type names; Go instances ignore it). Every Berth enqueue adds
 * the type in the same transaction as its LPUSH; the fetch script removes
 * a type when it finds its queue empty. Messages pushed by Go instances
 * are found by the fetch's periodic full scan (queue.h). */
char *key_ready_types(const char *ns);
/* NS:berth:pool_types:<pool>, hash type -> priority of the types a Berth
 * pool serves (read by the claim script; deleted with the pool). */
char *key_pool_types(const char *ns, const char *pool_id);
/* The per-type key suffixes the claim script appends to NS:jobs:T. */
struct key_type_suffixes {
	char *inprogress; /* ":<pool>:inprogress" */
	const char *paused, *lock, *lock_info, *max_concurrency;
};
void key_type_suffixes(struct key_type_suffixes *s, const char *pool_id);
void key_type_suffixes_fini(struct key_type_suffixes *s);
/* NS:worker:<worker id>, the observation of a busy worker (spec 5.9). */
char *key_worker_observation(const char *ns, const char *worker_id);

#endif

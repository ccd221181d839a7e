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
/* <ns>:scheduled, zset of delayed messages (periodic executions too). */
char *key_scheduled(const char *ns);

#endif

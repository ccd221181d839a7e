/* keys.h - Redis key names under the namespace prefix (spec section 12).
 * Every builder returns a new string "<ns>:<rest>"; ns is "{namespace}".
 * Only host/store/ uses the keys themselves; the builders live here so no
 * other file spells a key name. */
#ifndef BERTH_KEYS_H
#define BERTH_KEYS_H

char *key_worker_pools(const char *ns);
char *key_worker_pool(const char *ns, const char *pool_id);
char *key_known_jobs(const char *ns);
char *key_max_concurrency(const char *ns, const char *type);
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
/* <ns>:executions:<upstream_job_id>, the executions zset of a periodic
 * policy that tracker_save adds an execution to (spec 3.3, 8). The
 * periodic module builds the same key for its own use. */
char *key_upstream_executions(const char *ns, const char *upstream_job_id);

#endif

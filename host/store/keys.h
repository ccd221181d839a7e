/* keys.h - Redis key names under the namespace prefix (spec section 12).
 * Every builder returns a new string "<ns>:<rest>"; ns is "{namespace}". */
#ifndef BERTH_KEYS_H
#define BERTH_KEYS_H

#include "common/util.h"

static inline char *
key_worker_pools(const char *ns)
{
	return xasprintf("%s:worker_pools", ns);
}

static inline char *
key_worker_pool(const char *ns, const char *pool_id)
{
	return xasprintf("%s:worker_pools:%s", ns, pool_id);
}

static inline char *
key_known_jobs(const char *ns)
{
	return xasprintf("%s:known_jobs", ns);
}

static inline char *
key_max_concurrency(const char *ns, const char *type)
{
	return xasprintf("%s:jobs:%s:max_concurrency", ns, type);
}

static inline char *
key_schema_version(const char *ns)
{
	return xasprintf("%s:_schema_version", ns);
}

/* --- periodic policies and executions --- */

/* zset: member = policy JSON (spec 3.6), score = numeric policy id */
static inline char *
key_period_policies(const char *ns)
{
	return xasprintf("%s:period:policies", ns);
}

/* SET NX EX <node id> around the enqueuer's "is it time?" check (8.4) */
static inline char *
key_period_lock(const char *ns)
{
	return xasprintf("%s:period:lock", ns);
}

/* epoch of the last enqueue round (spec 8.4) */
static inline char *
key_last_periodic_enqueue(const char *ns)
{
	return xasprintf("%s:last_periodic_enqueue_h", ns);
}

/* zset: member = execution id, score = run epoch, -1 once finished */
static inline char *
key_executions(const char *ns, const char *policy_id)
{
	return xasprintf("%s:executions:%s", ns, policy_id);
}

/* zset of delayed messages; the periodic executions are written here */
static inline char *
key_scheduled(const char *ns)
{
	return xasprintf("%s:scheduled", ns);
}

/* "<ns>:job_stats:", to which a Lua script appends a job id */
static inline char *
key_job_stats_prefix(const char *ns)
{
	return xasprintf("%s:job_stats:", ns);
}

/* "{namespace}" */
static inline char *
key_namespace_prefix(const char *namespace_)
{
	return xasprintf("{%s}", namespace_);
}

#endif

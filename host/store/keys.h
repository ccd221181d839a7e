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

/* "{namespace}" */
static inline char *
key_namespace_prefix(const char *namespace_)
{
	return xasprintf("{%s}", namespace_);
}

/* --- queues, locks, pause flags, pools, observations --- */

/* NS:jobs:T, the pending messages of job type T (spec 5.1). */
static inline char *
key_jobs(const char *ns, const char *type)
{
	return xasprintf("%s:jobs:%s", ns, type);
}

/* "NS:jobs:", the prefix of key_jobs (the requeue script appends T). */
static inline char *
key_jobs_prefix(const char *ns)
{
	return xasprintf("%s:jobs:", ns);
}

/* NS:jobs:T:<pool>:inprogress, the messages pool claimed. */
static inline char *
key_inprogress(const char *ns, const char *type, const char *pool_id)
{
	return xasprintf("%s:jobs:%s:%s:inprogress", ns, type, pool_id);
}

/* NS:jobs:T:paused: present = T is paused. */
static inline char *
key_paused(const char *ns, const char *type)
{
	return xasprintf("%s:jobs:%s:paused", ns, type);
}

/* NS:jobs:T:lock, the in-flight count of T over every pool. */
static inline char *
key_lock(const char *ns, const char *type)
{
	return xasprintf("%s:jobs:%s:lock", ns, type);
}

/* NS:jobs:T:lock_info, pool id -> in-flight count of T. */
static inline char *
key_lock_info(const char *ns, const char *type)
{
	return xasprintf("%s:jobs:%s:lock_info", ns, type);
}

/* NS:scheduled, the delayed messages by run time. */
static inline char *
key_scheduled(const char *ns)
{
	return xasprintf("%s:scheduled", ns);
}

/* NS:retry, failed messages by retry time. */
static inline char *
key_retry(const char *ns)
{
	return xasprintf("%s:retry", ns);
}

/* NS:dead, messages of unknown job types. */
static inline char *
key_dead(const char *ns)
{
	return xasprintf("%s:dead", ns);
}

/* NS:unique:<name>:<args part> (spec 5.7); args_part is
 * message_unique_args (Go JSON of the args and a newline, or ""). */
static inline char *
key_unique(const char *ns, const char *name, const char *args_part)
{
	return xasprintf("%s:unique:%s:%s", ns, name, args_part);
}

/* NS:berth:wakeup, Berth's wake-up list of idle workers (queue.h). */
static inline char *
key_wakeup(const char *ns)
{
	return xasprintf("%s:berth:wakeup", ns);
}

/* NS:worker:<worker id>, the observation of a busy worker (spec 5.9). */
static inline char *
key_worker_observation(const char *ns, const char *worker_id)
{
	return xasprintf("%s:worker:%s", ns, worker_id);
}

#endif

/* keys.c - see keys.h. */
#include "store/keys.h"

#include <stdlib.h>

#include "common/util.h"

char *
key_worker_pools(const char *ns)
{
	return xasprintf("%s:worker_pools", ns);
}

char *
key_worker_pool(const char *ns, const char *pool_id)
{
	return xasprintf("%s:worker_pools:%s", ns, pool_id);
}

char *
key_known_jobs(const char *ns)
{
	return xasprintf("%s:known_jobs", ns);
}

char *
key_max_concurrency(const char *ns, const char *type)
{
	return xasprintf("%s:jobs:%s:max_concurrency", ns, type);
}

char *
key_schema_version(const char *ns)
{
	return xasprintf("%s:_schema_version", ns);
}

char *
key_namespace_prefix(const char *namespace_)
{
	return xasprintf("{%s}", namespace_);
}

/* --- job stats, in-progress tracking, hook events --- */

char *
key_job_stats(const char *ns, const char *job_id)
{
	return xasprintf("%s:job_stats:%s", ns, job_id);
}

char *
key_job_stats_match(const char *ns)
{
	return xasprintf("%s:job_stats:*", ns);
}

char *
key_job_stats_prefix(const char *ns)
{
	return xasprintf("%s:job_stats:", ns);
}

char *
key_job_track_inprogress(const char *ns)
{
	return xasprintf("%s:job_track:inprogress", ns);
}

char *
key_hook_agents(const char *ns)
{
	return xasprintf("%s:berth:hook_agents", ns);
}

char *
key_hook_events(const char *ns, const char *agent_id)
{
	return xasprintf("%s:berth:hook_events:%s", ns, agent_id);
}

/* --- periodic policies and executions --- */

char *
key_period_policies(const char *ns)
{
	return xasprintf("%s:period:policies", ns);
}

char *
key_period_lock(const char *ns)
{
	return xasprintf("%s:period:lock", ns);
}

char *
key_last_periodic_enqueue(const char *ns)
{
	return xasprintf("%s:last_periodic_enqueue_h", ns);
}

char *
key_executions(const char *ns, const char *policy_id)
{
	return xasprintf("%s:executions:%s", ns, policy_id);
}

char *
key_scheduled(const char *ns)
{
	return xasprintf("%s:scheduled", ns);
}

/* --- queues, locks, pause flags, pools, observations --- */

char *
key_jobs(const char *ns, const char *type)
{
	return xasprintf("%s:jobs:%s", ns, type);
}

char *
key_jobs_prefix(const char *ns)
{
	return xasprintf("%s:jobs:", ns);
}

char *
key_inprogress(const char *ns, const char *type, const char *pool_id)
{
	return xasprintf("%s:jobs:%s:%s:inprogress", ns, type, pool_id);
}

char *
key_paused(const char *ns, const char *type)
{
	return xasprintf("%s:jobs:%s:paused", ns, type);
}

char *
key_lock(const char *ns, const char *type)
{
	return xasprintf("%s:jobs:%s:lock", ns, type);
}

char *
key_lock_info(const char *ns, const char *type)
{
	return xasprintf("%s:jobs:%s:lock_info", ns, type);
}

char *
key_retry(const char *ns)
{
	return xasprintf("%s:retry", ns);
}

char *
key_dead(const char *ns)
{
	return xasprintf("%s:dead", ns);
}

char *
key_unique(const char *ns, const char *name, const char *args_part)
{
	return xasprintf("%s:unique:%s:%s", ns, name, args_part);
}

char *
key_wakeup(const char *ns)
{
	return xasprintf("%s:berth:wakeup", ns);
}

char *
key_ready_types(const char *ns)
{
	return xasprintf("%s:berth:ready", ns);
}

char *
key_pool_types(const char *ns, const char *pool_id)
{
	return xasprintf("%s:berth:pool_types:%s", ns, pool_id);
}

void
key_type_suffixes(struct key_type_suffixes *s, const char *pool_id)
{
	s->inprogress = xasprintf(":%s:inprogress", pool_id);
	s->paused = ":paused";
	s->lock = ":lock";
	s->lock_info = ":lock_info";
	s->max_concurrency = ":max_concurrency";
}

void
key_type_suffixes_fini(struct key_type_suffixes *s)
{
	free(s->inprogress);
	s->inprogress = NULL;
}

char *
key_worker_observation(const char *ns, const char *worker_id)
{
	return xasprintf("%s:worker:%s", ns, worker_id);
}

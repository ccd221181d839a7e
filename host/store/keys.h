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

#endif

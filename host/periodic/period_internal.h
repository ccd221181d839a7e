/* period_internal.h - what the files of the periodic scheduler share
 * (period.c: the policy object, the policy set and the API-facing
 * operations: create, unschedule, list executions; period_enqueuer.c: the
 * enqueuer thread, its rounds, materialising executions and the start-up
 * cleanup). Not for other modules: they use period.h. */
#ifndef BERTH_PERIOD_INTERNAL_H
#define BERTH_PERIOD_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "periodic/period.h"
#include "store/redis_cmd.h"
#include "common/util.h"

struct period {
	struct redis_pool *redis;
	struct tracker *tracker;
	struct queue *queue;
	struct plugin_registry *plugins;
	char *ns;
	char *k_policies, *k_lock, *k_last, *k_scheduled;
	char node_id[64];
	int64_t (*now)(void);

	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool running;
	bool stopping;
};

/* ---- small helpers ------------------------------------------------------ */

static inline bool
has_members(const cJSON *o)
{
	return cJSON_IsObject(o) && o->child;
}

/* A reply that is not NULL and not an error; otherwise err is set and the
 * reply freed. */
static inline redisReply *
checked(redisReply *r, const char *what, struct berr *err)
{
	if (!r)
		return NULL; /* err already set */
	if (r->type == REDIS_REPLY_ERROR) {
		berr_set(err, "%s: %s", what, r->str ? r->str : "error");
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

static inline char *
key_executions(const struct period *pd, const char *policy_id)
{
	return xasprintf("%s:executions:%s", pd->ns, policy_id);
}

static inline int64_t
reply_i64(const redisReply *r)
{
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	if (r->type == REDIS_REPLY_STRING && r->str)
		return (int64_t)strtod(r->str, NULL);
	return 0;
}

/* ---- period.c ----------------------------------------------------------- */

/* EVAL script with nkeys keys among argv[0..argc); the reply is checked. */
redisReply *period_eval(struct period *pd, struct berr *err,
			const char *script, int nkeys, int argc,
			const char **argv);
/* Q17: forgets finished executions whose stats have expired. Returns the
 * number removed or -1. */
int period_trim_executions(struct period *pd, const char *policy_id,
			   struct berr *err);
/* Calls fn for every member of NS:period:policies that parses (numeric id
 * = score), validated first when validate is set (members that do not
 * parse or validate are skipped with a log line); fn returns non-zero to
 * stop. 0, or -1 when the set could not be read. */
int period_each_policy(struct period *pd, bool validate,
		       int (*fn)(struct period *, const struct period_policy *,
				 void *),
		       void *data, struct berr *err);

#endif

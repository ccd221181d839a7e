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

#include <cjson/cJSON.h>

#include "common/ticker.h"
#include "common/util.h"
#include "periodic/period.h"
#include "plugins/plugin_host.h"
#include "store/period_store.h"
#include "store/queue.h"
#include "store/tracker.h"

/* Finished executions looked at per trim (Q17). */
#define PERIOD_TRIM_SCAN 2000

struct period {
	struct period_store *store; /* every Redis structure of spec 8 */
	struct tracker *tracker;
	struct queue *queue;
	struct plugin_registry *plugins;
	char node_id[64];
	int64_t (*now)(void);

	struct ticker ticker; /* the enqueuer's wait */
	pthread_t thread;
	bool running;
};

static inline bool
has_members(const cJSON *o)
{
	return cJSON_IsObject(o) && o->child;
}

/* ---- period.c ----------------------------------------------------------- */

/* Calls fn for every member of NS:period:policies that parses (numeric id
 * = score), validated first when validate is set (members that do not
 * parse or validate are skipped with a log line); fn returns non-zero to
 * stop. 0, or -1 when the set could not be read. */
int period_each_policy(struct period *pd, bool validate,
		       int (*fn)(struct period *, const struct period_policy *,
				 void *),
		       void *data, struct berr *err);

#endif

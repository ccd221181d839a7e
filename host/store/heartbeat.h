/* heartbeat.h - the worker pool's identity in Redis (spec 5.2, 5.8, 12.5):
 * registration of job types (max_concurrency keys, known_jobs), the pool
 * heartbeat hash refreshed every 5 s, and its removal on clean shutdown. */
#ifndef BERTH_HEARTBEAT_H
#define BERTH_HEARTBEAT_H

#include <stddef.h>

#include "plugins/plugin_host.h"
#include "store/redis_conn.h"

struct heartbeat;

/* workers: number of worker threads (each gets a hex24 worker id). */
struct heartbeat *heartbeat_new(struct redis_pool *redis, const char *ns,
				struct plugin_registry *plugins, int workers);
/* Starts the 5 s loop (first beat immediately, synchronously). */
int heartbeat_start(struct heartbeat *hb, struct berr *err);
/* Re-registers job types and beats now (after a plugin reload). */
void heartbeat_refresh(struct heartbeat *hb);
/* Stops the loop and removes the pool from Redis (SREM + DEL). */
void heartbeat_stop(struct heartbeat *hb);
void heartbeat_free(struct heartbeat *hb);

const char *heartbeat_pool_id(const struct heartbeat *hb);
/* Worker ids, sorted. */
const char *const *heartbeat_worker_ids(const struct heartbeat *hb, size_t *n);

/* Writes NS:_schema_version = 1.8.1 when missing (spec 12.5). */
int heartbeat_migrate_schema(struct redis_pool *redis, const char *ns,
			     struct berr *err);

#endif

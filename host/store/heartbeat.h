/* heartbeat.h - the worker pools in Redis (spec 5.2, 5.8, 5.9, 12.5): this
 * pool's registration of job types (max_concurrency keys, known_jobs), its
 * heartbeat hash refreshed every 5 s and removed on clean shutdown; the
 * reads of every pool's heartbeat (recovery, GET /api/v1/stats); and the
 * observations NS:worker:<id> of busy workers. */
#ifndef BERTH_HEARTBEAT_H
#define BERTH_HEARTBEAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/message.h"
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

/* --- every pool (NS:worker_pools and the NS:worker_pools:<id> hashes) --- */

/* The registered pool ids (SMEMBERS), sorted. *ids (n strings) is freed
 * with heartbeat_ids_free. 0, or -1 with err (an error reply is its
 * text). */
int heartbeat_pool_ids(struct redis_pool *redis, const char *ns, char ***ids,
		       size_t *n, struct berr *err);
void heartbeat_ids_free(char **ids, size_t n);

/* One pool's heartbeat hash as read back. */
struct heartbeat_pool {
	bool has_heartbeat;   /* heartbeat_at present and an integer */
	int64_t heartbeat_at;
	int64_t started_at;   /* 0 when absent or not an integer */
	int64_t concurrency;  /* 0 when absent or not an integer */
	char *job_names;      /* comma list; NULL when absent */
	char *worker_ids;     /* comma list; NULL when absent */
	char *host;           /* NULL when absent */
	int64_t pid;          /* 0 when absent or not an integer */
};
/* HGETALL of the pool's hash into *p (a missing hash reads as all
 * absent). 1 read, 0 when the key is not a hash (*p zeroed), -1 with err
 * when Redis cannot be reached. Free with heartbeat_pool_fini. */
int heartbeat_pool_read(struct redis_pool *redis, const char *ns,
			const char *pool_id, struct heartbeat_pool *p,
			struct berr *err);
void heartbeat_pool_fini(struct heartbeat_pool *p);
/* Removes a dead pool: DEL of its hash, SREM from NS:worker_pools. */
int heartbeat_pool_forget(struct redis_pool *redis, const char *ns,
			  const char *pool_id, struct berr *err);

/* --- worker observations (spec 5.9) --- */

/* NS:worker:<worker_id> = {job_name, job_id, started_at, args: Go JSON of
 * m's args} expiring after ttl_seconds: what the worker runs now. */
int heartbeat_observe_start(struct redis_pool *redis, const char *ns,
			    const char *worker_id, const struct job_message *m,
			    int64_t ttl_seconds, struct berr *err);
/* Deletes the observation: the worker is idle again. */
int heartbeat_observe_end(struct redis_pool *redis, const char *ns,
			  const char *worker_id, struct berr *err);
/* Reads the observation of worker_id: 1 with *job_name and *job_id (new
 * strings) when the worker was running something, 0 when there is none,
 * -1 with err. Recovery uses it to learn which job a dead pool ran. */
int heartbeat_observe_read(struct redis_pool *redis, const char *ns,
			   const char *worker_id, char **job_name,
			   char **job_id, struct berr *err);

/* One worker's observation as read back (spec 5.9; the dashboard's
 * "workers of a pool"). Strings NULL when absent. */
struct heartbeat_observation {
	bool busy;           /* the hash exists (non-empty) */
	char *job_name;
	char *job_id;
	char *args;          /* the stored JSON text ("" for none) */
	int64_t started_at;  /* 0 when absent or not an integer */
	char *checkin;
	bool has_checkin_at;
	int64_t checkin_at;
};
/* HGETALL NS:worker:<id> for the n worker ids, in one pipeline; out has
 * n slots (free each with heartbeat_observation_fini). 0, or -1 with err
 * (every slot zeroed). */
int heartbeat_observations_read(struct redis_pool *redis, const char *ns,
				const char *const *worker_ids, size_t n,
				struct heartbeat_observation *out,
				struct berr *err);
void heartbeat_observation_fini(struct heartbeat_observation *o);

/* Whether each of the n pools is a Berth pool (its NS:berth:pool_types:
 * <pool> exists; Go pools have none), in one pipeline. 0, or -1. */
int heartbeat_pools_berth(struct redis_pool *redis, const char *ns,
			  const char *const *pool_ids, size_t n, bool *out,
			  struct berr *err);

/* Writes NS:_schema_version = 1.8.1 when missing (spec 12.5). */
int heartbeat_migrate_schema(struct redis_pool *redis, const char *ns,
			     struct berr *err);

#endif

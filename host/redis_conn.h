/* redis_conn.h - the Redis connection layer.
 *
 * A pool hands every thread its own hiredis context (never shared), created
 * on first use with a connect timeout and a command timeout, and dropped and
 * re-dialled after any connection error. URL formats (spec 11.3):
 *   redis://[user][:password]@host[:port][/db][?idle_timeout_seconds=N]
 *   host:port           (redis:// is added)
 *   /path/to/redis.sock or unix:///path/to/redis.sock[?db=N]
 * plus `embedded`, which the daemon resolves to a private redis-server child
 * (embedded_redis_start). */
#ifndef BERTH_REDIS_CONN_H
#define BERTH_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "util.h"

struct redis_target {
	bool unix_socket;
	char host[256];
	int port;
	char path[512];   /* unix socket path */
	char user[128];
	char password[256];
	int db;
	int idle_timeout_seconds; /* -1 when not given in the URL */
	bool tls;                 /* rediss:// (refused: not built in) */
};

/* Parses one of the formats above. */
int redis_url_parse(const char *url, struct redis_target *t, struct berr *e);
/* Adds "redis://" when the URL has no scheme and is not a socket path.
 * New string. */
char *redis_url_normalise(const char *url);

struct redis_pool;

struct redis_pool *redis_pool_new(const struct redis_target *t,
				  int connect_timeout_ms,
				  int command_timeout_ms);
void redis_pool_free(struct redis_pool *p);

/* This thread's context, dialled (AUTH, SELECT) if needed; NULL with e set
 * when Redis cannot be reached. */
redisContext *redis_pool_get(struct redis_pool *p, struct berr *e);
/* Drops this thread's context (after an error). */
void redis_pool_drop(struct redis_pool *p);

/* Runs one command on this thread's context. Arguments are binary-safe.
 * Returns the reply (caller frees with freeReplyObject), or NULL with e set
 * on a connection error (the context is dropped and will be re-dialled on
 * the next call). A REDIS_REPLY_ERROR reply is returned as a reply. */
redisReply *redis_command_argv(struct redis_pool *p, struct berr *e, int argc,
			       const char **argv, const size_t *lens);
/* Convenience: NULL-terminated list of C strings. */
redisReply *redis_command(struct redis_pool *p, struct berr *e,
			  const char *arg0, ...) __attribute__((sentinel));

/* PING; 0 when Redis answers. */
int redis_ping(struct redis_pool *p, struct berr *e);

/* The embedded redis-server child (redis_url: embedded). */
struct embedded_redis;

/* Starts redis-server (binary, e.g. "redis-server") with a unix socket and an
 * append-only file in data_dir, waits until it answers PING, and supervises
 * it (restart when it dies). Fills t with the socket target. */
int embedded_redis_start(const char *binary, const char *data_dir,
			 const char *appendfsync, struct embedded_redis **out,
			 struct redis_target *t, struct berr *e);
/* Stops the child (SIGTERM, wait) and the supervisor. NULL-safe. */
void embedded_redis_stop(struct embedded_redis *er);

#endif

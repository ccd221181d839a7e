/* redis_conn.h - the Redis connection layer.
 *
 * A pool hands every thread its own hiredis context (never shared), created
 * on first use with a connect timeout and a command timeout, and dropped and
 * re-dialled after any connection error. URL formats (spec 11.3):
 *   redis://[user][:password]@host[:port][/db][?idle_timeout_seconds=N]
 *   host:port           (redis:// is added)
 *   /path/to/redis.sock or unix:///path/to/redis.sock[?db=N]
 *   redis+sentinel://[user][:password]@host:port[,host:port...]/master[/db]
 *       [?idle_timeout_seconds=N&sentinel_user=U&sentinel_password=P]
 * plus `embedded`, which the daemon resolves to a private redis-server child
 * (embedded_redis_start).
 *
 * This header is hiredis-free: it is included all over the daemon. The
 * command API (redis_command*, redis_pipeline, contexts and replies) is in
 * store/redis_cmd.h, for host/store/ and the tests only. */
#ifndef BERTH_REDIS_CONN_H
#define BERTH_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"

/* At most this many sentinels in one redis+sentinel:// URL. */
#define REDIS_SENTINELS_MAX 16
#define REDIS_SENTINEL_DEFAULT_PORT 26379

struct redis_addr {
	char host[256];
	int port;
};

struct redis_target {
	bool unix_socket;
	char host[256];   /* sentinel: "" (the master is discovered) */
	int port;
	char path[512];   /* unix socket path */
	char user[128];
	char password[256];
	int db;
	int idle_timeout_seconds; /* -1 when not given in the URL */
	bool tls;                 /* rediss:// (refused: not built in) */
	/* redis+sentinel://: the master named master_name is asked of the
	 * sentinels, in this order; user, password and db apply to the
	 * master, sentinel_user and sentinel_password (query parameters, a
	 * Berth extension) to the sentinels. */
	bool sentinel;
	char master_name[128];
	int n_sentinels;
	struct redis_addr sentinels[REDIS_SENTINELS_MAX];
	char sentinel_user[128];
	char sentinel_password[256];
};

/* Parses one of the formats above. Details:
 *  - credentials are percent-decoded; the user part ends at the LAST '@',
 *    so raw '@', '/', '?' and ':' (after the first) in a password work;
 *  - `redis://` alone, or an empty host (`redis://:6380`), is localhost;
 *  - `/db` must be a non-negative number (`/` alone is db 0);
 *  - unix forms take ?db=N, ?password=, ?user= and ?idle_timeout_seconds=;
 *  - unknown query parameters are ignored with a warning (as Go does);
 *  - redis+sentinel://: one to REDIS_SENTINELS_MAX comma-separated
 *    host[:port] (default port 26379, [v6] in brackets), a master name
 *    (percent-decoded, printable, no spaces) and an optional /db; query
 *    parameters sentinel_user and sentinel_password (percent-decoded)
 *    authenticate to the sentinels;
 *  - rediss:// and rediss+sentinel:// are refused: no TLS in this build.
 * Error messages show the URL through redis_url_redact (no password).
 * On failure *t is reset to the defaults (tls is kept for rediss://). */
int redis_url_parse(const char *url, struct redis_target *t, struct berr *e);
/* Adds "redis://" when the URL has no scheme and is not a socket path
 * (nor `unix:...`, nor the word `embedded`, which are kept). New string. */
char *redis_url_normalise(const char *url);
/* The URL with the password (userinfo, or ?password=) replaced by "***",
 * for messages and logs. New string. */
char *redis_url_redact(const char *url);
/* Replaces every occurrence of secret (3 bytes or longer) in msg, a
 * buffer of cap bytes, by "***": a server's error text is not ours to
 * trust (AUTH errors of masters and sentinels). */
void redis_scrub_secret(char *msg, size_t cap, const char *secret);
/* Defaults: localhost:6379, db 0, no credentials, idle timeout -1. */
void redis_target_init(struct redis_target *t);
/* "host:port", "[v6]:port", "unix:/path" or "sentinel:<master name>"
 * (never credentials) into buf. */
const char *redis_target_describe(const struct redis_target *t, char *buf,
				  size_t n);

/* Pools are thread-safe: any number of threads may use one pool at once,
 * each on its own context (kept in a pthread key; freed when the thread
 * exits). A timeout of 0 ms means none. The command timeout bounds each
 * read/write; after it expires the context is dropped (the reply may still
 * come) and NULL is returned.
 * A context idle for t->idle_timeout_seconds (> 0) is closed and
 * re-dialled on next use; one idle for 15 s or more is checked with PING
 * first, so a connection the server or a firewall closed is not used.
 * The first redis_pool_new sets SIGPIPE to SIG_IGN if it is at SIG_DFL
 * (a write to a dead Redis would otherwise kill the process). */
struct redis_pool;

struct redis_pool *redis_pool_new(const struct redis_target *t,
				  int connect_timeout_ms,
				  int command_timeout_ms);
/* Frees the calling thread's context and the pool. Every other thread that
 * used the pool must have exited first (their contexts are freed by the
 * key destructor when they exit; a thread still running would leak its
 * context). NULL-safe. */
void redis_pool_free(struct redis_pool *p);
/* "host:port", "unix:/path" or "sentinel:<master name>", as used in the
 * pool's error messages.
 *
 * Sentinel pools (redis+sentinel://) ask the sentinels for the master's
 * address, in the URL's order (SENTINEL get-master-addr-by-name), take
 * the first address that answers ROLE with "master", and dial it. The
 * address has a generation, bumped whenever it changes; a thread's context
 * remembers the generation it was dialled in and is re-dialled on its next
 * command when that is no longer the current one. The sentinels are asked
 * again (at most every 100 ms, one thread at a time) before the next dial
 * after a connection error or a READONLY error reply on a context of the
 * current generation, and at once when the pool's watcher thread, subscribed
 * to +switch-master on one sentinel, sees the master move. Sentinel dials use
 * the pool's timeouts capped at 2 s. redis_pool_free stops the watcher. */
const char *redis_pool_describe(const struct redis_pool *p);

/* Sentinel pools: the current master generation (0 before the first
 * discovery, and always 0 for other pools) and the address it names
 * ("" when none), into buf. */
uint64_t redis_pool_master(struct redis_pool *p, char *buf, size_t n);

/* PING; 0 when Redis answers. */
int redis_ping(struct redis_pool *p, struct berr *e);

/* The embedded redis-server child (redis_url: embedded). */
struct embedded_redis;

/* Starts redis-server (binary, e.g. "redis-server") with a unix socket and an
 * append-only file in data_dir, waits until it answers PING, and supervises
 * it (restart when it dies). Fills t with the socket target.
 * Details: data_dir is created (0700) if missing; binary NULL means
 * "redis-server" (looked up in PATH); appendfsync NULL means everysec.
 * <data_dir>/berthd.lock is flock()ed for the lifetime of the child: a
 * second berthd on the same data_dir is refused. A redis-server still
 * answering on <data_dir>/redis.sock while the lock is free is a leftover
 * of a berthd that died: it gets SHUTDOWN (which writes its AOF) and a
 * fresh child is started. The child runs in its own process group (a ^C
 * on the terminal does not stop it before berthd is done with it) and gets
 * SIGTERM when the supervisor thread dies (PR_SET_PDEATHSIG), so a kill -9
 * of berthd stops it too. Children are reaped by pid: the process must not
 * set SIGCHLD to SIG_IGN nor reap with waitpid(-1). */
int embedded_redis_start(const char *binary, const char *data_dir,
			 const char *appendfsync, struct embedded_redis **out,
			 struct redis_target *t, struct berr *e);
/* Stops the child (SIGTERM, wait up to 10 s, then SIGKILL) and the
 * supervisor. NULL-safe. */
void embedded_redis_stop(struct embedded_redis *er);
/* The current child's pid, 0 while none runs (between restarts). */
pid_t embedded_redis_pid(struct embedded_redis *er);
/* How many times the supervisor restarted the child. */
unsigned embedded_redis_restarts(struct embedded_redis *er);

#endif

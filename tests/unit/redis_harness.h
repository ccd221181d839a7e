/* redis_harness.h - a private redis-server for C unit tests.
 *
 * Each server runs in its own mkdtemp directory ($TMPDIR or /tmp) and
 * listens only on <dir>/redis.sock (--port 0: no TCP port), so any number
 * of tests can run in parallel. The binary is $BERTH_REDIS_SERVER or
 * "redis-server" from PATH.
 *
 *	struct test_redis tr;
 *	if (test_redis_start(&tr) < 0)
 *		return 1;
 *	struct redis_pool *p = test_redis_pool(&tr, 2000);
 *	...
 *	redis_pool_free(p);
 *	test_redis_stop(&tr);
 *
 * The server gets SIGKILL if the thread that started it dies (a crashed
 * test leaves no server behind); start servers from the main thread.
 * Servers still running at exit() are stopped and their directories
 * removed by an atexit handler. Not for concurrent use of one struct from
 * several threads. */
#ifndef BERTH_TEST_REDIS_HARNESS_H
#define BERTH_TEST_REDIS_HARNESS_H

#include <limits.h>
#include <stdarg.h>
#include <sys/types.h>

#include "store/redis_cmd.h"

#define TEST_REDIS_MAX_ARGS 16

struct test_redis {
	char dir[200];   /* private directory (removed by test_redis_stop) */
	char sock[240];  /* <dir>/redis.sock */
	char log[240];   /* <dir>/redis.log */
	pid_t pid;       /* the running server, 0 when none */
	char *extra[TEST_REDIS_MAX_ARGS + 1]; /* kept for restarts */
};

/* Starts a server; 0, or -1 after printing why (with the tail of its log)
 * to stderr. Initialises *tr (no need to zero it first). */
int test_redis_start(struct test_redis *tr);
/* Same, with extra redis-server arguments (NULL-terminated, at most
 * TEST_REDIS_MAX_ARGS), e.g. {"--requirepass", "s3cret", NULL}. They are
 * appended after the defaults (so they win) and reused by restarts. */
int test_redis_start_args(struct test_redis *tr, const char *const *extra);
/* SIGTERM (SIGKILL after 10 s), reap, remove the directory. Safe to call
 * twice and on a struct whose start failed. */
void test_redis_stop(struct test_redis *tr);

/* kill -9 the server and reap it; the stale socket file stays, so clients
 * see "Connection refused". 0, or -1 when none was running. */
int test_redis_kill9(struct test_redis *tr);
/* Starts the server again on the same socket and directory (kill -9 first
 * when it still runs); waits until it answers PING. */
int test_redis_restart(struct test_redis *tr);

/* A target for the socket (db 0, no credentials). */
void test_redis_target(const struct test_redis *tr, struct redis_target *t);
/* redis_pool_new on that target: 2 s connect timeout, the given command
 * timeout (0 = none). */
struct redis_pool *test_redis_pool(const struct test_redis *tr,
				   int command_timeout_ms);
/* Removes a directory tree (nftw, no symlink following); 0 or -1. */
int test_rm_rf(const char *path);

/* ---- commands from tests ----------------------------------------------
 *
 * Each runs one command, given as C strings ending with NULL, on this
 * thread's context of p (see redis_cmd.h), and prints what went wrong to
 * stderr (prefixed "test_redis: <ARG0>: "), so a failed check after it
 * shows why:
 *
 *	CHECK(test_redis_do(p, "HSET", key, "status", "Running", NULL) == 0);
 *	CHECK(test_redis_int(p, "HLEN", key, NULL) == 3);
 *	char *v = test_redis_str(p, "HGET", key, "status", NULL);
 *	redisReply *r = test_redis_cmd(p, "ZRANGE", key, "0", "-1", NULL);
 *
 * Arguments are not binary-safe (use redis_command_argv for that). */

/* The value test_redis_int returns when there is no integer. */
#define TEST_REDIS_NOINT LLONG_MIN

/* The reply (free it with freeReplyObject), or NULL after printing the
 * connection error. An error reply is returned as it is, unprinted. */
redisReply *test_redis_cmd(struct redis_pool *p, const char *arg0, ...)
	__attribute__((sentinel));
/* Same with the arguments after arg0 in ap (ending with NULL); ap is
 * consumed as by vprintf. */
redisReply *test_redis_cmdv(struct redis_pool *p, const char *arg0, va_list ap);
/* 0 when the command got a reply that is not an error, else -1 after
 * printing the error reply or connection error. A connection error is
 * retried once on a fresh connection (a context left over from before a
 * server restart fails once). */
int test_redis_do(struct redis_pool *p, const char *arg0, ...)
	__attribute__((sentinel));
/* An integer reply, or a string reply that is a whole decimal integer
 * (GET, HGET, ZSCORE of an integral score); TEST_REDIS_NOINT for nil, any
 * other reply and failures (error replies are printed). */
long long test_redis_int(struct redis_pool *p, const char *arg0, ...)
	__attribute__((sentinel));
/* A copy of a string reply (binary-safe, NUL-terminated; the caller frees
 * it), or NULL for nil, any other reply and failures (error replies are
 * printed). */
char *test_redis_str(struct redis_pool *p, const char *arg0, ...)
	__attribute__((sentinel));

#endif

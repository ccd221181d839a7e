/* redis_cmd.h - the command API of the Redis connection layer (see
 * redis_conn.h for pools and URLs). Store-internal: only the files of
 * host/store/ and the tests include it; nothing else in the daemon speaks
 * Redis. */
#ifndef BERTH_REDIS_CMD_H
#define BERTH_REDIS_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "store/redis_conn.h"
#include "common/util.h"

/* This thread's context, dialled (AUTH, SELECT) if needed; NULL with e set
 * when Redis cannot be reached. */
redisContext *redis_pool_get(struct redis_pool *p, struct berr *e);
/* Drops this thread's context (after an error). In a sentinel pool the
 * sentinels are asked again before the next dial (redis_conn.h). */
void redis_pool_drop(struct redis_pool *p);
/* Sentinel pools: when r is an error reply saying the server is not the
 * master (READONLY, MASTERDOWN), drops this thread's context so the next
 * command asks the sentinels and re-dials, and returns true. False (and
 * nothing done) otherwise and for other pools. redis_command* and
 * redis_pipeline call it on every reply; a caller that sends commands on
 * the raw context (redis_pool_get) calls it on its replies. */
bool redis_pool_check_reply(struct redis_pool *p, const redisReply *r);

/* Sentinel pools: after a write that must survive a failover (a
 * submission), waits up to 250 ms for one replica to acknowledge every
 * write of this thread's context (WAIT 1 250). Skipped while the master
 * has no replica (its ROLE, read every 5 s); a wait that falls short is
 * warned about once and the replicas are counted again. 0 (also for other
 * pools, at once), or -1 with e when the connection failed: whether the
 * writes survive a failover is then unknown. */
int redis_pool_wait_replica(struct redis_pool *p, struct berr *e);

/* Runs one command on this thread's context. Arguments are binary-safe.
 * Returns the reply (caller frees with freeReplyObject), or NULL with e set
 * on a connection error (the context is dropped and will be re-dialled on
 * the next call). A REDIS_REPLY_ERROR reply is returned as a reply. */
redisReply *redis_command_argv(struct redis_pool *p, struct berr *e, int argc,
			       const char **argv, const size_t *lens);
/* Convenience: NULL-terminated list of C strings. */
redisReply *redis_command(struct redis_pool *p, struct berr *e,
			  const char *arg0, ...) __attribute__((sentinel));

/* One command of a pipeline. lens NULL: every argument is a C string. */
struct redis_cmd {
	int argc;
	const char **argv;
	const size_t *lens;
};

/* redis_pipeline flags. */
enum {
	/* Wraps the commands in MULTI ... EXEC (one transaction). */
	REDIS_PIPE_TX = 1u << 0,
	/* Fails the call on any error reply: with REDIS_PIPE_TX also on a
	 * MULTI that is not +OK, a command not +QUEUED, an aborted EXEC (nil)
	 * and an error element in the EXEC array. */
	REDIS_PIPE_CHECK = 1u << 1,
};

/* Sends the n commands in one write on this thread's context and reads
 * every reply (one round trip). replies (NULL: not wanted) has n slots:
 * replies[i] is the reply of cmds[i]; with REDIS_PIPE_TX it is the i-th
 * element of the EXEC array, moved out (NULL when the transaction was
 * aborted). Free them with redis_replies_free. Returns 0, or -1 with e
 * ("redis <target>: <CMD>: ..." on a connection error, which drops the
 * context; "<CMD>: <error>" for a reply REDIS_PIPE_CHECK refuses) and
 * every slot NULL. Without REDIS_PIPE_CHECK an error reply is a reply. */
int redis_pipeline(struct redis_pool *p, struct berr *e,
		   const struct redis_cmd *cmds, size_t n,
		   redisReply **replies, unsigned flags);
/* Frees and clears n reply slots (NULL slots are skipped). */
void redis_replies_free(redisReply **replies, size_t n);

/* True for a string or status reply (r->str is then set). */
static inline int
redis_reply_is_text(const redisReply *r)
{
	return r && r->str &&
	       (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

#endif

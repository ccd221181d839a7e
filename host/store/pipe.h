/* pipe.h - a pipeline under construction, for commands that several store
 * owners contribute to one round trip (store/submit.c strings together the
 * stats save of tracker.c and the enqueue of queue.c). Store-internal: it
 * carries hiredis types and is included only by host/store/ and the unit
 * tests.
 *
 * Arguments are either borrowed (the caller keeps them alive until the
 * pipeline has run) or owned (freed by pipe_fini). Commands are appended
 * one after the other; pipe_cmds() gives the redis_cmd views for
 * redis_pipeline(). A transaction is a MULTI ... EXEC pair appended like any
 * command, so one pipeline may hold a transaction and commands around it. */
#ifndef BERTH_PIPE_H
#define BERTH_PIPE_H

#include <stddef.h>
#include <stdint.h>

#include "store/redis_cmd.h"
#include "common/util.h"

struct pipe {
	const char **argv; /* every argument, command after command */
	size_t *lens;
	size_t nargs, cap_args;
	size_t *first; /* index in argv of each command's first argument */
	size_t ncmds, cap_cmds;
	char **owned;
	size_t nowned, cap_owned;
	struct redis_cmd *views; /* built by pipe_cmds */
};

void pipe_init(struct pipe *b);
void pipe_fini(struct pipe *b);

/* Starts a new command; returns its index in the pipeline. */
size_t pipe_begin(struct pipe *b);
/* Appends an argument of len bytes (borrowed) to the current command. */
void pipe_arg(struct pipe *b, const char *s, size_t len);
/* A C string, borrowed; NULL is sent as the empty string. */
void pipe_str(struct pipe *b, const char *s);
/* A C string the pipe takes ownership of. */
void pipe_own(struct pipe *b, char *s);
/* A decimal number. */
void pipe_i64(struct pipe *b, int64_t v);
/* A whole command of borrowed C strings, NULL-terminated; returns its
 * index. */
size_t pipe_words(struct pipe *b, const char *arg0, ...)
	__attribute__((sentinel));

size_t pipe_count(const struct pipe *b);
/* The commands as redis_pipeline takes them; valid until the next append
 * or pipe_fini. */
const struct redis_cmd *pipe_cmds(struct pipe *b);

/* A transaction inside the pipeline: the indexes of its MULTI and EXEC. */
struct pipe_tx {
	size_t multi, exec;
};
/* Appends MULTI; pipe_tx_end appends the EXEC of tx. */
void pipe_tx_begin(struct pipe *b, struct pipe_tx *tx);
void pipe_tx_end(struct pipe *b, struct pipe_tx *tx);

/* Runs the whole pipeline in one round trip (redis_pipeline without
 * flags: one write, every reply read) and checks the transaction tx:
 * MULTI +OK, every command +QUEUED, EXEC an array. Returns the EXEC array
 * (owned by *replies; element k is the reply of command tx->multi + 1 + k)
 * with *replies holding pipe_count() replies for the caller to free with
 * redis_replies_free and free(). Returns NULL with err and *replies NULL
 * when nothing was written (a connection error before EXEC, a command
 * Redis refused to queue: EXECABORT) or, on a connection error after EXEC
 * was sent, when it cannot be known ("redis <target>: ..." in err). */
const redisReply *pipe_run_tx(struct pipe *b, struct redis_pool *p,
			      const struct pipe_tx *tx, redisReply ***replies,
			      struct berr *err);

/* The reply of command idx of transaction tx in the EXEC array ex (NULL
 * when absent). */
const redisReply *pipe_tx_reply(const struct pipe_tx *tx,
				const redisReply *ex, size_t idx);

/* A short text for an error reply ("" when r is no error): at most 300
 * bytes of it. For messages: "%.*s", pipe_err_len(r), pipe_err_str(r). */
int pipe_err_len(const redisReply *r);
const char *pipe_err_str(const redisReply *r);

#endif

/* pipe.c - a pipeline under construction; see pipe.h. */
#include "store/pipe.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
pipe_init(struct pipe *b)
{
	memset(b, 0, sizeof(*b));
}

void
pipe_fini(struct pipe *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nowned; i++)
		free(b->owned[i]);
	free(b->owned);
	free(b->argv);
	free(b->lens);
	free(b->first);
	free(b->views);
	memset(b, 0, sizeof(*b));
}

size_t
pipe_begin(struct pipe *b)
{
	if (b->ncmds == b->cap_cmds) {
		b->cap_cmds = b->cap_cmds ? b->cap_cmds * 2 : 16;
		b->first = xrealloc(b->first, b->cap_cmds * sizeof(*b->first));
	}
	b->first[b->ncmds] = b->nargs;
	return b->ncmds++;
}

void
pipe_arg(struct pipe *b, const char *s, size_t len)
{
	if (b->nargs == b->cap_args) {
		b->cap_args = b->cap_args ? b->cap_args * 2 : 64;
		b->argv = xrealloc(b->argv, b->cap_args * sizeof(*b->argv));
		b->lens = xrealloc(b->lens, b->cap_args * sizeof(*b->lens));
	}
	b->argv[b->nargs] = s;
	b->lens[b->nargs] = len;
	b->nargs++;
}

void
pipe_str(struct pipe *b, const char *s)
{
	if (!s)
		s = "";
	pipe_arg(b, s, strlen(s));
}

void
pipe_own(struct pipe *b, char *s)
{
	if (b->nowned == b->cap_owned) {
		b->cap_owned = b->cap_owned ? b->cap_owned * 2 : 16;
		b->owned = xrealloc(b->owned, b->cap_owned * sizeof(*b->owned));
	}
	b->owned[b->nowned++] = s;
	pipe_str(b, s);
}

void
pipe_i64(struct pipe *b, int64_t v)
{
	pipe_own(b, xasprintf("%" PRId64, v));
}

size_t
pipe_words(struct pipe *b, const char *arg0, ...)
{
	size_t idx = pipe_begin(b);
	pipe_str(b, arg0);
	va_list ap;
	va_start(ap, arg0);
	for (const char *s = va_arg(ap, const char *); s;
	     s = va_arg(ap, const char *))
		pipe_str(b, s);
	va_end(ap);
	return idx;
}

size_t
pipe_count(const struct pipe *b)
{
	return b->ncmds;
}

const struct redis_cmd *
pipe_cmds(struct pipe *b)
{
	free(b->views);
	b->views = xcalloc(b->ncmds ? b->ncmds : 1, sizeof(*b->views));
	for (size_t i = 0; i < b->ncmds; i++) {
		size_t end = i + 1 < b->ncmds ? b->first[i + 1] : b->nargs;
		b->views[i] = (struct redis_cmd){
			(int)(end - b->first[i]),
			b->argv + b->first[i],
			b->lens + b->first[i],
		};
	}
	return b->views;
}

void
pipe_tx_begin(struct pipe *b, struct pipe_tx *tx)
{
	tx->multi = pipe_words(b, "MULTI", NULL);
	tx->exec = tx->multi;
}

void
pipe_tx_end(struct pipe *b, struct pipe_tx *tx)
{
	tx->exec = pipe_words(b, "EXEC", NULL);
}

int
pipe_err_len(const redisReply *r)
{
	if (!r || r->type != REDIS_REPLY_ERROR || !r->str)
		return 0;
	return r->len > 300 ? 300 : (int)r->len;
}

const char *
pipe_err_str(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_ERROR && r->str ? r->str : "";
}

static bool
status_is(const redisReply *r, const char *want)
{
	return r && r->type == REDIS_REPLY_STATUS && r->str &&
	       strcmp(r->str, want) == 0;
}

/* The name of command i for messages (its first argument, at most 32
 * bytes). */
static void
cmd_name(const struct pipe *b, size_t i, char *buf, size_t len)
{
	size_t a = b->first[i];
	size_t n = b->lens[a] < 32 ? b->lens[a] : 32;
	snprintf(buf, len, "%.*s", (int)n, b->argv[a]);
}

const redisReply *
pipe_run_tx(struct pipe *b, struct redis_pool *p, const struct pipe_tx *tx,
	    redisReply ***replies, struct berr *err)
{
	size_t n = b->ncmds;
	*replies = NULL;
	redisReply **got = xcalloc(n ? n : 1, sizeof(*got));
	if (redis_pipeline(p, err, pipe_cmds(b), n, got, 0) < 0) {
		free(got);
		return NULL;
	}
	char name[40];
	const redisReply *ex = got[tx->exec];
	const redisReply *m = got[tx->multi];
	if (!status_is(m, "OK")) {
		if (pipe_err_len(m))
			berr_set(err, "MULTI: %.*s", pipe_err_len(m),
				 pipe_err_str(m));
		else
			berr_set(err, "MULTI: unexpected reply");
		goto refused;
	}
	for (size_t i = tx->multi + 1; i < tx->exec; i++) {
		if (status_is(got[i], "QUEUED"))
			continue;
		cmd_name(b, i, name, sizeof(name));
		if (pipe_err_len(got[i]))
			berr_set(err, "%s: %.*s", name, pipe_err_len(got[i]),
				 pipe_err_str(got[i]));
		else
			berr_set(err, "%s: unexpected reply", name);
		goto refused;
	}
	if (!ex || ex->type != REDIS_REPLY_ARRAY) {
		if (pipe_err_len(ex))
			berr_set(err, "EXEC: %.*s", pipe_err_len(ex),
				 pipe_err_str(ex));
		else
			berr_set(err, "EXEC: transaction aborted");
		goto refused;
	}
	*replies = got;
	return ex;
refused:
	redis_replies_free(got, n);
	free(got);
	return NULL;
}

const redisReply *
pipe_tx_reply(const struct pipe_tx *tx, const redisReply *ex, size_t idx)
{
	if (!ex || idx <= tx->multi || idx >= tx->exec)
		return NULL;
	size_t k = idx - tx->multi - 1;
	return k < ex->elements ? ex->element[k] : NULL;
}

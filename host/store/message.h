/* message.h - the queue message (spec 3.7): the library's job object that
 * travels through NS:jobs:<T>, NS:scheduled, NS:retry and the in-progress
 * lists. Encoded as Go JSON with the keys in declaration order
 * name, id, t, args, unique, fails, err, failed_at (omitempty where the spec
 * says so). Messages re-encoded by Lua cjson (requeuers) have other key
 * orders and escapes, so they are always parsed, never pattern-matched. */
#ifndef BERTH_MESSAGE_H
#define BERTH_MESSAGE_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/util.h"

struct job_message {
	char *name;        /* job type ("" allowed in the wire format) */
	char *id;          /* hex24, or the policy id for periodic executions */
	int64_t t;         /* enqueued at (epoch) */
	cJSON *args;       /* object, or NULL (encoded as null) */
	bool unique;
	int64_t fails;
	char *err;         /* NULL when empty */
	int64_t failed_at;
};

/* Parses raw message bytes. Unknown keys are ignored; numbers written by Lua
 * cjson in exponent form are accepted. */
int message_parse(const char *raw, size_t len, struct job_message *m,
		  struct berr *err);
/* Go JSON text of m (new string). */
char *message_encode(const struct job_message *m);
void message_fini(struct job_message *m);

/* The job/stats id of a message: id, or "<id>@<_job_kind_periodic_>" when
 * args carry the periodic marker (spec 6.2). New string. */
char *message_job_id(const struct job_message *m);
/* Parses raw into m when it is a message of job id (as message_job_id
 * names it): true with m filled (message_fini it); false with m empty when
 * it is another job's or does not parse. */
bool message_parse_job(const char *raw, size_t len, const char *id,
		       struct job_message *m);

/* What identifies a unique message besides its name (spec 5.7): the Go
 * JSON of args and a newline (json.Encoder's), or "" when args is NULL or
 * null. New string; queue_unique_key builds the key from it. */
char *message_unique_args(const cJSON *args);

#endif

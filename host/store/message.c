/* message.c - the queue message (spec 3.7); see message.h.
 *
 * Parsing follows Go's json.Unmarshal into the library's struct: keys match
 * the fields case-insensitively, a later duplicate wins, null leaves the
 * default, unknown keys are ignored and a value of the wrong type is an
 * error. Unlike Go, the integer fields also take the exponent and fraction
 * forms Lua cjson writes (1.7e+09), truncated toward zero and clamped to
 * int64; and a top-level value other than an object (Go accepts `null` as
 * a no-op) is an error. */
#include "store/message.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/gojson.h"
#include "common/json.h"

#define PERIODIC_MARK "_job_kind_periodic_"

/* int64 of a JSON number; -1 when it is not a finite number. */
static int
number_to_i64(const cJSON *v, int64_t *out)
{
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return -1;
	double d = v->valuedouble;
	/* the cast truncates toward zero (no libm: berthcore has no -lm) */
	if (d >= 9223372036854775807.0)
		*out = INT64_MAX;
	else if (d <= -9223372036854775808.0)
		*out = INT64_MIN;
	else
		*out = (int64_t)d;
	return 0;
}

static void
set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? xstrdup(s) : NULL;
}

int
message_parse(const char *raw, size_t len, struct job_message *m,
	      struct berr *err)
{
	memset(m, 0, sizeof(*m));
	if (!raw)
		return berr_set(err, "message: no data");
	const char *end = NULL;
	cJSON *root = json_parse(raw, len, &end);
	if (!root)
		return berr_set(err, "message: invalid JSON near offset %td",
				end ? end - raw : (ptrdiff_t)0);
	size_t off = (size_t)(end - raw);
	while (off < len && (raw[off] == ' ' || raw[off] == '\t' ||
			     raw[off] == '\n' || raw[off] == '\r'))
		off++;
	if (off < len) {
		cJSON_Delete(root);
		return berr_set(err, "message: data after the JSON value");
	}
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return berr_set(err, "message: not a JSON object");
	}

	const char *bad = NULL;
	for (cJSON *c = root->child; c && !bad; c = c->next) {
		const char *k = c->string ? c->string : "";
		if (cJSON_IsNull(c))
			continue; /* Go leaves the field alone */
		if (strcasecmp(k, "name") == 0) {
			if (!cJSON_IsString(c))
				bad = "name";
			else
				set_str(&m->name, c->valuestring);
		} else if (strcasecmp(k, "id") == 0) {
			if (!cJSON_IsString(c))
				bad = "id";
			else
				set_str(&m->id, c->valuestring);
		} else if (strcasecmp(k, "t") == 0) {
			if (number_to_i64(c, &m->t) < 0)
				bad = "t";
		} else if (strcasecmp(k, "args") == 0) {
			if (!cJSON_IsObject(c)) {
				bad = "args";
			} else {
				cJSON_Delete(m->args);
				m->args = cJSON_Duplicate(c, 1);
				if (!m->args)
					bad = "args";
			}
		} else if (strcasecmp(k, "unique") == 0) {
			if (!cJSON_IsBool(c))
				bad = "unique";
			else
				m->unique = cJSON_IsTrue(c);
		} else if (strcasecmp(k, "fails") == 0) {
			if (number_to_i64(c, &m->fails) < 0)
				bad = "fails";
		} else if (strcasecmp(k, "err") == 0) {
			if (!cJSON_IsString(c))
				bad = "err";
			else
				set_str(&m->err, c->valuestring[0] ?
							 c->valuestring : NULL);
		} else if (strcasecmp(k, "failed_at") == 0) {
			if (number_to_i64(c, &m->failed_at) < 0)
				bad = "failed_at";
		}
	}
	cJSON_Delete(root);
	if (bad) {
		message_fini(m);
		return berr_set(err, "message: field \"%s\" has the wrong type",
				bad);
	}
	if (!m->name)
		m->name = xstrdup("");
	if (!m->id)
		m->id = xstrdup("");
	return 0;
}

static void
put_key(struct gbuf *b, const char *key, bool first)
{
	if (!first)
		gbuf_putc(b, ',');
	gbuf_putc(b, '"');
	gbuf_puts(b, key);
	gbuf_puts(b, "\":");
}

char *
message_encode(const struct job_message *m)
{
	struct gbuf b = {0};
	const char *name = m->name ? m->name : "";
	const char *id = m->id ? m->id : "";
	bool first = true;
	gbuf_putc(&b, '{');
	if (name[0]) {
		put_key(&b, "name", first);
		gojson_append_string(&b, name, strlen(name));
		first = false;
	}
	put_key(&b, "id", first);
	gojson_append_string(&b, id, strlen(id));
	put_key(&b, "t", false);
	gojson_append_int(&b, (long long)m->t);
	put_key(&b, "args", false);
	gojson_append(&b, m->args);
	if (m->unique) {
		put_key(&b, "unique", false);
		gbuf_puts(&b, "true");
	}
	if (m->fails) {
		put_key(&b, "fails", false);
		gojson_append_int(&b, (long long)m->fails);
	}
	if (m->err && m->err[0]) {
		put_key(&b, "err", false);
		gojson_append_string(&b, m->err, strlen(m->err));
	}
	if (m->failed_at) {
		put_key(&b, "failed_at", false);
		gojson_append_int(&b, (long long)m->failed_at);
	}
	gbuf_putc(&b, '}');
	return gbuf_take(&b);
}

void
message_fini(struct job_message *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->id);
	free(m->err);
	cJSON_Delete(m->args);
	memset(m, 0, sizeof(*m));
}

/* The value of key in a JSON object as a Go map holds it (the last one). */
static const cJSON *
object_get_last(const cJSON *obj, const char *key)
{
	const cJSON *found = NULL;
	if (!cJSON_IsObject(obj))
		return NULL;
	for (const cJSON *c = obj->child; c; c = c->next)
		if (c->string && strcmp(c->string, key) == 0)
			found = c;
	return found;
}

char *
message_job_id(const struct job_message *m)
{
	const char *id = m->id ? m->id : "";
	const cJSON *mark = object_get_last(m->args, PERIODIC_MARK);
	if (!mark)
		return xstrdup(id);
	if (cJSON_IsString(mark))
		return xasprintf("%s@%s", id, mark->valuestring);
	struct gbuf b = {0};
	gbuf_puts(&b, id);
	gbuf_putc(&b, '@');
	int64_t v;
	if (cJSON_IsNumber(mark) && number_to_i64(mark, &v) == 0 &&
	    (double)v == mark->valuedouble)
		gojson_append_int(&b, (long long)v);
	else if (cJSON_IsNumber(mark))
		gojson_append_number(&b, mark->valuedouble);
	else
		gojson_append(&b, mark);
	return gbuf_take(&b);
}

bool
message_parse_job(const char *raw, size_t len, const char *id,
		  struct job_message *m)
{
	struct berr perr;
	memset(m, 0, sizeof(*m));
	berr_clear(&perr);
	if (message_parse(raw, len, m, &perr) < 0)
		return false;
	char *jid = message_job_id(m);
	bool match = strcmp(jid, id) == 0;
	free(jid);
	if (!match)
		message_fini(m);
	return match;
}

char *
message_unique_args(const cJSON *args)
{
	if (!args || cJSON_IsNull(args))
		return xstrdup("");
	struct gbuf b = {0};
	gojson_append(&b, args);
	gbuf_putc(&b, '\n');
	return gbuf_take(&b);
}

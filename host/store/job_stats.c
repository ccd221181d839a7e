/* job_stats.c - see job_stats.h. */
#include "store/job_stats.h"

#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"

/* ---- status codes (spec 4.1) ------------------------------------------ */

int
job_status_code(const char *status)
{
	if (!status)
		return -1;
	if (strcmp(status, JOB_STATUS_PENDING) == 0)
		return 0;
	if (strcmp(status, JOB_STATUS_SCHEDULED) == 0)
		return 1;
	if (strcmp(status, JOB_STATUS_RUNNING) == 0)
		return 2;
	if (strcmp(status, JOB_STATUS_STOPPED) == 0 ||
	    strcmp(status, JOB_STATUS_ERROR) == 0 ||
	    strcmp(status, JOB_STATUS_SUCCESS) == 0)
		return 3;
	return -1;
}

bool
job_status_final(const char *status)
{
	return job_status_code(status) == 3;
}

/* ---- the struct --------------------------------------------------------- */

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void
job_stats_fini(struct job_stats *s)
{
	if (!s)
		return;
	free(s->id);
	free(s->status);
	free(s->name);
	free(s->kind);
	free(s->ref_link);
	free(s->cron_spec);
	free(s->check_in);
	free(s->web_hook_url);
	free(s->upstream_job_id);
	cJSON_Delete(s->parameters);
	cJSON_Delete(s->ack);
	memset(s, 0, sizeof(*s));
}

void
job_stats_copy(struct job_stats *dst, const struct job_stats *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->id = dup_or_null(src->id);
	dst->status = dup_or_null(src->status);
	dst->name = dup_or_null(src->name);
	dst->kind = dup_or_null(src->kind);
	dst->unique = src->unique;
	dst->ref_link = dup_or_null(src->ref_link);
	dst->cron_spec = dup_or_null(src->cron_spec);
	dst->enqueue_time = src->enqueue_time;
	dst->update_time = src->update_time;
	dst->run_at = src->run_at;
	dst->check_in = dup_or_null(src->check_in);
	dst->check_in_at = src->check_in_at;
	dst->die_at = src->die_at;
	dst->web_hook_url = dup_or_null(src->web_hook_url);
	dst->upstream_job_id = dup_or_null(src->upstream_job_id);
	dst->numeric_policy_id = src->numeric_policy_id;
	if (src->parameters)
		dst->parameters =
			json_must(cJSON_Duplicate(src->parameters, true));
	dst->revision = src->revision;
	if (src->ack)
		dst->ack = json_must(cJSON_Duplicate(src->ack, true));
}

bool
job_stats_has_parameters(const struct job_stats *s)
{
	return s->parameters && cJSON_IsObject(s->parameters) &&
	       s->parameters->child;
}

/* ---- the ACK ------------------------------------------------------------ */

cJSON *
job_ack_normalise(const cJSON *a)
{
	if (!cJSON_IsObject(a))
		return NULL;
	const char *st = json_str(a, "status");
	cJSON *o = json_must(cJSON_CreateObject());
	json_must(cJSON_AddStringToObject(o, "status", st ? st : ""));
	json_must(cJSON_AddNumberToObject(o, "revision",
					  (double)json_i64(a, "revision")));
	json_must(cJSON_AddNumberToObject(o, "check_in_at",
					  (double)json_i64(a, "check_in_at")));
	return o;
}

static int
sign64(int64_t v)
{
	return v > 0 ? 1 : v < 0 ? -1 : 0;
}

int
job_ack_diff(const cJSON *ack, const char *status, int64_t revision,
	     int64_t check_in_at)
{
	if (!ack)
		return 1;
	int64_t rev = json_i64(ack, "revision");
	if (revision != rev)
		return revision > rev ? 1 : -1;
	int a = job_status_code(status);
	int b = job_status_code(json_str(ack, "status"));
	if (a != b)
		return a < b ? -1 : 1;
	return sign64(check_in_at - json_i64(ack, "check_in_at"));
}

/* ---- JSON --------------------------------------------------------------- */

static void
add_str(cJSON *o, const char *key, const char *v)
{
	json_must(cJSON_AddStringToObject(o, key, v ? v : ""));
}

static void
add_int(cJSON *o, const char *key, int64_t v)
{
	json_must(cJSON_AddNumberToObject(o, key, (double)v));
}

cJSON *
job_stats_to_json(const struct job_stats *s, bool with_check_in)
{
	cJSON *o = json_must(cJSON_CreateObject());
	add_str(o, "id", s->id);
	add_str(o, "status", s->status);
	add_str(o, "name", s->name);
	add_str(o, "kind", s->kind);
	json_must(cJSON_AddBoolToObject(o, "unique", s->unique));
	if (!str_empty(s->ref_link))
		add_str(o, "ref_link", s->ref_link);
	if (!str_empty(s->cron_spec))
		add_str(o, "cron_spec", s->cron_spec);
	add_int(o, "enqueue_time", s->enqueue_time);
	add_int(o, "update_time", s->update_time);
	if (s->run_at)
		add_int(o, "run_at", s->run_at);
	if (with_check_in && !str_empty(s->check_in))
		add_str(o, "check_in", s->check_in);
	if (s->check_in_at)
		add_int(o, "check_in_at", s->check_in_at);
	if (s->die_at)
		add_int(o, "die_at", s->die_at);
	if (!str_empty(s->web_hook_url))
		add_str(o, "web_hook_url", s->web_hook_url);
	if (!str_empty(s->upstream_job_id))
		add_str(o, "upstream_job_id", s->upstream_job_id);
	if (s->numeric_policy_id)
		add_int(o, "numeric_policy_id", s->numeric_policy_id);
	if (job_stats_has_parameters(s))
		cJSON_AddItemToObject(
			o, "parameters",
			json_must(cJSON_Duplicate(s->parameters, true)));
	if (s->revision)
		add_int(o, "revision", s->revision);
	cJSON *ack = job_ack_normalise(s->ack);
	if (ack)
		cJSON_AddItemToObject(o, "ack", ack);
	return o;
}

/* Appends a struct-like object in its key order, as Go encodes a struct;
 * "parameters" is a Go map (sorted keys), nested objects (ack) are structs
 * again. */
static void
append_struct(struct gbuf *b, const cJSON *o)
{
	gbuf_putc(b, '{');
	for (const cJSON *it = o->child; it; it = it->next) {
		if (it != o->child)
			gbuf_putc(b, ',');
		gojson_append_string(b, it->string, strlen(it->string));
		gbuf_putc(b, ':');
		if (strcmp(it->string, "parameters") == 0)
			gojson_append(b, it);
		else if (cJSON_IsObject(it))
			append_struct(b, it);
		else if (cJSON_IsString(it))
			gojson_append_string(b, it->valuestring,
					     strlen(it->valuestring));
		else if (cJSON_IsNumber(it))
			gojson_append_int(b, (long long)it->valuedouble);
		else
			gojson_append(b, it);
	}
	gbuf_putc(b, '}');
}

void
job_stats_append_go(struct gbuf *b, const struct job_stats *s,
		    bool with_check_in)
{
	cJSON *o = job_stats_to_json(s, with_check_in);
	append_struct(b, o);
	cJSON_Delete(o);
}

/* job_stats.h - a job's stats as a value (spec 3.3): the struct, its
 * status codes, and its JSON forms (the API's cJSON object and the Go bytes
 * of hook payloads). No Redis here: the tracker (store/tracker.h) reads and
 * writes the stats hash; the API and the hook agent render what it hands
 * them without calling it back. */
#ifndef BERTH_JOB_STATS_H
#define BERTH_JOB_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/gojson.h"

#define JOB_STATUS_PENDING "Pending"
#define JOB_STATUS_SCHEDULED "Scheduled"
#define JOB_STATUS_RUNNING "Running"
#define JOB_STATUS_STOPPED "Stopped"
#define JOB_STATUS_ERROR "Error"
#define JOB_STATUS_SUCCESS "Success"

#define JOB_KIND_GENERIC "Generic"
#define JOB_KIND_SCHEDULED "Scheduled"
#define JOB_KIND_PERIODIC "Periodic"

/* 0 Pending, 1 Scheduled, 2 Running, 3 Stopped/Error/Success, -1 other. */
int job_status_code(const char *status);
bool job_status_final(const char *status);

/* One job's stats (spec 3.3). Strings are owned (NULL = empty). */
struct job_stats {
	char *id;
	char *status;
	char *name;
	char *kind;
	bool unique;
	char *ref_link;
	char *cron_spec;
	int64_t enqueue_time;
	int64_t update_time;
	int64_t run_at;
	char *check_in;        /* only in hook payloads */
	int64_t check_in_at;
	int64_t die_at;
	char *web_hook_url;
	char *upstream_job_id;
	int64_t numeric_policy_id;
	cJSON *parameters;     /* object or NULL */
	int64_t revision;
	cJSON *ack;            /* {"status","revision","check_in_at"} or NULL */
};

void job_stats_fini(struct job_stats *s);
/* Deep copy (an immutable snapshot for hooks). */
void job_stats_copy(struct job_stats *dst, const struct job_stats *src);
/* True when s->parameters is a non-empty object (saved and rendered). */
bool job_stats_has_parameters(const struct job_stats *s);

/* The JSON object of spec 3.3 in its key order, with omitempty rules;
 * with_check_in adds check_in (hook payloads only). */
cJSON *job_stats_to_json(const struct job_stats *s, bool with_check_in);
/* Appends the same object as Go's encoding/json writes the struct: key
 * order as above, parameters as a Go map (sorted keys), `<>&` escaped (the
 * metadata of a hook payload, spec 7.2). */
void job_stats_append_go(struct gbuf *b, const struct job_stats *s,
			 bool with_check_in);

/* The ACK in Go's struct order {"status","revision","check_in_at"}, from
 * whatever key order Lua cjson wrote (a non-string status reads as "").
 * NULL when a is not an object. */
cJSON *job_ack_normalise(const cJSON *a);
/* The sign of state - ack (spec 7.5, 9.3): revision first, then the
 * status code, then check_in_at; 1 when ack is NULL (nothing ACKed). */
int job_ack_diff(const cJSON *ack, const char *status, int64_t revision,
		 int64_t check_in_at);

#endif

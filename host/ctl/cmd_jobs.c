/* cmd_jobs.c - berthctl submit, get, ls, stop, logs, executions: the job
 * routes of the REST API (spec section 2, and Berth's list filters and
 * detail view). */
#include "ctl/ctl.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/util.h"

#define MAX_PARAMS_FILE ((size_t)64 << 20)
/* `ls` without --all stops following the cursor after this many requests
 * (each one a bounded SCAN walk on the daemon) and prints the cursor */
#define LS_MAX_REQUESTS 100
#define FOLLOW_TIMEOUT_MS (3L * 3600 * 1000)

/* ---- submit -------------------------------------------------------------- */

static cJSON *
read_params_file(const struct ctl_args *a, const char *path, int *rc)
{
	char *text = NULL;
	size_t len = 0;
	struct berr err;
	berr_clear(&err);
	if (strcmp(path, "-") == 0) {
		struct gbuf b = {0};
		char buf[65536];
		size_t n;
		while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
			if (b.len + n > MAX_PARAMS_FILE) {
				gbuf_free(&b);
				*rc = usage_error(a, "--params-file: standard "
						     "input is larger than "
						     "64 MiB");
				return NULL;
			}
			gbuf_put(&b, buf, n);
		}
		text = b.p ? b.p : xstrdup("");
		len = b.len;
	} else if (util_read_file(path, MAX_PARAMS_FILE, &text, &len, &err) <
		   0) {
		*rc = usage_error(a, "--params-file: %s", err.msg);
		return NULL;
	}
	cJSON *v = json_parse(text, len, NULL);
	free(text);
	if (!cJSON_IsObject(v)) {
		cJSON_Delete(v);
		*rc = usage_error(a, "--params-file %s: expected one JSON "
				     "object",
				  path);
		return NULL;
	}
	return v;
}

/* The parameters object of -p, -j and --params-file; NULL with *rc set
 * on a usage error, NULL with *rc 0 when none were given. */
static cJSON *
build_params(const struct ctl_args *a, int *rc)
{
	*rc = 0;
	const char *file = args_get(a, "params-file");
	cJSON *params = NULL;
	if (file && !(params = read_params_file(a, file, rc)))
		return NULL;
	for (int i = 0; i < a->n; i++) {
		bool js = strcmp(a->opt[i]->lng, "param-json") == 0;
		if (!js && strcmp(a->opt[i]->lng, "param") != 0)
			continue;
		const char *kv = a->val[i];
		const char *eq = strchr(kv, '=');
		if (!eq || eq == kv) {
			cJSON_Delete(params);
			*rc = usage_error(a, "--%s: expected KEY=%s, got "
					     "'%s'",
					  a->opt[i]->lng, js ? "JSON" : "VALUE",
					  kv);
			return NULL;
		}
		char *key = xstrndup(kv, (size_t)(eq - kv));
		cJSON *v;
		if (js) {
			v = json_parse(eq + 1, strlen(eq + 1), NULL);
			if (!v) {
				*rc = usage_error(a, "--param-json %s: not "
						     "JSON: %s",
						  key, eq + 1);
				free(key);
				cJSON_Delete(params);
				return NULL;
			}
		} else {
			v = json_must(cJSON_CreateString(eq + 1));
		}
		if (!params)
			params = json_must(cJSON_CreateObject());
		cJSON_DeleteItemFromObjectCaseSensitive(params, key);
		cJSON_AddItemToObject(params, key, v);
		free(key);
	}
	return params;
}

static void
submit_human(const struct ctl_reply *r, const void *ud)
{
	(void)ud;
	const cJSON *j = cJSON_GetObjectItem(r->json, "job");
	char *id = out_safe(json_str(j ? j : r->json, "id"));
	printf("%s\n", id);
	free(id);
}

int
cmd_submit(struct ctl *c, struct ctl_args *a)
{
	const char *kind = args_get(a, "kind");
	const char *cron = args_get(a, "cron");
	const char *delay_s = args_get(a, "delay");
	const char *hook = args_get(a, "hook");
	if (cron && delay_s)
		return usage_error(a, "--cron and --delay exclude each other");
	const char *implied = cron ? "Periodic" : delay_s ? "Scheduled"
							  : NULL;
	if (kind && implied && strcmp(kind, implied) != 0)
		return usage_error(a, "--%s needs --kind %s",
				   cron ? "cron" : "delay", implied);
	if (!kind)
		kind = implied ? implied : "Generic";
	if (strcmp(kind, "Generic") != 0 && strcmp(kind, "Scheduled") != 0 &&
	    strcmp(kind, "Periodic") != 0)
		return usage_error(a, "--kind: expected Generic, Scheduled or "
				      "Periodic, got '%s'", kind);
	if (strcmp(kind, "Periodic") == 0 && !cron)
		return usage_error(a, "--kind Periodic needs --cron SPEC");
	long long delay = args_int(a, "delay", 0, 0, 100LL * 365 * 86400);
	if (delay < 0)
		return CTL_EUSAGE;

	int rc = 0;
	cJSON *params = build_params(a, &rc);
	if (rc)
		return rc;
	cJSON *body = json_must(cJSON_CreateObject());
	cJSON *job = json_must(cJSON_AddObjectToObject(body, "job"));
	cJSON_AddStringToObject(job, "name", a->pos[0]);
	if (params)
		cJSON_AddItemToObject(job, "parameters", params);
	cJSON *meta = json_must(cJSON_AddObjectToObject(job, "metadata"));
	cJSON_AddStringToObject(meta, "kind", kind);
	if (delay_s)
		cJSON_AddNumberToObject(meta, "schedule_delay", (double)delay);
	if (cron)
		cJSON_AddStringToObject(meta, "cron_spec", cron);
	cJSON_AddBoolToObject(meta, "unique", args_has(a, "unique"));
	if (hook)
		cJSON_AddStringToObject(job, "status_hook", hook);
	char *text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (!text)
		abort(); /* out of memory, as the x* family */

	rc = ctl_show(c, "POST", "/api/v1/jobs", text, submit_human, NULL);
	cJSON_free(text);
	return rc;
}

/* ---- get ----------------------------------------------------------------- */

static bool
is_time_field(const char *k)
{
	static const char *const t[] = {"enqueue_time", "update_time",
					"run_at", "check_in_at", "die_at",
					"failed_at", "next_retry_at",
					"died_at"};
	for (size_t i = 0; i < ARRAY_LEN(t); i++)
		if (strcmp(k, t[i]) == 0)
			return true;
	return false;
}

/* Every member of o as "key: value", in the daemon's order. */
static void
print_fields(const cJSON *o)
{
	int w = 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, o)
		if ((int)strlen(v->string) > w)
			w = (int)strlen(v->string);
	cJSON_ArrayForEach(v, o) {
		char buf[64], tb[32];
		char *text;
		if (cJSON_IsString(v))
			text = xstrdup(v->valuestring);
		else if (cJSON_IsNumber(v) && is_time_field(v->string))
			text = xasprintf("%s (%lld)",
					 out_time(json_i64(o, v->string), tb),
					 (long long)json_i64(o, v->string));
		else if (cJSON_IsObject(v) || cJSON_IsArray(v) ||
			 cJSON_IsNull(v))
			text = out_json(v);
		else
			text = xstrdup(out_field(o, v->string, buf,
						 sizeof(buf)));
		char *safe = out_safe(text);
		char *key = out_safe(v->string);
		printf("%-*s  %s\n", w + 1, key, safe);
		free(key);
		free(safe);
		free(text);
	}
}

static void
get_human(const struct ctl_reply *r, const void *ud)
{
	(void)ud;
	const cJSON *job = cJSON_GetObjectItem(r->json, "job");
	print_fields(job ? job : r->json);
	const cJSON *d = cJSON_GetObjectItem(r->json, "detail");
	if (d) {
		printf("\ndetail:\n");
		print_fields(d);
	}
}

int
cmd_get(struct ctl *c, struct ctl_args *a)
{
	char *path = ctl_path("/api/v1/jobs/", a->pos[0],
			      args_has(a, "detail") ? "?detail=true" : "");
	int rc = ctl_show(c, "GET", path, NULL, get_human, NULL);
	free(path);
	return rc;
}

/* ---- job tables (ls, executions) ----------------------------------------- */

static struct table *
jobs_table(void)
{
	static const char *const h[] = {"ID", "TYPE", "KIND", "STATUS",
					"ENQUEUED", "UPDATED", "PARAMETERS"};
	struct table *t = table_new(7, h);
	table_cap(t, 6, 48);
	return t;
}

static void
jobs_add(struct table *t, const cJSON *list)
{
	const cJSON *el;
	cJSON_ArrayForEach(el, list) {
		const cJSON *j = cJSON_GetObjectItem(el, "job");
		if (!j)
			j = el; /* a daemon before {"job":...} elements */
		char t1[32], t2[32];
		const cJSON *p = cJSON_GetObjectItem(j, "parameters");
		char *params = cJSON_IsObject(p) && p->child ? out_json(p)
							     : xstrdup("");
		const char *row[] = {
			json_str(j, "id"), json_str(j, "name"),
			json_str(j, "kind"), json_str(j, "status"),
			out_time(json_i64(j, "enqueue_time"), t1),
			out_time(json_i64(j, "update_time"), t2), params};
		table_row(t, row);
		free(params);
	}
}

/* Appends the elements of a JSON array answer to all. */
static void
append_items(cJSON *all, const cJSON *list)
{
	const cJSON *el;
	cJSON_ArrayForEach(el, list)
		cJSON_AddItemToArray(all, json_must(cJSON_Duplicate(el, 1)));
}

/* The job table of list, or "berthctl: no <none>". */
static void
jobs_show(const cJSON *list, const char *none)
{
	struct table *t = jobs_table();
	jobs_add(t, list);
	table_show(t, none);
}

/* ---- ls ------------------------------------------------------------------ */

static void
add_query(struct gbuf *q, const char *key, const char *value)
{
	if (!value)
		return;
	char *v = ctl_escape(value);
	gbuf_printf(q, "%c%s=%s", q->len ? '&' : '?', key, v);
	free(v);
}

int
cmd_ls(struct ctl *c, struct ctl_args *a)
{
	const char *kind = args_get(a, "kind");
	bool sched = kind && strcmp(kind, "Scheduled") == 0;
	long long size = args_int(a, "page-size", 25, 1, 1000);
	long long page = args_int(a, "page", 1, 1, 1000000000);
	if (size < 0 || page < 0)
		return CTL_EUSAGE;
	if (args_has(a, "page") && !sched)
		return usage_error(a, "--page is for --kind Scheduled; other "
				      "listings page with --cursor");
	if (sched && (args_has(a, "cursor") || args_has(a, "all")))
		return usage_error(a, "--kind Scheduled pages with --page");
	char cursor[64];
	snprintf(cursor, sizeof(cursor), "%s",
		 args_get(a, "cursor") ? args_get(a, "cursor") : "0");
	bool all = args_has(a, "all");
	cJSON *items = json_must(cJSON_CreateArray());
	int rc = 0;
	long long total = -1;
	for (int n = 0;; n++) {
		struct gbuf q = {0};
		add_query(&q, "status", args_get(a, "status"));
		add_query(&q, "type", args_get(a, "type"));
		add_query(&q, "kind", kind);
		char num[32];
		if (sched) {
			add_query(&q, "page_number", out_int(page, num));
		} else {
			add_query(&q, "page_size", out_int(size, num));
			add_query(&q, "cursor", cursor);
		}
		char *path = xasprintf("/api/v1/jobs%s", q.p ? q.p : "");
		gbuf_free(&q);
		struct ctl_reply r;
		rc = ctl_call(c, "GET", path, NULL, &r);
		free(path);
		if (rc)
			break;
		append_items(items, r.json);
		const char *next =
			berth_http_response_header(&r.resp, "Next-Cursor");
		const char *tc =
			berth_http_response_header(&r.resp, "Total-Count");
		if (tc)
			total = atoll(tc);
		snprintf(cursor, sizeof(cursor), "%s",
			 next && *next ? next : "0");
		ctl_reply_fini(&r);
		if (sched || strcmp(cursor, "0") == 0)
			break;
		if (!all && (cJSON_GetArraySize(items) >= size ||
			     n + 1 >= LS_MAX_REQUESTS))
			break;
	}
	if (rc == 0) {
		if (c->json) {
			char *s = out_json(items);
			printf("%s\n", s);
			free(s);
		} else {
			jobs_show(items, "jobs");
		}
		if (sched && total >= 0)
			fprintf(stderr, "page %lld, %lld scheduled job(s) in "
					"all\n", page, total);
		else if (!sched && strcmp(cursor, "0") != 0)
			fprintf(stderr, "more: --cursor %s\n", cursor);
	}
	cJSON_Delete(items);
	return rc;
}

/* ---- stop ---------------------------------------------------------------- */

static void
stop_human(const struct ctl_reply *r, const void *ud)
{
	(void)r;
	char *safe = out_safe(ud);
	printf("stop requested for %s\n", safe);
	free(safe);
}

int
cmd_stop(struct ctl *c, struct ctl_args *a)
{
	char *path = ctl_path("/api/v1/jobs/", a->pos[0], "");
	int rc = ctl_show(c, "POST", path, "{\"action\":\"stop\"}",
			  stop_human, a->pos[0]);
	free(path);
	return rc;
}

/* ---- logs ---------------------------------------------------------------- */

struct log_out {
	bool tty; /* control characters made visible */
	bool failed;
};

static bool
log_sink(void *ud, const char *data, size_t len)
{
	struct log_out *o = ud;
	if (!o->tty) {
		if (fwrite(data, 1, len, stdout) != len)
			o->failed = true;
	} else {
		for (size_t i = 0; i < len; i++) {
			unsigned char ch = (unsigned char)data[i];
			bool ctl = (ch < 0x20 && ch != '\n' && ch != '\t') ||
				   ch == 0x7f;
			if (putchar(ctl ? '?' : ch) == EOF)
				o->failed = true;
		}
	}
	if (fflush(stdout) != 0)
		o->failed = true;
	return !o->failed;
}

int
cmd_logs(struct ctl *c, struct ctl_args *a)
{
	bool follow = args_has(a, "follow");
	char *path = ctl_path("/api/v1/jobs/", a->pos[0],
			      follow ? "/log?follow=true" : "/log");
	struct log_out o = {.tty = isatty(STDOUT_FILENO) == 1};
	struct ctl_request q = {
		.method = "GET",
		.path = path,
		.sink = log_sink,
		.sink_ud = &o,
		.timeout_ms = follow ? FOLLOW_TIMEOUT_MS : 0,
	};
	struct ctl_reply r;
	int rc = ctl_send(c, &q, &r, false);
	free(path);
	if (rc) {
		if (o.failed) /* standard output closed: as head(1) wants */
			return CTL_OK;
		return rc;
	}
	if (!berth_http_is_2xx(r.status))
		rc = ctl_api_error(c, &r);
	ctl_reply_fini(&r);
	return rc;
}

/* ---- executions ---------------------------------------------------------- */

static void
executions_human(const struct ctl_reply *r, const void *ud)
{
	jobs_show(r->json, "executions");
	const char *tc = berth_http_response_header(&r->resp, "Total-Count");
	if (tc)
		fprintf(stderr, "page %lld, %s execution(s) in all\n",
			*(const long long *)ud, tc);
}

int
cmd_executions(struct ctl *c, struct ctl_args *a)
{
	long long page = args_int(a, "page", 1, 1, 1000000000);
	long long size = args_int(a, "page-size", 0, 1, 1000000);
	if (page < 0 || size < 0)
		return CTL_EUSAGE;
	struct gbuf q = {0};
	char num[32];
	add_query(&q, "page_number", out_int(page, num));
	if (size > 0)
		add_query(&q, "page_size", out_int(size, num));
	if (args_has(a, "non-dead-only"))
		add_query(&q, "non_dead_only", "true");
	gbuf_put(&q, "", 0);
	char *tail = xasprintf("/executions%s", q.p);
	gbuf_free(&q);
	char *path = ctl_path("/api/v1/jobs/", a->pos[0], tail);
	free(tail);
	int rc = ctl_show(c, "GET", path, NULL, executions_human, &page);
	free(path);
	return rc;
}

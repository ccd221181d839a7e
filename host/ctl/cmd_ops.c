/* cmd_ops.c - berthctl queues, pause, resume, retries, dead, pools,
 * workers, plugins, stats, periodic: the Operations API (README,
 * "Operations API") and Berth's plugin and Harbor's stats routes. */
#include "ctl/ctl.h"

#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"

static const char *
yes_no(const cJSON *o, const char *key)
{
	return json_bool(o, key) ? "yes" : "no";
}

/* ---- queues -------------------------------------------------------------- */

struct table *
ops_queues_table(const cJSON *doc)
{
	static const char *const h[] = {"TYPE",  "PENDING", "LATENCY",
					"RUNNING", "LOCK", "LIMIT",
					"PAUSED", "SCHEDULED", "RETRY",
					"DEAD", "LOADED"};
	struct table *t = table_new(11, h);
	const cJSON *q;
	cJSON_ArrayForEach(q, cJSON_GetObjectItem(doc, "queues")) {
		char n[7][32], age[32];
		long long limit = json_i64(q, "max_concurrency");
		const char *row[] = {
			json_str(q, "type"),
			out_int(json_i64(q, "pending"), n[0]),
			json_i64(q, "pending") > 0
				? out_age(json_i64(q, "latency_seconds"), age)
				: "-",
			out_int(json_i64(q, "in_progress"), n[1]),
			out_int(json_i64(q, "lock"), n[2]),
			limit > 0 ? out_int(limit, n[3]) : "-",
			yes_no(q, "paused"),
			out_int(json_i64(q, "scheduled"), n[4]),
			out_int(json_i64(q, "retry"), n[5]),
			out_int(json_i64(q, "dead"), n[6]),
			yes_no(q, "loaded")};
		table_row(t, row);
	}
	return t;
}

/* The strings of a JSON array joined by sep ("" for none). New string. */
static char *
join_strings(const cJSON *arr, const char *sep)
{
	struct gbuf b = {0};
	gbuf_put(&b, "", 0);
	const cJSON *v;
	cJSON_ArrayForEach(v, arr)
		if (cJSON_IsString(v))
			gbuf_printf(&b, "%s%s", b.len ? sep : "",
				    v->valuestring);
	return b.p;
}

static void
queues_human(const struct ctl_reply *r, const void *ud)
{
	(void)ud;
	table_show(ops_queues_table(r->json), "job types");
	if (json_bool(r->json, "counts_partial"))
		fprintf(stderr, "note: the scheduled, retry and dead counts "
				"cover the first 10,000 members of each set\n");
}

int
cmd_queues(struct ctl *c, struct ctl_args *a)
{
	(void)a;
	return ctl_show(c, "GET", "/api/v1/queues", NULL, queues_human, NULL);
}

/* {"action":"<action>"}: the body of every action route. New string. */
static char *
action_body(const char *action)
{
	return xasprintf("{\"action\":\"%s\"}", action);
}

static void
queue_action_human(const struct ctl_reply *r, const void *ud)
{
	const char *action = ud;
	char *types =
		join_strings(cJSON_GetObjectItem(r->json, "types"), ", ");
	char *safe = out_safe(*types ? types : "no job type");
	const char *done = strcmp(action, "pause") == 0    ? "paused"
			   : strcmp(action, "resume") == 0 ? "resumed"
							   : "stopped";
	if (strcmp(action, "stop") == 0)
		printf("%s %s: %lld pending, %lld running\n", done, safe,
		       (long long)json_i64(r->json, "stopped_pending"),
		       (long long)json_i64(r->json, "stopped_running"));
	else
		printf("%s %s\n", done, safe);
	free(safe);
	free(types);
}

/* pause, resume, stop: PUT /api/v1/queues/{type} */
int
cmd_queue_action(struct ctl *c, struct ctl_args *a)
{
	const char *action = a->cmd->name;
	char *path = ctl_path("/api/v1/queues/", a->pos[0], "");
	char *body = action_body(action);
	int rc = ctl_show(c, "PUT", path, body, queue_action_human, action);
	free(path);
	free(body);
	return rc;
}

/* ---- retry and dead sets ------------------------------------------------- */

static bool
is_dead(const struct ctl_args *a)
{
	return strncmp(a->path, "berthctl dead", 13) == 0;
}

struct set_page {
	bool dead;
	long long page, size;
};

static void
set_list_human(const struct ctl_reply *r, const void *ud)
{
	const struct set_page *sp = ud;
	bool dead = sp->dead;
	static const char *const h[] = {"JOB ID", "TYPE", "FAILS",
					"ERROR", "FAILED", "RETRY AT",
					"ARGS"};
	static const char *const hd[] = {"JOB ID", "TYPE", "FAILS",
					 "ERROR", "FAILED", "DIED",
					 "ARGS"};
	struct table *t = table_new(7, dead ? hd : h);
	table_cap(t, 3, 40);
	table_cap(t, 6, 40);
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(r->json, "items")) {
		char n[32], t1[32], t2[32];
		char *args = out_json(cJSON_GetObjectItem(it, "args"));
		const char *row[] = {
			json_str(it, "job_id"), json_str(it, "name"),
			out_int(json_i64(it, "fails"), n),
			json_str(it, "error"),
			out_time(json_i64(it, "failed_at"), t1),
			out_time(json_i64(it, dead ? "died_at" : "retry_at"),
				 t2),
			strcmp(args, "null") ? args : ""};
		table_row(t, row);
		free(args);
	}
	long long total = json_i64(r->json, "total");
	table_show(t, NULL);
	fprintf(stderr, "%s: %lld job(s) in all; page %lld of %lld\n",
		dead ? "dead set" : "retry set", total, sp->page,
		total > 0 ? (total + sp->size - 1) / sp->size : 1);
}

int
cmd_set_list(struct ctl *c, struct ctl_args *a)
{
	struct set_page sp = {
		.dead = is_dead(a),
		.page = args_int(a, "page", 1, 1, 1000000000),
		.size = args_int(a, "page-size", 25, 1, 1000),
	};
	if (sp.page < 0 || sp.size < 0)
		return CTL_EUSAGE;
	const char *type = args_get(a, "type");
	char *path = xasprintf("/api/v1/%s?page=%lld&page_size=%lld%s",
			       sp.dead ? "dead" : "retries", sp.page, sp.size,
			       type ? "&type=" : "");
	if (type) {
		char *p = ctl_path(path, type, "");
		free(path);
		path = p;
	}
	int rc = ctl_show(c, "GET", path, NULL, set_list_human, &sp);
	free(path);
	return rc;
}

static void
set_action_human(const struct ctl_reply *r, const void *ud)
{
	const char *action = ud;
	printf("%s %lld job(s)\n",
	       strcmp(action, "retry") == 0 ? "retried" : "deleted",
	       (long long)json_i64(r->json, "affected"));
}

/* retry|delete ID|--all */
int
cmd_set_action(struct ctl *c, struct ctl_args *a)
{
	bool dead = is_dead(a);
	bool all = args_has(a, "all");
	if (all == (a->npos == 1))
		return usage_error(a, "give a job ID or --all");
	const char *action = a->cmd->name;
	char *path = all ? xstrdup(dead ? "/api/v1/dead" : "/api/v1/retries")
			 : ctl_path(dead ? "/api/v1/dead/" : "/api/v1/retries/",
				    a->pos[0], "");
	char *body = action_body(action);
	int rc = ctl_show(c, "POST", path, body, set_action_human, action);
	free(path);
	free(body);
	return rc;
}

/* ---- pools and workers --------------------------------------------------- */


struct table *
ops_pools_table(const cJSON *doc)
{
	static const char *const h[] = {"POOL", "HOST", "PID", "STATUS",
					"STARTED", "HEARTBEAT", "WORKERS",
					"BUSY", "ENGINE", "JOB TYPES"};
	struct table *t = table_new(10, h);
	table_cap(t, 9, 60);
	int64_t now = util_now();
	const cJSON *p;
	cJSON_ArrayForEach(p, cJSON_GetObjectItem(doc, "pools")) {
		char n[3][32], t1[32], age[40];
		int64_t hb = json_i64(p, "heartbeat_at");
		if (hb > 0)
			snprintf(age, sizeof(age), "%s ago",
				 out_age(now - hb < 0 ? 0 : now - hb, t1));
		else
			snprintf(age, sizeof(age), "-");
		char *names = join_strings(
			cJSON_GetObjectItem(p, "job_names"), ",");
		const char *engine = json_bool(p, "berth")
					     ? (json_bool(p, "self")
							? "berth (this)"
							: "berth")
					     : "go";
		char started[32];
		const char *row[] = {
			json_str(p, "pool_id"), json_str(p, "host"),
			out_int(json_i64(p, "pid"), n[0]),
			json_str(p, "status"),
			out_time(json_i64(p, "started_at"), started), age,
			out_int(json_i64(p, "concurrency"), n[1]),
			out_int(json_i64(p, "busy"), n[2]), engine, names};
		table_row(t, row);
		free(names);
	}
	return t;
}

static void
pools_human(const struct ctl_reply *r, const void *ud)
{
	(void)ud;
	table_show(ops_pools_table(r->json), "worker pools");
}

int
cmd_pools(struct ctl *c, struct ctl_args *a)
{
	(void)a;
	return ctl_show(c, "GET", "/api/v1/pools", NULL, pools_human, NULL);
}

struct table *
ops_workers_table(bool with_pool)
{
	static const char *const h[] = {"WORKER", "POOL", "BUSY", "TYPE",
					"JOB", "RUNNING FOR", "ARGS"};
	static const char *const hn[] = {"WORKER", "BUSY", "TYPE", "JOB",
					 "RUNNING FOR", "ARGS"};
	struct table *t = with_pool ? table_new(7, h) : table_new(6, hn);
	table_cap(t, with_pool ? 6 : 5, 48);
	if (with_pool)
		table_cap(t, 1, 12);
	return t;
}

void
ops_workers_add(struct table *t, const cJSON *doc, bool busy_only,
		bool with_pool)
{
	int64_t now = util_now();
	const char *pool = json_str(doc, "pool_id");
	const cJSON *w;
	cJSON_ArrayForEach(w, cJSON_GetObjectItem(doc, "workers")) {
		bool busy = json_bool(w, "busy");
		if (busy_only && !busy)
			continue;
		char age[32];
		int64_t st = json_i64(w, "started_at");
		char *args = busy ? out_json(cJSON_GetObjectItem(w, "args"))
				  : xstrdup("");
		const char *cells[] = {
			json_str(w, "worker_id"), pool,
			busy ? "yes" : "no",
			json_str(w, "job_name"), json_str(w, "job_id"),
			busy && st > 0 ? out_age(now - st < 0 ? 0 : now - st,
						 age)
				       : "",
			strcmp(args, "null") ? args : ""};
		if (with_pool) {
			table_row(t, cells);
		} else {
			const char *row[] = {cells[0], cells[2], cells[3],
					     cells[4], cells[5], cells[6]};
			table_row(t, row);
		}
		free(args);
	}
}

static int
get_workers(struct ctl *c, const char *pool, struct ctl_reply *r)
{
	char *path = ctl_path("/api/v1/pools/", pool, "/workers");
	int rc = ctl_call(c, "GET", path, NULL, r);
	free(path);
	return rc;
}

int
cmd_workers(struct ctl *c, struct ctl_args *a)
{
	bool busy_only = args_has(a, "busy") || a->npos == 0;
	struct ctl_reply pools;
	int rc = ctl_call(c, "GET", "/api/v1/pools", NULL, &pools);
	if (rc)
		return rc;
	/* the pools to show: one (POOL, or the only pool it prefixes), or
	 * every pool with a busy worker */
	const char *want[1024];
	int n = 0;
	const cJSON *p;
	cJSON_ArrayForEach(p, cJSON_GetObjectItem(pools.json, "pools")) {
		const char *id = json_str(p, "pool_id");
		if (!id || n == (int)ARRAY_LEN(want))
			continue;
		if (a->npos == 1) {
			if (strcmp(id, a->pos[0]) == 0) {
				want[0] = id;
				n = 1;
				break;
			}
			if (strncmp(id, a->pos[0], strlen(a->pos[0])) == 0)
				want[n++] = id;
		} else if (json_i64(p, "busy") > 0) {
			want[n++] = id;
		}
	}
	if (a->npos == 1 && n > 1) {
		ctl_reply_fini(&pools);
		return usage_error(a, "'%s' is the prefix of %d pools",
				   a->pos[0], n);
	}
	if (a->npos == 1 && n == 0) {
		want[0] = a->pos[0]; /* the daemon says what is wrong */
		n = 1;
	}
	bool with_pool = a->npos == 0;
	struct table *t = ops_workers_table(with_pool);
	cJSON *all = json_must(cJSON_CreateArray());
	for (int i = 0; i < n && rc == 0; i++) {
		struct ctl_reply r;
		rc = get_workers(c, want[i], &r);
		if (rc == CTL_EAPI && a->npos == 0)
			rc = 0; /* the pool went away meanwhile */
		if (rc)
			continue;
		if (!r.json) {
			ctl_reply_fini(&r);
			continue;
		}
		if (c->json && a->npos == 1)
			ctl_print_raw(&r);
		else if (c->json)
			cJSON_AddItemToArray(all,
					     json_must(cJSON_Duplicate(r.json,
								       1)));
		else
			ops_workers_add(t, r.json, busy_only, with_pool);
		ctl_reply_fini(&r);
	}
	if (rc == 0 && c->json && a->npos == 0) {
		char *s = out_json(all);
		printf("%s\n", s);
		free(s);
	} else if (rc == 0 && !c->json) {
		table_show(t, busy_only ? "busy workers" : "workers");
		t = NULL;
	}
	cJSON_Delete(all);
	table_free(t);
	ctl_reply_fini(&pools);
	return rc;
}

/* ---- plugins ------------------------------------------------------------- */

static void
plugins_human(const struct ctl_reply *r, const void *ud)
{
	(void)ud;
	const cJSON *doc = r->json;
	static const char *const h[] = {"NAME", "VERSION", "ABI",
					"MAX FAILS", "MAX CONC", "PRIORITY",
					"GEN", "RUNNING", "FILE"};
	const char *sections[] = {"plugins", "retiring"};
	for (int s = 0; s < 2; s++) {
		const cJSON *list = cJSON_GetObjectItem(doc, sections[s]);
		if (s == 1 && cJSON_GetArraySize(list) == 0)
			continue;
		if (s == 1)
			printf("\nretiring (older generations still "
			       "running):\n");
		struct table *t = table_new(9, h);
		const cJSON *p;
		cJSON_ArrayForEach(p, list) {
			char n[5][32];
			const char *row[] = {
				json_str(p, "name"), json_str(p, "version"),
				json_str(p, "abi"),
				out_int(json_i64(p, "max_fails"), n[0]),
				out_int(json_i64(p, "max_concurrency"), n[1]),
				out_int(json_i64(p, "priority"), n[2]),
				out_int(json_i64(p, "generation"), n[3]),
				out_int(json_i64(p, "refs"), n[4]),
				json_str(p, "file")};
			table_row(t, row);
		}
		table_print(t, stdout);
		table_free(t);
	}
	const cJSON *refused = cJSON_GetObjectItem(doc, "refused");
	if (cJSON_GetArraySize(refused) > 0) {
		static const char *const hr[] = {"NAME", "FILE", "REASON"};
		struct table *t = table_new(3, hr);
		const cJSON *p;
		cJSON_ArrayForEach(p, refused) {
			const char *row[] = {json_str(p, "name"),
					     json_str(p, "file"),
					     json_str(p, "reason")};
			table_row(t, row);
		}
		printf("\nrefused:\n");
		table_print(t, stdout);
		table_free(t);
	}
}

int
cmd_plugins(struct ctl *c, struct ctl_args *a)
{
	(void)a;
	return ctl_show(c, "GET", "/api/v1/plugins", NULL, plugins_human,
			NULL);
}

int
cmd_plugins_reload(struct ctl *c, struct ctl_args *a)
{
	(void)a;
	return ctl_show(c, "POST", "/api/v1/plugins/reload", NULL,
			plugins_human, NULL);
}

/* ---- stats (Harbor's route, no auth) ------------------------------------- */

int
cmd_stats(struct ctl *c, struct ctl_args *a)
{
	(void)a;
	struct ctl_request q = {.method = "GET", .path = "/api/v1/stats",
				.no_auth = true};
	struct ctl_reply r;
	int rc = ctl_send(c, &q, &r, false);
	if (rc)
		return rc;
	if (!berth_http_is_2xx(r.status) || !r.json) {
		rc = ctl_api_error(c, &r);
		ctl_reply_fini(&r);
		return rc;
	}
	if (c->json) {
		ctl_print_raw(&r);
		ctl_reply_fini(&r);
		return CTL_OK;
	}
	static const char *const h[] = {"POOL", "STATUS", "STARTED",
					"HEARTBEAT", "CONCURRENCY",
					"JOB TYPES"};
	struct table *t = table_new(6, h);
	table_cap(t, 5, 60);
	const cJSON *p;
	cJSON_ArrayForEach(p, cJSON_GetObjectItem(r.json, "worker_pools")) {
		char t1[32], t2[32], n[32];
		char *names = join_strings(
			cJSON_GetObjectItem(p, "job_names"), ",");
		const char *row[] = {
			json_str(p, "worker_pool_id"), json_str(p, "status"),
			out_time(json_i64(p, "started_at"), t1),
			out_time(json_i64(p, "heartbeat_at"), t2),
			out_int(json_i64(p, "concurrency"), n), names};
		table_row(t, row);
		free(names);
	}
	table_show(t, "worker pools");
	ctl_reply_fini(&r);
	return CTL_OK;
}

/* ---- periodic ------------------------------------------------------------ */

static void
periodic_human(const struct ctl_reply *r, const void *ud)
{
	(void)ud;
	static const char *const h[] = {"ID", "TYPE", "CRON", "NEXT RUNS",
					"PARAMETERS"};
	struct table *t = table_new(5, h);
	table_cap(t, 4, 40);
	const cJSON *p;
	cJSON_ArrayForEach(p, cJSON_GetObjectItem(r->json, "policies")) {
		struct gbuf next = {0};
		const char *err = json_str(p, "error");
		if (err && *err) {
			gbuf_printf(&next, "error: %s", err);
		} else {
			const cJSON *runs = cJSON_GetObjectItem(p, "next_runs");
			const cJSON *v;
			cJSON_ArrayForEach(v, runs) {
				char tb[32];
				gbuf_printf(&next, "%s%s",
					    next.len ? ", " : "",
					    out_time((int64_t)v->valuedouble,
						     tb));
			}
		}
		const cJSON *jp = cJSON_GetObjectItem(p, "job_params");
		char *params = cJSON_IsObject(jp) && jp->child ? out_json(jp)
							       : xstrdup("");
		const char *row[] = {json_str(p, "id"), json_str(p, "job_name"),
				     json_str(p, "cron_spec"),
				     next.p ? next.p : "never", params};
		table_row(t, row);
		free(params);
		gbuf_free(&next);
	}
	table_show(t, "periodic policies");
}

int
cmd_periodic(struct ctl *c, struct ctl_args *a)
{
	(void)a;
	return ctl_show(c, "GET", "/api/v1/periodic", NULL, periodic_human,
			NULL);
}

/* ctl.h - berthctl, the command-line client of berthd's REST API.
 *
 * berthctl speaks HTTP only, through the SDK's client (berth/http.h); it
 * never opens Redis. From the host it uses config/ (to read the berth.yml
 * berthd reads) and common/ (allocation, cJSON helpers), nothing else.
 *
 *   main.c      argument parsing against the command table, dispatch
 *   help.c      the command table; --help, the man page, bash completion
 *   conn.c      where the daemon is (flags, environment, config, data
 *               dir), one request, API errors and exit codes
 *   out.c       tables, times, terminal-safe text
 *   cmd_jobs.c  submit, get, ls, stop, logs, executions
 *   cmd_ops.c   queues, pause, resume, retries, dead, pools, workers,
 *               plugins, stats, periodic
 *   watch.c     the refreshing terminal view */
#ifndef BERTH_CTL_H
#define BERTH_CTL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include <berth/http.h>

#include "common/gojson.h"

/* Exit codes (documented in --help, the man page and the README). */
enum {
	CTL_OK = 0,        /* done */
	CTL_EAPI = 1,      /* the daemon answered with an error */
	CTL_EUSAGE = 2,    /* bad command line or configuration */
	CTL_EUNREACH = 3,  /* the daemon could not be reached */
};

/* ---- the command table (help.c) ---------------------------------------- */

struct ctl_opt {
	const char *lng;    /* long name, without "--" */
	char shrt;          /* short letter, or 0 */
	const char *arg;    /* value name ("STATUS"), NULL for a flag */
	const char *help;
	const char *words;  /* completion words of the value, or NULL */
	bool repeat;        /* may be given more than once */
};

struct ctl;
struct ctl_args;

struct ctl_cmd {
	const char *name;
	const char *operands;  /* usage operands: "ID", "[POOL]" */
	const char *summary;   /* one line */
	const char *text;      /* a paragraph, or NULL */
	const struct ctl_opt *opts;   /* terminated by {0} */
	const struct ctl_cmd *subs;   /* terminated by {0}, or NULL */
	const char *default_sub;      /* the sub-command run when none given */
	int (*run)(struct ctl *c, struct ctl_args *a);
	int min_pos, max_pos;  /* operands accepted (max -1: any) */
	const char *examples;  /* lines "berthctl ...", or NULL */
};

extern const struct ctl_cmd ctl_root;
extern const struct ctl_opt ctl_global_opts[];

/* The help of cmd (path: "berthctl dead retry"). */
void help_print(FILE *f, const struct ctl_cmd *cmd, const char *path);
/* The whole tree as a roff man page, section 1. */
void help_man(FILE *f);
/* A bash completion script for berthctl. */
void help_bash(FILE *f);

/* ---- parsed arguments (main.c) ------------------------------------------ */

#define CTL_MAX_ARGS 256

struct ctl_args {
	const struct ctl_cmd *cmd;
	const char *path;            /* "berthctl dead retry" */
	/* options in command-line order */
	const struct ctl_opt *opt[CTL_MAX_ARGS];
	const char *val[CTL_MAX_ARGS];
	int n;
	const char *pos[CTL_MAX_ARGS];
	int npos;
};

/* The last value of option lng, or NULL when absent. */
const char *args_get(const struct ctl_args *a, const char *lng);
bool args_has(const struct ctl_args *a, const char *lng);
/* A non-negative integer option; def when absent. -1 (after printing a
 * usage error) when it is not a number in [min, max]. */
long long args_int(const struct ctl_args *a, const char *lng, long long def,
		   long long min, long long max);
/* Prints "berthctl: <msg>" and a hint to --help; returns CTL_EUSAGE. */
int usage_error(const struct ctl_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- the connection (conn.c) -------------------------------------------- */

struct ctl {
	bool json;              /* --json */
	char *base;             /* "http://127.0.0.1:8080" */
	char *secret;           /* NULL: none found */
	char *secret_from;      /* where it came from, for hints */
	char *url_from;         /* where the URL came from, for hints */
	long timeout_ms;
	bool insecure;
	char *cacert;
	struct berth_http_client *http;
	struct berth_http_policy *policy;
	struct berth_http_tls tls;
	/* cancels the request in flight when it returns true (polled at
	 * least every 100 ms; watch: a key or a signal) */
	bool (*cancel)(void *ud);
	void *cancel_ud;
};

/* Finds the daemon from the global options of a, the environment and the
 * configuration. 0, or an exit code after printing why. */
int ctl_open(struct ctl *c, const struct ctl_args *a);
void ctl_close(struct ctl *c);

/* One answer of the API. */
struct ctl_reply {
	long status;
	char *body;
	size_t len;
	cJSON *json;     /* the body parsed, or NULL */
	bool cancelled;  /* ended by ctl.cancel (the request failed) */
	char err[512];   /* why the daemon could not be reached */
	struct berth_http_response resp;
};

struct ctl_request {
	const char *method;     /* GET, POST, PUT */
	const char *path;       /* "/api/v1/queues?x=y" (already escaped) */
	const char *body;       /* JSON or NULL */
	bool no_auth;
	/* streamed 2xx body (logs): see berth_http_request.body_sink */
	bool (*sink)(void *ud, const char *data, size_t len);
	void *sink_ud;
	long timeout_ms;        /* 0: the connection's */
};

/* Sends a request. On a transport failure prints why and returns
 * CTL_EUNREACH; on an answer fills r (any status) and returns 0; the
 * body is parsed as JSON when it is JSON. quiet: print nothing. */
int ctl_send(struct ctl *c, const struct ctl_request *q, struct ctl_reply *r,
	     bool quiet);
void ctl_reply_fini(struct ctl_reply *r);
/* Prints the API error of a non-2xx answer ("berthctl: 404 ...: msg") and
 * returns CTL_EAPI. */
int ctl_api_error(const struct ctl *c, const struct ctl_reply *r);
/* GET/POST/PUT path and expect a 2xx JSON answer: 0 with r filled, or an
 * exit code after printing why (r is then empty). */
int ctl_call(struct ctl *c, const char *method, const char *path,
	     const char *body, struct ctl_reply *r);
/* Percent-escapes one path segment or query value. New string. */
char *ctl_escape(const char *s);
/* prefix, then seg percent-escaped, then suffix ("/api/v1/jobs/", ID,
 * "/log"). New string. */
char *ctl_path(const char *prefix, const char *seg, const char *suffix);
/* Prints r's body as it came (a trailing newline added) for --json. */
void ctl_print_raw(const struct ctl_reply *r);
/* ctl_call, then the answer shown: its body as it came under --json,
 * else human(r, ud) prints it. CTL_OK, or the exit code of the call. */
int ctl_show(struct ctl *c, const char *method, const char *path,
	     const char *body,
	     void (*human)(const struct ctl_reply *r, const void *ud),
	     const void *ud);

/* ---- output (out.c) ----------------------------------------------------- */

/* Text is built in common/gojson.h's struct gbuf (gbuf_put, gbuf_printf,
 * gbuf_free). */

/* A table of text cells; every cell is made terminal-safe (control
 * characters become '?', invalid UTF-8 too) and cut to its column's cap. */
struct table;
struct table *table_new(int ncols, const char *const *headers);
/* Caps column col at width characters (0: none). */
void table_cap(struct table *t, int col, int width);
void table_row(struct table *t, const char *const *cells);
int table_rows(const struct table *t);
/* Appends the table's lines to b, each cut to width characters (0: no
 * limit) and ended by "\n". */
void table_render(const struct table *t, struct gbuf *b, int width);
void table_print(const struct table *t, FILE *f);
/* Prints t on standard output when it has rows, else "berthctl: no
 * <none>" on standard error (nothing when none is NULL); frees t. */
void table_show(struct table *t, const char *none);
void table_free(struct table *t);

/* Terminal-safe copy of s (control characters and bad UTF-8 as '?'). */
char *out_safe(const char *s);
/* "2024-05-01 10:00:00" in local time; "-" for 0. */
const char *out_time(int64_t epoch, char buf[32]);
/* "4s", "3m12s", "2h05m", "3d04h"; "-" for a negative value. */
const char *out_age(int64_t seconds, char buf[32]);
/* A JSON value as compact text (new string); "" for NULL. */
char *out_json(const cJSON *v);
/* Scalar member key of o as text into buf ("" when absent). */
const char *out_field(const cJSON *o, const char *key, char *buf, size_t n);
/* "%lld" into buf. */
const char *out_int(long long v, char buf[32]);

/* ---- commands ----------------------------------------------------------- */

int cmd_submit(struct ctl *c, struct ctl_args *a);
int cmd_get(struct ctl *c, struct ctl_args *a);
int cmd_ls(struct ctl *c, struct ctl_args *a);
int cmd_stop(struct ctl *c, struct ctl_args *a);
int cmd_logs(struct ctl *c, struct ctl_args *a);
int cmd_executions(struct ctl *c, struct ctl_args *a);

int cmd_queues(struct ctl *c, struct ctl_args *a);
int cmd_queue_action(struct ctl *c, struct ctl_args *a);
int cmd_set_list(struct ctl *c, struct ctl_args *a);
int cmd_set_action(struct ctl *c, struct ctl_args *a);
int cmd_pools(struct ctl *c, struct ctl_args *a);
int cmd_workers(struct ctl *c, struct ctl_args *a);
int cmd_plugins(struct ctl *c, struct ctl_args *a);
int cmd_plugins_reload(struct ctl *c, struct ctl_args *a);
int cmd_stats(struct ctl *c, struct ctl_args *a);
int cmd_periodic(struct ctl *c, struct ctl_args *a);

/* Shared by cmd_ops.c and watch.c: the tables of GET /queues, /pools
 * and the busy workers of one pool's workers answer. */
struct table *ops_queues_table(const cJSON *doc);
struct table *ops_pools_table(const cJSON *doc);
struct table *ops_workers_table(bool with_pool);
void ops_workers_add(struct table *t, const cJSON *doc, bool busy_only,
		     bool with_pool);

int cmd_watch(struct ctl *c, struct ctl_args *a);

#endif

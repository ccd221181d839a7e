/* metrics.c - the recorded values and their Prometheus text rendering;
 * see metrics.h. The endpoint is in metrics_server.c.
 *
 * Recording. Plain numbers are atomics. Values with labels live in small
 * families (arrays searched linearly: label sets are job types, a few
 * dozen at most) under one process-wide mutex, held only to find a series
 * and bump it. A summary keeps the last MX_RING observations of a series
 * with their (monotonic) time; a scrape computes the quantiles over those
 * younger than 10 minutes, like client_golang's default MaxAge, and NaN
 * when there are none (as Go reports an empty window). */
#include "metrics/metrics.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/gojson.h"
#include "common/utf8.h"
#include "logs/log.h"

#define MX_LABEL_MAX 200
#define MX_MAX_SERIES 2048
#define MX_RING 1024
#define MX_SUMMARY_AGE_MS (10 * 60 * 1000)
#define MX_DEFAULT_NAMESPACE "harbor"
#define MX_DEFAULT_SUBSYSTEM "jobservice"

static const double mx_quantiles[] = {0.5, 0.9, 0.99};
static const char *const mx_reaper_actions[] = {
	"hdel", "error", "refire", "apply_ack", "retry_status",
};

/* --- recording ------------------------------------------------------------ */

struct mx_obs {
	int64_t at_ms;
	double v;
};

struct mx_series {
	char *l1;          /* first label value (type, action) */
	char *l2;          /* second (status), or NULL */
	uint64_t count;    /* counter value; summary count; jobs_running:
			    * the runs started */
	int64_t gauge;
	double sum;        /* summary */
	struct mx_obs *ring;
	size_t ring_len, ring_next;
};

struct mx_family {
	const char *what; /* for the overflow warning */
	struct mx_series *v;
	size_t n, cap;
	bool warned;
};

static pthread_mutex_t mx_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mx_family mx_tasks = {.what = "task"};
static struct mx_family mx_running = {.what = "jobs_running"};
static struct mx_family mx_retries = {.what = "job_retries"};
static struct mx_family mx_reaper = {.what = "reaper_actions"};

static atomic_uint_fast64_t mx_hooks_delivered;
static atomic_uint_fast64_t mx_hooks_failed;
static atomic_uint_fast64_t mx_hooks_dropped[METRICS_HOOK_DROP_N];
static atomic_int_fast64_t mx_hooks_pending;
static atomic_int mx_redis_up; /* 0 until the first connection */
static atomic_uint_fast64_t mx_redis_errors;
static atomic_uint_fast64_t mx_dead_trimmed;
static atomic_uint_fast64_t mx_jobs_submitted;

static char *
label_dup(const char *s)
{
	if (!s)
		s = "";
	size_t n = strnlen(s, MX_LABEL_MAX);
	return xstrndup(s, n);
}

static bool
label_eq(const char *stored, const char *s)
{
	if (!s)
		s = "";
	return strncmp(stored, s, MX_LABEL_MAX) == 0 &&
	       strlen(stored) == strnlen(s, MX_LABEL_MAX);
}

/* The series of (l1, l2), created when missing; NULL when the family is
 * full. Under mx_lock. */
static struct mx_series *
family_get(struct mx_family *f, const char *l1, const char *l2)
{
	for (size_t i = 0; i < f->n; i++) {
		struct mx_series *s = &f->v[i];
		if (label_eq(s->l1, l1) && (!s->l2 || label_eq(s->l2, l2)))
			return s;
	}
	if (f->n >= MX_MAX_SERIES) {
		if (!f->warned) {
			f->warned = true;
			log_warn("metrics: more than %d label sets for %s; "
				 "new ones are not recorded",
				 MX_MAX_SERIES, f->what);
		}
		return NULL;
	}
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->v = xrealloc(f->v, f->cap * sizeof(*f->v));
	}
	struct mx_series *s = &f->v[f->n++];
	memset(s, 0, sizeof(*s));
	s->l1 = label_dup(l1);
	s->l2 = l2 ? label_dup(l2) : NULL;
	return s;
}

void
metrics_task_done(const char *type, const char *status, double seconds)
{
	if (!(seconds >= 0) || isinf(seconds))
		seconds = 0;
	int64_t now = util_monotonic_ms();
	pthread_mutex_lock(&mx_lock);
	struct mx_series *s = family_get(&mx_tasks, type, status ? status
								  : "");
	if (s) {
		s->count++;
		s->sum += seconds;
		if (!s->ring)
			s->ring = xcalloc(MX_RING, sizeof(*s->ring));
		s->ring[s->ring_next] = (struct mx_obs){now, seconds};
		s->ring_next = (s->ring_next + 1) % MX_RING;
		if (s->ring_len < MX_RING)
			s->ring_len++;
	}
	pthread_mutex_unlock(&mx_lock);
}

void
metrics_task_done_since(const char *type, const char *status,
			int64_t started_ms)
{
	metrics_task_done(type, status,
			  (double)(util_monotonic_ms() - started_ms) / 1000.0);
}

void
metrics_job_running(const char *type, int delta)
{
	pthread_mutex_lock(&mx_lock);
	struct mx_series *s = family_get(&mx_running, type, NULL);
	if (s) {
		s->gauge += delta;
		if (delta > 0)
			s->count += (uint64_t)delta; /* runs started */
	}
	pthread_mutex_unlock(&mx_lock);
}

void
metrics_jobs_submitted(uint64_t n)
{
	atomic_fetch_add(&mx_jobs_submitted, n);
}

void
metrics_counts_read(struct metrics_counts *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&mx_lock);
	for (size_t i = 0; i < mx_tasks.n; i++) {
		const struct mx_series *s = &mx_tasks.v[i];
		if (strcmp(s->l2, "success") == 0)
			out->success += s->count;
		else if (strcmp(s->l2, "fail") == 0)
			out->error += s->count;
		else if (strcmp(s->l2, "stop") == 0)
			out->stopped += s->count;
	}
	for (size_t i = 0; i < mx_running.n; i++)
		out->started += mx_running.v[i].count;
	pthread_mutex_unlock(&mx_lock);
	out->submitted = (uint64_t)atomic_load(&mx_jobs_submitted);
}

void
metrics_job_retry(const char *type)
{
	pthread_mutex_lock(&mx_lock);
	struct mx_series *s = family_get(&mx_retries, type, NULL);
	if (s)
		s->count++;
	pthread_mutex_unlock(&mx_lock);
}

void
metrics_hook_delivered(void)
{
	atomic_fetch_add(&mx_hooks_delivered, 1);
}

void
metrics_hook_failed(void)
{
	atomic_fetch_add(&mx_hooks_failed, 1);
}

void
metrics_hook_dropped(enum metrics_hook_drop reason)
{
	if ((unsigned)reason < METRICS_HOOK_DROP_N)
		atomic_fetch_add(&mx_hooks_dropped[reason], 1);
}

void
metrics_hooks_pending(int64_t n)
{
	atomic_store(&mx_hooks_pending, n);
}

/* Under mx_lock: the reaper family with every known action at 0, so
 * dashboards see the series before the first action. */
static void
reaper_seed(void)
{
	for (size_t i = 0; i < ARRAY_LEN(mx_reaper_actions); i++)
		family_get(&mx_reaper, mx_reaper_actions[i], NULL);
}

void
metrics_reaper_action_add(const char *action, uint64_t n)
{
	if (n == 0)
		return;
	pthread_mutex_lock(&mx_lock);
	reaper_seed();
	struct mx_series *s = family_get(&mx_reaper, action, NULL);
	if (s)
		s->count += n;
	pthread_mutex_unlock(&mx_lock);
}

void
metrics_reaper_action(const char *action)
{
	metrics_reaper_action_add(action, 1);
}

void
metrics_redis_state(int up)
{
	atomic_store(&mx_redis_up, up ? 1 : 0);
}

void
metrics_dead_trimmed(uint64_t n)
{
	atomic_fetch_add(&mx_dead_trimmed, n);
}

void
metrics_redis_error(void)
{
	atomic_fetch_add(&mx_redis_errors, 1);
}

/* --- text building ------------------------------------------------------- */

/* Escapes for a label value (help = false) or HELP text (help = true:
 * only backslash and newline). */
static void
sb_escaped(struct gbuf *b, const char *s, bool help)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t n = utf8_len(p);
		if (n == 0) {
			gbuf_puts(b, "\xef\xbf\xbd");
			p++;
			continue;
		}
		if (*p == '\\')
			gbuf_puts(b, "\\\\");
		else if (*p == '\n')
			gbuf_puts(b, "\\n");
		else if (*p == '"' && !help)
			gbuf_puts(b, "\\\"");
		else
			gbuf_put(b, (const char *)p, n);
		p += n;
	}
}

char *
metrics_escape_label(const char *value)
{
	struct gbuf b = {0};
	gbuf_puts(&b, "");
	sb_escaped(&b, value ? value : "", false);
	return b.p;
}

/* Shortest text that reads back as v (Go's FormatFloat 'g', -1). */
static void
fmt_double(char *buf, size_t n, double v)
{
	if (isnan(v)) {
		snprintf(buf, n, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, n, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == 0) {
		snprintf(buf, n, "0");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

static void
sb_double(struct gbuf *b, double v)
{
	char buf[40];
	fmt_double(buf, sizeof(buf), v);
	gbuf_puts(b, buf);
}

static void
sb_family(struct gbuf *b, const char *prefix, const char *name,
	  const char *type, const char *help)
{
	gbuf_puts(b, "# HELP ");
	gbuf_puts(b, prefix);
	gbuf_puts(b, name);
	gbuf_puts(b, " ");
	sb_escaped(b, help, true);
	gbuf_puts(b, "\n# TYPE ");
	gbuf_puts(b, prefix);
	gbuf_puts(b, name);
	gbuf_puts(b, " ");
	gbuf_puts(b, type);
	gbuf_puts(b, "\n");
}

/* name{k1="v1",k2="v2"} - label pairs given in the order to print (the
 * callers pass them sorted by name, as client_golang prints them). */
static void
sb_sample_start(struct gbuf *b, const char *prefix, const char *name,
		const char *const *kv, size_t npairs)
{
	gbuf_puts(b, prefix);
	gbuf_puts(b, name);
	if (npairs == 0) {
		gbuf_puts(b, " ");
		return;
	}
	gbuf_puts(b, "{");
	for (size_t i = 0; i < npairs; i++) {
		if (i)
			gbuf_puts(b, ",");
		gbuf_puts(b, kv[2 * i]);
		gbuf_puts(b, "=\"");
		sb_escaped(b, kv[2 * i + 1], false);
		gbuf_puts(b, "\"");
	}
	gbuf_puts(b, "} ");
}

static void
sb_u64_line(struct gbuf *b, uint64_t v)
{
	gbuf_printf(b, "%" PRIu64 "\n", v);
}

static void
sb_i64_line(struct gbuf *b, int64_t v)
{
	gbuf_printf(b, "%" PRId64 "\n", v);
}

static void
sb_double_line(struct gbuf *b, double v)
{
	sb_double(b, v);
	gbuf_puts(b, "\n");
}

/* --- rendering ----------------------------------------------------------- */

static int
cmp_series(const void *a, const void *b)
{
	const struct mx_series *x = a, *y = b;
	int c = strcmp(x->l1, y->l1);
	if (c == 0 && x->l2 && y->l2)
		c = strcmp(x->l2, y->l2);
	return c;
}

/* Sorted copy of the family's array (the series themselves are shared:
 * read under mx_lock only). Under mx_lock. */
static struct mx_series *
family_sorted(const struct mx_family *f)
{
	struct mx_series *v = xmalloc((f->n ? f->n : 1) * sizeof(*v));
	if (f->n)
		memcpy(v, f->v, f->n * sizeof(*v));
	qsort(v, f->n, sizeof(*v), cmp_series);
	return v;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y ? 1 : 0;
}

/* Quantiles of the observations younger than MX_SUMMARY_AGE_MS (nearest
 * rank); NaN each when there are none. */
static void
summary_quantiles(const struct mx_series *s, int64_t now_ms, double *out)
{
	double *v = xmalloc((s->ring_len ? s->ring_len : 1) * sizeof(*v));
	size_t n = 0;
	for (size_t i = 0; i < s->ring_len; i++)
		if (now_ms - s->ring[i].at_ms <= MX_SUMMARY_AGE_MS)
			v[n++] = s->ring[i].v;
	qsort(v, n, sizeof(*v), cmp_double);
	for (size_t q = 0; q < ARRAY_LEN(mx_quantiles); q++) {
		if (n == 0) {
			out[q] = NAN;
			continue;
		}
		double rank = ceil(mx_quantiles[q] * (double)n);
		size_t idx = rank < 1 ? 0 : (size_t)rank - 1;
		if (idx >= n)
			idx = n - 1;
		out[q] = v[idx];
	}
	free(v);
}

static void
render_tasks(struct gbuf *b, const char *prefix, int64_t now_ms)
{
	if (mx_tasks.n == 0)
		return;
	struct mx_series *v = family_sorted(&mx_tasks);
	sb_family(b, prefix, "task_total", "counter",
		  "The number of processed tasks");
	for (size_t i = 0; i < mx_tasks.n; i++) {
		const char *kv[] = {"status", v[i].l2, "type", v[i].l1};
		sb_sample_start(b, prefix, "task_total", kv, 2);
		sb_u64_line(b, v[i].count);
	}
	sb_family(b, prefix, "task_process_time_seconds", "summary",
		  "The time duration of the task process time");
	for (size_t i = 0; i < mx_tasks.n; i++) {
		double q[ARRAY_LEN(mx_quantiles)];
		summary_quantiles(&v[i], now_ms, q);
		for (size_t k = 0; k < ARRAY_LEN(mx_quantiles); k++) {
			char qs[40];
			fmt_double(qs, sizeof(qs), mx_quantiles[k]);
			const char *kv[] = {"status", v[i].l2, "type", v[i].l1,
					    "quantile", qs};
			sb_sample_start(b, prefix,
					"task_process_time_seconds", kv, 3);
			sb_double_line(b, q[k]);
		}
		const char *kv[] = {"status", v[i].l2, "type", v[i].l1};
		sb_sample_start(b, prefix, "task_process_time_seconds_sum", kv,
				2);
		sb_double_line(b, v[i].sum);
		sb_sample_start(b, prefix, "task_process_time_seconds_count",
				kv, 2);
		sb_u64_line(b, v[i].count);
	}
	free(v);
}

/* A one-label family of counters (counter = true) or gauges. */
static void
render_family1(struct gbuf *b, const struct mx_family *f, const char *name,
	       const char *label, bool counter, const char *help)
{
	if (f->n == 0)
		return;
	struct mx_series *v = family_sorted(f);
	sb_family(b, "berth_", name, counter ? "counter" : "gauge", help);
	for (size_t i = 0; i < f->n; i++) {
		const char *kv[] = {label, v[i].l1};
		sb_sample_start(b, "berth_", name, kv, 1);
		if (counter)
			sb_u64_line(b, v[i].count);
		else
			sb_i64_line(b, v[i].gauge);
	}
	free(v);
}

static int
cmp_queue(const void *a, const void *b)
{
	const struct metrics_queue_stat *x = a, *y = b;
	return strcmp(x->type ? x->type : "", y->type ? y->type : "");
}

static void
render_queues(struct gbuf *b, const struct metrics_scrape *s)
{
	if (!s->queues || s->n_queues == 0)
		return;
	struct metrics_queue_stat *q = xmalloc(s->n_queues * sizeof(*q));
	memcpy(q, s->queues, s->n_queues * sizeof(*q));
	qsort(q, s->n_queues, sizeof(*q), cmp_queue);
	sb_family(b, "berth_", "queue_length", "gauge",
		  "Messages waiting in the queue of a job type");
	for (size_t i = 0; i < s->n_queues; i++) {
		const char *kv[] = {"type", q[i].type ? q[i].type : ""};
		sb_sample_start(b, "berth_", "queue_length", kv, 1);
		sb_i64_line(b, q[i].length);
	}
	sb_family(b, "berth_", "queue_latency_seconds", "gauge",
		  "Age of the oldest waiting message of a job type");
	for (size_t i = 0; i < s->n_queues; i++) {
		const char *kv[] = {"type", q[i].type ? q[i].type : ""};
		sb_sample_start(b, "berth_", "queue_latency_seconds", kv, 1);
		sb_double_line(b, q[i].latency_seconds);
	}
	free(q);
}

static void
render_plain(struct gbuf *b, const char *name, bool counter,
	     const char *help, int64_t v)
{
	sb_family(b, "berth_", name, counter ? "counter" : "gauge", help);
	sb_sample_start(b, "berth_", name, NULL, 0);
	sb_i64_line(b, v);
}

char *
metrics_render(const struct metrics_scrape *s)
{
	struct gbuf b = {0};
	const char *prefix = s->prefix ? s->prefix : "";
	gbuf_puts(&b, "");
	if (s->node && s->pool) {
		char workers[24];
		snprintf(workers, sizeof(workers), "%d", s->workers);
		sb_family(&b, prefix, "info", "gauge",
			  "the information of jobservice");
		const char *kv[] = {"node", s->node, "pool", s->pool,
				    "workers", workers};
		sb_sample_start(&b, prefix, "info", kv, 3);
		gbuf_puts(&b, "1\n");
	}
	int64_t now_ms = util_monotonic_ms();
	pthread_mutex_lock(&mx_lock);
	reaper_seed();
	render_tasks(&b, prefix, now_ms);
	pthread_mutex_unlock(&mx_lock);

	render_queues(&b, s);

	pthread_mutex_lock(&mx_lock);
	render_family1(&b, &mx_running, "jobs_running", "type", false,
		       "Jobs of a type running in this process");
	render_family1(&b, &mx_retries, "job_retries_total", "type", true,
		       "Failed runs of a type scheduled for a retry");
	pthread_mutex_unlock(&mx_lock);

	render_plain(&b, "hooks_delivered_total", true,
		     "Status hooks delivered (HTTP 200)",
		     (int64_t)atomic_load(&mx_hooks_delivered));
	render_plain(&b, "hooks_failed_total", true,
		     "Status hook attempts that failed",
		     (int64_t)atomic_load(&mx_hooks_failed));
	static const char *const drop_reasons[METRICS_HOOK_DROP_N] = {
		"retry_bound", "backlog", "expired"};
	sb_family(&b, "berth_", "hooks_dropped_total", "counter",
		  "Status hook events given up, by reason");
	for (int i = 0; i < METRICS_HOOK_DROP_N; i++) {
		const char *kv[] = {"reason", drop_reasons[i]};
		sb_sample_start(&b, "berth_", "hooks_dropped_total", kv, 1);
		sb_u64_line(&b, (uint64_t)atomic_load(&mx_hooks_dropped[i]));
	}
	render_plain(&b, "hooks_pending", false,
		     "Status hooks queued or waiting for a retry",
		     (int64_t)atomic_load(&mx_hooks_pending));

	pthread_mutex_lock(&mx_lock);
	render_family1(&b, &mx_reaper, "reaper_actions_total", "action", true,
		       "Repairs made by the reaper, by action");
	pthread_mutex_unlock(&mx_lock);

	if (s->has_dead)
		render_plain(&b, "dead_jobs", false,
			     "Given-up jobs kept in the dead set",
			     s->dead_jobs);
	render_plain(&b, "dead_trimmed_total", true,
		     "Dead-set members removed by its size and age bound",
		     (int64_t)atomic_load(&mx_dead_trimmed));

	render_plain(&b, "redis_up", false,
		     "1 when the last Redis connection event was a success",
		     atomic_load(&mx_redis_up));
	render_plain(&b, "redis_errors_total", true,
		     "Redis connection errors",
		     (int64_t)atomic_load(&mx_redis_errors));
	return b.p;
}

/* --- the name prefix ----------------------------------------------------- */

static bool
name_part_valid(const char *s)
{
	for (size_t i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = isalpha(c) || c == '_' || c == ':' ||
			  (i > 0 && isdigit(c));
		if (!ok || c >= 0x80)
			return false;
	}
	return true;
}

int
metrics_prefix_make(const char *ns, const char *sub, char **out,
		    struct berr *err)
{
	*out = NULL;
	if (!ns)
		ns = MX_DEFAULT_NAMESPACE;
	if (!sub)
		sub = MX_DEFAULT_SUBSYSTEM;
	if (!name_part_valid(ns))
		return berr_set(err, "berth.metrics.namespace "
				"(METRIC_NAMESPACE) \"%.100s\" is not a "
				"valid metric name part "
				"([a-zA-Z_:][a-zA-Z0-9_:]*)", ns);
	if (!name_part_valid(sub) || (!ns[0] && isdigit((unsigned char)sub[0])))
		return berr_set(err, "berth.metrics.subsystem "
				"(METRIC_SUBSYSTEM) \"%.100s\" is not a "
				"valid metric name part "
				"([a-zA-Z_:][a-zA-Z0-9_:]*)", sub);
	*out = xasprintf("%s%s%s%s", ns, ns[0] ? "_" : "", sub,
			 sub[0] ? "_" : "");
	return 0;
}

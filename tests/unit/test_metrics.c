/* test_metrics.c - the Prometheus exposition (host/metrics.c): exact lines
 * for known values, label escaping and UTF-8 repair, the name prefix from
 * the environment, counters bumped from 8 threads, a strict validator of
 * the whole text (checked itself against broken inputs first), and the
 * listener over real HTTP with queue lengths read from a real Redis. */
#include <arpa/inet.h>
#include <civetweb.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "metrics/metrics.h"
#include "store/redis_conn.h"
#include "redis_harness.h"
#include "testlib.h"
#include "common/util.h"

#define NS "{berth_test}"

/* ---- a strict validator of the text format 0.0.4 ------------------------ */

struct family {
	char name[256];
	char type[16];
	bool help, typed, closed;
};

struct validator {
	struct family fam[128];
	size_t nfam;
	char **series;
	size_t nseries, capseries;
	int current; /* family of the last sample, -1 none */
	char err[512];
};

static bool
valid_metric_name(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(isalpha(c) || c == '_' || c == ':' ||
		      (i > 0 && isdigit(c))) ||
		    c >= 0x80)
			return false;
	}
	return true;
}

static bool
valid_label_name(const char *s, size_t n)
{
	if (n == 0 || (n >= 2 && s[0] == '_' && s[1] == '_'))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(isalpha(c) || c == '_' || (i > 0 && isdigit(c))) ||
		    c >= 0x80)
			return false;
	}
	return true;
}

static bool
valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t n;
		unsigned cp;
		if (*p < 0x80) {
			p++;
			continue;
		} else if (*p >= 0xc2 && *p <= 0xdf) {
			n = 2;
			cp = *p & 0x1f;
		} else if (*p >= 0xe0 && *p <= 0xef) {
			n = 3;
			cp = *p & 0x0f;
		} else if (*p >= 0xf0 && *p <= 0xf4) {
			n = 4;
			cp = *p & 0x07;
		} else {
			return false;
		}
		for (size_t i = 1; i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n;
	}
	return true;
}

static bool
valid_value(const char *s)
{
	if (!strcmp(s, "NaN") || !strcmp(s, "+Inf") || !strcmp(s, "-Inf"))
		return true;
	if (!*s)
		return false;
	char *end;
	errno = 0;
	strtod(s, &end);
	return *end == '\0' && errno == 0 && !isalpha((unsigned char)s[0]);
}

__attribute__((format(printf, 2, 3))) static int
vfail(struct validator *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->err, sizeof(v->err), fmt, ap);
	va_end(ap);
	return -1;
}

static int
find_family(struct validator *v, const char *name, size_t n)
{
	for (size_t i = 0; i < v->nfam; i++)
		if (strlen(v->fam[i].name) == n &&
		    memcmp(v->fam[i].name, name, n) == 0)
			return (int)i;
	return -1;
}

static int
family_for_comment(struct validator *v, const char *name, size_t n)
{
	int f = find_family(v, name, n);
	if (f >= 0)
		return f;
	if (v->nfam == ARRAY_LEN(v->fam) || n >= sizeof(v->fam[0].name))
		return -1;
	f = (int)v->nfam++;
	memset(&v->fam[f], 0, sizeof(v->fam[f]));
	memcpy(v->fam[f].name, name, n);
	return f;
}

static bool
ends_with(const char *s, size_t n, const char *suffix, size_t *base)
{
	size_t k = strlen(suffix);
	if (n <= k || memcmp(s + n - k, suffix, k) != 0)
		return false;
	*base = n - k;
	return true;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One sample line. */
static int
check_sample(struct validator *v, const char *line)
{
	const char *p = line;
	size_t nlen = 0;
	while (p[nlen] && p[nlen] != '{' && p[nlen] != ' ')
		nlen++;
	if (!valid_metric_name(p, nlen))
		return vfail(v, "bad metric name in: %s", line);
	char *labels[32];
	size_t nl = 0;
	bool has_quantile = false;
	const char *q = p + nlen;
	int rc = 0;
	if (*q == '{') {
		q++;
		while (*q != '}') {
			size_t ln = 0;
			while (q[ln] && q[ln] != '=')
				ln++;
			if (!valid_label_name(q, ln) || q[ln] != '=' ||
			    q[ln + 1] != '"') {
				rc = vfail(v, "bad label in: %s", line);
				goto out;
			}
			for (size_t i = 0; i < nl; i++)
				if (strncmp(labels[i], q, ln) == 0 &&
				    labels[i][ln] == '=') {
					rc = vfail(v, "duplicate label: %s",
						   line);
					goto out;
				}
			if (ln == 8 && memcmp(q, "quantile", 8) == 0)
				has_quantile = true;
			const char *val = q + ln + 2;
			size_t k = 0;
			while (val[k] && val[k] != '"') {
				if (val[k] == '\\') {
					char e = val[k + 1];
					if (e != '\\' && e != '"' && e != 'n') {
						rc = vfail(v, "bad escape: %s",
							   line);
						goto out;
					}
					k += 2;
				} else if (val[k] == '\n') {
					rc = vfail(v, "raw newline: %s", line);
					goto out;
				} else {
					k++;
				}
			}
			if (val[k] != '"') {
				rc = vfail(v, "unterminated value: %s", line);
				goto out;
			}
			if (nl == ARRAY_LEN(labels)) {
				rc = vfail(v, "too many labels: %s", line);
				goto out;
			}
			labels[nl++] = xstrndup(q, (size_t)(val + k + 1 - q));
			q = val + k + 1;
			if (*q == ',') {
				q++;
				if (*q == '}')
					break; /* trailing comma is legal */
			} else if (*q != '}') {
				rc = vfail(v, "bad label separator: %s", line);
				goto out;
			}
		}
		q++;
	}
	if (*q != ' ') {
		rc = vfail(v, "no space before the value: %s", line);
		goto out;
	}
	q++;
	char value[64];
	size_t vl = strcspn(q, " ");
	if (vl == 0 || vl >= sizeof(value)) {
		rc = vfail(v, "bad value: %s", line);
		goto out;
	}
	memcpy(value, q, vl);
	value[vl] = '\0';
	if (!valid_value(value)) {
		rc = vfail(v, "bad value: %s", line);
		goto out;
	}
	if (q[vl] == ' ') { /* optional timestamp */
		char *end;
		strtoll(q + vl + 1, &end, 10);
		if (end == q + vl + 1 || *end) {
			rc = vfail(v, "bad timestamp: %s", line);
			goto out;
		}
	}
	/* which family: name itself, or a summary's _sum/_count */
	int f = find_family(v, p, nlen);
	size_t base;
	bool suffixed = false;
	if (f < 0 && (ends_with(p, nlen, "_sum", &base) ||
		      ends_with(p, nlen, "_count", &base))) {
		f = find_family(v, p, base);
		suffixed = f >= 0;
	}
	if (f < 0 || !v->fam[f].typed) {
		rc = vfail(v, "sample without a TYPE: %s", line);
		goto out;
	}
	struct family *fam = &v->fam[f];
	if (suffixed && strcmp(fam->type, "summary") != 0 &&
	    strcmp(fam->type, "histogram") != 0) {
		rc = vfail(v, "_sum/_count of a %s: %s", fam->type, line);
		goto out;
	}
	if (!strcmp(fam->type, "summary") && !suffixed && !has_quantile) {
		rc = vfail(v, "summary sample without quantile: %s", line);
		goto out;
	}
	if ((suffixed || strcmp(fam->type, "summary") != 0) && has_quantile) {
		rc = vfail(v, "unexpected quantile label: %s", line);
		goto out;
	}
	if (!strcmp(fam->type, "counter") &&
	    (value[0] == '-' || !strcmp(value, "NaN"))) {
		rc = vfail(v, "negative or NaN counter: %s", line);
		goto out;
	}
	if (fam->closed) {
		rc = vfail(v, "family %s continued after another one: %s",
			   fam->name, line);
		goto out;
	}
	if (v->current >= 0 && v->current != f)
		v->fam[v->current].closed = true;
	v->current = f;
	/* duplicate series: name + sorted labels */
	qsort(labels, nl, sizeof(char *), cmp_str);
	struct {
		char *p;
		size_t len, cap;
	} key = {0};
	key.p = xasprintf("%.*s", (int)nlen, p);
	for (size_t i = 0; i < nl; i++) {
		char *nk = xasprintf("%s|%s", key.p, labels[i]);
		free(key.p);
		key.p = nk;
	}
	for (size_t i = 0; i < v->nseries; i++)
		if (!strcmp(v->series[i], key.p)) {
			free(key.p);
			rc = vfail(v, "duplicate series: %s", line);
			goto out;
		}
	if (v->nseries == v->capseries) {
		v->capseries = v->capseries ? v->capseries * 2 : 64;
		v->series = xrealloc(v->series,
				     v->capseries * sizeof(char *));
	}
	v->series[v->nseries++] = key.p;
out:
	for (size_t i = 0; i < nl; i++)
		free(labels[i]);
	return rc;
}

static int
check_comment(struct validator *v, const char *line)
{
	bool help = strncmp(line, "# HELP ", 7) == 0;
	bool type = strncmp(line, "# TYPE ", 7) == 0;
	if (!help && !type)
		return vfail(v, "stray comment: %s", line);
	const char *name = line + 7;
	size_t n = strcspn(name, " ");
	if (!valid_metric_name(name, n) || name[n] != ' ')
		return vfail(v, "bad name in: %s", line);
	int f = family_for_comment(v, name, n);
	if (f < 0)
		return vfail(v, "too many families");
	struct family *fam = &v->fam[f];
	if (fam->closed || v->current == f)
		return vfail(v, "%s after samples of the family: %s",
			     help ? "HELP" : "TYPE", line);
	const char *rest = name + n + 1;
	if (help) {
		if (fam->help)
			return vfail(v, "second HELP: %s", line);
		for (const char *c = rest; *c; c++)
			if (*c == '\\' && c[1] != '\\' && c[1] != 'n')
				return vfail(v, "bad HELP escape: %s", line);
		fam->help = true;
		return 0;
	}
	if (fam->typed)
		return vfail(v, "second TYPE: %s", line);
	static const char *const types[] = {"counter", "gauge", "summary",
					    "histogram", "untyped"};
	for (size_t i = 0; i < ARRAY_LEN(types); i++)
		if (!strcmp(rest, types[i])) {
			snprintf(fam->type, sizeof(fam->type), "%s", rest);
			fam->typed = true;
			return 0;
		}
	return vfail(v, "bad TYPE: %s", line);
}

/* 0 when text is a valid exposition; else -1 with the reason in err. */
static int
validate(const char *text, char *err, size_t errlen)
{
	struct validator v;
	memset(&v, 0, sizeof(v));
	v.current = -1;
	int rc = 0;
	size_t len = strlen(text);
	if (!valid_utf8(text))
		rc = vfail(&v, "not UTF-8");
	else if (len > 0 && text[len - 1] != '\n')
		rc = vfail(&v, "no final newline");
	char *copy = xstrdup(text);
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line && rc == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#')
			rc = check_comment(&v, line);
		else
			rc = check_sample(&v, line);
	}
	free(copy);
	for (size_t i = 0; i < v.nseries; i++)
		free(v.series[i]);
	free(v.series);
	snprintf(err, errlen, "%s", v.err);
	return rc;
}

static bool
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

#define CHECK_LINE(text, line)                                               \
	CHECK_MSG(has_line((text), (line)), "missing line: %s", (line))

static void
test_validator_itself(void)
{
	char err[512];
	static const char good[] =
		"# HELP a_total x\n# TYPE a_total counter\n"
		"a_total{k=\"v\\\"\\\\\\n\"} 1\n"
		"# TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum 0\n"
		"s_count 0\n";
	CHECK_MSG(validate(good, err, sizeof(err)) == 0, "%s", err);
	static const char *const bad[] = {
		"a 1\n",                                      /* no TYPE */
		"# TYPE a gauge\na 1\na 2\n",                 /* duplicate */
		"# TYPE a gauge\na{b=\"1\",b=\"2\"} 1\n",     /* dup label */
		"# TYPE a gauge\na{b=\"\\x\"} 1\n",           /* escape */
		"# TYPE a gauge\na{1b=\"x\"} 1\n",            /* label name */
		"# TYPE a gauge\na x\n",                      /* value */
		"# TYPE a gauge\na 1",                        /* final \n */
		"# TYPE a gauge\n# TYPE a gauge\na 1\n",      /* two TYPEs */
		"# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 1\n",
		"# TYPE a gauge\na 1\n# HELP a late\n",       /* HELP late */
		"# TYPE a counter\na -1\n",                   /* negative */
		"# TYPE a summary\na 1\n",                    /* no quantile */
		"# TYPE a gauge\na_sum 1\n",                  /* _sum */
		"# TYPE a gauge\na{b=\"\xff\"} 1\n",          /* UTF-8 */
		"# TYPE 1a gauge\n",                          /* name */
		"# something\n",                              /* comment */
		"# TYPE a gauge\na{b=\"x\"}1\n",              /* space */
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		CHECK_MSG(validate(bad[i], err, sizeof(err)) < 0,
			  "validator accepted bad input %zu", i);
}

/* ---- rendering ---------------------------------------------------------- */

static void
test_render_known_values(void)
{
	metrics_task_done("NOOP", "success", 0.25);
	metrics_task_done("NOOP", "success", 0.5);
	metrics_task_done("NOOP", "success", 0.75);
	metrics_task_done("NOOP", "fail", 2);
	metrics_task_done("SLEEPER", "stop", -1); /* clamped to 0 */
	metrics_job_running("NOOP", 1);
	metrics_job_running("NOOP", 1);
	metrics_job_running("NOOP", -1);
	metrics_job_retry("FLAKY");
	metrics_job_retry("FLAKY");
	metrics_hook_delivered();
	metrics_hook_delivered();
	metrics_hook_failed();
	metrics_hooks_pending(5);
	metrics_reaper_action("hdel");
	metrics_reaper_action("hdel");
	metrics_reaper_action_add("retry_status", 3);
	metrics_reaper_action_add("refire", 0);
	metrics_redis_state(1);
	metrics_redis_error();

	struct metrics_queue_stat q[] = {
		{"NOOP", 3, 12.5},
		{"Q\"x\\y\nz", 0, 0},
		{"A", 1, 0.001},
	};
	struct metrics_scrape sc = {
		.prefix = "harbor_jobservice_",
		.node = "host-1:10.0.0.7",
		.pool = "0123456789abcdef01234567",
		.workers = 4,
		.queues = q,
		.n_queues = ARRAY_LEN(q),
	};
	char *t = metrics_render(&sc);
	CHECK_LINE(t, "# HELP harbor_jobservice_info the information of "
		      "jobservice");
	CHECK_LINE(t, "# TYPE harbor_jobservice_info gauge");
	CHECK_LINE(t, "harbor_jobservice_info{node=\"host-1:10.0.0.7\","
		      "pool=\"0123456789abcdef01234567\",workers=\"4\"} 1");
	CHECK_LINE(t, "# TYPE harbor_jobservice_task_total counter");
	CHECK_LINE(t, "harbor_jobservice_task_total{status=\"success\","
		      "type=\"NOOP\"} 3");
	CHECK_LINE(t, "harbor_jobservice_task_total{status=\"fail\","
		      "type=\"NOOP\"} 1");
	CHECK_LINE(t, "harbor_jobservice_task_total{status=\"stop\","
		      "type=\"SLEEPER\"} 1");
	CHECK_LINE(t, "# TYPE harbor_jobservice_task_process_time_seconds "
		      "summary");
	CHECK_LINE(t, "harbor_jobservice_task_process_time_seconds{status="
		      "\"success\",type=\"NOOP\",quantile=\"0.5\"} 0.5");
	CHECK_LINE(t, "harbor_jobservice_task_process_time_seconds{status="
		      "\"success\",type=\"NOOP\",quantile=\"0.9\"} 0.75");
	CHECK_LINE(t, "harbor_jobservice_task_process_time_seconds{status="
		      "\"success\",type=\"NOOP\",quantile=\"0.99\"} 0.75");
	CHECK_LINE(t, "harbor_jobservice_task_process_time_seconds_sum{"
		      "status=\"success\",type=\"NOOP\"} 1.5");
	CHECK_LINE(t, "harbor_jobservice_task_process_time_seconds_count{"
		      "status=\"success\",type=\"NOOP\"} 3");
	CHECK_LINE(t, "harbor_jobservice_task_process_time_seconds_sum{"
		      "status=\"fail\",type=\"NOOP\"} 2");
	CHECK_LINE(t, "harbor_jobservice_task_process_time_seconds_sum{"
		      "status=\"stop\",type=\"SLEEPER\"} 0");
	CHECK_LINE(t, "# TYPE berth_queue_length gauge");
	CHECK_LINE(t, "berth_queue_length{type=\"NOOP\"} 3");
	CHECK_LINE(t, "berth_queue_length{type=\"A\"} 1");
	CHECK_LINE(t, "berth_queue_length{type=\"Q\\\"x\\\\y\\nz\"} 0");
	CHECK_LINE(t, "berth_queue_latency_seconds{type=\"NOOP\"} 12.5");
	CHECK_LINE(t, "berth_queue_latency_seconds{type=\"A\"} 0.001");
	CHECK_LINE(t, "berth_jobs_running{type=\"NOOP\"} 1");
	CHECK_LINE(t, "# TYPE berth_job_retries_total counter");
	CHECK_LINE(t, "berth_job_retries_total{type=\"FLAKY\"} 2");
	CHECK_LINE(t, "berth_hooks_delivered_total 2");
	CHECK_LINE(t, "berth_hooks_failed_total 1");
	CHECK_LINE(t, "berth_hooks_dropped_total{reason=\"retry_bound\"} 0");
	CHECK_LINE(t, "berth_hooks_dropped_total{reason=\"backlog\"} 0");
	CHECK_LINE(t, "berth_hooks_dropped_total{reason=\"expired\"} 0");
	CHECK_LINE(t, "# TYPE berth_hooks_pending gauge");
	CHECK_LINE(t, "berth_hooks_pending 5");
	CHECK_LINE(t, "# TYPE berth_reaper_actions_total counter");
	CHECK_LINE(t, "berth_reaper_actions_total{action=\"hdel\"} 2");
	CHECK_LINE(t, "berth_reaper_actions_total{action=\"retry_status\"} 3");
	CHECK_LINE(t, "berth_reaper_actions_total{action=\"refire\"} 0");
	CHECK_LINE(t, "berth_reaper_actions_total{action=\"error\"} 0");
	CHECK_LINE(t, "berth_reaper_actions_total{action=\"apply_ack\"} 0");
	CHECK_LINE(t, "berth_redis_up 1");
	CHECK_LINE(t, "berth_redis_errors_total 1");
	/* sorted label sets: A before NOOP */
	CHECK(strstr(t, "berth_queue_length{type=\"A\"}") <
	      strstr(t, "berth_queue_length{type=\"NOOP\"}"));
	char err[512];
	CHECK_MSG(validate(t, err, sizeof(err)) == 0, "%s\n%s", err, t);
	free(t);

	/* no node/pool, no queues: those families are left out */
	struct metrics_scrape bare = {.prefix = ""};
	t = metrics_render(&bare);
	CHECK(strstr(t, "info") == NULL);
	CHECK(strstr(t, "queue_length") == NULL);
	CHECK_LINE(t, "task_total{status=\"success\",type=\"NOOP\"} 3");
	CHECK_MSG(validate(t, err, sizeof(err)) == 0, "%s\n%s", err, t);
	free(t);

	metrics_redis_state(0);
	t = metrics_render(&bare);
	CHECK_LINE(t, "berth_redis_up 0");
	free(t);
}

static void
test_escaping(void)
{
	char *s = metrics_escape_label("a\"b\\c\nd");
	CHECK_STR(s, "a\\\"b\\\\c\\nd");
	free(s);
	s = metrics_escape_label("caf\xc3\xa9 \xe2\x82\xac");
	CHECK_STR(s, "caf\xc3\xa9 \xe2\x82\xac");
	free(s);
	/* invalid bytes, an overlong form, a surrogate: U+FFFD each */
	s = metrics_escape_label("x\xffy\xc0\xafz\xed\xa0\x80");
	CHECK_STR(s, "x\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbdz"
		     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	free(s);
	s = metrics_escape_label(NULL);
	CHECK_STR(s, "");
	free(s);

	/* a job type with everything at once still validates */
	metrics_job_retry("we\"ird\\\n\xfftype");
	metrics_job_retry("x{y=\"1\"} 5\n# TYPE");
	struct metrics_scrape sc = {.prefix = "p_"};
	char *t = metrics_render(&sc);
	CHECK_LINE(t, "berth_job_retries_total{type=\"we\\\"ird\\\\\\n"
		      "\xef\xbf\xbdtype\"} 1");
	CHECK_LINE(t, "berth_job_retries_total{type=\"x{y=\\\"1\\\"} 5\\n"
		      "# TYPE\"} 1");
	char err[512];
	CHECK_MSG(validate(t, err, sizeof(err)) == 0, "%s\n%s", err, t);
	free(t);

	/* long label values are cut at 200 bytes (and still one series) */
	char longname[400];
	memset(longname, 'L', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	metrics_job_retry(longname);
	metrics_job_retry(longname);
	t = metrics_render(&sc);
	char want[300];
	snprintf(want, sizeof(want),
		 "berth_job_retries_total{type=\"%.200s\"} 2", longname);
	CHECK_LINE(t, want);
	free(t);
}

static void
test_prefix(void)
{
	struct berr e;
	char *p = NULL;
	/* unset parts (NULL) are the installer's values */
	CHECK(metrics_prefix_make(NULL, NULL, &p, &e) == 0);
	CHECK_STR(p, "harbor_jobservice_");
	free(p);
	CHECK(metrics_prefix_make("", NULL, &p, &e) == 0);
	CHECK_STR(p, "jobservice_");
	free(p);
	CHECK(metrics_prefix_make("", "", &p, &e) == 0);
	CHECK_STR(p, "");
	free(p);
	CHECK(metrics_prefix_make("acme", "js2", &p, &e) == 0);
	CHECK_STR(p, "acme_js2_");
	free(p);
	berr_clear(&e);
	CHECK(metrics_prefix_make("a-b", "js2", &p, &e) < 0);
	CHECK(p == NULL);
	CHECK_CONTAINS(e.msg, "METRIC_NAMESPACE");
	berr_clear(&e);
	CHECK(metrics_prefix_make("", "9x", &p, &e) < 0);
	CHECK_CONTAINS(e.msg, "METRIC_SUBSYSTEM");
}

/* ---- threads ------------------------------------------------------------ */

#define THREADS 8
#define PER_THREAD 2000

static void *
bump(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		metrics_task_done("PAR", i % 2 ? "success" : "fail", 0.001);
		metrics_job_running("PAR", 1);
		metrics_job_running("PAR", -1);
		metrics_job_retry("PAR");
		metrics_hook_failed();
		metrics_reaper_action("refire");
	}
	return NULL;
}

static void
test_threads(void)
{
	struct metrics_scrape sc = {.prefix = "harbor_jobservice_"};
	char *before = metrics_render(&sc);
	unsigned long long failed0 = 0;
	const char *f = strstr(before, "\nberth_hooks_failed_total ");
	if (f)
		failed0 = strtoull(f + 26, NULL, 10);
	free(before);

	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, bump, NULL);
	/* scrape while they run */
	for (int i = 0; i < 20; i++) {
		char *t = metrics_render(&sc);
		char err[512];
		CHECK_MSG(validate(t, err, sizeof(err)) == 0, "%s", err);
		free(t);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	char *t = metrics_render(&sc);
	char want[200];
	snprintf(want, sizeof(want),
		 "harbor_jobservice_task_total{status=\"success\",type=\"PAR\"}"
		 " %d", THREADS * PER_THREAD / 2);
	CHECK_LINE(t, want);
	snprintf(want, sizeof(want),
		 "harbor_jobservice_task_process_time_seconds_count{status="
		 "\"fail\",type=\"PAR\"} %d", THREADS * PER_THREAD / 2);
	CHECK_LINE(t, want);
	/* the ring keeps the last 1024 observations, all 0.001 */
	CHECK_LINE(t, "harbor_jobservice_task_process_time_seconds{status="
		      "\"fail\",type=\"PAR\",quantile=\"0.99\"} 0.001");
	CHECK_LINE(t, "berth_jobs_running{type=\"PAR\"} 0");
	snprintf(want, sizeof(want), "berth_job_retries_total{type=\"PAR\"} %d",
		 THREADS * PER_THREAD);
	CHECK_LINE(t, want);
	snprintf(want, sizeof(want), "berth_hooks_failed_total %llu",
		 failed0 + THREADS * PER_THREAD);
	CHECK_LINE(t, want);
	snprintf(want, sizeof(want),
		 "berth_reaper_actions_total{action=\"refire\"} %d",
		 THREADS * PER_THREAD);
	CHECK_LINE(t, want);
	free(t);
}

/* ---- the listener ------------------------------------------------------- */

/* One HTTP/1.0 exchange; returns the whole response (new string). */
static char *
http(int port, const char *method, const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (fd >= 0)
			close(fd);
		return xstrdup("");
	}
	char *req = xasprintf("%s %s HTTP/1.0\r\nHost: x\r\n\r\n", method,
			      path);
	if (write(fd, req, strlen(req)) < 0)
		fprintf(stderr, "write: %s\n", strerror(errno));
	free(req);
	size_t cap = 65536, len = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (len + 4096 > cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	return buf;
}

static void
test_server(struct test_redis *tr)
{
	struct redis_pool *p = test_redis_pool(tr, 2000);
	char old_msg[128], new_msg[128];
	long long now = (long long)util_now();
	snprintf(old_msg, sizeof(old_msg),
		 "{\"name\":\"A\",\"id\":\"1\",\"t\":%lld,\"args\":null}",
		 now - 100);
	snprintf(new_msg, sizeof(new_msg),
		 "{\"name\":\"A\",\"id\":\"2\",\"t\":%lld,\"args\":null}", now);
	test_redis_do(p, "SADD", NS ":known_jobs", "A", "B", NULL);
	test_redis_do(p, "LPUSH", NS ":jobs:A", old_msg, NULL);
	test_redis_do(p, "LPUSH", NS ":jobs:A", new_msg, NULL);

	struct berth_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.metric_enabled = false;
	cfg.metric_path = "/metrics";
	cfg.metric_port = 9;
	cfg.listen_address = "127.0.0.1";
	cfg.workers = 3;
	struct berr e;
	berr_set(&e, "stale");
	CHECK(metrics_server_start(&cfg, p, NS, NULL, "pool1", &e) == NULL);
	CHECK_STR(e.msg, ""); /* disabled: no error */

	cfg.metric_enabled = true;
	cfg.metric_namespace = (char *)"a-b";
	CHECK(metrics_server_start(&cfg, p, NS, NULL, "pool1", &e) == NULL);
	CHECK_CONTAINS(e.msg, "METRIC_NAMESPACE");
	cfg.metric_namespace = NULL;

	char dir[] = "/tmp/berth-metrics-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char *port_file = xasprintf("%s/port", dir);
	cfg.metric_port = 0; /* BERTH_METRICS_PORT=0 */
	cfg.metrics_port_file = port_file;
	cfg.metric_path = "stats/prom"; /* a missing '/' is added */
	struct metrics_server *s =
		metrics_server_start(&cfg, p, NS, NULL, "pool1", &e);
	CHECK_MSG(s != NULL, "%s", e.msg);
	if (!s)
		goto out;
	int port = metrics_server_port(s);
	CHECK(port > 0);
	char *pf = NULL;
	size_t pl = 0;
	CHECK(util_read_file(port_file, 100, &pf, &pl, &e) == 0);
	if (pf)
		CHECK(atoi(pf) == port);
	free(pf);

	char *r = http(port, "GET", "/stats/prom");
	CHECK_CONTAINS(r, "HTTP/1.1 200");
	CHECK_CONTAINS(r, "Content-Type: text/plain; version=0.0.4; "
			  "charset=utf-8");
	char *body = strstr(r, "\r\n\r\n");
	CHECK(body != NULL);
	if (body) {
		body += 4;
		char err[512];
		CHECK_MSG(validate(body, err, sizeof(err)) == 0, "%s\n%s", err,
			  body);
		CHECK_LINE(body, "berth_queue_length{type=\"A\"} 2");
		CHECK_LINE(body, "berth_queue_length{type=\"B\"} 0");
		CHECK_LINE(body, "berth_queue_latency_seconds{type=\"B\"} 0");
		static const char lat_name[] =
			"berth_queue_latency_seconds{type=\"A\"} ";
		const char *lat = strstr(body, lat_name);
		CHECK(lat != NULL);
		if (lat) {
			double v = strtod(lat + strlen(lat_name), NULL);
			CHECK_MSG(v >= 99 && v < 200, "latency %g", v);
		}
		CHECK_CONTAINS(body, "harbor_jobservice_info{node=\"");
		CHECK_CONTAINS(body, "\",pool=\"pool1\",workers=\"3\"} 1\n");
		CHECK_LINE(body, "berth_redis_up 1");
	}
	free(r);

	r = http(port, "HEAD", "/stats/prom");
	CHECK_CONTAINS(r, "HTTP/1.1 200");
	CHECK(strstr(r, "berth_redis_up") == NULL);
	free(r);
	r = http(port, "GET", "/metrics");
	CHECK_CONTAINS(r, "HTTP/1.1 404");
	free(r);
	r = http(port, "GET", "/stats/prom/x");
	CHECK_CONTAINS(r, "HTTP/1.1 404");
	free(r);
	r = http(port, "POST", "/stats/prom");
	CHECK_CONTAINS(r, "HTTP/1.1 405");
	CHECK_CONTAINS(r, "Allow: GET, HEAD");
	free(r);

	/* Redis gone: the scrape still answers, without queue families */
	test_redis_kill9(tr);
	r = http(port, "GET", "/stats/prom");
	CHECK_CONTAINS(r, "HTTP/1.1 200");
	CHECK(strstr(r, "berth_queue_length") == NULL);
	CHECK_CONTAINS(r, "\nberth_redis_up 0\n");
	body = strstr(r, "\r\n\r\n");
	if (body) {
		char err[512];
		CHECK_MSG(validate(body + 4, err, sizeof(err)) == 0, "%s",
			  err);
	}
	free(r);
	test_redis_restart(tr);
	r = http(port, "GET", "/stats/prom");
	CHECK_CONTAINS(r, "\nberth_redis_up 1\n");
	free(r);

	/* a second listener on the same port is refused with a message */
	cfg.metric_port = port;
	cfg.metrics_port_file = NULL;
	berr_clear(&e);
	CHECK(metrics_server_start(&cfg, p, NS, NULL, "pool1", &e) == NULL);
	CHECK_CONTAINS(e.msg, "cannot listen");
	metrics_server_stop(s);
out:
	unlink(port_file);
	rmdir(dir);
	free(port_file);
	redis_pool_free(p);
}

int
main(void)
{
	test_validator_itself();
	test_render_known_values();
	test_escaping();
	test_prefix();
	test_threads();
	mg_init_library(0);
	struct test_redis tr;
	if (test_redis_start(&tr) < 0)
		return 1;
	test_server(&tr);
	test_redis_stop(&tr);
	mg_exit_library();
	TEST_DONE();
}

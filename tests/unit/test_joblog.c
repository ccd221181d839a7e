/* test_joblog.c - job loggers (joblog.h) without Redis or HTTP: the FILE
 * logger's line format, append and run separators, level filtering per
 * back-end, the STD_OUTPUT logger (stdout/stderr redirected into files),
 * writes by job id from other threads, open failures, the log-id check of
 * the log API, tail reads with limits, opening a log for reading (symlinks
 * out of base_dir refused), check-in truncation, and the sweeper (one
 * sweep with mtimes set by utimensat, and the sweeper thread with
 * berth.log_sweep_interval_seconds). Everything lives in a mkdtemp
 * directory. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "logs/joblog.h"
#include "logs/log.h"
#include "redis_harness.h"
#include "testlib.h"

#define ID1 "0123456789abcdef01234567"
#define ID2 "89abcdef0123456789abcdef"
#define DAY 86400

static char tmp[200];
static char service_log[300];

/* --- helpers ------------------------------------------------------------- */

static char *
path_in(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static char *
slurp(const char *path)
{
	char *text = NULL;
	size_t len = 0;
	struct berr err;
	berr_clear(&err);
	if (util_read_file(path, 64 << 20, &text, &len, &err) < 0)
		return NULL;
	return text;
}

static bool
exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		return;
	}
	fputs(text, f);
	fclose(f);
}

/* Sets atime and mtime of path (not following a symlink) to now - age. */
static int
age_path(const char *path, int64_t age)
{
	struct timespec ts[2];
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= (time_t)age;
	ts[1] = ts[0];
	return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

static size_t
count_of(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; p && (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* True when line (without its '\n') matches the POSIX ERE. */
static bool
line_matches(const char *line, const char *ere)
{
	regex_t re;
	if (regcomp(&re, ere, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	bool ok = regexec(&re, line, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

/* The n-th line (0-based) of text, in buf. */
static const char *
nth_line(const char *text, int n, char *buf, size_t len)
{
	const char *p = text;
	for (int i = 0; i < n && p; i++) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	if (!p || !*p)
		return "";
	const char *e = strchr(p, '\n');
	size_t l = e ? (size_t)(e - p) : strlen(p);
	if (l >= len)
		l = len - 1;
	memcpy(buf, p, l);
	buf[l] = '\0';
	return buf;
}

static struct logger_config
file_logger(const char *dir, int level)
{
	struct logger_config l;
	memset(&l, 0, sizeof(l));
	l.name = (char *)"FILE";
	l.level = level;
	l.base_dir = (char *)dir;
	return l;
}

static struct logger_config
std_logger(const char *output, int level)
{
	struct logger_config l;
	memset(&l, 0, sizeof(l));
	l.name = (char *)"STD_OUTPUT";
	l.level = level;
	l.output = (char *)output;
	return l;
}

static void
config_with(struct berth_config *cfg, struct logger_config *jobs, size_t n)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->job_loggers = jobs;
	cfg->n_job_loggers = n;
}

#define TS_RE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z "

/* --- FILE logger --------------------------------------------------------- */

static void
test_file_format_append(void)
{
	char *dir = path_in(tmp, "fmt/jobs"); /* missing: created 0700 */
	struct logger_config l = file_logger(dir, BLOG_DEBUG);
	struct berth_config cfg;
	config_with(&cfg, &l, 1);
	struct joblog *jl = joblog_new(&cfg);
	struct stat st;
	CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
	      (st.st_mode & 0777) == 0700);
	CHECK(joblog_retrievable(jl));
	CHECK(joblog_min_level(jl) == BLOG_DEBUG);

	struct berr err;
	berr_clear(&err);
	struct joblog_run *r = joblog_run_open(jl, ID1, 111, &err);
	CHECK_MSG(r != NULL, "%s", err.msg);
	CHECK(joblog_run_active(jl, ID1));
	CHECK(!joblog_run_active(jl, ID2));
	joblog_run_write(r, BLOG_INFO, "DEMO", 0, "hello %d", 1);
	joblog_run_write(r, BLOG_WARNING, "/src/host/worker.c", 42,
			 "host line");
	joblog_run_write(r, BLOG_FATAL, "DEMO", 0, "fatal but alive");
	joblog_run_write(r, BLOG_DEBUG, "DEMO", 0, "two\nlines");
	joblog_run_close(r);
	CHECK(!joblog_run_active(jl, ID1));

	char *path = path_in(dir, ID1 ".log");
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	char *text = slurp(path);
	char b[512];
	CHECK_STR(nth_line(text, 0, b, sizeof(b)),
		  "==== run revision 111 ====");
	CHECK_MSG(line_matches(nth_line(text, 1, b, sizeof(b)),
			       TS_RE "\\[INFO\\] \\[DEMO\\]: hello 1$"),
		  "%s", b);
	CHECK_MSG(line_matches(nth_line(text, 2, b, sizeof(b)),
			       TS_RE "\\[WARNING\\] \\[worker\\.c:42\\]: "
				     "host line$"),
		  "%s", b);
	CHECK_MSG(line_matches(nth_line(text, 3, b, sizeof(b)),
			       TS_RE "\\[FATAL\\] \\[DEMO\\]: fatal but "
				     "alive$"),
		  "%s", b);
	CHECK_MSG(line_matches(nth_line(text, 4, b, sizeof(b)),
			       TS_RE "\\[DEBUG\\] \\[DEMO\\]: two lines$"),
		  "%s", b);
	CHECK_STR(nth_line(text, 5, b, sizeof(b)), "");
	free(text);

	/* a second run appends after a new separator (Q11 fixed) */
	r = joblog_run_open(jl, ID1, 222, &err);
	CHECK_MSG(r != NULL, "%s", err.msg);
	joblog_run_write(r, BLOG_INFO, "DEMO", 0, "second run");
	joblog_run_close(r);
	text = slurp(path);
	CHECK(count_of(text, "==== run revision") == 2);
	CHECK_CONTAINS(text, "hello 1\n");
	CHECK_STR(nth_line(text, 5, b, sizeof(b)),
		  "==== run revision 222 ====");
	CHECK_CONTAINS(nth_line(text, 6, b, sizeof(b)), "[DEMO]: second run");
	free(text);

	/* an execution id keeps its @epoch in the file name */
	r = joblog_run_open(jl, ID1 "@1700003600", 5, &err);
	CHECK_MSG(r != NULL, "%s", err.msg);
	joblog_run_close(r);
	char *exec_path = path_in(dir, ID1 "@1700003600.log");
	CHECK(exists(exec_path));
	free(exec_path);

	joblog_free(jl);
	free(path);
	free(dir);
}

static void
test_levels(void)
{
	char *a = path_in(tmp, "lv-a"), *b = path_in(tmp, "lv-b");
	struct logger_config l[2] = {file_logger(a, BLOG_WARNING),
				     file_logger(b, BLOG_DEBUG)};
	struct berth_config cfg;
	config_with(&cfg, l, 2);
	struct joblog *jl = joblog_new(&cfg);
	CHECK(joblog_min_level(jl) == BLOG_DEBUG);
	struct berr err;
	berr_clear(&err);
	struct joblog_run *r = joblog_run_open(jl, ID2, 1, &err);
	CHECK_MSG(r != NULL, "%s", err.msg);
	joblog_run_write(r, BLOG_DEBUG, "T", 0, "debug line");
	joblog_run_write(r, BLOG_INFO, "T", 0, "info line");
	joblog_run_write(r, BLOG_WARNING, "T", 0, "warning line");
	joblog_run_write(r, BLOG_ERROR, "T", 0, "error line");
	joblog_run_close(r);
	char *pa = path_in(a, ID2 ".log"), *pb = path_in(b, ID2 ".log");
	char *ta = slurp(pa), *tb = slurp(pb);
	CHECK(ta && !strstr(ta, "debug line") && !strstr(ta, "info line"));
	CHECK_CONTAINS(ta, "[WARNING] [T]: warning line");
	CHECK_CONTAINS(ta, "[ERROR] [T]: error line");
	CHECK_CONTAINS(tb, "[DEBUG] [T]: debug line");
	CHECK_CONTAINS(tb, "[INFO] [T]: info line");
	CHECK_CONTAINS(tb, "[ERROR] [T]: error line");
	/* the separator is written whatever the level */
	CHECK_CONTAINS(ta, "==== run revision 1 ====");
	free(ta);
	free(tb);
	free(pa);
	free(pb);
	joblog_free(jl);

	/* one logger at ERROR: nothing below is even formatted */
	struct logger_config e = file_logger(a, BLOG_ERROR);
	config_with(&cfg, &e, 1);
	jl = joblog_new(&cfg);
	CHECK(joblog_min_level(jl) == BLOG_ERROR);
	joblog_free(jl);
	free(a);
	free(b);
}

/* Only DB: ignored with a warning; lines fall back to the service log. */
static void
test_db_only_falls_back(void)
{
	struct logger_config db;
	memset(&db, 0, sizeof(db));
	db.name = (char *)"DB";
	db.level = BLOG_INFO;
	db.has_sweeper = true;
	db.sweeper_duration = 1;
	struct berth_config cfg;
	config_with(&cfg, &db, 1);
	struct joblog *jl = joblog_new(&cfg);
	CHECK(!joblog_retrievable(jl));
	CHECK(joblog_min_level(jl) == blog_min_level);
	struct berr err;
	berr_clear(&err);
	struct joblog_run *r = joblog_run_open(jl, ID1, 1, &err);
	CHECK_MSG(r != NULL, "%s", err.msg);
	joblog_run_write(r, BLOG_INFO, "DEMO", 0, "to the service log");
	joblog_run_close(r);
	int fd = -1;
	CHECK(joblog_open_log(jl, ID1, &fd, &err) < 0);
	CHECK_CONTAINS(err.msg, "no log data getter is configured");
	joblog_free(jl);
	char *text = slurp(service_log);
	CHECK_CONTAINS(text, "job logger DB is not supported");
	CHECK_CONTAINS(text, "the DB sweeper is not supported");
	CHECK_CONTAINS(text, "[job " ID1 "] to the service log");
	free(text);
}

/* --- STD_OUTPUT ---------------------------------------------------------- */

/* Runs a STD_OUTPUT logger with output to target_fd (1 or 2) redirected
 * into a file; returns what it wrote. No CHECK may run meanwhile (stderr
 * may be the redirected stream). */
static char *
capture_std_fmt(const char *output, int target_fd, const char *name,
		const char *format);

static char *
capture_std(const char *output, int target_fd, const char *name)
{
	return capture_std_fmt(output, target_fd, name, NULL);
}

static char *
capture_std_fmt(const char *output, int target_fd, const char *name,
		const char *format)
{
	char *file = path_in(tmp, name);
	fflush(stdout);
	fflush(stderr);
	int saved = dup(target_fd);
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (saved < 0 || fd < 0) {
		free(file);
		return NULL;
	}
	dup2(fd, target_fd);
	close(fd);

	struct logger_config l = std_logger(output, BLOG_INFO);
	l.format = (char *)format;
	struct berth_config cfg;
	config_with(&cfg, &l, 1);
	struct joblog *jl = joblog_new(&cfg);
	struct berr err;
	berr_clear(&err);
	struct joblog_run *r = joblog_run_open(jl, ID1, 7, &err);
	joblog_run_write(r, BLOG_INFO, "DEMO", 0, "to the stream");
	joblog_run_write(r, BLOG_DEBUG, "DEMO", 0, "hidden debug");
	joblog_write_id(jl, ID1, BLOG_WARNING, "worker.c", 7, "by id");
	joblog_run_close(r);
	joblog_write_id(jl, ID2, BLOG_INFO, "worker.c", 8, "no run");
	bool retrievable = joblog_retrievable(jl);
	joblog_free(jl);

	fflush(stdout);
	fflush(stderr);
	dup2(saved, target_fd);
	close(saved);
	char *text = slurp(file);
	free(file);
	CHECK(!retrievable);
	return text;
}

static void
test_std_output(void)
{
	char *text = capture_std("std_out", STDOUT_FILENO, "stdout.txt");
	char b[512];
	CHECK_MSG(line_matches(nth_line(text, 0, b, sizeof(b)),
			       TS_RE "\\[INFO\\] \\[DEMO\\]: \\[job " ID1
				     "\\] to the stream$"),
		  "%s", b);
	CHECK(text && !strstr(text, "hidden debug"));
	CHECK(text && !strstr(text, "===="));
	CHECK_CONTAINS(text, "[WARNING] [worker.c:7]: [job " ID1 "] by id");
	CHECK_CONTAINS(text, "[INFO] [worker.c:8]: [job " ID2 "] no run");
	free(text);

	text = capture_std("std_err", STDERR_FILENO, "stderr.txt");
	CHECK_CONTAINS(text, "[INFO] [DEMO]: [job " ID1 "] to the stream");
	free(text);
}

/* --- JSON lines --------------------------------------------------------- */

/* Line n of text parsed as one JSON object (NULL when it is not). */
static cJSON *
json_line_at(const char *text, int n)
{
	static char b[16384];
	const char *line = nth_line(text, n, b, sizeof(b));
	cJSON *j = cJSON_Parse(line);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

static const char *
jstr(const cJSON *j, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, key));
}

/* The STD_OUTPUT job logger with settings.format json: one object per
 * line, with the job id of each line. */
static void
test_std_output_json(void)
{
	char *text = capture_std_fmt("std_out", STDOUT_FILENO, "stdout.json",
				     "json");
	cJSON *j = json_line_at(text, 0);
	CHECK_MSG(j != NULL, "%s", text ? text : "(none)");
	if (j) {
		CHECK_STR(jstr(j, "level"), "INFO");
		CHECK_STR(jstr(j, "caller"), "DEMO");
		CHECK_STR(jstr(j, "job_id"), ID1);
		CHECK_STR(jstr(j, "message"), "to the stream");
		CHECK(line_matches(jstr(j, "time"),
				   "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:"
				   "[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"));
	}
	cJSON_Delete(j);
	/* every line is an object; the line written by id names its job */
	bool by_id = false;
	int i = 0;
	for (const char *p = text; p && *p; i++) {
		cJSON *k = json_line_at(text, i);
		CHECK_MSG(k != NULL, "line %d is not JSON", i);
		if (k && strcmp(jstr(k, "message"), "no run") == 0) {
			CHECK_STR(jstr(k, "job_id"), ID2);
			CHECK_STR(jstr(k, "caller"), "worker.c:8");
			by_id = true;
		}
		cJSON_Delete(k);
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	CHECK(by_id);
	CHECK(text && !strstr(text, "hidden debug"));
	free(text);
}

/* The service log in json and plain beside text: escaping, invalid UTF-8,
 * the thread's job context, a message longer than a line. */
static void
test_service_formats(FILE *restore)
{
	char *jpath = path_in(tmp, "service.json");
	char *ppath = path_in(tmp, "service.plain");
	char *tpath = path_in(tmp, "service.text");
	FILE *jf = fopen(jpath, "w"), *pf = fopen(ppath, "w"),
	     *tf = fopen(tpath, "w");
	CHECK(jf && pf && tf);
	if (!jf || !pf || !tf)
		return;
	blog_set_output(NULL);
	blog_add_output(jf, BLOG_DEBUG, true, BLOG_FORMAT_JSON);
	blog_add_output(pf, BLOG_WARNING, true, BLOG_FORMAT_PLAIN);
	blog_add_output(tf, BLOG_INFO, true, BLOG_FORMAT_TEXT);
	log_info("quote \" backslash \\ tab\t bell\a newline\nend");
	blog_set_context(ID1, "DEMO");
	log_warn("bad utf-8 \xff\xfe, good \xc3\xa9");
	blog_set_context(NULL, NULL);
	char *big = xmalloc(20000);
	memset(big, '"', 19999);
	big[19999] = '\0';
	log_debug("%s", big);
	free(big);
	blog_set_output(restore);

	char *json = slurp(jpath), *plain = slurp(ppath), *text = slurp(tpath);
	cJSON *j = json_line_at(json, 0);
	CHECK(j != NULL);
	if (j) {
		CHECK_STR(jstr(j, "message"),
			  "quote \" backslash \\ tab\t bell\a newline end");
		CHECK(cJSON_GetObjectItem(j, "job_id") == NULL);
		CHECK_CONTAINS(jstr(j, "caller"), "test_joblog.c:");
	}
	cJSON_Delete(j);
	j = json_line_at(json, 1);
	CHECK(j != NULL);
	if (j) {
		CHECK_STR(jstr(j, "level"), "WARNING");
		CHECK_STR(jstr(j, "message"),
			  "bad utf-8 \xef\xbf\xbd\xef\xbf\xbd, good \xc3\xa9");
		CHECK_STR(jstr(j, "job_id"), ID1);
		CHECK_STR(jstr(j, "job_type"), "DEMO");
	}
	cJSON_Delete(j);
	j = json_line_at(json, 2); /* cut short, still one valid object */
	CHECK(j != NULL);
	if (j) {
		CHECK_STR(jstr(j, "level"), "DEBUG");
		CHECK(strlen(jstr(j, "message")) > 1000);
		CHECK(cJSON_GetObjectItem(j, "job_id") == NULL);
	}
	cJSON_Delete(j);
	CHECK_STR(plain, "warning: bad utf-8 \xff\xfe, good \xc3\xa9\n");
	CHECK_MSG(line_matches(text, TS_RE "\\[INFO\\] \\[test_joblog.c:[0-9]+\\]: "
				     "quote"),
		  "%s", text ? text : "");
	CHECK(text && !strstr(text, "DEBUG"));
	free(json);
	free(plain);
	free(text);
	free(jpath);
	free(ppath);
	free(tpath);
}

/* --- writes by id -------------------------------------------------------- */

#define RACE_LINES 2000

struct race {
	struct joblog *jl;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool opened;
	bool done_by_id;
};

static void *
race_runner(void *arg)
{
	struct race *rc = arg;
	struct berr err;
	berr_clear(&err);
	struct joblog_run *r = joblog_run_open(rc->jl, ID2, 9, &err);
	pthread_mutex_lock(&rc->lock);
	rc->opened = true;
	pthread_cond_broadcast(&rc->cond);
	pthread_mutex_unlock(&rc->lock);
	for (int i = 0; i < RACE_LINES; i++)
		joblog_run_write(r, BLOG_INFO, "RACE", 0, "runner %d", i);
	/* keep the run open until the other writer is through */
	pthread_mutex_lock(&rc->lock);
	while (!rc->done_by_id)
		pthread_cond_wait(&rc->cond, &rc->lock);
	pthread_mutex_unlock(&rc->lock);
	joblog_run_close(r);
	return NULL;
}

static void
test_write_id(void)
{
	char *dir = path_in(tmp, "byid");
	struct logger_config l = file_logger(dir, BLOG_INFO);
	struct berth_config cfg;
	config_with(&cfg, &l, 1);
	struct joblog *jl = joblog_new(&cfg);
	char *p1 = path_in(dir, ID1 ".log");

	/* no run, no file: nothing is created */
	joblog_write_id(jl, ID1, BLOG_INFO, "worker.c", 1, "lost");
	CHECK(!exists(p1));
	/* below the level: dropped */
	struct berr err;
	berr_clear(&err);
	struct joblog_run *r = joblog_run_open(jl, ID1, 1, &err);
	joblog_run_close(r);
	joblog_write_id(jl, ID1, BLOG_DEBUG, "worker.c", 2, "too low");
	/* no run, but a file: appended */
	joblog_write_id(jl, ID1, BLOG_WARNING, "worker.c", 3, "late line");
	char *text = slurp(p1);
	CHECK(text && !strstr(text, "too low") && !strstr(text, "lost"));
	CHECK_CONTAINS(text, "[WARNING] [worker.c:3]: late line");
	free(text);
	/* ids that cannot name a file are ignored */
	joblog_write_id(jl, "../" ID1, BLOG_ERROR, "worker.c", 4, "escape");

	/* the run's own thread and another thread write at once */
	struct race rc = {.jl = jl};
	pthread_mutex_init(&rc.lock, NULL);
	pthread_cond_init(&rc.cond, NULL);
	pthread_t t;
	pthread_create(&t, NULL, race_runner, &rc);
	pthread_mutex_lock(&rc.lock);
	while (!rc.opened)
		pthread_cond_wait(&rc.cond, &rc.lock);
	pthread_mutex_unlock(&rc.lock);
	for (int i = 0; i < RACE_LINES; i++)
		joblog_write_id(jl, ID2, BLOG_INFO, "monitor.c", 5,
				"monitor %d", i);
	pthread_mutex_lock(&rc.lock);
	rc.done_by_id = true;
	pthread_cond_broadcast(&rc.cond);
	pthread_mutex_unlock(&rc.lock);
	pthread_join(t, NULL);
	pthread_cond_destroy(&rc.cond);
	pthread_mutex_destroy(&rc.lock);

	char *p2 = path_in(dir, ID2 ".log");
	text = slurp(p2);
	CHECK(count_of(text, "] [RACE]: runner ") == RACE_LINES);
	CHECK(count_of(text, "] [monitor.c:5]: monitor ") == RACE_LINES);
	size_t bad = 0, lines = 0;
	for (char *s = text, *e; s && *s; s = e + 1) {
		e = strchr(s, '\n');
		if (!e)
			break;
		*e = '\0';
		lines++;
		if (strncmp(s, "====", 4) != 0 &&
		    !line_matches(s, TS_RE "\\[INFO\\] \\[(RACE|monitor\\.c:5)"
					 "\\]: (runner|monitor) [0-9]+$"))
			bad++;
	}
	CHECK_MSG(bad == 0, "%zu mixed lines", bad);
	CHECK(lines == 2 * RACE_LINES + 1);
	free(text);
	free(p2);
	free(p1);
	joblog_free(jl);
	free(dir);
}

/* --- open failures ------------------------------------------------------- */

static void
test_open_failures(void)
{
	/* base_dir is a regular file */
	char *file = path_in(tmp, "not-a-dir");
	write_file(file, "x");
	struct logger_config l = file_logger(file, BLOG_INFO);
	struct berth_config cfg;
	config_with(&cfg, &l, 1);
	struct joblog *jl = joblog_new(&cfg);
	struct berr err;
	berr_clear(&err);
	CHECK(joblog_run_open(jl, ID1, 1, &err) == NULL);
	CHECK_CONTAINS(err.msg, "cannot open the job log");
	CHECK_CONTAINS(err.msg, "not-a-dir/" ID1 ".log");
	CHECK(!joblog_run_active(jl, ID1));
	joblog_free(jl);

	/* <id>.log is a directory */
	char *dir = path_in(tmp, "isdir");
	struct logger_config l2 = file_logger(dir, BLOG_INFO);
	config_with(&cfg, &l2, 1);
	jl = joblog_new(&cfg);
	char *sub = path_in(dir, ID1 ".log");
	mkdir(sub, 0700);
	berr_clear(&err);
	CHECK(joblog_run_open(jl, ID1, 1, &err) == NULL);
	CHECK_CONTAINS(err.msg, "cannot open the job log");
	/* unusable ids */
	berr_clear(&err);
	CHECK(joblog_run_open(jl, "a/b", 1, &err) == NULL);
	CHECK_CONTAINS(err.msg, "cannot name a log file");
	berr_clear(&err);
	CHECK(joblog_run_open(jl, "..", 1, &err) == NULL);
	CHECK(joblog_run_open(jl, "", 1, &err) == NULL);
	joblog_free(jl);
	free(sub);
	free(dir);
	free(file);
}

/* --- retrieval ----------------------------------------------------------- */

static void
test_id_check(void)
{
	static const struct {
		const char *id;
		enum joblog_id_check want;
	} table[] = {
		{ID1, JOBLOG_ID_OK},
		{"0123456789ABCDEF01234567", JOBLOG_ID_OK},
		{ID1 "@1700003600", JOBLOG_ID_OK},
		{ID1 "@", JOBLOG_ID_OK},
		{ID1 "@x@y", JOBLOG_ID_BAD_LENGTH}, /* cut at the last '@' */
		{"a@b@" ID1, JOBLOG_ID_BAD_LENGTH},
		{"0123456789abcdef0123456g", JOBLOG_ID_BAD_HEX},
		{"0123456789abcdef 1234567", JOBLOG_ID_BAD_HEX},
		{"0123456789abcdef0123456g@1", JOBLOG_ID_BAD_HEX},
		{"abc", JOBLOG_ID_BAD_LENGTH},
		{"@123", JOBLOG_ID_BAD_LENGTH},
		{"", JOBLOG_ID_BAD_LENGTH},
		{ID1 "0", JOBLOG_ID_BAD_LENGTH},
		{"..", JOBLOG_ID_TRAVERSAL},
		{"a/b", JOBLOG_ID_TRAVERSAL},
		{"../../etc/passwd", JOBLOG_ID_TRAVERSAL},
		{"..%2F..%2Fetc%2Fpasswd", JOBLOG_ID_TRAVERSAL},
		{ID1 "@..", JOBLOG_ID_TRAVERSAL},
		{"x..y", JOBLOG_ID_TRAVERSAL},
		{".", JOBLOG_ID_BAD_LENGTH},
	};
	for (size_t i = 0; i < ARRAY_LEN(table); i++)
		CHECK_MSG(joblog_check_id(table[i].id) == table[i].want,
			  "id \"%s\": got %d, want %d", table[i].id,
			  (int)joblog_check_id(table[i].id),
			  (int)table[i].want);
	CHECK_STR(joblog_id_error(JOBLOG_ID_BAD_LENGTH),
		  "invalid length of log identify");
	CHECK_STR(joblog_id_error(JOBLOG_ID_BAD_HEX), "invalid log identify");
	CHECK_STR(joblog_id_error(JOBLOG_ID_OK), "");
}

static void
test_tail(void)
{
	static const struct {
		off_t size;
		int64_t limit;
		off_t want;
	} table[] = {
		{100, 0, 0},  {100, -1, 0}, {100, 100, 0}, {100, 101, 0},
		{100, 10, 90}, {100, 1, 99}, {0, 10, 0},    {5, 10, 0},
		{(off_t)3 << 30, 1048576, ((off_t)3 << 30) - 1048576},
	};
	for (size_t i = 0; i < ARRAY_LEN(table); i++)
		CHECK_MSG(joblog_tail_start(table[i].size, table[i].limit) ==
				  table[i].want,
			  "size %lld limit %lld", (long long)table[i].size,
			  (long long)table[i].limit);

	char *file = path_in(tmp, "tail.log");
	write_file(file, "0123456789");
	int fd = open(file, O_RDONLY);
	char *out = NULL;
	size_t len = 0;
	struct berr err;
	berr_clear(&err);
	CHECK(joblog_read_tail(fd, 0, &out, &len, &err) == 0);
	CHECK(len == 10 && strcmp(out, "0123456789") == 0);
	free(out);
	CHECK(joblog_read_tail(fd, 4, &out, &len, &err) == 0);
	CHECK(len == 4 && strcmp(out, "6789") == 0);
	free(out);
	CHECK(joblog_read_tail(fd, 100, &out, &len, &err) == 0);
	CHECK(len == 10 && strcmp(out, "0123456789") == 0);
	free(out);
	close(fd);
	write_file(file, "");
	fd = open(file, O_RDONLY);
	CHECK(joblog_read_tail(fd, 4, &out, &len, &err) == 0);
	CHECK(len == 0 && out && out[0] == '\0');
	free(out);
	close(fd);
	free(file);
}

static void
test_open_log(void)
{
	char *dir = path_in(tmp, "get");
	struct logger_config l = file_logger(dir, BLOG_INFO);
	struct berth_config cfg;
	config_with(&cfg, &l, 1);
	struct joblog *jl = joblog_new(&cfg);
	struct berr err;
	berr_clear(&err);
	int fd = -1;
	CHECK(joblog_open_log(jl, ID1, &fd, &err) == 1);
	CHECK(fd == -1);

	char *p1 = path_in(dir, ID1 ".log");
	write_file(p1, "log text");
	CHECK(joblog_open_log(jl, ID1, &fd, &err) == 0);
	char *out = NULL;
	size_t len = 0;
	CHECK(fd >= 0 && joblog_read_tail(fd, 0, &out, &len, &err) == 0 &&
	      strcmp(out, "log text") == 0);
	free(out);
	if (fd >= 0)
		close(fd);

	/* a symlink to a file outside base_dir is refused */
	char *outside = path_in(tmp, "secret.txt");
	write_file(outside, "secret");
	char *p2 = path_in(dir, ID2 ".log");
	CHECK(symlink(outside, p2) == 0);
	berr_clear(&err);
	CHECK(joblog_open_log(jl, ID2, &fd, &err) == -1);
	CHECK_CONTAINS(err.msg, "outside");
	/* a symlink that stays inside is fine */
	unlink(p2);
	CHECK(symlink(ID1 ".log", p2) == 0);
	CHECK(joblog_open_log(jl, ID2, &fd, &err) == 0);
	if (fd >= 0)
		close(fd);
	/* a dangling symlink is no log */
	unlink(p2);
	CHECK(symlink("missing.log", p2) == 0);
	CHECK(joblog_open_log(jl, ID2, &fd, &err) == 1);
	unlink(p2);
	/* a directory is no log file */
	mkdir(p2, 0700);
	berr_clear(&err);
	CHECK(joblog_open_log(jl, ID2, &fd, &err) == -1);
	CHECK_CONTAINS(err.msg, "not a regular file");
	rmdir(p2);
	/* traversal never reaches the file system */
	CHECK(joblog_open_log(jl, "../secret.txt", &fd, &err) == -1);
	CHECK(joblog_open_log(jl, "..", &fd, &err) == -1);
	/* base_dir gone: no log */
	unlink(p1);
	rmdir(dir);
	CHECK(joblog_open_log(jl, ID1, &fd, &err) == 1);
	joblog_free(jl);
	free(p1);
	free(p2);
	free(outside);
	free(dir);
}

static void
test_checkin_text(void)
{
	char a[JOBLOG_CHECKIN_MAX + 2];
	memset(a, 'a', sizeof(a));
	a[JOBLOG_CHECKIN_MAX] = '\0';
	char buf[64];
	CHECK(joblog_checkin_text(a, buf, sizeof(buf)) == a);
	a[JOBLOG_CHECKIN_MAX] = 'a';
	a[JOBLOG_CHECKIN_MAX + 1] = '\0';
	CHECK_STR(joblog_checkin_text(a, buf, sizeof(buf)),
		  "<DATA BLOCK: 257 bytes>");
	CHECK_STR(joblog_checkin_text("progress data: %30", buf, sizeof(buf)),
		  "progress data: %30");
}

/* --- sweeping ------------------------------------------------------------ */

static void
test_sweep(void)
{
	char *work = path_in(tmp, "sweep");
	mkdir(work, 0700);
	char *old_file = path_in(work, "old.log");
	char *new_file = path_in(work, "new.log");
	char *old_empty = path_in(work, "old-empty");
	char *old_full = path_in(work, "old-full");
	char *inner = path_in(old_full, "inner.log");
	char *old_link = path_in(work, "old-link");
	char *target = path_in(tmp, "sweep-target.txt");
	write_file(old_file, "old");
	write_file(new_file, "new");
	mkdir(old_empty, 0700);
	mkdir(old_full, 0700);
	write_file(inner, "inner");
	write_file(target, "target");
	CHECK(symlink(target, old_link) == 0);
	CHECK(age_path(old_file, 3 * DAY) == 0);
	CHECK(age_path(new_file, DAY / 2) == 0);
	CHECK(age_path(old_empty, 3 * DAY) == 0);
	CHECK(age_path(inner, 3 * DAY) == 0);
	CHECK(age_path(old_full, 3 * DAY) == 0);
	CHECK(age_path(old_link, 3 * DAY) == 0);
	CHECK(age_path(target, 3 * DAY) == 0);

	/* an old log of a run still open is kept */
	struct logger_config l = file_logger(work, BLOG_INFO);
	struct berth_config cfg;
	config_with(&cfg, &l, 1);
	struct joblog *jl = joblog_new(&cfg);
	struct berr err;
	berr_clear(&err);
	struct joblog_run *r = joblog_run_open(jl, ID1, 1, &err);
	char *open_log = path_in(work, ID1 ".log");
	CHECK(age_path(open_log, 3 * DAY) == 0);

	size_t removed = 99;
	CHECK_MSG(joblog_sweep(jl, work, DAY, &removed, &err) == 0, "%s",
		  err.msg);
	CHECK_MSG(removed == 3, "removed %zu", removed);
	CHECK(!exists(old_file));
	CHECK(exists(new_file));
	CHECK(!exists(old_empty));
	CHECK(exists(old_full) && exists(inner)); /* not empty: kept */
	CHECK(!exists(old_link));
	CHECK(exists(target)); /* the link went, never its target */
	CHECK(exists(open_log));

	/* once closed it goes */
	joblog_run_close(r);
	CHECK(joblog_sweep(jl, work, DAY, &removed, &err) == 0);
	CHECK(removed == 1 && !exists(open_log));
	/* a longer duration keeps everything */
	write_file(old_file, "old");
	CHECK(age_path(old_file, 3 * DAY) == 0);
	CHECK(joblog_sweep(NULL, work, 4 * DAY, &removed, &err) == 0);
	CHECK(removed == 0 && exists(old_file));

	char *missing = path_in(tmp, "no-such-dir");
	berr_clear(&err);
	CHECK(joblog_sweep(NULL, missing, DAY, &removed, &err) == -1);
	CHECK_CONTAINS(err.msg, "cannot open");
	joblog_free(jl);
	free(missing);
	free(open_log);
	free(old_file);
	free(new_file);
	free(old_empty);
	free(old_full);
	free(inner);
	free(old_link);
	free(target);
	free(work);
}

static bool
wait_gone(const char *path, int ms)
{
	for (int waited = 0; waited < ms; waited += 20) {
		if (!exists(path))
			return true;
		util_sleep_ms(20);
	}
	return !exists(path);
}

static void
test_sweeper_thread(void)
{
	char *work = path_in(tmp, "sweeper-jobs");
	char *svc = path_in(tmp, "sweeper-svc");
	mkdir(svc, 0700);
	/* FILE in both lists: the job logger's sweeper wins */
	struct logger_config jobs = file_logger(work, BLOG_INFO);
	jobs.has_sweeper = true;
	jobs.sweeper_duration = 1;
	jobs.work_dir = work;
	struct logger_config svc_l = file_logger(svc, BLOG_INFO);
	svc_l.filename = (char *)"berthd.log";
	svc_l.has_sweeper = true;
	svc_l.sweeper_duration = 1;
	svc_l.work_dir = svc;
	struct berth_config cfg;
	config_with(&cfg, &jobs, 1);
	cfg.loggers = &svc_l;
	cfg.n_loggers = 1;

	cfg.log_sweep_interval_seconds = 1; /* BERTH_SWEEP_INTERVAL_SECONDS */
	struct joblog *jl = joblog_new(&cfg);
	char *first = path_in(work, "first.log");
	char *svc_old = path_in(svc, "old-service.log");
	write_file(first, "x");
	write_file(svc_old, "x");
	age_path(first, 2 * DAY);
	age_path(svc_old, 2 * DAY);
	struct berr err;
	berr_clear(&err);
	CHECK(joblog_start_sweepers(jl, &err) == 0);
	CHECK_MSG(wait_gone(first, 3000), "the first sweep runs at start");
	/* the next sweeps come every second */
	char *second = path_in(work, "second.log");
	char *fresh = path_in(work, "fresh.log");
	write_file(second, "x");
	write_file(fresh, "x");
	age_path(second, 2 * DAY);
	CHECK_MSG(wait_gone(second, 4000), "periodic sweep");
	CHECK(exists(fresh));
	CHECK(exists(svc_old)); /* the loggers' FILE sweeper lost */
	int64_t t0 = util_monotonic_ms();
	joblog_free(jl);
	CHECK_MSG(util_monotonic_ms() - t0 < 1000, "free waited %lld ms",
		  (long long)(util_monotonic_ms() - t0));

	/* a bad BERTH_SWEEP_INTERVAL_SECONDS is the configuration's
	 * business (test_config) */
	free(first);
	free(second);
	free(fresh);
	free(svc_old);
	free(svc);
	free(work);
}

int
main(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmp, sizeof(tmp), "%s/berth-joblog-XXXXXX",
		 base && *base ? base : "/tmp");
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(service_log, sizeof(service_log), "%s/service.log", tmp);
	FILE *slog = fopen(service_log, "a");
	if (!slog) {
		perror(service_log);
		return 1;
	}
	setvbuf(slog, NULL, _IOLBF, 0);
	blog_set_output(slog);
	blog_set_level(BLOG_DEBUG);

	test_file_format_append();
	test_levels();
	test_db_only_falls_back();
	test_std_output();
	test_std_output_json();
	test_service_formats(slog);
	test_write_id();
	test_open_failures();
	test_id_check();
	test_tail();
	test_open_log();
	test_checkin_text();
	test_sweep();
	test_sweeper_thread();

	blog_set_output(NULL);
	fclose(slog);
	if (tl_failures == 0)
		test_rm_rf(tmp);
	else
		fprintf(stderr, "kept %s for inspection\n", tmp);
	TEST_DONE();
}

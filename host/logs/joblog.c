/* joblog.c - job loggers, log retrieval and sweepers; see joblog.h. */
#include "logs/joblog.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/ticker.h"
#include "logs/log.h"

#define SECONDS_PER_DAY 86400LL
#define LOG_ID_HEX_LEN 24
#define LOG_SUFFIX ".log"

enum backend_kind {
	BACKEND_STD,
	BACKEND_FILE,
};

struct backend {
	enum backend_kind kind;
	int level;      /* enum blog_level */
	char *base_dir; /* FILE */
	FILE *stream;   /* STD_OUTPUT: stdout or stderr */
	bool json;      /* STD_OUTPUT: settings.format json */
};

struct sweeper {
	struct joblog *jl;
	char *work_dir;
	int days;
	pthread_t thread;
	bool started;
};

struct joblog {
	struct backend *b;
	size_t n;
	int min_level;
	const struct backend *getter; /* first FILE back-end, or NULL */

	pthread_mutex_t lock;  /* runs */
	struct joblog_run *runs;

	struct sweeper *sw;
	size_t n_sw;
	struct ticker ticker;  /* the sweepers wait on it; stopped at free */
	int64_t sweep_period_override; /* seconds; 0 = duration days */

	atomic_int followers;
};

struct joblog_run {
	struct joblog *jl;
	char *job_id;
	int *fds; /* one per back-end; -1 unless an open FILE log */
	atomic_bool write_failed;
	struct joblog_run *next; /* under jl->lock */
};

/* --- formatting and writing ---------------------------------------------- */

/* The common line format of log.h around msg. For line <= 0 the location
 * is "[file]": blog_format_line always prints "[file:line]", so its ":0"
 * is cut out again (found right after the file name, behind the level). */
static size_t
format_line(char *buf, size_t n, int level, const char *file, int line,
	    const char *tag, const char *msg)
{
	size_t len = blog_format_linef(buf, n, level, file,
				       line > 0 ? line : 0, "%s%s",
				       tag ? tag : "", msg);
	if (line > 0)
		return len;
	const char *base = file ? strrchr(file, '/') : NULL;
	base = base ? base + 1 : (file ? file : "?");
	char *p = strstr(buf, "] [");
	if (!p)
		return len;
	char *colon = p + 3 + strlen(base);
	if ((size_t)(colon - buf) + 3 <= len && memcmp(colon, ":0]", 3) == 0) {
		memmove(colon, colon + 2, len - (size_t)(colon + 2 - buf) + 1);
		len -= 2;
	}
	return len;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static void
emit_std(const struct backend *b, int level, const char *file, int line,
	 const char *job_id, const char *msg)
{
	char buf[JOBLOG_LINE_MAX];
	char tag[96];
	size_t len;
	if (b->json) {
		len = blog_format_json(buf, sizeof(buf), level, file, line,
				       job_id, msg);
	} else {
		snprintf(tag, sizeof(tag), "[job %.64s] ", job_id);
		len = format_line(buf, sizeof(buf), level, file, line, tag,
				  msg);
	}
	flockfile(b->stream);
	fwrite(buf, 1, len, b->stream);
	fflush(b->stream);
	funlockfile(b->stream);
}

/* No usable back-end: the service log, as before job loggers existed. */
static void
emit_fallback(int level, const char *file, int line, const char *job_id,
	      const char *msg)
{
	if (level >= blog_min_level)
		blog_write(level, file ? file : "job", line > 0 ? line : 0,
			   "[job %s] %s", job_id, msg);
}

/* True when id can name a file inside base_dir. */
static bool
id_is_file_name(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	return n > 0 && n + sizeof(LOG_SUFFIX) <= NAME_MAX &&
	       !strchr(id, '/') && !strstr(id, "..");
}

static char *
log_path(const struct backend *b, const char *id)
{
	size_t l = strlen(b->base_dir);
	bool slash = l > 0 && b->base_dir[l - 1] == '/';
	return xasprintf("%s%s%s" LOG_SUFFIX, b->base_dir, slash ? "" : "/",
			 id);
}

/* Writes msg to every back-end of an open run whose level allows it. */
static void
run_emit(struct joblog_run *r, int level, const char *file, int line,
	 const char *msg)
{
	struct joblog *jl = r->jl;
	if (jl->n == 0) {
		emit_fallback(level, file, line, r->job_id, msg);
		return;
	}
	char buf[JOBLOG_LINE_MAX];
	size_t len = 0;
	for (size_t i = 0; i < jl->n; i++) {
		const struct backend *b = &jl->b[i];
		if (level < b->level)
			continue;
		if (b->kind == BACKEND_STD) {
			emit_std(b, level, file, line, r->job_id, msg);
			continue;
		}
		if (r->fds[i] < 0)
			continue;
		if (len == 0)
			len = format_line(buf, sizeof(buf), level, file, line,
					  NULL, msg);
		if (write_all(r->fds[i], buf, len) < 0 &&
		    !atomic_exchange(&r->write_failed, true))
			log_warn("job %s: cannot write its log in %s: %s",
				 r->job_id, b->base_dir, strerror(errno));
	}
}

/* A line for a job with no run open here: appended to existing FILE logs
 * (never created), and to STD_OUTPUT. */
static void
detached_emit(struct joblog *jl, const char *job_id, int level,
	      const char *file, int line, const char *msg)
{
	if (jl->n == 0) {
		emit_fallback(level, file, line, job_id, msg);
		return;
	}
	char buf[JOBLOG_LINE_MAX];
	size_t len = 0;
	for (size_t i = 0; i < jl->n; i++) {
		const struct backend *b = &jl->b[i];
		if (level < b->level)
			continue;
		if (b->kind == BACKEND_STD) {
			emit_std(b, level, file, line, job_id, msg);
			continue;
		}
		if (!id_is_file_name(job_id))
			continue;
		char *path = log_path(b, job_id);
		int fd = open(path,
			      O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW |
				      O_NONBLOCK);
		free(path);
		if (fd < 0)
			continue;
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			if (len == 0)
				len = format_line(buf, sizeof(buf), level,
						  file, line, NULL, msg);
			if (write_all(fd, buf, len) < 0)
				log_warn("job %s: cannot write its log in "
					 "%s: %s",
					 job_id, b->base_dir, strerror(errno));
		}
		close(fd);
	}
}

/* Under jl->lock. */
static struct joblog_run *
find_run(struct joblog *jl, const char *job_id)
{
	for (struct joblog_run *r = jl->runs; r; r = r->next)
		if (strcmp(r->job_id, job_id) == 0)
			return r;
	return NULL;
}

/* --- life cycle ---------------------------------------------------------- */

static void
add_backend(struct joblog *jl, enum backend_kind kind,
	    const struct logger_config *l)
{
	struct backend *b = &jl->b[jl->n++];
	b->kind = kind;
	b->level = l->level;
	if (kind == BACKEND_FILE)
		b->base_dir = xstrdup(l->base_dir);
	else
		b->stream = l->output && strcmp(l->output, "std_err") == 0
				    ? stderr
				    : stdout;
	b->json = kind == BACKEND_STD && l->format &&
		  strcmp(l->format, "json") == 0;
	if (b->level < jl->min_level)
		jl->min_level = b->level;
}

static void
add_sweepers(struct joblog *jl, const struct logger_config *list, size_t n,
	     const char *what, bool *file_seen, bool *db_seen)
{
	for (size_t i = 0; i < n; i++) {
		const struct logger_config *l = &list[i];
		if (!l->has_sweeper || !l->name)
			continue;
		if (strcmp(l->name, "FILE") == 0 && !*file_seen) {
			*file_seen = true;
			if (!l->work_dir || !*l->work_dir)
				continue;
			struct sweeper *s = &jl->sw[jl->n_sw++];
			s->jl = jl;
			s->work_dir = xstrdup(l->work_dir);
			s->days = l->sweeper_duration > 0 ? l->sweeper_duration
							  : 1;
		} else if (strcmp(l->name, "DB") == 0 && !*db_seen) {
			*db_seen = true;
			log_warn("%s: the DB sweeper is not supported by Berth "
				 "and is ignored",
				 what);
		}
	}
}

struct joblog *
joblog_new(const struct berth_config *cfg)
{
	struct joblog *jl = xcalloc(1, sizeof(*jl));
	jl->min_level = BLOG_FATAL;
	jl->b = xcalloc(cfg->n_job_loggers + 1, sizeof(*jl->b));
	bool have_std = false;
	for (size_t i = 0; i < cfg->n_job_loggers; i++) {
		const struct logger_config *l = &cfg->job_loggers[i];
		if (!l->name)
			continue;
		if (strcmp(l->name, "FILE") == 0 && l->base_dir &&
		    *l->base_dir) {
			if (util_mkdir_p(l->base_dir, 0700) < 0)
				log_warn("job logger FILE: cannot create %s: "
					 "%s (runs fail until it exists)",
					 l->base_dir, strerror(errno));
			add_backend(jl, BACKEND_FILE, l);
			if (!jl->getter)
				jl->getter = &jl->b[jl->n - 1];
		} else if (strcmp(l->name, "STD_OUTPUT") == 0) {
			if (have_std) {
				log_warn("job logger STD_OUTPUT is listed more "
					 "than once; the first entry is used");
				continue;
			}
			have_std = true;
			add_backend(jl, BACKEND_STD, l);
		} else if (strcmp(l->name, "DB") == 0) {
			log_warn("job logger DB is not supported by Berth and "
				 "is ignored: job logs are kept by the FILE "
				 "job logger only");
		}
	}
	if (jl->n == 0)
		log_warn("no usable job logger: job log lines go to the "
			 "service log and GET /api/v1/jobs/{id}/log has "
			 "nothing to return");

	jl->sw = xcalloc(cfg->n_job_loggers + cfg->n_loggers + 1,
			 sizeof(*jl->sw));
	bool file_seen = false, db_seen = false;
	add_sweepers(jl, cfg->job_loggers, cfg->n_job_loggers, "job_loggers",
		     &file_seen, &db_seen);
	add_sweepers(jl, cfg->loggers, cfg->n_loggers, "loggers", &file_seen,
		     &db_seen);
	/* berth.log_sweep_interval_seconds (BERTH_SWEEP_INTERVAL_SECONDS) */
	if (cfg->log_sweep_interval_seconds > 0)
		jl->sweep_period_override = cfg->log_sweep_interval_seconds;

	pthread_mutex_init(&jl->lock, NULL);
	ticker_init(&jl->ticker);
	atomic_init(&jl->followers, 0);
	return jl;
}

int
joblog_min_level(const struct joblog *jl)
{
	return jl->n ? jl->min_level : blog_min_level;
}

/* --- runs ---------------------------------------------------------------- */

struct joblog_run *
joblog_run_open(struct joblog *jl, const char *job_id, int64_t revision,
		struct berr *err)
{
	if (!id_is_file_name(job_id)) {
		berr_set(err, "job id '%.100s' cannot name a log file",
			 job_id ? job_id : "");
		return NULL;
	}
	struct joblog_run *r = xcalloc(1, sizeof(*r));
	r->jl = jl;
	r->job_id = xstrdup(job_id);
	r->fds = xcalloc(jl->n + 1, sizeof(int));
	atomic_init(&r->write_failed, false);
	for (size_t i = 0; i < jl->n; i++)
		r->fds[i] = -1;
	char sep[64];
	int sl = snprintf(sep, sizeof(sep), "==== run revision %lld ====\n",
			  (long long)revision);
	for (size_t i = 0; i < jl->n; i++) {
		const struct backend *b = &jl->b[i];
		if (b->kind != BACKEND_FILE)
			continue;
		char *path = log_path(b, job_id);
		int fd = open(path,
			      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
				      O_NOFOLLOW | O_NONBLOCK,
			      0600);
		struct stat st;
		const char *why = NULL;
		int e = 0;
		if (fd < 0) {
			e = errno;
		} else if (fstat(fd, &st) < 0) {
			e = errno;
		} else if (!S_ISREG(st.st_mode)) {
			why = "not a regular file";
		} else if (write_all(fd, sep, (size_t)sl) < 0) {
			e = errno;
		}
		if (e || why) {
			berr_set(err, "cannot open the job log %s: %s", path,
				 why ? why : strerror(e));
			free(path);
			if (fd >= 0)
				close(fd);
			r->fds[i] = -1;
			joblog_run_close(r);
			return NULL;
		}
		free(path);
		r->fds[i] = fd;
	}
	pthread_mutex_lock(&jl->lock);
	r->next = jl->runs;
	jl->runs = r;
	pthread_mutex_unlock(&jl->lock);
	return r;
}

void
joblog_run_vwrite(struct joblog_run *r, int level, const char *file,
		  int line, const char *fmt, va_list ap)
{
	if (!r || level < joblog_min_level(r->jl))
		return;
	char msg[JOBLOG_LINE_MAX];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	run_emit(r, level, file, line, msg);
}

void
joblog_run_write(struct joblog_run *r, int level, const char *file, int line,
		 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	joblog_run_vwrite(r, level, file, line, fmt, ap);
	va_end(ap);
}

void
joblog_run_close(struct joblog_run *r)
{
	if (!r)
		return;
	struct joblog *jl = r->jl;
	/* unlinked first: joblog_write_id writes to listed runs only, under
	 * the lock, so no other thread touches the fds after this */
	pthread_mutex_lock(&jl->lock);
	for (struct joblog_run **pp = &jl->runs; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	pthread_mutex_unlock(&jl->lock);
	for (size_t i = 0; i < jl->n; i++)
		if (r->fds[i] >= 0)
			close(r->fds[i]);
	free(r->fds);
	free(r->job_id);
	free(r);
}

void
joblog_write_id(struct joblog *jl, const char *job_id, int level,
		const char *file, int line, const char *fmt, ...)
{
	if (!jl || !job_id || level < joblog_min_level(jl))
		return;
	char msg[JOBLOG_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&jl->lock);
	struct joblog_run *r = find_run(jl, job_id);
	if (r)
		run_emit(r, level, file, line, msg);
	else
		detached_emit(jl, job_id, level, file, line, msg);
	pthread_mutex_unlock(&jl->lock);
}

bool
joblog_run_active(struct joblog *jl, const char *job_id)
{
	if (!jl || !job_id)
		return false;
	pthread_mutex_lock(&jl->lock);
	bool active = find_run(jl, job_id) != NULL;
	pthread_mutex_unlock(&jl->lock);
	return active;
}

const char *
joblog_checkin_text(const char *text, char *buf, size_t n)
{
	size_t len = text ? strlen(text) : 0;
	if (len <= JOBLOG_CHECKIN_MAX)
		return text ? text : "";
	snprintf(buf, n, "<DATA BLOCK: %zu bytes>", len);
	return buf;
}

/* --- retrieval ----------------------------------------------------------- */

enum joblog_id_check
joblog_check_id(const char *id)
{
	if (!id || strstr(id, "..") || strchr(id, '/'))
		return JOBLOG_ID_TRAVERSAL;
	const char *at = strrchr(id, '@');
	size_t n = at ? (size_t)(at - id) : strlen(id);
	if (n != LOG_ID_HEX_LEN)
		return JOBLOG_ID_BAD_LENGTH;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)id[i]))
			return JOBLOG_ID_BAD_HEX;
	return JOBLOG_ID_OK;
}

const char *
joblog_id_error(enum joblog_id_check c)
{
	switch (c) {
	case JOBLOG_ID_OK:
		return "";
	case JOBLOG_ID_TRAVERSAL:
		return "invalid Job ID";
	case JOBLOG_ID_BAD_LENGTH:
		return "invalid length of log identify";
	case JOBLOG_ID_BAD_HEX:
		return "invalid log identify";
	}
	return "invalid log identify";
}

bool
joblog_retrievable(const struct joblog *jl)
{
	return jl && jl->getter;
}

int
joblog_open_log(struct joblog *jl, const char *id, int *fd, struct berr *err)
{
	*fd = -1;
	const struct backend *g = jl ? jl->getter : NULL;
	if (!g)
		return berr_set(err, "no log data getter is configured");
	if (!id_is_file_name(id))
		return berr_set(err, "invalid log identify");
	char base_real[PATH_MAX], file_real[PATH_MAX];
	if (!realpath(g->base_dir, base_real)) {
		if (errno == ENOENT)
			return 1; /* no directory, no log */
		return berr_set(err, "cannot resolve %s: %s", g->base_dir,
				strerror(errno));
	}
	char *path = log_path(g, id);
	if (!realpath(path, file_real)) {
		int e = errno;
		int rc = e == ENOENT || e == ENOTDIR
				 ? 1
				 : berr_set(err, "cannot resolve %s: %s", path,
					    strerror(e));
		free(path);
		return rc;
	}
	size_t bl = strlen(base_real);
	bool inside = bl == 1 || (strncmp(file_real, base_real, bl) == 0 &&
				  file_real[bl] == '/');
	if (!inside) {
		berr_set(err, "the log %s resolves outside %s", path,
			 base_real);
		free(path);
		return -1;
	}
	free(path);
	int f = open(file_real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (f < 0) {
		if (errno == ENOENT)
			return 1;
		return berr_set(err, "cannot open %s: %s", file_real,
				strerror(errno));
	}
	struct stat st;
	if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(f);
		return berr_set(err, "%s is not a regular file", file_real);
	}
	*fd = f;
	return 0;
}

off_t
joblog_tail_start(off_t size, int64_t limit)
{
	if (limit <= 0 || size <= limit)
		return 0;
	return size - (off_t)limit;
}

int
joblog_read_tail(int fd, int64_t limit, char **out, size_t *len,
		 struct berr *err)
{
	*out = NULL;
	*len = 0;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return berr_set(err, "cannot stat the log: %s",
				strerror(errno));
	off_t off = joblog_tail_start(st.st_size, limit);
	size_t want = (size_t)(st.st_size - off);
	char *buf = xmalloc(want + 1);
	size_t got = 0;
	while (got < want) {
		ssize_t r = pread(fd, buf + got, want - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return berr_set(err, "cannot read the log: %s",
					strerror(errno));
		}
		if (r == 0)
			break; /* shrank meanwhile */
		got += (size_t)r;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

bool
joblog_follow_enter(struct joblog *jl, int max)
{
	int cur = atomic_load(&jl->followers);
	do {
		if (cur >= max)
			return false;
	} while (!atomic_compare_exchange_weak(&jl->followers, &cur, cur + 1));
	return true;
}

void
joblog_follow_leave(struct joblog *jl)
{
	atomic_fetch_sub(&jl->followers, 1);
}

/* --- sweeping ------------------------------------------------------------ */

/* True when name is the log of a run open in jl. */
static bool
is_open_log(struct joblog *jl, const char *name)
{
	if (!jl)
		return false;
	size_t nl = strlen(name), sl = strlen(LOG_SUFFIX);
	if (nl <= sl || strcmp(name + nl - sl, LOG_SUFFIX) != 0)
		return false;
	bool open_now = false;
	pthread_mutex_lock(&jl->lock);
	for (struct joblog_run *r = jl->runs; r && !open_now; r = r->next)
		open_now = strlen(r->job_id) == nl - sl &&
			   strncmp(r->job_id, name, nl - sl) == 0;
	pthread_mutex_unlock(&jl->lock);
	return open_now;
}

int
joblog_sweep(struct joblog *jl, const char *work_dir, int64_t max_age_seconds,
	     size_t *removed, struct berr *err)
{
	*removed = 0;
	int dfd = open(work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berr_set(err, "cannot open %s: %s", work_dir,
				strerror(errno));
	DIR *dir = fdopendir(dfd);
	if (!dir) {
		int e = errno;
		close(dfd);
		return berr_set(err, "cannot read %s: %s", work_dir,
				strerror(e));
	}
	time_t cutoff = time(NULL) - (time_t)max_age_seconds;
	char failures[BERR_MSG_MAX / 2] = "";
	size_t n_fail = 0, used = 0;
	struct dirent *de;
	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (!de)
			break;
		const char *name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		struct stat st;
		int e = 0;
		/* lstat: a symbolic link is judged and removed itself */
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			e = errno;
		} else {
			if (st.st_mtime >= cutoff || is_open_log(jl, name))
				continue;
			bool is_dir = S_ISDIR(st.st_mode);
			int flags = is_dir ? AT_REMOVEDIR : 0;
			if (unlinkat(dfd, name, flags) == 0) {
				(*removed)++;
				continue;
			}
			e = errno;
			/* only empty directories go */
			if (is_dir && (e == ENOTEMPTY || e == EEXIST))
				continue;
		}
		if (e == ENOENT)
			continue; /* gone meanwhile */
		n_fail++;
		if (used < sizeof(failures) - 1) {
			int w = snprintf(failures + used,
					 sizeof(failures) - used, "%s%s: %s",
					 used ? "; " : "", name, strerror(e));
			if (w > 0)
				used += (size_t)w;
			if (used >= sizeof(failures))
				used = sizeof(failures) - 1;
		}
	}
	int read_errno = errno;
	closedir(dir);
	if (read_errno)
		return berr_set(err, "cannot read %s: %s", work_dir,
				strerror(read_errno));
	if (n_fail)
		return berr_set(err,
				"%zu entr%s of %s could not be removed: %s",
				n_fail, n_fail == 1 ? "y" : "ies", work_dir,
				failures);
	return 0;
}

static void
sweep_once(struct sweeper *s)
{
	struct berr err;
	berr_clear(&err);
	size_t removed = 0;
	int rc = joblog_sweep(s->jl, s->work_dir,
			      (int64_t)s->days * SECONDS_PER_DAY, &removed,
			      &err);
	if (rc < 0)
		log_warn("log sweeper: removed %zu entr%s older than %d "
			 "day(s); %s",
			 removed, removed == 1 ? "y" : "ies", s->days, err.msg);
	else if (removed > 0)
		log_info("log sweeper: removed %zu entr%s older than %d day(s) "
			 "from %s",
			 removed, removed == 1 ? "y" : "ies", s->days,
			 s->work_dir);
	else
		log_debug("log sweeper: nothing older than %d day(s) in %s",
			  s->days, s->work_dir);
}

static void *
sweeper_main(void *arg)
{
	struct sweeper *s = arg;
	struct joblog *jl = s->jl;
	int64_t period = jl->sweep_period_override
				 ? jl->sweep_period_override
				 : (int64_t)s->days * SECONDS_PER_DAY;
	do
		sweep_once(s);
	while (!ticker_sleep(&jl->ticker, period * 1000));
	return NULL;
}

int
joblog_start_sweepers(struct joblog *jl, struct berr *err)
{
	for (size_t i = 0; i < jl->n_sw; i++) {
		struct sweeper *s = &jl->sw[i];
		if (s->started)
			continue;
		if (pthread_create(&s->thread, NULL, sweeper_main, s) != 0)
			return berr_set(err, "cannot start the log sweeper of "
					     "%s",
					s->work_dir);
		s->started = true;
		log_info("log sweeper: %s, entries older than %d day(s), "
			 "every %lld s",
			 s->work_dir, s->days,
			 (long long)(jl->sweep_period_override
					     ? jl->sweep_period_override
					     : (int64_t)s->days *
						       SECONDS_PER_DAY));
	}
	return 0;
}

void
joblog_free(struct joblog *jl)
{
	if (!jl)
		return;
	ticker_stop(&jl->ticker);
	pthread_mutex_lock(&jl->lock);
	bool runs_left = jl->runs != NULL;
	pthread_mutex_unlock(&jl->lock);
	for (size_t i = 0; i < jl->n_sw; i++) {
		if (jl->sw[i].started)
			pthread_join(jl->sw[i].thread, NULL);
		free(jl->sw[i].work_dir);
	}
	free(jl->sw);
	jl->sw = NULL;
	jl->n_sw = 0;
	if (runs_left) {
		/* a run may still write: leave the rest to the process exit */
		log_warn("job logs still open at exit; not freed");
		return;
	}
	for (size_t i = 0; i < jl->n; i++)
		free(jl->b[i].base_dir);
	free(jl->b);
	ticker_fini(&jl->ticker);
	pthread_mutex_destroy(&jl->lock);
	free(jl);
}

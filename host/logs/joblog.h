/* joblog.h - job loggers (spec 10.2), log retrieval for
 * GET /api/v1/jobs/{id}/log (spec 2.10) and log sweepers (spec 10.4).
 *
 * One struct joblog is built from berth.yml's job_loggers (and, for the
 * sweepers, loggers) at start-up. For every run the worker opens a
 * struct joblog_run, which fans each line out to the configured back-ends:
 *
 *   FILE        <base_dir>/<job id>.log (execution ids keep their @epoch),
 *               mode 0600. Berth APPENDS (quirk Q11 fixed): every run
 *               starts with a separator line "==== run revision <rev> ====",
 *               so the attempts of a retried job follow each other. A
 *               failure to open the file fails the run (spec 10.2).
 *               Deviation: base_dir is created (mode 0700) by joblog_new
 *               when missing; Go requires it to exist.
 *   STD_OUTPUT  one process-wide stream (stdout, or stderr with
 *               settings.output std_err) at the entry's level. Its lines
 *               carry "[job <id>] " before the message, as the jobs of all
 *               workers interleave there.
 *   DB          not supported: ignored with a warning at start-up. The log
 *               API therefore retrieves from FILE even when DB is listed
 *               (Go would prefer DB).
 *
 * Lines use the common format of log.h:
 *   <RFC3339 time> [<LEVEL>] [<file>:<line>]: <message>
 * Host lines pass their source file and line; plugin lines pass the job
 * type name and line 0, which prints as "[<TYPE>]" (e.g. "[DEMO]"). Each
 * back-end drops lines below its own level; FATAL is a level like the
 * others and never exits (quirk Q13). Each line is one write(2) on a file
 * opened O_APPEND, so lines of different writers never mix.
 *
 * When no back-end is usable (only DB configured) lines go to the service
 * log tagged "[job <id>]", as before job loggers existed.
 *
 * Sweepers: one thread per back-end with a `sweeper` block (job_loggers
 * first: when both lists configure FILE, the job logger's wins; only FILE
 * sweeps, a DB sweeper is ignored with a warning). It runs once at start,
 * then every `duration` days, and removes what sits directly inside
 * work_dir with a modification time older than `duration` days: files,
 * symbolic links (the link itself, never its target) and empty
 * directories. Non-empty directories are left alone without an error (Go
 * reports "directory not empty"); the log of a run still open in this
 * process is never removed. Errors of one sweep are logged as one line.
 * berth.log_sweep_interval_seconds (env BERTH_SWEEP_INTERVAL_SECONDS,
 * 1..31536000, 0 = unset) replaces the period (not the age limit); tests
 * use it. Harbor's
 * read-only-mode check before a sweep is not done (Berth has no core
 * configuration).
 *
 * Threads: everything here is thread-safe except that a joblog_run is
 * written and closed by the one thread that opened it (other threads
 * reach it through joblog_write_id). joblog_free must not run while a run
 * may still write (the daemon leaks the joblog when the worker pool left
 * abandoned runs behind). */
#ifndef BERTH_JOBLOG_H
#define BERTH_JOBLOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "common/util.h"

/* Check-in texts longer than this are logged as "<DATA BLOCK: <n> bytes>"
 * (the rule of spec 7.5). */
#define JOBLOG_CHECKIN_MAX 256
/* Largest log line (longer messages are cut). */
#define JOBLOG_LINE_MAX 8192

struct joblog;
struct joblog_run;

/* Builds the job loggers of cfg->job_loggers and the sweepers of
 * cfg->job_loggers and cfg->loggers (not started yet). Creates missing
 * FILE base directories with mode 0700. Problems (DB logger, a directory
 * that cannot be created) are logged as warnings; never NULL. cfg is
 * copied from, not kept. */
struct joblog *joblog_new(const struct berth_config *cfg);
/* Starts the sweeper threads (each sweeps once at once). */
int joblog_start_sweepers(struct joblog *jl, struct berr *err);
/* Stops and joins the sweepers, frees everything. NULL-safe. No run may
 * be open any more. */
void joblog_free(struct joblog *jl);

/* The lowest level any back-end writes (the level run hooks filter with);
 * the service log's level when there is no back-end. */
int joblog_min_level(const struct joblog *jl);

/* --- per run ------------------------------------------------------------- */

/* Opens the loggers of one run of job_id (type tags nothing in FILE lines;
 * it is kept for the service-log fallback) and writes the separator line
 * to each FILE back-end. NULL when a FILE log cannot be opened (err says
 * which and why; the run must fail) or job_id is unusable as a file name
 * (contains '/' or ".."). */
struct joblog_run *joblog_run_open(struct joblog *jl, const char *job_id,
				   int64_t revision, struct berr *err);
/* One line at level (enum blog_level) from file:line (line <= 0: file
 * alone, for plugin lines tagged with the job type). */
void joblog_run_write(struct joblog_run *r, int level, const char *file,
		      int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void joblog_run_vwrite(struct joblog_run *r, int level, const char *file,
		       int line, const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));
/* Closes the run's files. NULL-safe. */
void joblog_run_close(struct joblog_run *r);

/* A line for job_id from any thread: into the run of job_id open in this
 * process if there is one; otherwise appended to an existing
 * <base_dir>/<job_id>.log (never created here) and written to STD_OUTPUT.
 * Used for host lines outside a run and by the stop-grace monitor. */
void joblog_write_id(struct joblog *jl, const char *job_id, int level,
		     const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* True while a run of job_id is open in this process. */
bool joblog_run_active(struct joblog *jl, const char *job_id);

/* The check-in text as logged: text itself, or "<DATA BLOCK: <n> bytes>"
 * written into buf when longer than JOBLOG_CHECKIN_MAX. */
const char *joblog_checkin_text(const char *text, char *buf, size_t n);

/* --- retrieval (spec 2.10) ----------------------------------------------- */

enum joblog_id_check {
	JOBLOG_ID_OK = 0,
	JOBLOG_ID_TRAVERSAL,  /* ".." or '/': 400 plain text */
	JOBLOG_ID_BAD_LENGTH, /* not 24 chars before the last '@' */
	JOBLOG_ID_BAD_HEX,    /* 24 chars, not all hex */
};

/* Checks a log id in the order of spec 2.10: traversal first, then the
 * FILE getter's rule (strip from the last '@'; the rest must be exactly
 * 24 hex digits, either case). */
enum joblog_id_check joblog_check_id(const char *id);
/* The error details of a check result ("invalid length of log identify",
 * "invalid log identify", ...). */
const char *joblog_id_error(enum joblog_id_check c);

/* True when some job logger can be read back (FILE). */
bool joblog_retrievable(const struct joblog *jl);

/* Opens the log of id for reading: <base_dir>/<id>.log of the first FILE
 * job logger, which must resolve (realpath) inside base_dir and be a
 * regular file. Returns 0 with *fd (close it), 1 when there is no such log
 * (404), or -1 with err (500). */
int joblog_open_log(struct joblog *jl, const char *id, int *fd,
		    struct berr *err);

/* Where reading the last limit bytes of a size-byte log starts (spec 2.10
 * step 6); limit <= 0 means everything (0). */
off_t joblog_tail_start(off_t size, int64_t limit);
/* Reads the last limit bytes (limit <= 0: all) of the open log into *out
 * (NUL-terminated, *len bytes). 0, or -1 with err. */
int joblog_read_tail(int fd, int64_t limit, char **out, size_t *len,
		     struct berr *err);

/* Live-follow slots: at most max followers at a time. enter returns false
 * when all are taken; every successful enter needs one leave. */
bool joblog_follow_enter(struct joblog *jl, int max);
void joblog_follow_leave(struct joblog *jl);

/* --- sweeping (spec 10.4) ------------------------------------------------ */

/* One sweep of work_dir: removes the entries directly inside it older than
 * max_age_seconds (see above), skipping logs of runs open in jl (may be
 * NULL). *removed counts what went. 0, or -1 when something could not be
 * removed or work_dir not read (err lists the failures). */
int joblog_sweep(struct joblog *jl, const char *work_dir,
		 int64_t max_age_seconds, size_t *removed, struct berr *err);

#endif

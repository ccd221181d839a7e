/* log.h - the daemon's service log. Each output has a level and a format:
 *   text   the jobservice text format (the default):
 *            <RFC3339 time> [<LEVEL>] [<file>:<line>]: <message>
 *   json   one JSON object per line, for log shippers:
 *            {"time":"2026-01-02T03:04:05.678Z","level":"INFO",
 *             "caller":"main.c:222","message":"...","job_id":"...",
 *             "job_type":"DEMO"}
 *          job_id and job_type are there when the line is written by a
 *          worker thread while it handles a job (blog_set_context)
 *   plain  "<level>: <message>", for the command line (--check-config)
 * The macros check the level before formatting. Thread-safe. */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

enum blog_level {
	BLOG_DEBUG = 0,
	BLOG_INFO = 1,
	BLOG_WARNING = 2,
	BLOG_ERROR = 3,
	BLOG_FATAL = 4,
};

extern int blog_min_level;

enum blog_format {
	BLOG_FORMAT_TEXT = 0,
	BLOG_FORMAT_JSON = 1,
	BLOG_FORMAT_PLAIN = 2,
};

/* Parses DEBUG/INFO/WARNING/WARN/ERROR/FATAL case-insensitively.
 * Returns -1 when unknown. */
int blog_level_parse(const char *s);
const char *blog_level_name(int level);
#define BLOG_MAX_OUTPUTS 8

/* Replaces every output by f (NULL: back to the default, stderr), which
 * then writes whatever passes blog_min_level. Owned outputs are closed. */
void blog_set_output(FILE *f);
/* Adds an output with its own minimum level and format (one per service
 * logger); blog_min_level becomes the lowest level of all outputs. owned:
 * fclose() it on the next blog_set_output(). Returns -1 when
 * BLOG_MAX_OUTPUTS are in use. */
int blog_add_output(FILE *f, int level, bool owned, enum blog_format format);
void blog_set_level(int level);
/* "text" or "json" (case-insensitive); -1 when unknown. */
int blog_format_parse(const char *s);
/* The job the calling thread handles now (NULL, NULL: none); JSON lines
 * written by this thread carry it. Copied; thread-local. */
void blog_set_context(const char *job_id, const char *job_type);

void blog_write(int level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void blog_vwrite(int level, const char *file, int line, const char *fmt,
		 va_list ap)
	__attribute__((format(printf, 4, 0)));
/* Formats one line in the common format into buf (always NUL-terminated,
 * ends with '\n'); returns its length. Used by job loggers too. */
size_t blog_format_line(char *buf, size_t n, int level, const char *file,
			int line, const char *fmt, va_list ap)
	__attribute__((format(printf, 6, 0)));
/* The same with the arguments given directly. */
size_t blog_format_linef(char *buf, size_t n, int level, const char *file,
			 int line, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* One JSON line (see the json format above) into buf (n > 256, always
 * NUL-terminated, ends with '\n'); returns its length. job_id NULL: the
 * calling thread's job, if any. Used by the STD_OUTPUT job logger. */
size_t blog_format_json(char *buf, size_t n, int level, const char *file,
			int line, const char *job_id, const char *msg);

#define BLOG_AT(lvl, ...)                                                    \
	do {                                                                 \
		if ((lvl) >= blog_min_level)                                 \
			blog_write((lvl), __FILE__, __LINE__, __VA_ARGS__);  \
	} while (0)

#define log_debug(...) BLOG_AT(BLOG_DEBUG, __VA_ARGS__)
#define log_info(...) BLOG_AT(BLOG_INFO, __VA_ARGS__)
#define log_warn(...) BLOG_AT(BLOG_WARNING, __VA_ARGS__)
#define log_error(...) BLOG_AT(BLOG_ERROR, __VA_ARGS__)

#endif

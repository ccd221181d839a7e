/* log.c - service log; see log.h. */
#include "logs/log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int blog_min_level = BLOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* Outputs: one (stderr at blog_min_level) unless service loggers added
 * more, each with its own level. */
struct sink {
	FILE *f;
	int level;
	bool owned; /* fclose() on reset */
};
static struct sink sinks[BLOG_MAX_OUTPUTS];
static size_t n_sinks;

static const char *const level_names[] = {"DEBUG", "INFO", "WARNING",
					  "ERROR", "FATAL"};

int
blog_level_parse(const char *s)
{
	if (!s)
		return -1;
	for (int i = 0; i < 5; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	if (strcasecmp(s, "WARN") == 0)
		return BLOG_WARNING;
	return -1;
}

const char *
blog_level_name(int level)
{
	if (level < 0 || level > 4)
		return "INFO";
	return level_names[level];
}

static void
reset_locked(void)
{
	for (size_t i = 0; i < n_sinks; i++)
		if (sinks[i].owned)
			fclose(sinks[i].f);
	n_sinks = 0;
}

void
blog_set_output(FILE *f)
{
	pthread_mutex_lock(&log_lock);
	reset_locked();
	if (f) {
		sinks[0] = (struct sink){f, -1, false};
		n_sinks = 1;
	}
	pthread_mutex_unlock(&log_lock);
}

int
blog_add_output(FILE *f, int level, bool owned)
{
	pthread_mutex_lock(&log_lock);
	if (n_sinks == BLOG_MAX_OUTPUTS) {
		pthread_mutex_unlock(&log_lock);
		return -1;
	}
	sinks[n_sinks++] = (struct sink){f, level, owned};
	int min = BLOG_FATAL;
	for (size_t i = 0; i < n_sinks; i++)
		if (sinks[i].level < min)
			min = sinks[i].level;
	blog_min_level = min;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void
blog_set_level(int level)
{
	blog_min_level = level;
}

size_t
blog_format_line(char *buf, size_t n, int level, const char *file, int line,
		 const char *fmt, va_list ap)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	const char *base = file ? strrchr(file, '/') : NULL;
	base = base ? base + 1 : (file ? file : "?");
	int off = snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02dZ [%s] [%s:%d]: ",
			   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			   tm.tm_hour, tm.tm_min, tm.tm_sec,
			   blog_level_name(level), base, line);
	if (off < 0)
		off = 0;
	if ((size_t)off >= n - 2)
		off = (int)n - 2;
	int m = vsnprintf(buf + off, n - (size_t)off - 1, fmt, ap);
	size_t len = (size_t)off + (m < 0 ? 0 : (size_t)m);
	if (len > n - 2)
		len = n - 2;
	/* one record per line: newlines inside a message are flattened */
	for (size_t i = (size_t)off; i < len; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	buf[len++] = '\n';
	buf[len] = '\0';
	return len;
}

void
blog_vwrite(int level, const char *file, int line, const char *fmt,
	    va_list ap)
{
	char buf[4096];
	size_t len = blog_format_line(buf, sizeof(buf), level, file, line,
				      fmt, ap);
	pthread_mutex_lock(&log_lock);
	if (n_sinks == 0) {
		fwrite(buf, 1, len, stderr);
		fflush(stderr);
	}
	for (size_t i = 0; i < n_sinks; i++) {
		/* level -1: the sink follows blog_min_level (checked by the
		 * caller's macro) */
		if (level < sinks[i].level)
			continue;
		fwrite(buf, 1, len, sinks[i].f);
		fflush(sinks[i].f);
	}
	pthread_mutex_unlock(&log_lock);
}

void
blog_write(int level, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	blog_vwrite(level, file, line, fmt, ap);
	va_end(ap);
}

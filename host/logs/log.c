/* log.c - service log; see log.h. */
#include "logs/log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/utf8.h"

int blog_min_level = BLOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* Outputs: one (stderr at blog_min_level) unless service loggers added
 * more, each with its own level and format. */
struct sink {
	FILE *f;
	int level;
	bool owned; /* fclose() on reset */
	enum blog_format format;
};
static struct sink sinks[BLOG_MAX_OUTPUTS];
static size_t n_sinks;

/* the job this thread handles (blog_set_context) */
static __thread char ctx_job_id[64];
static __thread char ctx_job_type[128];

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
		sinks[0] = (struct sink){f, -1, false, BLOG_FORMAT_TEXT};
		n_sinks = 1;
	}
	pthread_mutex_unlock(&log_lock);
}

int
blog_add_output(FILE *f, int level, bool owned, enum blog_format format)
{
	pthread_mutex_lock(&log_lock);
	if (n_sinks == BLOG_MAX_OUTPUTS) {
		pthread_mutex_unlock(&log_lock);
		return -1;
	}
	sinks[n_sinks++] = (struct sink){f, level, owned, format};
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

int
blog_format_parse(const char *s)
{
	if (s && strcasecmp(s, "text") == 0)
		return BLOG_FORMAT_TEXT;
	if (s && strcasecmp(s, "json") == 0)
		return BLOG_FORMAT_JSON;
	return -1;
}

static void
copy_field(char *dst, size_t n, const char *s)
{
	size_t len = s ? strnlen(s, n - 1) : 0;
	memcpy(dst, s ? s : "", len);
	dst[len] = '\0';
}

void
blog_set_context(const char *job_id, const char *job_type)
{
	copy_field(ctx_job_id, sizeof(ctx_job_id), job_id);
	copy_field(ctx_job_type, sizeof(ctx_job_type), job_type);
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

/* Appends s as the body of a JSON string to buf[*len..cap): quotes,
 * backslashes and control characters escaped, invalid UTF-8 replaced by
 * U+FFFD. Stops before a character that would not fit (cap - 16 bytes are
 * usable, leaving room for the closing of the object). */
static void
json_append(char *buf, size_t *len, size_t cap, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t o = *len, limit = cap - 16;
	while (*s) {
		char esc[8];
		const char *piece = esc;
		size_t plen, adv = 1;
		unsigned c = *s;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			plen = 2;
		} else if (c < 0x20) {
			plen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c);
		} else if ((adv = utf8_len(s)) == 0) {
			piece = "\xEF\xBF\xBD"; /* U+FFFD */
			plen = 3;
			adv = 1;
		} else {
			piece = (const char *)s;
			plen = adv;
		}
		if (o + plen > limit)
			break;
		memcpy(buf + o, piece, plen);
		o += plen;
		s += adv;
	}
	*len = o;
}

static void
json_field(char *buf, size_t *len, size_t cap, const char *key,
	   const char *value)
{
	size_t o = *len;
	int n = snprintf(buf + o, cap - o, ",\"%s\":\"", key);
	if (n < 0 || o + (size_t)n + 20 > cap)
		return;
	o += (size_t)n;
	json_append(buf, &o, cap, value);
	buf[o++] = '"';
	*len = o;
}

/* One JSON object and '\n' into buf (cap > 256); returns its length.
 * job_id NULL: the thread's context (blog_set_context). */
static size_t
json_line(char *buf, size_t cap, int level, const char *file, int line,
	  const struct timespec *ts, const char *job_id, const char *msg)
{
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	size_t o = (size_t)snprintf(
		buf, cap,
		"{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\","
		"\"level\":\"%s\"",
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000000,
		blog_level_name(level));
	char caller[160];
	const char *base = file ? strrchr(file, '/') : NULL;
	base = base ? base + 1 : (file ? file : "?");
	if (line > 0)
		snprintf(caller, sizeof(caller), "%s:%d", base, line);
	else
		snprintf(caller, sizeof(caller), "%s", base);
	json_field(buf, &o, cap, "caller", caller);
	/* the type is known for the thread's own job only */
	bool own = !job_id || strcmp(job_id, ctx_job_id) == 0;
	if (!job_id)
		job_id = ctx_job_id;
	if (job_id[0])
		json_field(buf, &o, cap, "job_id", job_id);
	if (own && ctx_job_type[0])
		json_field(buf, &o, cap, "job_type", ctx_job_type);
	/* the message last: it is the one field that may be cut short */
	json_field(buf, &o, cap, "message", msg);
	buf[o++] = '}';
	buf[o++] = '\n';
	buf[o] = '\0';
	return o;
}

size_t
blog_format_json(char *buf, size_t n, int level, const char *file, int line,
		 const char *job_id, const char *msg)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return json_line(buf, n, level, file, line, &ts, job_id, msg);
}

size_t
blog_format_linef(char *buf, size_t n, int level, const char *file,
		  int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t len = blog_format_line(buf, n, level, file, line, fmt, ap);
	va_end(ap);
	return len;
}

/* "warning: <message>\n" */
static size_t
plain_line(char *buf, size_t n, int level, const char *msg)
{
	char name[16];
	const char *l = blog_level_name(level);
	size_t i;
	for (i = 0; l[i] && i < sizeof(name) - 1; i++)
		name[i] = (char)(l[i] >= 'A' && l[i] <= 'Z' ? l[i] + 32 : l[i]);
	name[i] = '\0';
	int m = snprintf(buf, n - 1, "%s: %s", name, msg);
	size_t len = m < 0 ? 0 : (size_t)m;
	if (len > n - 2)
		len = n - 2;
	buf[len++] = '\n';
	buf[len] = '\0';
	return len;
}

void
blog_vwrite(int level, const char *file, int line, const char *fmt,
	    va_list ap)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char msg[4096];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* one record per line: newlines inside a message are flattened */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';

	/* each format is built once, when an output wants it */
	char text[4096], json[8192], plain[4096];
	size_t len[3] = {0, 0, 0};
	pthread_mutex_lock(&log_lock);
	struct sink fallback = {stderr, -1, false, BLOG_FORMAT_TEXT};
	size_t n = n_sinks ? n_sinks : 1;
	for (size_t i = 0; i < n; i++) {
		const struct sink *k = n_sinks ? &sinks[i] : &fallback;
		/* level -1: the sink follows blog_min_level (checked by the
		 * caller's macro) */
		if (level < k->level)
			continue;
		const char *out;
		size_t olen;
		if (k->format == BLOG_FORMAT_JSON) {
			if (!len[1])
				len[1] = json_line(json, sizeof(json), level,
						   file, line, &ts, NULL, msg);
			out = json;
			olen = len[1];
		} else if (k->format == BLOG_FORMAT_PLAIN) {
			if (!len[2])
				len[2] = plain_line(plain, sizeof(plain),
						    level, msg);
			out = plain;
			olen = len[2];
		} else {
			if (!len[0])
				len[0] = blog_format_linef(text, sizeof(text),
							   level, file, line,
							   "%s", msg);
			out = text;
			olen = len[0];
		}
		fwrite(out, 1, olen, k->f);
		fflush(k->f);
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

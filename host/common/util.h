/* util.h - small helpers shared by every host module: the xmalloc family
 * (abort on out-of-memory), the caller-provided error struct, CSPRNG ids,
 * time and file helpers. */
#ifndef BERTH_UTIL_H
#define BERTH_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BERR_MSG_MAX 1024

/* Detail of a failure. Functions return 0 / negative and fill this in.
 * file/line/col are set for configuration errors (0 when unknown). */
struct berr {
	char msg[BERR_MSG_MAX];
	char file[512];
	int line;
	int col;
};

void berr_clear(struct berr *e);
/* Sets msg (printf style); leaves file/line/col alone. Returns -1. */
int berr_set(struct berr *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Sets msg and position. Returns -1. */
int berr_set_at(struct berr *e, const char *file, int line, int col,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* "file:line:col: msg" (or just msg when there is no position). */
const char *berr_str(const struct berr *e, char *buf, size_t n);

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap)
	__attribute__((format(printf, 1, 0)));

/* Fills buf with n bytes from the kernel CSPRNG (getrandom). Aborts on
 * failure: an id that is not random is worse than no daemon. */
void util_random_bytes(void *buf, size_t n);
/* 24 lowercase hex chars from 12 random bytes, NUL-terminated. */
void util_hex24(char out[25]);
/* Uniform integer in [0, n). */
uint32_t util_random_below(uint32_t n);

int64_t util_now(void);          /* epoch seconds */
int64_t util_now_ms(void);       /* epoch milliseconds */
int64_t util_monotonic_ms(void); /* CLOCK_MONOTONIC milliseconds */
void util_sleep_ms(int64_t ms);

/* Reads a whole file of at most max bytes. *out is NUL-terminated. */
int util_read_file(const char *path, size_t max, char **out, size_t *len,
		   struct berr *e);
/* Writes "<port>\n" to path.tmp and renames it over path, so a reader
 * never sees a partial file. */
int util_write_port_file(const char *path, int port, struct berr *e);
/* mkdir -p with mode for each created component. */
int util_mkdir_p(const char *path, mode_t mode);
/* rel if absolute, else dir/rel. Always a new string. */
char *util_path_join(const char *dir, const char *rel);
/* Directory part of path ("." when none). New string. */
char *util_dirname(const char *path);
/* Trims ASCII whitespace in place; returns s advanced past leading space. */
char *util_trim(char *s);
/* Strict decimal parse of a whole string into int64 with bounds. */
int util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Constant-time comparison; true when equal. */
bool util_ct_equal(const char *a, size_t alen, const char *b, size_t blen);
/* Levenshtein distance, capped at 255. */
int util_edit_distance(const char *a, const char *b);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif

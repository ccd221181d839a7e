/* util.c - the registry client's small parts: result names, validation of
 * names, tags and digests, hashing (OpenSSL EVP), error text, the shared
 * throttle. */
#include "internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *
berth_reg_result_name(int rc)
{
	static const char *const names[] = {
		[BERTH_REG_OK] = "OK",
		[BERTH_REG_NOT_FOUND] = "NOT_FOUND",
		[BERTH_REG_UNAUTHORIZED] = "UNAUTHORIZED",
		[BERTH_REG_DENIED] = "DENIED",
		[BERTH_REG_DIGEST_MISMATCH] = "DIGEST_MISMATCH",
		[BERTH_REG_PROTOCOL] = "PROTOCOL",
		[BERTH_REG_TRANSPORT] = "TRANSPORT",
		[BERTH_REG_CANCELLED] = "CANCELLED",
		[BERTH_REG_TOO_LARGE] = "TOO_LARGE",
		[BERTH_REG_UNSUPPORTED] = "UNSUPPORTED",
		[BERTH_REG_NOMEM] = "NOMEM",
		[BERTH_REG_INVALID] = "INVALID",
	};
	if (rc < 0 || (size_t)rc >= sizeof(names) / sizeof(names[0]))
		return "UNKNOWN";
	return names[rc];
}

void
reg_errf(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

char *
reg_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

const char *
reg_skip_ows(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

char *
reg_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

/* ---- names -------------------------------------------------------------- */

static bool
hexstr(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[n] == '\0';
}

bool
berth_reg_is_digest(const char *ref)
{
	if (!ref)
		return false;
	if (strncmp(ref, "sha256:", 7) == 0)
		return strlen(ref) == 7 + 64 && hexstr(ref + 7, 64);
	if (strncmp(ref, "sha512:", 7) == 0)
		return strlen(ref) == 7 + 128 && hexstr(ref + 7, 128);
	return false;
}

static bool
alnum_lc(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool
berth_reg_valid_repo(const char *repo)
{
	if (!repo || !*repo || strlen(repo) > 255)
		return false;
	const char *p = repo;
	for (;;) {
		/* one path component: alnum (separator alnum)* */
		if (!alnum_lc(*p))
			return false;
		while (alnum_lc(*p))
			p++;
		while (*p == '.' || *p == '_' || *p == '-') {
			if (*p == '.') {
				p++;
			} else if (*p == '_') {
				p += p[1] == '_' ? 2 : 1;
			} else {
				while (*p == '-')
					p++;
			}
			if (!alnum_lc(*p))
				return false;
			while (alnum_lc(*p))
				p++;
		}
		if (*p == '\0')
			return true;
		if (*p != '/')
			return false;
		p++;
	}
}

bool
berth_reg_valid_tag(const char *tag)
{
	if (!tag || !*tag)
		return false;
	size_t n = strlen(tag);
	if (n > 128)
		return false;
	if (!(isalnum((unsigned char)tag[0]) || tag[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)tag[i];
		if (!(isalnum(c) || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* ---- digests ------------------------------------------------------------ */

const EVP_MD *
reg_digest_md(const char *digest)
{
	if (digest && strncmp(digest, "sha256:", 7) == 0)
		return EVP_sha256();
	if (digest && strncmp(digest, "sha512:", 7) == 0)
		return EVP_sha512();
	return NULL;
}

int
reg_hash_init(struct reg_hash *h, const EVP_MD *md)
{
	h->md = md;
	h->alg = md == EVP_sha512() ? "sha512" : "sha256";
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx)
		return BERTH_REG_NOMEM;
	if (EVP_DigestInit_ex(h->ctx, md, NULL) != 1) {
		EVP_MD_CTX_free(h->ctx);
		h->ctx = NULL;
		return BERTH_REG_NOMEM;
	}
	return 0;
}

void
reg_hash_update(struct reg_hash *h, const void *p, size_t n)
{
	if (h->ctx && n)
		EVP_DigestUpdate(h->ctx, p, n);
}

void
reg_hash_final(struct reg_hash *h, char out[BERTH_REG_DIGEST_MAX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	out[0] = '\0';
	if (!h->ctx)
		return;
	EVP_DigestFinal_ex(h->ctx, md, &n);
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
	size_t o = (size_t)snprintf(out, BERTH_REG_DIGEST_MAX, "%s:", h->alg);
	static const char hx[] = "0123456789abcdef";
	for (unsigned int i = 0; i < n && o + 2 < BERTH_REG_DIGEST_MAX; i++) {
		out[o++] = hx[md[i] >> 4];
		out[o++] = hx[md[i] & 15];
	}
	out[o] = '\0';
}

void
reg_hash_fini(struct reg_hash *h)
{
	if (h->ctx)
		EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

int
reg_digest_like(const char *like, const void *data, size_t len,
		char out[BERTH_REG_DIGEST_MAX])
{
	const EVP_MD *md = reg_digest_md(like);
	struct reg_hash h;
	int rc = reg_hash_init(&h, md ? md : EVP_sha256());
	if (rc) {
		out[0] = '\0';
		return rc;
	}
	reg_hash_update(&h, data, len);
	reg_hash_final(&h, out);
	return 0;
}

void
berth_reg_digest_of(const void *data, size_t len,
		    char out[BERTH_REG_DIGEST_MAX])
{
	reg_digest_like("sha256:", data, len, out);
}

const char *
reg_short(const char *digest, char buf[32])
{
	size_t n = strlen(digest);
	if (n <= 19 + 3) {
		snprintf(buf, 32, "%s", digest);
	} else {
		memcpy(buf, digest, 19);
		memcpy(buf + 19, "...", 4);
	}
	return buf;
}

/* ---- text --------------------------------------------------------------- */

const char *
reg_header(const struct berth_http_response *resp, const char *name)
{
	return berth_http_response_header(resp, name);
}

void
reg_clean(const char *s, size_t len, char *out, size_t outlen)
{
	if (outlen == 0)
		return;
	size_t o = 0;
	for (size_t i = 0; i < len && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f) {
			if (o > 0 && out[o - 1] == ' ')
				continue;
			c = ' ';
		}
		if (o + 4 >= outlen) {
			if (outlen > 4) {
				memcpy(out + outlen - 4, "...", 3);
				o = outlen - 1;
			}
			break;
		}
		out[o++] = (char)c;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

char *
reg_escape(const char *s)
{
	size_t cap = strlen(s) * 3 + 1;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	if (berth_http_url_escape(s, out, cap) < 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* ---- throttle ------------------------------------------------------------
 *
 * A virtual clock: each take(n) reserves the next n / rate seconds of the
 * bucket's timeline and waits until its reservation starts, so threads
 * sharing the bucket add up to the rate. An idle bucket lends at most
 * BURST_MS of credit. */

#define THROTTLE_BURST_MS 100

struct berth_reg_throttle {
	pthread_mutex_t mu;
	double rate_per_ms; /* bytes per millisecond */
	double next_ms;     /* the end of what is reserved */
};

struct berth_reg_throttle *
berth_reg_throttle_new(long long bytes_per_s)
{
	if (bytes_per_s <= 0)
		return NULL;
	struct berth_reg_throttle *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->mu, NULL);
	t->rate_per_ms = (double)bytes_per_s / 1000.0;
	t->next_ms = (double)berth_http_now_ms();
	return t;
}

void
berth_reg_throttle_free(struct berth_reg_throttle *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t);
}

bool
berth_reg_throttle_take(struct berth_reg_throttle *t, long long n,
			bool (*cancel)(void *ud), void *cancel_ud)
{
	if (!t || n <= 0)
		return true;
	pthread_mutex_lock(&t->mu);
	double now = (double)berth_http_now_ms();
	if (t->next_ms < now - THROTTLE_BURST_MS)
		t->next_ms = now - THROTTLE_BURST_MS;
	double start = t->next_ms;
	t->next_ms += (double)n / t->rate_per_ms;
	pthread_mutex_unlock(&t->mu);
	/* wait until the reservation ends: the bytes then moved no faster
	 * than the rate */
	double until = start + (double)n / t->rate_per_ms;
	for (;;) {
		if (cancel && cancel(cancel_ud))
			return false;
		double left = until - (double)berth_http_now_ms();
		if (left <= 0)
			return true;
		if (left > REG_POLL_MS)
			left = REG_POLL_MS;
		struct timespec ts = {
			.tv_sec = 0,
			.tv_nsec = (long)(left * 1e6),
		};
		nanosleep(&ts, NULL);
	}
}

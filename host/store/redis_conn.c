/* redis_conn.c - Redis URL parsing and the per-thread connection pool; see
 * redis_conn.h and redis_cmd.h. The embedded redis-server child is in
 * embedded_redis.c.
 *
 * Passwords never reach an error message or a log line: messages name the
 * target (redis_target_describe) or echo the URL through redis_url_redact. */
#include "store/redis_conn.h"
#include "store/redis_cmd.h"
#include "store/redis_sentinel.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "logs/log.h"
#include "metrics/metrics.h"

#define REDIS_DEFAULT_PORT 6379
#define REDIS_UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
/* A context idle at least this long is checked with PING before use. */
#define REDIS_BORROW_CHECK_MS 15000
/* Sentinel pools: how long a submission waits for a replica's ACK, and how
 * often the master's replicas are counted (ROLE). */
#define REDIS_WAIT_REPLICA_MS 250
#define REDIS_REPLICAS_CHECK_MS 5000

/* ---- URL parsing ------------------------------------------------------ */

void
redis_target_init(struct redis_target *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->host, sizeof(t->host), "localhost");
	t->port = REDIS_DEFAULT_PORT;
	t->idle_timeout_seconds = -1;
}

/* Length of the scheme when s starts with "scheme://", else 0. */
static size_t
url_scheme_len(const char *s)
{
	size_t i = 0;
	if (!isalpha((unsigned char)s[0]))
		return 0;
	while (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' ||
	       s[i] == '.')
		i++;
	return strncmp(s + i, "://", 3) == 0 ? i : 0;
}

static bool
has_prefix_ci(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

char *
redis_url_normalise(const char *url)
{
	if (!url)
		return xstrdup("");
	if (!url[0] || url[0] == '/' || strcmp(url, "embedded") == 0 ||
	    has_prefix_ci(url, "unix:") || strstr(url, "://"))
		return xstrdup(url);
	return xasprintf("redis://%s", url);
}

/* True when the query parameter p (up to '=', '&' or the end) is a
 * password: "password" or a name ending in "_password". */
static bool
query_key_is_password(const char *p, size_t *klen)
{
	size_t n = strcspn(p, "=&");
	*klen = n;
	if (p[n] != '=')
		return false;
	if (n == 8)
		return strncasecmp(p, "password", 8) == 0;
	return n > 9 && strncasecmp(p + n - 9, "_password", 9) == 0;
}

/* Replaces every value of a "password=" (or "..._password=") query
 * parameter with "***". Takes and returns a heap string. */
static char *
redact_query(char *s)
{
	char *q = strchr(s, '?');
	if (!q)
		return s;
	/* each "password=..." (9+ bytes) grows by at most 3 */
	char *out = xmalloc(2 * strlen(s) + 16);
	size_t n = (size_t)(q - s);
	memcpy(out, s, n);
	const char *p = q;
	while (*p) {
		/* p is at '?' or '&': copy it, then one parameter */
		out[n++] = *p++;
		const char *end = p + strcspn(p, "&");
		size_t len = (size_t)(end - p), klen;
		if (query_key_is_password(p, &klen)) {
			memcpy(out + n, p, klen + 1);
			n += klen + 1;
			if (len > klen + 1) {
				memcpy(out + n, "***", 3);
				n += 3;
			}
		} else {
			memcpy(out + n, p, len);
			n += len;
		}
		p = end;
	}
	out[n] = '\0';
	free(s);
	return out;
}

char *
redis_url_redact(const char *url)
{
	if (!url)
		return xstrdup("");
	const char *sep = strstr(url, "://");
	const char *auth = sep ? sep + 3 : url;
	char *out;
	if (url[0] == '/' || (!sep && has_prefix_ci(url, "unix:"))) {
		out = xstrdup(url);
	} else {
		/* userinfo ends at the last '@' (host, port, db and query
		 * never contain one) */
		const char *at = strrchr(auth, '@');
		if (!at) {
			out = xstrdup(url);
		} else {
			const char *colon = memchr(auth, ':',
						   (size_t)(at - auth));
			if (colon)
				out = xasprintf("%.*s:***%s",
						(int)(colon - url), url, at);
			else
				out = xasprintf("%.*s***%s",
						(int)(auth - url), url, at);
		}
	}
	return redact_query(out);
}

const char *
redis_target_describe(const struct redis_target *t, char *buf, size_t n)
{
	if (t->sentinel)
		snprintf(buf, n, "sentinel:%s", t->master_name);
	else if (t->unix_socket)
		snprintf(buf, n, "unix:%s", t->path);
	else if (strchr(t->host, ':'))
		snprintf(buf, n, "[%s]:%d", t->host, t->port);
	else
		snprintf(buf, n, "%s:%d", t->host, t->port);
	return buf;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..n) into out (cap bytes incl. NUL).
 * Returns 0, -1 on a bad escape, -2 when it does not fit. */
static int
pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int hi = hexval((unsigned char)s[i + 1]);
			int lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			if (c == 0)
				return -1; /* cannot live in a C string */
			i += 2;
		}
		if (o + 1 >= cap)
			return -2;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* Decodes a credential; the message names the field, never its value. */
static int
decode_secret(const char *field, const char *s, size_t n, char *out,
	      size_t cap, const char *red, struct berr *e)
{
	int rc = pct_decode(s, n, out, cap);
	if (rc == -1)
		return berr_set(e, "bad percent-encoding in the %s of redis "
				"URL %s", field, red);
	if (rc == -2)
		return berr_set(e, "the %s in redis URL %s is too long "
				"(at most %zu bytes)", field, red, cap - 1);
	return 0;
}

static int
parse_db(const char *s, size_t n, const char *red, int *db, struct berr *e)
{
	char buf[32];
	int64_t v;
	if (n == 0) {
		*db = 0;
		return 0;
	}
	bool digits = n < sizeof(buf);
	for (size_t i = 0; digits && i < n; i++)
		digits = isdigit((unsigned char)s[i]);
	if (digits) {
		memcpy(buf, s, n);
		buf[n] = '\0';
		if (util_parse_i64(buf, 0, INT_MAX, &v) == 0) {
			*db = (int)v;
			return 0;
		}
	}
	return berr_set(e, "bad database \"%.*s\" in redis URL %s (want a "
			"non-negative number, e.g. /2)", (int)(n > 32 ? 32 : n),
			s, red);
}

static int
parse_idle(const char *s, size_t n, const char *red, int *idle,
	   struct berr *e)
{
	char buf[32];
	int64_t v;
	if (n > 0 && n < sizeof(buf)) {
		memcpy(buf, s, n);
		buf[n] = '\0';
		if (util_parse_i64(buf, 0, INT_MAX, &v) == 0) {
			*idle = (int)v;
			return 0;
		}
	}
	return berr_set(e, "bad idle_timeout_seconds \"%.*s\" in redis URL "
			"%s (want a non-negative number of seconds)",
			(int)(n > 32 ? 32 : n), s, red);
}

/* The URL forms, for the query parameters each one takes. */
enum url_form { URL_TCP, URL_UNIX, URL_SENTINEL };

/* Parses "k=v&k=v" (q points after the '?'). Unix socket URLs also take
 * db, user and password here; sentinel URLs sentinel_user and
 * sentinel_password. */
static int
parse_query(const char *q, enum url_form form, const char *red,
	    struct redis_target *t, struct berr *e)
{
	bool unix_form = form == URL_UNIX;
	while (*q) {
		const char *end = q + strcspn(q, "&#");
		const char *eq = memchr(q, '=', (size_t)(end - q));
		size_t klen = eq ? (size_t)(eq - q) : (size_t)(end - q);
		const char *v = eq ? eq + 1 : end;
		size_t vlen = (size_t)(end - v);
		if (klen == 20 && strncmp(q, "idle_timeout_seconds", 20) == 0) {
			if (parse_idle(v, vlen, red, &t->idle_timeout_seconds,
				       e) < 0)
				return -1;
		} else if (unix_form && klen == 2 && strncmp(q, "db", 2) == 0) {
			if (parse_db(v, vlen, red, &t->db, e) < 0)
				return -1;
		} else if (unix_form && klen == 8 &&
			   strncmp(q, "password", 8) == 0) {
			if (decode_secret("password", v, vlen, t->password,
					  sizeof(t->password), red, e) < 0)
				return -1;
		} else if (unix_form && klen == 4 &&
			   strncmp(q, "user", 4) == 0) {
			if (decode_secret("user", v, vlen, t->user,
					  sizeof(t->user), red, e) < 0)
				return -1;
		} else if (form == URL_SENTINEL && klen == 17 &&
			   strncmp(q, "sentinel_password", 17) == 0) {
			if (decode_secret("sentinel_password", v, vlen,
					  t->sentinel_password,
					  sizeof(t->sentinel_password), red,
					  e) < 0)
				return -1;
		} else if (form == URL_SENTINEL && klen == 13 &&
			   strncmp(q, "sentinel_user", 13) == 0) {
			if (decode_secret("sentinel_user", v, vlen,
					  t->sentinel_user,
					  sizeof(t->sentinel_user), red, e) < 0)
				return -1;
		} else if (klen > 0) {
			log_warn("redis URL %s: ignoring unknown parameter "
				 "\"%.*s\"", red, (int)(klen > 64 ? 64 : klen),
				 q);
		}
		if (*end != '&')
			break;
		q = end + 1;
	}
	return 0;
}

static int
parse_unix(const char *s, const char *red, struct redis_target *t,
	   struct berr *e)
{
	size_t plen = strcspn(s, "?");
	if (plen == 0 || s[0] != '/')
		return berr_set(e, "the unix socket path in redis URL %s must "
				"be absolute", red);
	if (plen > REDIS_UNIX_PATH_MAX)
		return berr_set(e, "unix socket path in redis URL %s is too "
				"long (%zu bytes, at most %zu)", red, plen,
				REDIS_UNIX_PATH_MAX);
	t->unix_socket = true;
	memcpy(t->path, s, plen);
	t->path[plen] = '\0';
	t->port = 0;
	if (s[plen] == '?')
		return parse_query(s + plen + 1, URL_UNIX, red, t, e);
	return 0;
}

static bool
valid_host_char(int c, bool v6)
{
	if (isalnum(c) || c == '-' || c == '.' || c == '_')
		return true;
	return v6 && (c == ':' || c == '%');
}

/* host[:port] or [v6][:port] into a->host (cap sizeof(a->host)) and
 * a->port; an empty host or port leaves what a holds (the defaults). */
static int
parse_authority(const char *a, size_t n, const char *red,
		struct redis_addr *t, struct berr *e)
{
	const char *host = a, *port = NULL;
	size_t hlen, plen = 0;
	bool v6 = false;
	if (n > 0 && a[0] == '[') {
		const char *close = memchr(a, ']', n);
		if (!close)
			return berr_set(e, "missing ']' after the IPv6 address "
					"in redis URL %s", red);
		host = a + 1;
		hlen = (size_t)(close - host);
		if (hlen == 0)
			return berr_set(e, "empty host \"[]\" in redis URL %s",
					red);
		v6 = true;
		const char *rest = close + 1;
		size_t rlen = n - (size_t)(rest - a);
		if (rlen > 0 && rest[0] != ':')
			return berr_set(e, "unexpected text after ']' in redis "
					"URL %s", red);
		if (rlen > 0) {
			port = rest + 1;
			plen = rlen - 1;
		}
	} else {
		const char *colon = memchr(a, ':', n);
		hlen = colon ? (size_t)(colon - a) : n;
		if (colon) {
			port = colon + 1;
			plen = n - hlen - 1;
			if (memchr(port, ':', plen))
				return berr_set(e, "bad host in redis URL %s "
						"(put an IPv6 address in "
						"brackets: [::1]:6379)", red);
		}
	}
	if (hlen >= sizeof(t->host))
		return berr_set(e, "host name in redis URL %s is too long",
				red);
	for (size_t i = 0; i < hlen; i++)
		if (!valid_host_char((unsigned char)host[i], v6))
			return berr_set(e, "bad character '%c' in the host "
					"of redis URL %s",
					isprint((unsigned char)host[i]) ?
						host[i] : '?', red);
	if (hlen > 0) {
		memcpy(t->host, host, hlen);
		t->host[hlen] = '\0';
	}
	if (port) {
		char buf[16];
		int64_t v;
		bool ok = plen > 0 && plen < sizeof(buf);
		for (size_t i = 0; ok && i < plen; i++)
			ok = isdigit((unsigned char)port[i]);
		if (ok) {
			memcpy(buf, port, plen);
			buf[plen] = '\0';
			ok = util_parse_i64(buf, 1, 65535, &v) == 0;
		}
		if (!ok)
			return berr_set(e, "bad port \"%.*s\" in redis URL %s "
					"(want 1-65535)",
					(int)(plen > 32 ? 32 : plen), port,
					red);
		t->port = (int)v;
	}
	return 0;
}

/* The userinfo of s (up to its LAST '@') into t->user and t->password;
 * *rest is what follows it (s when there is none). */
static int
parse_userinfo(const char *s, const char *red, struct redis_target *t,
	       const char **rest, struct berr *e)
{
	const char *at = strrchr(s, '@');
	*rest = s;
	if (!at)
		return 0;
	const char *colon = memchr(s, ':', (size_t)(at - s));
	if (colon) {
		/* user:pass -> ACL AUTH user pass; :pass -> AUTH pass */
		if (decode_secret("user", s, (size_t)(colon - s), t->user,
				  sizeof(t->user), red, e) < 0 ||
		    decode_secret("password", colon + 1,
				  (size_t)(at - colon - 1), t->password,
				  sizeof(t->password), red, e) < 0)
			return -1;
	} else if (decode_secret("password", s, (size_t)(at - s),
				 t->password, sizeof(t->password), red,
				 e) < 0) {
		/* a lone user is taken as the password */
		return -1;
	}
	*rest = at + 1;
	return 0;
}

#define SENTINEL_URL_FORM "redis+sentinel://[:password@]host:port" \
	"[,host:port...]/mastername[/db]"

/* The master name: percent-decoded, printable, no spaces. */
static int
parse_master_name(const char *s, size_t n, const char *red,
		  struct redis_target *t, struct berr *e)
{
	if (n == 0)
		return berr_set(e, "redis URL %s names no master (want "
				SENTINEL_URL_FORM ")", red);
	int rc = pct_decode(s, n, t->master_name, sizeof(t->master_name));
	if (rc == -1)
		return berr_set(e, "bad percent-encoding in the master name "
				"of redis URL %s", red);
	if (rc == -2)
		return berr_set(e, "the master name in redis URL %s is too "
				"long (at most %zu bytes)", red,
				sizeof(t->master_name) - 1);
	for (const char *c = t->master_name; *c; c++)
		if (!isgraph((unsigned char)*c))
			return berr_set(e, "bad character in the master name "
					"of redis URL %s (want printable "
					"characters, no spaces)", red);
	return 0;
}

/* s points after "redis+sentinel://": [userinfo@]h1[:p1][,h2[:p2]...]
 * /master[/db][?query]. */
static int
parse_sentinel(const char *s, const char *red, struct redis_target *t,
	       struct berr *e)
{
	t->sentinel = true;
	t->host[0] = '\0';
	t->port = 0;
	const char *hp;
	if (parse_userinfo(s, red, t, &hp, e) < 0)
		return -1;
	size_t end = strcspn(hp, "?#");
	const char *slash = memchr(hp, '/', end);
	size_t alen = slash ? (size_t)(slash - hp) : end;
	if (alen == 0)
		return berr_set(e, "redis URL %s names no sentinel (want "
				SENTINEL_URL_FORM ")", red);
	const char *a = hp;
	for (;;) {
		const char *comma = memchr(a, ',', alen - (size_t)(a - hp));
		size_t n = comma ? (size_t)(comma - a)
				 : alen - (size_t)(a - hp);
		if (t->n_sentinels == REDIS_SENTINELS_MAX)
			return berr_set(e, "too many sentinels in redis URL %s "
					"(at most %d)", red,
					REDIS_SENTINELS_MAX);
		if (n == 0)
			return berr_set(e, "empty sentinel address (number "
					"%d) in redis URL %s",
					t->n_sentinels + 1, red);
		struct redis_addr *sa = &t->sentinels[t->n_sentinels];
		snprintf(sa->host, sizeof(sa->host), "localhost");
		sa->port = REDIS_SENTINEL_DEFAULT_PORT;
		if (parse_authority(a, n, red, sa, e) < 0)
			return -1;
		t->n_sentinels++;
		if (!comma)
			break;
		a = comma + 1;
	}
	if (!slash)
		return berr_set(e, "redis URL %s names no master (want "
				SENTINEL_URL_FORM ")", red);
	const char *name = slash + 1;
	size_t rest = end - alen - 1;
	const char *dbs = memchr(name, '/', rest);
	size_t nlen = dbs ? (size_t)(dbs - name) : rest;
	if (parse_master_name(name, nlen, red, t, e) < 0)
		return -1;
	if (dbs && parse_db(dbs + 1, rest - nlen - 1, red, &t->db, e) < 0)
		return -1;
	if (hp[end] == '?')
		return parse_query(hp + end + 1, URL_SENTINEL, red, t, e);
	return 0;
}

/* s points after "redis://". */
static int
parse_tcp(const char *s, const char *red, struct redis_target *t,
	  struct berr *e)
{
	const char *hp;
	if (parse_userinfo(s, red, t, &hp, e) < 0)
		return -1;
	size_t end = strcspn(hp, "?#");
	const char *slash = memchr(hp, '/', end);
	size_t alen = slash ? (size_t)(slash - hp) : end;
	struct redis_addr a;
	snprintf(a.host, sizeof(a.host), "%s", t->host);
	a.port = t->port;
	if (parse_authority(hp, alen, red, &a, e) < 0)
		return -1;
	memcpy(t->host, a.host, sizeof(t->host));
	t->port = a.port;
	if (slash && parse_db(slash + 1, end - alen - 1, red, &t->db, e) < 0)
		return -1;
	if (hp[end] == '?')
		return parse_query(hp + end + 1, URL_TCP, red, t, e);
	return 0;
}

static int
parse_any(const char *norm, const char *red, struct redis_target *t,
	  struct berr *e)
{
	if (norm[0] == '/')
		return parse_unix(norm, red, t, e);
	if (has_prefix_ci(norm, "unix:")) {
		const char *p = norm + 5;
		if (strncmp(p, "//", 2) == 0)
			p += 2;
		return parse_unix(p, red, t, e);
	}
	size_t sl = url_scheme_len(norm);
	if (sl == 5 && has_prefix_ci(norm, "redis"))
		return parse_tcp(norm + 8, red, t, e);
	if (sl == 6 && has_prefix_ci(norm, "rediss")) {
		t->tls = true;
		return berr_set(e, "redis URL %s: rediss:// (TLS) is not "
				"supported by this build: Debian's hiredis "
				"0.14 has no TLS support; use redis:// or a "
				"unix socket (or a local TLS tunnel)", red);
	}
	if (sl == 14 && has_prefix_ci(norm, "redis+sentinel"))
		return parse_sentinel(norm + 17, red, t, e);
	if (sl == 15 && has_prefix_ci(norm, "rediss+sentinel")) {
		t->tls = true;
		return berr_set(e, "redis URL %s: rediss+sentinel:// (TLS) is "
				"not supported by this build: Debian's hiredis "
				"0.14 has no TLS support; use "
				"redis+sentinel://", red);
	}
	if (sl > 0)
		return berr_set(e, "unknown scheme \"%.*s\" in redis URL %s "
				"(want redis://, redis+sentinel://, unix:// or "
				"a socket path)",
				(int)(sl > 32 ? 32 : sl), norm, red);
	return berr_set(e, "cannot parse redis URL %s", red);
}

int
redis_url_parse(const char *url, struct redis_target *t, struct berr *e)
{
	redis_target_init(t);
	if (!url || !url[0])
		return berr_set(e, "empty redis URL");
	if (strcmp(url, "embedded") == 0)
		return berr_set(e, "redis URL \"embedded\" names the daemon's "
				"own redis-server child; it is started with "
				"embedded_redis_start, not parsed");
	char *norm = redis_url_normalise(url);
	char *red = redis_url_redact(norm);
	int rc = parse_any(norm, red, t, e);
	if (rc < 0) {
		bool tls = t->tls;
		explicit_bzero(t, sizeof(*t));
		redis_target_init(t);
		t->tls = tls;
	}
	explicit_bzero(norm, strlen(norm));
	free(norm);
	free(red);
	return rc < 0 ? -1 : 0;
}

/* ---- the pool --------------------------------------------------------- */

/* One thread's connection. */
struct redis_slot {
	redisContext *c;
	uint64_t gen; /* sentinel pools: the master generation c was dialled
		       * in */
	int64_t last_used_ms;
	char *buf; /* this thread's RESP formatting buffer (resp_append) */
	size_t buf_cap;
};

struct redis_pool {
	struct redis_target t;
	int connect_timeout_ms;
	int command_timeout_ms;
	pthread_key_t key;
	char desc[560];
	struct redis_sentinel *sen; /* redis+sentinel:// only */
	/* sentinel pools: the replicas the master's ROLE listed, read again
	 * every REDIS_REPLICAS_CHECK_MS (redis_pool_wait_replica) */
	atomic_int replicas;
	atomic_llong replicas_at_ms;
	atomic_uint_fast64_t replicas_gen; /* the master generation counted */
	atomic_bool wait_short; /* a WAIT fell short (warned once) */
};

static pthread_once_t sigpipe_once = PTHREAD_ONCE_INIT;

/* A write to a socket Redis has closed raises SIGPIPE, which by default
 * kills the process. Ignore it unless someone installed a handler. */
static void
sigpipe_ignore(void)
{
	struct sigaction old;
	if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
	    !(old.sa_flags & SA_SIGINFO)) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_IGN;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGPIPE, &sa, NULL);
	}
}

static void
slot_free(void *v)
{
	struct redis_slot *s = v;
	if (!s)
		return;
	if (s->c)
		redisFree(s->c);
	free(s->buf);
	free(s);
}

struct redis_pool *
redis_pool_new(const struct redis_target *t, int connect_timeout_ms,
	       int command_timeout_ms)
{
	pthread_once(&sigpipe_once, sigpipe_ignore);
	struct redis_pool *p = xcalloc(1, sizeof(*p));
	p->t = *t;
	p->connect_timeout_ms = connect_timeout_ms;
	p->command_timeout_ms = command_timeout_ms;
	char buf[540];
	snprintf(p->desc, sizeof(p->desc), "%s",
		 redis_target_describe(t, buf, sizeof(buf)));
	int rc = pthread_key_create(&p->key, slot_free);
	if (rc != 0) {
		/* only when the process leaked ~1000 keys: a bug */
		fprintf(stderr, "berthd: pthread_key_create: %s\n",
			strerror(rc));
		abort();
	}
	if (t->sentinel)
		p->sen = redis_sentinel_new(t, connect_timeout_ms,
					    command_timeout_ms);
	atomic_init(&p->replicas, 0);
	atomic_init(&p->replicas_at_ms, 0);
	atomic_init(&p->replicas_gen, 0);
	atomic_init(&p->wait_short, false);
	return p;
}

void
redis_pool_free(struct redis_pool *p)
{
	if (!p)
		return;
	slot_free(pthread_getspecific(p->key));
	pthread_setspecific(p->key, NULL);
	pthread_key_delete(p->key);
	redis_sentinel_free(p->sen);
	explicit_bzero(&p->t, sizeof(p->t));
	free(p);
}

const char *
redis_pool_describe(const struct redis_pool *p)
{
	return p->desc;
}

uint64_t
redis_pool_master(struct redis_pool *p, char *buf, size_t n)
{
	struct redis_addr a;
	uint64_t gen = p->sen ? redis_sentinel_peek(p->sen, &a) : 0;
	if (n)
		buf[0] = '\0';
	if (gen)
		redis_addr_str(&a, buf, n);
	return gen;
}

static struct timeval
ms_to_tv(int ms)
{
	struct timeval tv = {0, 0};
	if (ms > 0) {
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
	}
	return tv;
}

/* Text for a connection-level failure of context c. saved_errno is errno
 * right after the failed call. */
static const char *
conn_err_text(const struct redis_pool *p, const redisContext *c,
	      int saved_errno, char *buf, size_t n)
{
	if (!c || !c->err) {
		snprintf(buf, n, "no reply");
	} else if (c->err == REDIS_ERR_IO &&
		   (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK ||
		    strcmp(c->errstr, strerror(EAGAIN)) == 0)) {
		snprintf(buf, n, "timed out: no reply within %d ms",
			 p->command_timeout_ms);
	} else if (c->err == REDIS_ERR_EOF) {
		snprintf(buf, n, "connection closed by the server (%s)",
			 c->errstr);
	} else if (c->err == REDIS_ERR_IO) {
		snprintf(buf, n, "connection lost: %s",
			 c->errstr[0] ? c->errstr : "I/O error");
	} else {
		snprintf(buf, n, "%s", c->errstr[0] ? c->errstr : "error");
	}
	return buf;
}

/* Copies a printable command name for messages (never the arguments). */
static const char *
cmd_name(const char *arg0, size_t len, char *buf, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < n && i < 32; i++) {
		int c = (unsigned char)arg0[i];
		buf[o++] = (char)(isgraph(c) ? toupper(c) : '?');
	}
	buf[o] = '\0';
	return buf;
}

void
redis_scrub_secret(char *msg, size_t cap, const char *secret)
{
	size_t sl = strlen(secret);
	if (sl < 3)
		return;
	char *hit;
	while ((hit = strstr(msg, secret)) != NULL) {
		size_t tail = strlen(hit + sl);
		if (hit + 3 + tail >= msg + cap)
			tail = (size_t)(msg + cap - hit) - 4;
		memmove(hit + 3, hit + sl, tail);
		memcpy(hit, "***", 3);
		hit[3 + tail] = '\0';
	}
}

static int resp_append(const struct redis_pool *p, redisContext *c,
		       const struct redis_cmd *cmds, size_t n, bool tx);

/* Runs one set-up command (AUTH, SELECT) on a fresh context. */
static int
dial_cmd(const struct redis_pool *p, redisContext *c, const char *desc,
	 const char *what, int argc, const char **argv, struct berr *e)
{
	char buf[200];
	errno = 0;
	struct redis_cmd cmd = {argc, argv, NULL};
	redisReply *r = NULL;
	void *got = NULL;
	if (resp_append(p, c, &cmd, 1, false) == REDIS_OK &&
	    redisGetReply(c, &got) == REDIS_OK)
		r = got;
	int saved = errno;
	if (!r)
		return berr_set(e, "redis %s: %s: %s", desc, what,
				conn_err_text(p, c, saved, buf, sizeof(buf)));
	int rc = 0;
	if (r->type == REDIS_REPLY_ERROR) {
		rc = berr_set(e, "redis %s: %s failed: %.*s", desc, what,
			      (int)(r->len > 300 ? 300 : r->len),
			      r->str ? r->str : "");
		if (e)
			redis_scrub_secret(e->msg, sizeof(e->msg),
					   p->t.password);
	}
	freeReplyObject(r);
	return rc;
}

/* A new context to the target, or, for a sentinel pool, to the master the
 * sentinels name (*gen: its generation), checked with ROLE. */
static redisContext *
pool_dial(const struct redis_pool *p, uint64_t *gen, struct berr *e)
{
	const struct redis_target *t = &p->t;
	const char *host = t->host;
	int port = t->port;
	const char *desc = p->desc;
	char sdesc[sizeof(p->desc) + 300];
	struct redis_addr master;
	redisContext *c;
	*gen = 0;
	if (p->sen) {
		char as[300];
		if (redis_sentinel_master(p->sen, &master, gen, e) < 0)
			return NULL;
		host = master.host;
		port = master.port;
		snprintf(sdesc, sizeof(sdesc), "%s (master %s)", p->desc,
			 redis_addr_str(&master, as, sizeof(as)));
		desc = sdesc;
	}
	if (p->connect_timeout_ms > 0) {
		struct timeval tv = ms_to_tv(p->connect_timeout_ms);
		c = t->unix_socket ? redisConnectUnixWithTimeout(t->path, tv)
				   : redisConnectWithTimeout(host, port, tv);
	} else {
		c = t->unix_socket ? redisConnectUnix(t->path)
				   : redisConnect(host, port);
	}
	if (!c) {
		berr_set(e, "redis %s: cannot allocate a connection", desc);
		return NULL;
	}
	if (c->err) {
		berr_set(e, "redis %s: cannot connect: %s", desc, c->errstr);
		goto fail;
	}
	if (!t->unix_socket && redisEnableKeepAlive(c) != REDIS_OK) {
		berr_set(e, "redis %s: cannot enable TCP keepalive: %s", desc,
			 c->errstr);
		goto fail;
	}
	/* 0 ms = no timeout; set explicitly so no connect timeout lingers */
	if (redisSetTimeout(c, ms_to_tv(p->command_timeout_ms)) != REDIS_OK) {
		berr_set(e, "redis %s: cannot set the command timeout: %s",
			 desc, c->errstr);
		goto fail;
	}
	if (t->user[0]) {
		const char *argv[] = {"AUTH", t->user, t->password};
		if (dial_cmd(p, c, desc, "AUTH", 3, argv, e) < 0)
			goto fail;
	} else if (t->password[0]) {
		const char *argv[] = {"AUTH", t->password};
		if (dial_cmd(p, c, desc, "AUTH", 2, argv, e) < 0)
			goto fail;
	}
	if (p->sen) {
		char what[sizeof(sdesc) + 16];
		snprintf(what, sizeof(what), "redis %s", desc);
		if (redis_role_check(c, what, e) < 0)
			goto fail;
	}
	if (t->db != 0) {
		char db[16];
		snprintf(db, sizeof(db), "%d", t->db);
		const char *argv[] = {"SELECT", db};
		char what[32];
		snprintf(what, sizeof(what), "SELECT %d", t->db);
		if (dial_cmd(p, c, desc, what, 2, argv, e) < 0)
			goto fail;
	}
	return c;
fail:
	redisFree(c);
	if (p->sen)
		redis_sentinel_suspect(p->sen, *gen);
	return NULL;
}

static struct redis_slot *
pool_slot(const struct redis_pool *p)
{
	struct redis_slot *s = pthread_getspecific(p->key);
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		if (pthread_setspecific(p->key, s) != 0) {
			fprintf(stderr, "berthd: pthread_setspecific failed\n");
			abort();
		}
	}
	return s;
}

/* True when an idle context still answers PING. */
static bool
slot_alive(redisContext *c)
{
	redisReply *r = redisCommand(c, "PING");
	bool ok = r && !c->err && r->type == REDIS_REPLY_STATUS;
	if (r)
		freeReplyObject(r);
	return ok;
}

redisContext *
redis_pool_get(struct redis_pool *p, struct berr *e)
{
	struct redis_slot *s = pool_slot(p);
	int64_t now = util_monotonic_ms();
	if (s->c && s->c->err) {
		redisFree(s->c);
		s->c = NULL;
	}
	if (s->c && p->sen && s->gen != redis_sentinel_generation(p->sen)) {
		log_debug("redis %s: the master moved; re-dialling",
			  p->desc);
		redisFree(s->c);
		s->c = NULL;
	}
	if (s->c) {
		int64_t idle = now - s->last_used_ms;
		int limit = p->t.idle_timeout_seconds;
		bool drop = false;
		if (limit > 0 && idle >= (int64_t)limit * 1000)
			drop = true; /* idle too long: close, redial */
		else if (idle >= REDIS_BORROW_CHECK_MS)
			drop = !slot_alive(s->c);
		if (drop) {
			log_debug("redis %s: re-dialling an idle connection",
				  p->desc);
			redisFree(s->c);
			s->c = NULL;
		}
	}
	if (!s->c) {
		s->c = pool_dial(p, &s->gen, e);
		metrics_redis_state(s->c != NULL);
		if (!s->c) {
			metrics_redis_error();
			return NULL;
		}
	}
	s->last_used_ms = now;
	return s->c;
}

void
redis_pool_drop(struct redis_pool *p)
{
	struct redis_slot *s = pthread_getspecific(p->key);
	if (s && s->c) {
		metrics_redis_error();
		metrics_redis_state(0);
		redisFree(s->c);
		s->c = NULL;
		if (p->sen)
			redis_sentinel_suspect(p->sen, s->gen);
	}
}

bool
redis_pool_check_reply(struct redis_pool *p, const redisReply *r)
{
	if (!p->sen || !redis_reply_not_master(r))
		return false;
	struct redis_slot *s = pthread_getspecific(p->key);
	log_warn("redis %s: %.*s: the server is not the master any more; "
		 "asking the sentinels", p->desc,
		 (int)(r->len > 120 ? 120 : r->len), r->str);
	if (s && s->c)
		redis_pool_drop(p);
	return true;
}

/* redis_pool_check_reply over the replies of a pipeline (and the elements
 * of an EXEC array among them). */
static void
check_replies(struct redis_pool *p, redisReply **got, size_t n)
{
	if (!p->sen)
		return;
	for (size_t i = 0; i < n; i++) {
		const redisReply *r = got[i];
		if (!r)
			continue;
		if (redis_pool_check_reply(p, r))
			return;
		if (r->type != REDIS_REPLY_ARRAY)
			continue;
		for (size_t k = 0; k < r->elements; k++)
			if (redis_pool_check_reply(p, r->element[k]))
				return;
	}
}

/* ---- RESP formatting --------------------------------------------------
 *
 * hiredis 0.14 formats an argv with one sdscatfmt per argument into a
 * string grown by reallocation (~19,000 instructions for the 15-20
 * arguments of a job's HSET). A command in RESP is "*<argc>\r\n", then
 * "$<len>\r\n<bytes>\r\n" per argument: its length is computed first, the
 * commands are written into one per-thread buffer and given to hiredis with
 * redisAppendFormattedCommand (which copies them to its output buffer). */

/* A buffer grown past this is freed after use (a large value once in a
 * while does not pin its size to the thread). */
#define RESP_BUF_KEEP (64 * 1024)
#define RESP_BUF_MIN 4096

static size_t
dec_len(size_t v)
{
	size_t n = 1;
	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

static char *
put_dec(char *o, size_t v)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*o++ = tmp[--n];
	return o;
}

static size_t
resp_len(const struct redis_cmd *c)
{
	size_t n = 1 + dec_len((size_t)c->argc) + 2;
	for (int i = 0; i < c->argc; i++) {
		size_t l = c->lens ? c->lens[i] : strlen(c->argv[i]);
		n += 1 + dec_len(l) + 2 + l + 2;
	}
	return n;
}

static char *
resp_put(char *o, const struct redis_cmd *c)
{
	*o++ = '*';
	o = put_dec(o, (size_t)c->argc);
	*o++ = '\r';
	*o++ = '\n';
	for (int i = 0; i < c->argc; i++) {
		size_t l = c->lens ? c->lens[i] : strlen(c->argv[i]);
		*o++ = '$';
		o = put_dec(o, l);
		*o++ = '\r';
		*o++ = '\n';
		memcpy(o, c->argv[i], l);
		o += l;
		*o++ = '\r';
		*o++ = '\n';
	}
	return o;
}

/* Appends the n commands cmds (MULTI and EXEC around them with tx, as
 * pipe_cmd) to c's output buffer in one piece. Returns REDIS_OK, or
 * REDIS_ERR with c->err set (out of memory). */
static int
resp_append(const struct redis_pool *p, redisContext *c,
	    const struct redis_cmd *cmds, size_t n, bool tx)
{
	static const char multi[] = "*1\r\n$5\r\nMULTI\r\n";
	static const char exec[] = "*1\r\n$4\r\nEXEC\r\n";
	struct redis_slot *s = pool_slot(p);
	size_t len = tx ? sizeof(multi) - 1 + sizeof(exec) - 1 : 0;
	for (size_t i = 0; i < n; i++)
		len += resp_len(&cmds[i]);
	if (len > s->buf_cap) {
		free(s->buf);
		s->buf_cap = len > RESP_BUF_MIN ? len : RESP_BUF_MIN;
		s->buf = xmalloc(s->buf_cap);
	}
	char *o = s->buf;
	if (tx) {
		memcpy(o, multi, sizeof(multi) - 1);
		o += sizeof(multi) - 1;
	}
	for (size_t i = 0; i < n; i++)
		o = resp_put(o, &cmds[i]);
	if (tx) {
		memcpy(o, exec, sizeof(exec) - 1);
		o += sizeof(exec) - 1;
	}
	int rc = redisAppendFormattedCommand(c, s->buf, (size_t)(o - s->buf));
	if (s->buf_cap > RESP_BUF_KEEP) {
		free(s->buf);
		s->buf = NULL;
		s->buf_cap = 0;
	}
	return rc;
}

redisReply *
redis_command_argv(struct redis_pool *p, struct berr *e, int argc,
		   const char **argv, const size_t *lens)
{
	if (argc <= 0 || !argv) {
		berr_set(e, "redis %s: empty command", p->desc);
		return NULL;
	}
	redisContext *c = redis_pool_get(p, e);
	if (!c)
		return NULL;
	errno = 0;
	struct redis_cmd cmd = {argc, argv, lens};
	redisReply *r = NULL;
	void *got = NULL;
	if (resp_append(p, c, &cmd, 1, false) == REDIS_OK &&
	    redisGetReply(c, &got) == REDIS_OK)
		r = got;
	int saved = errno;
	if (!r || c->err) {
		char name[40], buf[200];
		berr_set(e, "redis %s: %s: %s", p->desc,
			 cmd_name(argv[0], lens ? lens[0] : strlen(argv[0]),
				  name, sizeof(name)),
			 conn_err_text(p, c, saved, buf, sizeof(buf)));
		if (r)
			freeReplyObject(r);
		redis_pool_drop(p);
		return NULL;
	}
	redis_pool_check_reply(p, r);
	return r;
}

redisReply *
redis_command(struct redis_pool *p, struct berr *e, const char *arg0, ...)
{
	va_list ap;
	int argc = 1;
	va_start(ap, arg0);
	while (va_arg(ap, const char *))
		argc++;
	va_end(ap);
	const char **argv = xmalloc(sizeof(*argv) * (size_t)argc);
	argv[0] = arg0;
	va_start(ap, arg0);
	for (int i = 1; i < argc; i++)
		argv[i] = va_arg(ap, const char *);
	va_end(ap);
	redisReply *r = redis_command_argv(p, e, argc, argv, NULL);
	free(argv);
	return r;
}

void
redis_replies_free(redisReply **replies, size_t n)
{
	if (!replies)
		return;
	for (size_t i = 0; i < n; i++) {
		if (replies[i])
			freeReplyObject(replies[i]);
		replies[i] = NULL;
	}
}

static const char *const pipe_multi[] = {"MULTI"};
static const char *const pipe_exec[] = {"EXEC"};

/* Command i of the pipeline as sent (MULTI and EXEC around cmds with tx). */
static struct redis_cmd
pipe_cmd(const struct redis_cmd *cmds, size_t n, bool tx, size_t i)
{
	if (!tx)
		return cmds[i];
	if (i == 0)
		return (struct redis_cmd){1, (const char **)pipe_multi, NULL};
	if (i == n + 1)
		return (struct redis_cmd){1, (const char **)pipe_exec, NULL};
	return cmds[i - 1];
}

static const char *
pipe_name(const struct redis_cmd *c, char *buf, size_t len)
{
	return cmd_name(c->argv[0], c->lens ? c->lens[0] : strlen(c->argv[0]),
			buf, len);
}

static bool
reply_status_is(const redisReply *r, const char *want)
{
	return r->type == REDIS_REPLY_STATUS && r->str &&
	       strcmp(r->str, want) == 0;
}

static int
reply_err_len(const redisReply *r)
{
	return r->len > 300 ? 300 : (int)r->len;
}

/* The REDIS_PIPE_CHECK rules over the total replies of a pipeline. */
static int
pipe_check(const struct redis_cmd *cmds, size_t n, bool tx,
	   redisReply **got, struct berr *e)
{
	size_t total = n + (tx ? 2 : 0);
	char name[40];
	for (size_t i = 0; i < total; i++) {
		const redisReply *r = got[i];
		struct redis_cmd c = pipe_cmd(cmds, n, tx, i);
		if (r->type == REDIS_REPLY_ERROR)
			return berr_set(e, "%s: %.*s",
					pipe_name(&c, name, sizeof(name)),
					reply_err_len(r), r->str ? r->str : "");
		if (!tx)
			continue;
		if (i == 0 && !reply_status_is(r, "OK"))
			return berr_set(e, "MULTI: unexpected reply");
		if (i > 0 && i <= n && !reply_status_is(r, "QUEUED"))
			return berr_set(e, "%s: unexpected reply",
					pipe_name(&c, name, sizeof(name)));
	}
	if (!tx)
		return 0;
	const redisReply *ex = got[total - 1];
	if (ex->type != REDIS_REPLY_ARRAY)
		return berr_set(e, "EXEC: transaction aborted");
	for (size_t k = 0; k < ex->elements && k < n; k++) {
		const redisReply *el = ex->element[k];
		if (el && el->type == REDIS_REPLY_ERROR)
			return berr_set(e, "%s: %.*s",
					pipe_name(&cmds[k], name, sizeof(name)),
					reply_err_len(el),
					el->str ? el->str : "");
	}
	return 0;
}

int
redis_pipeline(struct redis_pool *p, struct berr *e,
	       const struct redis_cmd *cmds, size_t n, redisReply **replies,
	       unsigned flags)
{
	bool tx = (flags & REDIS_PIPE_TX) != 0;
	if (replies)
		for (size_t i = 0; i < n; i++)
			replies[i] = NULL;
	if (n == 0)
		return 0;
	/* Redis answers nothing to a command of no argument: the replies
	 * would be read one off, each waiting out the timeout */
	for (size_t k = 0; k < n; k++)
		if (cmds[k].argc <= 0 || !cmds[k].argv)
			return berr_set(e, "redis %s: empty command", p->desc);
	redisContext *c = redis_pool_get(p, e);
	if (!c)
		return -1;
	size_t total = n + (tx ? 2 : 0);
	redisReply **got = xcalloc(total, sizeof(*got));
	size_t i = 0;
	int saved = 0;
	if (resp_append(p, c, cmds, n, tx) != REDIS_OK)
		goto conn_fail;
	for (i = 0; i < total; i++) {
		void *r = NULL;
		errno = 0;
		if (redisGetReply(c, &r) != REDIS_OK || !r) {
			saved = errno;
			if (r)
				freeReplyObject(r);
			goto conn_fail;
		}
		got[i] = r;
	}
	check_replies(p, got, total);
	int rc = 0;
	if (flags & REDIS_PIPE_CHECK)
		rc = pipe_check(cmds, n, tx, got, e);
	if (rc == 0 && replies) {
		if (!tx) {
			for (i = 0; i < n; i++) {
				replies[i] = got[i];
				got[i] = NULL;
			}
		} else if (got[total - 1]->type == REDIS_REPLY_ARRAY) {
			redisReply *ex = got[total - 1];
			for (i = 0; i < n && i < ex->elements; i++) {
				replies[i] = ex->element[i];
				ex->element[i] = NULL;
			}
		}
	}
	redis_replies_free(got, total);
	free(got);
	return rc;
conn_fail:;
	char name[40], buf[200];
	struct redis_cmd pc = pipe_cmd(cmds, n, tx, i < total ? i : 0);
	berr_set(e, "redis %s: %s: %s", p->desc,
		 pipe_name(&pc, name, sizeof(name)),
		 conn_err_text(p, c, saved, buf, sizeof(buf)));
	redis_replies_free(got, total);
	free(got);
	redis_pool_drop(p);
	return -1;
}

/* The number of replicas in the master's ROLE reply, -1 on an error. */
static int
master_replicas(struct redis_pool *p, struct berr *e)
{
	redisReply *r = redis_command(p, e, "ROLE", NULL);
	int n = -1;
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
	    r->element[0]->str && strcmp(r->element[0]->str, "master") == 0 &&
	    r->element[2]->type == REDIS_REPLY_ARRAY)
		n = (int)r->element[2]->elements;
	if (r)
		freeReplyObject(r);
	return n;
}

/* -1 with e when this thread's context is no longer the one that made the
 * writes (c0): they were made on a connection that is gone. */
static int
same_context(struct redis_pool *p, redisContext *c0, struct berr *e)
{
	const struct redis_slot *s = pthread_getspecific(p->key);
	if (s && s->c == c0 && c0 && !c0->err &&
	    s->gen == redis_sentinel_generation(p->sen))
		return 0;
	return berr_set(e, "redis %s: the connection was lost before a "
			"replica acknowledged the writes", p->desc);
}

int
redis_pool_wait_replica(struct redis_pool *p, struct berr *e)
{
	if (!p->sen)
		return 0;
	const struct redis_slot *s = pthread_getspecific(p->key);
	redisContext *c0 = s ? s->c : NULL;
	if (same_context(p, c0, e) < 0)
		return -1;
	int64_t now = util_monotonic_ms();
	uint64_t gen = redis_sentinel_generation(p->sen);
	if (now - atomic_load(&p->replicas_at_ms) >= REDIS_REPLICAS_CHECK_MS ||
	    atomic_load(&p->replicas_gen) != gen) {
		/* a new master (after a failover) is counted at once */
		atomic_store(&p->replicas_at_ms, now);
		int n = master_replicas(p, e);
		if (n < 0)
			return -1;
		atomic_store(&p->replicas, n);
		atomic_store(&p->replicas_gen, gen);
	}
	if (atomic_load(&p->replicas) == 0)
		return 0; /* a master alone: nothing to wait for */
	if (same_context(p, c0, e) < 0)
		return -1;
	redisReply *r = redisCommand(c0, "WAIT 1 %d", REDIS_WAIT_REPLICA_MS);
	if (!r || c0->err) {
		berr_set(e, "redis %s: WAIT: %s", p->desc,
			 c0->errstr[0] ? c0->errstr : "no reply");
		if (r)
			freeReplyObject(r);
		redis_pool_drop(p);
		return -1;
	}
	bool acked = r->type == REDIS_REPLY_INTEGER && r->integer >= 1;
	freeReplyObject(r);
	if (acked) {
		if (atomic_exchange(&p->wait_short, false))
			log_info("redis %s: replicas acknowledge writes again",
				 p->desc);
		return 0;
	}
	/* no replica within the wait: count them again before the next */
	atomic_store(&p->replicas, 0);
	atomic_store(&p->replicas_at_ms, now);
	if (!atomic_exchange(&p->wait_short, true))
		log_warn("redis %s: no replica acknowledged a submission "
			 "within %d ms; going on without waiting (a failover "
			 "now could lose it); ROLE is asked again every %d s",
			 p->desc, REDIS_WAIT_REPLICA_MS,
			 REDIS_REPLICAS_CHECK_MS / 1000);
	return 0;
}

int
redis_ping(struct redis_pool *p, struct berr *e)
{
	redisReply *r = redis_command(p, e, "PING", NULL);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type == REDIS_REPLY_ERROR)
		rc = berr_set(e, "redis %s: PING: %.*s", p->desc,
			      (int)(r->len > 300 ? 300 : r->len), r->str);
	else if (r->type != REDIS_REPLY_STATUS || !r->str ||
		 strcmp(r->str, "PONG") != 0)
		rc = berr_set(e, "redis %s: PING: unexpected reply", p->desc);
	freeReplyObject(r);
	return rc;
}

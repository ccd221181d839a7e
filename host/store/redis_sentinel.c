/* redis_sentinel.c - master discovery through Redis Sentinel and the
 * +switch-master watcher; see redis_sentinel.h.
 *
 * Passwords (the master's and the sentinels') never reach a message: the
 * messages name addresses, and an AUTH error reply is scrubbed. */
#include "store/redis_sentinel.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logs/log.h"

/* Dials to sentinels and master candidates: the pool's timeouts, capped. */
#define SENTINEL_TIMEOUT_CAP_MS 2000
/* Two discoveries started by suspicion are at least this far apart. */
#define SENTINEL_REQUERY_MIN_MS 100
/* The watcher's pause before the next sentinel, doubling up to the max. */
#define WATCH_BACKOFF_MIN_MS 200
#define WATCH_BACKOFF_MAX_MS 5000
/* The watcher PINGs its sentinel this often, and gives it up after this
 * long without a byte from it. */
#define WATCH_PING_MS 5000
#define WATCH_SILENCE_MS 15000
#define WATCH_CHANNEL "+switch-master"

struct redis_sentinel {
	struct redis_target t;
	int dial_ms;
	int cmd_ms;
	char desc[160]; /* "sentinel:<master name>" */

	pthread_mutex_t lock; /* master, last_err */
	struct redis_addr master;
	char last_err[BERR_MSG_MAX];
	atomic_uint_fast64_t gen;
	atomic_bool suspect;

	pthread_mutex_t query_lock; /* one discovery at a time; below */
	int64_t last_query_ms;
	bool outage_logged;

	pthread_t watcher;
	bool watching;
	int wake[2]; /* the watcher's stop pipe */
	atomic_bool stop;
};

static int
cap_ms(int ms)
{
	return ms <= 0 || ms > SENTINEL_TIMEOUT_CAP_MS ? SENTINEL_TIMEOUT_CAP_MS
						       : ms;
}

static struct timeval
tv_ms(int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	return tv;
}

const char *
redis_addr_str(const struct redis_addr *a, char *buf, size_t n)
{
	if (strchr(a->host, ':'))
		snprintf(buf, n, "[%s]:%d", a->host, a->port);
	else
		snprintf(buf, n, "%s:%d", a->host, a->port);
	return buf;
}

static bool
addr_eq(const struct redis_addr *a, const struct redis_addr *b)
{
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static int
err_len(const redisReply *r)
{
	return r->len > 300 ? 300 : (int)r->len;
}

/* A connection to a (what = "sentinel" or "master"), authenticated with
 * user/password when password is set. */
static redisContext *
dial(const struct redis_sentinel *s, const struct redis_addr *a,
     const char *what, const char *user, const char *password,
     struct berr *e)
{
	char as[300];
	redis_addr_str(a, as, sizeof(as));
	redisContext *c = redisConnectWithTimeout(a->host, a->port,
						  tv_ms(s->dial_ms));
	if (!c) {
		berr_set(e, "%s %s: cannot allocate a connection", what, as);
		return NULL;
	}
	if (c->err) {
		berr_set(e, "%s %s: cannot connect: %s", what, as, c->errstr);
		redisFree(c);
		return NULL;
	}
	if (redisEnableKeepAlive(c) != REDIS_OK ||
	    redisSetTimeout(c, tv_ms(s->cmd_ms)) != REDIS_OK) {
		berr_set(e, "%s %s: cannot set up the connection: %s", what,
			 as, c->errstr);
		redisFree(c);
		return NULL;
	}
	if (!password[0])
		return c;
	/* user:pass -> ACL AUTH user pass; :pass -> AUTH pass */
	const char *argv[3] = {"AUTH", user, password};
	int argc = 3;
	if (!user[0]) {
		argv[1] = password;
		argc = 2;
	}
	redisReply *r = redisCommandArgv(c, argc, argv, NULL);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		if (r)
			berr_set(e, "%s %s: AUTH failed: %.*s", what, as,
				 err_len(r), r->str ? r->str : "");
		else
			berr_set(e, "%s %s: AUTH: %s", what, as,
				 c->errstr[0] ? c->errstr : "no reply");
		if (e)
			redis_scrub_secret(e->msg, sizeof(e->msg), password);
		if (r)
			freeReplyObject(r);
		redisFree(c);
		return NULL;
	}
	freeReplyObject(r);
	return c;
}

int
redis_role_check(redisContext *c, const char *what, struct berr *e)
{
	redisReply *r = redisCommand(c, "ROLE");
	int rc = 0;
	if (!r)
		rc = berr_set(e, "%s: ROLE: %s", what,
			      c->errstr[0] ? c->errstr : "no reply");
	else if (r->type == REDIS_REPLY_ERROR)
		rc = berr_set(e, "%s: ROLE: %.*s", what, err_len(r),
			      r->str ? r->str : "");
	else if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
		 !r->element[0]->str)
		rc = berr_set(e, "%s: ROLE: unexpected reply", what);
	else if (strcmp(r->element[0]->str, "master") != 0)
		rc = berr_set(e, "%s is not the master (ROLE says %.20s)",
			      what, r->element[0]->str);
	if (r)
		freeReplyObject(r);
	return rc;
}

bool
redis_reply_not_master(const redisReply *r)
{
	if (!r || r->type != REDIS_REPLY_ERROR || !r->str)
		return false;
	/* a script's error quotes the command's: "...: -READONLY ..." */
	return strncmp(r->str, "READONLY", 8) == 0 ||
	       strncmp(r->str, "MASTERDOWN", 10) == 0 ||
	       strstr(r->str, "-READONLY ") != NULL ||
	       strstr(r->str, "-MASTERDOWN ") != NULL;
}

/* SENTINEL get-master-addr-by-name on sentinel sa into *out. */
static int
ask_sentinel(struct redis_sentinel *s, const struct redis_addr *sa,
	     struct redis_addr *out, struct berr *e)
{
	char as[300];
	redis_addr_str(sa, as, sizeof(as));
	redisContext *c = dial(s, sa, "sentinel", s->t.sentinel_user,
			       s->t.sentinel_password, e);
	if (!c)
		return -1;
	const char *argv[] = {"SENTINEL", "get-master-addr-by-name",
			      s->t.master_name};
	redisReply *r = redisCommandArgv(c, 3, argv, NULL);
	int rc = -1;
	int64_t port;
	if (!r) {
		berr_set(e, "sentinel %s: %s", as,
			 c->errstr[0] ? c->errstr : "no reply");
	} else if (r->type == REDIS_REPLY_ERROR) {
		berr_set(e, "sentinel %s: %.*s", as, err_len(r),
			 r->str ? r->str : "");
	} else if (r->type == REDIS_REPLY_NIL) {
		berr_set(e, "sentinel %s does not know a master named \"%s\"",
			 as, s->t.master_name);
	} else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		   r->element[0]->type != REDIS_REPLY_STRING ||
		   r->element[1]->type != REDIS_REPLY_STRING ||
		   r->element[0]->len == 0 ||
		   r->element[0]->len >= sizeof(out->host) ||
		   util_parse_i64(r->element[1]->str, 1, 65535, &port) < 0) {
		berr_set(e, "sentinel %s: unexpected reply to SENTINEL "
			 "get-master-addr-by-name", as);
	} else {
		memcpy(out->host, r->element[0]->str, r->element[0]->len);
		out->host[r->element[0]->len] = '\0';
		out->port = (int)port;
		rc = 0;
	}
	if (r)
		freeReplyObject(r);
	redisFree(c);
	return rc;
}

/* 0 when a answers ROLE with "master". */
static int
probe_master(struct redis_sentinel *s, const struct redis_addr *a,
	     struct berr *e)
{
	char as[300], what[320];
	snprintf(what, sizeof(what), "master %s",
		 redis_addr_str(a, as, sizeof(as)));
	redisContext *c = dial(s, a, "master", s->t.user, s->t.password, e);
	if (!c)
		return -1;
	int rc = redis_role_check(c, what, e);
	redisFree(c);
	return rc;
}

/* Appends "; text" (or text) to notes, cut to fit. */
static void
note_add(char *notes, size_t cap, const char *text)
{
	size_t n = strlen(notes), len = strlen(text);
	if (n + 3 >= cap)
		return;
	if (n) {
		memcpy(notes + n, "; ", 2);
		n += 2;
	}
	if (len > cap - n - 1)
		len = cap - n - 1;
	memcpy(notes + n, text, len);
	notes[n + len] = '\0';
}

/* The sentinels in order (hint first, when given): the first master that
 * answers ROLE "master". */
static int
discover(struct redis_sentinel *s, const struct redis_addr *hint,
	 struct redis_addr *out, struct berr *e)
{
	char notes[BERR_MSG_MAX - 100];
	struct berr e1;
	notes[0] = '\0';
	if (hint) {
		berr_clear(&e1);
		if (probe_master(s, hint, &e1) == 0) {
			*out = *hint;
			return 0;
		}
		note_add(notes, sizeof(notes), e1.msg);
	}
	for (int i = 0; i < s->t.n_sentinels; i++) {
		struct redis_addr cand;
		berr_clear(&e1);
		if (ask_sentinel(s, &s->t.sentinels[i], &cand, &e1) < 0) {
			note_add(notes, sizeof(notes), e1.msg);
			continue;
		}
		if (hint && addr_eq(&cand, hint))
			continue; /* just probed */
		if (probe_master(s, &cand, &e1) < 0) {
			char as[300], line[BERR_MSG_MAX];
			snprintf(line, sizeof(line), "sentinel %s: %.600s",
				 redis_addr_str(&s->t.sentinels[i], as,
						sizeof(as)),
				 e1.msg);
			note_add(notes, sizeof(notes), line);
			continue;
		}
		*out = cand;
		return 0;
	}
	return berr_set(e, "no sentinel named a reachable master \"%s\": %s",
			s->t.master_name, notes);
}

/* Asks the sentinels (see redis_sentinel.h for when). force: wait for a
 * discovery in progress and skip the rate limit. */
static void
requery(struct redis_sentinel *s, const struct redis_addr *hint, bool force)
{
	bool none = atomic_load(&s->gen) == 0;
	if (force || none)
		pthread_mutex_lock(&s->query_lock);
	else if (pthread_mutex_trylock(&s->query_lock) != 0)
		return; /* another thread is asking */
	int64_t now = util_monotonic_ms();
	if (!force &&
	    ((none && atomic_load(&s->gen) != 0) ||
	     (s->last_query_ms && now - s->last_query_ms <
					  SENTINEL_REQUERY_MIN_MS))) {
		pthread_mutex_unlock(&s->query_lock);
		return; /* asked just now (maybe while we waited) */
	}
	atomic_store(&s->suspect, false);
	struct redis_addr a;
	struct berr err;
	berr_clear(&err);
	int rc = discover(s, hint, &a, &err);
	s->last_query_ms = util_monotonic_ms();
	if (rc == 0) {
		char as[300], was[300] = "";
		pthread_mutex_lock(&s->lock);
		uint64_t g = atomic_load(&s->gen);
		bool moved = g == 0 || !addr_eq(&a, &s->master);
		if (moved) {
			if (g)
				redis_addr_str(&s->master, was, sizeof(was));
			s->master = a;
			g++;
			atomic_store(&s->gen, g);
		}
		s->last_err[0] = '\0';
		pthread_mutex_unlock(&s->lock);
		redis_addr_str(&a, as, sizeof(as));
		if (moved && g == 1)
			log_info("redis %s: the master is %s", s->desc, as);
		else if (moved)
			log_warn("redis %s: the master moved from %s to %s "
				 "(generation %" PRIu64 "); every connection "
				 "re-dials",
				 s->desc, was, as, g);
		else if (s->outage_logged)
			log_info("redis %s: the master is still %s", s->desc,
				 as);
		s->outage_logged = false;
	} else {
		pthread_mutex_lock(&s->lock);
		snprintf(s->last_err, sizeof(s->last_err), "%s", err.msg);
		pthread_mutex_unlock(&s->lock);
		atomic_store(&s->suspect, true);
		if (!s->outage_logged)
			log_warn("redis %s: %s", s->desc, err.msg);
		s->outage_logged = true;
	}
	pthread_mutex_unlock(&s->query_lock);
}

int
redis_sentinel_master(struct redis_sentinel *s, struct redis_addr *a,
		      uint64_t *gen, struct berr *e)
{
	if (atomic_load(&s->gen) == 0 || atomic_load(&s->suspect))
		requery(s, NULL, false);
	pthread_mutex_lock(&s->lock);
	uint64_t g = atomic_load(&s->gen);
	if (g) {
		*a = s->master;
		*gen = g;
	} else {
		berr_set(e, "redis %s: %s", s->desc,
			 s->last_err[0] ? s->last_err
					: "no master known yet (another "
					  "thread is asking the sentinels)");
	}
	pthread_mutex_unlock(&s->lock);
	return g ? 0 : -1;
}

uint64_t
redis_sentinel_peek(struct redis_sentinel *s, struct redis_addr *a)
{
	pthread_mutex_lock(&s->lock);
	uint64_t g = atomic_load(&s->gen);
	if (g)
		*a = s->master;
	pthread_mutex_unlock(&s->lock);
	return g;
}

uint64_t
redis_sentinel_generation(struct redis_sentinel *s)
{
	return atomic_load_explicit(&s->gen, memory_order_acquire);
}

void
redis_sentinel_suspect(struct redis_sentinel *s, uint64_t gen)
{
	if (gen == atomic_load(&s->gen))
		atomic_store(&s->suspect, true);
}

/* ---- the watcher ------------------------------------------------------ */

/* Sleeps up to ms; true when the watcher is stopping. */
static bool
watch_sleep(struct redis_sentinel *s, int ms)
{
	struct pollfd pfd = {s->wake[0], POLLIN, 0};
	if (!atomic_load(&s->stop))
		(void)poll(&pfd, 1, ms);
	return atomic_load(&s->stop);
}

/* One pushed message: ["message", channel, "<name> <old ip> <old port>
 * <new ip> <new port>"]. */
static void
watch_message(struct redis_sentinel *s, const char *from, redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    !r->element[0]->str || strcmp(r->element[0]->str, "message") != 0 ||
	    !r->element[2]->str)
		return; /* subscribe confirmations, PING replies */
	char name[128], oip[256], nip[256];
	int oport, nport;
	if (sscanf(r->element[2]->str, "%127s %255s %d %255s %d", name, oip,
		   &oport, nip, &nport) != 5 ||
	    strcmp(name, s->t.master_name) != 0)
		return;
	struct redis_addr hint;
	snprintf(hint.host, sizeof(hint.host), "%s", nip);
	hint.port = nport;
	char as[300];
	log_warn("redis %s: sentinel %s announces +switch-master to %s",
		 s->desc, from, redis_addr_str(&hint, as, sizeof(as)));
	requery(s, &hint, true);
}

/* Reads the subscription until it fails or the watcher stops. */
static void
watch_loop(struct redis_sentinel *s, redisContext *c, const char *from)
{
	int64_t last_rx = util_monotonic_ms(), last_ping = last_rx;
	while (!atomic_load(&s->stop)) {
		void *r = NULL;
		while (redisGetReplyFromReader(c, &r) == REDIS_OK && r) {
			watch_message(s, from, r);
			freeReplyObject(r);
			r = NULL;
		}
		if (c->err)
			break;
		struct pollfd pfd[2] = {{c->fd, POLLIN, 0},
					{s->wake[0], POLLIN, 0}};
		int n = poll(pfd, 2, 1000);
		if (n < 0 && errno != EINTR)
			break;
		int64_t now = util_monotonic_ms();
		if (n > 0 && pfd[0].revents) {
			if (redisBufferRead(c) != REDIS_OK)
				break;
			last_rx = now;
		}
		if (now - last_rx > WATCH_SILENCE_MS) {
			log_warn("redis %s: sentinel %s silent for %d s; "
				 "watching another",
				 s->desc, from, WATCH_SILENCE_MS / 1000);
			break;
		}
		if (now - last_ping >= WATCH_PING_MS) {
			int done = 0;
			last_ping = now;
			if (redisAppendCommand(c, "PING") != REDIS_OK)
				break;
			while (!done)
				if (redisBufferWrite(c, &done) != REDIS_OK)
					break;
			if (c->err)
				break;
		}
	}
	if (c->err && !atomic_load(&s->stop))
		log_debug("redis %s: lost sentinel %s: %s", s->desc, from,
			  c->errstr);
}

static redisContext *
watch_subscribe(struct redis_sentinel *s, const struct redis_addr *sa,
		struct berr *e)
{
	redisContext *c = dial(s, sa, "sentinel", s->t.sentinel_user,
			       s->t.sentinel_password, e);
	if (!c)
		return NULL;
	const char *argv[] = {"SUBSCRIBE", WATCH_CHANNEL};
	redisReply *r = redisCommandArgv(c, 2, argv, NULL);
	bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 3;
	if (!ok) {
		char as[300];
		berr_set(e, "sentinel %s: SUBSCRIBE: %s",
			 redis_addr_str(sa, as, sizeof(as)),
			 r && r->str ? r->str
				     : c->errstr[0] ? c->errstr : "bad reply");
	}
	if (r)
		freeReplyObject(r);
	if (!ok) {
		redisFree(c);
		return NULL;
	}
	return c;
}

static void *
watch_main(void *arg)
{
	struct redis_sentinel *s = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	int i = 0, backoff = WATCH_BACKOFF_MIN_MS;
	bool first = true;
	while (!atomic_load(&s->stop)) {
		const struct redis_addr *sa = &s->t.sentinels[i];
		char as[300];
		redis_addr_str(sa, as, sizeof(as));
		struct berr e;
		berr_clear(&e);
		redisContext *c = watch_subscribe(s, sa, &e);
		if (c) {
			log_debug("redis %s: watching %s on sentinel %s",
				  s->desc, WATCH_CHANNEL, as);
			backoff = WATCH_BACKOFF_MIN_MS;
			/* events may have passed while no one listened */
			if (!first && atomic_load(&s->gen) != 0)
				requery(s, NULL, true);
			first = false;
			watch_loop(s, c, as);
			redisFree(c);
		} else {
			log_debug("redis %s: cannot watch sentinel %s: %s",
				  s->desc, as, e.msg);
		}
		i = (i + 1) % s->t.n_sentinels;
		if (watch_sleep(s, backoff))
			break;
		backoff = backoff * 2 > WATCH_BACKOFF_MAX_MS
				  ? WATCH_BACKOFF_MAX_MS
				  : backoff * 2;
	}
	return NULL;
}

/* ---- life cycle ------------------------------------------------------- */

struct redis_sentinel *
redis_sentinel_new(const struct redis_target *t, int connect_timeout_ms,
		   int command_timeout_ms)
{
	struct redis_sentinel *s = xcalloc(1, sizeof(*s));
	s->t = *t;
	s->dial_ms = cap_ms(connect_timeout_ms);
	s->cmd_ms = cap_ms(command_timeout_ms);
	snprintf(s->desc, sizeof(s->desc), "sentinel:%s", t->master_name);
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->query_lock, NULL);
	atomic_init(&s->gen, 0);
	atomic_init(&s->suspect, false);
	atomic_init(&s->stop, false);
	s->wake[0] = s->wake[1] = -1;
	if (t->n_sentinels > 0 && pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) == 0 &&
	    pthread_create(&s->watcher, NULL, watch_main, s) == 0)
		s->watching = true;
	else
		log_warn("redis %s: cannot start the +switch-master watcher; "
			 "failovers are followed on errors only", s->desc);
	return s;
}

void
redis_sentinel_free(struct redis_sentinel *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	if (s->watching) {
		ssize_t w = write(s->wake[1], "x", 1);
		(void)w;
		pthread_join(s->watcher, NULL);
	}
	for (int i = 0; i < 2; i++)
		if (s->wake[i] >= 0)
			close(s->wake[i]);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->query_lock);
	explicit_bzero(&s->t, sizeof(s->t));
	free(s);
}

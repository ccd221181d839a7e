/* test_hook.c - the status hook agent (host/hook*.c) against a private
 * redis-server and a tiny HTTP receiver written here (a pthread per
 * connection on 127.0.0.1, port 0) that records every request and can be
 * told, per path, to answer 200/500, fail the first N calls, close the
 * connection without answering, delay the first answer, or hang.
 *
 * Covered: exact payload bytes (Go JSON, no Content-Type, no
 * Authorization), the ACK after a 200, per-job ordering under delays, retry
 * until the receiver is up, the max_attempts and window bounds (dropped
 * metric), an outdated event skipped after an ACK, a hanging receiver for
 * one job not delaying another, the per-receiver circuit breaker (a black
 * hole gets one attempt at a time and leaves the other threads to other
 * receivers; parked events survive a stop, supersede and dedupe), the
 * supersede policy, persistence across
 * agents (stop, new agent on the same Redis delivers in order) and Redis
 * down at submit (persisted later). Every test has its own namespace. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hooks/hook.h"
#include "logs/log.h"
#include "metrics/metrics.h"
#include "store/redis_conn.h"
#include "redis_harness.h"
#include "testlib.h"
#include "store/tracker.h"
#include "common/util.h"

#define DROPPED_RETRY "berth_hooks_dropped_total{reason=\"retry_bound\"}"
#define DROPPED_BACKLOG "berth_hooks_dropped_total{reason=\"backlog\"}"
#define DROPPED_EXPIRED "berth_hooks_dropped_total{reason=\"expired\"}"

#define WAIT_FOR(cond, ms)                                                   \
	({                                                                   \
		int64_t wf_end = util_monotonic_ms() + (ms);                 \
		bool wf_ok;                                                  \
		while (!(wf_ok = (cond)) && util_monotonic_ms() < wf_end)    \
			util_sleep_ms(5);                                    \
		wf_ok;                                                       \
	})

/* ---- the receiver ------------------------------------------------------- */

#define RX_MAX_RULES 32
#define RX_MAX_CONNS 64

struct rx_req {
	char path[128];
	char *head; /* request line and headers */
	char *body;
	int64_t at; /* monotonic ms when fully read */
};

struct rx_rule {
	char path[128];
	int code;        /* answer (200 when no rule) */
	int close_first; /* close without answer for the first N */
	int fail_first;  /* then answer 500 to the next N */
	int delay_first; /* ms before answering the first request */
	bool hang;       /* never answer (until released or stopped) */
	int seen;
};

struct receiver {
	int fd;
	int port;
	pthread_t tid;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	struct rx_req *req;
	size_t n, cap;
	struct rx_rule rules[RX_MAX_RULES];
	size_t nrules;
	pthread_t conns[RX_MAX_CONNS];
	int conn_fds[RX_MAX_CONNS];
	size_t nconns;
};

struct rx_conn {
	struct receiver *r;
	int fd;
};

static struct rx_rule *
rx_find_locked(struct receiver *r, const char *path)
{
	for (size_t i = 0; i < r->nrules; i++)
		if (strcmp(r->rules[i].path, path) == 0)
			return &r->rules[i];
	return NULL;
}

/* Sets (or replaces) the behaviour for one path; resets its counter. */
static void
rx_rule(struct receiver *r, const char *path, int code, int fail_first,
	int close_first, int delay_first, bool hang)
{
	pthread_mutex_lock(&r->mu);
	struct rx_rule *u = rx_find_locked(r, path);
	if (!u && r->nrules < RX_MAX_RULES)
		u = &r->rules[r->nrules++];
	if (u) {
		memset(u, 0, sizeof(*u));
		snprintf(u->path, sizeof(u->path), "%s", path);
		u->code = code;
		u->fail_first = fail_first;
		u->close_first = close_first;
		u->delay_first = delay_first;
		u->hang = hang;
	}
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static size_t
rx_count(struct receiver *r, const char *path)
{
	size_t n = 0;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->req[i].path, path) == 0)
			n++;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* The k-th request on path: copies of head and body, arrival time. */
static bool
rx_get(struct receiver *r, const char *path, size_t k, char **head,
       char **body, int64_t *at)
{
	bool found = false;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->req[i].path, path) != 0)
			continue;
		if (k-- == 0) {
			if (head)
				*head = xstrdup(r->req[i].head);
			if (body)
				*body = xstrdup(r->req[i].body);
			if (at)
				*at = r->req[i].at;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return found;
}

/* Index in arrival order (over all paths) of the k-th request on path,
 * or -1. */
static long
rx_index(struct receiver *r, const char *path, size_t k)
{
	long idx = -1;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->req[i].path, path) == 0 && k-- == 0) {
			idx = (long)i;
			break;
		}
	pthread_mutex_unlock(&r->mu);
	return idx;
}

static char *
rx_url(struct receiver *r, const char *path)
{
	return xasprintf("http://127.0.0.1:%d%s", r->port, path);
}

static bool
send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		s += w;
		n -= (size_t)w;
	}
	return true;
}

/* Reads one request; false at EOF or error. *buf keeps extra bytes. */
static bool
rx_read_request(int fd, char **buf, size_t *len, size_t *cap, char **head,
		char **body)
{
	char *end;
	for (;;) {
		if (*len && (end = memmem(*buf, *len, "\r\n\r\n", 4)))
			break;
		if (*len + 4096 > *cap) {
			*cap = *cap * 2 + 8192;
			*buf = xrealloc(*buf, *cap);
		}
		ssize_t n = recv(fd, *buf + *len, *cap - *len - 1, 0);
		if (n <= 0)
			return false;
		*len += (size_t)n;
	}
	size_t hlen = (size_t)(end - *buf) + 4;
	*head = xstrndup(*buf, hlen - 4);
	size_t clen = 0;
	for (char *p = *head; p && *p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncasecmp(p, "content-length:", 15) == 0)
			clen = strtoul(p + 15, NULL, 10);
		if (!strchr(p, '\n'))
			break;
	}
	while (*len < hlen + clen) {
		if (hlen + clen + 1 > *cap) {
			*cap = hlen + clen + 1;
			*buf = xrealloc(*buf, *cap);
		}
		ssize_t n = recv(fd, *buf + *len, *cap - *len - 1, 0);
		if (n <= 0) {
			free(*head);
			return false;
		}
		*len += (size_t)n;
	}
	*body = xstrndup(*buf + hlen, clen);
	memmove(*buf, *buf + hlen + clen, *len - hlen - clen);
	*len -= hlen + clen;
	return true;
}

static void *
rx_conn_main(void *arg)
{
	struct rx_conn *c = arg;
	struct receiver *r = c->r;
	char *buf = NULL, *head, *body;
	size_t len = 0, cap = 0;
	while (rx_read_request(c->fd, &buf, &len, &cap, &head, &body)) {
		char path[128] = "";
		sscanf(head, "%*s %127s", path);
		pthread_mutex_lock(&r->mu);
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 64;
			r->req = xrealloc(r->req, sizeof(*r->req) * r->cap);
		}
		struct rx_req *q = &r->req[r->n++];
		snprintf(q->path, sizeof(q->path), "%s", path);
		q->head = head;
		q->body = body;
		q->at = util_monotonic_ms();
		struct rx_rule *u = rx_find_locked(r, path);
		int code = 200, delay = 0;
		bool close_it = false;
		if (u) {
			u->seen++;
			close_it = u->seen <= u->close_first;
			code = u->seen <= u->close_first + u->fail_first
				       ? 500
				       : u->code;
			delay = u->seen == 1 ? u->delay_first : 0;
		}
		int64_t until = util_monotonic_ms() + delay;
		while (!r->stop && ((u && u->hang) ||
				    util_monotonic_ms() < until)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 5 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&r->cv, &r->mu, &ts);
		}
		bool stop = r->stop;
		pthread_mutex_unlock(&r->mu);
		if (stop || close_it)
			break;
		const char *text = code == 200 ? "" : "receiver says no";
		char *resp = xasprintf("HTTP/1.1 %d X\r\nContent-Length: %zu"
				       "\r\n\r\n%s", code, strlen(text), text);
		bool ok = send_all(c->fd, resp, strlen(resp));
		free(resp);
		if (!ok)
			break;
	}
	free(buf);
	shutdown(c->fd, SHUT_RDWR);
	free(c);
	return NULL;
}

static void *
rx_main(void *arg)
{
	struct receiver *r = arg;
	for (;;) {
		pthread_mutex_lock(&r->mu);
		bool stop = r->stop;
		pthread_mutex_unlock(&r->mu);
		if (stop)
			break;
		struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
		if (poll(&pfd, 1, 20) <= 0)
			continue;
		int fd = accept(r->fd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&r->mu);
		if (r->nconns == RX_MAX_CONNS) {
			pthread_mutex_unlock(&r->mu);
			close(fd);
			continue;
		}
		struct rx_conn *c = xcalloc(1, sizeof(*c));
		c->r = r;
		c->fd = fd;
		r->conn_fds[r->nconns] = fd;
		if (pthread_create(&r->conns[r->nconns], NULL, rx_conn_main,
				   c) == 0)
			r->nconns++;
		else {
			close(fd);
			free(c);
		}
		pthread_mutex_unlock(&r->mu);
	}
	return NULL;
}

static struct receiver *
rx_start(void)
{
	struct receiver *r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	if (r->fd < 0 || bind(r->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(r->fd, 64) ||
	    getsockname(r->fd, (struct sockaddr *)&sa, &sl)) {
		perror("receiver");
		exit(1);
	}
	r->port = ntohs(sa.sin_port);
	pthread_create(&r->tid, NULL, rx_main, r);
	return r;
}

static void
rx_stop(struct receiver *r)
{
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	for (size_t i = 0; i < r->nconns; i++)
		shutdown(r->conn_fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->tid, NULL);
	for (size_t i = 0; i < r->nconns; i++) {
		pthread_join(r->conns[i], NULL);
		close(r->conn_fds[i]);
	}
	close(r->fd);
	for (size_t i = 0; i < r->n; i++) {
		free(r->req[i].head);
		free(r->req[i].body);
	}
	free(r->req);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

/* A port nothing listens on (bound, then closed). */
static int
dead_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	close(fd);
	return ntohs(sa.sin_port);
}

/* ---- Redis and metrics helpers ------------------------------------------ */

/* A command that must succeed (tests/unit/redis_harness.h). */
#define CHECK_DO(...) CHECK(test_redis_do(pool, __VA_ARGS__) == 0)

static struct redis_pool *pool;
static struct test_redis tredis;





static long long
metric(const char *name)
{
	struct metrics_scrape s = {.prefix = ""};
	char *text = metrics_render(&s);
	long long v = -1;
	char *want = xasprintf("\n%s ", name);
	char *p = strstr(text, want);
	if (p)
		v = strtoll(p + strlen(want), NULL, 10);
	free(want);
	free(text);
	return v;
}

/* ---- fixtures ------------------------------------------------------------ */

static void
snap_init(struct job_stats *s, const char *id, const char *status,
	  int64_t rev, const char *url)
{
	memset(s, 0, sizeof(*s));
	s->id = xstrdup(id);
	s->status = xstrdup(status);
	s->name = xstrdup("DEMO");
	s->kind = xstrdup(JOB_KIND_GENERIC);
	s->ref_link = xasprintf("/api/v1/jobs/%s", id);
	s->enqueue_time = 1700000000;
	s->update_time = 1700000001;
	s->revision = rev;
	s->web_hook_url = xstrdup(url);
}

static void
submit(struct hook_agent *a, struct receiver *r, const char *path,
       const char *id, const char *status, int64_t rev, const char *check_in,
       int64_t check_in_at)
{
	char *url = rx_url(r, path);
	struct job_stats s;
	snap_init(&s, id, status, rev, url);
	if (check_in) {
		s.check_in = xstrdup(check_in);
		s.check_in_at = check_in_at;
	}
	hook_agent_submit(a, &s, check_in);
	job_stats_fini(&s);
	free(url);
}

static struct hook_agent *
agent(const char *ns, int threads, int max_attempts, int window_s,
      double scale, int timeout_ms)
{
	struct hook_agent_config c = {
		.threads = threads,
		.max_attempts = max_attempts,
		.retry_window_s = window_s,
		.timeout_ms = timeout_ms,
		.retry_scale = scale,
	};
	struct hook_agent *a = hook_agent_new(&c, pool, ns, NULL);
	struct berr e;
	berr_clear(&e);
	CHECK_MSG(hook_agent_start(a, &e) == 0, "start: %s", e.msg);
	return a;
}

static long long
hlen_events(const char *ns, const struct hook_agent *a)
{
	char *key = xasprintf("%s:berth:hook_events:%s", ns, hook_agent_id(a));
	long long n = test_redis_int(pool, "HLEN", key, NULL);
	free(key);
	return n;
}

/* ---- tests --------------------------------------------------------------- */

#define ID_A "0123456789abcdef01234567"

static void
test_payload(struct receiver *r)
{
	const char *ns = "{hk_payload}";
	struct hook_agent *a = agent(ns, 2, 3, 300, 0.01, 5000);
	char *url = rx_url(r, "/payload");
	struct job_stats s;
	snap_init(&s, ID_A, "Running", 1700000000, url);
	s.check_in = xstrdup("progress <&> 30%");
	s.check_in_at = 1700000002;
	s.parameters = cJSON_Parse("{\"image\":\"demo-1\",\"b\":2,"
				   "\"a\":\"x<y\"}");
	hook_agent_submit(a, &s, s.check_in);
	/* the snapshot is copied: changing it afterwards changes nothing */
	free(s.status);
	s.status = xstrdup("Success");
	CHECK(WAIT_FOR(rx_count(r, "/payload") == 1, 3000));
	char *head = NULL, *body = NULL;
	CHECK(rx_get(r, "/payload", 0, &head, &body, NULL));
	char *want = xasprintf(
		"{\"job_id\":\"" ID_A "\",\"status\":\"Running\","
		"\"check_in\":\"progress \\u003c\\u0026\\u003e 30%%\","
		"\"metadata\":{\"id\":\"" ID_A "\",\"status\":\"Running\","
		"\"name\":\"DEMO\",\"kind\":\"Generic\",\"unique\":false,"
		"\"ref_link\":\"/api/v1/jobs/" ID_A "\","
		"\"enqueue_time\":1700000000,\"update_time\":1700000001,"
		"\"check_in\":\"progress \\u003c\\u0026\\u003e 30%%\","
		"\"check_in_at\":1700000002,\"web_hook_url\":\"%s\","
		"\"parameters\":{\"a\":\"x\\u003cy\",\"b\":2,"
		"\"image\":\"demo-1\"},\"revision\":1700000000}}",
		url);
	CHECK_STR(body, want);
	CHECK(head && strncmp(head, "POST /payload HTTP/1.1\r\n", 24) == 0);
	CHECK(head && !strcasestr(head, "\ncontent-type:"));
	CHECK(head && !strcasestr(head, "\nauthorization:"));
	CHECK(head && !strcasestr(head, "\nexpect:"));
	char *clen = xasprintf("\nContent-Length: %zu", body ? strlen(body)
							     : 0);
	CHECK_CONTAINS(head, clen);
	free(clen);
	free(want);
	free(head);
	free(body);

	/* a status event: no top-level check_in, metadata keeps the last */
	free(s.status);
	s.status = xstrdup("Success");
	hook_agent_submit(a, &s, NULL);
	CHECK(WAIT_FOR(rx_count(r, "/payload") == 2, 3000));
	CHECK(rx_get(r, "/payload", 1, NULL, &body, NULL));
	const char *prefix = "{\"job_id\":\"" ID_A "\",\"status\":"
			     "\"Success\",\"metadata\":{";
	CHECK(body && strncmp(body, prefix, strlen(prefix)) == 0);
	CHECK_CONTAINS(body, "\"check_in_at\":1700000002");
	free(body);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 3000));
	/* no URL: nothing queued */
	free(s.web_hook_url);
	s.web_hook_url = NULL;
	hook_agent_submit(a, &s, NULL);
	CHECK(hook_agent_pending(a) == 0);
	job_stats_fini(&s);
	free(url);
	hook_agent_free(a);
}

static void
test_ack(struct receiver *r)
{
	const char *ns = "{hk_ack}";
	const char *skey = "{hk_ack}:job_stats:" ID_A;
	const char *track = "{hk_ack}:job_track:inprogress";
	CHECK_DO("HSET", skey, "id", ID_A, "status", "Success", "revision", "100",
	    NULL);
	CHECK_DO("HSET", track, ID_A, "1", NULL); /* final status written */
	struct hook_agent *a = agent(ns, 2, 3, 300, 0.01, 5000);
	long long delivered = metric("berth_hooks_delivered_total");
	submit(a, r, "/ack", ID_A, "Running", 100, NULL, 0);
	submit(a, r, "/ack", ID_A, "Success", 100, NULL, 0);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 3000));
	CHECK(rx_count(r, "/ack") == 2);
	CHECK(metric("berth_hooks_delivered_total") == delivered + 2);
	char *ack = test_redis_str(pool, "HGET", skey, "ack", NULL);
	cJSON *j = ack ? cJSON_Parse(ack) : NULL;
	CHECK_MSG(j, "ack %s", ack ? ack : "(none)");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "status")),
		  "Success");
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "revision")) == 100);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "check_in_at")) ==
	      0);
	cJSON_Delete(j);
	free(ack);
	/* final status ACKed: the in-progress entry is gone */
	CHECK(test_redis_int(pool, "HLEN", track, NULL) == 0);
	/* a late Running (older code) is delivered but does not move the ack */
	submit(a, r, "/ack", ID_A, "Running", 100, NULL, 0);
	CHECK(WAIT_FOR(rx_count(r, "/ack") == 3 && hook_agent_pending(a) == 0,
		       3000));
	ack = test_redis_str(pool, "HGET", skey, "ack", NULL);
	CHECK(ack && strstr(ack, "\"Success\""));
	free(ack);
	CHECK(hlen_events(ns, a) == 0);
	hook_agent_free(a);
}

static void
test_ordering(struct receiver *r)
{
	const char *ns = "{hk_order}";
	/* A's first answer takes 300 ms; B and C answer at once */
	rx_rule(r, "/ord/A", 200, 0, 0, 300, false);
	struct hook_agent *a = agent(ns, 4, 3, 300, 0.01, 5000);
	const char *jobs[] = {"A", "B", "C"};
	char text[32], path[32], id[32];
	for (int k = 1; k <= 5; k++)
		for (int i = 0; i < 3; i++) {
			snprintf(text, sizeof(text), "%s-%d", jobs[i], k);
			snprintf(path, sizeof(path), "/ord/%s", jobs[i]);
			snprintf(id, sizeof(id), "job%s", jobs[i]);
			submit(a, r, path, id, "Running", 7, text, 100 + k);
		}
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 5000));
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "/ord/%s", jobs[i]);
		CHECK(rx_count(r, path) == 5);
		for (int k = 1; k <= 5; k++) {
			char *body = NULL;
			CHECK(rx_get(r, path, (size_t)k - 1, NULL, &body,
				     NULL));
			snprintf(text, sizeof(text), "\"check_in\":\"%s-%d\"",
				 jobs[i], k);
			CHECK_CONTAINS(body, text);
			free(body);
		}
	}
	/* A-2 waited for A-1's slow answer; B and C did not wait for A */
	int64_t a1 = 0, a2 = 0;
	rx_get(r, "/ord/A", 0, NULL, NULL, &a1);
	rx_get(r, "/ord/A", 1, NULL, NULL, &a2);
	CHECK_MSG(a2 - a1 >= 290, "A-2 came %" PRId64 " ms after A-1",
		  a2 - a1);
	CHECK(rx_index(r, "/ord/B", 4) < rx_index(r, "/ord/A", 1));
	CHECK(rx_index(r, "/ord/C", 4) < rx_index(r, "/ord/A", 1));
	hook_agent_free(a);
}

static void
test_retry_until_up(struct receiver *r)
{
	const char *ns = "{hk_retry}";
	/* 2 connections closed without an answer, 2 answers 500, then 200 */
	rx_rule(r, "/flaky", 200, 2, 2, 0, false);
	struct hook_agent *a = agent(ns, 2, 10, 300, 0.01, 5000);
	long long failed = metric("berth_hooks_failed_total");
	const char *skey = "{hk_retry}:job_stats:flaky1";
	CHECK_DO("HSET", skey, "revision", "5", "status", "Running", NULL);
	submit(a, r, "/flaky", "flaky1", "Running", 5, NULL, 0);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 5000));
	CHECK_MSG(rx_count(r, "/flaky") == 5, "%zu requests",
		  rx_count(r, "/flaky"));
	CHECK(metric("berth_hooks_failed_total") >= failed + 4);
	char *b0 = NULL, *b4 = NULL;
	rx_get(r, "/flaky", 0, NULL, &b0, NULL);
	rx_get(r, "/flaky", 4, NULL, &b4, NULL);
	CHECK(b0 && b4 && strcmp(b0, b4) == 0); /* the same snapshot */
	free(b0);
	free(b4);
	/* Berth ACKs after a successful retry too */
	char *ack = test_redis_str(pool, "HGET", skey, "ack", NULL);
	CHECK_MSG(ack && strstr(ack, "\"Running\""), "ack %s",
		  ack ? ack : "(none)");
	free(ack);
	CHECK(hlen_events(ns, a) == 0);
	hook_agent_free(a);
}

static void
test_bounds(struct receiver *r)
{
	const char *ns = "{hk_bound}";
	rx_rule(r, "/dead", 500, 0, 0, 0, false);
	long long dropped = metric(DROPPED_RETRY);
	/* attempts bound: exactly 4 attempts, then dropped */
	struct hook_agent *a = agent(ns, 2, 4, 300, 0.01, 5000);
	submit(a, r, "/dead", "dead1", "Running", 1, NULL, 0);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 5000));
	util_sleep_ms(200);
	CHECK_MSG(rx_count(r, "/dead") == 4, "%zu attempts",
		  rx_count(r, "/dead"));
	CHECK(metric(DROPPED_RETRY) == dropped + 1);
	CHECK(hlen_events(ns, a) == 0);
	/* a refused connection counts the same */
	char *url = xasprintf("http://127.0.0.1:%d/x", dead_port());
	struct job_stats s;
	snap_init(&s, "dead2", "Running", 1, url);
	hook_agent_submit(a, &s, NULL);
	job_stats_fini(&s);
	free(url);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 5000));
	CHECK(metric(DROPPED_RETRY) == dropped + 2);
	hook_agent_free(a);

	/* window bound: 1 s window, real back-off (1-3 s after attempt 2) */
	rx_rule(r, "/dead-window", 500, 0, 0, 0, false);
	a = agent(ns, 2, 10, 1, 1.0, 5000);
	submit(a, r, "/dead-window", "dead3", "Running", 1, NULL, 0);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 3000));
	CHECK_MSG(rx_count(r, "/dead-window") == 2, "%zu attempts",
		  rx_count(r, "/dead-window"));
	CHECK(metric(DROPPED_RETRY) == dropped + 3);
	hook_agent_free(a);
}

static void
test_outdated(struct receiver *r)
{
	const char *ns = "{hk_outdated}";
	rx_rule(r, "/outdated", 500, 0, 0, 0, false);
	CHECK_DO("HSET", "{hk_outdated}:job_stats:old1", "revision", "200",
	    "status", "Success", "ack",
	    "{\"check_in_at\":0,\"revision\":200,\"status\":\"Success\"}",
	    NULL);
	long long dropped = metric(DROPPED_RETRY);
	struct hook_agent *a = agent(ns, 2, 10, 300, 0.01, 5000);
	/* the first attempt never looks at the ack; the retry does */
	submit(a, r, "/outdated", "old1", "Running", 200, NULL, 0);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 3000));
	util_sleep_ms(100);
	CHECK_MSG(rx_count(r, "/outdated") == 1, "%zu attempts",
		  rx_count(r, "/outdated"));
	CHECK(metric(DROPPED_RETRY) == dropped);
	/* a newer revision is not outdated: retried until delivered */
	rx_rule(r, "/outdated", 200, 1, 0, 0, false);
	submit(a, r, "/outdated", "old1", "Running", 201, NULL, 0);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 3000));
	CHECK(rx_count(r, "/outdated") == 3);
	CHECK(hlen_events(ns, a) == 0);
	hook_agent_free(a);
}

static void
test_isolation(struct receiver *r)
{
	const char *ns = "{hk_iso}";
	rx_rule(r, "/hang", 200, 0, 0, 0, true);
	struct hook_agent *a = agent(ns, 2, 10, 300, 0.01, 20000);
	/* A: a receiver that never answers, and one that refuses */
	submit(a, r, "/hang", "jobA", "Running", 1, NULL, 0);
	CHECK(WAIT_FOR(rx_count(r, "/hang") == 1, 2000));
	char *url = xasprintf("http://127.0.0.1:%d/x", dead_port());
	struct job_stats s;
	snap_init(&s, "jobA2", "Running", 1, url);
	hook_agent_submit(a, &s, NULL);
	job_stats_fini(&s);
	free(url);
	int64_t t0 = util_monotonic_ms();
	for (int i = 0; i < 5; i++) {
		char id[16];
		snprintf(id, sizeof(id), "jobB%d", i);
		submit(a, r, "/fast", id, "Running", 1, NULL, 0);
	}
	CHECK(WAIT_FOR(rx_count(r, "/fast") == 5, 1000));
	int64_t took = util_monotonic_ms() - t0;
	CHECK_MSG(took < 1000, "B took %" PRId64 " ms", took);
	fprintf(stderr, "isolation: 5 events of B delivered in %" PRId64
		" ms while A hangs\n", took);
	CHECK(hook_agent_pending(a) >= 1); /* A still in flight */
	/* stop ends the hanging transfer at the deadline; A stays saved */
	int64_t s0 = util_monotonic_ms();
	hook_agent_stop(a, 100);
	CHECK_MSG(util_monotonic_ms() - s0 < 3000, "stop took %" PRId64 " ms",
		  util_monotonic_ms() - s0);
	CHECK(hlen_events(ns, a) >= 1);
	rx_rule(r, "/hang", 200, 0, 0, 0, false);
	hook_agent_free(a);
	/* the next agent on this namespace takes A over and delivers it */
	a = agent(ns, 2, 10, 300, 0.01, 5000);
	CHECK(WAIT_FOR(rx_count(r, "/hang") >= 2, 3000));
	hook_agent_stop(a, 1000); /* jobA2 (refused) may still retry */
	hook_agent_free(a);
}

static void
test_supersede(struct receiver *r)
{
	const char *ns = "{hk_sup}";
	rx_rule(r, "/sup", 500, 0, 0, 0, false);
	/* scale 10: after the immediate retry the next wait is 10-30 s */
	struct hook_agent *a = agent(ns, 2, 10, 300, 10.0, 5000);
	submit(a, r, "/sup", "sup1", "Running", 3, NULL, 0);
	CHECK(WAIT_FOR(rx_count(r, "/sup") == 2, 3000));
	util_sleep_ms(50);
	rx_rule(r, "/sup", 200, 0, 0, 0, false);
	/* a check-in does not supersede the Running ... */
	submit(a, r, "/sup", "sup1", "Running", 3, "ci-1", 50);
	util_sleep_ms(200);
	CHECK(rx_count(r, "/sup") == 2);
	/* ... a newer status does: Running dropped, ci-1 and Success go */
	submit(a, r, "/sup", "sup1", "Success", 3, NULL, 0);
	CHECK(WAIT_FOR(rx_count(r, "/sup") == 4 && hook_agent_pending(a) == 0,
		       2000));
	char *b0 = NULL, *b1 = NULL;
	rx_get(r, "/sup", 2, NULL, &b0, NULL);
	rx_get(r, "/sup", 3, NULL, &b1, NULL);
	CHECK_CONTAINS(b0, "\"check_in\":\"ci-1\"");
	CHECK_CONTAINS(b1, "\"status\":\"Success\"");
	free(b0);
	free(b1);
	CHECK(hlen_events(ns, a) == 0);
	hook_agent_free(a);
}

/* A receiver that accepts and never answers fails the attempt after the
 * response-header timeout (Go's 10 s, here 500 ms), not the whole attempt
 * timeout, with Go's error text. */
static void
test_header_timeout(struct receiver *r)
{
	const char *ns = "{hk_hdr}";
	rx_rule(r, "/silent", 200, 0, 0, 0, true);
	struct hook_agent_config c = {
		.threads = 1,
		.max_attempts = 1,
		.timeout_ms = 20000,
		.header_timeout_ms = 500,
	};
	struct hook_agent *a = hook_agent_new(&c, pool, ns, NULL);
	struct berr e;
	berr_clear(&e);
	CHECK_MSG(hook_agent_start(a, &e) == 0, "start: %s", e.msg);
	int64_t t0 = util_monotonic_ms();
	submit(a, r, "/silent", "hdr1", "Running", 1, NULL, 0);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 5000));
	int64_t took = util_monotonic_ms() - t0;
	CHECK_MSG(took >= 450 && took < 3000, "gave up after %" PRId64 " ms",
		  took);
	CHECK(rx_count(r, "/silent") == 1);
	rx_rule(r, "/silent", 200, 0, 0, 0, false);
	hook_agent_free(a);
}

static struct hook_agent *
breaker_agent(const char *ns)
{
	struct hook_agent_config c = {
		.threads = 2,
		.max_attempts = 10,
		.retry_window_s = 300,
		.timeout_ms = 20000,
		.header_timeout_ms = 300,
		.retry_scale = 0.01,
	};
	struct hook_agent *a = hook_agent_new(&c, pool, ns, NULL);
	struct berr e;
	berr_clear(&e);
	CHECK_MSG(hook_agent_start(a, &e) == 0, "start: %s", e.msg);
	return a;
}

/* A receiver that accepts and never answers (another port, so another
 * receiver than r) gets one attempt at a time once its first attempts
 * have timed out; hooks to r keep the other thread. Before the breaker the
 * fast events waited for every hanging event's attempt (5 rounds of
 * 300 ms here). */
static void
test_breaker(struct receiver *r)
{
	const char *ns = "{hk_brk}";
	enum { NHOLE = 10, NFAST = 5 };
	struct receiver *bh = rx_start();
	rx_rule(bh, "/hole", 200, 0, 0, 0, true);
	long long delivered = metric("berth_hooks_delivered_total");
	long long dropped = metric(DROPPED_RETRY);
	struct hook_agent *a = breaker_agent(ns);
	char id[32];
	for (int i = 0; i < NHOLE; i++) {
		snprintf(id, sizeof(id), "hole%d", i);
		submit(a, bh, "/hole", id, "Running", 1, NULL, 0);
	}
	int64_t t0 = util_monotonic_ms();
	for (int i = 0; i < NFAST; i++) {
		snprintf(id, sizeof(id), "fast%d", i);
		submit(a, r, "/brk-fast", id, "Running", 1, NULL, 0);
	}
	CHECK(WAIT_FOR(rx_count(r, "/brk-fast") == NFAST, 5000));
	int64_t took = util_monotonic_ms() - t0;
	CHECK_MSG(took < 1000, "the fast events took %" PRId64 " ms", took);
	fprintf(stderr, "breaker: %d fast events delivered in %" PRId64
		" ms behind %d hanging ones\n", NFAST, took, NHOLE);
	/* degraded: one attempt at a time after the first two */
	CHECK(WAIT_FOR(rx_count(bh, "/hole") >= 4, 3000));
	size_t n = rx_count(bh, "/hole");
	for (size_t k = 2; k < n; k++) {
		int64_t prev = 0, at = 0;
		rx_get(bh, "/hole", k - 1, NULL, NULL, &prev);
		rx_get(bh, "/hole", k, NULL, NULL, &at);
		CHECK_MSG(at - prev >= 200, "attempts %zu and %zu to the black "
			  "hole %" PRId64 " ms apart", k - 1, k, at - prev);
	}
	CHECK(hook_agent_pending(a) == NHOLE);
	/* it answers again: every hanging event is delivered */
	rx_rule(bh, "/hole", 200, 0, 0, 0, false);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 10000));
	CHECK(metric("berth_hooks_delivered_total") ==
	      delivered + NHOLE + NFAST);
	CHECK(metric(DROPPED_RETRY) == dropped);
	CHECK(hlen_events(ns, a) == 0);
	hook_agent_free(a);

	/* parked events: superseded and deduplicated as usual, left in Redis
	 * by a stop that does not wait for them, delivered by the next agent */
	rx_rule(bh, "/hole", 200, 0, 0, 0, true);
	delivered = metric("berth_hooks_delivered_total");
	a = breaker_agent(ns);
	size_t before = rx_count(bh, "/hole");
	for (int i = 0; i < 6; i++) {
		snprintf(id, sizeof(id), "park%d", i);
		submit(a, bh, "/hole", id, "Running", 2, NULL, 0);
	}
	CHECK(WAIT_FOR(rx_count(bh, "/hole") >= before + 3, 3000));
	submit(a, bh, "/hole", "park0", "Success", 2, NULL, 0);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 6, 2000)); /* Running gone */
	submit(a, bh, "/hole", "park0", "Success", 2, NULL, 0); /* re-fire */
	CHECK(hook_agent_pending(a) == 6);
	int64_t s0 = util_monotonic_ms();
	hook_agent_stop(a, 200);
	CHECK_MSG(util_monotonic_ms() - s0 < 3000, "stop took %" PRId64 " ms",
		  util_monotonic_ms() - s0);
	CHECK(hook_agent_pending(a) == 6);
	CHECK(hlen_events(ns, a) == 6);
	hook_agent_free(a);
	rx_rule(bh, "/hole", 200, 0, 0, 0, false);
	before = rx_count(bh, "/hole");
	a = breaker_agent(ns);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0 &&
			       metric("berth_hooks_delivered_total") ==
				       delivered + 6,
		       5000));
	CHECK(rx_count(bh, "/hole") == before + 6);
	char *body = NULL;
	for (size_t k = before; k < before + 6; k++) {
		char *b = NULL;
		rx_get(bh, "/hole", k, NULL, &b, NULL);
		if (b && strstr(b, "\"job_id\":\"park0\"")) {
			free(body);
			body = b;
		} else {
			free(b);
		}
	}
	CHECK_CONTAINS(body, "\"status\":\"Success\"");
	free(body);
	CHECK(hlen_events(ns, a) == 0);
	hook_agent_free(a);
	rx_stop(bh);
}

/* How many records of the agent's events in Redis are for job_id. */
static int
records_of(const char *ns, const struct hook_agent *a, const char *job_id)
{
	char *key = xasprintf("%s:berth:hook_events:%s", ns, hook_agent_id(a));
	char *want = xasprintf("\"job_id\":\"%s\"", job_id);
	redisReply *r = test_redis_cmd(pool, "HVALS", key, NULL);
	int n = 0;
	for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements;
	     i++)
		if (r->element[i]->str && strstr(r->element[i]->str, want))
			n++;
	freeReplyObject(r);
	free(want);
	free(key);
	return n;
}

static struct hook_agent *
bounded_agent(const char *ns, int max_pending, int max_age_s)
{
	struct hook_agent_config c = {
		.threads = 2,
		.max_attempts = 10,
		.retry_window_s = 300,
		.timeout_ms = 20000,
		.header_timeout_ms = 300,
		.retry_scale = 0.01,
		.max_pending = max_pending,
		.max_age_s = max_age_s,
	};
	struct hook_agent *a = hook_agent_new(&c, pool, ns, NULL);
	struct berr e;
	berr_clear(&e);
	CHECK_MSG(hook_agent_start(a, &e) == 0, "start: %s", e.msg);
	return a;
}

/* A receiver that accepts and never answers: the backlog stays within
 * max_pending (the oldest go, with their records, counted as "backlog")
 * and no event outlives max_age (counted as "expired"), adopted ones
 * included; what is left is delivered once the receiver answers. */
static void
test_backlog(struct receiver *r)
{
	(void)r;
	const char *ns = "{hk_backlog}";
	enum { MAXP = 20, N = 60 };
	struct receiver *bh = rx_start();
	rx_rule(bh, "/silent", 200, 0, 0, 0, true);
	long long delivered = metric("berth_hooks_delivered_total");
	long long backlog = metric(DROPPED_BACKLOG);
	long long expired = metric(DROPPED_EXPIRED);
	long long retry = metric(DROPPED_RETRY);
	struct hook_agent *a = bounded_agent(ns, MAXP, 3600);
	char id[32];
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "bk%02d", i);
		submit(a, bh, "/silent", id, "Running", 1, NULL, 0);
		CHECK_MSG(hook_agent_pending(a) <= MAXP, "%zu pending after %d",
			  hook_agent_pending(a), i + 1);
	}
	CHECK(hook_agent_pending(a) == MAXP);
	CHECK_MSG(metric(DROPPED_BACKLOG) == backlog + N - MAXP, "%lld",
		  metric(DROPPED_BACKLOG) - backlog);
	CHECK(WAIT_FOR(hlen_events(ns, a) == MAXP, 2000));
	/* the newest survive; the oldest not held by a thread are gone */
	CHECK(records_of(ns, a, "bk59") == 1);
	CHECK(records_of(ns, a, "bk45") == 1);
	int old = 0;
	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "bk%02d", i);
		old += records_of(ns, a, id);
	}
	CHECK_MSG(old <= 2, "%d of the oldest 20 kept", old); /* in flight */
	/* it answers again: what is left is delivered, nothing more */
	rx_rule(bh, "/silent", 200, 0, 0, 0, false);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 10000));
	CHECK_MSG(metric("berth_hooks_delivered_total") == delivered + MAXP,
		  "%lld delivered",
		  metric("berth_hooks_delivered_total") - delivered);
	CHECK(hlen_events(ns, a) == 0);
	CHECK(metric(DROPPED_RETRY) == retry);
	CHECK(metric(DROPPED_EXPIRED) == expired);
	hook_agent_free(a);

	/* max_age 1 s: queued, parked and in-flight events all expire */
	rx_rule(bh, "/silent", 200, 0, 0, 0, true);
	backlog = metric(DROPPED_BACKLOG);
	a = bounded_agent(ns, MAXP, 1);
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "age%d", i);
		submit(a, bh, "/silent", id, "Running", 1, NULL, 0);
	}
	CHECK(hook_agent_pending(a) == 5);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 5000));
	CHECK_MSG(metric(DROPPED_EXPIRED) == expired + 5, "%lld expired",
		  metric(DROPPED_EXPIRED) - expired);
	CHECK(metric(DROPPED_BACKLOG) == backlog);
	CHECK(WAIT_FOR(hlen_events(ns, a) == 0, 2000));
	hook_agent_free(a);

	/* an event adopted from a stopped agent keeps its age */
	const char *other = "fedcba9876543210fedcba98";
	char *okey = xasprintf("%s:berth:hook_events:%s", ns, other);
	char *url = rx_url(r, "/adopted-old");
	char *rec = xasprintf(
		"{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaa\",\"job_id\":\"adopt1\","
		"\"seq\":1,\"url\":\"%s\",\"payload\":\"{\\\"job_id\\\":"
		"\\\"adopt1\\\",\\\"status\\\":\\\"Running\\\","
		"\\\"metadata\\\":{\\\"revision\\\":1}}\","
		"\"created_at\":%" PRId64 ",\"first_attempt_at\":0,"
		"\"retry_since\":0,\"next_at\":0,\"attempts\":0}",
		url, util_now_ms() - 7200 * 1000);
	CHECK_DO("HSET", okey, "aaaaaaaaaaaaaaaaaaaaaaaa", rec, NULL);
	CHECK_DO("HSET", "{hk_backlog}:berth:hook_agents", other, "0", NULL);
	expired = metric(DROPPED_EXPIRED);
	a = bounded_agent(ns, MAXP, 3600);
	CHECK(WAIT_FOR(metric(DROPPED_EXPIRED) == expired + 1, 3000));
	CHECK(hook_agent_pending(a) == 0);
	CHECK(hlen_events(ns, a) == 0);
	CHECK(test_redis_int(pool, "HLEN", okey, NULL) == 0);
	util_sleep_ms(100);
	CHECK(rx_count(r, "/adopted-old") == 0);
	hook_agent_free(a);
	free(rec);
	free(url);
	free(okey);
	rx_stop(bh);
}

/* The reaper re-firing a state whose event still waits here queues nothing:
 * one POST per state. */
static void
test_duplicate_refire(struct receiver *r)
{
	const char *ns = "{hk_dup}";
	rx_rule(r, "/dup", 500, 0, 0, 0, false);
	/* scale 10: after the immediate retry the next wait is 10-30 s */
	struct hook_agent *a = agent(ns, 2, 10, 300, 10.0, 5000);
	submit(a, r, "/dup", "dup1", "Success", 4, NULL, 0);
	CHECK(WAIT_FOR(rx_count(r, "/dup") == 2, 3000));
	submit(a, r, "/dup", "dup1", "Success", 4, NULL, 0); /* re-fire */
	CHECK(hook_agent_pending(a) == 1);
	CHECK(hlen_events(ns, a) == 1);
	/* a different state, or a check-in, is queued */
	submit(a, r, "/dup", "dup1", "Success", 5, NULL, 0);
	submit(a, r, "/dup", "dup2", "Success", 4, NULL, 0);
	submit(a, r, "/dup", "dup3", "Running", 4, "ci", 9);
	submit(a, r, "/dup", "dup3", "Running", 4, "ci", 9);
	CHECK(hook_agent_pending(a) >= 4);
	hook_agent_free(a);
}

struct racer {
	const char *ns;
	struct hook_agent *a;
	int rc;
};

static void *
racer_main(void *arg)
{
	struct racer *x = arg;
	struct hook_agent_config c = {.threads = 2, .retry_scale = 10.0};
	x->a = hook_agent_new(&c, pool, x->ns, NULL);
	struct berr e;
	berr_clear(&e);
	x->rc = hook_agent_start(x->a, &e);
	return NULL;
}

static void
test_persistence(struct receiver *r)
{
	const char *ns = "{hk_persist}";
	rx_rule(r, "/persist", 500, 0, 0, 0, false);
	struct hook_agent *a = agent(ns, 2, 10, 300, 10.0, 5000);
	char *agent1 = xstrdup(hook_agent_id(a));
	submit(a, r, "/persist", "per1", "Running", 9, "first", 1);
	submit(a, r, "/persist", "per1", "Running", 9, "second", 2);
	submit(a, r, "/persist", "per1", "Running", 9, "third", 3);
	CHECK(WAIT_FOR(rx_count(r, "/persist") == 2, 3000));
	CHECK(hlen_events(ns, a) == 3);
	hook_agent_stop(a, 200);
	char *key = xasprintf("%s:berth:hook_events:%s", ns, agent1);
	CHECK(test_redis_int(pool, "HLEN", key, NULL) == 3);
	char *beat = test_redis_str(pool, "HGET",
				    "{hk_persist}:berth:hook_agents", agent1,
				    NULL);
	CHECK_STR(beat, "0");
	free(beat);
	/* the record of the first event shows its two attempts */
	redisReply *all = test_redis_cmd(pool, "HVALS", key, NULL);
	bool seen = false;
	for (size_t i = 0; all && i < all->elements; i++) {
		cJSON *rec = cJSON_Parse(all->element[i]->str);
		const char *p = cJSON_GetStringValue(
			cJSON_GetObjectItem(rec, "payload"));
		if (p && strstr(p, "\"check_in\":\"first\"")) {
			seen = true;
			CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(
				      rec, "attempts")) == 2);
			CHECK_STR(cJSON_GetStringValue(
					  cJSON_GetObjectItem(rec, "job_id")),
				  "per1");
		}
		cJSON_Delete(rec);
	}
	freeReplyObject(all);
	CHECK(seen);
	hook_agent_free(a);

	/* receiver up; two new agents on the same Redis race to take the
	 * events over: one wins and delivers them once, in order */
	rx_rule(r, "/persist", 200, 0, 0, 0, false);
	struct racer r1 = {.ns = ns}, r2 = {.ns = ns};
	pthread_t t1, t2;
	pthread_create(&t1, NULL, racer_main, &r1);
	pthread_create(&t2, NULL, racer_main, &r2);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	CHECK(r1.rc == 0 && r2.rc == 0);
	CHECK(WAIT_FOR(rx_count(r, "/persist") == 5, 2000));
	util_sleep_ms(300);
	CHECK_MSG(rx_count(r, "/persist") == 5, "%zu requests",
		  rx_count(r, "/persist"));
	CHECK(hook_agent_pending(r1.a) + hook_agent_pending(r2.a) == 0);
	hook_agent_free(r2.a);
	a = r1.a;
	const char *order[] = {"first", "second", "third"};
	for (size_t k = 0; k < 3; k++) {
		char *body = NULL, want[40];
		rx_get(r, "/persist", 2 + k, NULL, &body, NULL);
		snprintf(want, sizeof(want), "\"check_in\":\"%s\"", order[k]);
		CHECK_CONTAINS(body, want);
		free(body);
	}
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 1000));
	CHECK(test_redis_int(pool, "EXISTS", key, NULL) == 0);
	char *gone = test_redis_str(pool, "HGET",
				    "{hk_persist}:berth:hook_agents", agent1,
				    NULL);
	CHECK(!gone);
	free(gone);
	CHECK(hlen_events(ns, a) == 0);
	free(key);
	free(agent1);
	hook_agent_free(a);
}

static void
test_redis_down(struct receiver *r)
{
	const char *ns = "{hk_down}";
	rx_rule(r, "/later", 500, 0, 0, 0, false);
	struct hook_agent *a = agent(ns, 2, 10, 300, 10.0, 5000);
	CHECK(test_redis_kill9(&tredis) == 0);
	submit(a, r, "/later", "down1", "Running", 4, NULL, 0);
	CHECK(WAIT_FOR(rx_count(r, "/later") == 2, 3000));
	CHECK(hook_agent_pending(a) == 1);
	CHECK(test_redis_restart(&tredis) == 0);
	/* the keeper writes it within a second or so */
	CHECK(WAIT_FOR(hlen_events(ns, a) == 1, 4000));
	/* a newer status supersedes it and goes out at once */
	rx_rule(r, "/later", 200, 0, 0, 0, false);
	submit(a, r, "/later", "down1", "Success", 4, NULL, 0);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 2000));
	CHECK(rx_count(r, "/later") == 3);
	CHECK(WAIT_FOR(hlen_events(ns, a) == 0, 2000));
	hook_agent_free(a);
}

/* Go's proxy rules: HTTP_PROXY / http_proxy for http, HTTPS_PROXY for
 * https, NO_PROXY, never for loopback. The receiver plays the proxy. */
static void
test_proxy(struct receiver *r)
{
	const char *ns = "{hk_proxy}";
	char *proxy = xasprintf("http://127.0.0.1:%d", r->port);
	const char *names[] = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY",
			       "https_proxy", "NO_PROXY", "no_proxy"};
	for (size_t i = 0; i < ARRAY_LEN(names); i++)
		unsetenv(names[i]);
	struct hook_agent_config c = {.threads = 2, .max_attempts = 1,
				      .timeout_ms = 1500,
				      .connect_timeout_ms = 1000};
	struct job_stats s;
	struct berr e;
	for (int round = 0; round < 2; round++) {
		/* uppercase, then lowercase (libcurl alone ignores
		 * HTTP_PROXY) */
		setenv(round ? "http_proxy" : "HTTP_PROXY", proxy, 1);
		setenv("HTTPS_PROXY", proxy, 1);
		struct hook_agent *a = hook_agent_new(&c, pool, ns, NULL);
		berr_clear(&e);
		CHECK(hook_agent_start(a, &e) == 0);
		size_t before = rx_count(r, "http://hook-target.invalid/p");
		snap_init(&s, "px1", "Running", 1,
			  "http://hook-target.invalid/p");
		hook_agent_submit(a, &s, NULL);
		job_stats_fini(&s);
		CHECK_MSG(WAIT_FOR(rx_count(r, "http://hook-target.invalid/p") ==
					   before + 1,
				   3000),
			  "round %d: not sent through the proxy", round);
		/* https goes through a CONNECT tunnel */
		size_t tunnels = rx_count(r, "hook-target.invalid:443");
		snap_init(&s, "px2", "Running", 1,
			  "https://hook-target.invalid/p");
		hook_agent_submit(a, &s, NULL);
		job_stats_fini(&s);
		CHECK(WAIT_FOR(rx_count(r, "hook-target.invalid:443") ==
				       tunnels + 1,
			       3000));
		/* loopback never goes through the proxy */
		size_t direct = rx_count(r, "/direct");
		submit(a, r, "/direct", "px3", "Running", 1, NULL, 0);
		CHECK(WAIT_FOR(rx_count(r, "/direct") == direct + 1, 3000));
		CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 3000));
		hook_agent_free(a);
		unsetenv(round ? "http_proxy" : "HTTP_PROXY");
	}
	/* NO_PROXY: straight to the (unresolvable) host, not the proxy */
	setenv("HTTP_PROXY", proxy, 1);
	setenv("NO_PROXY", "example.org,hook-target.invalid", 1);
	struct hook_agent *a = hook_agent_new(&c, pool, ns, NULL);
	berr_clear(&e);
	CHECK(hook_agent_start(a, &e) == 0);
	size_t before = rx_count(r, "http://hook-target.invalid/p");
	snap_init(&s, "px4", "Running", 1, "http://hook-target.invalid/p");
	hook_agent_submit(a, &s, NULL);
	job_stats_fini(&s);
	CHECK(WAIT_FOR(hook_agent_pending(a) == 0, 3000));
	CHECK(rx_count(r, "http://hook-target.invalid/p") == before);
	hook_agent_free(a);
	for (size_t i = 0; i < ARRAY_LEN(names); i++)
		unsetenv(names[i]);
	free(proxy);
}

int
main(void)
{
	const char *lvl = getenv("LOG_LEVEL");
	blog_set_level(lvl && blog_level_parse(lvl) >= 0
			       ? blog_level_parse(lvl)
			       : BLOG_WARNING);
	if (test_redis_start(&tredis) < 0)
		return 1;
	pool = test_redis_pool(&tredis, 5000);
	struct receiver *r = rx_start();
	int64_t t0 = util_monotonic_ms();

	test_payload(r);
	test_ack(r);
	test_ordering(r);
	test_retry_until_up(r);
	test_bounds(r);
	test_outdated(r);
	test_isolation(r);
	test_breaker(r);
	test_backlog(r);
	test_supersede(r);
	test_duplicate_refire(r);
	test_header_timeout(r);
	test_persistence(r);
	test_proxy(r);
	test_redis_down(r);

	fprintf(stderr, "hook tests took %" PRId64 " ms\n",
		util_monotonic_ms() - t0);
	rx_stop(r);
	redis_pool_free(pool);
	test_redis_stop(&tredis);
	TEST_DONE();
}

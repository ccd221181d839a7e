/* test_sentinel.c - redis+sentinel:// URLs (parse, errors, redaction,
 * describe), and a sentinel pool against real processes on loopback TCP
 * ports: a master, a replica and one sentinel (quorum 1).
 *
 *   - discovery: the pool dials the master the sentinel names;
 *   - SENTINEL FAILOVER: the watcher sees +switch-master and bumps the
 *     generation with no command issued; the next command of a thread
 *     whose context was dialled before goes to the new master;
 *   - a master turned into a replica behind the sentinel's back: the write
 *     gets READONLY (returned as a reply), the context is dropped, the
 *     next dial is refused by the ROLE check with a clear message, and the
 *     pool works again once the server is the master again;
 *   - no sentinel reachable, and a master no sentinel knows: the message
 *     names every sentinel's answer. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "logs/log.h"
#include "store/redis_cmd.h"
#include "store/redis_conn.h"
#include "store/redis_sentinel.h"
#include "redis_harness.h"
#include "testlib.h"
#include "common/util.h"

/* ---- URLs ------------------------------------------------------------- */

struct sent_case {
	const char *url;
	const char *master;
	int n;
	const char *hosts[3];
	int ports[3];
	const char *user, *password;
	int db;
	int idle;
	const char *s_user, *s_password;
};

static const struct sent_case ok_cases[] = {
	{"redis+sentinel://h1:26379,h2:26380,h3/mymaster", "mymaster", 3,
	 {"h1", "h2", "h3"}, {26379, 26380, 26379}, "", "", 0, -1, "", ""},
	{"redis+sentinel://:pw@127.0.0.1:5000/m/3", "m", 1, {"127.0.0.1"},
	 {5000}, "", "pw", 3, -1, "", ""},
	{"redis+sentinel://alice:p%40ss@[::1]:5000,localhost/m%2Dx/0"
	 "?idle_timeout_seconds=7&sentinel_password=s%26p&sentinel_user=sen",
	 "m-x", 2, {"::1", "localhost"}, {5000, 26379}, "alice", "p@ss", 0, 7,
	 "sen", "s&p"},
	{"REDIS+SENTINEL://h:1/m/", "m", 1, {"h"}, {1}, "", "", 0, -1, "", ""},
	{"redis+sentinel://:26380/m", "m", 1, {"localhost"}, {26380}, "", "",
	 0, -1, "", ""},
	{"redis+sentinel://:p@ss@h/mymaster", "mymaster", 1, {"h"}, {26379},
	 "", "p@ss", 0, -1, "", ""},
};

static const char *const bad_cases[][2] = {
	{"redis+sentinel://", "names no sentinel"},
	{"redis+sentinel:///m", "names no sentinel"},
	{"redis+sentinel://h1", "names no master"},
	{"redis+sentinel://h1/", "names no master"},
	{"redis+sentinel://h1//2", "names no master"},
	{"redis+sentinel://h1,/m", "empty sentinel address (number 2)"},
	{"redis+sentinel://,h1/m", "empty sentinel address (number 1)"},
	{"redis+sentinel://h1:0/m", "bad port \"0\""},
	{"redis+sentinel://h1:x/m", "bad port \"x\""},
	{"redis+sentinel://h1:70000/m", "bad port"},
	{"redis+sentinel://h 1/m", "bad character ' '"},
	{"redis+sentinel://::1/m", "brackets"},
	{"redis+sentinel://[::1/m", "']'"},
	{"redis+sentinel://h/m/x", "bad database \"x\""},
	{"redis+sentinel://h/m/1/2", "bad database"},
	{"redis+sentinel://h/m%zz", "bad percent-encoding in the master name"},
	{"redis+sentinel://h/a%20b", "bad character in the master name"},
	{"redis+sentinel://h/m?sentinel_password=%zz",
	 "bad percent-encoding in the sentinel_password"},
	{"redis+sentinel://h/m?idle_timeout_seconds=x",
	 "bad idle_timeout_seconds"},
	{"redis+sentinel://h:1,h:2,h:3,h:4,h:5,h:6,h:7,h:8,h:9,h:10,h:11,"
	 "h:12,h:13,h:14,h:15,h:16,h:17/m",
	 "too many sentinels in redis URL"},
	{"rediss+sentinel://h/m", "rediss+sentinel:// (TLS) is not supported"},
};

/* Bad URLs carrying the secret "hunter2": no message may show it. */
static const char *const secret_cases[] = {
	"redis+sentinel://:hunter2@h:1",
	"redis+sentinel://:hunter2@h:1/m/x",
	"redis+sentinel://u:hunter2@h,,x/m",
	"redis+sentinel://h/m?sentinel_password=hunter2&idle_timeout_seconds=q",
	"redis+sentinel://:hunter2%zz@h/m",
	"rediss+sentinel://:hunter2@h/m",
};

static void
test_urls(void)
{
	for (size_t i = 0; i < ARRAY_LEN(ok_cases); i++) {
		const struct sent_case *c = &ok_cases[i];
		struct redis_target t;
		struct berr e;
		berr_clear(&e);
		int rc = redis_url_parse(c->url, &t, &e);
		CHECK_MSG(rc == 0, "%s: %s", c->url, e.msg);
		if (rc < 0)
			continue;
		CHECK(t.sentinel && !t.unix_socket && !t.tls);
		CHECK_STR(t.master_name, c->master);
		CHECK_MSG(t.n_sentinels == c->n, "%s: %d sentinels", c->url,
			  t.n_sentinels);
		for (int k = 0; k < c->n && k < t.n_sentinels; k++) {
			CHECK_STR(t.sentinels[k].host, c->hosts[k]);
			CHECK_MSG(t.sentinels[k].port == c->ports[k],
				  "%s: port %d", c->url, t.sentinels[k].port);
		}
		CHECK_STR(t.user, c->user);
		CHECK_STR(t.password, c->password);
		CHECK_MSG(t.db == c->db, "%s: db %d", c->url, t.db);
		CHECK_MSG(t.idle_timeout_seconds == c->idle, "%s: idle %d",
			  c->url, t.idle_timeout_seconds);
		CHECK_STR(t.sentinel_user, c->s_user);
		CHECK_STR(t.sentinel_password, c->s_password);
		CHECK_STR(t.host, ""); /* discovered */
		char buf[200];
		char want[160];
		snprintf(want, sizeof(want), "sentinel:%s", c->master);
		CHECK_STR(redis_target_describe(&t, buf, sizeof(buf)), want);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++) {
		struct redis_target t;
		struct berr e;
		berr_clear(&e);
		CHECK_MSG(redis_url_parse(bad_cases[i][0], &t, &e) < 0, "%s",
			  bad_cases[i][0]);
		CHECK_CONTAINS(e.msg, bad_cases[i][1]);
		CHECK(!t.sentinel && t.n_sentinels == 0); /* defaults */
	}
	/* a master name of 128 bytes does not fit */
	char url[300];
	memset(url, 0, sizeof(url));
	snprintf(url, sizeof(url), "redis+sentinel://h/");
	memset(url + strlen(url), 'm', 128);
	struct redis_target t;
	struct berr e;
	CHECK(redis_url_parse(url, &t, &e) < 0);
	CHECK_CONTAINS(e.msg, "master name in redis URL");
	CHECK(redis_url_parse("rediss+sentinel://h/m", &t, &e) < 0 && t.tls);
	for (size_t i = 0; i < ARRAY_LEN(secret_cases); i++) {
		berr_clear(&e);
		CHECK_MSG(redis_url_parse(secret_cases[i], &t, &e) < 0, "%s",
			  secret_cases[i]);
		CHECK_MSG(!strstr(e.msg, "hunter2"), "secret leaked: %s",
			  e.msg);
		CHECK(!t.password[0] && !t.sentinel_password[0]);
	}

	static const char *const red[][2] = {
		{"redis+sentinel://:pw@h1:1,h2:2/m/1?sentinel_password=sp&x=",
		 "redis+sentinel://:***@h1:1,h2:2/m/1?sentinel_password=***&x="},
		{"redis+sentinel://h1/m?sentinel_user=u&SENTINEL_PASSWORD=z",
		 "redis+sentinel://h1/m?sentinel_user=u&SENTINEL_PASSWORD=***"},
		{"redis+sentinel://h1/m?sentinel_password=",
		 "redis+sentinel://h1/m?sentinel_password="},
		{"redis://h?mypassword=x", "redis://h?mypassword=x"},
	};
	for (size_t i = 0; i < ARRAY_LEN(red); i++) {
		char *s = redis_url_redact(red[i][0]);
		CHECK_STR(s, red[i][1]);
		free(s);
	}
	char *n = redis_url_normalise("redis+sentinel://h/m");
	CHECK_STR(n, "redis+sentinel://h/m");
	free(n);
}

/* ---- processes on loopback TCP ------------------------------------------ */

/* n distinct free ports (bound together, then released). */
static void
free_ports(int *ports, int n)
{
	int fds[8];
	for (int i = 0; i < n; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t len = sizeof(a);
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		CHECK(fds[i] >= 0 &&
		      bind(fds[i], (struct sockaddr *)&a, sizeof(a)) == 0 &&
		      getsockname(fds[i], (struct sockaddr *)&a, &len) == 0);
		ports[i] = ntohs(a.sin_port);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* One command on a fresh TCP connection; the reply or NULL. */
static redisReply *
tcp_cmd(int port, const char *fmt, ...)
{
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	if (!c || c->err) {
		if (c)
			redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	redisFree(c);
	return r;
}

/* True when the command's reply is a status/string containing want. */
static bool
tcp_says(int port, const char *want, const char *fmt, const char *arg)
{
	redisReply *r = tcp_cmd(port, fmt, arg);
	bool ok = r && r->str && strstr(r->str, want);
	if (r)
		freeReplyObject(r);
	return ok;
}

static bool
wait_until(bool (*pred)(void *), void *arg, int ms)
{
	for (int waited = 0; waited < ms; waited += 50) {
		if (pred(arg))
			return true;
		util_sleep_ms(50);
	}
	return pred(arg);
}

struct sentinel_proc {
	char dir[200];
	int port;
	pid_t pid;
};

static int
sentinel_start(struct sentinel_proc *sp, int port, int master_port)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(sp->dir, sizeof(sp->dir), "%s/berth-sent-XXXXXX",
		 tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
	if (!mkdtemp(sp->dir))
		return -1;
	sp->port = port;
	char conf[260], text[800];
	snprintf(conf, sizeof(conf), "%s/sentinel.conf", sp->dir);
	int n = snprintf(text, sizeof(text),
			 "port %d\nbind 127.0.0.1\ndir %s\n"
			 "logfile %s/sentinel.log\n"
			 "sentinel monitor tmaster 127.0.0.1 %d 1\n"
			 "sentinel down-after-milliseconds tmaster 1000\n"
			 "sentinel failover-timeout tmaster 3000\n",
			 port, sp->dir, sp->dir, master_port);
	int fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, (size_t)n) != n) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	const char *bin = getenv("BERTH_REDIS_SERVER");
	if (!bin || !*bin)
		bin = "redis-server";
	pid_t parent = getpid();
	sp->pid = fork();
	if (sp->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 1);
		dup2(null, 2);
		execlp(bin, bin, conf, "--sentinel", (char *)NULL);
		_exit(127);
	}
	if (sp->pid < 0)
		return -1;
	for (int i = 0; i < 200; i++) {
		if (tcp_says(port, "PONG", "PING", NULL))
			return 0;
		util_sleep_ms(50);
	}
	return -1;
}

static void
sentinel_stop(struct sentinel_proc *sp)
{
	if (sp->pid > 0) {
		kill(sp->pid, SIGKILL);
		waitpid(sp->pid, NULL, 0);
		sp->pid = 0;
	}
	if (sp->dir[0])
		test_rm_rf(sp->dir);
}

static int
server_start(struct test_redis *tr, int port, int master_port)
{
	char p[16], m[16];
	snprintf(p, sizeof(p), "%d", port);
	snprintf(m, sizeof(m), "%d", master_port);
	const char *args[] = {"--port", p, "--bind", "127.0.0.1",
			      "--repl-diskless-sync-delay", "0",
			      master_port ? "--replicaof" : NULL, "127.0.0.1",
			      m, NULL};
	return test_redis_start_args(tr, args);
}

static bool
link_up(void *arg)
{
	return tcp_says(*(int *)arg, "master_link_status:up", "INFO %s",
			"replication");
}

struct gen_wait {
	struct redis_pool *p;
	uint64_t gen;
};

static bool
gen_reached(void *arg)
{
	struct gen_wait *w = arg;
	char buf[300];
	return redis_pool_master(w->p, buf, sizeof(buf)) >= w->gen;
}

static bool
knows_replica(void *arg)
{
	redisReply *r = tcp_cmd(*(int *)arg, "SENTINEL REPLICAS tmaster");
	bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0;
	if (r)
		freeReplyObject(r);
	return ok;
}

/* The port the pool's context of this thread is connected to. */
static long long
pool_port(struct redis_pool *p)
{
	redisReply *r = test_redis_cmd(p, "CONFIG", "GET", "port", NULL);
	long long port = -1;
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
		port = atoll(r->element[1]->str);
	if (r)
		freeReplyObject(r);
	return port;
}

static void
test_live(void)
{
	int ports[5];
	free_ports(ports, 5);
	int pa = ports[0], pb = ports[1], ps = ports[2];
	struct test_redis a, b;
	struct sentinel_proc sp;
	memset(&sp, 0, sizeof(sp));
	if (server_start(&a, pa, 0) < 0 || server_start(&b, pb, pa) < 0) {
		CHECK(!"cannot start redis-server on loopback TCP");
		return;
	}
	CHECK(wait_until(link_up, &pb, 15000));
	if (sentinel_start(&sp, ps, pa) < 0) {
		CHECK(!"cannot start redis-server --sentinel");
		goto out;
	}
	CHECK(wait_until(knows_replica, &ps, 15000));

	char url[200], buf[300], want[100];
	struct redis_target t;
	struct berr e;
	redisReply *r;
	snprintf(url, sizeof(url), "redis+sentinel://127.0.0.1:%d/tmaster/2",
		 ps);
	CHECK(redis_url_parse(url, &t, &e) == 0);
	struct redis_pool *p = redis_pool_new(&t, 2000, 2000);
	CHECK_STR(redis_pool_describe(p), "sentinel:tmaster");

	/* discovery */
	CHECK(redis_pool_master(p, buf, sizeof(buf)) == 0);
	CHECK(test_redis_do(p, "SET", "k", "1", NULL) == 0);
	/* a replica fed by a diskless sync gets the stream only after its
	 * first ACK (up to 1 s): wait for it, or the failover loses k */
	CHECK(test_redis_int(p, "WAIT", "1", "5000", NULL) == 1);
	CHECK(redis_pool_master(p, buf, sizeof(buf)) == 1);
	snprintf(want, sizeof(want), "127.0.0.1:%d", pa);
	CHECK_STR(buf, want);
	CHECK(pool_port(p) == pa);
	/* a submission waits for the replica: ROLE lists one, WAIT 1 */
	CHECK(redis_pool_wait_replica(p, &e) == 0);
	r = tcp_cmd(pa, "INFO commandstats");
	CHECK(r && r->str && strstr(r->str, "cmdstat_wait:calls=2,"));
	if (r)
		freeReplyObject(r);
	/* db 2 of the URL is selected */
	r = tcp_cmd(pa, "INFO keyspace");
	CHECK(r && r->str && strstr(r->str, "db2:keys=1"));
	if (r)
		freeReplyObject(r);

	/* SENTINEL FAILOVER: the watcher moves the pool, no command needed */
	bool started = false;
	for (int i = 0; i < 100 && !started; i++) {
		r = tcp_cmd(ps, "SENTINEL FAILOVER tmaster");
		started = r && r->type == REDIS_REPLY_STATUS;
		if (r)
			freeReplyObject(r);
		if (!started)
			util_sleep_ms(100);
	}
	CHECK(started);
	struct gen_wait w = {p, 2};
	CHECK(wait_until(gen_reached, &w, 20000));
	CHECK(redis_pool_master(p, buf, sizeof(buf)) == 2);
	snprintf(want, sizeof(want), "127.0.0.1:%d", pb);
	CHECK_STR(buf, want);
	/* this thread's context (dialled in generation 1) re-dials */
	CHECK(pool_port(p) == pb);
	char *v = test_redis_str(p, "GET", "k", NULL);
	CHECK_STR(v, "1");
	free(v);
	CHECK(test_redis_do(p, "SET", "k", "2", NULL) == 0);

	/* b becomes a replica behind the sentinel's back: READONLY */
	r = tcp_cmd(pb, "REPLICAOF 127.0.0.1 %d", pa);
	if (r)
		freeReplyObject(r);
	berr_clear(&e);
	r = redis_command(p, &e, "SET", "k", "3", NULL);
	CHECK(r && r->type == REDIS_REPLY_ERROR && r->str &&
	      strncmp(r->str, "READONLY", 8) == 0);
	if (r)
		freeReplyObject(r);
	berr_clear(&e);
	r = redis_command(p, &e, "GET", "k", NULL);
	CHECK(r == NULL);
	snprintf(want, sizeof(want), "(master 127.0.0.1:%d) is not the "
		 "master (ROLE says slave)", pb);
	CHECK_CONTAINS(e.msg, want);
	if (r)
		freeReplyObject(r);
	/* b is the master again: the pool works again, same generation */
	r = tcp_cmd(pb, "REPLICAOF NO ONE");
	if (r)
		freeReplyObject(r);
	util_sleep_ms(150);
	CHECK(test_redis_do(p, "SET", "k", "4", NULL) == 0);
	CHECK(redis_pool_master(p, buf, sizeof(buf)) == 2);
	redis_pool_free(p);

	/* a master no sentinel knows */
	snprintf(url, sizeof(url), "redis+sentinel://127.0.0.1:%d/nosuch",
		 ps);
	CHECK(redis_url_parse(url, &t, &e) == 0);
	p = redis_pool_new(&t, 2000, 2000);
	berr_clear(&e);
	CHECK(redis_ping(p, &e) < 0);
	CHECK_CONTAINS(e.msg, "does not know a master named \"nosuch\"");
	redis_pool_free(p);
out:
	sentinel_stop(&sp);
	test_redis_stop(&a);
	test_redis_stop(&b);
}

static void
test_unreachable(void)
{
	int ports[2];
	free_ports(ports, 2);
	char url[200];
	snprintf(url, sizeof(url),
		 "redis+sentinel://:pw@127.0.0.1:%d,127.0.0.1:%d/m", ports[0],
		 ports[1]);
	struct redis_target t;
	struct berr e;
	CHECK(redis_url_parse(url, &t, &e) == 0);
	struct redis_pool *p = redis_pool_new(&t, 2000, 2000);
	berr_clear(&e);
	CHECK(redis_ping(p, &e) < 0);
	CHECK_CONTAINS(e.msg, "redis sentinel:m: no sentinel named a "
			      "reachable master \"m\"");
	char s1[64], s2[64];
	snprintf(s1, sizeof(s1), "sentinel 127.0.0.1:%d: cannot connect",
		 ports[0]);
	snprintf(s2, sizeof(s2), "sentinel 127.0.0.1:%d: cannot connect",
		 ports[1]);
	CHECK_CONTAINS(e.msg, s1);
	CHECK_CONTAINS(e.msg, s2);
	/* asked again at most every 100 ms: the same answer */
	berr_clear(&e);
	CHECK(redis_ping(p, &e) < 0);
	CHECK_CONTAINS(e.msg, "no sentinel named a reachable master");
	/* whether a submission reached a replica cannot be known */
	CHECK(redis_pool_wait_replica(p, &e) < 0);
	redis_pool_free(p);
}

int
main(void)
{
	blog_set_level(getenv("T_DEBUG") ? BLOG_DEBUG : BLOG_ERROR);
	test_urls();
	test_unreachable();
	test_live();
	TEST_DONE();
}

/* test_redis.c - redis_conn: URL parsing, the per-thread pool against a
 * real redis-server (unix socket, private temp dir), reconnects, timeouts,
 * AUTH/SELECT, and the embedded redis-server child. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "logs/log.h"
#include "store/redis_conn.h"
#include "redis_harness.h"
#include "testlib.h"
#include "common/util.h"

/* ---- URL parsing ------------------------------------------------------ */

struct url_case {
	const char *url;
	bool ok;
	bool unix_socket;
	const char *host; /* or socket path */
	int port;
	const char *user;
	const char *password;
	int db;
	int idle;
	const char *err; /* substring of the message when !ok */
};

static const struct url_case url_cases[] = {
	{"redis://localhost:6379", true, false, "localhost", 6379, "", "", 0,
	 -1, NULL},
	{"redis://redis:6379/2?idle_timeout_seconds=30", true, false, "redis",
	 6379, "", "", 2, 30, NULL},
	{"redis://:secret@redis:6379/2", true, false, "redis", 6379, "",
	 "secret", 2, -1, NULL},
	{"redis://alice:s3cret@10.0.0.1:7000/1", true, false, "10.0.0.1",
	 7000, "alice", "s3cret", 1, -1, NULL},
	{"redis://justpass@host", true, false, "host", 6379, "", "justpass", 0,
	 -1, NULL},
	{"redis://", true, false, "localhost", 6379, "", "", 0, -1, NULL},
	{"redis://:6380", true, false, "localhost", 6380, "", "", 0, -1, NULL},
	{"redis://host/", true, false, "host", 6379, "", "", 0, -1, NULL},
	{"REDIS://Host:1", true, false, "Host", 1, "", "", 0, -1, NULL},
	{"host:6390", true, false, "host", 6390, "", "", 0, -1, NULL},
	{"myhost", true, false, "myhost", 6379, "", "", 0, -1, NULL},
	{"redis.example.com:6379/5", true, false, "redis.example.com", 6379,
	 "", "", 5, -1, NULL},
	{"redis://u%40x:p%3Aw%2Fd%25@h:1", true, false, "h", 1, "u@x",
	 "p:w/d%", 0, -1, NULL},
	{"redis://:p@ss/w?rd@host:6379/3", true, false, "host", 6379, "",
	 "p@ss/w?rd", 3, -1, NULL},
	{"redis://[::1]:6380/3", true, false, "::1", 6380, "", "", 3, -1,
	 NULL},
	{"redis://[fe80::1%25eth0]", true, false, "fe80::1%25eth0", 6379, "",
	 "", 0, -1, NULL},
	{"redis://h?idle_timeout_seconds=0&other=1", true, false, "h", 6379,
	 "", "", 0, 0, NULL},
	{"/run/redis/redis.sock", true, true, "/run/redis/redis.sock", 0, "",
	 "", 0, -1, NULL},
	{"unix:///run/redis.sock?db=4", true, true, "/run/redis.sock", 0, "",
	 "", 4, -1, NULL},
	{"unix:/run/redis.sock", true, true, "/run/redis.sock", 0, "", "", 0,
	 -1, NULL},
	{"unix:///r.sock?password=p%26w&user=bob&db=1&idle_timeout_seconds=9",
	 true, true, "/r.sock", 0, "bob", "p&w", 1, 9, NULL},

	{"", false, false, NULL, 0, NULL, NULL, 0, 0, "empty"},
	{"embedded", false, false, NULL, 0, NULL, NULL, 0, 0, "embedded"},
	{"redis://host:abc", false, false, NULL, 0, NULL, NULL, 0, 0,
	 "bad port \"abc\""},
	{"redis://host:0", false, false, NULL, 0, NULL, NULL, 0, 0, "bad port"},
	{"redis://host:65536", false, false, NULL, 0, NULL, NULL, 0, 0,
	 "bad port"},
	{"redis://host:", false, false, NULL, 0, NULL, NULL, 0, 0, "bad port"},
	{"redis://host:-1", false, false, NULL, 0, NULL, NULL, 0, 0,
	 "bad port"},
	{"redis://host/abc", false, false, NULL, 0, NULL, NULL, 0, 0,
	 "bad database \"abc\""},
	{"redis://host/-1", false, false, NULL, 0, NULL, NULL, 0, 0,
	 "bad database"},
	{"redis://host/1/2", false, false, NULL, 0, NULL, NULL, 0, 0,
	 "bad database"},
	{"redis://host/99999999999", false, false, NULL, 0, NULL, NULL, 0, 0,
	 "bad database"},
	{"redis://[]:6379", false, false, NULL, 0, NULL, NULL, 0, 0,
	 "empty host"},
	{"redis://[::1", false, false, NULL, 0, NULL, NULL, 0, 0, "']'"},
	{"redis://::1:6379", false, false, NULL, 0, NULL, NULL, 0, 0,
	 "brackets"},
	{"redis://ho st:1", false, false, NULL, 0, NULL, NULL, 0, 0,
	 "bad character ' '"},
	{"redis://h?idle_timeout_seconds=x", false, false, NULL, 0, NULL, NULL,
	 0, 0, "bad idle_timeout_seconds"},
	{"redis://h?idle_timeout_seconds=-5", false, false, NULL, 0, NULL,
	 NULL, 0, 0, "bad idle_timeout_seconds"},
	{"rediss://host:6379", false, false, NULL, 0, NULL, NULL, 0, 0,
	 "hiredis 0.14 has no TLS"},
	{"redis+sentinel://h1:26379,h2:26379", false, false, NULL, 0, NULL,
	 NULL, 0, 0, "names no master"},
	{"rediss+sentinel://h1:26379/m", false, false, NULL, 0, NULL, NULL, 0,
	 0, "not supported by this build"},
	{"http://host", false, false, NULL, 0, NULL, NULL, 0, 0,
	 "unknown scheme \"http\""},
	{"unix://relative/path", false, false, NULL, 0, NULL, NULL, 0, 0,
	 "must be absolute"},
	{"unix:///x.sock?db=z", false, false, NULL, 0, NULL, NULL, 0, 0,
	 "bad database \"z\""},
	{"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	 false, false, NULL, 0, NULL, NULL, 0, 0, "too long"},
};

/* Bad URLs carrying the password "hunter2": no message may show it. */
static const char *const secret_cases[] = {
	"redis://:hunter2@host:99999",
	"redis://alice:hunter2@host/xyz",
	"redis://hunter2@host:port",
	"redis://:hunter2%zz@host",
	"rediss://:hunter2@host",
	"redis+sentinel://:hunter2@h:1/m/x",
	"redis+sentinel://h:1/m?sentinel_password=hunter2%zz",
	"ftp://:hunter2@host",
	"unix:///x.sock?password=hunter2&db=q",
	"redis://:hunter2@[]:1",
	"redis://:hunter2@h?idle_timeout_seconds=hunter",
	"redis://:hunter2%00@h",
};

static void
test_url_parse(void)
{
	for (size_t i = 0; i < ARRAY_LEN(url_cases); i++) {
		const struct url_case *c = &url_cases[i];
		struct redis_target t;
		struct berr e;
		berr_clear(&e);
		int rc = redis_url_parse(c->url, &t, &e);
		CHECK_MSG((rc == 0) == c->ok, "%s: rc %d (%s)", c->url, rc,
			  e.msg);
		if (rc < 0) {
			if (c->err)
				CHECK_CONTAINS(e.msg, c->err);
			continue;
		}
		CHECK_MSG(t.unix_socket == c->unix_socket, "%s", c->url);
		CHECK_STR(c->unix_socket ? t.path : t.host, c->host);
		if (!c->unix_socket)
			CHECK_MSG(t.port == c->port, "%s: port %d", c->url,
				  t.port);
		CHECK_STR(t.user, c->user);
		CHECK_STR(t.password, c->password);
		CHECK_MSG(t.db == c->db, "%s: db %d", c->url, t.db);
		CHECK_MSG(t.idle_timeout_seconds == c->idle, "%s: idle %d",
			  c->url, t.idle_timeout_seconds);
		CHECK(!t.tls);
	}
	for (size_t i = 0; i < ARRAY_LEN(secret_cases); i++) {
		struct redis_target t;
		struct berr e;
		berr_clear(&e);
		CHECK_MSG(redis_url_parse(secret_cases[i], &t, &e) < 0, "%s",
			  secret_cases[i]);
		CHECK_MSG(e.msg[0] != '\0', "%s: empty message",
			  secret_cases[i]);
		CHECK_MSG(!strstr(e.msg, "hunter2"), "password leaked: %s",
			  e.msg);
		CHECK_MSG(t.password[0] == '\0', "%s: password kept",
			  secret_cases[i]);
	}
	/* rediss:// says it was TLS */
	struct redis_target t;
	struct berr e;
	CHECK(redis_url_parse("rediss://h", &t, &e) < 0 && t.tls);
	/* a failed parse leaves defaults */
	CHECK(redis_url_parse("redis://:pw@h:bad", &t, &e) < 0);
	CHECK_STR(t.host, "localhost");
	CHECK(t.port == 6379);
}

static void
test_normalise_redact(void)
{
	static const char *const norm[][2] = {
		{"host:6379", "redis://host:6379"},
		{"redis://h:1", "redis://h:1"},
		{"/run/r.sock", "/run/r.sock"},
		{"unix:///run/r.sock", "unix:///run/r.sock"},
		{"embedded", "embedded"},
		{":pw@h:1/2", "redis://:pw@h:1/2"},
		{"rediss://h", "rediss://h"},
	};
	for (size_t i = 0; i < ARRAY_LEN(norm); i++) {
		char *s = redis_url_normalise(norm[i][0]);
		CHECK_STR(s, norm[i][1]);
		free(s);
	}
	static const char *const red[][2] = {
		{"redis://:secret@redis:6379/2?idle_timeout_seconds=30",
		 "redis://:***@redis:6379/2?idle_timeout_seconds=30"},
		{"redis://alice:pw@h", "redis://alice:***@h"},
		{"redis://lonepw@h", "redis://***@h"},
		{"redis://:p@ss@h:1", "redis://:***@h:1"},
		{"redis://h:1/2", "redis://h:1/2"},
		{"unix:///s?db=1&password=x&user=u",
		 "unix:///s?db=1&password=***&user=u"},
		{"/s?password=xyz", "/s?password=***"},
		{":pw@h:1", ":***@h:1"},
	};
	for (size_t i = 0; i < ARRAY_LEN(red); i++) {
		char *s = redis_url_redact(red[i][0]);
		CHECK_STR(s, red[i][1]);
		free(s);
	}
	struct redis_target t;
	struct berr e;
	char buf[600];
	CHECK(redis_url_parse("redis://:pw@[::1]:7/1", &t, &e) == 0);
	CHECK_STR(redis_target_describe(&t, buf, sizeof(buf)), "[::1]:7");
	CHECK(redis_url_parse("/tmp/r.sock", &t, &e) == 0);
	CHECK_STR(redis_target_describe(&t, buf, sizeof(buf)),
		  "unix:/tmp/r.sock");
}

/* ---- commands over the unix socket ------------------------------------ */

static bool
reply_is_str(const redisReply *r, const char *s)
{
	return r && (r->type == REDIS_REPLY_STRING ||
		     r->type == REDIS_REPLY_STATUS) &&
	       r->len == strlen(s) && memcmp(r->str, s, r->len) == 0;
}

/* Runs a command that must succeed with a status/string reply == want
 * (or any non-error reply when want is NULL). */
static bool
cmd_ok(struct redis_pool *p, const char *want, const char *a0, const char *a1,
       const char *a2, const char *a3)
{
	struct berr e;
	berr_clear(&e);
	const char *argv[] = {a0, a1, a2, a3};
	int argc = a3 ? 4 : a2 ? 3 : a1 ? 2 : 1;
	redisReply *r = redis_command_argv(p, &e, argc, argv, NULL);
	bool ok = r && r->type != REDIS_REPLY_ERROR &&
		  (!want || reply_is_str(r, want));
	if (!ok)
		fprintf(stderr, "  %s: %s\n", a0,
			r ? (r->str ? r->str : "(unexpected reply)") : e.msg);
	if (r)
		freeReplyObject(r);
	return ok;
}

static void
test_commands(struct test_redis *tr)
{
	struct redis_pool *p = test_redis_pool(tr, 2000);
	struct berr e;
	berr_clear(&e);
	CHECK(redis_ping(p, &e) == 0);
	char want[300];
	snprintf(want, sizeof(want), "unix:%s", tr->sock);
	CHECK_STR(redis_pool_describe(p), want);

	CHECK(cmd_ok(p, "OK", "SET", "berth:test:a", "hello", NULL));
	CHECK(cmd_ok(p, "hello", "GET", "berth:test:a", NULL, NULL));
	/* not a sentinel pool: no replica is waited for, no master known */
	CHECK(redis_pool_wait_replica(p, &e) == 0);
	char master[64];
	CHECK(redis_pool_master(p, master, sizeof(master)) == 0);
	CHECK_STR(master, "");

	/* binary-safe key and value: NUL, CR LF, format characters */
	static const char key[] = "bin\0key %s\r\n*3";
	char val[256];
	for (int i = 0; i < 256; i++)
		val[i] = (char)i;
	const char *sargv[] = {"SET", key, val};
	const size_t slens[] = {3, sizeof(key) - 1, sizeof(val)};
	redisReply *r = redis_command_argv(p, &e, 3, sargv, slens);
	CHECK(reply_is_str(r, "OK"));
	freeReplyObject(r);
	const char *gargv[] = {"GET", key};
	const size_t glens[] = {3, sizeof(key) - 1};
	r = redis_command_argv(p, &e, 2, gargv, glens);
	CHECK(r && r->type == REDIS_REPLY_STRING && r->len == sizeof(val) &&
	      memcmp(r->str, val, sizeof(val)) == 0);
	if (r)
		freeReplyObject(r);
	/* the key really is 15 bytes with a NUL inside */
	r = redis_command(p, &e, "EXISTS", "bin", NULL);
	CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
	if (r)
		freeReplyObject(r);

	/* an error reply is a reply, not a connection failure */
	berr_clear(&e);
	r = redis_command(p, &e, "INCR", "berth:test:a", NULL);
	CHECK(r && r->type == REDIS_REPLY_ERROR);
	CHECK(e.msg[0] == '\0');
	if (r)
		freeReplyObject(r);
	r = redis_command(p, &e, "NOSUCHCOMMAND", NULL);
	CHECK(r && r->type == REDIS_REPLY_ERROR);
	if (r)
		freeReplyObject(r);
	CHECK(redis_ping(p, &e) == 0);

	r = redis_command(p, &e, "RPUSH", "berth:test:l", "a", "b", "c", NULL);
	CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 3);
	if (r)
		freeReplyObject(r);
	r = redis_command(p, &e, "LRANGE", "berth:test:l", "0", "-1", NULL);
	CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
	      reply_is_str(r->element[2], "c"));
	if (r)
		freeReplyObject(r);

	/* no command at all */
	berr_clear(&e);
	CHECK(redis_command_argv(p, &e, 0, NULL, NULL) == NULL);
	CHECK_CONTAINS(e.msg, "empty command");

	/* the same context is reused; drop gives a new one */
	redisContext *c1 = redis_pool_get(p, &e);
	redisContext *c2 = redis_pool_get(p, &e);
	CHECK(c1 && c1 == c2);
	redis_pool_drop(p);
	CHECK(redis_ping(p, &e) == 0);
	redis_pool_free(p);
	redis_pool_free(NULL);
}

/* ---- pipelines --------------------------------------------------------- */

static void
test_pipeline(struct test_redis *tr)
{
	struct redis_pool *p = test_redis_pool(tr, 2000);
	struct berr e;
	berr_clear(&e);
	const char *set[] = {"SET", "berth:pipe:s", "v"};
	const char *get[] = {"GET", "berth:pipe:s"};
	const char *incr[] = {"INCR", "berth:pipe:s"}; /* not a number */
	const char *rpush[] = {"RPUSH", "berth:pipe:l", "a", "b"};
	redisReply *r[4];

	/* plain: one reply per command, in order; an error is a reply */
	struct redis_cmd c1[] = {{3, set, NULL}, {2, get, NULL},
				 {2, incr, NULL}, {4, rpush, NULL}};
	CHECK(redis_pipeline(p, &e, c1, 4, r, 0) == 0);
	CHECK(reply_is_str(r[0], "OK"));
	CHECK(reply_is_str(r[1], "v"));
	CHECK(r[2] && r[2]->type == REDIS_REPLY_ERROR);
	CHECK(r[3] && r[3]->type == REDIS_REPLY_INTEGER && r[3]->integer == 2);
	redis_replies_free(r, 4);
	CHECK(r[0] == NULL && r[3] == NULL);

	/* checked: the error reply fails the call, naming the command */
	berr_clear(&e);
	CHECK(redis_pipeline(p, &e, c1, 4, r, REDIS_PIPE_CHECK) < 0);
	CHECK_CONTAINS(e.msg, "INCR: ");
	CHECK(r[0] == NULL && r[1] == NULL && r[2] == NULL && r[3] == NULL);
	/* no replies wanted */
	berr_clear(&e);
	CHECK(redis_pipeline(p, &e, c1, 2, NULL, REDIS_PIPE_CHECK) == 0);
	CHECK(redis_pipeline(p, &e, c1, 0, r, REDIS_PIPE_CHECK) == 0);

	/* a transaction: the replies are the EXEC elements */
	const char *del[] = {"DEL", "berth:pipe:l"};
	const char *llen[] = {"LLEN", "berth:pipe:l"};
	struct redis_cmd c2[] = {{2, del, NULL}, {4, rpush, NULL},
				 {2, llen, NULL}};
	CHECK(redis_pipeline(p, &e, c2, 3, r,
			     REDIS_PIPE_TX | REDIS_PIPE_CHECK) == 0);
	CHECK(r[0] && r[0]->type == REDIS_REPLY_INTEGER && r[0]->integer == 1);
	CHECK(r[2] && r[2]->type == REDIS_REPLY_INTEGER && r[2]->integer == 2);
	redis_replies_free(r, 3);

	/* a failing command inside EXEC: unchecked it is an element, checked
	 * it fails the call (the other commands ran: Redis has no rollback) */
	struct redis_cmd c3[] = {{2, incr, NULL}, {2, llen, NULL}};
	CHECK(redis_pipeline(p, &e, c3, 2, r, REDIS_PIPE_TX) == 0);
	CHECK(r[0] && r[0]->type == REDIS_REPLY_ERROR);
	CHECK(r[1] && r[1]->type == REDIS_REPLY_INTEGER);
	redis_replies_free(r, 2);
	berr_clear(&e);
	CHECK(redis_pipeline(p, &e, c3, 2, r,
			     REDIS_PIPE_TX | REDIS_PIPE_CHECK) < 0);
	CHECK_CONTAINS(e.msg, "INCR: ");

	/* refused when queued (wrong arity): EXEC aborts the transaction */
	const char *bad[] = {"GET"};
	struct redis_cmd c4[] = {{2, llen, NULL}, {1, bad, NULL}};
	CHECK(redis_pipeline(p, &e, c4, 2, r, REDIS_PIPE_TX) == 0);
	CHECK(r[0] == NULL && r[1] == NULL);
	berr_clear(&e);
	CHECK(redis_pipeline(p, &e, c4, 2, r,
			     REDIS_PIPE_TX | REDIS_PIPE_CHECK) < 0);
	CHECK_CONTAINS(e.msg, "GET: ");
	/* the connection is still good after all that */
	CHECK(redis_ping(p, &e) == 0);

	/* a connection error: the message names the target and the first
	 * command without a reply; the context is re-dialled after */
	struct redis_pool *admin = test_redis_pool(tr, 2000);
	redisReply *id = redis_command(p, &e, "CLIENT", "ID", NULL);
	char ids[32] = "0";
	if (id && id->type == REDIS_REPLY_INTEGER)
		snprintf(ids, sizeof(ids), "%lld", id->integer);
	if (id)
		freeReplyObject(id);
	redisReply *k = redis_command(admin, &e, "CLIENT", "KILL", "ID", ids,
				      NULL);
	if (k)
		freeReplyObject(k);
	berr_clear(&e);
	CHECK(redis_pipeline(p, &e, c2, 3, r, REDIS_PIPE_TX) < 0);
	CHECK_CONTAINS(e.msg, tr->sock);
	CHECK_CONTAINS(e.msg, "MULTI: ");
	CHECK(r[0] == NULL);
	CHECK(redis_ping(p, &e) == 0);
	redis_pool_free(admin);
	redis_pool_free(p);
}

/* ---- RESP formatting ---------------------------------------------------- */

static bool
reply_is_bytes(const redisReply *r, const char *want, size_t len)
{
	return r && r->type == REDIS_REPLY_STRING && (size_t)r->len == len &&
	       (len == 0 || memcmp(r->str, want, len) == 0);
}

/* The commands are written by redis_conn.c's own formatter: binary
 * arguments, empty ones, lengths at each digit boundary, a 1 MiB value,
 * more than 9 arguments, lens NULL and not in one pipeline. */
static void
test_formatting(struct test_redis *tr)
{
	struct redis_pool *p = test_redis_pool(tr, 5000);
	struct berr e;
	berr_clear(&e);

	/* an empty value and an empty key, with lens and without */
	static const char k1[] = "berth:fmt:\0nul";
	const char *a1[] = {"SET", k1, ""};
	const size_t l1[] = {3, sizeof(k1) - 1, 0};
	redisReply *r = redis_command_argv(p, &e, 3, a1, l1);
	CHECK(reply_is_str(r, "OK"));
	if (r)
		freeReplyObject(r);
	const char *a2[] = {"SET", "", "empty key"};
	r = redis_command_argv(p, &e, 3, a2, NULL);
	CHECK(reply_is_str(r, "OK"));
	if (r)
		freeReplyObject(r);
	const char *g1[] = {"GET", k1};
	const size_t gl1[] = {3, sizeof(k1) - 1};
	const char *g2[] = {"GET", ""};
	const char *s1[] = {"STRLEN", "berth:fmt:"}; /* the key cut at NUL */
	struct redis_cmd gc[] = {{2, g1, gl1}, {2, g2, NULL}, {2, s1, NULL}};
	redisReply *rr[12];
	CHECK(redis_pipeline(p, &e, gc, 3, rr, REDIS_PIPE_CHECK) == 0);
	CHECK(reply_is_bytes(rr[0], "", 0));
	CHECK(reply_is_bytes(rr[1], "empty key", 9));
	CHECK(rr[2] && rr[2]->type == REDIS_REPLY_INTEGER &&
	      rr[2]->integer == 0);
	redis_replies_free(rr, 3);

	/* lengths at the digit boundaries, every byte value, in one
	 * transaction of 10 SETs (plus MULTI/EXEC) */
	static const size_t sizes[] = {1, 9, 10, 99, 100, 999, 1000, 9999,
				       10000, 65537};
	enum { NS = sizeof(sizes) / sizeof(sizes[0]) };
	char *vals[NS], keys[NS][32];
	const char *sv[NS][3];
	size_t sl[NS][3];
	struct redis_cmd sc[NS], gcs[NS];
	const char *gv[NS][2];
	size_t gl[NS][2];
	for (size_t i = 0; i < NS; i++) {
		vals[i] = xmalloc(sizes[i]);
		for (size_t j = 0; j < sizes[i]; j++)
			vals[i][j] = (char)((j * 7 + i) & 0xff);
		snprintf(keys[i], sizeof(keys[i]), "berth:fmt:%zu", sizes[i]);
		sv[i][0] = "SET";
		sv[i][1] = keys[i];
		sv[i][2] = vals[i];
		sl[i][0] = 3;
		sl[i][1] = strlen(keys[i]);
		sl[i][2] = sizes[i];
		sc[i] = (struct redis_cmd){3, sv[i], sl[i]};
		gv[i][0] = "GET";
		gv[i][1] = keys[i];
		gl[i][0] = 3;
		gl[i][1] = strlen(keys[i]);
		/* half with lens, half as C strings (the key has no NUL) */
		gcs[i] = (struct redis_cmd){2, gv[i], i % 2 ? gl[i] : NULL};
	}
	CHECK(redis_pipeline(p, &e, sc, NS, rr,
			     REDIS_PIPE_TX | REDIS_PIPE_CHECK) == 0);
	for (size_t i = 0; i < NS; i++)
		CHECK(reply_is_str(rr[i], "OK"));
	redis_replies_free(rr, NS);
	CHECK(redis_pipeline(p, &e, gcs, NS, rr, REDIS_PIPE_CHECK) == 0);
	for (size_t i = 0; i < NS; i++)
		CHECK_MSG(reply_is_bytes(rr[i], vals[i], sizes[i]),
			  "value of %zu bytes", sizes[i]);
	redis_replies_free(rr, NS);
	for (size_t i = 0; i < NS; i++)
		free(vals[i]);

	/* a 1 MiB value with NUL, CR LF and "*3\r\n$" inside, through both */
	size_t big_len = 1u << 20;
	char *big = xmalloc(big_len);
	for (size_t j = 0; j < big_len; j++)
		big[j] = "\0\r\n*3$x\xff"[j % 8];
	const char *bs[] = {"SET", "berth:fmt:big", big};
	const size_t bl[] = {3, 13, big_len};
	r = redis_command_argv(p, &e, 3, bs, bl);
	CHECK(reply_is_str(r, "OK"));
	if (r)
		freeReplyObject(r);
	const char *bg[] = {"GET", "berth:fmt:big"};
	r = redis_command_argv(p, &e, 2, bg, NULL);
	CHECK(reply_is_bytes(r, big, big_len));
	if (r)
		freeReplyObject(r);
	big[0] = 'B';
	const char *bs2[] = {"SET", "berth:fmt:big2", big};
	const size_t bl2[] = {3, 14, big_len};
	const char *bg2[] = {"GET", "berth:fmt:big2"};
	struct redis_cmd bc[] = {{3, bs2, bl2}, {2, bg2, NULL}};
	CHECK(redis_pipeline(p, &e, bc, 2, rr, REDIS_PIPE_CHECK) == 0);
	CHECK(reply_is_str(rr[0], "OK"));
	CHECK(reply_is_bytes(rr[1], big, big_len));
	redis_replies_free(rr, 2);
	free(big);
	/* small commands after it (the large buffer is given back) */
	CHECK(redis_ping(p, &e) == 0);

	/* more than 9 arguments: argc of two digits */
	const char *h[21] = {"HSET", "berth:fmt:h"};
	char hf[19][8];
	for (int i = 0; i < 19; i++) {
		snprintf(hf[i], sizeof(hf[i]), "%c%d", i % 2 ? 'v' : 'f',
			 i / 2);
		h[2 + i] = hf[i];
	}
	r = redis_command_argv(p, &e, 20, h, NULL); /* 9 pairs */
	CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 9);
	if (r)
		freeReplyObject(r);
	r = redis_command(p, &e, "HGET", "berth:fmt:h", "f8", NULL);
	CHECK(reply_is_str(r, "v8"));
	if (r)
		freeReplyObject(r);
	r = redis_command_argv(p, &e, 21, h, NULL); /* odd: an error reply */
	CHECK(r && r->type == REDIS_REPLY_ERROR);
	if (r)
		freeReplyObject(r);

	/* a command of no argument in a pipeline is refused before sending;
	 * the connection stays */
	redisContext *c0 = redis_pool_get(p, &e);
	struct redis_cmd ec[] = {{2, g2, NULL}, {0, g2, NULL}};
	redisReply dummy;
	berr_clear(&e);
	rr[0] = &dummy; /* cleared on failure */
	CHECK(redis_pipeline(p, &e, ec, 2, rr, 0) < 0);
	CHECK_CONTAINS(e.msg, "empty command");
	CHECK(rr[0] == NULL);
	berr_clear(&e);
	CHECK(redis_ping(p, &e) == 0);
	CHECK(redis_pool_get(p, &e) == c0);

	r = redis_command(p, &e, "DEL", "berth:fmt:big", "berth:fmt:big2",
			  "berth:fmt:h", "", NULL);
	if (r)
		freeReplyObject(r);
	redis_pool_free(p);
}

/* ---- several threads at once ------------------------------------------ */

#define N_THREADS 8
#define N_INCR 200

struct thr {
	struct redis_pool *p;
	pthread_barrier_t *barrier;
	int index;
	int errors;
	long long client_id;
	redisContext *ctx;
};

static void *
thr_main(void *arg)
{
	struct thr *t = arg;
	struct berr e;
	char key[64], val[64];
	snprintf(key, sizeof(key), "berth:test:thr:%d", t->index);
	for (int i = 0; i < N_INCR; i++) {
		redisReply *r = redis_command(t->p, &e, "INCR",
					      "berth:test:counter", NULL);
		if (!r || r->type != REDIS_REPLY_INTEGER)
			t->errors++;
		if (r)
			freeReplyObject(r);
		snprintf(val, sizeof(val), "%d-%d", t->index, i);
		r = redis_command(t->p, &e, "SET", key, val, NULL);
		if (!reply_is_str(r, "OK"))
			t->errors++;
		if (r)
			freeReplyObject(r);
		r = redis_command(t->p, &e, "GET", key, NULL);
		if (!reply_is_str(r, val))
			t->errors++;
		if (r)
			freeReplyObject(r);
	}
	redisReply *r = redis_command(t->p, &e, "CLIENT", "ID", NULL);
	if (r && r->type == REDIS_REPLY_INTEGER)
		t->client_id = r->integer;
	else
		t->errors++;
	if (r)
		freeReplyObject(r);
	t->ctx = redis_pool_get(t->p, &e);
	/* stay alive until every thread has its context */
	pthread_barrier_wait(t->barrier);
	return NULL;
}

static long long
connected_clients(struct redis_pool *p)
{
	struct berr e;
	redisReply *r = redis_command(p, &e, "INFO", "clients", NULL);
	long long n = -1;
	if (r && r->type == REDIS_REPLY_STRING) {
		const char *s = strstr(r->str, "connected_clients:");
		if (s)
			n = atoll(s + 18);
	}
	if (r)
		freeReplyObject(r);
	return n;
}

static void
test_threads(struct test_redis *tr)
{
	struct redis_pool *p = test_redis_pool(tr, 5000);
	struct berr e;
	redisReply *r = redis_command(p, &e, "DEL", "berth:test:counter", NULL);
	CHECK(r != NULL);
	if (r)
		freeReplyObject(r);
	pthread_barrier_t barrier;
	pthread_barrier_init(&barrier, NULL, N_THREADS);
	struct thr t[N_THREADS];
	pthread_t th[N_THREADS];
	for (int i = 0; i < N_THREADS; i++) {
		t[i] = (struct thr){.p = p, .barrier = &barrier, .index = i};
		CHECK(pthread_create(&th[i], NULL, thr_main, &t[i]) == 0);
	}
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&barrier);
	for (int i = 0; i < N_THREADS; i++) {
		CHECK_MSG(t[i].errors == 0, "thread %d: %d errors", i,
			  t[i].errors);
		for (int j = 0; j < i; j++) {
			CHECK(t[i].client_id != t[j].client_id);
			CHECK(t[i].ctx != t[j].ctx);
		}
	}
	r = redis_command(p, &e, "GET", "berth:test:counter", NULL);
	char want[32];
	snprintf(want, sizeof(want), "%d", N_THREADS * N_INCR);
	CHECK(reply_is_str(r, want));
	if (r)
		freeReplyObject(r);
	/* the exited threads' connections were closed by the key
	 * destructor: only this thread's remains */
	long long n = -1;
	for (int i = 0; i < 100; i++) {
		n = connected_clients(p);
		if (n == 1)
			break;
		util_sleep_ms(20);
	}
	CHECK_MSG(n == 1, "connected_clients %lld after the threads exited",
		  n);
	redis_pool_free(p);
}

/* ---- failures: server gone, killed connection, timeout ---------------- */

static void
test_going_away(struct test_redis *tr)
{
	struct redis_pool *p = test_redis_pool(tr, 2000);
	struct berr e;
	berr_clear(&e);
	CHECK(redis_ping(p, &e) == 0);

	/* the server closes our connection while it stays up */
	struct redis_pool *admin = test_redis_pool(tr, 2000);
	redisReply *r = redis_command(p, &e, "CLIENT", "ID", NULL);
	char id[32] = "0";
	if (r && r->type == REDIS_REPLY_INTEGER)
		snprintf(id, sizeof(id), "%lld", r->integer);
	if (r)
		freeReplyObject(r);
	r = redis_command(admin, &e, "CLIENT", "KILL", "ID", id, NULL);
	CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
	if (r)
		freeReplyObject(r);
	berr_clear(&e);
	r = redis_command(p, &e, "GET", "berth:test:a", NULL);
	CHECK(r == NULL);
	CHECK_CONTAINS(e.msg, "GET");
	CHECK_CONTAINS(e.msg, tr->sock);
	if (r)
		freeReplyObject(r);
	CHECK(redis_ping(p, &e) == 0); /* re-dialled */
	redis_pool_free(admin);

	/* the server dies */
	CHECK(test_redis_kill9(tr) == 0);
	berr_clear(&e);
	r = redis_command(p, &e, "SET", "berth:test:gone", "1", NULL);
	CHECK(r == NULL);
	char want[300];
	snprintf(want, sizeof(want), "redis unix:%s: ", tr->sock);
	CHECK_CONTAINS(e.msg, want);
	fprintf(stderr, "  (server gone: %s)\n", e.msg);
	berr_clear(&e);
	r = redis_command(p, &e, "SET", "berth:test:gone", "1", NULL);
	CHECK(r == NULL);
	CHECK_CONTAINS(e.msg, want);
	CHECK_CONTAINS(e.msg, "cannot connect");
	CHECK_CONTAINS(e.msg, "Connection refused");
	CHECK(redis_pool_get(p, &e) == NULL);
	CHECK(redis_ping(p, &e) < 0);

	/* ... and comes back on the same socket */
	CHECK(test_redis_restart(tr) == 0);
	CHECK(cmd_ok(p, "OK", "SET", "berth:test:back", "yes", NULL));
	CHECK(cmd_ok(p, "yes", "GET", "berth:test:back", NULL, NULL));

	/* the socket file gone entirely */
	CHECK(test_redis_kill9(tr) == 0);
	unlink(tr->sock);
	redis_pool_drop(p);
	berr_clear(&e);
	CHECK(redis_ping(p, &e) < 0);
	CHECK_CONTAINS(e.msg, "No such file or directory");
	CHECK(test_redis_restart(tr) == 0);
	CHECK(redis_ping(p, &e) == 0);
	redis_pool_free(p);
}

static void
test_timeout(struct test_redis *tr)
{
	struct redis_pool *p = test_redis_pool(tr, 300);
	struct berr e;
	berr_clear(&e);
	CHECK(redis_ping(p, &e) == 0);
	int64_t t0 = util_monotonic_ms();
	/* blocks server-side for 2 s: longer than the command timeout */
	redisReply *r = redis_command(p, &e, "BLPOP", "berth:test:empty", "2",
				      NULL);
	int64_t took = util_monotonic_ms() - t0;
	CHECK(r == NULL);
	if (r)
		freeReplyObject(r);
	CHECK_MSG(took >= 250 && took < 1500, "took %lld ms", (long long)took);
	CHECK_CONTAINS(e.msg, "BLPOP");
	CHECK_CONTAINS(e.msg, "timed out");
	CHECK_CONTAINS(e.msg, "300 ms");
	/* the next command uses a fresh connection: no stale BLPOP reply */
	t0 = util_monotonic_ms();
	CHECK(cmd_ok(p, "OK", "SET", "berth:test:t", "1", NULL));
	CHECK(cmd_ok(p, "1", "GET", "berth:test:t", NULL, NULL));
	CHECK(util_monotonic_ms() - t0 < 250);
	redis_pool_free(p);

	/* no command timeout: BLPOP 1 returns nil after a second */
	p = test_redis_pool(tr, 0);
	r = redis_command(p, &e, "BLPOP", "berth:test:empty", "1", NULL);
	CHECK(r && r->type == REDIS_REPLY_NIL);
	if (r)
		freeReplyObject(r);
	redis_pool_free(p);
}

/* ---- AUTH, ACL users, SELECT ------------------------------------------ */

static struct redis_pool *
pool_from_url(const char *url, int timeout_ms)
{
	struct redis_target t;
	struct berr e;
	if (redis_url_parse(url, &t, &e) < 0) {
		fprintf(stderr, "  %s\n", e.msg);
		return NULL;
	}
	return redis_pool_new(&t, 2000, timeout_ms);
}

static void
test_auth(void)
{
	static const char *const args[] = {"--requirepass", "s3cret@:/ pw",
					   NULL};
	struct test_redis tr;
	if (test_redis_start_args(&tr, args) < 0) {
		CHECK(!"cannot start a redis-server with --requirepass");
		return;
	}
	struct berr e;
	berr_clear(&e);
	struct redis_pool *none = test_redis_pool(&tr, 2000);
	CHECK(redis_ping(none, &e) < 0);
	CHECK_CONTAINS(e.msg, "NOAUTH");
	redis_pool_free(none);

	char url[400];
	snprintf(url, sizeof(url),
		 "unix://%s?password=s3cret%%40%%3A%%2F%%20pw", tr.sock);
	struct redis_pool *good = pool_from_url(url, 2000);
	CHECK(good && redis_ping(good, &e) == 0);

	snprintf(url, sizeof(url), "unix://%s?password=nope-wrong", tr.sock);
	struct redis_pool *bad = pool_from_url(url, 2000);
	berr_clear(&e);
	CHECK(bad && redis_ping(bad, &e) < 0);
	CHECK_CONTAINS(e.msg, "AUTH failed");
	CHECK_CONTAINS(e.msg, "WRONGPASS");
	CHECK_MSG(!strstr(e.msg, "nope-wrong"), "password leaked: %s", e.msg);
	redis_pool_free(bad);

	/* ACL user: user:pass -> AUTH user pass */
	const char *acl[] = {"ACL", "SETUSER", "alice", "on", ">alice-pw",
			     "~*", "&*", "+@all"};
	redisReply *r = good ? redis_command_argv(good, &e, 8, acl, NULL)
			     : NULL;
	CHECK(reply_is_str(r, "OK"));
	if (r)
		freeReplyObject(r);
	snprintf(url, sizeof(url),
		 "unix://%s?user=alice&password=alice-pw&db=2", tr.sock);
	struct redis_pool *alice = pool_from_url(url, 2000);
	CHECK(alice && cmd_ok(alice, "alice", "ACL", "WHOAMI", NULL, NULL));
	redis_pool_free(alice);
	snprintf(url, sizeof(url), "unix://%s?user=alice&password=bad-pw",
		 tr.sock);
	alice = pool_from_url(url, 2000);
	berr_clear(&e);
	CHECK(alice && redis_ping(alice, &e) < 0);
	CHECK_CONTAINS(e.msg, "AUTH failed");
	CHECK_MSG(!strstr(e.msg, "bad-pw"), "password leaked: %s", e.msg);
	redis_pool_free(alice);

	/* kill -9 + restart: the pool re-authenticates */
	CHECK(test_redis_restart(&tr) == 0);
	CHECK(good && redis_ping(good, &e) < 0); /* old connection died */
	CHECK(good && redis_ping(good, &e) == 0);
	redis_pool_free(good);
	test_redis_stop(&tr);
}

static void
test_select(struct test_redis *tr)
{
	char url[400];
	snprintf(url, sizeof(url), "unix://%s?db=3", tr->sock);
	struct redis_pool *db3 = pool_from_url(url, 2000);
	struct redis_pool *db0 = test_redis_pool(tr, 2000);
	CHECK(db3 && cmd_ok(db3, "OK", "SET", "berth:test:db", "three", NULL));
	CHECK(db3 && cmd_ok(db3, "three", "GET", "berth:test:db", NULL, NULL));
	struct berr e;
	redisReply *r = redis_command(db0, &e, "EXISTS", "berth:test:db",
				      NULL);
	CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
	if (r)
		freeReplyObject(r);
	/* SELECT is redone after a reconnect */
	redis_pool_drop(db3);
	CHECK(db3 && cmd_ok(db3, "three", "GET", "berth:test:db", NULL, NULL));
	redis_pool_free(db3);
	redis_pool_free(db0);

	snprintf(url, sizeof(url), "unix://%s?db=99999", tr->sock);
	struct redis_pool *bad = pool_from_url(url, 2000);
	berr_clear(&e);
	CHECK(bad && redis_ping(bad, &e) < 0);
	CHECK_CONTAINS(e.msg, "SELECT 99999 failed");
	redis_pool_free(bad);
}

/* ---- TCP (what production uses) --------------------------------------- */

/* A port nobody listens on right now (bind 0, read it back, close). */
static int
free_tcp_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void
test_tcp(void)
{
	struct test_redis tr;
	char port[16];
	int started = -1;
	/* the port could be taken between close and redis' bind: retry */
	for (int i = 0; i < 3 && started < 0; i++) {
		snprintf(port, sizeof(port), "%d", free_tcp_port());
		const char *args[] = {"--port", port, "--bind", "127.0.0.1",
				      "--requirepass", "tcp-pw", NULL};
		started = test_redis_start_args(&tr, args);
	}
	if (started < 0) {
		CHECK(!"cannot start a redis-server on TCP");
		return;
	}
	char url[200], want[64];
	struct berr e;
	snprintf(url, sizeof(url), "redis://:tcp-pw@127.0.0.1:%s/1", port);
	struct redis_pool *p = pool_from_url(url, 2000);
	CHECK(p && redis_ping(p, &e) == 0);
	CHECK(p && cmd_ok(p, "OK", "SET", "berth:test:tcp", "v", NULL));
	redisReply *r = p ? redis_command(p, &e, "CLIENT", "INFO", NULL)
			  : NULL;
	CHECK(r && r->type == REDIS_REPLY_STRING && strstr(r->str, " db=1 "));
	if (r)
		freeReplyObject(r);
	/* TCP keepalive is on */
	redisContext *c = p ? redis_pool_get(p, &e) : NULL;
	int on = 0;
	socklen_t olen = sizeof(on);
	CHECK(c && getsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &on,
			      &olen) == 0 && on == 1);

	/* host "localhost", password given as a lone user */
	snprintf(url, sizeof(url), "tcp-pw@localhost:%s/1", port);
	struct redis_pool *p2 = pool_from_url(url, 2000);
	CHECK(p2 && cmd_ok(p2, "v", "GET", "berth:test:tcp", NULL, NULL));
	redis_pool_free(p2);

	/* server gone: the message names host:port */
	CHECK(test_redis_kill9(&tr) == 0);
	snprintf(want, sizeof(want), "redis 127.0.0.1:%s: ", port);
	berr_clear(&e);
	CHECK(p && redis_ping(p, &e) < 0);
	CHECK_CONTAINS(e.msg, want);
	berr_clear(&e);
	CHECK(p && redis_ping(p, &e) < 0);
	CHECK_CONTAINS(e.msg, "Connection refused");
	CHECK(!strstr(e.msg, "tcp-pw"));
	CHECK(test_redis_restart(&tr) == 0);
	CHECK(p && cmd_ok(p, "OK", "SET", "berth:test:tcp", "again", NULL));
	redis_pool_free(p);
	test_redis_stop(&tr);
}

/* ---- the embedded redis-server ---------------------------------------- */

/* True once pid has ended (reaping it if it is our child). Only for pids
 * no supervisor waits for. */
static bool
pid_gone(pid_t pid)
{
	if (pid <= 0)
		return true;
	waitpid(pid, NULL, WNOHANG);
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	char path[64], *stat = NULL;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if (util_read_file(path, 4096, &stat, NULL, NULL) < 0)
		return true;
	const char *s = strrchr(stat, ')');
	bool zombie = s && (s[2] == 'Z' || s[2] == 'X');
	free(stat);
	return zombie;
}

static bool
wait_pid_gone(pid_t pid, int64_t ms)
{
	int64_t until = util_monotonic_ms() + ms;
	while (!pid_gone(pid)) {
		if (util_monotonic_ms() > until)
			return false;
		util_sleep_ms(20);
	}
	return true;
}

static bool
path_exists(const char *dir, const char *name)
{
	char *p = util_path_join(dir, name);
	struct stat st;
	bool ok = stat(p, &st) == 0;
	free(p);
	return ok;
}

static void
test_embedded(const char *base)
{
	char *dir = util_path_join(base, "data/nested");
	struct embedded_redis *er = NULL;
	struct redis_target t;
	struct berr e;
	berr_clear(&e);
	int rc = embedded_redis_start(NULL, dir, "always", &er, &t, &e);
	CHECK_MSG(rc == 0, "%s", e.msg);
	if (rc < 0) {
		free(dir);
		return;
	}
	struct stat st;
	CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
	CHECK(t.unix_socket);
	CHECK_CONTAINS(t.path, "/data/nested/redis.sock");
	CHECK(path_exists(dir, "redis.log"));
	CHECK(path_exists(dir, "berthd.lock"));

	struct redis_pool *p = redis_pool_new(&t, 2000, 2000);
	CHECK(redis_ping(p, &e) == 0);
	CHECK(cmd_ok(p, "OK", "SET", "berth:test:emb", "kept", NULL));
	redisReply *r = redis_command(p, &e, "CONFIG", "GET", "appendonly",
				      NULL);
	CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	      reply_is_str(r->element[1], "yes"));
	if (r)
		freeReplyObject(r);
	r = redis_command(p, &e, "CONFIG", "GET", "port", NULL);
	CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	      reply_is_str(r->element[1], "0"));
	if (r)
		freeReplyObject(r);
	/* Redis 7 keeps the AOF in appendonlydir/, older in appendonly.aof */
	CHECK(path_exists(dir, "appendonlydir") ||
	      path_exists(dir, "appendonly.aof"));

	/* a second instance on the same data dir is refused */
	struct embedded_redis *er2 = NULL;
	struct redis_target t2;
	berr_clear(&e);
	CHECK(embedded_redis_start(NULL, dir, NULL, &er2, &t2, &e) < 0);
	CHECK(er2 == NULL);
	CHECK_CONTAINS(e.msg, "in use by another berthd");
	CHECK(redis_ping(p, &e) == 0); /* and the first one is untouched */

	/* kill -9: the supervisor restarts it, data survives (AOF) */
	pid_t pid1 = embedded_redis_pid(er);
	CHECK(pid1 > 0);
	CHECK(kill(pid1, SIGKILL) == 0);
	pid_t pid2 = 0;
	bool back = false;
	int64_t until = util_monotonic_ms() + 15000;
	while (!back && util_monotonic_ms() < until) {
		util_sleep_ms(50);
		pid2 = embedded_redis_pid(er);
		back = pid2 > 0 && pid2 != pid1 && redis_ping(p, &e) == 0;
	}
	CHECK_MSG(back, "not restarted: %s", e.msg);
	CHECK(embedded_redis_restarts(er) == 1);
	CHECK(cmd_ok(p, "kept", "GET", "berth:test:emb", NULL, NULL));
	redis_pool_free(p);

	embedded_redis_stop(er);
	CHECK(wait_pid_gone(pid1, 1000));
	CHECK(wait_pid_gone(pid2, 1000));
	CHECK(!path_exists(dir, "redis.sock"));
	embedded_redis_stop(NULL);

	/* started again on the same dir: the data is still there */
	berr_clear(&e);
	rc = embedded_redis_start("redis-server", dir, "everysec", &er, &t,
				  &e);
	CHECK_MSG(rc == 0, "%s", e.msg);
	if (rc == 0) {
		p = redis_pool_new(&t, 2000, 2000);
		CHECK(cmd_ok(p, "kept", "GET", "berth:test:emb", NULL, NULL));
		redis_pool_free(p);
		pid1 = embedded_redis_pid(er);
		embedded_redis_stop(er);
		CHECK(wait_pid_gone(pid1, 1000));
	}
	free(dir);
}

static void
test_embedded_errors(const char *base)
{
	struct embedded_redis *er = NULL;
	struct redis_target t;
	struct berr e;
	char *dir = util_path_join(base, "errors");

	berr_clear(&e);
	CHECK(embedded_redis_start("/nonexistent/redis-server", dir, NULL, &er,
				   &t, &e) < 0);
	CHECK(er == NULL);
	CHECK_CONTAINS(e.msg, "/nonexistent/redis-server");
	CHECK_CONTAINS(e.msg, "apt-get install redis-server");

	berr_clear(&e);
	CHECK(embedded_redis_start("berth-no-such-redis-server", dir, NULL,
				   &er, &t, &e) < 0);
	CHECK_CONTAINS(e.msg, "in PATH");
	CHECK_CONTAINS(e.msg, "apt-get install redis-server");

	berr_clear(&e);
	CHECK(embedded_redis_start(NULL, dir, "sometimes", &er, &t, &e) < 0);
	CHECK_CONTAINS(e.msg, "appendfsync");

	/* a binary that fails at once: its output is in the message */
	char *script = util_path_join(base, "fake-redis");
	FILE *f = fopen(script, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("#!/bin/sh\necho \"old line\"\n"
		      "echo \"FATAL: boom, bad config\" >&2\nexit 3\n", f);
		fclose(f);
		chmod(script, 0700);
		berr_clear(&e);
		int64_t t0 = util_monotonic_ms();
		CHECK(embedded_redis_start(script, dir, NULL, &er, &t, &e) < 0);
		CHECK(util_monotonic_ms() - t0 < 5000);
		CHECK_CONTAINS(e.msg, "exited with status 3");
		CHECK_CONTAINS(e.msg, "FATAL: boom, bad config");
		CHECK_CONTAINS(e.msg, "apt-get install redis-server");
		fprintf(stderr, "  (early exit: %s)\n", e.msg);
		/* the lock was released: a real server can start there */
		berr_clear(&e);
		CHECK_MSG(embedded_redis_start(NULL, dir, NULL, &er, &t, &e) ==
				  0, "%s", e.msg);
		embedded_redis_stop(er);
	}
	free(script);

	/* a data dir whose socket path cannot fit in sun_path */
	char *deep = xasprintf("%s/%0100d", base, 0);
	berr_clear(&e);
	CHECK(embedded_redis_start(NULL, deep, NULL, &er, &t, &e) < 0);
	CHECK_CONTAINS(e.msg, "shorter");
	free(deep);
	free(dir);
}

/* A redis-server left running on the data dir by a dead berthd (the lock
 * is free) is shut down with SHUTDOWN, keeping its data. */
static void
test_embedded_leftover(void)
{
	static const char *const args[] = {"--appendonly", "yes",
					   "--appendfsync", "always", NULL};
	struct test_redis tr;
	if (test_redis_start_args(&tr, args) < 0) {
		CHECK(!"cannot start the leftover server");
		return;
	}
	struct redis_pool *p = test_redis_pool(&tr, 2000);
	CHECK(cmd_ok(p, "OK", "SET", "berth:test:left", "over", NULL));
	redis_pool_free(p);
	pid_t old = tr.pid;

	struct embedded_redis *er = NULL;
	struct redis_target t;
	struct berr e;
	berr_clear(&e);
	int rc = embedded_redis_start(NULL, tr.dir, "always", &er, &t, &e);
	CHECK_MSG(rc == 0, "%s", e.msg);
	CHECK(wait_pid_gone(old, 5000));
	tr.pid = 0; /* reaped by pid_gone */
	if (rc == 0) {
		CHECK(embedded_redis_pid(er) != old);
		p = redis_pool_new(&t, 2000, 2000);
		CHECK(cmd_ok(p, "over", "GET", "berth:test:left", NULL, NULL));
		redis_pool_free(p);
		embedded_redis_stop(er);
	}
	test_redis_stop(&tr);
}

/* --embedded-child <dir>: plays berthd for test_embedded_pdeathsig. */
static int
embedded_child_main(const char *dir)
{
	struct embedded_redis *er;
	struct redis_target t;
	struct berr e;
	if (embedded_redis_start(NULL, dir, "always", &er, &t, &e) < 0) {
		fprintf(stderr, "child: %s\n", e.msg);
		return 1;
	}
	struct redis_pool *p = redis_pool_new(&t, 2000, 2000);
	redisReply *r = redis_command(p, &e, "SET", "berth:test:orphan",
				      "saved", NULL);
	if (!reply_is_str(r, "OK"))
		return 1;
	freeReplyObject(r);
	printf("%ld\n", (long)embedded_redis_pid(er));
	fflush(stdout);
	for (;;)
		pause(); /* until kill -9 */
}

/* kill -9 of "berthd": its redis-server gets SIGTERM (PDEATHSIG), writes
 * its AOF and exits; the next start on the dir finds the data. */
static void
test_embedded_pdeathsig(const char *base)
{
	char *dir = util_path_join(base, "orphan");
	/* become the orphan's parent, so we can see it end */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	pid_t child = fork();
	if (child == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execl("/proc/self/exe", "test_redis", "--embedded-child", dir,
		      (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	char buf[64] = "";
	size_t n = 0;
	struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
	int64_t until = util_monotonic_ms() + 20000;
	while (n < sizeof(buf) - 1 && !strchr(buf, '\n') &&
	       util_monotonic_ms() < until) {
		if (poll(&pf, 1, 200) <= 0)
			continue;
		ssize_t r = read(pfd[0], buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
	}
	close(pfd[0]);
	pid_t rpid = (pid_t)atol(buf);
	CHECK_MSG(rpid > 0, "child said \"%s\"", buf);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	if (rpid > 0)
		CHECK_MSG(wait_pid_gone(rpid, 10000),
			  "redis-server %ld outlived its berthd", (long)rpid);

	struct embedded_redis *er = NULL;
	struct redis_target t;
	struct berr e;
	berr_clear(&e);
	int rc = embedded_redis_start(NULL, dir, NULL, &er, &t, &e);
	CHECK_MSG(rc == 0, "%s", e.msg);
	if (rc == 0) {
		struct redis_pool *p = redis_pool_new(&t, 2000, 2000);
		CHECK(cmd_ok(p, "saved", "GET", "berth:test:orphan", NULL,
			     NULL));
		redis_pool_free(p);
		embedded_redis_stop(er);
	}
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	free(dir);
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--embedded-child") == 0)
		return embedded_child_main(argv[2]);
	blog_set_level(BLOG_WARNING);

	test_url_parse();
	test_normalise_redact();

	struct test_redis tr;
	if (test_redis_start(&tr) < 0) {
		CHECK(!"cannot start redis-server (apt-get install "
		       "redis-server)");
		TEST_DONE();
	}
	test_commands(&tr);
	test_pipeline(&tr);
	test_formatting(&tr);
	test_threads(&tr);
	test_select(&tr);
	test_timeout(&tr);
	test_going_away(&tr);
	test_redis_stop(&tr);
	test_auth();
	test_tcp();

	const char *tmp = getenv("TMPDIR");
	char base[200];
	snprintf(base, sizeof(base), "%s/berth-emb-XXXXXX",
		 tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
	CHECK(mkdtemp(base) != NULL);
	test_embedded(base);
	test_embedded_errors(base);
	test_embedded_leftover();
	test_embedded_pdeathsig(base);
	CHECK(test_rm_rf(base) == 0);
	TEST_DONE();
}

/* redis_harness.c - a private redis-server for C unit tests; see
 * redis_harness.h. */
#include "redis_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"

#define TR_READY_TIMEOUT_MS 10000
#define TR_STOP_TIMEOUT_MS 10000

/* Servers to clean up at exit: copies, not pointers (a test_redis may live
 * on a stack that is gone by then). */
struct tr_reg {
	pid_t pid;
	char dir[200];
};
static struct tr_reg tr_registry[32];
static pthread_mutex_t tr_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t tr_once = PTHREAD_ONCE_INIT;

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 &&
			       errno != ENOENT
		       ? -1
		       : 0;
}

int
test_rm_rf(const char *path)
{
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

/* Waits up to ms for pid to end (reaping it); true when it ended. */
static bool
wait_pid(pid_t pid, int64_t ms)
{
	int64_t until = util_monotonic_ms() + ms;
	for (;;) {
		pid_t r = waitpid(pid, NULL, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return true;
		if (util_monotonic_ms() > until)
			return false;
		util_sleep_ms(10);
	}
}

static void
stop_pid(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	if (!wait_pid(pid, TR_STOP_TIMEOUT_MS)) {
		kill(pid, SIGKILL);
		wait_pid(pid, TR_STOP_TIMEOUT_MS);
	}
}

static void
tr_atexit(void)
{
	pthread_mutex_lock(&tr_lock);
	for (size_t i = 0; i < ARRAY_LEN(tr_registry); i++) {
		struct tr_reg *r = &tr_registry[i];
		if (!r->dir[0])
			continue;
		stop_pid(r->pid);
		test_rm_rf(r->dir);
		memset(r, 0, sizeof(*r));
	}
	pthread_mutex_unlock(&tr_lock);
}

static void
tr_register_atexit(void)
{
	atexit(tr_atexit);
}

/* Records (or updates) dir's entry; pid 0 and dir NULL-or-gone removes. */
static void
reg_set(const char *dir, pid_t pid, bool remove)
{
	pthread_once(&tr_once, tr_register_atexit);
	pthread_mutex_lock(&tr_lock);
	struct tr_reg *slot = NULL;
	for (size_t i = 0; i < ARRAY_LEN(tr_registry); i++) {
		struct tr_reg *r = &tr_registry[i];
		if (r->dir[0] && strcmp(r->dir, dir) == 0) {
			slot = r;
			break;
		}
		if (!r->dir[0] && !slot)
			slot = r;
	}
	if (slot && remove) {
		if (strcmp(slot->dir, dir) == 0)
			memset(slot, 0, sizeof(*slot));
	} else if (slot) {
		snprintf(slot->dir, sizeof(slot->dir), "%s", dir);
		slot->pid = pid;
	}
	pthread_mutex_unlock(&tr_lock);
}

static void
print_log_tail(const struct test_redis *tr)
{
	char *buf = NULL;
	size_t len = 0;
	if (util_read_file(tr->log, 1 << 20, &buf, &len, NULL) < 0) {
		fprintf(stderr, "redis_harness: (no %s)\n", tr->log);
		return;
	}
	size_t from = len > 1500 ? len - 1500 : 0;
	fprintf(stderr, "redis_harness: last bytes of %s:\n%s\n", tr->log,
		buf + from);
	free(buf);
}

static bool
answers_ping(const char *sock)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectUnixWithTimeout(sock, tv);
	bool ok = false;
	if (c && !c->err && redisSetTimeout(c, tv) == REDIS_OK) {
		redisReply *r = redisCommand(c, "PING");
		/* PONG, or NOAUTH from a password-protected server */
		ok = r && (r->type == REDIS_REPLY_STATUS ||
			   (r->type == REDIS_REPLY_ERROR && r->str &&
			    strncmp(r->str, "LOADING", 7) != 0));
		if (r)
			freeReplyObject(r);
	}
	if (c)
		redisFree(c);
	return ok;
}

static int
spawn_server(struct test_redis *tr)
{
	const char *bin = getenv("BERTH_REDIS_SERVER");
	if (!bin || !*bin)
		bin = "redis-server";
	const char *argv[24 + TEST_REDIS_MAX_ARGS];
	size_t n = 0;
	argv[n++] = bin;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--unixsocket";
	argv[n++] = tr->sock;
	argv[n++] = "--unixsocketperm";
	argv[n++] = "700";
	argv[n++] = "--dir";
	argv[n++] = tr->dir;
	argv[n++] = "--save";
	argv[n++] = "";
	argv[n++] = "--appendonly";
	argv[n++] = "no";
	argv[n++] = "--daemonize";
	argv[n++] = "no";
	argv[n++] = "--logfile";
	argv[n++] = tr->log;
	for (size_t i = 0; tr->extra[i]; i++)
		argv[n++] = tr->extra[i];
	argv[n] = NULL;

	/* formatted before fork: the child only makes async-signal-safe
	 * calls (other threads may hold stdio locks) */
	char failmsg[300];
	int faillen = snprintf(failmsg, sizeof(failmsg),
			       "redis_harness: cannot run %s (apt-get install "
			       "redis-server, or set BERTH_REDIS_SERVER)\n",
			       bin);
	if (faillen < 0 || faillen >= (int)sizeof(failmsg))
		faillen = (int)strlen(failmsg);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "redis_harness: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
		int fd = open(tr->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(bin, (char *const *)argv);
		ssize_t w = write(2, failmsg, (size_t)faillen);
		(void)w;
		_exit(127);
	}
	tr->pid = pid;
	reg_set(tr->dir, pid, false);

	int64_t until = util_monotonic_ms() + TR_READY_TIMEOUT_MS;
	for (;;) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			tr->pid = 0;
			reg_set(tr->dir, 0, false);
			fprintf(stderr, "redis_harness: %s exited during "
				"start-up (status %d)\n", bin, st);
			print_log_tail(tr);
			return -1;
		}
		if (answers_ping(tr->sock))
			return 0;
		if (util_monotonic_ms() > until) {
			fprintf(stderr, "redis_harness: %s did not answer on "
				"%s within %d s\n", bin, tr->sock,
				TR_READY_TIMEOUT_MS / 1000);
			print_log_tail(tr);
			return -1;
		}
		util_sleep_ms(10);
	}
}

int
test_redis_start_args(struct test_redis *tr, const char *const *extra)
{
	memset(tr, 0, sizeof(*tr));
	size_t n = 0;
	for (; extra && extra[n]; n++) {
		if (n == TEST_REDIS_MAX_ARGS) {
			fprintf(stderr, "redis_harness: more than %d extra "
				"arguments\n", TEST_REDIS_MAX_ARGS);
			test_redis_stop(tr);
			return -1;
		}
		tr->extra[n] = xstrdup(extra[n]);
	}
	const char *tmp = getenv("TMPDIR");
	/* the socket path must fit in sun_path (108 bytes) */
	if (!tmp || !*tmp || strlen(tmp) > 60)
		tmp = "/tmp";
	snprintf(tr->dir, sizeof(tr->dir), "%s/berth-redis-XXXXXX", tmp);
	if (!mkdtemp(tr->dir)) {
		fprintf(stderr, "redis_harness: mkdtemp %s: %s\n", tr->dir,
			strerror(errno));
		tr->dir[0] = '\0';
		test_redis_stop(tr);
		return -1;
	}
	snprintf(tr->sock, sizeof(tr->sock), "%s/redis.sock", tr->dir);
	snprintf(tr->log, sizeof(tr->log), "%s/redis.log", tr->dir);
	reg_set(tr->dir, 0, false);
	if (spawn_server(tr) < 0) {
		test_redis_stop(tr);
		return -1;
	}
	return 0;
}

int
test_redis_start(struct test_redis *tr)
{
	return test_redis_start_args(tr, NULL);
}

void
test_redis_stop(struct test_redis *tr)
{
	stop_pid(tr->pid);
	tr->pid = 0;
	if (tr->dir[0]) {
		test_rm_rf(tr->dir);
		reg_set(tr->dir, 0, true);
		tr->dir[0] = '\0';
	}
	for (size_t i = 0; tr->extra[i]; i++) {
		free(tr->extra[i]);
		tr->extra[i] = NULL;
	}
}

int
test_redis_kill9(struct test_redis *tr)
{
	if (tr->pid <= 0)
		return -1;
	kill(tr->pid, SIGKILL);
	wait_pid(tr->pid, TR_STOP_TIMEOUT_MS);
	tr->pid = 0;
	reg_set(tr->dir, 0, false);
	return 0;
}

int
test_redis_restart(struct test_redis *tr)
{
	if (tr->pid > 0)
		test_redis_kill9(tr);
	return spawn_server(tr);
}

void
test_redis_target(const struct test_redis *tr, struct redis_target *t)
{
	redis_target_init(t);
	t->unix_socket = true;
	t->port = 0;
	snprintf(t->path, sizeof(t->path), "%s", tr->sock);
}

struct redis_pool *
test_redis_pool(const struct test_redis *tr, int command_timeout_ms)
{
	struct redis_target t;
	test_redis_target(tr, &t);
	return redis_pool_new(&t, 2000, command_timeout_ms);
}

/* ---- commands from tests ------------------------------------------------ */

/* arg0 and the arguments in ap up to NULL, in a new array (free it). */
static const char **
collect_args(const char *arg0, va_list ap, int *argc)
{
	va_list count;
	va_copy(count, ap);
	int n = 1;
	while (va_arg(count, const char *))
		n++;
	va_end(count);
	const char **argv = xmalloc((size_t)n * sizeof(*argv));
	argv[0] = arg0;
	for (int i = 1; i < n; i++)
		argv[i] = va_arg(ap, const char *);
	*argc = n;
	return argv;
}

/* Runs argv; NULL after printing the connection error. */
static redisReply *
run_argv(struct redis_pool *p, int argc, const char **argv)
{
	struct berr e;
	berr_clear(&e);
	redisReply *r = redis_command_argv(p, &e, argc, argv, NULL);
	if (!r)
		fprintf(stderr, "test_redis: %s: %s\n", argv[0], e.msg);
	return r;
}

/* Prints r when it is an error reply; true then. */
static bool
print_error_reply(const char *arg0, const redisReply *r)
{
	if (!r || r->type != REDIS_REPLY_ERROR)
		return false;
	fprintf(stderr, "test_redis: %s: %s\n", arg0, r->str ? r->str : "");
	return true;
}

redisReply *
test_redis_cmdv(struct redis_pool *p, const char *arg0, va_list ap)
{
	int argc;
	const char **argv = collect_args(arg0, ap, &argc);
	redisReply *r = run_argv(p, argc, argv);
	free(argv);
	return r;
}

redisReply *
test_redis_cmd(struct redis_pool *p, const char *arg0, ...)
{
	va_list ap;
	va_start(ap, arg0);
	redisReply *r = test_redis_cmdv(p, arg0, ap);
	va_end(ap);
	return r;
}

int
test_redis_do(struct redis_pool *p, const char *arg0, ...)
{
	va_list ap;
	va_start(ap, arg0);
	int argc;
	const char **argv = collect_args(arg0, ap, &argc);
	va_end(ap);
	redisReply *r = run_argv(p, argc, argv);
	if (!r)
		r = run_argv(p, argc, argv);
	free(argv);
	int rc = r && !print_error_reply(arg0, r) ? 0 : -1;
	if (r)
		freeReplyObject(r);
	return rc;
}

/* The integer in the string s[0..len), or TEST_REDIS_NOINT. */
static long long
parse_int(const char *s, size_t len)
{
	char buf[32];
	if (len == 0 || len >= sizeof(buf))
		return TEST_REDIS_NOINT;
	memcpy(buf, s, len);
	buf[len] = '\0';
	char *end;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	return errno || *end ? TEST_REDIS_NOINT : v;
}

/* The integer of r (then freed), see test_redis_int. */
static long long
take_int(const char *arg0, redisReply *r)
{
	long long v = TEST_REDIS_NOINT;
	if (r && r->type == REDIS_REPLY_INTEGER)
		v = r->integer;
	else if (r && r->type == REDIS_REPLY_STRING)
		v = parse_int(r->str, r->len);
	else
		print_error_reply(arg0, r);
	if (r)
		freeReplyObject(r);
	return v;
}

/* A copy of the string of r (then freed), see test_redis_str. */
static char *
take_str(const char *arg0, redisReply *r)
{
	char *v = NULL;
	if (r && r->type == REDIS_REPLY_STRING)
		v = xstrndup(r->str, r->len);
	else
		print_error_reply(arg0, r);
	if (r)
		freeReplyObject(r);
	return v;
}

long long
test_redis_int(struct redis_pool *p, const char *arg0, ...)
{
	va_list ap;
	va_start(ap, arg0);
	redisReply *r = test_redis_cmdv(p, arg0, ap);
	va_end(ap);
	return take_int(arg0, r);
}

char *
test_redis_str(struct redis_pool *p, const char *arg0, ...)
{
	va_list ap;
	va_start(ap, arg0);
	redisReply *r = test_redis_cmdv(p, arg0, ap);
	va_end(ap);
	return take_str(arg0, r);
}

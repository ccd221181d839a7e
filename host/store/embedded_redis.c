/* embedded_redis.c - the daemon's own redis-server child (redis_url:
 * embedded): lock the data dir, clear a leftover server, spawn, wait for
 * PING, supervise (restart with backoff), stop. See redis_conn.h.
 *
 * Every child is forked by the supervisor thread: PR_SET_PDEATHSIG fires
 * when the forking *thread* ends, and that thread lives exactly as long as
 * the child should. */
#include "store/redis_conn.h"
#include "store/redis_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/ticker.h"
#include "logs/log.h"

#define ER_START_TIMEOUT_MS 10000
#define ER_LOADING_TIMEOUT_MS 600000 /* while it answers LOADING */
#define ER_STOP_TIMEOUT_MS 10000
#define ER_LEFTOVER_TIMEOUT_MS 10000
#define ER_BACKOFF_MIN_MS 200
#define ER_BACKOFF_MAX_MS 10000
#define ER_STABLE_MS 30000 /* a child that lived this long resets backoff */
#define ER_HINT "install it with `apt-get install redis-server`, or set " \
		"berth.redis_server to its path"

struct embedded_redis {
	char *binary;    /* resolved path */
	char *data_dir;  /* absolute */
	char *sock_path;
	char *log_path;
	char *lock_path;
	char **argv;
	int lock_fd;

	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	/* under mu: */
	pid_t pid;          /* running (or unreaped) child, 0 when none */
	bool stopping;
	bool supervising;   /* first child answered PING: restart on exit */
	bool done;          /* supervisor thread finished */
	unsigned exits;     /* children ended (or failed to start) */
	unsigned restarts;
	int last_status;    /* wait status of the last child, -1 unknown */
	int spawn_err;      /* errno of the last failed fork/exec, or 0 */
};

/* ---- small helpers ---------------------------------------------------- */

static void
describe_status(int st, char *buf, size_t n)
{
	if (st == -1)
		snprintf(buf, n, "ended (status unknown)");
	else if (WIFEXITED(st))
		snprintf(buf, n, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(st),
			 strsignal(WTERMSIG(st)));
	else
		snprintf(buf, n, "ended (wait status %d)", st);
}

/* Absolute path of an executable: as given when it has a '/', else looked
 * up in PATH. NULL when not found. */
static char *
find_binary(const char *bin)
{
	if (strchr(bin, '/'))
		return access(bin, X_OK) == 0 ? realpath(bin, NULL) : NULL;
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
		       "/sbin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");
		char *cand = len ? xasprintf("%.*s/%s", (int)len, path, bin)
				 : xasprintf("./%s", bin);
		struct stat st;
		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(cand, X_OK) == 0)
			return cand;
		free(cand);
		path += len;
		if (*path == ':')
			path++;
	}
	return NULL;
}

static off_t
file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Appends the last lines of path written after offset `from` to buf, each
 * on its own indented line; nothing when there are none. */
static void
log_tail(const char *path, off_t from, char *buf, size_t n)
{
	enum { TAIL_BYTES = 700, TAIL_LINES = 8 };
	buf[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t size = lseek(fd, 0, SEEK_END);
	off_t start = size - TAIL_BYTES > from ? size - TAIL_BYTES : from;
	char raw[TAIL_BYTES + 1];
	ssize_t got = start < size ? pread(fd, raw, (size_t)(size - start),
					   start) : 0;
	close(fd);
	if (got <= 0)
		return;
	raw[got] = '\0';
	/* keep whole lines: skip a partial first line if we cut one */
	char *p = raw;
	if (start > from) {
		char *nl = strchr(p, '\n');
		p = nl ? nl + 1 : p;
	}
	char *lines[TAIL_LINES];
	int nlines = 0;
	for (char *save = NULL, *l = strtok_r(p, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		if (nlines == TAIL_LINES) {
			memmove(lines, lines + 1,
				sizeof(lines[0]) * (TAIL_LINES - 1));
			nlines--;
		}
		lines[nlines++] = l;
	}
	size_t o = 0;
	for (int i = 0; i < nlines && o + 8 < n; i++) {
		int w = snprintf(buf + o, n - o, "\n    %.200s", lines[i]);
		if (w < 0)
			break;
		o += (size_t)w;
	}
	if (o >= n)
		buf[n - 1] = '\0';
}

/* Result of one PING over the socket. */
enum er_ping {
	ER_PING_NONE,    /* nobody answers */
	ER_PING_LOADING, /* alive, loading its data */
	ER_PING_OTHER,   /* alive, replied an error (e.g. NOAUTH) */
	ER_PING_PONG,
};

static enum er_ping
er_ping(const char *sock)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectUnixWithTimeout(sock, tv);
	if (!c)
		return ER_PING_NONE;
	enum er_ping res = ER_PING_NONE;
	if (!c->err && redisSetTimeout(c, tv) == REDIS_OK) {
		redisReply *r = redisCommand(c, "PING");
		if (r && r->type == REDIS_REPLY_STATUS)
			res = ER_PING_PONG;
		else if (r && r->type == REDIS_REPLY_ERROR && r->str &&
			 strncmp(r->str, "LOADING", 7) == 0)
			res = ER_PING_LOADING;
		else if (r)
			res = ER_PING_OTHER;
		if (r)
			freeReplyObject(r);
	}
	redisFree(c);
	return res;
}

/* ---- the lock and a leftover server ----------------------------------- */

static int
er_lock(struct embedded_redis *er, struct berr *e)
{
	er->lock_fd = open(er->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (er->lock_fd < 0)
		return berr_set(e, "embedded redis: cannot open %s: %s",
				er->lock_path, strerror(errno));
	if (flock(er->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		char owner[32] = "";
		ssize_t n = pread(er->lock_fd, owner, sizeof(owner) - 1, 0);
		owner[n > 0 ? n : 0] = '\0';
		owner[strcspn(owner, "\n")] = '\0';
		close(er->lock_fd);
		er->lock_fd = -1;
		if (err == EWOULDBLOCK)
			return berr_set(e, "embedded redis: data dir %s is in "
					"use by another berthd (pid %s holds "
					"%s); give each instance its own "
					"berth.data_dir", er->data_dir,
					owner[0] ? owner : "?",
					er->lock_path);
		return berr_set(e, "embedded redis: cannot lock %s: %s",
				er->lock_path, strerror(err));
	}
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(er->lock_fd, 0) < 0 ||
	    pwrite(er->lock_fd, pid, (size_t)len, 0) != len)
		log_warn("embedded redis: cannot write %s: %s", er->lock_path,
			 strerror(errno));
	return 0;
}

/* We hold the lock, so whatever still answers on our socket was left by a
 * berthd that died (kill -9 racing PR_SET_PDEATHSIG, or a crash of the
 * whole box's init). SHUTDOWN (not NOSAVE) makes it write its AOF; then we
 * start a fresh child on the same files. */
static int
er_clear_leftover(struct embedded_redis *er, struct berr *e)
{
	struct stat st;
	if (lstat(er->sock_path, &st) < 0)
		return 0;
	if (er_ping(er->sock_path) == ER_PING_NONE) {
		unlink(er->sock_path); /* stale socket file */
		return 0;
	}
	log_warn("embedded redis: a redis-server left by a previous berthd "
		 "still runs on %s; shutting it down (SHUTDOWN, which saves "
		 "its append-only file) and starting a fresh one",
		 er->sock_path);
	struct timeval tv = {5, 0};
	redisContext *c = redisConnectUnixWithTimeout(er->sock_path, tv);
	if (c && !c->err) {
		redisSetTimeout(c, tv);
		redisReply *r = redisCommand(c, "SHUTDOWN");
		/* success closes the connection: no reply */
		if (r && r->type == REDIS_REPLY_ERROR) {
			berr_set(e, "embedded redis: the leftover redis-server "
				 "on %s refused SHUTDOWN: %s; stop it by hand",
				 er->sock_path, r->str ? r->str : "?");
			freeReplyObject(r);
			redisFree(c);
			return -1;
		}
		if (r)
			freeReplyObject(r);
	}
	if (c)
		redisFree(c);
	int64_t until = util_monotonic_ms() + ER_LEFTOVER_TIMEOUT_MS;
	while (er_ping(er->sock_path) != ER_PING_NONE) {
		if (util_monotonic_ms() > until)
			return berr_set(e, "embedded redis: the leftover "
					"redis-server on %s still runs 10 s "
					"after SHUTDOWN; stop it by hand",
					er->sock_path);
		util_sleep_ms(50);
	}
	unlink(er->sock_path);
	return 0;
}

/* ---- spawning and supervision ----------------------------------------- */

/* In the forked child: async-signal-safe calls only. */
static void __attribute__((noreturn))
er_child(const struct embedded_redis *er, int nullfd, int logfd, int errfd,
	 pid_t parent)
{
	struct sigaction sa;
	sigset_t none;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &sa, NULL); /* EINVAL for some: fine */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(126); /* berthd already gone */
	setpgid(0, 0);
	dup2(nullfd, 0);
	dup2(logfd, 1);
	dup2(logfd, 2);
	/* descriptors other modules leaked without O_CLOEXEC stay ours */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	execv(er->binary, er->argv);
	int err = errno;
	ssize_t w = write(errfd, &err, sizeof(err));
	(void)w;
	_exit(127);
}

/* Forks and execs one child; pid, or -1 with *err set. */
static pid_t
er_spawn(struct embedded_redis *er, int *err)
{
	int logfd = open(er->log_path,
			 O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0) {
		*err = errno;
		return -1;
	}
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int pfd[2];
	if (nullfd < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
		*err = errno;
		close(logfd);
		if (nullfd >= 0)
			close(nullfd);
		return -1;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0)
		er_child(er, nullfd, logfd, pfd[1], parent);
	int fork_err = errno;
	close(pfd[1]);
	close(logfd);
	close(nullfd);
	if (pid < 0) {
		close(pfd[0]);
		*err = fork_err;
		return -1;
	}
	int child_err = 0;
	ssize_t n;
	do
		n = read(pfd[0], &child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == (ssize_t)sizeof(child_err)) {
		/* exec failed; the child _exit()s at once */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		*err = child_err;
		return -1;
	}
	return pid;
}

/* Waits until child pid ends, without reaping it: the pid stays ours
 * (a zombie) until er_supervise reaps it under mu, so a kill() sent under
 * mu never reaches a recycled pid. */
static void
er_wait_exit(pid_t pid)
{
	siginfo_t si;
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 &&
	       errno == EINTR)
		;
}

static void *
er_supervise(void *arg)
{
	struct embedded_redis *er = arg;
	int64_t backoff = ER_BACKOFF_MIN_MS;
	pthread_mutex_lock(&er->mu);
	while (!er->stopping) {
		pthread_mutex_unlock(&er->mu);
		int err = 0;
		int64_t t0 = util_monotonic_ms();
		pid_t pid = er_spawn(er, &err);
		pthread_mutex_lock(&er->mu);
		if (pid > 0) {
			er->pid = pid;
			er->spawn_err = 0;
			if (er->stopping)
				kill(pid, SIGTERM);
			pthread_cond_broadcast(&er->cv);
			pthread_mutex_unlock(&er->mu);
			er_wait_exit(pid);
			pthread_mutex_lock(&er->mu);
			int st;
			pid_t r;
			while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
				;
			er->pid = 0;
			er->last_status = r == pid ? st : -1;
		} else {
			er->spawn_err = err;
			er->last_status = -1;
		}
		er->exits++;
		pthread_cond_broadcast(&er->cv);
		if (er->stopping || !er->supervising)
			break;
		if (util_monotonic_ms() - t0 >= ER_STABLE_MS)
			backoff = ER_BACKOFF_MIN_MS;
		char what[160], st[128];
		if (pid > 0) {
			describe_status(er->last_status, st, sizeof(st));
			snprintf(what, sizeof(what), "(pid %ld) %s", (long)pid,
				 st);
		} else {
			snprintf(what, sizeof(what), "could not be started: %s",
				 strerror(err));
		}
		er->restarts++;
		log_error("embedded redis-server %s; restart #%u in %lld ms "
			  "(log: %s)", what, er->restarts, (long long)backoff,
			  er->log_path);
		struct timespec dl = ticker_deadline_in(backoff);
		while (!er->stopping &&
		       pthread_cond_timedwait(&er->cv, &er->mu, &dl) !=
			       ETIMEDOUT)
			;
		backoff = backoff * 2 > ER_BACKOFF_MAX_MS ? ER_BACKOFF_MAX_MS
							  : backoff * 2;
	}
	er->done = true;
	pthread_cond_broadcast(&er->cv);
	pthread_mutex_unlock(&er->mu);
	return NULL;
}

/* Stops the child and joins the supervisor (both may be gone already). */
static void
er_halt(struct embedded_redis *er)
{
	pthread_mutex_lock(&er->mu);
	er->stopping = true;
	if (er->pid > 0)
		kill(er->pid, SIGTERM);
	pthread_cond_broadcast(&er->cv);
	struct timespec dl = ticker_deadline_in(ER_STOP_TIMEOUT_MS);
	while (!er->done && er->pid > 0 &&
	       pthread_cond_timedwait(&er->cv, &er->mu, &dl) != ETIMEDOUT)
		;
	if (!er->done && er->pid > 0) {
		log_warn("embedded redis-server (pid %ld) did not stop within "
			 "%d s of SIGTERM; sending SIGKILL", (long)er->pid,
			 ER_STOP_TIMEOUT_MS / 1000);
		kill(er->pid, SIGKILL);
	}
	while (!er->done)
		pthread_cond_wait(&er->cv, &er->mu);
	pthread_mutex_unlock(&er->mu);
	pthread_join(er->thread, NULL);
}

static void
er_free(struct embedded_redis *er)
{
	if (er->lock_fd >= 0)
		close(er->lock_fd); /* releases the flock */
	if (er->argv)
		for (char **a = er->argv; *a; a++)
			free(*a);
	free(er->argv);
	free(er->binary);
	free(er->data_dir);
	free(er->sock_path);
	free(er->log_path);
	free(er->lock_path);
	pthread_cond_destroy(&er->cv);
	pthread_mutex_destroy(&er->mu);
	free(er);
}

static char **
er_build_argv(const struct embedded_redis *er, const char *appendfsync)
{
	const char *args[] = {
		er->binary,
		"--port", "0",
		"--unixsocket", er->sock_path,
		"--unixsocketperm", "700",
		"--dir", er->data_dir,
		"--appendonly", "yes",
		"--appendfsync", appendfsync,
		"--save", "",
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--logfile", er->log_path,
	};
	char **argv = xcalloc(ARRAY_LEN(args) + 1, sizeof(*argv));
	for (size_t i = 0; i < ARRAY_LEN(args); i++)
		argv[i] = xstrdup(args[i]);
	return argv;
}

/* Waits for the first child to answer PING; 0, or -1 with e set. */
static int
er_wait_ready(struct embedded_redis *er, off_t log_from, struct berr *e)
{
	int64_t start = util_monotonic_ms();
	int64_t until = start + ER_START_TIMEOUT_MS;
	bool said_loading = false;
	char tail[720], what[160];
	for (;;) {
		pthread_mutex_lock(&er->mu);
		unsigned exits = er->exits;
		int st = er->last_status, serr = er->spawn_err;
		pid_t pid = er->pid;
		pthread_mutex_unlock(&er->mu);
		if (exits > 0) {
			log_tail(er->log_path, log_from, tail, sizeof(tail));
			if (serr)
				return berr_set(e, "embedded redis: cannot "
						"run %s: %s; %s", er->binary,
						strerror(serr), ER_HINT);
			describe_status(st, what, sizeof(what));
			return berr_set(e, "embedded redis: %s %s during "
					"start-up; last lines of %s:%s\n"
					"(if redis-server is missing or too "
					"old: %s)", er->binary, what,
					er->log_path,
					tail[0] ? tail : " (empty)", ER_HINT);
		}
		enum er_ping ping = pid > 0 ? er_ping(er->sock_path)
					    : ER_PING_NONE;
		if (ping == ER_PING_PONG)
			break;
		int64_t now = util_monotonic_ms();
		if (ping == ER_PING_LOADING) {
			if (!said_loading)
				log_info("embedded redis: loading its "
					 "append-only file...");
			said_loading = true;
			if (until < now + 1000 &&
			    now - start < ER_LOADING_TIMEOUT_MS)
				until = now + 1000;
		}
		if (now > until) {
			log_tail(er->log_path, log_from, tail, sizeof(tail));
			return berr_set(e, "embedded redis: %s (pid %ld) did "
					"not answer PING on %s within %d s; "
					"last lines of %s:%s", er->binary,
					(long)pid, er->sock_path,
					ER_START_TIMEOUT_MS / 1000,
					er->log_path,
					tail[0] ? tail : " (empty)");
		}
		util_sleep_ms(ping == ER_PING_NONE ? 25 : 100);
	}
	return 0;
}

int
embedded_redis_start(const char *binary, const char *data_dir,
		     const char *appendfsync, struct embedded_redis **out,
		     struct redis_target *t, struct berr *e)
{
	*out = NULL;
	if (!binary || !*binary)
		binary = "redis-server";
	if (!appendfsync || !*appendfsync)
		appendfsync = "everysec";
	if (strcmp(appendfsync, "always") != 0 &&
	    strcmp(appendfsync, "everysec") != 0 &&
	    strcmp(appendfsync, "no") != 0)
		return berr_set(e, "embedded redis: bad appendfsync \"%s\" "
				"(want always, everysec or no)", appendfsync);
	if (!data_dir || !*data_dir)
		return berr_set(e, "embedded redis: no data directory");
	if (util_mkdir_p(data_dir, 0700) < 0)
		return berr_set(e, "embedded redis: cannot create %s: %s",
				data_dir, strerror(errno));
	char *abs = realpath(data_dir, NULL);
	if (!abs)
		return berr_set(e, "embedded redis: %s: %s", data_dir,
				strerror(errno));
	struct embedded_redis *er = xcalloc(1, sizeof(*er));
	er->lock_fd = -1;
	er->data_dir = abs;
	er->sock_path = util_path_join(abs, "redis.sock");
	er->log_path = util_path_join(abs, "redis.log");
	er->lock_path = util_path_join(abs, "berthd.lock");
	pthread_mutex_init(&er->mu, NULL);
	ticker_cond_init(&er->cv);

	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	if (strlen(er->sock_path) > max) {
		berr_set(e, "embedded redis: socket path %s is longer than "
			 "%zu bytes; choose a shorter berth.data_dir",
			 er->sock_path, max);
		goto fail;
	}
	er->binary = find_binary(binary);
	if (!er->binary) {
		berr_set(e, "embedded redis: cannot find %s%s; %s", binary,
			 strchr(binary, '/') ? " (or it is not executable)"
					     : " in PATH",
			 ER_HINT);
		goto fail;
	}
	if (er_lock(er, e) < 0 || er_clear_leftover(er, e) < 0)
		goto fail;
	er->argv = er_build_argv(er, appendfsync);

	off_t log_from = file_size(er->log_path);
	int rc = pthread_create(&er->thread, NULL, er_supervise, er);
	if (rc != 0) {
		berr_set(e, "embedded redis: cannot start the supervisor "
			 "thread: %s", strerror(rc));
		goto fail;
	}
	if (er_wait_ready(er, log_from, e) < 0) {
		er_halt(er);
		goto fail;
	}
	pthread_mutex_lock(&er->mu);
	bool died = er->exits > 0;
	if (!died)
		er->supervising = true;
	pid_t pid = er->pid;
	pthread_mutex_unlock(&er->mu);
	if (died) {
		berr_set(e, "embedded redis: %s exited right after start-up; "
			 "see %s", er->binary, er->log_path);
		er_halt(er);
		goto fail;
	}
	log_info("embedded redis-server (pid %ld) ready on %s, data in %s",
		 (long)pid, er->sock_path, er->data_dir);
	redis_target_init(t);
	t->unix_socket = true;
	t->port = 0;
	snprintf(t->path, sizeof(t->path), "%s", er->sock_path);
	*out = er;
	return 0;
fail:
	er_free(er);
	return -1;
}

void
embedded_redis_stop(struct embedded_redis *er)
{
	if (!er)
		return;
	er_halt(er);
	log_info("embedded redis-server stopped (%s)", er->data_dir);
	er_free(er);
}

pid_t
embedded_redis_pid(struct embedded_redis *er)
{
	pthread_mutex_lock(&er->mu);
	pid_t pid = er->pid;
	pthread_mutex_unlock(&er->mu);
	return pid;
}

unsigned
embedded_redis_restarts(struct embedded_redis *er)
{
	pthread_mutex_lock(&er->mu);
	unsigned n = er->restarts;
	pthread_mutex_unlock(&er->mu);
	return n;
}

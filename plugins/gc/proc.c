/* proc.c - child processes with captured output (see proc.h). */
#define _GNU_SOURCE
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

extern char **environ;

static long long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
gc_proc_which(const char *name, char *out, size_t outlen)
{
	struct stat st;
	if (!name || !*name)
		return false;
	if (strchr(name, '/')) {
		if (stat(name, &st) != 0 || !S_ISREG(st.st_mode) ||
		    access(name, X_OK) != 0)
			return false;
		snprintf(out, outlen, "%s", name);
		return strlen(name) < outlen;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);
		char cand[PATH_MAX];
		if (n == 0) /* an empty entry is the current directory */
			snprintf(cand, sizeof(cand), "./%s", name);
		else
			snprintf(cand, sizeof(cand), "%.*s/%s", (int)n, path,
				 name);
		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(cand, X_OK) == 0 && strlen(cand) < outlen) {
			snprintf(out, outlen, "%s", cand);
			return true;
		}
		path += n;
		if (*path == ':')
			path++;
	}
	return false;
}

/* In the forked child: async-signal-safe calls only. */
static void __attribute__((noreturn))
child(const char *path, const char *const *argv, int nullfd, int outfd,
      int errfd, pid_t parent)
{
	struct sigaction sa;
	sigset_t none;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &sa, NULL); /* EINVAL for some: fine */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(126);
	setpgid(0, 0);
	if (dup2(nullfd, 0) < 0 || dup2(outfd, 1) < 0 || dup2(outfd, 2) < 0)
		goto fail;
	/* nothing of the daemon's but errfd (close-on-exec) survives */
	if (errfd > 3)
		close_range(3, (unsigned)errfd - 1, 0);
	close_range((unsigned)errfd + 1, ~0U, 0);
	execve(path, (char *const *)argv, environ);
fail:;
	int e = errno;
	ssize_t w = write(errfd, &e, sizeof(e));
	(void)w;
	_exit(127);
}

struct linebuf {
	char buf[LINE_MAX_BYTES + 1];
	size_t len;
	void (*line)(void *ud, const char *line);
	void *ud;
};

static void
emit(struct linebuf *lb)
{
	while (lb->len && lb->buf[lb->len - 1] == '\r')
		lb->len--;
	lb->buf[lb->len] = '\0';
	if (lb->line)
		lb->line(lb->ud, lb->buf);
	lb->len = 0;
}

static void
feed(struct linebuf *lb, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			emit(lb);
			continue;
		}
		lb->buf[lb->len++] = p[i];
		if (lb->len == LINE_MAX_BYTES)
			emit(lb);
	}
}

/* Reads what is available; false at EOF (or a read error). */
static bool
drain(int fd, struct linebuf *lb)
{
	char chunk[8192];
	for (;;) {
		ssize_t k = read(fd, chunk, sizeof(chunk));
		if (k > 0) {
			feed(lb, chunk, (size_t)k);
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		return false;
	}
}

enum gc_proc_end
gc_proc_run(const struct gc_proc *p, int *status, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int out[2] = {-1, -1}, ep[2] = {-1, -1}, nullfd = -1;
	*status = 0;
	if (!gc_proc_which(p->argv[0], path, sizeof(path))) {
		snprintf(err, errlen, "%s: no such executable%s", p->argv[0],
			 strchr(p->argv[0], '/') ? "" : " in PATH");
		return GC_PROC_FAILED;
	}
	if (pipe2(out, O_CLOEXEC) != 0 || pipe2(ep, O_CLOEXEC) != 0 ||
	    (nullfd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot start %s: %s", path,
			 strerror(errno));
		goto fail_fds;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "cannot start %s: fork: %s", path,
			 strerror(errno));
		goto fail_fds;
	}
	if (pid == 0)
		child(path, p->argv, nullfd, out[1], ep[1], parent);
	setpgid(pid, pid); /* also here: no window before a kill(-pid) */
	close(out[1]);
	close(ep[1]);
	close(nullfd);
	out[1] = ep[1] = nullfd = -1;

	/* the exec's outcome: EOF (exec done) or the child's errno */
	int cerr = 0;
	ssize_t k;
	while ((k = read(ep[0], &cerr, sizeof(cerr))) < 0 && errno == EINTR)
		;
	close(ep[0]);
	ep[0] = -1;
	if (k == (ssize_t)sizeof(cerr)) {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		close(out[0]);
		snprintf(err, errlen, "cannot run %s: %s", path,
			 strerror(cerr));
		return GC_PROC_FAILED;
	}

	fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
	struct linebuf *lb = calloc(1, sizeof(*lb));
	if (lb) {
		lb->line = p->line;
		lb->ud = p->line_ud;
	}
	long grace = p->kill_grace_ms > 0 ? p->kill_grace_ms : 5000;
	long long start = now_ms(), kill_at = 0;
	enum gc_proc_end why = GC_PROC_EXITED;
	bool open_out = true, reaped = false;
	int wst = 0;
	while (!reaped) {
		if (open_out) {
			struct pollfd pfd = {.fd = out[0], .events = POLLIN};
			int r = poll(&pfd, 1, 100);
			if (r > 0 && lb)
				open_out = drain(out[0], lb);
			else if (r > 0) /* no buffer: discard */
				open_out = read(out[0], path, sizeof(path)) > 0;
		} else {
			struct timespec ts = {0, 100 * 1000000L};
			nanosleep(&ts, NULL);
		}
		pid_t w = waitpid(pid, &wst, WNOHANG);
		if (w == pid) {
			reaped = true;
			break;
		}
		long long t = now_ms();
		if (why == GC_PROC_EXITED) {
			if (p->stop && p->stop(p->stop_ud))
				why = GC_PROC_STOPPED;
			else if (p->timeout_ms > 0 &&
				 t - start >= p->timeout_ms)
				why = GC_PROC_TIMEOUT;
			if (why != GC_PROC_EXITED) {
				kill(-pid, SIGTERM);
				kill(pid, SIGTERM);
				kill_at = t + grace;
			}
		} else if (kill_at && t >= kill_at) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			kill_at = 0;
		}
	}
	/* what the child wrote last (grandchildren may keep the pipe open:
	 * take what is there, do not wait for them) */
	if (open_out && lb)
		drain(out[0], lb);
	if (lb && lb->len)
		emit(lb);
	free(lb);
	close(out[0]);
	if (WIFEXITED(wst)) {
		*status = WEXITSTATUS(wst);
	} else if (WIFSIGNALED(wst)) {
		*status = WTERMSIG(wst);
		if (why == GC_PROC_EXITED)
			why = GC_PROC_SIGNALED;
	}
	return why;

fail_fds:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	if (nullfd >= 0)
		close(nullfd);
	return GC_PROC_FAILED;
}

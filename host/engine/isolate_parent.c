/* isolate_parent.c - the daemon's side of process isolation: start a
 * plugin runner for one job and supervise it; see isolate.h.
 *
 * Start. posix_spawn() (no fork of the multi-threaded daemon: glibc's
 * posix_spawn is a vfork-style clone that only execs) of the runner
 * (berth-plugin-runner next to berthd's binary, else /proc/self/exe
 * --plugin-runner): the signal mask emptied and every signal's
 * disposition back to default (berthd blocks SIGTERM/SIGINT/SIGHUP and
 * ignores SIGPIPE), its own process group (a kill reaches whatever the
 * plugin started), stdin from /dev/null, the runner's end of a socketpair
 * as ISOLATE_FD. The runner closes every other inherited descriptor and
 * asks for SIGKILL when this thread dies.
 *
 * Supervision. One poll() loop on the calling worker thread over the
 * socket and a pidfd of the runner (its exit), waking at least every
 * CHECK_MS to ask the job's stop hook, to read the runner's VmRSS from
 * /proc and to check the deadlines:
 *   max_run_seconds  SIGTERM to the group, SIGKILL TERM_GRACE_MS later;
 *   max_rss_mb       SIGKILL at once (a leak does not slow down);
 *   stop             ISO_STOP is sent; still running stop_grace later:
 *                    SIGKILL;
 *   after ISO_RESULT the runner has TERM_GRACE_MS to exit (fini()).
 * The runner is reaped by pid (waitpid on that pid only). */
#include "engine/isolate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/json.h"
#include "common/util.h"
#include "engine/isolate_proto.h"
#include "logs/log.h"
#include "plugins/hostapi.h"
#include "plugins/plugin_host.h"

#define CHECK_MS 50
#define TERM_GRACE_MS 2000
#define DEFAULT_STOP_GRACE_S 10
#define SELF_EXE "/proc/self/exe"

extern char **environ;

enum kill_reason {
	KILL_NONE,
	KILL_MAX_RUN,
	KILL_MAX_RSS,
	KILL_STOP,
	KILL_PROTOCOL,
	KILL_AFTER_RESULT,
};

struct iso_run {
	struct job_type *t;
	const struct hostapi_run_hooks *hooks;
	pid_t pid;
	int fd;    /* -1 once the runner closed its end */
	int pidfd; /* -1 when pidfd_open is unavailable */
	bool reaped;
	int wstatus;
	struct iso_buf in, out;

	bool have_result;
	int code;
	char result_err[1024];

	int64_t now;
	int64_t next_check;
	int64_t run_deadline;  /* 0: none */
	int64_t stop_deadline; /* 0: no stop sent */
	int64_t kill_at;       /* SIGKILL due (after a SIGTERM), 0: none */
	int64_t stop_grace_ms;
	bool stop_sent;
	enum kill_reason reason;
	char reason_text[256];
};

/* --- starting a runner ---------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define ISO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ISO_ASAN 1
#endif
#endif

/* The runner's environment: the daemon's. Under AddressSanitizer, a
 * plugin's crash must stay a signal (not an ASan report and exit 1) and a
 * thrown-away process has no leaks to report. */
static char **
runner_env(char **extra)
{
#ifdef ISO_ASAN
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = xcalloc(n + 2, sizeof(*env));
	size_t k = 0;
	const char *old = "";
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "ASAN_OPTIONS=", 13) == 0)
			old = environ[i] + 13;
		else
			env[k++] = environ[i];
	}
	*extra = xasprintf("ASAN_OPTIONS=%s%shandle_segv=0:handle_sigbus=0:"
			   "handle_abort=0:detect_leaks=0",
			   old, old[0] ? ":" : "");
	env[k++] = *extra;
	env[k] = NULL;
	return env;
#else
	*extra = NULL;
	return environ;
#endif
}

/* Where the runner is: found once. */
static pthread_once_t runner_once = PTHREAD_ONCE_INIT;
static char runner_path[PATH_MAX];
static bool runner_is_self;

static void
find_runner(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink(SELF_EXE, exe, sizeof(exe) - 1);
	char *slash = n > 0 ? memchr(exe, '/', (size_t)n) : NULL;
	if (slash) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		*slash = '\0';
		int w = snprintf(runner_path, sizeof(runner_path), "%s/%s",
				 exe, ISOLATE_RUNNER_EXE);
		if (w > 0 && (size_t)w < sizeof(runner_path) &&
		    access(runner_path, X_OK) == 0) {
			log_info("plugin runner: %s", runner_path);
			return;
		}
	}
	snprintf(runner_path, sizeof(runner_path), "%s", SELF_EXE);
	runner_is_self = true;
	log_info("plugin runner: berthd %s (no %s next to it)",
		 ISOLATE_RUNNER_ARG, ISOLATE_RUNNER_EXE);
}

static int
spawn_runner(struct iso_run *ir, char *why, size_t whylen)
{
	pthread_once(&runner_once, find_runner);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(why, whylen, "socketpair: %s", strerror(errno));
		return -1;
	}
	if (sv[1] == ISOLATE_FD) { /* dup2 onto itself keeps FD_CLOEXEC */
		int d = fcntl(sv[1], F_DUPFD_CLOEXEC, ISOLATE_FD + 1);
		close(sv[1]);
		sv[1] = d;
		if (d < 0) {
			snprintf(why, whylen, "fcntl: %s", strerror(errno));
			close(sv[0]);
			return -1;
		}
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], ISOLATE_FD);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawnattr_init(&at);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
					      POSIX_SPAWN_SETSIGDEF |
					      POSIX_SPAWN_SETPGROUP);
	char ppid[24], version[16];
	snprintf(ppid, sizeof(ppid), "%ld", (long)getpid());
	snprintf(version, sizeof(version), "%d", ISO_PROTO_VERSION);
	char *self_argv[] = {"berthd", ISOLATE_RUNNER_ARG, ppid, version,
			     NULL};
	char *small_argv[] = {ISOLATE_RUNNER_EXE, ppid, version, NULL};
	char *extra;
	char **env = runner_env(&extra);
	pid_t pid;
	int rc = posix_spawn(&pid, runner_path, &fa, &at,
			     runner_is_self ? self_argv : small_argv, env);
	if (env != environ)
		free(env);
	free(extra);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(sv[1]);
	if (rc != 0) {
		snprintf(why, whylen, "posix_spawn %.200s: %s", runner_path,
			 strerror(rc));
		close(sv[0]);
		return -1;
	}
	int fl = fcntl(sv[0], F_GETFL);
	fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
	ir->pid = pid;
	ir->fd = sv[0];
#ifdef SYS_pidfd_open
	ir->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#else
	ir->pidfd = -1;
#endif
	return 0;
}

static void
queue_job(struct iso_run *ir, const struct hostapi_job *job)
{
	struct job_type *t = ir->t;
	const struct hostapi_run_hooks *h = ir->hooks;
	cJSON *o = json_must(cJSON_CreateObject());
	char rev[24];
	snprintf(rev, sizeof(rev), "%lld", (long long)job->revision);
	cJSON_AddStringToObject(o, "file", t->file);
	cJSON_AddStringToObject(o, "type", t->name);
	cJSON_AddItemToObject(o, "settings",
			      json_must(cJSON_Duplicate(t->settings, 1)));
	if (t->properties)
		cJSON_AddItemToObject(
			o, "properties",
			json_must(cJSON_Duplicate(t->properties, 1)));
	cJSON_AddStringToObject(o, "id", job->id ? job->id : "");
	cJSON_AddStringToObject(o, "name", job->name ? job->name : "");
	cJSON_AddStringToObject(o, "kind", job->kind ? job->kind : "");
	cJSON_AddStringToObject(o, "revision", rev);
	if (cJSON_IsObject(job->params))
		cJSON_AddItemToObject(
			o, "params",
			json_must(cJSON_Duplicate(job->params, 1)));
	cJSON_AddNumberToObject(o, "log_level",
				h ? h->log_level : BERTH_LOG_INFO);
	cJSON_AddNumberToObject(o, "service_level", blog_min_level);
	cJSON_AddBoolToObject(o, "property_hook", h && h->property);
	char *text = cJSON_PrintUnformatted(json_must(o));
	if (!text) { /* cJSON allocates with malloc: as xmalloc */
		fprintf(stderr, "berthd: out of memory serialising a job\n");
		abort();
	}
	iso_buf_frame(&ir->out, ISO_JOB, text, strlen(text), NULL, 0);
	cJSON_free(text);
	cJSON_Delete(o);
}

/* --- killing -------------------------------------------------------------- */

static void
signal_group(struct iso_run *ir, int sig)
{
	if (ir->reaped)
		return;
	/* the group, and the runner itself should it have left it */
	kill(-ir->pid, sig);
	kill(ir->pid, sig);
}

__attribute__((format(printf, 4, 5))) static void
kill_runner(struct iso_run *ir, enum kill_reason why, int sig,
	    const char *fmt, ...)
{
	if (ir->reason != KILL_NONE && ir->reason != KILL_AFTER_RESULT)
		return;
	ir->reason = why;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ir->reason_text, sizeof(ir->reason_text), fmt, ap);
	va_end(ap);
	signal_group(ir, sig);
	ir->kill_at = sig == SIGKILL ? 0 : ir->now + TERM_GRACE_MS;
}

/* VmRSS of pid in MiB (rounded down), or -1. */
static int64_t
rss_mb(pid_t pid)
{
	char path[64], line[128];
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int64_t kb = -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtoll(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb < 0 ? -1 : kb / 1024;
}

/* The periodic checks: stop, RSS, deadlines. */
static void
checks(struct iso_run *ir)
{
	struct job_type *t = ir->t;
	const struct hostapi_run_hooks *h = ir->hooks;
	if (ir->now >= ir->next_check) {
		ir->next_check = ir->now + CHECK_MS;
		if (!ir->stop_sent && !ir->have_result && h &&
		    h->stop_requested && h->stop_requested(h->opaque)) {
			ir->stop_sent = true;
			ir->stop_deadline = ir->now + ir->stop_grace_ms;
			if (ir->fd >= 0)
				iso_buf_frame(&ir->out, ISO_STOP, NULL, 0,
					      NULL, 0);
		}
		if (t->max_rss_mb > 0 && !ir->reaped) {
			int64_t mb = rss_mb(ir->pid);
			if (mb > t->max_rss_mb)
				kill_runner(ir, KILL_MAX_RSS, SIGKILL,
					    "plugin process killed: RSS %lld "
					    "MiB exceeded max_rss_mb (%lld "
					    "MiB)",
					    (long long)mb,
					    (long long)t->max_rss_mb);
		}
	}
	if (ir->run_deadline && ir->now >= ir->run_deadline &&
	    !ir->have_result)
		kill_runner(ir, KILL_MAX_RUN, SIGTERM,
			    "plugin process killed: run() exceeded "
			    "max_run_seconds (%lld s)",
			    (long long)t->max_run_seconds);
	if (ir->stop_deadline && ir->now >= ir->stop_deadline &&
	    !ir->have_result)
		kill_runner(ir, KILL_STOP, SIGKILL,
			    "plugin process ignored the stop for %lld s; "
			    "killed",
			    (long long)(ir->stop_grace_ms / 1000));
	if (ir->kill_at && ir->now >= ir->kill_at) {
		signal_group(ir, SIGKILL);
		ir->kill_at = 0;
	}
}

/* --- frames from the runner ----------------------------------------------- */

static char *
text_of(const char *p, uint32_t len)
{
	char *s = xmalloc((size_t)len + 1);
	memcpy(s, p, len);
	s[len] = '\0';
	/* a NUL inside would cut the text short; that is all it can do */
	return s;
}

static void
on_frame(struct iso_run *ir, int type, const char *p, uint32_t len)
{
	const struct hostapi_run_hooks *h = ir->hooks;
	if (ir->have_result) {
		kill_runner(ir, KILL_PROTOCOL, SIGKILL,
			    "plugin process broke the runner protocol "
			    "(frame %d after the result); killed",
			    type);
		return;
	}
	switch (type) {
	case ISO_LOG: {
		if (len < 1)
			break;
		char *s = text_of(p + 1, len - 1);
		int level = (unsigned char)p[0];
		if (h && h->log)
			h->log(h->opaque, level, s);
		else
			blog_write(level, ir->t->name, 0, "%s", s);
		free(s);
		return;
	}
	case ISO_CHECKIN: {
		char *s = text_of(p, len);
		int rc = !s[0] ? -1
			 : h && h->checkin ? h->checkin(h->opaque, s)
					   : 0;
		free(s);
		unsigned char a = rc == 0 ? 0 : 1;
		iso_buf_frame(&ir->out, ISO_CHECKIN_RC, &a, 1, NULL, 0);
		return;
	}
	case ISO_PROPERTY: {
		char *s = text_of(p, len);
		const char *v = h && h->property ? h->property(h->opaque, s)
						 : NULL;
		unsigned char present = v ? 1 : 0;
		iso_buf_frame(&ir->out, ISO_PROPERTY_VAL, &present, 1, v,
			      v ? strlen(v) : 0);
		free(s);
		return;
	}
	case ISO_RESULT: {
		if (len < 4)
			break;
		int32_t code;
		memcpy(&code, p, sizeof(code));
		ir->have_result = true;
		ir->code = code;
		size_t n = len - 4;
		if (n >= sizeof(ir->result_err))
			n = sizeof(ir->result_err) - 1;
		memcpy(ir->result_err, p + 4, n);
		ir->result_err[n] = '\0';
		/* time for fini() and _exit() */
		ir->kill_at = ir->now + TERM_GRACE_MS;
		ir->reason = KILL_AFTER_RESULT;
		return;
	}
	default:
		break;
	}
	kill_runner(ir, KILL_PROTOCOL, SIGKILL,
		    "plugin process broke the runner protocol (frame %d of "
		    "%u bytes); killed",
		    type, (unsigned)len);
}

/* Reads what the socket holds; false once the runner's end is closed. */
static void
read_socket(struct iso_run *ir)
{
	for (;;) {
		iso_buf_compact(&ir->in);
		iso_buf_reserve(&ir->in, 65536);
		ssize_t r = read(ir->fd, ir->in.p + ir->in.len,
				 ir->in.cap - ir->in.len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (r <= 0) {
			close(ir->fd);
			ir->fd = -1;
			break;
		}
		ir->in.len += (size_t)r;
		int type;
		const char *p;
		uint32_t len;
		int got;
		while ((got = iso_buf_next(&ir->in, ISO_CHILD_FRAME_MAX, &type,
					   &p, &len)) == 1)
			on_frame(ir, type, p, len);
		if (got < 0) {
			kill_runner(ir, KILL_PROTOCOL, SIGKILL,
				    "plugin process broke the runner protocol "
				    "(a frame above %u bytes); killed",
				    ISO_CHILD_FRAME_MAX);
			close(ir->fd);
			ir->fd = -1;
			break;
		}
	}
}

static void
write_socket(struct iso_run *ir)
{
	while (ir->fd >= 0 && ir->out.off < ir->out.len) {
		ssize_t w = send(ir->fd, ir->out.p + ir->out.off,
				 ir->out.len - ir->out.off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (w < 0) { /* the runner is gone; its exit tells why */
			ir->out.off = ir->out.len;
			break;
		}
		ir->out.off += (size_t)w;
	}
	if (ir->out.off == ir->out.len)
		ir->out.off = ir->out.len = 0;
}

static void
try_reap(struct iso_run *ir)
{
	int st;
	pid_t r;
	while ((r = waitpid(ir->pid, &st, WNOHANG)) < 0 && errno == EINTR)
		;
	if (r == ir->pid) {
		ir->reaped = true;
		ir->wstatus = st;
	} else if (r < 0) { /* ECHILD: someone else reaped it */
		ir->reaped = true;
		ir->wstatus = -1;
	}
}

static void
supervise(struct iso_run *ir)
{
	while (!ir->reaped) {
		ir->now = util_monotonic_ms();
		checks(ir);
		int64_t wake = ir->next_check;
		int64_t dl[] = {ir->run_deadline, ir->stop_deadline,
				ir->kill_at};
		for (size_t i = 0; i < ARRAY_LEN(dl); i++)
			if (dl[i] && dl[i] < wake)
				wake = dl[i];
		int timeout = (int)(wake > ir->now ? wake - ir->now : 0);
		struct pollfd pf[2];
		nfds_t n = 0;
		if (ir->fd >= 0) {
			pf[n].fd = ir->fd;
			pf[n].events = POLLIN;
			if (ir->out.len > ir->out.off)
				pf[n].events |= POLLOUT;
			pf[n++].revents = 0;
		}
		if (ir->pidfd >= 0) {
			pf[n].fd = ir->pidfd;
			pf[n].events = POLLIN;
			pf[n++].revents = 0;
		} else if (ir->fd < 0 && timeout > 5) {
			timeout = 5; /* no pidfd: look for the exit often */
		}
		int pr = poll(pf, n, timeout);
		if (pr < 0 && errno != EINTR) {
			log_warn("job type %s: poll: %s", ir->t->name,
				 strerror(errno));
			util_sleep_ms(5);
		}
		ir->now = util_monotonic_ms();
		if (ir->fd >= 0 && pr > 0 && pf[0].revents)
			read_socket(ir);
		if (ir->fd >= 0)
			write_socket(ir);
		if (ir->fd < 0 || ir->pidfd < 0 ||
		    (pr > 0 && pf[n - 1].revents))
			try_reap(ir);
	}
	/* what the runner wrote before it died (unless a grandchild still
	 * holds the socket open, this reads up to the end) */
	if (ir->fd >= 0)
		read_socket(ir);
}

/* --- the result ----------------------------------------------------------- */

static const char *
signal_name(int sig, char *buf, size_t len)
{
	const char *abbrev = sigabbrev_np(sig);
	if (abbrev)
		snprintf(buf, len, "SIG%s", abbrev);
	else
		snprintf(buf, len, "unknown");
	return buf;
}

static void
describe_exit(int st, char *buf, size_t len)
{
	char name[32];
	if (st == -1)
		snprintf(buf, len, "plugin process ended (status lost)");
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "plugin process killed by signal %d (%s)",
			 WTERMSIG(st),
			 signal_name(WTERMSIG(st), name, sizeof(name)));
	else
		snprintf(buf, len,
			 "plugin process exited with status %d before run() "
			 "returned",
			 WEXITSTATUS(st));
}

static enum berth_run_result
map_result(struct iso_run *ir, char *err, size_t errlen)
{
	switch (ir->code) {
	case BERTH_RUN_SUCCESS:
	case BERTH_RUN_STOPPED:
		return (enum berth_run_result)ir->code;
	case BERTH_RUN_ERROR:
		snprintf(err, errlen, "%s",
			 ir->result_err[0] ? ir->result_err
					   : "run() failed without a message");
		return BERTH_RUN_ERROR;
	default:
		snprintf(err, errlen, "run() returned unknown result %d%s%s",
			 ir->code, ir->result_err[0] ? ": " : "",
			 ir->result_err);
		return BERTH_RUN_ERROR;
	}
}

static void
job_line(struct iso_run *ir, int level, const char *msg)
{
	const struct hostapi_run_hooks *h = ir->hooks;
	if (h && h->log)
		h->log(h->opaque, level, msg);
	else
		blog_write(level, ir->t->name, 0, "%s", msg);
}

enum berth_run_result
isolate_run(struct job_type *t, const struct hostapi_job *job,
	    const struct hostapi_run_hooks *hooks, int stop_grace_seconds,
	    char *err, size_t errlen)
{
	char sink[8];
	if (!err || !errlen) {
		err = sink;
		errlen = sizeof(sink);
	}
	err[0] = '\0';
	struct iso_run ir;
	memset(&ir, 0, sizeof(ir));
	ir.t = t;
	ir.hooks = hooks;
	ir.fd = -1;
	ir.pidfd = -1;
	ir.stop_grace_ms = (int64_t)(stop_grace_seconds > 0
					     ? stop_grace_seconds
					     : DEFAULT_STOP_GRACE_S) *
			   1000;
	char why[320];
	if (spawn_runner(&ir, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "cannot start the plugin process: %s",
			 why);
		return BERTH_RUN_ERROR;
	}
	ir.now = util_monotonic_ms();
	if (t->max_run_seconds > 0)
		ir.run_deadline = ir.now + t->max_run_seconds * 1000;
	queue_job(&ir, job);
	supervise(&ir);
	if (ir.fd >= 0)
		close(ir.fd);
	if (ir.pidfd >= 0)
		close(ir.pidfd);
	iso_buf_fini(&ir.in);
	iso_buf_fini(&ir.out);

	char ended[160];
	describe_exit(ir.wstatus, ended, sizeof(ended));
	bool clean = ir.wstatus != -1 && WIFEXITED(ir.wstatus) &&
		     WEXITSTATUS(ir.wstatus) == 0;
	if (ir.have_result) {
		if (!clean && ir.wstatus != -1) {
			char line[300];
			snprintf(line, sizeof(line),
				 "after run() returned, %s%s",
				 WIFSIGNALED(ir.wstatus) ? "" : "the ",
				 WIFSIGNALED(ir.wstatus)
					 ? ended
					 : "plugin process exited non-zero");
			job_line(&ir, BERTH_LOG_WARNING, line);
		}
		return map_result(&ir, err, errlen);
	}
	switch (ir.reason) {
	case KILL_STOP:
		job_line(&ir, BERTH_LOG_WARNING, ir.reason_text);
		return BERTH_RUN_STOPPED;
	case KILL_MAX_RUN:
	case KILL_MAX_RSS:
	case KILL_PROTOCOL:
		snprintf(err, errlen, "%s", ir.reason_text);
		return BERTH_RUN_ERROR;
	default:
		snprintf(err, errlen, "%s", ended);
		return BERTH_RUN_ERROR;
	}
}

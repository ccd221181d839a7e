/* watch.c - berthctl watch: queues, pools and busy workers redrawn every
 * --interval seconds on the terminal's alternate screen, as asynq dash or
 * sidekiqmon. The terminal is put in raw mode (no echo, no line editing,
 * signals kept) and restored on every way out: q, Ctrl-C (SIGINT, or the
 * byte when signals are off), SIGTERM, SIGHUP, and exit(). Keys are read
 * between refreshes and while a request is in flight (the HTTP client's
 * cancel callback), so q answers at once even when the daemon is slow. */
#include "ctl/ctl.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/util.h"

#define MAX_POOLS_SHOWN 32

static volatile sig_atomic_t got_signal; /* SIGINT, SIGTERM, SIGHUP */
static volatile sig_atomic_t got_winch;
static struct termios saved_tty;
static bool tty_raw;

static void
on_signal(int sig)
{
	if (sig == SIGWINCH)
		got_winch = 1;
	else
		got_signal = 1;
}

static void
write_all(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void
tty_restore(void)
{
	if (!tty_raw)
		return;
	tty_raw = false;
	static const char leave[] = "\033[?25h\033[?1049l";
	write_all(leave, sizeof(leave) - 1);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
}

static int
tty_enter(void)
{
	if (tcgetattr(STDIN_FILENO, &saved_tty) < 0)
		return -1;
	struct termios raw = saved_tty;
	raw.c_iflag &= ~(tcflag_t)(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
	raw.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN);
	raw.c_cflag |= CS8;
	raw.c_cc[VMIN] = 0;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) < 0)
		return -1;
	tty_raw = true;
	atexit(tty_restore);
	static const char enter[] = "\033[?1049h\033[?25l\033[H\033[2J";
	write_all(enter, sizeof(enter) - 1);
	return 0;
}

/* ---- keys ---------------------------------------------------------------- */

enum key_result { KEY_NONE, KEY_QUIT, KEY_REFRESH };

/* Reads what is waiting on the terminal, without blocking. */
static enum key_result
read_keys(void)
{
	enum key_result k = KEY_NONE;
	char buf[64];
	ssize_t n;
	while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == 'q' || buf[i] == 'Q' || buf[i] == 3)
				return KEY_QUIT;
			if (buf[i] == 'r' || buf[i] == 'R')
				k = KEY_REFRESH;
		}
	return k;
}

struct watch {
	struct ctl *c;
	bool quit;
	bool refresh;
	long interval_ms;
};

/* The HTTP client's cancel callback: a key or a signal ends the wait. */
static bool
watch_cancel(void *ud)
{
	struct watch *w = ud;
	if (got_signal)
		w->quit = true;
	enum key_result k = read_keys();
	if (k == KEY_QUIT)
		w->quit = true;
	else if (k == KEY_REFRESH)
		w->refresh = true;
	return w->quit;
}

/* ---- one frame ----------------------------------------------------------- */

struct frame {
	struct gbuf b;
	int rows, cols, used;
	bool cut;
};

/* One line (no newline inside), cut to the width; a line past the height
 * is dropped and the frame marked as cut. */
#define BOLD "\033[1m"
#define DIM "\033[2m"

static void
frame_line(struct frame *f, const char *text, const char *sgr)
{
	if (f->used >= f->rows - 1) {
		f->cut = true;
		return;
	}
	char *safe = out_safe(text);
	size_t n = 0;
	int w = 0;
	while (safe[n] && w < f->cols) {
		n++;
		while (((unsigned char)safe[n] & 0xc0) == 0x80)
			n++;
		w++;
	}
	if (sgr)
		gbuf_put(&f->b, sgr, strlen(sgr));
	gbuf_put(&f->b, safe, n);
	if (sgr)
		gbuf_put(&f->b, "\033[0m", 4);
	gbuf_put(&f->b, "\033[K\r\n", 5);
	f->used++;
	free(safe);
}

static void
frame_table(struct frame *f, const struct table *t)
{
	struct gbuf tb = {0};
	table_render(t, &tb, f->cols);
	char *p = tb.p;
	bool head = true;
	while (p && *p) {
		char *e = strchr(p, '\n');
		*e = '\0';
		frame_line(f, p, head ? DIM : NULL); /* header dimmed */
		head = false;
		p = e + 1;
	}
	gbuf_free(&tb);
}

/* A request of the frame; false (with a line saying why) when it failed. */
static bool
frame_get(struct watch *w, struct frame *f, const char *path,
	  struct ctl_reply *r)
{
	struct ctl_request q = {.method = "GET", .path = path};
	int rc = ctl_send(w->c, &q, r, BOLD);
	if (rc) {
		if (!r->cancelled) {
			char *line = xasprintf("cannot reach berthd at %s: "
					       "%s (retrying)",
					       w->c->base, r->err);
			frame_line(f, line, BOLD);
			free(line);
		}
		return false;
	}
	if (!berth_http_is_2xx(r->status) || !r->json) {
		const char *m = json_str(r->json, "message");
		char *line = xasprintf("%s: berthd answered %ld%s%s", path,
				       r->status, m ? ": " : "", m ? m : "");
		frame_line(f, line, BOLD);
		free(line);
		ctl_reply_fini(r);
		return false;
	}
	return true;
}

static void
frame_build(struct watch *w, struct frame *f)
{
	char now[32], every[32], *head;
	out_time(util_now(), now);
	snprintf(every, sizeof(every), "%lds", w->interval_ms / 1000);
	head = xasprintf("berthctl watch  %s  %s  every %s  (q quit, r "
			 "refresh)",
			 w->c->base, now, every);
	frame_line(f, head, BOLD);
	free(head);
	frame_line(f, "", NULL);

	struct ctl_reply q, p;
	if (!frame_get(w, f, "/api/v1/queues", &q))
		return;
	long long pending = 0, running = 0, paused = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(q.json, "queues")) {
		pending += json_i64(it, "pending");
		running += json_i64(it, "in_progress");
		paused += json_bool(it, "paused");
	}
	const cJSON *tot = cJSON_GetObjectItem(q.json, "totals");
	int ntypes = cJSON_GetArraySize(cJSON_GetObjectItem(q.json, "queues"));
	char *line = xasprintf("QUEUES  %d types, %lld pending, %lld running, "
			       "%lld paused; scheduled %lld, retry %lld, "
			       "dead %lld",
			       ntypes, pending, running, paused,
			       (long long)json_i64(tot, "scheduled"),
			       (long long)json_i64(tot, "retry"),
			       (long long)json_i64(tot, "dead"));
	frame_line(f, line, BOLD);
	free(line);
	struct table *t = ops_queues_table(q.json);
	frame_table(f, t);
	table_free(t);
	ctl_reply_fini(&q);
	frame_line(f, "", NULL);

	if (!frame_get(w, f, "/api/v1/pools", &p))
		return;
	frame_line(f, "POOLS", BOLD);
	t = ops_pools_table(p.json);
	frame_table(f, t);
	table_free(t);
	frame_line(f, "", NULL);

	frame_line(f, "BUSY WORKERS", BOLD);
	t = ops_workers_table(true);
	int shown = 0;
	const cJSON *pool;
	cJSON_ArrayForEach(pool, cJSON_GetObjectItem(p.json, "pools")) {
		const char *id = json_str(pool, "pool_id");
		if (!id || json_i64(pool, "busy") <= 0 ||
		    shown++ >= MAX_POOLS_SHOWN || w->quit)
			continue;
		char *path = ctl_path("/api/v1/pools/", id, "/workers");
		struct ctl_reply r;
		struct ctl_request rq = {.method = "GET", .path = path};
		if (ctl_send(w->c, &rq, &r, true) == 0) {
			if (berth_http_is_2xx(r.status) && r.json)
				ops_workers_add(t, r.json, true, BOLD);
			ctl_reply_fini(&r);
		}
		free(path);
	}
	if (table_rows(t))
		frame_table(f, t);
	else
		frame_line(f, "(none)", NULL);
	table_free(t);
	ctl_reply_fini(&p);
}

static void
frame_draw(struct watch *w)
{
	struct winsize ws;
	struct frame f = {.rows = 24, .cols = 80};
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 2 &&
	    ws.ws_col > 10) {
		f.rows = ws.ws_row;
		f.cols = ws.ws_col;
	}
	gbuf_put(&f.b, "\033[H", 3);
	frame_build(w, &f);
	if (f.cut) {
		f.rows++; /* the last line is kept for this */
		frame_line(&f, "... (the terminal is too small for the rest)",
			   NULL);
	}
	gbuf_put(&f.b, "\033[J", 3);
	if (!w->quit)
		write_all(f.b.p, f.b.len);
	gbuf_free(&f.b);
}

/* ---- the loop ------------------------------------------------------------ */

int
cmd_watch(struct ctl *c, struct ctl_args *a)
{
	long long iv = args_int(a, "interval", 1, 1, 3600);
	if (iv < 0)
		return CTL_EUSAGE;
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return usage_error(a, "watch needs a terminal (try "
				      "'berthctl queues' in scripts)");
	struct sigaction sa, old_int, old_term, old_hup, old_winch;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask); /* no SA_RESTART: poll() wakes up */
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	sigaction(SIGWINCH, &sa, &old_winch);
	if (tty_enter() < 0) {
		fprintf(stderr, "berthctl: cannot set up the terminal: %s\n",
			strerror(errno));
		return CTL_EUSAGE;
	}
	struct watch w = {.c = c, .interval_ms = (long)iv * 1000};
	c->cancel = watch_cancel;
	c->cancel_ud = &w;
	while (!w.quit && !got_signal) {
		w.refresh = false;
		got_winch = 0;
		frame_draw(&w);
		int64_t until = util_monotonic_ms() + w.interval_ms;
		while (!w.quit && !w.refresh && !got_signal && !got_winch) {
			int64_t left = until - util_monotonic_ms();
			if (left <= 0)
				break;
			struct pollfd pfd = {.fd = STDIN_FILENO,
					     .events = POLLIN};
			int n = poll(&pfd, 1, (int)left);
			if (n > 0)
				watch_cancel(&w);
		}
	}
	c->cancel = NULL;
	tty_restore();
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	sigaction(SIGWINCH, &old_winch, NULL);
	return CTL_OK;
}

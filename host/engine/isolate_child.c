/* isolate_child.c - the plugin runner (berth-plugin-runner, or berthd
 * --plugin-runner): one job of an isolated type in its own process
 * (isolate.h).
 *
 * Single-threaded. Reads the ISO_JOB frame from ISOLATE_FD, dlopen()s the
 * plugin (the daemon already checked its magic block and tables when it
 * loaded the type; the runner only finds the table by name and copies it
 * as the host does, min(plugin size, host size) bytes into a zeroed
 * struct), calls init() with the manifest's settings, run() with a RUN
 * context whose hooks marshal every call to the daemon, sends ISO_RESULT,
 * calls fini() and _exit()s (no atexit handlers: a leak checker has nothing
 * to say about a process that is thrown away).
 *
 * Stop: the daemon pushes ISO_STOP; berth_stop_requested() looks for it
 * with a non-blocking poll of the socket, so a check costs one system call
 * and no round trip. The daemon's death kills the runner
 * (PR_SET_PDEATHSIG), and so does a broken socket (exit status 125). */
#include "engine/isolate.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/json.h"
#include "common/util.h"
#include "engine/isolate_proto.h"
#include "logs/log.h"
#include "plugins/hostapi.h"

#define RUNNER_ERR_MAX 1024
#define EXIT_BROKEN 125

typedef const struct berth_job_type *const *(*job_types_fn)(size_t *count);

struct runner {
	int fd;
	bool stopped;
	bool property_hook;
	char **values; /* property answers, kept until the run ends */
	size_t n_values;
};

static __attribute__((noreturn)) void
broken(void)
{
	_exit(EXIT_BROKEN);
}

static void
send_or_die(struct runner *r, int type, const void *a, size_t alen,
	    const void *c, size_t clen)
{
	if (iso_send_frame(r->fd, type, a, alen, c, clen) < 0)
		broken();
}

/* Reads frames until one of type want arrives (returned, malloc'ed);
 * ISO_STOP frames on the way are noted. */
static char *
await(struct runner *r, int want, uint32_t *len)
{
	for (;;) {
		int type;
		char *p;
		if (iso_recv_frame(r->fd, ISO_JOB_MAX, &type, &p, len) < 0)
			broken();
		if (type == want)
			return p;
		if (type == ISO_STOP)
			r->stopped = true;
		free(p);
	}
}

/* --- the run hooks: every call goes to the daemon ------------------------- */

static void
hook_log(void *opaque, int level, const char *message)
{
	struct runner *r = opaque;
	unsigned char lv = (unsigned char)level;
	send_or_die(r, ISO_LOG, &lv, 1, message, strlen(message));
}

static int
hook_checkin(void *opaque, const char *message)
{
	struct runner *r = opaque;
	send_or_die(r, ISO_CHECKIN, message, strlen(message), NULL, 0);
	uint32_t len;
	char *p = await(r, ISO_CHECKIN_RC, &len);
	int rc = len >= 1 && p[0] == 0 ? 0 : -1;
	free(p);
	return rc;
}

static bool
hook_stop_requested(void *opaque)
{
	struct runner *r = opaque;
	while (!r->stopped) {
		struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
		int n = poll(&pfd, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		int type;
		char *p;
		uint32_t len;
		if (iso_recv_frame(r->fd, ISO_JOB_MAX, &type, &p, &len) < 0)
			broken();
		if (type == ISO_STOP)
			r->stopped = true;
		free(p);
	}
	return r->stopped;
}

static const char *
hook_property(void *opaque, const char *key)
{
	struct runner *r = opaque;
	if (!r->property_hook)
		return NULL;
	send_or_die(r, ISO_PROPERTY, key, strlen(key), NULL, 0);
	uint32_t len;
	char *p = await(r, ISO_PROPERTY_VAL, &len);
	if (len < 1 || p[0] != 1) {
		free(p);
		return NULL;
	}
	memmove(p, p + 1, len); /* the value, with the NUL after it */
	r->values = xrealloc(r->values, (r->n_values + 1) * sizeof(char *));
	r->values[r->n_values++] = p;
	return p;
}

/* --- one job -------------------------------------------------------------- */

static __attribute__((noreturn)) void
finish(struct runner *r, int code, const char *err)
{
	int32_t c = code;
	send_or_die(r, ISO_RESULT, &c, sizeof(c), err, strlen(err));
	_exit(0);
}

__attribute__((format(printf, 2, 3))) static __attribute__((noreturn)) void
fail(struct runner *r, const char *fmt, ...)
{
	char msg[RUNNER_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	finish(r, BERTH_RUN_ERROR, msg);
}

static const struct berth_job_type *
find_table(struct runner *r, void *h, const char *file, const char *type)
{
	job_types_fn tf = (job_types_fn)dlsym(h, "berth_plugin_job_types");
	size_t n = 0;
	const struct berth_job_type *const *v = tf ? tf(&n) : NULL;
	for (size_t i = 0; v && i < n; i++)
		if (v[i] && v[i]->name && strcmp(v[i]->name, type) == 0)
			return v[i];
	fail(r, "plugin process: %s no longer exports job type %s", file,
	     type);
}

static int64_t
parse_i64(const char *s)
{
	return s ? strtoll(s, NULL, 10) : 0;
}

static __attribute__((noreturn)) void
run_job(struct runner *r, cJSON *job)
{
	const char *file = json_str(job, "file");
	const char *type = json_str(job, "type");
	if (!file || !type)
		fail(r, "plugin process: the job frame names no plugin");
	/* init() already logged its lines once, in the daemon, at load */
	int64_t lv = json_i64(job, "service_level");
	blog_set_level(lv > BLOG_WARNING ? (int)lv : BLOG_WARNING);
	r->property_hook = json_bool(job, "property_hook");

	dlerror();
	void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *de = dlerror();
		fail(r, "plugin process cannot load %s: %s", file,
		     de ? de : "unknown error");
	}
	const struct berth_job_type *tb = find_table(r, h, file, type);
	struct berth_job_type t;
	memset(&t, 0, sizeof(t));
	memcpy(&t, tb, tb->size < sizeof(t) ? tb->size : sizeof(t));
	if (!t.run)
		fail(r, "plugin process: job type %s has no run()", type);

	const cJSON *settings = cJSON_GetObjectItemCaseSensitive(job,
								 "settings");
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(job,
							      "properties");
	void *state = NULL;
	if (t.init) {
		struct hostapi_ctx c;
		struct berth_type_limits lim = {
			.size = sizeof(lim),
			.max_fails = t.max_fails,
			.max_concurrency = t.max_concurrency,
			.priority = t.priority,
			.should_retry = t.should_retry,
		};
		hostapi_ctx_init_load(&c, type, settings, props, &lim);
		int rc = t.init(&c.pub, &state);
		if (rc != 0) {
			char why[HOSTAPI_ERROR_MAX];
			snprintf(why, sizeof(why), "%s",
				 c.last_error[0] ? c.last_error
						 : "the plugin logged no reason");
			hostapi_ctx_fini(&c);
			fail(r, "init() failed in the plugin process "
				"(returned %d): %s",
			     rc, why);
		}
		hostapi_ctx_fini(&c);
	}

	int64_t level = json_i64(job, "log_level");
	struct hostapi_run_hooks hooks = {
		.opaque = r,
		.log_level = (int)level,
		.log = hook_log,
		.checkin = hook_checkin,
		.stop_requested = hook_stop_requested,
		.property = hook_property,
	};
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(job, "params");
	struct hostapi_job hj = {
		.id = json_str(job, "id"),
		.name = json_str(job, "name"),
		.kind = json_str(job, "kind"),
		.revision = parse_i64(json_str(job, "revision")),
		.params = cJSON_IsObject(params) ? params : NULL,
	};
	struct hostapi_ctx c;
	char buf[RUNNER_ERR_MAX];
	memset(buf, 0, sizeof(buf));
	hostapi_ctx_init_run(&c, type, state, settings, props, &hj, &hooks);
	enum berth_run_result res = t.run(&c.pub, hostapi_ctx_params_json(&c),
					  buf, sizeof(buf));
	hostapi_ctx_fini(&c);
	buf[sizeof(buf) - 1] = '\0';
	int32_t code = (int32_t)res;
	/* the result first: a fini() that crashes costs nothing */
	send_or_die(r, ISO_RESULT, &code, sizeof(code), buf, strlen(buf));
	if (t.fini)
		t.fini(state);
	_exit(0);
}

int
isolate_runner_main(int argc, char **argv)
{
	/* descriptors the daemon's libraries opened without O_CLOEXEC */
	close_range(ISOLATE_FD + 1, ~0U, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int a = argc >= 2 && strcmp(argv[1], ISOLATE_RUNNER_ARG) == 0 ? 2 : 1;
	if (argc != a + 2 || getppid() != (pid_t)strtol(argv[a], NULL, 10)) {
		fprintf(stderr, "%s: a plugin runner, started by berthd only\n",
			argv[0]);
		return 2;
	}
	struct runner r = {.fd = ISOLATE_FD};
	long version = strtol(argv[a + 1], NULL, 10);
	if (version != ISO_PROTO_VERSION)
		fail(&r, "the plugin runner %s speaks protocol %d, the daemon "
			 "%ld: it was upgraded under a running berthd; restart "
			 "berthd",
		     argv[0], ISO_PROTO_VERSION, version);
	int type;
	char *p;
	uint32_t len;
	if (iso_recv_frame(r.fd, ISO_JOB_MAX, &type, &p, &len) < 0 ||
	    type != ISO_JOB)
		return EXIT_BROKEN;
	cJSON *job = json_parse(p, len, NULL);
	free(p);
	if (!cJSON_IsObject(job))
		fail(&r, "plugin process: unreadable job frame");
	run_job(&r, job);
}

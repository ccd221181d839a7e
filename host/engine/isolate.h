/* isolate.h - process isolation of job plugins (manifest `isolation:
 * process`): each run of such a type happens in a fresh child process, a
 * "plugin runner", so that a plugin that crashes, calls exit(), hangs or
 * leaks costs one job, never the daemon.
 *
 * The runner is a small executable, berth-plugin-runner, installed next to
 * berthd (it links only libc and cJSON, so it starts in about 1 ms instead
 * of berthd's 6 ms); when it is missing, berthd itself in runner mode
 * (`berthd --plugin-runner`, /proc/self/exe). Either is started with
 * posix_spawn() as `<runner> <daemon pid> <protocol version>` (after
 * --plugin-runner for berthd); it dlopen()s the plugin, calls init(), the
 * one run() and fini(), and talks to the daemon over a socketpair with the
 * frames of isolate_proto.h. The daemon side (isolate_parent.c) applies the
 * runner's log lines, check-ins and property look-ups through the job's run
 * hooks (plugins/hostapi.h), forwards stop requests, enforces the type's
 * max_run_seconds and max_rss_mb, kills a runner that ignores a stop for
 * the stop grace, and turns the way the runner ended into the run's
 * result. See engine/README.md for the design and its measured cost. */
#ifndef BERTH_ISOLATE_H
#define BERTH_ISOLATE_H

#include <stddef.h>

#include <berth/plugin.h>

struct job_type;          /* plugins/plugin_host.h */
struct hostapi_job;       /* plugins/hostapi.h */
struct hostapi_run_hooks; /* plugins/hostapi.h */

/* The argument that turns berthd into a plugin runner (main.c). */
#define ISOLATE_RUNNER_ARG "--plugin-runner"
/* The runner executable, looked for in berthd's own directory. */
#define ISOLATE_RUNNER_EXE "berth-plugin-runner"

/* Runs one job of the isolated type t in a runner process, on the calling
 * (worker) thread, as plugin_run() does in-process: same arguments, same
 * result mapping. In addition, err gets a reason when the runner ended
 * abnormally (BERTH_RUN_ERROR):
 *   plugin process killed by signal 11 (SIGSEGV)
 *   plugin process exited with status 3 before run() returned
 *   plugin process killed: run() exceeded max_run_seconds (5 s)
 *   plugin process killed: RSS 70 MiB exceeded max_rss_mb (64 MiB)
 * A runner still running stop_grace_seconds after the stop reached it is
 * killed and the run reported BERTH_RUN_STOPPED. The caller holds a
 * reference on t. */
enum berth_run_result isolate_run(struct job_type *t,
				  const struct hostapi_job *job,
				  const struct hostapi_run_hooks *hooks,
				  int stop_grace_seconds, char *err,
				  size_t errlen);

/* main() of a plugin runner: argv is {name, pid, version} (berth-plugin-
 * runner) or {name, --plugin-runner, pid, version} (berthd). Returns the
 * process exit status. */
int isolate_runner_main(int argc, char **argv);

#endif

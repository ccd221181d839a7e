/* proc.h - GARBAGE_COLLECTION's child processes: the registry's
 * garbage-collect tool and the read-only window's shell commands, run
 * with their output captured line by line, stoppable and bounded in time.
 *
 * The child gets the plugin's environment, stdin from /dev/null, stdout
 * and stderr into one pipe, default signal dispositions and an empty
 * signal mask (the daemon blocks and ignores some), its own process group
 * (a kill reaches whatever it started) and SIGKILL when the thread that
 * started it ends (PR_SET_PDEATHSIG), and no descriptor of the daemon
 * but those three. It is reaped by pid. */
#ifndef GC_PROC_H
#define GC_PROC_H

#include <stdbool.h>
#include <stddef.h>

enum gc_proc_end {
	GC_PROC_EXITED = 0, /* exited on its own: see status */
	GC_PROC_SIGNALED,   /* killed by a signal it did not get from us */
	GC_PROC_STOPPED,    /* stop() said so: killed */
	GC_PROC_TIMEOUT,    /* ran past timeout_ms: killed */
	GC_PROC_FAILED,     /* could not be started: see err */
};

struct gc_proc {
	/* argv[0] is the program: a path, or a name searched in PATH */
	const char *const *argv;
	long timeout_ms; /* 0: none */
	/* polled every 100 ms; true kills the child (SIGTERM to its group,
	 * SIGKILL kill_grace_ms later) */
	bool (*stop)(void *ud);
	void *stop_ud;
	long kill_grace_ms; /* 0: 5000 */
	/* each output line, without its newline (longer than 4 KiB: cut
	 * into pieces) */
	void (*line)(void *ud, const char *line);
	void *line_ud;
};

/* Runs the child to its end. Returns how it ended; *status is the exit
 * status (GC_PROC_EXITED) or the signal number (the others). */
enum gc_proc_end gc_proc_run(const struct gc_proc *p, int *status, char *err,
			     size_t errlen);

/* argv[0] resolved against PATH when it has no '/': the first executable
 * regular file; false when none. */
bool gc_proc_which(const char *name, char *out, size_t outlen);

#endif /* GC_PROC_H */

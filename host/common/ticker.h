/* ticker.h - the one background-loop mechanism of the daemon: a stop flag,
 * a mutex and a condition variable on CLOCK_MONOTONIC, so a loop sleeps
 * until its next deadline, is woken early by ticker_kick (new work) and
 * returns at once from ticker_sleep when ticker_stop was called. Wall-clock
 * jumps (NTP, an operator's `date -s`) never stretch or shorten a sleep.
 *
 * Every periodic thread of berthd (reaper, heartbeat, periodic enqueuer,
 * hook retries, log sweeper, requeuer, recovery) waits through one of
 * these. Thread-safe; a ticker is embedded in its owner and set up with
 * ticker_init / ticker_fini. */
#ifndef BERTH_COMMON_TICKER_H
#define BERTH_COMMON_TICKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct ticker {
	pthread_mutex_t mu;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	atomic_bool stopping;
	bool kicked; /* under mu: a kick not yet consumed by a sleep */
};

void ticker_init(struct ticker *t);
void ticker_fini(struct ticker *t);

/* Sleeps up to ms milliseconds (<= 0: only checks). Returns early when
 * kicked (the kick is consumed) or stopping. Returns true when the ticker
 * is stopping: the loop should end. */
bool ticker_sleep(struct ticker *t, int64_t ms);
/* Sleeps until the absolute monotonic deadline (ticker_deadline_in). */
bool ticker_sleep_until(struct ticker *t, const struct timespec *deadline);
/* Wakes a sleeping loop once (a kick with no sleeper is kept for the next
 * sleep, so no wake-up is lost). */
void ticker_kick(struct ticker *t);
/* Sets the stop flag and wakes every sleeper. Idempotent. */
void ticker_stop(struct ticker *t);
bool ticker_stopping(struct ticker *t);

/* CLOCK_MONOTONIC now + ms, for pthread_cond_timedwait on a condition
 * variable created with CLOCK_MONOTONIC (ticker_cond_init). */
struct timespec ticker_deadline_in(int64_t ms);
/* Initialises a condition variable that waits on CLOCK_MONOTONIC, for
 * modules that need their own condition beside a ticker. */
void ticker_cond_init(pthread_cond_t *c);

#endif

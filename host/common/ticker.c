/* ticker.c - see ticker.h. */
#include "common/ticker.h"

#include <stdio.h>
#include <stdlib.h>

void
ticker_cond_init(pthread_cond_t *c)
{
	pthread_condattr_t a;
	if (pthread_condattr_init(&a) != 0 ||
	    pthread_condattr_setclock(&a, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(c, &a) != 0) {
		fprintf(stderr, "berthd: cannot create a condition variable\n");
		abort();
	}
	pthread_condattr_destroy(&a);
}

void
ticker_init(struct ticker *t)
{
	pthread_mutex_init(&t->mu, NULL);
	ticker_cond_init(&t->cond);
	atomic_init(&t->stopping, false);
	t->kicked = false;
}

void
ticker_fini(struct ticker *t)
{
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->mu);
}

struct timespec
ticker_deadline_in(int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ms < 0)
		ms = 0;
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

bool
ticker_sleep_until(struct ticker *t, const struct timespec *deadline)
{
	pthread_mutex_lock(&t->mu);
	while (!atomic_load(&t->stopping) && !t->kicked &&
	       pthread_cond_timedwait(&t->cond, &t->mu, deadline) == 0)
		;
	t->kicked = false;
	bool stop = atomic_load(&t->stopping);
	pthread_mutex_unlock(&t->mu);
	return stop;
}

bool
ticker_sleep(struct ticker *t, int64_t ms)
{
	struct timespec ts = ticker_deadline_in(ms);
	return ticker_sleep_until(t, &ts);
}

void
ticker_kick(struct ticker *t)
{
	pthread_mutex_lock(&t->mu);
	t->kicked = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->mu);
}

void
ticker_stop(struct ticker *t)
{
	pthread_mutex_lock(&t->mu);
	atomic_store(&t->stopping, true);
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->mu);
}

bool
ticker_stopping(struct ticker *t)
{
	return atomic_load(&t->stopping);
}

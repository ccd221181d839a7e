/* metrics_history.c - the per-minute ring of the last hour; see
 * metrics_history.h.
 *
 * The ring always holds METRICS_HISTORY_MINUTES consecutive minutes:
 * ring[head] is the newest, ring[(head - k) mod N] starts 60 * k seconds
 * earlier. Moving to a later minute zeroes the buckets it passes. */
#include "metrics/metrics_history.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/ticker.h"
#include "logs/log.h"

#define MH_N METRICS_HISTORY_MINUTES

struct mh_ring {
	struct metrics_bucket b[MH_N];
	size_t head;
	struct metrics_counts last; /* the totals at the last sample */
};

struct metrics_history {
	pthread_mutex_t mu; /* guards ring */
	struct mh_ring ring;
	struct ticker tick;
	int64_t period_ms; /* METRICS_HISTORY_SAMPLE_SECONDS, tests: less */
	pthread_t thread;
	bool started;
};

static int64_t
minute_of(int64_t t)
{
	int64_t r = t % 60;
	return r < 0 ? t - r - 60 : t - r;
}

/* a - b per field; 0 where a total went down (never for these counters,
 * but a sample must not add 2^64 - 1). */
static void
counts_add_delta(struct metrics_counts *acc, const struct metrics_counts *a,
		 const struct metrics_counts *b)
{
#define MH_ADD(f) acc->f += a->f >= b->f ? a->f - b->f : 0
	MH_ADD(submitted);
	MH_ADD(started);
	MH_ADD(success);
	MH_ADD(error);
	MH_ADD(stopped);
#undef MH_ADD
}

/* Every bucket empty, the newest at minute m. */
static void
ring_reset(struct mh_ring *r, int64_t m)
{
	for (size_t k = 0; k < MH_N; k++) {
		struct metrics_bucket *b = &r->b[(r->head + MH_N - k) % MH_N];
		memset(b, 0, sizeof(*b));
		b->t = m - 60 * (int64_t)k;
	}
}

static void
ring_sample(struct mh_ring *r, int64_t now, const struct metrics_counts *cum)
{
	counts_add_delta(&r->b[r->head].n, cum, &r->last);
	r->last = *cum;
	int64_t m = minute_of(now);
	int64_t newest = r->b[r->head].t;
	if (m <= newest)
		return; /* the same minute, or the clock went back */
	int64_t steps = (m - newest) / 60;
	if (steps >= MH_N) {
		ring_reset(r, m);
		return;
	}
	for (int64_t i = 1; i <= steps; i++) {
		r->head = (r->head + 1) % MH_N;
		struct metrics_bucket *b = &r->b[r->head];
		memset(b, 0, sizeof(*b));
		b->t = newest + 60 * i;
	}
}

struct metrics_history *
metrics_history_new(int64_t now, const struct metrics_counts *base)
{
	struct metrics_history *h = xcalloc(1, sizeof(*h));
	pthread_mutex_init(&h->mu, NULL);
	ticker_init(&h->tick);
	h->period_ms = METRICS_HISTORY_SAMPLE_SECONDS * 1000;
	ring_reset(&h->ring, minute_of(now));
	if (base)
		h->ring.last = *base;
	return h;
}

void
metrics_history_free(struct metrics_history *h)
{
	if (!h)
		return;
	metrics_history_stop(h);
	ticker_fini(&h->tick);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

void
metrics_history_sample(struct metrics_history *h, int64_t now,
		       const struct metrics_counts *cum)
{
	pthread_mutex_lock(&h->mu);
	ring_sample(&h->ring, now, cum);
	pthread_mutex_unlock(&h->mu);
}

size_t
metrics_history_read(struct metrics_history *h, int64_t now,
		     const struct metrics_counts *cum, size_t minutes,
		     struct metrics_bucket *out)
{
	if (minutes < 1)
		minutes = 1;
	if (minutes > MH_N)
		minutes = MH_N;
	struct mh_ring r;
	pthread_mutex_lock(&h->mu);
	r = h->ring;
	pthread_mutex_unlock(&h->mu);
	ring_sample(&r, now, cum);
	for (size_t i = 0; i < minutes; i++)
		out[i] = r.b[(r.head + MH_N - (minutes - 1 - i)) % MH_N];
	return minutes;
}

size_t
metrics_history_read_now(struct metrics_history *h, size_t minutes,
			 struct metrics_bucket *out, int64_t *now)
{
	struct metrics_counts cum;
	metrics_counts_read(&cum);
	*now = util_now();
	return metrics_history_read(h, *now, &cum, minutes, out);
}

/* --- the sampler --------------------------------------------------------- */

void
metrics_history_set_period_ms(struct metrics_history *h, int64_t ms)
{
	h->period_ms = ms > 0 ? ms : METRICS_HISTORY_SAMPLE_SECONDS * 1000;
}

/* Milliseconds to the next wall-clock multiple of the sample period. */
static int64_t
ms_to_next_sample(int64_t period)
{
	int64_t now = util_now_ms();
	int64_t r = now % period;
	if (r < 0)
		r += period;
	return period - r;
}

static void *
sampler_main(void *arg)
{
	struct metrics_history *h = arg;
	while (!ticker_sleep(&h->tick, ms_to_next_sample(h->period_ms))) {
		struct metrics_counts cum;
		metrics_counts_read(&cum);
		metrics_history_sample(h, util_now(), &cum);
	}
	return NULL;
}

int
metrics_history_start(struct metrics_history *h, struct berr *err)
{
	if (h->started)
		return 0;
	if (ticker_stopping(&h->tick)) {
		/* started again after a stop */
		ticker_fini(&h->tick);
		ticker_init(&h->tick);
	}
	if (pthread_create(&h->thread, NULL, sampler_main, h) != 0)
		return berr_set(err, "cannot start the metrics history "
				"sampler thread");
	h->started = true;
	log_debug("metrics history: a sample every %d s, %d minutes kept",
		  METRICS_HISTORY_SAMPLE_SECONDS, METRICS_HISTORY_MINUTES);
	return 0;
}

void
metrics_history_stop(struct metrics_history *h)
{
	if (!h || !h->started)
		return;
	ticker_stop(&h->tick);
	pthread_join(h->thread, NULL);
	h->started = false;
}

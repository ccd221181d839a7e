/* metrics_history.h - the last hour of this daemon's job figures, one
 * bucket per minute, for GET /api/v1/metrics/history and the dashboard's
 * overview chart.
 *
 * Nothing on the job path changes: the history is derived from the
 * process's running totals (metrics_counts_read in metrics.h: the
 * task_total counters by status, the runs started, the jobs submitted) by
 * a sampler thread that wakes every METRICS_HISTORY_SAMPLE_SECONDS on a
 * common/ticker.c ticker, at wall-clock multiples of 10 s. Each sample
 * adds what the totals grew by since the previous sample to the bucket of
 * the previous sample's minute, then moves the newest bucket to the
 * sample's minute when the minute changed (the buckets in between stay
 * zero). As samples fall on :00, :10, ... :50, a run lands in the minute
 * it finished in, give or take the sampler's wake-up delay.
 *
 * A read adds what the totals grew by since the last sample (the same
 * rule, on a copy), so the current minute is exact at the time of the
 * read.
 *
 * The ring is a fixed array of METRICS_HISTORY_MINUTES buckets inside the
 * history, allocated once by metrics_history_new; samples and reads take
 * one short mutex and allocate nothing. Times are unix seconds; a clock
 * that goes back leaves the newest bucket where it is; one that jumps
 * forward by an hour or more starts over with empty buckets. */
#ifndef BERTH_METRICS_HISTORY_H
#define BERTH_METRICS_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "metrics/metrics.h"

#define METRICS_HISTORY_MINUTES 60
#define METRICS_HISTORY_SAMPLE_SECONDS 10

/* One minute: t = its start (unix seconds, a multiple of 60), n = what
 * happened in it. */
struct metrics_bucket {
	int64_t t;
	struct metrics_counts n;
};

struct metrics_history;

/* A history whose newest bucket is now's minute, taking the totals base
 * as its starting point (what they held before counts nowhere). */
struct metrics_history *metrics_history_new(int64_t now,
					    const struct metrics_counts *base);
/* Stops the sampler (if started) and frees. NULL-safe. */
void metrics_history_free(struct metrics_history *h);

/* One sample at now with the totals cum (see above). Thread-safe. */
void metrics_history_sample(struct metrics_history *h, int64_t now,
			    const struct metrics_counts *cum);

/* The last `minutes` buckets (1..METRICS_HISTORY_MINUTES; other values
 * are clamped) up to now's minute, oldest first, into out, as a sample
 * at now with the totals cum would leave them (the history itself is not
 * changed). Minutes before the history started count zero. Returns the
 * number of buckets written (= minutes). Thread-safe. */
size_t metrics_history_read(struct metrics_history *h, int64_t now,
			    const struct metrics_counts *cum, size_t minutes,
			    struct metrics_bucket *out);

/* Same at util_now() with the process's totals (metrics_counts_read);
 * *now gets the time used. */
size_t metrics_history_read_now(struct metrics_history *h, size_t minutes,
				struct metrics_bucket *out, int64_t *now);

/* Starts the sampler thread: every 10 s (at wall-clock multiples of 10 s)
 * metrics_history_sample(h, util_now(), the process's totals). Returns 0,
 * or -1 with err. */
int metrics_history_start(struct metrics_history *h, struct berr *err);
/* Tests: the sampler's period in ms instead of 10 s (before
 * metrics_history_start; samples fall on wall-clock multiples of it). */
void metrics_history_set_period_ms(struct metrics_history *h, int64_t ms);
/* Stops and joins the sampler thread (a no-op when not started). */
void metrics_history_stop(struct metrics_history *h);

#endif

/* test_metrics_history.c - the per-minute ring of the last hour
 * (host/metrics/metrics_history.c) with an injected clock: a bucket per
 * minute with what the totals grew by, roll-over into the next minute
 * and over skipped minutes, the 60-minute wrap (150 minutes, each bucket
 * holding its own figure), a jump of an hour or more, a clock that goes
 * back, the live current minute of a read; then the process's counters
 * bumped from 8 threads while samples (minutes passing) and reads run,
 * every run counted exactly once; and the sampler thread on a short
 * period. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "metrics/metrics.h"
#include "metrics/metrics_history.h"
#include "testlib.h"

#define N METRICS_HISTORY_MINUTES
/* a minute's start: 1700000000 is 20 s into its minute */
#define M0 ((int64_t)1699999980)

static struct metrics_counts
counts(uint64_t sub, uint64_t st, uint64_t ok, uint64_t err, uint64_t stop)
{
	return (struct metrics_counts){.submitted = sub, .started = st,
				       .success = ok, .error = err,
				       .stopped = stop};
}

static bool
counts_eq(const struct metrics_counts *a, const struct metrics_counts *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* out[0..n) holds consecutive minutes ending at last_t. */
static bool
contiguous(const struct metrics_bucket *b, size_t n, int64_t last_t)
{
	for (size_t i = 0; i < n; i++)
		if (b[i].t != last_t - 60 * (int64_t)(n - 1 - i))
			return false;
	return true;
}

static void
test_rollover(void)
{
	struct metrics_counts base = counts(7, 7, 5, 1, 1);
	struct metrics_history *h = metrics_history_new(M0 + 5, &base);
	struct metrics_bucket b[N];

	/* what the totals held before the start counts nowhere */
	CHECK(metrics_history_read(h, M0 + 6, &base, 3, b) == 3);
	CHECK(contiguous(b, 3, M0));
	for (int i = 0; i < 3; i++)
		CHECK(counts_eq(&b[i].n, &(struct metrics_counts){0}));

	struct metrics_counts c = counts(10, 9, 7, 2, 1);
	metrics_history_sample(h, M0 + 15, &c);
	c = counts(11, 10, 8, 2, 1);
	metrics_history_sample(h, M0 + 25, &c);
	/* a read adds what grew since the last sample, without keeping it */
	struct metrics_counts live = counts(12, 11, 8, 3, 1);
	CHECK(metrics_history_read(h, M0 + 30, &live, 2, b) == 2);
	CHECK(contiguous(b, 2, M0));
	CHECK(counts_eq(&b[1].n, &(struct metrics_counts){5, 4, 3, 2, 0}));
	CHECK(metrics_history_read(h, M0 + 30, &c, 2, b) == 2);
	CHECK(counts_eq(&b[1].n, &(struct metrics_counts){4, 3, 3, 1, 0}));

	/* the next minute: what grew since the sample at M0+25 belongs to
	 * M0 (samples fall on :00, :10, ...), the new minute starts empty */
	c = counts(13, 12, 10, 3, 1);
	metrics_history_sample(h, M0 + 60, &c);
	CHECK(metrics_history_read(h, M0 + 61, &c, 3, b) == 3);
	CHECK(contiguous(b, 3, M0 + 60));
	CHECK(counts_eq(&b[0].n, &(struct metrics_counts){0}));
	CHECK(counts_eq(&b[1].n, &(struct metrics_counts){6, 5, 5, 2, 0}));
	CHECK(counts_eq(&b[2].n, &(struct metrics_counts){0}));
	c = counts(13, 13, 10, 3, 2);
	metrics_history_sample(h, M0 + 70, &c);
	CHECK(metrics_history_read(h, M0 + 75, &c, 1, b) == 1);
	CHECK(b[0].t == M0 + 60);
	CHECK(counts_eq(&b[0].n, &(struct metrics_counts){0, 1, 0, 0, 1}));

	/* a read in a later minute than the last sample moves on in its
	 * copy: two empty minutes, the newest holding nothing yet */
	CHECK(metrics_history_read(h, M0 + 185, &c, 3, b) == 3);
	CHECK(contiguous(b, 3, M0 + 180));
	CHECK(b[0].n.stopped == 1 && b[0].t == M0 + 60);
	CHECK(counts_eq(&b[1].n, &(struct metrics_counts){0}));
	CHECK(counts_eq(&b[2].n, &(struct metrics_counts){0}));
	/* ... and did not change the history */
	CHECK(metrics_history_read(h, M0 + 76, &c, 2, b) == 2);
	CHECK(contiguous(b, 2, M0 + 60));
	CHECK(b[0].n.success == 5 && b[1].n.stopped == 1);

	/* skipped minutes stay zero */
	c = counts(14, 14, 11, 3, 2);
	metrics_history_sample(h, M0 + 4 * 60 + 1, &c);
	CHECK(metrics_history_read(h, M0 + 4 * 60 + 2, &c, 5, b) == 5);
	CHECK(contiguous(b, 5, M0 + 240));
	CHECK(b[0].n.success == 5);
	CHECK(b[1].n.success == 1 && b[1].n.started == 2);
	for (int i = 2; i < 5; i++)
		CHECK(counts_eq(&b[i].n, &(struct metrics_counts){0}));

	/* a clock that goes back leaves the newest bucket where it is */
	c = counts(15, 14, 11, 3, 2);
	metrics_history_sample(h, M0 + 30, &c);
	CHECK(metrics_history_read(h, M0 + 4 * 60 + 3, &c, 1, b) == 1);
	CHECK(b[0].t == M0 + 240 && b[0].n.submitted == 1);

	/* minutes out of range are clamped */
	CHECK(metrics_history_read(h, M0 + 4 * 60 + 3, &c, 0, b) == 1);
	CHECK(metrics_history_read(h, M0 + 4 * 60 + 3, &c, 1000, b) == N);
	CHECK(contiguous(b, N, M0 + 240));
	metrics_history_free(h);
}

/* 150 minutes, one sample at second 0 of each (and one at second 30):
 * minute k finishes k runs, started k + 1; the ring keeps the last 60, in
 * order. */
static void
test_wrap(void)
{
	struct metrics_history *h = metrics_history_new(M0, NULL);
	struct metrics_counts c = {0};
	const int minutes = 150;
	for (int k = 0; k < minutes; k++) {
		int64_t t = M0 + 60 * (int64_t)k;
		c.started += 1;
		metrics_history_sample(h, t + 30, &c);
		c.success += (uint64_t)k;
		c.started += (uint64_t)k;
		metrics_history_sample(h, t + 60, &c); /* closes minute k */
	}
	struct metrics_bucket b[N];
	int64_t now = M0 + 60 * (int64_t)minutes;
	CHECK(metrics_history_read(h, now + 5, &c, N, b) == N);
	CHECK(contiguous(b, N, now));
	bool ok = true;
	for (int i = 0; i < N - 1; i++) {
		uint64_t k = (uint64_t)(minutes - (N - 1) + i);
		if (b[i].n.success != k || b[i].n.started != k + 1) {
			ok = false;
			fprintf(stderr, "bucket %d: success %llu started %llu, "
				"want %llu %llu\n", i,
				(unsigned long long)b[i].n.success,
				(unsigned long long)b[i].n.started,
				(unsigned long long)k,
				(unsigned long long)(k + 1));
		}
	}
	CHECK(ok);
	CHECK(counts_eq(&b[N - 1].n, &(struct metrics_counts){0}));

	/* an hour or more later: every bucket empty, ending at now */
	now += 60 * 60 + 7;
	c.error += 3;
	metrics_history_sample(h, now, &c);
	CHECK(metrics_history_read(h, now, &c, N, b) == N);
	CHECK(contiguous(b, N, now - 7));
	ok = true;
	for (int i = 0; i < N; i++)
		ok = ok && counts_eq(&b[i].n, &(struct metrics_counts){0});
	CHECK(ok);
	/* exactly 59 minutes later: one bucket is kept */
	c.error += 2;
	metrics_history_sample(h, now + 1, &c);
	metrics_history_sample(h, now - 7 + 59 * 60, &c);
	CHECK(metrics_history_read(h, now - 7 + 59 * 60, &c, N, b) == N);
	CHECK(contiguous(b, N, now - 7 + 59 * 60));
	CHECK(b[0].t == now - 7 && b[0].n.error == 2);
	metrics_history_free(h);
}

/* ---- the process's counters from threads -------------------------------- */

#define THREADS 8
#define PER_THREAD 3000

static atomic_int running;

static void *
bump(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		metrics_jobs_submitted(1);
		metrics_job_running("HIST", 1);
		static const char *const st[] = {"success", "fail", "stop"};
		metrics_task_done("HIST", st[i % 3], 0.001);
		metrics_job_running("HIST", -1);
	}
	atomic_fetch_sub(&running, 1);
	return NULL;
}

static void
sum_buckets(const struct metrics_bucket *b, size_t n,
	    struct metrics_counts *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < n; i++) {
		s->submitted += b[i].n.submitted;
		s->started += b[i].n.started;
		s->success += b[i].n.success;
		s->error += b[i].n.error;
		s->stopped += b[i].n.stopped;
	}
}

static void
test_threads(void)
{
	struct metrics_counts base;
	metrics_counts_read(&base);
	struct metrics_history *h = metrics_history_new(M0, &base);
	atomic_store(&running, THREADS);
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, bump, NULL);
	/* a sample every "10 s" while they run: minutes pass under them;
	 * reads in between never see more than was bumped */
	int64_t t = M0;
	struct metrics_bucket b[N];
	bool bounded = true;
	int overlap = 0; /* samples taken while some thread bumped */
	while ((atomic_load(&running) > 0 || t < M0 + 3 * 60) &&
	       t < M0 + 50 * 60) {
		if (atomic_load(&running) > 0)
			overlap++;
		struct metrics_counts c;
		metrics_counts_read(&c);
		metrics_history_sample(h, t, &c);
		struct metrics_counts s;
		int64_t now;
		metrics_history_read_now(h, N, b, &now);
		metrics_history_read(h, t, &c, N, b);
		sum_buckets(b, N, &s);
		if (s.submitted > THREADS * PER_THREAD ||
		    s.success > THREADS * PER_THREAD / 3)
			bounded = false;
		t += 10;
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	CHECK(bounded);
	fprintf(stderr, "threads: %d samples (%lld s) while they ran\n",
		overlap, (long long)overlap * 10);
	struct metrics_counts c;
	metrics_counts_read(&c);
	metrics_history_sample(h, t, &c);
	CHECK(metrics_history_read(h, t, &c, N, b) == N);
	struct metrics_counts s;
	sum_buckets(b, N, &s);
	const uint64_t all = THREADS * PER_THREAD;
	CHECK_MSG(counts_eq(&s, &(struct metrics_counts){all, all, all / 3,
							  all / 3, all / 3}),
		  "sums %llu %llu %llu %llu %llu",
		  (unsigned long long)s.submitted,
		  (unsigned long long)s.started,
		  (unsigned long long)s.success, (unsigned long long)s.error,
		  (unsigned long long)s.stopped);
	/* the totals themselves */
	CHECK(c.submitted - base.submitted == all);
	CHECK(c.started - base.started == all);
	CHECK(c.success - base.success == all / 3);
	CHECK(c.error - base.error == all / 3);
	CHECK(c.stopped - base.stopped == all / 3);
	metrics_history_free(h);
}

/* The sampler thread on a 50 ms period: what it took in is seen by a
 * read that adds nothing of its own (totals given as the base, below
 * every sampled total: nothing grows). */
static void
test_sampler_thread(void)
{
	struct metrics_counts base;
	metrics_counts_read(&base);
	struct metrics_history *h = metrics_history_new(util_now(), &base);
	metrics_history_set_period_ms(h, 50);
	struct berr err;
	berr_clear(&err);
	CHECK(metrics_history_start(h, &err) == 0);
	CHECK(metrics_history_start(h, &err) == 0); /* idempotent */
	for (int i = 0; i < 5; i++) {
		metrics_jobs_submitted(1);
		metrics_job_running("SAMPLER", 1);
		metrics_task_done("SAMPLER", "fail", 0.01);
		metrics_job_running("SAMPLER", -1);
	}
	struct metrics_bucket b[N];
	struct metrics_counts s = {0};
	int64_t deadline = util_monotonic_ms() + 5000;
	while (util_monotonic_ms() < deadline) {
		metrics_history_read(h, util_now(), &base, N, b);
		sum_buckets(b, N, &s);
		if (s.error == 5)
			break;
		util_sleep_ms(20);
	}
	CHECK_MSG(s.error == 5 && s.submitted == 5 && s.started == 5 &&
			  s.success == 0,
		  "sampled %llu errors", (unsigned long long)s.error);
	int64_t t0 = util_monotonic_ms();
	metrics_history_stop(h);
	CHECK(util_monotonic_ms() - t0 < 1000);
	/* started again after a stop */
	CHECK(metrics_history_start(h, &err) == 0);
	metrics_history_free(h); /* stops it */
}

int
main(void)
{
	test_rollover();
	test_wrap();
	test_threads();
	test_sampler_thread();
	TEST_DONE();
}

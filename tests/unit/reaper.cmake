# Metrics and reaper (host/metrics/metrics.c, host/engine/reaper.c).
# test_metrics: exact exposition lines, escaping, the name prefix, a strict
#   validator of the whole text, counters bumped from 8 threads, and the
#   listener over HTTP with queue lengths from a private redis-server.
# test_reaper: every branch of the spec 9.3 reconciliation against a
#   private redis-server, Periodic exempt, bounded HSCAN over 1000 entries,
#   and the background thread (both loops) with reaper_set_interval.
# test_metrics_history: the per-minute ring of the last hour with an
#   injected clock (roll-over, skipped minutes, the 60-minute wrap, clock
#   jumps), the counters bumped from 8 threads while minutes pass, and the
#   sampler thread on a short period.
# All three are threaded, so they also run under ThreadSanitizer.
berth_unit_test(test_metrics ${BERTH_TEST_SRC}/unit/test_metrics.c
                ${BERTH_TEST_SRC}/unit/redis_harness.c)
berth_unit_test(test_reaper ${BERTH_TEST_SRC}/unit/test_reaper.c
                ${BERTH_TEST_SRC}/unit/redis_harness.c)
berth_unit_test(test_metrics_history
                ${BERTH_TEST_SRC}/unit/test_metrics_history.c)
set_tests_properties(test_metrics test_reaper test_metrics_history
                     PROPERTIES LABELS tsan)

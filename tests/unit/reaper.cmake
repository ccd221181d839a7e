# Metrics and reaper (host/metrics/metrics.c, host/engine/reaper.c).
# test_metrics: exact exposition lines, escaping, the name prefix, a strict
#   validator of the whole text, counters bumped from 8 threads, and the
#   listener over HTTP with queue lengths from a private redis-server.
# test_reaper: every branch of the spec 9.3 reconciliation against a
#   private redis-server, Periodic exempt, bounded HSCAN over 1000 entries,
#   and the background thread (both loops) with reaper_set_interval.
# Both are threaded, so they also run under ThreadSanitizer.
berth_unit_test(test_metrics ${BERTH_TEST_SRC}/unit/test_metrics.c
                ${BERTH_TEST_SRC}/unit/redis_harness.c)
berth_unit_test(test_reaper ${BERTH_TEST_SRC}/unit/test_reaper.c
                ${BERTH_TEST_SRC}/unit/redis_harness.c)
set_tests_properties(test_metrics test_reaper PROPERTIES LABELS tsan)

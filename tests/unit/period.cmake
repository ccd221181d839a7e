# period: the cron parser (table tests) and the periodic scheduler against a
# private redis-server (unix socket, temp dir). The cron fuzz target is in
# tests/fuzz/fuzz.cmake.
berth_unit_test(test_cron ${BERTH_TEST_SRC}/unit/test_cron.c)
berth_unit_test(test_period ${BERTH_TEST_SRC}/unit/test_period.c
                ${BERTH_TEST_SRC}/unit/redis_harness.c)
# test_period races two schedulers from two threads
set_tests_properties(test_period PROPERTIES LABELS tsan)

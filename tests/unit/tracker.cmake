# tracker: job stats save/load/JSON, status CAS, reset, check-in and the
# retry list against a private redis-server (unix socket, temp dir); the
# CAS race runs 8 threads, so it is also run under ThreadSanitizer.
berth_unit_test(test_tracker ${BERTH_TEST_SRC}/unit/test_tracker.c
                ${BERTH_TEST_SRC}/unit/redis_harness.c)
set_tests_properties(test_tracker PROPERTIES LABELS tsan)

# hook agent (host/hooks/hook*.c): payload bytes, ACK, per-job ordering, retries
# and their bounds, outdated events, isolation between jobs, the supersede
# policy and persistence across agents, against a private redis-server and
# an HTTP receiver inside the test (127.0.0.1, port 0). Threaded, so it
# also runs under ThreadSanitizer.
berth_unit_test(test_hook ${BERTH_TEST_SRC}/unit/test_hook.c
                ${BERTH_TEST_SRC}/unit/redis_harness.c)
set_tests_properties(test_hook PROPERTIES LABELS tsan)

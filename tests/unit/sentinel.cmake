# redis+sentinel:// (host/store/redis_conn.c, redis_sentinel.c): the URL
# parser, and a sentinel pool against a master, a replica and one sentinel
# started on free loopback TCP ports (discovery, SENTINEL FAILOVER followed
# by the watcher, READONLY and the ROLE check). Needs redis-server (the
# sentinel is `redis-server <conf> --sentinel`). Threaded (the watcher), so
# it also runs under ThreadSanitizer.
berth_unit_test(test_sentinel ${BERTH_TEST_SRC}/unit/test_sentinel.c
                ${BERTH_TEST_SRC}/unit/redis_harness.c)
set_tests_properties(test_sentinel PROPERTIES LABELS tsan)

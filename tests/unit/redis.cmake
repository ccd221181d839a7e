# redis_conn: URL parsing, the per-thread pool, embedded redis-server.
# Needs redis-server (apt-get install redis-server, or $BERTH_REDIS_SERVER);
# every test server lives on a unix socket in its own temp dir, so this runs
# in parallel with anything.
berth_unit_test(test_redis ${BERTH_TEST_SRC}/unit/test_redis.c
                ${BERTH_TEST_SRC}/unit/redis_harness.c)

# The engine's wire protocol: Go-exact JSON (gojson.c), the queue message
# (message.c) and the Lua scripts (scripts.c). test_scripts runs every
# script against a private redis-server (redis_harness, unix socket in a
# temp dir), so all three run in parallel with anything.
berth_unit_test(test_gojson ${BERTH_TEST_SRC}/unit/test_gojson.c)
berth_unit_test(test_message ${BERTH_TEST_SRC}/unit/test_message.c)
berth_unit_test(test_scripts ${BERTH_TEST_SRC}/unit/test_scripts.c
                ${BERTH_TEST_SRC}/unit/redis_harness.c)
# The drain's claim and complete scripts (store/drain.c, issue 12) through
# their C API, against a private redis-server.
berth_unit_test(test_drain ${BERTH_TEST_SRC}/unit/test_drain.c
                ${BERTH_TEST_SRC}/unit/redis_harness.c)

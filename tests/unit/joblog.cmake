# Job loggers (host/logs/joblog.c): line format, append and run separators,
# levels, STD_OUTPUT, writes by id from other threads, log ids, tails,
# reading a log back, the sweeper. No Redis; test_rm_rf comes from the
# redis harness. Threads (sweeper, concurrent writers): also under TSan.
berth_unit_test(test_joblog ${BERTH_TEST_SRC}/unit/test_joblog.c
                ${BERTH_TEST_SRC}/unit/redis_harness.c)
set_tests_properties(test_joblog PROPERTIES LABELS tsan)

# LOGSPAM, the test plugin of tests/integration/test_logs.py (large logs,
# follow mode), built into ${CMAKE_BINARY_DIR}/tests/plugins.
set(BERTH_PLUGIN_OUTPUT_DIR ${CMAKE_BINARY_DIR}/tests/plugins)
berth_add_plugin(testplugin_logspam
  SOURCES ${BERTH_TEST_SRC}/plugins/logspam.c OUTPUT_NAME logspam)

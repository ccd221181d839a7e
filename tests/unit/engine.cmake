# The job engine: queue (spec 5) and worker pool (spec 5.4-5.9, 6.2, 9.1,
# 9.2) against a private redis-server and the engine test plugins.
add_subdirectory(${BERTH_TEST_SRC}/plugins/engine
                 ${CMAKE_BINARY_DIR}/tests/plugins-engine-build)
berth_unit_test(test_worker ${BERTH_TEST_SRC}/unit/test_worker.c
                ${BERTH_TEST_SRC}/unit/redis_harness.c)
add_dependencies(test_worker testplugin_engine demo)
set_tests_properties(test_worker PROPERTIES LABELS tsan)

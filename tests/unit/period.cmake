# period: the cron parser (table tests), the periodic scheduler against a
# private redis-server (unix socket, temp dir), and the cron fuzz target
# replaying its corpus (tests/fuzz/corpus/cron) as a plain program.
berth_unit_test(test_cron ${BERTH_TEST_SRC}/unit/test_cron.c)
berth_unit_test(test_period ${BERTH_TEST_SRC}/unit/test_period.c
                ${BERTH_TEST_SRC}/unit/redis_harness.c)
# test_period races two schedulers from two threads
set_tests_properties(test_period PROPERTIES LABELS tsan)

add_executable(fuzz_cron ${BERTH_TEST_SRC}/fuzz/fuzz_cron.c)
target_compile_definitions(fuzz_cron PRIVATE BERTH_FUZZ_REPLAY)
target_link_libraries(fuzz_cron PRIVATE berthcore)
set_target_properties(fuzz_cron PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME fuzz_cron_replay
         COMMAND fuzz_cron ${BERTH_TEST_SRC}/fuzz/corpus/cron)
set_tests_properties(fuzz_cron_replay PROPERTIES TIMEOUT 120)

# With clang: -DBERTH_FUZZ=ON also builds the libFuzzer binary
#   build/tests/fuzz_cron_libfuzzer tests/fuzz/corpus/cron
option(BERTH_FUZZ "Build libFuzzer targets (clang only)" OFF)
if(BERTH_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  add_executable(fuzz_cron_libfuzzer ${BERTH_TEST_SRC}/fuzz/fuzz_cron.c)
  target_compile_options(fuzz_cron_libfuzzer PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_cron_libfuzzer PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_cron_libfuzzer PRIVATE berthcore)
  set_target_properties(fuzz_cron_libfuzzer PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
endif()

# Fuzz targets (tests/fuzz/fuzz_<name>.c), each built two ways:
#   - always, as a plain program (BERTH_FUZZ_REPLAY, main in replay.c)
#     that replays its corpus tests/fuzz/corpus/<name>/ (good inputs, bad
#     inputs and every crasher found so far): ctest fuzz_<name>_replay, in
#     every test run and under the sanitizer builds of tests/run_all.sh;
#   - with -DBERTH_FUZZ=ON -DCMAKE_C_COMPILER=clang, as a libFuzzer binary
#     build/tests/fuzz_<name>_libfuzzer linked against berthcore_fuzz, the
#     host library instrumented for coverage + ASan + UBSan:
#       build/tests/fuzz_submit_libfuzzer -max_total_time=600 \
#           -dict=tests/fuzz/json.dict corpus-work tests/fuzz/corpus/submit
set(BERTH_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(BERTH_FUZZ_TARGETS cron submit config manifest yamltree message tzif
    gojson)

foreach(name ${BERTH_FUZZ_TARGETS})
  add_executable(fuzz_${name} ${BERTH_FUZZ_DIR}/fuzz_${name}.c
                 ${BERTH_FUZZ_DIR}/replay.c)
  target_compile_definitions(fuzz_${name} PRIVATE BERTH_FUZZ_REPLAY
                             BERTH_FUZZ_NAME="${name}")
  target_include_directories(fuzz_${name} PRIVATE ${BERTH_FUZZ_DIR})
  target_link_libraries(fuzz_${name} PRIVATE berthcore)
  set_target_properties(fuzz_${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME fuzz_${name}_replay
           COMMAND fuzz_${name} ${BERTH_FUZZ_DIR}/corpus/${name})
  set_tests_properties(fuzz_${name}_replay PROPERTIES TIMEOUT 120
    LABELS fuzz)

  if(BERTH_FUZZ)
    add_executable(fuzz_${name}_libfuzzer ${BERTH_FUZZ_DIR}/fuzz_${name}.c)
    target_compile_definitions(fuzz_${name}_libfuzzer PRIVATE
                               BERTH_FUZZ_NAME="${name}")
    target_include_directories(fuzz_${name}_libfuzzer PRIVATE
                               ${BERTH_FUZZ_DIR})
    target_compile_options(fuzz_${name}_libfuzzer PRIVATE
                           ${BERTH_FUZZ_FLAGS})
    target_link_libraries(fuzz_${name}_libfuzzer PRIVATE berthcore_fuzz)
    set_target_properties(fuzz_${name}_libfuzzer PROPERTIES
      RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  endif()
endforeach()

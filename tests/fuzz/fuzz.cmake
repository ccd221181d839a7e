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
# The reg_* targets fuzz the registry client library (plugins/registry,
# through its internal.h for the parsers that are not API) and
# repl_resource the REPLICATION plugin's parameters (its resource.c built
# into the target); their libFuzzer builds link an instrumented copy of
# the registry library, berth_registry_fuzz.
set(BERTH_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(BERTH_FUZZ_TARGETS cron submit config manifest yamltree message tzif
    gojson reg_manifest reg_challenge reg_link reg_token reg_error
    repl_resource ops_query)
set(BERTH_FUZZ_REG_TARGETS reg_manifest reg_challenge reg_link reg_token
    reg_error repl_resource)
set(BERTH_FUZZ_REPL_SRC ${PROJECT_SOURCE_DIR}/plugins/replication/resource.c)

if(BERTH_FUZZ)
  find_package(OpenSSL REQUIRED COMPONENTS Crypto)
  get_target_property(BERTH_REGISTRY_SOURCES berth_registry SOURCES)
  add_library(berth_registry_fuzz STATIC ${BERTH_REGISTRY_SOURCES})
  target_compile_options(berth_registry_fuzz PRIVATE ${BERTH_FUZZ_FLAGS})
  target_compile_definitions(berth_registry_fuzz PRIVATE _GNU_SOURCE)
  target_include_directories(berth_registry_fuzz PUBLIC
    ${PROJECT_SOURCE_DIR}/plugins/registry/include)
  target_link_libraries(berth_registry_fuzz PUBLIC Berth::http
                        OpenSSL::Crypto PkgConfig::CJSON Threads::Threads)
endif()

# The registry and plugin parts of a target (fuzzer: the instrumented
# registry library).
function(berth_fuzz_plugin_parts tgt name reglib)
  if(NOT name IN_LIST BERTH_FUZZ_REG_TARGETS)
    return()
  endif()
  target_include_directories(${tgt} PRIVATE
                             ${PROJECT_SOURCE_DIR}/plugins/registry)
  target_link_libraries(${tgt} PRIVATE ${reglib})
  if(name STREQUAL "repl_resource")
    target_sources(${tgt} PRIVATE ${BERTH_FUZZ_REPL_SRC})
    target_include_directories(${tgt} PRIVATE
                               ${PROJECT_SOURCE_DIR}/plugins/replication)
  endif()
endfunction()

foreach(name ${BERTH_FUZZ_TARGETS})
  add_executable(fuzz_${name} ${BERTH_FUZZ_DIR}/fuzz_${name}.c
                 ${BERTH_FUZZ_DIR}/replay.c)
  target_compile_definitions(fuzz_${name} PRIVATE BERTH_FUZZ_REPLAY
                             BERTH_FUZZ_NAME="${name}")
  target_include_directories(fuzz_${name} PRIVATE ${BERTH_FUZZ_DIR})
  target_link_libraries(fuzz_${name} PRIVATE berthcore)
  berth_fuzz_plugin_parts(fuzz_${name} ${name} berth_registry)
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
    berth_fuzz_plugin_parts(fuzz_${name}_libfuzzer ${name}
                            berth_registry_fuzz)
    set_target_properties(fuzz_${name}_libfuzzer PROPERTIES
      RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  endif()
endforeach()

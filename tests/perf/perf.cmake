# Cost checks (tests/perf/, label perf): Redis commands and round trips per
# job (redis_cost.py) and berthd's instructions per job under callgrind
# (instructions.py), each against tests/perf/thresholds.json. Registered in
# the plain build only: a sanitizer build changes the instruction counts,
# and its speed the background timers' share of the Redis figures.
if(BERTH_SANITIZE STREQUAL "")
  find_program(PYTHON3 python3 REQUIRED)
  set(BERTH_PERF_ENV
    "BERTHD=$<TARGET_FILE:berthd>"
    "BERTH_PLUGINS=${CMAKE_BINARY_DIR}/plugins"
    "BERTH_TEST_PLUGINS=${CMAKE_BINARY_DIR}/tests/plugins"
    "BERTH_SOURCE=${PROJECT_SOURCE_DIR}"
    "BERTH_PERF_BUILD=${CMAKE_C_COMPILER_ID} ${CMAKE_C_COMPILER_VERSION} ${CMAKE_BUILD_TYPE}"
    "PYTHONDONTWRITEBYTECODE=1")
  foreach(t redis_cost instructions)
    add_test(NAME perf_${t}
             COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/perf/${t}.py)
    set_tests_properties(perf_${t} PROPERTIES
      LABELS perf
      TIMEOUT 300
      SKIP_RETURN_CODE 77
      ENVIRONMENT "${BERTH_PERF_ENV}")
  endforeach()
endif()

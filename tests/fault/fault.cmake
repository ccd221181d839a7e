# The fault-injection suite (tests/fault/run.py), short form: every
# scenario with a few hundred jobs. The full form (thousands of jobs) is
# run by hand: tests/fault/run.py (see README, Tests).
find_program(PYTHON3 python3 REQUIRED)
add_test(NAME fault_short
         COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/fault/run.py --short)
set_tests_properties(fault_short PROPERTIES
  LABELS fault
  TIMEOUT 1200
  ENVIRONMENT "BERTHD=$<TARGET_FILE:berthd>;BERTH_PLUGINS=${CMAKE_BINARY_DIR}/plugins;BERTH_TEST_PLUGINS=${CMAKE_BINARY_DIR}/tests/plugins;BERTH_SOURCE=${PROJECT_SOURCE_DIR};BERTH_BUILD=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")

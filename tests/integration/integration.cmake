# Integration tests: Python (stdlib only) against a real berthd on port 0
# and a real redis-server on a private unix socket.
find_program(PYTHON3 python3 REQUIRED)
set(BERTH_IT_ENV
  "BERTHD=$<TARGET_FILE:berthd>"
  "BERTH_PLUGINS=${CMAKE_BINARY_DIR}/plugins"
  "BERTH_TEST_PLUGINS=${CMAKE_BINARY_DIR}/tests/plugins"
  "BERTH_SOURCE=${PROJECT_SOURCE_DIR}"
  "BERTH_BUILD_DIR=${CMAKE_BINARY_DIR}"
  "PYTHONDONTWRITEBYTECODE=1")
file(GLOB BERTH_IT_TESTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_*.py)
foreach(t ${BERTH_IT_TESTS})
  get_filename_component(name ${t} NAME_WE)
  add_test(NAME it_${name}
           COMMAND ${PYTHON3} -m unittest -v ${name}
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/integration)
  set_tests_properties(it_${name} PROPERTIES ENVIRONMENT "${BERTH_IT_ENV}"
                       TIMEOUT 600)
endforeach()

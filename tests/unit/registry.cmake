# The registry client (plugins/registry, Berth::registry) against real
# docker-registry processes the test starts on free loopback ports (storage
# in a temporary directory, one with an htpasswd file made with crypt(3),
# one with token auth served by token_server.c: RS256 JWTs with an x5c
# header, signed by a key made at start).
# Exit 77 (skipped) when docker-registry cannot be started. Links only the
# library, as a plugin would. `test_registry --bench 100` measures copy
# throughput between two registries (not part of the suite).
add_executable(test_registry ${BERTH_TEST_SRC}/unit/test_registry.c
               ${BERTH_TEST_SRC}/unit/token_server.c)
target_link_libraries(test_registry PRIVATE Berth::registry crypt)
target_include_directories(test_registry PRIVATE ${BERTH_TEST_SRC}/unit)
set_target_properties(test_registry PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME test_registry COMMAND test_registry)
set_tests_properties(test_registry PROPERTIES
  SKIP_RETURN_CODE 77 TIMEOUT 120)

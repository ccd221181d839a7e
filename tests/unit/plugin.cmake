# The plugin host: manifest-driven loading, ABI checks, reload, DEMO.
berth_unit_test(test_plugin ${BERTH_TEST_SRC}/unit/test_plugin.c)
# berth_test_plugins is defined in tests/plugins/CMakeLists.txt.
add_dependencies(test_plugin berth_test_plugins demo)

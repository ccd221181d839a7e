# RETENTION's rule engine (plugins/retention/policy.c), compiled into the
# test alone (with glob.c): doublestar patterns, the liteMeta parser, the
# evaluation.
berth_unit_test(test_retention_policy
                ${BERTH_TEST_SRC}/unit/test_retention_policy.c
                ${CMAKE_SOURCE_DIR}/plugins/retention/policy.c
                ${CMAKE_SOURCE_DIR}/plugins/retention/glob.c)
target_include_directories(test_retention_policy PRIVATE
                           ${CMAKE_SOURCE_DIR}/plugins/retention)

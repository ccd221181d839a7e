# Unit tests of the configuration layer: berth.yml (config.c) and the
# plugin manifest with the YAML tree underneath (manifest.c, yamltree.c).
# Fixtures live in tests/fixtures/{config,manifest}.
berth_unit_test(test_config ${BERTH_TEST_SRC}/unit/test_config.c)
berth_unit_test(test_manifest ${BERTH_TEST_SRC}/unit/test_manifest.c)

# The installed layout and the Debian package (tests/install/):
#   install_layout  `cmake --install` into a temporary prefix; the installed
#                   berthd checks its installed configuration and starts
#                   with every bundled plugin (private redis, port 0)
#   install_deb     builds the .deb with CPack, installs it with dpkg,
#                   checks it, removes and purges it. It changes the machine
#                   (/usr, /etc/berth, the user berth), so it runs only as
#                   root where dpkg works (CI: Debian 12, root) and is
#                   skipped (exit 77) elsewhere or when a berth package or
#                   its paths are already there. Label "deb"; not in
#                   sanitizer builds (a package of them means nothing).
find_program(BERTH_IT_PYTHON3 python3 REQUIRED)
set(BERTH_INSTALL_ENV
  "BERTH_BUILD=${CMAKE_BINARY_DIR}"
  "BERTH_SOURCE=${PROJECT_SOURCE_DIR}"
  "PYTHONPATH=${CMAKE_CURRENT_SOURCE_DIR}/integration"
  "PYTHONDONTWRITEBYTECODE=1")
add_test(NAME install_layout
         COMMAND ${BERTH_IT_PYTHON3} -m unittest -v test_install
         WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/install)
set_tests_properties(install_layout PROPERTIES
  ENVIRONMENT "${BERTH_INSTALL_ENV}" TIMEOUT 300 LABELS install)
if(BERTH_SANITIZE STREQUAL "")
  add_test(NAME install_deb
           COMMAND ${BERTH_IT_PYTHON3} test_deb.py
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/install)
  set_tests_properties(install_deb PROPERTIES
    ENVIRONMENT "${BERTH_INSTALL_ENV}" TIMEOUT 600 LABELS "install;deb"
    SKIP_RETURN_CODE 77 RUN_SERIAL ON)
endif()

# package.cmake - the Debian package, built with CPack:
#
#   cmake --build build --target package      # -> build/berth_<v>_<arch>.deb
#
# The package holds everything `cmake --install` installs, with the prefix
# /usr: berthd and berth-plugin-runner (/usr/sbin), the bundled plugins
# (/usr/<libdir>/berth/plugins), the SDK (headers, libberth_http.a, CMake
# files), the configuration in /etc/berth (conffiles; plugins.yml points at
# the installed plugins, see install_etc.cmake), berthd.service
# (/usr/lib/systemd/system), the man pages, and whatever else gets an
# install rule later (berthctl, its man page and completion): no list here.
# Maintainer scripts (packaging/deb/): postinst creates the system user
# `berth` and /var/lib/berth, /var/log/berth; remove keeps the data, purge
# removes it. Dependencies come from dpkg-shlibdeps.
#
# Included at the end of the top-level CMakeLists.txt, after every install
# rule.

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "berth")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "Berth")
set(CPACK_PACKAGE_CONTACT "Berth developers <berth@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "job service daemon compatible with Harbor's jobservice")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "Berth runs jobs submitted over a REST API, keeps their state in Redis
and sends status hooks, speaking the API, hooks and Redis layout of
Harbor's jobservice. Job types are shared-object plugins; the bundled
ones and the plugin SDK (headers, HTTP client library, CMake helper) are
included.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# `passwd` (useradd) is in every Debian system; redis-server serves the
# default configuration's `redis_url: embedded`.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "redis-server")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${CMAKE_CURRENT_LIST_DIR}/deb/postinst"
    "${CMAKE_CURRENT_LIST_DIR}/deb/prerm"
    "${CMAKE_CURRENT_LIST_DIR}/deb/postrm"
    "${CMAKE_CURRENT_LIST_DIR}/deb/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# install with DESTDIR and the prefix /usr, so that install_etc.cmake sees
# the final prefix (and puts the configuration into /etc/berth)
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX "/usr")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
# every component in the one package
set(CPACK_DEB_COMPONENT_INSTALL OFF)
include(CPack)

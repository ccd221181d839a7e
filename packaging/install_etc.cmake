# install_etc.cmake - run at install time (`cmake --install`, and CPack for
# the .deb) by the install(CODE) rule of the top-level CMakeLists.txt, once
# the install prefix is known. Installs what depends on the final paths:
#
#   <etc>/berth.yml      etc/berth.yml as it is
#   <etc>/plugins.yml    etc/plugins.yml with plugin_dir set to the
#                        installed plugin directory (<libdir>/berth/plugins;
#                        the source tree keeps ../build/plugins)
#   <prefix>/lib/systemd/system/berthd.service
#                        etc/berthd.service with its paths (/usr/sbin,
#                        /etc/berth) changed to the installed ones
#
# <etc> is /etc/berth for the prefix /usr (the .deb), else
# <prefix>/<sysconfdir>/berth (an absolute CMAKE_INSTALL_SYSCONFDIR wins).
# file(INSTALL) honours DESTDIR and lists the files in install_manifest.txt.
#
# In: BERTH_SOURCE_DIR, BERTH_BINARY_DIR, BERTH_LIBDIR, BERTH_SBINDIR,
#     BERTH_SYSCONFDIR (the GNUInstallDirs values, relative or absolute).

function(berth_abs out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

if(IS_ABSOLUTE "${BERTH_SYSCONFDIR}")
  set(etc "${BERTH_SYSCONFDIR}/berth")
elseif(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(etc "/etc/berth")
else()
  set(etc "${CMAKE_INSTALL_PREFIX}/${BERTH_SYSCONFDIR}/berth")
endif()
berth_abs(libdir "${BERTH_LIBDIR}")
berth_abs(sbindir "${BERTH_SBINDIR}")
set(plugin_dir "${libdir}/berth/plugins")
# one staging directory per destination: installs into two prefixes at
# once (parallel tests) must not share the generated files
string(MD5 dest "${CMAKE_INSTALL_PREFIX}|$ENV{DESTDIR}")
set(stage "${BERTH_BINARY_DIR}/install-etc/${dest}")
file(MAKE_DIRECTORY "${stage}")

# plugins.yml: the one plugin_dir line, pointed at the installed plugins
file(READ "${BERTH_SOURCE_DIR}/etc/plugins.yml" text)
string(REGEX MATCHALL "\nplugin_dir:[^\n]*" lines "${text}")
list(LENGTH lines n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR
    "etc/plugins.yml: expected one top-level plugin_dir line, found ${n}")
endif()
string(REGEX REPLACE "\nplugin_dir:[^\n]*"
       "\n# set by the installation: the installed bundled plugins\nplugin_dir: ${plugin_dir}"
       text "${text}")
file(WRITE "${stage}/plugins.yml" "${text}")

# berthd.service: the installed paths
file(READ "${BERTH_SOURCE_DIR}/etc/berthd.service" unit)
string(REPLACE "/usr/sbin/berthd" "${sbindir}/berthd" unit "${unit}")
string(REPLACE "/etc/berth/" "${etc}/" unit "${unit}")
file(WRITE "${stage}/berthd.service" "${unit}")

file(INSTALL DESTINATION "${etc}" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${BERTH_SOURCE_DIR}/etc/berth.yml" "${stage}/plugins.yml")
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system"
     TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${stage}/berthd.service")

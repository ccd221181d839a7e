# BerthConfig.cmake - find_package(Berth) support for plugin authors.
#
# Installed to <prefix>/<libdir>/cmake/Berth/ next to BerthPlugin.cmake; the
# SDK header is at <prefix>/include/berth/plugin.h. Provides:
#   BERTH_SDK_INCLUDE_DIR   the directory to add to the include path
#   berth_add_plugin()      see BerthPlugin.cmake
#
#   find_package(Berth REQUIRED)
#   berth_add_plugin(hello SOURCES hello.c)

# <prefix>/lib/cmake/Berth -> <prefix>/include; with a multiarch libdir
# (<prefix>/lib/x86_64-linux-gnu/cmake/Berth) the prefix is one level higher.
unset(BERTH_SDK_INCLUDE_DIR)
foreach(_berth_up "../../../include" "../../../../include")
  get_filename_component(_berth_inc "${CMAKE_CURRENT_LIST_DIR}/${_berth_up}"
                         ABSOLUTE)
  if(EXISTS "${_berth_inc}/berth/plugin.h")
    set(BERTH_SDK_INCLUDE_DIR "${_berth_inc}")
    break()
  endif()
endforeach()
unset(_berth_up)
unset(_berth_inc)

if(NOT BERTH_SDK_INCLUDE_DIR)
  set(Berth_FOUND FALSE)
  set(Berth_NOT_FOUND_MESSAGE
    "berth/plugin.h not found relative to ${CMAKE_CURRENT_LIST_DIR}")
  return()
endif()
set(Berth_FOUND TRUE)
include("${CMAKE_CURRENT_LIST_DIR}/BerthPlugin.cmake")

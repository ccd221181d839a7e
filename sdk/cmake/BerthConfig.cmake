# BerthConfig.cmake - find_package(Berth) support for plugin authors.
#
# Installed to <prefix>/<libdir>/cmake/Berth/ next to BerthPlugin.cmake; the
# SDK headers are at <prefix>/include/berth/ (plugin.h, http.h,
# http_plugin.h). Provides:
#   BERTH_SDK_INCLUDE_DIR   the directory to add to the include path
#   berth_add_plugin()      see BerthPlugin.cmake
#   Berth::http             the HTTP client library (<berth/http.h>,
#                           <berth/http_plugin.h>): <libdir>/libberth_http.a,
#                           static and position independent, with libcurl
#                           (found with find_package(CURL)) as its dependency
#   Berth::registry         the OCI Distribution client (<berth/registry.h>):
#                           <libdir>/libberth_registry.a, static and position
#                           independent, bringing Berth::http, OpenSSL's
#                           libcrypto, cJSON (pkg-config libcjson) and
#                           pthreads along
#
#   find_package(Berth REQUIRED)
#   berth_add_plugin(hello SOURCES hello.c)
#   berth_add_plugin(notify SOURCES notify.c LIBRARIES Berth::http)
#   berth_add_plugin(mirror SOURCES mirror.c LIBRARIES Berth::registry)

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

# Berth::http: <libdir>/libberth_http.a, two levels above this file.
if(NOT TARGET Berth::http)
  get_filename_component(_berth_lib
    "${CMAKE_CURRENT_LIST_DIR}/../../libberth_http.a" ABSOLUTE)
  if(NOT EXISTS "${_berth_lib}")
    set(Berth_FOUND FALSE)
    set(Berth_NOT_FOUND_MESSAGE "${_berth_lib} not found")
    unset(_berth_lib)
    return()
  endif()
  include(CMakeFindDependencyMacro)
  find_dependency(CURL)
  add_library(Berth::http STATIC IMPORTED)
  set_target_properties(Berth::http PROPERTIES
    IMPORTED_LOCATION "${_berth_lib}"
    IMPORTED_LINK_INTERFACE_LANGUAGES C
    INTERFACE_INCLUDE_DIRECTORIES "${BERTH_SDK_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES CURL::libcurl)
  unset(_berth_lib)
endif()

# Berth::registry: <libdir>/libberth_registry.a next to libberth_http.a.
if(NOT TARGET Berth::registry)
  get_filename_component(_berth_lib
    "${CMAKE_CURRENT_LIST_DIR}/../../libberth_registry.a" ABSOLUTE)
  if(NOT EXISTS "${_berth_lib}")
    set(Berth_FOUND FALSE)
    set(Berth_NOT_FOUND_MESSAGE "${_berth_lib} not found")
    unset(_berth_lib)
    return()
  endif()
  include(CMakeFindDependencyMacro)
  find_dependency(OpenSSL COMPONENTS Crypto)
  find_dependency(Threads)
  find_dependency(PkgConfig)
  if(NOT TARGET PkgConfig::CJSON)
    pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
  endif()
  add_library(Berth::registry STATIC IMPORTED)
  set_target_properties(Berth::registry PROPERTIES
    IMPORTED_LOCATION "${_berth_lib}"
    IMPORTED_LINK_INTERFACE_LANGUAGES C
    INTERFACE_INCLUDE_DIRECTORIES "${BERTH_SDK_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES
      "Berth::http;OpenSSL::Crypto;PkgConfig::CJSON;Threads::Threads")
  unset(_berth_lib)
endif()

set(Berth_FOUND TRUE)
include("${CMAKE_CURRENT_LIST_DIR}/BerthPlugin.cmake")

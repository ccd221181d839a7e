# httpcommon.cmake - defines the static library berth_httpcommon (the HTTP
# transport shared by the WEBHOOK and SLACK plugins) exactly once, whoever
# includes this file first: httpcommon/CMakeLists.txt, webhook/ or slack/.
# Folder order therefore does not matter. Plugins link it with
#   berth_add_plugin(x SOURCES x.c LIBRARIES berth_httpcommon)
# It is compiled position independent with hidden visibility, so nothing of
# it is exported from the plugins, and it pulls in libcurl.
include_guard(GLOBAL)

if(NOT TARGET berth_httpcommon)
  # the Berth tree's libcurl target when there is one, else FindCURL's
  # (found with global targets so every plugin folder sees it)
  if(TARGET PkgConfig::CURL)
    set(_berth_hc_curl PkgConfig::CURL)
  else()
    if(NOT TARGET CURL::libcurl)
      set(CMAKE_FIND_PACKAGE_TARGETS_GLOBAL ON)
      find_package(CURL REQUIRED)
      unset(CMAKE_FIND_PACKAGE_TARGETS_GLOBAL)
    endif()
    set(_berth_hc_curl CURL::libcurl)
  endif()
  add_library(berth_httpcommon STATIC
              ${CMAKE_CURRENT_LIST_DIR}/httpcommon.c
              ${CMAKE_CURRENT_LIST_DIR}/httpcommon.h
              ${CMAKE_CURRENT_LIST_DIR}/netpolicy.c
              ${CMAKE_CURRENT_LIST_DIR}/netpolicy.h)
  target_include_directories(berth_httpcommon
    PUBLIC ${CMAKE_CURRENT_LIST_DIR} ${BERTH_SDK_INCLUDE_DIR})
  target_link_libraries(berth_httpcommon PUBLIC ${_berth_hc_curl})
  unset(_berth_hc_curl)
  set_target_properties(berth_httpcommon PROPERTIES
    POSITION_INDEPENDENT_CODE ON
    C_VISIBILITY_PRESET hidden)
endif()

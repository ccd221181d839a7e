# BerthPlugin.cmake - berth_add_plugin(), the one way to build a Berth job
# plugin, in-tree and out-of-tree alike.
#
#   berth_add_plugin(<target> SOURCES <src>... [LIBRARIES <lib>...]
#                    [OUTPUT_NAME <name>])
#
# builds <target> as a loadable module <name>.so (default name: <target>):
#   - no "lib" prefix, ".so" suffix, position independent;
#   - hidden visibility: only the SDK entry points (BERTH_EXPORT) are exported;
#   - linked with -Wl,-z,defs: every symbol must resolve against the plugin's
#     own LIBRARIES and libc, so a plugin can never depend on a daemon symbol;
#   - compiled against the SDK header directory ${BERTH_SDK_INCLUDE_DIR};
#   - LIBRARIES Berth::http links the SDK's HTTP client (<berth/http.h>,
#     <berth/http_plugin.h>; a private static copy, libcurl with it);
#   - written to ${BERTH_PLUGIN_OUTPUT_DIR} when that variable is set (the
#     value at the time of the call);
#   - installed into ${BERTH_PLUGIN_INSTALL_DIR} (component "plugins") when
#     that variable is set at the time of the call: the Berth tree sets it
#     for every folder of plugins/, so each bundled plugin is installed
#     (and packaged) without a list; an out-of-tree author may set it too.
#
# BERTH_SDK_INCLUDE_DIR is set by BerthConfig.cmake (find_package(Berth)) or,
# in the Berth source tree, by the top-level CMakeLists.txt.
include_guard(GLOBAL)

if(NOT COMMAND berth_add_plugin)
  function(berth_add_plugin target)
    cmake_parse_arguments(PARSE_ARGV 1 BAP "" "OUTPUT_NAME"
                          "SOURCES;LIBRARIES")
    if(BAP_UNPARSED_ARGUMENTS)
      message(FATAL_ERROR
        "berth_add_plugin(${target}): unknown arguments ${BAP_UNPARSED_ARGUMENTS}")
    endif()
    if(NOT BAP_SOURCES)
      message(FATAL_ERROR "berth_add_plugin(${target}): SOURCES is required")
    endif()
    if(NOT BERTH_SDK_INCLUDE_DIR)
      message(FATAL_ERROR
        "berth_add_plugin(${target}): BERTH_SDK_INCLUDE_DIR is not set; "
        "use find_package(Berth REQUIRED) first")
    endif()

    add_library(${target} MODULE ${BAP_SOURCES})
    target_include_directories(${target} PRIVATE ${BERTH_SDK_INCLUDE_DIR})
    target_link_options(${target} PRIVATE "LINKER:-z,defs")
    if(BAP_LIBRARIES)
      target_link_libraries(${target} PRIVATE ${BAP_LIBRARIES})
    endif()
    set_target_properties(${target} PROPERTIES
      PREFIX ""
      SUFFIX ".so"
      C_VISIBILITY_PRESET hidden
      CXX_VISIBILITY_PRESET hidden
      VISIBILITY_INLINES_HIDDEN ON
      POSITION_INDEPENDENT_CODE ON)
    if(BAP_OUTPUT_NAME)
      set_target_properties(${target} PROPERTIES OUTPUT_NAME ${BAP_OUTPUT_NAME})
    endif()
    if(BERTH_PLUGIN_OUTPUT_DIR)
      set_target_properties(${target} PROPERTIES
        LIBRARY_OUTPUT_DIRECTORY ${BERTH_PLUGIN_OUTPUT_DIR})
    endif()
    if(BERTH_PLUGIN_INSTALL_DIR)
      install(TARGETS ${target}
              LIBRARY DESTINATION ${BERTH_PLUGIN_INSTALL_DIR}
              COMPONENT plugins)
    endif()
  endfunction()
endif()

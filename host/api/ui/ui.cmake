# ui.cmake - the web dashboard (host/api/ui/) embedded into berthd: the
# files are turned into ui_assets.c in the build tree at build time (pure
# CMake, embed.cmake) and compiled into the host library. Included by the
# top-level CMakeLists.txt once berthcore (and berthcore_fuzz) exist.
set(BERTH_UI_DIR ${CMAKE_CURRENT_LIST_DIR})
file(GLOB BERTH_UI_PATHS CONFIGURE_DEPENDS
     ${BERTH_UI_DIR}/*.html ${BERTH_UI_DIR}/*.css ${BERTH_UI_DIR}/*.js
     ${BERTH_UI_DIR}/*.svg)
set(BERTH_UI_FILES "")
foreach(p IN LISTS BERTH_UI_PATHS)
  get_filename_component(n ${p} NAME)
  list(APPEND BERTH_UI_FILES ${n})
endforeach()
set(BERTH_UI_C ${CMAKE_BINARY_DIR}/generated/ui_assets.c)
string(REPLACE ";" "\\;" ui_files_arg "${BERTH_UI_FILES}")
add_custom_command(
  OUTPUT ${BERTH_UI_C}
  COMMAND ${CMAKE_COMMAND} -DUI_DIR=${BERTH_UI_DIR} -DOUT=${BERTH_UI_C}
          "-DUI_FILES=${ui_files_arg}" -P ${BERTH_UI_DIR}/embed.cmake
  DEPENDS ${BERTH_UI_PATHS} ${BERTH_UI_DIR}/embed.cmake
  COMMENT "Embedding the web dashboard (host/api/ui)"
  VERBATIM)
target_sources(berthcore PRIVATE ${BERTH_UI_C})
if(TARGET berthcore_fuzz)
  target_sources(berthcore_fuzz PRIVATE ${BERTH_UI_C})
endif()

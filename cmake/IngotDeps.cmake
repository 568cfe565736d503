# IngotDeps.cmake - find ingot's dependencies, naming the Debian package
# that provides each one when it is missing (scripts/deps.sh installs them).
find_package(PkgConfig QUIET)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config "
                      "(or run scripts/deps.sh)")
endif()
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)

# ingot_require(<VAR> <debian-package> <pkg-config module>...)
macro(ingot_require var debpkg)
  pkg_search_module(${var} QUIET IMPORTED_TARGET ${ARGN})
  if(NOT ${var}_FOUND)
    message(FATAL_ERROR "${var} (${ARGN}) not found: install the Debian "
                        "package '${debpkg}' (or run scripts/deps.sh)")
  endif()
endmacro()

ingot_require(LUA liblua5.4-dev lua5.4 lua-5.4 lua54)
ingot_require(PQ libpq-dev libpq)
ingot_require(HIREDIS libhiredis-dev hiredis)
ingot_require(YAML libyaml-dev yaml-0.1)
ingot_require(MHD libmicrohttpd-dev libmicrohttpd)
ingot_require(JANSSON libjansson-dev jansson)
ingot_require(XXHASH libxxhash-dev libxxhash)

# libcsv ships no pkg-config file.
find_path(CSV_INCLUDE_DIR csv.h)
find_library(CSV_LIBRARY NAMES csv)
if(NOT CSV_INCLUDE_DIR OR NOT CSV_LIBRARY)
  message(FATAL_ERROR "libcsv not found: install the Debian package "
                      "'libcsv-dev' (or run scripts/deps.sh)")
endif()
add_library(ingot::csv UNKNOWN IMPORTED)
set_target_properties(ingot::csv PROPERTIES IMPORTED_LOCATION ${CSV_LIBRARY}
                      INTERFACE_INCLUDE_DIRECTORIES ${CSV_INCLUDE_DIR})

# Tests only.
pkg_search_module(CMOCKA QUIET IMPORTED_TARGET cmocka)
if(NOT CMOCKA_FOUND)
  message(FATAL_ERROR "cmocka not found: install the Debian package "
                      "'libcmocka-dev' (or run scripts/deps.sh)")
endif()

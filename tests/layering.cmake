# The one-way flow bindings -> runtime -> kernels, checked on the sources:
# a kernel sees the runtime only through tide/core.h (kernels/backend.h
# includes it), never the public API (tide/tide.h and the headers beside
# it), the runtime's internal.h or anything of Lua. core.h includes system
# headers only, so a kernel that passes here cannot reach the API through
# another header either.
#   cmake -DSOURCE_DIR=<repository root> -P tests/layering.cmake
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "layering: pass -DSOURCE_DIR=<repository root>")
endif()

set(problems "")
set(include_re "^[ \t]*#[ \t]*include[ \t]*[<\"]([^>\"]*)[>\"]")

file(GLOB_RECURSE kernel_files LIST_DIRECTORIES false
     "${SOURCE_DIR}/kernels/*.c" "${SOURCE_DIR}/kernels/*.h"
     "${SOURCE_DIR}/kernels/*.cu" "${SOURCE_DIR}/kernels/*.cuh")
list(LENGTH kernel_files nfiles)
if(nfiles EQUAL 0)
  message(FATAL_ERROR "layering: no sources under ${SOURCE_DIR}/kernels")
endif()

foreach(f ${kernel_files})
  file(RELATIVE_PATH rel "${SOURCE_DIR}" "${f}")
  file(STRINGS "${f}" lines REGEX "${include_re}")
  foreach(line ${lines})
    string(REGEX REPLACE "${include_re}.*" "\\1" inc "${line}")
    set(why "")
    if(inc MATCHES "^tide/" AND NOT inc STREQUAL "tide/core.h")
      set(why "the public API: kernels include tide/core.h only")
    elseif(inc MATCHES "(^|/)internal\\.h$")
      set(why "the runtime's internal header")
    elseif(inc MATCHES "(^|/)(runtime|bindings)/")
      set(why "a file of an upper layer")
    elseif(inc MATCHES "^(lua|lauxlib|lualib)\\.h$")
      set(why "Lua: kernels know nothing of it")
    endif()
    if(why)
      string(APPEND problems "  ${rel}: #include \"${inc}\" (${why})\n")
    endif()
  endforeach()
endforeach()

set(core "${SOURCE_DIR}/runtime/include/tide/core.h")
file(STRINGS "${core}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
foreach(line ${lines})
  string(APPEND problems "  runtime/include/tide/core.h: ${line} (core.h includes system headers only)\n")
endforeach()

if(problems)
  message(FATAL_ERROR "layering: kernels must stay under the runtime:\n${problems}")
endif()
message(STATUS "layering: ${nfiles} kernel sources include the runtime through tide/core.h only")

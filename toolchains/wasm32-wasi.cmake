# CMake toolchain for wasm32-wasi.
# Works with Debian 12's clang-14 + lld-14 + wasi-libc + libc++-14-dev-wasm32
# (headers and libraries under /usr, multiarch layout), or with a real wasi-sdk
# install when WASI_SDK_PREFIX is set (its clang and its share/wasi-sysroot).
set(CMAKE_SYSTEM_NAME WASI)
list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")  # Platform/WASI.cmake
set(CMAKE_SYSTEM_VERSION 1)
set(CMAKE_SYSTEM_PROCESSOR wasm32)
set(triple wasm32-wasi)

if(DEFINED ENV{WASI_SDK_PREFIX} AND NOT WASI_SDK_PREFIX)
  set(WASI_SDK_PREFIX "$ENV{WASI_SDK_PREFIX}")
endif()

if(WASI_SDK_PREFIX)
  set(CMAKE_C_COMPILER "${WASI_SDK_PREFIX}/bin/clang")
  set(CMAKE_CXX_COMPILER "${WASI_SDK_PREFIX}/bin/clang++")
  set(CMAKE_AR "${WASI_SDK_PREFIX}/bin/llvm-ar" CACHE FILEPATH "")
  set(CMAKE_RANLIB "${WASI_SDK_PREFIX}/bin/llvm-ranlib" CACHE FILEPATH "")
  set(CMAKE_SYSROOT "${WASI_SDK_PREFIX}/share/wasi-sysroot")
else()
  find_program(WASI_CLANG NAMES clang-14 clang REQUIRED)
  find_program(WASI_CLANGXX NAMES clang++-14 clang++ REQUIRED)
  find_program(WASI_AR NAMES llvm-ar-14 llvm-ar REQUIRED)
  find_program(WASI_RANLIB NAMES llvm-ranlib-14 llvm-ranlib REQUIRED)
  set(CMAKE_C_COMPILER "${WASI_CLANG}")
  set(CMAKE_CXX_COMPILER "${WASI_CLANGXX}")
  set(CMAKE_AR "${WASI_AR}" CACHE FILEPATH "")
  set(CMAKE_RANLIB "${WASI_RANLIB}" CACHE FILEPATH "")
  # Debian installs libc++ for wasm32 under /usr/include/wasm32-wasi/c++/v1.
  set(CMAKE_CXX_STANDARD_INCLUDE_DIRECTORIES /usr/include/wasm32-wasi/c++/v1)
endif()

set(CMAKE_C_COMPILER_TARGET ${triple})
set(CMAKE_CXX_COMPILER_TARGET ${triple})
# clang 14 on wasm32-wasi has no C++ exceptions; the core is written for that.
set(CMAKE_CXX_FLAGS_INIT "-fno-exceptions")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-fuse-ld=lld")
set(CMAKE_EXECUTABLE_SUFFIX ".wasm")
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Test executables run under Node's WASI (node >= 20).
find_program(NODE_EXECUTABLE node REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR "${NODE_EXECUTABLE};${CMAKE_CURRENT_LIST_DIR}/../tests/support/run-wasi.mjs")

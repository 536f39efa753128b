# CMake toolchain for Emscripten (Debian 12's emscripten 3.1.6).
# A thin wrapper over Emscripten's own toolchain file that also finds it at
# Debian's location and sets what Debian's packaging needs.
if(DEFINED ENV{EMSCRIPTEN_ROOT})
  set(_em_root "$ENV{EMSCRIPTEN_ROOT}")
elseif(EXISTS /usr/share/emscripten/cmake/Modules/Platform/Emscripten.cmake)
  set(_em_root /usr/share/emscripten)
else()
  get_filename_component(_emcc "$ENV{EMSDK}/upstream/emscripten/emcc" ABSOLUTE)
  get_filename_component(_em_root "${_emcc}" DIRECTORY)
endif()
# Debian's emscripten runs its JS tools with Debian's node modules.
set(ENV{NODE_PATH} "/usr/share/nodejs")
include("${_em_root}/cmake/Modules/Platform/Emscripten.cmake")
find_program(NODE_EXECUTABLE node REQUIRED)
# Emscripten 3.1.6 would try fetch() for the .wasm on Node >= 18; use the file system.
set(CMAKE_CROSSCOMPILING_EMULATOR "${NODE_EXECUTABLE};--no-experimental-fetch")

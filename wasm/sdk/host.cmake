# Included by a native build: the SDK package, built with Emscripten in the
# sub-build ${CMAKE_BINARY_DIR}/emscripten-sdk (its own tree: the core's
# Emscripten tests build in another, concurrently). The origin embeds
# its browser build in the CDN's own page; tests/sdk tests the package.
#   NIC_SDK_PACKAGE_DIR   the package (package.json, README.md, dist/)
#   NIC_SDK_TARGET        the target that brings it up to date
include(ExternalProject)
set(NIC_SDK_PACKAGE_DIR ${CMAKE_BINARY_DIR}/emscripten-sdk/wasm/sdk/package)
set(NIC_SDK_TARGET nic_sdk_emscripten)
ExternalProject_Add(nic_sdk_emscripten
  SOURCE_DIR ${PROJECT_SOURCE_DIR}
  BINARY_DIR ${CMAKE_BINARY_DIR}/emscripten-sdk
  CMAKE_ARGS -DCMAKE_TOOLCHAIN_FILE=${PROJECT_SOURCE_DIR}/toolchains/emscripten.cmake
             -DCMAKE_BUILD_TYPE=Release -DNIC_WASM_TESTS=OFF -DNIC_WERROR=${NIC_WERROR}
  # Debian's emscripten runs its JS tools with Debian's node modules.
  BUILD_COMMAND ${CMAKE_COMMAND} -E env NODE_PATH=/usr/share/nodejs
                ${CMAKE_COMMAND} --build <BINARY_DIR> --target nic_sdk_package
  BUILD_ALWAYS ON
  BUILD_BYPRODUCTS ${NIC_SDK_PACKAGE_DIR}/dist/index.mjs
  INSTALL_COMMAND ""
  TEST_COMMAND "")

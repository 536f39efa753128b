# Installs the pinned npm packages (wrangler, miniflare) with `npm ci`, unless
# node_modules already matches package-lock.json. Several build trees share
# the one node_modules, so this never reinstalls what is already current.
set(stamp "${ROOT}/node_modules/.package-lock.json")
if(EXISTS "${stamp}" AND EXISTS "${ROOT}/node_modules/miniflare/package.json"
   AND EXISTS "${ROOT}/node_modules/wrangler/package.json"
   AND NOT "${ROOT}/package-lock.json" IS_NEWER_THAN "${stamp}")
  return()
endif()
execute_process(COMMAND "${NPM}" ci --no-audit --no-fund WORKING_DIRECTORY "${ROOT}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "npm ci failed (${rc})")
endif()

// The HTTP/1.1 front of nic-origin (Boost.Beast): the only part that knows
// about sockets. It turns each request into an origin::Request, hands it to
// the pipeline and writes the Response back on the connection's strand.
#pragma once

#include "config.h"
#include "origin.h"

namespace nic::origin {

// Serves until SIGTERM or SIGINT, then stops accepting, lets in-flight
// requests finish (at most SHUTDOWN_TIMEOUT_MS) and returns the exit code.
int run_server(Origin& origin, const Config& config);

}  // namespace nic::origin

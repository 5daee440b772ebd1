// Start-up and the control thread: binds every listener, runs the worker loops, and turns
// signals into reloads and graceful shutdown.
#pragma once

#include <string>

#include "config/config.hpp"

namespace sniroute::server {

// Runs until SIGTERM/SIGINT have drained every worker. Returns the process exit code.
int run_server(config::Config cfg, const std::string& pidfile);

}  // namespace sniroute::server

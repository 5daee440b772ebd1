// /status: what the running instance is doing, as JSON for a human with jq or a dashboard: the
// config in force and when it was loaded, every listener with its binds, routes and open
// connections, every backend and its servers, and the managed certificates with what each port
// served at the last check. Built on the control thread at request time, like /metrics.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "acme/manager.hpp"
#include "config/config.hpp"
#include "server/metrics.hpp"
#include "server/worker.hpp"

namespace sniroute::server {

// What /status reports on; every pointer is the control thread's and outlives the call.
struct StatusFacts {
    const config::Config* config;
    const ControlStats* stats;
    const std::vector<std::unique_ptr<Worker>>* workers;
    const std::vector<acme::CertMetric>* certs;
    bool ready;  // every listener bound and not draining
};

std::string render_status(const StatusFacts& f);

}  // namespace sniroute::server

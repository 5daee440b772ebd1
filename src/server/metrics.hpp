// /metrics: every worker's counters (proxy/stats.hpp) summed, the control thread's own, and the
// process's, in the Prometheus text format. Runs on the control thread at scrape time, so the
// data path pays only for its counters' increments.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "acme/manager.hpp"
#include "server/worker.hpp"

namespace sniroute::server {

// What the control thread counts itself (it is their only writer and the scrape runs on its
// loop, so they are plain integers).
struct ControlStats {
    uint64_t reloads_ok = 0;
    uint64_t reloads_failed = 0;
    int64_t loaded_s = 0;   // unix time the config in force was loaded
    int64_t started_s = 0;  // unix time of start-up
};

// `certs`: the built-in ACME client's certificates (none when it does not run).
std::string render_metrics(const std::vector<std::unique_ptr<Worker>>& workers, const ControlStats& cs,
                           const std::vector<acme::CertMetric>& certs);

}  // namespace sniroute::server

// Keeps every [[certificates]] entry issued: decides when to renew, issues through the ACME
// client, waits `settle`, installs the files atomically, runs the deploy commands, and then
// checks that every port routing those names really serves the new certificate.
//
// The Manager only owns and wires the pieces, all on the control thread's loop:
//   scheduler.hpp       when to renew what, and the coroutine that does it
//   renewal.hpp         one renewal: issue, settle, install, deploy, check served
//   cert_state.hpp      what is kept on disk between runs
//   control_socket.hpp  `sniroute certs renew NAME` talks to it
// Shutdown cancels the scheduler's coroutine through its Canceller.
#pragma once

#include <uv.h>

#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "acme/cert_state.hpp"
#include "acme/control_socket.hpp"
#include "acme/scheduler.hpp"
#include "http/challenge.hpp"
#include "route/router.hpp"

namespace sniroute::acme {

// One managed certificate as /metrics shows it.
struct CertMetric {
    std::string name;
    int64_t not_after = 0;  // of cert_file as it is on disk; 0 when missing or unreadable
    CertCounts counts;
    // Per listener of the last served check: whether every port of it served the certificate.
    std::vector<std::pair<std::string, bool>> served;
};

// Lifetime: start() once, reload() any number of times, then stop(done) and keep the Manager
// alive until `done` has run; only then may it be destroyed (its handles are closed by then).
class Manager {
public:
    Manager(uv_loop_t* loop, route::SnapshotPtr snap, http::MemoryTokenStore& tokens);
    ~Manager();
    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;

    void start();
    // Cancels pending work and closes the control socket; `done` runs on the loop once the
    // manager's coroutine has ended and its last handle is closed (or at once if none is open).
    void stop(std::function<void()> done);
    void reload(route::SnapshotPtr snap);
    // On the loop's thread. Reads every cert_file (small, local files; a scrape is rare).
    std::vector<CertMetric> metrics() const;

private:
    void on_run_ended(std::exception_ptr e);
    void on_control_line(ControlConn* conn, const std::string& line);
    void finish_stop();

    uv_loop_t* loop_;
    route::SnapshotPtr snap_;  // the scheduler reads it at every pass
    ControlServer control_;
    Scheduler scheduler_;
    std::function<void()> stopped_;
    bool running_ = false;
    bool stopping_ = false;
};

}  // namespace sniroute::acme

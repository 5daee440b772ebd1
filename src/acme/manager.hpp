// Keeps every [[certificates]] entry issued: decides when to renew, issues through the ACME
// client, waits `settle`, installs the files atomically, runs the deploy commands, and then
// checks that every port routing those names really serves the new certificate.
//
// Runs as one coroutine on the control thread's loop; shutdown cancels it through a Canceller.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "acme/client.hpp"
#include "acme/probe.hpp"
#include "http/challenge.hpp"
#include "route/router.hpp"

namespace sniroute::acme {

// Persistent per-certificate state, storage/<name>/state.json.
struct CertState {
    std::string last_error;
    int failures = 0;
    int64_t next_attempt = 0;  // unix seconds; 0 = no back-off in force
    int64_t last_success = 0;
    int64_t ari_start = 0, ari_end = 0;
    int64_t ari_checked = 0;
    std::string ari_cert;  // the ARI certificate ID the window belongs to
    nlohmann::json served = nlohmann::json::array();  // last served-certificate check

    nlohmann::json to_json() const;
    // Tolerant: a missing or mistyped member keeps its default, so a damaged state file costs
    // at most an early renewal, never the ACME client.
    static CertState from_json(const nlohmann::json& j);
};

std::string state_path(const config::Config& cfg, const std::string& name);
CertState load_state(const config::Config& cfg, const std::string& name);

// When a certificate is due: missing or not covering its domains -> now; else a third of its
// lifetime before expiry, or inside the CA's ARI window when one is known for this very
// certificate; never before a back-off in force. A per-name offset (hash of the name) spreads
// renewals of many certificates and instances.
int64_t renewal_due(const config::Certificate& c, const CertState& st, int64_t now);

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

private:
    struct ControlConn;

    Task<void> run();
    // Each pass holds its snapshot: a reload during a renewal must not free the config the
    // renewal is reading.
    Task<void> renew(route::SnapshotPtr snap, const config::Certificate& c, CertState& st);
    Task<void> check_served(route::SnapshotPtr snap, const config::Certificate& c, std::string chain_pem, CertState& st);
    Task<void> deploy(const config::Certificate& c);
    void save(const config::Config& cfg, const config::Certificate& c, const CertState& st);
    void on_run_ended(std::exception_ptr e);
    void finish_stop();
    void start_control_socket();
    void on_control_line(uv_stream_t* client, const std::string& line);
    void close_conn(uv_stream_t* s);
    void reply(uv_stream_t* s, const std::string& text);
    static void on_control_connection(uv_stream_t* server, int status) noexcept;

    uv_loop_t* loop_;
    route::SnapshotPtr snap_;
    http::MemoryTokenStore& tokens_;
    Canceller cancel_;   // shutdown
    Canceller wake_;     // renew-now requests interrupt the scheduler's sleep
    std::unique_ptr<TlsClientContext> tls_;
    std::unique_ptr<Client> client_;
    std::map<std::string, std::vector<uv_stream_t*>> waiting_;  // renew-now replies pending per name
    std::map<std::string, bool> forced_;
    std::set<ControlConn*> conns_;  // every open control connection, closed on stop
    std::function<void()> stopped_;
    bool running_ = false;
    bool stopping_ = false;
    uv_pipe_t control_{};
    bool control_open_ = false;
};

}  // namespace sniroute::acme

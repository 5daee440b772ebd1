#include "acme/manager.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

#include "acme/cert.hpp"
#include "acme/store.hpp"
#include "core/log.hpp"

namespace sniroute::acme {

Manager::Manager(uv_loop_t* loop, route::SnapshotPtr snap, http::MemoryTokenStore& tokens)
    : loop_(loop),
      snap_(std::move(snap)),
      control_(loop, [this](ControlConn* conn, const std::string& line) { on_control_line(conn, line); }),
      scheduler_(loop, snap_, tokens, control_) {}

// By contract stop() has finished; a handle still open here would be freed under libuv.
Manager::~Manager() { assert(!running_ && !control_.is_open()); }

std::vector<CertMetric> Manager::metrics() const {
    std::vector<CertMetric> out;
    for (const auto& c : snap_->config().certificates) {
        CertMetric m;
        m.name = c.name;
        if (auto pem = read_file(c.cert_file, 1 << 20))
            if (auto info = parse_cert_pem(*pem)) m.not_after = info->not_after;
        if (auto it = scheduler_.counts().find(c.name); it != scheduler_.counts().end()) m.counts = it->second;
        if (auto it = scheduler_.states().find(c.name); it != scheduler_.states().end()) {
            for (const auto& e : it->second.served) {
                if (!e.is_object() || !e.contains("listener") || !e["listener"].is_string()) continue;
                std::string listener = e["listener"].get<std::string>();
                bool current = e.value("current", false);
                auto at =
                    std::find_if(m.served.begin(), m.served.end(), [&](const auto& p) { return p.first == listener; });
                if (at == m.served.end())
                    m.served.emplace_back(listener, current);
                else
                    at->second = at->second && current;
            }
        }
        out.push_back(std::move(m));
    }
    return out;
}

// The control socket lives from the first start() to stop(), so a renew request to a manager
// with nothing to do is still answered.
void Manager::start() {
    if (running_ || stopping_) return;
    running_ = true;
    if (!control_.listening()) control_.listen(snap_->config().acme.storage);
    start_detached(scheduler_.run(), [this](std::exception_ptr e) { on_run_ended(std::move(e)); });
}

// Runs once the scheduler's frame is gone, from whatever libuv callback resumed it last.
void Manager::on_run_ended(std::exception_ptr e) {
    running_ = false;
    if (e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            core::log_error("acme_stopped").kv("error", ex.what());
        } catch (...) {
            core::log_error("acme_stopped").kv("error", "unknown exception");
        }
    }
    scheduler_.answer_waiting(error_answer(stopping_ ? "sniroute is shutting down" : "ACME client stopped"));
    if (stopping_) finish_stop();
}

void Manager::stop(std::function<void()> done) {
    if (stopping_) return;
    stopping_ = true;
    stopped_ = std::move(done);
    scheduler_.stop();
    // A running scheduler ends through on_run_ended, which finishes the stop.
    if (!running_) finish_stop();
}

// Closes the control socket and every connection; `stopped_` runs once the last is closed.
void Manager::finish_stop() {
    control_.close([this] {
        if (stopped_) std::exchange(stopped_, nullptr)();
    });
}

void Manager::reload(route::SnapshotPtr snap) {
    snap_ = std::move(snap);
    if (stopping_) return;
    // A manager that ended because no certificates were left starts again when some come back.
    if (!running_ && !snap_->config().certificates.empty()) return start();
    scheduler_.wake();  // names or files may have changed: re-plan now
}

// "renew NAME": answered at once when it cannot be done, otherwise once the renewal has run.
void Manager::on_control_line(ControlConn* conn, const std::string& line) {
    std::optional<std::string> name = parse_renew_request(line);
    if (!name) return control_.reply(conn, error_answer("unknown command"));
    bool known = false;
    for (const auto& c : snap_->config().certificates) known = known || c.name == *name;
    if (!known) return control_.reply(conn, error_answer("unknown certificate " + *name));
    if (!running_) return control_.reply(conn, error_answer("ACME client not running"));
    core::log_info("acme_renew_requested").kv("certificate", *name);
    scheduler_.request(*name, conn);
}

}  // namespace sniroute::acme

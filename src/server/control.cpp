// The control thread. It binds every socket itself, so that a port in use fails start-up (or a
// reload) with a clear message before anything is accepted; then it starts the workers and
// sleeps in its own loop, waking only for signals.
#include "server/control.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <thread>

#include "acme/manager.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "proxy/uv_cast.hpp"
#include "server/admin.hpp"
#include "server/listen.hpp"
#include "server/metrics.hpp"
#include "server/status.hpp"
#include "server/worker.hpp"

namespace sniroute::server {

using core::log_error;
using core::log_info;
using core::log_warn;
using core::SocketAddress;

namespace {

void log_listeners(const config::Config& cfg, const char* event) {
    for (const auto& l : cfg.listeners) {
        std::string binds;
        for (const auto& a : l.bind) {
            if (!binds.empty()) binds += ',';
            binds += a.to_string();
        }
        log_info(event).kv("listener", l.name).kv("protocol", config::to_string(l.protocol)).kv("bind", binds);
    }
}

class Control {
public:
    Control(config::Config cfg, std::string pidfile) : cfg_path_(cfg.path), pidfile_(std::move(pidfile)) {
        drain_ms_ = cfg.global.drain_timeout_ms;
        workers_n_ = cfg.global.workers ? cfg.global.workers : std::max(1u, std::thread::hardware_concurrency());
        snap_ = std::make_shared<route::Snapshot>(std::move(cfg));
        stats_.started_s = stats_.loaded_s = core::unix_now_s();
    }

    int run();

private:
    static void on_signal(uv_signal_t* h, int signum) noexcept;
    static void on_poll(uv_timer_t* t) noexcept;
    void reload();
    void start_acme();
    bool write_pidfile();  // logs why when it fails
    bool start_admin();    // logs why when it fails
    AdminResponse admin_request(std::string_view method, std::string_view target) const;
    void begin_stop();  // the workers drain and stop, and the ACME client with them

    std::string cfg_path_;
    std::string pidfile_;
    uint64_t drain_ms_;
    unsigned workers_n_;
    route::SnapshotPtr snap_;
    Shared shared_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<BindKey> bound_;
    uv_loop_t loop_{};
    uv_signal_t sighup_{}, sigterm_{}, sigint_{};
    uv_timer_t poll_{};
    int stops_ = 0;
    // The built-in ACME client runs on this loop, away from the data path. It exists only while
    // [[certificates]] are configured (or were, since start-up) and must end before the loop.
    std::unique_ptr<acme::Manager> acme_;
    bool acme_stopped_ = true;
    // The admin listener ([admin] bind), on this loop; null without one.
    std::unique_ptr<AdminServer> admin_;
    ControlStats stats_;
};

int Control::run() {
    std::vector<std::vector<ListenSocket>> socks;
    if (!bind_new(snap_->config(), {}, workers_n_, socks, bound_)) return 1;
    log_listeners(snap_->config(), "listener");

    std::vector<std::thread> threads;
    std::vector<char> ok(workers_n_, 0);
    for (unsigned i = 0; i < workers_n_; ++i) workers_.push_back(std::make_unique<Worker>(i, shared_, snap_));
    for (unsigned i = 0; i < workers_n_; ++i)
        threads.emplace_back(
            [this, i, &ok, s = std::move(socks[i])]() mutable { ok[i] = workers_[i]->run(std::move(s)); });
    bool started = true;
    for (auto& w : workers_) {
        while (!w->listening.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        started = started && !w->start_failed.load();
    }
    if (int r = started ? uv_loop_init(&loop_) : 0; r != 0) {
        log_error("start_failed").kv("call", "uv_loop_init").kv("error", uv_strerror(r));
        started = false;
    }
    if (!started) {
        // Nothing was accepted yet: the workers that did start stop at once.
        for (auto& w : workers_) w->post_stop(0);
        for (auto& t : threads) t.join();
        return 1;
    }
    for (auto [h, sig] : {std::pair{&sighup_, SIGHUP}, std::pair{&sigterm_, SIGTERM}, std::pair{&sigint_, SIGINT}}) {
        uv_signal_init(&loop_, h);
        h->data = this;
        uv_signal_start(h, on_signal, sig);
    }
    // Workers finish on their own threads; the control loop notices with a cheap poll rather
    // than another cross-thread mailbox.
    uv_timer_init(&loop_, &poll_);
    poll_.data = this;

    bool pid_ok = pidfile_.empty() || write_pidfile();
    bool admin_ok = pid_ok && start_admin();
    if (admin_ok) {
        start_acme();
        log_info("ready")
            .kv("workers", workers_n_)
            .kv("listeners", static_cast<uint64_t>(snap_->config().listeners.size()));
    } else {
        // Whoever reads the pidfile cannot know of us, or the admin listener that was asked for
        // is not there: start-up has failed. The workers are stopped the way SIGTERM stops
        // them, with nothing to drain yet.
        ++stops_;
        drain_ms_ = 0;
        begin_stop();
    }

    uv_run(&loop_, UV_RUN_DEFAULT);
    for (auto& t : threads) t.join();
    admin_.reset();  // idle: uv_run returned, so every handle of it has closed
    int rc = uv_loop_close(&loop_);
    if (!pidfile_.empty() && pid_ok) ::unlink(pidfile_.c_str());
    bool clean = rc == 0;
    for (char c : ok) clean = clean && c;
    log_info("stopped").kv("clean", clean ? "yes" : "no");
    if (!admin_ok) return 1;
    return clean ? 0 : 70;
}

bool Control::start_admin() {
    const auto& binds = snap_->config().admin.bind;
    if (binds.empty()) return true;
    admin_ = std::make_unique<AdminServer>(
        &loop_, [this](std::string_view method, std::string_view target) { return admin_request(method, target); });
    return admin_->start(binds);
}

// The admin endpoints. Read-only for now, so GET and HEAD are all they take.
AdminResponse Control::admin_request(std::string_view method, std::string_view target) const {
    std::string_view path = target.substr(0, target.find('?'));
    bool known = path == "/metrics" || path == "/healthz" || path == "/readyz" || path == "/status";
    if (!known) return {404, "text/plain; charset=utf-8", "not found\n"};
    if (method != "GET" && method != "HEAD") return {405, "text/plain; charset=utf-8", "GET or HEAD only\n"};
    if (path == "/metrics" || path == "/status") {
        const auto certs = acme_ ? acme_->metrics() : std::vector<acme::CertMetric>{};
        if (path == "/status")
            return {200, "application/json",
                    render_status({&snap_->config(), &stats_, &workers_, &certs, stops_ == 0})};
        return {200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(workers_, stats_, certs)};
    }
    if (path == "/readyz") {
        if (stops_ > 0) return {503, "text/plain; charset=utf-8", "draining\n"};
        return {200, "text/plain; charset=utf-8", "ok\n"};
    }
    // /healthz: every worker loop has turned within the last kStalledMs. A loop stuck in a
    // callback stops its heartbeat timer with it; one that has finished (draining is over) has
    // nothing left to answer for.
    constexpr uint64_t kStalledMs = 5000;
    uint64_t now = uv_hrtime() / 1'000'000;
    std::string stalled;
    for (const auto& w : workers_) {
        uint64_t beat = w->heartbeat_ms.load();
        if (!w->finished.load() && now > beat && now - beat > kStalledMs)
            stalled += "worker " + std::to_string(w->id()) + " has not run for " + std::to_string(now - beat) + " ms\n";
    }
    if (!stalled.empty()) return {503, "text/plain; charset=utf-8", stalled};
    return {200, "text/plain; charset=utf-8", "ok\n"};
}

bool Control::write_pidfile() {
    std::ofstream f(pidfile_);
    f << getpid() << "\n";
    f.close();
    if (f) return true;
    // Not unlinked: the path may name something that is not ours to remove.
    int err = errno;
    log_error("pidfile_failed").kv("path", pidfile_).kv("error", err ? std::strerror(err) : "write failed");
    return false;
}

void Control::begin_stop() {
    for (auto& w : workers_) w->post_stop(drain_ms_);
    if (acme_) acme_->stop([this] { acme_stopped_ = true; });
    uv_timer_start(&poll_, on_poll, 10, 10);
}

void Control::start_acme() {
    if (acme_ || snap_->config().certificates.empty()) return;
    acme_stopped_ = false;
    acme_ = std::make_unique<acme::Manager>(&loop_, snap_, shared_.tokens);
    acme_->start();
}

void Control::on_signal(uv_signal_t* h, int signum) noexcept {
    auto* c = static_cast<Control*>(h->data);
    if (signum == SIGHUP) return c->reload();
    if (++c->stops_ == 1) {
        log_info("stopping")
            .kv("signal", signum == SIGTERM ? "SIGTERM" : "SIGINT")
            .kv("drain_timeout_ms", c->drain_ms_);
        c->begin_stop();
    } else {
        log_warn("stopping_now").kv("signal", signum == SIGTERM ? "SIGTERM" : "SIGINT");
        for (auto& w : c->workers_) w->post_abort();
    }
}

void Control::on_poll(uv_timer_t* t) noexcept {
    auto* c = static_cast<Control*>(t->data);
    for (auto& w : c->workers_)
        if (!w->finished.load()) return;
    if (!c->acme_stopped_) return;
    if (c->admin_) c->admin_->stop();
    for (uv_handle_t* h : {proxy::as_handle(&c->sighup_), proxy::as_handle(&c->sigterm_), proxy::as_handle(&c->sigint_),
                           proxy::as_handle(&c->poll_)})
        uv_close(h, nullptr);
}

void Control::reload() {
    if (stops_ > 0) return;
    log_info("reloading").kv("config", cfg_path_);
    auto res = config::load_file(cfg_path_);
    // Warnings are logged as `run` logs them at start, also for a config that is then rejected.
    for (const auto& d : res.warnings) log_warn("config_warning").kv("at", d.to_string());
    if (!res.config) {
        ++stats_.reloads_failed;
        for (const auto& d : res.diagnostics) log_error("config_error").kv("at", d.to_string());
        log_error("reload_rejected").kv("reason", "config has errors; the running config stays in force");
        return;
    }
    if (res.config->global.workers != snap_->config().global.workers)
        log_warn("reload_note").kv("reason", "a change of 'workers' takes effect on restart");
    if (res.config->admin.bind != snap_->config().admin.bind)
        log_warn("reload_note").kv("reason", "a change of [admin] bind takes effect on restart");
    std::vector<std::vector<ListenSocket>> socks;
    std::vector<BindKey> made;
    if (!bind_new(*res.config, bound_, workers_n_, socks, made)) {
        ++stats_.reloads_failed;
        log_error("reload_rejected")
            .kv("reason", "a new bind address could not be bound; the running config stays in force");
        return;
    }
    // Forget pairs the new config dropped; workers close their sockets when they see it.
    std::vector<BindKey> kept;
    for (auto& k : bound_) {
        bool still = false;
        for (const auto& l : res.config->listeners)
            if (l.name == k.listener)
                for (const auto& a : l.bind) still = still || a == k.addr;
        if (still) kept.push_back(k);
    }
    for (auto& m : made) kept.push_back(m);
    bound_.swap(kept);
    drain_ms_ = res.config->global.drain_timeout_ms;
    set_log_format(res.config->global.log_format);
    snap_ = std::make_shared<route::Snapshot>(std::move(*res.config));
    ++stats_.reloads_ok;
    stats_.loaded_s = core::unix_now_s();
    for (unsigned i = 0; i < workers_n_; ++i) workers_[i]->post_reload(snap_, std::move(socks[i]));
    if (acme_)
        acme_->reload(snap_);
    else
        start_acme();
    log_listeners(snap_->config(), "listener");
    log_info("reloaded").kv("config", cfg_path_);
}

// Every connection costs two descriptors. Debian's default soft limit of 1024 would cap a
// proxy at ~500 connections, so take the hard limit, and say so when even that is short.
void raise_fd_limit(uint32_t max_connections) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
        ::getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t want = 2 * static_cast<rlim_t>(max_connections) + 256;
    if (max_connections > 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
        log_warn("fd_limit_low")
            .kv("nofile", static_cast<uint64_t>(rl.rlim_cur))
            .kv("max_connections", max_connections)
            .kv("needed", static_cast<uint64_t>(want));
}

}  // namespace

int run_server(config::Config cfg, const std::string& pidfile) {
    // A peer that closes while we write must surface as EPIPE on that socket, not kill us.
    ::signal(SIGPIPE, SIG_IGN);
    set_log_format(cfg.global.log_format);
    raise_fd_limit(cfg.global.max_connections);
    Control c(std::move(cfg), pidfile);
    return c.run();
}

}  // namespace sniroute::server

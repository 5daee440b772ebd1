#include "acme/manager.hpp"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cassert>
#include <ctime>
#include <random>
#include <type_traits>

#include "acme/cert.hpp"
#include "acme/deploy.hpp"
#include "acme/store.hpp"
#include "core/log.hpp"

namespace sniroute::acme {

using nlohmann::json;

namespace {

constexpr int64_t kMaxSleepS = 3600;        // re-evaluate at least hourly
constexpr int64_t kBackoffBaseS = 60;
constexpr int64_t kBackoffCapS = 24 * 3600;
constexpr int64_t kRateLimitFloorS = 3600;  // a rate-limited CA is left alone for an hour at least
constexpr int64_t kAriRefreshS = 6 * 3600;
constexpr int kProbeTimeoutMs = 5000;
constexpr uint64_t kRecheckDelaysMs[] = {3'000, 10'000};
constexpr int kDeployAttempts = 3;

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

std::mt19937_64& rng() {
    static std::mt19937_64 g{std::random_device{}()};
    return g;
}

// Runs `fn` on libuv's thread pool and resumes on the loop: for the blocking TLS probes.
class InPool {
public:
    InPool(uv_loop_t* loop, std::function<void()> fn) : loop_(loop), fn_(std::move(fn)) {}

    bool await_ready() const noexcept { return false; }
    // Returns false (do not suspend) when the pool refuses the work: it has then run inline,
    // and the coroutine goes on without being resumed from inside its own await_suspend.
    bool await_suspend(std::coroutine_handle<> co) noexcept {
        h_ = co;
        req_.data = this;
        int r = uv_queue_work(loop_, &req_, &InPool::work,
                              [](uv_work_t* w, int) noexcept { static_cast<InPool*>(w->data)->h_.resume(); });
        if (r == 0) return true;
        run_fn();
        return false;
    }
    void await_resume() noexcept {}

private:
    static void work(uv_work_t* w) noexcept { static_cast<InPool*>(w->data)->run_fn(); }
    // A pool thread has no one to throw to; the probe reports its own failures in its result.
    void run_fn() noexcept {
        try {
            fn_();
        } catch (...) {
        }
    }

    uv_loop_t* loop_;
    std::function<void()> fn_;
    uv_work_t req_{};
    std::coroutine_handle<> h_;
};

bool covers(const CertInfo& info, const std::vector<std::string>& domains) {
    for (const auto& d : domains) {
        bool found = false;
        for (const auto& n : info.dns_names) found = found || n == d;
        if (!found) return false;
    }
    return true;
}

// An issued pair that renew() saved and whose install and deploy have not finished: a crash or
// stop after the download, during settle, or during the deploy commands. It is used as long as
// it is whole (key matching certificate), covers the names and has not expired.
struct PendingPair {
    std::string chain, key_pem;
    CertInfo info;
};

std::string cert_dir(const config::Config& cfg, const config::Certificate& c) { return cfg.acme.storage + "/certs/" + c.name; }

std::optional<PendingPair> read_pending(const std::string& dir, const config::Certificate& c) {
    auto pc = read_file(dir + "/pending.crt", 1 << 20);
    auto pk = read_file(dir + "/pending.key", 1 << 16);
    std::optional<Key> pkey = pk ? Key::from_pem(*pk) : std::nullopt;
    std::optional<CertInfo> pinfo = pc ? parse_cert_pem(*pc) : std::nullopt;
    if (!pkey || !pinfo || !key_matches_cert(*pkey, *pc) || !covers(*pinfo, c.domains) || pinfo->not_after <= now_s())
        return std::nullopt;
    return PendingPair{std::move(*pc), std::move(*pk), std::move(*pinfo)};
}

// A member of the state file, or `def` when it is missing or of another type.
template <class T>
T member(const json& j, const char* key, T def) {
    auto it = j.find(key);
    if (it == j.end()) return def;
    if constexpr (std::is_same_v<T, std::string>) return it->is_string() ? it->template get<std::string>() : def;
    else return it->is_number_integer() ? it->template get<T>() : def;
}

}  // namespace

struct Manager::ControlConn {
    uv_pipe_t pipe{};
    Manager* manager = nullptr;
    std::string line;
    char buf[512];
};

json CertState::to_json() const {
    return {{"last_error", last_error},   {"failures", failures},   {"next_attempt", next_attempt},
            {"last_success", last_success}, {"ari_start", ari_start}, {"ari_end", ari_end},
            {"ari_checked", ari_checked}, {"ari_cert", ari_cert},   {"served", served}};
}

CertState CertState::from_json(const json& j) {
    CertState s;
    if (!j.is_object()) return s;
    s.last_error = member(j, "last_error", std::string());
    // run() shifts by this count and increments it: a negative or huge one is damage too.
    int64_t failures = member(j, "failures", int64_t{0});
    s.failures = failures >= 0 && failures <= 1'000'000 ? static_cast<int>(failures) : 0;
    s.next_attempt = member(j, "next_attempt", int64_t{0});
    s.last_success = member(j, "last_success", int64_t{0});
    s.ari_start = member(j, "ari_start", int64_t{0});
    s.ari_end = member(j, "ari_end", int64_t{0});
    s.ari_checked = member(j, "ari_checked", int64_t{0});
    s.ari_cert = member(j, "ari_cert", std::string());
    if (j.contains("served") && j["served"].is_array()) s.served = j["served"];
    return s;
}

std::string state_path(const config::Config& cfg, const std::string& name) {
    return cfg.acme.storage + "/certs/" + name + "/state.json";
}

CertState load_state(const config::Config& cfg, const std::string& name) {
    auto text = read_file(state_path(cfg, name), 1 << 20);
    return text ? CertState::from_json(json::parse(*text, nullptr, false)) : CertState{};
}

int64_t renewal_due(const config::Certificate& c, const CertState& st, int64_t now) {
    int64_t due = now;
    auto pem = read_file(c.cert_file, 1 << 20);
    std::optional<CertInfo> info = pem ? parse_cert_pem(*pem) : std::nullopt;
    if (info && covers(*info, c.domains)) {
        int64_t lifetime = info->not_after - info->not_before;
        // A third of the lifetime left, less up to 1% of it so many instances spread out.
        int64_t jitter = lifetime > 100 ? static_cast<int64_t>(std::hash<std::string>{}(c.name) % static_cast<uint64_t>(lifetime / 100)) : 0;
        due = info->not_after - lifetime / 3 - jitter;
        // The window is for the certificate it was asked about; a newer one on disk has its own.
        if (st.ari_end > st.ari_start && st.ari_start > 0 && !st.ari_cert.empty() && ari_cert_id(*pem) == st.ari_cert) {
            // Inside the CA's suggested window (RFC 9773 4.2), at a point fixed per name.
            int64_t span = st.ari_end - st.ari_start;
            int64_t at = st.ari_start + static_cast<int64_t>(std::hash<std::string>{}(c.name) % static_cast<uint64_t>(span));
            due = std::min(due, at);
        }
    }
    return std::max(due, st.next_attempt);
}

Manager::Manager(uv_loop_t* loop, route::SnapshotPtr snap, http::MemoryTokenStore& tokens)
    : loop_(loop), snap_(std::move(snap)), tokens_(tokens) {}

// By contract stop() has finished; a handle still open here would be freed under libuv.
Manager::~Manager() { assert(!running_ && !control_open_ && conns_.empty()); }

void Manager::start() {
    if (running_ || stopping_) return;
    running_ = true;
    if (!control_open_) start_control_socket();
    start_detached(run(), [this](std::exception_ptr e) { on_run_ended(std::move(e)); });
}

// Runs once run()'s frame is gone, from whatever libuv callback resumed it last.
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
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& [name, conns] : waiting)
        for (auto* s : conns) reply(s, stopping_ ? "error sniroute is shutting down" : "error ACME client stopped");
    if (stopping_) finish_stop();
}

void Manager::stop(std::function<void()> done) {
    if (stopping_) return;
    stopping_ = true;
    stopped_ = std::move(done);
    cancel_.cancel();
    wake_.cancel();
    // A running coroutine ends through on_run_ended, which finishes the stop.
    if (!running_) finish_stop();
}

// Closes the listening socket and every connection; `stopped_` runs once the last is closed.
void Manager::finish_stop() {
    for (ControlConn* c : std::vector<ControlConn*>(conns_.begin(), conns_.end()))
        close_conn(reinterpret_cast<uv_stream_t*>(&c->pipe));
    if (control_open_) {
        uv_close(reinterpret_cast<uv_handle_t*>(&control_), [](uv_handle_t* h) noexcept {
            auto* m = static_cast<Manager*>(h->data);
            m->control_open_ = false;
            if (m->conns_.empty() && m->stopped_) std::exchange(m->stopped_, nullptr)();
        });
        return;
    }
    if (conns_.empty() && stopped_) std::exchange(stopped_, nullptr)();
}

void Manager::reload(route::SnapshotPtr snap) {
    snap_ = std::move(snap);
    if (stopping_) return;
    // A manager that ended because no certificates were left starts again when some come back.
    if (!running_ && !snap_->config().certificates.empty()) return start();
    wake_.cancel();  // names or files may have changed: re-plan now
}

void Manager::save(const config::Config& cfg, const config::Certificate& c, const CertState& st) {
    std::string err;
    std::string dir = cfg.acme.storage + "/certs/" + c.name;
    if (!ensure_dir(dir, 0700, err) || !write_file_atomic(state_path(cfg, c.name), st.to_json().dump(2), 0600, err))
        core::log_error("acme_state_write_failed").kv("certificate", c.name).kv("error", err);
}

Task<void> Manager::run() {
    const config::Acme acme = snap_->config().acme;  // a copy: a reload may replace snap_
    std::string err;
    if (!ensure_dir(acme.storage, 0700, err)) throw std::runtime_error("storage " + acme.storage + ": " + err);
    // The account key is created once and kept, mode 0600: it is the account.
    std::string key_path = acme.storage + "/account.key";
    std::optional<Key> key;
    if (auto pem = read_file(key_path, 1 << 16)) {
        key = Key::from_pem(*pem);
        if (!key) throw std::runtime_error(key_path + " is not a private key");
    } else {
        key = Key::generate(KeyType::EcdsaP256);
        if (!write_file_atomic(key_path, key->private_pem(), 0600, err)) throw std::runtime_error(key_path + ": " + err);
        core::log_info("acme_account_key_created").kv("path", key_path);
    }
    tls_ = std::make_unique<TlsClientContext>(acme.ca_bundle);
    client_ = std::make_unique<Client>(loop_, tls_->get(),
                                       AccountSettings{acme.directory, acme.email, acme.eab_kid, acme.eab_hmac_key},
                                       std::move(*key), tokens_, cancel_);
    // A kill -9 mid-write leaves temporary files beside the ones we replace. This process is
    // their only writer and has nothing in flight yet, so any age will do.
    for (const auto& c : snap_->config().certificates) {
        std::string dir = acme.storage + "/certs/" + c.name;
        for (const std::string& f : {c.cert_file, c.key_file, c.cert_file + ".prev", c.key_file + ".prev",
                                     dir + "/pending.crt", dir + "/pending.key", state_path(snap_->config(), c.name)})
            remove_stale_temps(f, 0);
    }
    remove_stale_temps(key_path, 0);
    core::log_info("acme_started").kv("directory", acme.directory).kv("certificates", static_cast<uint64_t>(snap_->config().certificates.size()));

    std::map<std::string, CertState> states;
    while (!cancel_.cancelled()) {
        route::SnapshotPtr snap = snap_;  // this pass works on one config, even across a reload
        const auto& certs = snap->config().certificates;
        if (certs.empty()) break;
        // Renew-now requests for names a reload removed would otherwise wait forever.
        for (auto it = waiting_.begin(); it != waiting_.end();) {
            bool known = false;
            for (const auto& c : certs) known = known || c.name == it->first;
            if (known) {
                ++it;
                continue;
            }
            std::vector<uv_stream_t*> conns = std::move(it->second);
            std::string name = it->first;
            it = waiting_.erase(it);
            for (auto* s : conns) reply(s, "error unknown certificate " + name);
        }
        int64_t now = now_s();
        const config::Certificate* next = nullptr;
        int64_t next_due = INT64_MAX;
        for (const auto& c : certs) {
            if (!states.count(c.name)) states[c.name] = load_state(snap->config(), c.name);
            CertState& st = states[c.name];
            // Ask the CA when to renew (ARI), now and then, and at once about a certificate
            // that replaced the one asked about; failures just mean no window.
            std::optional<std::string> id;
            if (auto pem = read_file(c.cert_file, 1 << 20)) id = ari_cert_id(*pem);
            if (id && (now - st.ari_checked > kAriRefreshS || *id != st.ari_cert)) {
                std::optional<RenewalWindow> w;
                bool failed = false;
                try {
                    w = co_await client_->renewal_info(*id);
                } catch (const std::exception&) {
                    failed = true;
                }
                if (cancel_.cancelled()) break;
                // A CA that cannot be reached now leaves a known window for this certificate.
                if (!failed || *id != st.ari_cert) {
                    st.ari_start = w ? w->start : 0;
                    st.ari_end = w ? w->end : 0;
                    st.ari_cert = *id;
                }
                st.ari_checked = now;
            }
            int64_t due = forced_[c.name] ? now : renewal_due(c, st, now);
            // A pair issued but not yet deployed (stopped or crashed mid-deploy) is finished
            // now, or when a failed deploy's back-off ends: the certificate on disk may already
            // be the new one, so renewal_due alone would wait for the next renewal.
            if (read_pending(cert_dir(snap->config(), c), c)) due = std::min(due, std::max(now, st.next_attempt));
            if (due < next_due) next_due = due, next = &c;
        }
        if (cancel_.cancelled()) break;
        if (next_due > now) {
            int64_t wait = std::min(next_due - now, kMaxSleepS);
            co_await Sleep(loop_, static_cast<uint64_t>(wait) * 1000, &wake_);
            wake_.reset();
            continue;
        }
        const config::Certificate& c = *next;
        CertState& st = states[c.name];
        forced_[c.name] = false;
        // Requests that asked for this renewal get its result; ones that arrive while it runs
        // set forced_ again and are answered by the next one, which starts right after.
        std::vector<uv_stream_t*> answering;
        if (auto it = waiting_.find(c.name); it != waiting_.end()) {
            answering = std::move(it->second);
            waiting_.erase(it);
        }
        core::log_info("acme_renewing").kv("certificate", c.name).kv("domains", static_cast<uint64_t>(c.domains.size()));
        std::string failure;
        uint64_t retry_after = 0;
        bool rate_limited = false;
        try {
            co_await renew(snap, c, st);
        } catch (const AcmeError& e) {
            failure = e.what();
            retry_after = e.retry_after_s;
            rate_limited = e.rate_limited();
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (cancel_.cancelled()) {
            // The requests this renewal was answering are no longer in waiting_, where
            // on_run_ended would answer them; without this their clients saw only EOF.
            for (auto* conn : answering) reply(conn, "error sniroute is shutting down");
            break;
        }
        std::string result;
        if (failure.empty()) {
            st.failures = 0;
            st.next_attempt = 0;
            st.last_success = now_s();
            // The window was for the replaced certificate; the new one is asked about next pass.
            st.ari_start = st.ari_end = st.ari_checked = 0;
            st.ari_cert.clear();
            if (st.last_error.empty()) result = "ok";
            else result = "error " + st.last_error;  // issued, but deploy or check failed
        } else {
            // Exponential back-off with jitter, capped; the CA's Retry-After wins when longer.
            ++st.failures;
            int64_t delay = std::min(kBackoffCapS, kBackoffBaseS << std::min(st.failures - 1, 20));
            delay += static_cast<int64_t>(rng()() % static_cast<uint64_t>(delay / 10 + 1));
            if (rate_limited) delay = std::max(delay, kRateLimitFloorS);
            delay = std::max(delay, static_cast<int64_t>(retry_after));
            st.next_attempt = now_s() + delay;
            st.last_error = failure;
            core::log_error("acme_failed").kv("certificate", c.name).kv("error", failure).kv("retry_in_s", delay);
            result = "error " + failure;
        }
        save(snap->config(), c, st);
        for (auto* conn : answering) reply(conn, result);
    }
}

Task<void> Manager::renew(route::SnapshotPtr snap, const config::Certificate& c, CertState& st) {
    const config::Acme& acme = snap->config().acme;
    std::string err, dir = cert_dir(snap->config(), c);
    if (!ensure_dir(dir, 0700, err)) throw std::runtime_error(dir + ": " + err);
    std::string pending_crt = dir + "/pending.crt", pending_key = dir + "/pending.key";
    st.last_error.clear();

    // A certificate issued before a crash or restart is used, not ordered again.
    std::string chain, key_pem;
    if (std::optional<PendingPair> pending = read_pending(dir, c)) {
        chain = std::move(pending->chain);
        key_pem = std::move(pending->key_pem);
        core::log_info("acme_resuming").kv("certificate", c.name).kv("serial", pending->info.serial_hex);
    } else {
        std::string replaces;
        if (auto old = read_file(c.cert_file, 1 << 20))
            if (auto id = ari_cert_id(*old)) replaces = *id;
        auto type = parse_key_type(acme.key_type);
        Issued issued = co_await client_->issue(c.domains, type.value_or(KeyType::EcdsaP256), replaces);
        // Key first: a pending.crt is only trusted together with a matching pending.key.
        if (!write_file_atomic(pending_key, issued.key_pem, 0600, err) || !write_file_atomic(pending_crt, issued.chain_pem, 0644, err))
            throw std::runtime_error("cannot save issued certificate: " + err);
        chain = std::move(issued.chain_pem);
        key_pem = std::move(issued.key_pem);
        std::optional<CertInfo> pinfo = parse_cert_pem(chain);
        core::log_info("acme_issued")
            .kv("certificate", c.name)
            .kv("serial", pinfo ? pinfo->serial_hex : "?")
            .kv("not_after", pinfo ? format_date(pinfo->not_after) : "?");
    }
    if (c.settle_ms > 0) {
        // New certificates may not be in the CT logs yet; browsers reject them until they are
        // (the mox case). Deploy only after the configured wait.
        core::log_info("acme_settling").kv("certificate", c.name).kv("settle_ms", c.settle_ms);
        co_await Sleep(loop_, c.settle_ms, &cancel_);
        if (cancel_.cancelled()) throw FetchError("cancelled");
    }
    // Installing the same pair again (after a crash or a failed deploy) changes nothing on disk.
    if (!install_pair(c.cert_file, c.key_file, chain, key_pem, err)) throw std::runtime_error("install " + c.cert_file + ": " + err);
    core::log_info("acme_installed").kv("certificate", c.name).kv("cert_file", c.cert_file).kv("key_file", c.key_file);
    co_await deploy(c);
    // Only a finished deploy lets the pair go: until then the scheduler resumes it.
    ::unlink(pending_crt.c_str());
    ::unlink(pending_key.c_str());
    co_await check_served(snap, c, std::move(chain), st);
}

Task<void> Manager::deploy(const config::Certificate& c) {
    std::string domains;
    for (const auto& d : c.domains) domains += (domains.empty() ? "" : " ") + d;
    // What certbot hands its deploy hooks (RENEWED_LINEAGE, RENEWED_DOMAINS), under our names.
    std::vector<std::string> env = {"SNIROUTE_CERT_NAME=" + c.name, "SNIROUTE_DOMAINS=" + domains,
                                    "SNIROUTE_CERT_FILE=" + c.cert_file, "SNIROUTE_KEY_FILE=" + c.key_file,
                                    "SNIROUTE_PREVIOUS_CERT_FILE=" + c.cert_file + ".prev"};
    for (const auto& cmd : c.deploy) {
        for (int attempt = 1;; ++attempt) {
            CommandResult r = co_await RunCommand(loop_, cmd, env, c.deploy_timeout_ms, &cancel_);
            core::LogLine line(r.ok() ? core::Level::Info : core::Level::Error, r.ok() ? "deploy" : "deploy_failed");
            line.kv("certificate", c.name).kv("command", cmd).kv("attempt", attempt).kv("exit", r.exit_status);
            if (r.timed_out) line.kv("error", "timed out");
            // Commands end their output with a newline; the log line has its own.
            std::string_view out = r.output;
            while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.remove_suffix(1);
            if (!out.empty()) line.kv("output", out);
            line.emit();
            if (r.ok()) break;
            if (attempt >= kDeployAttempts || cancel_.cancelled())
                throw std::runtime_error("deploy command failed: " + cmd);
            co_await Sleep(loop_, 2'000u * static_cast<unsigned>(attempt), &cancel_);
            if (cancel_.cancelled()) throw FetchError("cancelled");
        }
    }
}

Task<void> Manager::check_served(route::SnapshotPtr snap, const config::Certificate& c, std::string chain_pem,
                                 CertState& st) {
    std::optional<CertInfo> issued = parse_cert_pem(chain_pem);
    if (!issued) co_return;
    std::vector<ProbeTarget> targets;
    for (const auto& d : c.domains)
        for (auto& t : targets_for(*snap, d)) targets.push_back(std::move(t));
    std::vector<ProbeResult> results(targets.size());
    std::vector<size_t> todo(targets.size());
    for (size_t i = 0; i < todo.size(); ++i) todo[i] = i;
    // Check, then re-check the stale ones after short delays: some servers reload slowly.
    for (size_t round = 0; !todo.empty(); ++round) {
        std::vector<size_t> again;
        for (size_t i : todo) {
            // A probe cannot be interrupted, but the ones after it need not start.
            if (cancel_.cancelled()) throw FetchError("cancelled");
            co_await InPool(loop_, [&results, &targets, i] { results[i] = probe(targets[i], kProbeTimeoutMs); });
            if (!results[i].leaf || results[i].leaf->der != issued->der) again.push_back(i);
        }
        todo.swap(again);
        if (todo.empty() || round >= std::size(kRecheckDelaysMs)) break;
        co_await Sleep(loop_, kRecheckDelaysMs[round], &cancel_);
        if (cancel_.cancelled()) throw FetchError("cancelled");
    }
    st.served = json::array();
    std::string first_stale;
    for (const auto& r : results) {
        bool ok = r.leaf && r.leaf->der == issued->der;
        st.served.push_back({{"listener", r.target.listener}, {"port", r.target.port}, {"backend", r.target.backend},
                             {"sni", r.target.sni}, {"current", ok},
                             {"serial", r.leaf ? r.leaf->serial_hex : ""},
                             {"not_after", r.leaf ? r.leaf->not_after : 0}, {"error", r.error}});
        if (ok) {
            core::log_info("served_ok").kv("certificate", c.name).kv("listener", r.target.listener).kv("sni", r.target.sni);
            continue;
        }
        std::string msg = describe_stale(r);
        core::log_error("served_stale").kv("certificate", c.name).kv("sni", r.target.sni).kv("error", msg);
        if (first_stale.empty()) first_stale = msg;
    }
    st.last_error = first_stale;
}

// A local control socket, storage/control.sock (mode 0600): `sniroute certs renew NAME` writes
// "renew NAME" and gets one line back when the renewal has finished. It lives from the first
// start() to stop(), so a renew request to a manager with nothing to do is still answered.
void Manager::start_control_socket() {
    const std::string& storage = snap_->config().acme.storage;
    std::string path = storage + "/control.sock";
    std::string err;
    // sun_path holds 108 bytes, and libuv 1.44 binds a silently truncated path.
    if (path.size() >= sizeof(sockaddr_un{}.sun_path)) err = "path too long";
    else ensure_dir(storage, 0700, err);
    if (!err.empty()) {
        core::log_warn("control_socket_failed").kv("path", path).kv("error", err);
        return;
    }
    ::unlink(path.c_str());
    uv_pipe_init(loop_, &control_, 0);
    control_.data = this;
    control_open_ = true;
    mode_t old = ::umask(0077);
    int r = uv_pipe_bind(&control_, path.c_str());
    ::umask(old);
    if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(&control_), 16, on_control_connection);
    if (r != 0) core::log_warn("control_socket_failed").kv("path", path).kv("error", uv_strerror(r));
}

void Manager::close_conn(uv_stream_t* s) {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(s))) return;
    uv_close(reinterpret_cast<uv_handle_t*>(s), [](uv_handle_t* h) noexcept {
        auto* c = static_cast<ControlConn*>(h->data);
        Manager* m = c->manager;
        m->conns_.erase(c);
        delete c;
        // The last connection of a stopping manager may be what stop() is waiting for.
        if (m->stopping_ && !m->control_open_ && m->conns_.empty() && m->stopped_) std::exchange(m->stopped_, nullptr)();
    });
}

void Manager::reply(uv_stream_t* s, const std::string& text) {
    // Replies are one short line; a client too slow to take it loses it.
    std::string msg = text + "\n";
    uv_buf_t b = uv_buf_init(msg.data(), static_cast<unsigned>(msg.size()));
    uv_try_write(s, &b, 1);
    close_conn(s);
}

void Manager::on_control_connection(uv_stream_t* server, int status) noexcept {
    auto* m = static_cast<Manager*>(server->data);
    if (status < 0 || m->stopping_) return;
    auto* conn = new ControlConn;
    conn->manager = m;
    uv_pipe_init(m->loop_, &conn->pipe, 0);
    conn->pipe.data = conn;
    m->conns_.insert(conn);
    auto* stream = reinterpret_cast<uv_stream_t*>(&conn->pipe);
    if (uv_accept(server, stream) != 0) return m->close_conn(stream);
    int r = uv_read_start(
        stream,
        [](uv_handle_t* h, size_t, uv_buf_t* b) noexcept {
            auto* c = static_cast<ControlConn*>(h->data);
            *b = uv_buf_init(c->buf, sizeof c->buf);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) noexcept {
            auto* c = static_cast<ControlConn*>(s->data);
            Manager* m = c->manager;
            if (n < 0) return m->close_conn(s);
            c->line.append(b->base, static_cast<size_t>(n));
            size_t nl = c->line.find('\n');
            if (nl == std::string::npos) {
                if (c->line.size() > 256) m->reply(s, "error line too long");
                return;
            }
            uv_read_stop(s);
            try {
                m->on_control_line(s, c->line.substr(0, nl));
            } catch (...) {
                m->close_conn(s);
            }
        });
    if (r != 0) m->close_conn(stream);
}

void Manager::on_control_line(uv_stream_t* client, const std::string& line) {
    if (!line.starts_with("renew ")) return reply(client, "error unknown command");
    std::string name = line.substr(6);
    bool known = false;
    for (const auto& c : snap_->config().certificates) known = known || c.name == name;
    if (!known) return reply(client, "error unknown certificate " + name);
    if (!running_) return reply(client, "error ACME client not running");
    core::log_info("acme_renew_requested").kv("certificate", name);
    forced_[name] = true;
    waiting_[name].push_back(client);
    wake_.cancel();
}

}  // namespace sniroute::acme

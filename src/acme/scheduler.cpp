#include "acme/scheduler.hpp"

#include <algorithm>
#include <climits>
#include <random>

#include "acme/cert.hpp"
#include "acme/renewal.hpp"
#include "acme/store.hpp"
#include "core/log.hpp"
#include "core/time.hpp"

namespace sniroute::acme {

namespace {

constexpr int64_t kMaxSleepS = 3600;  // re-evaluate at least hourly
constexpr int64_t kBackoffBaseS = 60;
constexpr int64_t kBackoffCapS = 24 * 3600;
constexpr int kBackoffMaxShift = 20;        // 60 s << 20 is far past the cap already
constexpr int64_t kRateLimitFloorS = 3600;  // a rate-limited CA is left alone for an hour at least
constexpr int64_t kAriRefreshS = 6 * 3600;
constexpr size_t kMaxCertFile = 1 << 20;

std::mt19937_64& rng() {
    static std::mt19937_64 g{std::random_device{}()};
    return g;
}

// A point of [0, span) fixed per name: the same certificate always lands at the same offset.
int64_t name_offset(const std::string& name, int64_t span) {
    return static_cast<int64_t>(std::hash<std::string>{}(name) % static_cast<uint64_t>(span));
}

}  // namespace

int64_t renewal_due(const config::Certificate& c, const CertState& st, int64_t now) {
    int64_t due = now;
    auto pem = read_file(c.cert_file, kMaxCertFile);
    std::optional<CertInfo> info = pem ? parse_cert_pem(*pem) : std::nullopt;
    if (info && covers(*info, c.domains)) {
        int64_t lifetime = info->not_after - info->not_before;
        // A third of the lifetime left, less up to 1% of it so many instances spread out.
        int64_t jitter = lifetime > 100 ? name_offset(c.name, lifetime / 100) : 0;
        due = info->not_after - lifetime / 3 - jitter;
        // The window is for the certificate it was asked about; a newer one on disk has its own.
        if (st.ari_end > st.ari_start && st.ari_start > 0 && !st.ari_cert.empty() && ari_cert_id(*pem) == st.ari_cert) {
            // Inside the CA's suggested window (RFC 9773 4.2), at a point fixed per name.
            due = std::min(due, st.ari_start + name_offset(c.name, st.ari_end - st.ari_start));
        }
    }
    return std::max(due, st.next_attempt);
}

int64_t backoff_next_attempt(int failures, const Failure& f, int64_t now, uint64_t jitter) {
    int shift = std::clamp(failures - 1, 0, kBackoffMaxShift);
    int64_t delay = std::min(kBackoffCapS, kBackoffBaseS << shift);
    delay += static_cast<int64_t>(jitter % static_cast<uint64_t>(delay / 10 + 1));
    if (f.rate_limited) delay = std::max(delay, kRateLimitFloorS);
    // The CA's Retry-After wins when longer.
    delay = std::max(delay, static_cast<int64_t>(f.retry_after_s));
    return now + delay;
}

int64_t effective_due(const CertFacts& f, int64_t now) {
    int64_t due = f.forced ? now : f.due;
    if (f.pending) due = std::min(due, std::max(now, f.next_attempt));
    return due;
}

Plan plan_next(const std::vector<CertFacts>& certs, int64_t now) {
    std::optional<size_t> next;
    int64_t next_due = INT64_MAX;
    for (size_t i = 0; i < certs.size(); ++i) {
        int64_t due = effective_due(certs[i], now);
        if (due < next_due) next_due = due, next = i;
    }
    if (next && next_due <= now) return Plan{next, 0};
    return Plan{std::nullopt, std::min(next_due - now, kMaxSleepS)};
}

bool ari_refresh_due(const CertState& st, const std::string& id, int64_t now) {
    return now - st.ari_checked > kAriRefreshS || id != st.ari_cert;
}

void record_renewal_info(CertState& st, const std::string& id, const std::optional<RenewalWindow>& window, bool failed,
                         int64_t now) {
    // A CA that cannot be reached now leaves a known window for this certificate.
    if (!failed || id != st.ari_cert) {
        st.ari_start = window ? window->start : 0;
        st.ari_end = window ? window->end : 0;
        st.ari_cert = id;
    }
    st.ari_checked = now;
}

std::string record_success(CertState& st, int64_t now) {
    st.failures = 0;
    st.next_attempt = 0;
    st.last_success = now;
    // The window was for the replaced certificate; the new one is asked about next pass.
    st.ari_start = st.ari_end = st.ari_checked = 0;
    st.ari_cert.clear();
    // Issued, but the deploy's check may have found a port still serving the old one.
    return st.last_error.empty() ? std::string(kOkAnswer) : error_answer(st.last_error);
}

std::string record_failure(CertState& st, const std::string& error, const Failure& f, int64_t now, uint64_t jitter) {
    ++st.failures;
    st.next_attempt = backoff_next_attempt(st.failures, f, now, jitter);
    st.last_error = error;
    return error_answer(error);
}

Scheduler::Scheduler(uv_loop_t* loop, const route::SnapshotPtr& snap, http::MemoryTokenStore& tokens,
                     ControlServer& control)
    : loop_(loop), snap_(snap), tokens_(tokens), control_(control) {}

void Scheduler::request(const std::string& name, ControlConn* conn) {
    forced_[name] = true;
    waiting_[name].push_back(conn);
    wake_.cancel();
}

void Scheduler::stop() {
    cancel_.cancel();
    wake_.cancel();
}

void Scheduler::answer_waiting(const std::string& text) {
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& [name, conns] : waiting)
        for (auto* conn : conns) control_.reply(conn, text);
}

void Scheduler::set_up() {
    const config::Acme& acme = snap_->config().acme;
    Key key = load_account_key(acme.storage);
    tls_ = std::make_unique<TlsClientContext>(acme.ca_bundle);
    client_ = std::make_unique<Client>(loop_, tls_->get(),
                                       AccountSettings{acme.directory, acme.email, acme.eab_kid, acme.eab_hmac_key},
                                       std::move(key), tokens_, cancel_);
    remove_stale_files(snap_->config());
    core::log_info("acme_started")
        .kv("directory", acme.directory)
        .kv("certificates", static_cast<uint64_t>(snap_->config().certificates.size()));
}

// Renew-now requests for names a reload removed would otherwise wait forever.
void Scheduler::drop_unknown_requests(const config::Config& cfg) {
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        bool known = false;
        for (const auto& c : cfg.certificates) known = known || c.name == it->first;
        if (known) {
            ++it;
            continue;
        }
        std::vector<ControlConn*> conns = std::move(it->second);
        std::string name = it->first;
        it = waiting_.erase(it);
        for (auto* conn : conns) control_.reply(conn, error_answer("unknown certificate " + name));
    }
}

// Gathers the facts of every certificate, asking the CA about renewal windows on the way, and
// decides. A cancelled pass returns an empty plan.
Task<Plan> Scheduler::plan_pass(route::SnapshotPtr snap) {
    const config::Config& cfg = snap->config();
    int64_t now = core::unix_now_s();
    std::vector<CertFacts> facts;
    for (const auto& c : cfg.certificates) {
        if (!states_.count(c.name)) states_[c.name] = load_state(cfg, c.name);
        CertState& st = states_[c.name];
        // Ask the CA when to renew (ARI), now and then, and at once about a certificate that
        // replaced the one asked about; failures just mean no window.
        std::optional<std::string> id;
        if (auto pem = read_file(c.cert_file, kMaxCertFile)) id = ari_cert_id(*pem);
        if (id && ari_refresh_due(st, *id, now)) {
            std::optional<RenewalWindow> window;
            bool failed = false;
            try {
                window = co_await client_->renewal_info(*id);
            } catch (const std::exception&) {
                failed = true;
            }
            if (cancel_.cancelled()) co_return Plan{};
            record_renewal_info(st, *id, window, failed, now);
        }
        CertFacts f;
        f.forced = forced_[c.name];
        f.due = f.forced ? now : renewal_due(c, st, now);
        f.pending = read_pending(cert_files(cfg, c.name), c).has_value();
        f.next_attempt = st.next_attempt;
        facts.push_back(f);
    }
    co_return plan_next(facts, now);
}

Task<void> Scheduler::run() {
    set_up();
    states_.clear();  // read again from the files: a run after a reload starts as a restart would
    while (!cancel_.cancelled()) {
        route::SnapshotPtr snap = snap_;  // this pass works on one config, even across a reload
        const auto& certs = snap->config().certificates;
        if (certs.empty()) break;
        drop_unknown_requests(snap->config());
        Plan plan = co_await plan_pass(snap);
        if (cancel_.cancelled()) break;
        if (!plan.renew) {
            co_await Sleep(loop_, static_cast<uint64_t>(plan.sleep_s) * 1000, &wake_);
            wake_.reset();
            continue;
        }
        co_await renew_one(snap, certs[*plan.renew]);
    }
}

// Runs one renewal and records its outcome; the requests that asked for it get the result.
Task<void> Scheduler::renew_one(route::SnapshotPtr snap, const config::Certificate& c) {
    CertState& st = states_[c.name];
    forced_[c.name] = false;
    // Requests that arrive while it runs set forced_ again and are answered by the next
    // renewal, which starts right after.
    std::vector<ControlConn*> answering;
    if (auto it = waiting_.find(c.name); it != waiting_.end()) {
        answering = std::move(it->second);
        waiting_.erase(it);
    }
    core::log_info("acme_renewing").kv("certificate", c.name).kv("domains", static_cast<uint64_t>(c.domains.size()));
    std::string error;
    Failure failure;
    // A named local: g++ 12 mishandles braced temporaries inside a co_await (see client.cpp).
    RenewalContext ctx{loop_, *client_, cancel_, &counts_[c.name].deploy_failures};
    try {
        co_await renew(ctx, snap, c, st);
    } catch (const AcmeError& e) {
        error = e.what();
        failure.retry_after_s = e.retry_after_s;
        failure.rate_limited = e.rate_limited();
    } catch (const std::exception& e) {
        error = e.what();
    }
    if (cancel_.cancelled()) {
        // These requests are no longer in waiting_, where answer_waiting would find them;
        // without this their clients saw only EOF.
        for (auto* conn : answering) control_.reply(conn, error_answer("sniroute is shutting down"));
        co_return;
    }
    std::string answer;
    int64_t now = core::unix_now_s();
    if (error.empty()) {
        ++counts_[c.name].renewals_ok;
        answer = record_success(st, now);
    } else {
        ++counts_[c.name].renewals_failed;
        answer = record_failure(st, error, failure, now, rng()());
        core::log_error("acme_failed")
            .kv("certificate", c.name)
            .kv("error", error)
            .kv("retry_in_s", st.next_attempt - now);
    }
    save_state(snap->config(), c.name, st);
    for (auto* conn : answering) control_.reply(conn, answer);
}

}  // namespace sniroute::acme

#include "acme/renewal.hpp"

#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acme/cert.hpp"
#include "acme/deploy.hpp"
#include "acme/probe.hpp"
#include "acme/store.hpp"
#include "core/log.hpp"

namespace sniroute::acme {

using nlohmann::json;

namespace {

constexpr size_t kMaxCertFile = 1 << 20;
constexpr int kProbeTimeoutMs = 5000;
constexpr uint64_t kRecheckDelaysMs[] = {3'000, 10'000};
constexpr int kDeployAttempts = 3;
constexpr uint64_t kDeployRetryStepMs = 2'000;  // 2 s after the first failure, 4 s after the second

// An awaited sleep that shutdown cut short ends the renewal.
void throw_if_cancelled(const Canceller& cancel) {
    if (cancel.cancelled()) throw FetchError("cancelled");
}

// Issue: the pair to install, from the pending files when a crash or restart left one (it is
// used, not ordered again), or freshly ordered and saved as pending before anything else.
Task<PendingPair> issue(RenewalContext ctx, const config::Config& cfg, const config::Certificate& c,
                        const CertFiles& files) {
    if (std::optional<PendingPair> pending = read_pending(files, c)) {
        core::log_info("acme_resuming").kv("certificate", c.name).kv("serial", pending->info.serial_hex);
        co_return std::move(*pending);
    }
    std::string replaces;
    if (auto old = read_file(c.cert_file, kMaxCertFile))
        if (auto id = ari_cert_id(*old)) replaces = *id;
    auto type = parse_key_type(cfg.acme.key_type);
    Issued issued = co_await ctx.client.issue(c.domains, type.value_or(KeyType::EcdsaP256), replaces);
    std::string err;
    if (!write_pending(files, issued.chain_pem, issued.key_pem, err))
        throw std::runtime_error("cannot save issued certificate: " + err);
    PendingPair pair;
    pair.chain = std::move(issued.chain_pem);
    pair.key_pem = std::move(issued.key_pem);
    std::optional<CertInfo> info = parse_cert_pem(pair.chain);
    if (info) pair.info = std::move(*info);
    core::log_info("acme_issued")
        .kv("certificate", c.name)
        .kv("serial", info ? pair.info.serial_hex : "?")
        .kv("not_after", info ? format_date(pair.info.not_after) : "?");
    co_return pair;
}

// Settle: new certificates may not be in the CT logs yet; browsers reject them until they are
// (the mox case). Deploy only after the configured wait.
Task<void> settle(RenewalContext ctx, const config::Certificate& c) {
    if (c.settle_ms == 0) co_return;
    core::log_info("acme_settling").kv("certificate", c.name).kv("settle_ms", c.settle_ms);
    co_await Sleep(ctx.loop, c.settle_ms, &ctx.cancel);
    throw_if_cancelled(ctx.cancel);
}

// Install: the same pair again (after a crash or a failed deploy) changes nothing on disk.
void install(const config::Certificate& c, const PendingPair& pair) {
    std::string err;
    if (!install_pair(c.cert_file, c.key_file, pair.chain, pair.key_pem, err))
        throw std::runtime_error("install " + c.cert_file + ": " + err);
    core::log_info("acme_installed").kv("certificate", c.name).kv("cert_file", c.cert_file).kv("key_file", c.key_file);
}

// Deploy: every command, in order, each retried twice; their output goes to the log.
Task<void> deploy(RenewalContext ctx, const config::Certificate& c) {
    std::string domains;
    for (const auto& d : c.domains) domains += (domains.empty() ? "" : " ") + d;
    // What certbot hands its deploy hooks (RENEWED_LINEAGE, RENEWED_DOMAINS), under our names.
    std::vector<std::string> env = {"SNIROUTE_CERT_NAME=" + c.name, "SNIROUTE_DOMAINS=" + domains,
                                    "SNIROUTE_CERT_FILE=" + c.cert_file, "SNIROUTE_KEY_FILE=" + c.key_file,
                                    "SNIROUTE_PREVIOUS_CERT_FILE=" + c.cert_file + ".prev"};
    for (const auto& cmd : c.deploy) {
        for (int attempt = 1;; ++attempt) {
            CommandResult r = co_await RunCommand(ctx.loop, cmd, env, c.deploy_timeout_ms, &ctx.cancel);
            core::LogLine line(r.ok() ? core::Level::Info : core::Level::Error, r.ok() ? "deploy" : "deploy_failed");
            line.kv("certificate", c.name).kv("command", cmd).kv("attempt", attempt).kv("exit", r.exit_status);
            if (r.timed_out) line.kv("error", "timed out");
            // Commands end their output with a newline; the log line has its own.
            std::string_view out = r.output;
            while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' '))
                out.remove_suffix(1);
            if (!out.empty()) line.kv("output", out);
            line.emit();
            if (r.ok()) break;
            if (ctx.deploy_failures) ++*ctx.deploy_failures;
            if (attempt >= kDeployAttempts || ctx.cancel.cancelled())
                throw std::runtime_error("deploy command failed: " + cmd);
            co_await Sleep(ctx.loop, kDeployRetryStepMs * static_cast<unsigned>(attempt), &ctx.cancel);
            throw_if_cancelled(ctx.cancel);
        }
    }
}

json served_entry(const ProbeResult& r, bool current) {
    return {{"listener", r.target.listener},
            {"port", r.target.port},
            {"backend", r.target.backend},
            {"sni", r.target.sni},
            {"current", current},
            {"serial", r.leaf ? r.leaf->serial_hex : ""},
            {"not_after", r.leaf ? r.leaf->not_after : 0},
            {"error", r.error}};
}

// Check: every TLS route that serves one of the names, as a client would see it. The probes
// block, so they run on the thread pool, one at a time.
Task<void> check_served(RenewalContext ctx, route::SnapshotPtr snap, const config::Certificate& c,
                        std::string chain_pem, CertState& st) {
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
            throw_if_cancelled(ctx.cancel);
            co_await InPool(ctx.loop, [&results, &targets, i] { results[i] = probe(targets[i], kProbeTimeoutMs); });
            if (!results[i].leaf || results[i].leaf->der != issued->der) again.push_back(i);
        }
        todo.swap(again);
        if (todo.empty() || round >= std::size(kRecheckDelaysMs)) break;
        co_await Sleep(ctx.loop, kRecheckDelaysMs[round], &ctx.cancel);
        throw_if_cancelled(ctx.cancel);
    }
    st.served = json::array();
    std::string first_stale;
    for (const auto& r : results) {
        bool ok = r.leaf && r.leaf->der == issued->der;
        st.served.push_back(served_entry(r, ok));
        if (ok) {
            core::log_info("served_ok")
                .kv("certificate", c.name)
                .kv("listener", r.target.listener)
                .kv("sni", r.target.sni);
            continue;
        }
        std::string msg = describe_stale(r);
        core::log_error("served_stale").kv("certificate", c.name).kv("sni", r.target.sni).kv("error", msg);
        if (first_stale.empty()) first_stale = msg;
    }
    st.last_error = first_stale;
}

}  // namespace

Task<void> renew(RenewalContext ctx, route::SnapshotPtr snap, const config::Certificate& c, CertState& st) {
    CertFiles files = cert_files(snap->config(), c.name);
    std::string err;
    if (!ensure_dir(files.dir, 0700, err)) throw std::runtime_error(files.dir + ": " + err);
    st.last_error.clear();

    PendingPair pair = co_await issue(ctx, snap->config(), c, files);
    co_await settle(ctx, c);
    install(c, pair);
    co_await deploy(ctx, c);
    // Only a finished deploy lets the pair go: until then the scheduler resumes it.
    remove_pending(files);
    co_await check_served(ctx, snap, c, std::move(pair.chain), st);
}

}  // namespace sniroute::acme

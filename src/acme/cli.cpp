// `sniroute certs list | renew NAME | check`: the operator's view of managed certificates and of
// what every TLS port really serves. `renew` asks the running instance over its control socket;
// `list` and `check` read the config, the files and the live ports themselves.
#include "acme/cli.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#include "acme/cert.hpp"
#include "acme/cert_state.hpp"
#include "acme/control_socket.hpp"
#include "acme/probe.hpp"
#include "acme/scheduler.hpp"
#include "acme/store.hpp"
#include "core/time.hpp"

namespace sniroute::acme {

namespace {

constexpr int kProbeTimeoutMs = 5000;
constexpr int kRenewWaitMs = 15 * 60 * 1000;

std::optional<CertInfo> managed_leaf(const config::Certificate& c) {
    auto pem = read_file(c.cert_file, 1 << 20);
    return pem ? parse_cert_pem(*pem) : std::nullopt;
}

const config::Certificate* managing(const config::Config& cfg, const std::string& name) {
    for (const auto& c : cfg.certificates)
        for (const auto& d : c.domains)
            if (d == name) return &c;
    return nullptr;
}

int cmd_list(const route::Snapshot& snap) {
    const auto& cfg = snap.config();
    if (cfg.certificates.empty()) {
        std::puts("no [[certificates]] configured");
        return 0;
    }
    int rc = 0;
    for (const auto& c : cfg.certificates) {
        auto leaf = managed_leaf(c);
        CertState st = load_state(cfg, c.name);
        std::string domains;
        for (const auto& d : c.domains) domains += (domains.empty() ? "" : ",") + d;
        std::printf("%s\n  domains:      %s\n", c.name.c_str(), domains.c_str());
        std::printf("  not_after:    %s\n", leaf ? format_date(leaf->not_after).c_str() : "(no certificate yet)");
        std::printf("  next_renewal: %s\n", format_date(renewal_due(c, st, core::unix_now_s())).c_str());
        std::printf("  last_error:   %s\n", st.last_error.empty() ? "-" : st.last_error.c_str());
        for (const auto& d : c.domains)
            for (const auto& t : targets_for(snap, d)) {
                ProbeResult r = probe(t, kProbeTimeoutMs);
                bool current = leaf && r.leaf && r.leaf->der == leaf->der;
                if (!current) rc = 1;
                std::printf("  served:       %-22s :%-5u %-10s %s\n", d.c_str(), t.port, t.backend.c_str(),
                            current ? "current" : (r.leaf ? "STALE" : ("unreachable: " + r.error).c_str()));
            }
    }
    return rc;
}

int cmd_check(const route::Snapshot& snap, int days) {
    const auto& cfg = snap.config();
    // Names to ask each TLS listener about: its exact route names, and every managed domain.
    std::set<std::string> names;
    for (const auto& l : cfg.listeners)
        for (const auto& r : l.routes)
            for (const auto& m : r.match)
                if (!m.starts_with("*.")) names.insert(m);
    for (const auto& c : cfg.certificates)
        for (const auto& d : c.domains) names.insert(d);
    int rc = 0, probed = 0;
    std::printf("%-12s %-6s %-26s %-12s %-11s %-5s %-8s %s\n", "LISTENER", "PORT", "NAME", "BACKEND", "NOT_AFTER",
                "DAYS", "MANAGED", "SUBJECT / ISSUER");
    for (size_t li = 0; li < cfg.listeners.size(); ++li) {
        const auto& l = cfg.listeners[li];
        if (l.protocol != config::Protocol::Tls || l.bind.empty()) continue;
        for (const auto& name : names) {
            route::Decision d = snap.route(li, name);
            // A name that falls to the default backend is probed only if it is managed; the
            // default backend's own names are covered by its routes.
            if (!d.backend || (!d.route && !managing(cfg, name))) continue;
            ProbeTarget t{l.name, l.bind.front().port(), d.backend->name, d.backend->servers, d.backend->proxy_protocol,
                          name};
            ProbeResult r = probe(t, kProbeTimeoutMs);
            ++probed;
            std::string managed = "-";
            if (const auto* c = managing(cfg, name)) {
                auto leaf = managed_leaf(*c);
                bool current = leaf && r.leaf && r.leaf->der == leaf->der;
                managed = current ? "yes" : "STALE";
                if (!current) rc = 1;
            }
            if (!r.leaf) {
                std::printf("%-12s :%-5u %-26s %-12s %-11s %-5s %-8s error: %s\n", l.name.c_str(), t.port, name.c_str(),
                            t.backend.c_str(), "-", "-", managed.c_str(), r.error.c_str());
                rc = 1;
                continue;
            }
            // Compared in seconds: whole days round toward zero, so a certificate that expired
            // less than a day ago would count as "0 days left" and pass --days 0.
            int64_t left_s = r.leaf->not_after - core::unix_now_s();
            int64_t left = left_s / 86400;
            if (left_s <= 0 || left_s < static_cast<int64_t>(days) * 86400) rc = 1;
            std::printf("%-12s :%-5u %-26s %-12s %-11s %-5lld %-8s %s / %s\n", l.name.c_str(), t.port, name.c_str(),
                        t.backend.c_str(), format_date(r.leaf->not_after).c_str(), static_cast<long long>(left),
                        managed.c_str(), r.leaf->subject.c_str(), r.leaf->issuer.c_str());
        }
    }
    if (probed == 0) std::puts("no TLS routes to check");
    return rc;
}

int cmd_renew(const config::Config& cfg, const std::string& name) {
    ControlCall call = control_call(cfg.acme.storage, renew_request(name), kRenewWaitMs);
    switch (call.status) {
        case ControlCall::Status::PathTooLong:
            std::fprintf(stderr, "control socket path too long: %s\n", call.path.c_str());
            return 2;
        case ControlCall::Status::Unreachable:
            std::fprintf(stderr, "cannot reach the running sniroute at %s: %s\n", call.path.c_str(),
                         call.error.c_str());
            return 2;
        case ControlCall::Status::SendFailed: return 2;
        case ControlCall::Status::NoAnswer: std::fputs("no answer from sniroute\n", stderr); return 2;
        case ControlCall::Status::Answered: break;
    }
    std::printf("%s: %s\n", name.c_str(), call.answer.c_str());
    return call.answer == kOkAnswer ? 0 : 1;
}

}  // namespace

int certs_command(const std::string& sub, const std::vector<std::string>& args, const config::Config& cfg) {
    route::Snapshot snap(cfg);
    if (sub == "list") return cmd_list(snap);
    if (sub == "check") {
        // A typo must not turn into --days 0 and a check that passes what it should flag.
        int days = 14;
        for (size_t i = 0; i < args.size(); ++i) {
            const std::string& a = args[i];
            std::string v;
            if (a == "--days" && i + 1 < args.size())
                v = args[++i];
            else if (a.starts_with("--days="))
                v = a.substr(7);
            else {
                std::fprintf(stderr, "sniroute certs check: unexpected argument '%s'\n", a.c_str());
                return 2;
            }
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), days);
            if (ec != std::errc() || end != v.data() + v.size() || days < 0 || days > 3650) {
                std::fprintf(stderr, "sniroute certs check: --days wants a number of days from 0 to 3650, not '%s'\n",
                             v.c_str());
                return 2;
            }
        }
        return cmd_check(snap, days);
    }
    if (sub == "renew") {
        if (args.empty()) {
            std::fputs("usage: sniroute certs renew NAME --config FILE\n", stderr);
            return 2;
        }
        return cmd_renew(cfg, args.front());
    }
    std::fprintf(stderr, "sniroute certs: unknown subcommand '%s' (list, renew, check)\n", sub.c_str());
    return 2;
}

}  // namespace sniroute::acme

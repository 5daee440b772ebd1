#include "server/metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <utility>

#include "core/prometheus.hpp"

namespace sniroute::server {

namespace {

// One listener's counters, summed over the workers.
struct ListenerSum {
    uint64_t opened = 0, closed = 0, accept_failures = 0;
    uint64_t refused[proxy::kRefuseReasonCount] = {};
    uint64_t hellos[proxy::kHelloResultCount] = {};
    std::map<std::string, uint64_t> routes, http_requests;
    struct Pair {
        uint64_t outcomes[proxy::kOutcomeCount] = {};
        uint64_t up = 0, down = 0;
    };
    std::map<std::string, Pair> pairs;  // by backend name
};

struct BackendSum {
    uint64_t buckets[proxy::BackendStats::kBucketsUs.size() + 1] = {};
    uint64_t sum_us = 0;
    std::map<std::string, uint64_t> failures;  // by "SERVER REASON"
};

void add_keyed(std::map<std::string, uint64_t>& into, const proxy::KeyedCounts& counts) {
    for (const auto& k : counts) into[k->key] += k->count.value();
}

// "A B" as the two label values A and B (A may be empty: "" before the space).
std::pair<std::string_view, std::string_view> split_key(std::string_view key) {
    size_t sp = key.find(' ');
    return {key.substr(0, sp), sp == std::string_view::npos ? std::string_view() : key.substr(sp + 1)};
}

std::map<std::string, BackendSum> sum_backends(const std::vector<std::unique_ptr<Worker>>& workers) {
    std::map<std::string, BackendSum> sums;
    for (const auto& w : workers)
        w->stats().visit_backends([&](const proxy::BackendStats& b) {
            BackendSum& s = sums[b.name];
            for (size_t i = 0; i < b.buckets.size(); ++i) s.buckets[i] += b.buckets[i].value();
            s.sum_us += b.connect_us_sum.value();
            add_keyed(s.failures, b.failures);
        });
    return sums;
}

std::map<std::string, ListenerSum> sum_workers(const std::vector<std::unique_ptr<Worker>>& workers) {
    std::map<std::string, ListenerSum> sums;
    for (const auto& w : workers)
        w->stats().visit([&](const proxy::ListenerStats& l) {
            ListenerSum& s = sums[l.name];
            // closed before opened: see ListenerStats.
            s.closed += l.closed.value();
            s.opened += l.opened.value();
            s.accept_failures += l.accept_failures.value();
            for (size_t i = 0; i < proxy::kRefuseReasonCount; ++i) s.refused[i] += l.refused[i].value();
            for (size_t i = 0; i < proxy::kHelloResultCount; ++i) s.hellos[i] += l.hellos[i].value();
            add_keyed(s.routes, l.routes);
            add_keyed(s.http_requests, l.http_requests);
            for (const auto& p : l.pairs) {
                ListenerSum::Pair& sp = s.pairs[p->backend];
                for (size_t i = 0; i < proxy::kOutcomeCount; ++i) sp.outcomes[i] += p->outcomes[i].value();
                sp.up += p->bytes_up.value();
                sp.down += p->bytes_down.value();
            }
        });
    return sums;
}

// The resident set, from /proc/self/statm (pages).
uint64_t resident_bytes() {
    unsigned long size = 0, resident = 0;
    FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    int n = std::fscanf(f, "%lu %lu", &size, &resident);
    std::fclose(f);
    return n == 2 ? static_cast<uint64_t>(resident) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

uint64_t open_fds() {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return 0;
    uint64_t n = 0;
    while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n > 0 ? n - 1 : 0;  // not counting the descriptor opendir itself holds
}

void process_metrics(core::Exposition& e, const ControlStats& cs) {
    e.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    e.sample("process_resident_memory_bytes", {}, resident_bytes());
    e.family("process_open_fds", "gauge", "Number of open file descriptors.");
    e.sample("process_open_fds", {}, open_fds());
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        e.family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
        e.sample("process_max_fds", {}, static_cast<uint64_t>(rl.rlim_cur));
    }
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    e.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    e.sample("process_cpu_seconds_total", {}, cpu);
    e.family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
    e.sample("process_start_time_seconds", {}, static_cast<double>(cs.started_s));
}

}  // namespace

void certificate_metrics(core::Exposition& e, const std::vector<acme::CertMetric>& certs) {
    e.family(
        "sniroute_certificate_not_after_timestamp_seconds", "gauge",
        "Expiry of each managed certificate's cert_file as it is on disk, unix seconds (0: missing or unreadable).");
    for (const auto& c : certs)
        e.sample("sniroute_certificate_not_after_timestamp_seconds", {{"name", c.name}},
                 static_cast<double>(c.not_after));
    e.family("sniroute_certificate_renewals_total", "counter", "Renewals of each managed certificate, by result.");
    for (const auto& c : certs) {
        e.sample("sniroute_certificate_renewals_total", {{"name", c.name}, {"result", "ok"}}, c.counts.renewals_ok);
        e.sample("sniroute_certificate_renewals_total", {{"name", c.name}, {"result", "error"}},
                 c.counts.renewals_failed);
    }
    e.family("sniroute_certificate_served_current", "gauge",
             "1 when every port of the listener served the managed certificate at the last check, 0 when one served "
             "another (stale).");
    for (const auto& c : certs)
        for (const auto& [listener, current] : c.served)
            e.sample("sniroute_certificate_served_current", {{"name", c.name}, {"listener", listener}},
                     uint64_t{current ? 1u : 0u});
    e.family("sniroute_deploy_failures_total", "counter", "Deploy command runs that failed, retries included.");
    for (const auto& c : certs)
        e.sample("sniroute_deploy_failures_total", {{"name", c.name}}, c.counts.deploy_failures);
}

std::string render_metrics(const std::vector<std::unique_ptr<Worker>>& workers, const ControlStats& cs,
                           const std::vector<acme::CertMetric>& certs) {
    const auto sums = sum_workers(workers);
    core::Exposition e;

    e.family("sniroute_connections_total", "counter", "Connections that ended, by listener, backend and outcome.");
    for (const auto& [listener, s] : sums)
        for (const auto& [backend, p] : s.pairs)
            for (size_t i = 0; i < proxy::kOutcomeCount; ++i)
                e.sample("sniroute_connections_total",
                         {{"listener", listener},
                          {"backend", backend},
                          {"outcome", proxy::to_string(static_cast<proxy::Outcome>(i))}},
                         p.outcomes[i]);
    e.family("sniroute_connections_active", "gauge", "Connections open now, by listener.");
    for (const auto& [listener, s] : sums)
        e.sample("sniroute_connections_active", {{"listener", listener}}, s.opened - s.closed);
    e.family("sniroute_bytes_total", "counter",
             "Bytes relayed by connections that ended: up is client to backend, down is backend to client.");
    for (const auto& [listener, s] : sums)
        for (const auto& [backend, p] : s.pairs) {
            e.sample("sniroute_bytes_total", {{"listener", listener}, {"backend", backend}, {"direction", "up"}}, p.up);
            e.sample("sniroute_bytes_total", {{"listener", listener}, {"backend", backend}, {"direction", "down"}},
                     p.down);
        }
    e.family("sniroute_accept_failures_total", "counter",
             "Connections lost at accept(), mostly for want of file descriptors, by listener.");
    for (const auto& [listener, s] : sums)
        e.sample("sniroute_accept_failures_total", {{"listener", listener}}, s.accept_failures);

    e.family("sniroute_client_hello_total", "counter", "ClientHellos read on tls listeners, by listener and result.");
    for (const auto& [listener, s] : sums) {
        bool tls = false;  // listeners that never saw a hello (tcp, http) get no series
        for (uint64_t n : s.hellos) tls = tls || n > 0;
        if (!tls) continue;
        for (size_t i = 0; i < proxy::kHelloResultCount; ++i)
            e.sample("sniroute_client_hello_total",
                     {{"listener", listener}, {"result", proxy::to_string(static_cast<proxy::HelloResult>(i))}},
                     s.hellos[i]);
    }
    e.family("sniroute_route_total", "counter",
             "Routing decisions, by listener and route (its first pattern, default for the default backend, none "
             "when nothing matched).");
    for (const auto& [listener, s] : sums)
        for (const auto& [route, n] : s.routes)
            e.sample("sniroute_route_total", {{"listener", listener}, {"route", route}}, n);
    e.family("sniroute_http_requests_total", "counter",
             "Requests read on http listeners, by listener, status answered (empty when forwarded) and action.");
    for (const auto& [listener, s] : sums)
        for (const auto& [key, n] : s.http_requests) {
            auto [code, action] = split_key(key);
            e.sample("sniroute_http_requests_total", {{"listener", listener}, {"code", code}, {"action", action}}, n);
        }

    const auto backends = sum_backends(workers);
    e.family("sniroute_backend_connect_seconds", "histogram", "Time to connect to a backend server, by backend.");
    for (const auto& [backend, b] : backends) {
        uint64_t cumulative = 0;
        for (size_t i = 0; i < proxy::BackendStats::kBucketsUs.size(); ++i) {
            cumulative += b.buckets[i];
            char le[32];
            std::snprintf(le, sizeof le, "%g", static_cast<double>(proxy::BackendStats::kBucketsUs[i]) / 1e6);
            e.sample("sniroute_backend_connect_seconds_bucket", {{"backend", backend}, {"le", le}}, cumulative);
        }
        cumulative += b.buckets[proxy::BackendStats::kBucketsUs.size()];
        e.sample("sniroute_backend_connect_seconds_bucket", {{"backend", backend}, {"le", "+Inf"}}, cumulative);
        e.sample("sniroute_backend_connect_seconds_sum", {{"backend", backend}}, static_cast<double>(b.sum_us) / 1e6);
        // The count is the +Inf bucket itself, so the two agree however the owner's writes and
        // this scrape's reads interleave.
        e.sample("sniroute_backend_connect_seconds_count", {{"backend", backend}}, cumulative);
    }
    e.family("sniroute_backend_connect_failures_total", "counter",
             "Failed connects to backend servers, by backend, server and reason (refused, timeout, unreachable, "
             "error).");
    for (const auto& [backend, b] : backends)
        for (const auto& [key, n] : b.failures) {
            auto [server, reason] = split_key(key);
            e.sample("sniroute_backend_connect_failures_total",
                     {{"backend", backend}, {"server", server}, {"reason", reason}}, n);
        }

    e.family("sniroute_refused_total", "counter",
             "Connections closed at accept, before any byte was read or backend dialled, by listener and reason.");
    for (const auto& [listener, s] : sums)
        for (size_t i = 0; i < proxy::kRefuseReasonCount; ++i)
            e.sample("sniroute_refused_total",
                     {{"listener", listener}, {"reason", proxy::to_string(static_cast<proxy::RefuseReason>(i))}},
                     s.refused[i]);

    e.family("sniroute_config_reloads_total", "counter", "Configuration reloads (SIGHUP), by result.");
    e.sample("sniroute_config_reloads_total", {{"result", "ok"}}, cs.reloads_ok);
    e.sample("sniroute_config_reloads_total", {{"result", "error"}}, cs.reloads_failed);
    e.family("sniroute_config_last_reload_success_timestamp_seconds", "gauge",
             "When the configuration in force was loaded (start-up or the last good reload), unix seconds.");
    e.sample("sniroute_config_last_reload_success_timestamp_seconds", {}, static_cast<double>(cs.loaded_s));
    e.family("sniroute_workers", "gauge", "Worker event loops.");
    e.sample("sniroute_workers", {}, static_cast<uint64_t>(workers.size()));

    certificate_metrics(e, certs);
    process_metrics(e, cs);
    return e.text();
}

}  // namespace sniroute::server

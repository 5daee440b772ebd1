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
    struct Pair {
        uint64_t outcomes[proxy::kOutcomeCount] = {};
        uint64_t up = 0, down = 0;
    };
    std::map<std::string, Pair> pairs;  // by backend name
};

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

std::string render_metrics(const std::vector<std::unique_ptr<Worker>>& workers, const ControlStats& cs) {
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

    process_metrics(e, cs);
    return e.text();
}

}  // namespace sniroute::server

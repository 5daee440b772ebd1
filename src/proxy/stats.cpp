#include "proxy/stats.hpp"

namespace sniroute::proxy {

const char* to_string(RefuseReason r) {
    switch (r) {
        case RefuseReason::Banned: return "banned";
        case RefuseReason::Denied: return "denied";
        case RefuseReason::PerIpLimit: return "per_ip_limit";
        case RefuseReason::RateLimit: return "rate_limit";
        case RefuseReason::MaxConnections: return "max_connections";
    }
    return "?";
}

const char* to_string(HelloResult r) {
    switch (r) {
        case HelloResult::Sni: return "sni";
        case HelloResult::NoSni: return "no_sni";
        case HelloResult::NotTls: return "not_tls";
        case HelloResult::Malformed: return "malformed";
        case HelloResult::TooLarge: return "too_large";
        case HelloResult::Timeout: return "timeout";
    }
    return "?";
}

void BackendStats::observe_connect_us(uint64_t us) {
    size_t i = 0;
    while (i < kBucketsUs.size() && us > kBucketsUs[i]) ++i;
    buckets[i].add();
    connect_us_sum.add(us);
}

// The owner reads its own vectors without the lock: it is their only writer. It takes the lock
// only to append, which is what a concurrent visit() must not see half done.
template <class T, class KeyOf>
T& WorkerStats::find_or_add(std::vector<std::unique_ptr<T>>& v, std::string_view key, KeyOf key_of) {
    for (const auto& e : v)
        if (key_of(*e) == key) return *e;
    auto made = std::make_unique<T>(std::string(key));
    T& ref = *made;
    std::lock_guard lock(mu_);
    v.push_back(std::move(made));
    return ref;
}

ListenerStats& WorkerStats::listener(std::string_view name) {
    return find_or_add(listeners_, name, [](const ListenerStats& l) -> const std::string& { return l.name; });
}

PairStats& WorkerStats::pair(ListenerStats& l, std::string_view backend) {
    return find_or_add(l.pairs, backend, [](const PairStats& p) -> const std::string& { return p.backend; });
}

BackendStats& WorkerStats::backend(std::string_view name) {
    return find_or_add(backends_, name, [](const BackendStats& b) -> const std::string& { return b.name; });
}

KeyedCount& WorkerStats::keyed(KeyedCounts& counts, std::string_view key) {
    return find_or_add(counts, key, [](const KeyedCount& k) -> const std::string& { return k.key; });
}

}  // namespace sniroute::proxy

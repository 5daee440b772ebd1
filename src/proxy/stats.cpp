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

// The owner reads its own vectors without the lock: it is their only writer. It takes the lock
// only to append, which is what a concurrent visit() must not see half done.
ListenerStats& WorkerStats::listener(std::string_view name) {
    for (const auto& l : listeners_)
        if (l->name == name) return *l;
    auto made = std::make_unique<ListenerStats>(std::string(name));
    ListenerStats& ref = *made;
    std::lock_guard lock(mu_);
    listeners_.push_back(std::move(made));
    return ref;
}

PairStats& WorkerStats::pair(ListenerStats& l, std::string_view backend) {
    for (const auto& p : l.pairs)
        if (p->backend == backend) return *p;
    auto made = std::make_unique<PairStats>(std::string(backend));
    PairStats& ref = *made;
    std::lock_guard lock(mu_);
    l.pairs.push_back(std::move(made));
    return ref;
}

}  // namespace sniroute::proxy

#include "proxy/ip_table.hpp"

namespace sniroute::proxy {

IpTable::Shard& IpTable::shard(const core::IpAddress& a, size_t& hash) {
    hash = core::IpAddressHash{}(a);
    return shards_[hash % kShards];
}

IpTable::Admit IpTable::admit(const core::IpAddress& a, uint32_t max_conns, const core::Rate& rate, uint64_t now_ms,
                              bool& counted) {
    counted = false;
    size_t hash;
    Shard& s = shard(a, hash);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(a);
    if (it == s.map.end()) {
        if (s.map.size() >= per_shard_) {
            untracked_.fetch_add(1, std::memory_order_relaxed);
            return Admit::Untracked;
        }
        it = s.map.emplace(a, Entry{}).first;
        it->second.bucket.reset(rate, now_ms);
    }
    Entry& e = it->second;
    // The slot is checked before a token is taken: a connection refused for its count must not
    // also use up the rate, or a client at its limit could never get back in.
    if (max_conns > 0 && e.conns >= max_conns) return Admit::PerIpLimit;
    if (rate.limited() && !e.bucket.take(rate, now_ms)) return Admit::RateLimit;
    if (max_conns > 0) {
        ++e.conns;
        counted = true;
    }
    return Admit::Ok;
}

void IpTable::release(const core::IpAddress& a, const core::Rate& rate, uint64_t now_ms) {
    size_t hash;
    Shard& s = shard(a, hash);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(a);
    if (it == s.map.end()) return;  // cannot happen: a counted entry is never dropped
    Entry& e = it->second;
    if (e.conns > 0) --e.conns;
    if (e.conns == 0 && (!rate.limited() || e.bucket.full(rate, now_ms))) s.map.erase(it);
}

size_t IpTable::sweep(const core::Rate& rate, uint64_t now_ms) {
    size_t left = 0;
    for (Shard& s : shards_) {
        std::lock_guard lock(s.mu);
        for (auto it = s.map.begin(); it != s.map.end();) {
            if (it->second.conns == 0 && (!rate.limited() || it->second.bucket.full(rate, now_ms)))
                it = s.map.erase(it);
            else
                ++it;
        }
        left += s.map.size();
    }
    return left;
}

uint32_t IpTable::connections(const core::IpAddress& a) {
    size_t hash;
    Shard& s = shard(a, hash);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(a);
    return it == s.map.end() ? 0 : it->second.conns;
}

bool IpTable::full_line_due(uint64_t now_ms, uint64_t& untracked) {
    uint64_t last = full_logged_ms_.load(std::memory_order_relaxed);
    if (untracked_.load(std::memory_order_relaxed) == 0) return false;
    if (last != 0 && ms_since(last, now_ms) < RefusalLog::kIntervalMs) return false;
    // One worker wins the line; the others see the new stamp.
    if (!full_logged_ms_.compare_exchange_strong(last, now_ms == 0 ? 1 : now_ms)) return false;
    untracked = untracked_.exchange(0, std::memory_order_relaxed);
    return untracked > 0;
}

RefusalLog::Line RefusalLog::count(Entry& e, bool fresh, bool others, RefuseReason why, uint64_t now_ms) {
    e.reason = why;
    if (fresh || ms_since(e.stamp_ms, now_ms) >= kIntervalMs) {
        Line l{e.held + 1, others, why};
        e.stamp_ms = now_ms;
        e.held = 0;
        return l;
    }
    ++e.held;
    return {};
}

RefusalLog::Line RefusalLog::note(const core::IpAddress& a, RefuseReason why, uint64_t now_ms) {
    std::lock_guard lock(mu_);
    auto it = map_.find(a);
    if (it != map_.end()) return count(it->second, false, false, why, now_ms);
    if (map_.size() >= capacity_) {
        bool fresh = !others_seen_;
        others_seen_ = true;
        return count(others_, fresh, true, why, now_ms);
    }
    return count(map_.emplace(a, Entry{}).first->second, true, false, why, now_ms);
}

IpPolicyState& IpStates::for_listener(std::string_view name) {
    std::lock_guard lock(mu_);
    auto it = states_.find(name);
    if (it == states_.end()) it = states_.emplace(std::string(name), std::make_unique<IpPolicyState>()).first;
    return *it->second;
}

}  // namespace sniroute::proxy

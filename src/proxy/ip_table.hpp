// Per-IP state of the listeners that limit per-IP connections, shared by every worker.
//
// A client's connections land on any worker (SO_REUSEPORT spreads them by hash), so per-worker
// counts would multiply every limit by the number of workers. The table is therefore shared:
// sharded by address hash, a mutex a shard, so workers contend only when they touch the same
// shard at the same instant, for a few map operations. Only listeners with a limit touch it;
// one without pays no lock and no hash (Session::admit).
//
// Bounded: at most `capacity` addresses a listener. An entry goes when it holds no connection
// and its bucket is full again (then forgetting it changes nothing): at release when it can,
// else at the next sweep. When the table is full, a new address is let through untracked (fail
// open): under a flood of distinct addresses, refusing every newcomer would lock out everyone,
// which is the flood's aim; the addresses already tracked stay limited, and the listener's
// max_connections still bounds the total. The workers log ip_table_full, at most once a minute.
//
// State is kept by listener name (IpStates), like the traffic counters, so that it survives a
// reload: the counts of connections still open stay right, and a changed limit applies to
// them. The limits are passed to every call for the same reason.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/cidr.hpp"
#include "core/rate.hpp"
#include "proxy/stats.hpp"

namespace sniroute::proxy {

// Milliseconds from `then` to `now`, 0 if `now` is earlier: the workers' loop clocks are each a
// little behind another's, and a wrapped difference would pass for an interval long over.
inline uint64_t ms_since(uint64_t then, uint64_t now) { return now > then ? now - then : 0; }

class IpTable {
public:
    static constexpr size_t kDefaultCapacity = 65'536;
    static constexpr size_t kShards = 16;

    explicit IpTable(size_t capacity = kDefaultCapacity) : per_shard_(std::max<size_t>(1, capacity / kShards)) {}

    enum class Admit : uint8_t { Ok, Untracked, PerIpLimit, RateLimit };
    // A new connection from `a`. On Ok with max_conns > 0, the connection holds a slot of its
    // address (`counted` is set) and must give it back with release() exactly once.
    Admit admit(const core::IpAddress& a, uint32_t max_conns, const core::Rate& rate, uint64_t now_ms, bool& counted);
    void release(const core::IpAddress& a, const core::Rate& rate, uint64_t now_ms);
    // Drops the entries that hold nothing; returns how many are left.
    size_t sweep(const core::Rate& rate, uint64_t now_ms);
    // Connections counted for `a` now (tests).
    uint32_t connections(const core::IpAddress& a);
    // Whether to log ip_table_full now (at most once a minute); `untracked` gets the number of
    // addresses let through untracked since the last line.
    bool full_line_due(uint64_t now_ms, uint64_t& untracked);

private:
    struct Entry {
        uint32_t conns = 0;
        core::TokenBucket bucket;
    };
    // A cache line or more each, so two workers on two shards never share a line.
    struct alignas(64) Shard {
        std::mutex mu;
        std::unordered_map<core::IpAddress, Entry, core::IpAddressHash> map;
    };
    Shard& shard(const core::IpAddress& a, size_t& hash);

    size_t per_shard_;
    std::array<Shard, kShards> shards_;
    std::atomic<uint64_t> untracked_{0};
    std::atomic<uint64_t> full_logged_ms_{0};
};

// The ip_refused line's rate limit: at most one line per address per interval, saying how many
// were refused since the previous one, so that a flood does not flood the log. Refusals are
// off the hot path (the connection is dropped anyway), so one lock is enough. Bounded too: when
// `capacity` addresses are held, the others' refusals are summed under one pseudo-address
// ("others") with its own line.
class RefusalLog {
public:
    static constexpr uint64_t kIntervalMs = 60'000;
    static constexpr size_t kDefaultCapacity = 4'096;

    explicit RefusalLog(size_t capacity = kDefaultCapacity) : capacity_(capacity) {}

    struct Line {
        uint64_t count = 0;  // 0: hold this one back
        bool others = false;
        RefuseReason reason = RefuseReason::Denied;
    };
    Line note(const core::IpAddress& a, RefuseReason why, uint64_t now_ms);
    // Calls f(address, Line) for each held-back count whose interval is over (address is unset
    // for "others"), and forgets addresses quiet for an interval.
    template <class F>
    void flush(uint64_t now_ms, F&& f) {
        std::lock_guard lock(mu_);
        for (auto it = map_.begin(); it != map_.end();) {
            if (ms_since(it->second.stamp_ms, now_ms) < kIntervalMs) {
                ++it;
                continue;
            }
            if (it->second.held > 0) {
                f(&it->first, Line{it->second.held, false, it->second.reason});
                it->second = {now_ms, 0, it->second.reason};
                ++it;
            } else {
                it = map_.erase(it);
            }
        }
        if (others_.held > 0 && ms_since(others_.stamp_ms, now_ms) >= kIntervalMs) {
            f(nullptr, Line{others_.held, true, others_.reason});
            others_ = {now_ms, 0, others_.reason};
        }
    }

private:
    struct Entry {
        uint64_t stamp_ms = 0;  // of the last line
        uint64_t held = 0;      // refusals since
        RefuseReason reason = RefuseReason::Denied;
    };
    Line count(Entry& e, bool fresh, bool others, RefuseReason why, uint64_t now_ms);

    size_t capacity_;
    std::mutex mu_;
    std::unordered_map<core::IpAddress, Entry, core::IpAddressHash> map_;
    Entry others_;
    bool others_seen_ = false;
};

struct IpPolicyState {
    IpTable table;
    RefusalLog refusals;
};

// Every listener's IpPolicyState by name, made at first sight and kept for the process's life
// (bounded by the names ever configured). Looked up once per snapshot and worker.
class IpStates {
public:
    IpPolicyState& for_listener(std::string_view name);

private:
    std::mutex mu_;
    std::map<std::string, std::unique_ptr<IpPolicyState>, std::less<>> states_;
};

}  // namespace sniroute::proxy

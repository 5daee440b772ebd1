// Per-worker traffic counters, summed by the admin listener's /metrics at scrape time.
//
// Counting must cost the data path nothing: so no lock and no shared atomic read-modify-write
// on it. Every counter has exactly one writer, the worker loop that owns it, which adds with a
// plain load and store (a `mov` on x86, no `lock` prefix); the scrape, on the control thread,
// only loads. The atomics are there so that the cross-thread read is defined behaviour (and
// ThreadSanitizer agrees), not for the arithmetic. Each worker's counters live in its own heap
// blocks, so two workers never write one cache line.
//
// Counters are kept by name, not by index into a config snapshot: a reload renumbers listeners
// and backends, and a Prometheus counter must never go backwards. A name that a reload drops
// keeps its series (its last values) until the process ends; their number is bounded by the
// names ever configured.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/outcome.hpp"

namespace sniroute::proxy {

class Counter {
public:
    // Owner thread only. Release, so that a reader that sees this value also sees every count
    // the owner made before it (the active gauge below relies on that); free on x86.
    void add(uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_release); }
    // Any thread.
    uint64_t value() const noexcept { return v_.load(std::memory_order_acquire); }

private:
    std::atomic<uint64_t> v_{0};
};

inline constexpr size_t kOutcomeCount = static_cast<size_t>(Outcome::Error) + 1;

// Why a connection was closed at accept, before a byte was read or a backend dialled: the
// `reason` label of sniroute_refused_total.
enum class RefuseReason : uint8_t { Banned, Denied, PerIpLimit, RateLimit, MaxConnections };
inline constexpr size_t kRefuseReasonCount = static_cast<size_t>(RefuseReason::MaxConnections) + 1;
const char* to_string(RefuseReason r);

// The connections of one listener that ended with one backend ("" when none was chosen).
struct PairStats {
    explicit PairStats(std::string b) : backend(std::move(b)) {}
    const std::string backend;
    std::array<Counter, kOutcomeCount> outcomes;
    Counter bytes_up;    // client to backend
    Counter bytes_down;  // backend to client
};

struct ListenerStats {
    explicit ListenerStats(std::string n) : name(std::move(n)) {}
    const std::string name;
    // Active connections are opened - closed, read closed first: both only grow, so the
    // difference never dips below zero however the reads interleave with the owner's writes.
    Counter opened;
    Counter closed;
    Counter accept_failures;  // connections lost at accept(), for want of descriptors mostly
    std::array<Counter, kRefuseReasonCount> refused;
    // Owner thread appends (under WorkerStats' lock); readers iterate under that lock.
    std::vector<std::unique_ptr<PairStats>> pairs;
};

// One worker's counters. The owner thread looks series up and adds to them; any thread may read
// them through visit().
class WorkerStats {
public:
    // Owner thread: the stats of the listener named `name`, made at first sight.
    ListenerStats& listener(std::string_view name);
    // Owner thread: the pair of `l` and backend `backend`, made at first sight. A linear scan:
    // a listener reaches a handful of backends, and this runs once per connection.
    PairStats& pair(ListenerStats& l, std::string_view backend);

    // Any thread: calls f(const ListenerStats&) for every listener seen so far, under the lock
    // that keeps the owner from adding a series meanwhile.
    template <class F>
    void visit(F&& f) const {
        std::lock_guard lock(mu_);
        for (const auto& l : listeners_) f(*l);
    }

private:
    mutable std::mutex mu_;
    std::vector<std::unique_ptr<ListenerStats>> listeners_;
};

}  // namespace sniroute::proxy

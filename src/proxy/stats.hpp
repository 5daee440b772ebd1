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

// What became of a ClientHello: the `result` label of sniroute_client_hello_total.
enum class HelloResult : uint8_t { Sni, NoSni, NotTls, Malformed, TooLarge, Timeout };
inline constexpr size_t kHelloResultCount = static_cast<size_t>(HelloResult::Timeout) + 1;
const char* to_string(HelloResult r);

// A count under a label value made of a few words ("301 redirect", "127.0.0.1:25 refused").
struct KeyedCount {
    explicit KeyedCount(std::string k) : key(std::move(k)) {}
    const std::string key;
    Counter count;
};
using KeyedCounts = std::vector<std::unique_ptr<KeyedCount>>;

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
    std::array<Counter, kHelloResultCount> hellos;
    // Owner thread appends (under WorkerStats' lock); readers iterate under that lock.
    std::vector<std::unique_ptr<PairStats>> pairs;
    KeyedCounts routes;         // key: the route's first pattern, "default" or "none"
    KeyedCounts http_requests;  // key: "CODE ACTION", CODE empty for a forwarded request
};

// Connecting to one backend's servers: how long a connect took (a histogram) and why one failed.
struct BackendStats {
    explicit BackendStats(std::string n) : name(std::move(n)) {}
    // Upper bounds of the histogram's buckets, in microseconds: loopback and LAN backends answer
    // in well under a millisecond, a backend across a WAN in tens of them, connect_timeout ends
    // the scale.
    static constexpr std::array<uint64_t, 14> kBucketsUs = {
        100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000, 5'000'000};
    void observe_connect_us(uint64_t us);

    const std::string name;
    std::array<Counter, kBucketsUs.size() + 1> buckets;  // per bucket, not cumulative; the last is +Inf
    Counter connect_us_sum;
    KeyedCounts failures;  // key: "SERVER REASON"
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
    // Owner thread: a backend's connect stats, and the counter of `key` in `counts` (a vector of
    // a ListenerStats or BackendStats of this worker), made at first sight.
    BackendStats& backend(std::string_view name);
    KeyedCount& keyed(KeyedCounts& counts, std::string_view key);

    // Any thread: calls f(const ListenerStats&) for every listener seen so far, under the lock
    // that keeps the owner from adding a series meanwhile.
    template <class F>
    void visit(F&& f) const {
        std::lock_guard lock(mu_);
        for (const auto& l : listeners_) f(*l);
    }
    template <class F>
    void visit_backends(F&& f) const {
        std::lock_guard lock(mu_);
        for (const auto& b : backends_) f(*b);
    }

private:
    // The element of `v` whose key_of() is `key`, appended under the lock when there is none.
    template <class T, class KeyOf>
    T& find_or_add(std::vector<std::unique_ptr<T>>& v, std::string_view key, KeyOf key_of);

    mutable std::mutex mu_;
    std::vector<std::unique_ptr<ListenerStats>> listeners_;
    std::vector<std::unique_ptr<BackendStats>> backends_;
};

}  // namespace sniroute::proxy

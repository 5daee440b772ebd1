// What a session may use of the event loop it runs on. The worker owns one per loop and hands
// it to every session it accepts, so proxy/ never names the worker (README: Layout).
#pragma once

#include <uv.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/intrusive_list.hpp"
#include "http/challenge.hpp"
#include "proxy/ip_table.hpp"
#include "proxy/stats.hpp"
#include "route/router.hpp"

namespace sniroute::proxy {

class Session;

// A kernel pipe for splice(2), with both ends non-blocking.
struct KernelPipe {
    int r = -1;
    int w = -1;
    size_t capacity = 0;
};

// Spliced transfers borrow their pipes from the loop, which keeps empty ones for the next
// transfer (HAProxy's pipe pool): once warm, splicing costs no pipe2, fcntl or close.
class PipePool {
public:
    PipePool() = default;
    ~PipePool();
    PipePool(const PipePool&) = delete;
    PipePool& operator=(const PipePool&) = delete;

    // Fails only when no pipe can be made (descriptor limit); the caller then copies.
    bool take(KernelPipe& out);
    // A pipe that may hold bytes is closed, not kept. Leaves `p` empty; a no-op on an empty one.
    void give(KernelPipe& p, bool empty);

private:
    std::vector<KernelPipe> idle_;
};

class LoopContext {
public:
    static constexpr size_t kReadBufferSize = 64 * 1024;

    LoopContext(uv_loop_t* loop, std::atomic<uint32_t>& connections, const http::TokenStore& tokens,
                route::SnapshotPtr snap, WorkerStats& stats, IpStates& ip_states);
    LoopContext(const LoopContext&) = delete;
    LoopContext& operator=(const LoopContext&) = delete;

    uv_loop_t* loop() const { return loop_; }
    // The loop's single read buffer: every read is consumed or copied before the next one, so
    // one buffer serves all connections and an idle connection holds none.
    char* read_buffer() { return read_buf_.get(); }
    PipePool& pipes() { return pipes_; }
    // Connections open across all loops, against max_connections.
    std::atomic<uint32_t>& connections() { return connections_; }
    uint32_t connections_now() const { return connections_.load(std::memory_order_relaxed); }
    // ACME HTTP-01 answers held in memory, for http listeners.
    const http::TokenStore& tokens() const { return tokens_; }
    // The routing snapshot new sessions start with; a reload swaps it, and sessions already
    // running keep the one they started with.
    const route::SnapshotPtr& snapshot() const { return snap_; }
    void set_snapshot(route::SnapshotPtr snap);

    // This loop's counters (stats.hpp), and those of listener `li` of the current snapshot,
    // looked up once per snapshot so that a new session finds its listener's by index.
    WorkerStats& stats() { return stats_; }
    ListenerStats& listener_stats(size_t li) { return *listener_stats_[li]; }
    // The shared per-IP state (ip_table.hpp) of listener `li` of the current snapshot, and of
    // any listener by name (a session started before a reload).
    IpPolicyState& ip_state(size_t li) { return *ip_states_of_[li]; }
    IpStates& ip_states() { return ip_states_; }
    // Drops idle per-IP entries of the current snapshot's listeners, and writes the ip_refused
    // lines held back by the rate limit once due. Each worker's loop calls it now and then.
    void sweep_ip_states(uint64_t now_ms);

    // Sessions add themselves when made and remove themselves when deleted.
    void attach(Session* s);
    void detach(Session* s);
    size_t sessions() const { return sessions_.size(); }
    // Closes every session now (drain timeout, second SIGTERM). Each one goes on through its
    // close callbacks and detaches itself when the last has run.
    void abort_all();
    // `cb(arg)` runs whenever a detach leaves no session, until cleared with nullptr: the
    // worker learns so when draining is over.
    void on_empty(void (*cb)(void*), void* arg) {
        on_empty_ = cb;
        on_empty_arg_ = arg;
    }

private:
    uv_loop_t* loop_;
    std::atomic<uint32_t>& connections_;
    const http::TokenStore& tokens_;
    route::SnapshotPtr snap_;
    WorkerStats& stats_;
    std::vector<ListenerStats*> listener_stats_;  // by listener index of snap_
    IpStates& ip_states_;
    std::vector<IpPolicyState*> ip_states_of_;  // by listener index of snap_
    std::unique_ptr<char[]> read_buf_;
    PipePool pipes_;
    core::IntrusiveList<Session> sessions_;
    void (*on_empty_)(void*) = nullptr;
    void* on_empty_arg_ = nullptr;
};

}  // namespace sniroute::proxy

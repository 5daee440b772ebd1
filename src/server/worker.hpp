// One event loop in one thread: its own listening sockets (SO_REUSEPORT), its own sessions,
// its own read buffer. Workers share nothing on the data path but the connection counter.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "http/challenge.hpp"
#include "proxy/loop_context.hpp"
#include "route/router.hpp"
#include "server/listen.hpp"

namespace sniroute::server {

// State all workers share: read-mostly, or atomic.
struct Shared {
    std::atomic<uint32_t> connections{0};
    // ACME HTTP-01 answers held in memory; the built-in ACME client writes, http listeners read.
    http::MemoryTokenStore tokens;
    // Per-IP connection counts and rate buckets, and the ip_refused log limit (proxy/ip_table.hpp).
    proxy::IpStates ip_states;
};

class Worker {
public:
    Worker(unsigned id, Shared& shared, route::SnapshotPtr snap);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Thread body: opens the sockets, runs the loop until stopped and drained, closes the loop.
    // Returns false if the loop still had handles at the end (a leak).
    bool run(std::vector<ListenSocket> sockets);

    // Thread-safe, from the control thread, once `listening` is set. A reload swaps the snapshot, closes sockets whose
    // (listener, address) pair is gone and opens the new ones given.
    void post_reload(route::SnapshotPtr snap, std::vector<ListenSocket> added);
    void post_stop(uint64_t drain_ms);
    void post_abort();  // second SIGTERM: close every session now

    // Set once the loop has opened its sockets; the control thread waits for all of them.
    std::atomic<bool> listening{false};
    std::atomic<bool> start_failed{false};  // set with `listening` when the loop could not start
    std::atomic<bool> finished{false};
    // The loop's clock (uv_hrtime, in ms) as of its last heartbeat: a timer moves it every
    // kHeartbeatMs while the loop runs, so /healthz can tell a loop that stopped turning.
    static constexpr uint64_t kHeartbeatMs = 1000;
    std::atomic<uint64_t> heartbeat_ms{0};
    unsigned id() const { return id_; }
    const proxy::WorkerStats& stats() const { return stats_; }

private:
    struct ListenHandle;

    void open_socket(ListenSocket ls);
    void apply_reload();
    void begin_stop();
    void maybe_finish();
    static void on_async(uv_async_t* h) noexcept;
    static void on_connection(uv_stream_t* server, int status) noexcept;
    static void refuse(uv_stream_t* server);  // accepts a connection no session takes, and closes it
    static void on_refused_closed(uv_handle_t* h) noexcept;
    static void on_listen_closed(uv_handle_t* h) noexcept;
    static void on_drain_timeout(uv_timer_t* t) noexcept;
    void accept_failed(ListenHandle* h, int status, uint64_t lost);
    void log_accept_failures(ListenHandle* h);
    static void on_accept_log_timer(uv_timer_t* t) noexcept;
    bool descriptors_exhausted() const;
    static void on_accept_retry(uv_timer_t* t) noexcept;
    static void on_sessions_gone(void* worker) noexcept;
    static void on_heartbeat(uv_timer_t* t) noexcept;
    static void on_ip_sweep(uv_timer_t* t) noexcept;

    unsigned id_;
    uv_loop_t loop_{};
    uv_async_t async_{};
    uv_timer_t drain_timer_{};
    // Writes the accept_failed lines held back by the one-per-second-per-listener rate limit.
    uv_timer_t accept_log_timer_{};
    // Retries the listeners paused because no descriptor was left (see on_connection).
    uv_timer_t accept_retry_timer_{};
    uv_timer_t heartbeat_timer_{};
    uv_timer_t ip_sweep_timer_{};  // sweep_ip_states, every kIpSweepMs
    // A descriptor kept open so that, when accept() fails for want of descriptors, there is one
    // to give up: the queued connections are then accepted and closed (see accept_failed).
    int reserve_fds_[2] = {-1, -1};
    // RLIMIT_NOFILE as raised at start-up (0: unlimited or unknown), read once in run().
    uint64_t nofile_ = 0;
    void open_reserve();
    uint64_t shed_queue(ListenHandle* h);
    // Written by this loop only, read by the admin listener's scrape (proxy/stats.hpp).
    proxy::WorkerStats stats_;
    // What sessions may use of this loop, the snapshot and the list of live sessions included.
    proxy::LoopContext ctx_;
    std::vector<ListenHandle*> listeners_;
    uint64_t accepted_ = 0;
    uint64_t accept_failures_ = 0;  // every listener's, since start (each has its own too)

    bool stopping_ = false;
    bool finishing_ = false;

    // Mailbox from the control thread, guarded by mu_ and signalled through async_.
    std::mutex mu_;
    bool stop_requested_ = false;
    bool abort_requested_ = false;
    bool mailbox_closed_ = false;
    uint64_t drain_ms_ = 30'000;
    route::SnapshotPtr pending_snap_;
    std::vector<ListenSocket> pending_sockets_;
};

}  // namespace sniroute::server

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
#include "route/router.hpp"

namespace sniroute::proxy {
class Session;
}

namespace sniroute::server {

// TCP_DEFER_ACCEPT seconds for a listener. Deferred accept only pays off where the client speaks
// first and we must wait for it anyway (TLS, HTTP); it stays off for tcp listeners, where the
// server may speak first (SMTP, IMAP). Applied at bind time and again on every reload.
int defer_accept_secs(const config::Listener& l, const config::Global& g);

// A bound, not yet listening socket for one (listener, address) pair, made by the control
// thread so that bind errors surface before anything starts.
struct ListenSocket {
    std::string listener;
    core::SocketAddress addr;
    int fd = -1;
};

// A kernel pipe for splice(2), with both ends non-blocking.
struct KernelPipe {
    int r = -1;
    int w = -1;
    size_t capacity = 0;
};

// State all workers share: read-mostly, or atomic.
struct Shared {
    std::atomic<uint32_t> connections{0};
    // ACME HTTP-01 answers held in memory; the built-in ACME client writes, http listeners read.
    http::MemoryTokenStore tokens;
};

class Worker {
public:
    static constexpr size_t kReadBufferSize = 64 * 1024;

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

    // For sessions, on the worker's own thread.
    uv_loop_t* loop() { return &loop_; }
    unsigned id() const { return id_; }
    Shared& shared() { return shared_; }
    const route::SnapshotPtr& snapshot() const { return snap_; }
    // The loop's single read buffer: every read is consumed or copied before the next one, so
    // one buffer serves all connections and an idle connection holds none.
    char* read_buffer() { return read_buf_.get(); }
    // Spliced transfers borrow their pipes from the loop, which keeps empty ones for the next
    // transfer (HAProxy's pipe pool): once warm, splicing costs no pipe2, fcntl or close.
    // take_pipe() fails only when no pipe can be made (descriptor limit); the caller then copies.
    bool take_pipe(KernelPipe& out);
    void give_pipe(KernelPipe& p, bool empty);  // a pipe that may hold bytes is closed, not kept
    void attach(proxy::Session* s);
    void detach(proxy::Session* s);
    uint64_t accepted() const { return accepted_; }

    // Set once the loop has opened its sockets; the control thread waits for all of them.
    std::atomic<bool> listening{false};
    std::atomic<bool> finished{false};

private:
    struct ListenHandle;

    void open_socket(ListenSocket ls);
    void apply_reload();
    void begin_stop();
    void maybe_finish();
    static void on_async(uv_async_t* h) noexcept;
    static void on_connection(uv_stream_t* server, int status) noexcept;
    static void on_listen_closed(uv_handle_t* h) noexcept;
    static void on_drain_timeout(uv_timer_t* t) noexcept;

    unsigned id_;
    Shared& shared_;
    route::SnapshotPtr snap_;
    uv_loop_t loop_{};
    uv_async_t async_{};
    uv_timer_t drain_timer_{};
    std::unique_ptr<char[]> read_buf_;
    std::vector<KernelPipe> idle_pipes_;
    std::vector<ListenHandle*> listeners_;

    // Intrusive list of live sessions, so a drain timeout can close them all.
    proxy::Session* sessions_ = nullptr;
    size_t session_count_ = 0;
    uint64_t accepted_ = 0;

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

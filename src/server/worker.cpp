#include "server/worker.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.hpp"
#include "proxy/session.hpp"
#include "proxy/uv_cast.hpp"

namespace sniroute::server {

using core::log_error;
using core::log_info;
using core::log_warn;
using core::SocketAddress;

// A listening handle. Heap-allocated and freed in its close callback, like every handle here.
struct Worker::ListenHandle {
    uv_tcp_t tcp{};
    Worker* worker = nullptr;
    std::string listener;
    SocketAddress addr;
    long index = -1;       // listener index in the worker's current snapshot
    bool nodelay = false;  // TCP_NODELAY set here, and so inherited by accepted sockets
};

Worker::Worker(unsigned id, Shared& shared, route::SnapshotPtr snap)
    : id_(id), ctx_(&loop_, shared.connections, shared.tokens, std::move(snap)) {}

Worker::~Worker() {
    // Sockets handed over by a reload that arrived after the loop stopped are still ours.
    for (auto& ls : pending_sockets_)
        if (ls.fd >= 0) ::close(ls.fd);
}

bool Worker::run(std::vector<ListenSocket> sockets) {
    int r = uv_loop_init(&loop_);
    const char* failed = r != 0 ? "uv_loop_init" : nullptr;
    if (!failed && (r = uv_async_init(&loop_, &async_, on_async)) != 0) {
        failed = "uv_async_init";
        uv_loop_close(&loop_);
    }
    if (failed) {
        log_error("worker_failed").kv("worker", id_).kv("call", failed).kv("error", uv_strerror(r));
        for (auto& ls : sockets) ::close(ls.fd);
        {
            std::lock_guard lock(mu_);
            mailbox_closed_ = true;  // nothing may signal an async handle that does not exist
        }
        start_failed.store(true);
        listening.store(true);
        finished.store(true);
        return false;
    }
    async_.data = this;
    uv_timer_init(&loop_, &drain_timer_);
    drain_timer_.data = this;
    for (auto& ls : sockets) open_socket(std::move(ls));
    listening.store(true);
    uv_run(&loop_, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop_);
    if (rc != 0) {
        // Walk what is left so the leak can be named; this is a bug, not an operating condition.
        uv_walk(
            &loop_,
            [](uv_handle_t* h, void*) noexcept { log_error("leaked_handle").kv("type", uv_handle_type_name(h->type)); },
            nullptr);
    }
    log_info("worker_stopped").kv("worker", id_).kv("accepted", accepted_);
    finished.store(true);
    return rc == 0;
}

void Worker::open_socket(ListenSocket ls) {
    long index = ctx_.snapshot()->find_listener(ls.listener);
    auto* h = new ListenHandle;
    h->worker = this;
    h->listener = ls.listener;
    h->addr = ls.addr;
    h->index = index;
    uv_tcp_init(&loop_, &h->tcp);
    h->tcp.data = h;
    // Linux copies TCP_NODELAY from a listening socket to the sockets accepted from it, which
    // saves a setsockopt per connection. Sessions still set it themselves if this failed.
    int one = 1;
    h->nodelay = ::setsockopt(ls.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0;
    int r = uv_tcp_open(&h->tcp, ls.fd);
    if (r == 0) r = uv_listen(proxy::as_stream(&h->tcp), 4096, on_connection);
    if (r != 0) {
        log_error("listen_failed")
            .kv("listener", ls.listener)
            .kv("bind", ls.addr.to_string())
            .kv("error", uv_strerror(r));
        if (uv_fileno(proxy::as_handle(&h->tcp), nullptr) == UV_EBADF) ::close(ls.fd);
        uv_close(proxy::as_handle(&h->tcp), on_listen_closed);
        return;
    }
    listeners_.push_back(h);
}

void Worker::on_listen_closed(uv_handle_t* h) noexcept { delete static_cast<ListenHandle*>(h->data); }

void Worker::post_reload(route::SnapshotPtr snap, std::vector<ListenSocket> added) {
    {
        std::lock_guard lock(mu_);
        pending_snap_ = std::move(snap);
        for (auto& s : added) pending_sockets_.push_back(std::move(s));
        if (!mailbox_closed_) uv_async_send(&async_);
    }
}

void Worker::post_stop(uint64_t drain_ms) {
    {
        std::lock_guard lock(mu_);
        stop_requested_ = true;
        drain_ms_ = drain_ms;
        if (!mailbox_closed_) uv_async_send(&async_);
    }
}

void Worker::post_abort() {
    {
        std::lock_guard lock(mu_);
        stop_requested_ = abort_requested_ = true;
        if (!mailbox_closed_) uv_async_send(&async_);
    }
}

void Worker::on_async(uv_async_t* h) noexcept {
    auto* w = static_cast<Worker*>(h->data);
    bool stop, abort;
    {
        std::lock_guard lock(w->mu_);
        stop = w->stop_requested_;
        abort = w->abort_requested_;
    }
    if (!w->stopping_) w->apply_reload();
    if (stop && !w->stopping_) w->begin_stop();
    if (abort) w->ctx_.abort_all();
}

void Worker::apply_reload() {
    route::SnapshotPtr snap;
    std::vector<ListenSocket> added;
    {
        std::lock_guard lock(mu_);
        snap = std::move(pending_snap_);
        added.swap(pending_sockets_);
    }
    if (!snap) return;
    ctx_.set_snapshot(std::move(snap));
    // Keep sockets whose listener and address are still configured; close the rest. Established
    // sessions are untouched either way: they hold their own snapshot.
    std::vector<ListenHandle*> kept;
    for (ListenHandle* h : listeners_) {
        h->index = ctx_.snapshot()->find_listener(h->listener);
        bool still = false;
        if (h->index >= 0)
            for (const auto& a : ctx_.snapshot()->listener(static_cast<size_t>(h->index)).bind)
                still = still || a == h->addr;
        if (still) {
            // The listener's protocol or deadline may have changed (tls -> tcp must stop
            // deferring accept, or a server-first protocol never sees its client).
            const config::Listener& l = ctx_.snapshot()->listener(static_cast<size_t>(h->index));
            uv_os_fd_t fd;
            int secs = defer_accept_secs(l, ctx_.snapshot()->config().global);
            if (uv_fileno(proxy::as_handle(&h->tcp), &fd) == 0)
                ::setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof secs);
            kept.push_back(h);
        } else
            uv_close(proxy::as_handle(&h->tcp), on_listen_closed);
    }
    listeners_.swap(kept);
    for (auto& ls : added) open_socket(std::move(ls));
}

// libuv stops watching a listening socket for good when its connection callback returns
// without uv_accept (src/unix/stream.c keeps the accepted descriptor and waits), so a
// connection that no session takes is accepted and closed here.
void Worker::on_connection(uv_stream_t* server, int status) noexcept {
    auto* h = static_cast<ListenHandle*>(server->data);
    Worker* w = h->worker;
    if (status < 0) {
        // EMFILE and friends: the kernel keeps the connection queued; log and carry on.
        log_warn("accept_failed").kv("listener", h->listener).kv("error", uv_strerror(status));
        return;
    }
    if (w->stopping_ || h->index < 0) return refuse(server);
    ++w->accepted_;
    proxy::Session::accept(w->ctx_, server, static_cast<size_t>(h->index), h->nodelay);
}

void Worker::refuse(uv_stream_t* server) {
    auto* t = new uv_tcp_t;
    uv_tcp_init(server->loop, t);
    uv_accept(server, proxy::as_stream(t));
    uv_close(proxy::as_handle(t), on_refused_closed);
}

void Worker::on_refused_closed(uv_handle_t* h) noexcept { delete reinterpret_cast<uv_tcp_t*>(h); }

void Worker::begin_stop() {
    stopping_ = true;
    for (ListenHandle* h : listeners_) uv_close(proxy::as_handle(&h->tcp), on_listen_closed);
    listeners_.clear();
    uint64_t drain_ms;
    {
        std::lock_guard lock(mu_);
        drain_ms = drain_ms_;
    }
    ctx_.on_empty(on_sessions_gone, this);
    if (ctx_.sessions() > 0) {
        log_info("draining")
            .kv("worker", id_)
            .kv("sessions", static_cast<uint64_t>(ctx_.sessions()))
            .kv("timeout_ms", drain_ms);
        uv_timer_start(&drain_timer_, on_drain_timeout, drain_ms, 0);
    }
    maybe_finish();
}

void Worker::on_drain_timeout(uv_timer_t* t) noexcept {
    auto* w = static_cast<Worker*>(t->data);
    log_warn("drain_timeout").kv("worker", w->id_).kv("sessions", static_cast<uint64_t>(w->ctx_.sessions()));
    w->ctx_.abort_all();
}

void Worker::on_sessions_gone(void* worker) noexcept { static_cast<Worker*>(worker)->maybe_finish(); }

void Worker::maybe_finish() {
    if (finishing_ || ctx_.sessions() > 0) return;
    finishing_ = true;
    ctx_.on_empty(nullptr, nullptr);
    // Nothing is left but our own handles; closing them lets uv_run return. The flag, set under
    // the lock, keeps the control thread from signalling a closed async handle.
    {
        std::lock_guard lock(mu_);
        mailbox_closed_ = true;
    }
    uv_close(proxy::as_handle(&async_), nullptr);
    uv_close(proxy::as_handle(&drain_timer_), nullptr);
}

}  // namespace sniroute::server

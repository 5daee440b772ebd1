#include "server/worker.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "core/fd.hpp"
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
    // Connections lost at accept(), since this socket was opened: for metrics, and for the
    // rate-limited accept_failed line, which says how many since the last one.
    uint64_t accept_failures = 0;
    uint64_t unlogged = 0;
    uint64_t last_log_ms = 0;
    bool logged = false;
    int last_error = 0;
    // libuv holds an accepted connection for us and has stopped watching the socket.
    bool paused = false;
};

namespace {

// At most one accept_failed line per listening socket per this long.
constexpr uint64_t kAcceptLogIntervalMs = 1000;
// How often a listener paused for want of descriptors tries again (nginx waits 500 ms).
constexpr uint64_t kAcceptRetryMs = 250;
// How often idle per-IP entries are dropped and held-back ip_refused lines written: often
// enough that a line is at most this late, rarely enough that the sweep's locks cost nothing.
constexpr uint64_t kIpSweepMs = 5'000;

}  // namespace

Worker::Worker(unsigned id, Shared& shared, route::SnapshotPtr snap)
    : id_(id), ctx_(&loop_, shared.connections, shared.tokens, std::move(snap), stats_, shared.ip_states) {}

Worker::~Worker() {
    // Sockets handed over by a reload that arrived after the loop stopped are still ours.
    for (auto& ls : pending_sockets_)
        if (ls.fd >= 0) ::close(ls.fd);
}

bool Worker::run(std::vector<ListenSocket> sockets) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) nofile_ = rl.rlim_cur;
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
    uv_timer_init(&loop_, &accept_log_timer_);
    accept_log_timer_.data = this;
    uv_timer_init(&loop_, &accept_retry_timer_);
    accept_retry_timer_.data = this;
    uv_timer_init(&loop_, &heartbeat_timer_);
    heartbeat_timer_.data = this;
    heartbeat_ms.store(uv_hrtime() / 1'000'000);
    uv_timer_start(&heartbeat_timer_, on_heartbeat, kHeartbeatMs, kHeartbeatMs);
    uv_timer_init(&loop_, &ip_sweep_timer_);
    ip_sweep_timer_.data = this;
    uv_timer_start(&ip_sweep_timer_, on_ip_sweep, kIpSweepMs, kIpSweepMs);
    open_reserve();
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
    for (int& fd : reserve_fds_)
        if (fd >= 0) ::close(std::exchange(fd, -1));
    log_info("worker_stopped").kv("worker", id_).kv("accepted", accepted_).kv("accept_failed", accept_failures_);
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
        } else {
            if (h->unlogged > 0) log_accept_failures(h);
            uv_close(proxy::as_handle(&h->tcp), on_listen_closed);
        }
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
        // An error libuv passes on: see accept_failed. The failed accept() left a connection in
        // the queue; for want of descriptors the whole queue is shed.
        uint64_t shed = status == UV_EMFILE || status == UV_ENFILE ? w->shed_queue(h) : 0;
        return w->accept_failed(h, status, shed > 0 ? shed : 1);
    }
    if (w->stopping_ || h->index < 0) return refuse(server);
    // The connection just accepted may have taken the last descriptor. Then the next accept()
    // fails, and libuv sheds the queue with its reserve descriptor without a word to us (see
    // accept_failed). So, as nginx does on EMFILE, we stop accepting for a while instead:
    // leaving the connection unaccepted makes libuv stop watching the socket and keep it for
    // us. on_accept_retry hands it to a session once a descriptor is free again, and until then
    // sheds, counts and logs what queues up meanwhile, so that those clients learn at once
    // rather than at their own timeout. The probe (a dup and a close) runs only when a cheap
    // count says the limit is near, so the common path pays no system call for it.
    if (w->descriptors_exhausted()) {
        h->paused = true;
        if (uint64_t shed = w->shed_queue(h); shed > 0) w->accept_failed(h, UV_EMFILE, shed);
        if (!uv_is_active(proxy::as_handle(&w->accept_retry_timer_)))
            uv_timer_start(&w->accept_retry_timer_, on_accept_retry, kAcceptRetryMs, 0);
        return;
    }
    ++w->accepted_;
    proxy::Session::accept(w->ctx_, server, static_cast<size_t>(h->index), h->nodelay);
}

// Connections lost at accept(). libuv 1.44 (uv__server_io in src/unix/stream.c) meets
// EMFILE/ENFILE with a reserve descriptor of its own: it closes it, accepts and closes every
// queued connection, reopens it, and does not call us at all. We are called when that failed:
// its reserve is gone (another thread took the freed slot first, or it could not be reopened).
// libuv then calls accept() again at once, in a loop that runs no other callback, so while the
// descriptors stay exhausted it spins at 100% CPU and no session can even close to free one.
// Emptying the queue then with reserves of our own (shed_queue) makes its next accept() say
// EAGAIN, which ends that loop. Here the connections lost are counted and logged, at most one
// line per second per listening socket, with the count since the previous line.
void Worker::accept_failed(ListenHandle* h, int status, uint64_t lost) {
    h->accept_failures += lost;
    stats_.listener(h->listener).accept_failures.add(lost);
    h->unlogged += lost;
    accept_failures_ += lost;
    h->last_error = status;
    uint64_t now = uv_now(&loop_);
    if (!h->logged || now - h->last_log_ms >= kAcceptLogIntervalMs) return log_accept_failures(h);
    if (!uv_is_active(proxy::as_handle(&accept_log_timer_)))
        uv_timer_start(&accept_log_timer_, on_accept_log_timer, h->last_log_ms + kAcceptLogIntervalMs - now, 0);
}

void Worker::log_accept_failures(ListenHandle* h) {
    log_warn("accept_failed")
        .kv("listener", h->listener)
        .kv("bind", h->addr.to_string())
        .kv("error", uv_strerror(h->last_error))
        .kv("count", h->unlogged)
        .kv("total", h->accept_failures);
    h->unlogged = 0;
    h->logged = true;
    h->last_log_ms = uv_now(&loop_);
}

// Writes the lines the rate limit held back, once each is due; comes back for the rest.
void Worker::on_accept_log_timer(uv_timer_t* t) noexcept {
    auto* w = static_cast<Worker*>(t->data);
    uint64_t now = uv_now(&w->loop_), next = 0;
    for (ListenHandle* h : w->listeners_) {
        if (h->unlogged == 0) continue;
        uint64_t due = h->last_log_ms + kAcceptLogIntervalMs;
        if (now >= due)
            w->log_accept_failures(h);
        else if (next == 0 || due - now < next)
            next = due - now;
    }
    if (next > 0) uv_timer_start(t, on_accept_log_timer, next, 0);
}

bool Worker::descriptors_exhausted() const {
    if (reserve_fds_[0] < 0) return false;  // nothing to probe with: we were short from the start
    // Sessions hold two descriptors each and spliced directions four more; everything else
    // (listening sockets of every worker, epoll and eventfd handles, the ACME client, deploy
    // pipes) stays well inside kFdSlack. Far from the limit, no probe is needed.
    constexpr uint64_t kFdSlack = 512;
    uint64_t in_use =
        2ull * ctx_.connections_now() + static_cast<uint64_t>(std::max(0L, proxy::splice_descriptors_in_use()));
    if (nofile_ > 0 && in_use + kFdSlack < nofile_) return false;
    int fd = core::dup_cloexec(reserve_fds_[0]);
    if (fd >= 0) {
        core::close_dup(fd);
        return false;
    }
    return errno == EMFILE || errno == ENFILE;
}

// Resumes the paused listeners once a descriptor is free: uv_accept in the session restarts
// libuv's watching of the socket.
void Worker::on_accept_retry(uv_timer_t* t) noexcept {
    auto* w = static_cast<Worker*>(t->data);
    bool still = false;
    for (ListenHandle* h : w->listeners_) {
        if (!h->paused) continue;
        if (w->descriptors_exhausted()) {
            if (uint64_t shed = w->shed_queue(h); shed > 0) w->accept_failed(h, UV_EMFILE, shed);
            still = true;
            continue;
        }
        h->paused = false;
        if (w->stopping_ || h->index < 0) {
            refuse(proxy::as_stream(&h->tcp));
            continue;
        }
        ++w->accepted_;
        proxy::Session::accept(w->ctx_, proxy::as_stream(&h->tcp), static_cast<size_t>(h->index), h->nodelay);
    }
    if (still) uv_timer_start(t, on_accept_retry, kAcceptRetryMs, 0);
}

void Worker::open_reserve() {
    for (int& fd : reserve_fds_)
        if (fd < 0) fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

// Accepts and closes every queued connection, giving up a reserve descriptor for as long as
// that takes (two, should another thread take the first freed slot), then takes them back.
// Returns how many connections were closed.
uint64_t Worker::shed_queue(ListenHandle* h) {
    uv_os_fd_t lfd;
    if (uv_fileno(proxy::as_handle(&h->tcp), &lfd) != 0) return 0;
    uint64_t shed = 0;
    for (int& reserve : reserve_fds_) {
        if (reserve < 0) continue;
        ::close(std::exchange(reserve, -1));
        int c;
        while ((c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0 || errno == EINTR)
            if (c >= 0) {
                ::close(c);
                ++shed;
            }
        if (errno != EMFILE && errno != ENFILE) break;  // EAGAIN: the queue is empty
    }
    open_reserve();
    return shed;
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
    for (ListenHandle* h : listeners_) {
        if (h->unlogged > 0) log_accept_failures(h);
        uv_close(proxy::as_handle(&h->tcp), on_listen_closed);
    }
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

void Worker::on_heartbeat(uv_timer_t* t) noexcept {
    static_cast<Worker*>(t->data)->heartbeat_ms.store(uv_hrtime() / 1'000'000);
}

void Worker::on_ip_sweep(uv_timer_t* t) noexcept {
    auto* w = static_cast<Worker*>(t->data);
    w->ctx_.sweep_ip_states(uv_now(&w->loop_));
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
    uv_close(proxy::as_handle(&accept_log_timer_), nullptr);
    uv_close(proxy::as_handle(&accept_retry_timer_), nullptr);
    uv_close(proxy::as_handle(&heartbeat_timer_), nullptr);
    uv_close(proxy::as_handle(&ip_sweep_timer_), nullptr);
}

}  // namespace sniroute::server

// The splice path of the relay.
//
// Copying dominates a long transfer: every byte goes socket -> our buffer -> socket. splice(2)
// moves it socket -> kernel pipe -> socket as page references instead. The pipe is the
// direction's one bounded buffer, so backpressure, half-close, resets and the idle deadline
// work as on the copying path: `from` is not read while the pipe holds bytes `to` cannot take,
// EOF goes on through eof() once the pipe is empty, errors end the relay the same way.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "core/fd.hpp"
#include "proxy/relay.hpp"
#include "proxy/uv_cast.hpp"

namespace sniroute::proxy {

namespace {

// A spliced direction holds four descriptors besides the two sockets: the pipe's two ends and
// the two dups. raise_fd_limit() budgets two per connection, so unbounded splicing could use up
// the descriptors that connections below max_connections need, and accept() would fail with
// EMFILE. Splicing may use what the limit leaves over beyond max_connections, or an eighth of
// the limit when that is less (the limit is short already, and fd_limit_low said so); past
// that, directions copy. Counted across the process, as the limit is.
constexpr long kSpliceFds = 4;
std::atomic<long> g_splice_fds{0};

long splice_fd_budget(uint32_t max_connections) {
    // Read once: the limit is raised at start-up, before any session exists, and not after.
    static const long nofile = [] {
        rlimit rl{};
        if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 0L;
        return static_cast<long>(rl.rlim_cur);
    }();
    if (nofile == 0) return 1L << 40;
    return std::max(nofile - 256 - 2L * max_connections, nofile / 8);
}

}  // namespace

long splice_descriptors_in_use() { return g_splice_fds.load(std::memory_order_relaxed); }

namespace {

// A pending socket error, for the log, when epoll reported one on a descriptor we only poll.
const char* socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0) return "socket error";
    return sys_error(err);
}

}  // namespace

// A direction relayed with splice(2). libuv watches a descriptor through one handle only, so
// the two polls watch dup()s of the sockets. `in_open` false means splicing is not (or no
// longer) set up and the direction stays on read and write.
struct Relay::Splice {
    explicit Splice(PipePool& p) : pool(p) {}
    ~Splice() { release(); }
    Splice(const Splice&) = delete;
    Splice& operator=(const Splice&) = delete;

    bool reserve_fds(uint32_t max_connections) {
        if (g_splice_fds.fetch_add(kSpliceFds, std::memory_order_relaxed) + kSpliceFds >
            splice_fd_budget(max_connections)) {
            g_splice_fds.fetch_sub(kSpliceFds, std::memory_order_relaxed);
            return false;
        }
        reserved = true;
        return true;
    }

    // Gives the pipe back (kept for reuse only if empty), closes the dups and returns their
    // share of the budget. Safe to call twice. A poll handle on a dup must be closed first:
    // uv_close() takes the descriptor out of epoll at once, so the dup may go right after.
    void release() {
        pool.give(pipe, queued == 0);
        for (int* fd : {&in_fd, &out_fd}) {
            if (*fd >= 0) core::close_dup(*fd);
            *fd = -1;
        }
        if (reserved) g_splice_fds.fetch_sub(kSpliceFds, std::memory_order_relaxed);
        reserved = false;
    }

    PipePool& pool;
    uv_poll_t in{};        // readable on in_fd, a dup of the direction's `from`
    uv_poll_t out{};       // writable on out_fd, a dup of `to`, only while `to` is full
    bool in_open = false;  // initialised and not yet handed to uv_close
    bool out_open = false;
    bool polling_in = false;
    bool polling_out = false;
    bool reserved = false;  // holds kSpliceFds of the budget
    int in_fd = -1, out_fd = -1;
    KernelPipe pipe;    // borrowed from the loop's pool
    size_t queued = 0;  // bytes in the kernel pipe, not yet written to `to`
};

// Runs when the relay is destroyed, after its owner's last close callback: the poll handles,
// whose memory the Splice is, are closed by then.
void Relay::SpliceFree::operator()(Splice* sp) const noexcept { delete sp; }

bool Relay::splice_holds_bytes(const Direction& d) { return d.splice && d.splice->queued > 0; }

// Everything read so far has been written (no pending write), so the pipe only ever holds
// bytes that come after them. Any failure leaves the direction on read and write, and gives
// back at once what was taken, rather than holding descriptors for the life of the relay.
void Relay::start_splice(Direction& d) {
    auto* sp = new Splice(owner_.relay_pipes());
    d.splice.reset(sp);
    if (!sp->reserve_fds(owner_.relay_max_connections()) || !sp->pool.take(sp->pipe)) return sp->release();
    sp->in_fd = core::dup_cloexec(fd_of(d.from));
    sp->out_fd = core::dup_cloexec(fd_of(d.to));
    uv_loop_t* loop = d.from->loop;
    if (sp->in_fd < 0 || sp->out_fd < 0 || uv_poll_init(loop, &sp->in, sp->in_fd) != 0) return sp->release();
    sp->in.data = this;
    if (uv_poll_init(loop, &sp->out, sp->out_fd) != 0) {
        close_poll(&sp->in);
        return sp->release();
    }
    sp->out.data = this;
    sp->in_open = sp->out_open = true;
    stop_reading(d);
    splice_pump(d);
}

void Relay::close_poll(uv_poll_t* h) {
    ++closing_handles_;
    uv_close(as_handle(h), on_poll_closed);
}

void Relay::on_poll_closed(uv_handle_t* h) noexcept {
    auto* r = static_cast<Relay*>(h->data);
    if (--r->closing_handles_ == 0 && r->owner_waits_) r->owner_.relay_handles_closed();
}

void Relay::splice_close(Direction& d) {
    if (!d.splice) return;
    if (d.splice->in_open) close_poll(&d.splice->in);
    if (d.splice->out_open) close_poll(&d.splice->out);
    d.splice->in_open = d.splice->out_open = false;
}

void Relay::on_splice_io(uv_poll_t* h, int status, int) noexcept {
    auto* r = static_cast<Relay*>(h->data);
    if (r->closed_) return;
    Splice* up = r->up_.splice.get();
    Direction& d = up && (h == &up->in || h == &up->out) ? r->up_ : r->down_;
    Splice& sp = *d.splice;
    bool in = h == &sp.in;
    // EPOLLERR: libuv has stopped the handle and reports UV_EBADF. splice() reads what arrived
    // before the error and then reports it; if it does not, the socket is failed all the same.
    if (status < 0) (in ? sp.polling_in : sp.polling_out) = false;
    r->splice_pump(d);
    if (status >= 0 || r->closed_) return;
    if (in) return r->from_reset(d);
    r->end(Outcome::Reset, d.to_side(), socket_error(sp.out_fd));
}

void Relay::splice_pump(Direction& d) {
    Splice& sp = *d.splice;
    constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
    // A bounded number of reads per wake-up, as libuv reads a stream a bounded number of times
    // per event, so that one fast transfer cannot starve the other connections of the loop.
    constexpr int kReadsPerWake = 16;
    for (int round = 0;; ++round) {
        while (sp.queued > 0) {
            ssize_t m = ::splice(sp.pipe.r, nullptr, sp.out_fd, nullptr, sp.queued, kFlags);
            if (m > 0) {
                sp.queued -= static_cast<size_t>(m);
            } else if (m < 0 && errno == EAGAIN) {
                return splice_wait(d, SpliceWait::Writable);
            } else if (m < 0 && (errno == ECONNRESET || errno == EPIPE)) {
                return to_reset(d);
            } else if (m < 0 && errno != EINTR) {
                return end(Outcome::Reset, d.to_side(), sys_error(errno));
            } else if (m == 0) {
                return end(Outcome::Error, Side::Internal, "splice to the peer made no progress");
            }
        }
        if (d.eof) {
            splice_wait(d, SpliceWait::Nothing);
            return eof(d);
        }
        // Yield only with the pipe empty: bytes left in it would wait for `from` to become
        // readable, which a peer waiting for the answer to them never makes it.
        if (round == kReadsPerWake) return splice_wait(d, SpliceWait::Readable);
        ssize_t n = ::splice(sp.in_fd, nullptr, sp.pipe.w, nullptr, sp.pipe.capacity, kFlags);
        if (n > 0) {
            sp.queued = static_cast<size_t>(n);
            d.bytes += static_cast<size_t>(n);
            last_activity_ms_ = uv_now(d.from->loop);
        } else if (n == 0) {
            d.eof = true;
        } else if (errno == EAGAIN) {
            return splice_wait(d, SpliceWait::Readable);
        } else if (errno != EINTR) {
            return from_reset(d);
        }
    }
}

// Watches for what the direction waits on, and nothing else: `from` at EOF or `to` writable
// would otherwise wake the loop for as long as they stay so (the polls are level-triggered).
void Relay::splice_wait(Direction& d, SpliceWait w) {
    Splice& sp = *d.splice;
    auto set = [&](uv_poll_t* h, bool& polling, bool want, int events) {
        if (want == polling || closed_) return;
        int r = want ? uv_poll_start(h, events, on_splice_io) : uv_poll_stop(h);
        if (r != 0) return end(Outcome::Error, Side::Internal, uv_strerror(r));
        polling = want;
    };
    set(&sp.in, sp.polling_in, w == SpliceWait::Readable, UV_READABLE);
    set(&sp.out, sp.polling_out, w == SpliceWait::Writable, UV_WRITABLE);
}

}  // namespace sniroute::proxy

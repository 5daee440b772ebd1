// The splice path of the relay.
//
// Copying dominates a long transfer: every byte goes socket -> our buffer -> socket. splice(2)
// moves it socket -> kernel pipe -> socket as page references instead. The pipe is the
// direction's one bounded buffer, so backpressure, half-close, resets and the idle deadline
// work as on the copying path: `from` is not read while the pipe holds bytes `to` cannot take,
// EOF goes on through pipe_eof() once the pipe is empty, errors end the session the same way.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <new>

#include "server/worker.hpp"
#include "proxy/session.hpp"

namespace sniroute::proxy {

namespace {

uv_handle_t* H(void* p) { return static_cast<uv_handle_t*>(p); }

const char* sys_error(int err) { return uv_strerror(uv_translate_sys_error(err)); }

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
struct Session::Splice {
    explicit Splice(server::Worker& w) : worker(w) {}
    ~Splice() { release(); }
    Splice(const Splice&) = delete;
    Splice& operator=(const Splice&) = delete;

    bool reserve_fds(uint32_t max_connections) {
        if (g_splice_fds.fetch_add(kSpliceFds, std::memory_order_relaxed) + kSpliceFds > splice_fd_budget(max_connections)) {
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
        worker.give_pipe(pipe, queued == 0);
        for (int* fd : {&in_fd, &out_fd}) {
            if (*fd >= 0) ::close(*fd);
            *fd = -1;
        }
        if (reserved) g_splice_fds.fetch_sub(kSpliceFds, std::memory_order_relaxed);
        reserved = false;
    }

    server::Worker& worker;
    uv_poll_t in{};   // readable on in_fd, a dup of the direction's `from`
    uv_poll_t out{};  // writable on out_fd, a dup of `to`, only while `to` is full
    bool in_open = false;  // initialised and not yet handed to uv_close
    bool out_open = false;
    bool polling_in = false;
    bool polling_out = false;
    bool reserved = false;  // holds kSpliceFds of the budget
    int in_fd = -1, out_fd = -1;
    server::KernelPipe pipe;  // borrowed from the worker
    size_t queued = 0;      // bytes in the kernel pipe, not yet written to `to`
};

// Runs when the session's members are destroyed, after the last close callback: the poll
// handles, whose memory the Splice is, are closed by then.
void Session::SpliceFree::operator()(Splice* sp) const noexcept { delete sp; }

bool Session::splice_holds_bytes(const Pipe& p) { return p.splice && p.splice->queued > 0; }

// Everything read so far has been written (no pending write), so the pipe only ever holds
// bytes that come after them. Any failure leaves the direction on read and write, and gives
// back at once what was taken, rather than holding descriptors for the life of the session.
void Session::start_splice(Pipe& p) {
    auto* sp = new (std::nothrow) Splice(w_);
    if (!sp) return;  // the direction copies; the next read tries again
    p.splice.reset(sp);
    if (!sp->reserve_fds(global_.max_connections) || !w_.take_pipe(sp->pipe)) return sp->release();
    sp->in_fd = ::fcntl(fd_of(p.from), F_DUPFD_CLOEXEC, 0);
    sp->out_fd = ::fcntl(fd_of(p.to), F_DUPFD_CLOEXEC, 0);
    if (sp->in_fd < 0 || sp->out_fd < 0 || uv_poll_init(w_.loop(), &sp->in, sp->in_fd) != 0) return sp->release();
    sp->in.data = this;
    if (uv_poll_init(w_.loop(), &sp->out, sp->out_fd) != 0) {
        close_handle(H(&sp->in));
        return sp->release();
    }
    sp->out.data = this;
    sp->in_open = sp->out_open = true;
    stop_reading(p);
    splice_pump(p);
}

void Session::splice_close(Pipe& p) {
    if (!p.splice) return;
    if (p.splice->in_open) close_handle(H(&p.splice->in));
    if (p.splice->out_open) close_handle(H(&p.splice->out));
    p.splice->in_open = p.splice->out_open = false;
}

void Session::on_splice_io(uv_poll_t* h, int status, int) noexcept {
    auto* s = static_cast<Session*>(h->data);
    if (s->closing_) return;
    Splice* up = s->up_.splice.get();
    Pipe& p = up && (h == &up->in || h == &up->out) ? s->up_ : s->down_;
    Splice& sp = *p.splice;
    bool in = h == &sp.in;
    // EPOLLERR: libuv has stopped the handle and reports UV_EBADF. splice() reads what arrived
    // before the error and then reports it; if it does not, the socket is failed all the same.
    if (status < 0) (in ? sp.polling_in : sp.polling_out) = false;
    s->splice_pump(p);
    if (status >= 0 || s->closing_) return;
    if (in) return s->from_reset(p);
    s->close(Outcome::Reset, socket_error(sp.out_fd));
}

void Session::splice_pump(Pipe& p) {
    Splice& sp = *p.splice;
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
                return splice_wait(p, SpliceWait::Writable);
            } else if (m < 0 && (errno == ECONNRESET || errno == EPIPE)) {
                return to_reset(p);
            } else if (m < 0 && errno != EINTR) {
                return close(Outcome::Reset, sys_error(errno));
            } else if (m == 0) {
                return close(Outcome::Error, "splice to the peer made no progress");
            }
        }
        if (p.eof) {
            splice_wait(p, SpliceWait::Nothing);
            return pipe_eof(p);
        }
        // Yield only with the pipe empty: bytes left in it would wait for `from` to become
        // readable, which a peer waiting for the answer to them never makes it.
        if (round == kReadsPerWake) return splice_wait(p, SpliceWait::Readable);
        ssize_t n = ::splice(sp.in_fd, nullptr, sp.pipe.w, nullptr, sp.pipe.capacity, kFlags);
        if (n > 0) {
            sp.queued = static_cast<size_t>(n);
            p.bytes += static_cast<size_t>(n);
            last_activity_ms_ = uv_now(w_.loop());
        } else if (n == 0) {
            p.eof = true;
        } else if (errno == EAGAIN) {
            return splice_wait(p, SpliceWait::Readable);
        } else if (errno != EINTR) {
            return from_reset(p);
        }
    }
}

// Watches for what the direction waits on, and nothing else: `from` at EOF or `to` writable
// would otherwise wake the loop for as long as they stay so (the polls are level-triggered).
void Session::splice_wait(Pipe& p, SpliceWait w) {
    Splice& sp = *p.splice;
    auto set = [&](uv_poll_t* h, bool& polling, bool want, int events) {
        if (want == polling || closing_) return;
        int r = want ? uv_poll_start(h, events, on_splice_io) : uv_poll_stop(h);
        if (r != 0) return close(Outcome::Error, uv_strerror(r));
        polling = want;
    };
    set(&sp.in, sp.polling_in, w == SpliceWait::Readable, UV_READABLE);
    set(&sp.out, sp.polling_out, w == SpliceWait::Writable, UV_WRITABLE);
}

}  // namespace sniroute::proxy

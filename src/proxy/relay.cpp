#include "proxy/relay.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "proxy/uv_cast.hpp"

namespace sniroute::proxy {

namespace {

// Makes `t` send RST instead of FIN when its owner closes it (SO_LINGER 0, what
// uv_tcp_close_reset sets before it closes), also when we already passed a FIN on to it: the
// peer should learn that the other side did not finish cleanly. If the option cannot be set,
// the socket is closed normally.
void reset_on_close(uv_tcp_t* t) {
    linger l{1, 0};
    ::setsockopt(fd_of(t), SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

}  // namespace

Relay::PendingWrite* Relay::PendingWrite::make(size_t len) {
    auto* p = new (::operator new(sizeof(PendingWrite) + len)) PendingWrite{};
    p->len = len;
    return p;
}

void Relay::PendingWrite::Free::operator()(PendingWrite* p) const noexcept {
    p->~PendingWrite();
    ::operator delete(p);
}

Relay::Relay(RelayOwner& owner, uv_tcp_t* client, uv_tcp_t* backend) : owner_(owner) {
    up_.from = down_.to = client;
    up_.to = down_.from = backend;
    up_.from_side = Side::Client;
    down_.from_side = Side::Backend;
}

bool Relay::start_reading(Direction& d) {
    const RelayCallbacks& cbs = owner_.relay_callbacks();
    uv_read_cb cb = &d == &up_ ? cbs.on_client_read : cbs.on_backend_read;
    d.reading = uv_read_start(as_stream(d.from), cbs.on_alloc, cb) == 0;
    return d.reading;
}

void Relay::stop_reading(Direction& d) {
    if (!d.reading) return;
    uv_read_stop(as_stream(d.from));
    d.reading = false;
}

void Relay::end(Outcome o, Side side, const char* why) { owner_.relay_closed(o, side, why); }

void Relay::start(const uv_buf_t* first, unsigned nbufs, uint64_t counted) {
    last_activity_ms_ = uv_now(up_.from->loop);
    if (!down_.reading && !start_reading(down_)) return end(Outcome::Error, Side::Internal, "read_start failed");
    up_.bytes += counted;
    if (nbufs > 0 && !send(up_, first, nbufs)) return;
    if (up_.eof) return eof(up_);  // the client finished before the relay started
    if (!up_.pending && !up_.reading && !start_reading(up_)) end(Outcome::Error, Side::Internal, "read_start failed");
}

void Relay::on_read(Direction& d, ssize_t n, const uv_buf_t* buf) {
    if (closed_) return;
    if (n == UV_EOF) return eof(d);
    if (n < 0) return from_reset(d);
    d.bytes += static_cast<size_t>(n);
    last_activity_ms_ = uv_now(d.from->loop);
    uv_buf_t b = uv_buf_init(buf->base, static_cast<unsigned>(n));
    if (send(d, &b, 1) && !d.pending && d.bytes >= kSpliceAfter && !d.splice) start_splice(d);
}

// d.from reset its connection. A reset travels on as a reset: the other side sees RST, not a
// clean FIN.
void Relay::from_reset(Direction& d) {
    reset_on_close(d.to);
    end(Outcome::Reset, d.from_side, d.from_side == Side::Client ? "client reset" : "backend reset");
}

// A write to d.to failed because d.to was reset: possibly long after its FIN, when we were no
// longer reading it. The reset travels on to d.from, which is the other direction's `to`.
void Relay::to_reset(Direction& d) { from_reset(other(d)); }

// Writes `bufs` to d.to straight away, as far as the socket takes them. This is uv_try_write's
// job, but uv_try_write re-queues the stream's epoll registration on every call, which costs an
// epoll_ctl per write; the relay's writes happen only while no libuv write is queued on d.to
// (d.pending is empty), so writing to the descriptor ourselves keeps the byte order. What the
// socket does not take goes into one PendingWrite handed to libuv, and d.from is not read until
// it is written: one bounded buffer per direction is the whole of backpressure. Returns false
// when the relay ended.
bool Relay::send(Direction& d, const uv_buf_t* bufs, unsigned nbufs) {
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; ++i) total += bufs[i].len;
    msghdr msg{};
    // libuv defines uv_buf_t on Unix to be laid out as struct iovec, for exactly this use.
    msg.msg_iov = reinterpret_cast<iovec*>(const_cast<uv_buf_t*>(bufs));
    msg.msg_iovlen = nbufs;
    ssize_t n;
    do n = ::sendmsg(fd_of(d.to), &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(total)) return true;
    if (n < 0) {
        if (errno == ECONNRESET || errno == EPIPE) {
            to_reset(d);
            return false;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            end(Outcome::Reset, d.to_side(), sys_error(errno));
            return false;
        }
        n = 0;
    }
    size_t done = static_cast<size_t>(n);
    PendingWrite* pw = PendingWrite::make(total - done);
    d.pending.reset(pw);
    char* out = pw->data();
    for (unsigned i = 0; i < nbufs; ++i) {
        size_t skip = done < bufs[i].len ? done : bufs[i].len;
        done -= skip;
        std::memcpy(out, bufs[i].base + skip, bufs[i].len - skip);
        out += bufs[i].len - skip;
    }
    uv_buf_t b = uv_buf_init(pw->data(), static_cast<unsigned>(pw->len));
    pw->req.data = this;
    if (int r = uv_write(&pw->req, as_stream(d.to), &b, 1, on_write); r != 0) {
        end(Outcome::Error, Side::Internal, uv_strerror(r));
        return false;
    }
    stop_reading(d);
    return true;
}

void Relay::on_write(uv_write_t* req, int status) noexcept {
    auto* r = static_cast<Relay*>(req->data);
    // UV_ECANCELED from our owner's close; the PendingWrite goes with the relay.
    if (r->closed_) return;
    Direction& d = r->up_.pending && &r->up_.pending->req == req ? r->up_ : r->down_;
    d.pending.reset();
    if (status == UV_ECONNRESET || status == UV_EPIPE) return r->to_reset(d);
    if (status < 0) return r->end(Outcome::Reset, d.to_side(), uv_strerror(status));
    if (d.eof) return r->eof(d);
    if (!r->start_reading(d)) r->end(Outcome::Error, Side::Internal, "read_start failed");
}

// `d.from` sent FIN. Pass it on once everything before it has been written, and keep the
// other direction open: a client may shut down its write side and still read the reply.
//
// shutdown(2) is called directly rather than through uv_shutdown: nothing of ours is queued in
// libuv for d.to at this point, and uv_shutdown would wait a loop iteration for POLLOUT and
// change the epoll registration twice. When the other direction has already finished, the
// relay ends at once instead; closing the sockets sends the FIN that shutdown would have.
void Relay::eof(Direction& d) {
    d.eof = true;
    stop_reading(d);
    if (d.pending || d.shut || splice_holds_bytes(d)) return;
    if (other(d).shut) return end(Outcome::Ok, Side::Client, nullptr);
    if (::shutdown(fd_of(d.to), SHUT_WR) != 0) return end(Outcome::Ok, Side::Client, nullptr);
    d.shut = true;
}

bool Relay::close() {
    closed_ = true;
    splice_close(up_);
    splice_close(down_);
    owner_waits_ = closing_handles_ > 0;
    return owner_waits_;
}

}  // namespace sniroute::proxy

#include "proxy/session.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <new>

#include "core/log.hpp"
#include "server/worker.hpp"
#include "proxy/proxy_protocol.hpp"

namespace sniroute::proxy {

namespace {

// A v2 header may carry TLVs up to 64 KiB; real balancers send a few hundred bytes. Anything
// past this is not a balancer we want to trust.
constexpr size_t kMaxProxyHeader = 4096;

// TLS alert record: fatal (2) + description. Sent when we refuse a hello so the client reports
// a TLS error instead of an unexplained EOF.
constexpr uint8_t kAlertUnrecognizedName = 112;
constexpr uint8_t kAlertDecodeError = 50;
constexpr uint8_t kAlertInternalError = 80;

uv_handle_t* H(void* p) { return static_cast<uv_handle_t*>(p); }
uv_stream_t* S(uv_tcp_t* t) { return reinterpret_cast<uv_stream_t*>(t); }

const char* sys_error(int err) { return uv_strerror(uv_translate_sys_error(err)); }

}  // namespace

const char* to_string(Outcome o) {
    static constexpr const char* kNames[] = {"ok",        "timeout",   "refused",          "no_route", "backend_down",
                                             "reset",     "bad_hello", "bad_proxy_header", "aborted",  "error"};
    auto i = static_cast<size_t>(o);
    return i < std::size(kNames) ? kNames[i] : "?";
}

int Session::fd_of(uv_tcp_t* t) {
    uv_os_fd_t fd = -1;
    uv_fileno(H(t), &fd);
    return fd;
}

void CompactAddress::set(const core::SocketAddress& a) {
    u = {};
    if (a.family() == AF_INET) std::memcpy(&u.v4, a.sa(), sizeof u.v4);
    else if (a.family() == AF_INET6) std::memcpy(&u.v6, a.sa(), sizeof u.v6);
}

Session::PendingWrite* Session::PendingWrite::make(size_t len) {
    auto* p = new (::operator new(sizeof(PendingWrite) + len)) PendingWrite{};
    p->len = len;
    return p;
}

void Session::PendingWrite::Free::operator()(PendingWrite* p) const noexcept {
    p->~PendingWrite();
    ::operator delete(p);
}

Session::Session(server::Worker& w, size_t li)
    : w_(w),
      snap_(w.snapshot()),
      li_(li),
      listener_(snap_->listener(li)),
      global_(snap_->config().global) {
    uv_tcp_init(w_.loop(), &client_);
    uv_timer_init(w_.loop(), &timer_);
    client_.data = timer_.data = upstream_.data = this;
    up_.from = down_.to = &client_;
    up_.to = down_.from = &upstream_;
    started_ms_ = last_activity_ms_ = uv_now(w_.loop());
    w_.attach(this);
}

// A spliced direction's pipe and descriptors go back with its Splice, after this body.
Session::~Session() {
    if (counted_) w_.shared().connections.fetch_sub(1, std::memory_order_relaxed);
    w_.detach(this);
}

void Session::accept(server::Worker& w, uv_stream_t* server, size_t li, bool nodelay_inherited) {
    auto* s = new Session(w, li);
    if (int r = uv_accept(server, S(&s->client_)); r != 0) return s->close(Outcome::Error, uv_strerror(r));
    uint32_t n = w.shared().connections.fetch_add(1, std::memory_order_relaxed);
    s->counted_ = true;
    // The peer address is wanted by nearly every log line and PROXY header. The local address
    // only by a PROXY header, so connect_to() looks it up when one is sent.
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getpeername(&s->client_, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
        s->client_addr_.set(core::SocketAddress::from(reinterpret_cast<sockaddr*>(&ss)));
    // Refuse beyond max_connections without touching established sessions: the new socket is
    // closed before anything is read from it.
    if (n >= s->global_.max_connections) return s->close(Outcome::Refused, "max_connections reached");
    if (!nodelay_inherited) uv_tcp_nodelay(&s->client_, 1);
    s->start();
}

void Session::start() {
    if (listener_.protocol == config::Protocol::Http) http_ = std::make_unique<HttpState>(global_.max_http_head);
    if (listener_.protocol == config::Protocol::Tls) hello_ = std::make_unique<tls::ClientHelloParser>(global_.max_client_hello);
    if (listener_.accept_proxy_protocol) phase_ = Phase::ProxyHeader;
    else if (listener_.protocol == config::Protocol::Tls) phase_ = Phase::Peek;
    else if (listener_.protocol == config::Protocol::Http) phase_ = Phase::HttpHead;
    else return route_and_connect("");
    arm_timer(global_.inspect_timeout_ms);
    if (!start_reading(up_)) close(Outcome::Error, "read_start failed");
}

bool Session::start_reading(Pipe& p) {
    auto cb = &p == &up_ ? on_client_read : on_upstream_read;
    p.reading = uv_read_start(S(p.from), on_alloc, cb) == 0;
    return p.reading;
}

// Every stop and start of a read is two epoll_ctl calls under libuv, so the relay stops reading
// only to apply backpressure and at EOF, never on the common path.
void Session::stop_reading(Pipe& p) {
    if (!p.reading) return;
    uv_read_stop(S(p.from));
    p.reading = false;
}

void Session::arm_timer(uint64_t ms) { uv_timer_start(&timer_, on_timer, ms, 0); }

void Session::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
    auto* s = static_cast<Session*>(h->data);
    buf->base = s->w_.read_buffer();
    buf->len = server::Worker::kReadBufferSize;
    // Before the backend is connected, read no more than the head may still grow by, so a
    // client can never make us buffer past the cap.
    if (s->phase_ == Phase::ProxyHeader || s->phase_ == Phase::Peek || s->phase_ == Phase::HttpHead) {
        size_t cap = (s->http_ ? s->global_.max_http_head : s->global_.max_client_hello) + kMaxProxyHeader;
        size_t room = cap > s->head_.size() ? cap - s->head_.size() : 1;
        if (room < buf->len) buf->len = room;
    }
}

void Session::on_client_read(uv_stream_t* st, ssize_t n, const uv_buf_t* buf) noexcept {
    auto* s = static_cast<Session*>(st->data);
    if (s->closing_) return;
    if (n == 0) return;  // EAGAIN, nothing to do
    if (s->phase_ == Phase::ProxyHeader || s->phase_ == Phase::Peek || s->phase_ == Phase::HttpHead) {
        if (n < 0) {
            // A client that pipelined its requests and then shut down its write side still
            // reads the answers: those not yet written go out first, then the connection ends.
            if (n == UV_EOF && s->phase_ == Phase::HttpHead && s->http_->writing) {
                s->up_.eof = true;
                s->up_.reading = false;  // libuv stops reading at EOF by itself
                s->http_->close_after_write = true;
                return;
            }
            // Between keep-alive requests a close is the normal end of an http connection.
            if (s->phase_ == Phase::HttpHead && s->head_.empty() && s->http_->requests > 0) return s->close(Outcome::Ok);
            if (n != UV_EOF) return s->close(Outcome::Reset, "client closed before its request");
            // Health checks and port scanners connect and close without a byte: not an error.
            if (s->head_.empty() && (s->phase_ == Phase::ProxyHeader || !s->listener_.accept_proxy_protocol))
                return s->close(Outcome::Ok, nullptr);
            if (s->phase_ == Phase::ProxyHeader) return s->close(Outcome::BadProxyHeader, "client closed inside the PROXY header");
            return s->close(Outcome::BadHello, "client closed before its request");
        }
        return s->on_head_bytes(buf->base, static_cast<size_t>(n));
    }
    if (s->phase_ == Phase::Linger) {
        if (n < 0) s->close(Outcome::Ok);
        return;  // input after our final response is discarded
    }
    if (s->phase_ == Phase::Connecting) {
        // The client keeps being read while we connect, which saves stopping and restarting its
        // read. A TLS client rarely sends before the ServerHello; what it does send (0-RTT data,
        // a FIN) waits for the backend after the head, and one read is all we hold.
        if (n == UV_EOF) {
            s->up_.eof = true;
            s->up_.reading = false;  // libuv stops reading at EOF by itself
            return;
        }
        if (n < 0) return s->close(Outcome::Reset, "client reset");
        s->head_.append(buf->base, static_cast<size_t>(n));
        return s->stop_reading(s->up_);
    }
    s->relay(s->up_, n, buf);
}

void Session::on_upstream_read(uv_stream_t* st, ssize_t n, const uv_buf_t* buf) noexcept {
    auto* s = static_cast<Session*>(st->data);
    if (s->closing_ || n == 0) return;
    s->relay(s->down_, n, buf);
}

void Session::relay(Pipe& p, ssize_t n, const uv_buf_t* buf) {
    if (n == UV_EOF) return pipe_eof(p);
    if (n < 0) return from_reset(p);
    p.bytes += static_cast<size_t>(n);
    last_activity_ms_ = uv_now(w_.loop());
    uv_buf_t b = uv_buf_init(buf->base, static_cast<unsigned>(n));
    if (send(p, &b, 1) && !p.pending && p.bytes >= kSpliceAfter && !p.splice) start_splice(p);
}

// p.from reset its connection. A reset travels on as a reset: the other side sees RST, not a
// clean FIN.
void Session::from_reset(Pipe& p) {
    if (&p == &up_) {
        if (upstream_open_) upstream_open_ = !reset_peer(&upstream_);
        return close(Outcome::Reset, "client reset");
    }
    reset_peer(&client_);
    close(Outcome::Reset, "backend reset");
}

// A write to p.to failed because p.to was reset: possibly long after its FIN, when we were no
// longer reading it. The reset travels on to p.from, which is the other direction's `to`.
void Session::to_reset(Pipe& p) { from_reset(&p == &up_ ? down_ : up_); }

// Closes `t` with an RST (SO_LINGER 0), also when we already passed a FIN on to it: the peer
// should learn that the other side did not finish cleanly. If libuv refuses, the caller closes
// the socket normally.
bool Session::reset_peer(uv_tcp_t* t) {
    if (uv_is_closing(H(t)) || uv_tcp_close_reset(t, on_close) != 0) return false;
    ++pending_closes_;
    return true;
}

void Session::on_head_bytes(const char* data, size_t n) {
    head_.append(data, n);
    if (phase_ == Phase::ProxyHeader) {
        ParsedHeader ph;
        const char* why = "";
        auto st = parse_header(reinterpret_cast<const uint8_t*>(head_.data()), head_.size(), kMaxProxyHeader, ph, why);
        if (st == HeaderStatus::NeedMore) return;
        if (st == HeaderStatus::Malformed) return close(Outcome::BadProxyHeader, why);
        if (!ph.local) {
            client_addr_.set(ph.src);
            local_addr_.set(ph.dst);
        }
        // The balancer's header is consumed here; the backend gets our own, if any.
        head_.erase(0, ph.length);
        return after_proxy_header();
    }
    if (phase_ == Phase::HttpHead) return on_http_bytes();
    hello_->feed(reinterpret_cast<const uint8_t*>(data), n);
    on_peek_bytes();
}

void Session::after_proxy_header() {
    if (listener_.protocol == config::Protocol::Http) {
        phase_ = Phase::HttpHead;
        return on_http_bytes();
    }
    if (listener_.protocol != config::Protocol::Tls) return route_and_connect("");
    phase_ = Phase::Peek;
    if (!head_.empty()) hello_->feed(reinterpret_cast<const uint8_t*>(head_.data()), head_.size());
    on_peek_bytes();
}

void Session::on_peek_bytes() {
    switch (hello_->status()) {
        case tls::ParseStatus::NeedMore: return;
        case tls::ParseStatus::Done: break;
        case tls::ParseStatus::NotTls:
        case tls::ParseStatus::Malformed:
        case tls::ParseStatus::TooLarge: return refuse(Outcome::BadHello, hello_->error(), kAlertDecodeError);
    }
    // The hello stays in head_ and goes to the backend first; anything the client sends while
    // we connect is appended behind it (see on_client_read).
    if (hello_->info().has_sni) sni_ = hello_->info().sni;
    hello_.reset();
    route_and_connect(sni_);
}

void Session::route_and_connect(std::string_view name) {
    route::Decision d = snap_->route(li_, name);
    if (!d.backend) {
        return refuse(Outcome::NoRoute, name.empty() ? "no SNI and no default_backend" : "no route for SNI",
                      kAlertUnrecognizedName);
    }
    connect_to(d.backend);
}

void Session::connect_to(const config::Backend* backend) {
    backend_ = backend;
    if (backend_->proxy_protocol != config::ProxyProtocol::Off && !local_addr_.known()) {
        sockaddr_storage ss{};
        int len = sizeof ss;
        if (uv_tcp_getsockname(&client_, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
            local_addr_.set(core::SocketAddress::from(reinterpret_cast<sockaddr*>(&ss)));
    }
    phase_ = Phase::Connecting;
    connect_next();
}

void Session::refuse(Outcome o, const char* why, uint8_t tls_alert) {
    // Only speak TLS to a client that spoke TLS first; a plain-text client just gets closed.
    // (The parser is gone once a hello was parsed: that client spoke TLS.)
    if (listener_.protocol == config::Protocol::Tls && phase_ == Phase::Peek &&
        (!hello_ || hello_->status() != tls::ParseStatus::NotTls))
        send_alert(tls_alert);
    close(o, why);
}

void Session::send_alert(uint8_t description) {
    char alert[7] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, static_cast<char>(description)};
    uv_buf_t b = uv_buf_init(alert, sizeof alert);
    uv_try_write(S(&client_), &b, 1);
}

void Session::connect_next() {
    if (server_idx_ >= backend_->servers.size()) {
        if (listener_.protocol == config::Protocol::Tls) send_alert(kAlertInternalError);
        return close(Outcome::BackendDown, why_ ? why_ : "no server reachable");
    }
    const core::SocketAddress& addr = backend_->servers[server_idx_];
    uv_tcp_init(w_.loop(), &upstream_);
    upstream_.data = this;
    upstream_open_ = true;
    connect_req_.data = this;
    if (int r = uv_tcp_connect(&connect_req_, &upstream_, addr.sa(), on_connect); r != 0)
        return connect_failed(uv_strerror(r));
    // Reading starts now rather than once connected, so that epoll learns of the socket once,
    // for both events, instead of once for the connect and again (ADD, EEXIST, MOD) for reads.
    // libuv completes the connect before it reads, so nothing is read before start_relay().
    start_reading(down_);
    arm_timer(global_.connect_timeout_ms);
}

void Session::on_connect(uv_connect_t* req, int status) noexcept {
    auto* s = static_cast<Session*>(req->data);
    // A timed-out attempt was closed, which cancels its connect: nothing to do for it.
    if (status == UV_ECANCELED || s->closing_) return;
    if (status != 0) return s->connect_failed(uv_strerror(status));
    uv_timer_stop(&s->timer_);
    s->start_relay();
}

void Session::connect_failed(const char* why) {
    core::log_warn("backend_attempt_failed")
        .kv("listener", listener_.name)
        .kv("backend", backend_->name)
        .kv("server", backend_->servers[server_idx_].to_string())
        .kv("error", why);
    why_ = why;
    ++server_idx_;
    // The connect deadline must not fire while this attempt's handle is closing (an attempt
    // that fails at once from inside the close callback leaves it armed): it would close the
    // handle twice. connect_next() arms it again for the next server.
    uv_timer_stop(&timer_);
    upstream_open_ = false;
    down_.reading = false;
    ++pending_closes_;
    uv_close(H(&upstream_), on_upstream_retry_closed);
}

void Session::on_upstream_retry_closed(uv_handle_t* h) noexcept {
    auto* s = static_cast<Session*>(h->data);
    if (--s->pending_closes_ == 0 && s->closing_) return s->finish();
    if (!s->closing_) s->connect_next();
}

void Session::start_relay() {
    phase_ = Phase::Relay;
    uv_tcp_nodelay(&upstream_, 1);
    last_activity_ms_ = uv_now(w_.loop());
    arm_timer(global_.idle_timeout_ms);
    if (!down_.reading && !start_reading(down_)) return close(Outcome::Error, "read_start failed");
    // PROXY header and buffered head leave in one writev, so the backend sees them in one
    // segment where possible and we pay one system call.
    std::string header;
    if (backend_->proxy_protocol == config::ProxyProtocol::V1) append_v1(header, client_addr_.get(), local_addr_.get());
    else if (backend_->proxy_protocol == config::ProxyProtocol::V2) append_v2(header, client_addr_.get(), local_addr_.get());
    uv_buf_t bufs[2];
    unsigned nb = 0;
    if (!header.empty()) bufs[nb++] = uv_buf_init(header.data(), static_cast<unsigned>(header.size()));
    if (!head_.empty()) bufs[nb++] = uv_buf_init(head_.data(), static_cast<unsigned>(head_.size()));
    up_.bytes += head_.size();
    bool sent = nb == 0 || send(up_, bufs, nb);
    std::string().swap(head_);  // written or copied: its buffer is not kept for the connection
    if (!sent) return;
    if (up_.eof) return pipe_eof(up_);  // the client finished while we connected
    if (!up_.pending && !up_.reading && !start_reading(up_)) close(Outcome::Error, "read_start failed");
}

// Writes `bufs` to p.to straight away, as far as the socket takes them. This is uv_try_write's
// job, but uv_try_write re-queues the stream's epoll registration on every call, which costs an
// epoll_ctl per write; the relay's writes happen only while no libuv write is queued on p.to
// (p.pending is empty), so writing to the descriptor ourselves keeps the byte order. What the
// socket does not take goes into one PendingWrite handed to libuv, and p.from is not read until
// it is written: one bounded buffer per direction is the whole of backpressure. Returns false
// when the session was closed.
bool Session::send(Pipe& p, const uv_buf_t* bufs, unsigned nbufs) {
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; ++i) total += bufs[i].len;
    msghdr msg{};
    // libuv defines uv_buf_t on Unix to be laid out as struct iovec, for exactly this use.
    msg.msg_iov = reinterpret_cast<iovec*>(const_cast<uv_buf_t*>(bufs));
    msg.msg_iovlen = nbufs;
    ssize_t n;
    do n = ::sendmsg(fd_of(p.to), &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(total)) return true;
    if (n < 0) {
        if (errno == ECONNRESET || errno == EPIPE) {
            to_reset(p);
            return false;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            close(Outcome::Reset, sys_error(errno));
            return false;
        }
        n = 0;
    }
    size_t done = static_cast<size_t>(n);
    PendingWrite* pw = PendingWrite::make(total - done);
    p.pending.reset(pw);
    char* out = pw->data();
    for (unsigned i = 0; i < nbufs; ++i) {
        size_t skip = done < bufs[i].len ? done : bufs[i].len;
        done -= skip;
        std::memcpy(out, bufs[i].base + skip, bufs[i].len - skip);
        out += bufs[i].len - skip;
    }
    uv_buf_t b = uv_buf_init(pw->data(), static_cast<unsigned>(pw->len));
    pw->req.data = this;
    if (int r = uv_write(&pw->req, S(p.to), &b, 1, on_write); r != 0) {
        close(Outcome::Error, uv_strerror(r));
        return false;
    }
    stop_reading(p);
    return true;
}

void Session::on_write(uv_write_t* req, int status) noexcept {
    auto* s = static_cast<Session*>(req->data);
    // UV_ECANCELED from our own close; the PendingWrite goes with the session.
    if (s->closing_) return;
    Pipe& p = s->up_.pending && &s->up_.pending->req == req ? s->up_ : s->down_;
    p.pending.reset();
    if (status == UV_ECONNRESET || status == UV_EPIPE) return s->to_reset(p);
    if (status < 0) return s->close(Outcome::Reset, uv_strerror(status));
    if (p.eof) return s->pipe_eof(p);
    if (!s->start_reading(p)) s->close(Outcome::Error, "read_start failed");
}

// `p.from` sent FIN. Pass it on once everything before it has been written, and keep the
// other direction open: a client may shut down its write side and still read the reply.
//
// shutdown(2) is called directly rather than through uv_shutdown: nothing of ours is queued in
// libuv for p.to at this point, and uv_shutdown would wait a loop iteration for POLLOUT and
// change the epoll registration twice. When the other direction has already finished, both
// sockets are closed at once instead; close(2) sends the FIN that shutdown would have.
void Session::pipe_eof(Pipe& p) {
    p.eof = true;
    stop_reading(p);
    if (p.pending || p.shut || splice_holds_bytes(p)) return;
    const Pipe& other = &p == &up_ ? down_ : up_;
    if (other.shut) return close(Outcome::Ok);
    if (::shutdown(fd_of(p.to), SHUT_WR) != 0) return close(Outcome::Ok);
    p.shut = true;
}

void Session::on_timer(uv_timer_t* t) noexcept {
    auto* s = static_cast<Session*>(t->data);
    if (s->closing_) return;
    switch (s->phase_) {
        case Phase::ProxyHeader: return s->close(Outcome::Timeout, "no PROXY header in time");
        case Phase::Peek: return s->close(Outcome::Timeout, "no complete ClientHello in time");
        case Phase::HttpHead:
            if (s->head_.empty() && s->http_->requests > 0) return s->close(Outcome::Ok);  // idle keep-alive
            return s->close(Outcome::Timeout, "no complete request head in time");
        case Phase::Linger: return s->close(Outcome::Ok);
        case Phase::Connecting: return s->connect_failed("connect timeout");
        case Phase::Relay: break;
    }
    // Idle timeout, re-armed lazily: reads only stamp last_activity_ms_, and the timer checks
    // it when it fires, which saves a timer-heap update per read.
    uint64_t now = uv_now(s->w_.loop());
    uint64_t idle = now - s->last_activity_ms_;
    if (idle >= s->global_.idle_timeout_ms) return s->close(Outcome::Timeout, "idle timeout");
    s->arm_timer(s->global_.idle_timeout_ms - idle);
}

void Session::close(Outcome o, const char* why) {
    if (closing_) return;
    closing_ = true;
    outcome_ = o;
    if (why) why_ = why;
    // The polls go first: they watch dups of the two sockets, and libuv takes a descriptor out
    // of epoll when its handle closes, so no event can arrive for a dup once the socket is gone.
    splice_close(up_);
    splice_close(down_);
    close_handle(H(&client_));
    close_handle(H(&timer_));
    if (upstream_open_) {
        upstream_open_ = false;
        close_handle(H(&upstream_));
    }
    if (pending_closes_ == 0) finish();
}

// Each handle that is not already closing is closed once; the session is deleted when the last
// close callback has run, never before, because libuv may still touch the handles.
void Session::close_handle(uv_handle_t* h) {
    if (uv_is_closing(h)) return;
    ++pending_closes_;
    uv_close(h, on_close);
}

void Session::on_close(uv_handle_t* h) noexcept {
    auto* s = static_cast<Session*>(h->data);
    if (--s->pending_closes_ == 0 && s->closing_) s->finish();
}

void Session::finish() {
    log_close();
    delete this;
}

void Session::log_close() {
    bool fine = outcome_ == Outcome::Ok || outcome_ == Outcome::Aborted;
    if (fine && !global_.access_log) return;
    // A connection whose requests were all answered here was logged request by request.
    if (http_ && !backend_ && http_->requests > 0 && outcome_ == Outcome::Ok) return;
    uint64_t now = uv_now(w_.loop());
    auto line = fine ? core::log_info("conn") : core::log_warn("conn");
    line.kv("client", client_addr_.get().to_string())
        .kv("listener", listener_.name)
        .kv("sni", sni_.empty() ? "-" : sni_)
        .kv("backend", backend_ ? backend_->name : "-")
        .kv("server", backend_ && server_idx_ < backend_->servers.size() ? backend_->servers[server_idx_].to_string() : "-")
        .kv("up", up_.bytes)
        .kv("down", down_.bytes)
        .kv("duration_ms", now - started_ms_)
        .kv("outcome", to_string(outcome_));
    if (why_ && outcome_ != Outcome::Ok) line.kv("error", why_);
}

}  // namespace sniroute::proxy

#include "proxy/session.hpp"

#include <sys/socket.h>

#include "core/log.hpp"
#include "proxy/deferred_accept.hpp"
#include "proxy/proxy_protocol.hpp"
#include "proxy/uv_cast.hpp"

namespace sniroute::proxy {

namespace {

// Answers waiting to be written beyond this stop us reading more pipelined requests.
constexpr size_t kMaxQueuedAnswers = 64 * 1024;

}  // namespace

const RelayCallbacks Session::kRelayCallbacks = {on_alloc, on_client_read, on_upstream_read};

Session::Session(LoopContext& ctx, size_t li)
    : ctx_(ctx),
      snap_(ctx.snapshot()),
      stats_(&ctx.listener_stats(li)),
      li_(static_cast<uint32_t>(li)),
      relay_(*this, &client_, &upstream_) {
    stats_->opened.add();
    uv_tcp_init(ctx_.loop(), &client_);
    uv_timer_init(ctx_.loop(), &timer_);
    client_.data = timer_.data = upstream_.data = this;
    started_ms_ = uv_now(ctx_.loop());
    ctx_.attach(this);
}

// A spliced direction's pipe and descriptors go back with the relay, after this body.
Session::~Session() {
    if (counted_) ctx_.connections().fetch_sub(1, std::memory_order_relaxed);
    ctx_.detach(this);
}

void Session::accept(LoopContext& ctx, uv_stream_t* server, size_t li, bool nodelay_inherited) {
    auto* s = new Session(ctx, li);
    if (int r = uv_accept(server, as_stream(&s->client_)); r != 0)
        return s->close(Outcome::Error, Side::Internal, uv_strerror(r));
    uint32_t n = ctx.connections().fetch_add(1, std::memory_order_relaxed);
    s->counted_ = true;
    // The peer address is wanted by nearly every log line and PROXY header. The local address
    // only by a PROXY header, so connect_to() looks it up when one is sent.
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getpeername(&s->client_, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
        s->client_addr_.set(core::SocketAddress::from(reinterpret_cast<sockaddr*>(&ss)));
    // Refuse beyond max_connections without touching established sessions: the new socket is
    // closed before anything is read from it.
    if (n >= s->global().max_connections) {
        s->stats_->refused[static_cast<size_t>(RefuseReason::MaxConnections)].add();
        return s->close(Outcome::Refused, Side::Internal, "max_connections reached");
    }
    // A PROXY listener checks the address the header gives, once it is read (inspect()).
    if (!s->listener().accept_proxy_protocol && !s->admit()) return;
    if (!nodelay_inherited) uv_tcp_nodelay(&s->client_, 1);
    s->start();
}

bool Session::admit() {
    const config::Listener& l = listener();
    core::IpAddress ip = core::IpAddress::from(&client_addr_.u.sa);
    if (!l.allows(ip)) {
        refuse_ip(RefuseReason::Denied, ip);
        return false;
    }
    // Listeners without a per-IP limit stop here: no lock, no hash.
    if (!l.ip_limited()) return true;
    IpTable& table = ip_state().table;
    uint64_t now = uv_now(ctx_.loop());
    switch (table.admit(ip, l.max_connections_per_ip, l.new_connections_per_ip, now, ip_counted_)) {
        case IpTable::Admit::Ok: return true;
        case IpTable::Admit::Untracked:
            if (uint64_t n = 0; table.full_line_due(now, n))
                core::log_warn("ip_table_full")
                    .kv("listener", l.name)
                    .kv("capacity", static_cast<uint64_t>(IpTable::kDefaultCapacity))
                    .kv("untracked", n);
            return true;
        case IpTable::Admit::PerIpLimit: refuse_ip(RefuseReason::PerIpLimit, ip); return false;
        case IpTable::Admit::RateLimit: refuse_ip(RefuseReason::RateLimit, ip); return false;
    }
    return true;
}

void Session::refuse_ip(RefuseReason why, const core::IpAddress& ip) {
    stats_->refused[static_cast<size_t>(why)].add();
    RefusalLog::Line line = ip_state().refusals.note(ip, why, uv_now(ctx_.loop()));
    if (line.count > 0)
        core::log_warn("ip_refused")
            .kv("listener", listener().name)
            .kv("client", line.others ? std::string("others") : ip.to_string())
            .kv("reason", to_string(why))
            .kv("count", line.count);
    close(Outcome::Refused, Side::Client, to_string(why));
}

IpPolicyState& Session::ip_state() {
    if (snap_ == ctx_.snapshot()) return ctx_.ip_state(li_);
    return ctx_.ip_states().for_listener(listener().name);
}

void Session::start() {
    inspector_ = make_first_inspector(env());
    if (!inspector_) return route_and_connect("");
    // The head deadline counts from the client's connect, which on a deferring listener may be
    // up to `deferred` before this accept: a client that has sent nothing is handed over only
    // once the kernel has held it that long, and one that has spoken at once. Which of the two
    // this is cannot be told here without a syscall (the socket's age is not kept), but it can
    // when the deadline fires, for free: so it is armed `deferred` early, and then a session
    // that has read nothing at all is closed (it has been silent for the whole timeout), and
    // one that has read something gets the rest (see on_timer). A client held back that then
    // sends part of its head at once gets up to `deferred` more than the timeout; a silent one
    // never does.
    uint64_t deferred = deferred_accept_ms(listener(), global());
    arm_timer(global().inspect_timeout_ms - deferred);
    if (!relay_.start_reading(relay_.up())) close(Outcome::Error, Side::Internal, "read_start failed");
}

void Session::arm_timer(uint64_t ms) { uv_timer_start(&timer_, on_timer, ms, 0); }

void Session::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
    auto* s = static_cast<Session*>(h->data);
    buf->base = s->ctx_.read_buffer();
    buf->len = LoopContext::kReadBufferSize;
    // Before the backend is connected, read no more than the head may still grow by, so a
    // client can never make us buffer past the cap.
    if (s->phase_ == Phase::Inspect) {
        size_t cap = (s->listener().protocol == config::Protocol::Http ? s->global().max_http_head
                                                                       : s->global().max_client_hello) +
                     kMaxProxyHeader;
        size_t room = cap > s->head_.size() ? cap - s->head_.size() : 1;
        if (room < buf->len) buf->len = room;
    }
}

void Session::on_client_read(uv_stream_t* st, ssize_t n, const uv_buf_t* buf) noexcept {
    auto* s = static_cast<Session*>(st->data);
    if (s->closing_) return;
    if (n == 0) return;  // EAGAIN, nothing to do
    Relay::Direction& up = s->relay_.up();
    switch (s->phase_) {
        case Phase::Inspect:
            if (n < 0) return s->client_gone(n);
            s->head_.append(buf->base, static_cast<size_t>(n));
            return s->inspect();
        case Phase::Linger:
            if (n < 0) s->close(Outcome::Ok, Side::Client);
            return;  // input after our final answer is discarded
        case Phase::Connecting:
            // The client keeps being read while we connect, which saves stopping and restarting
            // its read. A TLS client rarely sends before the ServerHello; what it does send (0-RTT
            // data, a FIN) waits for the backend after the head, and one read is all we hold.
            if (n == UV_EOF) {
                up.eof = true;
                up.reading = false;  // libuv stops reading at EOF by itself
                return;
            }
            if (n < 0) return s->close(Outcome::Reset, Side::Client, "client reset");
            s->head_.append(buf->base, static_cast<size_t>(n));
            return s->relay_.stop_reading(up);
        case Phase::Relay: return s->relay_.on_read(up, n, buf);
    }
}

void Session::on_upstream_read(uv_stream_t* st, ssize_t n, const uv_buf_t* buf) noexcept {
    auto* s = static_cast<Session*>(st->data);
    if (s->closing_ || n == 0) return;
    s->relay_.on_read(s->relay_.down(), n, buf);
}

// The client closed (or reset) before an inspector's final verdict.
void Session::client_gone(ssize_t status) {
    // A client that pipelined its requests and then shut down its write side still reads the
    // answers: those not yet written go out first, then the connection ends.
    if (status == UV_EOF && writer_ && writer_->writing) {
        relay_.up().eof = true;
        relay_.up().reading = false;  // libuv stops reading at EOF by itself
        writer_->close_after_write = true;
        return;
    }
    // After an answer, between requests, a close is the normal end of the exchange.
    if (answers_ > 0 && head_.empty()) return close(Outcome::Ok, Side::Client);
    if (status != UV_EOF) return close(Outcome::Reset, Side::Client, "client closed before its request");
    // Health checks and port scanners connect and close without a byte: not an error.
    if (head_.empty() && first_inspector_) return close(Outcome::Ok, Side::Client);
    const char* why = "";
    Outcome o = inspector_->truncated(why);
    close(o, Side::Client, why);
}

// Shows the inspector what was read, for as long as its verdicts let the session go on: a
// PROXY header is followed by the protocol's inspector, and answered requests by the next one.
void Session::inspect() {
    while (phase_ == Phase::Inspect && !closing_) {
        if (writer_) {
            if (writer_->close_after_write || writer_->forward_after_write) return;
            // The client pipelines faster than it reads: stop until our writes drain.
            if (writer_->queued.size() > kMaxQueuedAnswers) return relay_.stop_reading(relay_.up());
        }
        Verdict v = inspector_->inspect(head_);
        switch (v.kind) {
            case Verdict::Kind::NeedMore: return;
            case Verdict::Kind::Next:
                if (v.peer) {
                    client_addr_.set(v.peer->src);
                    local_addr_.set(v.peer->dst);
                }
                // The balancer's header is consumed here; the backend gets our own, if any.
                head_.erase(0, v.consumed);
                // The policy judges the client the header names (or the balancer, for a header
                // that names none), before a byte more is read or a backend dialled.
                if (first_inspector_ && listener().accept_proxy_protocol && !admit()) return;
                first_inspector_ = false;
                inspector_ = make_protocol_inspector(env());
                if (!inspector_) return route_and_connect("");
                continue;
            case Verdict::Kind::Route:
                // What was read stays in head_ and goes to the backend first; anything the client
                // sends while we connect is appended behind it (see on_client_read).
                sni_ = v.name;
                if (!v.backend) return route_and_connect(sni_);
                // The inspector chose the backend (http): the connection is the backend's from
                // here on, and is not read until the relay starts.
                relay_.stop_reading(relay_.up());
                if (writer_ && writer_->writing) {
                    writer_->forward_after_write = true;
                    backend_ = v.backend;
                    return;
                }
                return connect_to(v.backend);
            case Verdict::Kind::Answer:
                ++answers_;
                head_.erase(0, v.consumed);
                answer(std::move(v.bytes), v.keep_alive);
                // The next request on a kept-alive connection gets a fresh deadline, unless an
                // answer is still being written (then the idle deadline of write_answer() holds).
                if (v.keep_alive && !writer_->writing) arm_timer(global().inspect_timeout_ms);
                continue;
            case Verdict::Kind::Refuse: return refuse(v.outcome, Side::Client, v.why, v.bytes);
        }
    }
}

void Session::route_and_connect(std::string_view name) {
    route::Decision d = snap_->route(li_, name);
    ctx_.stats()
        .keyed(stats_->routes, d.route     ? std::string_view(d.route->match.front())
                               : d.backend ? "default"
                                           : "none")
        .count.add();
    if (!d.backend) {
        const char* why = name.empty() ? "no SNI and no default_backend" : "no route for SNI";
        return refuse(Outcome::NoRoute, Side::Client, why, inspector_ ? inspector_->refusal(Outcome::NoRoute) : "");
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

// Tells the client why, where its inspector has a way to (a TLS alert), then closes. The write
// is one try: a refused client gets no more of our time.
void Session::refuse(Outcome o, Side side, const char* why, std::string_view to_client) {
    if (!to_client.empty()) {
        uv_buf_t b = uv_buf_init(const_cast<char*>(to_client.data()), static_cast<unsigned>(to_client.size()));
        uv_try_write(as_stream(&client_), &b, 1);
    }
    close(o, side, why);
}

void Session::connect_next() {
    if (server_idx_ >= backend_->servers.size()) {
        std::string_view to_client = inspector_ ? inspector_->refusal(Outcome::BackendDown) : "";
        return refuse(Outcome::BackendDown, Side::Backend, why_ ? why_ : "no server reachable", to_client);
    }
    const core::SocketAddress& addr = backend_->servers[server_idx_];
    uv_tcp_init(ctx_.loop(), &upstream_);
    upstream_.data = this;
    upstream_open_ = true;
    connect_req_.data = this;
    connect_started_ns_ = uv_hrtime();
    if (int r = uv_tcp_connect(&connect_req_, &upstream_, addr.sa(), on_connect); r != 0)
        return connect_failed(uv_strerror(r), r);
    // Reading starts now rather than once connected, so that epoll learns of the socket once,
    // for both events, instead of once for the connect and again (ADD, EEXIST, MOD) for reads.
    // libuv completes the connect before it reads, so nothing is read before start_relay().
    relay_.start_reading(relay_.down());
    arm_timer(global().connect_timeout_ms);
}

void Session::on_connect(uv_connect_t* req, int status) noexcept {
    auto* s = static_cast<Session*>(req->data);
    // A timed-out attempt was closed, which cancels its connect: nothing to do for it.
    if (status == UV_ECANCELED || s->closing_) return;
    if (status != 0) return s->connect_failed(uv_strerror(status), status);
    s->ctx_.stats().backend(s->backend_->name).observe_connect_us((uv_hrtime() - s->connect_started_ns_) / 1000);
    uv_timer_stop(&s->timer_);
    s->start_relay();
}

namespace {

// The `reason` label of sniroute_backend_connect_failures_total.
const char* connect_failure_reason(int status) {
    switch (status) {
        case 0:
        case UV_ETIMEDOUT: return "timeout";
        case UV_ECONNREFUSED: return "refused";
        case UV_ENETUNREACH:
        case UV_EHOSTUNREACH: return "unreachable";
        default: return "error";
    }
}

}  // namespace

void Session::connect_failed(const char* why, int status) {
    std::string server = backend_->servers[server_idx_].to_string();
    ctx_.stats()
        .keyed(ctx_.stats().backend(backend_->name).failures, server + " " + connect_failure_reason(status))
        .count.add();
    core::log_warn("backend_attempt_failed")
        .kv("listener", listener().name)
        .kv("backend", backend_->name)
        .kv("server", server)
        .kv("error", why);
    why_ = why;
    ++server_idx_;
    // The connect deadline must not fire while this attempt's handle is closing (an attempt
    // that fails at once from inside the close callback leaves it armed): it would close the
    // handle twice. connect_next() arms it again for the next server.
    uv_timer_stop(&timer_);
    upstream_open_ = false;
    relay_.down().reading = false;
    ++pending_closes_;
    uv_close(as_handle(&upstream_), on_upstream_retry_closed);
}

void Session::on_upstream_retry_closed(uv_handle_t* h) noexcept {
    auto* s = static_cast<Session*>(h->data);
    if (--s->pending_closes_ == 0 && s->closing_) return s->finish();
    if (!s->closing_) s->connect_next();
}

void Session::start_relay() {
    phase_ = Phase::Relay;
    uv_tcp_nodelay(&upstream_, 1);
    arm_timer(global().idle_timeout_ms);
    // What inspected and answered the head is done with; only the relay runs from here on.
    inspector_.reset();
    writer_.reset();
    // PROXY header and buffered head leave in one writev, so the backend sees them in one
    // segment where possible and we pay one system call.
    std::string header;
    if (backend_->proxy_protocol == config::ProxyProtocol::V1)
        append_v1(header, client_addr_.get(), local_addr_.get());
    else if (backend_->proxy_protocol == config::ProxyProtocol::V2)
        append_v2(header, client_addr_.get(), local_addr_.get());
    uv_buf_t bufs[2];
    unsigned nb = 0;
    if (!header.empty()) bufs[nb++] = uv_buf_init(header.data(), static_cast<unsigned>(header.size()));
    if (!head_.empty()) bufs[nb++] = uv_buf_init(head_.data(), static_cast<unsigned>(head_.size()));
    relay_.start(bufs, nb, head_.size());
    std::string().swap(head_);  // written or copied: its buffer is not kept for the connection
}

void Session::on_timer(uv_timer_t* t) noexcept {
    auto* s = static_cast<Session*>(t->data);
    if (s->closing_) return;
    switch (s->phase_) {
        case Phase::Inspect: {
            if (s->answers_ > 0 && s->head_.empty()) return s->close(Outcome::Ok, Side::Client);  // idle keep-alive
            // The first head's deadline, armed early by start() on a deferring listener: a
            // client that has sent a byte was handed over at its connect and has the rest.
            uint64_t age = uv_now(s->ctx_.loop()) - s->started_ms_;
            bool spoke = !s->head_.empty() || !s->first_inspector_;
            if (s->answers_ == 0 && spoke && age < s->global().inspect_timeout_ms)
                return s->arm_timer(s->global().inspect_timeout_ms - age);
            s->inspector_->timed_out();
            return s->close(Outcome::Timeout, Side::Client, s->inspector_->timeout_reason());
        }
        case Phase::Linger: return s->close(Outcome::Ok, Side::Client);
        case Phase::Connecting: return s->connect_failed("connect timeout", 0);
        case Phase::Relay: break;
    }
    // Idle timeout, re-armed lazily: reads only stamp the relay's last activity, and the timer
    // checks it when it fires, which saves a timer-heap update per read.
    uint64_t now = uv_now(s->ctx_.loop());
    uint64_t idle = now - s->relay_.last_activity_ms();
    if (idle >= s->global().idle_timeout_ms) return s->close(Outcome::Timeout, Side::Client, "idle timeout");
    s->arm_timer(s->global().idle_timeout_ms - idle);
}

void Session::close(Outcome o, Side side, const char* why) {
    if (closing_) return;
    closing_ = true;
    outcome_ = o;
    side_ = side;
    if (why) why_ = why;
    // The relay's polls go first (see Relay::close).
    if (relay_.close()) ++pending_closes_;
    close_handle(as_handle(&client_));
    close_handle(as_handle(&timer_));
    if (upstream_open_) {
        upstream_open_ = false;
        close_handle(as_handle(&upstream_));
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

void Session::relay_handles_closed() {
    if (--pending_closes_ == 0 && closing_) finish();
}

// The one way a session ends: every close callback has run.
void Session::finish() {
    // The per-IP slot is given back here, once, whatever ended the session, and before the conn
    // line: whoever reads that the connection ended (a test, an admin) may connect again at once
    // and must find the slot free. With the rate of the session's own snapshot, which decides
    // only whether the emptied entry can go at once.
    if (ip_counted_)
        ip_state().table.release(core::IpAddress::from(&client_addr_.u.sa), listener().new_connections_per_ip,
                                 uv_now(ctx_.loop()));
    count_close();
    log_close();
    delete this;
}

void Session::count_close() {
    PairStats& p = ctx_.stats().pair(*stats_, backend_ ? std::string_view(backend_->name) : std::string_view());
    p.outcomes[static_cast<size_t>(outcome_)].add();
    if (uint64_t up = relay_.up().bytes) p.bytes_up.add(up);
    if (uint64_t down = relay_.down().bytes) p.bytes_down.add(down);
    stats_->closed.add();
}

void Session::log_close() {
    bool fine = outcome_ == Outcome::Ok || outcome_ == Outcome::Aborted;
    if (fine && !global().access_log) return;
    // A connection whose requests were all answered here was logged request by request.
    if (answers_ > 0 && !backend_ && outcome_ == Outcome::Ok) return;
    uint64_t now = uv_now(ctx_.loop());
    auto line = fine ? core::log_info("conn") : core::log_warn("conn");
    line.kv("client", client_addr_.get().to_string())
        .kv("listener", listener().name)
        .kv("sni", sni_.empty() ? "-" : sni_)
        .kv("backend", backend_ ? backend_->name : "-")
        .kv("server",
            backend_ && server_idx_ < backend_->servers.size() ? backend_->servers[server_idx_].to_string() : "-")
        .kv("up", relay_.up().bytes)
        .kv("down", relay_.down().bytes)
        .kv("duration_ms", now - started_ms_)
        .kv("outcome", to_string(outcome_))
        .kv("side", to_string(side_));
    if (why_ && outcome_ != Outcome::Ok) line.kv("error", why_);
}

}  // namespace sniroute::proxy

#include "server/admin.hpp"

#include <memory>

#include "core/log.hpp"
#include "http/request_head.hpp"
#include "proxy/uv_cast.hpp"

namespace sniroute::server {

using core::log_error;
using core::log_warn;
using proxy::as_handle;
using proxy::as_stream;

struct AdminServer::Listener {
    uv_tcp_t tcp{};
    AdminServer* server = nullptr;
    core::SocketAddress addr;
};

// One admin connection: read one head, answer it, close. Owns its socket and its deadline
// timer, and is deleted when both have closed.
struct AdminServer::Conn : core::IntrusiveList<Conn>::Hook {
    explicit Conn(AdminServer* s) : server(s), parser(kMaxHead) {}

    AdminServer* server;
    uv_tcp_t tcp{};
    uv_timer_t timer{};
    uv_write_t write_req{};
    uv_shutdown_t shutdown_req{};
    http::RequestHeadParser parser;
    std::string out;
    bool answered = false;
    bool closing = false;
    int pending_closes = 0;

    void answer(const AdminResponse& r, bool head_only);
    static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept;
    static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept;
    static void on_written(uv_write_t* req, int status) noexcept;
    static void on_shutdown(uv_shutdown_t* req, int status) noexcept;
    static void on_timeout(uv_timer_t* t) noexcept;
    static void on_closed(uv_handle_t* h) noexcept;
};

namespace {

const char* reason_phrase(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        default: return "Unknown";
    }
}

// One read buffer for every admin connection: the control loop is one thread, and each read is
// fed to the parser before the next.
char g_read_buf[4096];

}  // namespace

AdminServer::~AdminServer() {
    // The owner waits for idle() before destroying us; a handle still open here would be freed
    // under libuv's feet, so this is a bug worth a line rather than a crash later.
    if (open_handles_ != 0) log_error("admin_leak").kv("handles", static_cast<uint64_t>(open_handles_));
}

bool AdminServer::start(const std::vector<core::SocketAddress>& binds) {
    for (const auto& a : binds) {
        auto* l = new Listener;
        l->server = this;
        l->addr = a;
        uv_tcp_init(loop_, &l->tcp);
        l->tcp.data = l;
        ++open_handles_;
        listeners_.push_back(l);
        int r = uv_tcp_bind(&l->tcp, reinterpret_cast<const sockaddr*>(&a.ss),
                            a.family() == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
        if (r == 0) r = uv_listen(as_stream(&l->tcp), 64, on_connection);
        if (r != 0) {
            log_error("admin_listen_failed").kv("bind", a.to_string()).kv("error", uv_strerror(r));
            stop();
            return false;
        }
        core::log_info("admin_listener").kv("bind", a.to_string());
    }
    return true;
}

void AdminServer::stop() {
    for (Listener* l : listeners_) uv_close(as_handle(&l->tcp), on_listener_closed);
    listeners_.clear();
    conns_.for_each([this](Conn* c) { close_conn(c); });
}

void AdminServer::on_listener_closed(uv_handle_t* h) noexcept {
    auto* l = static_cast<Listener*>(h->data);
    --l->server->open_handles_;
    delete l;
}

void AdminServer::on_connection(uv_stream_t* s, int status) noexcept {
    auto* l = static_cast<Listener*>(s->data);
    AdminServer* srv = l->server;
    if (status < 0) {
        log_warn("admin_accept_failed").kv("bind", l->addr.to_string()).kv("error", uv_strerror(status));
        return;
    }
    auto* c = new Conn(srv);
    uv_tcp_init(srv->loop_, &c->tcp);
    uv_timer_init(srv->loop_, &c->timer);
    c->tcp.data = c->timer.data = c;
    srv->open_handles_ += 2;
    ++srv->conn_count_;
    srv->conns_.push_front(c);
    // Accepted in every case: libuv stops watching a listening socket whose callback returns
    // without an accept (see server/worker.cpp). Beyond the cap it is closed at once.
    if (uv_accept(s, as_stream(&c->tcp)) != 0 || srv->conn_count_ > kMaxConnections) return srv->close_conn(c);
    uv_timer_start(&c->timer, Conn::on_timeout, kHeadTimeoutMs, 0);
    if (uv_read_start(as_stream(&c->tcp), Conn::on_alloc, Conn::on_read) != 0) srv->close_conn(c);
}

void AdminServer::close_conn(Conn* c) {
    if (c->closing) return;
    c->closing = true;
    conns_.remove(c);
    c->pending_closes = 2;
    uv_close(as_handle(&c->tcp), Conn::on_closed);
    uv_close(as_handle(&c->timer), Conn::on_closed);
}

void AdminServer::Conn::on_closed(uv_handle_t* h) noexcept {
    auto* c = static_cast<Conn*>(h->data);
    --c->server->open_handles_;
    if (--c->pending_closes > 0) return;
    --c->server->conn_count_;
    delete c;
}

void AdminServer::Conn::on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) noexcept {
    buf->base = g_read_buf;
    buf->len = sizeof g_read_buf;
}

void AdminServer::Conn::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
    auto* c = static_cast<Conn*>(s->data);
    if (c->closing || n == 0) return;
    if (n < 0) return c->server->close_conn(c);  // gone: before its request was whole, or done
    if (c->answered) return;                     // what follows the head is discarded
    switch (c->parser.feed(buf->base, static_cast<size_t>(n))) {
        case http::HeadStatus::NeedMore: return;
        case http::HeadStatus::Bad:
            return c->answer({400, "text/plain; charset=utf-8", c->parser.error() + std::string("\n")}, false);
        case http::HeadStatus::TooLarge:
            return c->answer({431, "text/plain; charset=utf-8", "request head too large\n"}, false);
        case http::HeadStatus::Done: break;
    }
    const http::RequestHead& head = c->parser.head();
    AdminResponse r;
    try {
        r = c->server->handler_(head.method, head.target);
    } catch (const std::exception& e) {
        // Never across the libuv frame: a handler that throws is a bug, answered as one.
        log_error("admin_handler_failed").kv("target", head.target).kv("error", e.what());
        r = {500, "text/plain; charset=utf-8", "internal error\n"};
    }
    c->answer(r, head.method == "HEAD");
}

void AdminServer::Conn::answer(const AdminResponse& r, bool head_only) {
    // Reading goes on, to discard: closing a socket with unread input resets the connection,
    // which can destroy the answer before the client has read it (a 431 for a head that was
    // still arriving, say). The client's EOF, or the timer, ends the connection.
    answered = true;
    out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) +
          "\r\nContent-Type: " + r.content_type + "\r\nContent-Length: " + std::to_string(r.body.size()) +
          "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
    if (!head_only) out += r.body;
    uv_buf_t b = uv_buf_init(out.data(), static_cast<unsigned>(out.size()));
    write_req.data = this;
    if (uv_write(&write_req, as_stream(&tcp), &b, 1, on_written) != 0) return server->close_conn(this);
    uv_timer_start(&timer, on_timeout, kWriteTimeoutMs, 0);
}

// The answer is out: we send our FIN and wait for the client's (it has read Connection: close),
// at most kLingerMs.
void AdminServer::Conn::on_written(uv_write_t* req, int status) noexcept {
    auto* c = static_cast<Conn*>(req->data);
    if (c->closing) return;
    c->shutdown_req.data = c;
    if (status < 0 || uv_shutdown(&c->shutdown_req, as_stream(&c->tcp), on_shutdown) != 0)
        return c->server->close_conn(c);
    uv_timer_start(&c->timer, on_timeout, kLingerMs, 0);
}

void AdminServer::Conn::on_shutdown(uv_shutdown_t* req, int status) noexcept {
    auto* c = static_cast<Conn*>(req->data);
    if (status < 0 && !c->closing) c->server->close_conn(c);
}

void AdminServer::Conn::on_timeout(uv_timer_t* t) noexcept {
    auto* c = static_cast<Conn*>(t->data);
    c->server->close_conn(c);
}

}  // namespace sniroute::server

#include "acme/control_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "acme/store.hpp"
#include "core/fd.hpp"
#include "core/log.hpp"

namespace sniroute::acme {

namespace {

constexpr std::string_view kRenewVerb = "renew ";
constexpr int kListenBacklog = 16;

// sun_path holds 108 bytes, and libuv 1.44 binds a silently truncated path.
bool fits_sun_path(const std::string& path) { return path.size() < sizeof(sockaddr_un{}.sun_path); }

}  // namespace

std::string control_socket_path(const std::string& storage) { return storage + "/control.sock"; }

std::string renew_request(std::string_view name) {
    std::string line(kRenewVerb);
    line += name;
    return line;
}

std::optional<std::string> parse_renew_request(std::string_view line) {
    if (!line.starts_with(kRenewVerb)) return std::nullopt;
    return std::string(line.substr(kRenewVerb.size()));
}

std::string error_answer(std::string_view text) {
    std::string line = "error ";
    line += text;
    return line;
}

// Two handles: the connection and its idle timer. Deleted in the second close callback.
struct ControlConn {
    uv_pipe_t pipe{};
    uv_timer_t idle{};
    ControlServer* server = nullptr;
    std::string line;
    int open_handles = 0;
    bool closing = false;
    char buf[512];

    uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&pipe); }
};

ControlServer::ControlServer(uv_loop_t* loop, LineHandler on_line, Limits limits)
    : loop_(loop), on_line_(std::move(on_line)), limits_(limits) {}

// By contract close() has finished; a handle still open here would be freed under libuv.
ControlServer::~ControlServer() { assert(!is_open()); }

void ControlServer::listen(const std::string& storage) {
    if (listening_ || closing_) return;
    std::string path = control_socket_path(storage);
    std::string err;
    if (!fits_sun_path(path))
        err = "path too long";
    else
        ensure_dir(storage, 0700, err);
    if (!err.empty()) {
        core::log_warn("control_socket_failed").kv("path", path).kv("error", err);
        return;
    }
    ::unlink(path.c_str());
    uv_pipe_init(loop_, &listener_, 0);
    listener_.data = this;
    listening_ = true;
    mode_t old = ::umask(0077);
    int r = uv_pipe_bind(&listener_, path.c_str());
    ::umask(old);
    if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), kListenBacklog, on_connection);
    if (r != 0) core::log_warn("control_socket_failed").kv("path", path).kv("error", uv_strerror(r));
}

void ControlServer::on_connection(uv_stream_t* listener, int status) noexcept {
    auto* self = static_cast<ControlServer*>(listener->data);
    if (status < 0 || self->closing_) return;
    // Accepted in any case: a connection left in the backlog would be offered again at once.
    bool over_cap = self->conns_.size() >= self->limits_.max_connections;
    auto* conn = new ControlConn;
    conn->server = self;
    uv_pipe_init(self->loop_, &conn->pipe, 0);
    uv_timer_init(self->loop_, &conn->idle);
    conn->pipe.data = conn->idle.data = conn;
    conn->open_handles = 2;
    self->conns_.insert(conn);
    if (uv_accept(listener, conn->stream()) != 0 || over_cap) return self->close_conn(conn);
    self->start_reading(conn);
}

void ControlServer::start_reading(ControlConn* conn) {
    uv_timer_start(
        &conn->idle,
        [](uv_timer_t* t) noexcept {
            auto* c = static_cast<ControlConn*>(t->data);
            c->server->close_conn(c);
        },
        limits_.idle_ms, 0);
    int r = uv_read_start(
        conn->stream(),
        [](uv_handle_t* h, size_t, uv_buf_t* b) noexcept {
            auto* c = static_cast<ControlConn*>(h->data);
            *b = uv_buf_init(c->buf, sizeof c->buf);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) noexcept {
            auto* c = static_cast<ControlConn*>(s->data);
            if (n < 0) return c->server->close_conn(c);
            c->server->on_data(c, b->base, static_cast<size_t>(n));
        });
    if (r != 0) close_conn(conn);
}

void ControlServer::on_data(ControlConn* conn, const char* data, size_t n) {
    conn->line.append(data, n);
    size_t nl = conn->line.find('\n');
    if (nl == std::string::npos) {
        if (conn->line.size() > limits_.max_line) reply(conn, error_answer("line too long"));
        return;
    }
    // A whole request: from here on the connection waits for its answer, and is not idle.
    uv_read_stop(conn->stream());
    uv_timer_stop(&conn->idle);
    try {
        on_line_(conn, conn->line.substr(0, nl));
    } catch (...) {
        close_conn(conn);
    }
}

void ControlServer::reply(ControlConn* conn, const std::string& text) {
    if (conns_.count(conn) == 0 || conn->closing) return;
    std::string msg = text + "\n";
    uv_buf_t b = uv_buf_init(msg.data(), static_cast<unsigned>(msg.size()));
    uv_try_write(conn->stream(), &b, 1);
    close_conn(conn);
}

void ControlServer::close_conn(ControlConn* conn) {
    if (conn->closing) return;
    conn->closing = true;
    uv_timer_stop(&conn->idle);
    auto closed = [](uv_handle_t* h) noexcept {
        auto* c = static_cast<ControlConn*>(h->data);
        if (--c->open_handles == 0) c->server->on_conn_closed(c);
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&conn->pipe), closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&conn->idle), closed);
}

void ControlServer::on_conn_closed(ControlConn* conn) {
    conns_.erase(conn);
    delete conn;
    // The last connection of a closing server may be what close() is waiting for.
    maybe_done();
}

void ControlServer::close(std::function<void()> done) {
    closing_ = true;
    done_ = std::move(done);
    for (ControlConn* c : std::vector<ControlConn*>(conns_.begin(), conns_.end())) close_conn(c);
    if (listening_) {
        uv_close(reinterpret_cast<uv_handle_t*>(&listener_), [](uv_handle_t* h) noexcept {
            auto* self = static_cast<ControlServer*>(h->data);
            self->listening_ = false;
            self->maybe_done();
        });
        return;
    }
    maybe_done();
}

void ControlServer::maybe_done() {
    if (closing_ && !is_open() && done_) std::exchange(done_, nullptr)();
}

ControlCall control_call(const std::string& storage, std::string_view request, int timeout_ms) {
    ControlCall call;
    call.path = control_socket_path(storage);
    if (!fits_sun_path(call.path)) {
        call.status = ControlCall::Status::PathTooLong;
        return call;
    }
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, call.path.c_str(), call.path.size() + 1);
    core::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid() || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        call.status = ControlCall::Status::Unreachable;
        call.error = std::strerror(errno);
        return call;
    }
    std::string line(request);
    line += '\n';
    if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
        call.status = ControlCall::Status::SendFailed;
        return call;
    }
    char buf[1024];
    pollfd p{fd.get(), POLLIN, 0};
    while (::poll(&p, 1, timeout_ms) == 1) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n <= 0) break;
        call.answer.append(buf, static_cast<size_t>(n));
    }
    while (!call.answer.empty() && call.answer.back() == '\n') call.answer.pop_back();
    call.status = call.answer.empty() ? ControlCall::Status::NoAnswer : ControlCall::Status::Answered;
    return call;
}

}  // namespace sniroute::acme

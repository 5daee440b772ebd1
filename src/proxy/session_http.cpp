// The http front's transport side: reading request heads, writing our own responses in order,
// handing the connection to a backend, and closing politely. What to answer is decided in
// src/http/front.cpp; this file only moves bytes.
#include <sys/socket.h>

#include "core/log.hpp"
#include "server/worker.hpp"
#include "http/front.hpp"
#include "proxy/session.hpp"

namespace sniroute::proxy {

namespace {

// Responses waiting to be written beyond this stop us reading more pipelined requests.
constexpr size_t kMaxQueuedResponses = 64 * 1024;
// How long input is discarded after a final response before the socket is closed.
constexpr uint64_t kLingerMs = 2'000;

uv_stream_t* S(uv_tcp_t* t) { return reinterpret_cast<uv_stream_t*>(t); }

}  // namespace

void Session::on_http_bytes() {
    HttpState& h = *http_;
    while (phase_ == Phase::HttpHead && !h.close_after_write && !h.forward_after_write) {
        if (h.queued.size() > kMaxQueuedResponses) {
            // The client pipelines faster than it reads: stop until our writes drain.
            return stop_reading(up_);
        }
        if (h.fed >= head_.size()) return;  // wait for more bytes
        http::HeadStatus st = h.parser.feed(head_.data() + h.fed, head_.size() - h.fed);
        h.fed = head_.size();
        if (st == http::HeadStatus::NeedMore) return;
        if (st == http::HeadStatus::Bad || st == http::HeadStatus::TooLarge) {
            int status = st == http::HeadStatus::Bad ? 400 : 431;
            core::log_warn("http")
                .kv("client", client_addr_.get().to_string())
                .kv("listener", listener_.name)
                .kv("status", status)
                .kv("error", h.parser.error());
            ++h.requests;
            return answer(http::make_response(status, std::string(h.parser.error()) + "\n", false, false), false);
        }

        const http::RequestHead& rh = h.parser.head();
        const config::Acme& acme = snap_->config().acme;
        http::Sources sources{&w_.shared().tokens, acme.webroot, acme.account_thumbprint};
        http::Action a = http::decide(rh, *snap_, li_, sources);
        if (a.kind == http::Action::Kind::Forward) {
            // The head stays in head_ and is replayed to the backend byte for byte, followed by
            // whatever the client sends next: from here on the connection is the backend's.
            sni_ = a.host;
            stop_reading(up_);
            if (h.writing) {
                h.forward_after_write = true;
                backend_ = a.backend;
                return;
            }
            return connect_to(a.backend);
        }
        if (global_.access_log) {
            core::log_info("http")
                .kv("client", client_addr_.get().to_string())
                .kv("listener", listener_.name)
                .kv("host", a.host.empty() ? rh.host : a.host)
                .kv("method", rh.method)
                .kv("path", rh.target)
                .kv("status", a.status)
                .kv("source", a.source);
        }
        ++h.requests;
        head_.erase(0, rh.head_len);
        h.parser.reset();
        h.fed = 0;
        answer(std::move(a.response), a.keep_alive);
        // The next request on a kept-alive connection gets a fresh deadline, unless an answer
        // is still being written (then the idle deadline of write_response() holds).
        if (a.keep_alive && !h.writing) arm_timer(global_.inspect_timeout_ms);
    }
}

void Session::answer(std::string response, bool keep_alive) {
    HttpState& h = *http_;
    if (!keep_alive) {
        h.close_after_write = true;
        stop_reading(up_);
    }
    if (h.writing) {
        h.queued += response;
        return;
    }
    h.out = std::move(response);
    if (write_response() == WriteResult::Done && h.close_after_write) linger();
}

Session::WriteResult Session::write_response() {
    HttpState& h = *http_;
    // Most answers are a few hundred bytes and leave in one try; only the rest is queued.
    uv_buf_t b = uv_buf_init(h.out.data(), static_cast<unsigned>(h.out.size()));
    int n = uv_try_write(S(&client_), &b, 1);
    if (n == static_cast<int>(h.out.size())) {
        h.out.clear();
        return WriteResult::Done;
    }
    if (n < 0 && n != UV_EAGAIN) {
        close(Outcome::Reset, uv_strerror(n));
        return WriteResult::Closed;
    }
    if (n > 0) h.out.erase(0, static_cast<size_t>(n));
    b = uv_buf_init(h.out.data(), static_cast<unsigned>(h.out.size()));
    h.write_req.data = this;
    if (int r = uv_write(&h.write_req, S(&client_), &b, 1, on_response_written); r != 0) {
        close(Outcome::Error, uv_strerror(r));
        return WriteResult::Closed;
    }
    h.writing = true;
    // The client is not reading its answers. That is a stall of an established exchange, not a
    // slow request head, so it gets the idle deadline rather than the head deadline.
    arm_timer(global_.idle_timeout_ms);
    return WriteResult::Pending;
}

void Session::on_response_written(uv_write_t* req, int status) noexcept {
    auto* s = static_cast<Session*>(req->data);
    if (s->closing_) return;
    HttpState& h = *s->http_;
    h.writing = false;
    h.out.clear();
    if (status < 0) return s->close(Outcome::Reset, uv_strerror(status));
    // Answers queued meanwhile go out in one piece; each pass either finishes synchronously
    // (loop on) or leaves a write in flight whose callback lands back here.
    while (!h.queued.empty()) {
        h.out.swap(h.queued);
        h.queued.clear();
        if (s->write_response() != WriteResult::Done) return;
    }
    // After the client's FIN there is no input left to drain: close at once.
    if (h.close_after_write) return s->up_.eof ? s->close(Outcome::Ok) : s->linger();
    if (h.forward_after_write) return s->connect_to(s->backend_);
    // All answers are out: resume reading pipelined requests with a fresh head deadline.
    s->arm_timer(s->global_.inspect_timeout_ms);
    if (!s->up_.reading && !s->start_reading(s->up_)) return s->close(Outcome::Error, "read_start failed");
    s->on_http_bytes();
}

// Closing a socket with unread input makes the kernel send RST, which can destroy a response
// the client has not read yet. So: FIN first, then read and discard until the client closes or
// a short deadline passes (nginx's lingering close). Every answer has been written when we get
// here, so shutdown(2) is called directly, as the relay does (see pipe_eof).
void Session::linger() {
    if (::shutdown(fd_of(&client_), SHUT_WR) != 0) return close(Outcome::Ok);
    phase_ = Phase::Linger;
    std::string().swap(head_);
    arm_timer(kLingerMs);
    if (!up_.reading && !start_reading(up_)) close(Outcome::Ok);
}

}  // namespace sniroute::proxy

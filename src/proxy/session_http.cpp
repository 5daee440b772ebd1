// The http front's transport side: reading request heads, writing our own responses in order,
// handing the connection to a backend, and closing politely. What to answer is decided in
// src/http/front.cpp; this file only moves bytes.
#include "core/log.hpp"
#include "core/worker.hpp"
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
    while (phase_ == Phase::HttpHead && !close_after_write_ && !forward_after_write_) {
        if (resp_queued_.size() > kMaxQueuedResponses) {
            // The client pipelines faster than it reads: stop until our writes drain.
            uv_read_stop(S(&client_));
            up_.reading = false;
            return;
        }
        if (http_fed_ >= head_.size()) return;  // wait for more bytes
        http::HeadStatus st = http_->feed(head_.data() + http_fed_, head_.size() - http_fed_);
        http_fed_ = head_.size();
        if (st == http::HeadStatus::NeedMore) return;
        if (st == http::HeadStatus::Bad || st == http::HeadStatus::TooLarge) {
            int status = st == http::HeadStatus::Bad ? 400 : 431;
            core::log_warn("http")
                .kv("client", client_addr_.to_string())
                .kv("listener", listener_.name)
                .kv("status", status)
                .kv("error", http_->error());
            ++requests_;
            return answer(http::make_response(status, std::string(http_->error()) + "\n", false, false), false);
        }

        const http::RequestHead& h = http_->head();
        const config::Acme& acme = snap_->config().acme;
        http::Sources sources{&w_.shared().tokens, acme.webroot, acme.account_thumbprint};
        http::Action a = http::decide(h, *snap_, li_, sources);
        if (a.kind == http::Action::Kind::Forward) {
            // The head stays in head_ and is replayed to the backend byte for byte, followed by
            // whatever the client sends next: from here on the connection is the backend's.
            sni_ = a.host;
            uv_read_stop(S(&client_));
            up_.reading = false;
            if (resp_writing_) {
                forward_after_write_ = true;
                backend_ = a.backend;
                return;
            }
            return connect_to(a.backend);
        }
        if (global_.access_log) {
            core::log_info("http")
                .kv("client", client_addr_.to_string())
                .kv("listener", listener_.name)
                .kv("host", a.host.empty() ? h.host : a.host)
                .kv("method", h.method)
                .kv("path", h.target)
                .kv("status", a.status)
                .kv("source", a.source);
        }
        ++requests_;
        head_.erase(0, h.head_len);
        http_->reset();
        http_fed_ = 0;
        answer(std::move(a.response), a.keep_alive);
        // The next request on a kept-alive connection gets a fresh deadline, unless an answer
        // is still being written (then the idle deadline of write_response() holds).
        if (a.keep_alive && !resp_writing_) arm_timer(global_.client_hello_timeout_ms);
    }
}

void Session::answer(std::string response, bool keep_alive) {
    if (!keep_alive) {
        close_after_write_ = true;
        uv_read_stop(S(&client_));
        up_.reading = false;
    }
    if (resp_writing_) {
        resp_queued_ += response;
        return;
    }
    resp_out_ = std::move(response);
    if (write_response() == WriteResult::Done && close_after_write_) linger();
}

Session::WriteResult Session::write_response() {
    // Most answers are a few hundred bytes and leave in one try; only the rest is queued.
    uv_buf_t b = uv_buf_init(resp_out_.data(), static_cast<unsigned>(resp_out_.size()));
    int n = uv_try_write(S(&client_), &b, 1);
    if (n == static_cast<int>(resp_out_.size())) {
        resp_out_.clear();
        return WriteResult::Done;
    }
    if (n < 0 && n != UV_EAGAIN) {
        close(Outcome::Reset, uv_strerror(n));
        return WriteResult::Closed;
    }
    if (n > 0) resp_out_.erase(0, static_cast<size_t>(n));
    b = uv_buf_init(resp_out_.data(), static_cast<unsigned>(resp_out_.size()));
    down_.write_req.data = this;
    if (int r = uv_write(&down_.write_req, S(&client_), &b, 1, on_response_written); r != 0) {
        close(Outcome::Error, uv_strerror(r));
        return WriteResult::Closed;
    }
    resp_writing_ = true;
    // The client is not reading its answers. That is a stall of an established exchange, not a
    // slow request head, so it gets the idle deadline rather than the head deadline.
    arm_timer(global_.idle_timeout_ms);
    return WriteResult::Pending;
}

void Session::on_response_written(uv_write_t* req, int status) noexcept {
    auto* s = static_cast<Session*>(req->data);
    if (s->closing_) return;
    s->resp_writing_ = false;
    s->resp_out_.clear();
    if (status < 0) return s->close(Outcome::Reset, uv_strerror(status));
    // Answers queued meanwhile go out in one piece; each pass either finishes synchronously
    // (loop on) or leaves a write in flight whose callback lands back here.
    while (!s->resp_queued_.empty()) {
        s->resp_out_.swap(s->resp_queued_);
        s->resp_queued_.clear();
        if (s->write_response() != WriteResult::Done) return;
    }
    if (s->close_after_write_) return s->linger();
    if (s->forward_after_write_) return s->connect_to(s->backend_);
    // All answers are out: resume reading pipelined requests with a fresh head deadline.
    s->arm_timer(s->global_.client_hello_timeout_ms);
    if (!s->up_.reading && !s->start_reading(s->up_)) return s->close(Outcome::Error, "read_start failed");
    s->on_http_bytes();
}

// Closing a socket with unread input makes the kernel send RST, which can destroy a response
// the client has not read yet. So: FIN first, then read and discard until the client closes or
// a short deadline passes (nginx's lingering close).
void Session::linger() {
    up_.shutdown_req.data = this;
    if (uv_shutdown(&up_.shutdown_req, S(&client_), on_linger_shutdown) != 0) close(Outcome::Ok);
}

void Session::on_linger_shutdown(uv_shutdown_t* req, int status) noexcept {
    auto* s = static_cast<Session*>(req->data);
    if (s->closing_) return;
    if (status < 0) return s->close(Outcome::Ok);
    s->phase_ = Phase::Linger;
    s->head_.clear();
    s->arm_timer(kLingerMs);
    if (!s->up_.reading && !s->start_reading(s->up_)) s->close(Outcome::Ok);
}

}  // namespace sniroute::proxy

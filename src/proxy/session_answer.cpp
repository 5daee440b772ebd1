// Answers the session writes itself, when an inspector's verdict asks for them (the port-80
// front's challenge answers, redirects and errors): in order, with backpressure, and with a
// lingering close after the last one. What to answer is decided elsewhere (src/http/front.cpp,
// through http_inspector.cpp); this file only moves the bytes.
#include <sys/socket.h>

#include "proxy/session.hpp"
#include "proxy/uv_cast.hpp"

namespace sniroute::proxy {

namespace {

// How long input is discarded after a final answer before the socket is closed.
constexpr uint64_t kLingerMs = 2'000;

}  // namespace

void Session::answer(std::string response, bool keep_alive) {
    if (!writer_) writer_ = std::make_unique<AnswerWriter>();
    AnswerWriter& w = *writer_;
    if (!keep_alive) {
        w.close_after_write = true;
        relay_.stop_reading(relay_.up());
    }
    if (w.writing) {
        w.queued += response;
        return;
    }
    w.out = std::move(response);
    if (write_answer() == WriteResult::Done && w.close_after_write) linger();
}

Session::WriteResult Session::write_answer() {
    AnswerWriter& w = *writer_;
    // Most answers are a few hundred bytes and leave in one try; only the rest is queued.
    uv_buf_t b = uv_buf_init(w.out.data(), static_cast<unsigned>(w.out.size()));
    int n = uv_try_write(as_stream(&client_), &b, 1);
    if (n == static_cast<int>(w.out.size())) {
        w.out.clear();
        return WriteResult::Done;
    }
    if (n < 0 && n != UV_EAGAIN) {
        close(Outcome::Reset, Side::Client, uv_strerror(n));
        return WriteResult::Closed;
    }
    if (n > 0) w.out.erase(0, static_cast<size_t>(n));
    b = uv_buf_init(w.out.data(), static_cast<unsigned>(w.out.size()));
    w.req.data = this;
    if (int r = uv_write(&w.req, as_stream(&client_), &b, 1, on_answer_written); r != 0) {
        close(Outcome::Error, Side::Internal, uv_strerror(r));
        return WriteResult::Closed;
    }
    w.writing = true;
    // The client is not reading its answers. That is a stall of an established exchange, not a
    // slow request head, so it gets the idle deadline rather than the head deadline.
    arm_timer(global().idle_timeout_ms);
    return WriteResult::Pending;
}

void Session::on_answer_written(uv_write_t* req, int status) noexcept {
    auto* s = static_cast<Session*>(req->data);
    if (s->closing_) return;
    AnswerWriter& w = *s->writer_;
    w.writing = false;
    w.out.clear();
    if (status < 0) return s->close(Outcome::Reset, Side::Client, uv_strerror(status));
    // Answers queued meanwhile go out in one piece; each pass either finishes synchronously
    // (loop on) or leaves a write in flight whose callback lands back here.
    while (!w.queued.empty()) {
        w.out.swap(w.queued);
        w.queued.clear();
        if (s->write_answer() != WriteResult::Done) return;
    }
    // After the client's FIN there is no input left to drain: close at once.
    if (w.close_after_write) return s->relay_.up().eof ? s->close(Outcome::Ok, Side::Client) : s->linger();
    if (w.forward_after_write) return s->connect_to(s->backend_);
    // All answers are out: resume reading pipelined requests with a fresh head deadline.
    s->arm_timer(s->global().inspect_timeout_ms);
    Relay::Direction& up = s->relay_.up();
    if (!up.reading && !s->relay_.start_reading(up))
        return s->close(Outcome::Error, Side::Internal, "read_start failed");
    s->inspect();
}

// Closing a socket with unread input makes the kernel send RST, which can destroy an answer
// the client has not read yet. So: FIN first, then read and discard until the client closes or
// a short deadline passes (nginx's lingering close). Every answer has been written when we get
// here, so shutdown(2) is called directly, as the relay does (see Relay::eof).
void Session::linger() {
    if (::shutdown(fd_of(&client_), SHUT_WR) != 0) return close(Outcome::Ok, Side::Client);
    phase_ = Phase::Linger;
    std::string().swap(head_);
    Relay::Direction& up = relay_.up();
    arm_timer(kLingerMs);
    if (!up.reading && !relay_.start_reading(up)) close(Outcome::Ok, Side::Client);
}

}  // namespace sniroute::proxy

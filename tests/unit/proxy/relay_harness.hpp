// A relay on a real uv loop between two loopback TCP connections, for the relay tests.
//
//   client_peer  <-TCP->  client  [relay]  backend  <-TCP->  backend_peer
//
// The test drives client_peer and backend_peer (non-blocking descriptors) and runs the loop
// with pump(); the harness plays the relay's owner, as the session does: it owns the two
// handles the relay moves bytes between and closes them when the relay ends. Every wait is
// bounded, and the loop must close cleanly (uv_loop_close() == 0) at the end of each case.
#pragma once

#include <doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "proxy/loop_context.hpp"
#include "proxy/relay.hpp"
#include "proxy/uv_cast.hpp"

namespace sniroute::proxy::test {

// A connected loopback TCP pair: {ours, theirs}. `rcvbuf` > 0 shrinks the receive buffer of
// `ours` before it connects, so that the window it offers is small from the handshake on.
inline std::pair<int, int> tcp_pair(int rcvbuf = 0) {
    int lst = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(lst >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(lst, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(lst, 1) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(lst, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    int ours = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) ::setsockopt(ours, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    REQUIRE(::connect(ours, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    int theirs = ::accept4(lst, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(theirs >= 0);
    ::close(lst);
    return {ours, theirs};
}

inline void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// A byte of a pattern that shows both loss and reordering.
inline char pattern(uint64_t i) { return static_cast<char>((i * 131 + (i >> 16)) & 0xff); }

class RelayHarness final : public RelayOwner {
public:
    explicit RelayHarness(int backend_rcvbuf = 0, int backend_sndbuf = 0) {
        REQUIRE(uv_loop_init(&loop_) == 0);
        auto [client_fd, client_peer] = tcp_pair();
        auto [backend_peer, backend_fd] = tcp_pair();
        if (backend_rcvbuf > 0)
            ::setsockopt(backend_peer, SOL_SOCKET, SO_RCVBUF, &backend_rcvbuf, sizeof backend_rcvbuf);
        if (backend_sndbuf > 0) ::setsockopt(backend_fd, SOL_SOCKET, SO_SNDBUF, &backend_sndbuf, sizeof backend_sndbuf);
        client_peer_ = client_peer;
        backend_peer_ = backend_peer;
        set_nonblocking(client_peer_);
        set_nonblocking(backend_peer_);
        for (auto [h, fd] : {std::pair{&client_, client_fd}, std::pair{&backend_, backend_fd}}) {
            REQUIRE(uv_tcp_init(&loop_, h) == 0);
            REQUIRE(uv_tcp_open(h, fd) == 0);
            uv_tcp_nodelay(h, 1);
            h->data = this;
        }
        relay_ = std::make_unique<Relay>(*this, &client_, &backend_);
        relay_->start(nullptr, 0, 0);
    }

    ~RelayHarness() {
        if (!ended_) close_all();
        pump([&] { return !relay_; });
        if (client_peer_ >= 0) ::close(client_peer_);
        if (backend_peer_ >= 0) ::close(backend_peer_);
        CHECK(uv_loop_close(&loop_) == 0);
    }

    // Runs the loop until `done()` or `ms` have passed; false on the deadline.
    template <typename Pred>
    bool pump(Pred done, int ms = 5000) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            uv_run(&loop_, UV_RUN_NOWAIT);
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
        return true;
    }
    void pump_for(int ms) {
        pump([] { return false; }, ms);
    }

    // Writes as much of the pattern from `sent` on as `fd` takes, up to `total`.
    static void write_pattern(int fd, uint64_t& sent, uint64_t total) {
        char buf[16384];
        while (sent < total) {
            size_t n = std::min<uint64_t>(sizeof buf, total - sent);
            for (size_t i = 0; i < n; ++i) buf[i] = pattern(sent + i);
            ssize_t w = ::send(fd, buf, n, MSG_NOSIGNAL);
            if (w <= 0) return;
            sent += static_cast<uint64_t>(w);
        }
    }
    // Reads what `fd` has and checks it against the pattern; false when a byte is wrong.
    // `eof` is set at the peer's FIN.
    static bool read_pattern(int fd, uint64_t& got, bool* eof = nullptr) {
        char buf[16384];
        for (;;) {
            ssize_t r = ::recv(fd, buf, sizeof buf, 0);
            if (r == 0 && eof) *eof = true;
            if (r <= 0) return true;
            for (ssize_t i = 0; i < r; ++i)
                if (buf[i] != pattern(got + static_cast<uint64_t>(i))) return false;
            got += static_cast<uint64_t>(r);
        }
    }

    // Waits for how the stream on `fd` ends: 0 at FIN, -errno on an error, 1 if it has not
    // ended by the deadline. Data before the end is skipped.
    int wait_end(int fd) {
        int result = 1;
        pump([&] {
            char buf[4096];
            ssize_t r = ::recv(fd, buf, sizeof buf, 0);
            if (r == 0) result = 0;
            if (r < 0 && errno != EAGAIN) result = -errno;
            return result != 1;
        });
        return result;
    }

    // Closes the client's (or backend's) end with an RST.
    void reset_client_peer() { reset(client_peer_); }
    void reset_backend_peer() { reset(backend_peer_); }

    Relay& relay() { return *relay_; }  // until the relay has ended and its handles are closed
    int client_peer() const { return client_peer_; }
    int backend_peer() const { return backend_peer_; }
    bool ended() const { return ended_; }
    Outcome outcome() const { return outcome_; }
    Side side() const { return side_; }
    std::string why() const { return why_; }

private:
    void relay_closed(Outcome o, Side side, const char* why) override {
        ended_ = true;
        outcome_ = o;
        side_ = side;
        why_ = why ? why : "";
        close_all();
    }
    void relay_handles_closed() override { closed_one(); }
    PipePool& relay_pipes() override { return pipes_; }
    uint32_t relay_max_connections() const override { return 1000; }
    const RelayCallbacks& relay_callbacks() const override { return kCallbacks; }

    // As the session is deleted after its last close callback, the relay goes then: with it
    // the splice path's dups of the sockets, which keep them open until they are closed.
    void closed_one() {
        if (--pending_closes_ == 0) relay_.reset();
    }

    void close_all() {
        ended_ = true;
        if (relay_->close()) ++pending_closes_;
        for (uv_tcp_t* h : {&client_, &backend_}) {
            ++pending_closes_;
            uv_close(as_handle(h), on_close);
        }
    }

    static void reset(int& fd) {
        linger l{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(fd);
        fd = -1;
    }

    static void on_close(uv_handle_t* h) noexcept { static_cast<RelayHarness*>(h->data)->closed_one(); }
    static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
        auto* t = static_cast<RelayHarness*>(h->data);
        *buf = uv_buf_init(t->read_buf_.get(), LoopContext::kReadBufferSize);
    }
    static void on_client_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
        auto* t = static_cast<RelayHarness*>(s->data);
        if (!t->ended_ && n != 0) t->relay_->on_read(t->relay_->up(), n, buf);
    }
    static void on_backend_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
        auto* t = static_cast<RelayHarness*>(s->data);
        if (!t->ended_ && n != 0) t->relay_->on_read(t->relay_->down(), n, buf);
    }

    static constexpr RelayCallbacks kCallbacks{on_alloc, on_client_read, on_backend_read};

    uv_loop_t loop_{};
    uv_tcp_t client_{};
    uv_tcp_t backend_{};
    PipePool pipes_;
    std::unique_ptr<char[]> read_buf_{new char[LoopContext::kReadBufferSize]};
    std::unique_ptr<Relay> relay_;
    int client_peer_ = -1;
    int backend_peer_ = -1;
    int pending_closes_ = 0;
    bool ended_ = false;
    Outcome outcome_ = Outcome::Ok;
    Side side_ = Side::Internal;
    std::string why_;
};

}  // namespace sniroute::proxy::test

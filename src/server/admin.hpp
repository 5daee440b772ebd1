// The admin listener's transport: HTTP/1.1 on the control thread's loop, one request per
// connection. What each path answers is the handler's business (control.cpp); this file only
// reads a bounded request head under a deadline, asks the handler, writes the answer and closes.
//
// It runs on the control loop, not a worker, for two reasons: a scrape must never compete with
// traffic for a worker's loop, and /healthz must be able to say that a worker loop is stuck,
// which it could not if it were served by that loop.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/intrusive_list.hpp"

namespace sniroute::server {

struct AdminResponse {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

// Called with the request's method and target for every request whose head was read whole.
using AdminHandler = std::function<AdminResponse(std::string_view method, std::string_view target)>;

class AdminServer {
public:
    // Bounds: a request head is at most kMaxHead bytes and must arrive within kHeadTimeoutMs;
    // an answer must be taken within kWriteTimeoutMs, and the client's close is awaited
    // kLingerMs at most; beyond kMaxConnections at once, new connections are closed at accept
    // (a scraper polls; it does not open hundreds).
    static constexpr size_t kMaxHead = 8192;
    static constexpr uint64_t kHeadTimeoutMs = 10'000;
    static constexpr uint64_t kWriteTimeoutMs = 10'000;
    static constexpr uint64_t kLingerMs = 2'000;  // for the client's FIN after our answer
    static constexpr size_t kMaxConnections = 64;

    AdminServer(uv_loop_t* loop, AdminHandler handler) : loop_(loop), handler_(std::move(handler)) {}
    ~AdminServer();
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    // Binds and listens on every address. On failure logs which address and why, closes what it
    // opened and returns false.
    bool start(const std::vector<core::SocketAddress>& binds);
    // Closes the listening sockets and every connection; the handles finish closing on the
    // loop, and the server may be destroyed once idle() is true.
    void stop();
    bool idle() const { return open_handles_ == 0; }

private:
    struct Conn;
    struct Listener;

    static void on_connection(uv_stream_t* s, int status) noexcept;
    static void on_listener_closed(uv_handle_t* h) noexcept;
    void close_conn(Conn* c);

    uv_loop_t* loop_;
    AdminHandler handler_;
    std::vector<Listener*> listeners_;
    core::IntrusiveList<Conn> conns_;
    size_t conn_count_ = 0;
    size_t open_handles_ = 0;  // listeners and connections whose close callback has not run
    friend struct Conn;
};

}  // namespace sniroute::server

// One client connection from accept to close:
//   [PROXY header in] -> peek (ClientHello) -> route -> connect (failover) -> relay -> close.
//
// The session owns its three handles (client, upstream, timer) as members and deletes itself in
// the last close callback. Every libuv callback is a static noexcept function that reads
// handle->data, so no exception can cross a libuv frame.
#pragma once

#include <netinet/in.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/address.hpp"
#include "server/worker.hpp"
#include "http/request_head.hpp"
#include "route/router.hpp"
#include "tls/client_hello.hpp"

namespace sniroute::proxy {

enum class Outcome { Ok, Timeout, Refused, NoRoute, BackendDown, Reset, BadHello, BadProxyHeader, Aborted, Error };
const char* to_string(Outcome o);

// An IPv4 or IPv6 socket address in 28 bytes instead of sockaddr_storage's 128. Sessions are
// the memory an idle connection costs, and two full addresses were a tenth of it.
struct CompactAddress {
    union {
        sockaddr sa;
        sockaddr_in v4;
        sockaddr_in6 v6;
    } u{};
    void set(const core::SocketAddress& a);
    core::SocketAddress get() const { return core::SocketAddress::from(&u.sa); }
    bool known() const { return u.sa.sa_family != AF_UNSPEC; }
};

class Session {
public:
    // Accepts one pending connection from `server` for listener `li` of the worker's snapshot.
    // `nodelay_inherited`: the listening socket has TCP_NODELAY, which Linux copies to every
    // socket it accepts, so the session need not set it again.
    static void accept(server::Worker& w, uv_stream_t* server, size_t li, bool nodelay_inherited);

    // Closes both sides at once (drain timeout, second SIGTERM).
    void abort() { close(Outcome::Aborted); }

private:
    friend class server::Worker;  // intrusive session list

    // Bytes the receiving socket could not take at once, with the libuv request that writes
    // them: one allocation, made only when a peer is slow, freed when the write completes.
    struct PendingWrite {
        uv_write_t req;
        size_t len;
        char* data() { return reinterpret_cast<char*>(this + 1); }
        static PendingWrite* make(size_t len);
        struct Free {
            void operator()(PendingWrite* p) const noexcept;
        };
    };

    // The splice path (session_splice.cpp). Splice is defined there: a direction holds one from
    // its first attempt on, so that an attempt that failed is not repeated on every read.
    struct Splice;
    struct SpliceFree {
        void operator()(Splice* sp) const noexcept;
    };
    // A direction switches from read+write to splice(2) once it has carried this much, as
    // HAProxy's splice-auto does: short exchanges never pay for the pipe and the extra descriptors.
    static constexpr uint64_t kSpliceAfter = 64 * 1024;
    enum class SpliceWait { Readable, Writable, Nothing };

    // One direction of the relay. Bytes go from `from` to `to`; while the peer cannot take
    // them they wait in `pending` (or in the kernel pipe of `splice`), and `from` is not read
    // until they are written.
    struct Pipe {
        uv_tcp_t* from = nullptr;
        uv_tcp_t* to = nullptr;
        std::unique_ptr<PendingWrite, PendingWrite::Free> pending;
        std::unique_ptr<Splice, SpliceFree> splice;
        bool eof = false;   // `from` sent FIN
        bool shut = false;  // FIN passed on to `to`
        bool reading = false;
        uint64_t bytes = 0;
    };

    // State of the http front (port 80), allocated for http listeners only so that the TLS
    // sessions, which are most of them, do not carry it.
    struct HttpState {
        explicit HttpState(size_t max_head) : parser(max_head) {}
        http::RequestHeadParser parser;
        size_t fed = 0;  // bytes of head_ given to the parser for the current request
        // Responses we answer ourselves are written one at a time through write_req (the relay
        // has not started); further ones wait in queued.
        std::string out;
        std::string queued;
        uv_write_t write_req{};
        bool writing = false;
        bool close_after_write = false;
        bool forward_after_write = false;
        uint32_t requests = 0;  // answered locally on this connection
    };

    // Peek reads a ClientHello (tls); HttpHead reads request heads (http) and may answer
    // several before forwarding; Linger discards input after a final response so that closing
    // does not reset the connection before the client has read it.
    enum class Phase { ProxyHeader, Peek, HttpHead, Linger, Connecting, Relay };

    Session(server::Worker& w, size_t li);
    ~Session();

    void start();
    void close(Outcome o, const char* why = nullptr);
    void finish();  // after the last close callback: log, then delete
    void on_head_bytes(const char* data, size_t n);
    void after_proxy_header();
    void on_peek_bytes();
    void route_and_connect(std::string_view name);
    void connect_to(const config::Backend* backend);
    void refuse(Outcome o, const char* why, uint8_t tls_alert);
    void send_alert(uint8_t description);
    void connect_next();
    void connect_failed(const char* why);
    void start_relay();
    void relay(Pipe& p, ssize_t n, const uv_buf_t* buf);
    bool send(Pipe& p, const uv_buf_t* bufs, unsigned nbufs);
    void from_reset(Pipe& p);
    void to_reset(Pipe& p);
    void pipe_eof(Pipe& p);
    bool reset_peer(uv_tcp_t* t);
    static int fd_of(uv_tcp_t* t);  // for the calls we make on a socket directly (see send())
    void arm_timer(uint64_t ms);
    bool start_reading(Pipe& p);
    void stop_reading(Pipe& p);
    void log_close();
    void close_handle(uv_handle_t* h);  // once; the session waits for its close callback

    // The splice path (session_splice.cpp).
    void start_splice(Pipe& p);
    void splice_pump(Pipe& p);
    void splice_wait(Pipe& p, SpliceWait w);
    void splice_close(Pipe& p);                // from close(): the direction's poll handles
    static bool splice_holds_bytes(const Pipe& p);  // bytes in the pipe not yet written on
    static void on_splice_io(uv_poll_t* h, int status, int events) noexcept;

    // The http front (session_http.cpp).
    void on_http_bytes();
    void answer(std::string response, bool keep_alive);
    enum class WriteResult { Done, Pending, Closed };
    WriteResult write_response();
    void linger();
    static void on_response_written(uv_write_t* req, int status) noexcept;

    static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept;
    static void on_client_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept;
    static void on_upstream_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept;
    static void on_connect(uv_connect_t* req, int status) noexcept;
    static void on_write(uv_write_t* req, int status) noexcept;
    static void on_timer(uv_timer_t* t) noexcept;
    static void on_close(uv_handle_t* h) noexcept;
    static void on_upstream_retry_closed(uv_handle_t* h) noexcept;

    server::Worker& w_;
    route::SnapshotPtr snap_;
    size_t li_;
    const config::Listener& listener_;
    const config::Global& global_;
    const config::Backend* backend_ = nullptr;
    size_t server_idx_ = 0;

    uv_tcp_t client_{};
    uv_tcp_t upstream_{};
    uv_timer_t timer_{};
    uv_connect_t connect_req_{};
    bool upstream_open_ = false;  // initialised and not yet handed to uv_close
    bool closing_ = false;
    bool counted_ = false;  // holds a slot of max_connections
    int pending_closes_ = 0;

    Phase phase_ = Phase::Peek;
    Outcome outcome_ = Outcome::Ok;
    const char* why_ = nullptr;
    uint64_t started_ms_ = 0;
    uint64_t last_activity_ms_ = 0;

    CompactAddress client_addr_;  // from the PROXY header when trusted, else the peer
    CompactAddress local_addr_;   // looked up only when a PROXY header for the backend needs it
    std::string sni_;
    // Bytes read before the backend was connected: PROXY header, ClientHello, anything after.
    // Bounded by max_client_hello plus the PROXY header cap (plus one read while connecting),
    // and freed once handed to the backend.
    std::string head_;
    // Only until the hello is parsed: its buffers are not kept for the life of the connection.
    std::unique_ptr<tls::ClientHelloParser> hello_;
    Pipe up_;    // client -> backend
    Pipe down_;  // backend -> client
    std::unique_ptr<HttpState> http_;

    Session* prev_ = nullptr;
    Session* next_ = nullptr;
};

}  // namespace sniroute::proxy

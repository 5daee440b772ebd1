// One client connection from accept to close:
//   accept -> inspect (PROXY header, ClientHello, HTTP head) -> route -> connect (failover)
//   -> relay -> close.
//
// The session keeps what belongs to the connection as a whole: its deadlines, the routing, the
// connect attempts and the closing log line. What is read before routing goes to inspectors
// (inspector.hpp), which only return verdicts; the bytes of an established connection go
// through the relay (relay.hpp), which only moves them. Answers an inspector asks for (the
// port-80 front's) are written by the session itself (session_answer.cpp).
//
// The session owns its three handles (client, upstream, timer) as members and deletes itself in
// the last close callback. Every libuv callback is a static noexcept function that reads
// handle->data, so no exception can cross a libuv frame.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/intrusive_list.hpp"
#include "proxy/inspector.hpp"
#include "proxy/loop_context.hpp"
#include "proxy/outcome.hpp"
#include "proxy/relay.hpp"
#include "route/router.hpp"

namespace sniroute::proxy {

class Session final : public core::IntrusiveList<Session>::Hook, private RelayOwner {
public:
    // Accepts one pending connection from `server` for listener `li` of the loop's snapshot.
    // `nodelay_inherited`: the listening socket has TCP_NODELAY, which Linux copies to every
    // socket it accepts, so the session need not set it again.
    static void accept(LoopContext& ctx, uv_stream_t* server, size_t li, bool nodelay_inherited);

    // Closes both sides at once (drain timeout, second SIGTERM).
    void abort() { close(Outcome::Aborted, Side::Internal); }

private:
    // Answers an inspector asked for, written one at a time through `req` (no relay runs yet);
    // further ones wait in `queued`. Made at the first answer.
    struct AnswerWriter {
        std::string out;
        std::string queued;
        uv_write_t req{};
        bool writing = false;
        bool close_after_write = false;
        bool forward_after_write = false;  // a Route verdict waits for the answers before it
    };

    // Inspect: inspectors read what the client sends first, and may answer it. Linger discards
    // input after a final answer so that closing does not reset the connection before the
    // client has read it.
    enum class Phase : uint8_t { Inspect, Linger, Connecting, Relay };

    Session(LoopContext& ctx, size_t li);
    ~Session();

    void start();
    // The listener's IP policy, on the client's address as known now: false when refused (the
    // session is then closing).
    bool admit();
    void refuse_ip(RefuseReason why, const core::IpAddress& ip);
    IpPolicyState& ip_state();  // of this session's listener, also after a reload
    InspectEnv env() { return {*snap_, li_, ctx_.tokens(), client_addr_, stats_, &ctx_.stats()}; }
    void inspect();
    void client_gone(ssize_t status);
    void route_and_connect(std::string_view name);
    void connect_to(const config::Backend* backend);
    void refuse(Outcome o, Side side, const char* why, std::string_view to_client);
    void connect_next();
    // `status`: the libuv error, or 0 for our own connect deadline.
    void connect_failed(const char* why, int status);
    void start_relay();
    void arm_timer(uint64_t ms);
    void close(Outcome o, Side side, const char* why = nullptr);
    void close_handle(uv_handle_t* h);  // once; the session waits for its close callback
    void finish();                      // after the last close callback: log, then delete
    void log_close();
    void count_close();  // into this loop's stats (stats.hpp)

    // RelayOwner.
    void relay_closed(Outcome o, Side side, const char* why) override { close(o, side, why); }
    void relay_handles_closed() override;
    PipePool& relay_pipes() override { return ctx_.pipes(); }
    uint32_t relay_max_connections() const override { return global().max_connections; }
    const RelayCallbacks& relay_callbacks() const override { return kRelayCallbacks; }
    static const RelayCallbacks kRelayCallbacks;

    // Answers (session_answer.cpp).
    enum class WriteResult { Done, Pending, Closed };
    void answer(std::string response, bool keep_alive);
    WriteResult write_answer();
    void linger();
    static void on_answer_written(uv_write_t* req, int status) noexcept;

    static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept;
    static void on_client_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept;
    static void on_upstream_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept;
    static void on_connect(uv_connect_t* req, int status) noexcept;
    static void on_timer(uv_timer_t* t) noexcept;
    static void on_close(uv_handle_t* h) noexcept;
    static void on_upstream_retry_closed(uv_handle_t* h) noexcept;

    // The listener and the global settings are looked up through the snapshot rather than kept
    // as references: a session is the memory an idle connection costs, and every word counts.
    const config::Listener& listener() const { return snap_->listener(li_); }
    const config::Global& global() const { return snap_->config().global; }

    LoopContext& ctx_;
    route::SnapshotPtr snap_;
    ListenerStats* stats_;  // this loop's counters of the listener
    const config::Backend* backend_ = nullptr;

    uv_tcp_t client_{};
    uv_tcp_t upstream_{};
    uv_timer_t timer_{};
    uv_connect_t connect_req_{};
    bool upstream_open_ = false;  // initialised and not yet handed to uv_close
    bool closing_ = false;
    bool counted_ = false;         // holds a slot of max_connections
    bool first_inspector_ = true;  // no inspector has finished yet
    bool ip_counted_ = false;      // holds a slot of max_connections_per_ip
    Phase phase_ = Phase::Inspect;
    Outcome outcome_ = Outcome::Ok;
    Side side_ = Side::Client;
    int pending_closes_ = 0;
    uint32_t answers_ = 0;  // answered here, by an inspector's verdict
    uint32_t li_;           // the listener, an index into the snapshot's
    uint32_t server_idx_ = 0;
    const char* why_ = nullptr;
    uint64_t started_ms_ = 0;
    uint64_t connect_started_ns_ = 0;  // the current attempt's, for the connect-time histogram

    CompactAddress client_addr_;  // from the PROXY header when trusted, else the peer
    CompactAddress local_addr_;   // looked up only when a PROXY header for the backend needs it
    std::string sni_;             // the name routed by: SNI or Host
    // Bytes read before the backend was connected: PROXY header, ClientHello, anything after.
    // Bounded by the inspectors' caps (plus one read while connecting), and freed once handed
    // to the backend.
    std::string head_;
    // The inspector reading now; kept while connecting for what it says on a refusal, and freed
    // when the relay starts.
    std::unique_ptr<Inspector> inspector_;
    std::unique_ptr<AnswerWriter> writer_;
    Relay relay_;
};

}  // namespace sniroute::proxy

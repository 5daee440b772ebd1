// Inspectors: what reads the bytes a client sends before it is routed (Envoy's listener
// filters: tls_inspector, proxy_protocol, http_inspector).
//
// An inspector is shown the bytes read so far and returns a verdict: it needs more, the stream
// is to be routed by a name (or to a backend it chose), these bytes are to be answered, the
// client is to be refused with an outcome, or its part is done and the next inspector takes the
// rest. It never touches a socket, a timer or the loop: the session reads, writes and decides
// what a verdict means for the connection, so every inspector can be fed one byte at a time in
// a unit test.
//
// Adding one (STARTTLS for SMTP, IMAP, POP3) is one new file with a make_* function, declared
// here and picked in make_protocol_inspector() (inspector.cpp).
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/address.hpp"
#include "http/challenge.hpp"
#include "proxy/outcome.hpp"
#include "proxy/proxy_protocol.hpp"
#include "proxy/stats.hpp"
#include "route/router.hpp"

namespace sniroute::proxy {

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

struct Verdict {
    enum class Kind : uint8_t {
        NeedMore,  // read more, then ask again
        Next,      // done: drop `consumed` bytes, and the next inspector reads the rest
        Route,     // route by `name` (or to `backend`, when the inspector chose it); every byte read is relayed
        Answer,    // write `bytes` to the client and drop `consumed`; close after them unless `keep_alive`
        Refuse,    // write `bytes` (maybe none) and close with `outcome`
    };
    Kind kind = Kind::NeedMore;
    Outcome outcome = Outcome::Ok;
    bool keep_alive = false;
    size_t consumed = 0;
    const char* why = nullptr;
    std::string_view name;                     // Route; valid while the inspector lives
    const config::Backend* backend = nullptr;  // Route: already chosen (http), else route by name
    const ParsedHeader* peer = nullptr;        // Next: addresses from a PROXY header, or null
    std::string bytes;                         // Answer, Refuse

    static Verdict need_more() { return {}; }
    static Verdict refuse(Outcome o, const char* why, std::string_view bytes = {});
};

// What an inspector may know of its connection. The references outlive the inspector: the
// session that owns both holds them.
struct InspectEnv {
    const route::Snapshot& snap;
    size_t listener;
    const http::TokenStore& tokens;
    const CompactAddress& client;  // as known so far: a PROXY header may change it
    // The loop's counters, and those of the listener; both null in unit tests.
    ListenerStats* stats = nullptr;
    WorkerStats* worker_stats = nullptr;
};

class Inspector {
public:
    virtual ~Inspector() = default;
    // `bytes` are all the bytes read and not consumed so far, the ones already shown included.
    virtual Verdict inspect(std::string_view bytes) = 0;
    // The client closed while this inspector still waited for bytes (not at its first byte:
    // that is the session's to judge): the outcome and reason for the log.
    virtual Outcome truncated(const char*& why) const {
        why = "client closed before its request";
        return Outcome::BadHello;
    }
    // The reason for the log when the head deadline passes while this inspector waits.
    virtual const char* timeout_reason() const = 0;
    // Called once when that happens, to count it.
    virtual void timed_out() {}
    // What to tell the client before it is closed for `o` after this inspector's verdict (a TLS
    // alert, say); empty: just close. The session asks when routing or connecting fails.
    virtual std::string_view refusal(Outcome) const { return {}; }
};

// The first inspector of a listener's connections: the PROXY header of a trusted balancer, else
// the listener's protocol. Null: nothing to inspect (tcp), route at once.
std::unique_ptr<Inspector> make_first_inspector(const InspectEnv& env);
// The inspector of the listener's protocol, or null for tcp.
std::unique_ptr<Inspector> make_protocol_inspector(const InspectEnv& env);

// PROXY protocol v1/v2 header from a trusted balancer (proxy_header_inspector.cpp). Bytes past
// `kMaxProxyHeader` are not a balancer we want to trust.
constexpr size_t kMaxProxyHeader = 4096;
std::unique_ptr<Inspector> make_proxy_header_inspector();
// TLS ClientHello: routes by its SNI; refuses with TLS alerts (tls_inspector.cpp).
// What became of each hello is counted in `stats` when given.
std::unique_ptr<Inspector> make_tls_inspector(size_t max_client_hello, ListenerStats* stats = nullptr);
// The port-80 front: request heads, answered here or forwarded (http_inspector.cpp).
std::unique_ptr<Inspector> make_http_inspector(const InspectEnv& env);

}  // namespace sniroute::proxy

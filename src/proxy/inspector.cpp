#include "proxy/inspector.hpp"

#include <cstring>
#include <iterator>

namespace sniroute::proxy {

const char* to_string(Outcome o) {
    static constexpr const char* kNames[] = {"ok",    "timeout",   "refused",          "no_route", "backend_down",
                                             "reset", "bad_hello", "bad_proxy_header", "aborted",  "error"};
    auto i = static_cast<size_t>(o);
    return i < std::size(kNames) ? kNames[i] : "?";
}

const char* to_string(Side s) {
    switch (s) {
        case Side::Client: return "client";
        case Side::Backend: return "backend";
        case Side::Internal: return "internal";
    }
    return "?";
}

void CompactAddress::set(const core::SocketAddress& a) {
    u = {};
    if (a.family() == AF_INET)
        std::memcpy(&u.v4, a.sa(), sizeof u.v4);
    else if (a.family() == AF_INET6)
        std::memcpy(&u.v6, a.sa(), sizeof u.v6);
}

Verdict Verdict::refuse(Outcome o, const char* why, std::string_view bytes) {
    Verdict v;
    v.kind = Kind::Refuse;
    v.outcome = o;
    v.why = why;
    v.bytes.assign(bytes);
    return v;
}

std::unique_ptr<Inspector> make_first_inspector(const InspectEnv& env) {
    if (env.snap.listener(env.listener).accept_proxy_protocol) return make_proxy_header_inspector();
    return make_protocol_inspector(env);
}

std::unique_ptr<Inspector> make_protocol_inspector(const InspectEnv& env) {
    const config::Listener& l = env.snap.listener(env.listener);
    switch (l.protocol) {
        case config::Protocol::Tls: return make_tls_inspector(env.snap.config().global.max_client_hello, env.stats);
        case config::Protocol::Http: return make_http_inspector(env);
        case config::Protocol::Tcp: return nullptr;
    }
    return nullptr;
}

}  // namespace sniroute::proxy

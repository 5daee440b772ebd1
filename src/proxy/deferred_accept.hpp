// TCP_DEFER_ACCEPT on tls and http listeners: how long the kernel may hold back a connection
// whose client has not spoken yet. Shared by the code that sets it on the listening sockets
// (server/listen.cpp) and the inspect deadline that must count it (proxy/session.cpp).
#pragma once

#include <cstdint>

#include "config/config.hpp"

namespace sniroute::proxy {

// Linux turns TCP_DEFER_ACCEPT seconds into a count of SYN-ACK retransmissions, 1 s apart and
// doubling (TCP_TIMEOUT_INIT), rounded up: a silent client is handed over after 1, 3, 7, 15 s.
// Measured on Linux 6.18: 1 -> 1.01 s, 2 -> 3.03 s, 3 -> 3.04 s, 5 -> 7.14 s. A client that
// sends anything (or a FIN) is handed over at once.
//
// Deferring by the whole client_hello_timeout, as sniroute used to, let a silent client live
// for the rounded-up deferral *plus* the deadline (5 s for a 2 s timeout, 12 s for the default
// 5 s). So the deferral is the shortest there is, one retransmission (1 s), which still spares
// us a wake-up per connection and keeps the scanners that connect and leave out of userspace;
// and the session counts that second against its deadline (see Session::start). With a
// timeout under 2 s that check would come within a second of the accept, so such listeners
// do not defer at all.
inline constexpr uint64_t kDeferAcceptMs = 1000;

// The deferral of a listener in milliseconds; 0 for none. tcp listeners never defer: there the
// server may speak first (SMTP, IMAP), and a deferred accept would wait for a client that waits
// for us.
inline uint64_t deferred_accept_ms(const config::Listener& l, const config::Global& g) {
    if (l.protocol == config::Protocol::Tcp) return 0;
    return g.inspect_timeout_ms >= 2 * kDeferAcceptMs ? kDeferAcceptMs : 0;
}

}  // namespace sniroute::proxy

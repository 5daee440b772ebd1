// How a connection ended, and which side that was down to: the `outcome=` and `side=` of the
// `conn` log line. Pingora's Error{etype, esource} is the model: every failure names its side.
#pragma once

#include <cstdint>

namespace sniroute::proxy {

enum class Outcome : uint8_t {
    Ok,
    Timeout,
    Refused,
    NoRoute,
    BackendDown,
    Reset,
    BadHello,
    BadProxyHeader,
    Aborted,
    Error
};
const char* to_string(Outcome o);

// Client: the connection we accepted (its bytes, its deadline, its reset). Backend: the server
// we connected to. Internal: sniroute itself (a libuv call that failed, a limit, a shutdown).
//
// The side per outcome, as the session reports it:
//   ok              client (the exchange ended as the client's connection does)
//   timeout         client (head deadline, idle deadline)
//   refused         internal (max_connections)
//   no_route        client (it asked for a name we do not route)
//   backend_down    backend
//   reset           the side that reset, or whose socket failed
//   bad_hello, bad_proxy_header   client
//   aborted         internal (drain timeout, second SIGTERM)
//   error           internal (a uv_* call that failed)
enum class Side : uint8_t { Client, Backend, Internal };
const char* to_string(Side s);

}  // namespace sniroute::proxy

// The port-80 front's decision for one request head: answer it here (challenge, redirect,
// error) or forward the connection to a backend. Pure apart from reading webroot files.
//
// Order matters and is the point of this file: an ACME challenge is settled first, per host,
// by the route's `acme` mode; only then are redirects and forwarding considered, so a
// challenge is never redirected (the Traefik/WildDuck failure).
#pragma once

#include <string>
#include <string_view>

#include "http/challenge.hpp"
#include "http/request_head.hpp"
#include "route/router.hpp"

namespace sniroute::http {

// Parses a Host header value: "name", "name:port", "[v6]" or "[v6]:port". On success `name`
// is the lower-cased host name to route by (empty for an IP literal in brackets) and
// `authority` is the host without its port, for redirects.
bool parse_host(std::string_view value, std::string& name, std::string& authority);

struct Action {
    enum class Kind { Respond, Forward } kind = Kind::Respond;
    // Respond: the full response bytes, and whether the connection stays open after them.
    std::string response;
    bool keep_alive = false;
    int status = 0;
    const char* source = "";  // for the log: store, webroot, thumbprint, redirect, error
    // Forward: the backend that gets this request and the rest of the connection.
    const config::Backend* backend = nullptr;
    const config::Route* route = nullptr;  // the route that chose it; null for the default backend
    std::string host;                      // routed name, for logs
};

Action decide(const RequestHead& head, const route::Snapshot& snap, size_t listener, const Sources& sources);

// Builds "HTTP/1.1 STATUS ..." with a text/plain body (omitted for HEAD) and, if given, a
// Location header.
std::string make_response(int status, std::string_view body, bool head_only, bool keep_alive,
                          std::string_view location = {});

}  // namespace sniroute::http

// What certificate does a port really serve? Connects to a backend exactly as a client would,
// with the SNI of the name in question, and reads the leaf certificate. The lesson of the Mailu
// case: a renewed file on disk proves nothing until the process serving the port has reloaded.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "acme/cert.hpp"
#include "route/router.hpp"

namespace sniroute::acme {

struct ProbeTarget {
    std::string listener;
    uint16_t port = 0;  // the listener's public port, for messages
    std::string backend;
    std::vector<core::SocketAddress> servers;
    config::ProxyProtocol proxy_protocol = config::ProxyProtocol::Off;
    std::string sni;
};

struct ProbeResult {
    ProbeTarget target;
    std::string server;  // the server that answered
    std::optional<CertInfo> leaf;
    std::string error;
};

// Every TLS listener that routes `name` somewhere (a matching route or the default backend).
std::vector<ProbeTarget> targets_for(const route::Snapshot& snap, const std::string& name);

// Blocking; every step bounded by `timeout_ms`. Sends a PROXY header first when the backend
// expects one (v2 LOCAL / v1 UNKNOWN: a health check, not a forwarded client).
ProbeResult probe(const ProbeTarget& t, int timeout_ms);

// "dovecot on :993 still serves the certificate expiring 2026-12-01 (serial 0A1B...)"
std::string describe_stale(const ProbeResult& r);

std::string format_date(int64_t unix_seconds);

}  // namespace sniroute::acme

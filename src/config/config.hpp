// The validated configuration: plain structs, no toml++ types. Everything the data path reads
// has been checked here, so the data path never has to second-guess a value.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/cidr.hpp"
#include "core/log.hpp"
#include "core/rate.hpp"

namespace sniroute::config {

enum class Protocol { Tls, Tcp, Http };
enum class AcmeMode { Auto, Local, Backend };
enum class ProxyProtocol { Off, V1, V2 };
using core::LogFormat;

const char* to_string(Protocol p);

struct Global {
    // Deadline for what is read before a connection is routed: a PROXY header, then the whole
    // ClientHello (tls) or each request head (http, also between kept-alive requests). Its
    // config key is client_hello_timeout.
    uint64_t inspect_timeout_ms = 5'000;
    uint64_t connect_timeout_ms = 5'000;
    uint64_t idle_timeout_ms = 600'000;
    uint64_t drain_timeout_ms = 30'000;
    uint32_t max_connections = 20'000;
    uint32_t max_client_hello = 16'384;
    uint32_t max_http_head = 8'192;
    uint32_t workers = 1;  // 0 = one per core, resolved at start-up
    LogFormat log_format = LogFormat::Text;
    // One info line per connection (`conn`) and per HTTP request answered here (`http`).
    // Warnings are logged either way.
    bool access_log = true;
};

struct Route {
    std::vector<std::string> match;  // normalised: lower-case, "*.suffix" kept as is
    size_t backend = 0;              // index into Config::backends
    AcmeMode acme = AcmeMode::Auto;
    bool redirect_https = false;
};

struct Listener {
    std::string name;
    std::vector<core::SocketAddress> bind;
    Protocol protocol = Protocol::Tls;
    std::optional<size_t> default_backend;  // index into Config::backends
    bool accept_proxy_protocol = false;
    std::vector<Route> routes;
    // Who may connect: the client's address (the PROXY header's, when accepted) must be in
    // `allow` and not in `deny`. The default allows everyone.
    std::vector<core::Cidr> allow = {core::Cidr{{{}, true}, 0}, core::Cidr{{{}, false}, 0}};
    std::vector<core::Cidr> deny;
    uint32_t max_connections_per_ip = 0;  // open at once; 0 = no limit
    core::Rate new_connections_per_ip;    // a token bucket with that burst; 0 = no limit

    bool allows(const core::IpAddress& a) const { return core::any_contains(allow, a) && !core::any_contains(deny, a); }
    // Whether connections need the shared per-IP table (proxy/ip_table.hpp) at all.
    bool ip_limited() const { return max_connections_per_ip > 0 || new_connections_per_ip.limited(); }
};

struct Backend {
    std::string name;
    std::vector<core::SocketAddress> servers;  // tried in order
    ProxyProtocol proxy_protocol = ProxyProtocol::Off;
};

// The certificate key types [acme].key_type accepts, in the order of acme::KeyType.
inline constexpr std::array<std::string_view, 5> kKeyTypes = {"ecdsa-p256", "ecdsa-p384", "rsa2048", "rsa3072",
                                                              "rsa4096"};

struct Acme {
    std::string webroot;
    std::string account_thumbprint;
    // The built-in ACME client; used only when [[certificates]] are configured.
    std::string directory;
    std::string email;
    std::string storage = "/var/lib/sniroute";
    std::string key_type = "ecdsa-p256";
    std::string ca_bundle;
    std::string eab_kid;
    std::string eab_hmac_key;
};

// A certificate the built-in ACME client keeps issued for a backend.
struct Certificate {
    std::string name;
    std::vector<std::string> domains;
    std::string cert_file;
    std::string key_file;
    std::vector<std::string> deploy;  // shell commands, run after the files are written
    uint64_t settle_ms = 0;           // wait between issuance and deploy (CT log lag)
    uint64_t deploy_timeout_ms = 60'000;
};

// The admin listener: /metrics, /healthz, /readyz over HTTP/1.1 (server/admin.cpp).
struct Admin {
    std::vector<core::SocketAddress> bind;  // empty: no admin listener
};

struct Config {
    std::string path;
    Global global;
    Admin admin;
    std::vector<Listener> listeners;
    std::vector<Backend> backends;
    Acme acme;
    std::vector<Certificate> certificates;
};

// One problem in a config file, printed as FILE:LINE:COL: message.
struct Diagnostic {
    std::string file;
    uint32_t line = 0;
    uint32_t column = 0;
    std::string message;
    // "FILE:LINE:COL: message", or "FILE:LINE:COL: SEVERITY: message" when `severity` is given
    // (validate prints warnings as "...: warning: ...").
    std::string to_string(std::string_view severity = {}) const;
};

struct LoadResult {
    std::optional<Config> config;  // set only when diagnostics is empty
    std::vector<Diagnostic> diagnostics;
    // Problems that do not stop the config from loading but are almost certainly mistakes.
    // validate prints them and still says ok; run logs them as config_warning lines.
    std::vector<Diagnostic> warnings;
};

// Whether `a` and `b` cannot both be bound: the same family and port, and the same address or
// one of them the wildcard. IPv6 sockets are bound IPV6_V6ONLY, so [::]:P and 0.0.0.0:P do not
// overlap. The listen code refuses such a pair at bind time; the loader refuses it first.
bool binds_overlap(const core::SocketAddress& a, const core::SocketAddress& b);
// Whether `a` is an IPv4-mapped IPv6 address (::ffff:a.b.c.d), which an IPV6_V6ONLY socket
// cannot bind (Linux: EINVAL).
bool is_v4_mapped(const core::SocketAddress& a);
// The route of `l` that the (normalised) host `name` takes: an exact match first, else the
// longest "*.suffix" covering it; nullptr when none does. The same rule as
// route::NameTable::find, over the config alone.
const Route* find_route(const Listener& l, std::string_view name);

// Reads and validates a config file. Never throws; every problem found becomes a diagnostic,
// and validation goes on past the first one so a user can fix them all in one pass.
LoadResult load_file(const std::string& path);
// The same over text already in memory; `path` is used only in diagnostics.
LoadResult load_string(std::string_view text, const std::string& path);

}  // namespace sniroute::config

// Schema errors, one table row each: the TOML, and every diagnostic it must give at the
// LINE:COLUMN of the offending key (unknown keys) or value (everything else), or of the table
// header when a required key is missing.
#include <doctest.h>

#include <string>
#include <vector>

#include "config/config.hpp"
#include "loader_test_util.hpp"

using namespace sniroute::config;
using namespace sniroute::config::test;

TEST_SUITE("config.loader.errors") {

TEST_CASE("unknown keys, at the key") {
    run({
        {"top level",
         R"(
listener = 1
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
)",
         {{1, 1, "unknown key 'listener' in the top level"}}},
        {"top-level table",
         R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
[backend.b]
servers = ["127.0.0.1:80"]
)",
         {{5, 2, "unknown key 'backend' in the top level"}}},
        {"global",
         R"(
[global]
workers = 2
  colour = "red"
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
)",
         {{3, 3, "unknown key 'colour' in [global]"}}},
        {"global, as a dotted key",
         R"(
global.colour = "red"
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
)",
         {{1, 8, "unknown key 'colour' in [global]"}}},
        {"listener",
         R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
timeout = "5s"
)",
         {{5, 1, "unknown key 'timeout' in [[listeners]]"}}},
        {"route",
         R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
  [[listeners.routes]]
  match = "a.example"
  backend = "b"
  weight = 3
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{8, 3, "unknown key 'weight' in [[listeners.routes]]"}}},
        {"backend",
         R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
[backends.b]
servers = ["127.0.0.1:80"]
retries = 2
)",
         {{7, 1, "unknown key 'retries' in [backends.b]"}}},
        {"acme",
         R"(
[acme]
web_root = "/srv/acme"
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
)",
         {{2, 1, "unknown key 'web_root' in [acme]"}}},
        {"inline tables",
         R"(
listeners = [ { name = "x", bind = "127.0.0.1:443", protocol = "tls", bogus = 1 } ]
backends = { b = { servers = ["127.0.0.1:80"], nope = 2 } }
)",
         {{1, 71, "unknown key 'bogus' in [[listeners]]"}, {2, 48, "unknown key 'nope' in [backends.b]"}}},
    });
}

TEST_CASE("wrong types, at the value") {
    run({
        {"string where an integer belongs",
         R"(
[global]
workers = "4"
max_connections = 1.5
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
)",
         {{2, 11, "'workers' must be an integer"}, {3, 19, "'max_connections' must be an integer"}}},
        {"integer where a string belongs",
         R"(
[global]
log_format = 1
client_hello_timeout = 5
[acme]
webroot = 5
[[listeners]]
name = 7
bind = "127.0.0.1:443"
protocol = "tls"
default_backend = 1
)",
         {{2, 14, "'log_format' must be a string"},
          {3, 24, "'client_hello_timeout' must be a duration string"},
          {5, 11, "'webroot' must be a string"},
          {7, 8, "'name' must be a string"},
          {10, 19, "'default_backend' must be a string"}}},
        {"string where a bool belongs, bool where a string belongs",
         R"(
[global]
access_log = "no"
[[listeners]]
name = "x"
bind = "127.0.0.1:80"
protocol = true
accept_proxy_protocol = "yes"
  [[listeners.routes]]
  match = "a.example"
  backend = "b"
  redirect_https = "yes"
[backends.b]
servers = ["127.0.0.1:80"]
proxy_protocol = false
)",
         {{2, 14, "'access_log' must be true or false"},
          {6, 12, "'protocol' must be a string"},
          {7, 25, "'accept_proxy_protocol' must be true or false"},
          {11, 20, "'redirect_https' must be true or false"},
          {14, 18, "'proxy_protocol' must be a string"}}},
        {"lists of the wrong shape",
         R"(
[[listeners]]
name = "x"
bind = 443
protocol = "tls"
  [[listeners.routes]]
  match = ["a.example", 5]
  backend = "b"
[backends.b]
servers = [["127.0.0.1:80"]]
)",
         {{3, 8, "'bind' must be an array of strings"},
          {6, 25, "'match' entries must be strings"},
          {9, 12, "'servers' entries must be strings"}}},
        {"tables of the wrong shape",
         R"(
global = 5
backends = { b = "127.0.0.1:80" }
listeners = { name = "x" }
)",
         {{1, 10, "'global' must be a table"},
          {2, 18, "backend 'b' must be a table"},
          {3, 13, "'listeners' must be an array of tables"}}},
        {"routes not an array of tables",
         R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
routes = [ 1 ]
[[listeners]]
name = "y"
bind = "127.0.0.1:444"
protocol = "tls"
routes = { match = "a.example" }
)",
         {{5, 12, "each route must be a table"}, {10, 10, "'routes' must be an array of tables"}}},
    });
}

TEST_CASE("values out of range or not understood, at the value") {
    run({
        {"integers out of range",
         R"(
[global]
workers = 257
max_client_hello = 511
max_http_head = 1048577
max_connections = 0
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
)",
         {{2, 11, "'workers' must be between 0 and 256"},
          {3, 20, "'max_client_hello' must be between 512 and 1048576"},
          {4, 17, "'max_http_head' must be between 512 and 1048576"},
          {5, 19, "'max_connections' must be between 1 and 10000000"}}},
        {"unparsable durations",
         R"(
[global]
client_hello_timeout = "5 s"
connect_timeout = "0s"
idle_timeout = "367d"
drain_timeout = "1.5s"
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
)",
         {{2, 24, "cannot parse duration \"5 s\""},
          {3, 19, "cannot parse duration \"0s\""},
          {4, 16, "cannot parse duration \"367d\""},
          {5, 17, "cannot parse duration \"1.5s\""}}},
        {"unknown enumerations",
         R"(
[global]
log_format = "xml"
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "udp"
[[listeners]]
name = "y"
bind = "127.0.0.1:80"
protocol = "http"
  [[listeners.routes]]
  match = "a.example"
  backend = "b"
  acme = "sometimes"
[backends.b]
servers = ["127.0.0.1:80"]
proxy_protocol = "v3"
)",
         {{2, 14, "unknown log_format \"xml\""},
          {6, 12, "unknown protocol \"udp\""},
          {14, 10, "unknown acme mode \"sometimes\""},
          {17, 18, "unknown proxy_protocol \"v3\""}}},
        {"unparsable addresses",
         R"(
[[listeners]]
name = "x"
bind = ["127.0.0.1:443", "::1:443", "[::1]:0", "localhost:443"]
protocol = "tls"
[backends.b]
servers = ["127.0.0.1", "10.0.0.256:80"]
)",
         {{3, 26, "cannot parse bind address \"::1:443\""},
          {3, 37, "cannot parse bind address \"[::1]:0\""},
          {3, 48, "cannot parse bind address \"localhost:443\""},
          {6, 12, "cannot parse server address \"127.0.0.1\""},
          {6, 25, "cannot parse server address \"10.0.0.256:80\""}}},
        {"account_thumbprint not base64url",
         R"(
[acme]
account_thumbprint = "abc+/="
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
)",
         {{2, 22, "account_thumbprint must be base64url"}}},
    });
}

TEST_CASE("references and duplicates") {
    run({
        {"unknown backend in a route and as default",
         R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
default_backend = "nope"
  [[listeners.routes]]
  match = "a.example"
  backend = "missing"
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{5, 19, "unknown backend \"nope\""}, {8, 13, "unknown backend \"missing\""}}},
        {"duplicate listener names and bind addresses",
         R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
[[listeners]]
name = "x"
bind = ["127.0.0.1:444", "127.0.0.1:443"]
protocol = "tls"
[[listeners]]
name = "z"
bind = ["[::1]:443", "[0::1]:443"]
protocol = "tls"
)",
         {{6, 8, "duplicate listener name \"x\""},
          {7, 26, "bind address 127.0.0.1:443 is already used by listener \"x\""},
          {11, 22, "bind address [0::1]:443 is already used by listener \"z\""}}},
        {"invalid and duplicate match patterns",
         R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
  [[listeners.routes]]
  match = ["a.example", "*.b.example", "A.example.", "foo*.example", "*", "a.*.b"]
  backend = "b"
  [[listeners.routes]]
  match = "*.B.example"
  backend = "b"
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{6, 40, "\"A.example.\" is matched by an earlier route of this listener"},
          {6, 54, "invalid match \"foo*.example\""},
          {6, 70, "invalid match \"*\""},
          {6, 75, "invalid match \"a.*.b\""},
          {9, 11, "\"*.B.example\" is matched by an earlier route of this listener"}}},
    });
}

TEST_CASE("missing or empty required parts, at the table or the value") {
    run({
        {"no listeners at all",
         R"(
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{1, 1, "no [[listeners]] defined"}}},
        {"an empty listener list",
         R"(
listeners = []
)",
         {{1, 13, "no listeners defined"}}},
        {"a listener without name, bind and protocol",
         R"(
[global]
workers = 1

[[listeners]]
accept_proxy_protocol = true
)",
         {{4, 1, "listener has no 'name'"}, {4, 1, "has no 'bind'"}, {4, 1, "has no 'protocol'"}}},
        {"empty bind list",
         R"(
[[listeners]]
name = "x"
bind = []
protocol = "tls"
)",
         {{3, 8, "listener \"x\": empty bind list"}}},
        {"tcp listener without default_backend, and with routes",
         R"(
[[listeners]]
name = "smtp"
bind = "127.0.0.1:25"
protocol = "tcp"
[[listeners]]
name = "imap"
bind = "127.0.0.1:143"
protocol = "tcp"
default_backend = "b"
  [[listeners.routes]]
  match = "a.example"
  backend = "b"
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{1, 1, "tcp listener \"smtp\" needs a default_backend"},
          {10, 3, "tcp listener \"imap\" cannot have routes"}}},
        {"route without match and backend",
         R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
  [[listeners.routes]]
  redirect_https = false
)",
         {{5, 3, "route has no 'match'"},
          {5, 3, "route has no 'backend'"},
          {6, 20, "'redirect_https' applies only to http listeners"}}},
        {"backend without servers, and with an empty list",
         R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
[backends.a]
proxy_protocol = "v2"
[backends.b]
servers = []
)",
         {{5, 1, "[backends.a] has no 'servers'"}, {8, 11, "[backends.b]: empty server list"}}},
        {"acme keys on a tls listener",
         R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
  [[listeners.routes]]
  match = "a.example"
  backend = "b"
  acme = "local"
  redirect_https = true
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{8, 10, "'acme' applies only to http listeners"},
          {9, 20, "'redirect_https' applies only to http listeners"}}},
    });
}

}  // TEST_SUITE("config.loader.errors")

// Regressions for bugs found by these tests.
TEST_SUITE("config.regressions") {

TEST_CASE("an address with an embedded NUL is rejected, not cut at the NUL") {
    // inet_pton reads a C string, so "127.0.0.1\0junk:80" (TOML "\u0000") once loaded as
    // 127.0.0.1:80.
    check_diagnostics(load(R"(
[[listeners]]
name = "x"
bind = "127.0.0.1\u0000:443"
protocol = "tcp"
default_backend = "b"
[backends.b]
servers = ["127.0.0.1\u0000junk:80"]
)"),
                      {{3, 8, "cannot parse bind address"}, {7, 12, "cannot parse server address"}});
}

TEST_CASE("a route with an empty match list is an error") {
    // Like empty bind and server lists: `match = []` would be a route that never matches.
    check_diagnostics(load(R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
  [[listeners.routes]]
  match = []
  backend = "b"
[backends.b]
servers = ["127.0.0.1:80"]
)"),
                      {{6, 11, "empty match list"}});
}

}  // TEST_SUITE("config.regressions")

TEST_SUITE("config.choices") {

// Each unknown value is reported with the whole list of accepted ones, joined "a, b or c".
TEST_CASE("an unknown enumeration value names every accepted one") {
    check_diagnostics(load(R"(
[global]
log_format = "xml"
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "udp"
[[listeners]]
name = "y"
bind = "127.0.0.1:80"
protocol = "http"
  [[listeners.routes]]
  match = "a.example"
  backend = "b"
  acme = "sometimes"
[backends.b]
servers = ["127.0.0.1:80"]
proxy_protocol = "v3"
)"),
                      {{2, 14, "unknown log_format \"xml\" (expected text or json)"},
                       {6, 12, "unknown protocol \"udp\" (expected tls, tcp or http)"},
                       {14, 10, "unknown acme mode \"sometimes\" (expected auto, local or backend)"},
                       {17, 18, "unknown proxy_protocol \"v3\" (expected off, v1 or v2)"}});
}

TEST_CASE("'acme' on a listener that is not http is refused whatever its value") {
    check_diagnostics(load(R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
  [[listeners.routes]]
  match = "a.example"
  backend = "b"
  acme = "sometimes"
[backends.b]
servers = ["127.0.0.1:80"]
)"),
                      {{8, 10, "'acme' applies only to http listeners"}});
}

}  // TEST_SUITE("config.choices")

// What `run` would refuse at bind time, or what can never work once running: the same checks
// for validate, run and reload, since all three go through the loader.
TEST_SUITE("config.loader.cross_checks") {

TEST_CASE("bind addresses that run could not bind side by side, at the later entry") {
    run({
        {"IPv4 wildcard, then a specific address on the same port, and the reverse",
         R"(
[[listeners]]
name = "any"
bind = ["0.0.0.0:443", "127.0.0.1:444"]
protocol = "tls"
default_backend = "b"
[[listeners]]
name = "lo"
bind = ["127.0.0.1:443", "0.0.0.0:444", "127.0.0.1:445"]
protocol = "tls"
default_backend = "b"
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{8, 9,
           "bind address 127.0.0.1:443 overlaps 0.0.0.0:443 of listener \"any\" (a wildcard address holds its "
           "port on every address of its family)"},
          {8, 26, "bind address 0.0.0.0:444 overlaps 127.0.0.1:444 of listener \"any\""}}},
        {"IPv6 wildcard and loopback; [::] does not overlap 0.0.0.0 (IPV6_V6ONLY)",
         R"(
[[listeners]]
name = "v6"
bind = ["[::]:443", "0.0.0.0:443"]
protocol = "tls"
default_backend = "b"
[[listeners]]
name = "lo6"
bind = "[::1]:443"
protocol = "tls"
default_backend = "b"
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{8, 8, "bind address [::1]:443 overlaps [::]:443 of listener \"v6\""}}},
        {"the same listener, wildcard second",
         R"(
[[listeners]]
name = "x"
bind = ["127.0.0.1:443", "0.0.0.0:443"]
protocol = "tls"
default_backend = "b"
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{3, 26, "bind address 0.0.0.0:443 overlaps 127.0.0.1:443 of listener \"x\""}}},
        {"the same address twice in one listener",
         R"(
[[listeners]]
name = "x"
bind = ["127.0.0.1:443", "127.0.0.1:443"]
protocol = "tls"
default_backend = "b"
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{3, 26, "bind address 127.0.0.1:443 is already used by listener \"x\""}}},
        {"IPv4-mapped IPv6 addresses are refused outright",
         R"(
[[listeners]]
name = "x"
bind = ["127.0.0.1:443", "[::ffff:127.0.0.1]:443", "[::ffff:0.0.0.0]:80"]
protocol = "tls"
default_backend = "b"
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{3, 26,
           "bind address [::ffff:127.0.0.1]:443 is an IPv4-mapped IPv6 address, which an IPv6-only socket cannot bind; "
           "write 127.0.0.1:443"},
          {3, 52, "bind address [::ffff:0.0.0.0]:80 is an IPv4-mapped IPv6 address"}}},
    });
}

TEST_CASE("the overlap rule") {
    auto a = [](const char* s) { return *sniroute::core::SocketAddress::parse(s); };
    CHECK(binds_overlap(a("0.0.0.0:1"), a("10.0.0.1:1")));
    CHECK(binds_overlap(a("10.0.0.1:1"), a("0.0.0.0:1")));
    CHECK(binds_overlap(a("10.0.0.1:1"), a("10.0.0.1:1")));
    CHECK(binds_overlap(a("[::]:1"), a("[::1]:1")));
    CHECK_FALSE(binds_overlap(a("0.0.0.0:1"), a("0.0.0.0:2")));
    CHECK_FALSE(binds_overlap(a("10.0.0.1:1"), a("10.0.0.2:1")));
    CHECK_FALSE(binds_overlap(a("[::]:1"), a("0.0.0.0:1")));
    CHECK_FALSE(binds_overlap(a("[::1]:1"), a("127.0.0.1:1")));
    CHECK(is_v4_mapped(a("[::ffff:10.0.0.1]:1")));
    CHECK_FALSE(is_v4_mapped(a("[::1]:1")));
    CHECK_FALSE(is_v4_mapped(a("10.0.0.1:1")));
}

TEST_CASE("names that can never work") {
    run({
        {"an empty listener name",
         R"(
[[listeners]]
name = ""
bind = "127.0.0.1:443"
protocol = "tcp"
default_backend = "b"
[[listeners]]
name = ""
bind = "127.0.0.1:444"
protocol = "tcp"
default_backend = "b"
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{2, 8, "listener name must not be empty"}, {7, 8, "listener name must not be empty"}}},
    });
}

namespace {

// Lines 1-15: an http listener whose routes hand own.example and *.own.example to the backend
// (acme = "backend") but not auto.own.example, and [acme]; certificates start on line 16.
const char* const kHttpFront = R"(
[[listeners]]
name = "web"
bind = "127.0.0.1:80"
protocol = "http"
  [[listeners.routes]]
  match = ["own.example", "*.own.example"]
  backend = "b"
  acme = "backend"
  [[listeners.routes]]
  match = ["auto.own.example"]
  backend = "b"
[backends.b]
servers = ["127.0.0.1:8080"]
[acme]
directory = "https://ca.example/dir"
)";

std::string with_certs(const char* certs) { return std::string(kHttpFront) + certs; }

}  // namespace

TEST_CASE("certificates that overwrite each other's files") {
    check_diagnostics(load(with_certs(R"([[certificates]]
name = "a"
domains = ["a.example"]
cert_file = "/etc/ssl/a.pem"
key_file = "/etc/ssl/a.key"
[[certificates]]
name = "b"
domains = ["b.example"]
cert_file = "/etc/ssl/./a.pem"
key_file = "/etc/ssl/a.key"
[[certificates]]
name = "c"
domains = ["c.example"]
cert_file = "/etc/ssl/c.pem"
key_file = "/etc/ssl/sub/../a.pem"
)")),
                      {{24, 13, "cert_file \"/etc/ssl/./a.pem\" is also the cert_file of certificate \"a\""},
                       {25, 12, "key_file \"/etc/ssl/a.key\" is also the key_file of certificate \"a\""},
                       {30, 12, "key_file \"/etc/ssl/sub/../a.pem\" is also the cert_file of certificate \"a\""}});
    // Within one certificate the paths are compared the same way.
    check_diagnostics(load(with_certs(R"([[certificates]]
name = "a"
domains = ["a.example"]
cert_file = "/etc/ssl/a.pem"
key_file = "/etc/ssl//a.pem"
)")),
                      {{20, 12, "key_file and cert_file are the same file"}});
}

TEST_CASE("a certificate domain whose challenge every http listener hands to a backend") {
    check_diagnostics(
        load(with_certs(R"([[certificates]]
name = "a"
domains = ["www.example", "Own.Example", "x.own.example", "auto.own.example"]
cert_file = "/etc/ssl/a.pem"
key_file = "/etc/ssl/a.key"
)")),
        {{18, 27,
          "domain \"own.example\" is routed with acme = \"backend\" on http listener \"web\": the "
          "built-in client could never answer its HTTP-01 challenge"},
         {18, 42, "domain \"x.own.example\" is routed with acme = \"backend\" on http listener \"web\""}});
}

TEST_CASE("find_route: exact first, then the longest wildcard, as the router does") {
    Config c = load_ok(R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tls"
  [[listeners.routes]]
  match = ["*.example"]
  backend = "b"
  [[listeners.routes]]
  match = ["*.a.example", "b.a.example"]
  backend = "b"
  [[listeners.routes]]
  match = "a.example"
  backend = "b"
[backends.b]
servers = ["127.0.0.1:80"]
)");
    const Listener& l = c.listeners[0];
    CHECK(find_route(l, "a.example") == &l.routes[2]);
    CHECK(find_route(l, "b.a.example") == &l.routes[1]);
    CHECK(find_route(l, "c.b.a.example") == &l.routes[1]);
    CHECK(find_route(l, "z.example") == &l.routes[0]);
    CHECK(find_route(l, "example") == nullptr);
    CHECK(find_route(l, "other.test") == nullptr);
}

TEST_CASE("warnings: the config loads, each warning at its position") {
    SUBCASE("a tls listener with no route and no default backend") {
        check_warnings(
            load(R"(
[[listeners]]
name = "nothing"
bind = "127.0.0.1:443"
protocol = "tls"
[[listeners]]
name = "empty"
bind = "127.0.0.1:444"
protocol = "tls"
routes = []
[[listeners]]
name = "plain-http"
bind = "127.0.0.1:80"
protocol = "http"
)"),
            {{1, 1, "tls listener \"nothing\" has no routes and no default_backend: it refuses every connection"},
             {5, 1, "tls listener \"empty\" has no routes and no default_backend"}});
    }
    SUBCASE("a certificate domain handed to a backend on some http listeners only") {
        std::string text = with_certs(R"([[listeners]]
name = "web2"
bind = "127.0.0.1:81"
protocol = "http"
[[listeners]]
name = "web3"
bind = "127.0.0.1:82"
protocol = "http"
  [[listeners.routes]]
  match = ["*.example"]
  backend = "b"
  acme = "backend"
[[certificates]]
name = "a"
domains = ["www.own.example"]
cert_file = "/etc/ssl/a.pem"
key_file = "/etc/ssl/a.key"
)");
        check_warnings(load(text), {{30, 12,
                                     "domain \"www.own.example\" is routed with acme = \"backend\" on http listeners "
                                     "\"web\", \"web3\": a challenge that arrives there goes to the backend, not to "
                                     "the built-in client"}});
    }
    SUBCASE("the same server twice in one backend, however it is written") {
        check_warnings(load(R"(
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tcp"
default_backend = "b"
[backends.b]
servers = ["127.0.0.1:80", "[::1]:80", "127.0.0.1:80", "[0::1]:80"]
[backends.c]
servers = ["127.0.0.1:80"]
)"),
                       {{7, 40, "[backends.b]: server 127.0.0.1:80 is listed twice (failover will try it again)"},
                        {7, 56, "[backends.b]: server [0::1]:80 is listed twice"}});
    }
    SUBCASE("warnings come back with errors too") {
        LoadResult r = load(R"(
[[listeners]]
name = "nothing"
bind = "127.0.0.1:443"
protocol = "tls"
bogus = 1
)");
        CHECK_FALSE(r.config);
        CHECK(r.diagnostics.size() == 1);
        REQUIRE(r.warnings.size() == 1);
        CHECK(r.warnings[0].to_string("warning") ==
              "test.toml:1:1: warning: tls listener \"nothing\" has no routes and no default_backend: it refuses every "
              "connection");
    }
}

}  // TEST_SUITE("config.loader.cross_checks")

// config::load_string over valid configs: every key of the schema read into the right field,
// defaults, the short forms, and the reference config shipped in conf/. TOML syntax errors and
// several errors in one file are here too; schema errors are in loader_errors_test.cpp.
#include <doctest.h>

#include <string>
#include <vector>

#include "config/config.hpp"
#include "loader_test_util.hpp"

using namespace sniroute::config;
using namespace sniroute::config::test;
using sniroute::core::SocketAddress;

namespace {

std::vector<std::string> addresses(const std::vector<SocketAddress>& list) {
    std::vector<std::string> out;
    for (const auto& a : list) out.push_back(a.to_string());
    return out;
}

const char* kFullConfig = R"(
[global]
client_hello_timeout = "250ms"
connect_timeout = "1m30s"
idle_timeout = "2h"
drain_timeout = "1d"
max_connections = 500
max_client_hello = 4096
max_http_head = 1024
workers = 0
log_format = "json"
access_log = false

[[listeners]]
name = "https"
bind = ["0.0.0.0:443", "[::]:443"]
protocol = "tls"
default_backend = "web"
accept_proxy_protocol = true

  [[listeners.routes]]
  match = ["Mail.Example.COM", "autoconfig.example.com."]
  backend = "webmail"

  [[listeners.routes]]
  match = "*.Apps.example.com"
  backend = "apps"

[[listeners]]
name = "smtp"
bind = "127.0.0.1:25"
protocol = "tcp"
default_backend = "postfix"

[[listeners]]
name = "http"
bind = ["[2001:db8::7]:80"]
protocol = "http"

  [[listeners.routes]]
  match = ["mail.example.com"]
  backend = "webmail"
  acme = "local"
  redirect_https = true

  [[listeners.routes]]
  match = ["*.apps.example.com"]
  backend = "apps"
  acme = "backend"

  [[listeners.routes]]
  match = "www.example.com"
  backend = "web"
  acme = "auto"
  redirect_https = false

[acme]
webroot = "/var/lib/sniroute/acme"
account_thumbprint = "Zm9vYmFyLV9fYmF6"

[backends.web]
servers = ["127.0.0.1:8443"]

[backends.webmail]
servers = ["127.0.0.1:9443", "[::1]:9443"]
proxy_protocol = "v1"

[backends.apps]
servers = "10.0.0.7:443"
proxy_protocol = "off"

[backends.postfix]
servers = ["127.0.0.1:10025"]
proxy_protocol = "v2"
)";

size_t backend_named(const Config& c, const std::string& name) {
    for (size_t i = 0; i < c.backends.size(); ++i)
        if (c.backends[i].name == name) return i;
    FAIL("no backend named ", name);
    return 0;
}

}  // namespace

TEST_SUITE("config.loader") {

TEST_CASE("a full config loads with every value in place") {
    const Config c = load_ok(kFullConfig);
    CHECK(c.path == kPath);

    CHECK(c.global.inspect_timeout_ms == 250);
    CHECK(c.global.connect_timeout_ms == 90'000);
    CHECK(c.global.idle_timeout_ms == 7'200'000);
    CHECK(c.global.drain_timeout_ms == 86'400'000);
    CHECK(c.global.max_connections == 500);
    CHECK(c.global.max_client_hello == 4096);
    CHECK(c.global.max_http_head == 1024);
    CHECK(c.global.workers == 0);
    CHECK(c.global.log_format == LogFormat::Json);
    CHECK_FALSE(c.global.access_log);

    CHECK(c.acme.webroot == "/var/lib/sniroute/acme");
    CHECK(c.acme.account_thumbprint == "Zm9vYmFyLV9fYmF6");

    REQUIRE(c.backends.size() == 4);
    const size_t web = backend_named(c, "web"), webmail = backend_named(c, "webmail"), apps = backend_named(c, "apps"),
                 postfix = backend_named(c, "postfix");
    CHECK(addresses(c.backends[web].servers) == std::vector<std::string>{"127.0.0.1:8443"});
    CHECK(c.backends[web].proxy_protocol == ProxyProtocol::Off);
    CHECK(addresses(c.backends[webmail].servers) == std::vector<std::string>{"127.0.0.1:9443", "[::1]:9443"});
    CHECK(c.backends[webmail].proxy_protocol == ProxyProtocol::V1);
    CHECK(addresses(c.backends[apps].servers) == std::vector<std::string>{"10.0.0.7:443"});
    CHECK(c.backends[apps].proxy_protocol == ProxyProtocol::Off);
    CHECK(c.backends[postfix].proxy_protocol == ProxyProtocol::V2);

    REQUIRE(c.listeners.size() == 3);
    const Listener& https = c.listeners[0];
    CHECK(https.name == "https");
    CHECK(addresses(https.bind) == std::vector<std::string>{"0.0.0.0:443", "[::]:443"});
    CHECK(https.protocol == Protocol::Tls);
    CHECK(https.default_backend == web);
    CHECK(https.accept_proxy_protocol);
    REQUIRE(https.routes.size() == 2);
    // Patterns are stored normalised: lower case, no trailing dot.
    CHECK(https.routes[0].match == std::vector<std::string>{"mail.example.com", "autoconfig.example.com"});
    CHECK(https.routes[0].backend == webmail);
    CHECK(https.routes[1].match == std::vector<std::string>{"*.apps.example.com"});
    CHECK(https.routes[1].backend == apps);
    CHECK(https.routes[1].acme == AcmeMode::Auto);
    CHECK_FALSE(https.routes[1].redirect_https);

    const Listener& smtp = c.listeners[1];
    CHECK(smtp.name == "smtp");
    CHECK(addresses(smtp.bind) == std::vector<std::string>{"127.0.0.1:25"});
    CHECK(smtp.protocol == Protocol::Tcp);
    CHECK(smtp.default_backend == postfix);
    CHECK_FALSE(smtp.accept_proxy_protocol);
    CHECK(smtp.routes.empty());

    const Listener& http = c.listeners[2];
    CHECK(http.protocol == Protocol::Http);
    CHECK(addresses(http.bind) == std::vector<std::string>{"[2001:db8::7]:80"});
    CHECK_FALSE(http.default_backend.has_value());
    REQUIRE(http.routes.size() == 3);
    CHECK(http.routes[0].acme == AcmeMode::Local);
    CHECK(http.routes[0].redirect_https);
    CHECK(http.routes[1].acme == AcmeMode::Backend);
    CHECK_FALSE(http.routes[1].redirect_https);
    CHECK(http.routes[2].acme == AcmeMode::Auto);
    CHECK(http.routes[2].backend == web);
}

TEST_CASE("a minimal config gets the documented defaults") {
    const Config c = load_ok(R"(
[[listeners]]
name = "smtp"
bind = "127.0.0.1:2525"
protocol = "tcp"
default_backend = "postfix"

[backends.postfix]
servers = "127.0.0.1:25"
)");
    const Global defaults;
    CHECK(c.global.inspect_timeout_ms == 5'000);
    CHECK(c.global.connect_timeout_ms == 5'000);
    CHECK(c.global.idle_timeout_ms == 600'000);
    CHECK(c.global.drain_timeout_ms == 30'000);
    CHECK(c.global.max_connections == defaults.max_connections);
    CHECK(c.global.max_client_hello == 16'384);
    CHECK(c.global.max_http_head == 8'192);
    CHECK(c.global.workers == 1);
    CHECK(c.global.log_format == LogFormat::Text);
    CHECK(c.global.access_log);
    CHECK(c.acme.webroot.empty());
    CHECK(c.acme.account_thumbprint.empty());
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].default_backend == size_t{0});
}

TEST_CASE("range limits are inclusive") {
    const Config c = load_ok(R"(
[global]
max_connections = 10000000
max_client_hello = 1048576
max_http_head = 512
workers = 256
drain_timeout = "366d"
idle_timeout = "1ms"

[[listeners]]
name = "plain"
bind = "127.0.0.1:2525"
protocol = "tcp"
default_backend = "b"
routes = []

[backends.b]
servers = ["127.0.0.1:25"]
)");
    CHECK(c.global.max_connections == 10'000'000);
    CHECK(c.global.max_client_hello == 1u << 20);
    CHECK(c.global.max_http_head == 512);
    CHECK(c.global.workers == 256);
    CHECK(c.global.drain_timeout_ms == 366ull * 86'400'000);
    CHECK(c.global.idle_timeout_ms == 1);
}

TEST_CASE("the same route pattern may appear in different listeners") {
    const Config c = load_ok(R"(
[[listeners]]
name = "a"
bind = "127.0.0.1:443"
protocol = "tls"
routes = [ { match = "mail.example.com", backend = "b" } ]

[[listeners]]
name = "b"
bind = "127.0.0.1:993"
protocol = "tls"
routes = [ { match = ["MAIL.example.com", "*.example.com"], backend = "b" } ]

[backends.b]
servers = ["127.0.0.1:9"]
)");
    REQUIRE(c.listeners.size() == 2);
    CHECK(c.listeners[1].routes[0].match == std::vector<std::string>{"mail.example.com", "*.example.com"});
}

TEST_CASE("the reference config in conf/ loads") {
    LoadResult r = load_file(SNIROUTE_SOURCE_ROOT "/conf/sniroute.toml");
    INFO("diagnostics:", describe(r.diagnostics));
    CHECK(r.diagnostics.empty());
    REQUIRE(r.config.has_value());
    CHECK_FALSE(r.config->listeners.empty());
    CHECK_FALSE(r.config->backends.empty());
}

TEST_CASE("a file that cannot be opened is one diagnostic without a position") {
    LoadResult r = load_file("/nonexistent/sniroute.toml");
    CHECK_FALSE(r.config.has_value());
    REQUIRE(r.diagnostics.size() == 1);
    CHECK(r.diagnostics[0].line == 0);
    CHECK(r.diagnostics[0].to_string() == "/nonexistent/sniroute.toml: cannot open file");
}

TEST_CASE("diagnostics print as FILE:LINE:COL: message") {
    Diagnostic d{"conf/x.toml", 12, 7, "unknown key 'x'"};
    CHECK(d.to_string() == "conf/x.toml:12:7: unknown key 'x'");
}

TEST_CASE("TOML syntax errors are one diagnostic at toml++'s position") {
    struct Case {
        std::string what;
        const char* text;
        Want want;
    };
    const std::vector<Case> cases = {
        {"unterminated string",
         R"(
[[listeners]]
protocol = "tls
)",
         {2, 16, "unescaped control characters"}},  // at the newline that ends the string
        {"missing value",
         R"(
[global]
workers =
)",
         {2, 10, "expected value"}},
        {"two values",
         R"(
[global]
workers = 1 2
)",
         {2, 13, "saw '2'"}},
        {"unknown escape",
         R"(
[global]
log_format = "te\qxt"
)",
         {2, 18, "unknown escape sequence"}},
        {"unclosed table header",
         R"(
[[listeners]
name = "x"
)",
         {1, 13, "expected ']'"}},
        {"key defined twice",
         R"(
[global]
workers = 1
workers = 2
)",
         {3, 11, "cannot redefine existing integer 'workers'"}},
        {"table defined twice",
         R"(
[backends.b]
servers = ["127.0.0.1:80"]
[backends.b]
servers = ["127.0.0.1:81"]
)",
         {3, 1, "cannot redefine existing table 'backends.b'"}},
        {"bad hexadecimal digit",
         R"(
[global]
workers = 0x1G
)",
         {2, 14, "saw 'G'"}},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        check_diagnostics(load(c.text), {c.want});
    }
}

TEST_CASE("several errors are reported at once") {
    check_diagnostics(load(R"(
[global]
workers = "four"
log_format = "xml"
colour = "red"

[[listeners]]
name = "https"
bind = ["0.0.0.0:443", "0.0.0.0:99999"]
protocol = "tls"
default_backend = "nowhere"

  [[listeners.routes]]
  match = ["a.example", "a_b.example"]
  backend = "web"
  acme = "local"

[[listeners]]
name = "https"
bind = "0.0.0.0:443"
protocol = "tcp"

[backends.web]
servers = []
proxy_protocol = "v9"
)"),
                      {
                          {2, 11, "'workers' must be an integer"},
                          {3, 14, "unknown log_format \"xml\""},
                          {4, 1, "unknown key 'colour' in [global]"},
                          {8, 24, "cannot parse bind address \"0.0.0.0:99999\""},
                          {10, 19, "unknown backend \"nowhere\""},
                          {13, 25, "invalid match \"a_b.example\""},
                          {15, 10, "'acme' applies only to http listeners"},
                          {18, 8, "duplicate listener name \"https\""},
                          {19, 8, "bind address 0.0.0.0:443 is already used by listener \"https\""},
                          {17, 1, "tcp listener \"https\" needs a default_backend"},
                          {23, 11, "empty server list"},
                          {24, 18, "unknown proxy_protocol \"v9\""},
                      });
}

}  // TEST_SUITE("config.loader")

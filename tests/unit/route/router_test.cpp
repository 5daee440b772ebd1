// Snapshot: a route per name, else the listener's default backend, else nothing.
#include <doctest.h>

#include <string>

#include "config/config.hpp"
#include "route/router.hpp"

using namespace sniroute;

namespace {

// Listener "https" routes two names and has a default; listener "strict" routes one and has none.
const char* kConfig = R"(
[[listeners]]
name = "https"
bind = ["127.0.0.1:1443"]
protocol = "tls"
default_backend = "fallback"
  [[listeners.routes]]
  match = ["mail.example.com"]
  backend = "mail"
  [[listeners.routes]]
  match = ["*.example.org"]
  backend = "web"
[[listeners]]
name = "strict"
bind = ["127.0.0.1:1993"]
protocol = "tls"
  [[listeners.routes]]
  match = ["imap.example.com"]
  backend = "mail"
[backends.mail]
servers = ["127.0.0.1:1"]
[backends.web]
servers = ["127.0.0.1:2"]
[backends.fallback]
servers = ["127.0.0.1:3"]
)";

route::Snapshot snapshot() {
    auto r = config::load_string(kConfig, "router_test.toml");
    REQUIRE(r.config);
    return route::Snapshot(std::move(*r.config));
}

// The backend a name is routed to on listener `li`, or "(none)".
std::string backend_of(const route::Snapshot& s, size_t li, std::string_view name) {
    route::Decision d = s.route(li, name);
    return d.backend ? d.backend->name : "(none)";
}

}  // namespace

TEST_SUITE("route.router") {

TEST_CASE("a matching route wins, then the default backend, then nothing") {
    route::Snapshot s = snapshot();
    CHECK(backend_of(s, 0, "mail.example.com") == "mail");
    CHECK(backend_of(s, 0, "www.example.org") == "web");
    CHECK(backend_of(s, 0, "other.test") == "fallback");
    CHECK(backend_of(s, 0, "") == "fallback");  // no SNI at all
    CHECK(backend_of(s, 1, "imap.example.com") == "mail");
    CHECK(backend_of(s, 1, "mail.example.com") == "(none)");  // routes are per listener
    CHECK(backend_of(s, 1, "") == "(none)");
}

TEST_CASE("the decision names the route only when one matched") {
    route::Snapshot s = snapshot();
    route::Decision routed = s.route(0, "www.example.org");
    REQUIRE(routed.route);
    CHECK(routed.route->match.front() == "*.example.org");
    CHECK(s.route(0, "other.test").route == nullptr);
}

TEST_CASE("listeners are found by name") {
    route::Snapshot s = snapshot();
    CHECK(s.find_listener("https") == 0);
    CHECK(s.find_listener("strict") == 1);
    CHECK(s.find_listener("nope") == -1);
    CHECK(s.listener(1).name == "strict");
}

}  // TEST_SUITE("route.router")

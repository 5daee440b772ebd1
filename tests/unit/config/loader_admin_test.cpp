// [admin]: the admin listener's bind addresses, loaded and checked against every other bind
// address of the config, with errors at the offending value.
#include <doctest.h>

#include <string>
#include <vector>

#include "config/config.hpp"
#include "loader_test_util.hpp"

using namespace sniroute::config;
using namespace sniroute::config::test;

TEST_SUITE("config.loader.admin") {

TEST_CASE("[admin] bind: loaded, and checked against the listeners' binds like theirs are") {
    auto r = load(R"(
[admin]
bind = ["127.0.0.1:9100", "[::1]:9100"]
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tcp"
default_backend = "b"
[backends.b]
servers = ["127.0.0.1:80"]
)");
    REQUIRE(r.config);
    REQUIRE(r.config->admin.bind.size() == 2);
    CHECK(r.config->admin.bind[0].to_string() == "127.0.0.1:9100");
    CHECK(r.config->admin.bind[1].to_string() == "[::1]:9100");
    CHECK(load_ok(R"([[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tcp"
default_backend = "b"
[backends.b]
servers = ["127.0.0.1:80"]
)")
              .admin.bind.empty());

    run({
        {"the admin listener on a listener's address, and over a wildcard",
         R"(
[[listeners]]
name = "x"
bind = ["127.0.0.1:443", "0.0.0.0:9100"]
protocol = "tcp"
default_backend = "b"
[admin]
bind = ["127.0.0.1:443", "127.0.0.1:9100", "[::ffff:127.0.0.1]:9101", "nowhere"]
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{7, 9, "bind address 127.0.0.1:443 is already used by listener \"x\""},
          {7, 26,
           "bind address 127.0.0.1:9100 overlaps 0.0.0.0:9100 of listener \"x\" (a wildcard address holds its port on "
           "every address of its family)"},
          {7, 44, "bind address [::ffff:127.0.0.1]:9101 is an IPv4-mapped IPv6 address"},
          {7, 71, "cannot parse bind address \"nowhere\""}}},
        {"an empty list and an unknown key",
         R"(
[admin]
bind = []
token = "x"
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tcp"
default_backend = "b"
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{2, 8, "[admin]: empty bind list"}, {3, 1, "unknown key 'token' in [admin]"}}},
        {"[admin] that is not a table",
         R"(
admin = 5
[[listeners]]
name = "x"
bind = "127.0.0.1:443"
protocol = "tcp"
default_backend = "b"
[backends.b]
servers = ["127.0.0.1:80"]
)",
         {{1, 9, "'admin' must be a table"}}},
    });
}

}  // TEST_SUITE("config.loader.admin")

// A listener's IP policy: allow, deny, max_connections_per_ip, new_connections_per_ip; loaded,
// defaulted, and refused with FILE:LINE:COL at the offending value.
#include <doctest.h>

#include <string>
#include <vector>

#include "config/config.hpp"
#include "loader_test_util.hpp"

using namespace sniroute::config;
using namespace sniroute::config::test;
using sniroute::core::IpAddress;

namespace {

// A tcp listener with `policy` after its other keys (line 5 on), and its backend.
std::string with_policy(const std::string& policy) {
    return "[[listeners]]\nname = \"x\"\nbind = \"127.0.0.1:443\"\nprotocol = \"tcp\"\n" + policy +
           "default_backend = \"b\"\n[backends.b]\nservers = [\"127.0.0.1:80\"]\n";
}

bool allows(const Listener& l, const char* ip) { return l.allows(*IpAddress::parse(ip)); }

}  // namespace

TEST_SUITE("config.loader.policy") {

TEST_CASE("defaults: everyone allowed, no limit, no table") {
    Config c = load_ok(with_policy(""));
    const Listener& l = c.listeners[0];
    REQUIRE(l.allow.size() == 2);
    CHECK(l.allow[0].to_string() == "0.0.0.0/0");
    CHECK(l.allow[1].to_string() == "::/0");
    CHECK(l.deny.empty());
    CHECK(l.max_connections_per_ip == 0);
    CHECK_FALSE(l.new_connections_per_ip.limited());
    CHECK_FALSE(l.ip_limited());
    CHECK(allows(l, "192.0.2.1"));
    CHECK(allows(l, "2001:db8::1"));
    CHECK(allows(l, "::ffff:192.0.2.1"));
}

TEST_CASE("allow replaces the default, deny wins over it, limits are read") {
    Config c =
        load_ok(with_policy("allow = [\"10.0.0.0/8\", \"2001:db8::/32\"]\ndeny = \"10.1.0.0/16\"\n"
                            "max_connections_per_ip = 3\nnew_connections_per_ip = \"300/m\"\n"));
    const Listener& l = c.listeners[0];
    CHECK(l.allow.size() == 2);
    CHECK(allows(l, "10.0.0.1"));
    CHECK(allows(l, "::ffff:10.2.0.1"));
    CHECK_FALSE(allows(l, "10.1.0.1"));  // allowed, and denied: denied
    CHECK_FALSE(allows(l, "::ffff:10.1.255.255"));
    CHECK_FALSE(allows(l, "192.0.2.1"));
    CHECK(allows(l, "2001:db8::1"));
    CHECK(l.max_connections_per_ip == 3);
    CHECK(l.new_connections_per_ip.to_string() == "300/m");
    CHECK(l.ip_limited());
    CHECK(load_ok(with_policy("new_connections_per_ip = \"20/s\"\n")).listeners[0].ip_limited());
    CHECK_FALSE(load_ok(with_policy("new_connections_per_ip = \"0/h\"\n")).listeners[0].ip_limited());
}

TEST_CASE("bad values, at the value") {
    run({
        {"garbage in allow",
         with_policy("allow = [\"10.0.0.0/8\", \"ten\"]\n").c_str(),
         {{5, 24, "listener \"x\": allow entry \"ten\": not a numeric IPv4 or IPv6 address"}}},
        {"prefix too long",
         with_policy("deny = \"192.0.2.0/33\"\n").c_str(),
         {{5, 8, "deny entry \"192.0.2.0/33\": an IPv4 prefix length is at most 32"}}},
        {"IPv6 prefix too long",
         with_policy("deny = [\"::/129\"]\n").c_str(),
         {{5, 9, "an IPv6 prefix length is at most 128"}}},
        {"empty entry", with_policy("deny = [\"\"]\n").c_str(), {{5, 9, "deny entry \"\": empty address"}}},
        {"short mapped prefix",
         with_policy("allow = [\"::ffff:0:0/64\"]\n").c_str(),
         {{5, 10, "must be /96 or longer"}}},
        {"not strings", with_policy("allow = [1]\n").c_str(), {{5, 10, "'allow' entries must be strings"}}},
        {"not a list", with_policy("deny = 1\n").c_str(), {{5, 8, "'deny' must be an array of strings"}}},
        {"negative limit",
         with_policy("max_connections_per_ip = -1\n").c_str(),
         {{5, 26, "'max_connections_per_ip' must be between 0 and 10000000"}}},
        {"limit as a string",
         with_policy("max_connections_per_ip = \"3\"\n").c_str(),
         {{5, 26, "'max_connections_per_ip' must be an integer"}}},
        {"rate without unit",
         with_policy("new_connections_per_ip = \"20\"\n").c_str(),
         {{5, 26, "'new_connections_per_ip' must be a rate such as \"20/s\""}}},
        {"rate per day", with_policy("new_connections_per_ip = \"20/d\"\n").c_str(), {{5, 26, "must be a rate"}}},
        {"rate too high",
         with_policy("new_connections_per_ip = \"1000001/s\"\n").c_str(),
         {{5, 26, "at most 1000000 a unit"}}},
        {"rate as a number", with_policy("new_connections_per_ip = 20\n").c_str(), {{5, 26, "must be a rate"}}},
        {"misspelt key",
         with_policy("max_connection_per_ip = 2\n").c_str(),
         {{5, 1, "unknown key 'max_connection_per_ip' in [[listeners]]"}}},
    });
}

TEST_CASE("warnings: host bits (masked, as nginx does) and an empty allow list") {
    LoadResult r = load(with_policy("allow = [\"192.0.2.7/24\"]\n"));
    check_warnings(r, {{5, 10, "allow entry \"192.0.2.7/24\" has bits set beyond its prefix; it means 192.0.2.0/24"}});
    REQUIRE(r.config);
    CHECK(r.config->listeners[0].allow[0].to_string() == "192.0.2.0/24");
    check_warnings(load(with_policy("allow = []\n")), {{5, 9, "empty allow list: it refuses every connection"}});
}

}  // TEST_SUITE("config.loader.policy")

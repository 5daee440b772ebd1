// SocketAddress::parse (numeric IPv4:PORT and [IPv6]:PORT only).
#include <doctest.h>

#include <arpa/inet.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/address.hpp"

using sniroute::core::SocketAddress;

namespace {

// parse() then to_string(), or "(rejected)", so a failed CHECK shows what came back.
std::string round_trip(std::string_view text) {
    auto a = SocketAddress::parse(text);
    return a ? a->to_string() : "(rejected)";
}

}  // namespace

TEST_SUITE("core.address") {

TEST_CASE("IPv4 and IPv6 addresses parse and print back") {
    struct Case {
        std::string in;
        std::string out;  // canonical form
        int family;
        uint16_t port;
        std::string ip;
    };
    const std::vector<Case> cases = {
        {"127.0.0.1:443", "127.0.0.1:443", AF_INET, 443, "127.0.0.1"},
        {"0.0.0.0:80", "0.0.0.0:80", AF_INET, 80, "0.0.0.0"},
        {"255.255.255.255:65535", "255.255.255.255:65535", AF_INET, 65535, "255.255.255.255"},
        {"10.0.0.7:1", "10.0.0.7:1", AF_INET, 1, "10.0.0.7"},
        {"203.0.113.7:0443", "203.0.113.7:443", AF_INET, 443, "203.0.113.7"},  // leading zero in the port
        {"[::1]:443", "[::1]:443", AF_INET6, 443, "::1"},
        {"[::]:443", "[::]:443", AF_INET6, 443, "::"},
        {"[0:0:0:0:0:0:0:1]:8443", "[::1]:8443", AF_INET6, 8443, "::1"},
        {"[2001:DB8::7]:993", "[2001:db8::7]:993", AF_INET6, 993, "2001:db8::7"},
        {"[::ffff:192.0.2.1]:25", "[::ffff:192.0.2.1]:25", AF_INET6, 25, "::ffff:192.0.2.1"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.in);
        auto a = SocketAddress::parse(c.in);
        REQUIRE(a.has_value());
        CHECK(a->to_string() == c.out);
        CHECK(a->family() == c.family);
        CHECK(a->port() == c.port);
        CHECK(a->ip_string() == c.ip);
        CHECK(a->len() == (c.family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in)));
        CHECK(a->sa()->sa_family == c.family);
        // Printing and parsing again gives the same address.
        auto again = SocketAddress::parse(a->to_string());
        REQUIRE(again.has_value());
        CHECK(*again == *a);
    }
}

TEST_CASE("anything but a numeric address with a port is rejected") {
    const std::vector<std::string> bad = {
        "",
        ":",
        ":443",             // no host
        "127.0.0.1",        // no port
        "127.0.0.1:",       // empty port
        "127.0.0.1:0",      // port 0 cannot be dialed or bound on purpose
        "127.0.0.1:65536",  // port out of range
        "127.0.0.1:99999999999999999999",
        "127.0.0.1:-1",
        "127.0.0.1:+80",
        "127.0.0.1: 80",
        "127.0.0.1:80 ",
        " 127.0.0.1:80",
        "127.0.0.1:80a",
        "127.0.0.1:0x50",
        "127.1:80",  // inet_aton shorthand is not accepted
        "1.2.3.4.5:80",
        "256.0.0.1:80",
        "01.2.3.4:80",    // leading zeros could mean octal to some readers
        "localhost:443",  // names are never resolved
        "example.com:443",
        "::1:443",  // IPv6 without brackets
        "::1",
        "[::1]",  // no port
        "[::1]:",
        "[::1]443",
        "[::1]:0",
        "[::1:443",
        "::1]:443",
        "[]:443",
        "[127.0.0.1]:443",     // brackets are for IPv6 only
        "[fe80::1%eth0]:443",  // zone ids are not supported
        "[::1]:443:1",
        "1.2.3.4:80:90",
    };
    for (const auto& text : bad) {
        CAPTURE(text);
        CHECK(round_trip(text) == "(rejected)");
    }
}

TEST_CASE("equality compares family, address and port") {
    auto a = *SocketAddress::parse("127.0.0.1:443");
    CHECK(a == *SocketAddress::parse("127.0.0.1:443"));
    CHECK_FALSE(a == *SocketAddress::parse("127.0.0.1:444"));
    CHECK_FALSE(a == *SocketAddress::parse("127.0.0.2:443"));
    CHECK_FALSE(a == *SocketAddress::parse("[::ffff:127.0.0.1]:443"));  // another family
    auto b = *SocketAddress::parse("[::1]:443");
    CHECK(b == *SocketAddress::parse("[0::1]:443"));
    CHECK_FALSE(b == *SocketAddress::parse("[::2]:443"));
    CHECK_FALSE(b == *SocketAddress::parse("[::1]:80"));
}

TEST_CASE("from() copies a sockaddr of either family") {
    sockaddr_in s4{};
    s4.sin_family = AF_INET;
    s4.sin_port = htons(8080);
    REQUIRE(inet_pton(AF_INET, "192.0.2.9", &s4.sin_addr) == 1);
    CHECK(SocketAddress::from(reinterpret_cast<const sockaddr*>(&s4)).to_string() == "192.0.2.9:8080");

    sockaddr_in6 s6{};
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(993);
    REQUIRE(inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr) == 1);
    CHECK(SocketAddress::from(reinterpret_cast<const sockaddr*>(&s6)).to_string() == "[2001:db8::1]:993");
}

TEST_CASE("from_ip takes a bare numeric address of either family and any port") {
    CHECK(SocketAddress::from_ip("192.0.2.1", 0)->to_string() == "192.0.2.1:0");
    CHECK(SocketAddress::from_ip("192.0.2.1", 65535)->to_string() == "192.0.2.1:65535");
    CHECK(SocketAddress::from_ip("2001:db8::1", 443)->to_string() == "[2001:db8::1]:443");
    CHECK(SocketAddress::from_ip("::ffff:192.0.2.1", 25)->family() == AF_INET6);
    for (const char* bad : {"", "[::1]", "192.0.2.1:80", "localhost", "192.0.2", "::1%lo", "1.2.3.4 "}) {
        CAPTURE(bad);
        CHECK_FALSE(SocketAddress::from_ip(bad, 80).has_value());
    }
}

}  // TEST_SUITE("core.address")

// Regression: the host part went to inet_pton as a C string, so it ended at an embedded NUL.
TEST_SUITE("core.regressions") {

TEST_CASE("SocketAddress::parse rejects an embedded NUL") {
    CHECK(round_trip(std::string_view("127.0.0.1\0junk:443", 18)) == "(rejected)");
    CHECK(round_trip(std::string_view("[::1\0junk]:443", 14)) == "(rejected)");
}

}  // TEST_SUITE("core.regressions")

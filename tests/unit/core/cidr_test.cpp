// parse_cidr and IpAddress: the listeners' allow/deny entries and the per-IP tables' keys.
#include <doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/cidr.hpp"

using sniroute::core::Cidr;
using sniroute::core::IpAddress;
using sniroute::core::IpAddressHash;
using sniroute::core::parse_cidr;

namespace {

IpAddress ip(const char* text) {
    auto a = IpAddress::parse(text);
    REQUIRE(a);
    return *a;
}

Cidr cidr(const char* text) {
    auto r = parse_cidr(text);
    INFO(text);
    REQUIRE(r.cidr);
    return *r.cidr;
}

// For each prefix length of a base with every bit set: the base is inside, and the address
// with the prefix's last bit flipped is outside.
void check_every_length(const char* all_ones, unsigned max) {
    for (unsigned len = 1; len <= max; ++len) {
        INFO(all_ones, "/", len);
        auto c = parse_cidr(std::string(all_ones) + "/" + std::to_string(len));
        REQUIRE(c.cidr);
        IpAddress in = ip(all_ones);
        CHECK(c.cidr->contains(in));
        IpAddress out = in;
        unsigned bit = len - 1;
        out.bytes[bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
        CHECK_FALSE(c.cidr->contains(out));
    }
}

}  // namespace

TEST_SUITE("core.cidr") {

TEST_CASE("prefixes are read and printed in canonical form") {
    struct Case {
        const char* in;
        const char* out;
        bool host_bits;
    };
    const std::vector<Case> cases = {
        {"203.0.113.7", "203.0.113.7/32", false},
        {"192.0.2.0/24", "192.0.2.0/24", false},
        {"0.0.0.0/0", "0.0.0.0/0", false},
        {"::/0", "::/0", false},
        {"2001:db8::/32", "2001:db8::/32", false},
        {"2001:db8::1", "2001:db8::1/128", false},
        // Host bits are cleared, and reported.
        {"192.0.2.77/24", "192.0.2.0/24", true},
        {"10.255.255.255/9", "10.128.0.0/9", true},
        {"2001:db8:ffff::/33", "2001:db8:8000::/33", true},
        // IPv4-mapped IPv6 is IPv4: the prefix loses the 96 bits of ::ffff:0:0.
        {"::ffff:10.0.0.0/104", "10.0.0.0/8", false},
        {"::ffff:192.0.2.1", "192.0.2.1/32", false},
        {"::ffff:0:0/96", "0.0.0.0/0", false},
    };
    for (const auto& c : cases) {
        INFO(c.in);
        auto r = parse_cidr(c.in);
        REQUIRE(r.cidr);
        CHECK(r.cidr->to_string() == c.out);
        CHECK(r.host_bits == c.host_bits);
    }
}

TEST_CASE("bad prefixes are errors, each with its reason") {
    const std::vector<const char*> bad = {
        "",
        "/24",
        "192.0.2.0/",
        "192.0.2.0/33",
        "::/129",
        "192.0.2.0/-1",
        "192.0.2.0/+8",
        "192.0.2.0/024",
        "192.0.2.0/24/8",
        "192.0.2.0/2x",
        "192.0.2",
        "192.0.2.256",
        "192.0.2.0 /24",
        " 192.0.2.0",
        "localhost",
        "[::1]",
        "::1:443:",
        "1.2.3.4:80",
        "::ffff:10.0.0.0/95",
        "::ffff:0:0/0",
    };
    for (const char* b : bad) {
        INFO(b);
        auto r = parse_cidr(b);
        CHECK_FALSE(r.cidr);
        CHECK(r.error != nullptr);
    }
    CHECK_FALSE(parse_cidr(std::string_view("10.0.0.1\0/8", 11)).cidr);
}

TEST_CASE("matching honours the prefix bit by bit, at every length") {
    CHECK(cidr("192.0.2.0/24").contains(ip("192.0.2.0")));
    CHECK(cidr("192.0.2.0/24").contains(ip("192.0.2.255")));
    CHECK_FALSE(cidr("192.0.2.0/24").contains(ip("192.0.3.0")));
    CHECK(cidr("0.0.0.0/0").contains(ip("255.255.255.255")));
    CHECK_FALSE(cidr("0.0.0.0/0").contains(ip("::1")));  // IPv4 lists never match IPv6
    CHECK_FALSE(cidr("::/0").contains(ip("127.0.0.1")));
    CHECK(cidr("::/0").contains(ip("2001:db8::1")));
    CHECK(cidr("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
    CHECK_FALSE(cidr("2001:db8::/32").contains(ip("2001:db9::")));
    check_every_length("255.255.255.255", 32);
    check_every_length("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128);
}

TEST_CASE("mapped client addresses are IPv4, from text and from a socket address") {
    CHECK(ip("::ffff:192.0.2.9") == ip("192.0.2.9"));
    CHECK(IpAddressHash{}(ip("::ffff:192.0.2.9")) == IpAddressHash{}(ip("192.0.2.9")));
    CHECK(cidr("192.0.2.0/24").contains(ip("::ffff:192.0.2.9")));
    sockaddr_in6 s6{};
    s6.sin6_family = AF_INET6;
    REQUIRE(::inet_pton(AF_INET6, "::ffff:203.0.113.7", &s6.sin6_addr) == 1);
    IpAddress a = IpAddress::from(reinterpret_cast<const sockaddr*>(&s6));
    CHECK(a.v4);
    CHECK(a.to_string() == "203.0.113.7");
    sockaddr_in s4{};
    s4.sin_family = AF_INET;
    REQUIRE(::inet_pton(AF_INET, "203.0.113.7", &s4.sin_addr) == 1);
    CHECK(IpAddress::from(reinterpret_cast<const sockaddr*>(&s4)) == a);
    REQUIRE(::inet_pton(AF_INET6, "2001:db8::7", &s6.sin6_addr) == 1);
    IpAddress b = IpAddress::from(reinterpret_cast<const sockaddr*>(&s6));
    CHECK_FALSE(b.v4);
    CHECK(b.to_string() == "2001:db8::7");
    CHECK(any_contains(std::vector<Cidr>{cidr("10.0.0.0/8"), cidr("2001:db8::/32")}, b));
    CHECK_FALSE(any_contains(std::vector<Cidr>{cidr("10.0.0.0/8")}, b));
}

}  // TEST_SUITE("core.cidr")

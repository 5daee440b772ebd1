// IP addresses and prefixes as the listeners' allow/deny lists and per-IP limits see them.
//
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is its IPv4 address here, in a list and in a
// client's address alike: a dual-stack socket reports IPv4 clients that way, and one client
// must not count as two, nor slip past "192.0.2.0/24" by arriving as ::ffff:192.0.2.1.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sniroute::core {

struct IpAddress {
    // IPv4 in the first 4 bytes (the rest zero), IPv6 in all 16; network byte order.
    std::array<uint8_t, 16> bytes{};
    bool v4 = false;

    // From a socket address; anything but AF_INET/AF_INET6 gives the IPv6 "::" (never listed
    // in practice, and never a client's). Mapped IPv6 becomes IPv4.
    static IpAddress from(const sockaddr* sa);
    // A numeric address without brackets or port; mapped IPv6 becomes IPv4.
    static std::optional<IpAddress> parse(std::string_view text);
    std::string to_string() const;

    bool operator==(const IpAddress&) const = default;
};

struct IpAddressHash {
    size_t operator()(const IpAddress& a) const noexcept;
};

struct Cidr {
    IpAddress base;  // host bits already cleared
    uint8_t prefix = 0;

    bool contains(const IpAddress& a) const;
    std::string to_string() const;  // "192.0.2.0/24", "2001:db8::/32"
    bool operator==(const Cidr&) const = default;
};

struct CidrParse {
    std::optional<Cidr> cidr;
    const char* error = nullptr;  // set when cidr is not
    bool host_bits = false;       // bits set beyond the prefix, which were cleared
};

// "203.0.113.7" (a /32), "192.0.2.0/24", "2001:db8::/32", "::ffff:10.0.0.0/104" (= 10.0.0.0/8).
// Host bits beyond the prefix are accepted and cleared, as nginx and HAProxy do; the caller
// learns of them through host_bits (the loader warns). A mapped prefix shorter than /96 is
// refused: it would cover IPv6 space and IPv4 space at once, which no client address is.
CidrParse parse_cidr(std::string_view text);

// Whether any entry of `list` contains `a`.
bool any_contains(const std::vector<Cidr>& list, const IpAddress& a);

}  // namespace sniroute::core

// Socket addresses as sniroute reads and prints them: "127.0.0.1:443", "[::1]:443".
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>

namespace sniroute::core {

struct SocketAddress {
    sockaddr_storage ss{};

    const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
    sockaddr* sa() { return reinterpret_cast<sockaddr*>(&ss); }
    socklen_t len() const { return ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in); }
    int family() const { return ss.ss_family; }
    uint16_t port() const;

    // Numeric only: host names are never resolved, so a config means the same thing on every
    // start and no lookup can stall the event loop.
    static std::optional<SocketAddress> parse(std::string_view text);
    static SocketAddress from(const sockaddr* sa);
    // A numeric IPv4 or IPv6 address without brackets, and any port (0 included).
    static std::optional<SocketAddress> from_ip(const std::string& ip, uint16_t port);
    std::string to_string() const;  // "1.2.3.4:5" or "[::1]:5"
    std::string ip_string() const;  // without the port or brackets

    bool operator==(const SocketAddress& o) const;
};

}  // namespace sniroute::core

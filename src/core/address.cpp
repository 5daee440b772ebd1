#include "core/address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace sniroute::core {

uint16_t SocketAddress::port() const {
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view text) {
    // inet_pton reads a C string: an embedded NUL would silently cut the address short.
    if (text.find('\0') != std::string_view::npos) return std::nullopt;
    std::string host;
    std::string_view port;
    bool v6 = false;
    if (text.starts_with("[")) {
        size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
        host = std::string(text.substr(1, close - 1));
        port = text.substr(close + 2);
        v6 = true;
    } else {
        size_t colon = text.rfind(':');
        if (colon == std::string_view::npos || text.find(':') != colon) return std::nullopt;
        host = std::string(text.substr(0, colon));
        port = text.substr(colon + 1);
    }
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || port.empty() || p == 0 || p > 65535)
        return std::nullopt;
    auto a = from_ip(host, static_cast<uint16_t>(p));
    if (!a || (a->family() == AF_INET6) != v6) return std::nullopt;
    return a;
}

std::optional<SocketAddress> SocketAddress::from_ip(const std::string& ip, uint16_t port) {
    if (ip.find('\0') != std::string::npos) return std::nullopt;
    SocketAddress a;
    auto* s4 = reinterpret_cast<sockaddr_in*>(&a.ss);
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    if (inet_pton(AF_INET, ip.c_str(), &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        return a;
    }
    a = SocketAddress{};
    if (inet_pton(AF_INET6, ip.c_str(), &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        return a;
    }
    return std::nullopt;
}

SocketAddress SocketAddress::from(const sockaddr* sa) {
    SocketAddress a;
    if (sa->sa_family == AF_INET)
        std::memcpy(&a.ss, sa, sizeof(sockaddr_in));
    else if (sa->sa_family == AF_INET6)
        std::memcpy(&a.ss, sa, sizeof(sockaddr_in6));
    return a;
}

std::string SocketAddress::ip_string() const {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    return buf;
}

std::string SocketAddress::to_string() const {
    std::string ip = ip_string();
    if (ss.ss_family == AF_INET6) return "[" + ip + "]:" + std::to_string(port());
    return ip + ":" + std::to_string(port());
}

bool SocketAddress::operator==(const SocketAddress& o) const {
    if (ss.ss_family != o.ss.ss_family) return false;
    if (ss.ss_family == AF_INET) {
        auto *a = reinterpret_cast<const sockaddr_in*>(&ss), *b = reinterpret_cast<const sockaddr_in*>(&o.ss);
        return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    if (ss.ss_family == AF_INET6) {
        auto *a = reinterpret_cast<const sockaddr_in6*>(&ss), *b = reinterpret_cast<const sockaddr_in6*>(&o.ss);
        return a->sin6_port == b->sin6_port && std::memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
    }
    return false;
}

}  // namespace sniroute::core

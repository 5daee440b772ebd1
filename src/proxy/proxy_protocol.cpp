#include "proxy/proxy_protocol.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <string_view>

namespace sniroute::proxy {

namespace {

// The 12-byte v2 signature: "\r\n\r\n\0\r\nQUIT\n".
constexpr uint8_t kV2Sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view kV1Prefix = "PROXY ";
constexpr size_t kV1Max = 107;

const sockaddr_in* v4(const core::SocketAddress& a) { return reinterpret_cast<const sockaddr_in*>(&a.ss); }
const sockaddr_in6* v6(const core::SocketAddress& a) { return reinterpret_cast<const sockaddr_in6*>(&a.ss); }

bool parse_port(std::string_view s, uint16_t& out) {
    // v1 ports are decimal without leading zeros (0..65535).
    if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v > 65535) return false;
    out = static_cast<uint16_t>(v);
    return true;
}

/*
 * v1: "PROXY" SP ("TCP4" | "TCP6" | "UNKNOWN") [SP src SP dst SP sport SP dport] CRLF,
 * at most 107 bytes including the CRLF.
 */
HeaderStatus parse_v1(const uint8_t* p, size_t n, ParsedHeader& out, const char*& why) {
    const char* s = reinterpret_cast<const char*>(p);
    size_t limit = n < kV1Max ? n : kV1Max;
    const void* lf = std::memchr(s, '\n', limit);
    if (!lf) {
        if (n >= kV1Max) return why = "PROXY v1 line longer than 107 bytes", HeaderStatus::Malformed;
        return HeaderStatus::NeedMore;
    }
    size_t len = static_cast<size_t>(static_cast<const char*>(lf) - s) + 1;
    if (len < 2 || s[len - 2] != '\r') return why = "PROXY v1 line not ended by CRLF", HeaderStatus::Malformed;
    std::string_view line(s, len - 2);
    line.remove_prefix(kV1Prefix.size());
    out.length = len;
    if (line.starts_with("UNKNOWN")) {
        out.local = true;
        return HeaderStatus::Done;
    }
    int family;
    if (line.starts_with("TCP4 "))
        family = AF_INET;
    else if (line.starts_with("TCP6 "))
        family = AF_INET6;
    else
        return why = "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN", HeaderStatus::Malformed;
    line.remove_prefix(5);
    std::string_view parts[4];
    for (int i = 0; i < 4; ++i) {
        size_t sp = line.find(' ');
        if ((i < 3) != (sp != std::string_view::npos))
            return why = "PROXY v1 needs exactly four fields", HeaderStatus::Malformed;
        parts[i] = line.substr(0, sp);
        line = i < 3 ? line.substr(sp + 1) : std::string_view();
    }
    uint16_t sport, dport;
    if (!parse_port(parts[2], sport) || !parse_port(parts[3], dport))
        return why = "PROXY v1 bad port", HeaderStatus::Malformed;
    auto make = [&](std::string_view ip, uint16_t port, core::SocketAddress& a) {
        auto parsed = core::SocketAddress::from_ip(std::string(ip), port);
        if (!parsed || parsed->family() != family) return false;
        a = *parsed;
        return true;
    };
    if (!make(parts[0], sport, out.src) || !make(parts[1], dport, out.dst))
        return why = "PROXY v1 bad address", HeaderStatus::Malformed;
    return HeaderStatus::Done;
}

/*
 * v2:
 *   12 bytes signature
 *   1 byte  version (high nibble, must be 2) | command (low nibble: 0 LOCAL, 1 PROXY)
 *   1 byte  family (high nibble: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX) |
 *           transport (low nibble: 0 UNSPEC, 1 STREAM, 2 DGRAM); any other nibble is invalid
 *   2 bytes length of what follows (addresses, then TLVs)
 *   INET:  4 src, 4 dst, 2 sport, 2 dport  (12 bytes)
 *   INET6: 16 src, 16 dst, 2 sport, 2 dport (36 bytes)
 */
HeaderStatus parse_v2(const uint8_t* p, size_t n, size_t max_len, ParsedHeader& out, const char*& why) {
    if (n < 16) return HeaderStatus::NeedMore;
    uint8_t ver_cmd = p[12], fam = p[13];
    size_t len = static_cast<size_t>(p[14]) << 8 | p[15];
    if ((ver_cmd >> 4) != 2) return why = "PROXY v2 version is not 2", HeaderStatus::Malformed;
    uint8_t cmd = ver_cmd & 0x0F;
    if (cmd > 1) return why = "PROXY v2 unknown command", HeaderStatus::Malformed;
    // proxy-protocol.txt section 2.2 defines the family nibble as 0x0..0x3 and the transport
    // nibble as 0x0..0x2, and of any other value says it "must not be emitted in version 2 of
    // this protocol and must be rejected as invalid by receivers". That holds for LOCAL too: a
    // LOCAL header's family is ignored, but one with an undefined family is not a valid header.
    // It is refused at its 14th byte, without waiting for the rest.
    if ((fam >> 4) > 0x3 || (fam & 0x0F) > 0x2)
        return why = "PROXY v2 undefined address family or transport", HeaderStatus::Malformed;
    if (16 + len > max_len) return why = "PROXY v2 header too long", HeaderStatus::Malformed;
    if (n < 16 + len) return HeaderStatus::NeedMore;
    out.length = 16 + len;
    const uint8_t* a = p + 16;
    if (cmd == 0) {  // LOCAL: health checks from the balancer itself
        out.local = true;
        return HeaderStatus::Done;
    }
    if (fam == 0x11) {
        if (len < 12) return why = "PROXY v2 INET block too short", HeaderStatus::Malformed;
        auto* s = reinterpret_cast<sockaddr_in*>(&out.src.ss);
        auto* d = reinterpret_cast<sockaddr_in*>(&out.dst.ss);
        s->sin_family = d->sin_family = AF_INET;
        std::memcpy(&s->sin_addr, a, 4);
        std::memcpy(&d->sin_addr, a + 4, 4);
        std::memcpy(&s->sin_port, a + 8, 2);
        std::memcpy(&d->sin_port, a + 10, 2);
    } else if (fam == 0x21) {
        if (len < 36) return why = "PROXY v2 INET6 block too short", HeaderStatus::Malformed;
        auto* s = reinterpret_cast<sockaddr_in6*>(&out.src.ss);
        auto* d = reinterpret_cast<sockaddr_in6*>(&out.dst.ss);
        s->sin6_family = d->sin6_family = AF_INET6;
        std::memcpy(&s->sin6_addr, a, 16);
        std::memcpy(&d->sin6_addr, a + 16, 16);
        std::memcpy(&s->sin6_port, a + 32, 2);
        std::memcpy(&d->sin6_port, a + 34, 2);
    } else {
        // Every other byte left is defined, and sniroute, a TCP proxy, has no use for its
        // addresses. Section 2.2 lets a receiver accept UNSPEC in either nibble "and use the real
        // endpoint addresses", and requires one that does not implement the other valid
        // combinations (\x12, \x22, \x31, \x32) to "automatically fall[] back to the UNSPEC
        // mode" for them rather than refuse; the length field above says how much to skip.
        out.local = true;
    }
    return HeaderStatus::Done;
}

}  // namespace

void append_v1(std::string& out, const core::SocketAddress& src, const core::SocketAddress& dst) {
    if (src.family() != dst.family() || (src.family() != AF_INET && src.family() != AF_INET6)) {
        out += "PROXY UNKNOWN\r\n";
        return;
    }
    out += src.family() == AF_INET ? "PROXY TCP4 " : "PROXY TCP6 ";
    out += src.ip_string() + " " + dst.ip_string() + " " + std::to_string(src.port()) + " " +
           std::to_string(dst.port()) + "\r\n";
}

void append_v2(std::string& out, const core::SocketAddress& src, const core::SocketAddress& dst) {
    out.append(reinterpret_cast<const char*>(kV2Sig), sizeof kV2Sig);
    auto put = [&](const void* p, size_t k) { out.append(static_cast<const char*>(p), k); };
    if (src.family() == AF_INET && dst.family() == AF_INET) {
        out += "\x21\x11";
        out += '\0';
        out += '\x0c';
        put(&v4(src)->sin_addr, 4);
        put(&v4(dst)->sin_addr, 4);
        put(&v4(src)->sin_port, 2);
        put(&v4(dst)->sin_port, 2);
    } else if (src.family() == AF_INET6 && dst.family() == AF_INET6) {
        out += "\x21\x21";
        out += '\0';
        out += '\x24';
        put(&v6(src)->sin6_addr, 16);
        put(&v6(dst)->sin6_addr, 16);
        put(&v6(src)->sin6_port, 2);
        put(&v6(dst)->sin6_port, 2);
    } else {
        out += '\x20';  // version 2, LOCAL
        out += '\0';    // UNSPEC
        out += '\0';
        out += '\0';
    }
}

HeaderStatus parse_header(const uint8_t* p, size_t n, size_t max_len, ParsedHeader& out, const char*& why) {
    out = ParsedHeader{};
    // Decide v1 or v2 from as many signature bytes as have arrived; a mismatch at any byte is
    // final, so a client that is not a balancer is cut off at once.
    size_t k = n < sizeof kV2Sig ? n : sizeof kV2Sig;
    if (k > 0 && p[0] == kV2Sig[0]) {
        if (std::memcmp(p, kV2Sig, k) != 0) return why = "bad PROXY v2 signature", HeaderStatus::Malformed;
        return k < sizeof kV2Sig ? HeaderStatus::NeedMore : parse_v2(p, n, max_len, out, why);
    }
    k = n < kV1Prefix.size() ? n : kV1Prefix.size();
    if (std::memcmp(p, kV1Prefix.data(), k) != 0) return why = "no PROXY protocol header", HeaderStatus::Malformed;
    if (k < kV1Prefix.size()) return HeaderStatus::NeedMore;
    return parse_v1(p, n, out, why);
}

}  // namespace sniroute::proxy

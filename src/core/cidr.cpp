#include "core/cidr.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace sniroute::core {

namespace {

constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool is_mapped(const uint8_t* b16) { return std::memcmp(b16, kMappedPrefix, sizeof kMappedPrefix) == 0; }

IpAddress from_v6_bytes(const uint8_t* b16) {
    IpAddress a;
    if (is_mapped(b16)) {
        a.v4 = true;
        std::memcpy(a.bytes.data(), b16 + 12, 4);
    } else {
        std::memcpy(a.bytes.data(), b16, 16);
    }
    return a;
}

// Clears every bit of `a` beyond the first `prefix`; says whether any was set.
bool clear_host_bits(IpAddress& a, unsigned prefix) {
    bool had = false;
    size_t n = a.v4 ? 4 : 16;
    for (size_t i = 0; i < n; ++i) {
        unsigned first = static_cast<unsigned>(i) * 8;
        uint8_t keep = prefix >= first + 8 ? 0xff
                       : prefix <= first   ? 0
                                           : static_cast<uint8_t>(0xff << (8 - (prefix - first)));
        had = had || (a.bytes[i] & ~keep) != 0;
        a.bytes[i] &= keep;
    }
    return had;
}

}  // namespace

IpAddress IpAddress::from(const sockaddr* sa) {
    IpAddress a;
    if (sa->sa_family == AF_INET) {
        a.v4 = true;
        std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        a = from_v6_bytes(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr.s6_addr);
    }
    return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    // inet_pton reads a C string; 45 characters is the longest IPv6 text form.
    if (text.empty() || text.size() > 45 || text.find('\0') != std::string_view::npos) return std::nullopt;
    std::string s(text);
    uint8_t buf[16];
    if (s.find(':') == std::string::npos) {
        if (::inet_pton(AF_INET, s.c_str(), buf) != 1) return std::nullopt;
        IpAddress a;
        a.v4 = true;
        std::memcpy(a.bytes.data(), buf, 4);
        return a;
    }
    if (::inet_pton(AF_INET6, s.c_str(), buf) != 1) return std::nullopt;
    return from_v6_bytes(buf);
}

std::string IpAddress::to_string() const {
    char out[INET6_ADDRSTRLEN];
    if (!::inet_ntop(v4 ? AF_INET : AF_INET6, bytes.data(), out, sizeof out)) return "?";
    return out;
}

size_t IpAddressHash::operator()(const IpAddress& a) const noexcept {
    // FNV-1a over the bytes that matter: cheap, and the table's shards take its low bits.
    uint64_t h = a.v4 ? 0xcbf29ce484222325ull : 0x84222325cbf29ce4ull;
    size_t n = a.v4 ? 4 : 16;
    for (size_t i = 0; i < n; ++i) h = (h ^ a.bytes[i]) * 0x100000001b3ull;
    return static_cast<size_t>(h ^ (h >> 29));
}

bool Cidr::contains(const IpAddress& a) const {
    if (a.v4 != base.v4) return false;
    unsigned full = prefix / 8, rest = prefix % 8;
    if (std::memcmp(a.bytes.data(), base.bytes.data(), full) != 0) return false;
    if (rest == 0) return true;
    auto mask = static_cast<uint8_t>(0xff << (8 - rest));
    return (a.bytes[full] & mask) == base.bytes[full];
}

std::string Cidr::to_string() const { return base.to_string() + "/" + std::to_string(prefix); }

CidrParse parse_cidr(std::string_view text) {
    CidrParse r;
    if (text.empty()) {
        r.error = "empty address";
        return r;
    }
    size_t slash = text.find('/');
    std::string_view addr = text.substr(0, slash);
    auto ip = IpAddress::parse(addr);
    if (!ip) {
        r.error = "not a numeric IPv4 or IPv6 address";
        return r;
    }
    bool mapped = !ip->v4 ? false : addr.find(':') != std::string_view::npos;
    unsigned max = mapped || !ip->v4 ? 128 : 32;
    unsigned prefix = max;
    if (slash != std::string_view::npos) {
        std::string_view p = text.substr(slash + 1);
        // Digits only, no sign, no leading zero: "/024" is more likely a typo than a /24.
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
        if (p.empty() || ec != std::errc() || end != p.data() + p.size() || (p.size() > 1 && p[0] == '0')) {
            r.error = "the prefix length after '/' must be a number";
            return r;
        }
        if (prefix > max) {
            r.error = max == 32 ? "an IPv4 prefix length is at most 32" : "an IPv6 prefix length is at most 128";
            return r;
        }
    }
    if (mapped) {
        if (prefix < 96) {
            r.error = "an IPv4-mapped prefix (::ffff:a.b.c.d) must be /96 or longer";
            return r;
        }
        prefix -= 96;
    }
    r.host_bits = clear_host_bits(*ip, prefix);
    r.cidr = Cidr{*ip, static_cast<uint8_t>(prefix)};
    return r;
}

bool any_contains(const std::vector<Cidr>& list, const IpAddress& a) {
    for (const Cidr& c : list)
        if (c.contains(a)) return true;
    return false;
}

}  // namespace sniroute::core

// PROXY protocol v1 and v2 (haproxy.org/download/2.9/doc/proxy-protocol.txt): writing the
// header sniroute sends to backends, and parsing the one a trusted balancer sends to us.
// Pure code over bytes, like the ClientHello parser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/address.hpp"

namespace sniroute::proxy {

// Appends a v1 ("PROXY TCP4 ...\r\n") or v2 (binary) header to `out`. When the two addresses
// are of different families, or not IP at all, v1 says UNKNOWN and v2 uses LOCAL/UNSPEC, as
// the spec asks, rather than inventing an address.
void append_v1(std::string& out, const core::SocketAddress& src, const core::SocketAddress& dst);
void append_v2(std::string& out, const core::SocketAddress& src, const core::SocketAddress& dst);

enum class HeaderStatus { NeedMore, Done, Malformed };

struct ParsedHeader {
    bool local = false;  // v2 LOCAL or v1 UNKNOWN: keep the connection's own addresses
    core::SocketAddress src;
    core::SocketAddress dst;
    size_t length = 0;  // bytes of the stream taken by the header
};

// Looks at the first `n` bytes of a stream. NeedMore while the bytes are a prefix of a valid
// header; Malformed on the first byte that cannot be one. A v1 header is at most 107 bytes and
// a v2 header at most 16 + 65535; `max_len` caps v2 lower (TLVs are skipped, never stored).
HeaderStatus parse_header(const uint8_t* p, size_t n, size_t max_len, ParsedHeader& out, const char*& why);

}  // namespace sniroute::proxy

// Test helpers for the ClientHello parser: a field-by-field builder for synthetic hellos, the
// record framing around them, and small drivers that feed a byte stream in different cuts.
#pragma once

#include <doctest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tls/client_hello.hpp"

namespace sniroute::tls::test {

using Bytes = std::vector<uint8_t>;

inline void put8(Bytes& b, unsigned v) { b.push_back(static_cast<uint8_t>(v)); }
inline void put16(Bytes& b, unsigned v) { put8(b, v >> 8), put8(b, v); }
inline void put24(Bytes& b, unsigned v) { put8(b, v >> 16), put16(b, v); }
inline void append(Bytes& b, const Bytes& more) { b.insert(b.end(), more.begin(), more.end()); }
inline void append(Bytes& b, std::string_view s) { b.insert(b.end(), s.begin(), s.end()); }
inline Bytes bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Length-prefixed vectors (RFC 8446 3.4).
inline Bytes vec8(const Bytes& body) {
    Bytes b;
    put8(b, body.size());
    append(b, body);
    return b;
}
inline Bytes vec16(const Bytes& body) {
    Bytes b;
    put16(b, body.size());
    append(b, body);
    return b;
}

// One extension: uint16 type, uint16 length, data.
inline Bytes extension(uint16_t type, const Bytes& data) {
    Bytes b;
    put16(b, type);
    append(b, vec16(data));
    return b;
}

// One server_name entry: uint8 name_type, uint16 length, name.
inline Bytes sni_entry(std::string_view name, uint8_t type = 0) {
    Bytes b;
    put8(b, type);
    append(b, vec16(bytes(name)));
    return b;
}

// server_name (0): uint16 list length, then the entries as given.
inline Bytes sni_ext_entries(std::initializer_list<Bytes> entries) {
    Bytes list;
    for (const Bytes& e : entries) append(list, e);
    return extension(0x0000, vec16(list));
}
inline Bytes sni_ext(std::string_view name) { return sni_ext_entries({sni_entry(name)}); }

// application_layer_protocol_negotiation (16): uint16 list length, then uint8-prefixed names.
inline Bytes alpn_ext(std::initializer_list<std::string_view> protocols) {
    Bytes list;
    for (auto p : protocols) append(list, vec8(bytes(p)));
    return extension(0x0010, vec16(list));
}

// supported_versions (43) in a ClientHello: uint8 list length, then uint16 versions.
inline Bytes versions_ext(std::initializer_list<uint16_t> versions) {
    Bytes list;
    for (auto v : versions) put16(list, v);
    return extension(0x002b, vec8(list));
}

// The fields of a ClientHello body (RFC 8446 4.1.2), each kept as the exact bytes to emit so a
// test can break any one of them. The defaults make a small valid TLS 1.3 hello.
struct HelloFields {
    Bytes legacy_version = {0x03, 0x03};                    // TLS 1.2 on the wire, as 1.3 sends
    Bytes random = Bytes(32, 0xA5);                         // 32 bytes of client random
    Bytes session_id = vec8(Bytes(32, 0x5E));               // uint8 length 32, legacy session id
    Bytes cipher_suites = vec16({0x13, 0x01, 0x13, 0x02});  // TLS_AES_128_GCM, TLS_AES_256_GCM
    Bytes compression = vec8({0x00});                       // one method: null
    // The concatenated extensions, wrapped in a uint16 block length by hello_body(); nullopt
    // leaves the block out entirely, as a TLS 1.2 client with nothing to say may do.
    std::optional<Bytes> extensions = Bytes{};
    // Bytes appended after the extensions block, inside the handshake message.
    Bytes trailer;
};

inline Bytes hello_body(const HelloFields& f) {
    Bytes b;
    append(b, f.legacy_version);
    append(b, f.random);
    append(b, f.session_id);
    append(b, f.cipher_suites);
    append(b, f.compression);
    if (f.extensions) append(b, vec16(*f.extensions));
    append(b, f.trailer);
    return b;
}

// Handshake header (RFC 8446 4): uint8 msg_type (1 = client_hello), uint24 length, body.
inline Bytes handshake(const Bytes& body, uint8_t msg_type = 0x01) {
    Bytes b;
    put8(b, msg_type);
    put24(b, body.size());
    append(b, body);
    return b;
}

// Record header (RFC 8446 5.1): uint8 type (22 = handshake), uint16 legacy_record_version
// (0x0301 in a first flight), uint16 length, fragment.
inline Bytes record(const Bytes& fragment, uint8_t type = 0x16, uint16_t version = 0x0301) {
    Bytes b;
    put8(b, type);
    put16(b, version);
    put16(b, fragment.size());
    append(b, fragment);
    return b;
}

// A whole first flight: one record holding one ClientHello.
inline Bytes client_hello(const HelloFields& f) { return record(handshake(hello_body(f))); }

// Re-frames a handshake message as several records, cut before each offset in `cuts`
// (strictly increasing, each inside the message).
inline Bytes reframe(const Bytes& message, std::initializer_list<size_t> cuts) {
    Bytes out;
    size_t from = 0;
    for (size_t to : cuts) {
        append(out, record(Bytes(message.begin() + from, message.begin() + to)));
        from = to;
    }
    append(out, record(Bytes(message.begin() + from, message.end())));
    return out;
}

// The handshake message inside a single-record flight (everything after the 5-byte header).
inline Bytes unwrap_single_record(const Bytes& flight) {
    REQUIRE(flight.size() > 5);
    REQUIRE(flight[0] == 0x16);
    REQUIRE(size_t(flight[3] << 8 | flight[4]) == flight.size() - 5);
    return Bytes(flight.begin() + 5, flight.end());
}

// What a parser ended with, comparable as a whole so one CHECK covers every field.
struct Outcome {
    ParseStatus status = ParseStatus::NeedMore;
    ClientHelloInfo info;
    bool operator==(const Outcome& o) const {
        return status == o.status && info.has_sni == o.info.has_sni && info.sni == o.info.sni &&
               info.alpn == o.info.alpn && info.legacy_version == o.info.legacy_version &&
               info.supported_versions == o.info.supported_versions;
    }
};

inline Outcome outcome_of(const ClientHelloParser& p) { return {p.status(), p.info()}; }

inline Outcome feed_whole(const Bytes& b, size_t cap = ClientHelloParser::kDefaultMaxBytes) {
    ClientHelloParser p(cap);
    p.feed(b.data(), b.size());
    return outcome_of(p);
}

// Feeds b in chunks of `chunk` bytes; the last chunk may be shorter.
inline Outcome feed_chunks(const Bytes& b, size_t chunk, size_t cap = ClientHelloParser::kDefaultMaxBytes) {
    ClientHelloParser p(cap);
    for (size_t at = 0; at < b.size(); at += chunk) p.feed(b.data() + at, std::min(chunk, b.size() - at));
    return outcome_of(p);
}

// Feeds b as two reads cut at `at`; the first read must not already be final unless it holds
// the whole of `b`.
inline Outcome feed_split(const Bytes& b, size_t at, size_t cap = ClientHelloParser::kDefaultMaxBytes) {
    ClientHelloParser p(cap);
    p.feed(b.data(), at);
    p.feed(b.data() + at, b.size() - at);
    return outcome_of(p);
}

}  // namespace sniroute::tls::test

namespace sniroute::tls {
// doctest prints enums as numbers; this overload, found by argument-dependent lookup, makes a
// failed status CHECK print "too-large == done" instead of "4 == 1".
inline doctest::String toString(ParseStatus s) { return to_string(s); }
}  // namespace sniroute::tls

namespace doctest {
template <>
struct StringMaker<sniroute::tls::test::Outcome> {
    static String convert(const sniroute::tls::test::Outcome& o) {
        std::ostringstream s;
        s << "{" << sniroute::tls::to_string(o.status) << " sni=" << (o.info.has_sni ? o.info.sni : "(none)")
          << " alpn=[";
        for (auto& a : o.info.alpn) s << a << ",";
        s << "] legacy=" << std::hex << o.info.legacy_version << " versions=[";
        for (auto v : o.info.supported_versions) s << v << ",";
        s << "]}";
        return s.str().c_str();
    }
};
}  // namespace doctest

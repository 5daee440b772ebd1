#include "tls/client_hello.hpp"

#include <algorithm>

#include "core/host_name.hpp"

namespace sniroute::tls {

namespace {

constexpr uint8_t kContentHandshake = 0x16;
constexpr uint8_t kHandshakeClientHello = 0x01;
constexpr size_t kMaxRecordPayload = 16384;  // RFC 8446 5.1: TLSPlaintext.length <= 2^14

constexpr uint16_t kExtServerName = 0;
constexpr uint16_t kExtAlpn = 16;
constexpr uint16_t kExtSupportedVersions = 43;

// A bounds-checked reader over one contiguous span. Every getter fails (returns false) instead
// of reading past the end, so the parsing code below never indexes raw memory itself.
class Reader {
public:
    Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
    size_t left() const { return n_ - off_; }
    bool empty() const { return off_ == n_; }
    bool u8(uint8_t& v) {
        if (left() < 1) return false;
        v = p_[off_++];
        return true;
    }
    bool u16(uint16_t& v) {
        if (left() < 2) return false;
        v = static_cast<uint16_t>(p_[off_] << 8 | p_[off_ + 1]);
        off_ += 2;
        return true;
    }
    bool skip(size_t k) {
        if (left() < k) return false;
        off_ += k;
        return true;
    }
    // Splits off a sub-reader of `len` bytes.
    bool sub(size_t len, Reader& out) {
        if (left() < len) return false;
        out = Reader(p_ + off_, len);
        off_ += len;
        return true;
    }
    // Vectors with an 8- or 16-bit length prefix (RFC 8446 3.4).
    bool vec8(Reader& out) {
        uint8_t len;
        return u8(len) && sub(len, out);
    }
    bool vec16(Reader& out) {
        uint16_t len;
        return u16(len) && sub(len, out);
    }
    const uint8_t* data() const { return p_ + off_; }

private:
    const uint8_t* p_;
    size_t n_;
    size_t off_ = 0;
};

/*
 * server_name extension (RFC 6066 section 3):
 *   uint16 server_name_list length
 *   repeated: uint8 name_type (0 = host_name), uint16 length, opaque HostName[length]
 * RFC 6066 forbids two names of one type; we accept exactly one host_name entry and nothing
 * else, as OpenSSL does, because any other shape has never been sent by a real client.
 */
bool parse_server_name(Reader ext, ClientHelloInfo& out, const char*& why) {
    Reader list(nullptr, 0);
    if (!ext.vec16(list) || !ext.empty()) return why = "server_name list length", false;
    if (list.empty()) return why = "empty server_name list", false;
    uint8_t type;
    Reader name(nullptr, 0);
    if (!list.u8(type) || !list.vec16(name)) return why = "server_name entry truncated", false;
    if (type != 0) return why = "server_name type is not host_name", false;
    if (!list.empty()) return why = "more than one server_name entry", false;
    std::string_view raw(reinterpret_cast<const char*>(name.data()), name.left());
    if (!core::normalize_host_name(raw, out.sni)) return why = "server_name is not a valid host name", false;
    out.has_sni = true;
    return true;
}

/*
 * application_layer_protocol_negotiation (RFC 7301 section 3.1):
 *   uint16 protocol_name_list length; repeated: uint8 length (>= 1), opaque name[length]
 */
bool parse_alpn(Reader ext, ClientHelloInfo& out, const char*& why) {
    Reader list(nullptr, 0);
    if (!ext.vec16(list) || !ext.empty()) return why = "alpn list length", false;
    if (list.empty()) return why = "empty alpn list", false;
    while (!list.empty()) {
        Reader proto(nullptr, 0);
        if (!list.vec8(proto)) return why = "alpn entry truncated", false;
        if (proto.empty()) return why = "empty alpn protocol", false;
        out.alpn.emplace_back(reinterpret_cast<const char*>(proto.data()), proto.left());
    }
    return true;
}

/*
 * supported_versions in a ClientHello (RFC 8446 4.2.1):
 *   uint8 length (2..254, even); repeated uint16 ProtocolVersion
 */
bool parse_supported_versions(Reader ext, ClientHelloInfo& out, const char*& why) {
    Reader list(nullptr, 0);
    if (!ext.vec8(list) || !ext.empty()) return why = "supported_versions length", false;
    if (list.left() < 2 || list.left() % 2 != 0) return why = "supported_versions list", false;
    while (!list.empty()) {
        uint16_t v = 0;
        list.u16(v);
        out.supported_versions.push_back(v);
    }
    return true;
}

}  // namespace

const char* to_string(ParseStatus s) noexcept {
    switch (s) {
        case ParseStatus::NeedMore: return "need-more";
        case ParseStatus::Done: return "done";
        case ParseStatus::NotTls: return "not-tls";
        case ParseStatus::Malformed: return "malformed";
        case ParseStatus::TooLarge: return "too-large";
    }
    return "?";
}

/*
 * ClientHello body (RFC 8446 4.1.2; RFC 5246 7.4.1.2 for TLS 1.2 and earlier):
 *   uint16 legacy_version
 *   opaque random[32]
 *   uint8  session_id length (0..32), session_id
 *   uint16 cipher_suites length (2.., even), cipher_suites
 *   uint8  compression_methods length (1..), compression_methods
 *   uint16 extensions length, then repeated { uint16 type, uint16 length, data }
 * The extensions block may be absent altogether in a TLS 1.2 hello; if present it must fill the
 * rest of the message exactly.
 */
ParseStatus parse_client_hello_body(const uint8_t* p, size_t n, ClientHelloInfo& out, const char*& why) noexcept {
    out = ClientHelloInfo{};
    Reader r(p, n);
    Reader v(nullptr, 0);
    if (!r.u16(out.legacy_version)) return why = "legacy_version truncated", ParseStatus::Malformed;
    if (!r.skip(32)) return why = "random truncated", ParseStatus::Malformed;
    if (!r.vec8(v) || v.left() > 32) return why = "session_id", ParseStatus::Malformed;
    if (!r.vec16(v) || v.left() < 2 || v.left() % 2 != 0) return why = "cipher_suites", ParseStatus::Malformed;
    if (!r.vec8(v) || v.empty()) return why = "compression_methods", ParseStatus::Malformed;
    if (r.empty()) return ParseStatus::Done;

    Reader exts(nullptr, 0);
    if (!r.vec16(exts) || !r.empty()) return why = "extensions length", ParseStatus::Malformed;
    // Duplicate extensions are forbidden (RFC 8446 4.2). A small seen-list is enough: a hello
    // carries a few dozen extensions at most, and the byte cap bounds the loop anyway.
    std::vector<uint16_t> seen;
    while (!exts.empty()) {
        uint16_t type;
        Reader body(nullptr, 0);
        if (!exts.u16(type) || !exts.vec16(body)) return why = "extension overruns its block", ParseStatus::Malformed;
        if (std::find(seen.begin(), seen.end(), type) != seen.end())
            return why = "duplicate extension", ParseStatus::Malformed;
        seen.push_back(type);
        bool ok = true;
        if (type == kExtServerName)
            ok = parse_server_name(body, out, why);
        else if (type == kExtAlpn)
            ok = parse_alpn(body, out, why);
        else if (type == kExtSupportedVersions)
            ok = parse_supported_versions(body, out, why);
        if (!ok) return ParseStatus::Malformed;
    }
    return ParseStatus::Done;
}

ParseStatus ClientHelloParser::fail(ParseStatus s, const char* why) {
    status_ = s;
    why_ = why;
    return s;
}

/*
 * Record layer (RFC 8446 5.1):
 *   uint8  type (22 = handshake)
 *   uint16 legacy_record_version (0x03XX)
 *   uint16 length (1..2^14)
 *   opaque fragment[length]
 * Handshake layer: uint8 msg_type (1 = client_hello), uint24 length, body. A handshake message
 * may span any number of records, so we join record payloads before reading it.
 *
 * Every decision is taken at a fixed byte of the stream, never at the end of whatever chunk
 * arrived, so the verdict depends on the bytes alone and not on how they were cut into reads:
 * we consume only the bytes the hello needs, and check the cap before each byte we take.
 */
ParseStatus ClientHelloParser::feed(const uint8_t* data, size_t len) {
    while (status_ == ParseStatus::NeedMore && len > 0) {
        if (consumed_ >= max_bytes_) return fail(ParseStatus::TooLarge, "ClientHello exceeds byte cap");
        size_t cap_left = max_bytes_ - consumed_;
        if (!in_record_) {
            size_t take = std::min({len, sizeof rec_hdr_ - rec_hdr_len_, cap_left});
            // Judge TLS-ness as early as the bytes allow, so plain HTTP or an SSLv2 hello is
            // recognised from its first byte instead of waiting for five.
            for (size_t i = 0; i < take; ++i) {
                size_t at = rec_hdr_len_ + i;
                uint8_t b = data[i];
                // Only the very first record decides NotTls; later ones are TLS framing gone wrong.
                if (at == 0 && b != kContentHandshake)
                    return first_record_ ? fail(ParseStatus::NotTls, "first byte is not a TLS handshake record")
                                         : fail(ParseStatus::Malformed, "non-handshake record inside ClientHello");
                if (at == 1 && b != 0x03)
                    return first_record_ ? fail(ParseStatus::NotTls, "record version is not 3.x")
                                         : fail(ParseStatus::Malformed, "bad record version");
            }
            std::copy(data, data + take, rec_hdr_ + rec_hdr_len_);
            rec_hdr_len_ += take;
            data += take;
            len -= take;
            consumed_ += take;
            if (rec_hdr_len_ < sizeof rec_hdr_) {
                if (consumed_ >= max_bytes_) return fail(ParseStatus::TooLarge, "ClientHello exceeds byte cap");
                continue;
            }
            rec_remaining_ = static_cast<size_t>(rec_hdr_[3] << 8 | rec_hdr_[4]);
            if (rec_remaining_ == 0) return fail(ParseStatus::Malformed, "empty handshake record");
            if (rec_remaining_ > kMaxRecordPayload) return fail(ParseStatus::Malformed, "record longer than 2^14");
            in_record_ = true;
            first_record_ = false;
            rec_hdr_len_ = 0;
            if (consumed_ >= max_bytes_) return fail(ParseStatus::TooLarge, "ClientHello exceeds byte cap");
            continue;
        }
        // Until the 4-byte handshake header is complete, take no more than it; afterwards, no
        // more than the message still needs. Bytes after the hello are not ours to judge.
        size_t need = hs_.size() < 4 ? 4 - hs_.size() : 4 + hs_body_len_ - hs_.size();
        size_t take = std::min({len, rec_remaining_, need, cap_left});
        ParseStatus s = on_record_payload(data, take);
        data += take;
        len -= take;
        consumed_ += take;
        rec_remaining_ -= take;
        if (rec_remaining_ == 0) in_record_ = false;
        if (s != ParseStatus::NeedMore) {
            status_ = s;
            return s;
        }
        // Unfinished with the cap used up: no later byte can make it fit.
        if (consumed_ >= max_bytes_) return fail(ParseStatus::TooLarge, "ClientHello exceeds byte cap");
    }
    return status_;
}

ParseStatus ClientHelloParser::on_record_payload(const uint8_t* p, size_t n) {
    hs_.insert(hs_.end(), p, p + n);
    if (hs_[0] != kHandshakeClientHello)
        return fail(ParseStatus::Malformed, "first handshake message is not ClientHello");
    if (hs_.size() < 4) return ParseStatus::NeedMore;
    if (hs_.size() == 4 && hs_body_len_ == 0) {
        hs_body_len_ = static_cast<size_t>(hs_[1]) << 16 | static_cast<size_t>(hs_[2]) << 8 | hs_[3];
        // The whole message must fit under the cap together with the stream bytes already
        // taken (record headers included): decide now, at this byte, rather than later.
        if (consumed_ + n + hs_body_len_ > max_bytes_)
            return fail(ParseStatus::TooLarge, "ClientHello length exceeds byte cap");
        // Now that the size is known and under the cap, one allocation for the whole message
        // rather than a doubling per record or read.
        hs_.reserve(4 + hs_body_len_);
    }
    if (hs_.size() < 4 + hs_body_len_) return ParseStatus::NeedMore;
    const char* why = "";
    ParseStatus s = parse_client_hello_body(hs_.data() + 4, hs_body_len_, info_, why);
    if (s != ParseStatus::Done) return fail(s, why);
    return ParseStatus::Done;
}

}  // namespace sniroute::tls

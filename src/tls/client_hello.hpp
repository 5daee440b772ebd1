// Incremental TLS ClientHello parser: pure code over bytes, no I/O.
//
// The proxy feeds it whatever arrived from the socket; the parser answers NeedMore until it has
// seen one whole ClientHello handshake message, however that message was cut into TLS records
// and however the records were cut into reads. It keeps no pointer into the caller's buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sniroute::tls {

enum class ParseStatus {
    NeedMore,   // everything so far is a plausible prefix of a ClientHello
    Done,       // a whole ClientHello was parsed; info() is valid
    NotTls,     // the first bytes are not a TLS handshake record (plain HTTP, SSLv2, noise)
    Malformed,  // TLS framing, but lengths or fields are inconsistent
    TooLarge,   // more than max_bytes were needed without finishing the hello
};

const char* to_string(ParseStatus s) noexcept;

struct ClientHelloInfo {
    bool has_sni = false;
    std::string sni;  // validated host name, lower-case, no trailing dot
    std::vector<std::string> alpn;
    uint16_t legacy_version = 0;               // ClientHello.legacy_version (0x0303 for 1.2/1.3)
    std::vector<uint16_t> supported_versions;  // from extension 43, empty if absent
};

// Parses the body of a ClientHello handshake message (after the 4-byte handshake header).
// Pure and total: any input gives Done or Malformed, and `why` names the first problem found.
// It allocates (the name, the ALPN list); allocation failure ends the process, as everywhere.
ParseStatus parse_client_hello_body(const uint8_t* p, size_t n, ClientHelloInfo& out, const char*& why) noexcept;

class ClientHelloParser {
public:
    static constexpr size_t kDefaultMaxBytes = 16384;

    explicit ClientHelloParser(size_t max_bytes = kDefaultMaxBytes) : max_bytes_(max_bytes) {}

    // Feeds the next bytes of the stream. Once a final status (anything but NeedMore) is
    // returned, further calls return the same status and ignore their input.
    ParseStatus feed(const uint8_t* data, size_t len);

    ParseStatus status() const { return status_; }
    const ClientHelloInfo& info() const { return info_; }
    // A short reason for NotTls, Malformed and TooLarge, for logs.
    const char* error() const { return why_; }
    // Stream bytes consumed: on Done, exactly up to the last byte of the ClientHello message
    // (record headers included); bytes after it, even in the same record, are not counted.
    size_t consumed() const { return consumed_; }

private:
    ParseStatus fail(ParseStatus s, const char* why);
    ParseStatus on_record_payload(const uint8_t* p, size_t n);

    size_t max_bytes_;
    size_t consumed_ = 0;
    ParseStatus status_ = ParseStatus::NeedMore;
    const char* why_ = "";

    // Record layer: header bytes collected so far and payload bytes still due in this record.
    uint8_t rec_hdr_[5] = {};
    size_t rec_hdr_len_ = 0;
    size_t rec_remaining_ = 0;
    bool in_record_ = false;
    bool first_record_ = true;

    // Handshake layer: the concatenated payloads of the handshake records.
    std::vector<uint8_t> hs_;
    size_t hs_body_len_ = 0;  // from the handshake header, once its 4 bytes are in
    ClientHelloInfo info_;
};

}  // namespace sniroute::tls

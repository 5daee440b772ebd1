// The ACME client's HTTP/1.1 response reader: bytes in, a verdict out (README: parsers are
// pure functions over bytes). It is the protocol half of acme/https_client.cpp, which owns the
// transport (libuv, OpenSSL) and feeds it what TLS decrypts; it knows nothing of sockets, so
// it can be fed one byte at a time by tests and by tests/fuzz/acme_response_fuzz.cpp.
//
//   response = *( interim ) final
//   interim  = status-line (1xx but 101) *( field-line CRLF ) CRLF       skipped, bodiless
//   final    = status-line (200-599) *( field-line CRLF ) CRLF [ body ]
//   body     = Content-Length bytes | chunked | bytes until the connection closes (finish())
//
// llhttp does the framing; this class adds what llhttp leaves to its user: the status range,
// the 1xx rules, lower-cased names and the size bounds.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sniroute::acme {

struct HttpResponse {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;
    // The first header of that (lower-case) name, or "".
    std::string header(std::string_view name) const;
};

// The largest body the ACME client accepts: certificate chains and JSON documents are a few
// KiB; anything near this is a broken or hostile server.
constexpr size_t kMaxResponseBody = 1 << 20;

class ResponseReader {
public:
    enum class Status { NeedMore, Done, Error };

    // Bounds on what precedes the final body, interim responses included.
    static constexpr size_t kMaxHeaderBytes = 64 * 1024;
    static constexpr size_t kMaxHeaders = 256;  // field lines of one response
    // Interim (1xx) responses skipped before the final one; a server that sends more is broken.
    static constexpr int kMaxInterimResponses = 16;

    // `head_request`: the response answers a HEAD, so it has no body whatever its
    // Content-Length says (RFC 9110 9.3.2); nor has a 204 or a 304 (RFC 9112 6.3).
    explicit ResponseReader(bool head_request, size_t max_body = kMaxResponseBody);
    // llhttp keeps a pointer to this object: it cannot move.
    ResponseReader(const ResponseReader&) = delete;
    ResponseReader& operator=(const ResponseReader&) = delete;

    // Reads the next bytes of the stream. NeedMore until the final response is complete (Done)
    // or cannot be (Error); after that the verdict never changes and later bytes are ignored.
    Status feed(const char* data, size_t n);
    // The connection closed: completes a body that runs to the end of the stream, and makes
    // anything else still incomplete an Error.
    Status finish();

    Status status() const { return status_; }
    // Why the response was refused; "" unless status() is Error.
    const std::string& error() const { return error_; }
    // The response read so far; complete once status() is Done.
    const HttpResponse& response() const { return response_; }
    HttpResponse take() { return std::move(response_); }

private:
    static int on_header_field(llhttp_t* p, const char* at, size_t n) noexcept;
    static int on_header_value(llhttp_t* p, const char* at, size_t n) noexcept;
    static int on_header_field_complete(llhttp_t* p) noexcept;
    static int on_header_value_complete(llhttp_t* p) noexcept;
    static int on_headers_complete(llhttp_t* p) noexcept;
    static int on_body(llhttp_t* p, const char* at, size_t n) noexcept;
    static int on_message_complete(llhttp_t* p) noexcept;
    // Why a callback stopped the parse; feed() turns it into the error text, outside llhttp.
    enum class Refusal { None, TooLarge, TooManyHeaders, BadStatus, BadName };
    int refuse(Refusal why) noexcept {
        refusal_ = why;
        return -1;
    }
    std::string refusal_message() const;

    llhttp_t parser_{};
    llhttp_settings_t settings_{};
    HttpResponse response_;
    Status status_ = Status::NeedMore;
    std::string error_;
    Refusal refusal_ = Refusal::None;
    int bad_status_ = 0;  // the status refused, for Refusal::BadStatus
    size_t max_body_;
    size_t header_bytes_ = 0;  // all responses', interim ones included
    int interim_ = 0;          // 1xx responses skipped so far
    bool head_request_;
    bool in_field_ = false;
    bool field_complete_ = false;  // a name was read since the last value
    bool interim_status_ = false;  // the message being parsed is a 1xx response
    bool complete_ = false;
};

}  // namespace sniroute::acme

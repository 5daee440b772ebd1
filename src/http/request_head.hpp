// Incremental HTTP/1.x request-head reader over llhttp, for the port-80 front.
//
// It stops at the end of the head: sniroute decides on the head alone (answer, redirect or
// forward), and a forwarded request's body is relayed as raw bytes, never parsed.
//
// A head is only as safe to forward as its framing is unambiguous: a backend that reads lines
// or the body length differently from us can be handed a second, smuggled request. So besides
// llhttp, every byte of the head goes through a small line scanner of our own (scan_head), and
// the framing headers are checked here rather than trusted to llhttp's lenient 8.1 build:
//
//   head         = *( CRLF ) request-line *( header-line ) CRLF    ; CRLF only, never CR or LF alone
//   request-line = method SP request-target SP HTTP-version CRLF   ; one SP each, no control bytes
//   header-line  = field-name ":" OWS field-value OWS CRLF         ; no obs-fold (leading SP/HTAB),
//                                                                  ; no control bytes but HTAB
//   Transfer-Encoding: final coding "chunked", chunked only once, never with Content-Length,
//   never on HTTP/1.0 (RFC 9112 6.1, 6.3).
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <string>

namespace sniroute::http {

enum class HeadStatus { NeedMore, Done, Bad, TooLarge };

struct RequestHead {
    std::string method;  // "GET", "HEAD", ...
    std::string target;  // request-target as sent: "/path?query" (or absolute-form)
    std::string host;    // the Host header's value as sent (valid only when host_count == 1)
    int host_count = 0;
    unsigned http_major = 1;
    unsigned http_minor = 1;
    bool keep_alive = false;
    bool has_body = false;  // Content-Length > 0 or chunked (the only Transfer-Encoding accepted)
    size_t head_len = 0;    // bytes of the stream that make up this head, CRLFCRLF included
};

class RequestHeadParser {
public:
    explicit RequestHeadParser(size_t max_bytes);
    RequestHeadParser(const RequestHeadParser&) = delete;
    RequestHeadParser& operator=(const RequestHeadParser&) = delete;

    // Feeds the next bytes of the stream. After Done, head() describes the request and
    // head().head_len says where the head ended; call reset() before the next request.
    HeadStatus feed(const char* data, size_t len);
    void reset();

    const RequestHead& head() const { return head_; }
    const char* error() const { return why_; }

private:
    // llhttp's callbacks. llhttp is C, so none lets an exception out (http/llhttp_setup.hpp).
    static int on_url(llhttp_t* p, const char* at, size_t n) noexcept;
    static int on_header_field(llhttp_t* p, const char* at, size_t n) noexcept;
    static int on_header_value(llhttp_t* p, const char* at, size_t n) noexcept;
    static int on_header_value_complete(llhttp_t* p) noexcept;
    static int on_header_field_complete(llhttp_t* p) noexcept;
    static int on_headers_complete(llhttp_t* p) noexcept;

    // Runs the line scanner over the next `len` bytes of the stream. Returns how many of them
    // belong to the head (all of them unless the head ends inside); on a line that breaks the
    // grammar above it sets why_ and `bad`.
    size_t scan_head(const char* data, size_t len, bool& bad) noexcept;
    // The framing checks of the comment at the top, once every header has been read.
    const char* check_framing() const noexcept;

    llhttp_t parser_{};
    llhttp_settings_t settings_{};
    size_t max_bytes_;
    size_t fed_ = 0;
    HeadStatus status_ = HeadStatus::NeedMore;
    const char* why_ = "";
    RequestHead head_;
    // The header name being read: llhttp may deliver it in pieces across reads.
    std::string field_;
    bool field_done_ = false;
    bool in_host_ = false;
    bool in_te_ = false;
    int content_length_count_ = 0;
    int te_count_ = 0;
    std::string te_;  // every Transfer-Encoding value, joined with ","

    // Line scanner state; it survives between feeds, so a CR may end one read and its LF
    // start the next.
    bool scan_cr_ = false;          // the last byte was a CR
    bool scan_done_ = false;        // the empty line that ends the head was seen
    size_t scan_lines_ = 0;         // complete non-empty lines so far (the request line is 1)
    size_t scan_col_ = 0;           // bytes in the current line, CR excluded
    int scan_spaces_ = 0;           // SPs in the request line
    bool scan_prev_space_ = false;  // the last byte of the request line was SP
    size_t scan_end_ = 0;           // offset in the stream just past the head's final LF
};

}  // namespace sniroute::http

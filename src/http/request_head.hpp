// Incremental HTTP/1.x request-head reader over llhttp, for the port-80 front.
//
// It stops at the end of the head: sniroute decides on the head alone (answer, redirect or
// forward), and a forwarded request's body is relayed as raw bytes, never parsed.
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
    bool has_body = false;  // Content-Length > 0 or chunked
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
};

}  // namespace sniroute::http

#include "http/request_head.hpp"

#include <strings.h>

#include <exception>
#include <new>
#include <string_view>

#include "http/llhttp_setup.hpp"

namespace sniroute::http {

namespace {

RequestHeadParser* self(llhttp_t* p) noexcept { return static_cast<RequestHeadParser*>(p->data); }

// Runs the part of a callback that can throw, so that no exception reaches llhttp's C frames.
// Allocation failure ends the process, as it does everywhere in sniroute; any other exception
// ends the parse with HPE_USER, which feed() reports as Bad.
template <class F>
int guarded(llhttp_t* p, F&& body) noexcept {
    try {
        return body();
    } catch (const std::bad_alloc&) {
        std::terminate();
    } catch (...) {
        llhttp_set_error_reason(p, "internal error while reading the request head");
        return HPE_USER;
    }
}

// RFC 9110 5.6.2 tchar. llhttp as built by Debian is lenient about field names ("Host : x"
// passes), and RFC 9112 5.1 requires a 400 for whitespace before the colon: a name we and a
// backend could read differently is a request-smuggling vector.
bool is_token(const std::string& s) noexcept {
    if (s.empty()) return false;
    for (unsigned char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        for (char t : std::string_view("!#$%&'*+-.^_`|~")) ok = ok || c == static_cast<unsigned char>(t);
        if (!ok) return false;
    }
    return true;
}

}  // namespace

RequestHeadParser::RequestHeadParser(size_t max_bytes) : max_bytes_(max_bytes) { reset(); }

void RequestHeadParser::reset() {
    start_parser(parser_, settings_, HTTP_REQUEST,
                 {.on_url = on_url,
                  .on_header_field = on_header_field,
                  .on_header_value = on_header_value,
                  .on_headers_complete = on_headers_complete,
                  .on_header_field_complete = on_header_field_complete,
                  .on_header_value_complete = on_header_value_complete},
                 this);
    fed_ = 0;
    status_ = HeadStatus::NeedMore;
    why_ = "";
    head_ = RequestHead{};
    field_.clear();
    field_done_ = false;
    in_host_ = false;
}

// Data callbacks may run several times for one field when it spans reads: always append.
int RequestHeadParser::on_url(llhttp_t* p, const char* at, size_t n) noexcept {
    return guarded(p, [&] {
        self(p)->head_.target.append(at, n);
        return 0;
    });
}

int RequestHeadParser::on_header_field(llhttp_t* p, const char* at, size_t n) noexcept {
    return guarded(p, [&] {
        RequestHeadParser* s = self(p);
        if (s->field_done_) {
            s->field_.clear();
            s->field_done_ = false;
        }
        s->field_.append(at, n);
        return 0;
    });
}

int RequestHeadParser::on_header_field_complete(llhttp_t* p) noexcept {
    RequestHeadParser* s = self(p);
    s->field_done_ = true;
    if (!is_token(s->field_)) {
        llhttp_set_error_reason(p, "invalid character in header name");
        return HPE_USER;
    }
    s->in_host_ = s->field_.size() == 4 && strncasecmp(s->field_.data(), "host", 4) == 0;
    if (s->in_host_) ++s->head_.host_count;
    return 0;
}

int RequestHeadParser::on_header_value(llhttp_t* p, const char* at, size_t n) noexcept {
    return guarded(p, [&] {
        RequestHeadParser* s = self(p);
        if (s->in_host_ && s->head_.host_count == 1) s->head_.host.append(at, n);
        return 0;
    });
}

int RequestHeadParser::on_header_value_complete(llhttp_t* p) noexcept {
    self(p)->in_host_ = false;
    return 0;
}

int RequestHeadParser::on_headers_complete(llhttp_t* p) noexcept {
    return guarded(p, [&] {
        RequestHead& h = self(p)->head_;
        h.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
        h.http_major = p->http_major;
        h.http_minor = p->http_minor;
        h.keep_alive = llhttp_should_keep_alive(p) != 0;
        h.has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
        // Stop here: the head is all we decide on. llhttp_execute returns HPE_PAUSED with the
        // error position just past the head's final CRLF.
        return static_cast<int>(HPE_PAUSED);
    });
}

HeadStatus RequestHeadParser::feed(const char* data, size_t len) {
    if (status_ != HeadStatus::NeedMore) return status_;
    // Feed no more than the cap allows, so a head that never ends costs at most max_bytes.
    size_t room = max_bytes_ - fed_;
    size_t take = len < room ? len : room;
    llhttp_errno_t err = llhttp_execute(&parser_, data, take);
    if (err == HPE_PAUSED) {
        head_.head_len = fed_ + static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
        fed_ += take;
        return status_ = HeadStatus::Done;
    }
    fed_ += take;
    if (err != HPE_OK) {
        const char* reason = llhttp_get_error_reason(&parser_);
        why_ = reason && *reason ? reason : llhttp_errno_name(err);
        return status_ = HeadStatus::Bad;
    }
    if (fed_ >= max_bytes_) {
        why_ = "request head exceeds max_http_head";
        return status_ = HeadStatus::TooLarge;
    }
    return HeadStatus::NeedMore;
}

}  // namespace sniroute::http

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

bool is_control(unsigned char c) noexcept { return c < 0x20 || c == 0x7f; }

bool equals_ci(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
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
    in_te_ = false;
    content_length_count_ = 0;
    te_count_ = 0;
    te_.clear();
    scan_cr_ = false;
    scan_done_ = false;
    scan_lines_ = 0;
    scan_col_ = 0;
    scan_spaces_ = 0;
    scan_prev_space_ = false;
    scan_end_ = 0;
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
    s->in_host_ = equals_ci(s->field_, "host");
    if (s->in_host_) ++s->head_.host_count;
    if (equals_ci(s->field_, "content-length")) ++s->content_length_count_;
    s->in_te_ = equals_ci(s->field_, "transfer-encoding");
    if (s->in_te_) {
        // Several Transfer-Encoding lines make one list (RFC 9110 5.3).
        if (s->te_count_++ > 0) {
            return guarded(p, [&] {
                s->te_ += ',';
                return 0;
            });
        }
    }
    return 0;
}

int RequestHeadParser::on_header_value(llhttp_t* p, const char* at, size_t n) noexcept {
    return guarded(p, [&] {
        RequestHeadParser* s = self(p);
        if (s->in_host_ && s->head_.host_count == 1) s->head_.host.append(at, n);
        if (s->in_te_) s->te_.append(at, n);
        return 0;
    });
}

int RequestHeadParser::on_header_value_complete(llhttp_t* p) noexcept {
    self(p)->in_host_ = false;
    self(p)->in_te_ = false;
    return 0;
}

int RequestHeadParser::on_headers_complete(llhttp_t* p) noexcept {
    return guarded(p, [&] {
        RequestHeadParser* s = self(p);
        RequestHead& h = s->head_;
        h.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
        h.http_major = p->http_major;
        h.http_minor = p->http_minor;
        // llhttp checks a request's Transfer-Encoding only after this callback returns, and we
        // never let it get that far: the framing is checked here.
        if (const char* bad = s->check_framing()) {
            llhttp_set_error_reason(p, bad);
            return static_cast<int>(HPE_USER);
        }
        h.keep_alive = llhttp_should_keep_alive(p) != 0;
        h.has_body = s->te_count_ > 0 || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
        // Stop here: the head is all we decide on. llhttp_execute returns HPE_PAUSED with the
        // error position just past the head's final CRLF.
        return static_cast<int>(HPE_PAUSED);
    });
}

// RFC 9112 6.1 and 6.3: a request's body length comes from a Transfer-Encoding whose final
// coding is chunked, or else from Content-Length. Anything else in Transfer-Encoding leaves the
// length unknown to us and guessable to a backend ("xchunked" read as no body by us and as
// chunked by a lenient backend is a smuggled request), so it is refused, as is the pair of both
// headers and Transfer-Encoding on HTTP/1.0, which predates it.
const char* RequestHeadParser::check_framing() const noexcept {
    if (te_count_ == 0) return nullptr;
    if (content_length_count_ > 0) return "Transfer-Encoding together with Content-Length";
    if (head_.http_major == 1 && head_.http_minor == 0) return "Transfer-Encoding in an HTTP/1.0 request";
    std::string_view rest = te_;
    std::string_view last;
    bool chunked_not_last = false;
    for (;;) {
        size_t comma = rest.find(',');
        std::string_view coding = trim_ows(rest.substr(0, comma));
        if (!coding.empty()) {  // empty list elements do not count (RFC 9110 5.6.1)
            if (equals_ci(last, "chunked")) chunked_not_last = true;
            last = coding;
        }
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    if (chunked_not_last) return "Transfer-Encoding with chunked before its final coding";
    if (!equals_ci(last, "chunked")) return "Transfer-Encoding whose final coding is not chunked";
    return nullptr;
}

// The line scanner. llhttp 8.1 as Debian builds it (LLHTTP_STRICT_MODE 0) has leniencies that
// no llhttp_set_lenient_* call turns off; each is a way for the head we read to differ from the
// head a backend reads, and each is refused here, before llhttp sees the bytes:
//
//   - A CR not followed by LF ends a line: after the CR of the last header line llhttp takes
//     any byte as the LF, so "Host: a\r\n\rXGET /admin ..." ends the head at the X
//     (CVE-2023-30589; llhttp 9 has lenient_optional_lf_after_cr, off by default).
//   - An LF without CR ends the request line and the empty lines before it (llhttp 9:
//     lenient_optional_cr_before_lf).
//   - More than one SP between the parts of the request line.
//   - Control bytes (HTAB, FF, ...) in the request target.
//   - obs-fold: a header line that starts with SP or HTAB continues the previous value.
//
// The scanner ends the head at the first empty line after the request line, and feed()
// checks that llhttp ended it at the same byte.
size_t RequestHeadParser::scan_head(const char* data, size_t len, bool& bad) noexcept {
    auto fail = [&](size_t at, const char* why) {
        why_ = why;
        bad = true;
        return at;
    };
    for (size_t i = 0; i < len; ++i) {
        unsigned char c = static_cast<unsigned char>(data[i]);
        if (scan_cr_) {
            scan_cr_ = false;
            if (c != '\n') return fail(i, "CR not followed by LF in the request head");
            if (scan_col_ == 0) {
                if (scan_lines_ == 0) continue;  // an empty line before the request line (RFC 9112 2.2)
                scan_done_ = true;
                return i + 1;
            }
            if (scan_lines_ == 0 && scan_spaces_ != 2)
                return fail(i, "request line is not METHOD SP TARGET SP VERSION");
            ++scan_lines_;
            scan_col_ = 0;
            continue;
        }
        if (c == '\r') {
            scan_cr_ = true;
            continue;
        }
        if (c == '\n') return fail(i, "LF without CR in the request head");
        if (scan_lines_ == 0) {
            if (c == ' ') {
                if (scan_col_ == 0 || scan_prev_space_) return fail(i, "extra space in the request line");
                ++scan_spaces_;
            } else if (is_control(c)) {
                return fail(i, "control character in the request line");
            }
            scan_prev_space_ = c == ' ';
        } else {
            if (scan_col_ == 0 && (c == ' ' || c == '\t'))
                return fail(i, "header line starts with whitespace (obs-fold)");
            if (c != '\t' && is_control(c)) return fail(i, "control character in a header line");
        }
        ++scan_col_;
    }
    return len;
}

HeadStatus RequestHeadParser::feed(const char* data, size_t len) {
    if (status_ != HeadStatus::NeedMore) return status_;
    // Feed no more than the cap allows, so a head that never ends costs at most max_bytes.
    size_t room = max_bytes_ - fed_;
    size_t take = len < room ? len : room;
    bool bad = false;
    size_t head_bytes = scan_head(data, take, bad);
    if (bad) {
        fed_ += head_bytes;
        return status_ = HeadStatus::Bad;
    }
    if (scan_done_) scan_end_ = fed_ + head_bytes;
    // Only bytes of the head reach llhttp: what follows is a body or the next request.
    llhttp_errno_t err = llhttp_execute(&parser_, data, head_bytes);
    if (err == HPE_PAUSED) {
        head_.head_len = fed_ + static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
        fed_ += take;
        if (!scan_done_ || head_.head_len != scan_end_) {
            why_ = "request head ends in two places";  // a leniency the scanner does not know
            return status_ = HeadStatus::Bad;
        }
        return status_ = HeadStatus::Done;
    }
    fed_ += take;
    if (err != HPE_OK) {
        const char* reason = llhttp_get_error_reason(&parser_);
        why_ = reason && *reason ? reason : llhttp_errno_name(err);
        return status_ = HeadStatus::Bad;
    }
    if (scan_done_) {
        why_ = "request head ends in two places";
        return status_ = HeadStatus::Bad;
    }
    if (fed_ >= max_bytes_) {
        why_ = "request head exceeds max_http_head";
        return status_ = HeadStatus::TooLarge;
    }
    return HeadStatus::NeedMore;
}

}  // namespace sniroute::http

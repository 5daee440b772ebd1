#include "acme/response_reader.hpp"

#include <algorithm>
#include <cctype>

#include "http/llhttp_setup.hpp"

namespace sniroute::acme {

namespace {

// RFC 9110 5.6.2: token = 1*tchar.
bool is_token(std::string_view name) {
    constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
    return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || kSpecials.find(c) != std::string_view::npos;
    });
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (k == name) return v;
    return "";
}

ResponseReader::ResponseReader(bool head_request, size_t max_body) : max_body_(max_body), head_request_(head_request) {
    http::start_parser(parser_, settings_, HTTP_RESPONSE,
                       {.on_header_field = on_header_field,
                        .on_header_value = on_header_value,
                        .on_headers_complete = on_headers_complete,
                        .on_body = on_body,
                        .on_message_complete = on_message_complete,
                        .on_header_field_complete = on_header_field_complete,
                        .on_header_value_complete = on_header_value_complete},
                       this);
}

ResponseReader::Status ResponseReader::feed(const char* data, size_t n) {
    if (status_ != Status::NeedMore || n == 0) return status_;
    llhttp_errno_t err = llhttp_execute(&parser_, data, n);
    // on_message_complete pauses the parser, so err is HPE_PAUSED when the response is done;
    // whatever follows it (a pipelined answer, garbage) is not ours to read.
    if (complete_) {
        status_ = Status::Done;
    } else if (refusal_ != Refusal::None) {
        status_ = Status::Error;
        error_ = refusal_message();
    } else if (err != HPE_OK) {
        status_ = Status::Error;
        error_ = std::string("bad HTTP response: ") + llhttp_errno_name(err);
    }
    return status_;
}

ResponseReader::Status ResponseReader::finish() {
    if (status_ != Status::NeedMore) return status_;
    // A body without a length ends at EOF; llhttp_finish then completes the message (its return
    // value is on_message_complete's HPE_PAUSED, so complete_ is what counts).
    llhttp_finish(&parser_);
    if (complete_) {
        status_ = Status::Done;
    } else {
        status_ = Status::Error;
        error_ = "connection closed before a complete response";
    }
    return status_;
}

std::string ResponseReader::refusal_message() const {
    std::string s = std::to_string(bad_status_);
    switch (refusal_) {
        case Refusal::BadName: return "bad HTTP response: a header field name that is not a token";
        case Refusal::TooManyHeaders:
            return "HTTP response has more than " + std::to_string(kMaxHeaders) + " header fields";
        case Refusal::BadStatus:
            if (bad_status_ == 101) return "unexpected HTTP status 101 Switching Protocols: no upgrade was asked for";
            if (bad_status_ >= 100 && bad_status_ < 200)
                return "more than " + std::to_string(kMaxInterimResponses) + " interim (1xx) responses, the last " + s;
            return "bad HTTP status " + s + " (not 100-599)";
        case Refusal::TooLarge:
        case Refusal::None: break;
    }
    return "HTTP response too large";
}

// llhttp is C: these callbacks must not throw through it. An allocation failure ends the parse
// with HPE_USER, which feed() reports as a bad response.
int ResponseReader::on_header_field(llhttp_t* p, const char* at, size_t n) noexcept {
    auto* r = static_cast<ResponseReader*>(p->data);
    r->header_bytes_ += n;
    if (r->header_bytes_ > kMaxHeaderBytes) return r->refuse(Refusal::TooLarge);
    try {
        auto& headers = r->response_.headers;
        if (!r->in_field_) {
            if (headers.size() >= kMaxHeaders) return r->refuse(Refusal::TooManyHeaders);
            headers.emplace_back();
        }
        r->in_field_ = true;
        for (size_t i = 0; i < n; ++i)
            headers.back().first.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(at[i]))));
    } catch (...) {
        return -1;
    }
    return 0;
}

int ResponseReader::on_header_value(llhttp_t* p, const char* at, size_t n) noexcept {
    auto* r = static_cast<ResponseReader*>(p->data);
    r->header_bytes_ += n;
    r->in_field_ = false;
    if (r->header_bytes_ > kMaxHeaderBytes) return r->refuse(Refusal::TooLarge);
    try {
        if (!r->response_.headers.empty()) r->response_.headers.back().second.append(at, n);
    } catch (...) {
        return -1;
    }
    return 0;
}

// Debian's llhttp takes field names that are not tokens: an empty one (": value") and one
// with whitespace before the colon ("Content-Length : 5"), both found by acme_response_fuzz.
// RFC 9110 5.1 makes a field name a token and RFC 9112 5.1 allows no whitespace before the
// colon; a name llhttp and another parser would read differently is the classic way to make
// them disagree on the framing, so such a response is refused. A value must also follow a name
// of its own, or it would have been appended to the previous field's value.
int ResponseReader::on_header_field_complete(llhttp_t* p) noexcept {
    auto* r = static_cast<ResponseReader*>(p->data);
    if (r->response_.headers.empty() || !is_token(r->response_.headers.back().first))
        return r->refuse(Refusal::BadName);
    r->field_complete_ = true;
    return 0;
}

int ResponseReader::on_header_value_complete(llhttp_t* p) noexcept {
    auto* r = static_cast<ResponseReader*>(p->data);
    bool named = r->field_complete_;
    r->field_complete_ = false;
    return named ? 0 : r->refuse(Refusal::BadName);
}

// llhttp 8 takes any status from 0 to 999, and parses a 1xx response as a message of its own,
// bodiless unless it carries a Content-Length (which llhttp would then read), after which it
// goes on to the next message. RFC 9110 15 defines 100-599 only, so anything else is a broken
// server, not a success. Of the 1xx: 15.2 says a client "MUST be able to parse one or more 1xx
// responses received prior to a final response, even if the client does not expect one" and
// may ignore them, so 100 Continue, 102, 103 Early Hints (which a CDN in front of a CA may
// send) and unassigned ones are skipped, bodiless. 101 Switching Protocols is refused: we asked
// for no upgrade (RFC 9110 7.8), and the bytes after it would not be HTTP.
int ResponseReader::on_headers_complete(llhttp_t* p) noexcept {
    auto* r = static_cast<ResponseReader*>(p->data);
    int status = p->status_code;
    if (status < 100 || status > 599 || status == 101 || (status < 200 && r->interim_ >= kMaxInterimResponses)) {
        r->bad_status_ = status;
        return r->refuse(Refusal::BadStatus);  // ends the parse with HPE_CB_HEADERS_COMPLETE
    }
    if (status < 200) {
        r->interim_status_ = true;
        return 1;  // no body
    }
    // RFC 9112 6.3: a response to HEAD, and a 204 or 304, ends with its header section whatever
    // its Content-Length says. llhttp 8 skips the body of neither (found by acme_response_fuzz:
    // it read the next bytes of the stream as a 204's content).
    return r->head_request_ || status == 204 || status == 304 ? 1 : 0;
}

int ResponseReader::on_body(llhttp_t* p, const char* at, size_t n) noexcept {
    auto* r = static_cast<ResponseReader*>(p->data);
    if (r->response_.body.size() + n > r->max_body_) return r->refuse(Refusal::TooLarge);
    try {
        r->response_.body.append(at, n);
    } catch (...) {
        return -1;
    }
    return 0;
}

int ResponseReader::on_message_complete(llhttp_t* p) noexcept {
    auto* r = static_cast<ResponseReader*>(p->data);
    if (r->interim_status_) {
        // An interim response: forget its headers and let llhttp parse the next message.
        r->interim_status_ = false;
        r->in_field_ = false;
        r->field_complete_ = false;
        ++r->interim_;
        r->response_.headers.clear();
        return 0;
    }
    r->complete_ = true;
    r->response_.status = p->status_code;
    return HPE_PAUSED;
}

}  // namespace sniroute::acme

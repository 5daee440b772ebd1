// libFuzzer target for the ACME client's HTTP/1.1 response reader (acme/response_reader.hpp).
//
// The input is the byte stream a CA's server sends. It is read as the answer to a GET and, more
// briefly, to a HEAD, each time whole and cut at sampled offsets (the end of the status line and
// of the head, offsets drawn from the input, irregular reads; byte by byte when short), and then
// the connection is closed (finish()). What must hold:
//   - every cut gives the same verdict, error text and response, before and after the close;
//   - NeedMore never survives the close; Done and Error never change; Error has a message;
//   - Done: a final status 200-599, header names lower-case tokens within the bounds, a body
//     within the limit, none for HEAD, 204 or 304, exactly Content-Length bytes when that
//     frames it;
//   - the response written back out with a Content-Length, or with its body in one chunk, reads
//     as the same response;
//   - a smaller body limit refuses exactly the bodies larger than it.
// A broken invariant aborts, which libFuzzer reports as a crash.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "acme/response_reader.hpp"

using namespace sniroute::acme;
using Status = ResponseReader::Status;

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail = "") {
    std::fprintf(stderr, "acme_response_fuzz: invariant broken: %s %s\n", what, detail.c_str());
    std::abort();
}

void require(bool ok, const char* what, const std::string& detail = "") {
    if (!ok) fail(what, detail);
}

const char* name(Status s) { return s == Status::Done ? "Done" : s == Status::Error ? "Error" : "NeedMore"; }

struct Verdict {
    Status status = Status::NeedMore;
    std::string error;
    HttpResponse response;
};

// What the reader says once all bytes are in (`open`) and once the connection closed.
struct Run {
    Verdict open, closed;
};

std::string describe(const Verdict& v) {
    return std::string(name(v.status)) + " status=" + std::to_string(v.response.status) +
           " body=" + std::to_string(v.response.body.size()) + " error=" + v.error;
}

// An Error's response is whatever was read before the parse stopped, and where llhttp stops
// within a read depends on the read, so only the verdict and its message must agree then.
bool same(const Verdict& a, const Verdict& b) {
    if (a.status != b.status || a.error != b.error) return false;
    return a.status == Status::Error ||
           (a.response.status == b.response.status && a.response.headers == b.response.headers &&
            a.response.body == b.response.body);
}

struct Options {
    bool head = false;
    size_t max_body = kMaxResponseBody;
};

// Feeds `wire` in reads of the sizes `next_read()` gives (at least 1), then closes.
template <class NextRead>
Run feed(std::string_view wire, const Options& o, NextRead next_read) {
    ResponseReader r(o.head, o.max_body);
    Status verdict = Status::NeedMore;
    for (size_t at = 0; at < wire.size();) {
        size_t n = std::min(std::max<size_t>(next_read(), 1), wire.size() - at);
        Status s = r.feed(wire.data() + at, n);
        require(s == r.status(), "feed() and status() disagree");
        if (verdict != Status::NeedMore) require(s == verdict, "a verdict changed");
        verdict = s;
        at += n;
    }
    Run run;
    run.open = {r.status(), r.error(), r.response()};
    r.finish();
    run.closed = {r.status(), r.error(), r.response()};
    return run;
}

Run feed_cuts(std::string_view wire, const Options& o, const std::vector<size_t>& reads) {
    size_t i = 0;
    return feed(wire, o, [&] { return i < reads.size() ? reads[i++] : wire.size(); });
}

bool is_tchar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view trim(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
}

// What holds for any one verdict.
void check_verdict(const Verdict& v, const Options& o) {
    if (v.status == Status::Error) require(!v.error.empty(), "an Error without a message");
    if (v.status != Status::Done) {
        if (v.status == Status::NeedMore) require(v.error.empty(), "NeedMore with a message", v.error);
        return;
    }
    const HttpResponse& r = v.response;
    require(v.error.empty(), "Done with a message", v.error);
    require(r.status >= 200 && r.status <= 599, "Done with a status that is not final", describe(v));
    require(r.body.size() <= o.max_body, "a body over the limit", describe(v));
    require(r.headers.size() <= ResponseReader::kMaxHeaders, "more header fields than the bound");
    size_t bytes = 0, content_lengths = 0, codings = 0;
    std::string_view length;
    for (const auto& [k, val] : r.headers) {
        require(!k.empty(), "an empty header name");
        for (char c : k) require(is_tchar(c), "a header name that is not a lower-case token", k);
        for (char c : val) require(c != '\r' && c != '\n' && c != '\0', "a header value with CR, LF or NUL", k);
        bytes += k.size() + val.size();
        if (k == "content-length") ++content_lengths, length = val;
        if (k == "transfer-encoding") ++codings;
    }
    require(bytes <= ResponseReader::kMaxHeaderBytes, "header bytes over the bound");
    bool bodiless = o.head || r.status == 204 || r.status == 304;
    if (bodiless) require(r.body.empty(), "a body where none may be", describe(v));
    if (content_lengths > 0 && codings == 0 && !bodiless) {
        require(content_lengths == 1, "Done with two Content-Length fields", describe(v));
        std::string_view digits = trim(length);
        require(!digits.empty() && digits.find_first_not_of("0123456789") == std::string_view::npos,
                "Done with a Content-Length that is not a number", std::string(length));
        require(digits.size() < 12 && std::stoull(std::string(digits)) == r.body.size(),
                "the body is not Content-Length bytes long", std::string(length) + " vs " + describe(v));
    }
}

void check_run(const Run& run, const Options& o) {
    check_verdict(run.open, o);
    check_verdict(run.closed, o);
    require(run.closed.status != Status::NeedMore, "NeedMore after the connection closed", describe(run.closed));
    if (run.open.status != Status::NeedMore) require(same(run.open, run.closed), "the close changed a verdict");
}

void check_same(const Run& want, const Run& got, const char* how) {
    if (!same(want.open, got.open))
        fail("two cuts disagree", std::string(how) + ": " + describe(want.open) + " vs " + describe(got.open));
    if (!same(want.closed, got.closed))
        fail("two cuts disagree after the close",
             std::string(how) + ": " + describe(want.closed) + " vs " + describe(got.closed));
}

// Whole, then sampled cuts; all must agree with the whole read.
Run check_cuts(std::string_view wire, const Options& o, uint32_t seed, bool all_plans) {
    const Run whole = feed(wire, o, [&] { return wire.size(); });
    check_run(whole, o);
    auto check = [&](const Run& r, const char* how) {
        check_run(r, o);
        check_same(whole, r, how);
    };
    if (wire.size() <= 64) check(feed(wire, o, [] { return size_t{1}; }), "bytewise");
    uint32_t x = 0x9e3779b9u ^ seed ^ static_cast<uint32_t>(wire.size() << 8);
    auto next = [&] {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        return x;
    };
    // The head's boundaries: inside and just after the status line's CRLF and the blank line.
    size_t line = wire.find("\r\n"), head = wire.find("\r\n\r\n");
    std::vector<size_t> boundaries;
    for (size_t b : {line, head})
        if (b != std::string_view::npos)
            for (size_t d : {1, 2, 3, 4}) boundaries.push_back(b + d);
    if (!boundaries.empty()) {
        size_t at = boundaries[next() % boundaries.size()];
        if (at < wire.size()) check(feed_cuts(wire, o, {at}), "a split at a head boundary");
    }
    if (wire.size() > 1) check(feed_cuts(wire, o, {1 + next() % (wire.size() - 1)}), "a split drawn from the input");
    if (!all_plans) return whole;
    std::vector<size_t> reads;
    for (size_t n = 0, at = 0; n < 16 && at < wire.size(); ++n) {
        reads.push_back(1 + next() % 64);
        at += reads.back();
    }
    check(feed_cuts(wire, o, reads), "irregular reads");
    return whole;
}

// The response written out again, framed by `chunked` or a Content-Length, must read as the
// same status, fields (but the framing ones) and body.
void check_rewritten(const Verdict& v, const Options& o, bool chunked) {
    const HttpResponse& r = v.response;
    std::string wire = "HTTP/1.1 " + std::to_string(r.status) + " R\r\n";
    std::vector<std::pair<std::string, std::string>> kept;
    for (const auto& h : r.headers)
        if (h.first != "content-length" && h.first != "transfer-encoding") kept.push_back(h);
    size_t bytes = 0;
    for (const auto& [k, val] : kept) {
        // A value keeps its inner bytes; leading and trailing whitespace is not part of it.
        if (trim(val).size() != val.size()) return;
        wire += k + ": " + val + "\r\n";
        bytes += k.size() + val.size();
    }
    if (kept.size() + 1 > ResponseReader::kMaxHeaders || bytes + 64 > ResponseReader::kMaxHeaderBytes) return;
    char size[32];
    if (chunked) {
        wire += "Transfer-Encoding: chunked\r\n\r\n";
        if (!r.body.empty()) {
            std::snprintf(size, sizeof size, "%zx\r\n", r.body.size());
            wire += size + r.body + "\r\n";
        }
        wire += "0\r\n\r\n";
    } else {
        wire += "Content-Length: " + std::to_string(r.body.size()) + "\r\n\r\n" + r.body;
    }
    Run again = feed(wire, o, [&] { return wire.size(); });
    require(again.open.status == Status::Done,
            chunked ? "the body in one chunk does not read" : "the body with a Content-Length does not read",
            describe(again.open));
    std::vector<std::pair<std::string, std::string>> got;
    for (const auto& h : again.open.response.headers)
        if (h.first != "content-length" && h.first != "transfer-encoding") got.push_back(h);
    require(again.open.response.status == r.status, "a rewritten response has another status");
    require(got == kept, "a rewritten response has other fields");
    require(again.open.response.body == r.body,
            chunked ? "the body in one chunk reads differently" : "the body with a Content-Length reads differently");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view wire(reinterpret_cast<const char*>(data), size);
    const uint8_t last = size ? data[size - 1] : 0;
    const Options get;
    Run run = check_cuts(wire, get, last, true);
    if (run.closed.status == Status::Done) {
        check_rewritten(run.closed, get, false);
        check_rewritten(run.closed, get, true);
        // A limit below or at the body's size, drawn from the input.
        Options small{false, size_t{last} % (run.closed.response.body.size() + 1)};
        Run limited = feed(wire, small, [&] { return wire.size(); });
        if (run.closed.response.body.size() <= small.max_body)
            require(same(limited.closed, run.closed), "a limit the body fits changed the response");
        else
            require(limited.closed.status == Status::Error && limited.closed.error == "HTTP response too large",
                    "a body over a smaller limit was not refused", describe(limited.closed));
    }
    const Options head{true, kMaxResponseBody};
    Run as_head = check_cuts(wire, head, last ^ 0x5a, false);
    if (as_head.closed.status == Status::Done) check_rewritten(as_head.closed, head, false);
    return 0;
}

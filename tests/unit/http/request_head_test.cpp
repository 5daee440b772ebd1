#include <doctest.h>

#include <string>

#include "http/request_head.hpp"

using sniroute::http::HeadStatus;
using sniroute::http::RequestHeadParser;

namespace {

// Feeds `text` split at `cut` (two feeds) and returns the final status.
HeadStatus feed_split(RequestHeadParser& p, const std::string& text, size_t cut) {
    HeadStatus st = p.feed(text.data(), cut);
    if (st != HeadStatus::NeedMore) return st;
    return p.feed(text.data() + cut, text.size() - cut);
}

}  // namespace

TEST_CASE("request head: every split offset gives the same head") {
    const std::string head =
        "GET /.well-known/acme-challenge/abc_DEF-123?x=1 HTTP/1.1\r\n"
        "User-Agent: test\r\n"
        "Host: Mail.Example.COM:80\r\n"
        "Accept: */*\r\n\r\n";
    const std::string next = "GET /second HTTP/1.1\r\nHost: a\r\n\r\n";
    const std::string stream = head + next;
    for (size_t cut = 0; cut <= stream.size(); ++cut) {
        CAPTURE(cut);
        RequestHeadParser p(8192);
        REQUIRE(feed_split(p, stream, cut) == HeadStatus::Done);
        CHECK(p.head().method == "GET");
        CHECK(p.head().target == "/.well-known/acme-challenge/abc_DEF-123?x=1");
        CHECK(p.head().host == "Mail.Example.COM:80");
        CHECK(p.head().host_count == 1);
        CHECK(p.head().keep_alive);
        CHECK_FALSE(p.head().has_body);
        CHECK(p.head().head_len == head.size());
    }
}

TEST_CASE("request head: one byte at a time") {
    const std::string head = "HEAD /x HTTP/1.0\r\nHost: a.test\r\n\r\n";
    RequestHeadParser p(8192);
    HeadStatus st = HeadStatus::NeedMore;
    for (size_t i = 0; i < head.size(); ++i) {
        REQUIRE(st == HeadStatus::NeedMore);
        st = p.feed(head.data() + i, 1);
    }
    CHECK(st == HeadStatus::Done);
    CHECK(p.head().method == "HEAD");
    CHECK(p.head().http_minor == 0);
    CHECK_FALSE(p.head().keep_alive);  // HTTP/1.0 without keep-alive
    CHECK(p.head().head_len == head.size());
}

TEST_CASE("request head: reset reads the next pipelined request") {
    const std::string a = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::string b = "GET /b HTTP/1.1\r\nHost: y\r\nConnection: close\r\n\r\n";
    std::string stream = a + b;
    RequestHeadParser p(8192);
    REQUIRE(p.feed(stream.data(), stream.size()) == HeadStatus::Done);
    CHECK(p.head().target == "/a");
    size_t used = p.head().head_len;
    CHECK(used == a.size());
    p.reset();
    REQUIRE(p.feed(stream.data() + used, stream.size() - used) == HeadStatus::Done);
    CHECK(p.head().target == "/b");
    CHECK(p.head().host == "y");
    CHECK_FALSE(p.head().keep_alive);
}

TEST_CASE("request head: bodies are noticed, not read") {
    RequestHeadParser p(8192);
    std::string post = "POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    REQUIRE(p.feed(post.data(), post.size()) == HeadStatus::Done);
    CHECK(p.head().has_body);
    CHECK(p.head().head_len == post.size() - 5);
    p.reset();
    std::string chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    REQUIRE(p.feed(chunked.data(), chunked.size()) == HeadStatus::Done);
    CHECK(p.head().has_body);
}

TEST_CASE("request head: several Host headers are counted") {
    RequestHeadParser p(8192);
    std::string h = "GET / HTTP/1.1\r\nHost: a\r\nhOsT: b\r\n\r\n";
    REQUIRE(p.feed(h.data(), h.size()) == HeadStatus::Done);
    CHECK(p.head().host_count == 2);
    CHECK(p.head().host == "a");
}

TEST_CASE("request head: malformed heads are Bad") {
    using namespace std::string_literals;  // ""s keeps embedded NULs in the length
    const std::string cases[] = {
        "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n"s,     // NUL in a header value
        "GET / HTTP/9.9\r\nHost: a\r\n\r\n"s,        // unknown version
        "G@T / HTTP/1.1\r\n\r\n"s,                   // bad method
        "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"s,  // space in a header name
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"s,
        "\x16\x03\x01\x00\x10"s,  // TLS on the http port
    };
    for (const auto& c : cases) {
        CAPTURE(c);
        RequestHeadParser p(8192);
        CHECK(p.feed(c.data(), c.size()) == HeadStatus::Bad);
        CHECK(std::string(p.error()).size() > 0);
    }
}

TEST_CASE("request head: the size cap gives TooLarge, also when split") {
    std::string big = "GET / HTTP/1.1\r\nHost: a\r\nX-Fill: " + std::string(2000, 'x') + "\r\n\r\n";
    RequestHeadParser p(1024);
    CHECK(p.feed(big.data(), big.size()) == HeadStatus::TooLarge);
    RequestHeadParser q(1024);
    HeadStatus st = HeadStatus::NeedMore;
    for (size_t off = 0; off < big.size() && st == HeadStatus::NeedMore; off += 100)
        st = q.feed(big.data() + off, std::min<size_t>(100, big.size() - off));
    CHECK(st == HeadStatus::TooLarge);
    // Exactly at the cap is still fine.
    std::string fit = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    RequestHeadParser r(fit.size());
    CHECK(r.feed(fit.data(), fit.size()) == HeadStatus::Done);
}

namespace {

// Feeds `text` one byte at a time; returns the first status that is not NeedMore.
HeadStatus feed_bytes(RequestHeadParser& p, const std::string& text) {
    HeadStatus st = HeadStatus::NeedMore;
    for (size_t i = 0; i < text.size() && st == HeadStatus::NeedMore; ++i) st = p.feed(text.data() + i, 1);
    return st;
}

// Every way of reading `text` (at once, split in two at every offset, byte by byte) gives
// `want`.
void check_every_split(const std::string& text, HeadStatus want) {
    for (size_t cut = 0; cut <= text.size(); ++cut) {
        CAPTURE(cut);
        RequestHeadParser p(8192);
        CHECK(feed_split(p, text, cut) == want);
    }
    RequestHeadParser p(8192);
    CHECK(feed_bytes(p, text) == want);
}

}  // namespace

TEST_CASE("request head: a bare CR never ends a line (CVE-2023-30589)") {
    using namespace std::string_literals;
    const std::string cases[] = {
        // Issue 11: llhttp 8.1 takes "\r" + any byte as the final CRLF, so the head ended at
        // the X and "GET /admin" was read as a second request.
        "GET /.well-known/acme-challenge/TOKEN HTTP/1.1\r\nHost: a\r\n\rXGET /admin HTTP/1.1\r\nHost: b\r\n\r\n"s,
        "GET / HTTP/1.1\r\nHost: a\r\n\r\x00"s,
        "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n"s,
        "GET / HTTP/1.1\rHost: a\r\n\r\n"s,          // in the request line
        "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"s,  // in a header line
        "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"s,      // in the target
        "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"s,      // before the request line
    };
    for (const auto& c : cases) {
        CAPTURE(c);
        check_every_split(c, HeadStatus::Bad);
    }
}

TEST_CASE("request head: a bare LF never ends a line") {
    using namespace std::string_literals;
    const std::string cases[] = {
        "GET / HTTP/1.1\nHost: a\r\n\r\n"s,  // llhttp 8.1 accepts this one
        "GET / HTTP/1.1\r\nHost: a\n\r\n"s,
        "GET / HTTP/1.1\r\nHost: a\r\n\n"s,
        "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"s,  // and this one
        "GET / HTTP/1.1\n\n"s,
    };
    for (const auto& c : cases) {
        CAPTURE(c);
        check_every_split(c, HeadStatus::Bad);
    }
}

TEST_CASE("request head: lenient request lines and obs-fold are Bad") {
    using namespace std::string_literals;
    const std::string cases[] = {
        "GET /x?y\x0c HTTP/1.1\r\nHost: a\r\n\r\n"s,  // control bytes in the target
        "GET /\t HTTP/1.1\r\nHost: a\r\n\r\n"s,
        "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n"s,
        "GET /\x01x HTTP/1.1\r\nHost: a\r\n\r\n"s,
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n"s,  // more than one SP
        "GET /  HTTP/1.1\r\nHost: a\r\n\r\n"s,
        " GET / HTTP/1.1\r\nHost: a\r\n\r\n"s,
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n"s,
        "GET / HTTP/1.1\r\nX: a\r\n b\r\nHost: a\r\n\r\n"s,  // obs-fold
        "GET / HTTP/1.1\r\nHost: a\r\n\tb\r\n\r\n"s,
        "GET / HTTP/1.1\r\n Host: a\r\n\r\n"s,  // whitespace before the first header
        "GET / HTTP/1.1\r\nHost: a\r\nX: \x1b[31m\r\n\r\n"s,
    };
    for (const auto& c : cases) {
        CAPTURE(c);
        check_every_split(c, HeadStatus::Bad);
    }
}

TEST_CASE("request head: strict CRLF heads still parse, empty lines before them too") {
    check_every_split("GET /a?b=c HTTP/1.1\r\nHost: a\r\nX-Tab:\tv\tw\r\n\r\n", HeadStatus::Done);
    const std::string lead = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
    check_every_split(lead, HeadStatus::Done);
    RequestHeadParser p(8192);
    REQUIRE(p.feed(lead.data(), lead.size()) == HeadStatus::Done);
    CHECK(p.head().head_len == lead.size() - 4);
    CHECK(p.head().target == "/");
}

TEST_CASE("request head: a CR at the end of one read and its LF at the start of the next") {
    const std::string a = "GET / HTTP/1.1\r";
    const std::string b = "\nHost: a\r";
    const std::string c = "\n\r";
    const std::string d = "\nGET /next HTTP/1.1\r\n\r\n";
    RequestHeadParser p(8192);
    REQUIRE(p.feed(a.data(), a.size()) == HeadStatus::NeedMore);
    REQUIRE(p.feed(b.data(), b.size()) == HeadStatus::NeedMore);
    REQUIRE(p.feed(c.data(), c.size()) == HeadStatus::NeedMore);
    REQUIRE(p.feed(d.data(), d.size()) == HeadStatus::Done);
    CHECK(p.head().head_len == a.size() + b.size() + c.size() + 1);
    RequestHeadParser q(8192);
    const std::string e = "\rX";
    REQUIRE(q.feed(a.data(), a.size() - 1) == HeadStatus::NeedMore);
    CHECK(q.feed(e.data(), e.size()) == HeadStatus::Bad);
}

TEST_CASE("request head: Transfer-Encoding must end in chunked, alone") {
    using namespace std::string_literals;
    const std::string bad[] = {
        // Issue 11: read as "no body", so the body was parsed as the next request.
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"s,
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"s,
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n"s,
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"s,
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"s,
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n"s,
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n"s,
        // Both framing headers, in either order and whatever the coding.
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"s,
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"s,
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: xchunked\r\n\r\n"s,
        // HTTP/1.0 has no Transfer-Encoding (RFC 9112 6.1).
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"s,
    };
    for (const auto& c : bad) {
        CAPTURE(c);
        check_every_split(c, HeadStatus::Bad);
    }
    const std::string good[] = {
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"s,
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n"s,
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"s,
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"s,
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip ,, chunked \r\n\r\n"s,
    };
    for (const auto& c : good) {
        CAPTURE(c);
        check_every_split(c, HeadStatus::Done);
        RequestHeadParser p(8192);
        REQUIRE(p.feed(c.data(), c.size()) == HeadStatus::Done);
        CHECK(p.head().has_body);
    }
}

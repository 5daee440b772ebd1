// The ACME client's response reader, without a socket: real-looking answers of Pebble and
// Let's Encrypt cut at every offset, then the refusals. The transport around it is tested in
// https_client_test.cpp, which drives the same cases through TLS.
#include <doctest.h>

#include <string>
#include <vector>

#include "acme/response_reader.hpp"

using sniroute::acme::HttpResponse;
using sniroute::acme::kMaxResponseBody;
using sniroute::acme::ResponseReader;
using Status = ResponseReader::Status;

namespace {

struct Outcome {
    Status status = Status::NeedMore;
    std::string error;
    HttpResponse response;
};

// Feeds `wire` in pieces ending at `cuts` (ascending offsets), then closes the stream if
// `eof`; returns what the reader said at the end.
Outcome read(const std::string& wire, const std::vector<size_t>& cuts, bool eof = true, bool head = false,
             size_t max_body = kMaxResponseBody) {
    ResponseReader r(head, max_body);
    size_t at = 0;
    for (size_t cut : cuts) {
        r.feed(wire.data() + at, cut - at);
        at = cut;
    }
    r.feed(wire.data() + at, wire.size() - at);
    if (eof) r.finish();
    return {r.status(), r.error(), r.take()};
}

Outcome read_whole(const std::string& wire, bool eof = true, bool head = false) { return read(wire, {}, eof, head); }

// After an Error, the response holds what was read before the parse stopped, which depends on
// where the reads ended; only the verdict and its message must agree then.
void check_same(const Outcome& a, const Outcome& b) {
    REQUIRE(a.status == b.status);
    CHECK(a.error == b.error);
    if (a.status == Status::Error) return;
    CHECK(a.response.status == b.response.status);
    CHECK(a.response.headers == b.response.headers);
    CHECK(a.response.body == b.response.body);
}

// Every split into two reads, and one byte at a time, must give the answer of one read.
void check_every_cut(const std::string& wire, bool eof = true, bool head = false) {
    Outcome whole = read_whole(wire, eof, head);
    for (size_t cut = 1; cut < wire.size(); ++cut) {
        CAPTURE(cut);
        check_same(whole, read(wire, {cut}, eof, head));
    }
    std::vector<size_t> bytewise;
    for (size_t i = 1; i < wire.size(); ++i) bytewise.push_back(i);
    check_same(whole, read(wire, bytewise, eof, head));
}

// Pebble's answer to GET /dir (Content-Length).
const std::string kDirectory =
    "HTTP/1.1 200 OK\r\n"
    "Cache-Control: public, max-age=0, no-cache\r\n"
    "Content-Type: application/json; charset=utf-8\r\n"
    "Date: Fri, 04 Dec 2026 20:00:00 GMT\r\n"
    "Content-Length: 157\r\n"
    "\r\n"
    "{\"keyChange\":\"https://localhost:14000/rollover-account-key\",\"newAccount\":\"https://localhost:14000/sign-me-"
    "up\",\"newNonce\":\"https://localhost:14000/nonce-plz\"}";

// Let's Encrypt's answer to a POST-as-GET of an order, chunked in two chunks and a trailer.
const std::string kChunkedOrder =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx\r\n"
    "Content-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Replay-Nonce: 4nBxkU8fFmFyQy5Lxd9GMqXLLGiMl0b2JZQb3N8h_oGbn0\r\n"
    "Link: <https://acme-v02.api.letsencrypt.org/directory>;rel=\"index\"\r\n"
    "\r\n"
    "1a\r\n{\"status\": \"ready\",     \"x\r\n"
    "7;ext=1\r\n\": 1} \n\r\n"
    "0\r\n"
    "X-Trailer: t\r\n"
    "\r\n";

// A certificate chain whose length is the end of the connection.
const std::string kCloseDelimited =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/pem-certificate-chain\r\n"
    "Connection: close\r\n"
    "\r\n"
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

// Interim answers before a 201 to newAccount.
const std::string kInterim =
    "HTTP/1.1 100 Continue\r\n\r\n"
    "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    "HTTP/1.1 201 Created\r\nLocation: https://localhost:14000/my-account/1\r\nContent-Length: 2\r\n\r\n{}";

}  // namespace

TEST_SUITE("acme.response_reader") {

TEST_CASE("Content-Length: status, lower-cased headers, body; every cut agrees") {
    Outcome o = read_whole(kDirectory, false);
    REQUIRE(o.status == Status::Done);
    CHECK(o.error.empty());
    CHECK(o.response.status == 200);
    CHECK(o.response.header("content-type") == "application/json; charset=utf-8");
    CHECK(o.response.header("Content-Type") == "");  // names are lower-cased, lookups exact
    CHECK(o.response.headers.size() == 4);
    CHECK(o.response.body.size() == 157);
    CHECK(o.response.body.ends_with("/nonce-plz\"}"));
    check_every_cut(kDirectory, false);
    check_every_cut(kDirectory, true);  // EOF after Done changes nothing
}

TEST_CASE("chunked: chunks, extensions and trailers; every cut agrees") {
    Outcome o = read_whole(kChunkedOrder, false);
    REQUIRE(o.status == Status::Done);
    CHECK(o.response.body == "{\"status\": \"ready\",     \"x\": 1} \n");
    CHECK(o.response.header("replay-nonce") == "4nBxkU8fFmFyQy5Lxd9GMqXLLGiMl0b2JZQb3N8h_oGbn0");
    check_every_cut(kChunkedOrder, false);
}

TEST_CASE("a body without a length ends at EOF, and only then") {
    Outcome open = read_whole(kCloseDelimited, false);
    CHECK(open.status == Status::NeedMore);
    Outcome o = read_whole(kCloseDelimited, true);
    REQUIRE(o.status == Status::Done);
    CHECK(o.response.body == "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    check_every_cut(kCloseDelimited, true);
}

TEST_CASE("interim responses are skipped with their headers; every cut agrees") {
    Outcome o = read_whole(kInterim, false);
    REQUIRE(o.status == Status::Done);
    CHECK(o.response.status == 201);
    CHECK(o.response.headers.size() == 2);
    CHECK(o.response.header("link") == "");
    CHECK(o.response.body == "{}");
    check_every_cut(kInterim, false);
}

TEST_CASE("HEAD: no body whatever Content-Length says; bytes after Done are ignored") {
    const std::string nonce = "HTTP/1.1 200 OK\r\nReplay-Nonce: n1\r\nContent-Length: 99\r\n\r\n";
    Outcome o = read_whole(nonce, false, true);
    REQUIRE(o.status == Status::Done);
    CHECK(o.response.header("replay-nonce") == "n1");
    CHECK(o.response.body.empty());
    check_every_cut(nonce, false, true);
    Outcome extra = read_whole(kDirectory + "garbage that is not HTTP\r\n\r\n", false);
    REQUIRE(extra.status == Status::Done);
    CHECK(extra.response.body.size() == 157);
}

TEST_CASE("refusals: each with its message, at every cut") {
    std::string many_interim;
    for (int i = 0; i < 17; ++i) many_interim += "HTTP/1.1 100 Continue\r\n\r\n";
    std::string many_headers = "HTTP/1.1 200 OK\r\n";
    for (size_t i = 0; i <= ResponseReader::kMaxHeaders; ++i) many_headers += "X: y\r\n";
    const struct {
        std::string wire;
        std::string error;
    } cases[] = {
        {"HTTP/1.1 600 Beyond\r\nContent-Length: 2\r\n\r\nok", "bad HTTP status 600 (not 100-599)"},
        {"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n", "bad HTTP status 99 (not 100-599)"},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
         "unexpected HTTP status 101 Switching Protocols: no upgrade was asked for"},
        {many_interim + "HTTP/1.1 200 OK\r\n\r\n", "more than 16 interim (1xx) responses, the last 100"},
        {many_headers + "\r\n", "HTTP response has more than 256 header fields"},
        {"HTTP/1.1 200 OK\r\nX: " + std::string(ResponseReader::kMaxHeaderBytes, 'v') + "\r\n\r\n",
         "HTTP response too large"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "connection closed before a complete response"},
        {"HTTP/1.1 100 Continue\r\n\r\n", "connection closed before a complete response"},
        {"", "connection closed before a complete response"},
        {"SPDY/9 banana\r\n\r\n", "bad HTTP response: HPE_INVALID_CONSTANT"},
        // Found by acme_response_fuzz: Debian's llhttp reads ": 11" as a field named "", and
        // "Replay-Nonce : n" as one named "replay-nonce " (it refuses "Content-Length : 2" itself).
        {"HTTP/1.1 200 OK\r\nA: b\r\n: 11\r\nContent-Length: 0\r\n\r\n",
         "bad HTTP response: a header field name that is not a token"},
        {"HTTP/1.1 103 Early Hints\r\n:x\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
         "bad HTTP response: a header field name that is not a token"},
        {"HTTP/1.1 200 OK\r\nReplay-Nonce : n\r\nContent-Length: 2\r\n\r\nok",
         "bad HTTP response: a header field name that is not a token"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX y: 1\r\n\r\n",
         "bad HTTP response: a header field name that is not a token"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
         "bad HTTP response: HPE_UNEXPECTED_CONTENT_LENGTH"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n0\r\n\r\n",
         "bad HTTP response: HPE_UNEXPECTED_CONTENT_LENGTH"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad HTTP response: HPE_INVALID_CHUNK_SIZE"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.wire.substr(0, 60));
        Outcome o = read_whole(c.wire);
        CHECK(o.status == Status::Error);
        CHECK(o.error == c.error);
        if (c.wire.size() < 4096) check_every_cut(c.wire);
    }
}

TEST_CASE("204 and 304 end with their head, whatever Content-Length says") {
    // Found by acme_response_fuzz: llhttp read the five bytes after a 204's head as its content.
    for (const char* head : {"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                             "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"}) {
        CAPTURE(head);
        const std::string wire = std::string(head) + "HTTP/";
        Outcome o = read_whole(wire, false);
        REQUIRE(o.status == Status::Done);
        CHECK(o.response.body.empty());
        CHECK(o.response.header("content-length") == "5");
        check_every_cut(wire, false);
    }
    // A 1xx's Content-Length gives it no body either: the final answer follows at once.
    Outcome o = read_whole(
        "HTTP/1.1 102 Processing\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\n"
        "Content-Length: 3\r\n\r\nyes",
        false);
    REQUIRE(o.status == Status::Done);
    CHECK(o.response.body == "yes");
}

TEST_CASE("an empty value is a value; its name still counts") {
    const std::string wire = "HTTP/1.1 204 No Content\r\nX-Empty:\r\nX-Spaces:   \r\nY: 1\r\n\r\n";
    Outcome o = read_whole(wire, false);
    REQUIRE(o.status == Status::Done);
    REQUIRE(o.response.headers.size() == 3);
    CHECK(o.response.headers[0] == std::pair<std::string, std::string>{"x-empty", ""});
    CHECK(o.response.header("y") == "1");
    check_every_cut(wire, false);
}

TEST_CASE("the body limit: exactly the limit is read, one byte more is refused") {
    const std::string body(100, 'b');
    const std::string cl = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + body;
    Outcome at = read(cl, {}, false, false, 100);
    REQUIRE(at.status == Status::Done);
    CHECK(at.response.body == body);
    Outcome over = read(cl, {}, false, false, 99);
    CHECK(over.status == Status::Error);
    CHECK(over.error == "HTTP response too large");
    // A chunked or close-delimited body is counted the same way, however it is cut.
    const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" + body + "\r\n0\r\n\r\n";
    for (size_t cut = 1; cut < chunked.size(); ++cut) {
        CAPTURE(cut);
        CHECK(read(chunked, {cut}, false, false, 99).status == Status::Error);
        CHECK(read(chunked, {cut}, false, false, 100).status == Status::Done);
    }
    const std::string to_eof = "HTTP/1.1 200 OK\r\n\r\n" + body;
    CHECK(read(to_eof, {30}, true, false, 99).error == "HTTP response too large");
    CHECK(read(to_eof, {30}, true, false, 100).response.body == body);
}

}  // TEST_SUITE("acme.response_reader")

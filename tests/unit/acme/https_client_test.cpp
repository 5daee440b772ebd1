// Fetch against a real TLS server on 127.0.0.1: the request as sent, responses framed by
// Content-Length, chunked coding or EOF, HEAD, certificate verification, connect failures,
// timeouts and cancellation. Every run ends with uv_loop_close() == 0.
#include <doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "acme/https_client.hpp"
#include "acme/store.hpp"
#include "acme_loop_util.hpp"
#include "acme_test_util.hpp"
#include "acme_tls_util.hpp"

using sniroute::acme::Canceller;
using sniroute::acme::Fetch;
using sniroute::acme::FetchError;
using sniroute::acme::HttpRequest;
using sniroute::acme::HttpResponse;
using sniroute::acme::Key;
using sniroute::acme::KeyType;
using sniroute::acme::Task;
using sniroute::acme::TlsClientContext;

namespace {

struct Outcome {
    HttpResponse response;
    std::string error;  // FetchError text, empty on success
};

Task<void> fetch_into(uv_loop_t* loop, SSL_CTX* ctx, HttpRequest req, uint64_t timeout_ms, Canceller* c, Outcome* out) {
    try {
        out->response = co_await Fetch(loop, ctx, std::move(req), timeout_ms, c);
    } catch (const FetchError& e) {
        out->error = e.what();
    }
}

// A CA-signed-looking setup: a self-signed certificate for `name`, trusted through ca_bundle.
struct Pki {
    acme_test::TempDir dir;
    Key key = Key::generate(KeyType::EcdsaP256);
    std::string cert_pem;
    std::string bundle;
    explicit Pki(const std::string& name) {
        acme_test::CertFields f;
        f.cn = name;
        f.dns = {name};
        cert_pem = acme_test::make_cert(key, f);
        bundle = dir / "ca.pem";
        std::string err;
        REQUIRE(sniroute::acme::write_file_atomic(bundle, cert_pem, 0644, err));
    }
};

Outcome fetch(const TlsClientContext& ctx, HttpRequest req, uint64_t timeout_ms = 5000, Canceller* c = nullptr) {
    // libuv writes with writev(2); like run_server, which the ACME client runs under, a peer
    // that has gone must be an EPIPE on that connection and not end the process.
    ::signal(SIGPIPE, SIG_IGN);
    Outcome out;
    CHECK_FALSE(acme_test::run_task([&](uv_loop_t* l) { return fetch_into(l, ctx.get(), req, timeout_ms, c, &out); }));
    return out;
}

std::string url(uint16_t port, const std::string& path = "/") {
    return "https://localhost:" + std::to_string(port) + path;
}

}  // namespace

TEST_SUITE("acme.https_client") {

TEST_CASE("GET: the request on the wire, and a Content-Length response with lower-cased headers") {
    Pki pki("localhost");
    acme_test::TlsTestServer server({pki.cert_pem, &pki.key, 0, 1, [](const std::string&) {
                                         return std::string(
                                             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                             "Replay-Nonce: abc-123\r\nContent-Length: 13\r\n\r\n"
                                             "{\"new\":\"x\"}\r\n");
                                     }});
    TlsClientContext ctx(pki.bundle);
    // "localhost" may resolve to ::1 first, where nobody listens: the next address is tried.
    Outcome o = fetch(ctx, {"GET", url(server.port(), "/dir?x=1"), "", "", "application/json"});
    CHECK(o.error == "");
    CHECK(o.response.status == 200);
    CHECK(o.response.body == "{\"new\":\"x\"}\r\n");
    CHECK(o.response.header("replay-nonce") == "abc-123");
    CHECK(o.response.header("content-type") == "application/json");
    CHECK(o.response.header("Replay-Nonce") == "");  // lookups take the lower-case name
    const std::string& req = server.last_request();
    CHECK(req.starts_with("GET /dir?x=1 HTTP/1.1\r\nHost: localhost:" + std::to_string(server.port()) + "\r\n"));
    CHECK(req.find("Accept: application/json\r\n") != std::string::npos);
    CHECK(req.find("Connection: close\r\n") != std::string::npos);
    CHECK(req.find("Content-Length") == std::string::npos);
}

TEST_CASE("POST: body and Content-Type sent; a chunked response is reassembled") {
    Pki pki("localhost");
    acme_test::TlsTestServer server({pki.cert_pem, &pki.key, 0, 1, [](const std::string&) {
                                         return std::string(
                                             "HTTP/1.1 201 Created\r\nLocation: https://x/acct/1\r\n"
                                             "Transfer-Encoding: chunked\r\n\r\n"
                                             "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n");
                                     }});
    TlsClientContext ctx(pki.bundle);
    Outcome o = fetch(ctx, {"POST", url(server.port(), "/new-acct"), "{\"a\":1}", "application/jose+json", ""});
    CHECK(o.error == "");
    CHECK(o.response.status == 201);
    CHECK(o.response.header("location") == "https://x/acct/1");
    CHECK(o.response.body == "hello, world");
    const std::string& req = server.last_request();
    CHECK(req.starts_with("POST /new-acct HTTP/1.1\r\n"));
    CHECK(req.find("Content-Type: application/jose+json\r\n") != std::string::npos);
    CHECK(req.find("Content-Length: 7\r\n") != std::string::npos);
    CHECK(req.ends_with("\r\n\r\n{\"a\":1}"));
}

TEST_CASE("HEAD ignores Content-Length; a body without length ends at EOF") {
    Pki pki("localhost");
    {
        acme_test::TlsTestServer server({pki.cert_pem, &pki.key, 0, 1, [](const std::string&) {
                                             return std::string(
                                                 "HTTP/1.1 200 OK\r\nReplay-Nonce: n1\r\nContent-Length: 99\r\n\r\n");
                                         }});
        TlsClientContext ctx(pki.bundle);
        Outcome o = fetch(ctx, {"HEAD", url(server.port(), "/nonce"), "", "", ""});
        CHECK(o.error == "");
        CHECK(o.response.status == 200);
        CHECK(o.response.header("replay-nonce") == "n1");
        CHECK(o.response.body.empty());
    }
    {
        acme_test::TlsTestServer server(
            {pki.cert_pem, &pki.key, 0, 1, [](const std::string&) {
                 return std::string("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n-----BEGIN CERTIFICATE-----\n");
             }});
        TlsClientContext ctx(pki.bundle);
        Outcome o = fetch(ctx, {"GET", url(server.port(), "/cert"), "", "", ""});
        CHECK(o.error == "");
        CHECK(o.response.body == "-----BEGIN CERTIFICATE-----\n");
    }
}

TEST_CASE("certificate verification: an untrusted or misnamed certificate fails") {
    Pki pki("localhost");
    Pki other("acme.example");
    {
        acme_test::TlsTestServer server(
            {pki.cert_pem, &pki.key, 0, 1, [](const std::string&) { return std::string(); }});
        TlsClientContext ctx(other.bundle);  // trusts another certificate only
        Outcome o = fetch(ctx, {"GET", url(server.port()), "", "", ""});
        CHECK(o.error.find("certificate verify failed") != std::string::npos);
    }
    {
        acme_test::TlsTestServer server(
            {other.cert_pem, &other.key, 0, 1, [](const std::string&) { return std::string(); }});
        TlsClientContext ctx(other.bundle);  // trusted, but issued for acme.example, not localhost
        Outcome o = fetch(ctx, {"GET", url(server.port()), "", "", ""});
        CHECK(o.error.find("certificate verify failed") != std::string::npos);
    }
    CHECK_THROWS_AS(TlsClientContext(pki.dir / "missing.pem"), std::runtime_error);
}

TEST_CASE("transport failures: bad URL, refused connection, silent server, cancellation") {
    Pki pki("localhost");
    TlsClientContext ctx(pki.bundle);
    Outcome o = fetch(ctx, {"GET", "http://localhost/", "", "", ""});
    CHECK(o.error == "not an https URL: http://localhost/");

    // A port nobody listens on, on every address localhost has.
    uint16_t port = acme_test::dead_port();
    o = fetch(ctx, {"GET", url(port), "", "", ""});
    // The message names the request and the address with its port.
    CHECK(o.error.starts_with("GET " + url(port) + ": connect to "));
    CHECK(o.error.find(":" + std::to_string(port) + ": ") != std::string::npos);

    // Accepted by the kernel, never answered: the timeout ends it.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    const std::string silent = "https://127.0.0.1:" + std::to_string(ntohs(sa.sin_port)) + "/";
    auto start = std::chrono::steady_clock::now();
    o = fetch(ctx, {"GET", silent, "", "", ""}, 200);
    CHECK(o.error.ends_with(": timed out"));
    CHECK(o.error.starts_with("GET https://"));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));

    Canceller c;
    Outcome oc;
    CHECK_FALSE(acme_test::run_task([&](uv_loop_t* l) {
        acme_test::after(l, 50, [&] { c.cancel(); });
        return fetch_into(l, ctx.get(), {"GET", silent, "", "", ""}, 60'000, &c, &oc);
    }));
    CHECK(oc.error == "cancelled");
    o = fetch(ctx, {"GET", silent, "", "", ""}, 60'000, &c);  // already cancelled
    CHECK(o.error == "cancelled");
    ::close(fd);
}

TEST_CASE("a malformed or truncated response is an error, not a hang") {
    Pki pki("localhost");
    TlsClientContext ctx(pki.bundle);
    {
        acme_test::TlsTestServer server({pki.cert_pem, &pki.key, 0, 1, [](const std::string&) {
                                             return std::string("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
                                         }});
        Outcome o = fetch(ctx, {"GET", url(server.port()), "", "", ""});
        CHECK(o.error.ends_with("/: connection closed before a complete response"));
    }
    {
        acme_test::TlsTestServer server(
            {pki.cert_pem, &pki.key, 0, 1, [](const std::string&) { return std::string("SPDY/9 banana\r\n\r\n"); }});
        Outcome o = fetch(ctx, {"GET", url(server.port()), "", "", ""});
        CHECK(o.error.find(": bad HTTP response: ") != std::string::npos);
    }
}

// One connection to a server that answers `response`, whatever the request.
Outcome fetch_answer(const std::string& response, const std::string& method = "GET") {
    Pki pki("localhost");
    acme_test::TlsTestServer server({pki.cert_pem, &pki.key, 0, 1, [&](const std::string&) { return response; }});
    TlsClientContext ctx(pki.bundle);
    return fetch(ctx, {method, url(server.port(), "/acct"), "", "", ""});
}

TEST_CASE("a status outside 100-599 is a transport error naming the request and the status") {
    // llhttp parses any status from 0 to 999; RFC 9110 15 defines 100-599 only.
    const std::pair<const char*, int> cases[] = {
        {"HTTP/1.1 600 Beyond\r\nContent-Length: 2\r\n\r\nok", 600},
        {"HTTP/1.1 999 Nine\r\nContent-Length: 0\r\n\r\n", 999},
        {"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n", 99},
        {"HTTP/1.1 0 Zero\r\nContent-Length: 0\r\n\r\n", 0},
    };
    for (const auto& c : cases) {
        // Not a structured binding: clang 14 cannot capture one in CAPTURE's lambda.
        const char* response = c.first;
        const int status = c.second;
        CAPTURE(response);
        Outcome o = fetch_answer(response);
        // "GET https://localhost:PORT/acct: bad HTTP status 600 (not 100-599)"
        CHECK(o.error.starts_with("GET https://localhost:"));
        CHECK(o.error.ends_with("/acct: bad HTTP status " + std::to_string(status) + " (not 100-599)"));
    }
    // The edges are accepted: 599 is a server error the ACME client reads as a problem document.
    Outcome o = fetch_answer("HTTP/1.1 599 Edge\r\nContent-Length: 2\r\n\r\n{}");
    CHECK(o.error == "");
    CHECK(o.response.status == 599);
}

TEST_CASE("1xx: interim responses are skipped, 101 is refused, a lone 100 is incomplete") {
    {
        // 100 Continue and 103 Early Hints (with a header of its own) before the final answer:
        // the caller sees the final status, headers and body only.
        Outcome o = fetch_answer(
            "HTTP/1.1 100 Continue\r\n\r\n"
            "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
            "HTTP/1.1 201 Created\r\nLocation: https://x/acct/1\r\nContent-Length: 2\r\n\r\n{}",
            "POST");
        CHECK(o.error == "");
        CHECK(o.response.status == 201);
        CHECK(o.response.body == "{}");
        CHECK(o.response.header("location") == "https://x/acct/1");
        CHECK(o.response.header("link") == "");
        CHECK(o.response.headers.size() == 2);
    }
    {
        // An interim response's Content-Length does not give it a body.
        Outcome o = fetch_answer(
            "HTTP/1.1 102 Processing\r\nContent-Length: 5\r\n\r\n"
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes");
        CHECK(o.error == "");
        CHECK(o.response.status == 200);
        CHECK(o.response.body == "yes");
    }
    {
        Outcome o =
            fetch_answer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
        CHECK(o.error.ends_with("/acct: unexpected HTTP status 101 Switching Protocols: no upgrade was asked for"));
        o = fetch_answer("HTTP/1.1 101 Switching Protocols\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        CHECK(o.error.ends_with("/acct: unexpected HTTP status 101 Switching Protocols: no upgrade was asked for"));
    }
    {
        Outcome o = fetch_answer("HTTP/1.1 100 Continue\r\n\r\n");
        CHECK(o.error.ends_with("/acct: connection closed before a complete response"));
    }
    {
        std::string many;
        for (int i = 0; i < 17; ++i) many += "HTTP/1.1 100 Continue\r\n\r\n";
        Outcome o = fetch_answer(many + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        CHECK(o.error.ends_with("/acct: more than 16 interim (1xx) responses, the last 100"));
    }
}

}  // TEST_SUITE("acme.https_client")

// The inspectors' verdicts, fed one byte at a time as a slow client would send them: NeedMore
// for every proper prefix, and the final verdict at the last byte needed, never before.
#include <doctest.h>

#include <string>

#include "../tls/hello_builder.hpp"
#include "config/config.hpp"
#include "proxy/inspector.hpp"
#include "proxy/proxy_protocol.hpp"
#include "proxy_test_util.hpp"

using namespace sniroute;
using proxy::Outcome;
using proxy::Verdict;
using proxy::test::addr;

namespace {

// Shows `in` the stream one more byte at a time, as inspect() sees a growing buffer. Returns
// the first verdict that is not NeedMore, and in `at` how many bytes it took.
Verdict feed_bytewise(proxy::Inspector& in, const std::string& stream, size_t& at) {
    for (at = 1; at <= stream.size(); ++at) {
        Verdict v = in.inspect(std::string_view(stream).substr(0, at));
        if (v.kind != Verdict::Kind::NeedMore) return v;
    }
    return Verdict::need_more();
}

std::string str(const tls::test::Bytes& b) { return std::string(b.begin(), b.end()); }

const char* kConfig = R"(
[[listeners]]
name = "web"
bind = ["127.0.0.1:1080"]
protocol = "http"
default_backend = "site"

[acme]
account_thumbprint = "THUMB"

[backends.site]
servers = ["127.0.0.1:1"]
)";

const route::Snapshot& snapshot() {
    static route::Snapshot snap = [] {
        auto r = config::load_string(kConfig, "inspector_test.toml");
        REQUIRE(r.config);
        return route::Snapshot(std::move(*r.config));
    }();
    return snap;
}

}  // namespace

TEST_SUITE("inspector") {

TEST_CASE("PROXY v1 header byte by byte: NeedMore, then Next with its length and addresses") {
    std::string header;
    proxy::append_v1(header, addr("192.0.2.1:5555"), addr("198.51.100.2:443"));
    std::string stream = header + "\x16\x03\x01";  // the client's own bytes follow
    auto in = proxy::make_proxy_header_inspector();
    size_t at = 0;
    Verdict v = feed_bytewise(*in, stream, at);
    REQUIRE(v.kind == Verdict::Kind::Next);
    CHECK(at == header.size());
    CHECK(v.consumed == header.size());
    REQUIRE(v.peer != nullptr);
    CHECK(v.peer->src.to_string() == "192.0.2.1:5555");
    CHECK(v.peer->dst.to_string() == "198.51.100.2:443");
}

TEST_CASE("PROXY v2 header byte by byte") {
    std::string header;
    proxy::append_v2(header, addr("[2001:db8::1]:5555"), addr("[2001:db8::2]:993"));
    auto in = proxy::make_proxy_header_inspector();
    size_t at = 0;
    Verdict v = feed_bytewise(*in, header + "rest", at);
    REQUIRE(v.kind == Verdict::Kind::Next);
    CHECK(at == header.size());
    CHECK(v.consumed == header.size());
    REQUIRE(v.peer != nullptr);
    CHECK(v.peer->src.to_string() == "[2001:db8::1]:5555");
}

TEST_CASE("PROXY header: a stream that is none is refused at its first byte; a cut one is truncated") {
    auto in = proxy::make_proxy_header_inspector();
    size_t at = 0;
    Verdict v = feed_bytewise(*in, "GET / HTTP/1.1\r\n", at);
    CHECK(v.kind == Verdict::Kind::Refuse);
    CHECK(v.outcome == Outcome::BadProxyHeader);
    CHECK(at == 1);
    CHECK(v.bytes.empty());
    const char* why = "";
    CHECK(in->truncated(why) == Outcome::BadProxyHeader);
    CHECK(std::string(why) == "client closed inside the PROXY header");
}

TEST_CASE("ClientHello byte by byte: NeedMore to the last byte, then Route by its SNI") {
    tls::test::HelloFields f;
    f.extensions = tls::test::sni_ext("www.example.com");
    std::string hello = str(tls::test::client_hello(f));
    auto in = proxy::make_tls_inspector(16384);
    size_t at = 0;
    Verdict v = feed_bytewise(*in, hello + "early data", at);
    REQUIRE(v.kind == Verdict::Kind::Route);
    CHECK(at == hello.size());
    CHECK(v.name == "www.example.com");
    CHECK(v.backend == nullptr);
    CHECK(v.consumed == 0);  // the hello goes to the backend
    // Asked again (the session routes after the verdict), the same answer.
    CHECK(in->inspect(hello).name == "www.example.com");
    // Refusals after the hello are told with alerts: unrecognized_name (112), internal_error (80).
    CHECK(in->refusal(Outcome::NoRoute) == std::string("\x15\x03\x03\x00\x02\x02\x70", 7));
    CHECK(in->refusal(Outcome::BackendDown) == std::string("\x15\x03\x03\x00\x02\x02\x50", 7));
    CHECK(in->refusal(Outcome::Timeout).empty());
}

TEST_CASE("ClientHello without SNI routes by the empty name") {
    std::string hello = str(tls::test::client_hello({}));
    auto in = proxy::make_tls_inspector(16384);
    size_t at = 0;
    Verdict v = feed_bytewise(*in, hello, at);
    REQUIRE(v.kind == Verdict::Kind::Route);
    CHECK(v.name.empty());
}

TEST_CASE("not TLS: refused at the first byte, without an alert") {
    auto in = proxy::make_tls_inspector(16384);
    size_t at = 0;
    Verdict v = feed_bytewise(*in, "GET / HTTP/1.1\r\n\r\n", at);
    REQUIRE(v.kind == Verdict::Kind::Refuse);
    CHECK(v.outcome == Outcome::BadHello);
    CHECK(at == 1);
    CHECK(v.bytes.empty());
}

TEST_CASE("a malformed or too large hello is refused with a decode_error alert") {
    tls::test::HelloFields f;
    f.extensions = tls::test::sni_ext("www.example.com");
    std::string hello = str(tls::test::client_hello(f));
    auto in = proxy::make_tls_inspector(64);  // smaller than the hello
    size_t at = 0;
    Verdict v = feed_bytewise(*in, hello, at);
    REQUIRE(v.kind == Verdict::Kind::Refuse);
    CHECK(v.outcome == Outcome::BadHello);
    CHECK(v.bytes == std::string("\x15\x03\x03\x00\x02\x02\x32", 7));
    const char* why = "";
    CHECK(in->truncated(why) == Outcome::BadHello);
}

TEST_CASE("http: pipelined requests byte by byte, answered one at a time, then a forward") {
    http::MemoryTokenStore tokens;
    proxy::CompactAddress client;
    client.set(addr("192.0.2.7:40000"));
    proxy::InspectEnv env{snapshot(), 0, tokens, client};
    auto in = proxy::make_http_inspector(env);
    std::string challenge = "GET /.well-known/acme-challenge/abc HTTP/1.1\r\nHost: a.test\r\n\r\n";
    std::string forward = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    std::string stream = challenge + forward;

    size_t at = 0;
    Verdict v = feed_bytewise(*in, stream, at);
    REQUIRE(v.kind == Verdict::Kind::Answer);
    CHECK(at == challenge.size());
    CHECK(v.consumed == challenge.size());
    CHECK(v.keep_alive);
    CHECK(v.bytes.find("200") != std::string::npos);
    CHECK(v.bytes.find("abc.THUMB") != std::string::npos);

    // The session drops the answered head; the next request was partly read already.
    std::string rest = stream.substr(v.consumed);
    v = feed_bytewise(*in, rest, at);
    REQUIRE(v.kind == Verdict::Kind::Route);
    CHECK(at == forward.size());
    CHECK(v.name == "a.test");
    REQUIRE(v.backend != nullptr);
    CHECK(v.backend->name == "site");
    CHECK(v.consumed == 0);  // the head is replayed to the backend
}

TEST_CASE("http: a bad head is answered 400 and the connection is not kept") {
    http::MemoryTokenStore tokens;
    proxy::CompactAddress client;
    proxy::InspectEnv env{snapshot(), 0, tokens, client};
    auto in = proxy::make_http_inspector(env);
    size_t at = 0;
    Verdict v = feed_bytewise(*in, "GET / HTTP/1.1\r\nHost a.test\r\n\r\n", at);
    REQUIRE(v.kind == Verdict::Kind::Answer);
    CHECK_FALSE(v.keep_alive);
    CHECK(v.bytes.rfind("HTTP/1.1 400", 0) == 0);
}

}  // TEST_SUITE("inspector")

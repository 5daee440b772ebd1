// Real captured ClientHellos (../shared/fixtures/clienthellos, see its README.md), fed whole, cut
// at every offset, one byte at a time, and re-framed across several TLS records. Every way of
// delivering the same hello must give the same answer.
#include <doctest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "hello_builder.hpp"
#include "tls/client_hello.hpp"

using namespace sniroute::tls;
using namespace sniroute::tls::test;

namespace {

Bytes fixture(const std::string& name) {
    std::ifstream in(std::string(SNIROUTE_FIXTURES_DIR) + "/" + name, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "missing fixture ", name);
    return {std::istreambuf_iterator<char>(in), {}};
}

// What each capture holds, checked against the bytes themselves (not only the README): every
// client sends legacy_version 0x0303; the TLS 1.3 clients offer 1.3 down to 1.0 in
// supported_versions, except Python, which offers 1.3 and 1.2; the -tls1_2 capture has no
// supported_versions extension at all.
const std::vector<uint16_t> kOffers13To10 = {0x0304, 0x0303, 0x0302, 0x0301};

struct FixtureCase {
    std::string file;
    size_t size;  // bytes in the capture: exactly one record, nothing after it
    bool has_sni;
    const char* sni;
    std::vector<std::string> alpn;
    std::vector<uint16_t> supported_versions;
};

const std::vector<FixtureCase> kFixtures = {
    {"openssl3-mail.bin", 322, true, "mail.example.com", {}, kOffers13To10},
    {"openssl3-noservername.bin", 297, false, "", {}, kOffers13To10},
    {"openssl3-alpn-acme.bin", 339, true, "mail.example.com", {"acme-tls/1"}, kOffers13To10},
    {"openssl-tls12.bin", 212, true, "old.example.com", {}, {}},
    {"curl-www.bin", 517, true, "www.example.com", {"h2", "http/1.1"}, kOffers13To10},
    {"gnutls-imap.bin", 398, true, "imap.example.com", {}, kOffers13To10},
    {"python-smtp.bin", 517, true, "smtp.example.com", {}, {0x0304, 0x0303}},
};

Outcome expected(const FixtureCase& c) {
    Outcome o;
    o.status = ParseStatus::Done;
    o.info.has_sni = c.has_sni;
    o.info.sni = c.sni;
    o.info.alpn = c.alpn;
    o.info.legacy_version = 0x0303;
    o.info.supported_versions = c.supported_versions;
    return o;
}

}  // namespace

TEST_SUITE("tls.fixtures") {

TEST_CASE("each capture, fed whole, gives its SNI, ALPN and versions") {
    for (const auto& c : kFixtures) {
        INFO(c.file);
        Bytes b = fixture(c.file);
        REQUIRE(b.size() == c.size);
        ClientHelloParser p;
        CHECK(p.feed(b.data(), b.size()) == ParseStatus::Done);
        CHECK(outcome_of(p) == expected(c));
        CHECK(p.consumed() == b.size());
        // parse_client_hello_body agrees when handed the body directly.
        Bytes message = unwrap_single_record(b);
        ClientHelloInfo info;
        const char* why = "";
        CHECK(parse_client_hello_body(message.data() + 4, message.size() - 4, info, why) == ParseStatus::Done);
        CHECK(Outcome{ParseStatus::Done, info} == expected(c));
    }
}

TEST_CASE("each capture, cut into two reads at every offset") {
    for (const auto& c : kFixtures) {
        INFO(c.file);
        Bytes b = fixture(c.file);
        for (size_t at = 0; at <= b.size(); ++at) {
            CAPTURE(at);
            ClientHelloParser p;
            // Any proper prefix is only a promise of a hello.
            ParseStatus first = p.feed(b.data(), at);
            CHECK(first == (at == b.size() ? ParseStatus::Done : ParseStatus::NeedMore));
            p.feed(b.data() + at, b.size() - at);
            CHECK(outcome_of(p) == expected(c));
            CHECK(p.consumed() == b.size());
        }
    }
}

TEST_CASE("each capture, one byte at a time") {
    for (const auto& c : kFixtures) {
        INFO(c.file);
        Bytes b = fixture(c.file);
        ClientHelloParser p;
        size_t final_at = 0;
        for (size_t i = 0; i < b.size() && final_at == 0; ++i)
            if (p.feed(&b[i], 1) != ParseStatus::NeedMore) final_at = i + 1;
        CHECK(final_at == b.size());  // not one byte early, not one byte late
        CHECK(outcome_of(p) == expected(c));
    }
}

TEST_CASE("each capture, re-framed across two records at every cut") {
    for (const auto& c : kFixtures) {
        INFO(c.file);
        Bytes message = unwrap_single_record(fixture(c.file));
        for (size_t cut = 1; cut < message.size(); ++cut) {
            CAPTURE(cut);
            Bytes flight = reframe(message, {cut});
            REQUIRE(flight.size() == message.size() + 10);
            CHECK(feed_whole(flight) == expected(c));
        }
    }
}

TEST_CASE("each capture, re-framed across three records") {
    for (const auto& c : kFixtures) {
        INFO(c.file);
        Bytes message = unwrap_single_record(fixture(c.file));
        const size_t n = message.size();
        // A grid of cut pairs over the whole message, plus the cuts that split the 4-byte
        // handshake header itself and the ones that leave a 1-byte record at either end.
        std::vector<std::pair<size_t, size_t>> cuts = {{1, 2}, {1, 4},     {2, 3},         {3, 4},
                                                       {4, 5}, {1, n - 1}, {n - 2, n - 1}, {38, 39}};
        for (size_t a = 1; a < n; a += 11)
            for (size_t b = a + 1; b < n; b += 17) cuts.emplace_back(a, b);
        for (const auto& cut : cuts) {
            // Plain variables, not structured bindings: clang 14 cannot capture those in lambdas.
            const size_t a = cut.first, b = cut.second;
            CAPTURE(a);
            CAPTURE(b);
            Bytes flight = reframe(message, {a, b});
            CHECK(feed_whole(flight) == expected(c));
            CHECK(feed_chunks(flight, 7) == expected(c));
        }
    }
}

TEST_CASE("a three-record capture, cut into two reads at every offset and fed bytewise") {
    for (const auto& c : kFixtures) {
        INFO(c.file);
        Bytes message = unwrap_single_record(fixture(c.file));
        Bytes flight = reframe(message, {3, message.size() / 2});
        for (size_t at = 0; at <= flight.size(); ++at) {
            CAPTURE(at);
            CHECK(feed_split(flight, at) == expected(c));
        }
        CHECK(feed_chunks(flight, 1) == expected(c));
    }
}

TEST_CASE("each capture, one record per handshake byte") {
    // The most fragmented framing TLS allows: a record may carry a single byte of a handshake
    // message (RFC 8446 5.1 forbids only zero-length handshake fragments).
    for (const auto& c : kFixtures) {
        INFO(c.file);
        Bytes message = unwrap_single_record(fixture(c.file));
        Bytes flight;
        for (uint8_t byte : message) append(flight, record({byte}));
        REQUIRE(flight.size() == 6 * message.size());
        ClientHelloParser p;
        CHECK(p.feed(flight.data(), flight.size()) == ParseStatus::Done);
        CHECK(outcome_of(p) == expected(c));
        CHECK(p.consumed() == flight.size());
        CHECK(feed_chunks(flight, 1) == expected(c));
    }
}

TEST_CASE("bytes after the hello do not change the answer") {
    const std::vector<std::pair<std::string, Bytes>> tails = {
        // ChangeCipherSpec record: type 20, version 3.3, length 1, value 1 (RFC 8446 D.4).
        {"change_cipher_spec", {0x14, 0x03, 0x03, 0x00, 0x01, 0x01}},
        // Early data: application_data record, type 23, version 3.3, length 4, then 4 bytes.
        {"application_data", {0x17, 0x03, 0x03, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef}},
        // A second handshake record header with a bogus length: not ours to judge.
        {"second handshake record", {0x16, 0x03, 0x03, 0xff, 0xff}},
        {"plain text", bytes("GET / HTTP/1.1\r\n")},
    };
    for (const auto& c : kFixtures) {
        INFO(c.file);
        Bytes hello = fixture(c.file);
        for (const auto& what_tail : tails) {
            const std::string& what = what_tail.first;
            const Bytes& tail = what_tail.second;
            INFO(what);
            Bytes stream = hello;
            append(stream, tail);
            for (size_t at = 0; at <= stream.size(); ++at) {
                CAPTURE(at);
                ClientHelloParser p;
                p.feed(stream.data(), at);
                p.feed(stream.data() + at, stream.size() - at);
                CHECK(outcome_of(p) == expected(c));
                // The parser stops at the end of the hello's record; the rest is the TLS stack's.
                CHECK(p.consumed() == hello.size());
            }
        }
    }
}

TEST_CASE("a hello that ends inside its record, fed whole") {
    // More handshake bytes after the ClientHello in the same record (a later message of the
    // flight) belong to the TLS stack; the parser answers as soon as the hello is complete.
    for (const auto& c : kFixtures) {
        INFO(c.file);
        Bytes message = unwrap_single_record(fixture(c.file));
        Bytes payload = message;
        append(payload, Bytes(16, 0xEE));
        Bytes flight = record(payload);
        ClientHelloParser p;
        CHECK(p.feed(flight.data(), flight.size()) == ParseStatus::Done);
        CHECK(outcome_of(p) == expected(c));
        // consumed() stops at the hello's last byte: the 16 trailing bytes are not counted.
        CHECK(p.consumed() == flight.size() - 16);
    }
}

TEST_CASE("the byte cap counts record headers, and a hello of exactly the cap fits") {
    for (const auto& c : kFixtures) {
        INFO(c.file);
        Bytes message = unwrap_single_record(fixture(c.file));
        // Three records: 15 header bytes on top of the message.
        Bytes flight = reframe(message, {100, 200});
        REQUIRE(flight.size() == message.size() + 15);
        CHECK(feed_whole(flight, flight.size()) == expected(c));
        CHECK(feed_chunks(flight, 1, flight.size()) == expected(c));
        CHECK(feed_whole(flight, flight.size() - 1).status == ParseStatus::TooLarge);
        CHECK(feed_chunks(flight, 1, flight.size() - 1).status == ParseStatus::TooLarge);
        // Every split agrees at the boundary too.
        for (size_t at = 0; at <= flight.size(); at += 5) {
            CAPTURE(at);
            CHECK(feed_split(flight, at, flight.size()) == expected(c));
            CHECK(feed_split(flight, at, flight.size() - 1).status == ParseStatus::TooLarge);
        }
    }
}

}  // TEST_SUITE("tls.fixtures")

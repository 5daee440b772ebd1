// The record layer of ClientHelloParser: what is not TLS at all, framing that is TLS but wrong,
// the byte cap, and the stickiness of a final status. Each case says after how many bytes the
// verdict must be known, and is checked fed whole, cut at every offset and one byte at a time.
#include <doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "hello_builder.hpp"
#include "tls/client_hello.hpp"

using namespace sniroute::tls;
using namespace sniroute::tls::test;

namespace {

// A valid handshake message (4-byte header + body) to cut into records.
Bytes sample_message() {
    HelloFields f;
    f.extensions = sni_ext("a.example");
    return handshake(hello_body(f));
}

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes& p : parts) append(out, p);
    return out;
}

Bytes first(const Bytes& b, size_t n) { return Bytes(b.begin(), b.begin() + n); }

struct StreamCase {
    std::string what;
    Bytes stream;
    ParseStatus want;
    const char* why;    // a substring of error(); "" for NeedMore and Done
    size_t decided_at;  // bytes after which the verdict is final; 0 means only at the end
    size_t cap = ClientHelloParser::kDefaultMaxBytes;
};

void check_case(const StreamCase& c) {
    INFO(c.what);
    const Bytes& b = c.stream;
    // One byte at a time: NeedMore until exactly decided_at, then the verdict.
    ClientHelloParser bytewise(c.cap);
    size_t final_at = 0;
    for (size_t i = 0; i < b.size() && final_at == 0; ++i)
        if (bytewise.feed(&b[i], 1) != ParseStatus::NeedMore) final_at = i + 1;
    CHECK(bytewise.status() == c.want);
    if (c.want != ParseStatus::NeedMore) CHECK(final_at == (c.decided_at ? c.decided_at : b.size()));
    CHECK_MESSAGE(std::strstr(bytewise.error(), c.why) != nullptr, "reason was: ", bytewise.error());
    // Whole, and two reads cut at every offset (or a sample of offsets for long streams).
    CHECK(feed_whole(b, c.cap).status == c.want);
    const size_t step = b.size() > 4096 ? 97 : 1;
    for (size_t at = 0; at <= b.size(); at += step) {
        CAPTURE(at);
        CHECK(feed_split(b, at, c.cap).status == c.want);
    }
}

}  // namespace

TEST_SUITE("tls.record_layer") {

TEST_CASE("not TLS: decided from the first byte or two") {
    const std::vector<StreamCase> cases = {
        {"plain HTTP", bytes("GET / HTTP/1.1\r\n"), ParseStatus::NotTls, "first byte", 1},
        {"PROXY protocol v1", bytes("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ParseStatus::NotTls, "first byte", 1},
        {"SSH banner", bytes("SSH-2.0-OpenSSH_9.2\r\n"), ParseStatus::NotTls, "first byte", 1},
        // SSLv2-compatible hello: 2-byte length with the high bit set, msg_type 1, version 3.1.
        {"SSLv2-style hello",
         {0x80, 0x2e,              // SSLv2 record length: 46, high bit set
          0x01,                    // msg_type: client_hello
          0x03, 0x01,              // version: 3.1
          0x00, 0x15, 0x00, 0x00,  // cipher_specs length 21, session_id length 0
          0x00, 0x10},             // challenge length 16 (rest omitted)
         ParseStatus::NotTls,
         "first byte",
         1},
        {"alert record first", {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}, ParseStatus::NotTls, "first byte", 1},
        {"application_data first", {0x17, 0x03, 0x03, 0x00, 0x01, 0x00}, ParseStatus::NotTls, "first byte", 1},
        {"a NUL byte", {0x00}, ParseStatus::NotTls, "first byte", 1},
        {"0x16 then version byte 2", {0x16, 0x02, 0x00, 0x00, 0x10}, ParseStatus::NotTls, "record version", 2},
        {"0x16 then version byte 0", {0x16, 0x00, 0x01}, ParseStatus::NotTls, "record version", 2},
        {"0x16 then version byte 0xff", {0x16, 0xff, 0x01, 0x00, 0x10}, ParseStatus::NotTls, "record version", 2},
        {"0x16 twice", {0x16, 0x16, 0x03, 0x01}, ParseStatus::NotTls, "record version", 2},
    };
    for (const auto& c : cases) check_case(c);
}

TEST_CASE("random bytes are not TLS") {
    // A fixed-seed linear congruential generator keeps the run reproducible.
    uint32_t state = 12345;
    auto next = [&] { return state = state * 1664525u + 1013904223u, static_cast<uint8_t>(state >> 24); };
    int checked = 0;
    for (int round = 0; round < 500; ++round) {
        Bytes b(1 + next() % 64);
        for (auto& byte : b) byte = next();
        if (b[0] == 0x16) continue;  // a plausible record start; not what this case is about
        CAPTURE(round);
        ++checked;
        CHECK(feed_whole(b).status == ParseStatus::NotTls);
        CHECK(feed_chunks(b, 1).status == ParseStatus::NotTls);
    }
    CHECK(checked > 400);
}

TEST_CASE("malformed record framing") {
    const Bytes m = sample_message();
    // The first record carries 10 bytes of the message; what follows is the case under test.
    const Bytes head = record(first(m, 10));
    REQUIRE(head.size() == 15);
    const std::vector<StreamCase> cases = {
        {"zero-length first record", {0x16, 0x03, 0x01, 0x00, 0x00}, ParseStatus::Malformed, "empty", 5},
        {"zero-length record mid-hello", cat({head, {0x16, 0x03, 0x01, 0x00, 0x00}}), ParseStatus::Malformed, "empty",
         20},
        {"record longer than 2^14", {0x16, 0x03, 0x01, 0x40, 0x01, 0x01}, ParseStatus::Malformed, "2^14", 5},
        {"record length 0xffff", {0x16, 0x03, 0x03, 0xff, 0xff}, ParseStatus::Malformed, "2^14", 5},
        {"alert after the first handshake record", cat({head, {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32}}),
         ParseStatus::Malformed, "non-handshake record", 16},
        {"change_cipher_spec mid-hello", cat({head, {0x14, 0x03, 0x03, 0x00, 0x01, 0x01}}), ParseStatus::Malformed,
         "non-handshake record", 16},
        {"plain text mid-hello", cat({head, bytes("GET / HTTP/1.1\r\n")}), ParseStatus::Malformed,
         "non-handshake record", 16},
        {"second record version byte 2", cat({head, {0x16, 0x02, 0x03, 0x00, 0x10}}), ParseStatus::Malformed,
         "record version", 17},
        // Handshake layer: the first message must be a ClientHello (type 1).
        {"handshake type 2 (server_hello)", record(handshake(hello_body({}), 0x02)), ParseStatus::Malformed,
         "not ClientHello", 6},
        {"handshake type 0",
         {0x16, 0x03, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00},
         ParseStatus::Malformed,
         "not ClientHello",
         6},
        {"handshake type 1 in a later byte only",
         {0x16, 0x03, 0x01, 0x00, 0x02, 0x0b, 0x01},
         ParseStatus::Malformed,
         "not ClientHello",
         6},
        // The handshake length ends the body early: the body parser sees a truncated hello.
        {"handshake length 10 short",
         [&] {
             Bytes msg = m;
             msg[3] = static_cast<uint8_t>(msg[3] - 10);
             return record(msg);
         }(),
         ParseStatus::Malformed, "extensions length", 5 + m.size() - 10},
        // The handshake length runs into a following record's bytes: trailing bytes in the body.
        {"handshake length 2 long, filled by a second record",
         [&] {
             Bytes msg = m;
             msg[3] = static_cast<uint8_t>(msg[3] + 2);
             return cat({record(msg), record({0x00, 0x00})});
         }(),
         ParseStatus::Malformed, "extensions length", 0},
    };
    for (const auto& c : cases) check_case(c);
}

TEST_CASE("truncated streams only ever need more") {
    const Bytes m = sample_message();
    Bytes long_record = record(m);
    long_record[4] = static_cast<uint8_t>(long_record[4] + 20);  // the record promises 20 more bytes
    Bytes long_handshake = m;
    long_handshake[3] = static_cast<uint8_t>(long_handshake[3] + 20);  // so does the message
    const std::vector<StreamCase> cases = {
        {"empty stream", {}, ParseStatus::NeedMore, "", 0},
        {"one byte 0x16", {0x16}, ParseStatus::NeedMore, "", 0},
        {"record header only", {0x16, 0x03, 0x01, 0x00, 0x30}, ParseStatus::NeedMore, "", 0},
        {"record cut inside the handshake header", first(record(m), 7), ParseStatus::NeedMore, "", 0},
        {"record cut inside the body", first(record(m), 40), ParseStatus::NeedMore, "", 0},
        {"handshake length overruns its only record", record(long_handshake), ParseStatus::NeedMore, "", 0},
        {"handshake overruns, next record header cut", cat({record(long_handshake), {0x16, 0x03}}),
         ParseStatus::NeedMore, "", 0},
        {"first of two records", first(reframe(m, {30}), 5 + 30), ParseStatus::NeedMore, "", 0},
        // The record is longer than the hello in it: the hello is complete, so the answer is in.
        {"record says more than the hello", long_record, ParseStatus::Done, "", 0},
        {"record says more, hello cut", first(long_record, 40), ParseStatus::NeedMore, "", 0},
    };
    for (const auto& c : cases) check_case(c);
}

TEST_CASE("the byte cap") {
    Bytes huge_length = {0x16, 0x03, 0x01, 0x00, 0x04,  // record: handshake, length 4
                         0x01, 0x00, 0x40, 0x00};       // client_hello, length 16384
    Bytes max_length = huge_length;
    max_length[6] = max_length[7] = max_length[8] = 0xff;  // length 2^24 - 1
    // A handshake message of 16380 body bytes fits 2^14 exactly, but its 5-byte record header
    // takes the flight to 16389 bytes, past the default cap.
    HelloFields padded;
    padded.extensions = extension(0x0015, Bytes(16380 - 77 - 4, 0));
    const Bytes just_over = record(handshake(hello_body(padded)));
    REQUIRE(just_over.size() == 16389);
    // Many tiny records: a 8000-byte message announced, then one byte per record, 6 bytes each.
    Bytes tiny_records = record({0x01, 0x00, 0x1f, 0x40});
    while (tiny_records.size() < 17000) append(tiny_records, record({0x00}));
    const Bytes normal = record(sample_message());
    REQUIRE(normal.size() == 104);
    const Bytes three_records = reframe(sample_message(), {30, 60});
    REQUIRE(three_records.size() == 114);

    const std::vector<StreamCase> cases = {
        {"handshake length beyond the cap", huge_length, ParseStatus::TooLarge, "exceeds byte cap", 9},
        {"handshake length 2^24 - 1", max_length, ParseStatus::TooLarge, "exceeds byte cap", 9},
        // Known from the handshake header: 9 bytes read + 16380 announced > 16384.
        {"a whole record past the cap", just_over, ParseStatus::TooLarge, "exceeds byte cap", 9},
        {"many tiny records", tiny_records, ParseStatus::TooLarge, "exceeds byte cap", 16384},
        {"custom cap of 64 against a 104-byte hello", normal, ParseStatus::TooLarge, "exceeds byte cap", 9, 64},
        {"custom cap of exactly a normal hello", normal, ParseStatus::Done, "", 0, normal.size()},
        // The handshake header announces 95 body bytes: 9 + 95 > 103, known at byte 9.
        {"custom cap one short of a normal hello", normal, ParseStatus::TooLarge, "exceeds byte cap", 9,
         normal.size() - 1},
        {"custom cap below the handshake length", normal, ParseStatus::TooLarge, "exceeds byte cap", 9,
         normal.size() - 6},
        // The handshake message (99 bytes) fits a cap of 110, but its three record headers do not.
        {"record headers count against the cap", three_records, ParseStatus::TooLarge, "exceeds byte cap", 110, 110},
        {"three records under a cap of exactly their size", three_records, ParseStatus::Done, "", 0, 114},
        {"not-TLS wins over a tiny cap", bytes("GET /"), ParseStatus::NotTls, "first byte", 1, 1},
    };
    for (const auto& c : cases) check_case(c);
}

TEST_CASE("a hello larger than one record, under a raised cap") {
    // About 20 KB, as a hello with large post-quantum key shares and padding might become: it
    // needs two records (2^14 bytes of payload at most each) and a cap above the default.
    HelloFields f;
    f.extensions = cat({sni_ext("pq.example"), extension(0x0033, Bytes(20000, 0x42)), alpn_ext({"h2"})});
    const Bytes m = handshake(hello_body(f));
    const Bytes flight = reframe(m, {16384});
    CHECK(feed_whole(flight).status == ParseStatus::TooLarge);
    Outcome got = feed_whole(flight, 32768);
    CHECK(got.status == ParseStatus::Done);
    CHECK(got.info.sni == "pq.example");
    CHECK(got.info.alpn == std::vector<std::string>{"h2"});
    for (size_t at = 0; at <= flight.size(); at += 101) {
        CAPTURE(at);
        CHECK(feed_split(flight, at, 32768) == got);
    }
}

TEST_CASE("a final status is sticky") {
    const Bytes hello = record(sample_message());
    HelloFields other_fields;
    other_fields.extensions = sni_ext("b.example");
    const Bytes other = client_hello(other_fields);
    struct Sticky {
        std::string what;
        Bytes stream;
        size_t cap;
        ParseStatus want;
    };
    const std::vector<Sticky> cases = {
        {"done", hello, ClientHelloParser::kDefaultMaxBytes, ParseStatus::Done},
        {"not TLS", bytes("GET /"), ClientHelloParser::kDefaultMaxBytes, ParseStatus::NotTls},
        {"malformed", {0x16, 0x03, 0x01, 0x00, 0x00}, ClientHelloParser::kDefaultMaxBytes, ParseStatus::Malformed},
        {"too large", hello, 32, ParseStatus::TooLarge},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        ClientHelloParser p(c.cap);
        REQUIRE(p.feed(c.stream.data(), c.stream.size()) == c.want);
        const Outcome before = outcome_of(p);
        const size_t consumed = p.consumed();
        const std::string why = p.error();
        CHECK((c.want == ParseStatus::Done) == why.empty());
        // Another whole hello, garbage, and an empty feed change nothing.
        CHECK(p.feed(other.data(), other.size()) == c.want);
        CHECK(p.feed(reinterpret_cast<const uint8_t*>("\x15\x03\x03"), 3) == c.want);
        CHECK(p.feed(nullptr, 0) == c.want);
        CHECK(p.status() == c.want);
        CHECK(outcome_of(p) == before);
        CHECK(p.consumed() == consumed);
        CHECK(p.error() == why);
    }
}

TEST_CASE("a fresh parser needs more and an empty feed keeps it so") {
    ClientHelloParser p;
    CHECK(p.status() == ParseStatus::NeedMore);
    CHECK(p.feed(nullptr, 0) == ParseStatus::NeedMore);
    CHECK(p.consumed() == 0);
    CHECK(std::string(to_string(ParseStatus::TooLarge)) == "too-large");
}

}  // TEST_SUITE("tls.record_layer")

// Regressions: the verdict and consumed() once depended on how the stream was cut (the cap was
// compared with the end of the record rather than the end of the hello).
TEST_SUITE("tls.cut_independence") {

TEST_CASE("the cap verdict does not depend on how the bytes were cut") {
    // A hello that ends inside its record, with more handshake bytes after it in that record (a
    // later message of the flight). The hello itself is complete after 104 bytes, within the cap,
    // so the answer must be Done however the stream is cut.
    const Bytes m = sample_message();  // 99-byte handshake message
    Bytes payload = m;
    append(payload, Bytes(60, 0xEE));
    const Bytes flight = record(payload);  // 5 + 159 = 164 bytes
    CHECK(feed_chunks(flight, 1, 128).status == ParseStatus::Done);
    CHECK_MESSAGE(feed_whole(flight, 128).status == ParseStatus::Done,
                  "cap 128, hello complete at byte 104 of a 164-byte record, fed whole: refused as too large");

    // The same with the default cap: a record of 2^14 payload bytes whose ClientHello ends early.
    Bytes big = m;
    append(big, Bytes(16384 - m.size(), 0xEE));
    const Bytes big_flight = record(big);
    CHECK(feed_chunks(big_flight, 512).status == ParseStatus::Done);
    CHECK_MESSAGE(feed_whole(big_flight).status == ParseStatus::Done,
                  "default cap, hello complete at byte 104 of a 16389-byte record, fed whole: refused as too large");

    // The same for a malformed hello: the verdict is Malformed, but fed whole it is TooLarge.
    Bytes bad = m;
    bad[4 + 34] = 33;  // session_id length 33 (after the handshake header, version and random)
    append(bad, Bytes(60, 0xEE));
    const Bytes bad_flight = record(bad);
    CHECK(feed_chunks(bad_flight, 1, 128).status == ParseStatus::Malformed);
    CHECK_MESSAGE(feed_whole(bad_flight, 128).status == ParseStatus::Malformed,
                  "cap 128, malformed hello complete at byte 104, fed whole: reported as too large");

    // The other way round: a hello announced larger than the cap (256) is TooLarge however it is
    // cut, and the alert record after it is never read.
    Bytes at_cap = {0x16, 0x03, 0x01, 0x00, 0xfb,  // record: handshake, 251 bytes
                    0x01, 0x00, 0x00, 0xfa};       // client_hello, 250 bytes (247 of them here)
    append(at_cap, Bytes(247, 0x00));
    REQUIRE(at_cap.size() == 256);
    append(at_cap, {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32});  // alert record
    CHECK(feed_split(at_cap, 256, 256).status == ParseStatus::TooLarge);
    CHECK(feed_chunks(at_cap, 1, 256).status == ParseStatus::TooLarge);
    CHECK_MESSAGE(feed_whole(at_cap, 256).status == ParseStatus::TooLarge,
                  "cap 256 reached at a record boundary, fed whole: reads past the cap and reports Malformed");
}

TEST_CASE("consumed() stops at the hello's last byte however the bytes were cut") {
    Bytes payload = sample_message();
    append(payload, Bytes(60, 0xEE));
    const Bytes flight = record(payload);
    ClientHelloParser whole;
    whole.feed(flight.data(), flight.size());
    ClientHelloParser bytewise;
    for (uint8_t b : flight) bytewise.feed(&b, 1);
    REQUIRE(whole.status() == ParseStatus::Done);
    REQUIRE(bytewise.status() == ParseStatus::Done);
    CHECK(whole.consumed() == 5 + sample_message().size());
    CHECK(bytewise.consumed() == whole.consumed());
}

}  // TEST_SUITE("tls.cut_independence")

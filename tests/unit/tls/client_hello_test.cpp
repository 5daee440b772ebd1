// ClientHello body parsing over synthetic hellos: a hand-written fixture, valid edge cases, and
// a table of malformed bodies. Every case runs through parse_client_hello_body directly and
// through ClientHelloParser fed whole, cut at every offset, and one byte at a time.
#include <doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "hello_builder.hpp"
#include "tls/client_hello.hpp"

using namespace sniroute::tls;
using namespace sniroute::tls::test;

namespace {

// A small TLS 1.3 first flight written out by hand, so the builder itself is checked.
const Bytes kHandWritten = {
    0x16,                                            // record type: handshake
    0x03, 0x01,                                      // legacy_record_version: 3.1
    0x00, 0x51,                                      // record length: 81
    0x01,                                            // handshake type: client_hello
    0x00, 0x00, 0x4d,                                // handshake length: 77
    0x03, 0x03,                                      // legacy_version: 3.3
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // random[0..7]
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // random[8..15]
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // random[16..23]
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // random[24..31]
    0x00,                                            // session_id length: 0
    0x00, 0x02,                                      // cipher_suites length: 2
    0x13, 0x01,                                      //   TLS_AES_128_GCM_SHA256
    0x01,                                            // compression_methods length: 1
    0x00,                                            //   null
    0x00, 0x22,                                      // extensions length: 34
    0x00, 0x00,                                      // extension type: server_name
    0x00, 0x0e,                                      //   extension length: 14
    0x00, 0x0c,                                      //   server_name_list length: 12
    0x00,                                            //   name_type: host_name
    0x00, 0x09,                                      //   host_name length: 9
    'a',  '.',  'e',  'x',  'a',  'm',  'p',  'l',
    'e',  0x00, 0x10,  // extension type: application_layer_protocol_negotiation
    0x00, 0x05,        //   extension length: 5
    0x00, 0x03,        //   protocol_name_list length: 3
    0x02, 'h',  '2',   //   "h2"
    0x00, 0x2b,        // extension type: supported_versions
    0x00, 0x03,        //   extension length: 3
    0x02,              //   versions length: 2
    0x03, 0x04,        //   TLS 1.3
};

HelloFields hand_written_fields() {
    HelloFields f;
    f.random = Bytes(32, 0x00);
    f.session_id = vec8({});
    f.cipher_suites = vec16({0x13, 0x01});
    Bytes exts = sni_ext("a.example");
    append(exts, alpn_ext({"h2"}));
    append(exts, versions_ext({0x0304}));
    f.extensions = exts;
    return f;
}

// Runs `flight` through the streaming parser in every cut: whole, two reads at every offset,
// and one byte at a time. All must agree on `want`.
void check_every_cut(const Bytes& flight, const Outcome& want) {
    CHECK(feed_whole(flight) == want);
    for (size_t at = 0; at <= flight.size(); ++at) {
        CAPTURE(at);
        CHECK(feed_split(flight, at) == want);
    }
    CHECK(feed_chunks(flight, 1) == want);
}

Outcome done_with(std::string sni, std::vector<std::string> alpn = {}, std::vector<uint16_t> versions = {}) {
    Outcome o;
    o.status = ParseStatus::Done;
    o.info.has_sni = !sni.empty();
    o.info.sni = std::move(sni);
    o.info.alpn = std::move(alpn);
    o.info.legacy_version = 0x0303;
    o.info.supported_versions = std::move(versions);
    return o;
}

HelloFields with_extensions(std::initializer_list<Bytes> exts) {
    HelloFields f;
    Bytes block;
    for (const Bytes& e : exts) append(block, e);
    f.extensions = block;
    return f;
}

}  // namespace

TEST_SUITE("tls.client_hello") {

TEST_CASE("the builder reproduces a hand-written hello byte for byte") {
    CHECK(client_hello(hand_written_fields()) == kHandWritten);
    check_every_cut(kHandWritten, done_with("a.example", {"h2"}, {0x0304}));
}

TEST_CASE("valid edge cases") {
    const std::string label63(63, 'a');
    // 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 bytes, the most RFC 1035 allows.
    const std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
    REQUIRE(name253.size() == 253);

    struct Case {
        std::string what;
        HelloFields fields;
        Outcome want;
    };
    HelloFields no_extensions;
    no_extensions.extensions = std::nullopt;
    no_extensions.session_id = vec8({});
    HelloFields tls10 = no_extensions;
    tls10.legacy_version = {0x03, 0x01};
    Outcome tls10_want = done_with("");
    tls10_want.info.legacy_version = 0x0301;

    const std::vector<Case> cases = {
        {"no extensions block at all (TLS 1.2 style)", no_extensions, done_with("")},
        {"TLS 1.0 legacy_version, no extensions", tls10, tls10_want},
        {"empty extensions block", with_extensions({}), done_with("")},
        {"63-byte label", with_extensions({sni_ext(label63 + ".example")}), done_with(label63 + ".example")},
        {"253-byte name", with_extensions({sni_ext(name253)}), done_with(name253)},
        {"253-byte name plus trailing dot", with_extensions({sni_ext(name253 + ".")}), done_with(name253)},
        {"trailing dot dropped", with_extensions({sni_ext("mail.example.com.")}), done_with("mail.example.com")},
        {"upper case lowered", with_extensions({sni_ext("MaIL.ExAmple.COM")}), done_with("mail.example.com")},
        {"single-label name", with_extensions({sni_ext("localhost")}), done_with("localhost")},
        {"digits and hyphens", with_extensions({sni_ext("xn--bcher-kva.0-9.example")}),
         done_with("xn--bcher-kva.0-9.example")},
        {"unknown extensions are skipped",
         with_extensions({extension(0xfe0d, Bytes(40, 0x11)), sni_ext("a.example"), extension(0x0015, Bytes(300, 0))}),
         done_with("a.example")},
        {"empty unknown extension", with_extensions({extension(0x0017, {}), sni_ext("a.example")}),
         done_with("a.example")},
        {"several ALPN protocols in order", with_extensions({alpn_ext({"h2", "http/1.1", "acme-tls/1"})}),
         done_with("", {"h2", "http/1.1", "acme-tls/1"})},
        {"supported_versions list", with_extensions({versions_ext({0x0304, 0x0303, 0x7f1c})}),
         done_with("", {}, {0x0304, 0x0303, 0x7f1c})},
        {"only 0x0303 offered", with_extensions({versions_ext({0x0303})}), done_with("", {}, {0x0303})},
        {"SNI last",
         with_extensions({alpn_ext({"h2"}), extension(0x000a, {0x00, 0x02, 0x00, 0x1d}), sni_ext("z.example")}),
         done_with("z.example", {"h2"})},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        Bytes body = hello_body(c.fields);
        ClientHelloInfo info;
        const char* why = "";
        CHECK(parse_client_hello_body(body.data(), body.size(), info, why) == ParseStatus::Done);
        CHECK(Outcome{ParseStatus::Done, info} == c.want);
        check_every_cut(client_hello(c.fields), c.want);
    }
}

TEST_CASE("malformed bodies") {
    struct Case {
        std::string what;
        Bytes body;
        const char* why;  // a substring of the parser's reason
    };
    auto body_with = [](auto&& edit) {
        HelloFields f;
        f.extensions = sni_ext("a.example");
        edit(f);
        return hello_body(f);
    };
    auto exts = [](std::initializer_list<Bytes> list) { return hello_body(with_extensions(list)); };
    auto sni_name = [&](std::string_view name) { return exts({sni_ext(name)}); };
    const Bytes valid = body_with([](HelloFields&) {});
    auto prefix = [&](size_t n) { return Bytes(valid.begin(), valid.begin() + n); };

    const std::vector<Case> cases = {
        // Truncated fixed fields: the handshake length ends the body early.
        {"empty body", {}, "legacy_version"},
        {"legacy_version cut", prefix(1), "legacy_version"},
        {"random cut", prefix(2 + 31), "random"},
        {"session_id length missing", prefix(34), "session_id"},
        {"session_id cut", prefix(34 + 1 + 31), "session_id"},
        {"cipher_suites length cut", prefix(67 + 1), "cipher_suites"},
        {"cipher_suites cut", prefix(67 + 2 + 3), "cipher_suites"},
        {"compression_methods missing", prefix(67 + 2 + 4), "compression_methods"},
        {"compression_methods cut", prefix(67 + 6 + 1), "compression_methods"},
        {"extensions length cut", prefix(67 + 6 + 2 + 1), "extensions length"},
        {"extensions block cut", prefix(valid.size() - 1), "extensions length"},
        // Field values out of range.
        {"session_id of 33 bytes", body_with([](HelloFields& f) { f.session_id = vec8(Bytes(33, 1)); }), "session_id"},
        {"session_id length 255", body_with([](HelloFields& f) { f.session_id = {0xff}; }), "session_id"},
        {"odd cipher_suites length", body_with([](HelloFields& f) {
             f.cipher_suites = vec16({0x13, 0x01, 0x13});
         }),
         "cipher_suites"},
        {"empty cipher_suites", body_with([](HelloFields& f) { f.cipher_suites = vec16({}); }), "cipher_suites"},
        {"cipher_suites length overruns", body_with([](HelloFields& f) {
             f.cipher_suites = {0x7f, 0xfe, 0x13, 0x01};
         }),
         "cipher_suites"},
        {"zero compression methods", body_with([](HelloFields& f) { f.compression = vec8({}); }),
         "compression_methods"},
        // The extensions block.
        {"one stray byte instead of extensions", body_with([](HelloFields& f) {
             f.extensions.reset();
             f.trailer = {0x00};
         }),
         "extensions length"},
        {"extensions length overruns the message", body_with([](HelloFields& f) {
             f.extensions.reset();
             f.trailer = {0x00, 0x40, 0x00, 0x00, 0x00, 0x00};  // length 64, then 4 bytes
         }),
         "extensions length"},
        {"trailing bytes after the extensions block", body_with([](HelloFields& f) { f.trailer = {0x00}; }),
         "extensions length"},
        {"extension header cut", exts({{0x00}}), "overruns"},
        {"extension length cut", exts({{0x00, 0x0a, 0x00}}), "overruns"},
        {"extension length overruns the block", exts({{0x00, 0x0a, 0x00, 0x10, 0x00, 0x1d}}), "overruns"},
        {"last extension overruns the block", exts({sni_ext("a.example"), {0x00, 0x17, 0x00, 0x01}}), "overruns"},
        {"duplicate server_name", exts({sni_ext("a.example"), sni_ext("a.example")}), "duplicate extension"},
        {"duplicate server_name, different names", exts({sni_ext("a.example"), sni_ext("b.example")}), "duplicate"},
        {"duplicate unknown extension", exts({extension(0x000a, {}), sni_ext("a.example"), extension(0x000a, {})}),
         "duplicate extension"},
        {"duplicate ALPN", exts({alpn_ext({"h2"}), alpn_ext({"h2"})}), "duplicate extension"},
        // server_name contents (RFC 6066 3).
        {"server_name type 1", exts({sni_ext_entries({sni_entry("a.example", 1)})}), "not host_name"},
        {"server_name type 255", exts({sni_ext_entries({sni_entry("a.example", 255)})}), "not host_name"},
        {"two host_name entries", exts({sni_ext_entries({sni_entry("a.example"), sni_entry("b.example")})}),
         "more than one"},
        {"host_name then type 1", exts({sni_ext_entries({sni_entry("a.example"), sni_entry("x", 1)})}),
         "more than one"},
        {"empty server_name list", exts({sni_ext_entries({})}), "empty server_name list"},
        {"empty server_name extension", exts({extension(0x0000, {})}), "server_name list length"},
        {"server_name list overruns", exts({extension(0x0000, {0x00, 0x20, 0x00, 0x00, 0x01, 'a'})}),
         "server_name list length"},
        {"bytes after server_name list", exts({extension(0x0000, {0x00, 0x04, 0x00, 0x00, 0x01, 'a', 0x00})}),
         "server_name list length"},
        {"host_name length overruns", exts({extension(0x0000, {0x00, 0x04, 0x00, 0x00, 0x05, 'a'})}),
         "entry truncated"},
        {"empty host_name", sni_name(""), "valid host name"},
        {"host_name with NUL", sni_name(std::string_view("a\0b.example", 11)), "valid host name"},
        {"host_name with '/'", sni_name("a/b.example"), "valid host name"},
        {"host_name with ':'", sni_name("a.example:443"), "valid host name"},
        {"host_name with '['", sni_name("[::1]"), "valid host name"},
        {"host_name with '%'", sni_name("a%2eexample"), "valid host name"},
        {"host_name with space", sni_name("a example"), "valid host name"},
        {"host_name with '_'", sni_name("_acme.example"), "valid host name"},
        {"host_name with '*'", sni_name("*.example"), "valid host name"},
        {"host_name with UTF-8",
         sni_name("b\xc3\xbc"
                  "cher.example"),
         "valid host name"},
        {"host_name with 0xff", sni_name("a\xff.example"), "valid host name"},
        {"label of 64 bytes", sni_name(std::string(64, 'a') + ".example"), "valid host name"},
        {"name of 254 bytes",
         sni_name(std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
                  std::string(62, 'd')),
         "valid host name"},
        {"empty label", sni_name("a..b"), "valid host name"},
        {"leading dot", sni_name(".a.example"), "valid host name"},
        {"only a dot", sni_name("."), "valid host name"},
        {"two trailing dots", sni_name("a.example.."), "valid host name"},
        // ALPN (RFC 7301 3.1) and supported_versions (RFC 8446 4.2.1).
        {"empty ALPN list", exts({extension(0x0010, {0x00, 0x00})}), "empty alpn list"},
        {"empty ALPN protocol", exts({extension(0x0010, {0x00, 0x03, 0x00, 0x01, 'x'})}), "empty alpn protocol"},
        {"ALPN entry overruns", exts({extension(0x0010, {0x00, 0x02, 0x05, 'h'})}), "alpn entry truncated"},
        {"ALPN list overruns", exts({extension(0x0010, {0x00, 0x09, 0x02, 'h', '2'})}), "alpn list length"},
        {"empty supported_versions", exts({extension(0x002b, {0x00})}), "supported_versions"},
        {"odd supported_versions", exts({extension(0x002b, {0x03, 0x03, 0x04, 0x03})}), "supported_versions"},
        {"supported_versions overruns", exts({extension(0x002b, {0x04, 0x03, 0x04})}), "supported_versions"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        ClientHelloInfo info;
        const char* why = "";
        CHECK(parse_client_hello_body(c.body.data(), c.body.size(), info, why) == ParseStatus::Malformed);
        CHECK_MESSAGE(std::strstr(why, c.why) != nullptr, "reason was: ", why);
        // The streaming parser gives the same verdict and reason, however the bytes arrive.
        Bytes flight = record(handshake(c.body));
        Outcome want{ParseStatus::Malformed, {}};
        for (size_t at = 0; at <= flight.size(); ++at) {
            CAPTURE(at);
            ClientHelloParser p;
            p.feed(flight.data(), at);
            CHECK(p.feed(flight.data() + at, flight.size() - at) == ParseStatus::Malformed);
            CHECK_MESSAGE(std::strstr(p.error(), c.why) != nullptr, "reason was: ", p.error());
        }
        CHECK(feed_chunks(flight, 1).status == ParseStatus::Malformed);
    }
}

}  // TEST_SUITE("tls.client_hello")

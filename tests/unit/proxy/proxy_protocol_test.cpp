#include <doctest.h>

#include <string>

#include "proxy/proxy_protocol.hpp"
#include "proxy_test_util.hpp"

using namespace sniroute;
using proxy::HeaderStatus;
using proxy::test::addr;

namespace {

HeaderStatus parse(const std::string& s, proxy::ParsedHeader& out, size_t max = 4096) {
    const char* why = "";
    return proxy::parse_header(reinterpret_cast<const uint8_t*>(s.data()), s.size(), max, out, why);
}

}  // namespace

TEST_CASE("v1 header bytes, IPv4 and IPv6") {
    std::string out;
    proxy::append_v1(out, addr("192.0.2.1:5555"), addr("198.51.100.2:443"));
    CHECK(out == "PROXY TCP4 192.0.2.1 198.51.100.2 5555 443\r\n");
    out.clear();
    proxy::append_v1(out, addr("[2001:db8::1]:5555"), addr("[::1]:993"));
    CHECK(out == "PROXY TCP6 2001:db8::1 ::1 5555 993\r\n");
    out.clear();
    proxy::append_v1(out, addr("[::1]:1"), addr("127.0.0.1:2"));
    CHECK(out == "PROXY UNKNOWN\r\n");
}

TEST_CASE("v2 header bytes, IPv4") {
    std::string out;
    proxy::append_v2(out, addr("192.0.2.1:5555"), addr("198.51.100.2:443"));
    const unsigned char expect[] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,  // signature
        0x21,                                                                    // v2, PROXY
        0x11,                                                                    // INET, STREAM
        0x00, 0x0C,                                                              // 12 address bytes
        192,  0,    2,    1,                                                     // source
        198,  51,   100,  2,                                                     // destination
        0x15, 0xB3,                                                              // 5555
        0x01, 0xBB,                                                              // 443
    };
    CHECK(out == std::string(reinterpret_cast<const char*>(expect), sizeof expect));
}

TEST_CASE("v2 header length, IPv6, and round trips") {
    std::string out;
    proxy::append_v2(out, addr("[2001:db8::1]:5555"), addr("[::1]:993"));
    CHECK(out.size() == 16 + 36);
    CHECK(static_cast<unsigned char>(out[13]) == 0x21);
    proxy::ParsedHeader h;
    REQUIRE(parse(out + "rest", h) == HeaderStatus::Done);
    CHECK(h.length == out.size());
    CHECK(h.src.to_string() == "[2001:db8::1]:5555");
    CHECK(h.dst.to_string() == "[::1]:993");
    out.clear();
    proxy::append_v1(out, addr("192.0.2.1:5555"), addr("198.51.100.2:443"));
    REQUIRE(parse(out, h) == HeaderStatus::Done);
    CHECK(h.src.to_string() == "192.0.2.1:5555");
    CHECK(h.dst.to_string() == "198.51.100.2:443");
}

TEST_CASE("parse at every split offset answers NeedMore, then Done") {
    for (bool v2 : {false, true}) {
        std::string out;
        if (v2)
            proxy::append_v2(out, addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        else
            proxy::append_v1(out, addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        proxy::ParsedHeader h;
        for (size_t n = 0; n < out.size(); ++n) {
            CAPTURE(n);
            CHECK(parse(out.substr(0, n), h) == HeaderStatus::NeedMore);
        }
        CHECK(parse(out, h) == HeaderStatus::Done);
    }
}

TEST_CASE("malformed headers") {
    const std::string bad[] = {
        "GET / HTTP/1.1\r\n",                                              // no header at all
        "\x16\x03\x01",                                                    // a TLS hello without header
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",                              // unknown protocol
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",                                // three fields
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",                            // five fields
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",                             // leading zero
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",                          // port range
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",                                  // family mismatch
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",                                // LF without CR
        "PROXY " + std::string(120, 'A'),                                  // longer than 107 bytes
        std::string("\r\n\r\n\0\r\nQUIX\n", 12),                           // bad v2 signature
        std::string("\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c", 16),           // version 3
        std::string("\r\n\r\n\0\r\nQUIT\n\x22\x11\x00\x0c", 16),           // command 2
        std::string("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x04", 16) + "abcd",  // INET block too short
    };
    for (const auto& b : bad) {
        CAPTURE(b);
        proxy::ParsedHeader h;
        CHECK(parse(b, h) == HeaderStatus::Malformed);
    }
    // A v2 header longer than the cap is refused before it is read.
    std::string big = std::string("\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff", 16);
    proxy::ParsedHeader h;
    CHECK(parse(big, h, 4096) == HeaderStatus::Malformed);
}

TEST_CASE("LOCAL and UNKNOWN keep the connection's own addresses") {
    proxy::ParsedHeader h;
    CHECK(parse("PROXY UNKNOWN\r\n", h) == HeaderStatus::Done);
    CHECK(h.local);
    CHECK(h.length == 15);
    std::string local = std::string("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", 16);
    CHECK(parse(local, h) == HeaderStatus::Done);
    CHECK(h.local);
    CHECK(h.length == 16);
}

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

// Every value of the v2 family/transport byte (the 14th), under both commands. Section 2.2 of
// proxy-protocol.txt defines families 0x0..0x3 (UNSPEC, INET, INET6, UNIX) and transports
// 0x0..0x2 (UNSPEC, STREAM, DGRAM); any other nibble must be rejected whatever the command.
// Of the defined bytes, PROXY takes addresses from TCP over IPv4 (0x11) and IPv6 (0x21) only
// and treats the rest as UNSPEC (the connection's own addresses); LOCAL ignores the family.
TEST_CASE("v2 family/transport byte: all 256 values, LOCAL and PROXY") {
    const std::string sig("\r\n\r\n\0\r\nQUIT\n", 12);
    // 216 address bytes, enough for the largest block (two 108-byte UNIX paths): bytes 1, 2, 3...
    std::string block;
    for (int i = 0; i < 216; ++i) block += static_cast<char>(i + 1);
    for (int command : {0x0, 0x1}) {
        for (int fam = 0; fam < 256; ++fam) {
            CAPTURE(command);
            CAPTURE(fam);
            std::string head = sig;
            head += static_cast<char>(0x20 | command);  // version 2 | command
            head += static_cast<char>(fam);             // family | transport
            head += '\0';                               // length, high byte
            head += static_cast<char>(block.size());    // length, low byte: 216
            bool defined = (fam >> 4) <= 0x3 && (fam & 0x0F) <= 0x2;
            proxy::ParsedHeader h;
            const char* why = "";
            HeaderStatus at16 =
                proxy::parse_header(reinterpret_cast<const uint8_t*>(head.data()), head.size(), 4096, h, why);
            HeaderStatus whole = parse(head + block + "payload", h);
            if (!defined) {
                // Refused as soon as the byte is seen, without waiting for the block.
                CHECK(at16 == HeaderStatus::Malformed);
                CHECK(std::string(why) == "PROXY v2 undefined address family or transport");
                CHECK(whole == HeaderStatus::Malformed);
                continue;
            }
            CHECK(at16 == HeaderStatus::NeedMore);
            REQUIRE(whole == HeaderStatus::Done);
            CHECK(h.length == 16 + block.size());
            if (command == 0x1 && fam == 0x11) {
                CHECK_FALSE(h.local);
                CHECK(h.src.to_string() == "1.2.3.4:2314");  // port bytes 9, 10
                CHECK(h.dst.to_string() == "5.6.7.8:2828");  // port bytes 11, 12
            } else if (command == 0x1 && fam == 0x21) {
                CHECK_FALSE(h.local);
                CHECK(h.src.to_string() == "[102:304:506:708:90a:b0c:d0e:f10]:8482");          // ports 33, 34
                CHECK(h.dst.to_string() == "[1112:1314:1516:1718:191a:1b1c:1d1e:1f20]:8996");  // 35, 36
            } else {
                CHECK(h.local);
            }
        }
    }
}

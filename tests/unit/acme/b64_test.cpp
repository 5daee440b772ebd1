// base64url without padding: RFC 4648 vectors, the URL-safe alphabet, round trips, rejects.
#include <doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "acme/b64.hpp"
#include "acme_test_util.hpp"

using sniroute::acme::b64url_decode;
using sniroute::acme::b64url_encode;

TEST_CASE("b64url: RFC 4648 section 10 vectors, without the padding") {
    struct Vector {
        std::string plain, encoded;
    };
    const std::vector<Vector> vectors = {
        {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    for (const auto& v : vectors) {
        CAPTURE(v.plain);
        CHECK(b64url_encode(v.plain) == v.encoded);
        CHECK(b64url_decode(v.encoded) == v.plain);
    }
}

TEST_CASE("b64url: uses '-' and '_' where base64 has '+' and '/'") {
    // 0xfb 0xff = 111110 111111 1111(00): indexes 62, 63, 60.
    CHECK(b64url_encode("\xfb\xff") == "-_8");
    CHECK(b64url_decode("-_8") == std::string("\xfb\xff"));
    // JOSE's own example (RFC 7515 appendix C): bytes 3, 236, 255, 224, 193.
    CHECK(b64url_encode(std::string("\x03\xec\xff\xe0\xc1")) == "A-z_4ME");
}

TEST_CASE("b64url: round trips every byte value and every tail length") {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    CHECK(b64url_decode(b64url_encode(all)) == all);
    CHECK(b64url_encode(all) == acme_test::ref_b64url(all));
    for (size_t len = 0; len <= 67; ++len) {
        CAPTURE(len);
        std::string s;
        for (size_t i = 0; i < len; ++i) s += static_cast<char>((i * 37 + len * 11) & 0xff);
        std::string enc = b64url_encode(s);
        CHECK(enc.size() == (len * 4 + 2) / 3);
        CHECK(enc.find('=') == std::string::npos);
        CHECK(enc == acme_test::ref_b64url(s));
        CHECK(b64url_decode(enc) == s);
    }
}

TEST_CASE("b64url: decode rejects padding, other alphabets, whitespace and impossible lengths") {
    const std::vector<std::string> bad = {
        "Zg==",                   // padded
        "Zg=",                    // partly padded
        "Zm9v=",                  // padding after a whole group
        "=",                      // padding alone
        "Z",                      // 4n+1 characters cannot be produced by an encoder
        "Zm9vY",                  // same, after a whole group
        "+/8",                    // standard base64 alphabet
        "Zm9v Zg",                // inner space
        "Zm9v\n",                 // trailing newline
        " Zm9v",                  // leading space
        "Zm9v!",                  // punctuation
        "Zh",                     // leftover bits not zero: "Zg" is the only spelling of "f"
        "Zm9",                    // leftover bits not zero: "Zm8" is the only spelling of "fo"
        std::string("Zm\0v", 4),  // NUL
        "Zm\xc3\xa9v",            // non-ASCII
    };
    for (const auto& s : bad) {
        CAPTURE(s);
        CHECK_FALSE(b64url_decode(s).has_value());
    }
}

// Host names and route patterns as every layer compares them, and the base64url alphabet.
#include <doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/host_name.hpp"

using namespace sniroute::core;

TEST_SUITE("core.host_name") {

TEST_CASE("normalize_host_name on its own") {
    std::string out = "untouched";
    CHECK(normalize_host_name("WWW.Example.ORG.", out));
    CHECK(out == "www.example.org");
    CHECK(normalize_host_name("a", out));
    CHECK(out == "a");
    // A rejected name leaves `out` as it was.
    out = "untouched";
    const std::string_view bads[] = {"", ".", "..", "a..", "a b", "a\tb", "a.b\n", "@", std::string_view("\0", 1)};
    for (std::string_view bad : bads) {
        CAPTURE(bad);
        CHECK_FALSE(normalize_host_name(bad, out));
    }
    CHECK(out == "untouched");
}

TEST_CASE("normalize_pattern accepts names and *.suffix, lower-cased") {
    struct Case {
        std::string in;
        std::string out;
    };
    const std::vector<Case> cases = {
        {"mail.example.com", "mail.example.com"},
        {"Mail.Example.COM", "mail.example.com"},
        {"example.org.", "example.org"},
        {"*.example.org", "*.example.org"},
        {"*.Example.ORG", "*.example.org"},
        {"*.example.org.", "*.example.org"},
        {"*.org", "*.org"},
        {"localhost", "localhost"},
        {"xn--bcher-kva.example", "xn--bcher-kva.example"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.in);
        std::string out;
        CHECK(normalize_pattern(c.in, out));
        CHECK(out == c.out);
    }
}

TEST_CASE("normalize_pattern rejects everything else") {
    const std::vector<std::string> bad = {
        "",      "*",      "*.",           ".",    "a.*.b", "**.x",  "foo*.x",  "*foo.x", "*.*.x",
        "x.*",   "*x",     "*..x",         ".*.x", " *.x",  "*.x y", "a_b.x",   "a/b",    "a:443",
        "[::1]", "*.a..b", ".example.org", "a..b", "a.b..", "*.x/",  "*.%2e.x", "é.x",    std::string(64, 'a') + ".x",
    };
    for (const auto& p : bad) {
        CAPTURE(p);
        std::string out = "untouched";
        CHECK_FALSE(normalize_pattern(p, out));
        CHECK(out == "untouched");
    }
}

TEST_CASE("base64url: the RFC 4648 section 5 alphabet, no padding, not empty") {
    CHECK(is_base64url("abcXYZ019-_"));
    CHECK(is_base64url("A"));
    const std::string_view bads[] = {"", "a=", "a+b", "a/b", "a b", "a.b", "\xc3\xa9", std::string_view("a\0b", 3)};
    for (std::string_view bad : bads) {
        CAPTURE(bad);
        CHECK_FALSE(is_base64url(bad));
    }
    for (int c = 0; c < 256; ++c) {
        char ch = static_cast<char>(c);
        bool want =
            (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
        CAPTURE(c);
        CHECK(is_base64url_char(ch) == want);
    }
}

TEST_CASE("ascii_lower changes A-Z only") {
    CHECK(ascii_lower("MiXeD.Example-1") == "mixed.example-1");
    CHECK(ascii_lower("\xc3\x89") == "\xc3\x89");
}

}  // TEST_SUITE("core.host_name")

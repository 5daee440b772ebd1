// The pure helpers of the ACME protocol client: RFC 3339 timestamps from renewalInfo, the
// Retry-After header and https URL parsing. Expected values come
// from the RFCs' own examples or were computed independently (Python's datetime).
#include <doctest.h>

#include <cstdint>
#include <optional>
#include <string>

#include "acme/client.hpp"
#include "acme/https_client.hpp"

using sniroute::acme::AcmeError;
using sniroute::acme::parse_https_url;
using sniroute::acme::parse_retry_after;
using sniroute::acme::parse_rfc3339;
using sniroute::acme::Url;

TEST_SUITE("acme.client") {

TEST_CASE("parse_rfc3339: the examples of RFC 3339 section 5.8") {
    // 1985-04-12T23:20:50.52Z: fractional seconds are dropped, not rounded.
    CHECK(parse_rfc3339("1985-04-12T23:20:50.52Z") == 482196050);
    // 1996-12-19T16:39:57-08:00 is 1996-12-20T00:39:57Z.
    CHECK(parse_rfc3339("1996-12-19T16:39:57-08:00") == 851042397);
    // The leap second 1990-12-31T23:59:60Z, and the same instant in US Pacific time, count as
    // the first second of 1991 (POSIX time has no leap seconds).
    CHECK(parse_rfc3339("1990-12-31T23:59:60Z") == 662688000);
    CHECK(parse_rfc3339("1990-12-31T15:59:60-08:00") == 662688000);
    // Netherlands time 1937: +00:20 means 20 minutes ahead of UTC, before the epoch.
    CHECK(parse_rfc3339("1937-01-01T12:00:27.87+00:20") == -1041337173);
}

TEST_CASE("parse_rfc3339: separators, offsets and precision that RFC 3339 allows") {
    CHECK(parse_rfc3339("2026-01-01T00:00:00Z") == 1767225600);
    CHECK(parse_rfc3339("2026-01-01t00:00:00z") == 1767225600);  // 5.6: case-insensitive
    CHECK(parse_rfc3339("2026-01-01 00:00:00Z") == 1767225600);  // 5.6 note: a space
    CHECK(parse_rfc3339("2026-01-01T00:00:00+00:00") == 1767225600);
    CHECK(parse_rfc3339("2026-01-01T00:00:00-00:00") == 1767225600);  // 4.3: unknown offset
    CHECK(parse_rfc3339("2026-01-01T05:30:00+05:30") == 1767225600);
    CHECK(parse_rfc3339("2025-12-31T23:00:00-01:00") == 1767225600);
    CHECK(parse_rfc3339("2026-01-01T00:00:00.999999999Z") == 1767225600);
    CHECK(parse_rfc3339("2026-01-01T00:00:00.000000000000000000001Z") == 1767225600);
    CHECK(parse_rfc3339("2024-02-29T12:00:00Z") == 1709208000);  // a leap day
    CHECK(parse_rfc3339("2000-03-01T00:00:00Z") == 951868800);   // after 2000's leap day
    CHECK(parse_rfc3339("1970-01-01T00:00:00Z") == 0);
    CHECK(parse_rfc3339("1969-12-31T23:59:59Z") == -1);
    CHECK(parse_rfc3339("9999-12-31T23:59:59Z") == 253402300799);
}

TEST_CASE("parse_rfc3339: rejects what is not an RFC 3339 date-time") {
    for (const char* bad : {
             "",
             "2026-01-01",           // full-date only
             "2026-01-01T00:00:00",  // no offset
             "2026-01-01T00:00Z",    // no seconds
             "2026-1-01T00:00:00Z",  // fields have fixed widths
             "2026-01-01T0:00:00Z",
             "26-01-01T00:00:00Z",
             "2026-01-01X00:00:00Z",  // unknown separator
             "2026-13-01T00:00:00Z",  // month 13
             "2026-00-01T00:00:00Z",
             "2026-02-29T00:00:00Z",  // not a leap year
             "2100-02-29T00:00:00Z",  // a century that is not a leap year
             "2026-04-31T00:00:00Z",
             "2026-01-00T00:00:00Z",
             "2026-01-01T24:00:00Z",
             "2026-01-01T00:60:00Z",
             "2026-01-01T00:00:61Z",
             "2026-01-01T00:00:00.Z",     // a dot needs a digit
             "2026-01-01T00:00:00+0100",  // the offset needs its colon
             "2026-01-01T00:00:00+01",
             "2026-01-01T00:00:00+24:00",
             "2026-01-01T00:00:00+01:60",
             "2026-01-01T00:00:00ZZ",  // trailing bytes
             "2026-01-01T00:00:00Z ",
             " 2026-01-01T00:00:00Z",
             "2026-01-01T00:00:00UTC",
             "+2026-01-01T00:00:00Z",
             "2026-01-01T00:00:00,5Z",
         }) {
        CAPTURE(bad);
        CHECK_FALSE(parse_rfc3339(bad).has_value());
    }
}

TEST_CASE("parse_retry_after: delta-seconds") {
    constexpr int64_t now = 1767225600;
    CHECK(parse_retry_after("120", now) == 120u);
    CHECK(parse_retry_after("0", now) == 0u);
    CHECK(parse_retry_after(" 7 ", now) == 7u);  // OWS around a field value is not part of it
    CHECK(parse_retry_after("\t30", now) == 30u);
    CHECK(parse_retry_after("007", now) == 7u);
    // Too big for 64 bits is still a number of seconds: "a very long time".
    CHECK(parse_retry_after("99999999999999999999999", now) == UINT64_MAX);
    for (const char* bad : {"", "  ", "-1", "+5", "1.5", "5s", "5 5", "0x10", "abc"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_retry_after(bad, now).has_value());
    }
}

TEST_CASE("parse_retry_after: IMF-fixdate, relative to now") {
    // RFC 9110 5.6.7's example, 1994-11-06T08:49:37Z = 784111777.
    constexpr int64_t date = 784111777;
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date - 90) == 90u);
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date) == 0u);
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date + 3600) == 0u);  // in the past
    CHECK(parse_retry_after("Thu, 01 Jan 2026 00:00:00 GMT", 1767225600 - 1) == 1u);
    for (const char* bad : {
             "Sunday, 06-Nov-94 08:49:37 GMT",  // obsolete RFC 850 form
             "Sun Nov  6 08:49:37 1994",        // obsolete asctime form
             "Sun, 06 Nov 1994 08:49:37 UTC",
             "Sun, 6 Nov 1994 08:49:37 GMT",
             "Xyz, 06 Nov 1994 08:49:37 GMT",
             "Sun, 06 Foo 1994 08:49:37 GMT",
             "Sun, 31 Feb 1994 08:49:37 GMT",
             "Sun, 06 Nov 1994 25:49:37 GMT",
             "Sun, 06 Nov 1994 08:49:37 GMTX",
         }) {
        CAPTURE(bad);
        CHECK_FALSE(parse_retry_after(bad, date).has_value());
    }
}

TEST_CASE("parse_https_url: host, port and path") {
    Url u;
    REQUIRE(parse_https_url("https://acme.example/directory", u));
    CHECK(u.host == "acme.example");
    CHECK(u.port == "443");
    CHECK(u.path == "/directory");
    REQUIRE(parse_https_url("https://localhost:14000", u));
    CHECK(u.host == "localhost");
    CHECK(u.port == "14000");
    CHECK(u.path == "/");
    REQUIRE(parse_https_url("https://[::1]:8443/a/b?c=d", u));
    CHECK(u.host == "::1");
    CHECK(u.port == "8443");
    CHECK(u.path == "/a/b?c=d");
    REQUIRE(parse_https_url("https://[2001:db8::1]/x", u));
    CHECK(u.host == "2001:db8::1");
    CHECK(u.port == "443");
    for (const char* bad : {"http://acme.example/", "https://", "https:///path", "https://:443/", "https://h:/",
                            "https://h:12a/", "https://[::1/", "https://[::1]x/", "ftp://h/", "HTTPS://h/"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_https_url(bad, u));
    }
}

TEST_CASE("AcmeError: message and rate limiting") {
    AcmeError limited("urn:ietf:params:acme:error:rateLimited", "too many certificates", 429, 3600);
    CHECK(std::string(limited.what()) == "urn:ietf:params:acme:error:rateLimited: too many certificates");
    CHECK(limited.rate_limited());
    CHECK(limited.retry_after_s == 3600);
    CHECK(AcmeError("http-429", "", 429, 0).rate_limited());
    AcmeError other("urn:ietf:params:acme:error:malformed", "", 400, 0);
    CHECK(std::string(other.what()) == "urn:ietf:params:acme:error:malformed");
    CHECK_FALSE(other.rate_limited());
}

}  // TEST_SUITE("acme.client")

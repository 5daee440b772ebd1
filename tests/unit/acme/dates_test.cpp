// The canonical date formatters of acme/dates.hpp, and the round trips the fuzz target
// (tests/fuzz/acme_dates_fuzz.cpp) relies on. The parsers' own cases are in client_test.cpp,
// where they were written first. Expected values were computed independently (Python's
// datetime, and `date -u -d @SECONDS`).
#include <doctest.h>

#include <cstdint>
#include <string>

#include "acme/dates.hpp"

using namespace sniroute::acme;

TEST_SUITE("acme.dates") {

TEST_CASE("format_rfc3339: canonical UTC form") {
    CHECK(format_rfc3339(0) == "1970-01-01T00:00:00Z");
    CHECK(format_rfc3339(-1) == "1969-12-31T23:59:59Z");
    CHECK(format_rfc3339(1767225600) == "2026-01-01T00:00:00Z");
    CHECK(format_rfc3339(1709208000) == "2024-02-29T12:00:00Z");
    CHECK(format_rfc3339(951868800) == "2000-03-01T00:00:00Z");
    CHECK(format_rfc3339(-1041337173) == "1937-01-01T11:40:27Z");
    CHECK(format_rfc3339(kLastDateS) == "9999-12-31T23:59:59Z");
    CHECK(format_rfc3339(kFirstDateS) == "0000-01-01T00:00:00Z");
    CHECK(format_rfc3339(-62135596800) == "0001-01-01T00:00:00Z");
    CHECK(format_rfc3339(kLastDateS + 1) == "");
    CHECK(format_rfc3339(kFirstDateS - 1) == "");
    CHECK(format_rfc3339(INT64_MIN) == "");
    CHECK(format_rfc3339(INT64_MAX) == "");
}

TEST_CASE("format_imf_fixdate: RFC 9110 5.6.7's form, with the right day name") {
    CHECK(format_imf_fixdate(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110's example
    CHECK(format_imf_fixdate(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
    CHECK(format_imf_fixdate(-86400) == "Wed, 31 Dec 1969 00:00:00 GMT");
    CHECK(format_imf_fixdate(1767225600) == "Thu, 01 Jan 2026 00:00:00 GMT");
    CHECK(format_imf_fixdate(kLastDateS) == "Fri, 31 Dec 9999 23:59:59 GMT");
    CHECK(format_imf_fixdate(kFirstDateS) == "Sat, 01 Jan 0000 00:00:00 GMT");  // proleptic Gregorian
    CHECK(format_imf_fixdate(kLastDateS + 1) == "");
}

TEST_CASE("formatted times parse back, across leap years, centuries and the epoch") {
    // Every day of 1896-1904 and 1996-2004 (1900 is not a leap year, 2000 is), at an odd time,
    // and a stride through the whole range.
    for (int64_t base : {int64_t{-2335219200}, int64_t{820454400}}) {
        for (int64_t day = 0; day < 9 * 366; ++day) {
            int64_t t = base + day * 86400 + 12345;
            CAPTURE(t);
            REQUIRE(parse_rfc3339(format_rfc3339(t)) == t);
            REQUIRE(parse_retry_after(format_imf_fixdate(t), t - 5) == 5u);
        }
    }
    for (int64_t t = kFirstDateS; t <= kLastDateS - 7777777; t += 7777777) {
        CAPTURE(t);
        REQUIRE(parse_rfc3339(format_rfc3339(t)) == t);
    }
}

TEST_CASE("parse_retry_after: a date at, before or after now") {
    const int64_t date = 1767225600;
    const std::string imf = format_imf_fixdate(date);
    CHECK(parse_retry_after(imf, date) == 0u);
    CHECK(parse_retry_after(imf, date + 1) == 0u);  // never negative
    CHECK(parse_retry_after(imf, date - 1) == 1u);
    CHECK(parse_retry_after(imf, kFirstDateS) == static_cast<uint64_t>(date - kFirstDateS));
    CHECK(parse_retry_after(imf, INT64_MIN / 2) == static_cast<uint64_t>(date - INT64_MIN / 2));
    // The largest delta that fits, and the first that does not.
    CHECK(parse_retry_after("18446744073709551615", 0) == UINT64_MAX);
    CHECK(parse_retry_after("18446744073709551616", 0) == UINT64_MAX);
    CHECK(parse_retry_after("18446744073709551614", 0) == UINT64_MAX - 1);
}

TEST_CASE("parse_rfc3339: the edges of the range, with offsets") {
    CHECK(parse_rfc3339("0000-01-01T00:00:00Z") == kFirstDateS);
    CHECK(parse_rfc3339("9999-12-31T23:59:59Z") == kLastDateS);
    // An offset or a leap second can reach a little beyond the years 0000-9999.
    CHECK(parse_rfc3339("0000-01-01T00:00:00+23:59") == kFirstDateS - 86340);
    CHECK(parse_rfc3339("9999-12-31T23:59:60-23:59") == kLastDateS + 1 + 86340);
    CHECK(format_rfc3339(kLastDateS + 1 + 86340) == "");
}

TEST_CASE("parse_rfc3339 and parse_retry_after: no byte around the value is part of it") {
    for (const char* bad : {"x2026-01-01T00:00:00Z", "2026-01-01T00:00:00Zx", "2026-01-01T00:00:00+01:00:00",
                            "2026-01-01T00:00:00Z\n", "\n2026-01-01T00:00:00Z", "2026-01-01T00:00:00.5.5Z"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_rfc3339(bad).has_value());
    }
    for (const char* bad :
         {"Sun, 06 Nov 1994 08:49:37 GMT;", "120;", "1 20", "\n120", "120\r\n", "Sun, 06 Nov 1994 08:49:37 gmt"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_retry_after(bad, 0).has_value());
    }
}

}  // TEST_SUITE("acme.dates")

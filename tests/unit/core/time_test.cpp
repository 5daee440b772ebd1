// parse_duration_ms: the config's durations ("250ms", "1m30s", ...).
#include <doctest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/time.hpp"

using sniroute::core::parse_duration_ms;

namespace {

// parse_duration_ms() as a number, or -1 for a rejection.
int64_t duration(std::string_view text) {
    auto ms = parse_duration_ms(text);
    return ms ? static_cast<int64_t>(*ms) : -1;
}

}  // namespace

TEST_SUITE("core.time") {

TEST_CASE("durations: units, sums and limits") {
    struct Case {
        std::string in;
        int64_t ms;
    };
    const std::vector<Case> cases = {
        {"250ms", 250},
        {"0ms", 0},
        {"1s", 1'000},
        {"5s", 5'000},
        {"10m", 600'000},
        {"1h", 3'600'000},
        {"1d", 86'400'000},
        {"1m30s", 90'000},
        {"1h1m1s1ms", 3'661'001},
        {"1s500ms", 1'500},
        {"500ms1s", 1'500},  // any order
        {"1s1s", 2'000},     // repeated units add up
        {"007s", 7'000},
        {"366d", 366ll * 86'400'000},  // the largest duration accepted
        {"365d24h", 366ll * 86'400'000},
        {"8784h", 366ll * 86'400'000},
        {"31622400000ms", 366ll * 86'400'000},
    };
    for (const auto& c : cases) {
        CAPTURE(c.in);
        CHECK(duration(c.in) == c.ms);
    }
}

TEST_CASE("durations that are not understood are rejected") {
    const std::vector<std::string> bad = {
        "",
        "5",  // a unit is required
        "s",
        "ms",
        "5 s",
        " 5s",
        "5s ",
        "-5s",
        "+5s",
        "1.5s",
        "5S",  // units are lower case
        "1H",
        "5sec",
        "5us",
        "10y",
        "1m30",  // every number needs its unit
        "367d",  // more than a year
        "366d1ms",
        "8785h",
        "31622400001ms",
        "18446744073709551615ms",
        "18446744073709551616s",
        "99999999999999999999999d",
    };
    for (const auto& text : bad) {
        CAPTURE(text);
        CHECK(duration(text) == -1);
    }
}

}  // TEST_SUITE("core.time")

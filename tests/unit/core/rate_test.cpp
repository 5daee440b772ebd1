// parse_rate and TokenBucket: new_connections_per_ip, with the clock passed in.
#include <doctest.h>

#include <string>
#include <vector>

#include "core/rate.hpp"

using sniroute::core::parse_rate;
using sniroute::core::Rate;
using sniroute::core::TokenBucket;

namespace {

Rate rate(const char* text) {
    auto r = parse_rate(text);
    REQUIRE(r);
    return *r;
}

// How many tokens the bucket gives at `now_ms`, taking until it refuses.
int drain(TokenBucket& b, const Rate& r, uint64_t now_ms) {
    int n = 0;
    while (b.take(r, now_ms)) ++n;
    return n;
}

}  // namespace

TEST_SUITE("core.rate") {

TEST_CASE("rates: units and bounds") {
    CHECK(rate("20/s") == Rate{20, 1'000});
    CHECK(rate("300/m") == Rate{300, 60'000});
    CHECK(rate("1000/h") == Rate{1000, 3'600'000});
    CHECK(rate("0/s") == Rate{0, 1'000});
    CHECK_FALSE(rate("0/s").limited());
    CHECK(rate("1000000/s").count == 1'000'000);
    CHECK(rate("300/m").to_string() == "300/m");
    CHECK(rate("7/h").to_string() == "7/h");
    for (const char* bad : {"", "20", "/s", "20/", "20/d", "20/ms", "20 /s", "-1/s", "+1/s", "020/s", "1000001/s",
                            "99999999999/s", "20/s ", "20/S", "x/s", "20//s"}) {
        INFO(bad);
        CHECK_FALSE(parse_rate(bad));
    }
}

TEST_CASE("a bucket gives its burst at once, then one token per 1/rate") {
    Rate r = rate("20/s");
    TokenBucket b;
    b.reset(r, 1'000);
    CHECK(b.full(r, 1'000));
    CHECK(drain(b, r, 1'000) == 20);
    CHECK_FALSE(b.full(r, 1'000));
    CHECK(drain(b, r, 1'049) == 0);  // a token every 50 ms
    CHECK(drain(b, r, 1'050) == 1);
    CHECK(drain(b, r, 1'150) == 2);
    // A long pause refills to the burst, never beyond it.
    CHECK(b.full(r, 100'000));
    CHECK(drain(b, r, 100'000) == 20);
}

TEST_CASE("fractions of a token carry over: no drift") {
    Rate r = rate("3/s");  // a token every 333.33 ms
    TokenBucket b;
    b.reset(r, 0);
    CHECK(drain(b, r, 0) == 3);
    int got = 0;
    for (uint64_t t = 1; t <= 3'000; ++t) got += drain(b, r, t);  // 1 ms steps
    CHECK(got == 9);
}

TEST_CASE("a clock behind the last one seen counts as no time passed") {
    Rate r = rate("2/s");
    TokenBucket b;
    b.reset(r, 5'000);
    CHECK(drain(b, r, 5'000) == 2);
    CHECK(drain(b, r, 4'000) == 0);  // another worker's clock, a little behind
    CHECK(drain(b, r, 5'499) == 0);
    CHECK(drain(b, r, 5'500) == 1);
}

TEST_CASE("a new rate applies to a bucket already made, capped to its burst") {
    Rate fast = rate("100/s"), slow = rate("2/m");
    TokenBucket b;
    b.reset(fast, 0);
    CHECK(drain(b, slow, 0) == 2);  // 100 tokens held, but the new burst is 2
    CHECK(drain(b, slow, 29'999) == 0);
    CHECK(drain(b, slow, 30'000) == 1);
    // The largest rate and period stay inside 64 bits.
    Rate big = rate("1000000/h");
    b.reset(big, 0);
    CHECK(b.full(big, UINT64_MAX / 2));
}

}  // TEST_SUITE("core.rate")

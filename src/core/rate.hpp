// Connection rates as the config writes them ("20/s", "300/m", "1000/h"), and the token bucket
// that enforces one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sniroute::core {

struct Rate {
    uint32_t count = 0;  // 0 = no limit
    uint32_t per_ms = 1'000;

    bool limited() const { return count > 0; }
    std::string to_string() const;  // "20/s", "300/m", "0/s"
    bool operator==(const Rate&) const = default;
};

// Highest count a rate may give: beyond that a per-IP limit limits nothing.
inline constexpr uint32_t kMaxRateCount = 1'000'000;

// Parses "N/s", "N/m" or "N/h", N from 0 to kMaxRateCount without sign or leading zero.
std::optional<Rate> parse_rate(std::string_view text);

// A bucket of `rate.count` tokens (the burst) that refills at that rate, continuously. Time
// is passed in, in milliseconds of any monotonic clock, so that tests need no clock and the
// workers' loops, whose clocks are each a little behind the other's, can share one bucket: a
// time before the last one seen counts as no time passed.
//
// Tokens are kept in fixed point (rate.cpp), so that refilling is integer arithmetic without
// drift. The rate is passed to every call rather
// than kept, so that a reload that changes it applies to buckets already made (the level is
// capped to the new burst).
class TokenBucket {
public:
    // Full at `now_ms`.
    void reset(const Rate& rate, uint64_t now_ms);
    // Refills, then takes one token if there is one.
    bool take(const Rate& rate, uint64_t now_ms);
    // Whether the bucket would be full at `now_ms` (then forgetting it changes nothing).
    bool full(const Rate& rate, uint64_t now_ms) const;

private:
    uint64_t level_at(const Rate& rate, uint64_t now_ms) const;
    uint64_t level_ = 0;  // in fixed-point units (rate.cpp)
    uint64_t stamp_ms_ = 0;
};

}  // namespace sniroute::core

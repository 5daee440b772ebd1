#include "core/rate.hpp"

#include <algorithm>
#include <charconv>

namespace sniroute::core {

std::string Rate::to_string() const {
    const char* unit = per_ms == 3'600'000 ? "h" : per_ms == 60'000 ? "m" : "s";
    return std::to_string(count) + "/" + unit;
}

std::optional<Rate> parse_rate(std::string_view text) {
    size_t slash = text.find('/');
    if (slash == std::string_view::npos || slash == 0) return std::nullopt;
    std::string_view n = text.substr(0, slash), unit = text.substr(slash + 1);
    if (n.size() > 1 && n[0] == '0') return std::nullopt;
    uint32_t count = 0;
    auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), count);
    if (ec != std::errc() || end != n.data() + n.size() || count > kMaxRateCount) return std::nullopt;
    Rate r;
    r.count = count;
    if (unit == "s")
        r.per_ms = 1'000;
    else if (unit == "m")
        r.per_ms = 60'000;
    else if (unit == "h")
        r.per_ms = 3'600'000;
    else
        return std::nullopt;
    return r;
}

namespace {

// A token is this many units: a multiple of every period, so a millisecond adds a whole number
// of units at any rate, and the unit does not change when a reload changes the period.
constexpr uint64_t kUnitsPerToken = 3'600'000;

uint64_t capacity(const Rate& rate) { return uint64_t{rate.count} * kUnitsPerToken; }

}  // namespace

// At most kMaxRateCount * 3.6e6 units a bucket: far inside 64 bits, as is any product below,
// because elapsed time is capped at one period (a full refill) before it is multiplied.
uint64_t TokenBucket::level_at(const Rate& rate, uint64_t now_ms) const {
    uint64_t elapsed = now_ms > stamp_ms_ ? std::min<uint64_t>(now_ms - stamp_ms_, rate.per_ms) : 0;
    return std::min(capacity(rate), level_ + elapsed * rate.count * (kUnitsPerToken / rate.per_ms));
}

void TokenBucket::reset(const Rate& rate, uint64_t now_ms) {
    level_ = capacity(rate);
    stamp_ms_ = now_ms;
}

bool TokenBucket::take(const Rate& rate, uint64_t now_ms) {
    level_ = level_at(rate, now_ms);
    stamp_ms_ = std::max(stamp_ms_, now_ms);
    if (level_ < kUnitsPerToken) return false;
    level_ -= kUnitsPerToken;
    return true;
}

bool TokenBucket::full(const Rate& rate, uint64_t now_ms) const { return level_at(rate, now_ms) >= capacity(rate); }

}  // namespace sniroute::core

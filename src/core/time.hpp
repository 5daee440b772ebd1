// Durations as the config writes them, and wall-clock time as certificates count it.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string_view>

namespace sniroute::core {

// Parses "250ms", "5s", "10m", "1h", "1d" and sums such as "1m30s". Returns milliseconds; at
// most a year (anything longer is a typo, and the bound keeps the sum from overflowing).
std::optional<uint64_t> parse_duration_ms(std::string_view text);

// Unix seconds. Certificate lifetimes, renewal windows and back-off deadlines are wall-clock
// times that must survive a restart, unlike the loop's monotonic clock.
inline int64_t unix_now_s() { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace sniroute::core

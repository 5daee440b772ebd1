#include "core/time.hpp"

#include <charconv>

namespace sniroute::core {

std::optional<uint64_t> parse_duration_ms(std::string_view text) {
    if (text.empty()) return std::nullopt;
    constexpr uint64_t kYearMs = 366ull * 86'400'000;
    uint64_t total = 0;
    while (!text.empty()) {
        uint64_t n = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (ec != std::errc() || end == text.data()) return std::nullopt;
        text.remove_prefix(static_cast<size_t>(end - text.data()));
        uint64_t unit;
        if (text.starts_with("ms"))
            unit = 1, text.remove_prefix(2);
        else if (text.starts_with("s"))
            unit = 1000, text.remove_prefix(1);
        else if (text.starts_with("m"))
            unit = 60'000, text.remove_prefix(1);
        else if (text.starts_with("h"))
            unit = 3'600'000, text.remove_prefix(1);
        else if (text.starts_with("d"))
            unit = 86'400'000, text.remove_prefix(1);
        else
            return std::nullopt;
        if (n > kYearMs / unit) return std::nullopt;
        total += n * unit;
    }
    if (total > kYearMs) return std::nullopt;
    return total;
}

}  // namespace sniroute::core

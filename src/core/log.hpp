// Structured one-line logs on stderr, as text ("ts level event k=v ...") or JSON.
//
// A line is assembled in memory and written with a single write(2), so lines from several
// worker threads never interleave.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sniroute::core {

enum class Level { Info, Warn, Error };
enum class LogFormat { Text, Json };

void set_log_format(LogFormat f);

class LogLine {
public:
    LogLine(Level level, std::string_view event);
    LogLine& kv(std::string_view key, std::string_view value);
    LogLine& kv(std::string_view key, const char* value) { return kv(key, std::string_view(value ? value : "")); }
    LogLine& kv(std::string_view key, const std::string& value) { return kv(key, std::string_view(value)); }
    LogLine& kv(std::string_view key, uint64_t value);
    LogLine& kv(std::string_view key, int64_t value);
    LogLine& kv(std::string_view key, int value) { return kv(key, static_cast<int64_t>(value)); }
    LogLine& kv(std::string_view key, unsigned value) { return kv(key, static_cast<uint64_t>(value)); }
    // Writes the line. Called by the destructor if not called before.
    void emit() noexcept;
    ~LogLine() { emit(); }

    LogLine(const LogLine&) = delete;
    LogLine& operator=(const LogLine&) = delete;

private:
    void raw(std::string_view key, std::string_view value, bool quote);
    std::string buf_;
    bool json_;
    bool done_ = false;
};

inline LogLine log_info(std::string_view event) { return LogLine(Level::Info, event); }
inline LogLine log_warn(std::string_view event) { return LogLine(Level::Warn, event); }
inline LogLine log_error(std::string_view event) { return LogLine(Level::Error, event); }

}  // namespace sniroute::core

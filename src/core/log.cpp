#include "core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>

namespace sniroute::core {

namespace {

std::atomic<bool> g_json{false};

const char* level_name(Level l) {
    switch (l) {
        case Level::Info: return "info";
        case Level::Warn: return "warn";
        case Level::Error: return "error";
    }
    return "?";
}

// "2026-01-02T03:04:05.678Z" into `out` (kTimestampLen bytes). The part up to the seconds is
// cached per thread and reformatted only when the second changes: with an access log on, every
// connection writes a line, and gmtime_r + snprintf per line showed in profiles.
constexpr size_t kTimestampLen = 24;

void timestamp(char* out) {
    thread_local std::time_t cached_sec = -1;
    thread_local char cached[80];  // room for any int the format could see; 20 bytes are used
    using namespace std::chrono;
    auto now = system_clock::now();
    std::time_t t = system_clock::to_time_t(now);
    auto ms = static_cast<int>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
    if (t != cached_sec) {
        std::tm tm{};
        gmtime_r(&t, &tm);
        std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = t;
    }
    std::memcpy(out, cached, 20);
    out[20] = static_cast<char>('0' + ms / 100);
    out[21] = static_cast<char>('0' + ms / 10 % 10);
    out[22] = static_cast<char>('0' + ms % 10);
    out[23] = 'Z';
}

// Values may carry bytes a client chose (an SNI is validated, but a Host header or an error
// text may not be), so both formats escape control characters, quotes and backslashes.
void append_escaped(std::string& out, std::string_view v) {
    for (unsigned char c : v) {
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(static_cast<char>(c));
        } else if (c < 0x20 || c == 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\u%04x", c);
            out += hex;
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
}

bool needs_quotes(std::string_view v) {
    if (v.empty()) return true;
    for (unsigned char c : v)
        if (c <= 0x20 || c == '"' || c == '\\' || c == '=' || c >= 0x7f) return true;
    return false;
}

}  // namespace

void set_log_format(LogFormat f) { g_json.store(f == LogFormat::Json, std::memory_order_relaxed); }

LogLine::LogLine(Level level, std::string_view event) : json_(g_json.load(std::memory_order_relaxed)) {
    buf_.reserve(256);
    char ts[kTimestampLen];
    timestamp(ts);
    if (json_) {
        buf_ += "{\"ts\":\"";
        buf_.append(ts, kTimestampLen);
        buf_ += "\",\"level\":\"";
        buf_ += level_name(level);
        buf_ += "\",\"event\":\"";
        append_escaped(buf_, event);
        buf_ += '"';
    } else {
        buf_.append(ts, kTimestampLen);
        buf_ += ' ';
        buf_ += level_name(level);
        buf_ += ' ';
        buf_ += event;
    }
}

void LogLine::raw(std::string_view key, std::string_view value, bool quote) {
    if (json_) {
        buf_ += ",\"";
        buf_ += key;
        buf_ += "\":";
        if (quote) buf_ += '"';
        append_escaped(buf_, value);
        if (quote) buf_ += '"';
    } else {
        buf_ += ' ';
        buf_ += key;
        buf_ += '=';
        if (quote && needs_quotes(value)) {
            buf_ += '"';
            append_escaped(buf_, value);
            buf_ += '"';
        } else {
            buf_ += value;
        }
    }
}

LogLine& LogLine::kv(std::string_view key, std::string_view value) {
    raw(key, value, true);
    return *this;
}

LogLine& LogLine::kv(std::string_view key, uint64_t value) {
    char digits[24];
    auto r = std::to_chars(digits, digits + sizeof digits, value);
    raw(key, std::string_view(digits, static_cast<size_t>(r.ptr - digits)), false);
    return *this;
}

LogLine& LogLine::kv(std::string_view key, int64_t value) {
    char digits[24];
    auto r = std::to_chars(digits, digits + sizeof digits, value);
    raw(key, std::string_view(digits, static_cast<size_t>(r.ptr - digits)), false);
    return *this;
}

void LogLine::emit() noexcept {
    if (done_) return;
    done_ = true;
    if (json_) buf_ += '}';
    buf_ += '\n';
    const char* p = buf_.data();
    size_t left = buf_.size();
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0) break;  // stderr gone: nothing useful to do from a logger
        p += n;
        left -= static_cast<size_t>(n);
    }
}

}  // namespace sniroute::core

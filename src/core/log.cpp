#include "core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
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

std::string timestamp() {
    using namespace std::chrono;
    auto now = system_clock::now();
    std::time_t t = system_clock::to_time_t(now);
    auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return buf;
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

void set_log_format(config::LogFormat f) { g_json.store(f == config::LogFormat::Json, std::memory_order_relaxed); }

LogLine::LogLine(Level level, std::string_view event) : json_(g_json.load(std::memory_order_relaxed)) {
    buf_.reserve(256);
    if (json_) {
        buf_ += "{\"ts\":\"" + timestamp() + "\",\"level\":\"" + level_name(level) + "\",\"event\":\"";
        append_escaped(buf_, event);
        buf_ += "\"";
    } else {
        buf_ += timestamp();
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
    raw(key, std::to_string(value), false);
    return *this;
}

LogLine& LogLine::kv(std::string_view key, int64_t value) {
    raw(key, std::to_string(value), false);
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

// Helpers for the config loader tests: TOML text written inline, and diagnostics compared by
// LINE, COLUMN and a part of the message.
#pragma once

#include <doctest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace sniroute::config::test {

inline const std::string kPath = "test.toml";

// Raw string literals in the tests start with a newline after R"( so the TOML lines up with
// the code; dropping it makes the first visible line line 1.
inline std::string toml(std::string_view text) {
    if (text.starts_with('\n')) text.remove_prefix(1);
    return std::string(text);
}

inline LoadResult load(std::string_view text) { return load_string(toml(text), kPath); }

struct Want {
    uint32_t line;
    uint32_t column;
    std::string message_part;
};

inline std::string describe(const std::vector<Diagnostic>& diags) {
    std::string s;
    for (const auto& d : diags) s += "\n  " + d.to_string();
    return s.empty() ? "(no diagnostics)" : s;
}

// The load must fail with exactly these diagnostics, in any order, each at its LINE:COLUMN and
// containing its message part.
inline void check_diagnostics(const LoadResult& r, const std::vector<Want>& wants) {
    INFO("diagnostics:", describe(r.diagnostics));
    CHECK_FALSE(r.config.has_value());
    CHECK(r.diagnostics.size() == wants.size());
    for (const auto& w : wants) {
        bool found = false;
        for (const auto& d : r.diagnostics)
            found = found ||
                    (d.line == w.line && d.column == w.column && d.message.find(w.message_part) != std::string::npos);
        CHECK_MESSAGE(found, "expected ", kPath, ":", w.line, ":", w.column, ": ...", w.message_part, "...");
    }
    for (const auto& d : r.diagnostics) CHECK(d.file == kPath);
}

// The load must succeed with exactly these warnings, in any order, each at its LINE:COLUMN and
// containing its message part.
inline void check_warnings(const LoadResult& r, const std::vector<Want>& wants) {
    INFO("diagnostics:", describe(r.diagnostics));
    INFO("warnings:", describe(r.warnings));
    CHECK(r.config.has_value());
    CHECK(r.diagnostics.empty());
    CHECK(r.warnings.size() == wants.size());
    for (const auto& w : wants) {
        bool found = false;
        for (const auto& d : r.warnings)
            found = found ||
                    (d.line == w.line && d.column == w.column && d.message.find(w.message_part) != std::string::npos);
        CHECK_MESSAGE(found, "expected warning ", kPath, ":", w.line, ":", w.column, ": ...", w.message_part, "...");
    }
    for (const auto& d : r.warnings) CHECK(d.file == kPath);
}

// A table of failing configs: what each shows, its TOML, and the diagnostics it must give.
struct ErrorCase {
    std::string what;
    const char* text;
    std::vector<Want> wants;
};

inline void run(const std::vector<ErrorCase>& cases) {
    for (const auto& c : cases) {
        INFO(c.what);
        check_diagnostics(load(c.text), c.wants);
    }
}

// A config that must load without a single diagnostic.
inline Config load_ok(std::string_view text) {
    LoadResult r = load(text);
    INFO("diagnostics:", describe(r.diagnostics));
    REQUIRE(r.diagnostics.empty());
    REQUIRE(r.config.has_value());
    return std::move(*r.config);
}

}  // namespace sniroute::config::test

// Host-name matching for SNI and Host: exact names and "*.suffix" wildcards.
//
// The table maps patterns to an opaque index (a backend slot chosen by the caller). It only
// answers "which configured pattern covers this name"; it never turns a name into an address,
// so a client cannot make sniroute dial anything it was not configured to (no open proxy).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sniroute::route {

class NameTable {
public:
    // Adds a pattern: "mail.example.com" or "*.example.org". The pattern must already be valid
    // (config validation checks it); matching is case-insensitive. Returns false if the same
    // pattern was already added.
    bool add(std::string_view pattern, size_t index);

    // Exact match first; otherwise the longest wildcard suffix that covers the name.
    // "*.example.org" covers "a.example.org" and "a.b.example.org" but not "example.org".
    std::optional<size_t> find(std::string_view name) const;

private:
    // Transparent hashing lets find() probe with string_views into one lower-cased copy of the
    // name, instead of allocating a string per candidate suffix.
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    using Map = std::unordered_map<std::string, size_t, Hash, std::equal_to<>>;
    Map exact_;
    Map suffix_;  // keyed by the suffix with its leading dot (".example.org")
};

}  // namespace sniroute::route

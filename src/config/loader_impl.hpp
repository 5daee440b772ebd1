// The loader's insides, shared by its two files: loader.cpp (the document, global, backends,
// listeners, routes, admin) and loader_acme.cpp ([acme] and [[certificates]]). Not for use
// outside src/config: everything else goes through load_file and load_string.
#pragma once

#include <toml++/toml.h>

#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "core/time.hpp"

namespace sniroute::config::detail {

class Loader {
public:
    explicit Loader(std::string path) : path_(std::move(path)) {}

    LoadResult run(std::string_view text);

private:
    void error(const toml::source_region& at, std::string msg) {
        diags_.push_back(
            {path_, static_cast<uint32_t>(at.begin.line), static_cast<uint32_t>(at.begin.column), std::move(msg)});
    }
    void warning(const toml::source_region& at, std::string msg) {
        warnings_.push_back(
            {path_, static_cast<uint32_t>(at.begin.line), static_cast<uint32_t>(at.begin.column), std::move(msg)});
    }

    // Reports every key of `tbl` not in `allowed`, at the key's own position.
    void check_keys(const toml::table& tbl, std::initializer_list<std::string_view> allowed, std::string_view where) {
        for (auto&& [k, v] : tbl) {
            bool ok = false;
            for (auto a : allowed) ok = ok || k.str() == a;
            if (!ok) error(k.source(), "unknown key '" + std::string(k.str()) + "' in " + std::string(where));
        }
    }

    const toml::node* get(const toml::table& t, std::string_view key) { return t.get(key); }

    std::optional<std::string> get_string(const toml::table& t, std::string_view key) {
        const toml::node* n = get(t, key);
        if (!n) return std::nullopt;
        if (auto s = n->value<std::string>(); s && n->is_string()) return *s;
        error(n->source(), "'" + std::string(key) + "' must be a string");
        return std::nullopt;
    }

    // A string that must be one of `choices`; any other is reported as
    // unknown WHAT "x" (expected a, b or c).
    template <class E>
    std::optional<E> get_choice(const toml::table& t, std::string_view key, std::string_view what,
                                std::initializer_list<std::pair<std::string_view, E>> choices) {
        auto s = get_string(t, key);
        if (!s) return std::nullopt;
        std::string expected;
        size_t i = 0;
        for (const auto& [name, value] : choices) {
            if (*s == name) return value;
            if (i++ > 0) expected += i == choices.size() ? " or " : ", ";
            expected += name;
        }
        error(t.get(key)->source(), "unknown " + std::string(what) + " \"" + *s + "\" (expected " + expected + ")");
        return std::nullopt;
    }

    std::optional<bool> get_bool(const toml::table& t, std::string_view key) {
        const toml::node* n = get(t, key);
        if (!n) return std::nullopt;
        if (n->is_boolean()) return n->as_boolean()->get();
        error(n->source(), "'" + std::string(key) + "' must be true or false");
        return std::nullopt;
    }

    void get_uint(const toml::table& t, std::string_view key, uint32_t& out, int64_t lo, int64_t hi) {
        const toml::node* n = get(t, key);
        if (!n) return;
        if (!n->is_integer()) return error(n->source(), "'" + std::string(key) + "' must be an integer");
        int64_t v = n->as_integer()->get();
        if (v < lo || v > hi)
            return error(n->source(), "'" + std::string(key) + "' must be between " + std::to_string(lo) + " and " +
                                          std::to_string(hi));
        out = static_cast<uint32_t>(v);
    }

    void get_duration(const toml::table& t, std::string_view key, uint64_t& out) {
        const toml::node* n = get(t, key);
        if (!n) return;
        auto s = n->value<std::string>();
        if (!n->is_string() || !s)
            return error(n->source(), "'" + std::string(key) + "' must be a duration string such as \"5s\"");
        auto ms = core::parse_duration_ms(*s);
        if (!ms || *ms == 0)
            return error(n->source(), "'" + std::string(key) + "': cannot parse duration \"" + *s +
                                          "\" (use ms, s, m, h, d, e.g. \"1m30s\")");
        out = *ms;
    }

    // A string or an array of strings, each passed to `each` with its position.
    template <class F>
    void get_string_list(const toml::table& t, std::string_view key, F&& each) {
        const toml::node* n = get(t, key);
        if (!n) return;
        if (n->is_string()) return each(*n->value<std::string>(), n->source());
        const toml::array* arr = n->as_array();
        if (!arr) return error(n->source(), "'" + std::string(key) + "' must be an array of strings");
        for (const toml::node& e : *arr) {
            if (!e.is_string()) {
                error(e.source(), "'" + std::string(key) + "' entries must be strings");
                continue;
            }
            each(*e.value<std::string>(), e.source());
        }
    }

    void load_global(const toml::table& t);
    void load_backends(const toml::table& t);
    void load_listeners(const toml::node& n);
    void load_admin(const toml::table& t);
    std::optional<core::SocketAddress> bind_address(const std::string& s, const toml::source_region& at,
                                                    const std::string& owner);
    void load_listener(const toml::table& t);
    void load_route(const toml::table& t, Listener& l, std::set<std::string>& names);
    void load_ip_policy(const toml::table& t, Listener& l);
    void get_cidrs(const toml::table& t, std::string_view key, const Listener& l, std::vector<core::Cidr>& out);
    void load_acme(const toml::table& t);
    void load_certificates(const toml::node& n, const toml::table& root);
    void load_certificate(const toml::table& t);
    std::optional<size_t> backend_ref(const toml::table& t, std::string_view key, bool& present);
    void check_challenge_reach(const std::string& domain, const toml::source_region& at);

    std::string path_;
    std::vector<Diagnostic> diags_;
    std::vector<Diagnostic> warnings_;
    Config cfg_;
    std::unordered_map<std::string, size_t> backend_index_;
    std::set<std::string> listener_names_;
    std::vector<std::pair<core::SocketAddress, std::string>> binds_seen_;
};

}  // namespace sniroute::config::detail

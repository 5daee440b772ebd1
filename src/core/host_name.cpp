#include "core/host_name.hpp"

namespace sniroute::core {

bool normalize_host_name(std::string_view in, std::string& out) {
    if (!in.empty() && in.back() == '.') in.remove_suffix(1);
    if (in.empty() || in.size() > 253) return false;
    std::string name;
    name.reserve(in.size());
    size_t label = 0;
    for (char c : in) {
        if (c == '.') {
            if (label == 0) return false;  // empty label: leading dot or ".."
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            if (++label > 63) return false;
        } else if (c >= 'A' && c <= 'Z') {
            if (++label > 63) return false;
            c = static_cast<char>(c - 'A' + 'a');
        } else {
            return false;  // NUL, '/', ':', '[', '%', space, '_' and all non-ASCII bytes
        }
        name.push_back(c);
    }
    if (label == 0) return false;
    out = std::move(name);
    return true;
}

bool normalize_pattern(std::string_view pattern, std::string& out) {
    if (pattern.starts_with("*.")) {
        std::string host;
        if (!normalize_host_name(pattern.substr(2), host)) return false;
        out = "*." + host;
        return true;
    }
    return normalize_host_name(pattern, out);
}

std::string ascii_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool is_base64url_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool is_base64url(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_base64url_char(c)) return false;
    return true;
}

}  // namespace sniroute::core

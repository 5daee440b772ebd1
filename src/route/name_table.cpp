#include "route/name_table.hpp"

#include "core/host_name.hpp"

namespace sniroute::route {

bool NameTable::add(std::string_view pattern, size_t index) {
    std::string p = core::ascii_lower(pattern);
    if (p.starts_with("*.")) return suffix_.emplace(p.substr(1), index).second;
    return exact_.emplace(std::move(p), index).second;
}

std::optional<size_t> NameTable::find(std::string_view name) const {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    std::string key = core::ascii_lower(name);
    if (auto it = exact_.find(key); it != exact_.end()) return it->second;
    if (suffix_.empty()) return std::nullopt;
    // Walk the dots left to right: the first suffix found is the longest one. The label before
    // the first dot must be non-empty, which is what keeps "*.x" from matching "x" or ".x".
    for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1)) {
        if (dot == 0) continue;
        if (auto it = suffix_.find(std::string_view(key).substr(dot)); it != suffix_.end()) return it->second;
    }
    return std::nullopt;
}

}  // namespace sniroute::route

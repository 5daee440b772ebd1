// The routing snapshot: one immutable view of the config plus a name table per listener.
//
// Workers hold it through a shared_ptr; a reload builds a new snapshot and swaps it in, while
// sessions started under the old one keep theirs until they end.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "route/name_table.hpp"

namespace sniroute::route {

struct Decision {
    const config::Route* route = nullptr;      // null when the default backend (or nothing) applies
    const config::Backend* backend = nullptr;  // null: refuse, no route
};

class Snapshot {
public:
    explicit Snapshot(config::Config cfg);

    const config::Config& config() const { return cfg_; }
    const config::Listener& listener(size_t i) const { return cfg_.listeners[i]; }
    // Index of the listener with this name, or -1.
    long find_listener(std::string_view name) const;

    // Routes `name` (already validated and lower-cased, or empty when the client sent none)
    // on listener `li`: a matching route, else the listener's default backend, else nothing.
    Decision route(size_t li, std::string_view name) const;

private:
    config::Config cfg_;
    std::vector<NameTable> tables_;  // per listener; the value is the route index
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace sniroute::route

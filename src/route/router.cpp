#include "route/router.hpp"

namespace sniroute::route {

Snapshot::Snapshot(config::Config cfg) : cfg_(std::move(cfg)) {
    tables_.resize(cfg_.listeners.size());
    for (size_t li = 0; li < cfg_.listeners.size(); ++li) {
        const auto& routes = cfg_.listeners[li].routes;
        for (size_t ri = 0; ri < routes.size(); ++ri)
            for (const auto& pattern : routes[ri].match) tables_[li].add(pattern, ri);
    }
}

long Snapshot::find_listener(std::string_view name) const {
    for (size_t i = 0; i < cfg_.listeners.size(); ++i)
        if (cfg_.listeners[i].name == name) return static_cast<long>(i);
    return -1;
}

Decision Snapshot::route(size_t li, std::string_view name) const {
    const config::Listener& l = cfg_.listeners[li];
    Decision d;
    if (!name.empty()) {
        if (auto ri = tables_[li].find(name)) {
            d.route = &l.routes[*ri];
            d.backend = &cfg_.backends[d.route->backend];
            return d;
        }
    }
    if (l.default_backend) d.backend = &cfg_.backends[*l.default_backend];
    return d;
}

}  // namespace sniroute::route

#include "server/status.hpp"

#include <map>

namespace sniroute::server {

using nlohmann::json;

namespace {

const char* acme_mode(config::AcmeMode m) {
    switch (m) {
        case config::AcmeMode::Auto: return "auto";
        case config::AcmeMode::Local: return "local";
        case config::AcmeMode::Backend: return "backend";
    }
    return "?";
}

const char* proxy_protocol(config::ProxyProtocol p) {
    switch (p) {
        case config::ProxyProtocol::Off: return "off";
        case config::ProxyProtocol::V1: return "v1";
        case config::ProxyProtocol::V2: return "v2";
    }
    return "?";
}

json addresses(const std::vector<core::SocketAddress>& list) {
    json out = json::array();
    for (const auto& a : list) out.push_back(a.to_string());
    return out;
}

// Connections open now per listener name, summed over the workers (see proxy/stats.hpp).
std::map<std::string, uint64_t> active_connections(const std::vector<std::unique_ptr<Worker>>& workers) {
    std::map<std::string, uint64_t> active;
    for (const auto& w : workers)
        w->stats().visit([&](const proxy::ListenerStats& l) {
            uint64_t closed = l.closed.value();  // closed first: see ListenerStats
            active[l.name] += l.opened.value() - closed;
        });
    return active;
}

}  // namespace

std::string render_status(const StatusFacts& f) {
    const config::Config& cfg = *f.config;
    json j;
    j["config"] = {{"path", cfg.path},
                   {"loaded", f.stats->loaded_s},
                   {"reloads_ok", f.stats->reloads_ok},
                   {"reloads_failed", f.stats->reloads_failed}};
    j["started"] = f.stats->started_s;
    j["ready"] = f.ready;
    j["workers"] = f.workers->size();

    const auto active = active_connections(*f.workers);
    json listeners = json::array();
    for (const auto& l : cfg.listeners) {
        json routes = json::array();
        for (const auto& r : l.routes) {
            json route = {{"match", r.match}, {"backend", cfg.backends[r.backend].name}};
            if (l.protocol == config::Protocol::Http) {
                route["acme"] = acme_mode(r.acme);
                route["redirect_https"] = r.redirect_https;
            }
            routes.push_back(std::move(route));
        }
        auto it = active.find(l.name);
        listeners.push_back(
            {{"name", l.name},
             {"protocol", config::to_string(l.protocol)},
             {"bind", addresses(l.bind)},
             {"accept_proxy_protocol", l.accept_proxy_protocol},
             {"default_backend", l.default_backend ? json(cfg.backends[*l.default_backend].name) : json()},
             {"routes", std::move(routes)},
             {"connections_active", it == active.end() ? 0 : it->second}});
    }
    j["listeners"] = std::move(listeners);

    json backends = json::array();
    for (const auto& b : cfg.backends)
        backends.push_back({{"name", b.name},
                            {"proxy_protocol", proxy_protocol(b.proxy_protocol)},
                            {"servers", addresses(b.servers)}});
    j["backends"] = std::move(backends);

    json certs = json::array();
    for (const auto& c : *f.certs) {
        json served = json::array();
        for (const auto& [listener, current] : c.served)
            served.push_back({{"listener", listener}, {"current", current}});
        certs.push_back({{"name", c.name},
                         {"not_after", c.not_after},
                         {"renewals_ok", c.counts.renewals_ok},
                         {"renewals_failed", c.counts.renewals_failed},
                         {"deploy_failures", c.counts.deploy_failures},
                         {"served", std::move(served)}});
    }
    j["certificates"] = std::move(certs);
    // Names from the config may hold any UTF-8; bytes that are not are replaced, never thrown on.
    return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace sniroute::server

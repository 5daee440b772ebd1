// toml++ document -> validated Config, with a FILE:LINE:COL diagnostic for every problem. The
// document, [global], backends, listeners (binds, IP policy, routes) and [admin] are read here;
// [acme] and [[certificates]] in loader_acme.cpp; the Loader itself is in loader_impl.hpp.
//
// toml++ throws on syntax errors; that is the control plane, so we catch it here and turn it into
// a diagnostic like any other. Schema checks walk the document by hand, so that every unknown
// key and every bad value is reported at its own position.
#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "config/config.hpp"
#include "config/loader_impl.hpp"
#include "core/host_name.hpp"
#include "core/time.hpp"

namespace sniroute::config {

const char* to_string(Protocol p) {
    switch (p) {
        case Protocol::Tls: return "tls";
        case Protocol::Tcp: return "tcp";
        case Protocol::Http: return "http";
    }
    return "?";
}

std::string Diagnostic::to_string(std::string_view severity) const {
    std::string text = severity.empty() ? message : std::string(severity) + ": " + message;
    if (line == 0) return file + ": " + text;  // no position: the file itself is the problem
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + text;
}

namespace {

bool is_wildcard(const core::SocketAddress& a) {
    if (a.family() == AF_INET) return reinterpret_cast<const sockaddr_in*>(&a.ss)->sin_addr.s_addr == INADDR_ANY;
    if (a.family() == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&a.ss)->sin6_addr);
    return false;
}

// The IPv4 address inside an IPv4-mapped one, as "a.b.c.d:PORT".
std::string unmapped(const core::SocketAddress& a) {
    const auto& s6 = reinterpret_cast<const sockaddr_in6*>(&a.ss)->sin6_addr;
    char buf[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, s6.s6_addr + 12, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(a.port());
}

}  // namespace

bool binds_overlap(const core::SocketAddress& a, const core::SocketAddress& b) {
    if (a.family() != b.family() || a.port() != b.port()) return false;
    return a == b || is_wildcard(a) || is_wildcard(b);
}

bool is_v4_mapped(const core::SocketAddress& a) {
    return a.family() == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<const sockaddr_in6*>(&a.ss)->sin6_addr);
}

const Route* find_route(const Listener& l, std::string_view name) {
    for (const auto& r : l.routes)
        for (const auto& p : r.match)
            if (p == name) return &r;
    // The longest suffix first: walk the dots left to right. The label before the first dot
    // must be non-empty, so "*.x" covers "a.x" and "a.b.x" but never "x".
    for (size_t dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.', dot + 1)) {
        if (dot == 0) continue;
        std::string_view suffix = name.substr(dot);
        for (const auto& r : l.routes)
            for (const auto& p : r.match)
                if (p.starts_with("*.") && std::string_view(p).substr(1) == suffix) return &r;
    }
    return nullptr;
}

namespace detail {

LoadResult Loader::run(std::string_view text) {
    cfg_.path = path_;
    toml::table root;
    try {
        root = toml::parse(text, path_);
    } catch (const toml::parse_error& e) {
        error(e.source(), std::string(e.description()));
        return {std::nullopt, std::move(diags_), {}};
    }
    check_keys(root, {"global", "listeners", "backends", "acme", "certificates", "admin"}, "the top level");
    auto table_at = [&](std::string_view key) -> const toml::table* {
        const toml::node* n = root.get(key);
        if (n && !n->is_table()) error(n->source(), "'" + std::string(key) + "' must be a table");
        return n ? n->as_table() : nullptr;
    };
    if (auto* g = table_at("global")) load_global(*g);
    if (auto* a = table_at("acme")) load_acme(*a);
    // Backends first, so that listeners can resolve references in one pass.
    if (auto* b = table_at("backends")) load_backends(*b);
    if (const toml::node* l = root.get("listeners"))
        load_listeners(*l);
    else
        error(toml::source_region{{1, 1}, {1, 1}, nullptr}, "no [[listeners]] defined");
    if (auto* a = table_at("admin")) load_admin(*a);
    if (const toml::node* c = root.get("certificates")) load_certificates(*c, root);

    if (!diags_.empty()) return {std::nullopt, std::move(diags_), std::move(warnings_)};
    return {std::move(cfg_), {}, std::move(warnings_)};
}

void Loader::load_global(const toml::table& t) {
    check_keys(t,
               {"client_hello_timeout", "connect_timeout", "idle_timeout", "drain_timeout", "max_connections",
                "max_client_hello", "max_http_head", "workers", "log_format", "access_log"},
               "[global]");
    Global& g = cfg_.global;
    get_duration(t, "client_hello_timeout", g.inspect_timeout_ms);
    get_duration(t, "connect_timeout", g.connect_timeout_ms);
    get_duration(t, "idle_timeout", g.idle_timeout_ms);
    get_duration(t, "drain_timeout", g.drain_timeout_ms);
    get_uint(t, "max_connections", g.max_connections, 1, 10'000'000);
    get_uint(t, "max_client_hello", g.max_client_hello, 512, 1 << 20);
    get_uint(t, "max_http_head", g.max_http_head, 512, 1 << 20);
    get_uint(t, "workers", g.workers, 0, 256);
    if (auto f = get_choice<LogFormat>(t, "log_format", "log_format",
                                       {{"text", LogFormat::Text}, {"json", LogFormat::Json}}))
        g.log_format = *f;
    if (auto a = get_bool(t, "access_log")) g.access_log = *a;
}

void Loader::load_backends(const toml::table& t) {
    for (auto&& [name, node] : t) {
        const toml::table* b = node.as_table();
        if (!b) {
            error(node.source(), "backend '" + std::string(name.str()) + "' must be a table");
            continue;
        }
        std::string where = "[backends." + std::string(name.str()) + "]";
        check_keys(*b, {"servers", "proxy_protocol"}, where);
        Backend be;
        be.name = std::string(name.str());
        get_string_list(*b, "servers", [&](const std::string& s, const toml::source_region& at) {
            auto a = core::SocketAddress::parse(s);
            if (!a) return error(at, "cannot parse server address \"" + s + "\" (expected IPv4:PORT or [IPv6]:PORT)");
            // Only a warning: failover tries the server again, which works and which a test may
            // want, but is rarely what was meant.
            if (std::find(be.servers.begin(), be.servers.end(), *a) != be.servers.end())
                warning(at, where + ": server " + s + " is listed twice (failover will try it again)");
            be.servers.push_back(*a);
        });
        const toml::node* servers = b->get("servers");
        if (!servers)
            error(b->source(), where + " has no 'servers'");
        else if (servers->is_array() && servers->as_array()->empty())
            error(servers->source(), where + ": empty server list");
        if (auto pp = get_choice<ProxyProtocol>(
                *b, "proxy_protocol", "proxy_protocol",
                {{"off", ProxyProtocol::Off}, {"v1", ProxyProtocol::V1}, {"v2", ProxyProtocol::V2}}))
            be.proxy_protocol = *pp;
        backend_index_[be.name] = cfg_.backends.size();
        cfg_.backends.push_back(std::move(be));
    }
}

std::optional<size_t> Loader::backend_ref(const toml::table& t, std::string_view key, bool& present) {
    present = t.get(key) != nullptr;
    auto name = get_string(t, key);
    if (!name) return std::nullopt;
    auto it = backend_index_.find(*name);
    if (it == backend_index_.end()) {
        error(t.get(key)->source(), "unknown backend \"" + *name + "\"");
        return std::nullopt;
    }
    return it->second;
}

// A bind address, checked against every bind seen so far (listeners and the admin listener
// alike: both are bound by this process). `owner` names the one it belongs to in diagnostics.
std::optional<core::SocketAddress> Loader::bind_address(const std::string& s, const toml::source_region& at,
                                                        const std::string& owner) {
    auto a = core::SocketAddress::parse(s);
    if (!a) {
        error(at, "cannot parse bind address \"" + s + "\" (expected IPv4:PORT or [IPv6]:PORT)");
        return std::nullopt;
    }
    if (is_v4_mapped(*a)) {
        error(at, "bind address " + s +
                      " is an IPv4-mapped IPv6 address, which an IPv6-only socket cannot bind; write " + unmapped(*a));
        return std::nullopt;
    }
    for (auto& [seen, other] : binds_seen_) {
        if (seen == *a) {
            error(at, "bind address " + s + " is already used by " + other);
            return std::nullopt;
        }
        if (binds_overlap(seen, *a)) {
            error(at, "bind address " + s + " overlaps " + seen.to_string() + " of " + other +
                          " (a wildcard address holds its port on every address of its family)");
            return std::nullopt;
        }
    }
    binds_seen_.emplace_back(*a, owner);
    return a;
}

void Loader::load_admin(const toml::table& t) {
    check_keys(t, {"bind"}, "[admin]");
    get_string_list(t, "bind", [&](const std::string& s, const toml::source_region& at) {
        if (auto a = bind_address(s, at, "the admin listener")) cfg_.admin.bind.push_back(*a);
    });
    if (const toml::node* b = t.get("bind"); b && b->is_array() && b->as_array()->empty())
        error(b->source(), "[admin]: empty bind list (leave 'bind' out for no admin listener)");
}

void Loader::load_listeners(const toml::node& n) {
    const toml::array* arr = n.as_array();
    if (!arr) return error(n.source(), "'listeners' must be an array of tables ([[listeners]])");
    if (arr->empty()) return error(n.source(), "no listeners defined");
    for (const toml::node& e : *arr) {
        if (const toml::table* t = e.as_table())
            load_listener(*t);
        else
            error(e.source(), "each listener must be a table");
    }
}

void Loader::load_listener(const toml::table& t) {
    check_keys(t,
               {"name", "bind", "protocol", "default_backend", "accept_proxy_protocol", "routes", "allow", "deny",
                "max_connections_per_ip", "new_connections_per_ip"},
               "[[listeners]]");
    Listener l;
    if (auto name = get_string(t, "name")) {
        l.name = *name;
        if (name->empty())
            error(t.get("name")->source(), "listener name must not be empty");
        else if (!listener_names_.insert(*name).second)
            error(t.get("name")->source(), "duplicate listener name \"" + *name + "\"");
    } else if (!t.get("name")) {
        error(t.source(), "listener has no 'name'");
    }
    get_string_list(t, "bind", [&](const std::string& s, const toml::source_region& at) {
        if (auto a = bind_address(s, at, "listener \"" + l.name + "\"")) l.bind.push_back(*a);
    });
    if (!t.get("bind"))
        error(t.source(), "listener \"" + l.name + "\" has no 'bind'");
    else if (t.get("bind")->is_array() && t.get("bind")->as_array()->empty())
        error(t.get("bind")->source(), "listener \"" + l.name + "\": empty bind list");

    if (auto p = get_choice<Protocol>(t, "protocol", "protocol",
                                      {{"tls", Protocol::Tls}, {"tcp", Protocol::Tcp}, {"http", Protocol::Http}})) {
        l.protocol = *p;
    } else if (!t.get("protocol")) {
        error(t.source(), "listener \"" + l.name + "\" has no 'protocol'");
    }
    bool has_default = false;
    l.default_backend = backend_ref(t, "default_backend", has_default);
    if (l.protocol == Protocol::Tcp && !has_default)
        error(t.source(),
              "tcp listener \"" + l.name + "\" needs a default_backend (plain TCP carries no name to route by)");
    if (auto app = get_bool(t, "accept_proxy_protocol")) l.accept_proxy_protocol = *app;
    load_ip_policy(t, l);

    if (const toml::node* rn = t.get("routes")) {
        const toml::array* routes = rn->as_array();
        if (!routes) {
            error(rn->source(), "'routes' must be an array of tables ([[listeners.routes]])");
        } else if (l.protocol == Protocol::Tcp && !routes->empty()) {
            error(rn->source(), "tcp listener \"" + l.name + "\" cannot have routes: it sees no name to match");
        } else {
            std::set<std::string> names;  // normalised patterns seen so far
            for (const toml::node& r : *routes) {
                if (const toml::table* rt = r.as_table())
                    load_route(*rt, l, names);
                else
                    error(r.source(), "each route must be a table");
            }
        }
    }
    const toml::node* rn = t.get("routes");
    bool no_routes = !rn || (rn->is_array() && rn->as_array()->empty());
    if (l.protocol == Protocol::Tls && t.get("protocol") && !has_default && no_routes)
        warning(t.source(),
                "tls listener \"" + l.name + "\" has no routes and no default_backend: it refuses every connection");
    cfg_.listeners.push_back(std::move(l));
}

// allow, deny and the per-IP limits (README: Configuration, IP policy).
void Loader::load_ip_policy(const toml::table& t, Listener& l) {
    if (t.get("allow")) l.allow.clear();  // an explicit list replaces the default "everyone"
    get_cidrs(t, "allow", l, l.allow);
    get_cidrs(t, "deny", l, l.deny);
    if (const toml::node* a = t.get("allow"); a && a->is_array() && a->as_array()->empty())
        warning(a->source(), "listener \"" + l.name + "\": empty allow list: it refuses every connection");
    get_uint(t, "max_connections_per_ip", l.max_connections_per_ip, 0, 10'000'000);
    if (const toml::node* n = t.get("new_connections_per_ip")) {
        auto s = n->value<std::string>();
        auto r = s && n->is_string() ? core::parse_rate(*s) : std::nullopt;
        if (r)
            l.new_connections_per_ip = *r;
        else
            error(n->source(),
                  "'new_connections_per_ip' must be a rate such as \"20/s\", \"300/m\" or \"1000/h\" (at most " +
                      std::to_string(core::kMaxRateCount) + " a unit; \"0/s\" = no limit)");
    }
}

void Loader::get_cidrs(const toml::table& t, std::string_view key, const Listener& l, std::vector<core::Cidr>& out) {
    get_string_list(t, key, [&](const std::string& s, const toml::source_region& at) {
        core::CidrParse p = core::parse_cidr(s);
        if (!p.cidr)
            return error(at, "listener \"" + l.name + "\": " + std::string(key) + " entry \"" + s + "\": " + p.error);
        // Masked as nginx and HAProxy do, but said: "192.0.2.7/24" is as often a typo for a
        // single address as it is a lazy way to write its network.
        if (p.host_bits)
            warning(at, "listener \"" + l.name + "\": " + std::string(key) + " entry \"" + s +
                            "\" has bits set beyond its prefix; it means " + p.cidr->to_string());
        out.push_back(*p.cidr);
    });
}

void Loader::load_route(const toml::table& t, Listener& l, std::set<std::string>& names) {
    check_keys(t, {"match", "backend", "acme", "redirect_https"}, "[[listeners.routes]]");
    Route r;
    get_string_list(t, "match", [&](const std::string& s, const toml::source_region& at) {
        std::string norm;
        if (!core::normalize_pattern(s, norm))
            return error(at, "invalid match \"" + s + "\" (expected a host name or *.suffix)");
        if (!names.insert(norm).second)
            return error(at, "\"" + s + "\" is matched by an earlier route of this listener");
        r.match.push_back(norm);
    });
    if (!t.get("match"))
        error(t.source(), "route has no 'match'");
    else if (t.get("match")->is_array() && t.get("match")->as_array()->empty())
        error(t.get("match")->source(), "empty match list: this route could never match");
    bool present = false;
    auto be = backend_ref(t, "backend", present);
    if (!present) error(t.source(), "route has no 'backend'");
    if (be) r.backend = *be;
    bool http = l.protocol == Protocol::Http;
    if (!http) {
        if (get_string(t, "acme")) error(t.get("acme")->source(), "'acme' applies only to http listeners");
    } else if (auto a = get_choice<AcmeMode>(
                   t, "acme", "acme mode",
                   {{"auto", AcmeMode::Auto}, {"local", AcmeMode::Local}, {"backend", AcmeMode::Backend}})) {
        r.acme = *a;
    }
    if (auto rh = get_bool(t, "redirect_https")) {
        if (!http) error(t.get("redirect_https")->source(), "'redirect_https' applies only to http listeners");
        r.redirect_https = *rh;
    }
    l.routes.push_back(std::move(r));
}

}  // namespace detail

LoadResult load_string(std::string_view text, const std::string& path) { return detail::Loader(path).run(text); }

LoadResult load_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {std::nullopt, {{path, 0, 0, "cannot open file"}}, {}};
    std::ostringstream ss;
    ss << in.rdbuf();
    return load_string(ss.str(), path);
}

}  // namespace sniroute::config

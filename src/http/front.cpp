#include "http/front.hpp"

#include <strings.h>

#include "core/host_name.hpp"

namespace sniroute::http {

namespace {

const char* reason(int status) {
    switch (status) {
        case 200: return "OK";
        case 308: return "Permanent Redirect";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 408: return "Request Timeout";
        case 421: return "Misdirected Request";
        case 431: return "Request Header Fields Too Large";
        case 502: return "Bad Gateway";
    }
    return "Error";
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// RFC 3986 3.2.3 allows any digits; a TCP port is 1-65535, and a value a backend would wrap or
// truncate ("a:65616", "a:0") names a different authority there than here.
bool valid_port(std::string_view p) {
    if (p.empty() || p.size() > 5) return false;
    unsigned value = 0;
    for (char c : p) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    return value >= 1 && value <= 65535;
}

// A byte that must never reach a response header we build: controls (CR and LF above all),
// SP and DEL. The head parser already refuses control bytes in the request target; this is
// the second line, so that no change there can turn a redirect into header injection.
bool has_unsafe_byte(std::string_view s) {
    for (unsigned char c : s)
        if (c <= 0x20 || c == 0x7f) return true;
    return false;
}

Action respond(int status, std::string_view body, const RequestHead& h, bool keep_alive, const char* source,
               std::string_view location = {}) {
    Action a;
    a.kind = Action::Kind::Respond;
    a.status = status;
    a.source = source;
    // A request with a body we did not read cannot be followed by another on this connection.
    a.keep_alive = keep_alive && h.keep_alive && !h.has_body;
    a.response = make_response(status, body, h.method == "HEAD", a.keep_alive, location);
    return a;
}

}  // namespace

bool parse_host(std::string_view value, std::string& name, std::string& authority) {
    value = trim(value);
    if (value.empty()) return false;
    if (value.front() == '[') {
        size_t close = value.find(']');
        if (close == std::string_view::npos) return false;
        std::string_view inside = value.substr(1, close - 1);
        std::string_view rest = value.substr(close + 1);
        if (!rest.empty() && (rest.front() != ':' || !valid_port(rest.substr(1)))) return false;
        if (inside.empty()) return false;
        for (char c : inside)
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
                return false;
        name.clear();
        authority.assign(value.substr(0, close + 1));
        return true;
    }
    size_t colon = value.find(':');
    std::string_view host = value.substr(0, colon);
    if (colon != std::string_view::npos && !valid_port(value.substr(colon + 1))) return false;
    if (!core::normalize_host_name(host, name)) return false;
    authority = name;
    return true;
}

std::string make_response(int status, std::string_view body, bool head_only, bool keep_alive,
                          std::string_view location) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
    r += "Server: sniroute\r\n";
    r += "Content-Type: text/plain\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    if (!location.empty() && !has_unsafe_byte(location)) r += "Location: " + std::string(location) + "\r\n";
    r += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
    r += "\r\n";
    if (!head_only) r += body;
    return r;
}

namespace {

// The path and query a redirect keeps (RFC 9112 3.2): origin-form as it is; absolute-form minus
// "scheme://authority" (with "/" put in front of a bare "?query"); the asterisk-form of
// OPTIONS and the authority-form of CONNECT name no resource, so they go to "/".
std::string redirect_target(std::string_view target) {
    if (target.starts_with("/")) return std::string(target);
    std::optional<std::string_view> rest = after_authority(target);
    if (!rest || rest->empty() || rest->starts_with("#")) return "/";
    if (rest->starts_with("?")) {
        std::string out = "/";  // appended: g++ 12 -O3 warns falsely (-Wrestrict) on "/" + string
        out += *rest;
        return out;
    }
    return std::string(*rest);
}

Action decide_for_host(const RequestHead& h, const route::Snapshot& snap, size_t li, const Sources& sources,
                       const std::string& name, const std::string& authority) {
    route::Decision d = snap.route(li, name);
    config::AcmeMode mode = d.route ? d.route->acme : config::AcmeMode::Auto;
    std::string_view path = target_path(h.target);

    Action fwd;
    fwd.kind = Action::Kind::Forward;
    fwd.backend = d.backend;
    fwd.route = d.route;

    std::string token;
    PathKind kind = (h.method == "GET" || h.method == "HEAD") ? classify(path, token) : PathKind::Other;
    if (kind == PathKind::BadToken) return respond(404, "not found\n", h, true, "bad_token");
    if (kind == PathKind::Challenge) {
        if (mode == config::AcmeMode::Backend && d.backend) return fwd;
        if (mode != config::AcmeMode::Backend)
            if (auto ans = find_answer(sources, token)) return respond(200, ans->body, h, true, ans->source);
        if (mode == config::AcmeMode::Auto && d.backend) return fwd;
        return respond(404, "no such challenge\n", h, true, "none");
    }

    if (d.route && d.route->redirect_https) {
        std::string target = redirect_target(h.target);
        std::string location = "https://" + authority + std::string(target);
        if (has_unsafe_byte(location)) return respond(400, "invalid request target\n", h, false, "error");
        return respond(308, "redirecting to " + location + "\n", h, true, "redirect", location);
    }
    if (d.backend) return fwd;
    return respond(421, "no service for this host here\n", h, true, "no_route");
}

enum class TargetAuthority { None, Found, Bad };

// The authority of an absolute-form request-target, "http://AUTHORITY/path?query" (RFC 9112
// 3.2.2). Only the http and https schemes name something a port-80 front can route.
TargetAuthority target_authority(std::string_view target, std::string_view& authority) {
    std::optional<std::string_view> rest = after_authority(target);
    if (!rest) return TargetAuthority::None;
    size_t scheme_end = target.find("://");
    std::string_view scheme = target.substr(0, scheme_end);
    if (!(scheme.size() == 4 && strncasecmp(scheme.data(), "http", 4) == 0) &&
        !(scheme.size() == 5 && strncasecmp(scheme.data(), "https", 5) == 0))
        return TargetAuthority::Bad;
    size_t start = scheme_end + 3;
    authority = target.substr(start, target.size() - rest->size() - start);
    return TargetAuthority::Found;
}

}  // namespace

Action decide(const RequestHead& h, const route::Snapshot& snap, size_t li, const Sources& sources) {
    // RFC 9112 3.2: a 1.1 request without exactly one Host, or with a bad one, gets 400.
    std::string name, authority;
    if (h.host_count > 1) return respond(400, "more than one Host header\n", h, false, "error");
    if (h.host_count == 1 && !parse_host(h.host, name, authority))
        return respond(400, "invalid Host header\n", h, false, "error");
    if (h.host_count == 0 && !(h.http_major == 1 && h.http_minor == 0))
        return respond(400, "missing Host header\n", h, false, "error");
    // RFC 9112 3.2.2: the authority of an absolute-form target wins over Host, which must still
    // be there and valid (above). Routing by it is the same lookup among the configured routes
    // as routing by Host, so a client that makes the two disagree reaches no backend it could
    // not reach by sending that name as Host; and the backend, given the head unchanged, reads
    // the same authority from the target as we did.
    std::string_view uri_authority;
    switch (target_authority(h.target, uri_authority)) {
        case TargetAuthority::None: break;
        case TargetAuthority::Bad: return respond(400, "unsupported scheme in request target\n", h, false, "error");
        case TargetAuthority::Found:
            if (!parse_host(uri_authority, name, authority))
                return respond(400, "invalid authority in request target\n", h, false, "error");
            break;
    }
    Action a = decide_for_host(h, snap, li, sources, name, authority);
    a.host = name;
    return a;
}

}  // namespace sniroute::http

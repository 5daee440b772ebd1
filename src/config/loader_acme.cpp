// [acme] and [[certificates]]: the built-in ACME client's settings, checked against the
// listeners (a certificate's HTTP-01 challenge must be able to reach the client).
#include <algorithm>
#include <filesystem>
#include <string>

#include "config/loader_impl.hpp"
#include "core/host_name.hpp"
#include "core/time.hpp"

namespace sniroute::config::detail {

namespace {

// Two paths name the same file when they are equal once "." and ".." are folded; both are
// relative to the same working directory, so nothing needs to exist to compare them.
bool same_file(const std::string& a, const std::string& b) {
    return std::filesystem::path(a).lexically_normal() == std::filesystem::path(b).lexically_normal();
}

}  // namespace

void Loader::load_acme(const toml::table& t) {
    check_keys(t,
               {"webroot", "account_thumbprint", "directory", "email", "storage", "key_type", "ca_bundle", "eab_kid",
                "eab_hmac_key"},
               "[acme]");
    Acme& a = cfg_.acme;
    if (auto w = get_string(t, "webroot")) a.webroot = *w;
    if (auto d = get_string(t, "directory")) {
        if (!d->starts_with("https://"))
            error(t.get("directory")->source(), "directory must be an https:// URL (RFC 8555 6.1)");
        a.directory = *d;
    }
    if (auto e = get_string(t, "email")) a.email = *e;
    if (auto st = get_string(t, "storage")) {
        if (st->empty())
            error(t.get("storage")->source(), "storage must not be empty");
        else
            a.storage = *st;
    }
    if (auto k = get_string(t, "key_type")) {
        if (std::find(kKeyTypes.begin(), kKeyTypes.end(), *k) == kKeyTypes.end()) {
            // "a, b, c or d", from the one list the ACME client uses too.
            std::string expected;
            for (size_t i = 0; i < kKeyTypes.size(); ++i) {
                if (i > 0) expected += i + 1 == kKeyTypes.size() ? " or " : ", ";
                expected += kKeyTypes[i];
            }
            error(t.get("key_type")->source(), "unknown key_type \"" + *k + "\" (expected " + expected + ")");
        } else
            a.key_type = *k;
    }
    if (auto c = get_string(t, "ca_bundle")) a.ca_bundle = *c;
    if (auto k = get_string(t, "eab_kid")) a.eab_kid = *k;
    if (auto h = get_string(t, "eab_hmac_key")) a.eab_hmac_key = *h;
    if (a.eab_kid.empty() != a.eab_hmac_key.empty())
        error(t.source(), "eab_kid and eab_hmac_key go together: set both or neither");
    if (auto tp = get_string(t, "account_thumbprint")) {
        // A JWK thumbprint (RFC 7638) is base64url without padding; anything else would be
        // echoed to the CA verbatim and fail validation in a confusing way.
        if (!tp->empty() && !core::is_base64url(*tp))
            error(t.get("account_thumbprint")->source(), "account_thumbprint must be base64url (A-Z a-z 0-9 - _)");
        else
            cfg_.acme.account_thumbprint = *tp;
    }
}

void Loader::load_certificates(const toml::node& n, const toml::table& root) {
    const toml::array* arr = n.as_array();
    if (!arr) return error(n.source(), "'certificates' must be an array of tables ([[certificates]])");
    for (const toml::node& e : *arr) {
        if (const toml::table* t = e.as_table())
            load_certificate(*t);
        else
            error(e.source(), "each certificate must be a table");
    }
    if (cfg_.certificates.empty()) return;
    // The built-in client answers HTTP-01 through an http listener, so it needs a directory and
    // at least one http listener whose routes do not hand the challenges to a backend.
    const toml::node* acme = root.get("acme");
    if (cfg_.acme.directory.empty())
        error(acme ? acme->source() : n.source(), "[[certificates]] need [acme] directory");
    bool have_http = false;
    for (const auto& l : cfg_.listeners) have_http = have_http || l.protocol == Protocol::Http;
    if (!have_http) error(n.source(), "[[certificates]] need an http listener to answer ACME HTTP-01 challenges");
}

void Loader::load_certificate(const toml::table& t) {
    check_keys(t, {"name", "domains", "cert_file", "key_file", "deploy", "settle", "deploy_timeout"},
               "[[certificates]]");
    Certificate c;
    if (auto name = get_string(t, "name")) {
        bool ok = !name->empty();
        for (char ch : *name)
            ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                        ch == '_' || ch == '.');
        // The name becomes a directory under storage, so it must be a plain file name.
        if (!ok || *name == "." || *name == "..")
            error(t.get("name")->source(), "certificate name must use only letters, digits, '-', '_' and '.'");
        for (const auto& other : cfg_.certificates)
            if (other.name == *name) error(t.get("name")->source(), "duplicate certificate name \"" + *name + "\"");
        c.name = *name;
    } else if (!t.get("name")) {
        error(t.source(), "certificate has no 'name'");
    }
    get_string_list(t, "domains", [&](const std::string& s, const toml::source_region& at) {
        std::string norm;
        if (s.starts_with("*.")) return error(at, "wildcard \"" + s + "\" cannot be validated with HTTP-01");
        if (!core::normalize_host_name(s, norm)) return error(at, "invalid domain \"" + s + "\"");
        check_challenge_reach(norm, at);
        c.domains.push_back(norm);
    });
    if (c.domains.empty() && !t.get("domains"))
        error(t.source(), "certificate has no 'domains'");
    else if (c.domains.empty() && t.get("domains")->is_array() && t.get("domains")->as_array()->empty())
        error(t.get("domains")->source(), "empty domains list");
    for (const char* key : {"cert_file", "key_file"}) {
        auto v = get_string(t, key);
        if (!v && !t.get(key))
            error(t.source(), std::string("certificate has no '") + key + "'");
        else if (v && v->empty())
            error(t.get(key)->source(), std::string(key) + " must not be empty");
        else if (v)
            (std::string_view(key) == "cert_file" ? c.cert_file : c.key_file) = *v;
    }
    if (!c.cert_file.empty() && same_file(c.cert_file, c.key_file))
        error(t.get("key_file")->source(), "key_file and cert_file are the same file");
    // Two certificates writing one file would overwrite each other on every renewal.
    for (const char* key : {"cert_file", "key_file"}) {
        const std::string& mine = std::string_view(key) == "cert_file" ? c.cert_file : c.key_file;
        if (mine.empty()) continue;
        bool reported = false;
        for (const auto& other : cfg_.certificates)
            for (auto [other_key, theirs] :
                 {std::pair{"cert_file", &other.cert_file}, std::pair{"key_file", &other.key_file}})
                if (!reported && same_file(mine, *theirs)) {
                    error(t.get(key)->source(), std::string(key) + " \"" + mine + "\" is also the " + other_key +
                                                    " of certificate \"" + other.name + "\"");
                    reported = true;
                }
    }
    get_string_list(t, "deploy", [&](const std::string& s, const toml::source_region&) { c.deploy.push_back(s); });
    if (t.get("settle")) {
        const toml::node* n = t.get("settle");
        auto s = n->value<std::string>();
        auto ms = s ? core::parse_duration_ms(*s) : std::nullopt;
        if (!n->is_string() || !ms)
            error(n->source(), "'settle' must be a duration such as \"30s\" or \"0s\"");
        else
            c.settle_ms = *ms;
    }
    get_duration(t, "deploy_timeout", c.deploy_timeout_ms);
    cfg_.certificates.push_back(std::move(c));
}

// The built-in client answers HTTP-01 on every http listener (http::decide): for a host no
// route matches as for one whose route says acme = "auto" or "local". Only a route with
// acme = "backend" hands the challenge to a backend, which does not know our tokens.
void Loader::check_challenge_reach(const std::string& domain, const toml::source_region& at) {
    size_t http = 0;
    std::vector<std::string> handed;
    for (const auto& l : cfg_.listeners) {
        if (l.protocol != Protocol::Http) continue;
        ++http;
        const Route* r = find_route(l, domain);
        if (r && r->acme == AcmeMode::Backend) handed.push_back("\"" + l.name + "\"");
    }
    if (handed.empty()) return;
    std::string where = handed.size() == 1 ? "http listener " : "http listeners ";
    for (size_t i = 0; i < handed.size(); ++i) where += (i > 0 ? ", " : "") + handed[i];
    std::string msg = "domain \"" + domain + "\" is routed with acme = \"backend\" on " + where;
    if (handed.size() == http)
        error(at, msg + ": the built-in client could never answer its HTTP-01 challenge");
    else
        warning(at, msg + ": a challenge that arrives there goes to the backend, not to the built-in client");
}

}  // namespace sniroute::config::detail

// libFuzzer target for the config loader (config::load_string) on arbitrary text.
//
// The loader is the one code path `validate` and `run` share, so what it lets through is what the
// data path trusts ("everything the data path reads has been checked here"). For every input:
//   - it never throws, and a config comes back exactly when there is no diagnostic;
//   - every diagnostic names the file, has a message and a position inside the text;
//   - loading the same text twice gives the same diagnostics, warnings and config;
//   - a config that loads obeys the rules the data path relies on (check_config): indices in
//     range, names normalised, no two binds that cannot both be bound, non-zero timeouts, ...;
//   - written back as TOML (render) and loaded again, it gives the same config and no more
//     warnings: nothing the loader accepted depends on how it was spelled.
// A broken invariant aborts, which libFuzzer reports as a crash.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "core/host_name.hpp"

using namespace sniroute;
using namespace sniroute::config;

namespace {

const std::string kPath = "fuzz.toml";

[[noreturn]] void fail(const char* what, const std::string& detail = "") {
    std::fprintf(stderr, "config_fuzz: invariant broken: %s\n%s\n", what, detail.c_str());
    std::abort();
}

void require(bool ok, const char* what, const std::string& detail = "") {
    if (!ok) fail(what, detail);
}

// --- a canonical text of a Config, to compare two of them ------------------------------------

std::string dump(const Config& c) {
    std::string s;
    auto add = [&](auto&&... parts) { ((s += parts), ...), s += '\n'; };
    const Global& g = c.global;
    add("global ", std::to_string(g.inspect_timeout_ms), " ", std::to_string(g.connect_timeout_ms), " ",
        std::to_string(g.idle_timeout_ms), " ", std::to_string(g.drain_timeout_ms), " ",
        std::to_string(g.max_connections), " ", std::to_string(g.max_client_hello), " ",
        std::to_string(g.max_http_head), " ", std::to_string(g.workers), " ",
        std::to_string(static_cast<int>(g.log_format)), " ", std::to_string(g.access_log));
    for (const auto& b : c.backends) {
        add("backend [", b.name, "] pp=", std::to_string(static_cast<int>(b.proxy_protocol)));
        for (const auto& a : b.servers) add("  server ", a.to_string());
    }
    for (const auto& l : c.listeners) {
        add("listener [", l.name, "] ", to_string(l.protocol),
            " default=", l.default_backend ? std::to_string(*l.default_backend) : "-",
            " pp=", std::to_string(l.accept_proxy_protocol), " per_ip=", std::to_string(l.max_connections_per_ip),
            " rate=", l.new_connections_per_ip.to_string());
        for (const auto& a : l.bind) add("  bind ", a.to_string());
        for (const auto& a : l.allow) add("  allow ", a.to_string());
        for (const auto& d : l.deny) add("  deny ", d.to_string());
        for (const auto& r : l.routes) {
            add("  route backend=", std::to_string(r.backend), " acme=", std::to_string(static_cast<int>(r.acme)),
                " redirect=", std::to_string(r.redirect_https));
            for (const auto& m : r.match) add("    match [", m, "]");
        }
    }
    for (const auto& b : c.admin.bind) add("admin bind ", b.to_string());
    const Acme& a = c.acme;
    for (const auto* f : {&a.webroot, &a.account_thumbprint, &a.directory, &a.email, &a.storage, &a.key_type,
                          &a.ca_bundle, &a.eab_kid, &a.eab_hmac_key})
        add("acme [", *f, "]");
    for (const auto& cert : c.certificates) {
        add("certificate [", cert.name, "] [", cert.cert_file, "] [", cert.key_file, "] ",
            std::to_string(cert.settle_ms), " ", std::to_string(cert.deploy_timeout_ms));
        for (const auto& d : cert.domains) add("  domain [", d, "]");
        for (const auto& d : cert.deploy) add("  deploy [", d, "]");
    }
    return s;
}

std::string dump(const LoadResult& r) {
    std::string s;
    for (const auto& d : r.diagnostics) s += "error " + d.to_string() + "\n";
    for (const auto& d : r.warnings) s += "warning " + d.to_string() + "\n";
    if (r.config) s += dump(*r.config);
    return s;
}

// --- the config written back as TOML ------------------------------------------------------------

// A TOML basic string: every byte below 0x20, DEL, '"' and '\' escaped. The loader's strings
// came out of toml++, so they are valid UTF-8 and may be written back byte for byte otherwise.
std::string quote(std::string_view v) {
    std::string out = "\"";
    for (unsigned char ch : v) {
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += static_cast<char>(ch);
        } else if (ch < 0x20 || ch == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04X", ch);
            out += buf;
        } else {
            out += static_cast<char>(ch);
        }
    }
    return out + "\"";
}

std::string ms(uint64_t v) { return quote(std::to_string(v) + "ms"); }

std::string render(const Config& c) {
    std::string s;
    const Global& g = c.global;
    s += "[global]\nclient_hello_timeout = " + ms(g.inspect_timeout_ms) +
         "\nconnect_timeout = " + ms(g.connect_timeout_ms) + "\nidle_timeout = " + ms(g.idle_timeout_ms) +
         "\ndrain_timeout = " + ms(g.drain_timeout_ms) + "\nmax_connections = " + std::to_string(g.max_connections) +
         "\nmax_client_hello = " + std::to_string(g.max_client_hello) +
         "\nmax_http_head = " + std::to_string(g.max_http_head) + "\nworkers = " + std::to_string(g.workers) +
         "\nlog_format = " + (g.log_format == LogFormat::Json ? "\"json\"" : "\"text\"") +
         "\naccess_log = " + (g.access_log ? "true" : "false") + "\n";
    const Acme& a = c.acme;
    s += "[acme]\nwebroot = " + quote(a.webroot) + "\naccount_thumbprint = " + quote(a.account_thumbprint) +
         "\nemail = " + quote(a.email) + "\nstorage = " + quote(a.storage) + "\nkey_type = " + quote(a.key_type) +
         "\nca_bundle = " + quote(a.ca_bundle) + "\neab_kid = " + quote(a.eab_kid) +
         "\neab_hmac_key = " + quote(a.eab_hmac_key) + "\n";
    if (!a.directory.empty()) s += "directory = " + quote(a.directory) + "\n";
    if (!c.admin.bind.empty()) {  // an empty list is an error: no [admin] at all means none
        s += "[admin]\nbind = [";
        for (const auto& b : c.admin.bind) s += quote(b.to_string()) + ", ";
        s += "]\n";
    }
    static const char* kProxy[] = {"off", "v1", "v2"};
    for (const auto& b : c.backends) {
        s += "[backends." + quote(b.name) + "]\nproxy_protocol = \"" + kProxy[static_cast<int>(b.proxy_protocol)] +
             "\"\nservers = [";
        for (const auto& srv : b.servers) s += quote(srv.to_string()) + ", ";
        s += "]\n";
    }
    static const char* kAcme[] = {"auto", "local", "backend"};
    for (const auto& l : c.listeners) {
        s += "[[listeners]]\nname = " + quote(l.name) + "\nprotocol = \"" + to_string(l.protocol) +
             "\"\naccept_proxy_protocol = " + (l.accept_proxy_protocol ? "true" : "false") + "\nbind = [";
        for (const auto& b : l.bind) s += quote(b.to_string()) + ", ";
        s += "]\n";
        if (l.default_backend) s += "default_backend = " + quote(c.backends[*l.default_backend].name) + "\n";
        s += "max_connections_per_ip = " + std::to_string(l.max_connections_per_ip) +
             "\nnew_connections_per_ip = " + quote(l.new_connections_per_ip.to_string()) + "\nallow = [";
        for (const auto& a : l.allow) s += quote(a.to_string()) + ", ";
        s += "]\ndeny = [";
        for (const auto& d : l.deny) s += quote(d.to_string()) + ", ";
        s += "]\n";
        for (const auto& r : l.routes) {
            s += "[[listeners.routes]]\nbackend = " + quote(c.backends[r.backend].name) + "\nmatch = [";
            for (const auto& m : r.match) s += quote(m) + ", ";
            s += "]\n";
            if (l.protocol == Protocol::Http)
                s += std::string("acme = \"") + kAcme[static_cast<int>(r.acme)] +
                     "\"\nredirect_https = " + (r.redirect_https ? "true" : "false") + "\n";
        }
    }
    for (const auto& cert : c.certificates) {
        s += "[[certificates]]\nname = " + quote(cert.name) + "\ncert_file = " + quote(cert.cert_file) +
             "\nkey_file = " + quote(cert.key_file) + "\nsettle = " + ms(cert.settle_ms) +
             "\ndeploy_timeout = " + ms(cert.deploy_timeout_ms) + "\ndomains = [";
        for (const auto& d : cert.domains) s += quote(d) + ", ";
        s += "]\ndeploy = [";
        for (const auto& d : cert.deploy) s += quote(d) + ", ";
        s += "]\n";
    }
    return s;
}

// --- what a loaded config must satisfy -----------------------------------------------------------

bool normalised_name(const std::string& n) {
    std::string again;
    return core::normalize_host_name(n, again) && again == n;
}

bool normalised_pattern(const std::string& p) {
    std::string again;
    return core::normalize_pattern(p, again) && again == p;
}

bool same_file(const std::string& a, const std::string& b) {
    return std::filesystem::path(a).lexically_normal() == std::filesystem::path(b).lexically_normal();
}

void check_config(const Config& c, const std::string& text) {
    const Global& g = c.global;
    require(g.inspect_timeout_ms > 0 && g.connect_timeout_ms > 0 && g.idle_timeout_ms > 0 && g.drain_timeout_ms > 0,
            "a zero timeout", text);
    require(g.max_connections >= 1 && g.max_client_hello >= 512 && g.max_http_head >= 512 && g.workers <= 256,
            "a limit out of range", text);
    require(!c.listeners.empty(), "a config without listeners", text);
    for (size_t i = 0; i < c.backends.size(); ++i) {
        require(!c.backends[i].servers.empty(), "a backend without servers", text);
        for (size_t j = 0; j < i; ++j)
            require(c.backends[i].name != c.backends[j].name, "two backends, one name", text);
    }
    std::vector<const core::SocketAddress*> binds;
    for (size_t i = 0; i < c.listeners.size(); ++i) {
        const Listener& l = c.listeners[i];
        require(!l.name.empty() && !l.bind.empty(), "a listener without name or bind", text);
        for (size_t j = 0; j < i; ++j) require(c.listeners[j].name != l.name, "two listeners, one name", text);
        require(!l.default_backend || *l.default_backend < c.backends.size(), "default_backend out of range", text);
        require(l.protocol != Protocol::Tcp || (l.default_backend && l.routes.empty()),
                "a tcp listener with routes or without a default", text);
        std::vector<std::string> seen;
        for (const auto& r : l.routes) {
            require(r.backend < c.backends.size() && !r.match.empty(), "a route out of range or without match", text);
            require(l.protocol == Protocol::Http || (r.acme == AcmeMode::Auto && !r.redirect_https),
                    "http route settings on a non-http listener", text);
            for (const auto& m : r.match) {
                require(normalised_pattern(m), "a match that is not normalised", m);
                require(std::find(seen.begin(), seen.end(), m) == seen.end(), "one pattern in two routes", m);
                seen.push_back(m);
            }
        }
        for (const auto* list : {&l.allow, &l.deny})
            for (const auto& a : *list) {
                auto again = core::parse_cidr(a.to_string());
                require(again.cidr && *again.cidr == a && !again.host_bits && a.prefix <= (a.base.v4 ? 32 : 128),
                        "an allow/deny entry that is not canonical", a.to_string());
            }
        require(l.new_connections_per_ip.count <= core::kMaxRateCount, "a rate out of range", text);
        for (const auto& b : l.bind) {
            require(!is_v4_mapped(b), "an IPv4-mapped bind address", b.to_string());
            for (const auto* other : binds)
                require(!binds_overlap(*other, b), "two bind addresses that cannot both be bound", b.to_string());
            binds.push_back(&b);
        }
    }
    for (const auto& b : c.admin.bind) {
        require(!is_v4_mapped(b), "an IPv4-mapped admin bind address", b.to_string());
        for (const auto* other : binds)
            require(!binds_overlap(*other, b), "an admin bind address that cannot be bound", b.to_string());
        binds.push_back(&b);
    }
    require(c.acme.directory.empty() || c.acme.directory.starts_with("https://"), "a directory that is not https");
    require(c.acme.eab_kid.empty() == c.acme.eab_hmac_key.empty(), "half an EAB pair");
    require(!c.acme.storage.empty(), "empty storage");
    require(c.acme.account_thumbprint.empty() || core::is_base64url(c.acme.account_thumbprint), "a bad thumbprint");
    for (size_t i = 0; i < c.certificates.size(); ++i) {
        const Certificate& cert = c.certificates[i];
        require(!c.acme.directory.empty(), "certificates without a directory", text);
        require(!cert.name.empty() && cert.name != "." && cert.name != ".." && cert.name.find('/') == std::string::npos,
                "a certificate name that is not a plain file name", cert.name);
        require(!cert.domains.empty() && cert.deploy_timeout_ms > 0, "a certificate without domains", text);
        for (const auto& d : cert.domains) require(normalised_name(d), "a domain that is not normalised", d);
        require(!cert.cert_file.empty() && !cert.key_file.empty() && !same_file(cert.cert_file, cert.key_file),
                "cert_file and key_file empty or the same", text);
        for (size_t j = 0; j < i; ++j)
            for (const auto* mine : {&cert.cert_file, &cert.key_file})
                for (const auto* theirs : {&c.certificates[j].cert_file, &c.certificates[j].key_file})
                    require(!same_file(*mine, *theirs), "two certificates write one file", *mine);
    }
}

void check_diagnostics(const LoadResult& r, const std::string& text) {
    const uint32_t lines = static_cast<uint32_t>(std::count(text.begin(), text.end(), '\n')) + 1;
    for (const auto* list : {&r.diagnostics, &r.warnings})
        for (const auto& d : *list) {
            require(d.file == kPath, "a diagnostic for another file", d.to_string());
            require(!d.message.empty(), "a diagnostic without a message", d.to_string());
            require(d.line <= lines, "a diagnostic past the last line", d.to_string());
        }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    LoadResult first, second;
    try {
        first = load_string(text, kPath);
        second = load_string(text, kPath);
    } catch (const std::exception& e) {
        fail("load_string threw", e.what());
    } catch (...) {
        fail("load_string threw a non-exception");
    }
    require(first.config.has_value() == first.diagnostics.empty(), "a config exactly when there is no diagnostic");
    check_diagnostics(first, text);
    require(dump(first) == dump(second), "two loads of one text differ", dump(first) + "---\n" + dump(second));
    if (!first.config) return 0;

    check_config(*first.config, text);
    const std::string again_text = render(*first.config);
    LoadResult again = load_string(again_text, kPath);
    if (!again.config) fail("the config written back does not load", again_text + "---\n" + dump(again));
    again.config->path = first.config->path;
    require(dump(*again.config) == dump(*first.config), "the config written back loads differently",
            dump(*first.config) + "---\n" + dump(*again.config));
    // No more warnings than the original: the ones about structure come back, but the ones about
    // spelling (a prefix with host bits, written back cleared) are gone.
    require(again.warnings.size() <= first.warnings.size(), "the config written back warns of more",
            dump(first) + "---\n" + dump(again));
    return 0;
}

// What a port really serves: targets_for over a routing snapshot, the blocking probe against a
// real TLS server on 127.0.0.1 (with and without a PROXY header, with fail-over and timeouts),
// and the operator-facing messages.
#include <doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <string>
#include <vector>

#include "acme/cli.hpp"
#include "acme/probe.hpp"
#include "acme_tls_util.hpp"
#include "route/router.hpp"

using sniroute::acme::describe_stale;
using sniroute::acme::format_date;
using sniroute::acme::Key;
using sniroute::acme::KeyType;
using sniroute::acme::probe;
using sniroute::acme::ProbeResult;
using sniroute::acme::ProbeTarget;
using sniroute::acme::targets_for;
using sniroute::core::SocketAddress;
namespace config = sniroute::config;

namespace {

SocketAddress addr(const std::string& text) {
    auto a = SocketAddress::parse(text);
    REQUIRE(a.has_value());
    return *a;
}

// imaps (tls, routes mail.example.com to dovecot, default webmail), smtp (tcp), http (http),
// submissions (tls, only a *.example.org route), and a TLS listener with no bind address.
config::Config sample_config() {
    config::Config c;
    c.backends = {{"dovecot", {addr("127.0.0.1:10993")}, config::ProxyProtocol::V2},
                  {"webmail", {addr("127.0.0.1:8443"), addr("[::1]:8443")}, config::ProxyProtocol::Off},
                  {"postfix", {addr("127.0.0.1:10465")}, config::ProxyProtocol::V1}};
    config::Listener imaps{"imaps", {addr("0.0.0.0:993"), addr("[::]:993")}, config::Protocol::Tls, 1, false, {}};
    imaps.routes.push_back({{"mail.example.com"}, 0, config::AcmeMode::Auto, false});
    config::Listener smtp{"smtp", {addr("0.0.0.0:25")}, config::Protocol::Tcp, 2, false, {}};
    config::Listener http{"http", {addr("0.0.0.0:80")}, config::Protocol::Http, 1, false, {}};
    config::Listener subs{"submissions", {addr("0.0.0.0:465")}, config::Protocol::Tls, std::nullopt, false, {}};
    subs.routes.push_back({{"*.example.org"}, 2, config::AcmeMode::Auto, false});
    config::Listener unbound{"unbound", {}, config::Protocol::Tls, 0, false, {}};
    c.listeners = {imaps, smtp, http, subs, unbound};
    return c;
}

}  // namespace

TEST_SUITE("acme.probe") {

TEST_CASE("targets_for: every TLS listener that routes the name somewhere") {
    sniroute::route::Snapshot snap(sample_config());

    auto t = targets_for(snap, "mail.example.com");
    REQUIRE(t.size() == 1);  // smtp is tcp, http is http, submissions has no route for it
    CHECK(t[0].listener == "imaps");
    CHECK(t[0].port == 993);  // the first bind address's port
    CHECK(t[0].backend == "dovecot");
    CHECK(t[0].sni == "mail.example.com");
    CHECK(t[0].proxy_protocol == config::ProxyProtocol::V2);
    REQUIRE(t[0].servers.size() == 1);
    CHECK(t[0].servers[0].to_string() == "127.0.0.1:10993");

    // An unrouted name goes to imaps' default backend; submissions has no default.
    t = targets_for(snap, "other.example.com");
    REQUIRE(t.size() == 1);
    CHECK(t[0].backend == "webmail");
    CHECK(t[0].servers.size() == 2);
    CHECK(t[0].proxy_protocol == config::ProxyProtocol::Off);

    // A wildcard route on one listener, the default on another.
    t = targets_for(snap, "smtp.example.org");
    REQUIRE(t.size() == 2);
    CHECK(t[0].listener == "imaps");
    CHECK(t[0].backend == "webmail");
    CHECK(t[1].listener == "submissions");
    CHECK(t[1].port == 465);
    CHECK(t[1].backend == "postfix");
    CHECK(t[1].proxy_protocol == config::ProxyProtocol::V1);

    config::Config none;
    CHECK(targets_for(sniroute::route::Snapshot(none), "mail.example.com").empty());
}

TEST_CASE("format_date and describe_stale") {
    CHECK(format_date(0) == "1970-01-01");
    CHECK(format_date(1700000000) == "2023-11-14");
    CHECK(format_date(1767225599) == "2025-12-31");
    CHECK(format_date(1767225600) == "2026-01-01");

    ProbeResult r;
    r.target.listener = "imaps";
    r.target.port = 993;
    r.target.backend = "dovecot";
    r.error = "127.0.0.1:10993: connect timeout";
    CHECK(describe_stale(r) ==
          "dovecot on :993 (listener imaps) could not be checked: 127.0.0.1:10993: connect timeout");
    r.leaf.emplace();
    r.leaf->not_after = 1772323200;  // 2026-03-01
    r.leaf->serial_hex = "0a1b";
    CHECK(describe_stale(r) ==
          "dovecot on :993 (listener imaps) still serves the certificate expiring 2026-03-01 (serial 0a1b)");
}

TEST_CASE("probe: reads the served leaf with the right SNI, after fail-over from a dead server") {
    Key key = Key::generate(KeyType::EcdsaP256);
    acme_test::CertFields f;
    f.dns = {"mail.example.com"};
    f.serial_hex = "0a1b2c";
    acme_test::TlsTestServer server({acme_test::make_cert(key, f), &key, 0, 1, nullptr});

    ProbeTarget t;
    t.listener = "imaps";
    t.port = 993;
    t.backend = "dovecot";
    t.sni = "mail.example.com";
    t.servers = {addr("127.0.0.1:" + std::to_string(acme_test::dead_port())),
                 addr("127.0.0.1:" + std::to_string(server.port()))};
    ProbeResult r = probe(t, 5000);
    CHECK(r.error == "");
    CHECK(r.server == "127.0.0.1:" + std::to_string(server.port()));
    REQUIRE(r.leaf.has_value());
    CHECK(r.leaf->serial_hex == "0a1b2c");
    CHECK(r.leaf->dns_names == std::vector<std::string>{"mail.example.com"});
    CHECK(r.target.backend == "dovecot");
}

TEST_CASE("probe: sends a PROXY v1 UNKNOWN or v2 LOCAL header first when the backend expects one") {
    Key key = Key::generate(KeyType::EcdsaP256);
    acme_test::CertFields f;
    f.dns = {"mail.example.com"};
    const std::string pem = acme_test::make_cert(key, f);
    struct Case {
        config::ProxyProtocol pp;
        std::string header;
    };
    const std::string v2_local(
        "\r\n\r\n\0\r\nQUIT\n"  // signature
        "\x20"                  // version 2, command LOCAL
        "\x00"                  // AF_UNSPEC, UNSPEC
        "\x00\x00",             // no addresses
        16);
    for (const Case& c :
         {Case{config::ProxyProtocol::V1, "PROXY UNKNOWN\r\n"}, Case{config::ProxyProtocol::V2, v2_local}}) {
        acme_test::TlsTestServer server({pem, &key, c.header.size(), 1, nullptr});
        ProbeTarget t;
        t.sni = "mail.example.com";
        t.proxy_protocol = c.pp;
        t.servers = {addr("127.0.0.1:" + std::to_string(server.port()))};
        ProbeResult r = probe(t, 5000);
        CHECK(r.error == "");
        CHECK(r.leaf.has_value());
        CHECK(server.proxy_header() == c.header);
    }
}

TEST_CASE("probe: errors name the server; a silent server times out") {
    ProbeTarget t;
    t.sni = "mail.example.com";
    uint16_t dead = acme_test::dead_port();
    t.servers = {addr("127.0.0.1:" + std::to_string(dead))};
    ProbeResult r = probe(t, 2000);
    CHECK_FALSE(r.leaf.has_value());
    CHECK(r.error.starts_with("connect to 127.0.0.1:" + std::to_string(dead) + ": "));

    // Listening but never accepting: the kernel completes TCP, nobody speaks TLS.
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    t.servers = {addr("127.0.0.1:" + std::to_string(ntohs(sa.sin_port)))};
    auto start = std::chrono::steady_clock::now();
    r = probe(t, 300);
    auto took = std::chrono::steady_clock::now() - start;
    ::close(fd);
    CHECK_FALSE(r.leaf.has_value());
    CHECK(r.error == "127.0.0.1:" + std::to_string(ntohs(sa.sin_port)) + ": handshake timeout");
    CHECK(took >= std::chrono::milliseconds(250));
    CHECK(took < std::chrono::seconds(3));

    t.servers.clear();
    r = probe(t, 300);
    CHECK_FALSE(r.leaf.has_value());
}

// `certs check` exits non-zero for a certificate that expires within --days, and always for
// one that has already expired, even by less than a day (whole days left would round that to 0).
TEST_CASE("certs check: the exit code counts time left in seconds, and an expired certificate always fails") {
    Key key = Key::generate(KeyType::EcdsaP256);
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    struct Case {
        int64_t not_after;
        std::string days;
        int rc;
    };
    for (const Case& c : {Case{now - 3600, "0", 1}, Case{now - 3600, "-5", 2} /* not a number of days: usage error */,
                          Case{now + 10 * 86400 + 43200, "10", 0}, Case{now + 10 * 86400 + 43200, "11", 1}}) {
        CAPTURE(c.not_after - now);
        CAPTURE(c.days);
        acme_test::CertFields f;
        f.cn = "old.example.com";
        f.dns = {"old.example.com"};
        f.not_before = now - 90 * 86400;
        f.not_after = c.not_after;
        acme_test::TlsTestServer server({acme_test::make_cert(key, f), &key, 0, 1, nullptr});
        config::Config cfg;
        cfg.backends = {{"old", {addr("127.0.0.1:" + std::to_string(server.port()))}, config::ProxyProtocol::Off}};
        config::Listener tls{"tls", {addr("0.0.0.0:993")}, config::Protocol::Tls, std::nullopt, false, {}};
        tls.routes.push_back({{"old.example.com"}, 0, config::AcmeMode::Auto, false});
        cfg.listeners = {tls};
        CHECK(sniroute::acme::certs_command("check", {"--days", c.days}, cfg) == c.rc);
    }
}

}  // TEST_SUITE("acme.probe")

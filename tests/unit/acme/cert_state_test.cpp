// The certificate state on disk: the state file (round trip, and damaged files that must not
// stop the client), the paths of a certificate's directory, the pending pair and the account key.
#include <doctest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "acme/cert_state.hpp"
#include "acme/store.hpp"
#include "acme_test_util.hpp"
#include "acme_tls_util.hpp"

using nlohmann::json;
using sniroute::acme::CertState;
using sniroute::acme::Key;
using sniroute::acme::KeyType;
using sniroute::acme::load_state;
using sniroute::acme::state_path;
using sniroute::acme::write_file_atomic;

TEST_SUITE("acme.cert_state") {

TEST_CASE("CertState: to_json and from_json round-trip every field") {
    CertState s;
    s.last_error = "dovecot on :993 still serves the certificate expiring 2026-03-01 (serial 0a)";
    s.failures = 3;
    s.next_attempt = 1767225600;
    s.last_success = 1767000000;
    s.ari_start = 1770000000;
    s.ari_end = 1770086400;
    s.ari_checked = 1767200000;
    s.ari_cert = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";
    s.served = json::array({{{"listener", "imaps"}, {"port", 993}, {"current", false}}});

    json j = s.to_json();
    CHECK(j["failures"] == 3);
    CHECK(j["next_attempt"] == 1767225600);
    CHECK(j["ari_cert"] == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");

    // Through text, as the state file stores it.
    CertState r = CertState::from_json(json::parse(j.dump(2)));
    CHECK(r.last_error == s.last_error);
    CHECK(r.failures == 3);
    CHECK(r.next_attempt == 1767225600);
    CHECK(r.last_success == 1767000000);
    CHECK(r.ari_start == 1770000000);
    CHECK(r.ari_end == 1770086400);
    CHECK(r.ari_checked == 1767200000);
    CHECK(r.ari_cert == s.ari_cert);
    CHECK(r.served == s.served);
    CHECK(r.to_json() == j);
}

TEST_CASE("CertState::from_json: damaged input gives defaults, field by field") {
    CertState d = CertState::from_json(json::parse(R"({"failures": "three", "next_attempt": 12.5,
        "last_error": 7, "ari_start": null, "ari_end": 1770086400, "served": {"a": 1}, "ari_cert": []})"));
    CHECK(d.failures == 0);
    CHECK(d.next_attempt == 0);
    CHECK(d.last_error.empty());
    CHECK(d.ari_start == 0);
    CHECK(d.ari_end == 1770086400);  // the one good member is kept
    CHECK(d.served == json::array());
    CHECK(d.ari_cert.empty());

    for (const char* text : {"[]", "null", "42", "\"x\"", "{}"}) {
        CAPTURE(text);
        CertState e = CertState::from_json(json::parse(text));
        CHECK(e.failures == 0);
        CHECK(e.next_attempt == 0);
        CHECK(e.served == json::array());
    }
    // A count the back-off shifts by: a negative one, or one past int, would be undefined
    // behaviour there (60 << -3) or wrap; a damaged count starts again from 0.
    for (const char* text : {R"({"failures": -3})", R"({"failures": 3000000000})", R"({"failures": 2147483647})"}) {
        CAPTURE(text);
        CHECK(CertState::from_json(json::parse(text)).failures == 0);
    }
    CHECK(CertState::from_json(json::parse(R"({"failures": 7})")).failures == 7);
    // What load_state hands over for a file that is not JSON at all.
    CHECK(CertState::from_json(json::parse("{not json", nullptr, false)).failures == 0);
}

TEST_CASE("load_state: missing, garbage and written state files") {
    acme_test::TempDir dir;
    sniroute::config::Config cfg;
    cfg.acme.storage = dir.path();
    CHECK(state_path(cfg, "mail") == dir.path() + "/certs/mail/state.json");
    CHECK(load_state(cfg, "mail").failures == 0);  // no file yet

    std::string err;
    REQUIRE(sniroute::acme::ensure_dir(dir / "certs/mail", 0700, err));
    REQUIRE(write_file_atomic(state_path(cfg, "mail"), "\x01garbage{", 0600, err));
    CHECK(load_state(cfg, "mail").failures == 0);

    CertState s;
    s.failures = 2;
    s.last_error = "timeout";
    REQUIRE(write_file_atomic(state_path(cfg, "mail"), s.to_json().dump(2), 0600, err));
    CertState r = load_state(cfg, "mail");
    CHECK(r.failures == 2);
    CHECK(r.last_error == "timeout");
}

TEST_CASE("cert_files: every path of a certificate's directory, from one place") {
    sniroute::config::Config cfg;
    cfg.acme.storage = "/var/lib/sniroute";
    auto f = sniroute::acme::cert_files(cfg, "mail");
    CHECK(f.dir == "/var/lib/sniroute/certs/mail");
    CHECK(f.state == "/var/lib/sniroute/certs/mail/state.json");
    CHECK(f.pending_crt == "/var/lib/sniroute/certs/mail/pending.crt");
    CHECK(f.pending_key == "/var/lib/sniroute/certs/mail/pending.key");
    CHECK(state_path(cfg, "mail") == f.state);
}

TEST_CASE("pending pair: read back only while whole, covering the names and unexpired") {
    acme_test::TempDir dir;
    sniroute::config::Config cfg;
    cfg.acme.storage = dir.path();
    auto files = sniroute::acme::cert_files(cfg, "mail");
    std::string err;
    REQUIRE(sniroute::acme::ensure_dir(files.dir, 0700, err));
    sniroute::config::Certificate c;
    c.name = "mail";
    c.domains = {"mail.example.com"};

    Key key = Key::generate(KeyType::EcdsaP256);
    acme_test::CertFields f;
    f.dns = {"mail.example.com"};
    std::string chain = acme_test::make_cert(key, f);
    CHECK_FALSE(sniroute::acme::read_pending(files, c).has_value());  // nothing saved yet

    REQUIRE(sniroute::acme::write_pending(files, chain, key.private_pem(), err));
    auto p = sniroute::acme::read_pending(files, c);
    REQUIRE(p.has_value());
    CHECK(p->chain == chain);
    CHECK(p->key_pem == key.private_pem());
    CHECK(p->info.dns_names == std::vector<std::string>{"mail.example.com"});
    struct stat st {};
    REQUIRE(::stat(files.pending_key.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    // Names the certificate does not cover: not this certificate's pair.
    c.domains.push_back("smtp.example.com");
    CHECK_FALSE(sniroute::acme::read_pending(files, c).has_value());
    c.domains.pop_back();
    // A key that does not match.
    Key other = Key::generate(KeyType::EcdsaP256);
    REQUIRE(sniroute::acme::write_pending(files, chain, other.private_pem(), err));
    CHECK_FALSE(sniroute::acme::read_pending(files, c).has_value());
    // Expired.
    f.not_before = 1600000000;
    f.not_after = 1600086400;
    REQUIRE(sniroute::acme::write_pending(files, acme_test::make_cert(key, f), key.private_pem(), err));
    CHECK_FALSE(sniroute::acme::read_pending(files, c).has_value());

    sniroute::acme::remove_pending(files);
    CHECK(::stat(files.pending_crt.c_str(), &st) != 0);
    CHECK(::stat(files.pending_key.c_str(), &st) != 0);
}

TEST_CASE("load_account_key: created once (0600), then read back; a damaged file is an error") {
    acme_test::TempDir dir;
    const std::string storage = dir / "storage";
    Key first = sniroute::acme::load_account_key(storage);
    struct stat st {};
    REQUIRE(::stat((storage + "/account.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(sniroute::acme::load_account_key(storage).thumbprint() == first.thumbprint());

    std::string err;
    REQUIRE(write_file_atomic(storage + "/account.key", "not a key", 0600, err));
    CHECK_THROWS_AS(sniroute::acme::load_account_key(storage), std::runtime_error);
}
}  // TEST_SUITE("acme.cert_state")

// The renewal manager's pure parts: the state file (round trip, and damaged files that must not
// stop the client) and renewal_due (a third of the lifetime, ARI windows, back-off).
#include <doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "acme/client.hpp"
#include "acme/manager.hpp"
#include "acme/store.hpp"
#include "acme_test_util.hpp"
#include "acme_tls_util.hpp"

using nlohmann::json;
using sniroute::acme::ari_cert_id;
using sniroute::acme::CertState;
using sniroute::acme::Key;
using sniroute::acme::KeyType;
using sniroute::acme::load_state;
using sniroute::acme::renewal_due;
using sniroute::acme::state_path;
using sniroute::acme::write_file_atomic;

namespace {

// 90 days from 2026-01-01T00:00:00Z, as Let's Encrypt issues them.
constexpr int64_t kNotBefore = 1767225600;
constexpr int64_t kLifetime = 90 * 86400;
constexpr int64_t kNotAfter = kNotBefore + kLifetime;

struct Fixture {
    acme_test::TempDir dir;
    Key key = Key::generate(KeyType::EcdsaP256);
    sniroute::config::Certificate cert;
    std::string pem;

    explicit Fixture(std::vector<std::string> sans = {"mail.example.com", "smtp.example.com"}) {
        cert.name = "mail";
        cert.domains = {"mail.example.com", "smtp.example.com"};
        cert.cert_file = dir / "mail.crt";
        cert.key_file = dir / "mail.key";
        acme_test::CertFields f;
        f.dns = std::move(sans);
        f.not_before = kNotBefore;
        f.not_after = kNotAfter;
        f.aki_keyid = "\x01\x02\x03\x04";
        f.serial_hex = "0badc0de";
        pem = acme_test::make_cert(key, f);
        std::string err;
        REQUIRE(write_file_atomic(cert.cert_file, pem, 0644, err));
    }
};

}  // namespace

TEST_SUITE("acme.manager") {

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

TEST_CASE("renewal_due: a third of the lifetime before expiry, less a small per-name offset") {
    Fixture fx;
    CertState st;
    const int64_t now = kNotBefore + 86400;
    int64_t due = renewal_due(fx.cert, st, now);
    // 60 days after issuance, minus at most 1% of the lifetime (21.6 hours).
    CHECK(due <= kNotAfter - kLifetime / 3);
    CHECK(due > kNotAfter - kLifetime / 3 - kLifetime / 100);
    CHECK(renewal_due(fx.cert, st, now + 1000) == due);  // fixed per name, not random per call

    // Back-off in force: never before next_attempt...
    st.next_attempt = due + 5000;
    CHECK(renewal_due(fx.cert, st, now) == due + 5000);
    // ...but an earlier next_attempt changes nothing.
    st.next_attempt = now;
    CHECK(renewal_due(fx.cert, st, now) == due);
}

TEST_CASE("renewal_due: now when the certificate is missing or does not cover the names") {
    const int64_t now = kNotBefore + 86400;
    CertState st;
    {
        Fixture fx({"mail.example.com"});  // smtp.example.com is configured but not covered
        CHECK(renewal_due(fx.cert, st, now) == now);
    }
    {
        Fixture fx;
        fx.cert.cert_file = fx.dir / "missing.crt";
        CHECK(renewal_due(fx.cert, st, now) == now);
        st.next_attempt = now + 60;  // still subject to back-off
        CHECK(renewal_due(fx.cert, st, now) == now + 60);
    }
}

TEST_CASE("renewal_due: inside an ARI window that belongs to this certificate") {
    Fixture fx;
    const int64_t now = kNotBefore + 86400;
    auto id = ari_cert_id(fx.pem);
    REQUIRE(id.has_value());
    CHECK(*id == "AQIDBA.C63A3g");

    CertState st;
    st.ari_start = kNotBefore + 10 * 86400;  // the CA wants it renewed early (a revocation)
    st.ari_end = st.ari_start + 86400;
    st.ari_cert = *id;
    int64_t due = renewal_due(fx.cert, st, now);
    CHECK(due >= st.ari_start);
    CHECK(due < st.ari_end);

    // A window later than the lifetime rule does not postpone renewal.
    st.ari_start = kNotAfter - 86400;
    st.ari_end = kNotAfter;
    CHECK(renewal_due(fx.cert, st, now) <= kNotAfter - kLifetime / 3);

    // A window for another certificate (the one just replaced) is ignored.
    st.ari_start = kNotBefore + 10 * 86400;
    st.ari_end = st.ari_start + 86400;
    st.ari_cert = "AQIDBA.AQ";
    CHECK(renewal_due(fx.cert, st, now) > kNotAfter - kLifetime / 3 - kLifetime / 100);
    st.ari_cert.clear();
    CHECK(renewal_due(fx.cert, st, now) > kNotAfter - kLifetime / 3 - kLifetime / 100);

    // An empty or inverted window is no window.
    st.ari_cert = *id;
    st.ari_end = st.ari_start;
    CHECK(renewal_due(fx.cert, st, now) > kNotAfter - kLifetime / 3 - kLifetime / 100);
}

}  // TEST_SUITE

// The scheduler's decisions: renewal_due (a third of the lifetime, ARI windows, back-off), the
// back-off itself, the choice of the next certificate and the sleep, and the state updates after
// an ARI answer or a renewal. All pure but renewal_due, which reads the certificate file.
#include <doctest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "acme/cert.hpp"
#include "acme/scheduler.hpp"
#include "acme/store.hpp"
#include "acme_test_util.hpp"
#include "acme_tls_util.hpp"

using sniroute::acme::ari_cert_id;
using sniroute::acme::CertState;
using sniroute::acme::Key;
using sniroute::acme::KeyType;
using sniroute::acme::renewal_due;
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

TEST_SUITE("acme.scheduler") {

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

TEST_CASE("backoff_next_attempt: the table") {
    using sniroute::acme::backoff_next_attempt;
    using sniroute::acme::Failure;
    const int64_t now = 1767225600;
    struct Row {
        int failures;
        uint64_t retry_after_s;
        bool rate_limited;
        uint64_t jitter;
        int64_t delay;  // expected next attempt - now
    };
    const Row rows[] = {
        // Doubling from 60 s, no jitter.
        {1, 0, false, 0, 60},
        {2, 0, false, 0, 120},
        {3, 0, false, 0, 240},
        {11, 0, false, 0, 61'440},
        // Capped at a day from the 12th failure on, however many there were.
        {12, 0, false, 0, 86'400},
        {21, 0, false, 0, 86'400},
        {1'000'000, 0, false, 0, 86'400},
        // Jitter: jitter % (delay / 10 + 1) seconds on top.
        {1, 0, false, 5, 65},
        {1, 0, false, 6, 66},
        {1, 0, false, 7, 60},
        {1, 0, false, 13, 66},
        {2, 0, false, 12, 132},
        {12, 0, false, 8'640, 95'040},
        {12, 0, false, 8'641, 86'400},
        {12, 0, false, UINT64_MAX, 86'400 + static_cast<int64_t>(UINT64_MAX % 8'641)},
        // Rate-limited: an hour at least; a longer back-off stays.
        {1, 0, true, 0, 3'600},
        {1, 0, true, 5, 3'600},
        {7, 0, true, 0, 3'840},
        {12, 0, true, 0, 86'400},
        // Retry-After wins when longer, and only then.
        {1, 30, false, 0, 60},
        {1, 7'200, false, 0, 7'200},
        {1, 100, true, 0, 3'600},
        {1, 90'000, true, 0, 90'000},
        {12, 7 * 86'400, false, 0, 7 * 86'400},
        // A count below 1 (damage) backs off as a first failure.
        {0, 0, false, 0, 60},
        {-5, 0, false, 0, 60},
    };
    for (const Row& r : rows) {
        CAPTURE(r.failures);
        CAPTURE(r.retry_after_s);
        CAPTURE(r.rate_limited);
        CAPTURE(r.jitter);
        Failure f;
        f.retry_after_s = r.retry_after_s;
        f.rate_limited = r.rate_limited;
        CHECK(backoff_next_attempt(r.failures, f, now, r.jitter) - now == r.delay);
    }
}

TEST_CASE("plan_next: which certificate, and how long to sleep") {
    using sniroute::acme::CertFacts;
    using sniroute::acme::plan_next;
    const int64_t now = 1'000'000;
    auto due = [](int64_t at) {
        CertFacts f;
        f.due = at;
        return f;
    };
    auto forced = [](int64_t at) {
        CertFacts f;
        f.due = at;
        f.forced = true;
        return f;
    };
    auto pending = [](int64_t at, int64_t next_attempt) {
        CertFacts f;
        f.due = at;
        f.pending = true;
        f.next_attempt = next_attempt;
        return f;
    };
    struct Row {
        const char* what;
        std::vector<CertFacts> certs;
        std::optional<size_t> renew;
        int64_t sleep_s;
    };
    const Row rows[] = {
        {"nothing configured: sleep the longest", {}, std::nullopt, 3600},
        {"due now", {due(now)}, 0, 0},
        {"overdue", {due(now - 500)}, 0, 0},
        {"due in ten minutes", {due(now + 600)}, std::nullopt, 600},
        {"due in a month: an hour at most", {due(now + 30 * 86400)}, std::nullopt, 3600},
        {"the earliest of several", {due(now + 600), due(now - 10), due(now - 5)}, 1, 0},
        {"a tie goes to the first", {due(now + 60), due(now - 10), due(now - 10)}, 1, 0},
        {"the earliest wakes the sleep", {due(now + 900), due(now + 120), due(now + 3000)}, std::nullopt, 120},
        {"forced: now, whatever renewal_due says", {due(now + 600), forced(now + 86400)}, 1, 0},
        {"pending: now, not at renewal_due", {pending(now + 40 * 86400, 0)}, 0, 0},
        {"pending: at the end of a failed deploy's back-off",
         {pending(now + 40 * 86400, now + 300)},
         std::nullopt,
         300},
        {"pending: renewal_due when that is earlier", {pending(now + 100, now + 300)}, std::nullopt, 100},
        {"a back-off that never ends: sleep, renew nothing", {due(INT64_MAX)}, std::nullopt, 3600},
    };
    for (const Row& r : rows) {
        CAPTURE(r.what);
        auto plan = plan_next(r.certs, now);
        CHECK(plan.renew == r.renew);
        CHECK(plan.sleep_s == r.sleep_s);
    }
}

TEST_CASE("ari_refresh_due and record_renewal_info") {
    using sniroute::acme::ari_refresh_due;
    using sniroute::acme::record_renewal_info;
    using sniroute::acme::RenewalWindow;
    const int64_t now = 1'767'225'600;
    CertState st;
    CHECK(ari_refresh_due(st, "A.1", now));  // never asked
    record_renewal_info(st, "A.1", RenewalWindow{now + 100, now + 200}, false, now);
    CHECK(st.ari_cert == "A.1");
    CHECK(st.ari_start == now + 100);
    CHECK(st.ari_end == now + 200);
    CHECK(st.ari_checked == now);
    // Every six hours, and at once for another certificate.
    CHECK_FALSE(ari_refresh_due(st, "A.1", now + 6 * 3600));
    CHECK(ari_refresh_due(st, "A.1", now + 6 * 3600 + 1));
    CHECK(ari_refresh_due(st, "A.2", now + 1));

    // The CA unreachable: the known window of the same certificate stays...
    record_renewal_info(st, "A.1", std::nullopt, true, now + 7 * 3600);
    CHECK(st.ari_start == now + 100);
    CHECK(st.ari_checked == now + 7 * 3600);
    // ...but not one of another certificate.
    record_renewal_info(st, "A.2", std::nullopt, true, now + 8 * 3600);
    CHECK(st.ari_cert == "A.2");
    CHECK(st.ari_start == 0);
    CHECK(st.ari_end == 0);
    // An answer with no window clears it.
    record_renewal_info(st, "A.2", RenewalWindow{now, now + 10}, false, now);
    record_renewal_info(st, "A.2", std::nullopt, false, now);
    CHECK(st.ari_start == 0);
}

TEST_CASE("record_success and record_failure: the state and the control socket's answer") {
    using sniroute::acme::Failure;
    const int64_t now = 1'767'225'600;
    CertState st;
    Failure f;
    CHECK(sniroute::acme::record_failure(st, "connect to 127.0.0.1:1: refused", f, now, 0) ==
          "error connect to 127.0.0.1:1: refused");
    CHECK(st.failures == 1);
    CHECK(st.next_attempt == now + 60);
    CHECK(st.last_error == "connect to 127.0.0.1:1: refused");
    f.retry_after_s = 5000;
    sniroute::acme::record_failure(st, "rate limited", f, now, 0);
    CHECK(st.failures == 2);
    CHECK(st.next_attempt == now + 5000);

    st.ari_start = now + 1;
    st.ari_end = now + 2;
    st.ari_checked = now;
    st.ari_cert = "A.1";
    st.last_error.clear();  // the renewal clears it, and a stale port sets it again
    CHECK(sniroute::acme::record_success(st, now + 10) == "ok");
    CHECK(st.failures == 0);
    CHECK(st.next_attempt == 0);
    CHECK(st.last_success == now + 10);
    CHECK(st.ari_start == 0);
    CHECK(st.ari_end == 0);
    CHECK(st.ari_checked == 0);
    CHECK(st.ari_cert.empty());
    st.last_error = "dovecot on :993 (listener imaps) still serves the certificate expiring 2026-03-01 (serial 0a)";
    CHECK(sniroute::acme::record_success(st, now) == "error " + st.last_error);
}
}  // TEST_SUITE("acme.scheduler")

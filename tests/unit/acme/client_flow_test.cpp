// The RFC 8555 flow end to end against a scripted CA on 127.0.0.1: directory, nonce, a badNonce
// retry, account, order with ARI "replaces", an HTTP-01 authorization answered from the token
// store, finalize with our CSR, and the PEM download; then renewalInfo. The CA checks every
// JWS signature, nonce, url and kid, so the test fails on any protocol slip.
#include <doctest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "acme/b64.hpp"
#include "acme/cert.hpp"
#include "acme/client.hpp"
#include "acme/store.hpp"
#include "acme_loop_util.hpp"
#include "acme_test_util.hpp"
#include "acme_tls_util.hpp"

using nlohmann::json;
using sniroute::acme::b64url_decode;
using sniroute::acme::Canceller;
using sniroute::acme::Client;
using sniroute::acme::Issued;
using sniroute::acme::Key;
using sniroute::acme::KeyType;
using sniroute::acme::RenewalWindow;
using sniroute::acme::Task;

namespace {

constexpr const char* kToken = "tok_123-abc";

// A certificate for the CSR's public key and names, signed by ca_key.
std::string issue_for_csr(const std::string& csr_der, const Key& ca_key) {
    const auto* p = reinterpret_cast<const unsigned char*>(csr_der.data());
    X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(csr_der.size()));
    REQUIRE(req != nullptr);
    REQUIRE(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) == 1);
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 90 * 86400);
    X509_NAME* issuer = X509_get_issuer_name(x);
    X509_NAME_add_entry_by_txt(issuer, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("Fake CA"), -1, -1,
                               0);
    X509_set_pubkey(x, X509_REQ_get0_pubkey(req));
    STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
    for (int i = 0; i < sk_X509_EXTENSION_num(exts); ++i) X509_add_ext(x, sk_X509_EXTENSION_value(exts, i), -1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    REQUIRE(X509_sign(x, ca_key.pkey(), EVP_sha256()) > 0);
    std::string pem = acme_test::x509_pem(x);
    X509_free(x);
    X509_REQ_free(req);
    return pem;
}

// The scripted CA. Runs on the server thread; the test reads `log` and `errors` afterwards.
struct FakeCa {
    std::string base;
    const Key* account = nullptr;  // to verify signatures
    const Key* ca_key = nullptr;
    sniroute::http::MemoryTokenStore* tokens = nullptr;
    std::string thumbprint;
    int nonce = 0;
    bool refuse_replaces = false;       // answer an order with "replaces" as RFC 9773 alreadyReplaced
    std::string authz_after = "valid";  // the authorization's status once its challenge is answered
    int acct_posts = 0, authz_posts = 0, order_posts = 0;
    std::vector<std::string> log;     // "METHOD /path" per request
    std::vector<std::string> errors;  // protocol violations seen
    json order_request;
    std::string chain;

    static std::string response(int status, const std::string& reason, const std::string& headers,
                                const std::string& body) {
        return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n" + headers +
               "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    }
    std::string fresh_nonce() { return "Replay-Nonce: nonce-" + std::to_string(++nonce) + "\r\n"; }

    // Checks the JWS of a POST and returns its payload text (nullopt after recording why not).
    std::optional<std::string> verify(const std::string& body, const std::string& path, bool expect_jwk) {
        json jws = json::parse(body, nullptr, false);
        if (!jws.is_object()) return errors.push_back(path + ": body is not JSON"), std::nullopt;
        auto prot = b64url_decode(jws.value("protected", "")), payload = b64url_decode(jws.value("payload", "?"));
        auto sig = b64url_decode(jws.value("signature", ""));
        if (!prot || !payload || !sig) return errors.push_back(path + ": not base64url"), std::nullopt;
        json hdr = json::parse(*prot, nullptr, false);
        if (hdr.value("nonce", "") != "nonce-" + std::to_string(nonce)) errors.push_back(path + ": stale nonce");
        if (hdr.value("url", "") != base + path) errors.push_back(path + ": wrong url " + hdr.value("url", ""));
        if (expect_jwk != hdr.contains("jwk")) errors.push_back(path + ": jwk/kid mix-up");
        if (!expect_jwk && hdr.value("kid", "") != base + "/acct/1") errors.push_back(path + ": wrong kid");
        std::string signing_input = jws.value("protected", "") + "." + jws.value("payload", "");
        if (!acme_test::verify_jose(account->pkey(), hdr.value("alg", ""), signing_input, *sig))
            errors.push_back(path + ": bad signature");
        return payload;
    }

    std::string operator()(const std::string& req) {
        std::string line = req.substr(0, req.find("\r\n"));
        std::string method = line.substr(0, line.find(' '));
        std::string path = line.substr(method.size() + 1, line.rfind(' ') - method.size() - 1);
        std::string body = req.substr(req.find("\r\n\r\n") + 4);
        log.push_back(method + " " + path);
        const std::string json_ct = "Content-Type: application/json\r\n";
        if (method == "GET" && path == "/dir") {
            json d = {{"newNonce", base + "/nonce"},
                      {"newAccount", base + "/acct"},
                      {"newOrder", base + "/order"},
                      {"renewalInfo", base + "/ari/"}};
            return response(200, "OK", json_ct, d.dump());
        }
        if (method == "HEAD" && path == "/nonce") return response(200, "OK", fresh_nonce(), "");
        if (method == "GET" && path.starts_with("/ari/")) {
            json w = {{"suggestedWindow", {{"start", "2026-02-01T00:00:00Z"}, {"end", "2026-02-02T12:00:00.5+12:00"}}}};
            return response(200, "OK", json_ct + "Retry-After: 21600\r\n", w.dump());
        }
        if (method != "POST") return response(405, "Method Not Allowed", "", "");
        auto payload = verify(body, path, path == "/acct");
        if (!payload) return response(400, "Bad Request", fresh_nonce(), "");
        if (path == "/acct") {
            // RFC 8555 6.5: the first attempt is refused with badNonce and a fresh nonce.
            if (++acct_posts == 1)
                return response(400, "Bad Request", fresh_nonce() + "Content-Type: application/problem+json\r\n",
                                R"({"type":"urn:ietf:params:acme:error:badNonce","detail":"try again"})");
            json p = json::parse(*payload, nullptr, false);
            if (!p.value("termsOfServiceAgreed", false)) errors.push_back("ToS not agreed");
            if (p["contact"] != json::array({"mailto:ops@example.com"})) errors.push_back("contact missing");
            return response(201, "Created", fresh_nonce() + json_ct + "Location: " + base + "/acct/1\r\n",
                            R"({"status":"valid"})");
        }
        if (path == "/order") {
            order_request = json::parse(*payload, nullptr, false);
            if (refuse_replaces && order_request.contains("replaces"))
                return response(409, "Conflict", fresh_nonce() + "Content-Type: application/problem+json\r\n",
                                R"({"type":"urn:ietf:params:acme:error:alreadyReplaced","detail":"replaced"})");
            json o = {
                {"status", "pending"}, {"authorizations", {base + "/authz/1"}}, {"finalize", base + "/finalize/1"}};
            return response(201, "Created", fresh_nonce() + json_ct + "Location: " + base + "/order/1\r\n", o.dump());
        }
        if (path == "/authz/1") {
            if (!payload->empty()) errors.push_back("authz POST-as-GET has a payload");
            // A client that keeps polling an authorization in a final state gets an error here.
            if (++authz_posts > 2) return response(500, "Internal Server Error", fresh_nonce(), "");
            json a = {{"status", authz_posts == 1 ? "pending" : authz_after},
                      {"identifier", {{"type", "dns"}, {"value", "mail.example.com"}}},
                      {"challenges",
                       {{{"type", "dns-01"}, {"url", base + "/chall/0"}, {"token", "dns-token"}},
                        {{"type", "http-01"}, {"url", base + "/chall/1"}, {"token", kToken}}}}};
            return response(200, "OK", fresh_nonce() + json_ct, a.dump());
        }
        if (path == "/chall/1") {
            if (*payload != "{}") errors.push_back("challenge POST payload is not {}");
            // What the port-80 front would answer right now.
            if (tokens->key_authorization(kToken) != std::string(kToken) + "." + thumbprint)
                errors.push_back("token store has no key authorization");
            return response(200, "OK", fresh_nonce() + json_ct, R"({"type":"http-01","status":"processing"})");
        }
        if (path == "/order/1") {
            json o = ++order_posts == 1 ? json{{"status", "ready"}, {"finalize", base + "/finalize/1"}}
                                        : json{{"status", "valid"}, {"certificate", base + "/cert/1"}};
            return response(200, "OK", fresh_nonce() + json_ct, o.dump());
        }
        if (path == "/finalize/1") {
            json p = json::parse(*payload, nullptr, false);
            auto csr = b64url_decode(p.value("csr", ""));
            if (!csr)
                errors.push_back("csr is not base64url");
            else
                chain = issue_for_csr(*csr, *ca_key);
            return response(200, "OK", fresh_nonce() + json_ct, R"({"status":"processing"})");
        }
        if (path == "/cert/1") {
            if (req.find("Accept: application/pem-certificate-chain\r\n") == std::string::npos)
                errors.push_back("no PEM Accept");
            return response(200, "OK", fresh_nonce() + "Content-Type: application/pem-certificate-chain\r\n", chain);
        }
        return response(404, "Not Found", fresh_nonce(), "");
    }
};

Task<void> issue_flow(Client* c, std::vector<std::string> domains, std::string replaces, Issued* out) {
    *out = co_await c->issue(std::move(domains), KeyType::EcdsaP256, std::move(replaces));
}

Task<void> ari_flow(Client* c, std::string id, std::optional<RenewalWindow>* out) {
    *out = co_await c->renewal_info(std::move(id));
}

struct Setup {
    Key tls_key = Key::generate(KeyType::EcdsaP256);
    Key ca_key = Key::generate(KeyType::EcdsaP256);
    Key account = Key::generate(KeyType::EcdsaP256);
    std::optional<Key> account_copy = Key::from_pem(account.private_pem());
    acme_test::TempDir dir;
    std::string cert_pem, bundle;
    sniroute::http::MemoryTokenStore tokens;
    Canceller cancel;
    Setup() {
        ::signal(SIGPIPE, SIG_IGN);  // as under run_server
        acme_test::CertFields f;
        f.cn = "localhost";
        f.dns = {"localhost"};
        cert_pem = acme_test::make_cert(tls_key, f);
        bundle = dir / "ca.pem";
        std::string err;
        REQUIRE(sniroute::acme::write_file_atomic(bundle, cert_pem, 0644, err));
    }
};

// One issue() against `ca`, which answers exactly `connections` requests on the server thread.
// The CA's record is complete on return: the server thread has ended by then.
struct IssueRun {
    std::exception_ptr err;
    std::string account_url;
};
IssueRun run_issue(Setup& s, FakeCa& ca, int connections, std::vector<std::string> domains, std::string replaces,
                   Issued& issued) {
    ca.account = &*s.account_copy;
    ca.ca_key = &s.ca_key;
    ca.tokens = &s.tokens;
    ca.thumbprint = s.account.thumbprint();
    std::mutex mu;  // the CA runs on the server thread
    acme_test::TlsTestServer server({s.cert_pem, &s.tls_key, 0, connections, [&](const std::string& req) {
                                         std::lock_guard<std::mutex> lock(mu);
                                         return ca(req);
                                     }});
    ca.base = "https://localhost:" + std::to_string(server.port());
    sniroute::acme::TlsClientContext tls(s.bundle);
    std::unique_ptr<Client> client;
    IssueRun run;
    run.err = acme_test::run_task([&](uv_loop_t* l) {
        client = std::make_unique<Client>(l, tls.get(),
                                          sniroute::acme::AccountSettings{ca.base + "/dir", "ops@example.com", "", ""},
                                          std::move(s.account), s.tokens, s.cancel);
        return issue_flow(client.get(), std::move(domains), std::move(replaces), &issued);
    });
    run.account_url = client->account_url();
    return run;
}

}  // namespace

TEST_SUITE("acme.client") {

TEST_CASE("issue: the whole RFC 8555 exchange against a strict scripted CA") {
    for (bool refuse : {false, true}) {
        CAPTURE(refuse);
        Setup s;
        auto ca = std::make_shared<FakeCa>();
        ca->refuse_replaces = refuse;
        Issued issued;
        auto [err, account_url] =
            run_issue(s, *ca, refuse ? 13 : 12, {"mail.example.com", "smtp.example.com"}, "AQID.AQ", issued);
        if (err) {
            try {
                std::rethrow_exception(err);
            } catch (const std::exception& e) {
                FAIL("issue threw: ", e.what());
            }
        }
        CHECK(ca->errors == std::vector<std::string>{});
        std::vector<std::string> expected = {"GET /dir", "HEAD /nonce", "POST /acct", "POST /acct", "POST /order"};
        // A refused "replaces" is followed by the same order without it (RFC 9773 5).
        if (refuse) expected.push_back("POST /order");
        for (const char* step : {"POST /authz/1", "POST /chall/1", "POST /authz/1", "POST /order/1", "POST /finalize/1",
                                 "POST /order/1", "POST /cert/1"})
            expected.push_back(step);
        CHECK(ca->log == expected);
        CHECK(ca->order_request["identifiers"] == json::parse(R"([{"type":"dns","value":"mail.example.com"},
                                                                  {"type":"dns","value":"smtp.example.com"}])"));
        // The directory offers renewalInfo, so the first order names the certificate it replaces.
        CHECK(ca->order_request.contains("replaces") == !refuse);
        if (!refuse) CHECK(ca->order_request["replaces"] == "AQID.AQ");
        CHECK(account_url == ca->base + "/acct/1");
        CHECK(issued.chain_pem == ca->chain);
        auto key = Key::from_pem(issued.key_pem);
        REQUIRE(key.has_value());
        CHECK(sniroute::acme::key_matches_cert(*key, issued.chain_pem));
        CHECK_FALSE(s.tokens.key_authorization(kToken).has_value());  // removed once authorized
    }
}

// RFC 8555 7.1.6: "deactivated", "expired" and "revoked" are final states of an authorization,
// as "invalid" is; polling on cannot make it valid, so the order fails at once.
TEST_CASE("issue: an authorization that ends expired, deactivated or revoked fails the order at once") {
    for (const char* final_state : {"expired", "deactivated", "revoked"}) {
        CAPTURE(final_state);
        Setup s;
        auto ca = std::make_shared<FakeCa>();
        ca->authz_after = final_state;
        Issued issued;
        std::exception_ptr err = run_issue(s, *ca, 8, {"mail.example.com"}, "", issued).err;
        REQUIRE(err);
        std::string what;
        try {
            std::rethrow_exception(err);
        } catch (const std::exception& e) {
            what = e.what();
        }
        CHECK(what.find(std::string("authorization became ") + final_state) != std::string::npos);
        CHECK(ca->authz_posts == 2);  // the first look and one poll; no more
        CHECK(ca->log.back() == "POST /authz/1");
        CHECK_FALSE(s.tokens.key_authorization(kToken).has_value());
    }
}

TEST_CASE("renewal_info: the suggested window, offsets and fractions applied") {
    Setup s;
    auto ca = std::make_shared<FakeCa>();
    ca->account = &*s.account_copy;
    acme_test::TlsTestServer server(
        {s.cert_pem, &s.tls_key, 0, 2, [ca](const std::string& req) { return (*ca)(req); }});
    ca->base = "https://localhost:" + std::to_string(server.port());
    sniroute::acme::TlsClientContext tls(s.bundle);
    std::unique_ptr<Client> client;
    std::optional<RenewalWindow> w;
    CHECK_FALSE(acme_test::run_task([&](uv_loop_t* l) {
        client = std::make_unique<Client>(l, tls.get(), sniroute::acme::AccountSettings{ca->base + "/dir", "", "", ""},
                                          std::move(s.account), s.tokens, s.cancel);
        return ari_flow(client.get(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", &w);
    }));
    REQUIRE(w.has_value());
    CHECK(w->start == 1769904000);  // 2026-02-01T00:00:00Z
    CHECK(w->end == 1769990400);    // 2026-02-02T12:00:00+12:00 = 2026-02-02T00:00:00Z
    CHECK(ca->log == std::vector<std::string>{"GET /dir", "GET /ari/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"});
}

}  // TEST_SUITE("acme.client")

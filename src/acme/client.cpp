#include "acme/client.hpp"

#include <algorithm>

#include "acme/b64.hpp"
#include "acme/cert.hpp"
#include "acme/jws.hpp"
#include "core/log.hpp"
#include "core/time.hpp"

namespace sniroute::acme {

using nlohmann::json;

namespace {

constexpr uint64_t kRequestTimeoutMs = 30'000;
constexpr int kMaxBadNonceRetries = 10;
// Polls wait for Retry-After, clamped so a missing or silly value neither spins nor stalls.
constexpr uint64_t kPollMinMs = 500;
constexpr uint64_t kPollMaxMs = 30'000;
constexpr int kMaxPolls = 120;

// Longest wait we take from a CA: a larger Retry-After is a misconfiguration or an attack, and
// the manager's own back-off takes over from there.
constexpr uint64_t kMaxRetryAfterS = 7 * 24 * 3600;

uint64_t retry_after_ms(const HttpResponse& r, uint64_t fallback) {
    std::optional<uint64_t> secs = parse_retry_after(r.header("retry-after"), core::unix_now_s());
    if (!secs) return fallback;
    return std::min(*secs, kMaxRetryAfterS) * 1000;
}

// Requests are built in named locals, never as braced temporaries inside a co_await: g++ 12
// copies such an aggregate's std::string members bitwise into the coroutine frame and later
// frees a pointer into the frame (found with ASan), the same family as its "array used as
// initializer" bug.
HttpRequest request(std::string method, std::string url, std::string body, std::string content_type,
                    std::string accept) {
    HttpRequest r;
    r.method = std::move(method);
    r.url = std::move(url);
    r.body = std::move(body);
    r.content_type = std::move(content_type);
    r.accept = std::move(accept);
    return r;
}

json parse_json(const HttpResponse& r, const std::string& what) {
    try {
        return parse_document(r.body, what);
    } catch (const DocumentError& e) {
        throw AcmeError("malformed", e.what(), r.status, 0);
    }
}

// A document of the CA's answer through its typed reader (acme/documents.hpp); a document that
// breaks RFC 8555 is the CA's error, reported as "malformed" with the field at fault.
template <class Doc>
Doc read_json(const HttpResponse& r, const std::string& what, Doc (*parse)(const json&)) {
    json j = parse_json(r, what);
    try {
        return parse(j);
    } catch (const DocumentError& e) {
        throw AcmeError("malformed", e.what(), r.status, 0);
    }
}

// What poll() needs of an order or an authorization: its status, and why it failed.
std::pair<std::string, std::string> progress(const json& j, const std::string& what, int http_status) {
    try {
        if (what == "order") {
            Order o = parse_order(j);
            return {o.status, o.error};
        }
        Authorization a = parse_authorization(j);
        return {a.status, a.failure()};
    } catch (const DocumentError& e) {
        throw AcmeError("malformed", e.what(), http_status, 0);
    }
}

// RAII for a challenge answer in the token store: removed however the authorization ends.
struct TokenGuard {
    http::MemoryTokenStore& store;
    std::string token;
    ~TokenGuard() { store.remove(token); }
};

}  // namespace

Client::Client(uv_loop_t* loop, SSL_CTX* tls, AccountSettings settings, Key account_key, http::MemoryTokenStore& tokens,
               Canceller& cancel)
    : loop_(loop),
      tls_(tls),
      settings_(std::move(settings)),
      key_(std::move(account_key)),
      tokens_(tokens),
      cancel_(cancel) {}

Task<HttpResponse> Client::fetch(HttpRequest req) {
    if (cancel_.cancelled()) throw FetchError("cancelled");
    HttpResponse r = co_await Fetch(loop_, tls_, std::move(req), kRequestTimeoutMs, &cancel_);
    remember_nonce(r);
    co_return r;
}

void Client::remember_nonce(const HttpResponse& r) {
    std::string n = r.header("replay-nonce");
    if (!n.empty()) nonce_ = std::move(n);
}

std::string Client::take_nonce() { return std::exchange(nonce_, std::string()); }

void Client::throw_problem(const HttpResponse& r, const std::string& what) const {
    Problem p = read_problem_body(r.body);
    std::string type = p.type.empty() ? "http-" + std::to_string(r.status) : p.type;
    std::string detail = p.detail.empty() ? what : what + ": " + p.detail;
    throw AcmeError(type, detail, r.status, retry_after_ms(r, 0) / 1000);
}

Task<void> Client::load_directory() {
    if (dir_) co_return;
    HttpRequest req = request("GET", settings_.directory, "", "", "application/json");
    HttpResponse r = co_await fetch(std::move(req));
    if (r.status != 200) throw_problem(r, "directory");
    dir_ = read_json(r, "directory", parse_directory);
}

Task<HttpResponse> Client::post(std::string url, std::string payload, bool use_jwk, std::string accept) {
    co_await load_directory();
    for (int attempt = 0;; ++attempt) {
        if (nonce_.empty()) {
            HttpRequest head = request("HEAD", dir_->new_nonce, "", "", "");
            HttpResponse n = co_await fetch(std::move(head));
            if (nonce_.empty()) throw AcmeError("malformed", "newNonce gave no Replay-Nonce", n.status, 0);
        }
        json hdr = {{"nonce", take_nonce()}, {"url", url}};
        if (use_jwk)
            hdr["jwk"] = key_.jwk();
        else
            hdr["kid"] = kid_;
        std::string body = jws(key_, hdr, payload);
        HttpRequest req = request("POST", url, std::move(body), "application/jose+json", accept);
        HttpResponse r = co_await fetch(std::move(req));
        if (r.status < 400) co_return r;
        // RFC 8555 6.5: a badNonce error carries a fresh nonce; retry with it.
        bool bad_nonce = read_problem_body(r.body).type == "urn:ietf:params:acme:error:badNonce";
        if (bad_nonce && attempt < kMaxBadNonceRetries) continue;
        throw_problem(r, "POST " + url);
    }
}

Task<void> Client::ensure_account() {
    if (!kid_.empty()) co_return;
    co_await load_directory();
    json payload = {{"termsOfServiceAgreed", true}};
    if (!settings_.email.empty()) payload["contact"] = json::array({"mailto:" + settings_.email});
    if (!settings_.eab_kid.empty())
        payload["externalAccountBinding"] =
            eab_jws(settings_.eab_kid, settings_.eab_hmac_key, key_.jwk(), dir_->new_account);
    HttpResponse r = co_await post(dir_->new_account, payload.dump(), true);
    // RFC 8555 7.3: the answer is the account object; one that is deactivated or revoked can
    // order nothing, which is better said now than at the first order.
    if (!r.body.empty()) {
        Account a = read_json(r, "account", parse_account);
        if (a.status != "valid") throw AcmeError("unauthorized", "account is " + a.status, r.status, 0);
    }
    std::string kid = r.header("location");
    if (kid.empty()) throw AcmeError("malformed", "newAccount gave no Location", r.status, 0);
    kid_ = std::move(kid);
}

Task<json> Client::poll(std::string url, std::string what, std::vector<std::string> done_states) {
    for (int i = 0; i < kMaxPolls; ++i) {
        HttpResponse r = co_await post(url, "");
        json j = parse_json(r, what);
        auto [status, failure] = progress(j, what, r.status);
        if (std::find(done_states.begin(), done_states.end(), status) != done_states.end()) co_return j;
        // RFC 8555 7.1.6: besides "invalid", an authorization can end "deactivated", "expired"
        // or "revoked"; none of them ever becomes valid, so polling on would only wait.
        if (status == "invalid" || status == "deactivated" || status == "expired" || status == "revoked")
            throw AcmeError(status, what + " became " + status + ": " + failure, r.status, 0);
        uint64_t wait = std::clamp(retry_after_ms(r, 1000), kPollMinMs, kPollMaxMs);
        co_await Sleep(loop_, wait, &cancel_);
        if (cancel_.cancelled()) throw FetchError("cancelled");
    }
    throw AcmeError("timeout", what + " did not settle", 0, 0);
}

Task<void> Client::authorize(std::string authz_url) {
    HttpResponse r = co_await post(authz_url, "");
    Authorization authz = read_json(r, "authorization", parse_authorization);
    if (authz.status == "valid") co_return;
    std::optional<Challenge> chal;
    for (const auto& c : authz.challenges)
        if (c.type == "http-01") chal = c;
    std::string name = authz.identifier_value.empty() ? "?" : authz.identifier_value;
    if (!chal) throw AcmeError("unsupported", "no http-01 challenge offered for " + name, r.status, 0);
    std::string token = chal->token;
    std::string tmp;
    if (http::classify(std::string(http::kChallengePrefix) + token, tmp) != http::PathKind::Challenge)
        throw AcmeError("malformed", "CA sent a token that is not base64url", r.status, 0);
    // RFC 8555 8.1: keyAuthorization = token || '.' || base64url(Thumbprint(accountKey)).
    tokens_.put(token, token + "." + key_.thumbprint());
    TokenGuard guard{tokens_, token};
    core::log_info("acme_challenge").kv("domain", name).kv("type", "http-01");
    std::string chal_url = chal->url;
    co_await post(std::move(chal_url), "{}");
    std::vector<std::string> done{"valid"};
    co_await poll(std::move(authz_url), "authorization", std::move(done));
}

Task<Issued> Client::issue(std::vector<std::string> domains, KeyType key_type, std::string replaces) {
    co_await ensure_account();
    json ids = json::array();
    for (const auto& d : domains) ids.push_back({{"type", "dns"}, {"value", d}});
    json req = {{"identifiers", ids}};
    // ARI: say which certificate this one replaces, when the CA understands it.
    bool with_replaces = !replaces.empty() && !dir_->renewal_info.empty();
    if (with_replaces) req["replaces"] = replaces;
    std::string new_order = dir_->new_order;
    std::optional<HttpResponse> ordered;
    bool retry_plain = false;
    try {
        ordered = co_await post(new_order, req.dump());
    } catch (const AcmeError& e) {
        // RFC 9773 5: a CA that refuses the "replaces" (already replaced by another order, or
        // not a certificate it knows) must not block the renewal; order again without it.
        if (!with_replaces || e.rate_limited() || e.status >= 500) throw;
        retry_plain = true;
    }
    if (retry_plain) {
        req.erase("replaces");
        ordered = co_await post(new_order, req.dump());
    }
    HttpResponse r = std::move(*ordered);
    std::string order_url = r.header("location");
    Order order = read_json(r, "order", parse_order);
    if (order_url.empty()) throw AcmeError("malformed", "newOrder gave no Location", r.status, 0);
    for (const auto& a : order.authorizations) co_await authorize(a);

    // RFC 8555 7.4: finalize only once the order is ready.
    std::vector<std::string> settled{"ready", "valid"};
    json polled = co_await poll(order_url, "order", std::move(settled));
    order = parse_order(polled);
    if (order.status == "ready") {
        Key cert_key = Key::generate(key_type);
        std::string csr = b64url_encode(make_csr_der(cert_key, domains));
        // Built before the co_await: g++ 12 rejects a braced list inside an await expression.
        json finalize = {{"csr", csr}};
        co_await post(order.finalize, finalize.dump());
        std::vector<std::string> issued{"valid"};
        polled = co_await poll(order_url, "order", std::move(issued));
        order = parse_order(polled);
        HttpResponse c = co_await post(order.certificate, "", false, "application/pem-certificate-chain");
        if (c.body.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
            throw AcmeError("malformed", "certificate download is not PEM", c.status, 0);
        if (!key_matches_cert(cert_key, c.body))
            throw AcmeError("malformed", "issued certificate does not match our key", c.status, 0);
        co_return Issued{std::move(c.body), cert_key.private_pem()};
    }
    // Already valid: a reused order whose key we no longer have cannot be used.
    throw AcmeError("orderNotReady", "order was already valid; its key is unknown, retrying later", 0, 0);
}

Task<std::optional<RenewalWindow>> Client::renewal_info(std::string cert_id) {
    co_await load_directory();
    if (dir_->renewal_info.empty()) co_return std::nullopt;
    std::string base = dir_->renewal_info;
    if (!base.ends_with("/")) base += "/";
    HttpRequest req = request("GET", base + cert_id, "", "", "application/json");
    HttpResponse r = co_await fetch(std::move(req));
    if (r.status != 200) co_return std::nullopt;
    // A window the CA got wrong is no window: the certificate's own lifetime decides instead.
    std::optional<RenewalWindow> window;
    try {
        RenewalInfo info = parse_renewal_info(parse_document(r.body, "renewalInfo"));
        window = RenewalWindow{info.start, info.end};
    } catch (const DocumentError& e) {
        core::log_warn("acme_renewal_info").kv("error", e.what());
    }
    co_return window;
}

}  // namespace sniroute::acme

#include "acme/client.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>

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

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

unsigned days_in_month(int64_t y, unsigned m) {
    static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : kDays[m - 1];
}

// A cursor over fixed-layout text: every field has an exact width and an exact range.
struct Scanner {
    std::string_view s;
    bool ok = true;
    unsigned digits(size_t n, unsigned lo, unsigned hi) {
        unsigned v = 0;
        if (s.size() < n) ok = false;
        for (size_t i = 0; ok && i < n; ++i) {
            if (s[i] < '0' || s[i] > '9')
                ok = false;
            else
                v = v * 10 + static_cast<unsigned>(s[i] - '0');
        }
        if (ok) s.remove_prefix(n);
        if (v < lo || v > hi) ok = false;
        return v;
    }
    void lit(std::string_view l) {
        if (ok && s.starts_with(l))
            s.remove_prefix(l.size());
        else
            ok = false;
    }
    bool take(char c) {
        if (!ok || s.empty() || s.front() != c) return false;
        s.remove_prefix(1);
        return true;
    }
};

std::optional<int64_t> to_unix(int64_t y, unsigned mon, unsigned d, unsigned h, unsigned mi, unsigned sec) {
    if (d > days_in_month(y, mon)) return std::nullopt;
    return days_from_civil(y, mon, d) * 86400 + h * 3600 + mi * 60 + sec;
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
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw AcmeError("malformed", what + ": CA answered with invalid JSON", r.status, 0);
    return j;
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
    json j = json::parse(r.body, nullptr, false);
    std::string type = "http-" + std::to_string(r.status), detail = what;
    if (j.is_object()) {
        if (j.contains("type") && j["type"].is_string()) type = j["type"].get<std::string>();
        if (j.contains("detail") && j["detail"].is_string()) detail = what + ": " + j["detail"].get<std::string>();
    }
    throw AcmeError(type, detail, r.status, retry_after_ms(r, 0) / 1000);
}

Task<void> Client::load_directory() {
    if (!dir_.is_null()) co_return;
    HttpRequest req = request("GET", settings_.directory, "", "", "application/json");
    HttpResponse r = co_await fetch(std::move(req));
    if (r.status != 200) throw_problem(r, "directory");
    json d = parse_json(r, "directory");
    for (const char* k : {"newNonce", "newAccount", "newOrder"})
        if (!d.contains(k) || !d[k].is_string())
            throw AcmeError("malformed", std::string("directory has no ") + k, r.status, 0);
    dir_ = std::move(d);
}

Task<HttpResponse> Client::post(std::string url, std::string payload, bool use_jwk, std::string accept) {
    co_await load_directory();
    for (int attempt = 0;; ++attempt) {
        if (nonce_.empty()) {
            HttpRequest head = request("HEAD", dir_["newNonce"].get<std::string>(), "", "", "");
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
        json j = json::parse(r.body, nullptr, false);
        bool bad_nonce = j.is_object() && j.value("type", "") == "urn:ietf:params:acme:error:badNonce";
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
            eab_jws(settings_.eab_kid, settings_.eab_hmac_key, key_.jwk(), dir_["newAccount"].get<std::string>());
    HttpResponse r = co_await post(dir_["newAccount"].get<std::string>(), payload.dump(), true);
    kid_ = r.header("location");
    if (kid_.empty()) throw AcmeError("malformed", "newAccount gave no Location", r.status, 0);
}

Task<json> Client::poll(std::string url, std::string what, std::vector<std::string> done_states) {
    for (int i = 0; i < kMaxPolls; ++i) {
        HttpResponse r = co_await post(url, "");
        json j = parse_json(r, what);
        std::string status = j.value("status", "");
        if (std::find(done_states.begin(), done_states.end(), status) != done_states.end()) co_return j;
        // RFC 8555 7.1.6: besides "invalid", an authorization can end "deactivated", "expired"
        // or "revoked"; none of them ever becomes valid, so polling on would only wait.
        if (status == "invalid" || status == "deactivated" || status == "expired" || status == "revoked") {
            std::string detail = j.contains("error") ? j["error"].dump() : "";
            if (j.contains("challenges") && j["challenges"].is_array())
                for (const auto& c : j["challenges"])
                    if (c.is_object() && c.contains("error"))
                        detail =
                            c["error"].is_object() ? c["error"].value("detail", c["error"].dump()) : c["error"].dump();
            throw AcmeError(status, what + " became " + status + ": " + detail, r.status, 0);
        }
        uint64_t wait = std::clamp(retry_after_ms(r, 1000), kPollMinMs, kPollMaxMs);
        co_await Sleep(loop_, wait, &cancel_);
        if (cancel_.cancelled()) throw FetchError("cancelled");
    }
    throw AcmeError("timeout", what + " did not settle", 0, 0);
}

Task<void> Client::authorize(std::string authz_url) {
    HttpResponse r = co_await post(authz_url, "");
    json authz = parse_json(r, "authorization");
    if (authz.value("status", "") == "valid") co_return;
    // value() returns a copy: keep the chosen challenge by value, not a pointer into that copy.
    std::optional<json> chal;
    for (const auto& c : authz.value("challenges", json::array()))
        if (c.is_object() && c.value("type", "") == "http-01") chal = c;
    std::string name =
        authz.contains("identifier") && authz["identifier"].is_object() ? authz["identifier"].value("value", "?") : "?";
    if (!chal) throw AcmeError("unsupported", "no http-01 challenge offered for " + name, r.status, 0);
    std::string token = chal->value("token", "");
    std::string tmp;
    if (http::classify(std::string(http::kChallengePrefix) + token, tmp) != http::PathKind::Challenge)
        throw AcmeError("malformed", "CA sent a token that is not base64url", r.status, 0);
    // RFC 8555 8.1: keyAuthorization = token || '.' || base64url(Thumbprint(accountKey)).
    tokens_.put(token, token + "." + key_.thumbprint());
    TokenGuard guard{tokens_, token};
    core::log_info("acme_challenge").kv("domain", name).kv("type", "http-01");
    std::string chal_url = chal->value("url", "");
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
    bool with_replaces = !replaces.empty() && dir_.contains("renewalInfo");
    if (with_replaces) req["replaces"] = replaces;
    std::string new_order = dir_["newOrder"].get<std::string>();
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
    json order = parse_json(r, "order");
    if (order_url.empty()) throw AcmeError("malformed", "newOrder gave no Location", r.status, 0);
    for (const auto& a : order.value("authorizations", json::array())) co_await authorize(a.get<std::string>());

    // RFC 8555 7.4: finalize only once the order is ready.
    std::vector<std::string> settled{"ready", "valid"};
    order = co_await poll(order_url, "order", std::move(settled));
    if (order.value("status", "") == "ready") {
        Key cert_key = Key::generate(key_type);
        std::string csr = b64url_encode(make_csr_der(cert_key, domains));
        // Built before the co_await: g++ 12 rejects a braced list inside an await expression.
        json finalize = {{"csr", csr}};
        co_await post(order.value("finalize", ""), finalize.dump());
        std::vector<std::string> issued{"valid"};
        order = co_await poll(order_url, "order", std::move(issued));
        HttpResponse c = co_await post(order.value("certificate", ""), "", false, "application/pem-certificate-chain");
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
    if (!dir_.contains("renewalInfo") || !dir_["renewalInfo"].is_string()) co_return std::nullopt;
    std::string base = dir_["renewalInfo"].get<std::string>();
    if (!base.ends_with("/")) base += "/";
    HttpRequest req = request("GET", base + cert_id, "", "", "application/json");
    HttpResponse r = co_await fetch(std::move(req));
    if (r.status != 200) co_return std::nullopt;
    json j = json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.contains("suggestedWindow") || !j["suggestedWindow"].is_object()) co_return std::nullopt;
    auto start = parse_rfc3339(j["suggestedWindow"].value("start", ""));
    auto end = parse_rfc3339(j["suggestedWindow"].value("end", ""));
    if (!start || !end || *end < *start) co_return std::nullopt;
    co_return RenewalWindow{*start, *end};
}

// RFC 3339 5.6: full-date "T" full-time, where full-time = HH:MM:SS [.frac] (Z | +HH:MM | -HH:MM).
// The separator may also be "t" or a space (5.6, note); "z" stands for "Z".
std::optional<int64_t> parse_rfc3339(std::string_view s) {
    Scanner in{s};
    unsigned y = in.digits(4, 0, 9999);
    in.lit("-");
    unsigned mon = in.digits(2, 1, 12);
    in.lit("-");
    unsigned d = in.digits(2, 1, 31);
    if (!(in.take('T') || in.take('t') || in.take(' '))) return std::nullopt;
    unsigned h = in.digits(2, 0, 23);
    in.lit(":");
    unsigned mi = in.digits(2, 0, 59);
    in.lit(":");
    unsigned sec = in.digits(2, 0, 60);
    if (in.take('.')) {
        size_t n = 0;
        while (n < in.s.size() && in.s[n] >= '0' && in.s[n] <= '9') ++n;
        if (n == 0) return std::nullopt;
        in.s.remove_prefix(n);
    }
    int64_t offset = 0;
    if (in.take('Z') || in.take('z')) {
    } else if (bool plus = in.take('+'); plus || in.take('-')) {
        unsigned oh = in.digits(2, 0, 23);
        in.lit(":");
        unsigned om = in.digits(2, 0, 59);
        offset = (plus ? 1 : -1) * static_cast<int64_t>(oh * 3600 + om * 60);
    } else {
        return std::nullopt;
    }
    if (!in.ok || !in.s.empty()) return std::nullopt;
    auto t = to_unix(y, mon, d, h, mi, sec);
    if (!t) return std::nullopt;
    // Local time = UTC + offset, so UTC = local - offset.
    return *t - offset;
}

std::optional<uint64_t> parse_retry_after(std::string_view v, int64_t now) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    if (v.empty()) return std::nullopt;
    if (v.front() >= '0' && v.front() <= '9') {
        // delta-seconds = 1*DIGIT; a value too large for 64 bits is still "very long".
        uint64_t secs = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
        if (p != v.data() + v.size()) return std::nullopt;
        if (ec == std::errc::result_out_of_range) return UINT64_MAX;
        return ec == std::errc() ? std::optional<uint64_t>(secs) : std::nullopt;
    }
    // IMF-fixdate = day-name "," SP DD SP month SP YYYY SP HH:MM:SS SP "GMT" (RFC 9110 5.6.7).
    static constexpr std::string_view kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (v.size() != 29 || std::find(std::begin(kDays), std::end(kDays), v.substr(0, 3)) == std::end(kDays))
        return std::nullopt;
    Scanner in{v.substr(3)};
    in.lit(", ");
    unsigned d = in.digits(2, 1, 31);
    in.lit(" ");
    if (!in.ok) return std::nullopt;
    auto m = std::find(std::begin(kMonths), std::end(kMonths), in.s.substr(0, 3));
    if (m == std::end(kMonths)) return std::nullopt;
    in.s.remove_prefix(3);
    in.lit(" ");
    unsigned y = in.digits(4, 0, 9999);
    in.lit(" ");
    unsigned h = in.digits(2, 0, 23);
    in.lit(":");
    unsigned mi = in.digits(2, 0, 59);
    in.lit(":");
    unsigned sec = in.digits(2, 0, 60);
    in.lit(" GMT");
    if (!in.ok || !in.s.empty()) return std::nullopt;
    auto t = to_unix(y, static_cast<unsigned>(m - std::begin(kMonths)) + 1, d, h, mi, sec);
    if (!t) return std::nullopt;
    return *t > now ? static_cast<uint64_t>(*t - now) : 0;
}

}  // namespace sniroute::acme

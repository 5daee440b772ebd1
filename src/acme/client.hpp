// RFC 8555 protocol flow: directory, nonces, account, order, HTTP-01 authorizations through the
// http listener's token store, finalize, download; plus RFC 9773 renewal information (ARI).
#pragma once

#include <uv.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "acme/dates.hpp"
#include "acme/documents.hpp"
#include "acme/https_client.hpp"
#include "acme/key.hpp"
#include "acme/task.hpp"
#include "http/challenge.hpp"

namespace sniroute::acme {

// An error document from the CA (RFC 8555 6.7), or a protocol violation by it.
struct AcmeError : std::runtime_error {
    AcmeError(std::string type, std::string detail, int status, uint64_t retry_after_s)
        : std::runtime_error(detail.empty() ? type : type + ": " + detail),
          type(std::move(type)),
          status(status),
          retry_after_s(retry_after_s) {}
    std::string type;  // "urn:ietf:params:acme:error:rateLimited", ...
    int status;
    uint64_t retry_after_s;  // 0 when the CA gave none
    bool rate_limited() const { return type.ends_with(":rateLimited") || status == 429; }
};

struct AccountSettings {
    std::string directory;
    std::string email;
    std::string eab_kid;
    std::string eab_hmac_key;
};

struct Issued {
    std::string chain_pem;
    std::string key_pem;
};

struct RenewalWindow {
    int64_t start = 0;  // unix seconds
    int64_t end = 0;
};

class Client {
public:
    Client(uv_loop_t* loop, SSL_CTX* tls, AccountSettings settings, Key account_key, http::MemoryTokenStore& tokens,
           Canceller& cancel);

    // Registers the account, or finds the existing one for this key (onlyReturnExisting is not
    // needed: newAccount with a known key returns it, RFC 8555 7.3.1).
    Task<void> ensure_account();
    // Orders a certificate for `domains` with a fresh key of `key_type`; `replaces` is the ARI
    // certificate ID of the certificate being renewed, if any.
    Task<Issued> issue(std::vector<std::string> domains, KeyType key_type, std::string replaces);
    // The CA's suggested renewal window for a certificate, if the directory offers renewalInfo.
    Task<std::optional<RenewalWindow>> renewal_info(std::string cert_id);

    const std::string& account_url() const { return kid_; }
    const Key& account_key() const { return key_; }

private:
    Task<void> load_directory();
    Task<HttpResponse> fetch(HttpRequest req);
    // A signed POST; `payload` is JSON text, or "" for POST-as-GET. Retries badNonce.
    Task<HttpResponse> post(std::string url, std::string payload, bool use_jwk = false, std::string accept = "");
    // Polls an order or authorization (`what`) until its status is one of `done_states`, and
    // returns it as the CA last sent it. The states are a vector taken by value: the coroutine
    // frame owns them, whatever the caller's temporaries do.
    Task<nlohmann::json> poll(std::string url, std::string what, std::vector<std::string> done_states);
    Task<void> authorize(std::string authz_url);
    std::string take_nonce();
    void remember_nonce(const HttpResponse& r);
    [[noreturn]] void throw_problem(const HttpResponse& r, const std::string& what) const;

    uv_loop_t* loop_;
    SSL_CTX* tls_;
    AccountSettings settings_;
    Key key_;
    http::MemoryTokenStore& tokens_;
    Canceller& cancel_;
    std::optional<Directory> dir_;
    std::string nonce_;
    std::string kid_;
};

}  // namespace sniroute::acme

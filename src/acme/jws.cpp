#include "acme/jws.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <optional>
#include <stdexcept>
#include <utility>

#include "acme/b64.hpp"

namespace sniroute::acme {

namespace {

// The flattened serialization: three base64url strings, nothing else (no unprotected
// "header" member; RFC 8555 6.2 forbids one).
nlohmann::json flattened(std::string protected_b64, std::string payload_b64, std::string_view signature) {
    return {{"protected", std::move(protected_b64)},
            {"payload", std::move(payload_b64)},
            {"signature", b64url_encode(signature)}};
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    size_t len = 0;
    if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                  reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, sizeof out, &len) == nullptr) {
        ERR_clear_error();
        throw std::runtime_error("openssl: HMAC-SHA256 failed");
    }
    return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace

std::string jws(const Key& key, const nlohmann::json& protected_header_extra, std::string_view payload) {
    if (!protected_header_extra.is_null() && !protected_header_extra.is_object())
        throw std::invalid_argument("JWS protected header members must be a JSON object");
    nlohmann::json header = nlohmann::json::object();
    if (protected_header_extra.is_object()) header.update(protected_header_extra);
    // Set last, so a stray "alg" from the caller cannot name an algorithm the key does not use.
    header["alg"] = key.alg();

    std::string protected_b64 = b64url_encode(header.dump());
    std::string payload_b64 = b64url_encode(payload);
    std::string signature = key.sign(protected_b64 + "." + payload_b64);
    return flattened(std::move(protected_b64), std::move(payload_b64), signature).dump();
}

nlohmann::json eab_jws(const std::string& kid, const std::string& hmac_key_b64url, const nlohmann::json& account_jwk,
                       const std::string& new_account_url) {
    if (kid.empty()) throw std::invalid_argument("EAB key identifier is empty");
    std::optional<std::string> mac_key = b64url_decode(hmac_key_b64url);
    if (!mac_key) throw std::invalid_argument("EAB HMAC key is not unpadded base64url");
    if (mac_key->empty()) throw std::invalid_argument("EAB HMAC key is empty");

    // RFC 8555 7.3.4: the header MUST NOT carry a nonce; "url" is the newAccount URL, so a
    // binding cannot be replayed against another endpoint.
    nlohmann::json header = {{"alg", "HS256"}, {"kid", kid}, {"url", new_account_url}};
    std::string protected_b64 = b64url_encode(header.dump());
    std::string payload_b64 = b64url_encode(account_jwk.dump());
    std::string signature = hmac_sha256(*mac_key, protected_b64 + "." + payload_b64);
    return flattened(std::move(protected_b64), std::move(payload_b64), signature);
}

}  // namespace sniroute::acme

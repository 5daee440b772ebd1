// JWS requests for ACME (RFC 8555 6.2) and the External Account Binding (RFC 8555 7.3.4).
//
// Every ACME POST body is a JWS in the flattened JSON serialization (RFC 7515 7.2.2):
//   {"protected": b64url(header JSON), "payload": b64url(payload), "signature": b64url(sig)}
// with the signature over the ASCII string  protected || "." || payload.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "acme/key.hpp"

namespace sniroute::acme {

// Signs payload with key. The protected header is {"alg": key.alg()} plus every member of
// protected_header_extra; the caller supplies "nonce", "url" and exactly one of "jwk" (for
// newAccount and revocation by certificate key) or "kid" (every other request). An "alg" in
// the extra members is ignored: the header always names the algorithm the key signs with.
// payload is the exact text to carry: "" is POST-as-GET (RFC 8555 6.3) and encodes to an empty
// "payload"; "{}" encodes to "e30". Returns the JSON text of the request body.
// Throws std::invalid_argument if protected_header_extra is neither an object nor null.
std::string jws(const Key& key, const nlohmann::json& protected_header_extra, std::string_view payload);

// The externalAccountBinding member of a newAccount payload (RFC 8555 7.3.4): a JWS with
// protected {"alg":"HS256","kid":kid,"url":new_account_url}, the account's public JWK as its
// payload, and an HMAC-SHA256 signature keyed with the CA-issued MAC key. hmac_key_b64url is
// the key as the CA prints it, in unpadded base64url.
// Throws std::invalid_argument if kid is empty or the key is empty or not valid base64url
// (a configuration error the operator has to fix).
nlohmann::json eab_jws(const std::string& kid, const std::string& hmac_key_b64url, const nlohmann::json& account_jwk,
                       const std::string& new_account_url);

}  // namespace sniroute::acme

// Private keys for ACME: the account key that signs every request, and certificate keys.
//
// A Key knows the three things JOSE asks of it (RFC 7515, 7517, 7518): its public half as a
// JWK, its RFC 7638 thumbprint (the second half of every http-01 key authorization), and a
// signature in the JWS encoding, which for ECDSA is the fixed-size r||s and not OpenSSL's DER.
//
// Control plane: OpenSSL failures that cannot happen short of memory exhaustion throw
// std::runtime_error; input that may come from disk (from_pem) returns nullopt instead.
#pragma once

#include <openssl/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace sniroute::acme {

// In the order of config::kKeyTypes, which names them.
enum class KeyType { EcdsaP256, EcdsaP384, Rsa2048, Rsa3072, Rsa4096 };

// The names of config::kKeyTypes: "ecdsa-p256", "ecdsa-p384", "rsa2048", "rsa3072", "rsa4096"
// (exact, lower case).
std::optional<KeyType> parse_key_type(std::string_view name);

// The inverse of parse_key_type, for logs and state files.
std::string_view key_type_name(KeyType type);

class Key {
public:
    // A fresh key from the default random source.
    static Key generate(KeyType type);

    // Reads the first private key in a PEM text: PKCS#8 ("PRIVATE KEY") or the traditional
    // "EC PRIVATE KEY" / "RSA PRIVATE KEY" forms. Returns nullopt for garbage, encrypted keys
    // (there is nobody to ask for a passphrase) and any key that is not one of the five
    // KeyTypes, such as P-521, Ed25519 or RSA-1024.
    static std::optional<Key> from_pem(std::string_view pem);

    Key(Key&& other) noexcept;
    Key& operator=(Key&& other) noexcept;
    Key(const Key&) = delete;
    Key& operator=(const Key&) = delete;
    ~Key();

    KeyType type() const { return type_; }

    // Unencrypted PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"), which every mail server reads.
    std::string private_pem() const;

    // The public JWK, required members only (RFC 7518 6.2.1 / 6.3.1):
    //   EC:  {"crv":"P-256"|"P-384","kty":"EC","x":…,"y":…}, coordinates left-padded with
    //        zero bytes to the field size (32 or 48 bytes), as RFC 7518 6.2.1.2 requires.
    //   RSA: {"e":…,"kty":"RSA","n":…}, big-endian with no leading zero bytes (RFC 7518 6.3.1.1).
    nlohmann::json jwk() const;

    // RFC 7638 SHA-256 thumbprint of jwk(), base64url.
    std::string thumbprint() const;

    // JWS "alg": "ES256" (P-256 with SHA-256), "ES384" (P-384 with SHA-384) or "RS256".
    std::string alg() const;

    // The JWS signature bytes over data (not base64url-encoded): for ES256/ES384 the raw
    // big-endian r||s, each padded to the field size (64 or 96 bytes in all), per RFC 7518
    // 3.4; for RS256 a PKCS#1 v1.5 signature over SHA-256 as long as the modulus.
    std::string sign(std::string_view data) const;

    // The underlying key, still owned by this object (for verification, X509 checks).
    EVP_PKEY* pkey() const { return pkey_; }

private:
    Key(EVP_PKEY* pkey, KeyType type) : pkey_(pkey), type_(type) {}

    EVP_PKEY* pkey_ = nullptr;
    KeyType type_ = KeyType::EcdsaP256;
};

// RFC 7638 section 3: SHA-256 over the JSON object of the key type's required members only
// (EC: crv,kty,x,y; RSA: e,kty,n; oct: k,kty; OKP: crv,kty,x), names in lexicographic order,
// no whitespace; the digest in base64url. Optional members such as "kid" or "alg" are ignored.
// Throws std::invalid_argument when the JWK has an unknown "kty" or lacks a required member or
// a required member is not a string.
std::string thumbprint_of_jwk(const nlohmann::json& jwk);

}  // namespace sniroute::acme

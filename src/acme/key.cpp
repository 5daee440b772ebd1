#include "acme/key.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include "acme/b64.hpp"
#include "acme/ossl.hpp"
#include "config/config.hpp"

namespace sniroute::acme {

using ossl::fail;

namespace {

bool is_ec(KeyType t) { return t == KeyType::EcdsaP256 || t == KeyType::EcdsaP384; }

// Bytes per coordinate (and per half of an r||s signature) for the EC key types.
size_t field_bytes(KeyType t) { return t == KeyType::EcdsaP384 ? 48 : 32; }

const EVP_MD* digest_for(KeyType t) { return t == KeyType::EcdsaP384 ? EVP_sha384() : EVP_sha256(); }

ossl::Bignum bn_param(EVP_PKEY* pkey, const char* name) {
    BIGNUM* bn = nullptr;
    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1 || bn == nullptr) fail(name);
    return ossl::Bignum(bn);
}

// Big-endian bytes of bn, left-padded with zeros to exactly width bytes.
std::string padded(const BIGNUM* bn, size_t width) {
    std::string out(width, '\0');
    if (BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(width)) !=
        static_cast<int>(width))
        fail("BN_bn2binpad");
    return out;
}

// Big-endian bytes of bn with no leading zero byte (an RSA modulus or exponent).
std::string minimal(const BIGNUM* bn) {
    std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
    return out;
}

// Which of our KeyTypes a loaded key is, if any.
std::optional<KeyType> classify(EVP_PKEY* pkey) {
    if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64];
        size_t len = 0;
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1)
            return std::nullopt;  // explicit curve parameters rather than a named curve
        int nid = OBJ_txt2nid(group);
        if (nid == NID_undef) nid = EC_curve_nist2nid(group);
        if (nid == NID_X9_62_prime256v1) return KeyType::EcdsaP256;
        if (nid == NID_secp384r1) return KeyType::EcdsaP384;
        return std::nullopt;
    }
    // EVP_PKEY_is_a(…, "RSA") is false for RSA-PSS keys, which cannot make RS256 signatures.
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        switch (EVP_PKEY_get_bits(pkey)) {
            case 2048: return KeyType::Rsa2048;
            case 3072: return KeyType::Rsa3072;
            case 4096: return KeyType::Rsa4096;
            default: return std::nullopt;
        }
    }
    return std::nullopt;
}

// PEM_read_bio_PrivateKey's default callback prompts on the terminal for a passphrase; a
// daemon must fail instead.
int no_passphrase(char*, int, int, void*) { return -1; }

}  // namespace

// KeyType's enumerators are in the order of the config layer's list of names.
static_assert(config::kKeyTypes.size() == static_cast<size_t>(KeyType::Rsa4096) + 1);

std::optional<KeyType> parse_key_type(std::string_view name) {
    for (size_t i = 0; i < config::kKeyTypes.size(); ++i)
        if (config::kKeyTypes[i] == name) return static_cast<KeyType>(i);
    return std::nullopt;
}

std::string_view key_type_name(KeyType type) {
    auto i = static_cast<size_t>(type);
    return i < config::kKeyTypes.size() ? config::kKeyTypes[i] : "?";
}

Key Key::generate(KeyType type) {
    EVP_PKEY* pkey = nullptr;
    switch (type) {
        case KeyType::EcdsaP256: pkey = EVP_EC_gen("P-256"); break;
        case KeyType::EcdsaP384: pkey = EVP_EC_gen("P-384"); break;
        case KeyType::Rsa2048: pkey = EVP_RSA_gen(2048); break;
        case KeyType::Rsa3072: pkey = EVP_RSA_gen(3072); break;
        case KeyType::Rsa4096: pkey = EVP_RSA_gen(4096); break;
    }
    if (pkey == nullptr) fail("key generation");
    return Key(pkey, type);
}

std::optional<Key> Key::from_pem(std::string_view pem) {
    ossl::Bio bio = ossl::mem_reader(pem.data(), pem.size());
    ossl::Pkey pkey(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
    std::optional<KeyType> type = pkey ? classify(pkey.get()) : std::nullopt;
    if (!type) {
        ERR_clear_error();
        return std::nullopt;
    }
    return Key(pkey.release(), *type);
}

Key::Key(Key&& other) noexcept : pkey_(std::exchange(other.pkey_, nullptr)), type_(other.type_) {}

Key& Key::operator=(Key&& other) noexcept {
    if (this != &other) {
        EVP_PKEY_free(pkey_);
        pkey_ = std::exchange(other.pkey_, nullptr);
        type_ = other.type_;
    }
    return *this;
}

Key::~Key() { EVP_PKEY_free(pkey_); }

std::string Key::private_pem() const {
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey_, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        fail("PEM_write_bio_PKCS8PrivateKey");
    return ossl::mem_contents(bio.get());
}

nlohmann::json Key::jwk() const {
    if (pkey_ == nullptr) throw std::logic_error("jwk() on a moved-from Key");
    if (is_ec(type_)) {
        size_t width = field_bytes(type_);
        ossl::Bignum x = bn_param(pkey_, OSSL_PKEY_PARAM_EC_PUB_X);
        ossl::Bignum y = bn_param(pkey_, OSSL_PKEY_PARAM_EC_PUB_Y);
        return {{"crv", type_ == KeyType::EcdsaP384 ? "P-384" : "P-256"},
                {"kty", "EC"},
                {"x", b64url_encode(padded(x.get(), width))},
                {"y", b64url_encode(padded(y.get(), width))}};
    }
    ossl::Bignum n = bn_param(pkey_, OSSL_PKEY_PARAM_RSA_N);
    ossl::Bignum e = bn_param(pkey_, OSSL_PKEY_PARAM_RSA_E);
    return {{"e", b64url_encode(minimal(e.get()))}, {"kty", "RSA"}, {"n", b64url_encode(minimal(n.get()))}};
}

std::string Key::thumbprint() const { return thumbprint_of_jwk(jwk()); }

std::string Key::alg() const {
    if (type_ == KeyType::EcdsaP256) return "ES256";
    if (type_ == KeyType::EcdsaP384) return "ES384";
    return "RS256";
}

std::string Key::sign(std::string_view data) const {
    if (pkey_ == nullptr) throw std::logic_error("sign() on a moved-from Key");
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    // For an RSA key the default padding is PKCS#1 v1.5, which is what RS256 means.
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, digest_for(type_), nullptr, pkey_) != 1)
        fail("EVP_DigestSignInit");
    const auto* in = reinterpret_cast<const unsigned char*>(data.data());
    size_t len = 0;
    if (EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) != 1) fail("EVP_DigestSign");
    std::string der(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len, in, data.size()) != 1)
        fail("EVP_DigestSign");
    der.resize(len);
    if (!is_ec(type_)) return der;

    // OpenSSL returns ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 3279); JWS
    // wants the two integers as fixed-width big-endian strings, back to back (RFC 7518 3.4).
    // DER drops leading zeros, so about one signature in 128 has a 31-byte r or s: the padding
    // is what keeps those from being rejected by the CA.
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ossl::EcdsaSig sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
    if (!sig) fail("d2i_ECDSA_SIG");
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(sig.get(), &r, &s);
    size_t width = field_bytes(type_);
    return padded(r, width) + padded(s, width);
}

std::string thumbprint_of_jwk(const nlohmann::json& jwk) {
    if (!jwk.is_object() || !jwk.contains("kty") || !jwk["kty"].is_string())
        throw std::invalid_argument("JWK has no \"kty\" string");
    const std::string kty = jwk["kty"].get<std::string>();
    std::vector<const char*> members;
    if (kty == "EC")
        members = {"crv", "kty", "x", "y"};
    else if (kty == "RSA")
        members = {"e", "kty", "n"};
    else if (kty == "oct")
        members = {"k", "kty"};
    else if (kty == "OKP")
        members = {"crv", "kty", "x"};
    else
        throw std::invalid_argument("JWK has unknown kty \"" + kty + "\"");

    // nlohmann::json keeps object members in a std::map, so dump() already writes them in
    // byte order (which for these ASCII names is RFC 7638's code-point order) with no
    // whitespace, and leaves UTF-8 unescaped as RFC 7638 3.1 expects.
    nlohmann::json canonical = nlohmann::json::object();
    for (const char* m : members) {
        if (!jwk.contains(m) || !jwk[m].is_string())
            throw std::invalid_argument(std::string("JWK lacks required member \"") + m + "\"");
        canonical[m] = jwk[m];
    }
    std::string text = canonical.dump();
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr) != 1) fail("EVP_Digest");
    return b64url_encode(std::string_view(reinterpret_cast<const char*>(digest), len));
}

}  // namespace sniroute::acme

// JWS request bodies (RFC 8555 6.2) and the External Account Binding (RFC 8555 7.3.4),
// decoded and verified the way an ACME server would.
#include <doctest.h>
#include <openssl/hmac.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "acme/b64.hpp"
#include "acme/jws.hpp"
#include "acme/key.hpp"
#include "acme_test_util.hpp"

using nlohmann::json;
using sniroute::acme::b64url_decode;
using sniroute::acme::eab_jws;
using sniroute::acme::jws;
using sniroute::acme::Key;
using sniroute::acme::KeyType;

namespace {

const char* const kUrl = "https://acme.example/acme/order/1";
const char* const kKid = "https://acme.example/acme/acct/42";

struct Decoded {
    json body, header;
    std::string payload;  // decoded
};

// Parses a flattened JWS and checks its structure on the way.
Decoded decode(const std::string& text) {
    Decoded d;
    d.body = json::parse(text);
    REQUIRE(d.body.is_object());
    REQUIRE(d.body.size() == 3);  // no unprotected "header" member (RFC 8555 6.2)
    for (const char* m : {"protected", "payload", "signature"}) REQUIRE(d.body[m].is_string());
    auto header = b64url_decode(d.body["protected"].get<std::string>());
    auto payload = b64url_decode(d.body["payload"].get<std::string>());
    REQUIRE(header.has_value());
    REQUIRE(payload.has_value());
    d.header = json::parse(*header);
    d.payload = *payload;
    return d;
}

bool signature_ok(const Key& key, const Decoded& d) {
    auto sig = b64url_decode(d.body["signature"].get<std::string>());
    std::string input = d.body["protected"].get<std::string>() + "." + d.body["payload"].get<std::string>();
    return sig && acme_test::verify_jose(key.pkey(), d.header.value("alg", ""), input, *sig);
}

}  // namespace

TEST_CASE("jws: kid request with a JSON payload, for each key type") {
    for (KeyType t : {KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Rsa2048}) {
        Key key = Key::generate(t);
        CAPTURE(key.alg());
        std::string payload = R"({"identifiers":[{"type":"dns","value":"mail.example.com"}]})";
        Decoded d = decode(jws(key, {{"nonce", "n0nce"}, {"url", kUrl}, {"kid", kKid}}, payload));
        CHECK(d.header == json{{"alg", key.alg()}, {"nonce", "n0nce"}, {"url", kUrl}, {"kid", kKid}});
        CHECK(d.payload == payload);
        CHECK(signature_ok(key, d));
    }
}

TEST_CASE("jws: POST-as-GET has an empty payload and \"{}\" encodes to e30") {
    Key key = Key::generate(KeyType::EcdsaP256);
    Decoded get = decode(jws(key, {{"nonce", "a"}, {"url", kUrl}, {"kid", kKid}}, ""));
    CHECK(get.body["payload"] == "");
    CHECK(signature_ok(key, get));
    Decoded empty_object = decode(jws(key, {{"nonce", "b"}, {"url", kUrl}, {"kid", kKid}}, "{}"));
    CHECK(empty_object.body["payload"] == "e30");
    CHECK(signature_ok(key, empty_object));
}

TEST_CASE("jws: newAccount carries the public JWK instead of a kid") {
    Key key = Key::generate(KeyType::EcdsaP256);
    Decoded d =
        decode(jws(key, {{"nonce", "n"}, {"url", kUrl}, {"jwk", key.jwk()}}, R"({"termsOfServiceAgreed":true})"));
    CHECK(d.header["jwk"] == key.jwk());
    CHECK_FALSE(d.header.contains("kid"));
    CHECK(d.header["alg"] == "ES256");
    CHECK(signature_ok(key, d));
}

TEST_CASE("jws: the header's alg always names the key's algorithm") {
    Key key = Key::generate(KeyType::EcdsaP384);
    Decoded d = decode(jws(key, {{"alg", "none"}, {"nonce", "n"}, {"url", kUrl}, {"kid", kKid}}, "{}"));
    CHECK(d.header["alg"] == "ES384");
    CHECK(signature_ok(key, d));
    CHECK(decode(jws(key, nullptr, "")).header == json{{"alg", "ES384"}});
    CHECK_THROWS_AS(jws(key, json::array({1, 2}), ""), std::invalid_argument);
    CHECK_THROWS_AS(jws(key, "url", ""), std::invalid_argument);
}

TEST_CASE("jws: a changed byte breaks the signature") {
    Key key = Key::generate(KeyType::EcdsaP256);
    Decoded d = decode(jws(key, {{"nonce", "n"}, {"url", kUrl}, {"kid", kKid}}, "{}"));
    d.body["payload"] = "e31";
    CHECK_FALSE(signature_ok(key, d));
}

TEST_CASE("eab_jws: fixed vector and an independent HMAC-SHA256") {
    // 32 bytes 00 01 … 1f; the account JWK is RFC 7515 appendix A.3's public key.
    const std::string mac_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    const json account_jwk = {{"kty", "EC"},
                              {"crv", "P-256"},
                              {"x", "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"},
                              {"y", "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}};
    const std::string new_account = "https://acme.example/new-account";
    json eab = eab_jws("kid-1", mac_key, account_jwk, new_account);

    Decoded d = decode(eab.dump());
    CHECK(d.header == json{{"alg", "HS256"}, {"kid", "kid-1"}, {"url", new_account}});
    CHECK_FALSE(d.header.contains("nonce"));  // RFC 8555 7.3.4: MUST NOT
    CHECK(json::parse(d.payload) == account_jwk);

    // Computed separately (Python's hmac module) from the same inputs.
    CHECK(eab["protected"] ==
          "eyJhbGciOiJIUzI1NiIsImtpZCI6ImtpZC0xIiwidXJsIjoiaHR0cHM6Ly9hY21lLmV4YW1wbGUvbmV3LWFjY291bnQifQ");
    CHECK(eab["signature"] == "R3KOTu8qB_7aK0O2JdtbS5RgO9AejrYA3Ci5oZKlJMk");

    // And with OpenSSL's one-shot HMAC over whatever the output carries.
    std::string raw_key;
    for (int i = 0; i < 32; ++i) raw_key += static_cast<char>(i);
    std::string input = eab["protected"].get<std::string>() + "." + eab["payload"].get<std::string>();
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), raw_key.data(), static_cast<int>(raw_key.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len);
    CHECK(eab["signature"] == acme_test::ref_b64url(std::string(reinterpret_cast<char*>(mac), mac_len)));
}

TEST_CASE("eab_jws: binds a real account key's JWK") {
    Key key = Key::generate(KeyType::EcdsaP256);
    json eab = eab_jws("k", "c2VjcmV0", key.jwk(), "https://ca/new-acct");
    CHECK(json::parse(*b64url_decode(eab["payload"].get<std::string>())) == key.jwk());
}

TEST_CASE("eab_jws: refuses a missing kid and keys that are not unpadded base64url") {
    const json jwk = {{"kty", "EC"}, {"crv", "P-256"}, {"x", "AA"}, {"y", "AA"}};
    CHECK_THROWS_AS(eab_jws("", "c2VjcmV0", jwk, "u"), std::invalid_argument);
    for (const char* bad : {"", "c2VjcmV0=", "c2Vj+mV0", "c2Vj cmV0", "c"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(eab_jws("kid", bad, jwk, "u"), std::invalid_argument);
    }
}

// CSRs and certificate facts: the CSR is parsed back and verified with OpenSSL; certificates
// are built in the test with the X509 API, so every expected name, serial and date is known.
#include <doctest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "acme/cert.hpp"
#include "acme/key.hpp"
#include "acme_test_util.hpp"
#include "acme_tls_util.hpp"

using sniroute::acme::ari_cert_id;
using sniroute::acme::cert_info_from_x509;
using sniroute::acme::CertInfo;
using sniroute::acme::Key;
using sniroute::acme::key_matches_cert;
using sniroute::acme::KeyType;
using sniroute::acme::make_csr_der;
using sniroute::acme::parse_cert_pem;
using sniroute::acme::split_pem_chain;

namespace {

constexpr int64_t kNotBefore = 1700000000;  // 2023-11-14T22:13:20Z, an ASN.1 UTCTime
constexpr int64_t kNotAfter = 2524608000;   // 2050-01-01T00:00:00Z, a GeneralizedTime

struct CertSpec {
    std::vector<std::pair<const char*, const char*>> subject;  // in DER order (C, O, CN)
    const char* serial_hex;
    const char* san;  // X509V3 config text, or nullptr for no SAN
};

// Builds a certificate for subject_key, signed by issuer_key as issuer (self-signed when the
// issuer is null). Returns it as a PEM string.
std::string make_cert(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    BIGNUM* bn = nullptr;
    BN_hex2bn(&bn, spec.serial_hex);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    ASN1_TIME_set(X509_getm_notBefore(x), kNotBefore);
    ASN1_TIME_set(X509_getm_notAfter(x), kNotAfter);
    X509_NAME* name = X509_get_subject_name(x);
    for (const auto& [field, value] : spec.subject)
        X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value), -1, -1,
                                   0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_set_pubkey(x, subject_key);
    if (spec.san) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, issuer ? issuer : x, x, nullptr, nullptr, 0);
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, spec.san);
        REQUIRE(ext != nullptr);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    REQUIRE(X509_sign(x, issuer_key ? issuer_key : subject_key, EVP_sha256()) > 0);
    std::string pem = acme_test::x509_pem(x);
    X509_free(x);
    return pem;
}

X509* read_x509(const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    return x;
}

// The request's subject CN (empty if none) and its subjectAltName dNSNames.
std::pair<std::string, std::vector<std::string>> csr_names(X509_REQ* req) {
    std::string cn;
    X509_NAME* subject = X509_REQ_get_subject_name(req);
    int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (i >= 0) {
        const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
        cn.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<size_t>(ASN1_STRING_length(s)));
    }
    std::vector<std::string> dns;
    STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
    auto* names = static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts, NID_subject_alt_name, nullptr, nullptr));
    for (int k = 0; names && k < sk_GENERAL_NAME_num(names); ++k) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, k);
        REQUIRE(g->type == GEN_DNS);
        dns.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                         static_cast<size_t>(ASN1_STRING_length(g->d.dNSName)));
    }
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return {cn, dns};
}

}  // namespace

TEST_CASE("make_csr_der: parses back with every SAN, the CN and a valid SHA-256 signature") {
    const std::vector<std::string> domains = {"mail.example.com", "smtp.example.com", "*.example.org",
                                              "xn--bcher-kva.example"};
    struct Case {
        KeyType type;
        int sig_nid;
    };
    for (Case c : {Case{KeyType::EcdsaP256, NID_ecdsa_with_SHA256}, Case{KeyType::EcdsaP384, NID_ecdsa_with_SHA256},
                   Case{KeyType::Rsa2048, NID_sha256WithRSAEncryption}}) {
        Key key = Key::generate(c.type);
        CAPTURE(key.alg());
        std::string der = make_csr_der(key, domains);
        const auto* p = reinterpret_cast<const unsigned char*>(der.data());
        X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size()));
        REQUIRE(req != nullptr);
        CHECK(p == reinterpret_cast<const unsigned char*>(der.data()) + der.size());  // no trailing bytes
        CHECK(X509_REQ_verify(req, key.pkey()) == 1);
        CHECK(X509_REQ_get_signature_nid(req) == c.sig_nid);
        CHECK(X509_REQ_get_version(req) == 0);
        CHECK(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key.pkey()) == 1);
        auto [cn, dns] = csr_names(req);
        CHECK(cn == "mail.example.com");
        CHECK(dns == domains);
        X509_REQ_free(req);
    }
}

TEST_CASE("make_csr_der: a first name too long for a CN leaves the subject empty") {
    Key key = Key::generate(KeyType::EcdsaP256);
    std::string longname = std::string(60, 'a') + ".example.com";  // 72 characters
    std::string der = make_csr_der(key, {longname, "b.example.com"});
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size()));
    REQUIRE(req != nullptr);
    CHECK(X509_NAME_entry_count(X509_REQ_get_subject_name(req)) == 0);
    CHECK(csr_names(req).second == std::vector<std::string>{longname, "b.example.com"});
    CHECK(X509_REQ_verify(req, key.pkey()) == 1);
    X509_REQ_free(req);
}

TEST_CASE("make_csr_der: refuses names it cannot put in a dNSName") {
    Key key = Key::generate(KeyType::EcdsaP256);
    CHECK_THROWS_AS(make_csr_der(key, {}), std::invalid_argument);
    CHECK_THROWS_AS(make_csr_der(key, {"a.example", ""}), std::invalid_argument);
    CHECK_THROWS_AS(make_csr_der(key, {"bücher.example"}), std::invalid_argument);
    CHECK_THROWS_AS(make_csr_der(key, {"a .example"}), std::invalid_argument);
}

TEST_CASE("parse_cert_pem: names, serial, dates and DER of a self-signed certificate") {
    Key key = Key::generate(KeyType::EcdsaP256);
    std::string pem = make_cert({{{"C", "DE"}, {"O", "Bäckerei Mail"}, {"CN", "mail.example.com"}},
                                 "0123456789ABCDEF01",
                                 "DNS:mail.example.com,IP:192.0.2.1,DNS:imap.example.com,email:pm@example.com"},
                                key.pkey(), nullptr, nullptr);
    std::optional<CertInfo> info = parse_cert_pem(pem);
    REQUIRE(info.has_value());
    CHECK(info->serial_hex == "0123456789abcdef01");
    CHECK(info->subject == "CN=mail.example.com,O=Bäckerei Mail,C=DE");
    CHECK(info->issuer == info->subject);
    CHECK(info->dns_names == std::vector<std::string>{"mail.example.com", "imap.example.com"});
    CHECK(info->not_before == kNotBefore);
    CHECK(info->not_after == kNotAfter);

    X509* x = read_x509(pem);
    unsigned char* der = nullptr;
    int len = i2d_X509(x, &der);
    CHECK(info->der == std::string(reinterpret_cast<char*>(der), static_cast<size_t>(len)));
    OPENSSL_free(der);
    std::optional<CertInfo> same = cert_info_from_x509(x);
    REQUIRE(same.has_value());
    CHECK(same->der == info->der);
    CHECK(same->dns_names == info->dns_names);
    X509_free(x);
}

TEST_CASE("parse_cert_pem: serial with the top bit set, no SAN, and a key block in front") {
    Key key = Key::generate(KeyType::EcdsaP256);
    std::string pem = make_cert({{{"CN", "legacy.example"}}, "80", nullptr}, key.pkey(), nullptr, nullptr);
    auto info = parse_cert_pem(key.private_pem() + pem);
    REQUIRE(info.has_value());
    CHECK(info->serial_hex == "80");  // DER has a 00 in front; the value does not
    CHECK(info->dns_names.empty());   // the CN is not a DNS name
    CHECK(info->subject == "CN=legacy.example");
}

TEST_CASE("chains: leaf first, split into blocks, key matching") {
    Key ca_key = Key::generate(KeyType::EcdsaP384);
    Key leaf_key = Key::generate(KeyType::EcdsaP256);
    std::string ca_pem =
        make_cert({{{"O", "Test CA"}, {"CN", "Test Root"}}, "01", nullptr}, ca_key.pkey(), nullptr, nullptr);
    X509* ca = read_x509(ca_pem);
    std::string leaf_pem =
        make_cert({{{"CN", "mx.example.net"}}, "0A0B", "DNS:mx.example.net"}, leaf_key.pkey(), ca, ca_key.pkey());
    X509_free(ca);

    std::string chain = leaf_pem + "\ncomment between blocks\n" + ca_pem;
    auto info = parse_cert_pem(chain);
    REQUIRE(info.has_value());
    CHECK(info->subject == "CN=mx.example.net");
    CHECK(info->issuer == "CN=Test Root,O=Test CA");
    CHECK(info->serial_hex == "0a0b");

    std::vector<std::string> blocks = split_pem_chain(chain + "-----BEGIN CERTIFICATE-----\nMIIB");
    REQUIRE(blocks.size() == 2);
    CHECK(blocks[0] == leaf_pem);
    CHECK(blocks[1] == ca_pem);
    CHECK(parse_cert_pem(blocks[1])->subject == "CN=Test Root,O=Test CA");

    CHECK(key_matches_cert(leaf_key, chain));
    CHECK_FALSE(key_matches_cert(ca_key, chain));
    CHECK(key_matches_cert(ca_key, blocks[1]));
    CHECK_FALSE(key_matches_cert(leaf_key, "no certificate here"));
}

TEST_CASE("split_pem_chain: CRLF text, a cut-off block before a whole one, nothing at all") {
    std::string a = "-----BEGIN CERTIFICATE-----\r\nQUFB\r\n-----END CERTIFICATE-----";
    std::string b = "-----BEGIN CERTIFICATE-----\nQkJC\n-----END CERTIFICATE-----";
    CHECK(split_pem_chain(a + "\r\n" + b + "\n") == std::vector<std::string>{a + "\n", b + "\n"});
    CHECK(split_pem_chain("-----BEGIN CERTIFICATE-----\nQUF\n" + b) == std::vector<std::string>{b + "\n"});
    CHECK(split_pem_chain("").empty());
    CHECK(split_pem_chain("-----BEGIN PRIVATE KEY-----\nQUFB\n-----END PRIVATE KEY-----\n").empty());
}

TEST_CASE("parse_cert_pem and cert_info_from_x509 reject what is not a certificate") {
    ERR_clear_error();
    CHECK_FALSE(parse_cert_pem("").has_value());
    CHECK_FALSE(parse_cert_pem("-----BEGIN CERTIFICATE-----\nQUFB\n-----END CERTIFICATE-----\n").has_value());
    CHECK_FALSE(cert_info_from_x509(nullptr).has_value());
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("ari_cert_id: the example of RFC 9773 section 4.1") {
    // AKI keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4 and serial
    // 00:87:65:43:21 give "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE": the serial keeps the leading
    // zero octet DER needs for a positive number whose top bit is set.
    Key key = Key::generate(KeyType::EcdsaP256);
    acme_test::CertFields f;
    f.aki_keyid = std::string("\x69\x88\x5B\x6B\x87\x46\x40\x41\xE1\xB3\x7B\x84\x7B\xA0\xAE\x2C\xDE\x01\xC8\xD4", 20);
    f.serial_hex = "87654321";
    CHECK(ari_cert_id(acme_test::make_cert(key, f)) == std::string("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"));
}

TEST_CASE("ari_cert_id: serial lengths, and certificates that have no ID") {
    Key key = Key::generate(KeyType::EcdsaP256);
    acme_test::CertFields f;
    f.aki_keyid = std::string("\x01\x02\x03", 3);
    f.serial_hex = "01";  // one content octet 0x01
    CHECK(ari_cert_id(acme_test::make_cert(key, f)) == std::string("AQID.AQ"));
    // A 20-octet serial without the top bit set: no leading zero; 0x7f then 19 x 0xff.
    f.serial_hex = "7fffffffffffffffffffffffffffffffffffffff";
    CHECK(ari_cert_id(acme_test::make_cert(key, f)) == std::string("AQID.f_________________________8"));
    // A chain: only the first certificate counts.
    std::string first = acme_test::make_cert(key, f);
    f.serial_hex = "02";
    CHECK(ari_cert_id(first + acme_test::make_cert(key, f)) == std::string("AQID.f_________________________8"));

    f.aki_keyid.clear();  // a certificate without an AKI has no ARI identity
    CHECK_FALSE(ari_cert_id(acme_test::make_cert(key, f)).has_value());
    CHECK_FALSE(ari_cert_id("").has_value());
    CHECK_FALSE(ari_cert_id("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").has_value());
}

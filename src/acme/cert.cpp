#include "acme/cert.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <ctime>
#include <stdexcept>

#include "acme/b64.hpp"
#include "acme/ossl.hpp"

namespace sniroute::acme {

using ossl::fail;

namespace {

// X.520 ub-common-name: OpenSSL refuses a longer CN, and a DNS name may be up to 253.
constexpr size_t kMaxCommonName = 64;

constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view kEnd = "-----END CERTIFICATE-----";

void check_domain(const std::string& d) {
    if (d.empty()) throw std::invalid_argument("CSR: empty domain name");
    for (char c : d)
        if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e)
            throw std::invalid_argument("CSR: domain \"" + d + "\" is not printable ASCII");
}

// subjectAltName with one dNSName per domain.
ossl::X509Ext san_extension(const std::vector<std::string>& domains) {
    ossl::GeneralNames names(sk_GENERAL_NAME_new_null());
    if (!names) fail("sk_GENERAL_NAME_new_null");
    for (const auto& d : domains) {
        GENERAL_NAME* gen = GENERAL_NAME_new();
        ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
        if (gen == nullptr || ia5 == nullptr || ASN1_STRING_set(ia5, d.data(), static_cast<int>(d.size())) != 1) {
            GENERAL_NAME_free(gen);
            ASN1_IA5STRING_free(ia5);
            fail("GENERAL_NAME");
        }
        GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);  // gen owns ia5 from here
        if (sk_GENERAL_NAME_push(names.get(), gen) == 0) {
            GENERAL_NAME_free(gen);
            fail("sk_GENERAL_NAME_push");
        }
    }
    ossl::X509Ext ext(X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get()));
    if (!ext) fail("X509V3_EXT_i2d");
    return ext;
}

std::string name_text(const X509_NAME* name) {
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    // RFC 2253 order and escaping, but UTF-8 kept as is instead of "\C3\A9" escapes.
    if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) return {};
    return ossl::mem_contents(bio.get());
}

std::optional<std::string> serial_text(const ASN1_INTEGER* serial) {
    ossl::Bignum bn(serial ? ASN1_INTEGER_to_BN(serial, nullptr) : nullptr);
    if (!bn) return std::nullopt;
    std::string bytes(static_cast<size_t>(BN_num_bytes(bn.get())), '\0');
    BN_bn2bin(bn.get(), reinterpret_cast<unsigned char*>(bytes.data()));
    if (bytes.empty()) bytes.assign(1, '\0');
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = BN_is_negative(bn.get()) ? "-" : "";
    for (char c : bytes) {
        auto b = static_cast<unsigned char>(c);
        out += kHex[b >> 4];
        out += kHex[b & 15];
    }
    return out;
}

std::optional<int64_t> unix_time(const ASN1_TIME* t) {
    std::tm tm{};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
    return static_cast<int64_t>(timegm(&tm));
}

ossl::X509Ptr first_cert(std::string_view pem) {
    ossl::Bio bio = ossl::mem_reader(pem.data(), pem.size());
    // PEM_read_bio_X509 skips blocks of other types (a key in a combined file) on its own.
    ossl::X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!cert) ERR_clear_error();
    return cert;
}

}  // namespace

std::string make_csr_der(const Key& cert_key, const std::vector<std::string>& domains) {
    if (domains.empty()) throw std::invalid_argument("CSR: no domain names");
    for (const auto& d : domains) check_domain(d);
    if (cert_key.pkey() == nullptr) throw std::logic_error("CSR: moved-from Key");

    ossl::X509Req req(X509_REQ_new());
    if (!req || X509_REQ_set_version(req.get(), 0) != 1) fail("X509_REQ_new");  // 0 is v1, the only version
    const std::string& cn = domains.front();
    if (cn.size() <= kMaxCommonName &&
        X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req.get()), NID_commonName, MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(cn.data()), static_cast<int>(cn.size()), -1,
                                   0) != 1)
        fail("X509_NAME_add_entry_by_NID");

    ossl::X509Ext san = san_extension(domains);
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    bool added =
        exts != nullptr && sk_X509_EXTENSION_push(exts, san.get()) > 0 && X509_REQ_add_extensions(req.get(), exts) == 1;
    sk_X509_EXTENSION_free(exts);  // the stack only; san still owns the extension
    if (!added) fail("X509_REQ_add_extensions");

    if (X509_REQ_set_pubkey(req.get(), cert_key.pkey()) != 1) fail("X509_REQ_set_pubkey");
    if (X509_REQ_sign(req.get(), cert_key.pkey(), EVP_sha256()) <= 0) fail("X509_REQ_sign");

    std::string out = ossl::der_of<X509_REQ>(req.get(), i2d_X509_REQ);
    if (out.empty()) fail("i2d_X509_REQ");
    return out;
}

std::optional<CertInfo> cert_info_from_x509(const X509* cert) {
    if (cert == nullptr) return std::nullopt;
    CertInfo info;
    std::optional<std::string> serial = serial_text(X509_get0_serialNumber(cert));
    std::optional<int64_t> nb = unix_time(X509_get0_notBefore(cert));
    std::optional<int64_t> na = unix_time(X509_get0_notAfter(cert));
    if (!serial || !nb || !na) {
        ERR_clear_error();
        return std::nullopt;
    }
    info.serial_hex = std::move(*serial);
    info.not_before = *nb;
    info.not_after = *na;
    info.subject = name_text(X509_get_subject_name(cert));
    info.issuer = name_text(X509_get_issuer_name(cert));

    // X509_get_ext_d2i returns nullptr both for "no SAN" and for a malformed one; either way
    // there are no names we could trust.
    ossl::GeneralNames names(
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
        const GENERAL_NAME* gen = sk_GENERAL_NAME_value(names.get(), i);
        if (gen->type != GEN_DNS) continue;
        const ASN1_IA5STRING* s = gen->d.dNSName;
        info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                    static_cast<size_t>(ASN1_STRING_length(s)));
    }

    info.der = ossl::der_of<X509>(cert, i2d_X509);
    ERR_clear_error();
    return info;
}

std::optional<CertInfo> parse_cert_pem(std::string_view pem) {
    ossl::X509Ptr cert = first_cert(pem);
    return cert ? cert_info_from_x509(cert.get()) : std::nullopt;
}

std::vector<std::string> split_pem_chain(std::string_view pem) {
    std::vector<std::string> out;
    size_t pos = 0;
    while ((pos = pem.find(kBegin, pos)) != std::string_view::npos) {
        size_t end = pem.find(kEnd, pos + kBegin.size());
        if (end == std::string_view::npos) break;
        // A block cut short by another BEGIN: start from the last BEGIN before this END.
        size_t start = pem.rfind(kBegin, end);
        end += kEnd.size();
        out.emplace_back(pem.substr(start, end - start));
        out.back() += '\n';
        pos = end;
    }
    return out;
}

bool key_matches_cert(const Key& key, std::string_view cert_pem) {
    ossl::X509Ptr cert = first_cert(cert_pem);
    if (!cert || key.pkey() == nullptr) return false;
    const EVP_PKEY* pub = X509_get0_pubkey(cert.get());
    bool same = pub != nullptr && EVP_PKEY_eq(pub, key.pkey()) == 1;
    ERR_clear_error();
    return same;
}

std::optional<std::string> ari_cert_id(std::string_view cert_pem) {
    ossl::X509Ptr cert = first_cert(cert_pem);
    if (!cert) return std::nullopt;
    const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(cert.get());
    const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.get());
    std::string der = ossl::der_of<ASN1_INTEGER>(serial, i2d_ASN1_INTEGER);
    if (!aki || der.size() <= 2) return std::nullopt;
    // Strip the DER tag and length: the ID carries the integer's content octets only.
    auto len_octet = static_cast<unsigned char>(der[1]);
    size_t hdr = (len_octet & 0x80) ? 2 + (len_octet & 0x7f) : 2;
    std::string s = der.substr(std::min(hdr, der.size()));
    std::string k(reinterpret_cast<const char*>(ASN1_STRING_get0_data(aki)),
                  static_cast<size_t>(ASN1_STRING_length(aki)));
    return b64url_encode(k) + "." + b64url_encode(s);
}

}  // namespace sniroute::acme

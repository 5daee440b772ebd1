// Certificates for ACME: the CSR we send to finalize an order, and what we need to know about
// a certificate we hold or see served (names, serial, validity) to decide when to renew.
//
// Only the first certificate of a PEM chain is the leaf; the rest are intermediates that we
// pass through to the mail server untouched.
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "acme/key.hpp"

namespace sniroute::acme {

// A PKCS#10 request in DER (RFC 2986), for the "csr" member of a finalize request (RFC 8555
// 7.4, which wants it base64url-encoded by the caller). subjectAltName carries every domain as
// a dNSName, in the given order; the subject is CN=<first domain>, or empty when that name is
// longer than the 64 characters X.520 allows a CN (CAs take the names from the SAN anyway).
// Signed with SHA-256 by cert_key.
// Throws std::invalid_argument for an empty list, an empty name or a name with bytes outside
// 7-bit ASCII (IDNs must already be in their A-label "xn--" form).
std::string make_csr_der(const Key& cert_key, const std::vector<std::string>& domains);

struct CertInfo {
    std::string serial_hex;  // lower-case hex of the serial's magnitude, even length ("-" first if negative)
    std::string subject;     // RFC 2253 text, e.g. "CN=mail.example.com"
    std::string issuer;      // RFC 2253 text, e.g. "CN=R11,O=Let's Encrypt,C=US"
    std::vector<std::string> dns_names;  // subjectAltName dNSNames in certificate order; the CN is not added
    int64_t not_before = 0;              // unix seconds
    int64_t not_after = 0;               // unix seconds
    std::string der;                     // the whole certificate, DER
};

// The first certificate of a PEM text (other PEM blocks before it, such as a private key, are
// skipped). nullopt if there is none or it does not parse.
std::optional<CertInfo> parse_cert_pem(std::string_view pem);

// The same facts from a certificate OpenSSL already parsed, e.g. SSL_get0_peer_certificate().
// The certificate stays owned by the caller. nullopt for a null pointer or unreadable dates.
std::optional<CertInfo> cert_info_from_x509(const X509* cert);

// Every "-----BEGIN CERTIFICATE-----" … "-----END CERTIFICATE-----" block of a PEM text, in
// order, each as its own PEM text ending in "\n". Text between blocks is dropped; a block with
// no END line is not returned. The blocks are found by their markers only, not parsed.
std::vector<std::string> split_pem_chain(std::string_view pem);

// True if the first certificate in cert_pem carries key's public key.
bool key_matches_cert(const Key& key, std::string_view cert_pem);

// The RFC 9773 4.1 certificate ID of the first certificate in cert_pem, which names it to the
// CA's renewalInfo resource and in a new order's "replaces": base64url(AKI keyIdentifier) "."
// base64url(the serial number's DER content octets). nullopt without an AKI keyIdentifier.
std::optional<std::string> ari_cert_id(std::string_view cert_pem);

}  // namespace sniroute::acme

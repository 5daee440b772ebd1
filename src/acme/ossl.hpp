// Owning pointers for the OpenSSL objects the ACME building blocks create.
//
// OpenSSL hands out raw pointers with a matching *_free function; wrapping them in unique_ptr
// keeps every early return (and every exception on the control plane) from leaking one.
// Internal to src/acme: nothing here is part of a public interface.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace sniroute::acme::ossl {

template <typename T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const noexcept { Free(p); }
};

template <typename T, void (*Free)(T*)>
using Ptr = std::unique_ptr<T, Deleter<T, Free>>;

using Bio = Ptr<BIO, BIO_free_all>;
using Bignum = Ptr<BIGNUM, BN_free>;
using EcdsaSig = Ptr<ECDSA_SIG, ECDSA_SIG_free>;
using MdCtx = Ptr<EVP_MD_CTX, EVP_MD_CTX_free>;
using Pkey = Ptr<EVP_PKEY, EVP_PKEY_free>;
using X509Ptr = Ptr<X509, X509_free>;
using X509Req = Ptr<X509_REQ, X509_REQ_free>;
using X509Ext = Ptr<X509_EXTENSION, X509_EXTENSION_free>;
using GeneralNames = Ptr<GENERAL_NAMES, GENERAL_NAMES_free>;

// Throws for an OpenSSL failure that cannot happen short of memory exhaustion. The error queue
// is cleared first: SSL_get_error() on the event loop thread reads the same per-thread queue and
// would misreport a healthy connection because of a stale entry.
[[noreturn]] inline void fail(const char* what) {
    ERR_clear_error();
    throw std::runtime_error(std::string("openssl: ") + what);
}

// A read-only memory BIO over caller-owned bytes (nothing is copied).
inline Bio mem_reader(const void* data, size_t size) {
    // BIO_new_mem_buf takes an int length; anything larger than that is no PEM we want.
    if (size > static_cast<size_t>(INT32_MAX)) return nullptr;
    return Bio(BIO_new_mem_buf(data, static_cast<int>(size)));
}

// Everything written to a memory BIO, as a string.
inline std::string mem_contents(BIO* bio) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || data == nullptr) return {};
    return std::string(data, static_cast<size_t>(len));
}

// The DER encoding of obj through one of OpenSSL's i2d_* functions, which allocate the buffer
// themselves; empty if the encoding failed.
template <typename T>
std::string der_of(const T* obj, int (*i2d)(const T*, unsigned char**)) {
    unsigned char* der = nullptr;
    int len = obj ? i2d(obj, &der) : -1;
    std::string out;
    if (len > 0) out.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
    return out;
}

}  // namespace sniroute::acme::ossl

// Certificates and a TLS server for the ACME tests that need a live peer (probe, Fetch) or a
// certificate with exact fields (ARI certificate IDs, renewal times). Built with the OpenSSL
// API directly, so the expected values come from the test and not from the code under test.
#pragma once

#include <doctest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "acme/key.hpp"
#include "acme_test_util.hpp"

namespace acme_test {

struct CertFields {
    std::string cn = "test.example";
    std::vector<std::string> dns;  // subjectAltName dNSNames; none: no SAN extension
    std::string serial_hex = "01";
    int64_t not_before = 1700000000;  // 2023-11-14T22:13:20Z
    int64_t not_after = 2524608000;   // 2050-01-01T00:00:00Z
    std::string aki_keyid;            // raw bytes of the AKI keyIdentifier; empty: no AKI
};

// A self-signed certificate for key, as PEM.
inline std::string make_cert(const sniroute::acme::Key& key, const CertFields& f) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    BIGNUM* bn = nullptr;
    BN_hex2bn(&bn, f.serial_hex.c_str());
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    ASN1_TIME_set(X509_getm_notBefore(x), static_cast<time_t>(f.not_before));
    ASN1_TIME_set(X509_getm_notAfter(x), static_cast<time_t>(f.not_after));
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(f.cn.c_str()), -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, key.pkey());
    if (!f.dns.empty()) {
        std::string san;
        for (const auto& d : f.dns) san += (san.empty() ? "DNS:" : ",DNS:") + d;
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
        REQUIRE(ext != nullptr);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (!f.aki_keyid.empty()) {
        AUTHORITY_KEYID* akid = AUTHORITY_KEYID_new();
        akid->keyid = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(akid->keyid, reinterpret_cast<const unsigned char*>(f.aki_keyid.data()),
                              static_cast<int>(f.aki_keyid.size()));
        REQUIRE(X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) == 1);
        AUTHORITY_KEYID_free(akid);
    }
    REQUIRE(X509_sign(x, key.pkey(), EVP_sha256()) > 0);
    std::string pem = acme_test::x509_pem(x);
    X509_free(x);
    return pem;
}

// A blocking TLS server on 127.0.0.1 that serves `connections` clients one after another in
// its own thread: reads `proxy_header_bytes` raw bytes first (kept in proxy_header()), does
// the handshake, and, when `respond` is set, reads one HTTP request head (and a body of its
// Content-Length) and writes what respond() returns. Every wait is bounded.
class TlsTestServer {
public:
    struct Options {
        std::string cert_pem;
        const sniroute::acme::Key* key = nullptr;
        size_t proxy_header_bytes = 0;
        int connections = 1;
        std::function<std::string(const std::string& request)> respond;
    };

    explicit TlsTestServer(Options o) : o_(std::move(o)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
        REQUIRE(::listen(fd_, 8) == 0);
        socklen_t len = sizeof sa;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
        port_ = ntohs(sa.sin_port);
        ctx_ = SSL_CTX_new(TLS_server_method());
        BIO* bio = BIO_new_mem_buf(o_.cert_pem.data(), static_cast<int>(o_.cert_pem.size()));
        X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
        BIO_free(bio);
        REQUIRE(SSL_CTX_use_certificate(ctx_, x) == 1);
        X509_free(x);
        REQUIRE(SSL_CTX_use_PrivateKey(ctx_, o_.key->pkey()) == 1);
        thread_ = std::thread([this] { serve(); });
    }
    ~TlsTestServer() {
        thread_.join();
        ::close(fd_);
        SSL_CTX_free(ctx_);
    }
    TlsTestServer(const TlsTestServer&) = delete;
    TlsTestServer& operator=(const TlsTestServer&) = delete;

    uint16_t port() const { return port_; }
    // Valid once the server is destroyed or has served everyone; read after the client ends.
    const std::string& proxy_header() const { return proxy_header_; }
    const std::string& last_request() const { return request_; }

private:
    static bool wait_in(int fd) {
        pollfd p{fd, POLLIN, 0};
        return ::poll(&p, 1, 5000) == 1;
    }

    void serve() {
        // A client that gives up mid-handshake must not kill the test run with SIGPIPE; this
        // thread's pending SIGPIPE, if any, dies with it.
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
        for (int i = 0; i < o_.connections; ++i) {
            if (!wait_in(fd_)) return;
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) return;
            timeval tv{5, 0};
            ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            proxy_header_.clear();
            while (proxy_header_.size() < o_.proxy_header_bytes) {
                char b[256];
                ssize_t n = ::recv(c, b, std::min(sizeof b, o_.proxy_header_bytes - proxy_header_.size()), 0);
                if (n <= 0) break;
                proxy_header_.append(b, static_cast<size_t>(n));
            }
            SSL* ssl = SSL_new(ctx_);
            SSL_set_fd(ssl, c);
            if (SSL_accept(ssl) == 1 && o_.respond) {
                request_ = read_request(ssl);
                std::string out = o_.respond(request_);
                if (!out.empty()) SSL_write(ssl, out.data(), static_cast<int>(out.size()));
                SSL_shutdown(ssl);
            }
            SSL_free(ssl);
            ERR_clear_error();
            ::close(c);
        }
    }

    static std::string read_request(SSL* ssl) {
        std::string req;
        char b[4096];
        size_t want = std::string::npos;
        while (want == std::string::npos || req.size() < want) {
            int n = SSL_read(ssl, b, sizeof b);
            if (n <= 0) break;
            req.append(b, static_cast<size_t>(n));
            size_t end = req.find("\r\n\r\n");
            if (want == std::string::npos && end != std::string::npos) {
                size_t body = 0, cl = req.find("Content-Length: ");
                if (cl != std::string::npos && cl < end) body = std::stoul(req.substr(cl + 16));
                want = end + 4 + body;
            }
        }
        return req;
    }

    Options o_;
    int fd_ = -1;
    uint16_t port_ = 0;
    SSL_CTX* ctx_ = nullptr;
    std::thread thread_;
    std::string proxy_header_;
    std::string request_;
};

}  // namespace acme_test

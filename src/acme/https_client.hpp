// An HTTPS/1.1 client for the ACME client, on the event loop: libuv for DNS and TCP, OpenSSL
// through memory BIOs for TLS, acme/response_reader.hpp (llhttp) for the response. One request per connection: ACME
// traffic is a handful of requests per day, and a fresh connection cannot be half-broken.
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <coroutine>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "acme/response_reader.hpp"
#include "acme/task.hpp"

namespace sniroute::acme {

struct HttpRequest {
    std::string method = "GET";
    std::string url;  // https://host[:port]/path
    std::string body;
    std::string content_type;
    std::string accept;
};

// A transport failure: DNS, connect, TLS, timeout, or an unparsable response.
struct FetchError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Verifying TLS client context: the system roots plus an optional extra bundle (private CA,
// tests), TLS 1.2 at least.
class TlsClientContext {
public:
    explicit TlsClientContext(const std::string& ca_bundle);  // throws std::runtime_error
    ~TlsClientContext();
    TlsClientContext(const TlsClientContext&) = delete;
    TlsClientContext& operator=(const TlsClientContext&) = delete;
    SSL_CTX* get() const { return ctx_; }

private:
    SSL_CTX* ctx_ = nullptr;
};

struct Url {
    std::string host;  // without brackets
    std::string port;
    std::string path;  // with query; "/" at least
};
// Parses https:// URLs only: ACME requires TLS (RFC 8555 6.1).
bool parse_https_url(std::string_view url, Url& out);

// `co_await Fetch(...)` performs the request and returns the response or throws FetchError.
class Fetch {
public:
    static constexpr size_t kMaxBody = kMaxResponseBody;
    Fetch(uv_loop_t* loop, SSL_CTX* ctx, HttpRequest req, uint64_t timeout_ms, Canceller* cancel = nullptr)
        : loop_(loop), ctx_(ctx), req_(std::move(req)), timeout_ms_(timeout_ms), cancel_(cancel) {}

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h);
    HttpResponse await_resume();

    struct Result {
        HttpResponse response;
        std::string error;  // empty on success
    };

private:
    uv_loop_t* loop_;
    SSL_CTX* ctx_;
    HttpRequest req_;
    uint64_t timeout_ms_;
    Canceller* cancel_;
    std::shared_ptr<Result> result_;
};

}  // namespace sniroute::acme

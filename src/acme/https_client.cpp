#include "acme/https_client.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cstring>

namespace sniroute::acme {

namespace {

std::string ssl_error_string() {
    unsigned long e = ERR_get_error();
    if (!e) return "TLS error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

// One request in flight. Owns its handles; deletes itself after the last close callback and
// only then resumes the awaiting coroutine, so the coroutine never outlives-or-races a handle.
class Conn {
public:
    Conn(uv_loop_t* loop, SSL_CTX* ctx, HttpRequest req, Url url, std::shared_ptr<Fetch::Result> out,
         std::coroutine_handle<> h, Canceller* cancel)
        : loop_(loop),
          req_(std::move(req)),
          url_(std::move(url)),
          out_(std::move(out)),
          co_(h),
          cancel_(cancel),
          reader_(req_.method == "HEAD") {
        ssl_ = SSL_new(ctx);
        rbio_ = BIO_new(BIO_s_mem());
        wbio_ = BIO_new(BIO_s_mem());
        SSL_set_bio(ssl_, rbio_, wbio_);
        SSL_set_connect_state(ssl_);
    }

    // `early_error` fails the request at once; it still goes through end(), so the coroutine is
    // always resumed from a close callback and never from inside await_suspend.
    void start(uint64_t timeout_ms, std::string early_error) {
        uv_timer_init(loop_, &timer_);
        timer_.data = this;
        ++open_;
        uv_timer_start(
            &timer_, [](uv_timer_t* t) noexcept { static_cast<Conn*>(t->data)->fail("timed out"); }, timeout_ms, 0);
        if (cancel_ && cancel_->cancelled()) early_error = "cancelled";
        if (!early_error.empty()) return fail(std::move(early_error), false);
        if (cancel_) cancel_->set_hook([this] { fail("cancelled", false); });
        // SNI only for names; certificate checks against the name or the IP literal.
        bool is_ip =
            url_.host.find(':') != std::string::npos || url_.host.find_first_not_of("0123456789.") == std::string::npos;
        if (!is_ip) SSL_set_tlsext_host_name(ssl_, url_.host.c_str());
        X509_VERIFY_PARAM* vp = SSL_get0_param(ssl_);
        if (is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(vp, url_.host.c_str());
        else
            X509_VERIFY_PARAM_set1_host(vp, url_.host.c_str(), 0);
        SSL_set_verify(ssl_, SSL_VERIFY_PEER, nullptr);

        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        dns_.data = this;
        dns_pending_ = true;
        int r = uv_getaddrinfo(loop_, &dns_, on_resolved, url_.host.c_str(), url_.port.c_str(), &hints);
        if (r != 0) {
            dns_pending_ = false;
            fail(std::string("cannot resolve ") + url_.host + ": " + uv_strerror(r));
        }
    }

private:
    static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
        auto* c = static_cast<Conn*>(req->data);
        c->dns_pending_ = false;
        if (c->done_) {
            if (res) uv_freeaddrinfo(res);
            return c->maybe_finish();
        }
        if (status != 0 || !res) {
            if (res) uv_freeaddrinfo(res);
            return c->fail("cannot resolve " + c->url_.host + ": " + uv_strerror(status));
        }
        c->addrs_ = res;
        c->next_addr_ = res;
        c->connect_next();
    }

    // Tries the resolved addresses in order, as a browser without Happy Eyeballs would: a name
    // with an AAAA record must still work on a host whose IPv6 has no route.
    void connect_next() {
        if (!next_addr_) return fail(last_connect_error_);
        const addrinfo* a = next_addr_;
        next_addr_ = next_addr_->ai_next;
        uv_tcp_init(loop_, &tcp_);
        tcp_.data = this;
        tcp_open_ = true;
        ++open_;
        connect_.data = this;
        int r = uv_tcp_connect(&connect_, &tcp_, a->ai_addr, on_connect);
        if (r != 0) connect_failed(r);
    }

    // The handle of a failed attempt is closed before the next uses the same memory.
    void connect_failed(int status) {
        bool v6 = url_.host.find(':') != std::string::npos;
        last_connect_error_ =
            "connect to " + (v6 ? "[" + url_.host + "]" : url_.host) + ":" + url_.port + ": " + uv_strerror(status);
        if (!next_addr_) return fail(last_connect_error_);
        uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) noexcept {
            auto* c = static_cast<Conn*>(h->data);
            --c->open_;
            c->tcp_open_ = false;
            if (c->done_) return c->maybe_finish();
            c->connect_next();
        });
    }

    static void on_connect(uv_connect_t* req, int status) noexcept {
        auto* c = static_cast<Conn*>(req->data);
        if (c->done_) return;
        if (status != 0) return c->connect_failed(status);
        uv_tcp_nodelay(&c->tcp_, 1);
        uv_read_start(
            reinterpret_cast<uv_stream_t*>(&c->tcp_),
            [](uv_handle_t* h, size_t, uv_buf_t* b) noexcept {
                auto* c = static_cast<Conn*>(h->data);
                *b = uv_buf_init(c->rbuf_, sizeof c->rbuf_);
            },
            on_read);
        c->drive();
    }

    static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
        auto* c = static_cast<Conn*>(s->data);
        if (c->done_ || n == 0) return;
        if (n < 0) {
            // A body without a length ends at EOF.
            if (n == UV_EOF && c->sent_ && c->reader_.finish() == ResponseReader::Status::Done) return c->succeed();
            return c->fail(n == UV_EOF ? "connection closed before a complete response"
                                       : uv_strerror(static_cast<int>(n)));
        }
        BIO_write(c->rbio_, buf->base, static_cast<int>(n));
        c->drive();
    }

    // Advances TLS as far as the bytes allow: handshake, then send the request, then read.
    void drive() {
        if (!handshaken_) {
            int r = SSL_do_handshake(ssl_);
            if (r != 1) {
                int e = SSL_get_error(ssl_, r);
                flush();
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
                long v = SSL_get_verify_result(ssl_);
                std::string why = v != X509_V_OK
                                      ? std::string("certificate verify failed: ") + X509_verify_cert_error_string(v)
                                      : ssl_error_string();
                return fail("TLS handshake with " + url_.host + ": " + why);
            }
            handshaken_ = true;
        }
        if (!sent_) {
            // RFC 9110 7.2: Host is uri-host [":" port]; an IPv6 literal keeps its brackets.
            std::string host = url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host;
            if (url_.port != "443") host += ":" + url_.port;
            std::string head = req_.method + " " + url_.path + " HTTP/1.1\r\nHost: " + host + "\r\n" +
                               "User-Agent: sniroute-acme/0.1\r\nConnection: close\r\n";
            if (!req_.accept.empty()) head += "Accept: " + req_.accept + "\r\n";
            if (!req_.content_type.empty()) head += "Content-Type: " + req_.content_type + "\r\n";
            if (req_.method != "GET" && req_.method != "HEAD")
                head += "Content-Length: " + std::to_string(req_.body.size()) + "\r\n";
            head += "\r\n";
            head += req_.body;
            if (SSL_write(ssl_, head.data(), static_cast<int>(head.size())) <= 0)
                return fail("TLS write: " + ssl_error_string());
            sent_ = true;
        }
        char buf[16 * 1024];
        for (;;) {
            int r = SSL_read(ssl_, buf, sizeof buf);
            if (r <= 0) {
                int e = SSL_get_error(ssl_, r);
                if (e == SSL_ERROR_ZERO_RETURN) break;
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    return fail("TLS read: " + ssl_error_string());
                break;
            }
            ResponseReader::Status s = reader_.feed(buf, static_cast<size_t>(r));
            if (s == ResponseReader::Status::Done) return succeed();
            if (s == ResponseReader::Status::Error) return fail(reader_.error());
        }
        flush();
    }

    // Moves whatever TLS produced into the socket; each write owns its bytes.
    void flush() {
        while (BIO_ctrl_pending(wbio_) > 0) {
            struct W {
                uv_write_t req;
                std::string data;
            };
            auto* w = new W;
            w->data.resize(BIO_ctrl_pending(wbio_));
            int n = BIO_read(wbio_, w->data.data(), static_cast<int>(w->data.size()));
            if (n <= 0) {
                delete w;
                return;
            }
            w->data.resize(static_cast<size_t>(n));
            uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
            w->req.data = w;
            if (!tcp_open_ || uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1,
                                       [](uv_write_t* r, int) noexcept { delete static_cast<W*>(r->data); }) != 0) {
                delete w;
                return;
            }
        }
    }

    void succeed() {
        if (done_) return;
        out_->error.clear();
        out_->response = reader_.take();
        end();
    }
    void fail(std::string why, bool name_request = true) {
        if (done_) return;
        // Name the request: "connection refused" alone does not say which CA or endpoint.
        out_->error = name_request ? req_.method + " " + req_.url + ": " + why : std::move(why);
        end();
    }
    void end() {
        done_ = true;
        if (cancel_) cancel_->clear_hook();
        if (dns_pending_) uv_cancel(reinterpret_cast<uv_req_t*>(&dns_));
        auto on_closed = [](uv_handle_t* h) noexcept {
            auto* c = static_cast<Conn*>(h->data);
            --c->open_;
            c->maybe_finish();
        };
        uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
        // A handle already closing between two connect attempts is counted by that close.
        if (tcp_open_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_)))
            uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_closed);
    }
    void maybe_finish() {
        if (!done_ || open_ > 0 || dns_pending_) return;
        auto co = co_;
        delete this;
        co.resume();
    }

public:
    ~Conn() {
        SSL_free(ssl_);
        if (addrs_) uv_freeaddrinfo(addrs_);
    }

private:
    uv_loop_t* loop_;
    HttpRequest req_;
    Url url_;
    std::shared_ptr<Fetch::Result> out_;
    std::coroutine_handle<> co_;
    Canceller* cancel_;
    uv_getaddrinfo_t dns_{};
    addrinfo* addrs_ = nullptr;      // owned; freed with the connection
    addrinfo* next_addr_ = nullptr;  // the next address to try
    std::string last_connect_error_ = "no address to connect to";
    uv_tcp_t tcp_{};
    uv_connect_t connect_{};
    uv_timer_t timer_{};
    SSL* ssl_ = nullptr;
    BIO* rbio_ = nullptr;
    BIO* wbio_ = nullptr;
    ResponseReader reader_;
    char rbuf_[16 * 1024];
    int open_ = 0;
    bool dns_pending_ = false;
    bool tcp_open_ = false;
    bool handshaken_ = false;
    bool sent_ = false;
    bool done_ = false;
};

}  // namespace

TlsClientContext::TlsClientContext(const std::string& ca_bundle) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ctx_) throw std::runtime_error("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    SSL_CTX_set_default_verify_paths(ctx_);
    if (!ca_bundle.empty() && SSL_CTX_load_verify_locations(ctx_, ca_bundle.c_str(), nullptr) != 1) {
        SSL_CTX_free(ctx_);
        throw std::runtime_error("cannot load ca_bundle " + ca_bundle + ": " + ssl_error_string());
    }
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

bool parse_https_url(std::string_view url, Url& out) {
    constexpr std::string_view scheme = "https://";
    if (!url.starts_with(scheme)) return false;
    url.remove_prefix(scheme.size());
    size_t slash = url.find('/');
    std::string_view authority = url.substr(0, slash);
    out.path = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
    if (authority.empty()) return false;
    if (authority.front() == '[') {
        size_t close = authority.find(']');
        if (close == std::string_view::npos) return false;
        out.host = std::string(authority.substr(1, close - 1));
        std::string_view rest = authority.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') return false;
        out.port = rest.empty() ? "443" : std::string(rest.substr(1));
    } else {
        size_t colon = authority.find(':');
        out.host = std::string(authority.substr(0, colon));
        out.port = colon == std::string_view::npos ? "443" : std::string(authority.substr(colon + 1));
    }
    if (out.host.empty() || out.port.empty() || out.port.find_first_not_of("0123456789") != std::string::npos)
        return false;
    return true;
}

void Fetch::await_suspend(std::coroutine_handle<> h) {
    result_ = std::make_shared<Result>();
    Url url;
    std::string early;
    if (!parse_https_url(req_.url, url)) early = "not an https URL: " + req_.url;
    auto* c = new Conn(loop_, ctx_, std::move(req_), std::move(url), result_, h, cancel_);
    c->start(timeout_ms_, std::move(early));
}

HttpResponse Fetch::await_resume() {
    if (!result_->error.empty()) throw FetchError(result_->error);
    return std::move(result_->response);
}

}  // namespace sniroute::acme

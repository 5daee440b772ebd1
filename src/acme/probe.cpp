#include "acme/probe.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/fd.hpp"
#include "proxy/proxy_protocol.hpp"

namespace sniroute::acme {

namespace {

using Clock = std::chrono::steady_clock;

// OpenSSL writes to the socket with write(2), which raises SIGPIPE when the peer has gone; the
// CLI (`certs check`) does not ignore SIGPIPE as the server does. Block it in this thread for
// the probe and discard one raised meanwhile (a socket's SIGPIPE goes to the writing thread).
class SigpipeBlock {
public:
    SigpipeBlock() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
        pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    }
    ~SigpipeBlock() {
        sigset_t pending;
        sigpending(&pending);
        if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
            timespec zero{};
            sigtimedwait(&pipe_, nullptr, &zero);
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SigpipeBlock(const SigpipeBlock&) = delete;
    SigpipeBlock& operator=(const SigpipeBlock&) = delete;

private:
    sigset_t pipe_{};
    sigset_t old_{};
    bool was_pending_ = false;
};

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

bool wait_fd(int fd, short events, Clock::time_point deadline) {
    pollfd p{fd, events, 0};
    int ms = remaining_ms(deadline);
    return ms > 0 && ::poll(&p, 1, ms) == 1;
}

// Non-blocking connect bounded by the deadline; an invalid Fd on failure, with err set.
core::Fd connect_to(const core::SocketAddress& a, Clock::time_point deadline, std::string& err) {
    core::Fd fd(::socket(a.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid() || (::connect(fd.get(), a.sa(), a.len()) != 0 && errno != EINPROGRESS)) {
        err = std::strerror(errno);
        return core::Fd();
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (!wait_fd(fd.get(), POLLOUT, deadline) || ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 ||
        soerr != 0) {
        err = soerr ? std::strerror(soerr) : "connect timeout";
        return core::Fd();
    }
    return fd;
}

bool send_all(int fd, const std::string& data, Clock::time_point deadline) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n > 0)
            off += static_cast<size_t>(n);
        else if (n < 0 && errno == EAGAIN) {
            if (!wait_fd(fd, POLLOUT, deadline)) return false;
        } else
            return false;
    }
    return true;
}

// One handshake over a connected non-blocking socket; the leaf is read without verification
// because the point is to see what is served, trusted or not.
std::optional<CertInfo> handshake(int fd, const std::string& sni, Clock::time_point deadline, std::string& err) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, sni.c_str());
    std::optional<CertInfo> out;
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1) break;
        int e = SSL_get_error(ssl, r);
        if ((e == SSL_ERROR_WANT_READ && wait_fd(fd, POLLIN, deadline)) ||
            (e == SSL_ERROR_WANT_WRITE && wait_fd(fd, POLLOUT, deadline)))
            continue;
        unsigned long code = ERR_get_error();
        char buf[256] = "handshake timeout";
        if (code)
            ERR_error_string_n(code, buf, sizeof buf);
        else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            std::snprintf(buf, sizeof buf, "handshake failed");
        err = buf;
        break;
    }
    if (err.empty()) {
        if (X509* leaf = SSL_get1_peer_certificate(ssl)) {
            out = cert_info_from_x509(leaf);
            X509_free(leaf);
        }
        if (!out) err = "no certificate";
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return out;
}

}  // namespace

std::vector<ProbeTarget> targets_for(const route::Snapshot& snap, const std::string& name) {
    std::vector<ProbeTarget> out;
    const auto& cfg = snap.config();
    for (size_t li = 0; li < cfg.listeners.size(); ++li) {
        const auto& l = cfg.listeners[li];
        if (l.protocol != config::Protocol::Tls || l.bind.empty()) continue;
        route::Decision d = snap.route(li, name);
        if (!d.backend) continue;
        out.push_back(
            {l.name, l.bind.front().port(), d.backend->name, d.backend->servers, d.backend->proxy_protocol, name});
    }
    return out;
}

ProbeResult probe(const ProbeTarget& t, int timeout_ms) {
    SigpipeBlock no_sigpipe;
    ProbeResult r{t, "", std::nullopt, ""};
    for (const auto& server : t.servers) {
        auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
        std::string err;
        core::Fd fd = connect_to(server, deadline, err);
        r.server = server.to_string();
        if (!fd.valid()) {
            r.error = "connect to " + r.server + ": " + err;
            continue;  // fail over as the proxy would
        }
        std::string hdr;
        core::SocketAddress none;
        if (t.proxy_protocol == config::ProxyProtocol::V1)
            proxy::append_v1(hdr, none, none);
        else if (t.proxy_protocol == config::ProxyProtocol::V2)
            proxy::append_v2(hdr, none, none);
        if (!hdr.empty() && !send_all(fd.get(), hdr, deadline)) err = "cannot send PROXY header";
        if (err.empty()) r.leaf = handshake(fd.get(), t.sni, deadline, err);
        fd.close();
        r.error = err.empty() ? "" : r.server + ": " + err;
        return r;
    }
    return r;
}

std::string format_date(int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

std::string describe_stale(const ProbeResult& r) {
    std::string s =
        r.target.backend + " on :" + std::to_string(r.target.port) + " (listener " + r.target.listener + ")";
    if (!r.leaf) return s + " could not be checked: " + r.error;
    return s + " still serves the certificate expiring " + format_date(r.leaf->not_after) + " (serial " +
           r.leaf->serial_hex + ")";
}

}  // namespace sniroute::acme

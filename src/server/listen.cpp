#include "server/listen.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.hpp"
#include "proxy/deferred_accept.hpp"

namespace sniroute::server {

using core::SocketAddress;

int defer_accept_secs(const config::Listener& l, const config::Global& g) {
    return static_cast<int>(proxy::deferred_accept_ms(l, g) / 1000);
}

int make_listen_socket(const SocketAddress& addr, int defer_accept_secs, std::string& err) {
    int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = std::strerror(errno);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    // "[::]:443" should mean IPv6 only; IPv4 gets its own bind line, as with nginx's ipv6only.
    if (addr.family() == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (defer_accept_secs > 0) {
        // No wake-up until the client has sent something: for TLS, the ClientHello. A client
        // that sends nothing is handed over after this long, which the session counts against
        // its deadline (proxy/deferred_accept.hpp).
        ::setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_accept_secs, sizeof defer_accept_secs);
    }
    if (::bind(fd, addr.sa(), addr.len()) != 0 || ::listen(fd, 4096) != 0) {
        err = std::strerror(errno);
        ::close(fd);
        return -1;
    }
    return fd;
}

bool address_free(const SocketAddress& addr, std::string& err) {
    int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = std::strerror(errno);
        return false;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (addr.family() == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    bool ok = ::bind(fd, addr.sa(), addr.len()) == 0;
    if (!ok) err = std::strerror(errno);
    ::close(fd);
    return ok;
}

namespace {

// Binds one pair for every worker; on failure returns the error and leaves `out` as it was.
bool bind_pair(const config::Config& cfg, const config::Listener& l, const SocketAddress& a, bool probe,
               unsigned workers, std::vector<std::vector<ListenSocket>>& out, std::string& err) {
    // SO_REUSEPORT would let us share a port with another process of the same user (a second
    // sniroute started by mistake) and silently split its traffic. A probe bind without it
    // fails on any listening socket there, ours included; so only new addresses are probed.
    if (probe && !address_free(a, err)) return false;
    std::vector<int> fds;
    for (unsigned w = 0; w < workers; ++w) {
        int fd = make_listen_socket(a, defer_accept_secs(l, cfg.global), err);
        if (fd < 0) {
            for (int f : fds) ::close(f);
            return false;
        }
        fds.push_back(fd);
    }
    for (unsigned w = 0; w < workers; ++w) out[w].push_back({l.name, a, fds[w]});
    return true;
}

}  // namespace

bool bind_new(const config::Config& cfg, const std::vector<BindKey>& have, unsigned workers,
              std::vector<std::vector<ListenSocket>>& out, std::vector<BindKey>& made) {
    out.assign(workers, {});
    for (const auto& l : cfg.listeners) {
        for (const auto& a : l.bind) {
            bool exists = false, ours = false;
            for (const auto& k : have) {
                exists = exists || (k.listener == l.name && k.addr == a);
                ours = ours || k.addr == a;
            }
            if (exists) continue;
            std::string err;
            if (!bind_pair(cfg, l, a, !ours, workers, out, err)) {
                core::log_error("bind_failed").kv("listener", l.name).kv("bind", a.to_string()).kv("error", err);
                for (auto& v : out)
                    for (auto& s : v) ::close(s.fd);
                out.clear();
                return false;
            }
            made.push_back({l.name, a});
        }
    }
    return true;
}

}  // namespace sniroute::server

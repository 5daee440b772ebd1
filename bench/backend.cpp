// Benchmark backend: a plain-TCP stand-in for a TLS server, with no TLS anywhere.
//
// It listens on one loopback port per workload (the port says the mode, so a proxy routes each
// workload's SNI listener to its own backend port) and expects every connection to start with
// exactly the captured ClientHello given by --hello, byte for byte: a proxy that changed or
// lost a byte shows up as a failed connection in the load generator. After the hello:
//
//   rate      writes --reply-bytes bytes, then waits for the client's FIN and closes
//   stream    writes --stream-bytes bytes as fast as the socket takes them, then closes
//   pingpong  echoes every byte back
//   idle      writes one byte (so the client knows the whole path is up), then waits for FIN
//
// On start it prints one JSON line on stdout with the ports it bound (port 0 = any free port):
//   {"pid":123,"rate":40001,"stream":40002,"pingpong":40003,"idle":40004}
// SIGTERM/SIGINT stop it; per-mode counters go to stderr.
#include <signal.h>
#include <sys/epoll.h>

#include <array>
#include <memory>

#include "bench_util.hpp"

namespace {

enum class Mode { Rate, Stream, PingPong, Idle };
constexpr std::array<const char*, 4> kModeNames = {"rate", "stream", "pingpong", "idle"};

struct Options {
    std::string hello_path = "../shared/fixtures/clienthellos/curl-www.bin";
    std::array<int, 4> ports = {0, 0, 0, 0};
    uint64_t reply_bytes = 1024;
    uint64_t stream_bytes = 2ull << 30;
};

struct Counters {
    uint64_t accepted = 0;
    uint64_t hello_ok = 0;
    uint64_t hello_bad = 0;
    uint64_t completed = 0;
};

// Epoll data points at one of these; `listener` tells the two kinds apart.
struct Entry {
    bool listener;
    int fd;
    Mode mode;
};

struct Conn : Entry {
    size_t hello_pos = 0;
    uint64_t to_send = 0;  // pattern bytes still owed (rate, stream, idle)
    std::string echo;      // bytes still owed (pingpong)
    bool want_out = false;
    bool sent_all = false;
};

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

class Backend {
public:
    explicit Backend(Options o) : opt_(std::move(o)), pattern_(1 << 20, 'x') {}

    bool start() {
        if (!bench::read_file(opt_.hello_path, hello_) || hello_.empty()) {
            std::fprintf(stderr, "backend: cannot read hello file %s\n", opt_.hello_path.c_str());
            return false;
        }
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        for (int m = 0; m < 4; ++m) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            int one = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            sockaddr_in a = bench::loopback(static_cast<uint16_t>(opt_.ports[m]));
            if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 4096) != 0) {
                std::fprintf(stderr, "backend: bind/listen %s port %d: %s\n", kModeNames[m], opt_.ports[m],
                             std::strerror(errno));
                return false;
            }
            socklen_t len = sizeof a;
            getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
            bound_[m] = ntohs(a.sin_port);
            auto* e = new Entry{true, fd, static_cast<Mode>(m)};
            add(e, EPOLLIN);
        }
        std::printf("{\"pid\":%d,\"rate\":%d,\"stream\":%d,\"pingpong\":%d,\"idle\":%d}\n", getpid(), bound_[0],
                    bound_[1], bound_[2], bound_[3]);
        std::fflush(stdout);
        return true;
    }

    void run() {
        std::vector<epoll_event> evs(1024);
        while (!g_stop) {
            int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 500);
            for (int i = 0; i < n; ++i) {
                auto* e = static_cast<Entry*>(evs[i].data.ptr);
                if (e->listener)
                    on_accept(e);
                else
                    on_conn(static_cast<Conn*>(e), evs[i].events);
            }
        }
        for (int m = 0; m < 4; ++m)
            std::fprintf(stderr, "backend: %s accepted=%llu hello_ok=%llu hello_bad=%llu completed=%llu\n",
                         kModeNames[m], static_cast<unsigned long long>(counters_[m].accepted),
                         static_cast<unsigned long long>(counters_[m].hello_ok),
                         static_cast<unsigned long long>(counters_[m].hello_bad),
                         static_cast<unsigned long long>(counters_[m].completed));
    }

private:
    void add(Entry* e, uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.ptr = e;
        epoll_ctl(ep_, EPOLL_CTL_ADD, e->fd, &ev);
    }

    void set_out(Conn* c, bool on) {
        if (c->want_out == on) return;
        c->want_out = on;
        epoll_event ev{};
        ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
        ev.data.ptr = c;
        epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &ev);
    }

    void on_accept(Entry* l) {
        for (;;) {
            int fd = accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE) {
                    if (!warned_emfile_) std::fprintf(stderr, "backend: accept: %s\n", std::strerror(errno));
                    warned_emfile_ = true;
                }
                return;
            }
            bench::set_nodelay(fd);
            auto* c = new Conn;
            c->listener = false;
            c->fd = fd;
            c->mode = l->mode;
            ++counters_[static_cast<int>(l->mode)].accepted;
            add(c, EPOLLIN);
        }
    }

    void finish(Conn* c, bool completed) {
        if (completed) ++counters_[static_cast<int>(c->mode)].completed;
        close(c->fd);  // also removes it from the epoll set
        delete c;
    }

    void on_conn(Conn* c, uint32_t events) {
        if (events & EPOLLOUT) {
            if (!flush(c)) return;
        }
        if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
        char buf[16384];
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            return finish(c, false);
        }
        if (n == 0) return finish(c, c->hello_pos == hello_.size() && c->sent_all);
        size_t off = 0;
        if (c->hello_pos < hello_.size()) {
            size_t take = std::min(static_cast<size_t>(n), hello_.size() - c->hello_pos);
            if (std::memcmp(buf, hello_.data() + c->hello_pos, take) != 0) {
                ++counters_[static_cast<int>(c->mode)].hello_bad;
                return finish(c, false);
            }
            c->hello_pos += take;
            off = take;
            if (c->hello_pos < hello_.size()) return;
            ++counters_[static_cast<int>(c->mode)].hello_ok;
            switch (c->mode) {
                case Mode::Rate: c->to_send = opt_.reply_bytes; break;
                case Mode::Stream: c->to_send = opt_.stream_bytes; break;
                case Mode::Idle: c->to_send = 1; break;
                case Mode::PingPong: break;
            }
        }
        if (c->mode == Mode::PingPong && static_cast<size_t>(n) > off)
            c->echo.append(buf + off, static_cast<size_t>(n) - off);
        flush(c);
    }

    // Writes what is owed; returns false if the connection was closed.
    bool flush(Conn* c) {
        while (c->to_send > 0 || !c->echo.empty()) {
            const char* p;
            size_t len;
            if (!c->echo.empty()) {
                p = c->echo.data();
                len = c->echo.size();
            } else {
                p = pattern_.data();
                len = static_cast<size_t>(std::min<uint64_t>(c->to_send, pattern_.size()));
            }
            ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    set_out(c, true);
                    return true;
                }
                finish(c, false);
                return false;
            }
            if (!c->echo.empty())
                c->echo.erase(0, static_cast<size_t>(w));
            else
                c->to_send -= static_cast<uint64_t>(w);
        }
        set_out(c, false);
        // For pingpong this means "everything echoed so far".
        if (c->hello_pos == hello_.size()) c->sent_all = true;
        // A stream ends with our FIN; the client reads until it has every byte.
        if (c->mode == Mode::Stream && c->sent_all) {
            finish(c, true);
            return false;
        }
        return true;
    }

    Options opt_;
    std::string hello_;
    std::string pattern_;
    int ep_ = -1;
    std::array<int, 4> bound_{};
    std::array<Counters, 4> counters_{};
    bool warned_emfile_ = false;
};

void usage() {
    std::fputs(
        "usage: backend [--hello FILE] [--rate-port P] [--stream-port P] [--pingpong-port P] [--idle-port P]\n"
        "               [--reply-bytes N] [--stream-bytes B]\n"
        "Ports default to 0 (any free loopback port); the bound ports are printed as JSON on stdout.\n",
        stderr);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        auto next = [&]() -> const char* {
            if (i + 1 >= argc) {
                usage();
                std::exit(2);
            }
            return argv[++i];
        };
        if (k == "--hello")
            o.hello_path = next();
        else if (k == "--rate-port")
            o.ports[0] = std::atoi(next());
        else if (k == "--stream-port")
            o.ports[1] = std::atoi(next());
        else if (k == "--pingpong-port")
            o.ports[2] = std::atoi(next());
        else if (k == "--idle-port")
            o.ports[3] = std::atoi(next());
        else if (k == "--reply-bytes")
            o.reply_bytes = std::strtoull(next(), nullptr, 10);
        else if (k == "--stream-bytes")
            o.stream_bytes = std::strtoull(next(), nullptr, 10);
        else {
            usage();
            return 2;
        }
    }
    rlim_t lim = bench::raise_nofile();
    std::fprintf(stderr, "backend: RLIMIT_NOFILE=%llu\n", static_cast<unsigned long long>(lim));
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    Backend b(std::move(o));
    if (!b.start()) return 1;
    b.run();
    return 0;
}

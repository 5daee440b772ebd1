// Benchmark load generator for a TLS SNI-routing proxy, with no TLS anywhere: every connection
// starts by sending a real captured ClientHello (--hello FILE) and then talks to bench/backend,
// which never does TLS either. One workload per run, one JSON object on stdout, a readable
// summary on stderr. Only 127.0.0.1 is used.
//
//   rate      keep --concurrency connections in flight for --duration seconds; each connects,
//             sends the hello, reads --reply-bytes bytes, closes. Connections/s, failures,
//             connect-to-last-byte latency, proxy CPU per connection.
//   stream    one connection; after the hello the backend sends --bytes bytes. MB/s, proxy CPU
//             seconds per GiB.
//   pingpong  one connection; after the hello, --rounds rounds of a 1-byte request and its
//             1-byte echo (after --warmup unmeasured rounds). RTT percentiles.
//   idle      open --count connections, send the hello on each, wait for the backend's 1-byte
//             greeting, hold them for --settle seconds. Proxy RSS per connection.
//
// --pid PID names the proxy process whose CPU time (/proc/PID/stat utime+stime) and VmRSS are
// sampled before and after; 0 skips that. Every wait is bounded by --timeout, and a watchdog
// ends the run if the whole workload overruns.
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>

#include <array>
#include <map>

#include "bench_util.hpp"

namespace {

struct Options {
    std::string mode;
    std::string label;
    std::string hello_path = "../shared/fixtures/clienthellos/curl-www.bin";
    int port = 0;
    int pid = 0;
    double timeout_s = 5;
    // rate
    int concurrency = 32;
    double duration_s = 10;
    uint64_t reply_bytes = 1024;
    // stream
    uint64_t stream_bytes = 2ull << 30;
    // pingpong
    long rounds = 20000;
    long warmup = 100;
    // idle
    int count = 5000;
    int batch = 256;
    double settle_s = 2;
};

Options g_opt;
std::string g_hello;

enum Failure { FConnect, FHelloSend, FReset, FEof, FTimeout, FShort, FCount };
constexpr std::array<const char*, FCount> kFailureNames = {"connect", "hello_send", "reset", "eof", "timeout", "short"};

struct Failures {
    std::array<uint64_t, FCount> n{};
    std::map<int, uint64_t> errnos;  // connect errors by errno, for diagnosing port exhaustion
    void add(Failure f, int err = 0) {
        ++n[f];
        if (err) ++errnos[err];
    }
    uint64_t total() const {
        uint64_t t = 0;
        for (auto v : n) t += v;
        return t;
    }
    std::string json() const {
        bench::Json j;
        for (int i = 0; i < FCount; ++i)
            if (n[i]) j.integer(kFailureNames[i], static_cast<long long>(n[i]));
        for (auto& [e, c] : errnos)
            j.integer(strerrorname_np(e) ? strerrorname_np(e) : "errno", static_cast<long long>(c));
        return j.done();
    }
};

void watchdog(int) {
    static const char msg[] = "{\"error\":\"watchdog: workload overran its time bound\",\"ok\":0,\"failed\":1}\n";
    ssize_t r = write(STDOUT_FILENO, msg, sizeof msg - 1);
    (void)r;
    _exit(3);
}

int connect_nonblocking(int& err) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
        return -1;
    }
    bench::set_nodelay(fd);
    sockaddr_in a = bench::loopback(static_cast<uint16_t>(g_opt.port));
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
        err = errno;
        close(fd);
        return -1;
    }
    err = 0;
    return fd;
}

// A blocking socket whose connect, sends and receives each give up after --timeout.
int connect_blocking(int& err) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
        return -1;
    }
    bench::set_nodelay(fd);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(g_opt.timeout_s);
    tv.tv_usec = static_cast<suseconds_t>((g_opt.timeout_s - static_cast<double>(tv.tv_sec)) * 1e6);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a = bench::loopback(static_cast<uint16_t>(g_opt.port));
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

bool send_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            return false;
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

struct LatencySummary {
    std::vector<double> v;
    void add_ns(uint64_t ns) { v.push_back(static_cast<double>(ns) / 1000.0); }
    std::string json() {
        std::sort(v.begin(), v.end());
        double sum = 0;
        for (double x : v) sum += x;
        bench::Json j;
        j.num("p50", bench::percentile(v, 0.50))
            .num("p99", bench::percentile(v, 0.99))
            .num("p999", bench::percentile(v, 0.999))
            .num("mean", v.empty() ? 0 : sum / static_cast<double>(v.size()))
            .num("max", v.empty() ? 0 : v.back());
        return j.done();
    }
};

// Common fields of every result record.
bench::Json header() {
    bench::Json j;
    j.str("mode", g_opt.mode).str("label", g_opt.label).integer("port", g_opt.port).integer("pid", g_opt.pid);
    return j;
}

void emit(const bench::Json& j, bool ok) {
    std::printf("%s\n", j.done().c_str());
    std::fflush(stdout);
    (void)ok;
}

// ------------------------------------------------------------------------------------------
// rate

struct Slot {
    int fd = -1;
    enum State { Free, Connecting, Sending, Reading } state = Free;
    uint64_t t0 = 0;
    uint64_t deadline = 0;
    size_t sent = 0;
    uint64_t got = 0;
};

class RateRun {
public:
    int run() {
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        slots_.resize(static_cast<size_t>(g_opt.concurrency));
        lat_.v.reserve(1 << 20);
        double cpu0 = bench::proc_cpu_seconds(g_opt.pid);
        double self0 = bench::self_cpu_seconds();
        uint64_t start = bench::now_ns();
        end_ = start + static_cast<uint64_t>(g_opt.duration_s * 1e9);
        timeout_ns_ = static_cast<uint64_t>(g_opt.timeout_s * 1e9);
        for (size_t i = 0; i < slots_.size(); ++i) launch(i);
        std::vector<epoll_event> evs(slots_.size() + 1);
        uint64_t next_sweep = 0;
        while (active_ > 0) {
            int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 50);
            for (int i = 0; i < n; ++i) on_event(evs[i].data.u64, evs[i].events);
            uint64_t now = bench::now_ns();
            if (now >= next_sweep) {
                next_sweep = now + 20'000'000;
                for (size_t i = 0; i < slots_.size(); ++i)
                    if (slots_[i].state != Slot::Free && now >= slots_[i].deadline) fail(i, FTimeout);
            }
            // Slots freed by a failed immediate connect are refilled here, not recursively.
            if (now < end_)
                for (size_t i = 0; i < slots_.size() && relaunch_ > 0; ++i)
                    if (slots_[i].state == Slot::Free) {
                        --relaunch_;
                        launch(i);
                    }
        }
        uint64_t stop = bench::now_ns();
        double cpu1 = bench::proc_cpu_seconds(g_opt.pid);
        double elapsed = static_cast<double>(stop - start) / 1e9;
        uint64_t fails = failures_.total();
        bench::Json j = header();
        j.integer("concurrency", g_opt.concurrency)
            .num("duration_s", g_opt.duration_s)
            .integer("reply_bytes", static_cast<long long>(g_opt.reply_bytes))
            .integer("ok", static_cast<long long>(ok_))
            .integer("failed", static_cast<long long>(fails))
            .raw("failures", failures_.json())
            .num("elapsed_s", elapsed)
            .num("conn_per_s", static_cast<double>(ok_) / elapsed)
            .raw("latency_us", lat_.json())
            .num("loadgen_cpu_s", bench::self_cpu_seconds() - self0);
        double cpu = (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1;
        if (cpu >= 0) {
            j.num("proxy_cpu_s", cpu).num("proxy_cpu_util", cpu / elapsed);
            if (ok_ > 0) j.num("proxy_cpu_us_per_conn", cpu * 1e6 / static_cast<double>(ok_));
        }
        emit(j, fails == 0 && ok_ > 0);
        std::fprintf(stderr,
                     "[%s] rate C=%d %.1fs: %llu ok, %llu failed, %.0f conn/s; latency p50 %.0f us, p99 %.0f us, "
                     "p99.9 %.0f us",
                     g_opt.label.c_str(), g_opt.concurrency, elapsed, static_cast<unsigned long long>(ok_),
                     static_cast<unsigned long long>(fails), static_cast<double>(ok_) / elapsed,
                     bench::percentile(lat_.v, 0.5), bench::percentile(lat_.v, 0.99), bench::percentile(lat_.v, 0.999));
        if (cpu >= 0 && ok_ > 0)
            std::fprintf(stderr, "; proxy CPU %.2f s (%.0f%%), %.1f us/conn", cpu, 100 * cpu / elapsed,
                         cpu * 1e6 / static_cast<double>(ok_));
        std::fputc('\n', stderr);
        if (fails) std::fprintf(stderr, "[%s] failures: %s\n", g_opt.label.c_str(), failures_.json().c_str());
        return (fails == 0 && ok_ > 0) ? 0 : 1;
    }

private:
    void launch(size_t i) {
        Slot& s = slots_[i];
        s = Slot{};
        s.t0 = bench::now_ns();
        s.deadline = s.t0 + timeout_ns_;
        int err = 0;
        s.fd = connect_nonblocking(err);
        if (s.fd < 0) {
            failures_.add(FConnect, err);
            ++relaunch_;
            return;
        }
        s.state = Slot::Connecting;
        ++active_;
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.u64 = i;
        epoll_ctl(ep_, EPOLL_CTL_ADD, s.fd, &ev);
    }

    void release(size_t i) {
        Slot& s = slots_[i];
        close(s.fd);
        s.fd = -1;
        s.state = Slot::Free;
        --active_;
        if (bench::now_ns() < end_) launch(i);
    }

    void fail(size_t i, Failure f, int err = 0) {
        failures_.add(f, err);
        release(i);
    }

    void on_event(size_t i, uint32_t events) {
        Slot& s = slots_[i];
        if (s.state == Slot::Connecting) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) return fail(i, FConnect, err);
            s.state = Slot::Sending;
        }
        if (s.state == Slot::Sending) {
            ssize_t w = send(s.fd, g_hello.data() + s.sent, g_hello.size() - s.sent, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN) return;
                return fail(i, FHelloSend, errno);
            }
            s.sent += static_cast<size_t>(w);
            if (s.sent < g_hello.size()) return;
            s.state = Slot::Reading;
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = i;
            epoll_ctl(ep_, EPOLL_CTL_MOD, s.fd, &ev);
            return;
        }
        if (s.state != Slot::Reading || !(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
        ssize_t n = recv(s.fd, buf_, sizeof buf_, 0);
        if (n < 0) {
            if (errno == EAGAIN) return;
            return fail(i, FReset, errno);
        }
        if (n == 0) return fail(i, FEof);
        s.got += static_cast<uint64_t>(n);
        if (s.got < g_opt.reply_bytes) return;
        lat_.add_ns(bench::now_ns() - s.t0);
        ++ok_;
        release(i);
    }

    int ep_ = -1;
    std::vector<Slot> slots_;
    uint64_t end_ = 0;
    uint64_t timeout_ns_ = 0;
    size_t active_ = 0;
    size_t relaunch_ = 0;
    uint64_t ok_ = 0;
    Failures failures_;
    LatencySummary lat_;
    char buf_[65536];
};

// ------------------------------------------------------------------------------------------
// stream

int run_stream() {
    double cpu0 = bench::proc_cpu_seconds(g_opt.pid);
    uint64_t t0 = bench::now_ns();
    uint64_t limit = t0 + static_cast<uint64_t>(std::max(60.0, g_opt.timeout_s * 20) * 1e9);
    int err = 0;
    int fd = connect_blocking(err);
    uint64_t got = 0;
    Failures f;
    uint64_t t_first = 0;
    if (fd < 0) {
        f.add(FConnect, err);
    } else if (!send_all(fd, g_hello.data(), g_hello.size())) {
        f.add(FHelloSend, errno);
    } else {
        std::vector<char> buf(1 << 18);
        while (got < g_opt.stream_bytes) {
            ssize_t n = recv(fd, buf.data(), buf.size(), 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                f.add(errno == EAGAIN ? FTimeout : FReset, errno == EAGAIN ? 0 : errno);
                break;
            }
            if (n == 0) {
                f.add(FShort);
                break;
            }
            if (got == 0) t_first = bench::now_ns();
            got += static_cast<uint64_t>(n);
            if (bench::now_ns() > limit) {
                f.add(FTimeout);
                break;
            }
        }
    }
    uint64_t t1 = bench::now_ns();
    if (fd >= 0) close(fd);
    double cpu1 = bench::proc_cpu_seconds(g_opt.pid);
    double elapsed = static_cast<double>(t1 - t0) / 1e9;
    double mbps = static_cast<double>(got) / 1e6 / elapsed;
    bool ok = f.total() == 0 && got == g_opt.stream_bytes;
    bench::Json j = header();
    j.integer("bytes", static_cast<long long>(got))
        .integer("expected_bytes", static_cast<long long>(g_opt.stream_bytes))
        .integer("ok", ok ? 1 : 0)
        .integer("failed", ok ? 0 : 1)
        .raw("failures", f.json())
        .num("elapsed_s", elapsed)
        .num("first_byte_ms", t_first ? static_cast<double>(t_first - t0) / 1e6 : -1)
        .num("mb_per_s", mbps);
    double cpu = (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1;
    if (cpu >= 0 && got > 0)
        j.num("proxy_cpu_s", cpu).num("proxy_cpu_s_per_gib", cpu / (static_cast<double>(got) / double(1ull << 30)));
    emit(j, ok);
    std::fprintf(stderr, "[%s] stream %.2f GiB in %.2f s: %.0f MB/s", g_opt.label.c_str(),
                 static_cast<double>(got) / double(1ull << 30), elapsed, mbps);
    if (cpu >= 0 && got > 0)
        std::fprintf(stderr, "; proxy CPU %.2f s, %.2f s/GiB", cpu,
                     cpu / (static_cast<double>(got) / double(1ull << 30)));
    std::fprintf(stderr, "%s\n", ok ? "" : " FAILED");
    return ok ? 0 : 1;
}

// ------------------------------------------------------------------------------------------
// pingpong

int run_pingpong() {
    double cpu0 = bench::proc_cpu_seconds(g_opt.pid);
    int err = 0;
    int fd = connect_blocking(err);
    Failures f;
    LatencySummary lat;
    lat.v.reserve(static_cast<size_t>(g_opt.rounds));
    long done = 0;
    uint64_t t_start = 0;
    uint64_t t_end = 0;
    if (fd < 0) {
        f.add(FConnect, err);
    } else if (!send_all(fd, g_hello.data(), g_hello.size())) {
        f.add(FHelloSend, errno);
    } else {
        char c = 'p';
        for (long r = 0; r < g_opt.warmup + g_opt.rounds; ++r) {
            if (r == g_opt.warmup) t_start = bench::now_ns();
            uint64_t t = bench::now_ns();
            if (!send_all(fd, &c, 1)) {
                f.add(FReset, errno);
                break;
            }
            ssize_t n;
            do n = recv(fd, &c, 1, 0);
            while (n < 0 && errno == EINTR);
            if (n <= 0) {
                f.add(n == 0 ? FEof : (errno == EAGAIN ? FTimeout : FReset));
                break;
            }
            if (r >= g_opt.warmup) {
                lat.add_ns(bench::now_ns() - t);
                ++done;
            }
        }
        t_end = bench::now_ns();
    }
    if (fd >= 0) close(fd);
    double cpu1 = bench::proc_cpu_seconds(g_opt.pid);
    bool ok = f.total() == 0 && done == g_opt.rounds;
    bench::Json j = header();
    j.integer("rounds", done).integer("warmup", g_opt.warmup).integer("ok", ok ? 1 : 0).integer("failed", ok ? 0 : 1);
    j.raw("failures", f.json());
    if (t_end > t_start && t_start) j.num("elapsed_s", static_cast<double>(t_end - t_start) / 1e9);
    j.raw("rtt_us", lat.json());
    double cpu = (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1;
    if (cpu >= 0 && done > 0)
        j.num("proxy_cpu_s", cpu).num("proxy_cpu_us_per_round", cpu * 1e6 / static_cast<double>(done));
    emit(j, ok);
    std::fprintf(stderr, "[%s] pingpong %ld rounds: RTT p50 %.1f us, p99 %.1f us%s\n", g_opt.label.c_str(), done,
                 bench::percentile(lat.v, 0.5), bench::percentile(lat.v, 0.99), ok ? "" : " FAILED");
    return ok ? 0 : 1;
}

// ------------------------------------------------------------------------------------------
// idle

int run_idle() {
    struct Conn {
        int fd = -1;
        enum State { Connecting, Sending, Waiting, Held, Dead } state = Connecting;
        size_t sent = 0;
        uint64_t deadline = 0;
    };
    long rss0 = bench::proc_rss_kib(g_opt.pid);
    double cpu0 = bench::proc_cpu_seconds(g_opt.pid);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    std::vector<Conn> conns(static_cast<size_t>(g_opt.count));
    Failures f;
    uint64_t timeout_ns = static_cast<uint64_t>(g_opt.timeout_s * 1e9);
    uint64_t t0 = bench::now_ns();
    size_t next = 0, pending = 0, held = 0;
    std::vector<epoll_event> evs(1024);
    auto kill = [&](size_t i, Failure why, int err) {
        Conn& c = conns[i];
        f.add(why, err);
        close(c.fd);
        c.fd = -1;
        c.state = Conn::Dead;
        --pending;
    };
    while (next < conns.size() || pending > 0) {
        // Open connections in bounded batches so the listen queues never overflow: a dropped
        // SYN would cost a one-second retransmit and say nothing about the proxy.
        while (next < conns.size() && pending < static_cast<size_t>(g_opt.batch)) {
            Conn& c = conns[next];
            int err = 0;
            c.fd = connect_nonblocking(err);
            c.deadline = bench::now_ns() + timeout_ns;
            if (c.fd < 0) {
                f.add(FConnect, err);
                c.state = Conn::Dead;
            } else {
                epoll_event ev{};
                ev.events = EPOLLOUT;
                ev.data.u64 = next;
                epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
                ++pending;
            }
            ++next;
        }
        int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 50);
        for (int k = 0; k < n; ++k) {
            size_t i = evs[k].data.u64;
            Conn& c = conns[i];
            if (c.state == Conn::Connecting) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    kill(i, FConnect, err);
                    continue;
                }
                c.state = Conn::Sending;
            }
            if (c.state == Conn::Sending) {
                ssize_t w = send(c.fd, g_hello.data() + c.sent, g_hello.size() - c.sent, MSG_NOSIGNAL);
                if (w < 0) {
                    if (errno != EAGAIN) kill(i, FHelloSend, errno);
                    continue;
                }
                c.sent += static_cast<size_t>(w);
                if (c.sent < g_hello.size()) continue;
                c.state = Conn::Waiting;
                epoll_event ev{};
                ev.events = EPOLLIN;
                ev.data.u64 = i;
                epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
                continue;
            }
            if (c.state == Conn::Waiting) {
                char b[16];
                ssize_t r = recv(c.fd, b, sizeof b, 0);
                if (r < 0 && errno == EAGAIN) continue;
                if (r <= 0) {
                    kill(i, r == 0 ? FEof : FReset, r == 0 ? 0 : errno);
                    continue;
                }
                c.state = Conn::Held;
                epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
                --pending;
                ++held;
            }
        }
        uint64_t now = bench::now_ns();
        for (size_t i = 0; i < next; ++i)
            if ((conns[i].state == Conn::Connecting || conns[i].state == Conn::Sending ||
                 conns[i].state == Conn::Waiting) &&
                now >= conns[i].deadline)
                kill(i, FTimeout, 0);
    }
    double open_s = static_cast<double>(bench::now_ns() - t0) / 1e9;
    usleep(static_cast<useconds_t>(g_opt.settle_s * 1e6));
    long rss1 = bench::proc_rss_kib(g_opt.pid);
    double cpu1 = bench::proc_cpu_seconds(g_opt.pid);
    // A connection the proxy dropped while we waited reads as EOF or an error now.
    size_t dropped = 0;
    for (auto& c : conns) {
        if (c.state != Conn::Held) continue;
        char b[16];
        ssize_t r = recv(c.fd, b, sizeof b, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN)) ++dropped;
    }
    for (auto& c : conns)
        if (c.fd >= 0) close(c.fd);
    size_t alive = held - dropped;
    bool ok = f.total() == 0 && dropped == 0 && held == conns.size();
    bench::Json j = header();
    j.integer("count", g_opt.count)
        .integer("ok", static_cast<long long>(alive))
        .integer("failed", static_cast<long long>(conns.size() - alive))
        .integer("dropped", static_cast<long long>(dropped))
        .raw("failures", f.json())
        .num("open_s", open_s)
        .num("settle_s", g_opt.settle_s);
    if (rss0 >= 0 && rss1 >= 0) {
        j.integer("rss_before_kib", rss0).integer("rss_after_kib", rss1);
        if (alive > 0)
            j.num("rss_bytes_per_conn", static_cast<double>(rss1 - rss0) * 1024.0 / static_cast<double>(alive));
    }
    if (cpu0 >= 0 && cpu1 >= 0 && alive > 0)
        j.num("proxy_cpu_us_per_conn", (cpu1 - cpu0) * 1e6 / static_cast<double>(alive));
    emit(j, ok);
    std::fprintf(stderr, "[%s] idle %zu/%d held (opened in %.2f s)", g_opt.label.c_str(), alive, g_opt.count, open_s);
    if (rss0 >= 0 && rss1 >= 0 && alive > 0)
        std::fprintf(stderr, "; proxy RSS %ld -> %ld KiB, %.0f bytes/conn", rss0, rss1,
                     static_cast<double>(rss1 - rss0) * 1024.0 / static_cast<double>(alive));
    std::fprintf(stderr, "%s\n", ok ? "" : " FAILED");
    return ok ? 0 : 1;
}

void usage() {
    std::fputs(
        "usage: loadgen --mode rate|stream|pingpong|idle --port PORT [options]\n"
        "  --hello FILE        ClientHello to send (default ../shared/fixtures/clienthellos/curl-www.bin)\n"
        "  --pid PID           proxy process to sample CPU and RSS from; 0 = skip (default)\n"
        "  --label NAME        copied into the output\n"
        "  --timeout SEC       bound on every connect, read and write (default 5)\n"
        "  rate:     --concurrency C (32)  --duration SEC (10)  --reply-bytes N (1024)\n"
        "  stream:   --bytes B (2147483648)\n"
        "  pingpong: --rounds R (20000)  --warmup W (100)\n"
        "  idle:     --count N (5000)  --batch K (256)  --settle SEC (2)\n"
        "Prints one JSON object on stdout; exits 0 only if the workload had no failures.\n",
        stderr);
}

}  // namespace

int main(int argc, char** argv) {
    Options& o = g_opt;
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        if (k == "--help" || k == "-h") {
            usage();
            return 0;
        }
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        const char* v = argv[++i];
        if (k == "--mode")
            o.mode = v;
        else if (k == "--label")
            o.label = v;
        else if (k == "--hello")
            o.hello_path = v;
        else if (k == "--port")
            o.port = std::atoi(v);
        else if (k == "--pid")
            o.pid = std::atoi(v);
        else if (k == "--timeout")
            o.timeout_s = std::atof(v);
        else if (k == "--concurrency")
            o.concurrency = std::atoi(v);
        else if (k == "--duration")
            o.duration_s = std::atof(v);
        else if (k == "--reply-bytes")
            o.reply_bytes = std::strtoull(v, nullptr, 10);
        else if (k == "--bytes")
            o.stream_bytes = std::strtoull(v, nullptr, 10);
        else if (k == "--rounds")
            o.rounds = std::atol(v);
        else if (k == "--warmup")
            o.warmup = std::atol(v);
        else if (k == "--count")
            o.count = std::atoi(v);
        else if (k == "--batch")
            o.batch = std::atoi(v);
        else if (k == "--settle")
            o.settle_s = std::atof(v);
        else {
            std::fprintf(stderr, "loadgen: unknown option %s\n", k.c_str());
            usage();
            return 2;
        }
    }
    if (o.port <= 0 || o.port > 65535 || o.concurrency < 1 || o.count < 1 || o.batch < 1 || o.timeout_s <= 0) {
        usage();
        return 2;
    }
    if (!bench::read_file(o.hello_path, g_hello) || g_hello.empty()) {
        std::fprintf(stderr, "loadgen: cannot read hello file %s\n", o.hello_path.c_str());
        return 2;
    }
    rlim_t lim = bench::raise_nofile();
    if (o.mode == "idle" && lim < static_cast<rlim_t>(o.count) + 16)
        std::fprintf(stderr, "loadgen: RLIMIT_NOFILE %llu is too low for %d connections\n",
                     static_cast<unsigned long long>(lim), o.count);
    signal(SIGPIPE, SIG_IGN);
    // The watchdog bounds the whole run even if something below forgets a deadline.
    double bound = 60 + o.timeout_s * 4;
    if (o.mode == "rate")
        bound += o.duration_s;
    else if (o.mode == "stream")
        bound += std::max(60.0, o.timeout_s * 20);
    else if (o.mode == "pingpong")
        bound += static_cast<double>(o.rounds + o.warmup) * 0.01;
    else if (o.mode == "idle")
        bound += o.settle_s + o.timeout_s * (static_cast<double>(o.count) / o.batch + 1);
    signal(SIGALRM, watchdog);
    alarm(static_cast<unsigned>(bound));
    if (o.mode == "rate") return RateRun().run();
    if (o.mode == "stream") return run_stream();
    if (o.mode == "pingpong") return run_pingpong();
    if (o.mode == "idle") return run_idle();
    usage();
    return 2;
}

// Small helpers shared by the benchmark load generator and backend: clocks, file and /proc
// readers, percentiles, socket set-up. Nothing here is used by sniroute itself.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace bench {

inline uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Raises the soft open-file limit to the hard one: thousands of sockets are the point of the
// exercise, and the soft default is often 1024.
inline rlim_t raise_nofile() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

inline bool read_file(const std::string& path, std::string& out) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    std::ostringstream ss;
    ss << f.rdbuf();
    out = ss.str();
    return true;
}

// User + system CPU seconds of a whole process (all threads), from /proc/PID/stat fields 14
// and 15 (clock ticks). The command name (field 2) may hold spaces, so fields are counted from
// the last ')'. Returns a negative value when the process is gone or pid is 0.
inline double proc_cpu_seconds(int pid) {
    if (pid <= 0) return -1;
    std::string s;
    if (!read_file("/proc/" + std::to_string(pid) + "/stat", s)) return -1;
    size_t p = s.rfind(')');
    if (p == std::string::npos) return -1;
    std::istringstream in(s.substr(p + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    // After ')' come field 3 (state) onwards; utime is field 14, stime field 15.
    for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
        if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// VmRSS of a process in KiB from /proc/PID/status; negative when unavailable.
inline long proc_rss_kib(int pid) {
    if (pid <= 0) return -1;
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

inline double self_cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Nearest-rank percentile of a sorted vector; q in [0, 1].
inline double percentile(const std::vector<double>& sorted, double q) {
    if (sorted.empty()) return 0;
    size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
    if (rank == 0) rank = 1;
    if (rank > sorted.size()) rank = sorted.size();
    return sorted[rank - 1];
}

inline sockaddr_in loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

inline void set_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// A JSON object built by appending "key":value pairs; enough for flat result records.
class Json {
public:
    Json& num(const char* k, double v) {
        key(k);
        char b[64];
        std::snprintf(b, sizeof b, "%.6g", v);
        s_ += b;
        return *this;
    }
    Json& integer(const char* k, long long v) {
        key(k);
        s_ += std::to_string(v);
        return *this;
    }
    Json& str(const char* k, const std::string& v) {
        key(k);
        s_ += '"';
        for (char c : v) {
            if (c == '"' || c == '\\') s_ += '\\';
            if (static_cast<unsigned char>(c) >= 0x20) s_ += c;
        }
        s_ += '"';
        return *this;
    }
    Json& boolean(const char* k, bool v) {
        key(k);
        s_ += v ? "true" : "false";
        return *this;
    }
    Json& raw(const char* k, const std::string& v) {
        key(k);
        s_ += v;
        return *this;
    }
    std::string done() const { return "{" + s_ + "}"; }

private:
    void key(const char* k) {
        if (!s_.empty()) s_ += ',';
        s_ += '"';
        s_ += k;
        s_ += "\":";
    }
    std::string s_;
};

}  // namespace bench

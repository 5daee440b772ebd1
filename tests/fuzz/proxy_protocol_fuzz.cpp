// libFuzzer target for the PROXY protocol v1/v2 header parser (proxy/proxy_protocol.hpp).
//
// Each input is parsed whole under the session's cap (kMaxProxyHeader, 4096) and as every one of
// its prefixes. Invariants:
//   - prefixes: NeedMore up to some length, then one final verdict that every longer prefix, and
//     the whole input, repeats: the same status, header length, local flag and addresses;
//   - NeedMore only while the input is shorter than the cap; a header never longer than the
//     input or the cap; a Malformed verdict always has a reason;
//   - a Done header's addresses, written again with append_v1 and append_v2, parse back to the
//     same addresses and take exactly the bytes written.
// A broken invariant aborts, which libFuzzer reports as a crash.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "proxy/proxy_protocol.hpp"

using namespace sniroute::proxy;
using sniroute::core::SocketAddress;

namespace {

// The session's cap (src/proxy/inspector.hpp kMaxProxyHeader); that header pulls in libuv-facing
// code, so the value is repeated here.
constexpr size_t kCap = 4096;

[[noreturn]] void fail(const char* what, const std::string& detail = "") {
    std::fprintf(stderr, "proxy_protocol_fuzz: invariant broken: %s %s\n", what, detail.c_str());
    std::abort();
}

// The detail is built only when the check fails: these run many times per input.
#define require(ok, what, ...)                            \
    do {                                                  \
        if (!(ok)) fail(what __VA_OPT__(, ) __VA_ARGS__); \
    } while (0)

const char* name(HeaderStatus s) {
    switch (s) {
        case HeaderStatus::NeedMore: return "NeedMore";
        case HeaderStatus::Done: return "Done";
        case HeaderStatus::Malformed: return "Malformed";
    }
    return "?";
}

struct Run {
    HeaderStatus status = HeaderStatus::NeedMore;
    ParsedHeader h;
    std::string why;
};

// Addresses compare equal when both are unset (family 0) or both are the same IP address.
bool same_addr(const SocketAddress& a, const SocketAddress& b) {
    if (a.family() != b.family()) return false;
    if (a.family() != AF_INET && a.family() != AF_INET6) return true;
    return a == b;
}

std::string addr(const SocketAddress& a) {
    return a.family() == AF_INET || a.family() == AF_INET6 ? a.to_string()
                                                           : "(family " + std::to_string(a.family()) + ")";
}

std::string describe(const Run& r) {
    std::string s = std::string(name(r.status));
    if (r.status == HeaderStatus::Done)
        s += " length=" + std::to_string(r.h.length) +
             (r.h.local ? " local" : " src=" + addr(r.h.src) + " dst=" + addr(r.h.dst));
    else if (r.status == HeaderStatus::Malformed)
        s += " why=" + r.why;
    return s;
}

Run parse(const uint8_t* data, size_t n, size_t cap) {
    Run r;
    const char* why = "";
    r.status = parse_header(data, n, cap, r.h, why);
    r.why = why ? why : "(null)";
    return r;
}

bool same(const Run& a, const Run& b) {
    if (a.status != b.status) return false;
    if (a.status != HeaderStatus::Done) return true;
    return a.h.length == b.h.length && a.h.local == b.h.local && same_addr(a.h.src, b.h.src) &&
           same_addr(a.h.dst, b.h.dst);
}

void check_run(const Run& r, size_t n, size_t cap) {
    switch (r.status) {
        case HeaderStatus::NeedMore: require(n < cap, "NeedMore at or beyond the cap", std::to_string(n)); break;
        case HeaderStatus::Done:
            require(r.h.length > 0, "Done with an empty header", describe(r));
            require(r.h.length <= n, "header longer than the input", describe(r) + " n=" + std::to_string(n));
            require(r.h.length <= cap, "header longer than the cap", describe(r));
            if (!r.h.local) {
                int f = r.h.src.family();
                require(f == AF_INET || f == AF_INET6, "a proxied header without IP addresses", describe(r));
                require(r.h.dst.family() == f, "source and destination of different families", describe(r));
            }
            break;
        case HeaderStatus::Malformed: require(!r.why.empty(), "Malformed without a reason"); break;
    }
}

// Writes the addresses with one encoder and checks they parse back to themselves.
template <class Append>
void check_reencode(const Run& r, Append append, const char* how) {
    std::string wire;
    append(wire, r.h.src, r.h.dst);
    Run back = parse(reinterpret_cast<const uint8_t*>(wire.data()), wire.size(), kCap);
    require(back.status == HeaderStatus::Done, "a re-encoded header does not parse",
            std::string(how) + ": " + describe(back));
    require(back.h.length == wire.size(), "a re-encoded header parses to another length", how);
    require(back.h.local == r.h.local, "a re-encoded header changes local",
            std::string(how) + ": " + describe(r) + " vs " + describe(back));
    if (!r.h.local)
        require(same_addr(back.h.src, r.h.src) && same_addr(back.h.dst, r.h.dst),
                "a re-encoded header parses to other addresses",
                std::string(how) + ": " + describe(r) + " vs " + describe(back));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const Run whole = parse(data, size, kCap);
    check_run(whole, size, kCap);

    // Growing prefixes: NeedMore, then the final verdict for good.
    Run final_run;
    bool decided = false;
    for (size_t n = 1; n <= size; ++n) {
        Run r = parse(data, n, kCap);
        check_run(r, n, kCap);
        if (!decided) {
            if (r.status == HeaderStatus::NeedMore) continue;
            decided = true;
            final_run = r;
            if (r.status == HeaderStatus::Done)
                require(r.h.length == n, "Done before the header's last byte was needed",
                        describe(r) + " at prefix " + std::to_string(n));
        } else {
            require(same(final_run, r), "a longer prefix changed the verdict",
                    describe(final_run) + " vs " + describe(r) + " at prefix " + std::to_string(n));
        }
    }
    if (!decided) {
        require(whole.status == HeaderStatus::NeedMore, "every prefix NeedMore but the whole input not",
                describe(whole));
    } else {
        require(same(final_run, whole), "the prefixes and the whole input disagree",
                describe(final_run) + " vs " + describe(whole));
    }

    if (whole.status == HeaderStatus::Done) {
        check_reencode(
            whole, [](std::string& o, const SocketAddress& s, const SocketAddress& d) { append_v1(o, s, d); }, "v1");
        check_reencode(
            whole, [](std::string& o, const SocketAddress& s, const SocketAddress& d) { append_v2(o, s, d); }, "v2");
    }
    return 0;
}

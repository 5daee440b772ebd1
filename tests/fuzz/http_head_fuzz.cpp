// libFuzzer target for the port-80 request-head parser (http/request_head.hpp) and the decision
// made on a parsed head (http/front.hpp).
//
// Each input is fed to RequestHeadParser (max 8192 bytes) whole, and in two reads cut at 1, at
// the middle and at a point taken from the first byte. Invariants:
//   - every cut gives the same status and head_len (and, when Done, the same method, target and
//     Host) as the whole input;
//   - Done: head_len <= the input size, and the head's bytes hold no CR without an LF after it
//     and no LF without a CR before it (the strict line grammar of request_head.hpp);
//   - http::decide on the head, over a fixed snapshot (http listener, acme = "auto" routes, one
//     with redirect_https, a default backend), answers with a response starting "HTTP/1.1 " and
//     a Location header, if any, free of control bytes, spaces and DEL.
// A broken invariant aborts, which libFuzzer reports as a crash.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "http/front.hpp"
#include "http/request_head.hpp"
#include "route/router.hpp"

using namespace sniroute;
using http::HeadStatus;

namespace {

constexpr size_t kMaxHead = 8192;

[[noreturn]] void fail(const char* what, const std::string& detail = "") {
    std::fprintf(stderr, "http_head_fuzz: invariant broken: %s %s\n", what, detail.c_str());
    std::abort();
}

// The detail is built only when the check fails: these run many times per input.
#define require(ok, what, ...)                            \
    do {                                                  \
        if (!(ok)) fail(what __VA_OPT__(, ) __VA_ARGS__); \
    } while (0)

const char* kConfig = R"(
[[listeners]]
name = "http"
bind = ["127.0.0.1:1080"]
protocol = "http"
default_backend = "fallback"
  [[listeners.routes]]
  match = ["a.test", "*.wild.test"]
  backend = "web"
  acme = "auto"
  redirect_https = true
  [[listeners.routes]]
  match = ["b.test"]
  backend = "web"
  acme = "auto"
  [[listeners.routes]]
  match = ["local.test"]
  backend = "web"
  acme = "local"
[backends.web]
servers = ["127.0.0.1:1"]
[backends.fallback]
servers = ["127.0.0.1:3"]
)";

const route::Snapshot& snapshot() {
    static const route::Snapshot snap = [] {
        auto r = config::load_string(kConfig, "http_head_fuzz.toml");
        if (!r.config) {
            for (const auto& d : r.diagnostics) std::fprintf(stderr, "%s\n", d.to_string().c_str());
            fail("the fixed config does not load");
        }
        return route::Snapshot(std::move(*r.config));
    }();
    return snap;
}

const char* name(HeadStatus s) {
    switch (s) {
        case HeadStatus::NeedMore: return "NeedMore";
        case HeadStatus::Done: return "Done";
        case HeadStatus::Bad: return "Bad";
        case HeadStatus::TooLarge: return "TooLarge";
    }
    return "?";
}

struct Run {
    HeadStatus status = HeadStatus::NeedMore;
    http::RequestHead head;
};

std::string describe(const Run& r) {
    std::string s = name(r.status);
    if (r.status == HeadStatus::Done) s += " head_len=" + std::to_string(r.head.head_len);
    return s;
}

// Feeds data[0, cut) and then, if the parser still wants more, data[cut, size).
Run feed(const char* data, size_t size, size_t cut) {
    http::RequestHeadParser p(kMaxHead);
    Run r;
    cut = std::min(cut, size);
    r.status = p.feed(data, cut);
    if (r.status == HeadStatus::NeedMore && cut < size) r.status = p.feed(data + cut, size - cut);
    r.head = p.head();
    return r;
}

void check_same(const Run& want, const Run& got, size_t cut) {
    auto how = [&] { return "cut at " + std::to_string(cut) + ": " + describe(want) + " vs " + describe(got); };
    require(want.status == got.status, "two cuts of one stream disagree", how());
    if (want.status != HeadStatus::Done) return;
    require(want.head.head_len == got.head.head_len, "two cuts end the head in different places", how());
    require(want.head.method == got.head.method && want.head.target == got.head.target &&
                want.head.host_count == got.head.host_count &&
                (want.head.host_count != 1 || want.head.host == got.head.host),
            "two cuts parse different heads", how());
}

void check_head_bytes(std::string_view h) {
    for (size_t i = 0; i < h.size(); ++i) {
        if (h[i] == '\r')
            require(i + 1 < h.size() && h[i + 1] == '\n', "a CR without LF in an accepted head", std::to_string(i));
        if (h[i] == '\n') require(i > 0 && h[i - 1] == '\r', "a bare LF in an accepted head", std::to_string(i));
    }
    require(h.size() >= 4 && h.substr(h.size() - 4) == "\r\n\r\n", "an accepted head not ended by CRLFCRLF");
}

void check_action(const http::Action& a) {
    if (a.kind == http::Action::Kind::Forward) {
        require(a.backend != nullptr, "Forward without a backend");
        return;
    }
    std::string_view r = a.response;
    require(r.starts_with("HTTP/1.1 "), "a response that does not start with HTTP/1.1", std::string(r.substr(0, 40)));
    size_t end = r.find("\r\n\r\n");
    require(end != std::string_view::npos, "a response without the end of its head");
    std::string_view head = r.substr(0, end + 2);
    for (size_t at = head.find("\r\nLocation:"); at != std::string_view::npos;
         at = head.find("\r\nLocation:", at + 2)) {
        size_t v = at + 11;
        while (v < head.size() && head[v] == ' ') ++v;
        size_t eol = head.find("\r\n", v);
        std::string_view value = head.substr(v, eol - v);
        require(!value.empty(), "an empty Location");
        for (unsigned char c : value)
            require(c >= 0x21 && c != 0x7f, "a control byte, space or DEL in Location", std::string(value));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
    const auto* data = reinterpret_cast<const char*>(bytes);
    const Run whole = feed(data, size, size);
    const size_t cuts[] = {1, size / 2, size ? 1 + size_t{bytes[0]} * size / 256 : 0};
    for (size_t cut : cuts) check_same(whole, feed(data, size, cut), cut);

    if (whole.status == HeadStatus::NeedMore) require(size < kMaxHead, "NeedMore past the cap", std::to_string(size));
    if (whole.status != HeadStatus::Done) return 0;
    require(whole.head.head_len > 0 && whole.head.head_len <= size, "head_len beyond the input",
            std::to_string(whole.head.head_len) + " of " + std::to_string(size));
    require(whole.head.head_len <= kMaxHead, "head_len beyond the cap", std::to_string(whole.head.head_len));
    check_head_bytes(std::string_view(data, whole.head.head_len));

    const http::Sources sources;  // no store, webroot or thumbprint: nothing touches the disk
    check_action(http::decide(whole.head, snapshot(), 0, sources));
    return 0;
}

// libFuzzer target for the ClientHello parser.
//
// Each input is used twice:
//   1. as a raw stream, fed to ClientHelloParser whole and cut at sampled offsets (header
//      boundaries, offsets drawn from the input, irregular reads; byte by byte when short; see
//      check_stream); under the default byte cap and under a small cap taken from the input's
//      second-to-last byte;
//   2. as a ClientHello body, given to parse_client_hello_body and also wrapped in a handshake
//      header and a TLS record and fed to the parser, which must agree with the body parser.
// Every way of cutting the same bytes must give the same answer, and every answer must be
// self-consistent (see check_run). A broken invariant aborts, which libFuzzer reports as a crash.
// Cuts must agree on the status, the parsed hello and consumed() alike.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/host_name.hpp"
#include "tls/client_hello.hpp"

using namespace sniroute::tls;
using sniroute::core::normalize_host_name;

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail = "") {
    std::fprintf(stderr, "client_hello_fuzz: invariant broken: %s %.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

// The detail is text, or a function that makes it: the text is built only when the check fails,
// since describing every run that passes cost more than parsing it.
template <class Detail = std::string_view>
void require(bool ok, const char* what, Detail&& detail = {}) {
    if (ok) return;
    if constexpr (std::is_invocable_v<Detail>)
        fail(what, detail());
    else
        fail(what, detail);
}

// A run is the parser after the whole stream went in: its status, info, consumed() and error
// are compared in place, never copied, because a copy of the parsed hello (strings, vectors)
// per cut cost more under ASan than the parsing itself.
using Run = ClientHelloParser;

std::string describe(const Run& r) {
    std::string s = std::string(to_string(r.status())) + " consumed=" + std::to_string(r.consumed());
    if (r.status() == ParseStatus::Done)
        s += " sni=" + (r.info().has_sni ? r.info().sni : std::string("(none)"));
    else
        s += std::string(" error=") + r.error();
    return s;
}

bool same_info(const ClientHelloInfo& a, const ClientHelloInfo& b) {
    return a.has_sni == b.has_sni && a.sni == b.sni && a.alpn == b.alpn && a.legacy_version == b.legacy_version &&
           a.supported_versions == b.supported_versions;
}

// A chunk plan: a function giving the next read size (at least 1).
template <class NextChunk>
Run feed(const uint8_t* data, size_t size, size_t cap, NextChunk next_chunk) {
    ClientHelloParser p(cap);
    ParseStatus final_status = ParseStatus::NeedMore;
    for (size_t at = 0; at < size;) {
        size_t n = std::min(next_chunk(), size - at);
        ParseStatus s = p.feed(data + at, n);
        require(s == p.status(), "feed() and status() disagree");
        // NeedMore until the verdict, then the same verdict for ever.
        if (final_status != ParseStatus::NeedMore) require(s == final_status, "a final status changed");
        final_status = s;
        at += n;
    }
    return p;
}

// What must hold for any single run over `size` bytes.
void check_run(const Run& r, const uint8_t* data, size_t size, size_t cap) {
    const size_t consumed = r.consumed();
    const ClientHelloInfo& info = r.info();
    const std::string_view error = r.error();
    const auto about = [&] { return describe(r); };
    require(consumed <= size, "consumed more than was fed", about);
    switch (r.status()) {
        case ParseStatus::NeedMore:
            // Nothing was judged yet, so nothing may be left over either.
            require(consumed == size, "NeedMore without consuming the input", about);
            require(size < cap, "NeedMore at or beyond the cap", about);
            break;
        case ParseStatus::Done: {
            require(error.empty(), "Done with an error text", about);
            require(consumed >= 5 + 4 + 38, "Done before a minimal hello could have arrived", about);
            require(consumed <= cap, "Done past the cap", about);
            if (info.has_sni) {
                std::string again;
                require(normalize_host_name(info.sni, again) && again == info.sni, "SNI is not a normalised name",
                        info.sni);
            } else {
                require(info.sni.empty(), "SNI text without has_sni");
            }
            for (const auto& a : info.alpn) require(!a.empty() && a.size() <= 255, "bad ALPN entry");
            require(info.supported_versions.size() <= 127, "too many supported_versions");
            break;
        }
        case ParseStatus::NotTls:
            // Only the first record header can make a stream not TLS.
            require(size >= 1 && (data[0] != 0x16 || (size >= 2 && data[1] != 0x03)), "NotTls for a TLS record start",
                    about);
            require(consumed <= 1, "NotTls after the record version byte", about);
            break;
        case ParseStatus::Malformed:
        case ParseStatus::TooLarge:
            require(!error.empty(), "a failure without an error text", about);
            require(consumed <= cap, "read past the cap", about);
            break;
    }
}

void check_same(const Run& want, const Run& got, const char* how) {
    if (want.status() != got.status()) {
        fail("two cuts of one stream disagree", std::string(how) + ": " + describe(want) + " vs " + describe(got));
    }
    if (want.status() == ParseStatus::Done) {
        require(same_info(want.info(), got.info()), "two cuts of one stream parse different hellos", how);
        require(want.consumed() == got.consumed(), "two cuts consume differently", how);
    }
    if (want.status() == ParseStatus::Malformed || want.status() == ParseStatus::NotTls)
        require(std::string_view(want.error()) == got.error(), "two cuts fail for different reasons",
                [&] { return std::string(how) + ": " + want.error() + " vs " + got.error(); });
}

// Reads of the sizes in cuts[0..n), in turn, then the rest in one read.
Run feed_cuts(const uint8_t* data, size_t size, size_t cap, const size_t* cuts, size_t n) {
    size_t i = 0;
    return feed(data, size, cap, [&] { return std::max<size_t>(i < n ? cuts[i++] : size, 1); });
}

// Feeds one stream under one cap in several cuts and checks they all agree.
//
// Feeding every input byte by byte made the target run ~1,000 inputs a second: most of the time
// went into thousands of one-byte feeds of long inputs, while what the cuts test is whether a
// read boundary at some offset changes the answer. So the cuts are sampled, three plans per
// stream: a split at one of the record and handshake header boundaries (1, 3, 5, 6 or 9 bytes
// in), a split at an offset drawn from the input, and up to 16 irregular reads drawn from it;
// byte-by-byte feeding is kept for short inputs only, where it is cheap. Over many inputs every
// offset is cut somewhere.
Run check_stream(const uint8_t* data, size_t size, size_t cap, uint8_t plan_seed, bool all_plans = true) {
    Run whole = feed(data, size, cap, [&] { return size; });
    check_run(whole, data, size, cap);
    auto check = [&](const Run& r, const char* how) {
        check_run(r, data, size, cap);
        check_same(whole, r, how);
    };
    if (size <= 32) check(feed(data, size, cap, [] { return size_t{1}; }), "bytewise");
    // Offsets from the input: a xorshift sequence seeded by it.
    uint32_t x = 0x9e3779b9u ^ plan_seed ^ static_cast<uint32_t>(size << 8);
    auto next = [&] {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        return x;
    };
    constexpr size_t kBoundaries[] = {1, 3, 5, 6, 9};
    if (size_t at = kBoundaries[next() % 5]; all_plans && at < size)
        check(feed_cuts(data, size, cap, &at, 1), "a split at a header boundary");
    if (size > 1) {
        const size_t at = 1 + next() % (size - 1);
        check(feed_cuts(data, size, cap, &at, 1), "a split drawn from the input");
    }
    if (!all_plans) return whole;
    // Irregular reads of 1..64 bytes, at most 16 of them, then the rest.
    size_t reads[16];
    size_t n = 0;
    for (size_t at = 0; n < 16 && at < size; ++n) {
        reads[n] = 1 + next() % 64;
        at += reads[n];
    }
    check(feed_cuts(data, size, cap, reads, n), "irregular reads");
    return whole;
}

// The input as a ClientHello body: the pure body parser and the streaming parser over the same
// body in a record must agree exactly.
void check_body(const uint8_t* data, size_t size) {
    ClientHelloInfo info;
    const char* why = "";
    ParseStatus s = parse_client_hello_body(data, size, info, why);
    require(s == ParseStatus::Done || s == ParseStatus::Malformed, "body parser gave a stream status");
    if (s == ParseStatus::Done && info.has_sni) {
        std::string again;
        require(normalize_host_name(info.sni, again) && again == info.sni, "body SNI is not a normalised name");
    }
    if (size > 16384 - 4) return;  // does not fit one record
    // Kept from one input to the next: its capacity, not its contents, is what is reused.
    static std::vector<uint8_t> flight;
    flight = {0x16,
              0x03,
              0x01,
              static_cast<uint8_t>((size + 4) >> 8),
              static_cast<uint8_t>(size + 4),
              0x01,
              static_cast<uint8_t>(size >> 16),
              static_cast<uint8_t>(size >> 8),
              static_cast<uint8_t>(size)};
    flight.insert(flight.end(), data, data + size);
    const size_t cap = flight.size();  // the cap counts the record header: exactly enough
    Run whole = check_stream(flight.data(), flight.size(), cap, static_cast<uint8_t>(size));
    require(whole.status() == s, "streaming and body parser disagree",
            [&] { return describe(whole) + " vs " + to_string(s); });
    if (s == ParseStatus::Done)
        require(same_info(whole.info(), info), "streaming and body parser parse differently");
    else
        require(std::string_view(whole.error()) == why, "streaming and body parser fail for different reasons",
                [&] { return std::string(whole.error()) + " vs " + why; });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const uint8_t last = size ? data[size - 1] : 0;
    const uint8_t second_last = size > 1 ? data[size - 2] : 0;
    check_stream(data, size, ClientHelloParser::kDefaultMaxBytes, last);
    // A small cap from 16 to 4096 bytes, so that the cap logic meets inputs of every shape.
    // Under the small cap, where what matters is where the cap falls, one split is enough.
    check_stream(data, size, 16 + size_t{second_last} * 16, last, false);
    check_body(data, size);
    return 0;
}

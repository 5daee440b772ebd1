// libFuzzer target for the ACME client's date readers: parse_rfc3339 (renewalInfo windows) and
// parse_retry_after (the Retry-After header of a CA's answer).
//
// The input is read as a date text; "now" is drawn from the input too, so the IMF-fixdate
// arithmetic meets dates before, at and after it. What must hold:
//   - a parsed RFC 3339 time, formatted canonically, parses back to itself; an input already
//     in the canonical shape is exactly that format; the same instant written with a numeric
//     offset parses to the same value; a fraction never changes the value;
//   - no byte before or after a valid date-time is accepted;
//   - delta-seconds spell their number (UINT64_MAX when it does not fit 64 bits);
//   - an IMF-fixdate gives max(0, date - now), where date is what the same fields written as
//     RFC 3339 parse to; a formatted time gives the same wait;
//   - optional whitespace around a Retry-After value changes nothing.
// A broken invariant aborts, which libFuzzer reports as a crash.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "acme/dates.hpp"

using namespace sniroute::acme;

namespace {

[[noreturn]] void fail(const char* what, std::string_view input, const std::string& detail = "") {
    std::fprintf(stderr, "acme_dates_fuzz: invariant broken: %s: [%.*s] %s\n", what, static_cast<int>(input.size()),
                 input.data(), detail.c_str());
    std::abort();
}

void require(bool ok, const char* what, std::string_view input, const std::string& detail = "") {
    if (!ok) fail(what, input, detail);
}

std::string show(std::optional<int64_t> v) { return v ? std::to_string(*v) : "nullopt"; }
std::string show(std::optional<uint64_t> v) { return v ? std::to_string(*v) : "nullopt"; }

uint64_t wait_until(int64_t date, int64_t now) { return date > now ? static_cast<uint64_t>(date - now) : 0; }

// "YYYY-MM-DDTHH:MM:SS" written with the offset `off` (seconds, a multiple of 60), for the
// same instant as `t`.
std::string with_offset(int64_t t, int64_t off) {
    std::string local = format_rfc3339(t + off);
    if (local.empty()) return "";
    local.pop_back();  // 'Z'
    int64_t a = off < 0 ? -off : off;
    char buf[8];
    std::snprintf(buf, sizeof buf, "%c%02d:%02d", off < 0 ? '-' : '+', static_cast<int>(a / 3600),
                  static_cast<int>(a / 60 % 60));
    return local + buf;
}

void check_rfc3339(std::string_view s, uint32_t noise) {
    std::optional<int64_t> t = parse_rfc3339(s);
    // Garbage before or after is never part of a date-time.
    if (!t) return;
    const char extra = static_cast<char>(noise & 0xff);
    require(!parse_rfc3339(std::string(1, extra) + std::string(s)), "a byte before a date-time accepted", s);
    require(!parse_rfc3339(std::string(s) + extra), "a byte after a date-time accepted", s);
    require(*t >= kFirstDateS - 86400 && *t <= kLastDateS + 86400, "a date-time out of range", s, show(t));
    std::string canon = format_rfc3339(*t);
    if (*t < kFirstDateS || *t > kLastDateS) {
        require(canon.empty(), "an out-of-range time formatted", s, canon);
        return;
    }
    require(parse_rfc3339(canon) == t, "the canonical form does not parse back", s, canon);
    // An input already in the canonical shape (no fraction, no offset, no leap second, upper
    // case) must be exactly the canonical form.
    if (s.size() == 20 && s[10] == 'T' && s[19] == 'Z' && s.substr(17, 2) != "60")
        require(canon == s, "a canonical input formats differently", s, canon);
    // The same instant with an offset drawn from the input, up to +-23:59.
    int64_t off = static_cast<int64_t>((noise >> 8) % (24 * 60)) * 60 * ((noise >> 20) & 1 ? -1 : 1);
    if (std::string shifted = with_offset(*t, off); !shifted.empty())
        require(parse_rfc3339(shifted) == t, "an offset form parses to another instant", s, shifted);
    // A fraction is truncated, so it cannot change the value.
    std::string frac = canon;
    frac.insert(19, ".999");
    require(parse_rfc3339(frac) == t, "a fraction changed the value", s, frac);
}

// The number a string of digits spells, saturated at UINT64_MAX, computed without from_chars.
uint64_t spelled(std::string_view digits) {
    uint64_t v = 0;
    for (char c : digits) {
        auto d = static_cast<uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10) return UINT64_MAX;
        v = v * 10 + d;
    }
    return v;
}

void check_retry_after(std::string_view v, int64_t now) {
    std::optional<uint64_t> r = parse_retry_after(v, now);
    // OWS around the value is not part of it (RFC 9110 5.5).
    require(parse_retry_after(" \t" + std::string(v) + "\t ", now) == r, "whitespace changed the value", v, show(r));
    std::string_view core = v;
    while (!core.empty() && (core.front() == ' ' || core.front() == '\t')) core.remove_prefix(1);
    while (!core.empty() && (core.back() == ' ' || core.back() == '\t')) core.remove_suffix(1);
    if (!core.empty() && core.find_first_not_of("0123456789") == std::string_view::npos) {
        require(r == spelled(core), "delta-seconds are not the number they spell", v, show(r));
        return;
    }
    // An IMF-fixdate's fields, written as RFC 3339 ("Sun, 06 Nov 1994 08:49:37 GMT" is
    // 1994-11-06T08:49:37Z), must give the same instant; nothing else is a date.
    static constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
    std::optional<int64_t> date;
    if (core.size() == 29 && core.substr(3, 2) == ", " && core[7] == ' ' && core[11] == ' ' && core[16] == ' ' &&
        core.substr(25) == " GMT") {
        size_t m = kMonths.find(core.substr(8, 3));
        if (m != std::string_view::npos && m % 3 == 0) {
            char mm[3];
            std::snprintf(mm, sizeof mm, "%02d", static_cast<int>(m / 3 + 1));
            date = parse_rfc3339(std::string(core.substr(12, 4)) + "-" + mm + "-" + std::string(core.substr(5, 2)) +
                                 "T" + std::string(core.substr(17, 8)) + "Z");
        }
    }
    if (!date) {
        require(!r, "a value that is neither form accepted", v, show(r));
        return;
    }
    // The day name is not checked against the date, but it must be one of the seven.
    static constexpr std::string_view kDays = "MonTueWedThuFriSatSun";
    size_t day = kDays.find(core.substr(0, 3));
    bool day_ok = day != std::string_view::npos && day % 3 == 0;
    require(r.has_value() == day_ok, "an IMF-fixdate accepted or refused by its day name", v, show(r));
    if (r) require(*r == wait_until(*date, now), "an IMF-fixdate gives the wrong wait", v, show(r));
}

// Formatted times of the parsed value as Retry-After dates: the wait is date - now, or 0.
void check_formatted(std::string_view s, int64_t now) {
    std::optional<int64_t> t = parse_rfc3339(s);
    if (!t) return;
    std::string imf = format_imf_fixdate(*t);
    if (imf.empty()) return;
    std::optional<uint64_t> r = parse_retry_after(imf, now);
    require(r == wait_until(*t, now), "a formatted IMF-fixdate gives the wrong wait", s, imf + " " + show(r));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view s(reinterpret_cast<const char*>(data), size);
    uint32_t noise = 0x811c9dc5u;
    for (size_t i = 0; i < size; ++i) noise = (noise ^ data[i]) * 16777619u;
    // "now" within the dates' range, near the date itself when there is one, so that the
    // boundary (date == now) is met.
    int64_t now = kFirstDateS + static_cast<int64_t>(noise % static_cast<uint64_t>(kLastDateS - kFirstDateS));
    if (auto t = parse_rfc3339(s)) now = *t + static_cast<int64_t>(noise % 3) - 1;
    check_rfc3339(s, noise);
    check_retry_after(s, now);
    check_formatted(s, now);
    return 0;
}

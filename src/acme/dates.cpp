#include "acme/dates.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>

namespace sniroute::acme {

namespace {

constexpr std::string_view kDayNames[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::string_view kMonthNames[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(int64_t y, unsigned m) {
    static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

struct Civil {
    int64_t year;
    unsigned month, day, hour, minute, second, weekday;  // weekday: 0 = Monday, as kDayNames
};

// The inverse of days_from_civil, by whole years then months: formatting is for logs and
// tests, so a loop that reads as the calendar does is worth more than the closed form.
Civil civil_from_unix(int64_t t) {
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t secs = t - days * 86400;
    Civil c{};
    c.hour = static_cast<unsigned>(secs / 3600);
    c.minute = static_cast<unsigned>(secs / 60 % 60);
    c.second = static_cast<unsigned>(secs % 60);
    // 1970-01-01 was a Thursday (index 3).
    c.weekday = static_cast<unsigned>(((days + 3) % 7 + 7) % 7);
    // Whole 400-year eras first (146097 days each), so the year loop runs at most 400 times.
    int64_t era = days >= 0 ? days / 146097 : -((-days + 146096) / 146097);
    days -= era * 146097;
    c.year = 1970 + era * 400;
    for (int64_t n; days >= (n = is_leap(c.year) ? 366 : 365); days -= n) ++c.year;
    c.month = 1;
    for (unsigned n; days >= (n = days_in_month(c.year, c.month)); days -= n) ++c.month;
    c.day = static_cast<unsigned>(days) + 1;
    return c;
}

void put(std::string& out, uint64_t v, int width) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    (void)ec;
    out.append(static_cast<size_t>(std::max<ptrdiff_t>(0, width - (end - buf))), '0');
    out.append(buf, end);
}

// HH:MM:SS, the same in both forms.
void put_time(std::string& out, const Civil& c) {
    put(out, c.hour, 2);
    out += ':';
    put(out, c.minute, 2);
    out += ':';
    put(out, c.second, 2);
}

// A cursor over fixed-layout text: every field has an exact width and an exact range.
struct Scanner {
    std::string_view s;
    bool ok = true;
    unsigned digits(size_t n, unsigned lo, unsigned hi) {
        unsigned v = 0;
        if (s.size() < n) ok = false;
        for (size_t i = 0; ok && i < n; ++i) {
            if (s[i] < '0' || s[i] > '9')
                ok = false;
            else
                v = v * 10 + static_cast<unsigned>(s[i] - '0');
        }
        if (ok) s.remove_prefix(n);
        if (v < lo || v > hi) ok = false;
        return v;
    }
    void lit(std::string_view l) {
        if (ok && s.starts_with(l))
            s.remove_prefix(l.size());
        else
            ok = false;
    }
    bool take(char c) {
        if (!ok || s.empty() || s.front() != c) return false;
        s.remove_prefix(1);
        return true;
    }
};

std::optional<int64_t> to_unix(int64_t y, unsigned mon, unsigned d, unsigned h, unsigned mi, unsigned sec) {
    if (d > days_in_month(y, mon)) return std::nullopt;
    return days_from_civil(y, mon, d) * 86400 + h * 3600 + mi * 60 + sec;
}

}  // namespace

// RFC 3339 5.6: full-date "T" full-time, where full-time = HH:MM:SS [.frac] (Z | +HH:MM | -HH:MM).
// The separator may also be "t" or a space (5.6, note); "z" stands for "Z".
std::optional<int64_t> parse_rfc3339(std::string_view s) {
    Scanner in{s};
    unsigned y = in.digits(4, 0, 9999);
    in.lit("-");
    unsigned mon = in.digits(2, 1, 12);
    in.lit("-");
    unsigned d = in.digits(2, 1, 31);
    if (!(in.take('T') || in.take('t') || in.take(' '))) return std::nullopt;
    unsigned h = in.digits(2, 0, 23);
    in.lit(":");
    unsigned mi = in.digits(2, 0, 59);
    in.lit(":");
    unsigned sec = in.digits(2, 0, 60);
    if (in.take('.')) {
        size_t n = 0;
        while (n < in.s.size() && in.s[n] >= '0' && in.s[n] <= '9') ++n;
        if (n == 0) return std::nullopt;
        in.s.remove_prefix(n);
    }
    int64_t offset = 0;
    if (in.take('Z') || in.take('z')) {
    } else if (bool plus = in.take('+'); plus || in.take('-')) {
        unsigned oh = in.digits(2, 0, 23);
        in.lit(":");
        unsigned om = in.digits(2, 0, 59);
        offset = (plus ? 1 : -1) * static_cast<int64_t>(oh * 3600 + om * 60);
    } else {
        return std::nullopt;
    }
    if (!in.ok || !in.s.empty()) return std::nullopt;
    auto t = to_unix(y, mon, d, h, mi, sec);
    if (!t) return std::nullopt;
    // Local time = UTC + offset, so UTC = local - offset.
    return *t - offset;
}

std::optional<uint64_t> parse_retry_after(std::string_view v, int64_t now) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    if (v.empty()) return std::nullopt;
    if (v.front() >= '0' && v.front() <= '9') {
        // delta-seconds = 1*DIGIT; a value too large for 64 bits is still "very long".
        uint64_t secs = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
        if (p != v.data() + v.size()) return std::nullopt;
        if (ec == std::errc::result_out_of_range) return UINT64_MAX;
        return ec == std::errc() ? std::optional<uint64_t>(secs) : std::nullopt;
    }
    // IMF-fixdate = day-name "," SP DD SP month SP YYYY SP HH:MM:SS SP "GMT" (RFC 9110 5.6.7).
    if (v.size() != 29 || std::find(std::begin(kDayNames), std::end(kDayNames), v.substr(0, 3)) == std::end(kDayNames))
        return std::nullopt;
    Scanner in{v.substr(3)};
    in.lit(", ");
    unsigned d = in.digits(2, 1, 31);
    in.lit(" ");
    if (!in.ok) return std::nullopt;
    auto m = std::find(std::begin(kMonthNames), std::end(kMonthNames), in.s.substr(0, 3));
    if (m == std::end(kMonthNames)) return std::nullopt;
    in.s.remove_prefix(3);
    in.lit(" ");
    unsigned y = in.digits(4, 0, 9999);
    in.lit(" ");
    unsigned h = in.digits(2, 0, 23);
    in.lit(":");
    unsigned mi = in.digits(2, 0, 59);
    in.lit(":");
    unsigned sec = in.digits(2, 0, 60);
    in.lit(" GMT");
    if (!in.ok || !in.s.empty()) return std::nullopt;
    auto t = to_unix(y, static_cast<unsigned>(m - std::begin(kMonthNames)) + 1, d, h, mi, sec);
    if (!t) return std::nullopt;
    return *t > now ? static_cast<uint64_t>(*t - now) : 0;
}

std::string format_rfc3339(int64_t t) {
    if (t < kFirstDateS || t > kLastDateS) return "";
    Civil c = civil_from_unix(t);
    std::string s;
    put(s, static_cast<uint64_t>(c.year), 4);
    s += '-';
    put(s, c.month, 2);
    s += '-';
    put(s, c.day, 2);
    s += 'T';
    put_time(s, c);
    s += 'Z';
    return s;
}

std::string format_imf_fixdate(int64_t t) {
    if (t < kFirstDateS || t > kLastDateS) return "";
    Civil c = civil_from_unix(t);
    std::string s(kDayNames[c.weekday]);
    s += ", ";
    put(s, c.day, 2);
    s += ' ';
    s += kMonthNames[c.month - 1];
    s += ' ';
    put(s, static_cast<uint64_t>(c.year), 4);
    s += ' ';
    put_time(s, c);
    s += " GMT";
    return s;
}

}  // namespace sniroute::acme

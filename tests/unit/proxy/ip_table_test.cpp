// IpTable and RefusalLog: per-IP counts and buckets, bounds, and the ip_refused line limit, on
// an injected clock. The cross-thread use is covered by the integration tests under TSan.
#include <doctest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "proxy/ip_table.hpp"

using namespace sniroute::proxy;
using sniroute::core::IpAddress;
using sniroute::core::parse_rate;
using sniroute::core::Rate;
using Admit = IpTable::Admit;

namespace {

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

Admit admit(IpTable& t, const char* a, uint32_t max, const Rate& r, uint64_t now, bool* counted_out = nullptr) {
    bool counted = false;
    Admit got = t.admit(ip(a), max, r, now, counted);
    if (counted_out) *counted_out = counted;
    return got;
}

}  // namespace

TEST_SUITE("proxy.ip_table") {

TEST_CASE("max_connections_per_ip: a slot per connection, given back at release") {
    IpTable t;
    Rate none;
    bool counted = false;
    CHECK(admit(t, "192.0.2.1", 2, none, 0, &counted) == Admit::Ok);
    CHECK(counted);
    CHECK(admit(t, "::ffff:192.0.2.1", 2, none, 0) == Admit::Ok);  // the same client
    CHECK(admit(t, "192.0.2.1", 2, none, 0) == Admit::PerIpLimit);
    CHECK(admit(t, "192.0.2.2", 2, none, 0) == Admit::Ok);  // another address is unaffected
    CHECK(t.connections(ip("192.0.2.1")) == 2);
    t.release(ip("192.0.2.1"), none, 0);
    CHECK(admit(t, "192.0.2.1", 2, none, 0) == Admit::Ok);
    // An entry that holds nothing goes at once.
    t.release(ip("192.0.2.2"), none, 0);
    CHECK(t.sweep(none, 0) == 1);
    // A lower limit after a reload applies to the connections already counted.
    CHECK(admit(t, "192.0.2.1", 1, none, 0) == Admit::PerIpLimit);
}

TEST_CASE("new_connections_per_ip: the burst, then refusals, then the refill; a slot refusal takes no token") {
    IpTable t;
    Rate r = *parse_rate("3/s");
    for (int i = 0; i < 3; ++i) CHECK(admit(t, "2001:db8::1", 0, r, 1'000) == Admit::Ok);
    CHECK(admit(t, "2001:db8::1", 0, r, 1'000) == Admit::RateLimit);
    CHECK(admit(t, "2001:db8::2", 0, r, 1'000) == Admit::Ok);
    CHECK(admit(t, "2001:db8::1", 0, r, 1'334) == Admit::Ok);
    // Entries live until their bucket is full again.
    CHECK(t.sweep(r, 1'200) == 2);
    CHECK(t.sweep(r, 2'400) == 0);
    // At the connection limit, refusals do not drain the bucket.
    CHECK(admit(t, "10.0.0.1", 1, r, 5'000) == Admit::Ok);
    for (int i = 0; i < 5; ++i) CHECK(admit(t, "10.0.0.1", 1, r, 5'000) == Admit::PerIpLimit);
    t.release(ip("10.0.0.1"), r, 5'000);
    CHECK(admit(t, "10.0.0.1", 1, r, 5'000) == Admit::Ok);
}

TEST_CASE("a full table lets new addresses through untracked, and says so once a minute") {
    IpTable t(IpTable::kShards);  // one address a shard
    Rate none;
    int untracked = 0;
    for (int i = 0; i < 200; ++i) {
        std::string a = "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256);
        untracked += admit(t, a.c_str(), 1, none, 0) == Admit::Untracked;
    }
    CHECK(untracked >= 200 - static_cast<int>(IpTable::kShards));
    uint64_t n = 0;
    CHECK(t.full_line_due(1'000, n));
    CHECK(n == static_cast<uint64_t>(untracked));
    admit(t, "10.9.9.8", 1, none, 990);
    CHECK_FALSE(t.full_line_due(990, n));  // a clock behind the last line's
    admit(t, "10.9.9.9", 1, none, 2'000);
    CHECK_FALSE(t.full_line_due(2'000, n));
    CHECK(t.full_line_due(61'000, n));
    CHECK_FALSE(t.full_line_due(200'000, n));  // nothing untracked since
}

TEST_CASE("workers admitting and releasing at once keep the counts exact") {
    IpTable t;
    Rate none;
    std::vector<std::thread> threads;
    for (int w = 0; w < 4; ++w)
        threads.emplace_back([&] {
            for (int i = 0; i < 2'000; ++i) {
                bool counted = false;
                if (t.admit(ip("192.0.2.7"), 1'000'000, none, 0, counted) == Admit::Ok && counted)
                    t.release(ip("192.0.2.7"), none, 0);
            }
        });
    for (auto& th : threads) th.join();
    CHECK(t.connections(ip("192.0.2.7")) == 0);
    CHECK(t.sweep(none, 0) == 0);
}

TEST_CASE("ip_refused: one line per address a minute, with the count since the last") {
    RefusalLog log(2);
    CHECK(log.note(ip("192.0.2.9"), RefuseReason::Denied, 0).count == 1);
    for (int i = 0; i < 10; ++i) CHECK(log.note(ip("192.0.2.9"), RefuseReason::Denied, 1'000).count == 0);
    CHECK(log.note(ip("192.0.2.8"), RefuseReason::RateLimit, 1'000).count == 1);
    // Another worker's clock, a little behind, is not an interval long over.
    CHECK(log.note(ip("192.0.2.8"), RefuseReason::RateLimit, 990).count == 0);
    // A third address finds the log full: counted under "others".
    auto o = log.note(ip("192.0.2.7"), RefuseReason::Denied, 1'000);
    CHECK(o.count == 1);
    CHECK(o.others);
    CHECK(log.note(ip("192.0.2.6"), RefuseReason::Denied, 1'000).count == 0);
    // The held-back counts come out once their minute is over.
    std::vector<std::pair<std::string, uint64_t>> lines;
    auto collect = [&](const IpAddress* a, const RefusalLog::Line& l) {
        lines.emplace_back(a ? a->to_string() : "others", l.count);
    };
    log.flush(59'999, collect);
    CHECK(lines.empty());
    log.flush(61'000, collect);
    CHECK(lines.size() == 3);  // 192.0.2.8's held-back one (the clock-behind one) too
    CHECK(std::count(lines.begin(), lines.end(), std::pair<std::string, uint64_t>("192.0.2.8", 1)) == 1);
    CHECK(std::count(lines.begin(), lines.end(), std::pair<std::string, uint64_t>("192.0.2.9", 10)) == 1);
    CHECK(std::count(lines.begin(), lines.end(), std::pair<std::string, uint64_t>("others", 1)) == 1);
    // A refusal after the minute is logged at once, with the count since the last line.
    CHECK(log.note(ip("192.0.2.9"), RefuseReason::Denied, 62'000).count == 0);  // 61'000 was its line
    CHECK(log.note(ip("192.0.2.9"), RefuseReason::Denied, 121'000).count == 2);
    // Quiet addresses are forgotten, which makes room again.
    lines.clear();
    log.flush(200'000, collect);
    CHECK(lines.empty());
    CHECK_FALSE(log.note(ip("192.0.2.5"), RefuseReason::Denied, 200'000).others);
}

}  // TEST_SUITE("proxy.ip_table")

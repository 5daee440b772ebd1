// The relay's splice path: a direction that has carried kSpliceAfter bytes moves to splice(2),
// and keeps the copying path's guarantees: order, backpressure, half-close, resets.
#include <doctest.h>

#include "relay_harness.hpp"

using namespace sniroute::proxy;
using sniroute::proxy::test::RelayHarness;

TEST_SUITE("relay") {

TEST_CASE("past 64 KiB both directions splice; every byte arrives in order; FINs pass; ok") {
    RelayHarness h;
    constexpr uint64_t kTotal = 4 * 1024 * 1024;
    uint64_t up_sent = 0, up_got = 0, down_sent = 0, down_got = 0;
    bool intact = true;
    REQUIRE(h.pump(
        [&] {
            RelayHarness::write_pattern(h.client_peer(), up_sent, kTotal);
            RelayHarness::write_pattern(h.backend_peer(), down_sent, kTotal);
            intact = intact && RelayHarness::read_pattern(h.backend_peer(), up_got);
            intact = intact && RelayHarness::read_pattern(h.client_peer(), down_got);
            return (up_got == kTotal && down_got == kTotal) || !intact || h.ended();
        },
        20000));
    CHECK(intact);
    CHECK(up_got == kTotal);
    CHECK(down_got == kTotal);
    CHECK(h.relay().up().splice != nullptr);
    CHECK(h.relay().down().splice != nullptr);
    CHECK(h.relay().up().bytes == kTotal);
    CHECK(h.relay().down().bytes == kTotal);
    CHECK_FALSE(h.ended());

    // Half-close on the splice path: the client's FIN reaches the backend, which can still
    // answer, and its own FIN ends the relay.
    REQUIRE(::shutdown(h.client_peer(), SHUT_WR) == 0);
    bool backend_eof = false;
    REQUIRE(h.pump([&] {
        RelayHarness::read_pattern(h.backend_peer(), up_got, &backend_eof);
        return backend_eof;
    }));
    CHECK(::send(h.backend_peer(), "late", 4, MSG_NOSIGNAL) == 4);
    REQUIRE(::shutdown(h.backend_peer(), SHUT_WR) == 0);
    REQUIRE(h.pump([&] { return h.ended(); }));
    CHECK(h.outcome() == Outcome::Ok);
    std::string tail;
    REQUIRE(h.pump([&] {
        char buf[16];
        ssize_t r = ::recv(h.client_peer(), buf, sizeof buf, 0);
        if (r > 0) tail.append(buf, static_cast<size_t>(r));
        return r == 0;
    }));
    CHECK(tail == "late");
}

TEST_CASE("a spliced direction holds back a client whose backend does not read, then drains in order") {
    RelayHarness h;
    constexpr uint64_t kTotal = 32 * 1024 * 1024;
    uint64_t sent = 0, got = 0;
    uint64_t before = 0;
    REQUIRE(h.pump(
        [&] {
            RelayHarness::write_pattern(h.client_peer(), sent, kTotal);
            if (sent != before) {
                before = sent;
                return false;
            }
            h.pump_for(200);
            RelayHarness::write_pattern(h.client_peer(), sent, kTotal);
            return sent == before;
        },
        20000));
    CHECK(sent < kTotal);
    CHECK(h.relay().up().splice != nullptr);
    bool intact = true;
    REQUIRE(h.pump(
        [&] {
            RelayHarness::write_pattern(h.client_peer(), sent, kTotal);
            intact = intact && RelayHarness::read_pattern(h.backend_peer(), got);
            return got == kTotal || !intact;
        },
        20000));
    CHECK(intact);
    CHECK(got == kTotal);
}

TEST_CASE("a backend's reset during a spliced transfer reaches the client as a reset") {
    RelayHarness h;
    constexpr uint64_t kTotal = 256 * 1024;
    uint64_t sent = 0, got = 0;
    REQUIRE(h.pump([&] {
        RelayHarness::write_pattern(h.client_peer(), sent, kTotal);
        RelayHarness::read_pattern(h.backend_peer(), got);
        return got == kTotal;
    }));
    REQUIRE(h.relay().up().splice != nullptr);
    h.reset_backend_peer();
    REQUIRE(h.pump([&] {
        RelayHarness::write_pattern(h.client_peer(), sent, 2 * kTotal);
        return h.ended();
    }));
    CHECK(h.outcome() == Outcome::Reset);
    CHECK(h.side() == Side::Backend);
    CHECK(h.wait_end(h.client_peer()) == -ECONNRESET);
}

}  // TEST_SUITE("relay")

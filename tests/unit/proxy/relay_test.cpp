// The relay on a real loop: backpressure, half-close and resets, on the copying path (short
// transfers). The splice path has its own file (relay_splice_test.cpp).
#include <doctest.h>

#include "relay_harness.hpp"

using namespace sniroute::proxy;
using sniroute::proxy::test::RelayHarness;

TEST_SUITE("relay") {

TEST_CASE("a backend that does not read stops the relay reading the client; then every byte arrives in order") {
    // Small buffers on the backend side, so that fewer bytes than kSpliceAfter fill them and the
    // copying path's one pending write is what holds the rest. The client sends a kilobyte at
    // a time: one large write could go out as one large segment, past the small buffers.
    RelayHarness h(4096, 4096);
    constexpr uint64_t kTotal = 60 * 1024;
    static_assert(kTotal < Relay::kSpliceAfter);
    uint64_t sent = 0;
    while (sent < kTotal && !h.relay().up().pending) {
        RelayHarness::write_pattern(h.client_peer(), sent, sent + 1024);
        h.pump([&] { return h.relay().up().bytes == sent || h.relay().up().pending; }, 1000);
    }
    REQUIRE(h.relay().up().pending != nullptr);
    CHECK_FALSE(h.relay().up().reading);
    // The client sends the rest. Whenever the kernel takes the pending bytes the relay reads
    // again, but never while a write is pending.
    RelayHarness::write_pattern(h.client_peer(), sent, kTotal);
    bool read_while_pending = false;
    h.pump(
        [&] {
            read_while_pending = read_while_pending || (h.relay().up().pending && h.relay().up().reading);
            return false;
        },
        100);
    CHECK_FALSE(read_while_pending);
    CHECK_FALSE(h.ended());

    // The backend reads: the pending write drains, reading resumes, all bytes arrive in order.
    uint64_t got = 0;
    bool intact = true;
    REQUIRE(h.pump([&] {
        intact = intact && RelayHarness::read_pattern(h.backend_peer(), got);
        return got == kTotal || !intact;
    }));
    CHECK(intact);
    CHECK(got == kTotal);
    REQUIRE(h.pump([&] { return h.relay().up().reading; }));
    CHECK(h.relay().up().pending == nullptr);
    CHECK(h.relay().up().bytes == kTotal);
}

TEST_CASE("half-close: the client's FIN reaches the backend, the answer still flows back, then both close ok") {
    RelayHarness h;
    REQUIRE(::send(h.client_peer(), "ping", 4, MSG_NOSIGNAL) == 4);
    REQUIRE(::shutdown(h.client_peer(), SHUT_WR) == 0);
    std::string at_backend;
    bool backend_eof = false;
    REQUIRE(h.pump([&] {
        char buf[16];
        ssize_t r = ::recv(h.backend_peer(), buf, sizeof buf, 0);
        if (r > 0) at_backend.append(buf, static_cast<size_t>(r));
        if (r == 0) backend_eof = true;
        return backend_eof;
    }));
    CHECK(at_backend == "ping");
    CHECK(h.relay().up().shut);
    CHECK_FALSE(h.ended());

    // The other direction still works after the FIN.
    REQUIRE(::send(h.backend_peer(), "pong", 4, MSG_NOSIGNAL) == 4);
    std::string at_client;
    REQUIRE(h.pump([&] {
        char buf[16];
        ssize_t r = ::recv(h.client_peer(), buf, sizeof buf, 0);
        if (r > 0) at_client.append(buf, static_cast<size_t>(r));
        return at_client.size() >= 4;
    }));
    CHECK(at_client == "pong");

    // The backend finishes too: the relay ends, ok, and the client sees a clean EOF.
    REQUIRE(::shutdown(h.backend_peer(), SHUT_WR) == 0);
    REQUIRE(h.pump([&] { return h.ended(); }));
    CHECK(h.outcome() == Outcome::Ok);
    CHECK(h.wait_end(h.client_peer()) == 0);
}

namespace {

// The relay ends with a reset by `side`, and the other peer, `other_peer`, reads ECONNRESET.
void check_reset_travels(RelayHarness& h, Side side, const char* why, int other_peer) {
    REQUIRE(h.pump([&] { return h.ended(); }));
    CHECK(h.outcome() == Outcome::Reset);
    CHECK(h.side() == side);
    CHECK(h.why() == why);
    CHECK(h.wait_end(other_peer) == -ECONNRESET);
}

}  // namespace

TEST_CASE("a client's reset reaches the backend as a reset") {
    RelayHarness h;
    // Some traffic first, so that the reset meets an established relay.
    REQUIRE(::send(h.client_peer(), "x", 1, MSG_NOSIGNAL) == 1);
    char c;
    REQUIRE(h.pump([&] { return ::recv(h.backend_peer(), &c, 1, 0) == 1; }));
    h.reset_client_peer();
    check_reset_travels(h, Side::Client, "client reset", h.backend_peer());
}

TEST_CASE("a backend's reset reaches the client as a reset, also after the client's FIN") {
    RelayHarness h;
    REQUIRE(::shutdown(h.client_peer(), SHUT_WR) == 0);
    REQUIRE(h.pump([&] { return h.relay().up().shut; }));
    h.reset_backend_peer();
    check_reset_travels(h, Side::Backend, "backend reset", h.client_peer());
}

}  // TEST_SUITE("relay")

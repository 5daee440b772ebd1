// The control socket on a real loop: the line protocol's words, the server and the blocking
// client end to end, the idle deadline (a renewal in progress is not idle), the connection
// cap, and a close() that leaves no handle behind.
#include <doctest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "acme/control_socket.hpp"
#include "acme_loop_util.hpp"
#include "acme_test_util.hpp"

using sniroute::acme::ControlCall;
using sniroute::acme::ControlConn;
using sniroute::acme::ControlServer;

namespace {

using Clock = std::chrono::steady_clock;

// A loop with a server on `storage`; run() drives it until `until` is true, then closes the
// server and checks that nothing was left open.
struct Harness {
    uv_loop_t loop{};
    ControlServer server;
    std::vector<std::string> lines;
    std::vector<ControlConn*> held;  // requests not answered yet (a renewal in progress)

    Harness(const std::string& storage, ControlServer::Limits limits, bool answer_at_once)
        : server((uv_loop_init(&loop), &loop),
                 [this, answer_at_once](ControlConn* conn, const std::string& line) {
                     lines.push_back(line);
                     if (answer_at_once)
                         server.reply(conn, "ok " + line);
                     else
                         held.push_back(conn);
                 },
                 limits) {
        server.listen(storage);
        REQUIRE(server.listening());
    }

    void run(std::function<bool()> until) {
        bool closed = false;
        acme_test::poll_on_loop(&loop, [&] {
            if (!until()) return false;
            server.close([&] { closed = true; });
            return true;
        });
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK(closed);
        CHECK_FALSE(server.is_open());
        CHECK(uv_loop_close(&loop) == 0);
    }
};

}  // namespace

TEST_SUITE("acme.control_socket") {

TEST_CASE("the line protocol, written once for both ends") {
    CHECK(sniroute::acme::control_socket_path("/var/lib/sniroute") == "/var/lib/sniroute/control.sock");
    CHECK(sniroute::acme::renew_request("mail") == "renew mail");
    CHECK(sniroute::acme::parse_renew_request("renew mail") == std::string("mail"));
    CHECK(sniroute::acme::parse_renew_request("renew ") == std::string(""));
    CHECK_FALSE(sniroute::acme::parse_renew_request("renew").has_value());
    CHECK_FALSE(sniroute::acme::parse_renew_request("status").has_value());
    CHECK(sniroute::acme::error_answer("unknown command") == "error unknown command");
    CHECK(sniroute::acme::kOkAnswer == "ok");
}

TEST_CASE("control_call: a request and its answer; unreachable and too long paths") {
    acme_test::TempDir dir;
    Harness h(dir.path(), {}, true);
    std::atomic<bool> done{false};
    ControlCall answered, missing, too_long;
    std::thread client([&] {
        answered = sniroute::acme::control_call(dir.path(), "renew mail", 10'000);
        missing = sniroute::acme::control_call(dir / "nowhere", "renew mail", 10'000);
        too_long = sniroute::acme::control_call(std::string(200, 'x'), "renew mail", 10'000);
        done = true;
    });
    h.run([&] { return done.load(); });
    client.join();

    CHECK(answered.status == ControlCall::Status::Answered);
    CHECK(answered.answer == "ok renew mail");
    CHECK(answered.path == dir / "control.sock");
    CHECK(h.lines == std::vector<std::string>{"renew mail"});
    CHECK(missing.status == ControlCall::Status::Unreachable);
    CHECK_FALSE(missing.error.empty());
    CHECK(too_long.status == ControlCall::Status::PathTooLong);
}

TEST_CASE("ControlServer: a connection without a whole line is closed at the idle deadline") {
    acme_test::TempDir dir;
    ControlServer::Limits limits;
    limits.idle_ms = 200;
    Harness h(dir.path(), limits, true);
    std::atomic<bool> done{false};
    std::string silent, partial;
    double silent_s = 0;
    std::thread client([&] {
        int a = acme_test::connect_unix(dir / "control.sock");
        int b = acme_test::connect_unix(dir / "control.sock");
        auto start = Clock::now();
        (void)!::write(b, "renew ma", 8);  // no newline: still idle
        silent = acme_test::read_all(a);
        silent_s = std::chrono::duration<double>(Clock::now() - start).count();
        partial = acme_test::read_all(b);
        ::close(a);
        ::close(b);
        done = true;
    });
    h.run([&] { return done.load(); });
    client.join();

    CHECK(silent == "");  // closed without an answer
    CHECK(partial == "");
    CHECK(silent_s >= 0.15);
    CHECK(silent_s < 5);
    CHECK(h.lines.empty());
}

TEST_CASE("ControlServer: a request being worked on is not idle") {
    acme_test::TempDir dir;
    ControlServer::Limits limits;
    limits.idle_ms = 100;
    Harness h(dir.path(), limits, false);
    std::atomic<bool> done{false};
    std::string answer;
    std::thread client([&] {
        int fd = acme_test::connect_unix(dir / "control.sock");
        (void)!::write(fd, "renew mail\n", 11);
        answer = acme_test::read_all(fd);
        ::close(fd);
        done = true;
    });
    // The "renewal" takes five idle deadlines; then it is answered.
    int ticks = 0;
    acme_test::poll_on_loop(&h.loop, [&] {
        if (h.held.empty() || ++ticks < 50) return false;
        h.server.reply(h.held.front(), "ok");
        return true;
    });
    h.run([&] { return done.load(); });
    client.join();
    CHECK(answer == "ok\n");
}

TEST_CASE("ControlServer: beyond the cap, connections are accepted and closed at once") {
    acme_test::TempDir dir;
    ControlServer::Limits limits;
    limits.max_connections = 2;
    Harness h(dir.path(), limits, true);
    std::atomic<size_t> open_now{0};
    std::atomic<bool> done{false};
    std::string third, first, long_line;
    std::thread client([&] {
        int a = acme_test::connect_unix(dir / "control.sock");
        int b = acme_test::connect_unix(dir / "control.sock");
        for (int i = 0; i < 500 && open_now < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        int c = acme_test::connect_unix(dir / "control.sock");
        third = acme_test::read_all(c);  // EOF at once, long before the 30 s idle deadline
        ::close(c);
        // The two within the cap still work; an overlong line gets its error.
        (void)!::write(a, "renew mail\n", 11);
        first = acme_test::read_all(a);
        std::string big(300, 'x');
        (void)!::write(b, big.data(), big.size());
        long_line = acme_test::read_all(b);
        ::close(a);
        ::close(b);
        done = true;
    });
    h.run([&] {
        open_now = h.server.connections();
        return done.load();
    });
    client.join();
    CHECK(third == "");
    CHECK(first == "ok renew mail\n");
    CHECK(long_line == "error line too long\n");
}

TEST_CASE("ControlServer: close() with connections open, and with nothing open") {
    acme_test::TempDir dir;
    Harness h(dir.path(), {}, false);
    std::atomic<bool> sent{false};
    std::string idle, waiting;
    std::thread client([&] {
        int a = acme_test::connect_unix(dir / "control.sock");
        int b = acme_test::connect_unix(dir / "control.sock");
        (void)!::write(b, "renew mail\n", 11);
        sent = true;
        idle = acme_test::read_all(a);
        waiting = acme_test::read_all(b);
        ::close(a);
        ::close(b);
    });
    h.run([&] { return sent && h.held.size() == 1 && h.server.connections() == 2; });
    client.join();
    CHECK(idle == "");
    CHECK(waiting == "");

    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    {
        ControlServer never(&loop, [](ControlConn*, const std::string&) {});
        bool closed = false;
        never.close([&] { closed = true; });
        CHECK(closed);  // nothing was open: at once
    }
    CHECK(uv_loop_close(&loop) == 0);
}

}  // TEST_SUITE("acme.control_socket")

// Deploy commands through /bin/sh: exit status, stdout and stderr in one stream, the added
// environment, the output cap, timeouts that kill a whole pipeline, cancellation, and a
// background process that keeps the output pipe open.
#include <doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "acme/deploy.hpp"
#include "acme_loop_util.hpp"

using sniroute::acme::Canceller;
using sniroute::acme::CommandResult;
using sniroute::acme::RunCommand;
using sniroute::acme::Task;
using Clock = std::chrono::steady_clock;

namespace {

struct Run {
    CommandResult result;
    Clock::duration took{};
};

Task<void> run_cmd(uv_loop_t* loop, std::string cmd, std::vector<std::string> env, uint64_t timeout_ms, Canceller* c,
                   Run* out) {
    auto start = Clock::now();
    out->result = co_await RunCommand(loop, std::move(cmd), std::move(env), timeout_ms, c);
    out->took = Clock::now() - start;
}

Run run(const std::string& cmd, uint64_t timeout_ms = 10'000, std::vector<std::string> env = {}) {
    Run r;
    auto err = acme_test::run_task([&](uv_loop_t* l) { return run_cmd(l, cmd, env, timeout_ms, nullptr, &r); });
    CHECK_FALSE(err);
    return r;
}

}  // namespace

TEST_SUITE("acme.deploy") {

TEST_CASE("exit status, and stdout and stderr interleaved in one output") {
    Run r = run("echo out; echo err >&2; echo more; exit 3");
    CHECK(r.result.started);
    CHECK(r.result.exit_status == 3);
    CHECK(r.result.term_signal == 0);
    CHECK_FALSE(r.result.timed_out);
    CHECK_FALSE(r.result.ok());
    CHECK(r.result.output == "out\nerr\nmore\n");

    r = run("true");
    CHECK(r.result.ok());
    CHECK(r.result.output.empty());

    r = run("/nonexistent/reload-it");  // the shell starts; the command does not
    CHECK(r.result.started);
    CHECK(r.result.exit_status == 127);
    CHECK(r.result.output.find("/nonexistent/reload-it") != std::string::npos);
}

TEST_CASE("the SNIROUTE_ variables are added to the inherited environment") {
    Run r = run("printf '%s|%s' \"$SNIROUTE_CERT_NAME\" \"$SNIROUTE_DOMAINS\"; test -n \"$PATH\"", 10'000,
                {"SNIROUTE_CERT_NAME=mail", "SNIROUTE_DOMAINS=mail.example.com smtp.example.com"});
    CHECK(r.result.ok());
    CHECK(r.result.output == "mail|mail.example.com smtp.example.com");
}

TEST_CASE("output beyond the cap is dropped, and the command still ends normally") {
    Run r = run("head -c 100000 /dev/zero | tr '\\0' x");
    CHECK(r.result.ok());
    CHECK(r.result.output.size() == RunCommand::kMaxOutput);
    CHECK(r.result.output == std::string(RunCommand::kMaxOutput, 'x'));
}

TEST_CASE("a timeout kills the whole process group") {
    // Both sides of the pipeline must die, or the pipe would stay open for ten seconds.
    Run r = run("echo started; sleep 10 | sleep 10", 200);
    CHECK(r.result.started);
    CHECK(r.result.timed_out);
    CHECK(r.result.term_signal == 9);
    CHECK_FALSE(r.result.ok());
    CHECK(r.result.output == "started\n");
    CHECK(r.took >= std::chrono::milliseconds(190));
    CHECK(r.took < std::chrono::seconds(3));
}

TEST_CASE("a background process holding the output does not hold the deploy") {
    Run r = run("echo done; sleep 3 &");
    CHECK(r.result.ok());
    CHECK(r.result.output == "done\n");
    CHECK(r.took < std::chrono::milliseconds(2500));  // about one second of grace
}

TEST_CASE("cancellation kills a running command and is not a timeout") {
    Canceller c;
    Run r;
    auto err = acme_test::run_task([&](uv_loop_t* l) {
        acme_test::after(l, 50, [&] { c.cancel(); });
        return run_cmd(l, "sleep 10", {}, 60'000, &c, &r);
    });
    CHECK_FALSE(err);
    CHECK(r.result.started);
    CHECK_FALSE(r.result.timed_out);
    CHECK(r.result.term_signal == 9);
    CHECK(r.took < std::chrono::seconds(3));

    // Already cancelled: the command is killed at once.
    r = Run{};
    err = acme_test::run_task([&](uv_loop_t* l) { return run_cmd(l, "sleep 10", {}, 60'000, &c, &r); });
    CHECK_FALSE(err);
    CHECK(r.result.term_signal == 9);
    CHECK(r.took < std::chrono::seconds(3));
}

}  // TEST_SUITE("acme.deploy")

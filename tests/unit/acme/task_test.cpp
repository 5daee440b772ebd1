// The coroutine Task: values and exceptions travel to the awaiter, laziness, symmetric transfer
// (no stack growth over long synchronous chains), Sleep on the loop, and Canceller.
#include <doctest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "acme/task.hpp"
#include "acme_loop_util.hpp"

using sniroute::acme::Canceller;
using sniroute::acme::Sleep;
using sniroute::acme::start_detached;
using sniroute::acme::Task;
using Clock = std::chrono::steady_clock;

namespace {

Task<int> add(int a, int b) { co_return a + b; }

Task<std::unique_ptr<std::string>> move_only(std::string s) { co_return std::make_unique<std::string>(std::move(s)); }

Task<int> fails(std::string why) {
    throw std::runtime_error(why);
    co_return 0;
}

Task<void> chain(int* out) {
    int a = co_await add(2, 3);
    int b = co_await add(a, 10);
    auto p = co_await move_only("moved");
    *out = b + static_cast<int>(p->size());
}

Task<void> catches(std::string* out) {
    try {
        co_await fails("boom");
    } catch (const std::runtime_error& e) {
        *out = e.what();
    }
}

Task<void> rethrows() { co_await fails("escaped"); }

Task<int> one() { co_return 1; }

// Each await completes synchronously; without symmetric transfer this would overflow the stack.
Task<void> long_chain(int n, long* sum) {
    for (int i = 0; i < n; ++i) *sum += co_await one();
}

Task<void> sleeps(uv_loop_t* loop, uint64_t ms, Canceller* c, Clock::duration* took) {
    auto start = Clock::now();
    co_await Sleep(loop, ms, c);
    *took = Clock::now() - start;
}

Task<void> marks(bool* ran) {
    *ran = true;
    co_return;
}

}  // namespace

TEST_SUITE("acme.task") {

TEST_CASE("values and move-only values reach the awaiter") {
    int out = 0;
    auto err = acme_test::run_task([&](uv_loop_t*) { return chain(&out); });
    CHECK_FALSE(err);
    CHECK(out == 15 + 5);
}

TEST_CASE("an exception reaches the awaiter, and start_detached's callback when not caught") {
    std::string what;
    CHECK_FALSE(acme_test::run_task([&](uv_loop_t*) { return catches(&what); }));
    CHECK(what == "boom");

    auto err = acme_test::run_task([](uv_loop_t*) { return rethrows(); });
    REQUIRE(err);
    CHECK_THROWS_WITH_AS(std::rethrow_exception(err), "escaped", std::runtime_error);
}

TEST_CASE("tasks are lazy: nothing runs until awaited or started, and an unstarted task is freed") {
    bool ran = false;
    {
        Task<void> t = marks(&ran);
        CHECK_FALSE(ran);
    }  // destroyed without running: the frame is freed (ASan would report a leak otherwise)
    CHECK_FALSE(ran);
    start_detached(marks(&ran), [](std::exception_ptr) {});
    CHECK(ran);  // no suspension point: it ran to the end inside start_detached
}

TEST_CASE("a long chain of synchronous awaits does not grow the stack") {
    // g++ turns the symmetric transfer into a tail call only when optimising; a debug build
    // (the ASan one) grows the stack per await, so there the chain is only checked for sums.
#ifdef __OPTIMIZE__
    constexpr int kAwaits = 1'000'000;
#else
    constexpr int kAwaits = 1'000;
#endif
    long sum = 0;
    CHECK_FALSE(acme_test::run_task([&](uv_loop_t*) { return long_chain(kAwaits, &sum); }));
    CHECK(sum == kAwaits);
}

TEST_CASE("Sleep waits on the loop; zero and an already cancelled canceller do not wait") {
    Clock::duration took{};
    CHECK_FALSE(acme_test::run_task([&](uv_loop_t* l) { return sleeps(l, 50, nullptr, &took); }));
    CHECK(took >= std::chrono::milliseconds(45));
    CHECK(took < std::chrono::seconds(2));

    CHECK_FALSE(acme_test::run_task([&](uv_loop_t* l) { return sleeps(l, 0, nullptr, &took); }));
    CHECK(took < std::chrono::milliseconds(20));

    Canceller c;
    c.cancel();
    CHECK_FALSE(acme_test::run_task([&](uv_loop_t* l) { return sleeps(l, 60'000, &c, &took); }));
    CHECK(took < std::chrono::milliseconds(20));
}

TEST_CASE("Canceller ends a pending Sleep at once, and reset re-arms it") {
    Canceller c;
    Clock::duration took{};
    CHECK_FALSE(acme_test::run_task([&](uv_loop_t* l) {
        acme_test::after(l, 30, [&] { c.cancel(); });
        return sleeps(l, 60'000, &c, &took);
    }));
    CHECK(c.cancelled());
    CHECK(took >= std::chrono::milliseconds(25));
    CHECK(took < std::chrono::seconds(2));

    c.reset();
    CHECK_FALSE(c.cancelled());
    // A cancel after the sleep ended finds no hook: the finished sleep is not touched again.
    CHECK_FALSE(acme_test::run_task([&](uv_loop_t* l) {
        acme_test::after(l, 80, [&] { c.cancel(); });
        return sleeps(l, 20, &c, &took);
    }));
    CHECK(took < std::chrono::milliseconds(75));
}

}  // TEST_SUITE("acme.task")

// Runs one ACME coroutine to completion on a fresh libuv loop, and checks that it left no handle
// behind: uv_loop_close() fails with UV_EBUSY while any handle is open (libuv test/task.h).
#pragma once

#include <doctest.h>
#include <uv.h>

#include <exception>
#include <functional>

#include "acme/task.hpp"

namespace acme_test {

// Timer that calls fn once after ms, then closes itself: for cancelling from "outside".
inline void after(uv_loop_t* loop, uint64_t ms, std::function<void()> fn) {
    struct T {
        uv_timer_t t{};
        std::function<void()> fn;
    };
    auto* t = new T{{}, std::move(fn)};
    uv_timer_init(loop, &t->t);
    t->t.data = t;
    uv_timer_start(
        &t->t,
        [](uv_timer_t* h) noexcept {
            auto* t = static_cast<T*>(h->data);
            t->fn();
            uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* h) noexcept { delete static_cast<T*>(h->data); });
        },
        ms, 0);
}

// `make` builds the task given the loop; returns the exception the task ended with, if any.
inline std::exception_ptr run_task(const std::function<sniroute::acme::Task<void>(uv_loop_t*)>& make) {
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    bool done = false;
    std::exception_ptr err;
    sniroute::acme::start_detached(make(&loop), [&](std::exception_ptr e) {
        done = true;
        err = e;
    });
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(done);
    CHECK(uv_loop_close(&loop) == 0);
    return err;
}

}  // namespace acme_test

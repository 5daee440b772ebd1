// Runs one ACME coroutine to completion on a fresh libuv loop, and checks that it left no handle
// behind: uv_loop_close() fails with UV_EBUSY while any handle is open (libuv test/task.h).
#pragma once

#include <doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cstring>
#include <exception>
#include <functional>
#include <string>

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
            uv_close(reinterpret_cast<uv_handle_t*>(h),
                     [](uv_handle_t* h) noexcept { delete static_cast<T*>(h->data); });
        },
        ms, 0);
}

// Calls `fn` on the loop every 10 ms until it returns true, then closes its timer.
inline void poll_on_loop(uv_loop_t* loop, std::function<bool()> fn) {
    struct P {
        uv_timer_t t{};
        std::function<bool()> fn;
    };
    auto* p = new P{{}, std::move(fn)};
    uv_timer_init(loop, &p->t);
    p->t.data = p;
    uv_timer_start(
        &p->t,
        [](uv_timer_t* t) noexcept {
            auto* p = static_cast<P*>(t->data);
            if (!p->fn()) return;
            uv_close(reinterpret_cast<uv_handle_t*>(t),
                     [](uv_handle_t* h) noexcept { delete static_cast<P*>(h->data); });
        },
        10, 10);
}

// A blocking client connection to a unix socket, or -1: for driving the control socket from a
// thread while the loop runs in the test's.
inline int connect_unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Everything the peer sends until EOF, waiting at most 10 s.
inline std::string read_all(int fd) {
    std::string out;
    char buf[256];
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 10'000) == 1) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
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

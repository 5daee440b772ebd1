// A minimal C++20 coroutine task for the ACME client, so that an RFC 8555 exchange (directory,
// nonce, account, order, authorizations, finalize, download) reads top to bottom instead of as
// a chain of libuv callbacks.
//
// Rules that keep it safe under libuv:
// - Tasks are lazy: nothing runs until awaited or start()ed.
// - An exception thrown in a task is stored in its promise and rethrown to the awaiter; it never
//   leaves coroutine_handle::resume(), so resuming from a libuv callback cannot throw through C.
// - Leaf awaitables (HTTP fetch, sleep) resume their coroutine from a libuv callback only after
//   they are done with their own handles.
#pragma once

#include <uv.h>

#include <coroutine>
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace sniroute::acme {

namespace detail {

struct PromiseBase {
    std::coroutine_handle<> continuation;
    std::exception_ptr error;

    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
        bool await_ready() noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
            auto c = h.promise().continuation;
            return c ? c : std::noop_coroutine();
        }
        void await_resume() noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { error = std::current_exception(); }
};

// A promise holds the task's value, or declares return_void for Task<void>: it may declare
// only one of the two.
template <class T>
struct ResultPromise : PromiseBase {
    std::optional<T> value;
    template <class U>
    void return_value(U&& v) {
        value.emplace(std::forward<U>(v));
    }
};

template <>
struct ResultPromise<void> : PromiseBase {
    void return_void() {}
};

}  // namespace detail

template <class T>
class Task {
public:
    struct promise_type : detail::ResultPromise<T> {
        Task get_return_object() { return Task(std::coroutine_handle<promise_type>::from_promise(*this)); }
    };

    Task(Task&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Task& operator=(Task&&) = delete;
    ~Task() {
        if (h_) h_.destroy();
    }

    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
        h_.promise().continuation = awaiting;
        return h_;
    }
    T await_resume() {
        if (h_.promise().error) std::rethrow_exception(h_.promise().error);
        if constexpr (!std::is_void_v<T>) return std::move(*h_.promise().value);
    }

private:
    explicit Task(std::coroutine_handle<promise_type> h) : h_(h) {}
    std::coroutine_handle<promise_type> h_;
};

// Runs a task to completion without an awaiter; `done` gets the exception (or null) when it
// ends. The driver frees itself afterwards.
void start_detached(Task<void> task, std::function<void(std::exception_ptr)> done);

// Lets the owner of running tasks end them early (shutdown): the pending leaf operation
// completes at once, and the task sees cancelled() and unwinds.
class Canceller {
public:
    bool cancelled() const { return cancelled_; }
    void cancel() {
        cancelled_ = true;
        if (hook_) std::exchange(hook_, nullptr)();
    }
    // A leaf operation registers how to finish early while it is pending.
    void set_hook(std::function<void()> hook) { hook_ = std::move(hook); }
    void clear_hook() { hook_ = nullptr; }
    // Re-arms a canceller used as a wake-up signal.
    void reset() {
        cancelled_ = false;
        hook_ = nullptr;
    }

private:
    bool cancelled_ = false;
    std::function<void()> hook_;
};

// Suspends the awaiting coroutine for `ms` on `loop`, or until cancelled.
class Sleep {
public:
    Sleep(uv_loop_t* loop, uint64_t ms, Canceller* cancel = nullptr) : loop_(loop), ms_(ms), cancel_(cancel) {}
    bool await_ready() const noexcept { return ms_ == 0 || (cancel_ && cancel_->cancelled()); }
    void await_suspend(std::coroutine_handle<> h);
    void await_resume() noexcept {}

private:
    uv_loop_t* loop_;
    uint64_t ms_;
    Canceller* cancel_;
};

// Runs `fn` on libuv's thread pool and resumes on the loop: for blocking work such as the TLS
// probes. `fn` must not throw (a pool thread has no one to throw to; what it throws is dropped),
// and reports its failures in what it writes.
class InPool {
public:
    InPool(uv_loop_t* loop, std::function<void()> fn) : loop_(loop), fn_(std::move(fn)) {}

    bool await_ready() const noexcept { return false; }
    // Returns false (do not suspend) when the pool refuses the work: it has then run inline,
    // and the coroutine goes on without being resumed from inside its own await_suspend.
    bool await_suspend(std::coroutine_handle<> co) noexcept;
    void await_resume() noexcept {}

private:
    void run_fn() noexcept;

    uv_loop_t* loop_;
    std::function<void()> fn_;
    uv_work_t req_{};
    std::coroutine_handle<> h_;
};

}  // namespace sniroute::acme

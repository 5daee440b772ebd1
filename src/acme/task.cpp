#include "acme/task.hpp"

namespace sniroute::acme {

namespace {

// The coroutine that owns a detached task: it awaits the task, reports, and then its frame is
// destroyed by itself (final_suspend never suspends).
struct Detached {
    struct promise_type {
        Detached get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        // The body below catches everything; this is only reached on a bug.
        void unhandled_exception() noexcept { std::terminate(); }
    };
};

Detached drive(Task<void> task, std::function<void(std::exception_ptr)> done) {
    std::exception_ptr err;
    try {
        co_await task;
    } catch (...) {
        err = std::current_exception();
    }
    try {
        done(err);
    } catch (...) {
        // A completion handler must not throw; there is no one left to tell.
    }
}

struct Timer {
    uv_timer_t t{};
    std::coroutine_handle<> h;
    Canceller* cancel = nullptr;
};

// Close first, resume from the close callback: the coroutine may finish and tear the loop
// down, and our handle must be gone by then.
void finish(Timer* timer) {
    if (timer->cancel) timer->cancel->clear_hook();
    uv_timer_stop(&timer->t);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer->t), [](uv_handle_t* h) noexcept {
        auto* timer = static_cast<Timer*>(h->data);
        auto co = timer->h;
        delete timer;
        co.resume();
    });
}

}  // namespace

void start_detached(Task<void> task, std::function<void(std::exception_ptr)> done) {
    drive(std::move(task), std::move(done));
}

void Sleep::await_suspend(std::coroutine_handle<> h) {
    auto* timer = new Timer;
    timer->h = h;
    timer->cancel = cancel_;
    uv_timer_init(loop_, &timer->t);
    timer->t.data = timer;
    // Timers count from the loop's cached time, taken when this iteration began: work since
    // then (the fsyncs of the pending pair before `settle`) would shorten the sleep by as much.
    uv_update_time(loop_);
    uv_timer_start(
        &timer->t, [](uv_timer_t* t) noexcept { finish(static_cast<Timer*>(t->data)); }, ms_, 0);
    if (cancel_) cancel_->set_hook([timer] { finish(timer); });
}

bool InPool::await_suspend(std::coroutine_handle<> co) noexcept {
    h_ = co;
    req_.data = this;
    int r = uv_queue_work(
        loop_, &req_, [](uv_work_t* w) noexcept { static_cast<InPool*>(w->data)->run_fn(); },
        [](uv_work_t* w, int) noexcept { static_cast<InPool*>(w->data)->h_.resume(); });
    if (r == 0) return true;
    run_fn();
    return false;
}

void InPool::run_fn() noexcept {
    try {
        fn_();
    } catch (...) {}
}

}  // namespace sniroute::acme

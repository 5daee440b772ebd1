#include "acme/deploy.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/fd.hpp"

extern char** environ;

namespace sniroute::acme {

namespace {

// One child process with its output pipe and a timeout timer. Deleted after every handle it
// initialised has closed; only then is the coroutine resumed.
struct Child {
    uv_process_t proc{};
    uv_pipe_t out{};
    uv_timer_t timer{};
    std::shared_ptr<CommandResult> result;
    std::coroutine_handle<> co;
    Canceller* cancel = nullptr;
    int open = 0;
    bool proc_init = false;  // uv_spawn was called: it initialises the handle even when it fails
    bool exited = false;
    bool out_eof = false;
    char buf[4096];

    void close_all() {
        if (cancel) cancel->clear_hook();
        auto cb = [](uv_handle_t* h) noexcept {
            auto* c = static_cast<Child*>(h->data);
            if (--c->open == 0) {
                auto co = c->co;
                delete c;
                co.resume();
            }
        };
        for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&proc), reinterpret_cast<uv_handle_t*>(&out),
                               reinterpret_cast<uv_handle_t*>(&timer)}) {
            if (h == reinterpret_cast<uv_handle_t*>(&proc) && !proc_init) continue;
            if (!uv_is_closing(h)) uv_close(h, cb);
        }
    }
    void maybe_done() {
        if (exited && out_eof) close_all();
    }
    void kill_it(bool timeout) {
        // Once reaped, the pid (and so the group id) may belong to someone else.
        if (exited || proc.pid <= 0) return;
        result->timed_out = timeout;
        // The command runs in its own process group, so a shell pipeline dies as a whole.
        ::kill(-proc.pid, SIGKILL);
    }
};

}  // namespace

void RunCommand::await_suspend(std::coroutine_handle<> h) {
    result_ = std::make_shared<CommandResult>();
    auto* c = new Child;
    c->result = result_;
    c->co = h;
    c->cancel = cancel_;
    c->proc.data = c->out.data = c->timer.data = c;

    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
    for (auto& e : env_) env.push_back(e);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string sh = "/bin/sh", dash_c = "-c";
    char* args[] = {sh.data(), dash_c.data(), command_.data(), nullptr};

    uv_pipe_init(loop_, &c->out, 0);
    uv_timer_init(loop_, &c->timer);
    c->open = 2;
    // stdout and stderr share one pipe, interleaved as on a terminal. UV_CREATE_PIPE cannot
    // give one pipe to two descriptors (UV_INHERIT_STREAM of a pipe libuv has not opened yet
    // fails with EINVAL), so the pipe is made here and the child inherits its write end.
    // uv_pipe makes both ends close-on-exec: no other child inherits them.
    uv_file fds[2] = {-1, -1};
    int r = uv_pipe(fds, 0, 0);
    // The read end belongs to c->out once uv_pipe_open has taken it.
    core::Fd read_end(fds[0]), write_end(fds[1]);
    if (r == 0 && (r = uv_pipe_open(&c->out, fds[0])) == 0) read_end.release();
    if (r != 0) {
        c->result->output = std::string("cannot create a pipe: ") + uv_strerror(r);
        c->close_all();  // resumes from the close callbacks, never from here
        return;
    }
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = fds[1];
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = fds[1];
    uv_process_options_t opts{};
    opts.file = "/bin/sh";
    opts.args = args;
    opts.env = envp.data();
    opts.stdio = stdio;
    opts.stdio_count = 3;
    opts.flags = UV_PROCESS_DETACHED;  // own process group, so a timeout can kill the whole group
    opts.exit_cb = [](uv_process_t* p, int64_t status, int sig) noexcept {
        auto* c = static_cast<Child*>(p->data);
        c->result->exit_status = status;
        c->result->term_signal = sig;
        c->exited = true;
        // A command that leaves a background process holding our pipe must not hold us:
        // wait briefly for the rest of its output, then stop reading.
        if (!c->out_eof)
            uv_timer_start(
                &c->timer, [](uv_timer_t* t) noexcept { static_cast<Child*>(t->data)->close_all(); }, 1000, 0);
        c->maybe_done();
    };
    r = uv_spawn(loop_, &c->proc, &opts);
    c->proc_init = true;
    ++c->open;
    // The child has its own copy now; ours would keep the pipe from ever reaching EOF.
    write_end.close();
    if (r != 0) {
        c->result->output = std::string("cannot start /bin/sh: ") + uv_strerror(r);
        c->close_all();
        return;
    }
    c->result->started = true;
    r = uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->out),
        [](uv_handle_t* h, size_t, uv_buf_t* b) noexcept {
            auto* c = static_cast<Child*>(h->data);
            *b = uv_buf_init(c->buf, sizeof c->buf);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) noexcept {
            auto* c = static_cast<Child*>(s->data);
            if (n > 0) {
                size_t room = RunCommand::kMaxOutput - std::min(RunCommand::kMaxOutput, c->result->output.size());
                c->result->output.append(b->base, std::min(room, static_cast<size_t>(n)));
            } else if (n < 0) {
                uv_read_stop(s);
                c->out_eof = true;
                c->maybe_done();
            }
        });
    if (r != 0) c->out_eof = true;  // no output then, but still wait for the exit
    uv_timer_start(
        &c->timer, [](uv_timer_t* t) noexcept { static_cast<Child*>(t->data)->kill_it(true); }, timeout_ms_, 0);
    if (!cancel_) return;
    if (cancel_->cancelled()) return c->kill_it(false);
    // Cancelled after the exit, only the output wait is left to cut short.
    cancel_->set_hook([c] {
        if (c->exited)
            c->close_all();
        else
            c->kill_it(false);
    });
}

}  // namespace sniroute::acme

// Running deploy commands ("doveadm reload", "postfix reload") after new files are in place:
// through /bin/sh -c, with a timeout, the environment a certbot deploy hook would get under
// SNIROUTE_ names, and output captured (bounded) for the log.
#pragma once

#include <uv.h>

#include <coroutine>
#include <memory>
#include <string>
#include <vector>

#include "acme/task.hpp"

namespace sniroute::acme {

struct CommandResult {
    bool started = false;
    int64_t exit_status = -1;
    int term_signal = 0;
    bool timed_out = false;
    std::string output;  // stdout and stderr interleaved, at most kMaxOutput bytes
    bool ok() const { return started && !timed_out && term_signal == 0 && exit_status == 0; }
};

class RunCommand {
public:
    static constexpr size_t kMaxOutput = 16 * 1024;
    // `env` entries are "NAME=value", added to sniroute's own environment.
    RunCommand(uv_loop_t* loop, std::string command, std::vector<std::string> env, uint64_t timeout_ms,
               Canceller* cancel = nullptr)
        : loop_(loop), command_(std::move(command)), env_(std::move(env)), timeout_ms_(timeout_ms), cancel_(cancel) {}

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h);
    CommandResult await_resume() { return std::move(*result_); }

private:
    uv_loop_t* loop_;
    std::string command_;
    std::vector<std::string> env_;
    uint64_t timeout_ms_;
    Canceller* cancel_;
    std::shared_ptr<CommandResult> result_;
};

}  // namespace sniroute::acme

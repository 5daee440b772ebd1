#include "proxy/loop_context.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "core/log.hpp"
#include "proxy/session.hpp"

namespace sniroute::proxy {

namespace {

// Empty pipes kept per loop. Each is two descriptors and up to kPipeSize of kernel memory while
// in use (an empty pipe holds no pages), so a small pool is enough to make reuse the norm.
constexpr size_t kIdlePipes = 32;
// A larger pipe than the default 64 KiB moves more per splice(2); 256 KiB stays modest next
// to the socket buffers of the two connections it sits between.
constexpr int kPipeSize = 256 * 1024;

}  // namespace

PipePool::~PipePool() {
    for (auto& p : idle_) {
        ::close(p.r);
        ::close(p.w);
    }
}

bool PipePool::take(KernelPipe& out) {
    if (!idle_.empty()) {
        out = idle_.back();
        idle_.pop_back();
        return true;
    }
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
    int cap = ::fcntl(fds[1], F_SETPIPE_SZ, kPipeSize);
    if (cap <= 0) cap = ::fcntl(fds[1], F_GETPIPE_SZ);
    out = {fds[0], fds[1], cap > 0 ? static_cast<size_t>(cap) : 4096};
    return true;
}

void PipePool::give(KernelPipe& p, bool empty) {
    if (p.r < 0) return;
    if (empty && idle_.size() < kIdlePipes) {
        idle_.push_back(p);
    } else {
        ::close(p.r);
        ::close(p.w);
    }
    p = {};
}

LoopContext::LoopContext(uv_loop_t* loop, std::atomic<uint32_t>& connections, const http::TokenStore& tokens,
                         route::SnapshotPtr snap, WorkerStats& stats, IpStates& ip_states)
    : loop_(loop),
      connections_(connections),
      tokens_(tokens),
      stats_(stats),
      ip_states_(ip_states),
      read_buf_(new char[kReadBufferSize]) {
    set_snapshot(std::move(snap));
}

void LoopContext::set_snapshot(route::SnapshotPtr snap) {
    snap_ = std::move(snap);
    listener_stats_.clear();
    for (const auto& l : snap_->config().listeners) listener_stats_.push_back(&stats_.listener(l.name));
    ip_states_of_.clear();
    for (const auto& l : snap_->config().listeners) ip_states_of_.push_back(&ip_states_.for_listener(l.name));
}

void LoopContext::sweep_ip_states(uint64_t now_ms) {
    const auto& listeners = snap_->config().listeners;
    for (size_t i = 0; i < listeners.size(); ++i) {
        const config::Listener& l = listeners[i];
        IpPolicyState& st = *ip_states_of_[i];
        if (l.ip_limited()) st.table.sweep(l.new_connections_per_ip, now_ms);
        st.refusals.flush(now_ms, [&](const core::IpAddress* a, const RefusalLog::Line& line) {
            core::log_warn("ip_refused")
                .kv("listener", l.name)
                .kv("client", a ? a->to_string() : "others")
                .kv("reason", to_string(line.reason))
                .kv("count", line.count);
        });
    }
}

void LoopContext::attach(Session* s) { sessions_.push_front(s); }

void LoopContext::detach(Session* s) {
    sessions_.remove(s);
    if (sessions_.empty() && on_empty_) on_empty_(on_empty_arg_);
}

void LoopContext::abort_all() {
    sessions_.for_each([](Session* s) { s->abort(); });
}

}  // namespace sniroute::proxy

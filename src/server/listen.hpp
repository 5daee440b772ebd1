// Listening sockets. The control thread binds every one itself, so that an address in use fails
// start-up (or a reload) with a clear message before anything is accepted, and hands each
// worker its own bound socket for every (listener, address) pair.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/address.hpp"

namespace sniroute::server {

// TCP_DEFER_ACCEPT seconds for a listener: proxy::deferred_accept_ms, which says why it is 1 s
// on tls and http listeners and off on tcp ones. Applied at bind time and again on every reload.
int defer_accept_secs(const config::Listener& l, const config::Global& g);

// A bound, listening socket for one (listener, address) pair, made by the control thread and
// handed to one worker, which then owns it.
struct ListenSocket {
    std::string listener;
    core::SocketAddress addr;
    int fd = -1;
};

// One socket per (listener, address, worker). SO_REUSEPORT lets every worker's socket bind the
// same address, and the kernel spreads new connections across them; libuv 1.44 has no flag for
// that, so the socket is made here and handed to uv_tcp_open in the worker. -1 and `err` on
// failure.
int make_listen_socket(const core::SocketAddress& addr, int defer_accept_secs, std::string& err);

// Whether `addr` can be bound without SO_REUSEPORT, i.e. nothing listens there, ours included.
bool address_free(const core::SocketAddress& addr, std::string& err);

// A (listener, address) pair that is bound.
struct BindKey {
    std::string listener;
    core::SocketAddress addr;
};

// Binds the (listener, address) pairs of `cfg` that `have` does not contain, once per worker,
// into out[worker], and adds each pair to `made`. On failure logs which, closes what it made
// and returns false.
bool bind_new(const config::Config& cfg, const std::vector<BindKey>& have, unsigned workers,
              std::vector<std::vector<ListenSocket>>& out, std::vector<BindKey>& made);

}  // namespace sniroute::server

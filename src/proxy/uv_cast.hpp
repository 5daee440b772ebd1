// Casts between libuv's handle types, which are C "subclasses": every uv_tcp_t starts with a
// uv_stream_t, which starts with a uv_handle_t (libuv docs/src/handle.rst). One place for the
// reinterpret_casts, for proxy/ and server/ alike.
#pragma once

#include <uv.h>

namespace sniroute::proxy {

template <typename Handle>
inline uv_handle_t* as_handle(Handle* h) {
    return reinterpret_cast<uv_handle_t*>(h);
}

inline uv_stream_t* as_stream(uv_tcp_t* t) { return reinterpret_cast<uv_stream_t*>(t); }

// The socket of a TCP handle, for the calls we make on it directly (sendmsg, shutdown, splice).
inline int fd_of(uv_tcp_t* t) {
    uv_os_fd_t fd = -1;
    uv_fileno(as_handle(t), &fd);
    return fd;
}

// An errno value as libuv names it, for logs.
inline const char* sys_error(int err) { return uv_strerror(uv_translate_sys_error(err)); }

}  // namespace sniroute::proxy

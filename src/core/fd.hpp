// A file descriptor owned by one scope: closed on exit unless closed or released before.
#pragma once

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <utility>

namespace sniroute::core {

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            if (fd_ >= 0) ::close(fd_);
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    // Closes now and returns close(2)'s result, for callers that must know a write-back failed
    // (close can report a deferred write error on some file systems).
    int close() { return ::close(std::exchange(fd_, -1)); }
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_ = -1;
};

// A duplicate of `fd` with FD_CLOEXEC at the lowest free number (-1 and errno on failure), and
// the one right way to close it.
//
// Why close_dup() and not close(): ThreadSanitizer keeps a table of descriptor numbers and takes
// a close() as a write to the number, racing with the last use of it in another thread unless it
// saw the number closed and made again in between. It does not see fcntl(F_DUPFD_CLOEXEC) make
// one, and Debian's libuv closes its sockets with syscall(SYS_close) (uv__close_nocancel in
// src/unix/core.c), which it does not see either. So a dup that got the number of a socket
// another worker's loop had just closed was reported, at its close(), as racing with that
// socket's last epoll_ctl() or read(): two descriptors, one after the other, as the kernel hands
// numbers out. The same raw system call keeps TSan as blind to the dup's end as it was to its
// start; to the kernel it is close(2), without glibc's cancellation point.
inline int dup_cloexec(int fd) { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }
inline int close_dup(int fd) { return static_cast<int>(::syscall(SYS_close, fd)); }

}  // namespace sniroute::core

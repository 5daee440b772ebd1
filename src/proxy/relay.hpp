// The relay: moves bytes between two connected sockets, both ways, and nothing else.
//
// Backpressure: bytes the receiving socket cannot take at once wait in one buffer per direction
// (or in the kernel pipe of the splice path), and the sending socket is not read until they are
// written. Half-close: a FIN is passed on once everything before it has been written, and the
// other direction keeps flowing. Resets travel on as resets. After kSpliceAfter bytes a
// direction moves to splice(2) (relay_splice.cpp).
//
// The relay does not own the two sockets: its owner (the session) does, closes them, and is
// told through RelayOwner when the relay has ended. The relay owns only what it makes itself:
// the pending writes and the splice path's poll handles.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>

#include "proxy/loop_context.hpp"
#include "proxy/outcome.hpp"

namespace sniroute::proxy {

// The owner's libuv callbacks for the two sockets. Their handle data stays the owner's, so the
// owner's read callbacks hand what they read in the relay phase to Relay::on_read(); the relay
// starts and stops the reads with these. One static table per kind of owner.
struct RelayCallbacks {
    uv_alloc_cb on_alloc;
    uv_read_cb on_client_read;
    uv_read_cb on_backend_read;
};

// Descriptors the splice path holds across the process (pipes and dups, four per spliced
// direction), for an estimate of how close the process is to RLIMIT_NOFILE.
long splice_descriptors_in_use();

class RelayOwner {
public:
    // The relay is over: `side` failed, or (Ok) both directions finished. The owner closes the
    // sockets and calls Relay::close(). A reset has already been arranged to travel on: the
    // other socket sends RST when it is closed.
    virtual void relay_closed(Outcome o, Side side, const char* why) = 0;
    // The relay's own handles, which Relay::close() started closing, are all closed.
    virtual void relay_handles_closed() = 0;
    // Asked when a direction starts to splice, which is rare enough not to keep them in every
    // relay: the loop's pipe pool, and the connection limit that sizes the descriptor budget.
    virtual PipePool& relay_pipes() = 0;
    virtual uint32_t relay_max_connections() const = 0;
    // The owner's socket callbacks (above), asked whenever a read starts (at the start and after
    // backpressure, never per read), so that no relay carries a pointer to them.
    virtual const RelayCallbacks& relay_callbacks() const = 0;

protected:
    ~RelayOwner() = default;
};

class Relay {
public:
    // A direction switches from read+write to splice(2) once it has carried this much, as
    // HAProxy's splice-auto does: short exchanges never pay for the pipe and the extra descriptors.
    static constexpr uint64_t kSpliceAfter = 64 * 1024;

    // Bytes the receiving socket could not take at once, with the libuv request that writes
    // them: one allocation, made only when a peer is slow, freed when the write completes.
    struct PendingWrite {
        uv_write_t req;
        size_t len;
        char* data() { return reinterpret_cast<char*>(this + 1); }
        static PendingWrite* make(size_t len);
        struct Free {
            void operator()(PendingWrite* p) const noexcept;
        };
    };

    // The splice path (relay_splice.cpp). Splice is defined there: a direction holds one from
    // its first attempt on, so that an attempt that failed is not repeated on every read.
    struct Splice;
    struct SpliceFree {
        void operator()(Splice* sp) const noexcept;
    };

    // One direction. Bytes go from `from` to `to`; while the peer cannot take them they wait in
    // `pending` (or in the kernel pipe of `splice`), and `from` is not read until they are written.
    struct Direction {
        uv_tcp_t* from = nullptr;
        uv_tcp_t* to = nullptr;
        std::unique_ptr<PendingWrite, PendingWrite::Free> pending;
        std::unique_ptr<Splice, SpliceFree> splice;
        Side from_side = Side::Client;
        bool eof = false;   // `from` sent FIN
        bool shut = false;  // FIN passed on to `to`
        bool reading = false;
        uint64_t bytes = 0;
        Side to_side() const { return from_side == Side::Client ? Side::Backend : Side::Client; }
    };

    // `client` and `backend` stay the owner's, and so do their callbacks.
    Relay(RelayOwner& owner, uv_tcp_t* client, uv_tcp_t* backend);
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;

    Direction& up() { return up_; }      // client -> backend
    Direction& down() { return down_; }  // backend -> client
    const Direction& up() const { return up_; }
    const Direction& down() const { return down_; }

    // Every stop and start of a read is two epoll_ctl calls under libuv, so the relay stops
    // reading only to apply backpressure and at EOF, never on the common path.
    bool start_reading(Direction& d);
    void stop_reading(Direction& d);

    // Starts relaying both ways. `first` (bytes already read from the client, `counted` of them
    // the client's own) goes to the backend before anything else, in one writev. A FIN the
    // client sent before (up().eof) goes on after it.
    void start(const uv_buf_t* first, unsigned nbufs, uint64_t counted);
    // A read of `n` bytes (or an error) on d.from, from the owner's read callback.
    void on_read(Direction& d, ssize_t n, const uv_buf_t* buf);
    // When a read last moved bytes, for an idle deadline: stamped on every read, so that the
    // owner's timer need not be re-armed per read.
    uint64_t last_activity_ms() const { return last_activity_ms_; }

    // Stops for good and closes the relay's own handles. True: relay_handles_closed() follows
    // once they are closed; false: nothing was open. The poll handles watch dups of the two
    // sockets, so they are closed before the sockets are (libuv takes a descriptor out of epoll
    // when its handle closes, so no event can arrive for a dup once the socket is gone).
    bool close();

private:
    Direction& other(Direction& d) { return &d == &up_ ? down_ : up_; }
    bool send(Direction& d, const uv_buf_t* bufs, unsigned nbufs);
    void eof(Direction& d);
    void from_reset(Direction& d);
    void to_reset(Direction& d);
    void end(Outcome o, Side side, const char* why);

    // The splice path (relay_splice.cpp).
    enum class SpliceWait { Readable, Writable, Nothing };
    void start_splice(Direction& d);
    void splice_pump(Direction& d);
    void splice_wait(Direction& d, SpliceWait w);
    void splice_close(Direction& d);
    void close_poll(uv_poll_t* h);
    static bool splice_holds_bytes(const Direction& d);  // bytes in the pipe not yet written on
    static void on_splice_io(uv_poll_t* h, int status, int events) noexcept;
    static void on_poll_closed(uv_handle_t* h) noexcept;

    static void on_write(uv_write_t* req, int status) noexcept;

    RelayOwner& owner_;
    bool closed_ = false;
    bool owner_waits_ = false;     // relay_handles_closed() is due when closing_handles_ is 0
    uint8_t closing_handles_ = 0;  // at most the four polls of the splice path
    uint64_t last_activity_ms_ = 0;
    Direction up_;
    Direction down_;
};

}  // namespace sniroute::proxy

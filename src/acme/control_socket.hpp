// The local control socket, storage/control.sock (mode 0600), both ends of it.
//
// The line protocol: the client sends one request line and the server answers with one line,
// then closes the connection.
//
//   request   "renew NAME\n"           renew certificate NAME now
//   answer    "ok\n" | "error TEXT\n"  when the renewal (or the refusal) is done
//
// The server runs on the control thread's loop. A connection that has not sent a whole line
// within the idle deadline is closed without an answer; one whose request is being worked on
// (a renewal in progress) is not idle. Beyond the connection cap, new connections are accepted
// and closed at once, so a local process cannot pile up handles.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace sniroute::acme {

std::string control_socket_path(const std::string& storage);

// The protocol's words, written once for both ends.
std::string renew_request(std::string_view name);                       // "renew NAME"
std::optional<std::string> parse_renew_request(std::string_view line);  // NAME
inline constexpr std::string_view kOkAnswer = "ok";
std::string error_answer(std::string_view text);  // "error TEXT"

// One accepted connection; the server owns it, a handler only passes it back to reply().
struct ControlConn;

class ControlServer {
public:
    struct Limits {
        uint64_t idle_ms = 30'000;    // to send a whole request line
        size_t max_connections = 16;  // open at once, idle or waiting for an answer
        size_t max_line = 256;        // a longer request is answered "error line too long"
    };
    // Gets each request line (without its newline); the connection stays open until reply().
    using LineHandler = std::function<void(ControlConn* conn, const std::string& line)>;

    ControlServer(uv_loop_t* loop, LineHandler on_line, Limits limits);
    ControlServer(uv_loop_t* loop, LineHandler on_line) : ControlServer(loop, std::move(on_line), Limits{}) {}
    ~ControlServer();  // asserts that close() has finished
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Binds control_socket_path(storage), replacing a stale socket file, and listens. On failure
    // it logs control_socket_failed and stays closed: the ACME client runs without it.
    void listen(const std::string& storage);
    bool listening() const { return listening_; }
    // Handles still open: the listener and every connection, closing ones included.
    bool is_open() const { return listening_ || !conns_.empty(); }
    size_t connections() const { return conns_.size(); }

    // Writes `text` and a newline and closes the connection. The answer is one short line: a
    // client too slow to take it at once loses it. A closing connection is left alone.
    void reply(ControlConn* conn, const std::string& text);
    // Closes the listener (its socket file goes with it) and every connection; `done` runs on
    // the loop once all are closed, or here and now if nothing is open.
    void close(std::function<void()> done);

private:
    friend struct ControlConn;
    static void on_connection(uv_stream_t* server, int status) noexcept;
    void start_reading(ControlConn* conn);
    void on_data(ControlConn* conn, const char* data, size_t n);
    void close_conn(ControlConn* conn);
    void on_conn_closed(ControlConn* conn);
    void maybe_done();

    uv_loop_t* loop_;
    LineHandler on_line_;
    Limits limits_;
    uv_pipe_t listener_{};
    bool listening_ = false;
    bool closing_ = false;
    std::set<ControlConn*> conns_;
    std::function<void()> done_;
};

// The client end, blocking: `sniroute certs renew`.
struct ControlCall {
    enum class Status { Answered, PathTooLong, Unreachable, SendFailed, NoAnswer };
    Status status = Status::NoAnswer;
    std::string path;    // the socket it used
    std::string answer;  // Answered: the answer line, without its newline
    std::string error;   // Unreachable: why (strerror)
};

// Sends one request line to the server under `storage` and reads its answer until the server
// closes, waiting at most timeout_ms for each read.
ControlCall control_call(const std::string& storage, std::string_view request, int timeout_ms);

}  // namespace sniroute::acme

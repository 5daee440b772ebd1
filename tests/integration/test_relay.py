"""The relay itself: half-close in both directions, large transfers with slow readers (and the
proxy's memory staying bounded while they are slow), and resets travelling as resets."""

import hashlib
import os
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
from harness import ProxyTestCase, addr, free_port, pipe_fds, render_config

MIB = 1 << 20


def set_linger_reset(sock):
    """close() will now send RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class RelayCase(ProxyTestCase):
    """A proxy with a tcp and a tls listener in front of one Python backend."""

    def start(self, handler, global_=None):
        self.backend = self.tcp_server(handler)
        self.tcp_port, self.tls_port = free_port(), free_port()
        g = {"client_hello_timeout": "10s", "idle_timeout": "60s"}
        g.update(global_ or {})
        self.proxy = self.start_proxy(render_config(g, [
            {"name": "tcp", "bind": [addr("127.0.0.1", self.tcp_port)], "protocol": "tcp", "default_backend": "py"},
            {"name": "tls", "bind": [addr("127.0.0.1", self.tls_port)], "protocol": "tls", "default_backend": "py"},
        ], {"py": {"servers": [self.backend.address]}}))
        return self.proxy


class RelayTest(RelayCase):
    # --- half-close -------------------------------------------------------------------------

    def half_close_client_first(self, listener):
        request = harness.pattern_bytes(100_000, 1)
        head = harness.fixture("curl-www.bin") if listener == "tls" else b""
        reply = harness.pattern_bytes(MIB + MIB // 2 + 7, 2)  # more than 1 MiB, odd size

        def backend(sock, rec):
            harness.read_until_eof(sock, rec)  # the client's FIN must arrive
            rec.info["got_eof"] = True
            sock.sendall(reply)

        self.start(backend)
        s = self.connect(self.tcp_port if listener == "tcp" else self.tls_port)
        s.sendall(head + request)
        s.shutdown(socket.SHUT_WR)
        got = harness.read_until_eof(s)
        self.assertEqual(len(got), len(reply))
        self.assertEqual(harness.sha256(got), harness.sha256(reply))
        rec = self.backend.wait_conn(0)
        self.assertTrue(rec.done.wait(harness.IO_TIMEOUT))
        self.assertIsNone(rec.error)
        self.assertEqual(bytes(rec.received), head + request)
        e = self.proxy.wait_conn(listener=listener)
        self.assertEqual(e["outcome"], "ok")
        self.assertEqual((int(e["up"]), int(e["down"])), (len(head + request), len(reply)))

    def test_half_close_by_client_tcp_listener(self):
        self.half_close_client_first("tcp")

    def test_half_close_by_client_tls_listener(self):
        self.half_close_client_first("tls")

    def test_half_close_by_backend_first(self):
        # The backend answers and shuts down its write side first; the client, having seen EOF,
        # still sends the rest of its data, which must reach the backend.
        banner = b"220 ready, talk to me\r\n"
        late = harness.pattern_bytes(300_000, 3)

        def backend(sock, rec):
            sock.sendall(banner)
            sock.shutdown(socket.SHUT_WR)
            harness.read_until_eof(sock, rec)

        self.start(backend)
        s = self.connect(self.tcp_port)
        self.assertEqual(harness.read_until_eof(s), banner)
        s.sendall(late)
        s.shutdown(socket.SHUT_WR)
        rec = self.backend.wait_conn(0)
        self.assertTrue(rec.done.wait(harness.IO_TIMEOUT))
        self.assertIsNone(rec.error)
        self.assertEqual(harness.sha256(rec.received), harness.sha256(late))
        self.assertEqual(self.proxy.wait_conn(listener="tcp")["outcome"], "ok")

    # --- large transfers --------------------------------------------------------------------

    def test_large_transfer_both_directions_with_slow_readers(self):
        size = 20 * MIB
        up_data, down_data = harness.pattern_bytes(size, 10), harness.pattern_bytes(size, 11)
        pause = 2.0  # both readers sit still this long while both writers push

        def slow_read(sock, rec=None):
            """Sits still for `pause`, then reads until EOF in small steps; returns (sha, n)."""
            time.sleep(pause)
            h = hashlib.sha256()
            got = 0
            while True:
                chunk = sock.recv(32768)
                if not chunk:
                    break
                h.update(chunk)
                got += len(chunk)
                if got % (512 * 1024) < 32768:
                    time.sleep(0.01)
            if rec is not None:
                rec.info["sha"], rec.info["n"] = h.hexdigest(), got
            return h.hexdigest(), got

        def backend(sock, rec):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            writer = threading.Thread(target=lambda: (sock.sendall(down_data), sock.shutdown(socket.SHUT_WR)))
            writer.start()
            slow_read(sock, rec)
            writer.join(60)

        proxy = self.start(backend)
        base_rss = harness.rss_kib(proxy.pid)
        peak = [base_rss]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], harness.rss_kib(proxy.pid))
                except OSError:
                    return
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        s = self.connect(self.tls_port, timeout=60)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        hello = harness.fixture("openssl3-mail.bin")
        send_error = []

        def client_writer():
            try:
                s.sendall(hello + up_data)
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                send_error.append(e)

        w = threading.Thread(target=client_writer)
        w.start()
        sha, n = slow_read(s)
        w.join(60)
        stop.set()
        sampler.join(5)
        self.assertFalse(send_error, send_error)
        self.assertEqual((n, sha), (size, harness.sha256(down_data)), "client received corrupted data")
        rec = self.backend.wait_conn(0)
        self.assertTrue(rec.done.wait(60))
        self.assertIsNone(rec.error)
        self.assertEqual(rec.info["n"], len(hello) + size)
        self.assertEqual(rec.info["sha"], harness.sha256(hello + up_data), "backend received corrupted data")
        e = self.proxy.wait_conn(listener="tls")
        self.assertEqual(e["outcome"], "ok")
        self.assertEqual((int(e["up"]), int(e["down"])), (len(hello) + size, size))
        # Backpressure: while both readers were stalled, sniroute must not have buffered the
        # writers' data itself (40 MiB were in flight). Kernel socket buffers do not count in RSS.
        growth_mib = (peak[0] - base_rss) / 1024
        print(f"\n    RSS {base_rss} KiB at start, peak {peak[0]} KiB", file=sys.stderr)
        self.assertLess(growth_mib, 16, f"sniroute RSS grew by {growth_mib:.1f} MiB during a stalled transfer")

    def test_many_small_exchanges_keep_order(self):
        proxy = self.start(harness.echo)
        s = self.connect(self.tcp_port)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(200):
            msg = b"message %d " % i * (1 + i % 7)
            s.sendall(msg)
            self.assertEqual(harness.recv_exactly(s, len(msg)), msg)
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(harness.read_until_eof(s), b"")
        self.assertEqual(proxy.wait_conn(listener="tcp")["outcome"], "ok")

    # --- resets -----------------------------------------------------------------------------

    def test_backend_reset_reaches_client(self):
        hello = harness.fixture("curl-www.bin")

        def backend(sock, rec):
            harness.recv_exactly(sock, len(hello), rec)
            sock.sendall(b"partial answer")
            time.sleep(0.3)
            set_linger_reset(sock)
            sock.close()

        proxy = self.start(backend)
        s = self.connect(self.tls_port)
        s.sendall(hello)
        self.assertEqual(harness.recv_exactly(s, 14), b"partial answer")
        how, data = harness.expect_closed(s)
        self.assertEqual(data, b"")
        self.assertEqual(how, "reset", "the backend's RST should reach the client as ECONNRESET")
        e = proxy.wait_conn(listener="tls")
        self.assertEqual(e["outcome"], "reset")

    def test_client_reset_reaches_backend(self):
        def backend(sock, rec):
            try:
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        rec.info["end"] = "eof"
                        return
                    rec.received += chunk
                    sock.sendall(chunk)
            except ConnectionResetError:
                rec.info["end"] = "reset"

        proxy = self.start(backend)
        s = self.connect(self.tcp_port)
        s.sendall(b"ping")
        self.assertEqual(harness.recv_exactly(s, 4), b"ping")
        set_linger_reset(s)
        s.close()
        rec = self.backend.wait_conn(0)
        self.assertTrue(rec.done.wait(harness.IO_TIMEOUT))
        self.assertIsNone(rec.error)
        self.assertEqual(rec.info.get("end"), "reset", "the client's RST should reach the backend as ECONNRESET")
        self.assertEqual(proxy.wait_conn(listener="tcp")["outcome"], "reset")

    def test_backend_reset_found_by_a_write_reaches_client(self):
        # The backend sends its FIN, so sniroute no longer reads from it, and then resets. The
        # reset surfaces only when the client's next bytes are written to the backend; the
        # client must then see a reset too, not the clean end it already had.
        client_saw_eof = threading.Event()

        def backend(sock, rec):
            sock.sendall(b"220 bye\r\n")
            sock.shutdown(socket.SHUT_WR)
            client_saw_eof.wait(harness.IO_TIMEOUT)
            set_linger_reset(sock)
            sock.close()

        proxy = self.start(backend)
        s = self.connect(self.tcp_port)
        self.assertEqual(harness.read_until_eof(s), b"220 bye\r\n")
        client_saw_eof.set()
        self.backend.wait_conn(0).done.wait(harness.IO_TIMEOUT)
        time.sleep(0.2)  # the RST reaches sniroute's socket
        s.sendall(b"QUIT\r\n")
        time.sleep(0.3)  # sniroute's write to the backend fails; its RST reaches the client
        # Having read EOF, the client learns of the RST from its next send, which must fail at
        # once. (After a clean close the send would succeed and only provoke an RST.)
        with self.assertRaises((ConnectionResetError, BrokenPipeError),
                               msg="the backend's RST should reach the client as a reset"):
            s.send(b"x")
        e = proxy.wait_conn(listener="tcp")
        self.assertEqual((e["outcome"], e.get("error")), ("reset", "backend reset"))

    def test_backend_closing_cleanly_is_ok(self):
        def backend(sock, rec):
            sock.sendall(b"bye")

        proxy = self.start(backend)
        s = self.connect(self.tcp_port)
        how, data = harness.expect_closed(s)
        self.assertEqual((how, data), ("eof", b"bye"))
        s.close()
        self.assertEqual(proxy.wait_conn(listener="tcp")["outcome"], "ok")



class SpliceTest(RelayCase):
    """A direction that has carried 64 KiB moves socket -> kernel pipe -> socket with splice(2).
    These transfers are far past that point, and each test checks that a pipe was in use, so
    they exercise the splice path and not the copying one."""

    SIZE = 4 * MIB

    def start(self, handler, global_=None):
        proxy = super().start(handler, global_)
        self.pipes_at_start = pipe_fds(proxy.pid)
        return proxy

    def assert_spliced(self):
        self.assertGreaterEqual(pipe_fds(self.proxy.pid), self.pipes_at_start + 2,
                                "no splice pipe in sniroute: the transfer was copied")

    def test_small_transfer_is_not_spliced(self):
        # The control for assert_spliced(): below 64 KiB per direction no pipe is made.
        proxy = self.start(harness.echo)
        s = self.connect(self.tcp_port)
        msg = harness.pattern_bytes(60_000, 20)
        s.sendall(msg)
        self.assertEqual(harness.recv_exactly(s, len(msg)), msg)
        self.assertEqual(pipe_fds(proxy.pid), self.pipes_at_start)
        s.close()
        proxy.wait_conn(listener="tcp")

    def test_upload_then_answer_without_fin(self):
        # Request and answer with no FIN in between: the last bytes of the upload must not wait
        # in the pipe for more input that a client waiting for its answer never sends.
        data = harness.pattern_bytes(self.SIZE, 21)

        def backend(sock, rec):
            got = harness.recv_exactly(sock, len(data))
            sock.sendall(harness.sha256(got).encode())
            harness.read_until_eof(sock, rec)

        self.start(backend)
        for _ in range(10):  # the stall this catches depended on where a wake-up's reads ended
            s = self.connect(self.tcp_port)
            s.sendall(data)
            self.assertEqual(harness.recv_exactly(s, 64).decode(), harness.sha256(data), "backend got other bytes")
            self.assert_spliced()
            s.close()
        self.assertEqual(len(self.proxy.wait_count("conn", 10, listener="tcp")), 10)

    def test_download_then_request_without_fin(self):
        data = harness.pattern_bytes(self.SIZE, 22)

        def backend(sock, rec):
            harness.recv_exactly(sock, 4, rec)
            sock.sendall(data)
            harness.recv_exactly(sock, 4, rec)
            sock.sendall(b"done")

        self.start(backend)
        s = self.connect(self.tcp_port)
        s.sendall(b"GET!")
        got = harness.recv_exactly(s, len(data))
        self.assertEqual(harness.sha256(got), harness.sha256(data), "client got other bytes")
        self.assert_spliced()
        s.sendall(b"more")
        self.assertEqual(harness.recv_exactly(s, 4), b"done")
        self.assertEqual(harness.read_until_eof(s), b"")
        s.shutdown(socket.SHUT_WR)  # the backend's FIN came on; the connection ends with ours
        e = self.proxy.wait_conn(listener="tcp")
        self.assertEqual((e["outcome"], int(e["up"]), int(e["down"])), ("ok", 8, len(data) + 4))

    def test_half_close_by_client_after_large_upload(self):
        up, down = harness.pattern_bytes(self.SIZE, 23), harness.pattern_bytes(self.SIZE + 5, 24)

        def backend(sock, rec):
            rec.info["sha"] = harness.sha256(harness.read_until_eof(sock))  # the FIN must arrive
            sock.sendall(down)

        self.start(backend)
        s = self.connect(self.tls_port)
        hello = harness.fixture("curl-www.bin")
        s.sendall(hello + up)
        s.shutdown(socket.SHUT_WR)
        got = harness.read_until_eof(s)
        self.assertEqual((len(got), harness.sha256(got)), (len(down), harness.sha256(down)))
        rec = self.backend.wait_conn(0)
        self.assertTrue(rec.done.wait(harness.IO_TIMEOUT))
        self.assertIsNone(rec.error)
        self.assertEqual(rec.info["sha"], harness.sha256(hello + up))
        self.assert_spliced()
        e = self.proxy.wait_conn(listener="tls")
        self.assertEqual((e["outcome"], int(e["up"]), int(e["down"])), ("ok", len(hello) + len(up), len(down)))

    def test_half_close_by_backend_after_large_download(self):
        down, up = harness.pattern_bytes(self.SIZE, 25), harness.pattern_bytes(self.SIZE + 3, 26)

        def backend(sock, rec):
            sock.sendall(down)
            sock.shutdown(socket.SHUT_WR)
            rec.info["sha"] = harness.sha256(harness.read_until_eof(sock))

        self.start(backend)
        s = self.connect(self.tcp_port)
        got = harness.read_until_eof(s)  # the backend's FIN arrives after all of its bytes
        self.assertEqual(harness.sha256(got), harness.sha256(down))
        s.sendall(up)  # and our direction still carries the answer
        s.shutdown(socket.SHUT_WR)
        rec = self.backend.wait_conn(0)
        self.assertTrue(rec.done.wait(harness.IO_TIMEOUT))
        self.assertIsNone(rec.error)
        self.assertEqual(rec.info["sha"], harness.sha256(up))
        self.assertEqual(harness.read_until_eof(s), b"")
        self.assert_spliced()
        e = self.proxy.wait_conn(listener="tcp")
        self.assertEqual((e["outcome"], int(e["up"]), int(e["down"])), ("ok", len(up), len(down)))

    def test_backpressure_with_paused_reader(self):
        # The client stops reading for a second in the middle. The backend must be held back
        # (it cannot have sent everything by the end of the pause: sniroute buffers no more than
        # one pipe, the sockets' buffers hold a few MiB) and every byte must still arrive.
        size, pause_at, pause = 32 * MIB, 2 * MIB, 1.0
        data = harness.pattern_bytes(size, 27)

        def backend(sock, rec):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            rec.info["sent"] = 0
            for i in range(0, size, 65536):
                sock.sendall(data[i:i + 65536])
                rec.info["sent"] = i + 65536
            sock.shutdown(socket.SHUT_WR)
            harness.read_until_eof(sock)

        proxy = self.start(backend)
        base_rss = harness.rss_kib(proxy.pid)
        s = self.connect(self.tcp_port, timeout=60)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        first = harness.recv_exactly(s, pause_at)
        self.assert_spliced()
        time.sleep(pause)
        sent_during_pause = self.backend.wait_conn(0).info["sent"]
        peak_rss = harness.rss_kib(proxy.pid)
        rest = harness.read_until_eof(s)
        self.assertEqual(harness.sha256(first + rest), harness.sha256(data), "client got other bytes")
        self.assertLess(sent_during_pause, size, "the backend was not held back while the client paused")
        print(f"\n    backend sent {sent_during_pause / MIB:.1f} MiB by the end of the pause; "
              f"RSS {base_rss} -> {peak_rss} KiB", file=sys.stderr)
        self.assertLess((peak_rss - base_rss) / 1024, 8, "sniroute RSS grew while the client paused")
        s.close()
        self.assertEqual(proxy.wait_conn(listener="tcp")["outcome"], "ok")

    def test_backend_reset_after_large_download_reaches_client(self):
        data = harness.pattern_bytes(self.SIZE, 28)

        def backend(sock, rec):
            sock.sendall(data)
            harness.recv_exactly(sock, 2, rec)  # the client has everything; now reset
            set_linger_reset(sock)
            sock.close()

        self.start(backend)
        s = self.connect(self.tcp_port)
        self.assertEqual(harness.sha256(harness.recv_exactly(s, len(data))), harness.sha256(data))
        self.assert_spliced()
        s.sendall(b"ok")
        how, rest = harness.expect_closed(s)
        self.assertEqual((how, rest), ("reset", b""), "the backend's RST should reach the client as ECONNRESET")
        e = self.proxy.wait_conn(listener="tcp")
        self.assertEqual((e["outcome"], e.get("error")), ("reset", "backend reset"))

    def test_client_reset_after_large_upload_reaches_backend(self):
        data = harness.pattern_bytes(self.SIZE, 29)

        def backend(sock, rec):
            rec.info["sha"] = harness.sha256(harness.recv_exactly(sock, len(data)))
            sock.sendall(b"ok")
            try:
                rec.info["end"] = "eof" if sock.recv(65536) == b"" else "data"
            except ConnectionResetError:
                rec.info["end"] = "reset"

        self.start(backend)
        s = self.connect(self.tcp_port)
        s.sendall(data)
        self.assertEqual(harness.recv_exactly(s, 2), b"ok")
        self.assert_spliced()
        set_linger_reset(s)
        s.close()
        rec = self.backend.wait_conn(0)
        self.assertTrue(rec.done.wait(harness.IO_TIMEOUT))
        self.assertIsNone(rec.error)
        self.assertEqual(rec.info["sha"], harness.sha256(data))
        self.assertEqual(rec.info.get("end"), "reset", "the client's RST should reach the backend as ECONNRESET")
        e = self.proxy.wait_conn(listener="tcp")
        self.assertEqual((e["outcome"], e.get("error")), ("reset", "client reset"))

    def test_idle_timeout_closes_spliced_connection(self):
        # Both directions spliced (an echo of 1 MiB), then silence.
        self.start(harness.echo, {"idle_timeout": "1s"})
        s = self.connect(self.tcp_port)
        data = harness.pattern_bytes(MIB, 30)
        w = threading.Thread(target=s.sendall, args=(data,))
        w.start()
        got = harness.recv_exactly(s, len(data))
        w.join(harness.IO_TIMEOUT)
        self.assertEqual(got, data)
        self.assertGreaterEqual(pipe_fds(self.proxy.pid), self.pipes_at_start + 4, "both directions should splice")
        quiet_since = time.monotonic()
        how, rest = harness.expect_closed(s, timeout=10)
        waited = time.monotonic() - quiet_since
        self.assertEqual((how, rest), ("eof", b""))
        self.assertGreater(waited, 0.5, "closed long before the idle timeout")
        e = self.proxy.wait_conn(listener="tcp")
        self.assertEqual((e["outcome"], e.get("error")), ("timeout", "idle timeout"))

    def test_both_workers_splice_at_once(self):
        # Two event loops, each with its own pipe pool, splicing at the same time while the
        # process-wide descriptor budget is shared between them. 16 echoes of 1 MiB at once: the
        # kernel spreads them over both workers (all on one has odds of 2^-15).
        proxy = self.start(harness.echo, {"workers": 2})
        n, data = 16, harness.pattern_bytes(MIB, 32)
        socks = [self.connect(self.tcp_port) for _ in range(n)]
        writers = [threading.Thread(target=s.sendall, args=(data,)) for s in socks]
        for w in writers:
            w.start()
        for i, s in enumerate(socks):
            self.assertEqual(harness.sha256(harness.recv_exactly(s, len(data))), harness.sha256(data), f"echo {i}")
        for w in writers:
            w.join(harness.IO_TIMEOUT)
        self.assert_spliced()
        for s in socks:
            s.close()
        conns = proxy.wait_count("conn", n, listener="tcp")
        self.assertEqual([e["outcome"] for e in conns], ["ok"] * n)
        self.assert_clean_stop(proxy)
        self.assert_every_worker_accepted(proxy)

    def test_sigterm_drain_completes_spliced_transfer(self):
        data = harness.pattern_bytes(16 * MIB, 31)

        def backend(sock, rec):
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            harness.read_until_eof(sock)

        proxy = self.start(backend)
        s = self.connect(self.tcp_port, timeout=60)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        first = harness.recv_exactly(s, MIB)
        self.assert_spliced()
        m = proxy.mark()
        proxy.signal(signal.SIGTERM)
        proxy.wait_event("draining", start=m)
        rest = harness.read_until_eof(s)  # the backend is still writing: most of it is yet to come
        self.assertEqual(harness.sha256(first + rest), harness.sha256(data), "the drained transfer lost bytes")
        s.close()
        self.assertEqual(proxy.wait_exit(), 0, proxy.log_text())
        e = [c for c in proxy.events("conn") if c.get("listener") == "tcp"]
        self.assertEqual([(c["outcome"], int(c["down"])) for c in e], [("ok", len(data))])
        self.assertEqual(proxy.events("stopped")[-1].get("clean"), "yes", proxy.log_text())
        self.assertFalse(proxy.events("leaked_handle"))


if __name__ == "__main__":
    harness.main()

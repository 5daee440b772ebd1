"""The relay itself: half-close in both directions, large transfers with slow readers (and the
proxy's memory staying bounded while they are slow), and resets travelling as resets."""

import hashlib
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
from harness import ProxyTestCase, addr, free_port, render_config

MIB = 1 << 20


def set_linger_reset(sock):
    """close() will now send RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class RelayTest(ProxyTestCase):
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

    def test_backend_closing_cleanly_is_ok(self):
        def backend(sock, rec):
            sock.sendall(b"bye")

        proxy = self.start(backend)
        s = self.connect(self.tcp_port)
        how, data = harness.expect_closed(s)
        self.assertEqual((how, data), ("eof", b"bye"))
        s.close()
        self.assertEqual(proxy.wait_conn(listener="tcp")["outcome"], "ok")


if __name__ == "__main__":
    harness.main()

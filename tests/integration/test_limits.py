"""Limits and worker threads: max_connections refuses the connection over the limit and leaves
the others alone; idle_timeout closes idle relays and only idle ones; workers = 2 serves and
stops clean, and shares one connection limit."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
from harness import ProxyTestCase, addr, free_port, render_config

harness.require_tools("openssl", "curl")  # exit 77 (skip), or 1 on CI, if one is missing


class LimitsTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.backend = self.tcp_server(harness.echo)
        self.port = free_port()

    def config(self, **global_):
        return render_config(global_, [
            {"name": "tcp", "bind": [addr("127.0.0.1", self.port)], "protocol": "tcp", "default_backend": "echo"},
        ], {"echo": {"servers": [self.backend.address]}})

    def echo_ok(self, s, msg):
        s.sendall(msg)
        self.assertEqual(harness.recv_exactly(s, len(msg)), msg)

    def check_max_connections(self, proxy):
        conns = [self.connect(self.port) for _ in range(3)]
        for i, s in enumerate(conns):
            self.echo_ok(s, b"conn %d" % i)
        self.assertEqual(self.backend.count(), 3)

        extra = self.connect(self.port)
        t0 = time.monotonic()
        try:
            extra.sendall(b"let me in")
        except (BrokenPipeError, ConnectionResetError):
            pass
        how, data = harness.expect_closed(extra, timeout=10)
        self.assertEqual(data, b"")
        self.assertLess(time.monotonic() - t0, 5.0, "the connection over the limit was not closed at once")
        e = proxy.wait_conn(outcome="refused")
        self.assertEqual(e["backend"], "-")
        self.assertEqual(self.backend.count(), 3, "the refused connection reached the backend")

        for i, s in enumerate(conns):
            self.echo_ok(s, b"still working %d" % i)

        # Closing one frees its slot.
        conns[0].close()
        proxy.wait_conn(outcome="ok")
        deadline = time.monotonic() + 10
        while True:
            s = self.connect(self.port)
            s.sendall(b"x")
            try:
                if s.recv(1) == b"x":
                    break
            except ConnectionResetError:
                pass
            self.assertLess(time.monotonic() - deadline, 0, "a freed slot was never reused")
            time.sleep(0.2)
        self.echo_ok(s, b"in the freed slot")
        for c in conns[1:] + [s]:
            c.close()

    def test_max_connections(self):
        proxy = self.start_proxy(self.config(max_connections=3))
        self.check_max_connections(proxy)

    def test_max_connections_is_shared_by_workers(self):
        proxy = self.start_proxy(self.config(max_connections=3, workers=2))
        self.assertEqual(proxy.wait_event("ready")["workers"], "2")
        self.check_max_connections(proxy)

    def test_idle_timeout_closes_idle_relay(self):
        proxy = self.start_proxy(self.config(idle_timeout="1s"))
        s = self.connect(self.port)
        self.echo_ok(s, b"hello")
        t0 = time.monotonic()
        how, data = harness.expect_closed(s, timeout=20)
        self.assertLess(time.monotonic() - t0, 6.0, "not closed within a few seconds of idle_timeout=1s")
        self.assertEqual(data, b"")
        e = proxy.wait_conn()
        self.assertEqual(e["outcome"], "timeout")
        self.assertEqual((e["up"], e["down"]), ("5", "5"))
        rec = self.backend.wait_conn(0)
        self.assertTrue(rec.done.wait(harness.IO_TIMEOUT), "the backend side was not closed")

    def test_idle_timeout_spares_active_relays(self):
        # Traffic every 0.2s against a 2s timeout, for 4s: one connection both ways, one with
        # data flowing only from the backend.
        ticks = threading.Event()

        def ticker(sock, rec):
            sock.recv(1)
            while not ticks.is_set():
                sock.sendall(b".")
                time.sleep(0.2)

        ticker_backend = self.tcp_server(ticker)
        cfg = render_config({"idle_timeout": "2s"}, [
            {"name": "echo", "bind": [addr("127.0.0.1", self.port)], "protocol": "tcp", "default_backend": "echo"},
            {"name": "tick", "bind": [addr("127.0.0.1", (tick_port := free_port()))], "protocol": "tcp",
             "default_backend": "tick"},
        ], {"echo": {"servers": [self.backend.address]}, "tick": {"servers": [ticker_backend.address]}})
        proxy = self.start_proxy(cfg)
        both = self.connect(self.port)
        down_only = self.connect(tick_port)
        down_only.sendall(b"!")
        end = time.monotonic() + 4.0
        received = 0
        while time.monotonic() < end:
            self.echo_ok(both, b"ping")
            received += len(down_only.recv(4096))
            time.sleep(0.2)
        ticks.set()
        self.assertGreater(received, 0)
        self.echo_ok(both, b"still open")
        self.assertEqual(proxy.events("conn"), [], "an active relay was closed")
        both.close()
        down_only.close()
        proxy.wait_count("conn", 2)


class SilentClientTest(ProxyTestCase):
    """A client that connects and sends nothing is closed client_hello_timeout after it
    connected, on tls and http listeners alike, although the kernel holds such a connection
    back for the TCP_DEFER_ACCEPT time before sniroute sees it."""

    def test_silent_client_is_closed_at_client_hello_timeout(self):
        backend = self.tcp_server(harness.echo)
        tls_port, http_port = free_port(), free_port()
        proxy = self.start_proxy(render_config({"client_hello_timeout": "2s"}, [
            {"name": "tls", "bind": [addr("127.0.0.1", tls_port)], "protocol": "tls", "default_backend": "echo"},
            {"name": "http", "bind": [addr("127.0.0.1", http_port)], "protocol": "http", "default_backend": "echo"},
        ], {"echo": {"servers": [backend.address]}}))
        # The silent ones, and one on each listener that sends the start of its head at once and
        # then stalls: that one was handed over without delay and keeps its whole 2 s.
        silent = {name: self.connect(port) for name, port in (("tls", tls_port), ("http", http_port))}
        t0 = time.monotonic()
        partial = {"tls": self.connect(tls_port), "http": self.connect(http_port)}
        partial["tls"].sendall(harness.fixture("curl-www.bin")[:20])
        partial["http"].sendall(b"GET / HTTP/1.1\r\nHost: x")
        closed_after = {}

        def wait(key, sock):
            harness.expect_closed(sock, timeout=10)
            closed_after[key] = time.monotonic() - t0

        waiters = [threading.Thread(target=wait, args=(("silent", n), s)) for n, s in silent.items()]
        waiters += [threading.Thread(target=wait, args=(("partial", n), s)) for n, s in partial.items()]
        for w in waiters:
            w.start()
        for w in waiters:
            w.join(15)
        # The bound: 2 s deadline + 1 s. Before the fix a silent client took 5 s (TCP_DEFER_ACCEPT
        # of 2 s, which Linux rounds up to 3 s of SYN-ACK retransmissions, then the 2 s deadline).
        # Now it is closed at 2.0 s; the spare second covers only scheduling on a loaded
        # machine, as no step in between waits for anything but these two timers. The lower
        # bound shows the deadline is not cut short.
        for key in [("silent", "tls"), ("silent", "http"), ("partial", "tls"), ("partial", "http")]:
            with self.subTest(client=key):
                self.assertIn(key, closed_after, "still open after 15 s")
                self.assertGreater(closed_after[key], 1.5, "closed before client_hello_timeout")
                self.assertLess(closed_after[key], 3.0, "not closed within client_hello_timeout + 1 s")
        got = proxy.wait_count("conn", 4)
        self.assertEqual([e["outcome"] for e in got], ["timeout"] * 4)
        self.assertEqual(backend.count(), 0)


class DescriptorExhaustionTest(ProxyTestCase):
    """Under `prlimit --nofile=64:64` more connections than descriptors: accept_failed is
    logged with a count, at most about once a second per listener, the loop does not spin, and
    the proxy serves again once the connections are gone."""

    def test_accept_failures_are_logged_and_the_proxy_recovers(self):
        prlimit = harness.tool_path("prlimit")
        if prlimit is None:
            self.skipTest("prlimit (util-linux) missing")
        backend = self.tcp_server(harness.echo)
        port = free_port()
        # One worker, whatever SNIROUTE_TEST_WORKERS says: the rate limit below is per listening
        # socket, and each worker has its own.
        cfg = render_config({"workers": 1}, [
            {"name": "tcp", "bind": [addr("127.0.0.1", port)], "protocol": "tcp", "default_backend": "echo"},
        ], {"echo": {"servers": [backend.address]}})
        proxy = self.start_proxy(cfg, wrapper=[prlimit, "--nofile=64:64"])
        # Each relayed connection takes two descriptors: 100 connections need far more than 64.
        conns = [self.connect(port) for _ in range(100)]
        first = proxy.wait_event("accept_failed", timeout=10)
        self.assertEqual((first["listener"], first["error"]), ("tcp", "too many open files"))
        self.assertGreaterEqual(int(first["count"]), 1)
        # While the descriptors stay exhausted: no busy loop, and about one line a second.
        t0 = time.monotonic()
        cpu0 = _cpu_seconds(proxy.pid)
        time.sleep(3.0)
        cpu = _cpu_seconds(proxy.pid) - cpu0
        elapsed = time.monotonic() - t0
        self.assertLess(cpu, 0.5 * elapsed, f"{cpu:.2f}s of CPU in {elapsed:.2f}s: the accept loop spins")
        lines = proxy.events("accept_failed")
        # 3 s after the first line: at most one a second, and so 5 at the very most (the bound
        # counts the first line and a line whose second straddles each end of the window).
        self.assertLessEqual(len(lines), 5, lines)
        # The limit runs on the loop's clock, which stands at the start of the iteration, and a
        # line is stamped when written; a slow iteration (a loaded machine, ThreadSanitizer: 15 ms
        # seen) shortens the gap between two stamps by that much.
        for a, b in zip(lines, lines[1:]):
            self.assertGreaterEqual(_ms(b["ts"]) - _ms(a["ts"]), 950, (a, b))
        self.assertEqual(int(lines[-1]["total"]), sum(int(e["count"]) for e in lines))
        for c in conns:
            c.close()
        # Served again once the connections are gone (the rate-limit timer and the retry timer
        # bring it back within a second or so; 20 s bounds a broken build only).
        deadline = time.monotonic() + 20
        while True:
            try:
                s = self.connect(port)
                s.sendall(b"back")
                if harness.recv_exactly(s, 4) == b"back":
                    break
            except (OSError, AssertionError):
                pass
            self.assertLess(time.monotonic(), deadline, "the proxy did not serve again")
            time.sleep(0.2)
        s.close()
        self.assert_clean_stop(proxy)
        stopped = proxy.events("worker_stopped")[-1]
        self.assertGreater(int(stopped["accept_failed"]), 0)


def _cpu_seconds(pid):
    """User + system CPU time of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ms(ts):
    """Milliseconds of the day of a log timestamp such as 2026-12-04T19:44:58.517Z."""
    h, m, s = ts.split("T")[1].rstrip("Z").split(":")
    return int((int(h) * 3600 + int(m) * 60 + float(s)) * 1000)


class WorkersTest(ProxyTestCase):
    def test_two_workers_serve_and_stop_clean(self):
        hello = harness.fixture("curl-www.bin")
        backend = self.tcp_server(harness.tagged_echo(b"T", len(hello)))
        cert = self.cert("www.example.com")
        tls_backend = self.s_server(cert)
        port, tls_port = free_port(), free_port()
        proxy = self.start_proxy(render_config({"workers": 2}, [
            {"name": "py", "bind": [addr("127.0.0.1", port)], "protocol": "tls", "default_backend": "py"},
            {"name": "real", "bind": [addr("127.0.0.1", tls_port)], "protocol": "tls", "default_backend": "real"},
        ], {"py": {"servers": [backend.address]}, "real": {"servers": [tls_backend.address]}}))
        self.assertEqual(proxy.wait_event("ready")["workers"], "2")
        n = 24
        for i in range(n):
            s = self.connect(port)
            s.sendall(hello)
            self.assertEqual(harness.recv_exactly(s, 1), b"T")
            msg = b"round trip %d" % i
            s.sendall(msg)
            self.assertEqual(harness.recv_exactly(s, len(msg)), msg)
            s.close()
        for _ in range(4):
            rc, code, bodies = harness.curl_certs("www.example.com", tls_port)
            self.assertEqual((rc, code, bodies[:1]), (0, "200", [cert.pem_body]))
        proxy.wait_count("conn", n + 4)
        self.assert_clean_stop(proxy)
        stopped = proxy.events("worker_stopped")
        self.assertEqual(sorted(e["worker"] for e in stopped), ["0", "1"])
        self.assertEqual(sum(int(e["accepted"]) for e in stopped), n + 4)
        # SO_REUSEPORT spreads connections by 4-tuple hash; with 28 connections from distinct
        # ports both workers get some unless the hash is badly broken (odds about 2^-27).
        self.assertTrue(all(int(e["accepted"]) > 0 for e in stopped), stopped)


if __name__ == "__main__":
    harness.main()

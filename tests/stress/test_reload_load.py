"""Reloads under load: 20 SIGHUPs (200 with SNIROUTE_STRESS=long) 0.25 s apart while client
threads open connections without pause through a tls and a tcp listener. The reloads swap the
routes between two backends, add and remove a third listener, and one of them is a broken
config. No connection may fail; connections opened before the first reload must still relay
bytes after the last; the broken config is refused with a logged config_error and the routes
before it stay in force."""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stress_util import StressTestCase, figures, harness, scaled

RELOADS = scaled(20, 200)
BROKEN_AT = RELOADS // 2
LONG_LIVED = scaled(20, 100)
LOAD_THREADS = 4
HELLO = harness.fixture("curl-www.bin")  # SNI www.example.com


class ReloadUnderLoadTest(StressTestCase):
    def setUp(self):
        super().setUp()
        self.backends = {"a": self.backend_process(tag="A"), "b": self.backend_process(tag="B")}
        self.tls_port, self.tcp_port, self.extra_port = harness.free_ports(3)

    def config(self, to, extra=False, broken=False):
        listeners = [
            {"name": "tls", "bind": [harness.addr("127.0.0.1", self.tls_port)], "protocol": "tls",
             "routes": [{"match": "www.example.com", "backend": "no-such-backend" if broken else to}]},
            {"name": "tcp", "bind": [harness.addr("127.0.0.1", self.tcp_port)], "protocol": "tcp",
             "default_backend": to},
        ]
        if extra:
            listeners.append({"name": "extra", "bind": [harness.addr("127.0.0.1", self.extra_port)],
                              "protocol": "tcp", "default_backend": to})
        return harness.render_config({"workers": 2, "access_log": False, "client_hello_timeout": "10s"}, listeners,
                                     {n: {"servers": [b.address]} for n, b in self.backends.items()})

    def exchange(self, port, msg, s=None):
        """One round trip; opens a connection (tls listener: the hello first) unless s is
        given. Returns (socket, tag of the backend)."""
        tag = None
        if s is None:
            s = socket.create_connection(("127.0.0.1", port), timeout=harness.IO_TIMEOUT)
            if port == self.tls_port:
                msg = HELLO + msg
            s.sendall(msg)
            tag = harness.recv_exactly(s, 1)
        else:
            s.sendall(msg)
        if harness.recv_exactly(s, len(msg)) != msg:
            raise AssertionError("echo differs")
        return s, tag

    def test_reloads_under_load(self):
        proxy = self.start_proxy(self.config("a"))
        long_lived = []
        for i in range(LONG_LIVED):
            s, tag = self.exchange(self.tls_port if i % 2 else self.tcp_port, b"opened before the reloads %d" % i)
            self.addCleanup(s.close)
            self.assertEqual(tag, b"A")
            long_lived.append(s)

        stop = threading.Event()
        counts = {"ok": 0, "failed": 0}
        errors = []
        lock = threading.Lock()

        def load(n):
            i = 0
            while not stop.is_set():
                port = (self.tls_port, self.tcp_port)[i % 2]
                i += 1
                try:
                    s, tag = self.exchange(port, b"load %d %d" % (n, i))
                    with s:
                        if tag not in (b"A", b"B"):
                            raise AssertionError(f"tag {tag!r}")
                        s.shutdown(socket.SHUT_WR)
                        if harness.read_until_eof(s) != b"":
                            raise AssertionError("bytes after the echo")
                    with lock:
                        counts["ok"] += 1
                except Exception as e:  # counted, and asserted on below
                    with lock:
                        counts["failed"] += 1
                        errors.append(f"port {port}: {e!r}")

        threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(LOAD_THREADS)]
        for t in threads:
            t.start()
        self.addCleanup(stop.set)
        outcomes = []
        route = "a"
        try:
            for i in range(RELOADS):
                if i == BROKEN_AT:
                    mark = proxy.mark()
                    e = proxy.reload(self.config("b" if route == "a" else "a", broken=True))
                    outcomes.append(e["event"])
                    self.assertEqual(e["event"], "reload_rejected")
                    err = proxy.wait_event("config_error", start=mark)
                    self.assertIn("no-such-backend", err["at"])
                    # The routes before it stay: a new connection still reaches the old backend.
                    for port in (self.tls_port, self.tcp_port):
                        s, tag = self.exchange(port, b"after the broken config")
                        s.close()
                        self.assertEqual(tag, route.upper().encode(), "the rejected config changed the routes")
                else:
                    route = "b" if route == "a" else "a"
                    e = proxy.reload(self.config(route, extra=i % 4 == 1))
                    outcomes.append(e["event"])
                    self.assertEqual(e["event"], "reloaded", proxy.log_text()[-3000:])
                    self.wait_for_route(route)
                time.sleep(0.25)
        finally:
            stop.set()
            for t in threads:
                t.join(30)

        for i, s in enumerate(long_lived):
            self.exchange(None, b"still relayed after %d reloads (%d)" % (RELOADS, i), s)
        figures("reload_under_load", reloads=RELOADS, reloaded=outcomes.count("reloaded"),
                rejected=outcomes.count("reload_rejected"), load_connections=counts["ok"] + counts["failed"],
                load_ok=counts["ok"], load_failed=counts["failed"], long_lived=len(long_lived),
                long_lived_alive_after=len(long_lived))
        self.assertEqual(errors, [])
        self.assertGreater(counts["ok"], RELOADS, "the load did not run")
        self.assertEqual(outcomes.count("reload_rejected"), 1)
        self.assertIsNone(proxy.proc.poll())
        self.assertEqual([e for e in proxy.events("conn") if e["outcome"] != "ok"], [])

    def wait_for_route(self, route):
        """A new connection on each listener reaches `route` (bounded: the workers take a
        reload asynchronously, after the control thread has logged it)."""
        want = route.upper().encode()
        deadline = time.monotonic() + 10
        for port in (self.tls_port, self.tcp_port):
            while True:
                s, tag = self.exchange(port, b"which route")
                s.close()
                if tag == want:
                    break
                self.assertLess(time.monotonic(), deadline, f"port {port} never moved to {route}")
                time.sleep(0.02)


if __name__ == "__main__":
    harness.main()

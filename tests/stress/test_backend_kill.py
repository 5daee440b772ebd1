"""A backend killed with SIGKILL under load, and restarted on the same port: 3 times (20 with
SNIROUTE_STRESS=long). The backend is a process of its own (backend.py), the first server of a
pool of two, so that while it is down new connections fail over to the second one, as they
would in a deployment that cares about this. Client threads keep opening connections through a
tls and a tcp listener the whole time. Only connections that were open when the backend died
may fail; after the restart new connections reach it again and succeed."""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stress_util import StressTestCase, figures, harness, scaled

CYCLES = scaled(3, 20)
HELD = 10              # long-lived connections on the backend when it is killed
LOAD_THREADS = 4
PER_PHASE = scaled(300, 1000)  # successful load connections before the kill, while it is down, after
HELLO = harness.fixture("curl-www.bin")


class Load:
    """Client threads opening short connections; each start and end is recorded under one
    lock, so that the set of connections in flight at a given moment is exact."""

    def __init__(self, ports):
        self.ports = ports
        self.lock = threading.Lock()
        self.inflight = set()
        self.ok = 0
        self.ok_by_tag = {}
        self.failures = []  # (connection id, error)
        self.stop = threading.Event()
        self.next_id = 0
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(LOAD_THREADS)]

    def run(self):
        while not self.stop.is_set():
            with self.lock:
                cid = self.next_id
                self.next_id += 1
                self.inflight.add(cid)
            port, tls = self.ports[cid % len(self.ports)]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=harness.IO_TIMEOUT) as s:
                    msg = (HELLO if tls else b"") + b"load %d" % cid
                    s.sendall(msg)
                    tag = harness.recv_exactly(s, 1)
                    if harness.recv_exactly(s, len(msg)) != msg:
                        raise AssertionError("echo differs")
                    s.shutdown(socket.SHUT_WR)
                    if harness.read_until_eof(s) != b"":
                        raise AssertionError("bytes after the echo")
                with self.lock:
                    self.ok += 1
                    self.ok_by_tag[tag] = self.ok_by_tag.get(tag, 0) + 1
            except Exception as e:  # recorded; the test checks which connections failed
                with self.lock:
                    self.failures.append((cid, repr(e)))
            finally:
                with self.lock:
                    self.inflight.discard(cid)

    def count(self, tag):
        with self.lock:
            return self.ok_by_tag.get(tag, 0)


class BackendKillTest(StressTestCase):
    def test_sigkill_backend_under_load(self):
        primary = self.backend_process(tag="P")
        spare = self.backend_process(tag="S")
        tls_port, tcp_port = harness.free_ports(2)
        proxy = self.start_proxy(harness.render_config(
            {"workers": 2, "access_log": False, "client_hello_timeout": "10s", "connect_timeout": "5s"}, [
                {"name": "tls", "bind": [harness.addr("127.0.0.1", tls_port)], "protocol": "tls",
                 "default_backend": "pool"},
                {"name": "tcp", "bind": [harness.addr("127.0.0.1", tcp_port)], "protocol": "tcp",
                 "default_backend": "pool"},
            ], {"pool": {"servers": [primary.address, spare.address]}}))
        load = Load([(tls_port, True), (tcp_port, False)])
        self.addCleanup(load.stop.set)
        for t in load.threads:
            t.start()

        allowed = set()  # connections that were open when a backend died
        held_closed = 0
        spare_ok = restarted_ok = 0
        for cycle in range(CYCLES):
            held = []
            for i in range(HELD):
                s = socket.create_connection(("127.0.0.1", tcp_port), timeout=harness.IO_TIMEOUT)
                self.addCleanup(s.close)
                s.sendall(b"held %d" % i)
                self.assertEqual(harness.recv_exactly(s, 1 + len(b"held %d" % i)), b"Pheld %d" % i)
                held.append(s)
            base = load.count(b"P")
            self.wait(lambda: load.count(b"P") >= base + PER_PHASE, "load on the backend")
            with load.lock:  # no connection starts or ends while the backend dies
                primary.sigkill()
                allowed |= load.inflight
            # What it held is gone: each held connection is closed by the proxy.
            for s in held:
                how, _ = harness.expect_closed(s, timeout=harness.IO_TIMEOUT)
                held_closed += 1
            base = load.count(b"S")
            self.wait(lambda: load.count(b"S") >= base + PER_PHASE, "load failing over to the spare")
            spare_ok += load.count(b"S") - base
            primary.start()  # the same port
            base = load.count(b"P")
            self.wait(lambda: load.count(b"P") >= base + PER_PHASE, "load on the restarted backend")
            restarted_ok += load.count(b"P") - base
        load.stop.set()
        for t in load.threads:
            t.join(30)

        bad = [(cid, e) for cid, e in load.failures if cid not in allowed]
        figures("backend_kill", cycles=CYCLES, load_ok=load.ok, load_failed=len(load.failures),
                failed_in_flight_at_kill=len(load.failures) - len(bad), in_flight_at_kill=len(allowed),
                held_closed=held_closed, ok_on_spare=spare_ok, ok_after_restart=restarted_ok)
        self.assertEqual(bad, [], "connections not open at the kill failed")
        self.assertEqual(held_closed, CYCLES * HELD)
        self.assertIsNone(proxy.proc.poll())

    def wait(self, pred, what):
        deadline = time.monotonic() + scaled(120, 300)
        while not pred():
            self.assertLess(time.monotonic(), deadline, f"timed out waiting for {what}")
            time.sleep(0.02)


if __name__ == "__main__":
    harness.main()

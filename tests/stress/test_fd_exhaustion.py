"""Descriptor exhaustion under load: sniroute runs under `prlimit --nofile=64:64` with a tls, a
tcp and an http listener, and client threads open far more connections than it has
descriptors, on all three at once; 3 rounds (20 with SNIROUTE_STRESS=long). Each round it must
stay up, log accept_failed (listener, error "too many open files", a count), and once the
clients let go serve every new connection again, with as many descriptors open as before the
round (nothing leaked on the way)."""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stress_util
from stress_util import StressTestCase, figures, harness, scaled

ROUNDS = scaled(3, 20)
FLOOD = 300       # connections held open per round (each relayed one takes two descriptors)
AFTER = 60        # connections that must all succeed after each round, over the three listeners
HELLO = harness.fixture("curl-www.bin")

harness.require_tools("prlimit")  # exit 77 (skip), or 1 on CI, if it is missing


class DescriptorExhaustionStressTest(StressTestCase):
    def test_exhaustion_rounds(self):
        backend = self.backend_process()
        tls_port, tcp_port, http_port = harness.free_ports(3)
        proxy = self.start_proxy(harness.render_config({"client_hello_timeout": "10s"}, [
            {"name": "tls", "bind": [harness.addr("127.0.0.1", tls_port)], "protocol": "tls",
             "default_backend": "echo"},
            {"name": "tcp", "bind": [harness.addr("127.0.0.1", tcp_port)], "protocol": "tcp",
             "default_backend": "echo"},
            {"name": "http", "bind": [harness.addr("127.0.0.1", http_port)], "protocol": "http",
             "default_backend": "echo"},
        ], {"echo": {"servers": [backend.address]}}), wrapper=["prlimit", "--nofile=64:64"])
        self.first_bytes = {tls_port: HELLO, tcp_port: b"tcp\r\n",
                            http_port: b"GET / HTTP/1.1\r\nHost: web.example\r\n\r\n"}
        ports = list(self.first_bytes)
        fds_before = self.settled_fds(proxy)
        failed_lines = 0
        after_ok = 0
        for r in range(ROUNDS):
            mark = proxy.mark()
            held = []
            lock = threading.Lock()

            def flood(part):
                for i in range(part, FLOOD, 3):
                    port = ports[i % 3]
                    try:
                        s = socket.create_connection(("127.0.0.1", port), timeout=harness.IO_TIMEOUT)
                        s.sendall(self.first_bytes[port])
                    except OSError:
                        continue  # shed by the proxy before we got here: expected
                    with lock:
                        held.append(s)

            floods = [threading.Thread(target=flood, args=(p,)) for p in range(3)]
            for t in floods:
                t.start()
            for t in floods:
                t.join(60)
            e = proxy.wait_event("accept_failed", timeout=30, start=mark)
            self.assertEqual(e["error"], "too many open files")
            self.assertGreaterEqual(int(e["count"]), 1)
            self.assertIsNone(proxy.proc.poll(), "sniroute died when out of descriptors")
            for s in held:
                s.close()
            failed_lines += len(proxy.events("accept_failed", start=mark))
            # Served again: first one connection per listener (bounded retry while the held
            # sessions close), then every one of AFTER.
            for port in ports:
                stress_util.wait_until(lambda: self.exchange_ok(port), 30, f"port {port} to serve again")
            for i in range(AFTER):
                self.assertTrue(self.exchange_ok(ports[i % 3]), f"round {r}: connection {i} after recovery failed")
                after_ok += 1
            fds_after = self.settled_fds(proxy)
            self.assertLessEqual(fds_after, fds_before, f"round {r}: descriptors {fds_before} -> {fds_after}")
        stopped_mark = proxy.mark()
        self.assert_clean_stop(proxy)
        stopped = proxy.events("worker_stopped", start=stopped_mark)
        figures("fd_exhaustion", nofile=64, rounds=ROUNDS, flood_per_round=FLOOD, accept_failed_lines=failed_lines,
                accept_failed_total=stopped[-1]["accept_failed"], ok_after_recovery=after_ok,
                fds_start=fds_before, fds_end=fds_after)
        self.assertEqual(after_ok, ROUNDS * AFTER)

    def exchange_ok(self, port):
        """One connection through `port` that gets its first bytes echoed and ends cleanly."""
        msg = self.first_bytes[port]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=harness.IO_TIMEOUT) as s:
                s.sendall(msg)
                if harness.recv_exactly(s, len(msg)) != msg:
                    return False
                s.shutdown(socket.SHUT_WR)
                return harness.read_until_eof(s) == b""
        except (OSError, EOFError):
            return False

    def settled_fds(self, proxy):
        """The descriptor count once two reads half a second apart agree (bounded)."""
        prev = None
        for _ in range(40):
            now = stress_util.fd_count(proxy.pid)
            if now == prev:
                return now
            prev = now
            time.sleep(0.5)
        return prev


if __name__ == "__main__":
    harness.main()

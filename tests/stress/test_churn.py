"""Churn: 100,000 short connections (2,000,000 with SNIROUTE_STRESS=long) spread over a tls
listener, a tcp listener and the port-80 front (requests forwarded to a backend and ACME
challenges answered by sniroute itself; one in 41 a 128 KiB echo that the relay splices), from
several client processes. Every one must succeed, and the proxy's resident memory and
descriptor count, read after the first tenth (the warm-up) and at the end with no connection
open, must stay flat: within 1 MB and 10 descriptors. Pipe ends are counted apart: each worker
keeps up to 32 empty pipes for splicing (kIdlePipes in src/proxy/loop_context.cpp), a pool that
warms up with the number of spliced transfers ever in flight at once and may so grow after the
warm-up; they must stay within that bound, and every other descriptor within 10."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stress_util
from stress_util import StressTestCase, figures, harness, scaled

TOTAL = scaled(100_000, 2_000_000)
WARMUP = TOTAL // 10
CLIENTS = 6
THUMBPRINT = "stress-thumbprint_0123456789"
WORKERS = 2
IDLE_PIPES_PER_WORKER = 32  # kIdlePipes in src/proxy/loop_context.cpp


class ChurnTest(StressTestCase):
    def test_rss_and_descriptors_stay_flat(self):
        stress_util.raise_nofile(8192)
        backend = self.backend_process()
        tls_port, tcp_port, http_port = harness.free_ports(3)
        proxy = self.start_proxy(harness.render_config(
            {"workers": WORKERS, "access_log": False, "client_hello_timeout": "10s"}, [
                {"name": "tls", "bind": [harness.addr("127.0.0.1", tls_port)], "protocol": "tls",
                 "routes": [{"match": "www.example.com", "backend": "echo"}]},
                {"name": "tcp", "bind": [harness.addr("127.0.0.1", tcp_port)], "protocol": "tcp",
                 "default_backend": "echo"},
                {"name": "http", "bind": [harness.addr("127.0.0.1", http_port)], "protocol": "http",
                 "routes": [{"match": "web.example", "backend": "echo"}]},
            ], {"echo": {"servers": [backend.address]}}, acme={"account_thumbprint": THUMBPRINT}))
        # One in 41 moves 128 KiB each way, enough for the relay to splice.
        targets = [{"kind": "tls", "port": tls_port}, {"kind": "tcp", "port": tcp_port},
                   {"kind": "http", "port": http_port}, {"kind": "acme", "port": http_port}] * 10
        targets.append({"kind": "bulk", "port": tcp_port})

        t0 = time.monotonic()
        warm = stress_util.run_load(targets, WARMUP, CLIENTS, thumbprint=THUMBPRINT)
        self.assertEqual((warm["failed"], warm["errors"]), (0, {}))
        rss0, fds0, pipes0 = self.settled(proxy)
        rest = stress_util.run_load(targets, TOTAL - WARMUP, CLIENTS, first=WARMUP, thumbprint=THUMBPRINT,
                                    bound=scaled(600, 3000))
        rss1, fds1, pipes1 = self.settled(proxy)
        elapsed = time.monotonic() - t0
        ok = warm["ok"] + rest["ok"]
        figures("churn", connections=TOTAL, ok=ok, failed=warm["failed"] + rest["failed"],
                rss_kib_start=rss0, rss_kib_end=rss1, fds_start=fds0, fds_end=fds1, pipe_fds_start=pipes0,
                pipe_fds_end=pipes1,
                conn_per_s=round(TOTAL / elapsed))
        self.assertEqual((rest["failed"], rest["errors"]), (0, {}))
        self.assertEqual(ok, TOTAL)
        self.assertLessEqual(rss1 - rss0, 1024, f"RSS grew from {rss0} to {rss1} KiB")
        self.assertLessEqual((fds1 - pipes1) - (fds0 - pipes0), 10,
                             f"descriptors other than pipes grew from {fds0 - pipes0} to {fds1 - pipes1}")
        self.assertLessEqual(pipes1, 2 * IDLE_PIPES_PER_WORKER * WORKERS, "more pipes than the pools keep")
        self.assertFalse(proxy.events(level="error"), proxy.log_text()[-4000:])

    def settled(self, proxy):
        """(VmRSS KiB, descriptors, pipe ends among them) once the last connection of a batch has been closed: the
        descriptor count is read until two reads a second apart agree (bounded)."""
        pid = proxy.pid
        prev = None
        for _ in range(30):
            now = stress_util.fd_count(pid)
            if now == prev:
                break
            prev = now
            time.sleep(1.0)
        return harness.rss_kib(pid), stress_util.fd_count(pid), stress_util.pipe_fd_count(pid)


if __name__ == "__main__":
    harness.main()

"""The listeners' IP policy: allow and deny (deny wins), max_connections_per_ip across two
workers, new_connections_per_ip (burst, refusal, refill), the PROXY header's address on a
listener that accepts one, the ip_refused line's rate limit, and sniroute_refused_total by
reason. Clients bind 127.0.0.2 and 127.0.0.3 (all of 127/8 is loopback) to be two addresses."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
from harness import ProxyTestCase, addr, admin_metrics, free_port, metric_value, render_config

A, B = "127.0.0.2", "127.0.0.3"


class IpPolicyTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.backend = self.tcp_server(harness.echo)
        self.port, self.admin_port = free_port(), free_port()

    def start(self, workers=1, **policy):
        text = render_config({"workers": workers}, [
            {"name": "pol", "bind": [addr("127.0.0.1", self.port)], "protocol": "tcp", "default_backend": "echo",
             **policy},
        ], {"echo": {"servers": [self.backend.address]}})
        return self.start_proxy(text + f'\n[admin]\nbind = ["127.0.0.1:{self.admin_port}"]\n')

    def client(self, src):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.settimeout(harness.IO_TIMEOUT)
        s.bind((src, 0))
        s.connect(("127.0.0.1", self.port))
        return s

    def echoes(self, s, payload=b"ping"):
        s.sendall(payload)
        self.assertEqual(harness.recv_exactly(s, len(payload)), payload)

    def refused(self, s):
        """Closed by the proxy without a byte, and without a word to the backend."""
        before = self.backend.count()
        kind, data = harness.expect_closed(s, timeout=10)
        self.assertEqual(data, b"")
        self.assertEqual(self.backend.count(), before)

    def refused_total(self, reason):
        return metric_value(admin_metrics(self.admin_port), "sniroute_refused_total", listener="pol", reason=reason)

    def test_deny_wins_over_allow(self):
        proxy = self.start(allow=["127.0.0.0/8"], deny=[B + "/32", "192.0.2.0/24"])
        self.echoes(self.client(A))
        self.refused(self.client(B))
        e = proxy.wait_conn(listener="pol", outcome="refused")
        self.assertEqual(e.get("error"), "denied")
        self.assertTrue(e["client"].startswith(B + ":"), e)
        self.assertEqual(self.backend.count(), 1)  # only A's connection reached it

    def test_not_in_allow_is_refused(self):
        proxy = self.start(allow=["10.0.0.0/8", "::/0"])
        self.refused(self.client(A))
        proxy.wait_conn(listener="pol", outcome="refused", error="denied")

    def test_max_connections_per_ip_holds_across_workers(self):
        n = 12  # on two workers by the kernel's hash: all on one has odds of 2^-11
        proxy = self.start(workers=2, max_connections_per_ip=n)
        held = [self.client(A) for _ in range(n)]
        for s in held:
            self.echoes(s)
        self.refused(self.client(A))
        proxy.wait_conn(listener="pol", outcome="refused", error="per_ip_limit")
        self.echoes(self.client(B))  # another address has its own count
        # Closing one frees its slot, once the proxy has seen the close.
        held.pop().close()
        proxy.wait_conn(listener="pol", outcome="ok")
        self.echoes(self.client(A))
        self.assertEqual(self.refused_total("per_ip_limit"), 1)
        for s in held:
            s.close()
        self.assert_clean_stop(proxy)
        self.assert_every_worker_accepted(proxy)

    def test_new_connections_per_ip_burst_refusal_refill(self):
        # A token every 12 s: the burst of 5 is taken well inside one, on any machine.
        proxy = self.start(new_connections_per_ip="5/m")
        for _ in range(5):
            s = self.client(A)
            self.echoes(s)
            s.close()
        self.refused(self.client(A))
        proxy.wait_conn(listener="pol", outcome="refused", error="rate_limit")
        self.echoes(self.client(B))
        # Refused attempts take no token, so the next one is let in once one has refilled.
        deadline = time.monotonic() + 40
        while True:
            s = self.client(A)
            try:
                self.echoes(s)
                break
            except (ConnectionError, EOFError, AssertionError, socket.timeout):  # refused: RST or FIN
                s.close()
                self.assertLess(time.monotonic(), deadline, "no token refilled")
                time.sleep(1)

    def test_proxy_header_address_is_judged(self):
        proxy = self.start(accept_proxy_protocol=True, deny=["192.0.2.0/24"])
        s = self.client("127.0.0.1")
        s.sendall(b"PROXY TCP4 192.0.2.9 127.0.0.1 1234 80\r\n")
        self.refused(s)
        proxy.wait_conn(listener="pol", outcome="refused", error="denied", client="192.0.2.9:1234")
        s = self.client("127.0.0.1")
        s.sendall(b"PROXY TCP4 198.51.100.1 127.0.0.1 1234 80\r\nhello")
        self.assertEqual(harness.recv_exactly(s, 5), b"hello")

    def test_ip_refused_is_logged_once_a_minute_with_a_count(self):
        proxy = self.start(deny=[B])
        for _ in range(20):
            self.refused(self.client(B))
        proxy.wait_count("conn", 20, listener="pol", outcome="refused")
        lines = proxy.events("ip_refused")
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(lines[0].get("client"), B)
        self.assertEqual(lines[0].get("reason"), "denied")
        self.assertEqual(lines[0].get("count"), "1")
        self.assertEqual(self.refused_total("denied"), 20)

    def test_refused_total_by_reason(self):
        proxy = self.start(deny=[B], max_connections_per_ip=1, new_connections_per_ip="2/h")
        self.refused(self.client(B))
        self.refused(self.client(B))
        first = self.client(A)
        self.echoes(first)
        self.refused(self.client(A))  # its one slot is taken
        first.close()
        proxy.wait_conn(listener="pol", outcome="ok")
        second = self.client(A)
        self.echoes(second)  # the second and last token
        second.close()
        proxy.wait_count("conn", 2, listener="pol", outcome="ok")
        self.refused(self.client(A))  # the bucket is empty
        self.assertEqual(self.refused_total("denied"), 2)
        self.assertEqual(self.refused_total("per_ip_limit"), 1)
        self.assertEqual(self.refused_total("rate_limit"), 1)
        self.assertEqual(self.refused_total("banned"), 0)


if __name__ == "__main__":
    harness.main()

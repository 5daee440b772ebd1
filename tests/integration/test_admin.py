"""The admin listener: /metrics after known traffic (connections, outcomes, bytes each way,
summed over two workers), checked by promtool and scraped by a real Prometheus; /healthz and
/readyz, including 503 while draining; 404, 405, 400; reload counters."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
from harness import ProxyTestCase, addr, free_port, http_get, metric_value as value, parse_metrics, render_config

harness.require_tools("promtool", "prometheus")  # exit 77 (skip), or 1 on CI, if one is missing

class AdminTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.backend = self.tcp_server(harness.echo)
        self.tcp_port, self.tls_port, self.admin_port = free_port(), free_port(), free_port()
        self.http_port, self.dead_port, self.dead_server = free_port(), free_port(), free_port()

    def config(self, extra_route=False, **global_):
        tls = {"name": "tls", "bind": [addr("127.0.0.1", self.tls_port)], "protocol": "tls"}
        if extra_route:
            tls["routes"] = [{"match": ["x.example"], "backend": "echo"}]
        text = render_config({"workers": 2, "client_hello_timeout": "1s", **global_}, [
            {"name": "tcp", "bind": [addr("127.0.0.1", self.tcp_port)], "protocol": "tcp", "default_backend": "echo"},
            tls,
            {"name": "http", "bind": [addr("127.0.0.1", self.http_port)], "protocol": "http",
             "routes": [{"match": ["web.example"], "backend": "echo", "redirect_https": True}]},
            {"name": "dead", "bind": [addr("127.0.0.1", self.dead_port)], "protocol": "tcp", "default_backend": "dead"},
        ], {"echo": {"servers": [self.backend.address]}, "dead": {"servers": [addr("127.0.0.1", self.dead_server)]}})
        return text + f'\n[admin]\nbind = ["127.0.0.1:{self.admin_port}"]\n'

    def metrics(self):
        status, headers, body = http_get(self.admin_port, "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        return body.decode()

    def wait_metric(self, want, name, timeout=harness.IO_TIMEOUT, **labels):
        deadline = time.monotonic() + timeout
        while True:
            got = value(parse_metrics(self.metrics()), name, **labels)
            if got == want:
                return
            if time.monotonic() > deadline:
                self.fail(f"{name}{labels} is {got}, not {want}")
            time.sleep(0.05)

    def echo(self, payload):
        with self.connect(self.tcp_port) as s:
            s.sendall(payload)
            self.assertEqual(harness.recv_exactly(s, len(payload)), payload)

    def test_metrics_after_known_traffic(self):
        proxy = self.start_proxy(self.config())
        sizes = [1, 1000, 65536, 7, 300000]
        for n in sizes:
            self.echo(harness.pattern_bytes(n, n))
        # One refused for want of a route (a ClientHello for a name nobody serves), one closed at
        # its ClientHello deadline (connects and says nothing).
        with self.connect(self.tls_port) as s:
            s.sendall(harness.fixture("openssl3-mail.bin"))
            harness.expect_closed(s, timeout=10)
        with self.connect(self.tls_port) as s:
            harness.expect_closed(s, timeout=10)
        # Port 80: a redirect, and a head refused with 400.
        for head, want in ((b"GET /x HTTP/1.1\r\nHost: web.example\r\n\r\n", b" 308 "),
                           (b"GET /x HTTP/1.1\r\nHost: web.example\r\n\rX\r\n\r\n", b" 400 ")):
            with self.connect(self.http_port) as s:
                s.sendall(head)
                self.assertIn(want, harness.read_until_eof(s).split(b"\r\n")[0])
        # A backend whose one server refuses: a connect failure, and the client is closed.
        with self.connect(self.dead_port) as s:
            harness.expect_closed(s, timeout=10)
        proxy.wait_count("conn", len(sizes), listener="tcp", outcome="ok")
        proxy.wait_conn(listener="dead", outcome="backend_down")
        proxy.wait_conn(listener="tls", outcome="no_route")
        proxy.wait_conn(listener="tls", outcome="timeout")

        self.wait_metric(len(sizes), "sniroute_connections_total", listener="tcp", backend="echo", outcome="ok")
        text = self.metrics()
        m = parse_metrics(text)
        self.assertEqual(value(m, "sniroute_bytes_total", listener="tcp", backend="echo", direction="up"), sum(sizes))
        self.assertEqual(value(m, "sniroute_bytes_total", listener="tcp", backend="echo", direction="down"), sum(sizes))
        self.assertEqual(value(m, "sniroute_connections_total", listener="tls", backend="", outcome="no_route"), 1)
        self.assertEqual(value(m, "sniroute_connections_total", listener="tls", backend="", outcome="timeout"), 1)
        self.assertEqual(value(m, "sniroute_connections_total", listener="tcp", backend="echo", outcome="reset"), 0)
        self.assertEqual(value(m, "sniroute_connections_active", listener="tcp"), 0)
        self.assertEqual(value(m, "sniroute_connections_total", listener="dead", backend="dead", outcome="backend_down"), 1)
        # The hellos, by result; the routing decisions, by route.
        self.assertEqual(value(m, "sniroute_client_hello_total", listener="tls", result="sni"), 1)
        self.assertEqual(value(m, "sniroute_client_hello_total", listener="tls", result="timeout"), 1)
        self.assertEqual(value(m, "sniroute_client_hello_total", listener="tls", result="malformed"), 0)
        self.assertIsNone(value(m, "sniroute_client_hello_total", listener="tcp", result="sni"))
        self.assertEqual(value(m, "sniroute_route_total", listener="tcp", route="default"), len(sizes))
        self.assertEqual(value(m, "sniroute_route_total", listener="tls", route="none"), 1)
        # Port 80, by status and action.
        self.assertEqual(value(m, "sniroute_http_requests_total", listener="http", code="308", action="redirect"), 1)
        self.assertEqual(value(m, "sniroute_http_requests_total", listener="http", code="400", action="error"), 1)
        # Connects: one observation per routed tcp connection, one failure for the dead server.
        self.assertEqual(value(m, "sniroute_backend_connect_seconds_count", backend="echo"), len(sizes))
        self.assertEqual(value(m, "sniroute_backend_connect_seconds_bucket", backend="echo", le="+Inf"), len(sizes))
        self.assertGreater(value(m, "sniroute_backend_connect_seconds_sum", backend="echo"), 0)
        self.assertEqual(value(m, "sniroute_backend_connect_failures_total", backend="dead",
                               server=f"127.0.0.1:{self.dead_server}", reason="refused"), 1)
        self.assertEqual(value(m, "sniroute_backend_connect_seconds_count", backend="dead"), 0)  # none succeeded
        self.assertEqual(value(m, "sniroute_workers"), 2)
        self.assertGreater(value(m, "process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(value(m, "process_open_fds"), 5)
        self.assertGreater(value(m, "process_start_time_seconds"), time.time() - 600)

        # An open connection is active until it closes.
        s = self.connect(self.tcp_port)
        s.sendall(b"x")
        harness.recv_exactly(s, 1)
        self.wait_metric(1, "sniroute_connections_active", listener="tcp")
        s.close()
        self.wait_metric(0, "sniroute_connections_active", listener="tcp")

        check = subprocess.run(["promtool", "check", "metrics"], input=self.metrics(), capture_output=True,
                               text=True, timeout=60)
        self.assertEqual(check.returncode, 0, f"promtool check metrics:\n{check.stdout}{check.stderr}")
        self.assert_clean_stop(proxy)

    def test_status(self):
        proxy = self.start_proxy(self.config(extra_route=True))
        held = self.connect(self.tcp_port)
        held.sendall(b"x")
        harness.recv_exactly(held, 1)
        status, headers, body = http_get(self.admin_port, "/status")
        self.assertEqual((status, headers["content-type"]), (200, "application/json"))
        st = json.loads(body)
        self.assertEqual(st["config"]["path"], proxy.config_path)
        self.assertEqual((st["ready"], st["workers"], st["config"]["reloads_ok"]), (True, 2, 0))
        self.assertGreaterEqual(st["config"]["loaded"], st["started"])
        by_name = {l["name"]: l for l in st["listeners"]}
        self.assertEqual(sorted(by_name), ["dead", "http", "tcp", "tls"])
        self.assertEqual(by_name["tcp"]["bind"], [f"127.0.0.1:{self.tcp_port}"])
        self.assertEqual((by_name["tcp"]["protocol"], by_name["tcp"]["default_backend"]), ("tcp", "echo"))
        self.assertEqual(by_name["tcp"]["connections_active"], 1)
        self.assertEqual(by_name["tls"]["routes"], [{"match": ["x.example"], "backend": "echo"}])
        self.assertIsNone(by_name["tls"]["default_backend"])
        self.assertEqual(by_name["http"]["routes"],
                         [{"match": ["web.example"], "backend": "echo", "acme": "auto", "redirect_https": True}])
        backends = {b["name"]: b for b in st["backends"]}
        self.assertEqual(backends["echo"], {"name": "echo", "proxy_protocol": "off", "servers": [self.backend.address]})
        self.assertEqual(st["certificates"], [])
        held.close()
        self.assert_clean_stop(proxy)

    def test_refusals_are_counted_by_reason(self):
        proxy = self.start_proxy(self.config(max_connections=1))
        held = self.connect(self.tcp_port)
        held.sendall(b"x")
        harness.recv_exactly(held, 1)
        with self.connect(self.tcp_port) as extra:
            harness.expect_closed(extra, timeout=10)
        proxy.wait_conn(outcome="refused")
        m = parse_metrics(self.metrics())
        self.assertEqual(value(m, "sniroute_refused_total", listener="tcp", reason="max_connections"), 1)
        self.assertEqual(value(m, "sniroute_refused_total", listener="tcp", reason="banned"), 0)
        self.assertEqual(value(m, "sniroute_connections_total", listener="tcp", backend="", outcome="refused"), 1)
        self.assertEqual(value(m, "sniroute_connections_active", listener="tcp"), 1)
        held.close()
        self.assert_clean_stop(proxy)

    def test_prometheus_scrapes_it(self):
        proxy = self.start_proxy(self.config())
        for n in (10, 20, 30):
            self.echo(harness.pattern_bytes(n, n))
        web = free_port()
        cfg = os.path.join(self.workdir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: sniroute\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{self.admin_port}']\n")
        log_path = os.path.join(self.workdir, "prom.log")
        with open(log_path, "w") as log:
            prom = subprocess.Popen(["prometheus", f"--config.file={cfg}",
                                     f"--storage.tsdb.path={os.path.join(self.workdir, 'tsdb')}",
                                     f"--web.listen-address=127.0.0.1:{web}"],
                                    stdout=subprocess.DEVNULL, stderr=log)
        self.addCleanup(lambda: (prom.terminate(), prom.wait(30)))
        query = urllib.parse.quote('sniroute_bytes_total{listener="tcp",direction="down"}')
        deadline = time.monotonic() + 90
        got = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/v1/query?query={query}", timeout=5) as r:
                    res = json.load(r)["data"]["result"]
                if res:
                    got = res
                    break
            except OSError:
                pass
            time.sleep(0.5)
        if got is None:
            with open(log_path) as log:
                self.fail("Prometheus never had the series; its log:\n" + log.read()[-3000:])
        self.assertEqual(got[0]["metric"]["backend"], "echo")
        self.assertEqual(float(got[0]["value"][1]), 60)
        # And the scrape itself was healthy.
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/v1/query?query=up", timeout=5) as r:
            up = json.load(r)["data"]["result"]
        self.assertEqual([float(u["value"][1]) for u in up], [1.0])
        self.assert_clean_stop(proxy)

    def test_health_readiness_and_errors(self):
        proxy = self.start_proxy(self.config())
        self.assertEqual(http_get(self.admin_port, "/healthz")[0::2], (200, b"ok\n"))
        self.assertEqual(http_get(self.admin_port, "/readyz")[0::2], (200, b"ok\n"))
        self.assertEqual(http_get(self.admin_port, "/healthz?verbose=1")[0], 200)
        self.assertEqual(http_get(self.admin_port, "/nothing")[0], 404)
        self.assertEqual(http_get(self.admin_port, "/metrics", method="POST")[0], 405)
        status, headers, body = http_get(self.admin_port, "/metrics", method="HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertGreater(int(headers["content-length"]), 100)
        # A bad head is a 400 with its reason; a huge one a 431; neither stops the listener.
        with socket.create_connection(("127.0.0.1", self.admin_port), timeout=harness.IO_TIMEOUT) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\rX\r\n\r\n")
            self.assertIn(b" 400 ", harness.read_until_eof(s).split(b"\r\n")[0])
        with socket.create_connection(("127.0.0.1", self.admin_port), timeout=harness.IO_TIMEOUT) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 10000 + b"\r\n\r\n")
            self.assertIn(b" 431 ", harness.read_until_eof(s).split(b"\r\n")[0])
        self.assertEqual(http_get(self.admin_port, "/healthz")[0], 200)

        # Reloads are counted by result.
        self.assertEqual(proxy.reload(self.config(extra_route=True))["event"], "reloaded")
        self.assertEqual(proxy.reload("[global\n")["event"], "reload_rejected")
        m = parse_metrics(self.metrics())
        self.assertEqual(value(m, "sniroute_config_reloads_total", result="ok"), 1)
        self.assertEqual(value(m, "sniroute_config_reloads_total", result="error"), 1)
        self.assertGreaterEqual(value(m, "sniroute_config_last_reload_success_timestamp_seconds"),
                                value(m, "process_start_time_seconds"))

        # Draining: not ready, still healthy, and the admin listener still answers.
        held = self.connect(self.tcp_port)
        held.sendall(b"x")
        harness.recv_exactly(held, 1)
        m0 = proxy.mark()
        proxy.signal(signal.SIGTERM)
        proxy.wait_event("draining", start=m0)
        self.assertEqual(http_get(self.admin_port, "/readyz")[0::2], (503, b"draining\n"))
        self.assertEqual(http_get(self.admin_port, "/healthz")[0], 200)
        held.close()
        self.assertEqual(proxy.wait_exit(), 0)

    def test_admin_bind_in_use_fails_start(self):
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", self.admin_port))
        blocker.listen(1)
        self.addCleanup(blocker.close)
        proxy = self.start_proxy(self.config(), wait_ready=False)
        self.assertEqual(proxy.wait_exit(), 1)
        e = proxy.wait_event("admin_listen_failed")
        self.assertEqual(e["bind"], f"127.0.0.1:{self.admin_port}")


if __name__ == "__main__":
    harness.main()

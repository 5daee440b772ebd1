"""Routing by SNI with real TLS clients and servers: each name reaches its own backend and the
client sees that backend's certificate; unknown names and hellos without SNI go to the default
backend or are refused with a TLS alert; a server that refuses connections fails over."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
from harness import ProxyTestCase, addr, free_port, render_config

harness.require_tools("openssl", "curl")  # exit 77 (skip), or 1 on CI, if one is missing

# A refused hello gets one TLS alert record: type 0x15, version 3.3, length 2, fatal (2), code.
ALERT_UNRECOGNIZED_NAME = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 112])


class RoutingTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.alpha_cert = self.cert("alpha.test")
        self.beta_cert = self.cert("beta.test")
        self.fallback_cert = self.cert("fallback.test")
        self.alpha = self.s_server(self.alpha_cert)
        self.beta = self.s_server(self.beta_cert)
        self.fallback = self.s_server(self.fallback_cert)
        self.port = free_port()

    def config(self, default=True, extra_backends=None):
        listener = {
            "name": "tls-front",
            "bind": [addr("127.0.0.1", self.port)],
            "protocol": "tls",
            "routes": [
                {"match": "alpha.test", "backend": "alpha"},
                {"match": ["beta.test", "*.wild.test"], "backend": "beta"},
            ],
        }
        if default:
            listener["default_backend"] = "fallback"
        backends = {
            "alpha": {"servers": [self.alpha.address]},
            "beta": {"servers": [self.beta.address]},
            "fallback": {"servers": [self.fallback.address]},
        }
        backends.update(extra_backends or {})
        return render_config({"client_hello_timeout": "10s"}, [listener], backends)

    def assert_s_client_sees(self, servername, cert):
        rc, out = harness.s_client(self.port, servername)
        bodies = harness.pem_bodies(out)
        self.assertTrue(bodies, f"s_client saw no certificate (rc={rc}):\n{out}")
        self.assertEqual(bodies[0], cert.pem_body, f"{servername!r} was served the wrong certificate:\n{out}")

    def test_each_sni_reaches_its_backend_with_s_client(self):
        proxy = self.start_proxy(self.config())
        self.assert_s_client_sees("alpha.test", self.alpha_cert)
        self.assert_s_client_sees("beta.test", self.beta_cert)
        self.assert_s_client_sees("alpha.test", self.alpha_cert)
        for name, backend, server in (("alpha.test", "alpha", self.alpha), ("beta.test", "beta", self.beta)):
            e = proxy.wait_conn(sni=name)
            self.assertEqual(e["backend"], backend)
            self.assertEqual(e["server"], server.address)
            self.assertEqual(e["listener"], "tls-front")
            self.assertTrue(e["client"].startswith("127.0.0.1:"), e)
            self.assertGreater(int(e["up"]), 0)
            self.assertGreater(int(e["down"]), 0)
            self.assertIn("duration_ms", e)

    def test_each_sni_reaches_its_backend_with_curl(self):
        self.start_proxy(self.config())
        for name, cert in (("alpha.test", self.alpha_cert), ("beta.test", self.beta_cert),
                           ("x.wild.test", self.beta_cert)):
            rc, code, bodies = harness.curl_certs(name, self.port)
            self.assertEqual(rc, 0, f"curl {name} failed with exit {rc}")
            self.assertEqual(code, "200", name)
            self.assertTrue(bodies, f"curl printed no certificate for {name}")
            self.assertEqual(bodies[0], cert.pem_body, f"{name} was served the wrong certificate")

    def test_sni_match_ignores_case(self):
        # RFC 6066 section 3: host names compare case-insensitively.
        self.start_proxy(self.config())
        self.assert_s_client_sees("ALPHA.Test", self.alpha_cert)

    def test_wildcard_route(self):
        proxy = self.start_proxy(self.config())
        self.assert_s_client_sees("deep.wild.test", self.beta_cert)
        self.assertEqual(proxy.wait_conn(sni="deep.wild.test")["backend"], "beta")

    def test_unknown_sni_goes_to_default_backend(self):
        proxy = self.start_proxy(self.config())
        self.assert_s_client_sees("unknown.test", self.fallback_cert)
        rc, code, bodies = harness.curl_certs("other.test", self.port)
        self.assertEqual((rc, code), (0, "200"))
        self.assertEqual(bodies[0], self.fallback_cert.pem_body)
        e = proxy.wait_conn(sni="unknown.test")
        self.assertEqual((e["backend"], e["outcome"]), ("fallback", "ok"))

    def test_no_sni_goes_to_default_backend(self):
        proxy = self.start_proxy(self.config())
        self.assert_s_client_sees(None, self.fallback_cert)
        e = proxy.wait_conn(backend="fallback")
        self.assertEqual((e["sni"], e["outcome"]), ("-", "ok"))

    def test_unknown_sni_without_default_is_refused_with_alert(self):
        proxy = self.start_proxy(self.config(default=False))
        rc, out = harness.s_client(self.port, "unknown.test")
        self.assertNotEqual(rc, 0, out)
        self.assertFalse(harness.pem_bodies(out), f"a certificate got through:\n{out}")
        self.assertRegex(out, r"unrecognized name|alert number 112", out)
        e = proxy.wait_conn(sni="unknown.test")
        self.assertEqual((e["outcome"], e["backend"]), ("no_route", "-"))
        # The same, byte for byte: exactly one alert record, then the connection is closed.
        s = self.connect(self.port)
        s.sendall(harness.fixture("curl-www.bin"))
        how, data = harness.expect_closed(s)
        self.assertEqual(data, ALERT_UNRECOGNIZED_NAME)
        self.assertEqual(how, "eof")
        proxy.wait_conn(sni="www.example.com", outcome="no_route")

    def test_no_sni_without_default_is_refused(self):
        proxy = self.start_proxy(self.config(default=False))
        s = self.connect(self.port)
        s.sendall(harness.fixture("openssl3-noservername.bin"))
        how, data = harness.expect_closed(s)
        self.assertEqual(data, ALERT_UNRECOGNIZED_NAME)
        e = proxy.wait_conn(outcome="no_route")
        self.assertEqual(e["sni"], "-")

    def test_failover_when_first_server_refuses(self):
        dead = addr("127.0.0.1", free_port())  # nothing listens there: connect is refused
        proxy = self.start_proxy(self.config(extra_backends={
            "alpha": {"servers": [dead, self.alpha.address]},
        }))
        self.assert_s_client_sees("alpha.test", self.alpha_cert)
        attempt = proxy.wait_event("backend_attempt_failed", backend="alpha")
        self.assertEqual(attempt["server"], dead)
        e = proxy.wait_conn(sni="alpha.test")
        self.assertEqual((e["server"], e["outcome"]), (self.alpha.address, "ok"))
        # The next connection tries the servers in order again, and again succeeds.
        rc, code, bodies = harness.curl_certs("alpha.test", self.port)
        self.assertEqual((rc, code, bodies[:1]), (0, "200", [self.alpha_cert.pem_body]))

    def test_failover_when_first_server_does_not_answer(self):
        # connect() to a full accept queue hangs; connect_timeout moves on to the next server.
        stalled = self.stalled_listener()
        hello = harness.fixture("curl-www.bin")
        live = self.tcp_server(harness.tagged_echo(b"L", len(hello)))
        proxy = self.start_proxy(render_config({"connect_timeout": "1s"}, [
            {"name": "tls", "bind": [addr("127.0.0.1", self.port)], "protocol": "tls", "default_backend": "pair"},
        ], {"pair": {"servers": [stalled.address, live.address]}}))
        s = self.connect(self.port)
        t0 = time.monotonic()
        s.sendall(hello)
        self.assertEqual(harness.recv_exactly(s, 1), b"L")
        self.assertLess(time.monotonic() - t0, 8.0, "failover took far longer than connect_timeout=1s")
        self.assertEqual(bytes(live.wait_conn(0).received), hello)
        attempt = proxy.wait_event("backend_attempt_failed")
        self.assertEqual(attempt["server"], stalled.address)
        self.assertIn("timeout", attempt["error"])
        s.close()
        e = proxy.wait_conn()
        self.assertEqual((e["server"], e["outcome"]), (live.address, "ok"))

    def test_all_servers_silent_is_backend_down(self):
        stalled = self.stalled_listener()
        proxy = self.start_proxy(render_config({"connect_timeout": "1s"}, [
            {"name": "tls", "bind": [addr("127.0.0.1", self.port)], "protocol": "tls", "default_backend": "silent"},
        ], {"silent": {"servers": [stalled.address, stalled.address]}}))
        s = self.connect(self.port)
        s.sendall(harness.fixture("curl-www.bin"))
        how, data = harness.expect_closed(s, timeout=20)
        self.assertEqual(data, bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 80]))  # internal_error alert
        e = proxy.wait_conn()
        self.assertEqual(e["outcome"], "backend_down")
        self.assertEqual(len(proxy.events("backend_attempt_failed")), 2)

    def test_all_servers_down_is_backend_down(self):
        dead1, dead2 = addr("127.0.0.1", free_port()), addr("127.0.0.1", free_port())
        proxy = self.start_proxy(self.config(extra_backends={"alpha": {"servers": [dead1, dead2]}}))
        rc, out = harness.s_client(self.port, "alpha.test")
        self.assertNotEqual(rc, 0, out)
        self.assertFalse(harness.pem_bodies(out), out)
        self.assertRegex(out, r"internal error|alert number 80", out)
        e = proxy.wait_conn(sni="alpha.test")
        self.assertEqual((e["outcome"], e["backend"]), ("backend_down", "alpha"))
        failed = [a["server"] for a in proxy.events("backend_attempt_failed")]
        self.assertEqual(failed[:2], [dead1, dead2])

    def test_every_worker_routes_by_its_snapshot(self):
        # Two event loops share the port (SO_REUSEPORT) and route with their own pointer to the
        # shared snapshot. Raw captured hellos keep 24 connections quick; a backend that echoes
        # behind a tag shows where each one went. All are open at once, so that both workers
        # accept, route and connect at the same time: under ThreadSanitizer, sessions handled
        # one after another would be ordered by the snapshot's shared reference count, and a
        # race between the workers could go unseen.
        hellos = [("curl-www.bin", b"W"), ("openssl3-mail.bin", b"M"), ("openssl3-noservername.bin", b"F"),
                  ("gnutls-imap.bin", b"W")]  # exact beats *.example.com; no SNI is the default
        backends = {tag: self.tcp_server(harness.tagged_echo(tag)) for tag in (b"M", b"W", b"F")}
        proxy = self.start_proxy(render_config({"workers": 2, "client_hello_timeout": "10s"}, [{
            "name": "tls-front", "bind": [addr("127.0.0.1", self.port)], "protocol": "tls", "default_backend": "f",
            "routes": [{"match": "mail.example.com", "backend": "m"}, {"match": "*.example.com", "backend": "w"}],
        }], {"m": {"servers": [backends[b"M"].address]}, "w": {"servers": [backends[b"W"].address]},
             "f": {"servers": [backends[b"F"].address]}}))
        n = 24
        socks = [self.connect(self.port) for _ in range(n)]
        for i, s in enumerate(socks):
            s.sendall(harness.fixture(hellos[i % len(hellos)][0]))
        for i, s in enumerate(socks):
            name, tag = hellos[i % len(hellos)]
            self.assertEqual(harness.recv_exactly(s, 1), tag, f"connection {i} with {name}")
            s.close()
        proxy.wait_count("conn", n)
        self.assert_clean_stop(proxy)
        self.assert_every_worker_accepted(proxy)


if __name__ == "__main__":
    harness.main()

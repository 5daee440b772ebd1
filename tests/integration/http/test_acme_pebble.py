"""Real ACME issuance through sniroute, against Pebble, with certbot and lego.

One Pebble (with pebble-challtestsrv as its DNS: every name is 127.0.0.1) validates through
one sniroute: Pebble's httpPort is sniroute's http listener and its tlsPort is sniroute's tls
listener, so every validation request crosses sniroute exactly as a CA's would cross port 80
or 443. Each test issues for its own name:

  webroot.sniroute.test   acme = "auto",    redirect_https   certbot --webroot into [acme].webroot
  wildduck.sniroute.test  acme = "backend", redirect_https   lego --http serving as the backend
  alpn.sniroute.test      tls listener route                 lego --tls behind SNI passthrough
  stateless.sniroute.test acme = "local",   redirect_https   [acme].account_thumbprint only

Every certificate must exist, name its host and nothing else, and verify against Pebble's
root (fetched from the management port) through the intermediate(s) Pebble sent.
"""

import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acme_harness as h  # noqa: E402

TOOLS = ("pebble", "pebble-challtestsrv", "certbot", "lego", "openssl")
h.require_tools(*TOOLS)  # exit 77 (skip), or 1 on CI, if one is missing

WEBROOT_NAME = "webroot.sniroute.test"
BACKEND_NAME = "wildduck.sniroute.test"
ALPN_NAME = "alpn.sniroute.test"
STATELESS_NAME = "stateless.sniroute.test"


class IssuanceThroughSniroute(unittest.TestCase):
    issuances = []  # (test, client, seconds)

    @classmethod
    def setUpClass(cls):
        cls.class_started = time.monotonic()
        cls.tmp = h.tempdir("sniroute-acme-")
        cls.dir = cls.tmp.name
        cls.http_port, cls.tls_port, cls.dead_port, cls.lego_http_port, cls.lego_tls_port = h.free_ports(5)
        cls.webroot = os.path.join(cls.dir, "webroot")
        os.makedirs(cls.webroot)
        cls.sniroute = None
        cls.pebble = None
        try:
            cls.sniroute = h.Sniroute(cls.dir, cls.config())
            cls.sniroute.start()
            cls.pebble = h.Pebble(cls.dir, cls.http_port, cls.tls_port).start()
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def config(cls, thumbprint=None):
        acme = {"webroot": cls.webroot}
        if thumbprint:
            acme["account_thumbprint"] = thumbprint
        return h.render_config(
            global_={"client_hello_timeout": "10s", "connect_timeout": "5s"},
            acme=acme,
            listeners=[
                {"name": "http", "bind": [h.addr("127.0.0.1", cls.http_port)], "protocol": "http", "routes": [
                    # Answered from the webroot; anything not answered would go to a dead backend.
                    {"match": [WEBROOT_NAME], "backend": "dead", "acme": "auto", "redirect_https": True},
                    {"match": [BACKEND_NAME], "backend": "lego-http", "acme": "backend", "redirect_https": True},
                    {"match": [STATELESS_NAME], "backend": "dead", "acme": "local", "redirect_https": True},
                ]},
                {"name": "https", "bind": [h.addr("127.0.0.1", cls.tls_port)], "protocol": "tls", "routes": [
                    {"match": [ALPN_NAME], "backend": "lego-tls"},
                ]},
            ],
            backends={
                "dead": {"servers": [h.addr("127.0.0.1", cls.dead_port)]},
                "lego-http": {"servers": [h.addr("127.0.0.1", cls.lego_http_port)]},
                "lego-tls": {"servers": [h.addr("127.0.0.1", cls.lego_tls_port)]},
            })

    @classmethod
    def _cleanup(cls):
        rc = None
        try:
            if cls.pebble:
                cls.pebble.stop()
        finally:
            if cls.sniroute and cls.sniroute.proc:
                try:
                    rc = cls.sniroute.stop()
                finally:
                    cls.sniroute.kill()
            cls.tmp.cleanup()
        return rc

    @classmethod
    def tearDownClass(cls):
        log_text = cls.sniroute.log_text() if cls.sniroute else ""
        rc = cls._cleanup()
        total = time.monotonic() - cls.class_started
        n = len(cls.issuances)
        lines = [f"\n  Pebble issuance timing: {n} issuances, class total {total:.1f}s"]
        for test, client, secs in cls.issuances:
            lines.append(f"    {client:<26} {secs:6.1f}s  ({test})")
        if n:
            lines.append(f"    mean per issuance {sum(s for _, _, s in cls.issuances) / n:.1f}s")
        sys.stderr.write("\n".join(lines) + "\n")
        if rc != 0:
            raise AssertionError(f"sniroute exited {rc} after SIGTERM (want 0); log:\n{log_text}")

    # --- helpers ----------------------------------------------------------------------------

    def workdir(self, name):
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        return d

    def check_cert(self, name, leaf_or_bundle, intermediates, wd):
        """The certificate exists, names exactly `name`, and chains to Pebble's root."""
        self.assertTrue(os.path.isfile(leaf_or_bundle), f"no certificate at {leaf_or_bundle}")
        self.assertTrue(os.path.isfile(intermediates), f"no chain at {intermediates}")
        leaf = os.path.join(wd, f"{name}.leaf.pem")
        with open(leaf, "w") as f:
            f.write(h.split_pem(leaf_or_bundle)[0])
        self.assertEqual(h.cert_dns_names(leaf), [name])
        h.verify_chain(self.pebble.root_pem, leaf, intermediates, wd)

    def record(self, client, secs):
        self.issuances.append((self._testMethodName, client, secs))

    def http_events(self, start, **fields):
        return self.sniroute.events("http", start=start, **fields)

    # --- tests ------------------------------------------------------------------------------

    def test_certbot_webroot_on_auto_route_with_redirect(self):
        wd = self.workdir("certbot-webroot")
        # Before: the host redirects, and a challenge nobody wrote is not redirected but goes
        # to the (dead) backend, as acme = "auto" says.
        m = self.sniroute.mark()
        r = h.get(self.http_port, WEBROOT_NAME, "/")
        self.assertEqual((r.status, r.header("location")), (308, f"https://{WEBROOT_NAME}/"))
        # The log line may trail the response: wait for it, so it is not counted below.
        self.sniroute.wait_event("http", start=m, host=WEBROOT_NAME, path="/", status=308)
        m = self.sniroute.mark()
        cert, chain, secs = self.pebble.certbot_webroot(WEBROOT_NAME, self.webroot, wd)
        self.record("certbot --webroot", secs)
        self.check_cert(WEBROOT_NAME, cert, chain, wd)
        answered = self.http_events(m, host=WEBROOT_NAME, source="webroot", status=200)
        self.assertTrue(answered, f"no challenge answered from the webroot:\n{self.sniroute.log_text()}")
        for e in answered:
            self.assertTrue(e["path"].startswith("/.well-known/acme-challenge/"), e)
        # Nothing for this host was redirected or forwarded while certbot ran.
        self.assertFalse(self.http_events(m, host=WEBROOT_NAME, source="redirect"))
        self.assertFalse([e for e in self.sniroute.events("conn", start=m) if e.get("sni") == WEBROOT_NAME])

    def test_lego_http_as_backend_that_runs_its_own_acme(self):
        wd = self.workdir("lego-http")
        # While no lego runs, a stand-in backend on lego's port shows what goes where: the
        # challenge path is forwarded (not redirected), everything else gets 308.
        probe = h.RecordingBackend(port=self.lego_http_port)
        try:
            req = (f"GET /.well-known/acme-challenge/probe-Token_1 HTTP/1.1\r\nHost: {BACKEND_NAME}\r\n"
                   "Connection: close\r\n\r\n").encode()
            r = h.http_request(self.http_port, req)
            self.assertEqual((r.status, r.body), (200, b"backend"))
            got = probe.wait_connections(1)
            self.assertEqual(got[0], req)
        finally:
            probe.close()
        r = h.get(self.http_port, BACKEND_NAME, "/")
        self.assertEqual((r.status, r.header("location")), (308, f"https://{BACKEND_NAME}/"))
        r = h.get(self.http_port, f"{BACKEND_NAME}:8080", "/inbox?folder=1")
        self.assertEqual((r.status, r.header("location")), (308, f"https://{BACKEND_NAME}/inbox?folder=1"))
        # The log line may trail the response: wait for it, so it is not counted below.
        self.sniroute.wait_event("http", host=BACKEND_NAME, path="/inbox?folder=1", status=308)

        m = self.sniroute.mark()
        cert, issuer, secs = self.pebble.lego_run(
            BACKEND_NAME, ["--http", "--http.port", h.addr("127.0.0.1", self.lego_http_port)], wd)
        self.record("lego --http (backend)", secs)
        self.check_cert(BACKEND_NAME, cert, issuer, wd)
        fwd = [e for e in self.sniroute.events("conn", start=m)
               if e.get("sni") == BACKEND_NAME and e.get("backend") == "lego-http"]
        self.assertTrue(fwd, f"no forwarded validation for {BACKEND_NAME}:\n{self.sniroute.log_text()}")
        self.assertFalse(self.http_events(m, host=BACKEND_NAME),
                         "sniroute answered a request for the backend-ACME host itself")

    def test_lego_tls_alpn_through_sni_passthrough(self):
        wd = self.workdir("lego-tls")
        m = self.sniroute.mark()
        cert, issuer, secs = self.pebble.lego_run(
            ALPN_NAME, ["--tls", "--tls.port", h.addr("127.0.0.1", self.lego_tls_port)], wd)
        self.record("lego --tls (TLS-ALPN-01)", secs)
        self.check_cert(ALPN_NAME, cert, issuer, wd)
        relayed = [e for e in self.sniroute.events("conn", start=m)
                   if e.get("listener") == "https" and e.get("sni") == ALPN_NAME and e.get("backend") == "lego-tls"]
        self.assertTrue(relayed, f"no TLS-ALPN-01 validation crossed sniroute:\n{self.sniroute.log_text()}")

    def test_stateless_thumbprint_with_empty_webroot(self):
        wd = self.workdir("lego-stateless")
        email = "stateless@example.com"
        lego_path = self.pebble.lego_path(wd)
        key_path = self.pebble.lego_account_key_path(lego_path, email)
        os.makedirs(os.path.dirname(key_path))
        h.make_p256_key(key_path)
        with open(key_path, "rb") as f:
            key_before = f.read()
        thumbprint = h.jwk_thumbprint_p256(key_path)

        # Without a thumbprint, a local-only route has no answer for an unknown token.
        token = "Stateless-probe_token"
        r = h.get(self.http_port, STATELESS_NAME, f"/.well-known/acme-challenge/{token}")
        self.assertEqual(r.status, 404)

        self.sniroute.reload(self.config(thumbprint=thumbprint))
        try:
            r = h.get(self.http_port, STATELESS_NAME, f"/.well-known/acme-challenge/{token}")
            self.assertEqual((r.status, r.body), (200, f"{token}.{thumbprint}".encode()))
            # lego writes its token files where sniroute does not look: only the thumbprint
            # can answer.
            lego_webroot = os.path.join(wd, "lego-webroot-not-served")
            os.makedirs(lego_webroot)
            m = self.sniroute.mark()
            cert, issuer, secs = self.pebble.lego_run(
                STATELESS_NAME, ["--http", "--http.webroot", lego_webroot], wd, email=email)
            self.record("lego (stateless)", secs)
            self.check_cert(STATELESS_NAME, cert, issuer, wd)
            answered = self.http_events(m, host=STATELESS_NAME, source="thumbprint", status=200)
            self.assertTrue(answered, f"no stateless answer logged:\n{self.sniroute.log_text()}")
            with open(key_path, "rb") as f:
                self.assertEqual(f.read(), key_before, "lego did not use the account key we made")
        finally:
            self.sniroute.reload(self.config())
        r = h.get(self.http_port, STATELESS_NAME, f"/.well-known/acme-challenge/{token}")
        self.assertEqual(r.status, 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""The built-in ACME client when the CA is down, answers garbage, or refuses the order: a clear
acme_failed error, a back-off (no tight retry loop), no crash, traffic still served, and the
certificate already installed left in place."""

import os
import stat
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acme_client_harness as ah  # noqa: E402

TOOLS = ("pebble", "pebble-challtestsrv", "openssl")
ah.require_tools(*TOOLS)  # exit 77 (skip), or 1 on CI, if one is missing
# Pebble 2.4.0 panics on a blocklist entry with more labels than a name it is asked for
# (index out of range in NewOrder), so the blocked name is short and the others are longer.
BLOCKED = "blocked.test"
OBSERVE_S = 3.0  # how long a failing client is watched for retries


class CaFailureTest(ah.PebbleTestCase):
    tmp_prefix = "sniroute-acme-cafail-"

    @classmethod
    def pebble_extra(cls):
        return {"domainBlocklist": [BLOCKED]}

    def cert(self, domains):
        return [{"name": "fail", "domains": domains, "cert_file": self.cert_file, "key_file": self.key_file}]

    def start_against(self, directory, http_port=None):
        """sniroute with [acme] directory = URL (trusting the harness's listener CA)."""
        http_port = http_port or ah.free_port()
        text = ah.sniroute_config(http_port, {"directory": directory, "ca_bundle": self.pebble.listener_ca},
                                  os.path.join(self.wd, "storage"), self.cert(["fail.test"]))
        return self.sniroute(text), http_port

    def assert_fails_and_backs_off(self, s, http_port, *words):
        """One acme_failed with a clear error and retry_in_s > 0; then no further attempt for
        OBSERVE_S seconds, the process up and serving, nothing written."""
        e = s.wait_event("acme_failed", 40, certificate="fail")
        ah.section(f"acme_failed: error={e.get('error')!r} retry_in_s={e.get('retry_in_s')}")
        low = e.get("error", "").lower()
        self.assertTrue(any(w.lower() in low for w in words), f"unclear error (want one of {words}): {e}")
        self.assertGreater(int(e["retry_in_s"]), 0, e)
        self.assertGreaterEqual(int(e["retry_in_s"]), 30, f"retries too soon: {e}")
        time.sleep(OBSERVE_S)
        self.assertTrue(s.alive(), f"sniroute exited:\n{s.log_text()}")
        attempts = s.events("acme_renewing", certificate="fail")
        self.assertEqual(len(attempts), 1, f"{len(attempts)} attempts in {OBSERVE_S}s: retrying in a tight loop")
        self.assertEqual(len(s.events("acme_failed")), 1)
        self.assertEqual(s.events("acme_stopped"), [], "the ACME client stopped instead of backing off")
        ah.assert_serving(http_port)
        self.assertEqual(os.listdir(self.out), [])
        # The error is kept for the operator.
        rc, out = s.certs("list")
        self.assertIn("last_error:", out)
        self.assertNotRegex(out, r"last_error:\s+-\n", out)
        return e

    # ------------------------------------------------------------------------------------------

    def test_directory_on_closed_port(self):
        port = ah.closed_port()
        url = f"https://127.0.0.1:{port}/dir"
        s, http_port = self.start_against(url)
        e = self.assert_fails_and_backs_off(s, http_port, "refused", "connect")
        self.assertIn(str(port), e["error"], "the error does not say which address failed")
        self.assertEqual(s.stop(), 0)

    def test_directory_answers_non_json(self):
        garbage = self.garbage_ca(ah.http_response(200, "<html>this is not an ACME directory</html>", "text/html"))
        s, http_port = self.start_against(garbage.url)
        self.assert_fails_and_backs_off(s, http_port, "invalid JSON", "directory")
        self.assertEqual(garbage.count(), 1, f"requests: {garbage.requests}")
        self.assertEqual(s.stop(), 0)

    def test_directory_json_without_endpoints(self):
        garbage = self.garbage_ca(ah.http_response(200, '{"meta": {}, "newNonce": 7}'))
        s, http_port = self.start_against(garbage.url)
        self.assert_fails_and_backs_off(s, http_port, "newNonce", "newAccount", "newOrder")
        self.assertEqual(s.stop(), 0)

    def test_directory_answers_non_http_bytes(self):
        garbage = self.garbage_ca(b"\x00\xffSSH-2.0-garbage\r\n" + bytes(range(256)) * 4)
        s, http_port = self.start_against(garbage.url)
        self.assert_fails_and_backs_off(s, http_port, "http", "response", "malformed", "invalid", "parse")
        self.assertEqual(s.stop(), 0)

    def test_directory_server_error_with_problem(self):
        garbage = self.garbage_ca(
            ah.http_response(503, '{"type":"urn:ietf:params:acme:error:serverInternal","detail":"down for repairs"}',
                             "application/problem+json", "Retry-After: 120\r\n"))
        s, http_port = self.start_against(garbage.url)
        e = self.assert_fails_and_backs_off(s, http_port, "down for repairs")
        self.assertGreaterEqual(int(e["retry_in_s"]), 120, f"Retry-After: 120 not honoured: {e}")
        self.assertEqual(s.stop(), 0)

    def test_refused_order_keeps_old_certificate(self):
        text = ah.sniroute_config(self.http_port, self.pebble, os.path.join(self.wd, "storage"),
                                  self.cert(["www.refuse.test"]))
        s = self.sniroute(text)
        s.wait_event("acme_installed", ah.ISSUE_TIMEOUT, certificate="fail")
        with open(self.cert_file, "rb") as f:
            old_cert = f.read()
        with open(self.key_file, "rb") as f:
            old_key = f.read()
        old_ino = os.stat(self.cert_file).st_ino
        before = sorted(os.listdir(self.out))

        # The operator adds a name the CA refuses (Pebble's domainBlocklist): the order fails.
        m = s.mark()
        s.reload(ah.sniroute_config(self.http_port, self.pebble, os.path.join(self.wd, "storage"),
                                    self.cert(["www.refuse.test", BLOCKED])))
        auto = s.wait_event("acme_failed", 30, start=m, certificate="fail")
        ah.section(f"refused order: {auto['error']}")
        self.assertIn(BLOCKED, auto["error"])
        m = s.mark()
        rc, out = s.certs("renew", "fail")
        ah.section(f"`certs renew fail` against a refusing CA: exit {rc}: {out.strip()}")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("error", out)
        self.assertTrue("rejectedIdentifier" in out or BLOCKED in out, f"the refusal is not reported: {out}")
        s.wait_event("acme_failed", 5, start=m, certificate="fail")
        self.assertEqual(s.events("acme_installed", start=m), [])

        with open(self.cert_file, "rb") as f:
            self.assertEqual(f.read(), old_cert, "cert_file changed after a refused order")
        with open(self.key_file, "rb") as f:
            self.assertEqual(f.read(), old_key, "key_file changed after a refused order")
        self.assertEqual(os.stat(self.cert_file).st_ino, old_ino)
        self.assertEqual(sorted(os.listdir(self.out)), before, "files appeared or vanished in the output dir")
        self.assertTrue(ah.key_matches_cert(self.cert_file, self.key_file))
        self.assertEqual(stat.S_IMODE(os.stat(self.key_file).st_mode), 0o600)
        self.assertTrue(s.alive())
        ah.assert_serving(self.http_port)
        rc, out = s.certs("list")
        self.assertRegex(out, r"last_error:\s+\S*(rejectedIdentifier|%s)" % BLOCKED.replace(".", r"\."), out)
        self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""The Mailu case with a real Dovecot: sniroute issues the certificate Dovecot reads, reloads
Dovecot (or not), and `sniroute certs check` tells whether IMAPS really serves it.

Dovecot is a private instance (`dovecot -F -c CONF` in a temp dir, imaps on a free loopback
port), started with a self-signed certificate at cert_file/key_file before sniroute issues.
sniroute routes the managed names on a `protocol = "tls"` listener to Dovecot's imaps port.
"""

import json
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acme_client_harness as ah  # noqa: E402

TOOLS = ("pebble", "pebble-challtestsrv", "openssl", "dovecot", "doveadm")
ah.require_tools(*TOOLS)  # exit 77 (skip), or 1 on CI, if one is missing
DOMAINS = ["mail.mailu.test", "imap.mailu.test"]


class MailuDovecotTest(ah.PebbleTestCase):
    tmp_prefix = "sniroute-acme-mailu-"

    def setUp(self):
        super().setUp()
        ah.self_signed(self.cert_file, self.key_file, DOMAINS[0])
        self.dovecot = ah.Dovecot(self.cert_file, self.key_file)
        self.addCleanup(self.dovecot.stop)
        self.dovecot.start()
        self.assertEqual(self.served(), ah.leaf_der(self.cert_file), "dovecot does not serve the self-signed cert")
        self.imaps_port = ah.free_port()
        self.admin_port = ah.free_port()
        self.s = None

    def extra_logs(self):
        return {"dovecot": self.dovecot.log}

    def metric(self, metric, **labels):
        return ah.metric_value(ah.admin_metrics(self.admin_port), metric, **labels)

    def served(self, sni=DOMAINS[0]):
        return ah.served_leaf(self.dovecot.port, sni)

    def start_sniroute(self, deploy):
        text = ah.sniroute_config(
            self.http_port, self.pebble, os.path.join(self.wd, "storage"),
            [{"name": "mail", "domains": DOMAINS, "cert_file": self.cert_file, "key_file": self.key_file,
              "deploy": deploy, "deploy_timeout": "20s"}],
            tls_listeners=[{"name": "imaps", "bind": [ah.addr("127.0.0.1", self.imaps_port)], "protocol": "tls",
                            "routes": [{"match": DOMAINS, "backend": "dovecot"}]}],
            backends={"dovecot": {"servers": [ah.addr("127.0.0.1", self.dovecot.port)]}},
            admin_port=self.admin_port)
        self.s = self.sniroute(text)
        return self.s

    def wait_served_ok(self, start=0, timeout=30):
        for d in DOMAINS:
            self.s.wait_event("served_ok", timeout, start=start, certificate="mail", sni=d)
        self.assertEqual(self.s.events("served_stale", start=start), [],
                         "a stale report before the served certificate caught up")

    def check_lines(self, out):
        """The `certs check` rows for the imaps listener, by name."""
        rows = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 4 and f[0] == "imaps":
                rows[f[2]] = line
        return rows

    def certs_check(self, when, ok):
        """`sniroute certs check`: exit 0 if ok, else non-zero; one imaps row per name, with
        the listener's port and the dovecot backend. Returns (output, {name: row})."""
        rc, out = self.s.certs("check")
        ah.section(f"`sniroute certs check` {when}, exit {rc}:\n" + out.rstrip())
        if ok:
            self.assertEqual(rc, 0, f"certs check {when}:\n{out}")
        else:
            self.assertNotEqual(rc, 0, f"certs check passed although dovecot is stale:\n{out}")
        rows = self.check_lines(out)
        self.assertEqual(sorted(rows), sorted(DOMAINS), out)
        for line in rows.values():
            f = line.split()
            self.assertEqual(f[1], f":{self.imaps_port}", line)
            self.assertEqual(f[3], "dovecot", line)
        return out, rows

    def assert_check_current(self, when):
        out, rows = self.certs_check(when, ok=True)
        for line in rows.values():
            f = line.split()
            self.assertEqual(f[4], ah.cert_not_after(self.cert_file), line)
            self.assertEqual(f[6], "yes", f"managed column is not 'yes': {line}")
            self.assertIn("Pebble", line, "issuer is not Pebble's intermediate")
        return out

    # ------------------------------------------------------------------------------------------

    def test_deploy_reloads_dovecot_and_check_passes(self):
        s = self.start_sniroute([self.dovecot.reload_command()])
        s.wait_event("acme_installed", ah.ISSUE_TIMEOUT, certificate="mail")
        dep = s.wait_event("deploy", 30, certificate="mail")
        self.assertEqual(dep.get("exit"), "0", dep)
        self.wait_served_ok()
        self.assertEqual(self.served(), ah.leaf_der(self.cert_file), "dovecot does not serve the issued cert")
        self.assert_check_current("after issuance (deploy = doveadm reload)")

        old_serial = ah.cert_serial(self.cert_file)
        m = s.mark()
        t0 = time.monotonic()
        rc, out = s.certs("renew", "mail")
        ah.section(f"`certs renew mail` with doveadm reload deploy: exit {rc} after {time.monotonic() - t0:.2f}s: "
                   f"{out.strip()}")
        self.assertEqual(rc, 0, f"{out}\n{s.log_text()}\n{self.dovecot.log()}")
        self.assertNotEqual(ah.cert_serial(self.cert_file), old_serial)
        self.wait_served_ok(start=m, timeout=5)
        for d in DOMAINS:
            self.assertEqual(self.served(d), ah.leaf_der(self.cert_file), f"dovecot serves a stale cert for {d}")
        self.assert_check_current("after renewal (deploy = doveadm reload)")
        rc, out = s.certs("list")
        self.assertEqual(rc, 0, out)
        self.assertEqual(out.count("current"), len(DOMAINS), out)
        # The same in /metrics: the expiry on disk, two renewals, the port current, no failed deploy.
        self.assertEqual(self.metric("sniroute_certificate_not_after_timestamp_seconds", name="mail"),
                         ah.cert_not_after_unix(self.cert_file))
        self.assertEqual(self.metric("sniroute_certificate_renewals_total", name="mail", result="ok"), 2)
        self.assertEqual(self.metric("sniroute_certificate_renewals_total", name="mail", result="error"), 0)
        self.assertEqual(self.metric("sniroute_certificate_served_current", name="mail", listener="imaps"), 1)
        self.assertEqual(self.metric("sniroute_deploy_failures_total", name="mail"), 0)
        self.assertEqual(s.stop(), 0)

    def test_no_deploy_leaves_dovecot_stale_and_check_says_so(self):
        s = self.start_sniroute([])
        s.wait_event("acme_installed", ah.ISSUE_TIMEOUT, certificate="mail")
        # The admin reloads Dovecot by hand once after setting things up...
        m = s.mark()
        self.dovecot.reload()
        ah.wait_until(lambda: self.served() == ah.leaf_der(self.cert_file), 10, "dovecot to serve the issued cert")
        s.wait_event("served_ok", 30, certificate="mail", sni=DOMAINS[0])
        self.assert_check_current("after issuance + manual doveadm reload")

        # ...and then a renewal with no deploy command leaves Dovecot on the old certificate.
        old_leaf = ah.leaf_der(self.cert_file)
        old_not_after = ah.cert_not_after(self.cert_file)
        old_serial = ah.cert_serial(self.cert_file)
        m = s.mark()
        t0 = time.monotonic()
        rc, out = s.certs("renew", "mail")
        ah.section(f"`certs renew mail` without deploy: exit {rc} after {time.monotonic() - t0:.2f}s: {out.strip()}")
        self.assertNotEqual(ah.cert_serial(self.cert_file), old_serial, "no renewal happened")
        self.assertEqual(self.served(), old_leaf, "dovecot changed certificate without a reload?")
        self.assertNotEqual(rc, 0, f"certs renew reported success while dovecot is stale: {out}")
        self.assertIn("dovecot", out)
        self.assertIn(f":{self.imaps_port}", out)

        stale = s.wait_event("served_stale", 5, start=m, certificate="mail", sni=DOMAINS[0])
        # The Mailu admin's failure, as a scrape sees it: the port serves a stale certificate.
        self.assertEqual(self.metric("sniroute_certificate_served_current", name="mail", listener="imaps"), 0)
        status, _, body = ah.http_get(self.admin_port, "/status")
        self.assertEqual(status, 200)
        cert = json.loads(body)["certificates"][0]
        self.assertEqual((cert["name"], cert["served"]), ("mail", [{"listener": "imaps", "current": False}]))
        self.assertEqual(cert["not_after"], ah.cert_not_after_unix(self.cert_file))
        self.assertIn("dovecot", stale["error"])
        self.assertIn(f":{self.imaps_port}", stale["error"])
        self.assertIn(old_not_after, stale["error"])
        self.assertIn(old_serial, ah.norm_serial(stale["error"].split("serial")[-1].strip(" )")))

        out, rows = self.certs_check("after renewal without deploy", ok=False)
        for line in rows.values():
            f = line.split()
            self.assertEqual(f[4], old_not_after, f"check does not show what dovecot really serves: {line}")
            self.assertEqual(f[6], "STALE", line)

        rc, out = s.certs("list")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("STALE", out)
        self.assertRegex(out, r"last_error:\s+dovecot on :%d" % self.imaps_port, out)

        # A reload by hand fixes it, and check agrees.
        self.dovecot.reload()
        ah.wait_until(lambda: self.served() == ah.leaf_der(self.cert_file), 10, "dovecot to serve the new cert")
        self.assert_check_current("after a manual doveadm reload")
        self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)

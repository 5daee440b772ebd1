"""External Account Binding against Pebble's EAB example configuration
(externalAccountBindingRequired = true, the MAC keys from
/usr/share/doc/pebble/examples/pebble-config-external-account-bindings.json)."""

import base64
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acme_client_harness as ah  # noqa: E402

TOOLS = ("pebble", "pebble-challtestsrv", "openssl")
ah.require_tools(*TOOLS, files={ah.EAB_EXAMPLE: "pebble"})  # exit 77 (skip), or 1 on CI, if one is missing


class EabTest(ah.PebbleTestCase):
    tmp_prefix = "sniroute-acme-eab-"

    @classmethod
    def pebble_extra(cls):
        cls.keys = ah.eab_example_keys()
        return {"externalAccountBindingRequired": True, "externalAccountMACKeys": cls.keys}

    def start(self, eab):
        text = ah.sniroute_config(self.http_port, self.pebble, os.path.join(self.wd, "storage"),
                                  [{"name": "eab", "domains": ["eab.test", "www.eab.test"],
                                    "cert_file": self.cert_file, "key_file": self.key_file}], acme_extra=eab)
        return self.sniroute(text)

    def assert_failed_cleanly(self, s, *words):
        e = s.wait_event("acme_failed", ah.ISSUE_TIMEOUT, certificate="eab")
        ah.section(f"acme_failed: {e.get('error')} (retry_in_s={e.get('retry_in_s')})")
        low = e.get("error", "").lower()
        self.assertTrue(any(w.lower() in low for w in words), f"unclear error (want one of {words}): {e}")
        self.assertGreater(int(e["retry_in_s"]), 0)
        self.assertTrue(s.alive(), "sniroute exited after the CA refused the account")
        ah.assert_serving(self.http_port)
        self.assertFalse(os.path.exists(self.cert_file))
        self.assertEqual(os.listdir(self.out), [])
        self.assertEqual(s.events("acme_stopped"), [], "the ACME client stopped instead of backing off")
        return e

    def test_eab_issues(self):
        kid = sorted(self.keys)[0]
        s = self.start({"eab_kid": kid, "eab_hmac_key": self.keys[kid]})
        s.wait_event("acme_installed", ah.ISSUE_TIMEOUT, certificate="eab")
        leaf, inter = ah.write_chain_parts(self.cert_file, self.wd)
        ah.verify_chain(self.pebble.root_pem, leaf, inter, self.wd)
        self.assertEqual(ah.cert_dns_names(self.cert_file), ["eab.test", "www.eab.test"])
        self.assertTrue(ah.key_matches_cert(self.cert_file, self.key_file))
        self.assertEqual(s.events("acme_failed"), [])
        self.assertEqual(s.stop(), 0)

    def test_wrong_hmac_key_fails_clearly_and_keeps_running(self):
        kid = sorted(self.keys)[0]
        # Well-formed (base64url, same length) but not the key the CA has for this kid.
        wrong = base64.urlsafe_b64encode(bytes(48)).rstrip(b"=").decode()
        self.assertNotEqual(wrong, self.keys[kid])
        s = self.start({"eab_kid": kid, "eab_hmac_key": wrong})
        self.assert_failed_cleanly(s, "externalAccountBinding", "external account", "eab", "mac", "hmac")
        self.assertEqual(s.stop(), 0)

    def test_missing_eab_when_required_fails_clearly(self):
        s = self.start({})
        self.assert_failed_cleanly(s, "externalAccountBinding", "external account", "eab")
        self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)

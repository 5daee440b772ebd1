"""ClientHello framing: a hello split across reads, re-framed across TLS records, or sent a byte
at a time reaches the backend byte for byte; a client that stalls mid-hello meets the
client_hello_timeout; junk and oversized hellos are refused.

The backend here is a Python recorder: it reads until EOF, so the test compares exactly what
the backend received with exactly what the client sent."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
from harness import ProxyTestCase, addr, free_port, render_config

# Fixture file -> the SNI it carries (README in the fixtures directory).
FIXTURE_SNI = {
    "curl-www.bin": "www.example.com",
    "gnutls-imap.bin": "imap.example.com",
    "openssl-tls12.bin": "old.example.com",
    "openssl3-alpn-acme.bin": "mail.example.com",
    "openssl3-mail.bin": "mail.example.com",
    "python-smtp.bin": "smtp.example.com",
}


def reframe(hello, *cuts):
    """The same handshake message in several records: the payload after the 5-byte record header
    is cut at `cuts` (offsets into the payload), and each piece gets its own header
    0x16 0x03 0x01 len."""
    payload = hello[5:]
    assert hello[0] == 0x16 and int.from_bytes(hello[3:5], "big") == len(payload)
    bounds = [0, *cuts, len(payload)]
    out = b""
    for a, b in zip(bounds, bounds[1:]):
        out += bytes([0x16, 0x03, 0x01]) + (b - a).to_bytes(2, "big") + payload[a:b]
    return out


class FramingTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.named = self.tcp_server(harness.recorder(b"named-reply"))
        self.other = self.tcp_server(harness.recorder(b"default-reply"))
        self.port = free_port()

    def config(self, **global_):
        g = {"client_hello_timeout": "10s"}
        g.update(global_)
        names = sorted(set(FIXTURE_SNI.values()))
        return render_config(g, [{
            "name": "tls",
            "bind": [addr("127.0.0.1", self.port)],
            "protocol": "tls",
            "default_backend": "other",
            "routes": [{"match": names, "backend": "named"}],
        }], {
            "named": {"servers": [self.named.address]},
            "other": {"servers": [self.other.address]},
        })

    def send_pieces(self, pieces, pause=0.0):
        """Connects, writes each piece as its own write (TCP_NODELAY, optional pause between),
        shuts down writing, and returns the reply read until EOF."""
        s = self.connect(self.port)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, p in enumerate(pieces):
            if i and pause:
                time.sleep(pause)
            s.sendall(p)
        s.shutdown(socket.SHUT_WR)
        reply = harness.read_until_eof(s)
        s.close()
        return reply

    def assert_delivered(self, backend, index, sent, reply, expected_reply):
        rec = backend.wait_conn(index)
        self.assertTrue(rec.done.wait(harness.IO_TIMEOUT), "backend handler did not finish")
        self.assertIsNone(rec.error)
        self.assertEqual(len(rec.received), len(sent))
        self.assertEqual(bytes(rec.received), sent, "backend did not receive the client's bytes unchanged")
        self.assertEqual(reply, expected_reply)

    def test_every_fixture_whole(self):
        proxy = self.start_proxy(self.config())
        i = 0
        for name, sni in sorted(FIXTURE_SNI.items()):
            with self.subTest(fixture=name):
                hello = harness.fixture(name)
                reply = self.send_pieces([hello])
                self.assert_delivered(self.named, i, hello, reply, b"named-reply")
                proxy.wait_conn(sni=sni, backend="named", outcome="ok")
                i += 1
        hello = harness.fixture("openssl3-noservername.bin")
        reply = self.send_pieces([hello])
        self.assert_delivered(self.other, 0, hello, reply, b"default-reply")
        self.assertEqual(proxy.wait_conn(backend="other")["sni"], "-")

    def test_hello_split_into_two_writes(self):
        proxy = self.start_proxy(self.config())
        hello = harness.fixture("curl-www.bin")
        offsets = [1, 3, 5, 6, 9, 43, len(hello) // 2, len(hello) - 1]
        for i, off in enumerate(offsets):
            with self.subTest(offset=off):
                reply = self.send_pieces([hello[:off], hello[off:]], pause=0.15)
                self.assert_delivered(self.named, i, hello, reply, b"named-reply")
        conns = proxy.wait_count("conn", len(offsets))
        self.assertEqual(len(conns), len(offsets))
        for e in conns:
            self.assertEqual((e["sni"], e["outcome"], e["up"]), ("www.example.com", "ok", str(len(hello))))

    def test_hello_reframed_across_two_records(self):
        self.start_proxy(self.config())
        hello = harness.fixture("curl-www.bin")
        payload_len = len(hello) - 5
        # Cuts inside the 4-byte handshake header, inside the session id, and near the end.
        cuts = [1, 2, 4, 40, payload_len // 2, payload_len - 1]
        for i, cut in enumerate(cuts):
            with self.subTest(cut=cut):
                framed = reframe(hello, cut)
                self.assertEqual(len(framed), len(hello) + 5)
                # Once whole, and once with the second record in a later write.
                reply = self.send_pieces([framed])
                self.assert_delivered(self.named, 2 * i, framed, reply, b"named-reply")
                reply = self.send_pieces([framed[:5 + cut], framed[5 + cut:]], pause=0.15)
                self.assert_delivered(self.named, 2 * i + 1, framed, reply, b"named-reply")

    def test_hello_reframed_across_three_records_split_mid_header(self):
        self.start_proxy(self.config())
        hello = harness.fixture("openssl3-mail.bin")
        framed = reframe(hello, 3, 100)
        # Write boundaries fall inside the record headers of the second and third records.
        pieces = [framed[:10], framed[10:110], framed[110:]]
        reply = self.send_pieces(pieces, pause=0.1)
        self.assert_delivered(self.named, 0, framed, reply, b"named-reply")

    def test_hello_one_byte_per_write(self):
        proxy = self.start_proxy(self.config())
        hello = harness.fixture("openssl3-mail.bin")
        s = self.connect(self.port)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in hello:
            s.sendall(bytes([b]))
            time.sleep(0.001)
        s.shutdown(socket.SHUT_WR)
        reply = harness.read_until_eof(s)
        self.assert_delivered(self.named, 0, hello, reply, b"named-reply")
        proxy.wait_conn(sni="mail.example.com", outcome="ok")

    def test_bytes_after_hello_in_same_write_are_relayed(self):
        self.start_proxy(self.config())
        hello = harness.fixture("gnutls-imap.bin")
        sent = hello + b"\x17\x03\x03\x00\x05early"
        reply = self.send_pieces([sent])
        self.assert_delivered(self.named, 0, sent, reply, b"named-reply")

    def test_client_stalling_mid_hello_is_closed_at_timeout(self):
        proxy = self.start_proxy(self.config(client_hello_timeout="1s"))
        hello = harness.fixture("curl-www.bin")
        s = self.connect(self.port)
        s.sendall(hello[:100])
        t0 = time.monotonic()
        how, data = harness.expect_closed(s, timeout=15)
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 6.0, "not closed within a few seconds of client_hello_timeout=1s")
        self.assertEqual(data, b"")
        e = proxy.wait_conn(outcome="timeout")
        self.assertEqual((e["backend"], e["sni"]), ("-", "-"))
        self.assertEqual(self.named.count() + self.other.count(), 0, "a backend was dialled for a partial hello")

    def test_silent_client_is_closed(self):
        # The listener defers accept until data arrives (TCP_DEFER_ACCEPT); a client that sends
        # nothing must still be closed within a bounded time.
        proxy = self.start_proxy(self.config(client_hello_timeout="1s"))
        s = self.connect(self.port)
        how, data = harness.expect_closed(s, timeout=20)
        self.assertEqual(data, b"")
        # The kernel hands the connection over once the defer period ends; sniroute then
        # closes it at its own deadline.
        e = proxy.wait_conn()
        self.assertEqual((e["outcome"], e["up"]), ("timeout", "0"))

    def test_plain_text_is_bad_hello_without_alert(self):
        proxy = self.start_proxy(self.config())
        s = self.connect(self.port)
        s.sendall(b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
        how, data = harness.expect_closed(s)
        self.assertEqual(data, b"", "a plain-text client must not be answered with TLS bytes")
        proxy.wait_conn(outcome="bad_hello")
        self.assertEqual(self.named.count() + self.other.count(), 0)

    def test_hello_larger_than_max_client_hello_is_refused(self):
        proxy = self.start_proxy(self.config(max_client_hello=512))
        # A record announcing a 16000-byte handshake; send more than the cap of it.
        body = bytes([0x01]) + (15996).to_bytes(3, "big") + b"\x03\x03" + bytes(2000)
        s = self.connect(self.port)
        try:
            s.sendall(bytes([0x16, 0x03, 0x01]) + len(body).to_bytes(2, "big") + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: what we expect
        how, data = harness.expect_closed(s)
        self.assertIn(data, (b"", bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 50])))
        proxy.wait_conn(outcome="bad_hello")
        self.assertEqual(self.named.count() + self.other.count(), 0)


if __name__ == "__main__":
    harness.main()

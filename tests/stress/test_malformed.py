"""Malformed input to every listener kind: tls, tls and tcp and http behind an expected PROXY
header (accept_proxy_protocol = true), and the port-80 front. Classes: random bytes, truncated
TLS records, absurd lengths, 1 MB of zeros, bad PROXY headers, and the HTTP request-smuggling
cases. Every listener has a backend that records every connection and byte it gets; for
rejected input it must get nothing at all (not even a connection). After each class, on each
listener, the proxy is still up and a legitimate connection gets through byte for byte. With
SNIROUTE_STRESS=long, ten times as many random payloads."""

import os
import random
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stress_util
from stress_util import StressTestCase, figures, harness, scaled

RANDOM_PAYLOADS = scaled(40, 400)
HELLO = harness.fixture("curl-www.bin")  # SNI www.example.com
PROXY_V1 = b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 443\r\n"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
GET = b"GET / HTTP/1.1\r\nHost: web.example\r\n\r\n"


def v2(ver_cmd, fam, body):
    return V2_SIG + bytes([ver_cmd, fam]) + struct.pack("!H", len(body)) + body


def record(body, content_type=0x16, version=b"\x03\x01", length=None):
    return bytes([content_type]) + version + struct.pack("!H", len(body) if length is None else length) + body


def handshake(body, length=None):
    n = len(body) if length is None else length
    return b"\x01" + n.to_bytes(3, "big") + body


# TLS input that is not a usable ClientHello. Each is followed by our FIN.
TLS_TRUNCATED = [HELLO[:n] for n in (1, 3, 5, 6, 9, 44, len(HELLO) // 2, len(HELLO) - 1)]
TLS_ABSURD = [
    record(b"", length=0xFFFF) + HELLO[5:],                   # record longer than anything sent
    record(b""),                                              # empty handshake record
    record(handshake(b"\x03\x03" + b"\x00" * 32, length=0xFFFFFF)),  # handshake of 16 MB
    record(handshake(HELLO[9:], length=len(HELLO) - 9 + 1)),  # handshake one byte past its records
    record(HELLO[5:], content_type=0x17),                     # application data first
    record(b"\x02\x28", content_type=0x15),                   # an alert
    record(HELLO[5:], version=b"\x7f\x7f"),                   # record version nobody speaks
    b"\x80\x2e\x01\x00\x02\x00\x15" + b"\x00" * 0x2b,         # SSLv2-style hello
    record(b"\x00" * 20) * 800,                               # many records, not a hello
    b"\x16\x03\x01\x40\x01" + b"\x01" * 0x4001,               # record over the TLS 1.2 maximum
]
PROXY_BAD = [
    b"PROXY TCP4 garbage\r\n",
    b"PROXY TCP4 300.0.0.1 192.0.2.2 1 2\r\n",
    b"PROXY TCP9 192.0.2.1 192.0.2.2 1 2\r\n",
    b"PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n",
    b"PROXY TCP4 192.0.2.1 192.0.2.2 1 99999\r\n",
    b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",
    b"PROXY TCP4 192.0.2.1 " + b"9" * 200 + b"\r\n",
    b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2",                    # no line end, then FIN
    b"PROXY\x00TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
    v2(0x11, 0x11, b"\x00" * 12)[:15],                        # truncated v2
    v2(0x31, 0x11, b"\xc0\x00\x02\x01" * 2 + b"\x00\x01\x00\x02"),   # version 3
    v2(0x2f, 0x11, b"\xc0\x00\x02\x01" * 2 + b"\x00\x01\x00\x02"),   # command 15
    v2(0x21, 0x11, b"\xc0\x00\x02\x01"),                      # TCP4 with too short an address block
    V2_SIG + b"\x21\x11\xff\xff" + b"\x00" * 64,              # 64 KB announced, 64 bytes sent
    V2_SIG + b"\x21\x11",                                     # cut inside the fixed part
]
HTTP_SMUGGLING = [
    b"GET /.well-known/acme-challenge/T HTTP/1.1\r\nHost: a\r\n\rXGET /admin HTTP/1.1\r\nHost: b\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: web.example\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: web.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: web.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: web.example\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
    b"POST / HTTP/1.0\r\nHost: web.example\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /a\x01b HTTP/1.1\r\nHost: web.example\r\n\r\n",
    b"GET /a\x00b HTTP/1.1\r\nHost: web.example\r\n\r\n",
    b"GET /a\x7fb HTTP/1.1\r\nHost: web.example\r\n\r\n",
    b"GET /a\tb HTTP/1.1\r\nHost: web.example\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: web.example\r\nX: a\x01b\r\n\r\n",
    b"GET / HTTP/1.1\nHost: web.example\n\n",
    b"GET / HTTP/1.1\r\nHost: web.example\r\nX: y\r\n folded\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: web.example\r\n\r\n",
    b"GET / HTTP/1.1 \r\nHost: web.example\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: web.example:99999\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: web.example\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: web.example\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: web.example\r\n" + b"X-Long: " + b"a" * 20000 + b"\r\n\r\n",
]


class Listener:
    def __init__(self, name, protocol, proxy_header, backend, legit):
        self.name = name
        self.protocol = protocol
        self.proxy_header = proxy_header  # the PROXY header a legitimate client sends first
        self.backend = backend
        self.legit = legit                # its first bytes after that; the backend echoes them
        self.port = harness.free_port()


class MalformedInputTest(StressTestCase):
    def setUp(self):
        super().setUp()
        mk = lambda: self.tcp_server(harness.echo)  # noqa: E731
        self.listeners = [
            Listener("tls", "tls", b"", mk(), HELLO),
            Listener("tls_pp", "tls", PROXY_V1, mk(), HELLO),
            Listener("tcp_pp", "tcp", PROXY_V1, mk(), b"EHLO x\r\n"),
            Listener("http", "http", b"", mk(), GET),
            Listener("http_pp", "http", PROXY_V1, mk(), GET),
        ]
        self.proxy = self.start_proxy(harness.render_config({"client_hello_timeout": "5s"}, [
            {"name": l.name, "bind": [harness.addr("127.0.0.1", l.port)], "protocol": l.protocol,
             "accept_proxy_protocol": bool(l.proxy_header), "default_backend": l.name}
            for l in self.listeners
        ], {l.name: {"servers": [l.backend.address]} for l in self.listeners}))
        self.legit_count = {l.name: 0 for l in self.listeners}
        self.sent = 0
        self.classes = 0

    def send_bad(self, listener, payload):
        """Sends payload, then FIN; waits (bounded) for the proxy to close. Returns what came
        back."""
        s = socket.create_connection(("127.0.0.1", listener.port), timeout=harness.IO_TIMEOUT)
        with s:
            try:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # refused (reset) before it was all sent: EPIPE, ECONNRESET, ENOTCONN
            try:
                how, data = harness.expect_closed(s, timeout=harness.IO_TIMEOUT)
            except ConnectionResetError:
                data = b""
        self.sent += 1
        return data

    def check_class(self, name, payloads, listeners, prefix=True, suffix=False, answered=False):
        """Sends each payload to each listener: after the listener's PROXY header if prefix,
        followed by its legitimate first bytes if suffix (so a lenient parser would forward
        them). An http listener may answer only with a 4xx, and must if `answered`. Then one
        legitimate connection through every listener."""
        for l in listeners:
            for i, p in enumerate(payloads):
                with self.subTest(cls=name, listener=l.name, payload=i):
                    answer = self.send_bad(l, (l.proxy_header if prefix else b"") + p + (l.legit if suffix else b""))
                    self.assertIsNone(self.proxy.proc.poll(), f"sniroute died on {name} #{i}")
                    self.assertEqual(l.backend.count(), self.legit_count[l.name],
                                     f"{name} #{i} reached the backend of {l.name}: "
                                     f"{bytes(l.backend.records[-1].received[:200])!r}")
                    if answered:
                        self.assertTrue(answer, f"{name} #{i}: no answer from {l.name}")
                    if l.protocol == "http" and answer:
                        self.assertRegex(answer[:12], rb"^HTTP/1\.1 4\d\d", answer[:200])
        self.classes += 1
        for l in self.listeners:
            self.legit(l)

    def legit(self, l):
        """A well-formed connection through l: its bytes reach the backend as sent."""
        s = socket.create_connection(("127.0.0.1", l.port), timeout=harness.IO_TIMEOUT)
        with s:
            s.sendall(l.proxy_header + l.legit)
            self.assertEqual(harness.recv_exactly(s, len(l.legit)), l.legit)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(harness.read_until_eof(s), b"")
        rec = l.backend.wait_conn(self.legit_count[l.name])
        self.assertTrue(rec.done.wait(harness.IO_TIMEOUT))
        self.assertEqual(bytes(rec.received), l.legit, f"{l.name}: the backend got other bytes")
        self.legit_count[l.name] += 1

    def test_malformed_input(self):
        rng = random.Random(11)
        for l in self.listeners:
            self.legit(l)
        all_ = self.listeners
        tls = [l for l in all_ if l.protocol == "tls"]
        pp = [l for l in all_ if l.proxy_header]
        http = [l for l in all_ if l.protocol == "http"]
        randoms = []
        while len(randoms) < RANDOM_PAYLOADS:
            p = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))
            if p[0] not in (0x16, ord("P"), 0x0D):  # those could start a valid prefix and wait
                randoms.append(p)
        # Where a PROXY header is expected, random bytes and zeros stand in for it.
        self.check_class("random bytes", randoms, all_, prefix=False)
        self.check_class("random bytes after a PROXY header", randoms, [l for l in pp if l.protocol != "tcp"])
        self.check_class("truncated TLS records", TLS_TRUNCATED, tls)
        self.check_class("absurd lengths", TLS_ABSURD, tls)
        self.check_class("1 MB of zeros", [b"\x00" * (1 << 20)], all_, prefix=False)
        self.check_class("bad PROXY headers", PROXY_BAD, pp, prefix=False, suffix=True)
        self.check_class("HTTP smuggling", HTTP_SMUGGLING, http, answered=True)
        legit_ok = sum(self.legit_count.values())
        stress_util.wait_until(lambda: len(self.proxy.events("conn", outcome="ok")) >= legit_ok, 10,
                               "a conn line for the last legitimate connection")
        outcomes = {}
        for e in self.proxy.events("conn") + self.proxy.events("http"):
            key = e["event"] + ":" + e.get("outcome", e.get("status", "?"))
            outcomes[key] = outcomes.get(key, 0) + 1
        figures("malformed", listeners=len(all_), classes=self.classes, payloads_sent=self.sent,
                legit_ok=legit_ok,
                log_outcomes=",".join(f"{k}={v}" for k, v in sorted(outcomes.items())))
        self.assertEqual(self.proxy.events(level="error"), [])


if __name__ == "__main__":
    harness.main()

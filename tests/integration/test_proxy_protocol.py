"""PROXY protocol, byte for byte.

Outbound: a backend with proxy_protocol = v1 | v2 receives a header describing the client's
real address and the proxy's listen address, for IPv4 and IPv6 clients, on tcp and tls
listeners. The expected header is built here, independently of sniroute, from the client's own
getsockname() and the configured listen address.

Inbound: a listener with accept_proxy_protocol = true takes the addresses from a balancer's v1
or v2 header, strips that header, and passes the addresses on; a missing or bad header closes
the connection with outcome=bad_proxy_header."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
from harness import ProxyTestCase, addr, free_port, render_config

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1_header(src_ip, src_port, dst_ip, dst_port):
    fam = "TCP6" if ":" in src_ip else "TCP4"
    return f"PROXY {fam} {src_ip} {dst_ip} {src_port} {dst_port}\r\n".encode()


def v2_header(src_ip, src_port, dst_ip, dst_port, tlvs=b"", command=0x1):
    """RFC-style PROXY v2: signature, ver|cmd, fam|proto, length, addresses, ports, TLVs."""
    if ":" in src_ip:
        fam, af = 0x21, socket.AF_INET6
    else:
        fam, af = 0x11, socket.AF_INET
    body = (socket.inet_pton(af, src_ip) + socket.inet_pton(af, dst_ip) + src_port.to_bytes(2, "big") +
            dst_port.to_bytes(2, "big") + tlvs)
    return V2_SIG + bytes([0x20 | command, fam]) + len(body).to_bytes(2, "big") + body


def canonical_ip(ip):
    af = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return socket.inet_ntop(af, socket.inet_pton(af, ip))


class OutboundHeaderTest(ProxyTestCase):
    """Our own header towards a backend."""

    def setUp(self):
        super().setUp()
        self.backend = self.tcp_server(harness.recorder(b"reply"))
        self.hosts = ["127.0.0.1"] + (["::1"] if harness.ipv6_available() else [])
        self.listeners = {}  # (host, protocol, version) -> port
        listeners = []
        for host in self.hosts:
            for proto in ("tcp", "tls"):
                for ver in ("v1", "v2"):
                    port = free_port(host)
                    name = f"{proto}{'6' if ':' in host else '4'}-{ver}"
                    self.listeners[(host, proto, ver)] = port
                    listeners.append({"name": name, "bind": [addr(host, port)], "protocol": proto,
                                      "default_backend": f"pp-{ver}"})
        self.proxy = self.start_proxy(render_config({"client_hello_timeout": "10s"}, listeners, {
            "pp-v1": {"servers": [self.backend.address], "proxy_protocol": "v1"},
            "pp-v2": {"servers": [self.backend.address], "proxy_protocol": "v2"},
        }))
        self.seen = 0

    def exchange(self, host, port, payload):
        s = self.connect(port, host)
        src = s.getsockname()
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        reply = harness.read_until_eof(s)
        s.close()
        self.assertEqual(reply, b"reply")
        rec = self.backend.wait_conn(self.seen)
        self.seen += 1
        self.assertTrue(rec.done.wait(harness.IO_TIMEOUT))
        self.assertIsNone(rec.error)
        return src[0], src[1], bytes(rec.received)

    def check(self, host, proto, ver):
        port = self.listeners[(host, proto, ver)]
        payload = harness.fixture("curl-www.bin") + b"after-hello" if proto == "tls" else b"plain tcp payload\n"
        cip, cport, received = self.exchange(host, port, payload)
        make = v1_header if ver == "v1" else v2_header
        expected = make(canonical_ip(cip), cport, canonical_ip(host), port) + payload
        self.assertEqual(received, expected, f"{proto} {ver} from {cip}")
        e = self.proxy.wait_conn(client=addr(cip, cport))
        self.assertEqual(e["outcome"], "ok")
        self.assertEqual(e["up"], str(len(payload)), "up= counts client bytes, not our header")

    def test_v1_ipv4(self):
        self.check("127.0.0.1", "tcp", "v1")
        self.check("127.0.0.1", "tls", "v1")

    def test_v2_ipv4(self):
        self.check("127.0.0.1", "tcp", "v2")
        self.check("127.0.0.1", "tls", "v2")

    def test_v1_ipv6(self):
        if "::1" not in self.hosts:
            self.skipTest("no IPv6 loopback")
        self.check("::1", "tcp", "v1")
        self.check("::1", "tls", "v1")

    def test_v2_ipv6(self):
        if "::1" not in self.hosts:
            self.skipTest("no IPv6 loopback")
        self.check("::1", "tcp", "v2")
        self.check("::1", "tls", "v2")


class InboundHeaderTest(ProxyTestCase):
    """A balancer's header towards us (accept_proxy_protocol = true)."""

    def setUp(self):
        super().setUp()
        self.be_v1 = self.tcp_server(harness.recorder(b"reply-v1"))
        self.be_v2 = self.tcp_server(harness.recorder(b"reply-v2"))
        self.tls_port = free_port()
        self.tcp_port = free_port()
        self.proxy = self.start_proxy(render_config({"client_hello_timeout": "2s"}, [
            {"name": "tls-pp", "bind": [addr("127.0.0.1", self.tls_port)], "protocol": "tls",
             "accept_proxy_protocol": True, "routes": [{"match": "www.example.com", "backend": "out-v2"}]},
            {"name": "tcp-pp", "bind": [addr("127.0.0.1", self.tcp_port)], "protocol": "tcp",
             "accept_proxy_protocol": True, "default_backend": "out-v1"},
        ], {
            "out-v1": {"servers": [self.be_v1.address], "proxy_protocol": "v1"},
            "out-v2": {"servers": [self.be_v2.address], "proxy_protocol": "v2"},
        }))
        self.hello = harness.fixture("curl-www.bin")

    def send(self, port, pieces, pause=0.1):
        s = self.connect(port)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, p in enumerate(pieces):
            if i:
                time.sleep(pause)
            s.sendall(p)
        s.shutdown(socket.SHUT_WR)
        reply = harness.read_until_eof(s)
        src = s.getsockname()
        s.close()
        return src, reply

    def received(self, backend, index):
        rec = backend.wait_conn(index)
        self.assertTrue(rec.done.wait(harness.IO_TIMEOUT))
        self.assertIsNone(rec.error)
        return bytes(rec.received)

    def test_v1_in_v2_out(self):
        inbound = v1_header("192.0.2.1", 51234, "198.51.100.2", 443)
        _, reply = self.send(self.tls_port, [inbound + self.hello])
        self.assertEqual(reply, b"reply-v2")
        self.assertEqual(self.received(self.be_v2, 0),
                         v2_header("192.0.2.1", 51234, "198.51.100.2", 443) + self.hello)
        e = self.proxy.wait_conn(listener="tls-pp")
        self.assertEqual((e["client"], e["sni"], e["outcome"]), ("192.0.2.1:51234", "www.example.com", "ok"))
        self.assertEqual(e["up"], str(len(self.hello)), "up= counts what follows the balancer's header")

    def test_v2_ipv6_in_v2_out(self):
        inbound = v2_header("2001:db8::1", 40000, "2001:db8::2", 443)
        _, reply = self.send(self.tls_port, [inbound + self.hello])
        self.assertEqual(reply, b"reply-v2")
        self.assertEqual(self.received(self.be_v2, 0),
                         v2_header("2001:db8::1", 40000, "2001:db8::2", 443) + self.hello)
        self.assertEqual(self.proxy.wait_conn(listener="tls-pp")["client"], "[2001:db8::1]:40000")

    def test_v2_with_tlvs_is_stripped(self):
        # PP2_TYPE_AUTHORITY (0x02) "www.example.com" and a NOOP (0x04): ours carries neither.
        tlvs = b"\x02\x00\x0fwww.example.com" + b"\x04\x00\x03abc"
        inbound = v2_header("203.0.113.7", 1000, "203.0.113.8", 443, tlvs)
        _, reply = self.send(self.tls_port, [inbound + self.hello])
        self.assertEqual(reply, b"reply-v2")
        self.assertEqual(self.received(self.be_v2, 0), v2_header("203.0.113.7", 1000, "203.0.113.8", 443) + self.hello)

    def test_header_and_hello_split_across_writes(self):
        inbound = v2_header("192.0.2.9", 9999, "192.0.2.10", 443)
        pieces = [inbound[:7], inbound[7:20], inbound[20:] + self.hello[:50], self.hello[50:]]
        _, reply = self.send(self.tls_port, pieces)
        self.assertEqual(reply, b"reply-v2")
        self.assertEqual(self.received(self.be_v2, 0), v2_header("192.0.2.9", 9999, "192.0.2.10", 443) + self.hello)

    def test_v2_in_v1_out_on_tcp_listener(self):
        inbound = v2_header("192.0.2.1", 1234, "192.0.2.2", 25)
        _, reply = self.send(self.tcp_port, [inbound + b"EHLO x\r\n"])
        self.assertEqual(reply, b"reply-v1")
        self.assertEqual(self.received(self.be_v1, 0), b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 25\r\nEHLO x\r\n")
        e = self.proxy.wait_conn(listener="tcp-pp")
        self.assertEqual((e["client"], e["outcome"]), ("192.0.2.1:1234", "ok"))

    def test_local_and_unknown_use_real_addresses(self):
        for i, inbound in enumerate([V2_SIG + b"\x20\x00\x00\x00", b"PROXY UNKNOWN\r\n"]):
            with self.subTest(header=inbound):
                src, reply = self.send(self.tcp_port, [inbound + b"data"])
                self.assertEqual(reply, b"reply-v1")
                expected = v1_header(src[0], src[1], "127.0.0.1", self.tcp_port) + b"data"
                self.assertEqual(self.received(self.be_v1, i), expected)

    def expect_rejected(self, port, data):
        s = self.connect(port)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        how, got = harness.expect_closed(s)
        self.assertEqual(got, b"", "a client without a valid PROXY header must get nothing back")

    def test_missing_header_is_rejected(self):
        self.expect_rejected(self.tls_port, self.hello)
        e = self.proxy.wait_conn(listener="tls-pp")
        self.assertEqual((e["outcome"], e["backend"]), ("bad_proxy_header", "-"))
        self.expect_rejected(self.tcp_port, b"EHLO x\r\n")
        self.proxy.wait_conn(listener="tcp-pp", outcome="bad_proxy_header")
        self.assertEqual(self.be_v1.count() + self.be_v2.count(), 0)

    def test_bad_headers_are_rejected(self):
        bad = [
            b"PROXY TCP4 garbage\r\n",
            b"PROXY TCP4 300.0.0.1 192.0.2.2 1 2\r\n",
            b"PROXY TCP9 192.0.2.1 192.0.2.2 1 2\r\n",
            b"PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n",          # family does not match addresses
            b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",           # LF without CR
            b"PROXY TCP4 192.0.2.1 192.0.2.2 1 99999\r\n",
            b"PROXY TCP4 192.0.2.1 " + b"9" * 120 + b"\r\n",    # longer than 107 bytes
            V2_SIG[:5] + b"X" + V2_SIG[6:] + b"\x21\x11\x00\x0c" + bytes(12),  # bad signature
            V2_SIG + b"\x11\x11\x00\x0c" + bytes(12),           # version 1 in a v2 header
            V2_SIG + b"\x2f\x11\x00\x0c" + bytes(12),           # unknown command
            V2_SIG + b"\x21\x11\x00\x04" + bytes(4),            # INET block too short
            V2_SIG + b"\x21\x11\x13\x88" + bytes(5000),         # longer than we accept (4 KiB)
        ]
        for i, header in enumerate(bad):
            with self.subTest(header=header):
                self.expect_rejected(self.tls_port, header + self.hello)
        got = self.proxy.wait_count("conn", len(bad), listener="tls-pp")
        self.assertEqual([e["outcome"] for e in got], ["bad_proxy_header"] * len(bad))
        self.assertEqual(self.be_v2.count(), 0)

    def test_undefined_family_or_transport_is_rejected(self):
        # proxy-protocol.txt 2.2: a family nibble above 0x3 or a transport nibble above 0x2
        # "must be rejected as invalid by receivers", under PROXY and LOCAL alike. Each header
        # is followed by a well-formed 12-byte INET block, so only the 14th byte is wrong.
        bad = [(0x21, 0xb5), (0x21, 0x1f), (0x21, 0x41), (0x20, 0xb5), (0x20, 0x13)]
        for ver_cmd, fam in bad:
            with self.subTest(ver_cmd=hex(ver_cmd), fam=hex(fam)):
                m = self.proxy.mark()
                header = V2_SIG + bytes([ver_cmd, fam]) + b"\x00\x0c" + bytes([192, 0, 2, 1, 192, 0, 2, 2, 0, 1, 0, 2])
                self.expect_rejected(self.tcp_port, header + b"EHLO x\r\n")
                e = self.proxy.wait_event("conn", listener="tcp-pp", start=m)
                self.assertEqual((e["outcome"], e["backend"]), ("bad_proxy_header", "-"))
                self.assertIn("undefined address family or transport", e["error"])
        self.assertEqual(self.be_v1.count(), 0)
        # A defined byte sniroute has no use for (UDP over IPv4) falls back to the connection's
        # own addresses, as 2.2 asks of a receiver that does not implement it.
        src, reply = self.send(self.tcp_port, [V2_SIG + b"\x21\x12\x00\x0c" + bytes(12) + b"data"])
        self.assertEqual(reply, b"reply-v1")
        self.assertEqual(self.received(self.be_v1, 0), v1_header(src[0], src[1], "127.0.0.1", self.tcp_port) + b"data")

    def test_close_inside_header_is_bad_header_and_silent_close_is_not(self):
        # Part of a header, then FIN: a broken balancer, logged as such.
        s = self.connect(self.tcp_port)
        s.sendall(b"PROXY TCP4 192.0.2.1")
        s.shutdown(socket.SHUT_WR)
        harness.expect_closed(s)
        e = self.proxy.wait_conn(listener="tcp-pp", outcome="bad_proxy_header")
        self.assertEqual(e["level"], "warn")
        self.assertIn("inside the PROXY header", e["error"])
        # Connect and close without a byte (health checks, scanners): an ordinary info line.
        s = self.connect(self.tcp_port)
        s.shutdown(socket.SHUT_WR)
        harness.expect_closed(s)
        e = self.proxy.wait_conn(listener="tcp-pp", outcome="ok")
        self.assertEqual((e["level"], e["backend"], e["up"]), ("info", "-", "0"))
        self.assertNotIn("error", e)
        self.assertEqual(self.be_v1.count() + self.be_v2.count(), 0)

    def test_stalled_header_times_out(self):
        s = self.connect(self.tls_port)
        s.sendall(b"PROXY TCP4 192.0.2.1")
        t0 = time.monotonic()
        how, got = harness.expect_closed(s, timeout=20)
        self.assertLess(time.monotonic() - t0, 8.0, "not closed within a few seconds of the 2s deadline")
        self.assertEqual(got, b"")
        self.proxy.wait_conn(listener="tls-pp", outcome="timeout")


if __name__ == "__main__":
    harness.main()

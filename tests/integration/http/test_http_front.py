"""The port-80 front without a CA: challenge answers, redirects, errors and forwarding, driven
with curl and raw sockets (raw where the exact bytes on the wire are the point).

Routes of the main listener (no default_backend, so unknown hosts are refused):

  acme.front.test   acme = "auto",  redirect_https   answers from the webroot, else the dead backend
  local.front.test  acme = "local", redirect_https   answers from the webroot, else 404
  fwd.front.test    acme = "auto"                    forwards to a recording Python backend
  pp.front.test     acme = "auto"                    same, with a PROXY v1 header first
"""

import os
import select
import socket
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acme_harness as h  # noqa: E402

if __name__ == "__main__":  # not when test_http_pipelining imports FrontBase: it needs no curl
    h.require_tools("curl")  # exit 77 (skip), or 1 on CI, if it is missing

PREFIX = "/.well-known/acme-challenge/"
ACME = "acme.front.test"
LOCAL = "local.front.test"
FWD = "fwd.front.test"
PP = "pp.front.test"
UNKNOWN = "nobody.front.test"


def write_token(webroot, token, body):
    d = os.path.join(webroot, ".well-known", "acme-challenge")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, token), "wb") as f:
        f.write(body)
    return os.path.join(d, token)


def send_quietly(sock, data):
    """sendall from a helper thread; a peer that closes early is the main thread's failure to
    report, not a stray thread exception."""
    try:
        sock.sendall(data)
    except OSError:
        pass


class FrontBase(unittest.TestCase):
    """Starts one sniroute per class with the routes above; subclasses set `global_`."""

    global_ = {}
    challenge_dir_is_symlink = False

    @classmethod
    def setUpClass(cls):
        cls.tmp = h.tempdir("sniroute-front-")
        cls.dir = cls.tmp.name
        cls.webroot = os.path.join(cls.dir, "webroot")
        cls.outside = os.path.join(cls.dir, "outside")
        os.makedirs(cls.outside)
        cls.secret = os.path.join(cls.outside, "secret")
        with open(cls.secret, "wb") as f:
            f.write(b"SECRET-outside-the-webroot")
        if cls.challenge_dir_is_symlink:
            # The whole challenge directory is a link to a directory outside the webroot.
            os.makedirs(os.path.join(cls.webroot, ".well-known"))
            os.symlink(cls.outside, os.path.join(cls.webroot, ".well-known", "acme-challenge"))
        else:
            os.makedirs(os.path.join(cls.webroot, ".well-known", "acme-challenge"))
        cls.http_port, cls.dead_port = h.free_ports(2)
        cls.backend = h.RecordingBackend(min_bytes=0)
        cls.pp_backend = h.RecordingBackend()
        cls.sniroute = h.Sniroute(cls.dir, h.render_config(
            global_=dict(cls.global_),
            acme={"webroot": cls.webroot},
            listeners=[{"name": "http", "bind": [h.addr("127.0.0.1", cls.http_port)], "protocol": "http", "routes": [
                {"match": [ACME], "backend": "dead", "acme": "auto", "redirect_https": True},
                {"match": [LOCAL], "backend": "dead", "acme": "local", "redirect_https": True},
                {"match": [FWD], "backend": "rec"},
                {"match": [PP], "backend": "rec-pp"},
            ]}],
            backends={
                "dead": {"servers": [h.addr("127.0.0.1", cls.dead_port)]},
                "rec": {"servers": [h.addr("127.0.0.1", cls.backend.port)]},
                "rec-pp": {"servers": [h.addr("127.0.0.1", cls.pp_backend.port)], "proxy_protocol": "v1"},
            }))
        try:
            cls.sniroute.start()
        except BaseException:
            cls.sniroute.kill()
            cls._close_rest()
            raise

    @classmethod
    def _close_rest(cls):
        cls.backend.close()
        cls.pp_backend.close()
        cls.tmp.cleanup()

    @classmethod
    def tearDownClass(cls):
        log_text = cls.sniroute.log_text()
        try:
            rc = cls.sniroute.stop()
        finally:
            cls.sniroute.kill()
            cls._close_rest()
        if rc != 0:
            raise AssertionError(f"sniroute exited {rc} after SIGTERM (want 0); log:\n{log_text}")

    def setUp(self):
        self.mark = self.sniroute.mark()

    def token(self, body=None, name=None):
        """A fresh token with a webroot file; returns (token, body)."""
        name = name or f"tok_{self._testMethodName[-20:]}-{time.monotonic_ns()}"
        body = body if body is not None else f"{name}.thumbprint-for-tests".encode()
        write_token(self.webroot, name, body)
        return name, body

    def raw(self, data, head_only=False):
        return h.http_request(self.http_port, data, head_only=head_only)

    def wait_http(self, **fields):
        return self.sniroute.wait_event("http", start=self.mark, **fields)

    def assert_closed_after(self, sock_reader):
        self.assertTrue(sock_reader.wait_closed(h.IO_TIMEOUT), "sniroute kept the connection open")

    def curl(self, *args):
        """curl against the listener, no proxy, bounded; returns stdout text."""
        if h.tool_path("curl") is None:
            self.skipTest("curl is not installed")
        env = h.tool_env(self.dir)
        _, out, _ = h.run_tool(["curl", "--silent", "--show-error", "--noproxy", "*", "--max-time", "20",
                                *args], env=env, what="curl")
        return out

    def url(self, path):
        return f"http://127.0.0.1:{self.http_port}{path}"


class HttpFront(FrontBase):
    global_ = {"client_hello_timeout": "10s"}

    # --- challenge answers from the webroot -------------------------------------------------

    def test_webroot_answer_is_text_plain_with_exact_body(self):
        tok, body = self.token()
        r = h.get(self.http_port, ACME, PREFIX + tok)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "text/plain")
        self.assertEqual(r.header("content-length"), str(len(body)))
        self.assertEqual(r.body, body)
        self.assertIsNone(r.header("location"))
        self.wait_http(host=ACME, method="GET", path=PREFIX + tok, status=200, source="webroot")

    def test_webroot_answer_with_curl(self):
        tok, body = self.token()
        out = self.curl("-H", f"Host: {ACME}", "-o", os.path.join(self.dir, "curl-body"),
                        "-w", "%{http_code} %{content_type}", self.url(PREFIX + tok))
        self.assertEqual(out, "200 text/plain")
        with open(os.path.join(self.dir, "curl-body"), "rb") as f:
            self.assertEqual(f.read(), body)

    def test_trailing_newline_of_token_file_is_not_served(self):
        # certbot writes the bare key authorization; some tools add a newline, which would make
        # the CA's comparison fail.
        tok, body = self.token(body=b"abc.def\n")
        r = h.get(self.http_port, ACME, PREFIX + tok)
        self.assertEqual((r.status, r.body), (200, b"abc.def"))

    def test_query_string_is_not_part_of_the_token(self):
        tok, body = self.token()
        r = h.get(self.http_port, ACME, PREFIX + tok + "?x=1")
        self.assertEqual((r.status, r.body), (200, body))

    def test_head_gets_headers_and_no_body(self):
        tok, body = self.token()
        with h.connect(self.http_port) as s:
            s.sendall(f"HEAD {PREFIX}{tok} HTTP/1.1\r\nHost: {ACME}\r\nConnection: close\r\n\r\n".encode())
            data = h.recv_all(s)
        head, sep, rest = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), data)
        self.assertIn(f"Content-Length: {len(body)}".encode(), head)
        self.assertEqual((sep, rest), (b"\r\n\r\n", b""), "a HEAD response carried a body")
        self.wait_http(host=ACME, method="HEAD", status=200, source="webroot")

    def test_head_of_redirect_has_no_body_and_keeps_alive(self):
        with h.connect(self.http_port) as s:
            s.sendall(f"HEAD /x HTTP/1.1\r\nHost: {ACME}\r\n\r\nGET /y HTTP/1.1\r\nHost: {ACME}\r\n\r\n".encode())
            rd = h.ResponseReader(s)
            first = rd.read(head_only=True)
            second = rd.read()
        self.assertEqual((first.status, first.header("location")), (308, f"https://{ACME}/x"))
        self.assertEqual((second.status, second.header("location")), (308, f"https://{ACME}/y"))
        self.assertTrue(second.body.startswith(b"redirecting"), second)

    def test_head_with_curl(self):
        tok, body = self.token()
        out = self.curl("-I", "-H", f"Host: {ACME}", self.url(PREFIX + tok))
        self.assertTrue(out.startswith("HTTP/1.1 200"), out)
        self.assertIn(f"Content-Length: {len(body)}", out)

    # --- what must never reach the filesystem -----------------------------------------------

    def assert_not_served(self, target, host=ACME):
        r = self.raw(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        self.assertNotEqual(r.status, 200, f"{target} answered: {r}")
        self.assertNotIn(b"SECRET", r.body)
        self.assertNotIn(b"root:", r.body)
        return r

    def test_dot_dot_traversal_sent_raw(self):
        for target in (PREFIX + "../../etc/passwd",
                       PREFIX + "../../../outside/secret",
                       PREFIX + "..",
                       PREFIX + ".",
                       "/.well-known/acme-challenge/../../../../../../etc/passwd",
                       "/.well-known/./acme-challenge/../../outside/secret"):
            with self.subTest(target=target):
                r = self.assert_not_served(target)
                if target.startswith(PREFIX):
                    self.assertEqual(r.status, 404)

    def test_percent_encoded_traversal(self):
        for target in (PREFIX + "%2e%2e",
                       PREFIX + "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                       PREFIX + "..%2f..%2f..%2foutside%2fsecret",
                       PREFIX + "%2E%2E/%2E%2E/outside/secret",
                       PREFIX + "%252e%252e%252fsecret"):
            with self.subTest(target=target):
                r = self.assert_not_served(target)
                self.assertEqual(r.status, 404)
                self.wait_http(path=target, status=404, source="bad_token")

    def test_traversal_with_curl_path_as_is(self):
        out = self.curl("--path-as-is", "-H", f"Host: {ACME}", "-w", "\n%{http_code}",
                        self.url(PREFIX + "../../../outside/secret"))
        self.assertNotIn("SECRET", out)
        self.assertEqual(out.rsplit("\n", 1)[-1], "404")

    def test_symlinked_token_file_is_not_followed(self):
        tok = f"LinkToken-{time.monotonic_ns()}"
        os.symlink(self.secret, os.path.join(self.webroot, ".well-known", "acme-challenge", tok))
        r = self.assert_not_served(PREFIX + tok, host=LOCAL)
        self.assertEqual(r.status, 404)
        self.wait_http(host=LOCAL, status=404, source="none")

    def test_fifo_and_directory_and_big_file_are_not_answers(self):
        d = os.path.join(self.webroot, ".well-known", "acme-challenge")
        fifo, sub, big = (f"{k}-{time.monotonic_ns()}" for k in ("Fifo", "Dir", "Big"))
        os.mkfifo(os.path.join(d, fifo))
        os.mkdir(os.path.join(d, sub))
        with open(os.path.join(d, big), "wb") as f:
            f.write(b"x" * 5000)  # above the 4096-byte cap on answer files
        for tok in (fifo, sub, big):
            with self.subTest(tok=tok):
                started = time.monotonic()
                r = h.get(self.http_port, LOCAL, PREFIX + tok)
                self.assertEqual(r.status, 404)
                self.assertLess(time.monotonic() - started, 5.0)

    # --- tokens -----------------------------------------------------------------------------

    def test_bad_tokens_get_404_without_a_lookup(self):
        # A file named like each bad token exists where it could, so a 404 shows the token was
        # refused, not merely missing.
        cases = {
            "too long (257)": "A" * 257,
            "dot": "abc.def",
            "plus": "abc+def",
            "equals padding": "abcdef==",
            "percent": "abc%41def",
            "tilde": "abc~def",
            "colon": "abc:def",
            "empty": "",
        }
        for why, tok in cases.items():
            if tok and "%" not in tok and len(tok) <= 255:
                write_token(self.webroot, tok, b"should-not-be-served")
            with self.subTest(why=why):
                r = h.get(self.http_port, ACME, PREFIX + tok)
                self.assertEqual(r.status, 404, r)
                self.assertNotIn(b"should-not-be-served", r.body)
                self.wait_http(path=PREFIX + tok, status=404, source="bad_token")

    def test_token_length_boundary(self):
        # 255 characters: a valid token and the longest file name Linux allows.
        tok, body = self.token(name="B" * 255)
        r = h.get(self.http_port, ACME, PREFIX + tok)
        self.assertEqual((r.status, r.body), (200, body))
        # 256: still a token (looked up, found nowhere: "none"); 257 is refused as bad_token.
        r = h.get(self.http_port, LOCAL, PREFIX + "C" * 256)
        self.assertEqual(r.status, 404)
        self.wait_http(host=LOCAL, path=PREFIX + "C" * 256, status=404, source="none")
        r = h.get(self.http_port, LOCAL, PREFIX + "C" * 257)
        self.assertEqual(r.status, 404)
        self.wait_http(host=LOCAL, path=PREFIX + "C" * 257, status=404, source="bad_token")

    # The in-memory token store is filled only by the built-in ACME client; answers from it are
    # checked in acme/test_issuance.py, where Pebble validates through this front.

    # --- Host header ------------------------------------------------------------------------

    def assert_400_and_close(self, raw):
        with h.connect(self.http_port) as s:
            s.sendall(raw)
            rd = h.ResponseReader(s)
            r = rd.read()
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.header("connection"), "close")
            self.assert_closed_after(rd)
        return r

    def test_missing_host_on_http11_is_400(self):
        self.assert_400_and_close(b"GET / HTTP/1.1\r\nUser-Agent: t\r\n\r\n")
        self.wait_http(status=400, source="error")

    def test_missing_host_on_http10_is_routed_as_unknown(self):
        # HTTP/1.0 may omit Host (RFC 9112 3.2): no name, no route, no default backend.
        r = self.raw(b"GET / HTTP/1.0\r\n\r\n")
        self.assertEqual(r.status, 421)

    def test_two_host_headers_are_400(self):
        self.assert_400_and_close(f"GET / HTTP/1.1\r\nHost: {ACME}\r\nHost: {FWD}\r\n\r\n".encode())
        self.assert_400_and_close(f"GET / HTTP/1.1\r\nHost: {ACME}\r\nhOsT: {ACME}\r\n\r\n".encode())

    def test_host_with_space_is_400(self):
        self.assert_400_and_close(f"GET / HTTP/1.1\r\nHost: acme front.test\r\n\r\n".encode())

    def test_host_with_nul_is_400(self):
        self.assert_400_and_close(b"GET / HTTP/1.1\r\nHost: acme.front.test\x00.evil\r\n\r\n")

    def test_other_bad_hosts_are_400(self):
        for host in (b"acme.front.test:80x", b"acme.front.test:", b"[::1", b"acme..front.test", b"acme_front.test",
                     b"acme.front.test/x", b"acme.front.test:123456", b"user@acme.front.test", b"\xc3\xa9.test"):
            with self.subTest(host=host):
                self.assert_400_and_close(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")

    # --- framing that a backend could read differently (issue 11) ----------------------------

    def assert_400_and_nothing_forwarded(self, raw):
        """400 and close for `raw`, sent at once and then byte by byte, and no connection to the
        recording backend meanwhile."""
        n0 = len(self.backend.received)
        r = self.assert_400_and_close(raw)
        with h.connect(self.http_port) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rd = h.ResponseReader(s)
            for i in range(len(raw)):
                time.sleep(0.002)
                if select.select([s], [], [], 0)[0]:
                    break  # answered as soon as the bad byte arrived: send no more
                s.sendall(raw[i:i + 1])
            self.assertEqual(rd.read().status, 400)
            self.assert_closed_after(rd)
        time.sleep(0.3)  # a forwarded request would have reached the backend by now
        self.assertEqual(len(self.backend.received), n0, f"the backend got {self.backend.received[n0:]}")
        return r

    def test_bare_cr_cannot_smuggle_a_second_request(self):
        # CVE-2023-30589 class: llhttp 8.1 took "\r" + any byte as the head's final CRLF, so
        # the challenge was answered and "GET /admin" forwarded as a second request.
        tok, body = self.token()
        raw = (f"GET {PREFIX}{tok} HTTP/1.1\r\nHost: {FWD}\r\n\rXGET /admin HTTP/1.1\r\n"
               f"Host: {FWD}\r\nConnection: close\r\n\r\n").encode()
        r = self.assert_400_and_nothing_forwarded(raw)
        self.assertNotIn(body, r.body)
        self.wait_http(status=400)

    def test_bare_lf_in_the_request_line_is_400(self):
        self.assert_400_and_nothing_forwarded(f"GET /app HTTP/1.1\nHost: {FWD}\r\n\r\n".encode())

    def test_transfer_encoding_not_ending_in_chunked_is_400(self):
        # Issue 11: "xchunked" was read as "no body", the challenge answered and the body read
        # as a next request for the backend, which a lenient backend would not see.
        tok, body = self.token()
        smuggled = f"GET /admin HTTP/1.1\r\nHost: {FWD}\r\nConnection: close\r\n\r\n"
        raw = (f"POST {PREFIX}{tok} HTTP/1.1\r\nHost: {FWD}\r\nTransfer-Encoding: xchunked\r\n\r\n"
               f"{len(smuggled):x}\r\n{smuggled}\r\n0\r\n\r\n").encode()
        r = self.assert_400_and_nothing_forwarded(raw)
        self.assertNotIn(body, r.body)
        raw = (f"GET {PREFIX}{tok} HTTP/1.1\r\nHost: {FWD}\r\nTransfer-Encoding: xchunked\r\n\r\n"
               + smuggled).encode()
        self.assert_400_and_nothing_forwarded(raw)

    def test_transfer_encoding_with_content_length_is_400(self):
        self.assert_400_and_nothing_forwarded(
            f"POST /app HTTP/1.1\r\nHost: {FWD}\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\nhello"
            .encode())

    def test_control_bytes_in_the_target_are_400_not_redirected(self):
        for target in (b"/x?y\x0c", b"/\t"):
            with self.subTest(target=target):
                r = self.assert_400_and_close(b"GET " + target + f" HTTP/1.1\r\nHost: {ACME}\r\n\r\n".encode())
                self.assertIsNone(r.header("location"))

    def test_host_port_out_of_range_is_400(self):
        for port in (b"0", b"65536", b"99999999999"):
            with self.subTest(port=port):
                self.assert_400_and_close(f"GET / HTTP/1.1\r\nHost: {ACME}:".encode() + port + b"\r\n\r\n")

    def test_absolute_form_is_routed_by_its_authority(self):
        # RFC 9112 3.2.2: Host names the redirecting route, the target the forwarding one.
        req = f"GET http://{FWD}/app HTTP/1.1\r\nHost: {ACME}\r\nConnection: close\r\n\r\n".encode()
        n0 = len(self.backend.received)
        r = self.raw(req)
        self.assertEqual((r.status, r.body), (200, b"backend"))
        self.assertEqual(self.backend.wait_connections(n0 + 1)[n0], req)
        # And the other way round: redirected, to the target's host.
        r = self.raw(f"GET http://{ACME}/x HTTP/1.1\r\nHost: {FWD}\r\n\r\n".encode())
        self.assertEqual((r.status, r.header("location")), (308, f"https://{ACME}/x"))

    # --- redirects --------------------------------------------------------------------------

    def test_redirect_keeps_path_and_query_and_drops_port(self):
        r = self.raw(f"GET /p?q=1 HTTP/1.1\r\nHost: {ACME}:8080\r\n\r\n".encode())
        self.assertEqual((r.status, r.header("location")), (308, f"https://{ACME}/p?q=1"))
        self.wait_http(host=ACME, path="/p?q=1", status=308, source="redirect")

    def test_redirect_lowercases_host_and_handles_absolute_form(self):
        r = self.raw(f"GET http://{ACME}:8080/a/b?c=d&e HTTP/1.1\r\nHost: ACME.Front.TEST:8080\r\n\r\n".encode())
        self.assertEqual((r.status, r.header("location")), (308, f"https://{ACME}/a/b?c=d&e"))

    def test_redirect_with_curl(self):
        out = self.curl("-o", "/dev/null", "-H", f"Host: {ACME}:8080", "-w", "%{http_code} %{redirect_url}",
                        self.url("/inbox?folder=2"))
        self.assertEqual(out, f"308 https://{ACME}/inbox?folder=2")

    def test_redirect_of_absolute_form_without_path_keeps_query(self):
        # RFC 9112 3.2.2 / RFC 3986 6.2.3: "http://host?q" is "http://host/?q".
        r = self.raw(f"GET http://{ACME}?x=1 HTTP/1.1\r\nHost: {ACME}\r\n\r\n".encode())
        self.assertEqual((r.status, r.header("location")), (308, f"https://{ACME}/?x=1"))

    def test_redirect_of_asterisk_and_authority_form_is_well_formed(self):
        # OPTIONS * (RFC 9112 3.2.4) and CONNECT's authority-form (3.2.3) have no path to keep.
        # Whatever sniroute answers, it must not build a Location like "https://host*".
        for raw in (f"OPTIONS * HTTP/1.1\r\nHost: {ACME}\r\n\r\n",
                    f"CONNECT {ACME}:443 HTTP/1.1\r\nHost: {ACME}\r\n\r\n"):
            with self.subTest(request=raw.split("\r\n")[0]):
                r = self.raw(raw.encode())
                if r.status == 308:
                    self.assertRegex(r.header("location"), rf"^https://{ACME.replace('.', '[.]')}/")
                else:
                    self.assertGreaterEqual(r.status, 400, r)

    def test_answer_survives_an_unread_request_body(self):
        # A redirect for a POST whose body sniroute never reads: the answer closes the
        # connection, and lingering must keep a RST from destroying it before it is read.
        body = b"b" * (512 * 1024)
        with h.connect(self.http_port) as s:
            s.sendall(f"POST /upload HTTP/1.1\r\nHost: {ACME}\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            sender = threading.Thread(target=send_quietly, args=(s, body), daemon=True)
            sender.start()
            time.sleep(0.2)
            rd = h.ResponseReader(s)
            r = rd.read()
            self.assertEqual((r.status, r.header("location"), r.header("connection")),
                             (308, f"https://{ACME}/upload", "close"))
            self.assert_closed_after(rd)
            sender.join(h.IO_TIMEOUT)

    def test_challenge_on_redirect_route_is_not_redirected(self):
        tok, body = self.token()
        r = h.get(self.http_port, ACME, PREFIX + tok)
        self.assertEqual((r.status, r.body, r.header("location")), (200, body, None))
        # No answer anywhere and acme = "local": 404, still not a redirect.
        r = h.get(self.http_port, LOCAL, PREFIX + "NoSuchToken")
        self.assertEqual((r.status, r.header("location")), (404, None))
        self.wait_http(host=LOCAL, status=404, source="none")
        # A bad token on a redirect route is refused, not redirected either.
        r = h.get(self.http_port, LOCAL, PREFIX + "bad.token")
        self.assertEqual((r.status, r.header("location")), (404, None))

    # --- unknown hosts ----------------------------------------------------------------------

    def test_unknown_host_without_default_backend(self):
        r = h.get(self.http_port, UNKNOWN, "/")
        self.assertEqual(r.status, 421)
        self.wait_http(host=UNKNOWN, status=421, source="no_route")
        r = h.get(self.http_port, UNKNOWN, PREFIX + "NoSuchToken")
        self.assertEqual(r.status, 404)
        self.wait_http(host=UNKNOWN, status=404, source="none")

    # --- keep-alive and pipelining ----------------------------------------------------------

    def test_pipelined_requests_are_answered_in_order(self):
        t1, b1 = self.token()
        t2, b2 = self.token(body=b"second-answer")
        with h.connect(self.http_port) as s:
            s.sendall((f"GET {PREFIX}{t1} HTTP/1.1\r\nHost: {ACME}\r\n\r\n"
                       f"GET {PREFIX}{t2} HTTP/1.1\r\nHost: {ACME}\r\n\r\n"
                       f"GET /after?x=y HTTP/1.1\r\nHost: {ACME}\r\n\r\n").encode())
            rd = h.ResponseReader(s)
            got = [rd.read() for _ in range(3)]
            self.assertEqual([(r.status, r.body) for r in got[:2]], [(200, b1), (200, b2)])
            self.assertEqual((got[2].status, got[2].header("location")), (308, f"https://{ACME}/after?x=y"))
            for r in got:
                self.assertEqual(r.header("connection"), "keep-alive")
            # The connection is still usable afterwards.
            s.sendall(f"GET {PREFIX}{t1} HTTP/1.1\r\nHost: {ACME}\r\nConnection: close\r\n\r\n".encode())
            last = rd.read()
            self.assertEqual((last.status, last.body, last.header("connection")), (200, b1, "close"))
            self.assert_closed_after(rd)

    def test_request_split_byte_by_byte(self):
        tok, body = self.token()
        with h.connect(self.http_port) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            req = f"GET {PREFIX}{tok} HTTP/1.1\r\nHost: {ACME}\r\nConnection: close\r\n\r\n".encode()
            for i in range(len(req)):
                s.sendall(req[i:i + 1])
                if i % 16 == 0:
                    time.sleep(0.005)
            r = h.ResponseReader(s).read()
        self.assertEqual((r.status, r.body), (200, body))

    # --- forwarding -------------------------------------------------------------------------

    def test_forward_replays_head_byte_for_byte_and_relays_body(self):
        body = b"hello=world&x=" + b"y" * 3000
        req = (b"POST /submit?a=1 HTTP/1.1\r\nHost: FWD.front.test:80\r\nX-Odd:   spaced   value \r\n"
               b"x-lower: v\r\nContent-Type: application/x-www-form-urlencoded\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
        n0 = len(self.backend.received)
        self.backend.min_bytes = len(req) + len(body)
        try:
            with h.connect(self.http_port) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # The head arrives in pieces; sniroute must replay it as one unchanged stream.
                s.sendall(req[:7])
                time.sleep(0.05)
                s.sendall(req[7:60])
                time.sleep(0.05)
                s.sendall(req[60:] + body[:10])
                time.sleep(0.05)
                s.sendall(body[10:])
                data = h.recv_all(s)
        finally:
            self.backend.min_bytes = 0
        self.assertEqual(data, self.backend.reply)
        got = self.backend.wait_connections(n0 + 1)[n0]
        self.assertEqual(got, req + body)
        self.sniroute.wait_event("conn", start=self.mark, sni=FWD, backend="rec")

    def test_local_answer_then_forward_on_one_connection(self):
        # Pipelined: a challenge answered here, then a request that belongs to the backend.
        # The backend must get exactly the second request, after our answer went out.
        tok, body = self.token()
        second = f"GET /app HTTP/1.1\r\nHost: {FWD}\r\nConnection: close\r\n\r\n".encode()
        n0 = len(self.backend.received)
        with h.connect(self.http_port) as s:
            s.sendall(f"GET {PREFIX}{tok} HTTP/1.1\r\nHost: {FWD}\r\n\r\n".encode() + second)
            rd = h.ResponseReader(s)
            first = rd.read()
            from_backend = rd.read()
        self.assertEqual((first.status, first.body), (200, body))
        self.assertEqual((from_backend.status, from_backend.body), (200, b"backend"))
        got = self.backend.wait_connections(n0 + 1)[n0]
        self.assertEqual(got, second)

    def test_challenge_without_answer_on_auto_route_is_forwarded(self):
        n0 = len(self.backend.received)
        req = f"GET {PREFIX}BackendOwnsThisToken HTTP/1.1\r\nHost: {FWD}\r\nConnection: close\r\n\r\n".encode()
        r = self.raw(req)
        self.assertEqual((r.status, r.body), (200, b"backend"))
        self.assertEqual(self.backend.wait_connections(n0 + 1)[n0], req)

    def test_proxy_protocol_v1_header_precedes_the_replayed_head(self):
        req = f"GET /pp HTTP/1.1\r\nHost: {PP}\r\nConnection: close\r\n\r\n".encode()
        n0 = len(self.pp_backend.received)
        with h.connect(self.http_port) as s:
            client_port = s.getsockname()[1]
            s.sendall(req)
            data = h.recv_all(s)
        self.assertEqual(data, self.pp_backend.reply)
        got = self.pp_backend.wait_connections(n0 + 1)[n0]
        header = f"PROXY TCP4 127.0.0.1 127.0.0.1 {client_port} {self.http_port}\r\n".encode()
        self.assertEqual(got, header + req)


class HttpFrontLimits(FrontBase):
    """Small limits: a 1s head deadline and a 1024-byte head cap. Its webroot's
    acme-challenge directory is a symbolic link to a directory outside the webroot."""

    global_ = {"client_hello_timeout": "1s", "max_http_head": 1024}
    challenge_dir_is_symlink = True

    def test_oversized_head_is_431(self):
        filler = "".join(f"X-Filler-{i:03}: {'v' * 40}\r\n" for i in range(40))  # ~2000 bytes
        req = f"GET / HTTP/1.1\r\nHost: {ACME}\r\n{filler}\r\n".encode()
        self.assertGreater(len(req), 2000)
        with h.connect(self.http_port) as s:
            s.sendall(req)
            rd = h.ResponseReader(s)
            r = rd.read()
            self.assertEqual(r.status, 431, r)
            self.assert_closed_after(rd)
        self.sniroute.wait_event("http", start=self.mark, status=431)

    def test_head_just_under_the_cap_is_fine(self):
        req = f"GET / HTTP/1.1\r\nHost: {ACME}\r\n".encode()
        pad = 1024 - len(req) - len("X-Pad: \r\n\r\n")
        req += b"X-Pad: " + b"p" * pad + b"\r\n\r\n"
        self.assertEqual(len(req), 1024)
        r = self.raw(req)
        self.assertEqual(r.status, 308)

    def test_slow_head_is_closed_at_the_deadline(self):
        with h.connect(self.http_port) as s:
            started = time.monotonic()
            s.sendall(f"GET / HTTP/1.1\r\nHost: {ACME}\r\n".encode())
            rd = h.ResponseReader(s)
            self.assertTrue(rd.wait_closed(5.0), "a partial head was kept open past client_hello_timeout")
            elapsed = time.monotonic() - started
        self.assertGreaterEqual(elapsed, 0.8)
        self.assertLess(elapsed, 5.0)
        self.sniroute.wait_event("conn", start=self.mark, outcome="timeout")

    def test_idle_keep_alive_is_closed_at_the_deadline(self):
        with h.connect(self.http_port) as s:
            s.sendall(f"GET / HTTP/1.1\r\nHost: {ACME}\r\n\r\n".encode())
            rd = h.ResponseReader(s)
            self.assertEqual(rd.read().status, 308)
            started = time.monotonic()
            self.assertTrue(rd.wait_closed(5.0), "an idle keep-alive connection was kept open")
            self.assertLess(time.monotonic() - started, 5.0)

    def test_symlinked_challenge_directory_is_not_followed(self):
        tok = "TokenBehindDirLink"
        with open(os.path.join(self.outside, tok), "wb") as f:
            f.write(b"SECRET-behind-a-directory-link")
        r = h.get(self.http_port, LOCAL, PREFIX + tok)
        self.assertEqual(r.status, 404)
        self.assertNotIn(b"SECRET", r.body)


if __name__ == "__main__":
    unittest.main(verbosity=2)

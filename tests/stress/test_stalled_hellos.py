"""Stalled ClientHellos: 2,000 connections (5,000 with SNIROUTE_STRESS=long) that send nothing,
part of a hello, or a record header and then sit, kept at that number for the whole test (each
one the proxy closes is replaced at once, as an attacker would), while 2,000 (20,000) real TLS
handshakes go through the same listener to a TLS backend. Every legitimate connection must
succeed, every stalled one must be closed by client_hello_timeout without a byte reaching a
backend.

max_connections counts every session, including one still waiting for its hello, so the
stalled connections take slots: the limit must cover them plus the legitimate ones in flight,
or legitimate clients are refused. The setting here is the one an admin facing this would
choose: max_connections well above the stalled count plus the real load (5,000 here; 9,000
long), a descriptor limit of twice that plus slack (prlimit; at most the hard limit this test
runs under, which an unprivileged container cannot raise), and a short client_hello_timeout
(3 s) that bounds how long each stalled one holds its slot.
"""

import errno
import os
import selectors
import socket
import ssl
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stress_util
from stress_util import StressTestCase, figures, harness, scaled

STALLED = scaled(2_000, 5_000)
LEGIT = scaled(2_000, 20_000)
MAX_CONNECTIONS = scaled(5_000, 9_000)
HELLO_TIMEOUT_S = 3
CLIENT_THREADS = 16
HELLO = harness.fixture("curl-www.bin")

harness.require_tools("openssl", "prlimit")  # exit 77 (skip), or 1 on CI, if one is missing

# What each stalled connection sends before it goes quiet, in turn.
STALL_PREFIXES = [
    b"",                    # nothing at all (held back by TCP_DEFER_ACCEPT first)
    HELLO[:20],             # the start of a hello
    HELLO[:5],              # a record header promising a whole record
    HELLO[:-1],             # all but the last byte
]


class StalledClients:
    """Keeps `n` stalled connections open from one selectors thread, replacing each one the
    proxy closes while `keep_up` is set. Records how each ended."""

    def __init__(self, port, n):
        self.port = port
        self.n = n
        self.sel = selectors.DefaultSelector()
        self.keep_up = True
        self.opened = 0
        self.closed = 0
        self.got_data = 0
        self.connect_errors = {}
        self.max_lifetime = 0.0
        self.stop = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open_one(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(harness.IO_TIMEOUT)
        try:
            s.connect(("127.0.0.1", self.port))
            prefix = STALL_PREFIXES[self.opened % len(STALL_PREFIXES)]
            if prefix:
                s.sendall(prefix)
        except OSError as e:
            s.close()
            key = errno.errorcode.get(e.errno, str(e))
            self.connect_errors[key] = self.connect_errors.get(key, 0) + 1
            return
        s.setblocking(False)
        self.opened += 1
        self.sel.register(s, selectors.EVENT_READ, time.monotonic())

    def run(self):
        for _ in range(self.n):
            self.open_one()
        while not self.stop:
            for key, _ in self.sel.select(0.2):
                s, t_open = key.fileobj, key.data
                try:
                    data = s.recv(4096)
                except (ConnectionError, OSError):
                    data = b""
                if data:
                    self.got_data += 1  # the proxy must never answer a stalled hello
                self.sel.unregister(s)
                s.close()
                self.closed += 1
                self.max_lifetime = max(self.max_lifetime, time.monotonic() - t_open)
                if self.keep_up:
                    self.open_one()
            if not self.keep_up and not self.sel.get_map():
                return

    def open_now(self):
        return len(self.sel.get_map())

    def close(self):
        self.stop = True
        self.thread.join(10)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()


class StalledHelloTest(StressTestCase):
    def test_legitimate_connections_succeed_among_stalled_ones(self):
        stress_util.raise_nofile(STALLED + LEGIT // 4 + 1024)
        cert = self.cert("www.example.com")
        backend = self.backend_process(cert=cert)
        port = harness.free_port()
        nofile = stress_util.within_hard_nofile(2 * MAX_CONNECTIONS + 1024)
        proxy = self.start_proxy(harness.render_config(
            {"workers": 2, "access_log": False, "client_hello_timeout": f"{HELLO_TIMEOUT_S}s",
             "max_connections": MAX_CONNECTIONS}, [
                {"name": "tls", "bind": [harness.addr("127.0.0.1", port)], "protocol": "tls",
                 "routes": [{"match": "www.example.com", "backend": "tls"}]},
            ], {"tls": {"servers": [backend.address]}}), wrapper=["prlimit", f"--nofile={nofile}:{nofile}"])
        fds_idle = stress_util.fd_count(proxy.pid)
        rss_idle = harness.rss_kib(proxy.pid)

        stalled = StalledClients(port, STALLED)
        self.addCleanup(stalled.close)
        stalled.thread.start()
        # Until the proxy holds most of them: the silent ones reach it only after the kernel's
        # deferred accept (1 s of their 3), and some are always being replaced.
        stress_util.wait_until(lambda: stress_util.fd_count(proxy.pid) - fds_idle >= 0.75 * STALLED, 60,
                               f"sniroute to hold {STALLED} stalled connections")
        fds_peak = stress_util.fd_count(proxy.pid)
        rss_stalled = harness.rss_kib(proxy.pid)

        ctx = ssl.create_default_context(cafile=cert.cert_path)
        results = {"ok": 0, "failed": 0}
        errors = {}
        lock = threading.Lock()

        def legit(i):
            msg = b"legitimate %d" % i
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=harness.IO_TIMEOUT) as raw:
                    with ctx.wrap_socket(raw, server_hostname="www.example.com") as t:
                        t.sendall(msg)
                        got = bytearray()
                        while len(got) < len(msg):
                            chunk = t.recv(4096)
                            if not chunk:
                                break
                            got += chunk
                        if bytes(got) != msg:
                            raise ValueError(f"echo {bytes(got)!r}")
                ok = True
            except Exception as e:  # counted and asserted on below
                ok = False
                key = f"{type(e).__name__}: {e}"[:120]
            with lock:
                if ok:
                    results["ok"] += 1
                else:
                    results["failed"] += 1
                    errors[key] = errors.get(key, 0) + 1

        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            list(pool.map(legit, range(LEGIT), timeout=scaled(600, 1800)))
        stalled_during = stalled.open_now()
        stalled.keep_up = False
        stress_util.wait_until(lambda: not stalled.thread.is_alive(), HELLO_TIMEOUT_S + 60,
                               "the proxy to close every stalled connection")
        accepted = backend.close()
        # A client may see its close a moment before the proxy's line about it is read.
        try:
            stress_util.wait_until(lambda: len(proxy.events("conn", outcome="timeout")) >= stalled.opened, 30,
                                   "a conn line for every stalled connection")
        except AssertionError:
            pass  # the count is asserted below, with the numbers
        timeouts = proxy.events("conn", outcome="timeout")
        others = [e for e in proxy.events("conn") if e["outcome"] != "timeout"]
        figures("stalled_hellos", stalled=STALLED, stalled_opened=stalled.opened, stalled_closed=stalled.closed,
                stalled_open_at_end_of_load=stalled_during, max_stalled_lifetime_s=round(stalled.max_lifetime, 2),
                legit=LEGIT, legit_ok=results["ok"], legit_failed=results["failed"], backend_accepted=accepted,
                proxy_fds_idle=fds_idle, proxy_fds_at_load_start=fds_peak, max_connections=MAX_CONNECTIONS,
                nofile=nofile, rss_kib_idle=rss_idle, rss_kib_with_stalled=rss_stalled,
                rss_kib_after=harness.rss_kib(proxy.pid))
        self.assertEqual(errors, {})
        self.assertEqual(results["ok"], LEGIT)
        self.assertEqual(stalled.connect_errors, {}, "a stalled client could not even connect")
        self.assertEqual(stalled.got_data, 0, "the proxy sent bytes to a stalled client")
        self.assertEqual(stalled.closed, stalled.opened)
        self.assertEqual(accepted, LEGIT, "a stalled connection reached the backend")
        self.assertEqual(len(timeouts), stalled.opened, "every stalled connection ends at client_hello_timeout")
        self.assertEqual(others, [], "a connection other than a stalled one did not end ok")


if __name__ == "__main__":
    harness.main()

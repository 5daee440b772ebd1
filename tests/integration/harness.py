"""Shared helpers for sniroute integration tests.

Every test starts the real binary (SNIROUTE_BIN) on free loopback ports with a temp config and
drives it with real clients and servers: openssl s_server/s_client, curl, and small Python
socket servers where bytes must be checked exactly. Every wait is bounded, every process and
socket is closed in cleanup, and every proxy is stopped with SIGTERM and must exit 0 (exit 70
means libuv reported a leaked handle).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# The socket-level helpers live in peers.py; tests reach everything through this module.
from peers import (IO_TIMEOUT, ConnRecord, StalledListener, TcpServer, addr, echo, expect_closed,  # noqa: E402,F401
                   fd_count, free_port, free_ports, ipv6_available, pattern_bytes, pipe_fds, read_until_eof, recorder,
                   recv_exactly, rss_kib, sha256, tagged_echo)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _default_bin():
    for d in ("build-it", "build-acme", "build"):
        p = os.path.join(REPO, d, "sniroute")
        if os.path.exists(p):
            return p
    return os.path.join(REPO, "build", "sniroute")


BIN = os.environ.get("SNIROUTE_BIN") or _default_bin()
FIXTURES = os.environ.get("SNIROUTE_FIXTURES") or os.path.join(REPO, "..", "shared", "fixtures", "clienthellos")
VERBOSE = bool(os.environ.get("SNIROUTE_TEST_VERBOSE"))

# Bounds for waits. They are generous because the tests must pass on a loaded 2-core machine;
# they bound how long a broken build can hang a test, not how fast a good one must be.
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0

# Worker threads for every config that does not set `workers` itself (render_config adds it):
# SNIROUTE_TEST_WORKERS=2 runs the same cases with two event loops sharing each port, which is
# how the tsan suite (tests/integration/meson.build) runs them under ThreadSanitizer. Unset, the
# binary's default applies (1).
TEST_WORKERS = int(os.environ.get("SNIROUTE_TEST_WORKERS") or 0)


# --- tools the tests need -------------------------------------------------------------------

# The Debian package (as listed in the Makefile's TEST_DEPS) that puts each tool on PATH.
TOOL_PACKAGES = {
    "openssl": "openssl",
    "curl": "curl",
    "pebble": "pebble",
    "pebble-challtestsrv": "pebble",
    "certbot": "certbot",
    "lego": "lego",
    "dovecot": "dovecot-imapd",
    "doveadm": "dovecot-imapd",
    "prlimit": "util-linux",
    "prometheus": "prometheus",
    "promtool": "prometheus",
}

SKIP_EXIT = 77  # meson's "skipped" exit code


def tool_path(name):
    """Absolute path of a program on PATH, or None."""
    return shutil.which(name)


def require_tools(*tools, files=None):
    """Call at the top of a test file, before any test runs. If a program in `tools` is not on
    PATH, or a file in `files` (a dict: path -> Debian package) does not exist, prints one line
    per missing tool with the Debian package that provides it and exits: with 77 (meson's skip)
    normally, with 1 when CI=true, where a missing tool is a failure and never a silent skip."""
    missing = [(t, TOOL_PACKAGES.get(t, "?")) for t in tools if tool_path(t) is None]
    missing += [(f, pkg) for f, pkg in (files or {}).items() if not os.path.exists(f)]
    if not missing:
        return
    test = os.path.basename(sys.argv[0]) or "test"
    ci = os.environ.get("CI", "").lower() == "true"
    for what, pkg in missing:
        sys.stderr.write(f"{test}: missing {what} (Debian package {pkg}; `make test-deps` installs it)\n")
    names = ", ".join(what for what, _ in missing)
    if ci:
        sys.stderr.write(f"{test}: FAIL: CI=true and {names} missing; a missing tool is a failure on CI\n")
        sys.stderr.flush()
        sys.exit(1)
    sys.stderr.write(f"{test}: SKIP (exit {SKIP_EXIT}): {names} missing\n")
    sys.stderr.flush()
    sys.exit(SKIP_EXIT)


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


# --- config ---------------------------------------------------------------------------------

def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string for the ASCII we use
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot render {v!r} as TOML")


def render_config(global_=None, listeners=(), backends=None, acme=None):
    """TOML text for sniroute. `listeners` is a list of dicts (key `routes` is a list of dicts);
    `backends` maps a name to a dict; `acme` is a dict for [acme]. drain_timeout defaults to
    10s so that a test which leaves a connection open cannot stall its cleanup for the built-in
    30s. `workers` defaults to SNIROUTE_TEST_WORKERS when that is set."""
    g = {"drain_timeout": "10s"}
    if TEST_WORKERS:
        g["workers"] = TEST_WORKERS
    g.update(global_ or {})
    out = ["[global]"]
    out += [f"{k} = {_toml_value(v)}" for k, v in g.items()]
    if acme:
        out += ["", "[acme]"] + [f"{k} = {_toml_value(v)}" for k, v in acme.items()]
    for l in listeners:
        out += ["", "[[listeners]]"]
        out += [f"{k} = {_toml_value(v)}" for k, v in l.items() if k != "routes"]
        for r in l.get("routes", ()):
            out += ["", "[[listeners.routes]]"]
            out += [f"{k} = {_toml_value(v)}" for k, v in r.items()]
    for name, b in (backends or {}).items():
        out += ["", f"[backends.{name}]"]
        out += [f"{k} = {_toml_value(v)}" for k, v in b.items()]
    return "\n".join(out) + "\n"


def configured_workers(config_text):
    """The `workers` a config asks for: 1 when it sets none, 0 (one per core, so no count to
    check) when it says 0 or is not valid TOML (tests that start a broken config on purpose)."""
    try:
        return int(tomllib.loads(config_text).get("global", {}).get("workers", 1))
    except (tomllib.TOMLDecodeError, TypeError, ValueError, AttributeError):
        return 0


# --- the admin listener ------------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric_value(samples, metric, **labels):
    """One sample's value, or None when there is no such series. (`metric`, not `name`: a label
    may be called name.)"""
    return samples.get((metric, tuple(sorted(labels.items()))))


def http_get(port, path, method="GET", timeout=IO_TIMEOUT):
    """(status, headers, body) of one request to the admin listener, with a raw socket so that
    nothing is hidden by a client library."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: admin\r\n\r\n".encode())
        data = read_until_eof(s)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return status, headers, body


def admin_metrics(port):
    """/metrics of the admin listener on `port`, parsed."""
    status, _, body = http_get(port, "/metrics")
    assert status == 200, f"/metrics answered {status}"
    return parse_metrics(body.decode())


# --- logs -----------------------------------------------------------------------------------

_KV = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)')


def _unquote(v):
    if not v.startswith('"'):
        return v
    return json.loads(v)  # the text format escapes like JSON: \" \\ \u00XX


def parse_log_line(line):
    """A dict with ts, level, event and every key=value, for a text or JSON log line; None if
    the line is neither."""
    line = line.rstrip("\n")
    if line.startswith("{"):
        try:
            d = json.loads(line)
        except ValueError:
            return None
        return {k: (str(v) if not isinstance(v, str) else v) for k, v in d.items()}
    parts = line.split(" ", 3)
    if len(parts) < 3 or parts[1] not in ("info", "warn", "error"):
        return None
    d = {"ts": parts[0], "level": parts[1], "event": parts[2]}
    for k, v in _KV.findall(parts[3] if len(parts) > 3 else ""):
        d[k] = _unquote(v)
    return d


# --- the proxy ------------------------------------------------------------------------------

class Sniroute:
    """One `sniroute run` process. Its stderr is collected by a thread; events are parsed."""

    def __init__(self, workdir, config_text, name="sniroute", extra_args=(), wrapper=()):
        self.workdir = workdir
        self.extra_args = list(extra_args)
        # A command line the binary runs under, e.g. ["prlimit", "--nofile=64:64"].
        self.wrapper = list(wrapper)
        self.config_path = os.path.join(workdir, f"{name}.toml")
        self.write_config(config_text)
        # How many worker_stopped lines a clean stop must log: start-up's config counts, a
        # reload cannot change it.
        self.expected_workers = configured_workers(config_text)
        self.lines = []
        self.cond = threading.Condition()
        self.proc = None
        self.returncode = None

    def write_config(self, text):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)  # a reload must never see half a file

    def start(self, wait_ready=True):
        args = [*self.wrapper, BIN, "run", "--config", self.config_path, *self.extra_args]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if wait_ready:
            self.wait_event("ready", timeout=READY_TIMEOUT)
        return self

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if VERBOSE:
                sys.stderr.write(f"  [sniroute {self.proc.pid}] {line}\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def log_text(self):
        with self.cond:
            return "\n".join(self.lines)

    def events(self, event=None, start=0, **fields):
        """Parsed events at log index >= start, of type `event` (any if None) with the given
        field values."""
        with self.cond:
            lines = self.lines[start:]
        out = [e for e in map(parse_log_line, lines) if e]
        return [e for e in out if (event is None or e["event"] == event)
                and all(e.get(k) == str(v) for k, v in fields.items())]

    def wait_for(self, pred, timeout=IO_TIMEOUT, what="log line", start=0):
        """The first parsed event at index >= start satisfying pred, waiting up to timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    e = parse_log_line(line)
                    if e and pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if self.proc.poll() is not None and not self.reader.is_alive():
                    break  # the process is gone and all its output is in
                self.cond.wait(min(left, 0.2))
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; sniroute log:\n{self.log_text()}")

    def wait_event(self, event, timeout=IO_TIMEOUT, start=0, **fields):
        def pred(e):
            return e["event"] == event and all(e.get(k) == str(v) for k, v in fields.items())
        desc = event + "".join(f" {k}={v}" for k, v in fields.items())
        return self.wait_for(pred, timeout, desc, start)

    def wait_conn(self, timeout=IO_TIMEOUT, **fields):
        return self.wait_event("conn", timeout, **fields)

    def wait_count(self, event, n, timeout=IO_TIMEOUT, **fields):
        """Waits until at least n `event` lines matching fields are logged; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.events(event, **fields)
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {n} {event} lines {fields}, got {len(got)}; log:\n{self.log_text()}")
            time.sleep(0.05)

    def mark(self):
        """An index into the log; pass as start= to wait only for lines after this point."""
        with self.cond:
            return len(self.lines)

    def reload(self, config_text, timeout=IO_TIMEOUT):
        """Writes the config, sends SIGHUP, returns the reloaded or reload_rejected event."""
        self.write_config(config_text)
        m = self.mark()
        self.proc.send_signal(signal.SIGHUP)
        return self.wait_for(lambda e: e["event"] in ("reloaded", "reload_rejected"), timeout,
                             "reloaded or reload_rejected", start=m)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"sniroute did not exit within {timeout}s; log:\n{self.log_text()}")
        self.reader.join(5)
        self.proc.stderr.close()
        return self.returncode

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.proc and self.proc.stderr:
            self.reader.join(5)
            self.proc.stderr.close()


def run_cli(*args, timeout=IO_TIMEOUT):
    return subprocess.run([BIN, *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)


# --- certificates and openssl ---------------------------------------------------------------

class Cert:
    def __init__(self, cn, cert_path, key_path):
        self.cn = cn
        self.cert_path = cert_path
        self.key_path = key_path
        with open(cert_path) as f:
            self.pem_body = pem_bodies(f.read())[0]


PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def pem_bodies(text):
    """Base64 bodies of the PEM certificates in text, whitespace removed, in order."""
    return ["".join(m.split()) for m in PEM_RE.findall(text)]


def make_cert(workdir, cn):
    """A self-signed EC certificate for cn, in workdir."""
    cert = os.path.join(workdir, f"{cn}.crt")
    key = os.path.join(workdir, f"{cn}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", f"subjectAltName=DNS:{cn}"],
                   check=True, capture_output=True, timeout=IO_TIMEOUT)
    return Cert(cn, cert, key)


class OpensslServer:
    """`openssl s_server -www` on a free loopback port, presenting one certificate."""

    def __init__(self, workdir, cert, host="127.0.0.1"):
        self.host = host
        self.port = free_port(host)
        self.cert = cert
        self.out_path = os.path.join(workdir, f"s_server-{self.port}.out")
        self.out = open(self.out_path, "wb")
        accept = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self.proc = subprocess.Popen(["openssl", "s_server", "-accept", accept, "-cert", cert.cert_path, "-key",
                                      cert.key_path, "-www"], stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            with open(self.out_path, "rb") as f:
                if b"ACCEPT" in f.read():
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                with open(self.out_path, "rb") as f:
                    raise AssertionError(f"s_server did not start: {f.read()!r}")
            time.sleep(0.02)

    @property
    def address(self):
        return addr(self.host, self.port)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.out.close()


def s_client(port, servername=None, host="127.0.0.1", timeout=IO_TIMEOUT):
    """Runs openssl s_client once; returns (returncode, combined output as text)."""
    args = ["openssl", "s_client", "-connect", addr(host, port)]
    args += ["-servername", servername] if servername else ["-noservername"]
    p = subprocess.run(args, input=b"", capture_output=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def curl_certs(name, port, timeout=IO_TIMEOUT):
    """curl https://name:port/ pinned to 127.0.0.1; returns (exit code, HTTP code, PEM bodies)."""
    p = subprocess.run(["curl", "-s", "-k", "--max-time", str(int(timeout)), "--resolve", f"{name}:{port}:127.0.0.1",
                        f"https://{name}:{port}/", "-o", "/dev/null", "-w", "%{http_code}\n%{certs}"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 5)
    text = p.stdout.decode("utf-8", "replace")
    return p.returncode, text.split("\n", 1)[0], pem_bodies(text)


# --- the test base class --------------------------------------------------------------------

# The first line of a sanitizer's report: "WARNING: ThreadSanitizer: data race (pid=...)",
# "==12==ERROR: AddressSanitizer: ...", "src/x.cpp:1:2: runtime error: ..." (UBSan).
SANITIZER_REPORT = re.compile(r"^(==\d+==)?(WARNING|ERROR): \w*Sanitizer|: runtime error: ", re.M)


class ProxyTestCase(unittest.TestCase):
    """Owns a temp dir, and cleans up every process and socket a test makes. A proxy started
    with start_proxy() is stopped with SIGTERM at the end of the test unless the test stopped
    it itself, and must then exit 0 with `stopped clean=yes`."""

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="sniroute-it-")
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)

    def cert(self, cn):
        return make_cert(self.workdir, cn)

    def s_server(self, cert, host="127.0.0.1"):
        s = OpensslServer(self.workdir, cert, host)
        self.addCleanup(s.close)
        return s

    def stalled_listener(self):
        s = StalledListener()
        self.addCleanup(s.close)
        return s

    def tcp_server(self, handler, host="127.0.0.1"):
        s = TcpServer(handler, host)
        self.addCleanup(s.close)
        return s

    def start_proxy(self, config_text, name="sniroute", wait_ready=True, extra_args=(), wrapper=()):
        p = Sniroute(self.workdir, config_text, name, extra_args, wrapper)
        self.addCleanup(self.assert_no_sanitizer_report, p)  # cleanups run last-in first-out
        self.addCleanup(p.kill)
        self.addCleanup(self._stop_at_end, p)
        p.start(wait_ready)
        if wait_ready and p.expected_workers:
            ready = p.events("ready")[-1]
            self.assertEqual(ready.get("workers"), str(p.expected_workers), f"workers started; log:\n{p.log_text()}")
        return p

    def _stop_at_end(self, p):
        if p.returncode is not None:
            return  # the test waited for the exit and checked it
        if p.proc.poll() is None:
            return self.assert_clean_stop(p)
        # Exited on its own, and the test never looked: a crash, or a sanitizer that halted it.
        rc = p.wait_exit()
        self.fail(f"sniroute exited on its own with code {rc} during the test; log:\n{p.log_text()}")

    def assert_no_sanitizer_report(self, p):
        """Whatever the exit code (a test may expect 1, or kill the proxy): no report from
        ThreadSanitizer, AddressSanitizer, LeakSanitizer or UBSan in the log."""
        report = SANITIZER_REPORT.search(p.log_text())
        self.assertIsNone(report, f"sanitizer report in sniroute's log:\n{p.log_text()}")

    def assert_clean_stop(self, p, timeout=STOP_TIMEOUT):
        """SIGTERM (if still running), exit 0, and a `stopped clean=yes` line."""
        rc = p.stop(timeout)
        self.assertEqual(rc, 0, f"sniroute exit code {rc}; log:\n{p.log_text()}")
        stopped = [e for e in p.events("stopped")]
        self.assertTrue(stopped and stopped[-1].get("clean") == "yes", f"no clean stop; log:\n{p.log_text()}")
        leaks = p.events("leaked_handle")
        self.assertFalse(leaks, f"leaked handles: {leaks}")
        if p.expected_workers:
            workers = sorted(int(e["worker"]) for e in p.events("worker_stopped"))
            self.assertEqual(workers, list(range(p.expected_workers)), f"workers that stopped; log:\n{p.log_text()}")

    def assert_every_worker_accepted(self, p):
        """After a clean stop: every worker accepted at least one connection. With SO_REUSEPORT
        the kernel picks the worker by a hash of the 4-tuple, so a test that wants both workers
        exercised makes a couple of dozen connections (odds of missing one: about 2^-n)."""
        stopped = p.events("worker_stopped")
        self.assertTrue(stopped and all(int(e["accepted"]) > 0 for e in stopped), stopped)

    def connect(self, port, host="127.0.0.1", timeout=IO_TIMEOUT):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.settimeout(timeout)
        s.connect((host, port))
        return s


def main():
    unittest.main(verbosity=2)

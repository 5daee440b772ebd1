"""Shared helpers for the stress suite (tests/stress). The integration harness
(tests/integration/harness.py) starts and watches sniroute; this adds what only stress tests
need: the scale (SNIROUTE_STRESS=long, set by `meson setup -Dstress=long`), a higher descriptor
limit, backends and load generators that run as processes of their own, descriptor counts, and
the FIGURES lines each test prints so that its measurements can be quoted.

Stress tests assert outcomes (every legitimate connection succeeded, nothing reached a backend
that should not, memory and descriptors came back), never durations: the machine they run on is
shared and noisy. Every wait is still bounded, so a broken build fails instead of hanging.
"""

import json
import os
import resource
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402

# "short" (CI, about five minutes for the whole suite on 2 cores) or "long".
SCALE = os.environ.get("SNIROUTE_STRESS", "short")
LONG = SCALE == "long"

HELLO_FILE = os.path.join(harness.FIXTURES, "curl-www.bin")  # SNI www.example.com


def scaled(short, long):
    return long if LONG else short


def within_hard_nofile(want):
    """want, or this process's hard RLIMIT_NOFILE if that is lower: a container without
    CAP_SYS_RESOURCE cannot raise it, not even for a child through prlimit."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return want if hard == resource.RLIM_INFINITY else min(want, hard)


def raise_nofile(want):
    """Raises this process's soft RLIMIT_NOFILE to want (or to the hard limit, if lower);
    returns the new soft limit. Children (and prlimit) inherit it."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    target = within_hard_nofile(want)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


fd_count = harness.fd_count
pipe_fd_count = harness.pipe_fds


def figures(case, **values):
    """One line of measurements for the closing note: FIGURES case=NAME scale=short k=v ..."""
    text = " ".join(f"{k}={v}" for k, v in values.items())
    sys.stdout.write(f"FIGURES case={case} scale={SCALE} {text}\n")
    sys.stdout.flush()


class BackendProcess:
    """tests/stress/backend.py as a child process (echo, with an optional tag first; TLS with
    cert)."""

    def __init__(self, port=0, tag="", cert=None):
        self.tag = tag
        self.cert = cert
        self.port = port
        self.proc = None
        self.start()

    def start(self):
        args = [sys.executable, os.path.join(HERE, "backend.py"), "--port", str(self.port), "--tag", self.tag]
        if self.cert:
            args += ["--tls", self.cert.cert_path, self.cert.key_path]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        line = _readline_bounded(self.proc, harness.READY_TIMEOUT)
        try:
            self.port = json.loads(line)["port"]
        except ValueError:
            self.close()
            raise AssertionError(f"backend did not start: {line!r}")
        return self

    @property
    def address(self):
        return harness.addr("127.0.0.1", self.port)

    def sigkill(self):
        self.proc.kill()
        self.proc.wait(10)
        self.proc.stdout.close()

    def close(self):
        """SIGTERM; returns its count of accepted connections (None if it was gone)."""
        if self.proc is None:
            return None
        accepted = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                out, _ = self.proc.communicate(timeout=10)
                accepted = json.loads(out.splitlines()[-1])["accepted"]
            except (subprocess.TimeoutExpired, ValueError, IndexError):
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None
        return accepted


def _readline_bounded(proc, timeout):
    out = []
    t = threading.Thread(target=lambda: out.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(timeout)
    return out[0].decode() if out else ""


def run_load(targets, total, processes, first=0, thumbprint="", timeout=20.0, bound=600.0):
    """Runs `total` short connections spread over `processes` load_client.py processes;
    returns {"ok", "failed", "errors"} summed over them."""
    per = [total // processes + (1 if i < total % processes else 0) for i in range(processes)]
    procs, start = [], first
    for n in per:
        spec = {"count": n, "first": start, "targets": targets, "hello": HELLO_FILE, "thumbprint": thumbprint,
                "timeout": timeout}
        start += n
        procs.append(subprocess.Popen([sys.executable, os.path.join(HERE, "load_client.py"), json.dumps(spec)],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE))
    result = {"ok": 0, "failed": 0, "errors": {}}
    deadline = time.monotonic() + bound
    for p in procs:
        try:
            out, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            r = json.loads(out.splitlines()[-1])
        except (subprocess.TimeoutExpired, ValueError, IndexError):
            p.kill()
            p.communicate()
            r = {"ok": 0, "failed": 0, "errors": {"load_client did not finish": 1}}
            r["failed"] = 1
        result["ok"] += r["ok"]
        result["failed"] += r["failed"]
        for k, v in r["errors"].items():
            result["errors"][k] = result["errors"].get(k, 0) + v
    return result


def wait_until(pred, timeout, what):
    """Polls pred() every 50 ms until it is true; fails after timeout."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class StressTestCase(harness.ProxyTestCase):
    def backend_process(self, port=0, tag="", cert=None):
        b = BackendProcess(port, tag, cert)
        self.addCleanup(b.close)
        return b

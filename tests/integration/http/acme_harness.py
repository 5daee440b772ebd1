"""Helpers for the port-80 front and ACME integration tests (tests/integration/http).

Builds on the shared tests/integration/harness.py (the binary, free ports, config rendering,
the Sniroute process wrapper, log parsing) and peers.py (threaded socket servers); adds Pebble
and pebble-challtestsrv as a private CA, certbot, lego, openssl and raw HTTP over sockets.

Rules every helper keeps:
  * every endpoint is 127.0.0.1 (or ::1) on a port chosen at run time;
  * every wait has a deadline, and the failure message says what was awaited and shows logs;
  * every process started is stopped in cleanup, by its own handle (never by name);
  * sniroute is stopped with SIGTERM and must exit 0.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/integration: the shared harness

import harness  # noqa: E402
from harness import (BIN, FIXTURES, IO_TIMEOUT, READY_TIMEOUT, STOP_TIMEOUT, VERBOSE,  # noqa: E402,F401
                     TcpServer, require_tools, addr, free_port, free_ports, parse_log_line, read_until_eof)

ISSUE_TIMEOUT = 120.0  # one certbot/lego issuance against Pebble, badNonce retries included


def log(msg):
    if VERBOSE:
        sys.stderr.write(f"  [acme-test] {msg}\n")


tool_path = harness.tool_path  # absolute path of a program on PATH, or None


def missing_tools(*names):
    return [n for n in names if tool_path(n) is None]


# --- ports and addresses ---------------------------------------------------------------------

def wait_tcp(host, port, timeout=READY_TIMEOUT, proc=None, what=None):
    """Waits until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what or proc.args[0]} exited ({proc.returncode}) before listening on {port}")
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing listening on {host}:{port} after {timeout}s ({what or ''})")
        time.sleep(0.05)


# --- environment for the tools --------------------------------------------------------------

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy")


def tool_env(home, **extra):
    """The environment for certbot/lego/curl/openssl: no proxy settings (so nothing is sent
    anywhere but where we point it), loopback exempt from proxies anyway, HOME in a temp dir
    (no user config files), nothing of the test's own Python (PYTHON*, and pyenv's PYENV*:
    certbot runs the system python3), and the given extras."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in _PROXY_VARS and not k.startswith(("PYTHON", "PYENV"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ writes into system dirs
    for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "LEGO_CA_CERTIFICATES",
              "LEGO_PATH", "LEGO_EMAIL", "LEGO_SERVER"):
        env.pop(k, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env["HOME"] = home
    env["XDG_CONFIG_HOME"] = os.path.join(home, ".config")
    env["XDG_CACHE_HOME"] = os.path.join(home, ".cache")
    env["LC_ALL"] = "C.UTF-8"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_tool(args, env=None, timeout=IO_TIMEOUT, log_path=None, check=True, what=None):
    """Runs a program to completion with a deadline. Output goes to log_path (if given) and is
    returned; on a non-zero exit or timeout (with check) the assertion shows the output tail."""
    started = time.monotonic()
    try:
        cp = subprocess.run(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, timeout=timeout)
        out, rc = cp.stdout, cp.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b""), None
    elapsed = time.monotonic() - started
    text = out.decode("utf-8", "replace")
    if log_path:
        with open(log_path, "a") as f:
            f.write(f"$ {' '.join(args)}\n{text}\n[exit {rc} after {elapsed:.1f}s]\n")
    log(f"{what or args[0]}: exit {rc} after {elapsed:.1f}s")
    if check and rc != 0:
        tail = "\n".join(text.splitlines()[-60:])
        status = f"timed out after {timeout}s" if rc is None else f"exited {rc}"
        raise AssertionError(f"{what or args[0]} {status}:\n{tail}")
    return rc, text, elapsed


class Background:
    """A long-running helper process (pebble, challtestsrv, lego server...) with its output in a
    file. stop() is bounded: SIGTERM, then SIGKILL."""

    def __init__(self, args, workdir, name, env=None):
        self.name = name
        self.log_path = os.path.join(workdir, f"{name}.log")
        self._out = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log(f"started {name} pid {self.proc.pid}: {' '.join(args)}")

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_output(self, needle, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            if needle in self.output():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {needle!r} after {timeout}s:\n{self.output()[-3000:]}")
            time.sleep(0.05)

    def stop(self, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._out.close()
        return self.proc.returncode


# --- sniroute config and logs ---------------------------------------------------------------

def render_config(global_=None, listeners=(), backends=None, acme=None):
    """harness.render_config with drain_timeout 5s by default, so a connection a test leaves
    open cannot stall cleanup."""
    return harness.render_config({"drain_timeout": "5s", **(global_ or {})}, listeners, backends, acme)


class Sniroute(harness.Sniroute):
    """harness.Sniroute whose reload() fails the test when the new config is rejected."""

    def reload(self, config_text, timeout=IO_TIMEOUT):
        """New config + SIGHUP; returns the 'reloaded' event (fails on reload_rejected)."""
        e = super().reload(config_text, timeout)
        if e["event"] != "reloaded":
            raise AssertionError(f"reload rejected:\n{self.log_text()}")
        return e


# --- raw HTTP over sockets ------------------------------------------------------------------

def connect(port, host="127.0.0.1", timeout=IO_TIMEOUT):
    s = socket.create_connection((host, port), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_all(sock, timeout=IO_TIMEOUT):
    """Everything until the peer closes (a reset after data counts as a close)."""
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"peer did not close within {timeout}s; got {b''.join(chunks)[:500]!r}")
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except ConnectionResetError:
            break
        except socket.timeout:
            continue
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


class Response:
    def __init__(self, status, reason, headers, body, raw):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lower-case name, value)
        self.body = body
        self.raw = raw

    def header(self, name):
        vals = [v for k, v in self.headers if k == name.lower()]
        return vals[0] if vals else None

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:200]!r}>"


class ResponseReader:
    """Reads HTTP/1.1 responses framed by Content-Length from a socket, one at a time."""

    def __init__(self, sock, timeout=IO_TIMEOUT):
        self.sock = sock
        self.buf = b""
        self.timeout = timeout
        self.closed = False

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no complete response within {self.timeout}s; have {self.buf[:500]!r}")
        self.sock.settimeout(left)
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            return
        except ConnectionResetError:
            b = b""
        if not b:
            self.closed = True
        self.buf += b

    def read(self, head_only=False):
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            if self.closed:
                raise AssertionError(f"connection closed before a full response head; have {self.buf!r}")
            self._fill(deadline)
        end = self.buf.index(b"\r\n\r\n") + 4
        lines = self.buf[:end - 4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
        headers = []
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers.append((k.strip().lower(), v.strip()))
        length = 0
        for k, v in headers:
            if k == "content-length":
                length = int(v)
        if head_only:
            length = 0
        while len(self.buf) < end + length:
            if self.closed:
                raise AssertionError(f"connection closed inside a body; have {self.buf!r}")
            self._fill(deadline)
        raw, self.buf = self.buf[:end + length], self.buf[end + length:]
        body = raw[end:]
        return Response(status, reason, headers, body, raw)

    def wait_closed(self, timeout=IO_TIMEOUT):
        """True if the peer closes (after any data) within timeout."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            if time.monotonic() >= deadline:
                return False
            self._fill(max(deadline, time.monotonic() + 0.01))
        return True


def http_request(port, raw, head_only=False, timeout=IO_TIMEOUT):
    """Sends raw request bytes on a new connection and reads one response."""
    with connect(port, timeout=timeout) as s:
        s.sendall(raw)
        return ResponseReader(s, timeout).read(head_only=head_only)


def get(port, host, path, method="GET", extra=b""):
    req = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: acme-test\r\n".encode() + extra + b"\r\n"
    return http_request(port, req, head_only=(method == "HEAD"))


class RecordingBackend(TcpServer):
    """A TCP server on a loopback port (free, or `port`) that records every connection's bytes.
    Each connection is answered with `reply` once `until` has arrived (and at least min_bytes),
    then read until the peer closes; `received` holds the bytes of each finished connection, in
    the order they finished."""

    def __init__(self, reply=b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nbackend",
                 until=b"\r\n\r\n", min_bytes=0, host="127.0.0.1", port=0):
        self.reply = reply
        self.until = until
        self.min_bytes = min_bytes
        self.received = []
        self.cond = threading.Condition()
        super().__init__(self._handle, host, port)

    def _handle(self, c, rec):
        try:
            while not (self.until in rec.received and len(rec.received) >= self.min_bytes):
                b = c.recv(65536)
                if not b:
                    break
                rec.received += b
            if self.reply:
                c.sendall(self.reply)
            c.shutdown(socket.SHUT_WR)
            # Drain whatever else comes until the peer closes, so no RST eats our reply.
            read_until_eof(c, rec)
        except OSError:
            pass
        finally:
            c.close()
            with self.cond:
                self.received.append(bytes(rec.received))
                self.cond.notify_all()

    def wait_connections(self, n, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.received) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"backend saw {len(self.received)} connections, expected {n}")
                self.cond.wait(left)
            return list(self.received)


# --- certificates ---------------------------------------------------------------------------

def openssl(*args, timeout=IO_TIMEOUT, what=None):
    return run_tool(["openssl", *args], timeout=timeout, what=what or f"openssl {args[0]}")[1]


def make_listener_ca(workdir):
    """A throw-away CA and a server certificate for Pebble's own HTTPS listeners (ACME API and
    management), valid for 127.0.0.1, ::1 and localhost. Returns (ca_pem, cert_pem, key_pem)."""
    ca_key, ca = os.path.join(workdir, "listener-ca.key"), os.path.join(workdir, "listener-ca.pem")
    key, csr, cert = (os.path.join(workdir, n) for n in ("listener.key", "listener.csr", "listener.pem"))
    ext = os.path.join(workdir, "listener.ext")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca_key,
            "-out", ca, "-days", "2", "-subj", "/CN=sniroute test listener CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
            "-out", csr, "-subj", "/CN=localhost")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "2",
            "-extfile", ext)
    return ca, cert, key


PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", re.S)


def split_pem(path):
    with open(path) as f:
        return PEM_CERT.findall(f.read())


def cert_dns_names(pem_path):
    """DNS names in the first certificate's subjectAltName."""
    text = openssl("x509", "-in", pem_path, "-noout", "-ext", "subjectAltName")
    return sorted(re.findall(r"DNS:([^,\s]+)", text))


def verify_chain(root_pem, leaf_pem, intermediates_pem, workdir):
    """`openssl verify -CAfile root -untrusted intermediates leaf`; returns its output, raises
    on failure."""
    rc, out, _ = run_tool(["openssl", "verify", "-CAfile", root_pem, "-untrusted", intermediates_pem, leaf_pem],
                          check=False, what="openssl verify")
    if rc != 0 or ": OK" not in out:
        raise AssertionError(f"certificate does not verify against Pebble's root:\n{out}")
    return out


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_p256_key(path):
    """An EC P-256 private key in SEC1 PEM ("EC PRIVATE KEY"), the form lego writes."""
    pk8 = path + ".pk8"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pk8)
    openssl("ec", "-in", pk8, "-out", path)
    os.unlink(pk8)
    return path


def jwk_thumbprint_p256(key_path):
    """RFC 7638 thumbprint of an EC P-256 key: base64url(SHA-256 of the JWK with only the
    required members crv, kty, x, y, in that (lexicographic) order, no whitespace)."""
    der_path = key_path + ".pub.der"
    openssl("ec", "-in", key_path, "-pubout", "-outform", "DER", "-out", der_path)
    with open(der_path, "rb") as f:
        spki = f.read()
    os.unlink(der_path)
    # A P-256 SubjectPublicKeyInfo ends with the uncompressed point 04 || X(32) || Y(32).
    point = spki[-65:]
    assert len(spki) == 91 and point[0] == 4, f"not an uncompressed P-256 key: {spki.hex()}"
    jwk = {"crv": "P-256", "kty": "EC", "x": b64url(point[1:33]), "y": b64url(point[33:])}
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(canonical).digest())


# --- Pebble ---------------------------------------------------------------------------------

CERTBOT_ATTEMPTS = 3
_CERTBOT_BAD_NONCE = "acme.messages.Error: urn:ietf:params:acme:error:badNonce"


class Pebble:
    """Pebble (ACME CA) + pebble-challtestsrv (its DNS, every A record 127.0.0.1, no AAAA), on
    free loopback ports. Validation goes to 127.0.0.1:http_port (HTTP-01) and
    127.0.0.1:tls_port (TLS-ALPN-01): point those at sniroute's listeners."""

    def __init__(self, workdir, http_port, tls_port):
        self.workdir = workdir
        self.http_port = http_port
        self.tls_port = tls_port
        self.procs = []

    def start(self):
        wd = self.workdir
        self.listener_ca, cert, key = make_listener_ca(wd)
        self.dns_port = free_port(udp=True)
        self.challtest_mgmt_port, self.acme_port, self.mgmt_port = free_ports(3)
        env = tool_env(wd)
        # Only the DNS server; the management API cannot be switched off, so it is bound to
        # loopback on a free port as well.
        self.challtestsrv = Background(
            ["pebble-challtestsrv", "-dns01", addr("127.0.0.1", self.dns_port), "-http01", "", "-https01", "",
             "-tlsalpn01", "", "-management", addr("127.0.0.1", self.challtest_mgmt_port),
             "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            wd, "challtestsrv", env=env)
        self.procs.append(self.challtestsrv)
        wait_tcp("127.0.0.1", self.dns_port, proc=self.challtestsrv.proc, what="pebble-challtestsrv DNS")
        conf = {"pebble": {
            "listenAddress": addr("127.0.0.1", self.acme_port),
            "managementListenAddress": addr("127.0.0.1", self.mgmt_port),
            "certificate": cert,
            "privateKey": key,
            "httpPort": self.http_port,
            "tlsPort": self.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }}
        self.config_path = os.path.join(wd, "pebble-config.json")
        with open(self.config_path, "w") as f:
            json.dump(conf, f, indent=2)
        # PEBBLE_VA_NOSLEEP: no random validation delay. PEBBLE_AUTHZREUSE=0: every order is
        # really validated, so a test cannot pass on an earlier authorization. Nonce rejection
        # is left at Pebble's default, which the clients must survive.
        pebble_env = tool_env(wd, PEBBLE_VA_NOSLEEP="1", PEBBLE_AUTHZREUSE="0")
        pebble_env.pop("PEBBLE_WFE_NONCEREJECT", None)
        self.pebble = Background(["pebble", "-config", self.config_path, "-dnsserver",
                                  addr("127.0.0.1", self.dns_port)], wd, "pebble", env=pebble_env)
        self.procs.append(self.pebble)
        self.directory = f"https://127.0.0.1:{self.acme_port}/dir"
        self._wait_directory()
        self.root_pem = os.path.join(wd, "pebble-root.pem")
        with open(self.root_pem, "wb") as f:
            f.write(self.https_get(f"https://127.0.0.1:{self.mgmt_port}/roots/0"))
        with open(self.root_pem, "rb") as f:
            assert b"BEGIN CERTIFICATE" in f.read(), "Pebble root is not PEM"
        return self

    def https_get(self, url, timeout=10.0):
        ctx = ssl.create_default_context(cafile=self.listener_ca)
        handler = urllib.request.HTTPSHandler(context=ctx)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), handler)
        with opener.open(url, timeout=timeout) as r:
            return r.read()

    def _wait_directory(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.pebble.proc.poll() is not None:
                raise AssertionError(f"pebble exited ({self.pebble.proc.returncode}):\n{self.pebble.output()}")
            try:
                d = json.loads(self.https_get(self.directory, timeout=2.0))
                if "newOrder" in d:
                    return d
            except (OSError, ValueError) as e:
                last = e
            time.sleep(0.1)
        raise AssertionError(f"Pebble directory not answering after {timeout}s ({last}):\n{self.pebble.output()}")

    def stop(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs = []

    # Clients. Both trust only the listener CA we made, talk only to 127.0.0.1.

    def certbot_webroot(self, name, webroot, workdir, timeout=ISSUE_TIMEOUT):
        """certbot certonly --webroot, with config, work and logs dirs of its own in workdir;
        returns (cert, chain, elapsed). A failure shows certbot's output and the tail of its
        debug log.

        Only a run that gave up on Pebble's nonce rejection is repeated: certbot 2.1.0 retries a
        badNonce once, and Pebble rejects 5% of nonces (left on for the clients to survive), so
        about one run in 40 meets two in a row on one request and exits. With python3.11 and
        josepy 1.13 (Debian 12) that acme.messages.Error even surfaces as "AttributeError:
        can't set attribute" (certbot/certbot#9539). The ACME requests do not cross sniroute;
        every other failure fails the test."""
        env = tool_env(workdir, REQUESTS_CA_BUNDLE=self.listener_ca)
        for attempt in range(1, CERTBOT_ATTEMPTS + 1):
            base = os.path.join(workdir, f"certbot-{attempt}")
            dirs = {k: os.path.join(base, k) for k in ("config", "work", "logs")}
            for d in dirs.values():
                os.makedirs(d, exist_ok=True)
            rc, out, elapsed = run_tool(
                ["certbot", "certonly", "--non-interactive", "--agree-tos", "--register-unsafely-without-email",
                 "--server", self.directory, "--config-dir", dirs["config"], "--work-dir", dirs["work"],
                 "--logs-dir", dirs["logs"], "--webroot", "-w", webroot, "-d", name, "--no-eff-email",
                 "--key-type", "ecdsa"],
                env=env, timeout=timeout, log_path=os.path.join(workdir, "certbot.out"), check=False,
                what=f"certbot for {name}")
            if rc == 0:
                live = os.path.join(dirs["config"], "live", name)
                return os.path.join(live, "cert.pem"), os.path.join(live, "chain.pem"), elapsed
            debug_path = os.path.join(dirs["logs"], "letsencrypt.log")
            try:
                with open(debug_path, errors="replace") as f:
                    debug = f.read()
            except OSError as e:
                debug = f"(no debug log: {e})"
            exit_trace = debug[debug.rfind("Exiting abnormally"):] if "Exiting abnormally" in debug else ""
            if rc is not None and _CERTBOT_BAD_NONCE in exit_trace and attempt < CERTBOT_ATTEMPTS:
                sys.stderr.write(f"  [acme-test] certbot for {name} (attempt {attempt}) gave up after two "
                                 f"badNonce answers from Pebble; running it again\n")
                continue
            status = f"timed out after {timeout}s" if rc is None else f"exited {rc}"
            tail = "\n".join(out.splitlines()[-60:])
            raise AssertionError(f"certbot for {name} {status} (attempt {attempt}):\n{tail}\n"
                                 f"----- {debug_path} (last 12000 chars) -----\n{debug[-12000:]}")

    def lego_path(self, workdir):
        return os.path.join(workdir, "lego")

    def lego_account_key_path(self, lego_path, email):
        """Where lego keeps an account key: accounts/HOST_PORT/EMAIL/keys/EMAIL.key."""
        return os.path.join(lego_path, "accounts", f"127.0.0.1_{self.acme_port}", email, "keys", f"{email}.key")

    def lego_run(self, name, challenge_args, workdir, email="acme-test@example.com", timeout=ISSUE_TIMEOUT):
        """lego --domains NAME <challenge_args> run; returns (cert, issuer, elapsed)."""
        path = self.lego_path(workdir)
        env = tool_env(workdir, LEGO_CA_CERTIFICATES=self.listener_ca)
        _, _, elapsed = run_tool(
            ["lego", "--server", self.directory, "--accept-tos", "--email", email, "--path", path,
             "--domains", name, "--key-type", "ec256", "--http-timeout", "30", *challenge_args, "run"],
            env=env, timeout=timeout, log_path=os.path.join(workdir, "lego.out"), what=f"lego for {name}")
        certs = os.path.join(path, "certificates")
        return os.path.join(certs, f"{name}.crt"), os.path.join(certs, f"{name}.issuer.crt"), elapsed


class TempDir:
    """A temp directory removed by cleanup(), unless SNIROUTE_KEEP_TMP is set (then its path is
    printed, for reading the tools' logs after a failure)."""

    def __init__(self, prefix):
        self.name = tempfile.mkdtemp(prefix=prefix)

    def cleanup(self):
        if os.environ.get("SNIROUTE_KEEP_TMP"):
            sys.stderr.write(f"  kept {self.name}\n")
        else:
            shutil.rmtree(self.name, ignore_errors=True)


def tempdir(prefix):
    return TempDir(prefix)

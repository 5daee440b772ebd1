"""Helpers for the built-in ACME client tests (tests/integration/acme).

The Pebble and sniroute plumbing comes from tests/integration/http/acme_harness.py (which builds
on tests/integration/harness.py); this module adds only what the client tests need on top: a
test base class owning one Pebble per class, Pebble with extra settings (EAB, a domain
blocklist), a private Dovecot instance, [[certificates]] config rendering, sniroute processes
that can be killed with SIGKILL, and certificate inspection with openssl.

Same rules as the http harness: every endpoint is 127.0.0.1 on a port chosen at run time, every
wait has a deadline, every process is stopped by its own handle.
"""

import datetime
import grp
import json
import os
import pwd
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "http"))

import acme_harness as h  # noqa: E402
from acme_harness import (  # noqa: E402,F401
    BIN, IO_TIMEOUT, READY_TIMEOUT, Background, Pebble, Sniroute, addr, free_port, free_ports, get,
    missing_tools, openssl, require_tools, parse_log_line, render_config, run_tool, split_pem, tempdir, tool_env,
    verify_chain, wait_tcp, cert_dns_names)
from harness import TcpServer, _toml_value, admin_metrics, http_get, metric_value  # noqa: E402,F401

ISSUE_TIMEOUT = 60.0  # one issuance through sniroute against Pebble; a healthy one takes < 1 s

EAB_EXAMPLE = "/usr/share/doc/pebble/examples/pebble-config-external-account-bindings.json"


def log(msg):
    h.log(msg)


def section(title):
    """A line on stderr that shows up in the meson test log: timings and what was seen."""
    sys.stderr.write(f"  [acme] {title}\n")
    sys.stderr.flush()


# --- Pebble with extra settings --------------------------------------------------------------

class PebbleCA(Pebble):
    """Pebble as the http harness runs it, plus extra keys merged into its "pebble" config
    (externalAccountBindingRequired, externalAccountMACKeys, domainBlocklist...).

    The harness writes its config and starts Pebble in one step, so with extras Pebble is
    started once as the harness does it, then restarted with the merged config on the same
    ports (a new root, which is fetched again)."""

    def __init__(self, workdir, http_port, tls_port, extra=None):
        super().__init__(workdir, http_port, tls_port)
        self.extra = dict(extra or {})

    def start(self):
        super().start()
        if not self.extra:
            return self
        with open(self.config_path) as f:
            conf = json.load(f)
        conf["pebble"].update(self.extra)
        with open(self.config_path, "w") as f:
            json.dump(conf, f, indent=2)
        args = list(self.pebble.proc.args)
        self.pebble.stop()
        self.procs.remove(self.pebble)
        os.replace(self.pebble.log_path, self.pebble.log_path + ".first")
        env = tool_env(self.workdir, PEBBLE_VA_NOSLEEP="1", PEBBLE_AUTHZREUSE="0")
        env.pop("PEBBLE_WFE_NONCEREJECT", None)
        self.pebble = Background(args, self.workdir, "pebble", env=env)
        self.procs.append(self.pebble)
        self._wait_directory()
        with open(self.root_pem, "wb") as f:
            f.write(self.https_get(f"https://127.0.0.1:{self.mgmt_port}/roots/0"))
        return self

    def orders_added(self):
        """How many orders Pebble has created so far (its log says 'Added order ...')."""
        return self.pebble.output().count("Added order ")


def eab_example_keys():
    """{kid: hmac_key} from Pebble's EAB example configuration."""
    with open(EAB_EXAMPLE) as f:
        return json.load(f)["pebble"]["externalAccountMACKeys"]


# --- sniroute config -------------------------------------------------------------------------

def sniroute_config(http_port, pebble, storage, certificates, tls_listeners=(), backends=None, acme_extra=None,
                    log_format="json", admin_port=None):
    """A config with an http listener on http_port (the port Pebble validates on), optional TLS
    listeners, [acme] pointing at `pebble` (an object with .directory and .listener_ca, or a
    dict of [acme] keys), the given [[certificates]] (list of dicts) and, with admin_port, the
    admin listener on 127.0.0.1:admin_port."""
    if isinstance(pebble, dict):
        acme = dict(pebble)
    else:
        acme = {"directory": pebble.directory, "ca_bundle": pebble.listener_ca}
    acme.setdefault("email", "acme-test@example.com")
    acme["storage"] = storage
    acme.update(acme_extra or {})
    listeners = [{"name": "http", "bind": [addr("127.0.0.1", http_port)], "protocol": "http"}]
    listeners += list(tls_listeners)
    text = render_config(global_={"log_format": log_format}, listeners=listeners, backends=backends, acme=acme)
    for c in certificates:
        text += "\n[[certificates]]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in c.items())
    if admin_port:
        text += f'\n[admin]\nbind = ["127.0.0.1:{admin_port}"]\n'
    return text


class AcmeSniroute(Sniroute):
    """Sniroute with what the client tests need: kill -9 (start(wait_ready=False) to SIGKILL it
    at any moment), a liveness check and the `certs` subcommands."""

    def kill9(self):
        """SIGKILL and reap; returns once the process is gone and its log fully read."""
        self.kill()
        assert self.proc.returncode is not None, "sniroute survived SIGKILL"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def certs(self, *args, timeout=60.0):
        """`sniroute certs ARGS --config FILE`: (exit code, output)."""
        rc, out, _ = run_tool([BIN, "certs", *args, "--config", self.config_path], check=False, timeout=timeout,
                              what="sniroute certs " + " ".join(args))
        return rc, out


def event_time(e):
    """Seconds since the epoch of a log event's ts (2026-12-01T13:45:43.677Z)."""
    ts = e["ts"].rstrip("Z")
    return datetime.datetime.fromisoformat(ts).replace(tzinfo=datetime.timezone.utc).timestamp()


# --- certificates -----------------------------------------------------------------------------

def norm_serial(s):
    s = s.strip().lower().replace(":", "")
    if s.startswith("serial="):
        s = s[len("serial="):]
    return s.lstrip("0") or "0"


def cert_serial(path):
    return norm_serial(openssl("x509", "-in", path, "-noout", "-serial"))


def cert_not_after_unix(path):
    """notAfter as unix seconds."""
    text = openssl("x509", "-in", path, "-noout", "-enddate").strip()
    when = datetime.datetime.strptime(text.split("=", 1)[1].replace("  ", " "), "%b %d %H:%M:%S %Y %Z")
    return int(when.replace(tzinfo=datetime.timezone.utc).timestamp())


def cert_not_after(path):
    """notAfter as YYYY-MM-DD (the form sniroute prints)."""
    text = openssl("x509", "-in", path, "-noout", "-enddate").strip()
    when = datetime.datetime.strptime(text.split("=", 1)[1].replace("  ", " "), "%b %d %H:%M:%S %Y %Z")
    return when.strftime("%Y-%m-%d")


def public_key_of_cert(path):
    return openssl("x509", "-in", path, "-noout", "-pubkey")


def public_key_of_key(path):
    return openssl("pkey", "-in", path, "-pubout")


def key_matches_cert(cert_path, key_path):
    return public_key_of_cert(cert_path).strip() == public_key_of_key(key_path).strip()


def complete_chain_problem(path):
    """None if `path` is a complete PEM chain (leaf + at least one issuer, every block parses,
    nothing but certificates, ends after the last END line); otherwise what is wrong."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        return f"unreadable: {e}"
    blocks = h.PEM_CERT.findall(text)
    if len(blocks) < 2:
        return f"{len(blocks)} certificate blocks"
    if "".join(blocks).strip() != text.strip():
        return "text outside certificate blocks (torn?)"
    for i, b in enumerate(blocks):
        p = subprocess.run(["openssl", "x509", "-noout"], input=b.encode(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=IO_TIMEOUT)
        if p.returncode != 0:
            return f"block {i} does not parse: {p.stderr.decode()[:200]}"
    return None


def write_chain_parts(chain_path, workdir):
    """Splits a fullchain file into leaf.pem and intermediates.pem in workdir; returns both."""
    blocks = split_pem(chain_path)
    assert len(blocks) >= 2, f"{chain_path}: expected leaf + intermediate, got {len(blocks)} blocks"
    leaf, inter = os.path.join(workdir, "leaf.pem"), os.path.join(workdir, "intermediates.pem")
    with open(leaf, "w") as f:
        f.write(blocks[0])
    with open(inter, "w") as f:
        f.write("".join(blocks[1:]))
    return leaf, inter


def temp_leftovers(directory):
    """Files in directory that look like temporaries of an atomic write (.NAME.HEX.tmp and the
    like), or anything ending in .tmp / .part / ~."""
    out = []
    for n in os.listdir(directory):
        if n.endswith((".tmp", ".part", "~")) or re.match(r"^\..*\.[0-9a-f]{8,}", n):
            out.append(n)
    return sorted(out)


def served_leaf(port, sni, host="127.0.0.1", timeout=10.0):
    """The DER leaf certificate a TLS server on host:port serves for sni (unverified)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            return t.getpeercert(binary_form=True)


def pem_to_der(pem_text):
    return ssl.PEM_cert_to_DER_cert(pem_text)


def leaf_der(chain_path):
    return pem_to_der(split_pem(chain_path)[0])


def self_signed(cert_path, key_path, cn, days=30):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key_path,
            "-out", cert_path, "-days", str(days), "-subj", f"/CN={cn}", "-addext", f"subjectAltName=DNS:{cn}")
    os.chmod(key_path, 0o600)


# --- Dovecot ---------------------------------------------------------------------------------

class Dovecot:
    """A private Dovecot (imap only) in its own temp directory: `dovecot -F -c CONF` as a child,
    config, base_dir, state_dir and log inside that directory, one imaps listener on a free 127.0.0.1 port
    reading ssl_cert/ssl_key from the given files. No system service or system path is touched.

    Dovecot runs its login and internal processes as the package's dovenull/dovecot users; the
    key itself stays 0600 root (Dovecot's config process reads it as root)."""

    def __init__(self, cert_file, key_file):
        # A short path of its own: Dovecot's unix sockets live under base_dir, and sun_path
        # holds 108 bytes. Traversable (0711) for Dovecot's unprivileged processes.
        self.tmp = tempdir("dv")
        self.workdir = workdir = self.tmp.name
        os.chmod(workdir, 0o711)
        self.port = free_port()
        self.conf = os.path.join(workdir, "dovecot.conf")
        self.log_path = os.path.join(workdir, "dovecot.log")
        # As root, Dovecot drops to the package's dovecot/dovenull users (the defaults). Not as
        # root, every process runs as the current user and the login/anvil chroots are off.
        unprivileged = ""
        if os.geteuid() != 0:
            user, group = pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name
            unprivileged = (f"default_internal_user = {user}\ndefault_internal_group = {group}\n"
                            f"default_login_user = {user}\nservice anvil {{\n  chroot =\n}}\n"
                            f"service imap-login {{\n  chroot =\n}}\n")
        mail_user = "dovecot" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        with open(self.conf, "w") as f:
            f.write(unprivileged + f"""# private test instance
base_dir = {workdir}/run
state_dir = {workdir}/state
log_path = {self.log_path}
instance_name = sniroute-test-{self.port}
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert_file}
ssl_key = <{key_file}
passdb {{
  driver = static
  args = password=unused
}}
userdb {{
  driver = static
  args = uid={mail_user} home={workdir}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.port}
    ssl = yes
  }}
}}
""")
        self.bg = None

    def start(self):
        self.bg = Background(["dovecot", "-F", "-c", self.conf], self.workdir, "dovecot-master")
        wait_tcp("127.0.0.1", self.port, proc=self.bg.proc, what="dovecot imaps")
        # The listener is up before imap-login is; wait for a real handshake.
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                served_leaf(self.port, "localhost", timeout=2.0)
                return self
            except (OSError, ssl.SSLError) as e:
                if time.monotonic() > deadline:
                    raise AssertionError(f"dovecot on {self.port} does not complete a TLS handshake ({e}):\n"
                                         f"{self.log()}")
                time.sleep(0.1)

    def reload_command(self):
        return f"doveadm -c {self.conf} reload"

    def reload(self):
        run_tool(["doveadm", "-c", self.conf, "reload"], what="doveadm reload")

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-4000:]
        except OSError:
            return "(no dovecot log)"

    def stop(self):
        if self.bg:
            self.bg.stop()
            self.bg = None
        if self.tmp:
            self.tmp.cleanup()
            self.tmp = None


def wait_until(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --- a CA that answers garbage ---------------------------------------------------------------

class GarbageHTTPS(TcpServer):
    """An HTTPS server on a free loopback port, with the certificate the http harness made for
    Pebble's listeners (so sniroute's ca_bundle trusts it), that answers every request with
    `answer` (raw bytes written after the TLS handshake, HTTP or not). `requests` holds the
    request line of each request; count() says how many."""

    def __init__(self, cert, key, answer):
        self.answer = answer
        self.requests = []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        super().__init__(self._handle)
        self.url = f"https://127.0.0.1:{self.port}/dir"

    def _handle(self, c, rec):
        try:
            with self.ctx.wrap_socket(c, server_side=True) as t:
                rec.sock = t  # so that close() shuts down the TLS socket's descriptor
                data = b""
                while b"\r\n\r\n" not in data:
                    b = t.recv(65536)
                    if not b:
                        break
                    data += b
                with self.lock:
                    self.requests.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                t.sendall(self.answer)
                try:
                    t.unwrap()
                except (OSError, ssl.SSLError):
                    pass
        except (OSError, ssl.SSLError):
            pass

    def count(self):
        with self.lock:
            return len(self.requests)


def http_response(status, body, content_type="application/json", extra=""):
    body = body.encode() if isinstance(body, str) else body
    return (f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n{extra}\r\n").encode() + body


def closed_port():
    """A loopback port nothing listens on (bound and closed again; not reused right away)."""
    return free_port()


def assert_serving(http_port):
    """sniroute's http listener still answers HTTP (421 for a host without a route)."""
    r = get(http_port, "unrouted.test", "/")
    if not (100 <= r.status <= 599 and r.header("server") == "sniroute"):
        raise AssertionError(f"http listener on {http_port} does not answer properly: {r}")
    return r


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def failed(testcase):
    """True once the running test has failed or errored (for printing logs in tearDown)."""
    result = getattr(getattr(testcase, "_outcome", None), "result", None)
    if result is None:
        return False
    return any(t is testcase for t, _ in list(result.failures) + list(result.errors))


def dump_logs(testcase, **logs):
    """On failure, the tail of each named log (a string or a callable giving one) on stderr."""
    if not failed(testcase):
        return
    for name, text in logs.items():
        try:
            text = text() if callable(text) else text
        except Exception as e:  # noqa: BLE001 - only for diagnostics
            text = f"(cannot read: {e})"
        sys.stderr.write(f"\n----- {name} (last 6000 chars) -----\n{(text or '')[-6000:]}\n")


# --- the test base class ---------------------------------------------------------------------

class PebbleTestCase(unittest.TestCase):
    """One PebbleCA per test class in a temp dir (tmp_prefix), stopped and removed at the end;
    per test a short work dir `wd` (control.sock paths must fit sun_path) with an output dir
    `out` for cert_file/key_file. Every sniroute started with sniroute() is killed if still
    running after the test; on failure the tail of each one's log, Pebble's log and
    extra_logs() are printed."""

    tmp_prefix = "sniroute-acme-"

    @classmethod
    def pebble_extra(cls):
        """Extra keys for Pebble's config (see PebbleCA)."""
        return None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempdir(cls.tmp_prefix)
        cls.http_port, cls.tls_port = free_ports(2)
        cls.pebble = PebbleCA(cls.tmp.name, cls.http_port, cls.tls_port, extra=cls.pebble_extra())
        try:
            cls.pebble.start()
        except BaseException:
            cls.pebble.stop()
            cls.tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.pebble.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.wd = tempfile.mkdtemp(prefix="t", dir=self.tmp.name)
        self.out = os.path.join(self.wd, "out")
        os.makedirs(self.out)
        self.cert_file = os.path.join(self.out, "fullchain.pem")
        self.key_file = os.path.join(self.out, "privkey.pem")
        self.procs = []

    def tearDown(self):
        dump_logs(self, **{f"sniroute #{i}": s.log_text for i, s in enumerate(self.procs)},
                  pebble=self.pebble.pebble.output, **self.extra_logs())
        for s in self.procs:
            if s.alive():
                s.kill()

    def extra_logs(self):
        """More logs to print when a test fails: name -> text or a callable giving it."""
        return {}

    def sniroute(self, text, wait_ready=True):
        """An AcmeSniroute in wd with config `text`, started (waiting for 'ready' unless
        wait_ready is false) and killed after the test if still running."""
        s = AcmeSniroute(self.wd, text)
        self.procs.append(s)
        return s.start(wait_ready)

    def garbage_ca(self, answer):
        """A GarbageHTTPS answering `answer`, with Pebble's listener certificate; closed after
        the test."""
        g = GarbageHTTPS(os.path.join(self.tmp.name, "listener.pem"), os.path.join(self.tmp.name, "listener.key"),
                         answer)
        self.addCleanup(g.close)
        return g

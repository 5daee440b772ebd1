"""Plain-socket peers for the integration tests: free loopback ports, threaded Python backends
whose every received byte is kept for exact comparison, a listener whose connect() hangs, and
client-side helpers. Standard library only; every blocking call has a timeout."""

import hashlib
import os
import socket
import threading
import time

# Socket operations in tests fail after this long instead of hanging the suite.
IO_TIMEOUT = 20.0

# --- addresses ------------------------------------------------------------------------------

# Every port free_port() has handed out in this process. The kernel may hand out a port again
# once its probe socket is closed (seen for [::1]: two listeners of one config got the same
# port, and the config was rightly refused), so a test that asks twice must get two ports.
_handed_out = set()


def free_port(host="127.0.0.1", udp=False):
    """A port the kernel just handed out for `host`, never one handed out before in this
    process; closed again so the proxy can bind it. With udp=True the same number is also free
    for UDP (for a DNS server)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port in _handed_out:
            continue
        _handed_out.add(port)
        if not udp:
            return port
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as u:
                u.bind((host, port))
            return port
        except OSError:
            continue
    raise AssertionError("no free port found")


def free_ports(n, host="127.0.0.1"):
    """n distinct free ports (all held open while choosing, so they differ)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def addr(host, port):
    """The config spelling of an address: 127.0.0.1:PORT or [::1]:PORT."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# --- Python socket servers ------------------------------------------------------------------

class ConnRecord:
    """What one accepted connection saw. Handlers fill `received`; `error` is set if the
    handler raised; `done` is set when the handler returned."""

    def __init__(self, sock, peer):
        self.sock = sock
        self.peer = peer
        self.received = bytearray()
        self.error = None
        self.done = threading.Event()
        self.info = {}


class TcpServer:
    """A threaded loopback server calling handler(sock, record) for each connection, on a free
    port or on `port`."""

    def __init__(self, handler, host="127.0.0.1", port=0):
        self.handler = handler
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if port:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.records = []
        self.lock = threading.Lock()
        self.new_conn = threading.Condition(self.lock)
        self.stopping = False
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self.acceptor.start()

    @property
    def address(self):
        return addr(self.host, self.port)

    def _accept_loop(self):
        while not self.stopping:
            try:
                conn, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(IO_TIMEOUT)
            rec = ConnRecord(conn, peer)
            t = threading.Thread(target=self._serve, args=(rec,), daemon=True)
            with self.lock:
                self.records.append(rec)
                self.threads.append(t)
                self.new_conn.notify_all()
            t.start()

    def _serve(self, rec):
        try:
            self.handler(rec.sock, rec)
        except Exception as e:  # reported by check() or by the test reading rec.error
            rec.error = e
        finally:
            try:
                rec.sock.close()
            except OSError:
                pass
            rec.done.set()

    def wait_conn(self, index=0, timeout=IO_TIMEOUT):
        """The index-th accepted connection's record, waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.records) <= index:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"backend {self.address}: connection #{index} never arrived")
                self.new_conn.wait(left)
            return self.records[index]

    def count(self):
        with self.lock:
            return len(self.records)

    def close(self):
        self.stopping = True
        self.acceptor.join(5)
        self.sock.close()
        with self.lock:
            records, threads = list(self.records), list(self.threads)
        for r in records:
            try:
                r.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(5)


# Handlers -----------------------------------------------------------------------------------

def read_until_eof(sock, rec=None, limit=None):
    buf = rec.received if rec is not None else bytearray()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return bytes(buf)
        buf += chunk
        if limit is not None and len(buf) > limit:
            raise AssertionError(f"more than {limit} bytes received")


def recv_exactly(sock, n, rec=None):
    buf = rec.received if rec is not None else bytearray()
    start = len(buf)
    while len(buf) - start < n:
        chunk = sock.recv(min(65536, n - (len(buf) - start)))
        if not chunk:
            raise EOFError(f"EOF after {len(buf) - start} of {n} bytes")
        buf += chunk
    return bytes(buf[start:])


def recorder(reply=b""):
    """Reads until EOF, then sends reply and closes."""
    def handler(sock, rec):
        read_until_eof(sock, rec)
        if reply:
            sock.sendall(reply)
    return handler


def tagged_echo(tag, head_len=0):
    """Reads head_len bytes (e.g. a ClientHello), sends tag, then echoes until EOF."""
    def handler(sock, rec):
        if head_len:
            recv_exactly(sock, head_len, rec)
        sock.sendall(tag)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return
            rec.received += chunk
            sock.sendall(chunk)
    return handler


def echo(sock, rec):
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        rec.received += chunk
        sock.sendall(chunk)


class StalledListener:
    """A loopback port where connect() hangs: a listen(0) socket whose accept queue is filled
    and never drained, so the kernel drops further SYNs. This gives a connect timeout without
    leaving loopback."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(c)
        time.sleep(0.1)

    @property
    def address(self):
        return addr("127.0.0.1", self.port)

    def close(self):
        for c in self.fillers:
            c.close()
        self.sock.close()


# --- client helpers -------------------------------------------------------------------------

def expect_closed(sock, timeout=IO_TIMEOUT):
    """Waits for the peer to close; returns 'eof' or 'reset'. Fails if data or nothing arrives."""
    sock.settimeout(timeout)
    data = bytearray()
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        return "reset", bytes(data)
    except socket.timeout:
        raise AssertionError(f"connection still open after {timeout}s (got {len(data)} bytes)")
    return "eof", bytes(data)


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def pattern_bytes(n, seed):
    """n deterministic but non-repeating-looking bytes, so a shifted or duplicated chunk shows."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, counter)).digest() * 64
        counter += 1
    return bytes(out[:n])


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    """How many descriptors the process has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def pipe_fds(pid):
    """How many of the process's descriptors are pipe ends. sniroute makes a pipe only to splice
    (libuv keeps a few of its own from start-up), and keeps empty ones in a pool, so a count
    above the one at start shows that a direction was spliced."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:")
        except OSError:
            pass  # closed while we looked
    return n

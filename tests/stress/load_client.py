"""Short-connection load for the stress tests, run as a process of its own so that several run
in parallel without sharing a GIL:

    load_client.py SPEC_JSON

SPEC_JSON: {"count": N, "first": I, "targets": [{"kind": K, "port": P}, ...], "hello": FILE,
            "thumbprint": T, "timeout": S}

Connection i (first <= i < first + count) goes to targets[i % len(targets)] and must complete
one exchange, checked byte for byte, then end cleanly:

    tls    the ClientHello from FILE and 16 bytes; the echo backend returns exactly that
    tcp    one line; echoed
    http   a GET forwarded to the backend (its head replayed byte for byte); echoed
    acme   a GET for an ACME challenge that sniroute answers itself (account_thumbprint)
    bulk   128 KiB through a tcp listener, echoed: past 64 KiB the relay splices (pipes)

Every non-acme exchange ends with our FIN and the backend's. Prints one JSON line:
{"ok": n, "failed": m, "errors": {"kind: error": count, ...}}. Every socket call has a timeout.
"""

import json
import socket
import sys

BULK = 128 * 1024


def recv_exactly(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_to_eof(s, limit=65536):
    buf = bytearray()
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            raise ValueError("too much data")


def exchange(kind, port, i, hello, thumbprint, timeout):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if kind == "acme":
            token = "tok%d" % i
            s.sendall(b"GET /.well-known/acme-challenge/%s HTTP/1.1\r\nHost: web.example\r\nConnection: close\r\n\r\n"
                      % token.encode())
            reply = read_to_eof(s)
            if not reply.startswith(b"HTTP/1.1 200 ") or not reply.endswith(f"{token}.{thumbprint}".encode()):
                raise ValueError(f"bad answer {reply[:80]!r}")
            return
        if kind == "tls":
            msg = hello + b"%016d" % i
        elif kind == "bulk":
            msg = (b"%08d" % i) * (BULK // 8)
        elif kind == "http":
            msg = b"GET /churn/%d HTTP/1.1\r\nHost: web.example\r\n\r\n" % i
        else:
            msg = b"tcp line %d\r\n" % i
        s.sendall(msg)
        got = recv_exactly(s, len(msg))
        if got != msg:
            raise ValueError("echo differs")
        s.shutdown(socket.SHUT_WR)
        rest = read_to_eof(s)
        if rest:
            raise ValueError(f"{len(rest)} bytes after the echo")


def main():
    spec = json.loads(sys.argv[1])
    with open(spec["hello"], "rb") as f:
        hello = f.read()
    targets = spec["targets"]
    ok = failed = 0
    errors = {}
    for i in range(spec["first"], spec["first"] + spec["count"]):
        t = targets[i % len(targets)]
        try:
            exchange(t["kind"], t["port"], i, hello, spec.get("thumbprint", ""), spec.get("timeout", 20.0))
            ok += 1
        except Exception as e:  # counted and reported; the test asserts there are none
            failed += 1
            key = f"{t['kind']}: {type(e).__name__}: {e}"[:160]
            errors[key] = errors.get(key, 0) + 1
    sys.stdout.write(json.dumps({"ok": ok, "failed": failed, "errors": errors}) + "\n")


if __name__ == "__main__":
    main()

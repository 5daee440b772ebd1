"""A backend for the stress tests that runs as a process of its own, so that a test can SIGKILL
it and so that its sockets and CPU do not count against the test process.

    backend.py --port P [--tag T] [--tls CERT KEY]

Each connection is answered with TAG (once, as soon as the first bytes arrive) followed by an
echo of every byte, until the client's FIN; then it is closed. With --tls the connection is a
real TLS server (thread per connection); otherwise one selectors loop serves everything, fast
enough for tens of thousands of short connections. Port 0 picks a free port; the port is
printed as one JSON line on stdout once the socket listens: {"port": 40001, "pid": 123}.
SIGTERM prints {"accepted": N} on stdout and exits 0. Listens on 127.0.0.1 only.
"""

import argparse
import json
import os
import selectors
import signal
import socket
import ssl
import sys
import threading


def listen(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # rebinding after a SIGKILL
    s.bind(("127.0.0.1", port))
    s.listen(4096)
    return s


class Stats:
    accepted = 0


def serve_plain(lsock, tag, stats):
    sel = selectors.DefaultSelector()
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, None)
    pending = {}  # socket -> bytes still to send

    def drop(c):
        sel.unregister(c)
        pending.pop(c, None)
        c.close()

    while True:
        for key, mask in sel.select():
            c = key.fileobj
            if c is lsock:
                for _ in range(64):
                    try:
                        conn, _ = lsock.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:  # EMFILE and the like: try again on the next wake-up
                        break
                    conn.setblocking(False)
                    stats.accepted += 1
                    sel.register(conn, selectors.EVENT_READ, [False])
                continue
            state = key.data
            if mask & selectors.EVENT_READ:
                try:
                    data = c.recv(65536)
                except (ConnectionError, OSError):
                    drop(c)
                    continue
                if not data:
                    if c in pending:
                        state.append("close")  # finish writing, then close
                        continue
                    drop(c)
                    continue
                if not state[0]:
                    state[0] = True
                    data = tag + data
                try:
                    sent = c.send(data)
                except BlockingIOError:
                    sent = 0
                except (ConnectionError, OSError):
                    drop(c)
                    continue
                if sent < len(data):
                    pending[c] = data[sent:]
                    sel.modify(c, selectors.EVENT_WRITE, state)
            elif mask & selectors.EVENT_WRITE:
                data = pending[c]
                try:
                    sent = c.send(data)
                except BlockingIOError:
                    continue
                except (ConnectionError, OSError):
                    drop(c)
                    continue
                if sent < len(data):
                    pending[c] = data[sent:]
                    continue
                del pending[c]
                if "close" in state:
                    drop(c)
                else:
                    sel.modify(c, selectors.EVENT_READ, state)


def serve_tls(lsock, tag, cert, key, stats):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    def one(conn):
        try:
            conn.settimeout(60)
            with ctx.wrap_socket(conn, server_side=True) as t:
                first = True
                while True:
                    data = t.recv(65536)
                    if not data:
                        return
                    t.sendall((tag if first else b"") + data)
                    first = False
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    while True:
        try:
            conn, _ = lsock.accept()
        except OSError:
            continue
        stats.accepted += 1
        threading.Thread(target=one, args=(conn,), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tag", default="")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    a = ap.parse_args()
    stats = Stats()

    def on_term(signum, frame):
        sys.stdout.write(json.dumps({"accepted": stats.accepted}) + "\n")
        sys.stdout.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    lsock = listen(a.port)
    sys.stdout.write(json.dumps({"port": lsock.getsockname()[1], "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    tag = a.tag.encode()
    if a.tls:
        serve_tls(lsock, tag, a.tls[0], a.tls[1], stats)
    else:
        serve_plain(lsock, tag, stats)


if __name__ == "__main__":
    main()

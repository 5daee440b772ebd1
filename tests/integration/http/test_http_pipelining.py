"""Pipelining against backpressure on the port-80 front: a client that sends requests faster
than it reads the answers. sniroute stops reading once 64 KiB of answers wait in user space
(src/proxy/session_http.cpp, kMaxQueuedResponses) and must resume, in order, when the client
catches up; a request to forward that arrives behind queued answers must still be forwarded.
No request may be lost or left waiting for the head deadline.

Uses the routes and fixtures of test_http_front.py (FrontBase).
"""

import fcntl
import os
import socket
import struct
import sys
import termios
import threading
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import acme_harness as h  # noqa: E402
from test_http_front import FWD, PREFIX, FrontBase, send_quietly  # noqa: E402


def send_queue_bytes(local_port, remote_port):
    """Bytes the kernel holds unacknowledged in the send queue of the IPv4 TCP socket
    127.0.0.1:local_port <-> :remote_port (/proc/net/tcp tx_queue), or None."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            p = line.split()
            if int(p[1].split(":")[1], 16) == local_port and int(p[2].split(":")[1], 16) == remote_port:
                return int(p[4].split(":")[0], 16)
    return None


def receive_queue_bytes(sock):
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


class HttpFrontBackpressure(FrontBase):

    global_ = {"client_hello_timeout": "5s"}
    ANSWER = b"k" * 4000  # near the 4096-byte cap, so few requests fill the socket buffers

    def big_token(self):
        tok, body = self.token(body=self.ANSWER)
        return tok, f"GET {PREFIX}{tok} HTTP/1.1\r\nHost: {FWD}\r\n\r\n".encode()

    def conn_lines_soon(self, timeout=3.0):
        """The conn lines since setUp, after giving a just-closed session time to log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.sniroute.events("conn", start=self.mark):
            time.sleep(0.05)
        return self.sniroute.events("conn", start=self.mark)

    def wait_answers_settle(self, at_least, quiet=0.5, timeout=h.IO_TIMEOUT):
        """Waits until at least `at_least` http lines are logged and then no new one for
        `quiet` seconds; returns the count."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = len(self.sniroute.events("http", start=self.mark))
            if n != last:
                last, since = n, time.monotonic()
            elif n >= at_least and time.monotonic() - since >= quiet:
                return n
            time.sleep(0.02)
        raise AssertionError(f"answers did not settle: {last} logged")

    def test_deep_pipeline_resumes_after_backpressure(self):
        tok, req = self.big_token()
        n = 3000  # ~12 MB of answers: far more than the socket buffers hold
        with h.connect(self.http_port) as s:
            sender = threading.Thread(target=send_quietly, args=(s, req * n), daemon=True)
            sender.start()
            # Do not read until sniroute has stopped reading because its queue is full.
            self.wait_answers_settle(at_least=1)
            rd = h.ResponseReader(s, timeout=h.IO_TIMEOUT)
            got = 0
            try:
                for _ in range(n):
                    r = rd.read()
                    self.assertEqual((r.status, len(r.body)), (200, len(self.ANSWER)))
                    got += 1
            except AssertionError as e:
                self.fail(f"only {got} of {n} pipelined requests were answered ({e}); "
                          f"conn lines: {self.conn_lines_soon()}")
            sender.join(h.IO_TIMEOUT)

    @unittest.skipUnless(os.path.exists("/proc/net/tcp"), "needs Linux /proc/net/tcp")
    def test_client_fin_behind_queued_answers(self):
        # The client pipelines requests, then shuts down its write side (as `nc -N` or a script
        # piping a file does) and reads the answers only afterwards. The FIN reaches sniroute
        # while answers still wait in user space for the client to read; they must all be
        # delivered before the connection is closed, not thrown away with it.
        tok, req = self.big_token()
        with h.connect(self.http_port) as s:
            client_port = s.getsockname()[1]
            mark = self.sniroute.mark()
            sent, batch = 0, 4  # as in test_forward_after_queued_answers: under the queue cap
            answer_len = None
            while True:
                self.assertLess(sent, 5000, "sniroute never held an answer back")
                s.sendall(req * batch)
                sent += batch
                deadline = time.monotonic() + h.IO_TIMEOUT
                while len(self.sniroute.events("http", start=mark)) < sent:
                    self.assertLess(time.monotonic(), deadline, f"answers stopped at {sent}")
                    time.sleep(0.002)
                time.sleep(0.01)
                if answer_len is None:
                    answer_len = receive_queue_bytes(s) // batch
                in_kernel = send_queue_bytes(self.http_port, client_port) + receive_queue_bytes(s)
                if in_kernel < sent * answer_len:
                    break
            s.shutdown(socket.SHUT_WR)
            time.sleep(0.3)  # sniroute reads the FIN while answers are still queued
            rd = h.ResponseReader(s)
            got = 0
            try:
                for _ in range(sent):
                    r = rd.read()
                    self.assertEqual((r.status, len(r.body)), (200, len(self.ANSWER)))
                    got += 1
            except AssertionError as e:
                self.fail(f"only {got} of {sent} answers arrived after the client's FIN ({str(e)[:120]}); "
                          f"conn lines: {self.conn_lines_soon()}")
            self.assertTrue(rd.wait_closed(h.IO_TIMEOUT), "sniroute kept the connection open after the answers")

    @unittest.skipUnless(os.path.exists("/proc/net/tcp"), "needs Linux /proc/net/tcp")
    def test_forward_after_queued_answers(self):
        # Local answers until sniroute holds some in user space (the kernel's send queue plus
        # what the client's kernel received is less than what was answered), one more answer
        # to queue behind it, then a request for the backend. When the client reads, every
        # answer and then the backend's response must arrive.
        tok, req = self.big_token()
        n0 = len(self.backend.received)
        with h.connect(self.http_port) as s:
            client_port = s.getsockname()[1]
            mark = self.sniroute.mark()
            s.sendall(req)
            rd = h.ResponseReader(s)
            answer_len = len(rd.read().raw)
            self.sniroute.wait_event("http", start=mark, status=200)
            sent, batch = 0, 4  # 4 answers: two batches stay under the 64 KiB queue cap
            while True:
                self.assertLess(sent, 5000, "sniroute never held an answer back")
                s.sendall(req * batch)
                sent += batch
                deadline = time.monotonic() + h.IO_TIMEOUT
                while len(self.sniroute.events("http", start=mark)) < sent + 1:
                    self.assertLess(time.monotonic(), deadline, f"answers stopped at {sent}")
                    time.sleep(0.002)
                time.sleep(0.01)
                in_kernel = send_queue_bytes(self.http_port, client_port) + receive_queue_bytes(s)
                if in_kernel < sent * answer_len:
                    break
            s.sendall(req)
            sent += 1
            fwd = f"GET /after-queue HTTP/1.1\r\nHost: {FWD}\r\nConnection: close\r\n\r\n".encode()
            s.sendall(fwd)
            time.sleep(0.2)
            got = 0
            try:
                for _ in range(sent):
                    self.assertEqual(rd.read().status, 200)
                    got += 1
                last = rd.read()
            except AssertionError as e:
                self.fail(f"{got} of {sent} local answers, then no backend response ({e}); backend saw "
                          f"{len(self.backend.received) - n0} connections; conn lines: {self.conn_lines_soon()}")
        self.assertEqual((last.status, last.body), (200, b"backend"))
        self.assertEqual(self.backend.wait_connections(n0 + 1)[n0], fwd)


if __name__ == "__main__":
    unittest.main(verbosity=2)

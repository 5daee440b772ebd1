#!/usr/bin/env python3
"""Writes the seed corpus for client_hello_fuzz into tests/fuzz/corpus/client_hello/.

The real captures from ../shared/fixtures/clienthellos are copied as they are; the synthetic
seeds below cover the framings the captures do not: several records, one byte per record, no
extensions, bytes after the hello, a hello ending inside its record, a two-record hello, plain
HTTP and SSLv2. The fuzz target also reads each input as a bare ClientHello body, so a few
bodies without any header are included. Run it again after changing the list; the files are
committed, so the fuzzer never depends on this script.
"""
import pathlib
import shutil
import struct

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "corpus" / "client_hello"
FIXTURES = HERE.parent.parent.parent / "shared" / "fixtures" / "clienthellos"


def u8(v): return struct.pack(">B", v)
def u16(v): return struct.pack(">H", v)
def u24(v): return struct.pack(">I", v)[1:]
def vec8(b): return u8(len(b)) + b
def vec16(b): return u16(len(b)) + b


def ext(ext_type, data):
    return u16(ext_type) + vec16(data)  # uint16 type, uint16 length, data


def sni(name):
    return ext(0, vec16(u8(0) + vec16(name)))  # list of one host_name (type 0) entry


def alpn(*protocols):
    return ext(16, vec16(b"".join(vec8(p) for p in protocols)))


def versions(*vs):
    return ext(43, vec8(b"".join(u16(v) for v in vs)))


def body(extensions=None, session_id=b"\x5e" * 32):
    b = u16(0x0303)                              # legacy_version
    b += b"\xa5" * 32                            # random
    b += vec8(session_id)                        # legacy_session_id
    b += vec16(u16(0x1301) + u16(0x1302))        # cipher_suites
    b += vec8(b"\x00")                           # compression_methods: null
    if extensions is not None:
        b += vec16(extensions)                   # extensions block
    return b


def handshake(b):
    return u8(1) + u24(len(b)) + b              # client_hello, uint24 length


def record(fragment, content_type=0x16):
    return u8(content_type) + u16(0x0301) + vec16(fragment)


def reframe(message, cuts):
    edges = [0, *cuts, len(message)]
    return b"".join(record(message[a:b]) for a, b in zip(edges, edges[1:]))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for f in sorted(FIXTURES.glob("*.bin")):
        shutil.copyfile(f, OUT / f.name)

    full = handshake(body(sni(b"a.example") + alpn(b"h2", b"http/1.1") + versions(0x0304, 0x0303)))
    seeds = {
        "synthetic-tls12-no-extensions.bin": record(handshake(body(None, session_id=b""))),
        "synthetic-three-records.bin": reframe(full, [2, 60]),
        "synthetic-one-byte-records.bin": b"".join(record(full[i:i + 1]) for i in range(len(full))),
        "synthetic-then-change-cipher-spec.bin": record(full) + record(b"\x01", 0x14),
        "synthetic-ends-inside-record.bin": record(full + b"\xee" * 24),
        "synthetic-two-record-large.bin": reframe(
            handshake(body(sni(b"pq.example") + ext(51, b"\x42" * 1250) + ext(21, b"\x00" * 700))), [1400]),
        "synthetic-alert-mid-hello.bin": record(full[:20]) + record(b"\x02\x28", 0x15),
        "not-tls-http.bin": b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
        "not-tls-sslv2.bin": bytes([0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10]) + b"\x00" * 37,
        "body-full.bin": full[4:],
        "body-openssl3-mail.bin": (FIXTURES / "openssl3-mail.bin").read_bytes()[9:],
    }
    for name, data in seeds.items():
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()

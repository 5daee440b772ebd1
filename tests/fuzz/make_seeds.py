#!/usr/bin/env python3
"""Writes the seed corpora: client_hello_fuzz's into tests/fuzz/corpus/client_hello/, and
proxy_protocol_fuzz's, http_head_fuzz's and config_fuzz's into corpus/proxy_protocol/,
corpus/http_head/ and corpus/config/.

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


V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(ver_cmd, fam, payload):
    return V2_SIG + u8(ver_cmd) + u8(fam) + vec16(payload)


def tlv(kind, value):
    return u8(kind) + vec16(value)


def proxy_seeds():
    v4 = bytes([192, 0, 2, 1, 198, 51, 100, 7]) + u16(51000) + u16(443)
    v6 = bytes.fromhex("20010db8000000000000000000000001") + bytes.fromhex("20010db8000000000000000000000002") + \
        u16(40000) + u16(443)
    return {
        "v1-tcp4.bin": b"PROXY TCP4 192.0.2.1 198.51.100.7 51000 443\r\nGET / HTTP/1.1\r\n",
        "v1-tcp6.bin": b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\n\x16\x03\x01",
        "v1-tcp6-mapped.bin": b"PROXY TCP6 ::ffff:192.0.2.1 ::1 1 65535\r\n",
        "v1-unknown.bin": b"PROXY UNKNOWN\r\n",
        "v1-unknown-with-addresses.bin": b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
        "v1-truncated.bin": b"PROXY TCP4 192.0.2.1 198.51.10",
        "v1-bare-lf.bin": b"PROXY TCP4 192.0.2.1 198.51.100.7 51000 443\n",
        "v2-proxy-v4.bin": proxy_v2(0x21, 0x11, v4) + b"\x16\x03\x01\x00\x05",
        "v2-proxy-v6.bin": proxy_v2(0x21, 0x21, v6),
        "v2-local.bin": proxy_v2(0x20, 0x00, b""),
        "v2-local-v4.bin": proxy_v2(0x20, 0x11, v4),
        "v2-proxy-v4-tlvs.bin": proxy_v2(0x21, 0x11, v4 + tlv(0x01, b"h2") + tlv(0x02, b"a.example") +
                                         tlv(0x04, b"") + tlv(0x20, b"\x01\x00\x00\x00\x00")),
        "v2-proxy-v6-tlvs.bin": proxy_v2(0x21, 0x21, v6 + tlv(0x05, b"\x42" * 16) + tlv(0x30, b"ns")),
        "v2-unix-stream.bin": proxy_v2(0x21, 0x31, b"\x00" * 216),
        "v2-truncated.bin": proxy_v2(0x21, 0x11, v4)[:20],
        "v2-signature-only.bin": V2_SIG,
    }


def http_seeds():
    return {
        "get-challenge.bin": b"GET /.well-known/acme-challenge/abcDEF_123-x HTTP/1.1\r\nHost: a.test\r\n\r\n",
        "get-challenge-bad-token.bin": b"GET /.well-known/acme-challenge/..%2f..%2fetc HTTP/1.1\r\nHost: b.test\r\n\r\n",
        "get-redirect.bin": b"GET /path?q=1 HTTP/1.1\r\nHost: A.Test:8080\r\nUser-Agent: x\r\n\r\n",
        "get-wildcard.bin": b"HEAD / HTTP/1.1\r\nHost: x.wild.test\r\n\r\n",
        "absolute-form.bin": b"GET http://a.test/.well-known/acme-challenge/tok?x HTTP/1.1\r\nHost: b.test\r\n\r\n",
        "http10-no-host.bin": b"GET / HTTP/1.0\r\n\r\n",
        "ipv6-host.bin": b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
        "pipelined.bin": b"GET /a HTTP/1.1\r\nHost: a.test\r\n\r\nGET /b HTTP/1.1\r\nHost: b.test\r\n\r\n",
        "leading-crlf.bin": b"\r\n\r\nGET / HTTP/1.1\r\nHost: local.test\r\n\r\n",
        "bare-cr-smuggle.bin": b"GET / HTTP/1.1\r\nHost: a.test\r\nX: y\rContent-Length: 5\r\n\r\nGET /s HTTP/1.1\r\n\r\n",
        "bare-lf.bin": b"GET / HTTP/1.1\nHost: a.test\n\n",
        "chunked.bin": b"POST /up HTTP/1.1\r\nHost: b.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "te-and-cl.bin": b"POST / HTTP/1.1\r\nHost: b.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "obs-fold.bin": b"GET / HTTP/1.1\r\nHost: a.test\r\nX: a\r\n b\r\n\r\n",
        "two-hosts.bin": b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
        "crlf-in-target.bin": b"GET /%0d%0aSet-Cookie:x HTTP/1.1\r\nHost: a.test\r\n\r\n",
        "truncated.bin": b"GET / HTTP/1.1\r\nHost: a.te",
    }


CONFIG_FULL = """\
[global]
client_hello_timeout = "3s"
connect_timeout = "1m30s"
idle_timeout = "10m"
drain_timeout = "500ms"
max_connections = 1000
max_client_hello = 4096
max_http_head = 8192
workers = 2
log_format = "json"
access_log = false

[acme]
directory = "https://127.0.0.1:14000/dir"
email = "admin@example.org"
storage = "/var/lib/sniroute"
key_type = "rsa2048"
account_thumbprint = "n-Ts9qvM5fg0_ugZ5tHtLxzL8LyT7sIlVgPuSfDoKCs"

[backends.web]
servers = ["127.0.0.1:10443", "[::1]:10443"]
proxy_protocol = "v2"

[backends.mail]
servers = "127.0.0.2:10993"

[[listeners]]
name = "https"
bind = ["0.0.0.0:443", "[::]:443"]
protocol = "tls"
accept_proxy_protocol = true
default_backend = "web"

  [[listeners.routes]]
  match = ["Mail.Example.ORG.", "*.mail.example.org"]
  backend = "mail"

[[listeners]]
name = "http"
bind = "127.0.0.1:80"
protocol = "http"

  [[listeners.routes]]
  match = ["example.org", "*.example.org"]
  backend = "web"
  acme = "local"
  redirect_https = true

[[listeners]]
name = "smtp"
bind = ["127.0.0.1:25"]
protocol = "tcp"
default_backend = "mail"

[[certificates]]
name = "mail"
domains = ["mail.example.org", "imap.example.org"]
cert_file = "/etc/ssl/mail.pem"
key_file = "/etc/ssl/mail.key"
deploy = ["doveadm reload", "postfix reload"]
settle = "30s"
deploy_timeout = "2m"
"""


def config_seeds():
    """Configs for config_fuzz: the two shipped ones, a full one using every key, and small ones
    each one mistake away from loading (the fuzzer learns the keys from them)."""
    conf = HERE.parent.parent / "conf"
    seeds = {f.name: f.read_bytes() for f in sorted(conf.glob("*.toml"))}
    seeds["full.toml"] = CONFIG_FULL.encode()
    small = '[backends.b]\nservers = ["127.0.0.1:1"]\n[[listeners]]\nname = "l"\nbind = "127.0.0.1:2"\n'
    seeds["tcp.toml"] = (small + 'protocol = "tcp"\ndefault_backend = "b"\n').encode()
    seeds["tls-no-route.toml"] = (small + 'protocol = "tls"\n').encode()
    seeds["escapes.toml"] = (small.replace('"l"', '"l\\u0001\\t\\"x"') + 'protocol = "tcp"\ndefault_backend = "b"\n').encode()
    seeds["overlap.toml"] = (small + 'protocol = "tcp"\ndefault_backend = "b"\n[[listeners]]\nname = "m"\n'
                             'bind = "0.0.0.0:2"\nprotocol = "tcp"\ndefault_backend = "b"\n').encode()
    seeds["syntax-error.toml"] = b'[global\nworkers = 1\n'
    seeds["empty.toml"] = b""
    return seeds


def write_all(out, seeds):
    out.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (out / name).write_bytes(data)


def main():
    write_all(HERE / "corpus" / "proxy_protocol", proxy_seeds())
    write_all(HERE / "corpus" / "http_head", http_seeds())
    write_all(HERE / "corpus" / "config", config_seeds())
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

#!/usr/bin/env python3
"""Writes the seed corpora: client_hello_fuzz's into tests/fuzz/corpus/client_hello/, and
proxy_protocol_fuzz's, http_head_fuzz's and config_fuzz's into corpus/proxy_protocol/,
corpus/http_head/ and corpus/config/, and the ACME readers' (acme_dates_fuzz, acme_response_fuzz,
acme_json_fuzz) into corpus/acme_*/.

The real captures from ../shared/fixtures/clienthellos are copied as they are; the synthetic
seeds below cover the framings the captures do not: several records, one byte per record, no
extensions, bytes after the hello, a hello ending inside its record, a two-record hello, plain
HTTP and SSLv2. The fuzz target also reads each input as a bare ClientHello body, so a few
bodies without any header are included. Run it again after changing the list; the files are
committed, so the fuzzer never depends on this script.
"""
import json
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
    seeds["admin.toml"] = ('[admin]\nbind = ["127.0.0.1:9", "[::1]:9"]\n' + small +
                           'protocol = "tcp"\ndefault_backend = "b"\n').encode()
    seeds["ip-policy.toml"] = (small + 'protocol = "tcp"\ndefault_backend = "b"\naccept_proxy_protocol = true\n'
                               'allow = ["10.0.0.0/8", "::ffff:192.0.2.0/120", "2001:db8::/32"]\n'
                               'deny = ["10.1.2.3", "10.9.0.0/16"]\nmax_connections_per_ip = 20\n'
                               'new_connections_per_ip = "300/m"\n').encode()
    seeds["syntax-error.toml"] = b'[global\nworkers = 1\n'
    seeds["empty.toml"] = b""
    return seeds


def acme_dates_seeds():
    # renewalInfo windows as Let's Encrypt and Pebble write them, RFC 3339's own examples, and
    # Retry-After values: delta-seconds and IMF-fixdates, valid and not.
    return {
        "le-window-start.txt": b"2026-03-01T17:03:42Z",
        "pebble-window-end.txt": b"2026-03-03T17:03:42.123456789Z",
        "rfc3339-fraction.txt": b"1985-04-12T23:20:50.52Z",
        "rfc3339-offset.txt": b"1996-12-19T16:39:57-08:00",
        "rfc3339-leap-second.txt": b"1990-12-31T23:59:60Z",
        "rfc3339-positive-offset.txt": b"1937-01-01T12:00:27.87+00:20",
        "rfc3339-lower-case.txt": b"2026-01-01t00:00:00z",
        "rfc3339-space.txt": b"2026-01-01 00:00:00+05:30",
        "rfc3339-leap-day.txt": b"2024-02-29T12:00:00Z",
        "rfc3339-not-leap.txt": b"2100-02-29T00:00:00Z",
        "rfc3339-year-0.txt": b"0000-01-01T00:00:00+23:59",
        "rfc3339-year-9999.txt": b"9999-12-31T23:59:60-23:59",
        "rfc3339-no-offset.txt": b"2026-01-01T00:00:00",
        "retry-after-delta.txt": b"120",
        "retry-after-zero.txt": b"0",
        "retry-after-ows.txt": b" \t3600 ",
        "retry-after-huge.txt": b"99999999999999999999999",
        "retry-after-negative.txt": b"-1",
        "retry-after-imf.txt": b"Sun, 06 Nov 1994 08:49:37 GMT",
        "retry-after-imf-future.txt": b"Fri, 01 Jan 2027 00:00:00 GMT",
        "retry-after-imf-feb30.txt": b"Sun, 30 Feb 2025 08:49:37 GMT",
        "retry-after-rfc850.txt": b"Sunday, 06-Nov-94 08:49:37 GMT",
        "retry-after-asctime.txt": b"Sun Nov  6 08:49:37 1994",
    }


def chunked(body, sizes):
    out, at = b"", 0
    for n in sizes:
        out += b"%x\r\n" % n + body[at:at + n] + b"\r\n"
        at += n
    return out + b"0\r\n\r\n"


def acme_response_seeds():
    # Answers of Pebble and Let's Encrypt to the ACME client: Content-Length, chunked and
    # close-delimited bodies, HEAD newNonce, interim answers and the statuses it refuses.
    directory = (b'{"keyChange":"https://localhost:14000/rollover-account-key","meta":{"externalAccountRequired":false,'
                 b'"termsOfService":"data:text/plain,Do%20what%20thou%20wilt"},"newAccount":"https://localhost:14000/'
                 b'sign-me-up","newNonce":"https://localhost:14000/nonce-plz","newOrder":"https://localhost:14000/order-'
                 b'plz","renewalInfo":"https://localhost:14000/draft-ietf-acme-ari-03/renewalInfo/","revokeCert":'
                 b'"https://localhost:14000/revoke-cert"}')
    order = (b'{"status":"pending","expires":"2026-12-11T20:00:00Z","identifiers":[{"type":"dns","value":"a.test"}],'
             b'"authorizations":["https://acme-v02.api.letsencrypt.org/acme/authz-v3/1234"],'
             b'"finalize":"https://acme-v02.api.letsencrypt.org/acme/finalize/1/2"}')
    problem = b'{"type":"urn:ietf:params:acme:error:badNonce","detail":"JWS has an invalid anti-replay nonce","status":400}'
    le_head = (b"HTTP/1.1 201 Created\r\nServer: nginx\r\nDate: Fri, 04 Dec 2026 20:00:00 GMT\r\n"
               b"Content-Type: application/json\r\nBoot-Id: 1\r\n"
               b"Link: <https://acme-v02.api.letsencrypt.org/directory>;rel=\"index\"\r\n"
               b"Location: https://acme-v02.api.letsencrypt.org/acme/order/1/2\r\n"
               b"Replay-Nonce: 4nBxkU8fFmFyQy5Lxd9GMqXLLGiMl0b2JZQb3N8h_oGbn0\r\n")
    limited = b'{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new orders recently"}'
    chain = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIIE\n-----END CERTIFICATE-----\n" * 2
    return {
        "pebble-directory.http": b"HTTP/1.1 200 OK\r\nCache-Control: public, max-age=0, no-cache\r\n"
                                 b"Content-Type: application/json; charset=utf-8\r\n"
                                 b"Content-Length: %d\r\n\r\n" % len(directory) + directory,
        "pebble-nonce-head.http": b"HTTP/1.1 200 OK\r\nCache-Control: public, max-age=0, no-cache\r\n"
                                  b"Link: <https://localhost:14000/dir>;rel=\"index\"\r\n"
                                  b"Replay-Nonce: _7sPB8lCnbTKQ3Xq0P9F0w\r\nDate: Fri, 04 Dec 2026 20:00:00 GMT\r\n\r\n",
        "le-order-content-length.http": le_head + b"Content-Length: %d\r\n\r\n" % len(order) + order,
        "le-order-chunked.http": le_head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(order, [100, 50, 99]),
        "le-order-chunk-ext-trailer.http": le_head + b"Transfer-Encoding: chunked\r\n\r\n"
                                           b"10;name=value\r\n" + order[:16] + b"\r\n0\r\nX-Trailer: 1\r\n\r\n",
        "pebble-cert-close-delimited.http": b"HTTP/1.1 200 OK\r\nContent-Type: application/pem-certificate-chain\r\n"
                                            b"Connection: close\r\n\r\n" + chain,
        "le-cert-http10.http": b"HTTP/1.0 200 OK\r\nContent-Type: application/pem-certificate-chain\r\n\r\n" + chain,
        "problem-bad-nonce.http": b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+json\r\n"
                                  b"Replay-Nonce: n2\r\nContent-Length: %d\r\n\r\n" % len(problem) + problem,
        "problem-rate-limited.http": b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3600\r\n"
                                     b"Content-Type: application/problem+json\r\nContent-Length: %d\r\n\r\n" % len(limited) + limited,
        "interim-then-final.http": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
                                   b"Link: </a>; rel=preload\r\n\r\nHTTP/1.1 204 No Content\r\nX: 1\r\n\r\n",
        "interim-with-length.http": b"HTTP/1.1 102 Processing\r\nContent-Length: 5\r\n\r\n"
                                    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes",
        "switching-protocols.http": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\nPRI * HTTP/2.0",
        "status-600.http": b"HTTP/1.1 600 Beyond\r\nContent-Length: 2\r\n\r\nok",
        "not-modified.http": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        "two-lengths.http": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
        "te-and-length.http": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        "gzip-chunked.http": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        "truncated-body.http": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        "bare-lf.http": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
        "pipelined.http": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 500 No\r\n\r\n",
        # What the fuzz target found: llhttp took these framings, the reader now refuses or fixes them.
        "found-empty-name.http": b"HTTP/1.1 200 OK\r\nA: b\r\n: 11\r\nContent-Length: 0\r\n\r\n",
        "found-space-before-colon.http": b"HTTP/1.1 200 OK\r\nReplay-Nonce : n\r\nContent-Length: 2\r\n\r\nok",
        "found-204-with-length.http": b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    }


def acme_json_seeds():
    # Documents as Pebble and Let's Encrypt send them (RFC 8555 7.1, RFC 9773 4.2), then the
    # shapes a broken CA could send: wrong types, unknown statuses, plain http, deep nesting.
    le = "https://acme-v02.api.letsencrypt.org"
    pebble = "https://localhost:14000"
    docs = {
        "le-directory.json": {
            "keyChange": le + "/acme/key-change", "newAccount": le + "/acme/new-acct",
            "newNonce": le + "/acme/new-nonce", "newOrder": le + "/acme/new-order",
            "renewalInfo": le + "/draft-ietf-acme-ari-03/renewalInfo", "revokeCert": le + "/acme/revoke-cert",
            "meta": {"caaIdentities": ["letsencrypt.org"], "profiles": {"classic": "default"},
                     "termsOfService": "https://letsencrypt.org/documents/LE-SA-v1.5-February-24-2025.pdf",
                     "website": "https://letsencrypt.org"}},
        "pebble-directory.json": {
            "keyChange": pebble + "/rollover-account-key", "meta": {"externalAccountRequired": False,
                                                                     "termsOfService": "data:text/plain,Do%20what"},
            "newAccount": pebble + "/sign-me-up", "newNonce": pebble + "/nonce-plz", "newOrder": pebble + "/order-plz",
            "revokeCert": pebble + "/revoke-cert"},
        "pebble-account.json": {"status": "valid", "contact": ["mailto:ops@example.com"],
                                "orders": pebble + "/list-orderz/1"},
        "account-deactivated.json": {"status": "deactivated"},
        "le-order-pending.json": {
            "status": "pending", "expires": "2026-12-11T20:00:00Z",
            "identifiers": [{"type": "dns", "value": "a.example"}, {"type": "dns", "value": "b.example"}],
            "authorizations": [le + "/acme/authz-v3/1", le + "/acme/authz-v3/2"],
            "finalize": le + "/acme/finalize/1/2"},
        "pebble-order-ready.json": {"status": "ready", "expires": "2026-12-05T20:00:00Z",
                                    "identifiers": [{"type": "dns", "value": "a.test"}],
                                    "finalize": pebble + "/finalize-order/x", "authorizations": [pebble + "/authZ/y"]},
        "order-valid.json": {"status": "valid", "finalize": pebble + "/finalize-order/x",
                             "certificate": pebble + "/certZ/z"},
        "order-invalid.json": {"status": "invalid", "finalize": pebble + "/f",
                               "error": {"type": "urn:ietf:params:acme:error:unauthorized", "detail": "no"}},
        "le-authz-pending.json": {
            "identifier": {"type": "dns", "value": "a.example"}, "status": "pending",
            "expires": "2026-12-11T20:00:00Z",
            "challenges": [
                {"type": "http-01", "status": "pending", "url": le + "/acme/chall-v3/1/a",
                 "token": "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"},
                {"type": "dns-01", "status": "pending", "url": le + "/acme/chall-v3/1/b", "token": "b"},
                {"type": "tls-alpn-01", "status": "pending", "url": le + "/acme/chall-v3/1/c", "token": "c"}]},
        "authz-invalid.json": {
            "identifier": {"type": "dns", "value": "a.test"}, "status": "invalid",
            "challenges": [{"type": "http-01", "status": "invalid", "url": pebble + "/chalZ/1", "token": "t",
                            "validated": "2026-12-04T20:00:00Z",
                            "error": {"type": "urn:ietf:params:acme:error:connection",
                                      "detail": "Connection refused", "status": 400}}]},
        "authz-valid-wildcard.json": {"identifier": {"type": "dns", "value": "example.org"}, "wildcard": True,
                                      "status": "valid", "challenges": []},
        "problem-bad-nonce.json": {"type": "urn:ietf:params:acme:error:badNonce",
                                   "detail": "JWS has an invalid anti-replay nonce", "status": 400},
        "problem-subproblems.json": {
            "type": "urn:ietf:params:acme:error:malformed", "detail": "Some identifiers were rejected",
            "subproblems": [{"type": "urn:ietf:params:acme:error:malformed", "detail": "Invalid underscore",
                             "identifier": {"type": "dns", "value": "_example.org"}}]},
        "problem-rate-limited.json": {"type": "urn:ietf:params:acme:error:rateLimited",
                                      "detail": "too many certificates", "status": 429},
        "le-renewal-info.json": {"suggestedWindow": {"start": "2026-03-01T17:03:42Z", "end": "2026-03-03T17:03:42Z"},
                                 "explanationURL": "https://community.letsencrypt.org/t/ari"},
        "renewal-info-offsets.json": {"suggestedWindow": {"start": "2026-02-01T00:00:00Z",
                                                          "end": "2026-02-02T12:00:00.5+12:00"}},
        "renewal-info-reversed.json": {"suggestedWindow": {"start": "2026-03-03T00:00:00Z",
                                                           "end": "2026-03-01T00:00:00Z"}},
        "wrong-types.json": {"status": 5, "authorizations": "x", "finalize": ["https://a/"], "challenges": {},
                             "identifier": [], "suggestedWindow": {"start": 1, "end": None},
                             "type": 7, "detail": {"a": 1}, "newNonce": True},
        "wrong-entries.json": {"status": "pending", "authorizations": [1, None, {"url": "https://a/"}],
                               "challenges": ["http-01", {"type": "http-01", "url": "http://plain/"},
                                              {"type": "http-01", "url": "https://a/\r\nX: y"}]},
        "unknown-status.json": {"status": "complete", "finalize": "https://a/f"},
    }
    out = {name: json.dumps(doc).encode() for name, doc in docs.items()}
    out["deep.json"] = b'{"a":' + b"[" * 40 + b"]" * 40 + b"}"
    out["big-array.json"] = json.dumps({"status": "pending", "authorizations": ["https://a/%d" % i
                                                                                 for i in range(101)]}).encode()
    out["not-object.json"] = b'["status", "valid"]'
    out["truncated.json"] = b'{"status": "valid", "certificate": "https://a/c'
    return out


def write_all(out, seeds):
    out.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (out / name).write_bytes(data)


def main():
    write_all(HERE / "corpus" / "proxy_protocol", proxy_seeds())
    write_all(HERE / "corpus" / "http_head", http_seeds())
    write_all(HERE / "corpus" / "config", config_seeds())
    write_all(HERE / "corpus" / "acme_dates", acme_dates_seeds())
    write_all(HERE / "corpus" / "acme_response", acme_response_seeds())
    write_all(HERE / "corpus" / "acme_json", acme_json_seeds())
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

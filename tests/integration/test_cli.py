"""The command line and the logs: version, validate (ok, or FILE:LINE:COL lines and exit 1),
run's start-up failures and pidfile, and log_format = "json" producing parseable JSON lines."""

import json
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
from harness import ProxyTestCase, addr, free_port, render_config, run_cli

GOOD = """\
[global]
idle_timeout = "5m"

[[listeners]]
name = "front"
bind = ["127.0.0.1:8443", "[::1]:8443"]
protocol = "tls"
default_backend = "web"

[[listeners.routes]]
match = ["www.example.com", "*.example.org"]
backend = "web"

[backends.web]
servers = ["127.0.0.1:9443", "127.0.0.1:9444"]
proxy_protocol = "v2"
"""

# Every error's position, counted by hand: key or value start, 1-based.
BAD = """\
[global]
idle_timeout = "forever"
bogus_key = 1

[[listeners]]
name = "a"
bind = ["127.0.0.1:1"]
protocol = "tls"
default_backend = "missing"
"""
BAD_POSITIONS = {(2, 16), (3, 1), (9, 19)}


class CliTest(ProxyTestCase):
    def write(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_version(self):
        for arg in ("version", "--version"):
            p = run_cli(arg)
            self.assertEqual(p.returncode, 0)
            self.assertRegex(p.stdout.decode(), r"^sniroute \d+\.\d+\.\d+\n$")

    def test_help_and_unknown_command(self):
        p = run_cli("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"validate", p.stdout)
        p = run_cli("frobnicate")
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"unknown command", p.stderr)
        self.assertEqual(run_cli().returncode, 2)
        self.assertEqual(run_cli("validate", "--help").returncode, 0)
        self.assertEqual(run_cli("run", "--help").returncode, 0)

    def test_validate_good_config(self):
        path = self.write("good.toml", GOOD)
        p = run_cli("validate", "--config", path)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, b"ok\n", b""))
        p = run_cli("validate", f"--config={path}")
        self.assertEqual((p.returncode, p.stdout), (0, b"ok\n"))

    def test_certs_usage_errors(self):
        # A tcp listener only: nothing to probe, so nothing is contacted.
        path = self.write("tcp.toml", '[[listeners]]\nname = "smtp"\nbind = ["127.0.0.1:1"]\n'
                          'protocol = "tcp"\ndefault_backend = "b"\n[backends.b]\nservers = ["127.0.0.1:1"]\n')
        # Without [[certificates]], list says so and check has no TLS route to probe.
        p = run_cli("certs", "list", "--config", path)
        self.assertEqual((p.returncode, p.stdout), (0, b"no [[certificates]] configured\n"))
        self.assertEqual(run_cli("certs", "check", "--days", "30", "--config", path).returncode, 0)
        # A bad --days must not become 0 (a check that passes what it should flag).
        for bad in (["--days", "x"], ["--days=-1"], ["--days", "12abc"], ["--frobnicate"]):
            with self.subTest(args=bad):
                p = run_cli("certs", "check", *bad, "--config", path)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(b"sniroute certs check:", p.stderr)
        self.assertEqual(run_cli("certs", "renew", "--config", path).returncode, 2)
        self.assertEqual(run_cli("certs", "frob", "--config", path).returncode, 2)
        self.assertEqual(run_cli("certs", "list").returncode, 2)  # --config is required

    def test_validate_bad_config_reports_every_error_with_position(self):
        path = self.write("bad.toml", BAD)
        p = run_cli("validate", "--config", path)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, b"")
        lines = p.stderr.decode().splitlines()
        positions = set()
        for line in lines:
            m = re.match(re.escape(path) + r":(\d+):(\d+): \S", line)
            self.assertTrue(m, f"not a FILE:LINE:COL: message line: {line!r}")
            positions.add((int(m.group(1)), int(m.group(2))))
        self.assertEqual(positions, BAD_POSITIONS, "\n".join(lines))
        text = "\n".join(lines)
        self.assertIn("bogus_key", text)
        self.assertIn("forever", text)
        self.assertIn("missing", text)

    def test_validate_syntax_error(self):
        path = self.write("syntax.toml", "[global\nworkers = 1\n")
        p = run_cli("validate", "--config", path)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr.decode(), "^" + re.escape(path) + r":1:\d+: .+\n$")

    def test_validate_missing_file_and_arguments(self):
        path = os.path.join(self.workdir, "nope.toml")
        p = run_cli("validate", "--config", path)
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.decode().startswith(path + ":"), p.stderr)
        self.assertEqual(run_cli("validate").returncode, 2)
        self.assertEqual(run_cli("validate", "--config", path, "--bogus").returncode, 2)

    def test_validate_and_run_refuse_overlapping_binds(self):
        # 0.0.0.0:P and 127.0.0.1:P cannot both be bound; validate said ok and run then failed
        # at bind time. Now both report the later entry at its position, and run binds nothing.
        port = free_port()
        path = self.write("overlap.toml", render_config({}, [
            {"name": "any", "bind": [addr("0.0.0.0", port)], "protocol": "tcp", "default_backend": "b"},
            {"name": "lo", "bind": [addr("127.0.0.1", port)], "protocol": "tcp", "default_backend": "b"},
        ], {"b": {"servers": ["127.0.0.1:9"]}}))
        with open(path) as f:
            lines = f.read().splitlines()
        row = next(i for i, l in enumerate(lines, 1) if f'"127.0.0.1:{port}"' in l)
        col = lines[row - 1].index(f'"127.0.0.1:{port}"') + 1
        want = (f'{path}:{row}:{col}: bind address 127.0.0.1:{port} overlaps 0.0.0.0:{port} of listener "any" '
                "(a wildcard address holds its port on every address of its family)\n")
        p = run_cli("validate", "--config", path)
        self.assertEqual((p.returncode, p.stdout, p.stderr.decode()), (1, b"", want))
        p = run_cli("run", "--config", path, timeout=5)
        self.assertEqual(p.returncode, 1)
        self.assertIn(want, p.stderr.decode())
        self.assertNotIn(b"bind_failed", p.stderr)
        self.assertNotIn(b" ready ", p.stderr)

    def test_validate_prints_warnings_and_run_logs_them(self):
        # A tls listener with no route and no default backend refuses every connection: a
        # warning, not an error. validate still says ok; run logs it as config_warning and starts.
        port = free_port()
        text = ('[[listeners]]\nname = "refuses"\nbind = ["127.0.0.1:%d"]\nprotocol = "tls"\n' % port)
        path = self.write("warn.toml", text)
        message = 'tls listener "refuses" has no routes and no default_backend: it refuses every connection'
        p = run_cli("validate", "--config", path)
        self.assertEqual((p.returncode, p.stdout, p.stderr.decode()), (0, b"ok\n", f"{path}:1:1: warning: {message}\n"))
        proxy = self.start_proxy(text)
        warning = proxy.wait_event("config_warning")
        self.assertEqual(warning["level"], "warn")
        self.assertEqual(warning["at"], f"{proxy.config_path}:1:1: {message}")
        self.assert_clean_stop(proxy)

    def test_run_with_bad_config_exits_1(self):
        path = self.write("bad.toml", BAD)
        p = run_cli("run", "--config", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn(path + ":9:19:", p.stderr.decode())
        self.assertNotIn(b" ready ", p.stderr)

    def test_run_with_port_in_use_exits_1(self):
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        path = self.write("busy.toml", render_config({}, [
            {"name": "l", "bind": [addr("127.0.0.1", port)], "protocol": "tcp", "default_backend": "b"},
        ], {"b": {"servers": ["127.0.0.1:9"]}}))
        p = run_cli("run", "--config", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"bind_failed", p.stderr)
        self.assertNotIn(b" ready ", p.stderr)

    def test_run_with_port_held_by_another_sniroute_exits_1(self):
        # A second instance with the same config must not start and silently share the port
        # (SO_REUSEPORT would let the kernel split connections between the two).
        port = free_port()
        cfg = render_config({}, [
            {"name": "l", "bind": [addr("127.0.0.1", port)], "protocol": "tcp", "default_backend": "b"},
        ], {"b": {"servers": ["127.0.0.1:9"]}})
        self.start_proxy(cfg, name="first")
        path = self.write("second.toml", cfg)
        try:
            p = run_cli("run", "--config", path, timeout=5)
        except harness.subprocess.TimeoutExpired:
            self.fail(f"a second sniroute bound 127.0.0.1:{port} while the first one was listening on it")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"bind_failed", p.stderr)

    def test_pidfile(self):
        pidfile = os.path.join(self.workdir, "sniroute.pid")
        cfg = render_config({}, [
            {"name": "l", "bind": [addr("127.0.0.1", free_port())], "protocol": "tcp", "default_backend": "b"},
        ], {"b": {"servers": ["127.0.0.1:9"]}})
        proxy = self.start_proxy(cfg, extra_args=["--pidfile", pidfile])
        with open(pidfile) as f:
            self.assertEqual(f.read().strip(), str(proxy.pid))
        self.assert_clean_stop(proxy)
        self.assertFalse(os.path.exists(pidfile), "pidfile left behind after a clean stop")


class JsonLogTest(ProxyTestCase):
    def test_json_log_lines_parse(self):
        backend = self.tcp_server(harness.recorder(b"reply"))
        port = free_port()

        def cfg(default="py"):
            return render_config({"log_format": "json", "client_hello_timeout": "10s"}, [
                {"name": "front", "bind": [addr("127.0.0.1", port)], "protocol": "tls", "default_backend": default,
                 "routes": [{"match": "www.example.com", "backend": "py"}]},
            ], {"py": {"servers": [backend.address]}})

        # Quotes and a backslash in the config path must come out escaped (reloading config=...).
        proxy = self.start_proxy(cfg(), name='we"ird\\name')
        s = self.connect(port)
        s.sendall(harness.fixture("curl-www.bin"))
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(harness.read_until_eof(s), b"reply")
        s.close()
        # A refused hello with an error text, and a rejected reload with diagnostics in quotes.
        s = self.connect(port)
        s.sendall(b"not tls at all\r\n")
        harness.expect_closed(s)
        self.assertEqual(proxy.reload(cfg(default='no"such'))["event"], "reload_rejected")
        proxy.wait_count("conn", 2)
        self.assert_clean_stop(proxy)

        lines = [l for l in proxy.log_text().splitlines() if l]
        self.assertTrue(lines)
        parsed = []
        for line in lines:
            try:
                obj = json.loads(line)
            except ValueError as e:
                self.fail(f"not JSON ({e}): {line!r}")
            self.assertIsInstance(obj, dict, line)
            for key in ("ts", "level", "event"):
                self.assertIsInstance(obj.get(key), str, line)
            self.assertIn(obj["level"], ("info", "warn", "error"))
            self.assertRegex(obj["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            parsed.append(obj)
        events = [o["event"] for o in parsed]
        for ev in ("ready", "conn", "reloading", "config_error", "reload_rejected", "stopped"):
            self.assertIn(ev, events)
        ready = next(o for o in parsed if o["event"] == "ready")
        self.assertEqual(ready["workers"], 1)
        conns = [o for o in parsed if o["event"] == "conn"]
        ok = next(o for o in conns if o["outcome"] == "ok")
        self.assertEqual((ok["sni"], ok["backend"], ok["listener"]), ("www.example.com", "py", "front"))
        self.assertEqual(ok["server"], backend.address)
        for key in ("up", "down", "duration_ms"):
            self.assertIsInstance(ok[key], int, key)
        self.assertEqual(ok["down"], 5)
        self.assertTrue(any(o["outcome"] == "bad_hello" for o in conns))
        reloading = next(o for o in parsed if o["event"] == "reloading")
        self.assertEqual(reloading["config"], proxy.config_path)
        err = next(o for o in parsed if o["event"] == "config_error")
        self.assertIn('unknown backend "no"such"', err["at"])
        self.assertTrue(err["at"].startswith(proxy.config_path + ":"), err)


if __name__ == "__main__":
    harness.main()

"""Integration harness: the real `trunkline serve` on free ports with a fresh data dir.

Synchronisation is on events, never on sleeps: start-up waits for the daemon's own
"trunkline is running" line on its standard output (read with a deadline), and the
first-start tokens are parsed from the lines before it.
"""
import os
import re
import select
import signal
import socket
import subprocess
import threading

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("TRUNKLINE_BIN", os.path.join(ROOT, "build", "trunkline"))
# The test build (make's build/trunkline-test): the daemon with the test-only answering
# policies compiled in. Only a daemon started with one of these settings runs it; every
# other test runs the shipped binary, which has no such setting (issue 11 item 18).
TEST_BIN = os.environ.get("TRUNKLINE_TEST_BIN", BIN + "-test")
TEST_ONLY_SETTINGS = ("TRUNKLINE_SIP_TEST_POLICY", "TRUNKLINE_SIP_TEST_AUTH")
# a deadline, not a measure: an ASan build on a loaded 2-core machine starts slowly
START_DEADLINE = float(os.environ.get("TRUNKLINE_TEST_START_DEADLINE", "60"))


_handed = set()


def free_port(kind=None):
    """A port free for TCP and for UDP at once (SIP serves both on one port, RFC 3261
    §18), on any address: the daemon binds 0.0.0.0. Never the same port twice in one test
    run: the kernel may hand a just-closed port out again, and a daemon given the same
    port for two listeners cannot start."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("0.0.0.0", 0))
            port = t.getsockname()[1]
            if port in _handed:
                continue
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("0.0.0.0", port))
            except OSError:
                continue
            _handed.add(port)
            return port
    raise RuntimeError("no free port")


class Daemon:
    _pg_schemas = 0

    def __init__(self, tmp_path, extra_env=None, binary=None):
        self.binary = binary
        self.dir = str(tmp_path)
        self.data_dir = os.path.join(self.dir, "var")
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.out_path = os.path.join(self.dir, "daemon.out")
        self.extra_env = dict(extra_env or {})
        # TRUNKLINE_IT_STORE_PG (a conninfo, e.g. inside tests/pg/with-postgres.sh): every
        # daemon keeps its store in a PostgreSQL schema of its own instead of SQLite
        pg = os.environ.get("TRUNKLINE_IT_STORE_PG")
        if pg and "TRUNKLINE_STORE" not in self.extra_env:
            Daemon._pg_schemas += 1
            schema = "it_%d_%d" % (os.getpid(), Daemon._pg_schemas)
            psql = sorted(__import__("glob").glob("/usr/lib/postgresql/*/bin/psql"))[-1]
            subprocess.run([psql, "-qAt", "-v", "ON_ERROR_STOP=1", "-d", pg, "-c",
                            "CREATE SCHEMA %s" % schema], check=True, capture_output=True)
            self.extra_env["TRUNKLINE_STORE"] = "%s options='-csearch_path=%s'" % (pg, schema)
        self.proc = None
        self.operator_token = None
        self.admin_token = None
        self.workspace_id = None
        self.port = None
        self.session = requests.Session()

    # -- life cycle -------------------------------------------------------------------
    def env(self):
        env = dict(os.environ)
        env.update({
            "TRUNKLINE_DATA_DIR": self.data_dir,
            "TRUNKLINE_API_LISTEN": "127.0.0.1:%d" % self.port,
            "TRUNKLINE_LOG_FILE": self.log_path,
            "TRUNKLINE_SIP_TCP_PORT": str(free_port()),
            "TRUNKLINE_SIP_TLS_PORT": str(free_port()),
            "TRUNKLINE_PUBLIC_HOST": "gw.test",
            # the UDP listener is off by default (issue 11); the SIP tests exercise it
            "TRUNKLINE_SIP_UDP": "on",
        })
        env.update(self.extra_env)
        return env

    def start(self):
        self.port = free_port()
        binary = self.binary or (
            TEST_BIN if any(k in self.extra_env for k in TEST_ONLY_SETTINGS) else BIN)
        self.proc = subprocess.Popen([binary, "serve"], env=self.env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        out = open(self.out_path, "ab")
        lines = []
        buf = b""
        fd = self.proc.stdout.fileno()
        import time
        deadline = time.monotonic() + START_DEADLINE
        ready = False
        while not ready:
            left = deadline - time.monotonic()
            if left <= 0:
                self.proc.kill()
                raise RuntimeError("daemon not ready in %ss: %r" % (START_DEADLINE, lines))
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                self.proc.wait(5)
                raise RuntimeError("daemon exited %s before ready: %s\n%s" % (
                    self.proc.returncode, b"".join(lines).decode(errors="replace"),
                    self.log_text()))
            out.write(chunk)
            out.flush()
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                lines.append(line + b"\n")
                if line.startswith(b"trunkline is running"):
                    ready = True
        text = b"".join(lines).decode()
        m = re.search(r"operator token:\s+(\S+)", text)
        if m:
            self.operator_token = m.group(1)
        m = re.search(r"workspace admin token:\s+(\S+)", text)
        if m:
            self.admin_token = m.group(1)
        m = re.search(r"created workspace \"default\" \((ws_[0-9a-z]+)", text)
        if m:
            self.workspace_id = m.group(1)

        def drain():
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                out.write(chunk)
                out.flush()
        threading.Thread(target=drain, daemon=True).start()
        return self

    def stop(self, timeout=20):
        """SIGTERM and wait; returns the exit code (0 is a clean shutdown)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)
        return self.proc.returncode if self.proc else None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def restart(self):
        self.stop()
        return self.start()

    # -- helpers ----------------------------------------------------------------------
    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def api(self, method, path, token=None, json=None, data=None, headers=None, params=None):
        h = {}
        tok = self.admin_token if token is None else token
        if tok:
            h["Authorization"] = "Bearer " + tok
        if headers:
            h.update(headers)
        return self.session.request(method, self.url + path, json=json, data=data, headers=h,
                                    params=params, timeout=30)

    def wait_log(self, cond, timeout=15.0):
        """The log text once cond holds: a substring, a compiled regex, or a predicate on
        the text. The daemon writes its log from a thread of its own (a full disk or pipe
        must never stall its loop), so a line lands a moment after the event it tells of:
        tests that look for a line wait for it, with a deadline."""
        import time
        if isinstance(cond, str):
            text = cond
            cond = lambda t: text in t  # noqa: E731
        elif hasattr(cond, "search"):
            rx = cond
            cond = lambda t: rx.search(t) is not None  # noqa: E731
        deadline = time.monotonic() + timeout
        while True:
            t = self.log_text()
            if cond(t):
                return t
            if time.monotonic() > deadline:
                raise AssertionError("log line not seen in %ss; log ends:\n%s" % (
                    timeout, t[-3000:]))
            time.sleep(0.02)

    def log_text(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path).start()
    yield d
    code = d.stop()
    # a daemon that crashed during the test (or under ASan at exit) fails the test
    assert code in (0, None, -9), "daemon exited with %s\n%s" % (code, d.log_text()[-4000:])


@pytest.fixture
def make_daemon(tmp_path):
    """Factory for tests that need special settings: make_daemon(env={...})."""
    made = []

    def make(env=None, sub="d", binary=None):
        p = tmp_path / ("%s%d" % (sub, len(made)))
        p.mkdir()
        d = Daemon(p, env, binary).start()
        made.append(d)
        return d
    yield make
    for d in made:
        d.stop()

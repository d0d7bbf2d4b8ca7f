"""The WebSocket client of agents (src/agent/ws.c), driven through `trunkline probe ws`
against real servers: Debian's python3-websockets (10.4) for well-behaved ones, plain
Python sockets for the misbehaving ones (a 401, a wrong Accept, silence, a server that
never answers pings or stops reading), and dnsserver.py for names.

Every test asserts on the exit code and on the reason the probe prints. Synchronisation is
on events and on the probe's exit, never on sleeps; no test measures time.
"""
import asyncio
import base64
import hashlib
import os
import socket
import subprocess
import threading

import pytest
import websockets

import dnsserver
from conftest import BIN

LOOP = "127.0.0.1/32"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def probe(*args, timeout=60):
    p = subprocess.run([BIN, "probe", "ws", *args], capture_output=True, text=True,
                       timeout=timeout)
    # under make SANITIZE=1 a finding can hide behind an expected non-zero exit code
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p.returncode, p.stdout, p.stderr


def closed_line(out):
    lines = [l for l in out.splitlines() if l.startswith("closed ")]
    assert len(lines) == 1, out
    return lines[0]


# ---- servers ---------------------------------------------------------------------------

class WsServer:
    """A python3-websockets server on its own thread and event loop. handler(ws, seen) is
    a coroutine; `seen` collects what the test wants to look at afterwards."""

    def __init__(self, handler, ssl_ctx=None):
        self.seen = {}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.done = threading.Event()
        self.handler = handler
        self.ssl_ctx = ssl_ctx
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def handle(ws, path=None):
            self.seen["path"] = ws.path
            self.seen["headers"] = ws.request_headers  # case-insensitive
            try:
                await self.handler(ws, self.seen)
            finally:
                self.done.set()

        async def main():
            self.stop_fut = self.loop.create_future()
            async with websockets.serve(handle, "127.0.0.1", 0, ssl=self.ssl_ctx,
                                        ping_interval=None, max_size=4 << 20,
                                        compression=None) as srv:
                self.port = srv.sockets[0].getsockname()[1]
                self.ready.set()
                await self.stop_fut

        self.loop.run_until_complete(main())

    def stop(self):
        self.loop.call_soon_threadsafe(lambda: self.stop_fut.done() or
                                       self.stop_fut.set_result(None))
        self.thread.join(10)


async def echo(ws, seen):
    async for m in ws:
        await ws.send(m)


def handshake(conn):
    """Reads an upgrade request on a raw socket; returns (request text, accept value)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None, None
        data += chunk
    req = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    key = [l.split(":", 1)[1].strip() for l in req.split("\r\n")
           if l.lower().startswith("sec-websocket-key:")][0]
    acc = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    return req, acc


def upgraded(acc):
    return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % acc).encode()


class RawServer:
    """A plain socket server on a thread: behave(conn, server) runs for each connection."""

    def __init__(self, behave):
        self.behave = behave
        self.stop_ev = threading.Event()
        self.accepted = 0
        self.requests = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.threads = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stop_ev.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            self.accepted += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, conn):
        try:
            self.behave(conn, self)
        except OSError:
            pass
        finally:
            conn.close()

    def drain(self, conn):
        """Reads and drops until the peer closes or the test ends."""
        conn.settimeout(0.2)
        while not self.stop_ev.is_set():
            try:
                if not conn.recv(65536):
                    return
            except socket.timeout:
                continue

    def stop(self):
        self.stop_ev.set()
        self.thread.join(5)
        for t in self.threads:
            t.join(5)
        self.sock.close()


def make_ca(d, names, self_signed=False):
    """A test CA and a certificate for `names` (SANs) signed by it, or one self-signed
    certificate; returns (server ssl context, CA file)."""
    import ssl

    def run(*a):
        subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)
    cn = names[0].split(":", 1)[1]
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=%s\n" % ",".join(names))
    if self_signed:
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "srv.key", "-out", "srv.pem", "-days", "2", "-subj", "/CN=%s" % cn,
            "-addext", "subjectAltName=%s" % ",".join(names))
        ca = os.path.join(d, "srv.pem")
    else:
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj",
            "/CN=trunkline test CA")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            "srv.key", "-out", "srv.csr", "-subj", "/CN=%s" % cn)
        run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
        ca = os.path.join(d, "ca.pem")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "srv.pem"), os.path.join(d, "srv.key"))
    return ctx, ca


# ---- a clean session ---------------------------------------------------------------------

def test_echo_plain():
    srv = WsServer(echo)
    try:
        rc, out, err = probe("ws://127.0.0.1:%d/media?call=1" % srv.port,
                             "--allow-network", LOOP, "--header", "Authorization: Bearer s3cr3t",
                             "--header", "X-Trunk: t1", "--send", "hello", "--send",
                             '{"event":"connected"}', "--expect", "2")
    finally:
        srv.stop()
    assert rc == 0, out + err
    for step in ("resolved 127.0.0.1: 127.0.0.1", "connected 127.0.0.1:%d" % srv.port,
                 "upgraded 101", "received text 5 bytes: hello",
                 'received text 21 bytes: {"event":"connected"}'):
        assert step in out, out
    assert "tls ok" not in out
    assert closed_line(out).startswith("closed code=1000 fail=ok"), out
    # the request as the agent saw it; header values reach the agent, never our output
    assert srv.seen["path"] == "/media?call=1"
    assert srv.seen["headers"]["Authorization"] == "Bearer s3cr3t"
    assert srv.seen["headers"]["X-Trunk"] == "t1"
    assert srv.seen["headers"]["Host"] == "127.0.0.1:%d" % srv.port
    assert "User-Agent" not in srv.seen["headers"]
    assert "s3cr3t" not in out + err


def test_frames_with_the_101():
    """Frames the server sends in the same segment as its 101 are not lost."""
    def behave(conn, s):
        _, acc = handshake(conn)
        conn.sendall(upgraded(acc) + b"\x81\x05first" + b"\x81\x06second")
        conn.recv(64)  # our close (RFC 6455 §5.5.1), answered
        conn.sendall(b"\x88\x02\x03\xe8")
        s.drain(conn)
    srv = RawServer(behave)
    try:
        rc, out, err = probe("ws://127.0.0.1:%d/" % srv.port, "--allow-network", LOOP,
                             "--expect", "2")
    finally:
        srv.stop()
    assert rc == 0, out + err
    assert "received text 5 bytes: first" in out and "received text 6 bytes: second" in out
    assert out.index("upgraded 101") < out.index("received text 5 bytes: first")


def test_agent_closes_with_error_code():
    async def handler(ws, seen):
        await ws.close(1011, "llm down")
    srv = WsServer(handler)
    try:
        rc, out, err = probe("ws://127.0.0.1:%d/" % srv.port, "--allow-network", LOOP,
                             "--seconds", "30")
    finally:
        srv.stop()
    assert rc == 1, out + err
    assert "closed code=1011 fail=ok" in out
    assert "the agent closed the connection (1011 internal error: llm down)" in out


# ---- TLS ---------------------------------------------------------------------------------

def test_wss_with_test_ca(tmp_path):
    ctx, ca = make_ca(str(tmp_path), ["DNS:localhost"])
    srv = WsServer(echo, ctx)
    try:
        rc, out, err = probe("wss://localhost:%d/s" % srv.port, "--ca-file", ca,
                             "--allow-network", LOOP, "--send", "over tls", "--expect", "1")
    finally:
        srv.stop()
    assert rc == 0, out + err
    assert "tls ok: certificate verified for localhost" in out
    assert "upgraded 101" in out and "received text 8 bytes: over tls" in out
    assert closed_line(out).startswith("closed code=1000 fail=ok")
    assert srv.seen["headers"]["Host"] == "localhost:%d" % srv.port


def test_wss_self_signed_not_trusted(tmp_path):
    ctx, _ = make_ca(str(tmp_path), ["DNS:localhost"], self_signed=True)
    srv = WsServer(echo, ctx)
    try:
        rc, out, err = probe("wss://localhost:%d/" % srv.port, "--allow-network", LOOP)
    finally:
        srv.stop()
    assert rc == 1, out + err
    assert "fail=tls" in closed_line(out)
    assert "agent certificate for localhost is not trusted (self-signed certificate)" in out
    assert "upgraded" not in out and not srv.done.is_set()


def test_wss_wrong_hostname(tmp_path):
    ctx, ca = make_ca(str(tmp_path), ["DNS:other.example"])
    srv = WsServer(echo, ctx)
    try:
        rc, out, err = probe("wss://localhost:%d/" % srv.port, "--ca-file", ca,
                             "--allow-network", LOOP)
    finally:
        srv.stop()
    assert rc == 1, out + err
    assert "fail=tls" in closed_line(out)
    assert "localhost: the certificate names other hosts" in out


def test_wss_to_a_plain_server():
    srv = WsServer(echo)
    try:
        rc, out, err = probe("wss://127.0.0.1:%d/" % srv.port, "--allow-network", LOOP)
    finally:
        srv.stop()
    assert rc == 1, out + err
    assert "fail=tls" in closed_line(out)


# ---- the upgrade -------------------------------------------------------------------------

@pytest.mark.parametrize("status", ["401 Unauthorized", "404 Not Found"])
def test_upgrade_refused(status):
    def behave(conn, s):
        req, _ = handshake(conn)
        s.requests.append(req)
        conn.sendall(("HTTP/1.1 %s\r\nContent-Length: 0\r\n\r\n" % status).encode())
        s.drain(conn)
    srv = RawServer(behave)
    try:
        rc, out, err = probe("ws://127.0.0.1:%d/agent" % srv.port, "--allow-network", LOOP)
    finally:
        srv.stop()
    assert rc == 1, out + err
    assert "fail=http" in closed_line(out)
    assert "the agent answered %s to the WebSocket upgrade" % status in out
    req = srv.requests[0]
    assert req.startswith("GET /agent HTTP/1.1\r\n")
    assert "Sec-WebSocket-Version: 13" in req and "Upgrade: websocket" in req


def test_upgrade_wrong_accept():
    def behave(conn, s):
        handshake(conn)
        conn.sendall(upgraded(base64.b64encode(b"x" * 20).decode()))
        s.drain(conn)
    srv = RawServer(behave)
    try:
        rc, out, err = probe("ws://127.0.0.1:%d/" % srv.port, "--allow-network", LOOP)
    finally:
        srv.stop()
    assert rc == 1, out + err
    assert "fail=handshake" in closed_line(out)
    assert "the agent answered 101 with a wrong Sec-WebSocket-Accept" in out


def test_upgrade_never_answered():
    def behave(conn, s):
        s.drain(conn)
    srv = RawServer(behave)
    try:
        rc, out, err = probe("ws://127.0.0.1:%d/" % srv.port, "--allow-network", LOOP,
                             "--timeout-ms", "500")
    finally:
        srv.stop()
    assert rc == 1, out + err
    assert "fail=timeout" in closed_line(out)
    assert "no answer from 127.0.0.1 to the WebSocket upgrade within 500 ms" in out


# ---- before the connection ----------------------------------------------------------------

def test_connection_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]  # bound, never listening: connections are refused
    try:
        rc, out, err = probe("ws://127.0.0.1:%d/" % port, "--allow-network", LOOP)
    finally:
        s.close()
    assert rc == 1, out + err
    assert "fail=connect" in closed_line(out)
    assert "connection to 127.0.0.1:%d refused" % port in out


@pytest.fixture
def dns():
    srv = dnsserver.start({"metadata.test": {"A": ["169.254.169.254"]},
                           "private.test": {"A": ["10.0.0.5", "192.168.1.9"]},
                           "bot.test": {"A": ["127.0.0.1"]}})
    yield "127.0.0.1:%d" % srv.port
    srv.stop()


def test_dns_failure(dns):
    rc, out, err = probe("wss://agent.nowhere.invalid/stream", "--dns-server", dns)
    assert rc == 1, out + err
    assert "fail=dns" in closed_line(out)
    assert "cannot resolve agent.nowhere.invalid" in out


def test_guard_refuses_loopback():
    srv = RawServer(lambda conn, s: s.drain(conn))
    try:
        rc, out, err = probe("ws://127.0.0.1:%d/" % srv.port)
        rc6, out6, err6 = probe("ws://[::ffff:127.0.0.1]:%d/" % srv.port)
    finally:
        srv.stop()
    assert rc == 1, out + err
    assert "fail=guard" in closed_line(out)
    assert "127.0.0.1 is a loopback address" in out
    assert rc6 == 1 and "::ffff:127.0.0.1 is a loopback address" in out6, out6 + err6
    assert srv.accepted == 0  # nothing was even connected


def test_guard_refuses_metadata(dns):
    rc, out, err = probe("ws://169.254.169.254/latest/meta-data/")
    assert rc == 1, out + err
    assert "fail=guard" in closed_line(out)
    assert "169.254.169.254 is the cloud metadata address" in out
    # a name that resolves there (DNS rebinding) is refused just the same
    rc, out, err = probe("ws://metadata.test:8080/", "--dns-server", dns)
    assert rc == 1, out + err
    assert "metadata.test resolves to 169.254.169.254, the cloud metadata address" in out
    rc, out, err = probe("ws://private.test/", "--dns-server", dns)
    assert rc == 1, out + err
    assert "private.test resolves to 10.0.0.5, a private address (and 1 more refused" in out


def test_guard_allows_a_name_in_an_allowed_network(dns):
    srv = WsServer(echo)
    try:
        rc, out, err = probe("ws://bot.test:%d/" % srv.port, "--dns-server", dns,
                             "--allow-network", "127.0.0.0/8", "--send", "hi", "--expect", "1")
    finally:
        srv.stop()
    assert rc == 0, out + err
    assert "received text 2 bytes: hi" in out


# ---- after open ----------------------------------------------------------------------------

def test_message_over_the_cap():
    async def handler(ws, seen):
        try:
            await ws.send("x" * ((1 << 20) + 1))
        except websockets.exceptions.ConnectionClosed:
            # The client may judge the frame by its header and close with 1009 before
            # the whole megabyte has been written.
            pass
        await ws.wait_closed()
        seen["close_code"] = ws.close_code
    srv = WsServer(handler)
    try:
        rc, out, err = probe("ws://127.0.0.1:%d/" % srv.port, "--allow-network", LOOP,
                             "--seconds", "30")
        assert srv.done.wait(10)
    finally:
        srv.stop()
    assert rc == 1, out + err
    assert "fail=protocol" in closed_line(out)
    assert "over 1048576 bytes (closed with 1009 message too big)" in out
    assert "received" not in out
    assert srv.seen["close_code"] == 1009


def test_message_at_the_cap():
    async def handler(ws, seen):
        await ws.send("y" * (1 << 20))
        await ws.wait_closed()
    srv = WsServer(handler)
    try:
        rc, out, err = probe("ws://127.0.0.1:%d/" % srv.port, "--allow-network", LOOP,
                             "--expect", "1")
    finally:
        srv.stop()
    assert rc == 0, out + err
    assert "received text 1048576 bytes: yyyy" in out


def test_no_pong():
    def behave(conn, s):
        _, acc = handshake(conn)
        conn.sendall(upgraded(acc))
        s.drain(conn)  # reads our pings, never answers
    srv = RawServer(behave)
    try:
        rc, out, err = probe("ws://127.0.0.1:%d/" % srv.port, "--allow-network", LOOP,
                             "--ping-ms", "100", "--pong-ms", "200", "--seconds", "60")
    finally:
        srv.stop()
    assert rc == 1, out + err
    assert "fail=ping" in closed_line(out)
    assert "no pong from the agent within 200 ms" in out


def test_pongs_keep_it_open():
    """websockets answers pings: the session lasts until --expect, however many pings."""
    async def handler(ws, seen):
        await ws.recv()
        await ws.send("late")
        await ws.wait_closed()
    srv = WsServer(handler)
    try:
        rc, out, err = probe("ws://127.0.0.1:%d/" % srv.port, "--allow-network", LOOP,
                             "--ping-ms", "20", "--pong-ms", "2000", "--send", "go",
                             "--expect", "1")
    finally:
        srv.stop()
    assert rc == 0, out + err


def test_agent_stops_reading():
    def behave(conn, s):
        _, acc = handshake(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.sendall(upgraded(acc))
        s.stop_ev.wait()  # never reads again
    srv = RawServer(behave)
    try:
        rc, out, err = probe("ws://127.0.0.1:%d/" % srv.port, "--allow-network", LOOP,
                             "--flood", str(1 << 30))
    finally:
        srv.stop()
    assert rc == 1, out + err
    assert "then the send queue was full" in out and "ENOBUFS" in out
    assert "fail=sendq" in closed_line(out)
    assert "the agent stopped reading" in out


def test_usage():
    rc, out, err = probe("http://example.com/")
    assert rc == 2 and "is not a ws:// or wss:// URL" in err
    rc, out, err = probe("ws://example.com/", "--header", "X-A: b\r\nHost: evil")
    assert rc == 2 and "bad --header" in err and "evil" not in err
    rc, out, err = probe("ws://example.com/", "--allow-network", "10.0.0.1/8")
    assert rc == 2 and "10.0.0.1/8" in err

"""Agents for the WebSocket bridge tests: small servers on Debian's python3-websockets (10.4)
that behave on the wire like the bots people point at trunkline. Each reproduces what a
real bot does, as recorded in its code (Pipecat's TwilioFrameSerializer, the OpenAI
realtime Twilio demo, OpenAI Agents JS, Vocode, Deepgram's sample), so a test can check
that trunkline gives each of them what it needs, and takes what it sends.

A Bot runs its own asyncio loop on a thread and records every frame it receives, in
order (bot.frames: decoded JSON, or ("binary", bytes)). Tests wait on conditions over
that record with a deadline (bot.wait_for); nothing sleeps to synchronise.

Behaviours are coroutines `behave(bot, ws)` that run after the bot has read `connected`
and `start` (bot.start holds the start frame); the default one echoes the caller's audio
back as Pipecat does: payload-only media messages."""
import asyncio
import base64
import http
import json
import socket
import ssl
import threading
import time

import websockets

DEADLINE = 20.0


class Bot:
    def __init__(self, behave=None, ssl_ctx=None, reject_status=None, never_answer=False,
                 host="127.0.0.1", rcvbuf=None, raw_handshake=None, deaf=False):
        """reject_status: answer the upgrade with this HTTP status (401, 404) instead of
        101; never_answer: accept TCP and say nothing (a timeout); rcvbuf: a small receive
        buffer on the accepted sockets (a bot that stops reading fills it soon);
        raw_handshake: bytes to answer the upgrade with (a 101 with a wrong Accept)."""
        self.behave = behave or echo
        self.ssl_ctx = ssl_ctx
        self.reject_status = reject_status
        self.never_answer = never_answer
        self.raw_handshake = raw_handshake
        self.rcvbuf = rcvbuf
        self.deaf = deaf  # after start, reads nothing more (a bot that stopped reading)
        self.frames = []
        self.start = None
        self.connections = 0
        self.headers = []  # the upgrade headers of each connection
        self.paths = []
        self.closed = []  # (code, reason) per connection, when the gateway closed it
        self.cond = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self.stop_ev = None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((host, 0))
        sock.listen(16)
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "bot did not start"

    @property
    def url(self):
        return "%s://127.0.0.1:%d/media" % ("wss" if self.ssl_ctx else "ws", self.port)

    # -- the server ------------------------------------------------------------------
    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.stop_ev = asyncio.Event()
        self.loop.run_until_complete(self._main())

    async def _main(self):
        if self.never_answer or self.raw_handshake:
            server = await asyncio.start_server(self._raw, sock=self.sock)
        else:
            server = await websockets.serve(self._handler, sock=self.sock, ssl=self.ssl_ctx,
                                            process_request=self._process, max_size=None,
                                            ping_interval=None)
        self.ready.set()
        await self.stop_ev.wait()
        server.close()
        await server.wait_closed()

    async def _raw(self, reader, writer):
        with self.cond:
            self.connections += 1
            self.cond.notify_all()
        if self.raw_handshake:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(self.raw_handshake)
            await writer.drain()
        await self.stop_ev.wait()
        writer.close()

    async def _process(self, path, headers):
        with self.cond:
            self.connections += 1
            self.headers.append(dict(headers.raw_items()))
            self.paths.append(path)
            self.cond.notify_all()
        if self.reject_status:
            return (http.HTTPStatus(self.reject_status), [("Content-Type", "text/plain")],
                    b"go away\n")
        return None

    async def _handler(self, ws, path=None):
        try:
            first = json.loads(await ws.recv())
            self._record(first)
            start = json.loads(await ws.recv())
            self._record(start)
            with self.cond:
                self.start = start
                self.cond.notify_all()
            if self.deaf:
                await self.behave(self, ws)
                return
            reader = asyncio.ensure_future(self._reader(ws))
            behaviour = asyncio.ensure_future(self.behave(self, ws))
            # the connection's end (the reader sees the close) ends the behaviour too
            await asyncio.wait([reader, behaviour], return_when=asyncio.FIRST_COMPLETED)
            if not behaviour.done():
                await reader
                behaviour.cancel()
            else:
                await reader
        except websockets.ConnectionClosed:
            pass
        finally:
            with self.cond:
                self.closed.append((ws.close_code, ws.close_reason))
                self.cond.notify_all()

    async def _reader(self, ws):
        """Records everything after start; behaviours read it from bot.frames."""
        try:
            async for msg in ws:
                self._record(json.loads(msg) if isinstance(msg, str) else ("binary", msg))
        except websockets.ConnectionClosed:
            pass

    def _record(self, f):
        with self.cond:
            self.frames.append(f)
            self.cond.notify_all()

    # -- for tests -------------------------------------------------------------------
    def wait_for(self, pred, what, timeout=DEADLINE):
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred(self)
                if v:
                    return v
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("bot: timed out waiting for %s; frames: %s" % (
                        what, [f.get("event") if isinstance(f, dict) else f[0]
                               for f in self.frames][-30:]))
                self.cond.wait(left)

    def started(self):
        """The start frame, once the bot has read it (it may lag the 200 OK: the gateway
        answers when the bot is connected, not when the bot has read the frame)."""
        return self.wait_for(lambda b: b.start, "the start frame")

    def events(self, name):
        with self.cond:
            return [f for f in self.frames if isinstance(f, dict) and f.get("event") == name]

    def media_bytes(self):
        return b"".join(base64.b64decode(f["media"]["payload"]) for f in self.events("media"))

    def stop(self):
        if self.stop_ev:
            self.loop.call_soon_threadsafe(self.stop_ev.set)
        self.thread.join(10)
        self.sock.close()


def media_msg(bot, payload):
    """What Pipecat sends: no sequenceNumber, track, chunk or timestamp."""
    return json.dumps({"event": "media", "streamSid": bot.start["streamSid"],
                       "media": {"payload": base64.b64encode(payload).decode()}})


async def echo(bot, ws, chunk=160):
    """The caller's audio back as payload-only media (Pipecat's shape), chunk bytes each;
    runs until the gateway closes."""
    sent = 0
    while True:
        with bot.cond:
            data = bot.media_bytes()
        while len(data) - sent >= chunk:
            await ws.send(media_msg(bot, data[sent:sent + chunk]))
            sent += chunk
        await asyncio.sleep(0.005)  # a poll of the record, not synchronisation of the test


def run_coroutine(bot, coro):
    """Runs coro on the bot's loop from a test thread and returns its result."""
    return asyncio.run_coroutine_threadsafe(coro, bot.loop).result(DEADLINE)


def tls_server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx

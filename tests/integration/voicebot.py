"""The HTTP half of a bot built for Twilio: a "voice URL" answering TwiML, as Pipecat's
Twilio examples, the OpenAI realtime Twilio demo and Vocode's telephony server publish
one. Debian's python3 only (http.server on a thread).

Routes map a path to TwiML text, to (status, body[, content type]), or to a callable
taking the request record and returning one of those. Every request is recorded (method,
path, query, form, headers) and its X-Twilio-Signature checked with validate() below:
our own code, written from Twilio's published algorithm (the full URL; for a POST, each
parameter's name and value appended in name order; HMAC-SHA1 keyed with the auth token;
base64), not from trunkline's. A bot given the auth token refuses (403) any request
whose signature does not validate, as one using Twilio's RequestValidator does."""
import base64
import hashlib
import hmac
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEADLINE = 20.0


def signature(token, url, params):
    """Twilio's X-Twilio-Signature of a request to url with POST params (a dict of lists,
    as parse_qs gives; {} for a GET, whose query is part of the URL)."""
    data = url
    for k in sorted(params):
        for v in sorted(params[k]):
            data += k + v
    mac = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def validate(token, url, params, sig):
    return sig is not None and hmac.compare_digest(signature(token, url, params), sig)


class VoiceBot:
    def __init__(self, routes, token=None):
        self.routes = dict(routes)
        self.token = token
        self.requests = []
        self.cond = threading.Condition()
        bot = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _serve(self, method):
                u = urllib.parse.urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode() if n else ""
                form = urllib.parse.parse_qs(body, keep_blank_values=True) if method == "POST" else {}
                query = urllib.parse.parse_qs(u.query, keep_blank_values=True)
                url = "http://127.0.0.1:%d%s" % (bot.port, self.path)
                sig = self.headers.get("X-Twilio-Signature")
                rec = {"method": method, "path": u.path, "query": query, "form": form,
                       "headers": dict(self.headers), "url": url,
                       "sig_ok": bot.token is not None and validate(bot.token, url, form, sig)}
                # single values, for reading
                rec["p"] = {k: v[0] for k, v in (form if method == "POST" else query).items()}
                with bot.cond:
                    bot.requests.append(rec)
                    bot.cond.notify_all()
                route = bot.routes.get(u.path)
                if bot.token is not None and not rec["sig_ok"]:
                    # what a bot using Twilio's RequestValidator answers a forged request
                    route = (403, "invalid X-Twilio-Signature", "text/plain")
                out = route(rec) if callable(route) else route
                if out is None:
                    out = (404, "not found", "text/plain")
                if isinstance(out, str):
                    out = (200, out, "text/xml")
                status, text = out[0], out[1]
                ctype = out[2] if len(out) > 2 else "text/xml"
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the gateway gave up (a timeout test)

            def do_POST(self):
                self._serve("POST")

            def do_GET(self):
                self._serve("GET")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/voice"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def wait_for(self, pred, what, timeout=DEADLINE):
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred(self)
                if v:
                    return v
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("voice bot: timed out waiting for %s; requests: %s" % (
                        what, [(r["method"], r["path"]) for r in self.requests]))
                self.cond.wait(left)

    def to(self, path):
        with self.cond:
            return [r for r in self.requests if r["path"] == path]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def slow(seconds, then):
    """A route that answers late (a bot stuck on a cold start): the gateway's deadline must
    end the wait. The server thread sleeps; the test waits on the gateway's answer."""
    def route(rec):
        time.sleep(seconds)
        return then
    return route

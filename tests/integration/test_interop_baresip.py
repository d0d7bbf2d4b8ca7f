"""Interop with a real SIP user agent, baresip 1.0.0 (Debian baresip-core), over UDP, TCP
and TLS, both directions: baresip calls `trunkline serve` (sip_test_policy=answer) and hangs
up; `trunkline probe invite` calls baresip (answermode=auto), holds 1 s and hangs up.

baresip runs headless with a generated config dir (tests/integration/baresip/config.in:
null audio through aubridge, no sound card) and its SIP trace on (-s); it is driven over
its ctrl_tcp module (netstring JSON commands, events). Every wait is on an event with a
deadline: the ctrl_tcp response/event, or the SIP trace line in baresip's output.

Asserted per transport:
  - the call is established (CALL_ESTABLISHED) and baresip's trace shows our 200 OK to the
    INVITE arriving over that transport from the daemon's port;
  - after hangup baresip reports CALL_CLOSED and its trace shows the daemon answering the
    BYE with 200 (same Call-ID);
  - the daemon's log has "session.end callid=<the call> reason=bye_received", and it has
    forgotten the call: an in-dialog BYE sent afterwards is answered 481;
  - the daemon's log has no warn/error line; baresip and the daemon shut down cleanly.
Reverse direction: probe exits 0 having seen 200 to its INVITE and 200 to its BYE; baresip
reports the incoming call established and then closed, and its trace shows the INVITE and
the BYE arriving over that transport (TLS: baresip presents a certificate made here, and the
probe verifies it with --ca-file).
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

import dnsserver
from conftest import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG_IN = os.path.join(HERE, "baresip", "config.in")
BARESIP = shutil.which("baresip")
MODULES = "/usr/lib/baresip/modules"
NUMBER = "+493012345678"
DEADLINE = 15.0

pytestmark = pytest.mark.skipif(
    BARESIP is None or not os.path.exists(os.path.join(MODULES, "ctrl_tcp.so")),
    reason="baresip (Debian baresip-core) not installed")

# baresip's SIP trace (-s) prints "TCP 127.0.0.1:a -> 127.0.0.1:b" and then the message.
# Other threads' log lines (e.g. aubridge's) can land anywhere in between, so a message is
# found by its own CRLF-terminated start line and header fields (log lines end in a bare
# LF), and its hop by the last "TCP a -> " before it and the first address after that.
SIP_START = re.compile(r"^((?:[A-Z]+ [^ \r\n]+ SIP/2\.0)|(?:SIP/2\.0 \d{3}[^\r\n]*))\r\n"
                       r"((?:[^\r\n]+\r\n)*)\r\n", re.M)
HOP = re.compile(r"(UDP|TCP|TLS) (\d{1,3}(?:\.\d{1,3}){3}:\d+) -> ")
ADDR = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}:\d+")
# the audio thread's log lines, seen landing in the middle of a trace's hop line
ASYNC_LOG = re.compile(r"aubridge: [^\r\n]*\n")


def trace_msgs(text):
    text = ASYNC_LOG.sub("", text)
    out = []
    for m in SIP_START.finditer(text):
        hops = list(HOP.finditer(text, max(0, m.start() - 1000), m.start()))
        if not hops:
            continue
        h = hops[-1]
        dst = ADDR.search(text, h.end(), m.start())
        hdrs = {}
        for ln in m.group(2).split("\r\n"):
            if ":" in ln:
                k, v = ln.split(":", 1)
                hdrs.setdefault(k.strip().lower(), v.strip())
        out.append({"tp": h.group(1), "src": h.group(2), "dst": dst.group(0) if dst else "",
                    "start": m.group(1), "hdrs": hdrs})
    return out


class Baresip:
    """baresip with a generated config dir, its output captured, ctrl_tcp connected."""

    def __init__(self, tmp_path, transport, cafile, certificate, config_in=CONFIG_IN,
                 account=None, **fmt):
        """config_in: a template (placeholders: sip_port, ctrl_port, cafile, certificate,
        rtp_lo, rtp_hi, and any in fmt); account: the accounts line (default: the UAS
        account with auto answer)."""
        self.dir = str(tmp_path / ("baresip-" + transport))
        os.makedirs(self.dir, exist_ok=True)
        self.transport = transport
        # baresip (libre) listens on UDP+TCP sip_port and TLS on sip_port + 1
        for _ in range(50):
            self.sip_port = free_port()
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind(("127.0.0.1", self.sip_port))
                with socket.socket() as s:
                    s.bind(("127.0.0.1", self.sip_port + 1))
                break
            except OSError:
                continue
        self.tls_port = self.sip_port + 1
        ctrl_port = free_port()
        rtp = free_port(socket.SOCK_DGRAM) & ~1
        # libre resolves names with its own DNS client, not /etc/hosts: our Contact over TLS
        # names the gateway's public host (gw.test in the tests, the name in its
        # certificate, RFC 5922), which a real deployment publishes in DNS. So does this one.
        self.dns = dnsserver.start({"gw.test": {"A": ["127.0.0.1"]},
                                    "localhost": {"A": ["127.0.0.1"]}})
        with open(config_in) as f:
            cfg = f.read().format(sip_port=self.sip_port, ctrl_port=ctrl_port, cafile=cafile,
                                  certificate=certificate, rtp_lo=rtp, rtp_hi=rtp + 10, **fmt)
        cfg += "dns_server\t\t127.0.0.1:%d\n" % self.dns.port
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write(cfg)
        tpp = "" if transport == "udp" else ";transport=" + transport
        if account is None:
            account = "<sip:test@127.0.0.1%s>;regint=0;answermode=auto;audio_codecs=pcmu" % tpp
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write(account + "\n")

        self.out = b""
        self.cond = threading.Condition()
        self.events = []
        self.responses = {}
        self.ctrl = None
        self.proc = subprocess.Popen([BARESIP, "-f", self.dir, "-s"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        self.log = open(os.path.join(self.dir, "baresip.out"), "wb")
        threading.Thread(target=self._drain, daemon=True).start()
        try:
            self.wait_output(r"baresip is ready\.")
            self.ctrl = socket.create_connection(("127.0.0.1", ctrl_port), timeout=DEADLINE)
            threading.Thread(target=self._ctrl_reader, daemon=True).start()
        except BaseException:
            self.stop()
            raise

    # -- output and ctrl_tcp readers ---------------------------------------------------
    def _drain(self):
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            with self.cond:
                if not chunk:
                    self.cond.notify_all()
                    return
                self.log.write(chunk)
                self.log.flush()
                self.out += chunk
                self.cond.notify_all()

    def _ctrl_reader(self):
        buf = b""
        sock = self.ctrl
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.cond.notify_all()
                return
            buf += chunk
            while True:  # netstrings: <len>:<json>,
                colon = buf.find(b":")
                if colon < 0:
                    break
                n = int(buf[:colon])
                if len(buf) < colon + 1 + n + 1:
                    break
                obj = json.loads(buf[colon + 1:colon + 1 + n])
                buf = buf[colon + 1 + n + 1:]
                with self.cond:
                    if obj.get("event"):
                        self.events.append(obj)
                    elif obj.get("response"):
                        self.responses[obj.get("token")] = obj
                    self.cond.notify_all()

    def text(self):
        with self.cond:
            return self.out.decode(errors="replace")

    def _wait(self, pred, what, deadline):
        end = time.monotonic() + deadline
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError("baresip: no %s in %ss (exit code %s)\n--- output tail "
                                         "---\n%s" % (what, deadline, self.proc.poll(),
                                                       self.out.decode(errors="replace")[-4000:]))
                self.cond.wait(left)

    def wait_output(self, regex, deadline=DEADLINE):
        rx = re.compile(regex)
        return self._wait(lambda: rx.search(self.out.decode(errors="replace")),
                          "output /%s/" % regex, deadline)

    def wait_trace(self, pred, what, deadline=DEADLINE):
        return self._wait(lambda: next((m for m in trace_msgs(self.out.decode(
            errors="replace")) if pred(m)), None), what, deadline)

    def wait_event(self, etype, deadline=DEADLINE):
        return self._wait(lambda: next((e for e in self.events if e.get("type") == etype),
                                       None), "event " + etype, deadline)

    def command(self, cmd, params=None, deadline=DEADLINE):
        token = uuid.uuid4().hex[:8]
        obj = {"command": cmd, "token": token}
        if params is not None:
            obj["params"] = params
        data = json.dumps(obj).encode()
        self.ctrl.sendall(b"%d:%s," % (len(data), data))
        r = self._wait(lambda: self.responses.get(token), "response to " + cmd, deadline)
        assert r.get("ok"), "baresip %s %r failed: %r" % (cmd, params, r)
        return r

    # -- shutdown ----------------------------------------------------------------------
    def stop(self):
        """quit over ctrl_tcp; SIGTERM, then SIGKILL if it does not go. Returns the code."""
        if self.proc.poll() is None and self.ctrl:
            try:
                data = b'{"command":"quit","token":"q"}'
                self.ctrl.sendall(b"%d:%s," % (len(data), data))
            except OSError:
                pass
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            if sig:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                continue
        if self.ctrl:
            self.ctrl.close()
        self.dns.stop()
        return self.proc.returncode


@pytest.fixture
def trunkline(make_daemon):
    port, tls = free_port(), free_port()
    d = make_daemon(env={"TRUNKLINE_SIP_TCP_PORT": str(port), "TRUNKLINE_SIP_TLS_PORT": str(tls),
                         "TRUNKLINE_SIP_LISTEN": "127.0.0.1",
                         "TRUNKLINE_SIP_TEST_POLICY": "answer"})
    d.sip_port, d.tls_port = port, tls
    yield d
    assert d.stop() == 0, d.log_text()[-3000:]  # clean exit (also under ASan/LSan)


def make_cert(d):
    """A self-signed certificate for 127.0.0.1; baresip wants key and chain in one PEM."""
    key, crt, both = (os.path.join(d, n) for n in ("ua.key", "ua.crt", "ua.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", crt],
                   check=True, capture_output=True, timeout=30)
    with open(both, "w") as f:
        f.write(open(crt).read() + open(key).read())
    return crt, both


@pytest.fixture
def baresip(tmp_path, trunkline):
    made = []
    crt, pem = make_cert(str(tmp_path))

    def start(transport):
        for attempt in range(3):  # a port picked free can be taken before baresip binds it
            try:
                b = Baresip(tmp_path / ("try%d" % attempt), transport,
                            os.path.join(trunkline.data_dir, "tls", "cert.pem"), pem)
                break
            except AssertionError as e:
                if "Address already in use" not in str(e) or attempt == 2:
                    raise
        b.cert = crt
        made.append(b)
        return b
    yield start
    for b in made:
        b.stop()


def wait_log(daemon, regex, deadline=DEADLINE):
    """Wait until the daemon's log file has a line matching regex (it writes the file, so
    this polls it, with a deadline)."""
    rx = re.compile(regex)
    end = time.monotonic() + deadline
    while not rx.search(daemon.log_text()):
        assert time.monotonic() < end, "daemon log: no /%s/ in %ss\n%s" % (
            regex, deadline, daemon.log_text()[-3000:])
        time.sleep(0.05)  # poll period of the file, bounded by the deadline


def bye_probe(port, invite_200, tp):
    """Send an in-dialog BYE for the (already ended) call; return the status code."""
    h = invite_200["hdrs"]
    msg = ("BYE sip:%s@127.0.0.1:%d SIP/2.0\r\n"
           "Via: SIP/2.0/%s 127.0.0.1:9;branch=z9hG4bKprobe%s;rport\r\n"
           "Max-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 999999 BYE\r\n"
           "Content-Length: 0\r\n\r\n" % (NUMBER, port, tp.upper(), uuid.uuid4().hex,
                                          h["from"], h["to"], h["call-id"])).encode()
    if tp == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(msg, ("127.0.0.1", port))
            resp = s.recv(65535)
    else:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(msg)
            resp = b""
            while b"\r\n\r\n" not in resp:
                r, _, _ = select.select([s], [], [], 5)
                assert r, "no answer to the BYE probe"
                chunk = s.recv(65535)
                assert chunk, "connection closed before an answer to the BYE probe"
                resp += chunk
    m = re.match(rb"SIP/2\.0 (\d{3}) ", resp)
    assert m, resp[:200]
    return int(m.group(1))


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_baresip_calls_trunkline(trunkline, baresip, transport):
    b = baresip(transport)
    port = trunkline.tls_port if transport == "tls" else trunkline.sip_port
    tp = transport.upper()
    daemon_addr = "127.0.0.1:%d" % port

    b.command("dial", "sip:%s@127.0.0.1:%d" % (NUMBER, port))
    ev = b.wait_event("CALL_ESTABLISHED")
    assert NUMBER in ev.get("peeruri", ""), ev

    invite = b.wait_trace(lambda m: m["start"].startswith("INVITE ") and m["dst"] == daemon_addr,
                          "INVITE to " + daemon_addr)
    assert invite["tp"] == tp, invite
    ok = b.wait_trace(lambda m: m["start"].startswith("SIP/2.0 200") and
                      m["src"] == daemon_addr and m["hdrs"].get("cseq", "").endswith("INVITE"),
                      "200 OK to the INVITE")
    assert ok["tp"] == tp and ok["hdrs"]["call-id"] == invite["hdrs"]["call-id"], ok
    assert ";tag=" in ok["hdrs"]["to"], ok
    b.wait_trace(lambda m: m["start"].startswith("ACK ") and
                 m["hdrs"].get("call-id") == ok["hdrs"]["call-id"], "ACK")

    b.command("hangup")
    closed = b.wait_event("CALL_CLOSED")
    assert closed.get("id") == ev.get("id"), (closed, ev)
    callid = ok["hdrs"]["call-id"]
    b.wait_trace(lambda m: m["start"].startswith("BYE ") and m["hdrs"].get("call-id") == callid
                 and m["tp"] == tp, "BYE from baresip")
    bye_ok = b.wait_trace(lambda m: m["src"] == daemon_addr and
                          m["hdrs"].get("call-id") == callid and
                          m["hdrs"].get("cseq", "").endswith("BYE"), "answer to the BYE")
    assert bye_ok["start"].startswith("SIP/2.0 200"), bye_ok

    # the daemon logged the end of the call, and the same dialog is unknown to it now
    wait_log(trunkline, r"session\.end callid=%s .*reason=bye_received" % re.escape(callid))
    assert bye_probe(trunkline.sip_port, ok, "udp") == 481

    assert b.stop() == 0, b.text()[-3000:]
    bad = [ln for ln in trunkline.log_text().splitlines() if re.search(r"Z (warn|error) ", ln)]
    assert not bad, bad


PROBE_OK = subprocess.run([os.environ.get("TRUNKLINE_BIN", os.path.join(
    os.path.dirname(os.path.dirname(HERE)), "build", "trunkline")), "probe", "--help"],
    capture_output=True, text=True).stdout


@pytest.mark.skipif("probe invite" not in PROBE_OK and "invite" not in PROBE_OK,
                    reason="trunkline probe invite not built")
@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_trunkline_probe_calls_baresip(trunkline, baresip, transport):
    from conftest import BIN
    b = baresip(transport)
    tp = transport.upper()
    port = b.tls_port if transport == "tls" else b.sip_port
    cmd = [BIN, "probe", "invite", "sip:test@127.0.0.1:%d" % port,
           "--transport", transport, "--hold", "1"]
    if transport == "tls":
        cmd += ["--ca-file", b.cert]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr, b.text()[-3000:])
    assert re.search(r"^INVITE: SIP/2\.0 200 ", p.stdout, re.M), p.stdout
    assert re.search(r"^BYE: SIP/2\.0 200 ", p.stdout, re.M), p.stdout

    est = b.wait_event("CALL_ESTABLISHED")
    assert est.get("direction") == "incoming", est
    closed = b.wait_event("CALL_CLOSED")
    assert closed.get("id") == est.get("id"), (closed, est)
    me = "127.0.0.1:%d" % port
    inv = b.wait_trace(lambda m: m["start"].startswith("INVITE ") and m["dst"] == me,
                       "INVITE from the probe")
    assert inv["tp"] == tp, inv
    b.wait_trace(lambda m: m["start"].startswith("ACK ") and m["dst"] == me and
                 m["hdrs"].get("call-id") == inv["hdrs"]["call-id"], "ACK from the probe")
    bye = b.wait_trace(lambda m: m["start"].startswith("BYE ") and m["dst"] == me and
                       m["hdrs"].get("call-id") == inv["hdrs"]["call-id"], "BYE from the probe")
    assert bye["tp"] == tp, bye
    assert b.stop() == 0, b.text()[-3000:]

"""`trunkline probe` (the SIP client side: client transactions, digest, TLS) against real
peers: SIPp UAS scenarios (tests/integration/sipp/uas_*.xml) and, where SIPp 3.6.1 cannot
check what we need (its verifyauth reads only Authorization, not Proxy-Authorization, and
knows no SHA-256; it absorbs INVITE retransmissions itself), a small Python UAS that
checks the digest with hashlib.

No timing thresholds: every wait is for an event (process exit, a message) with a
generous deadline."""
import glob
import hashlib
import os
import re
import socket
import ssl
import subprocess
import threading

import pytest

from conftest import BIN, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
SIPP = os.path.join(HERE, "sipp")


def probe(*args, stdin=None, timeout=60):
    p = subprocess.run([BIN, "probe", *args], input=stdin, capture_output=True, text=True,
                       timeout=timeout)
    # under make SANITIZE=1 a finding can hide behind an expected non-zero exit code
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p.returncode, p.stdout, p.stderr


class Sipp:
    def __init__(self, tmp_path, scenario, transport="u1"):
        self.port = free_port(socket.SOCK_DGRAM if transport == "u1" else socket.SOCK_STREAM)
        self.dir = str(tmp_path)
        self.scenario = os.path.splitext(os.path.basename(scenario))[0]
        self.proc = subprocess.Popen(
            ["sipp", "-sf", os.path.join(SIPP, scenario), "-m", "1", "-t", transport, "-i",
             "127.0.0.1", "-p", str(self.port), "-timeout", "20s", "-trace_msg", "-nostdin"],
            cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # SIPp has no "ready" line: wait until its socket is bound
        kind = "udp" if transport == "u1" else "tcp"
        for _ in range(200):
            out = subprocess.run(["ss", "-lnH", "-" + kind[0], "sport = :%d" % self.port],
                                 capture_output=True, text=True).stdout
            if out.strip():
                break
            threading.Event().wait(0.05)

    def wait(self):
        return self.proc.wait(30)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def received(self, method):
        logs = glob.glob(os.path.join(self.dir, "*_messages.log"))
        text = "".join(open(f, errors="replace").read() for f in logs)
        return len(re.findall(r"^%s sip:" % method, text, re.M))

    def messages(self, method):
        """The requests of this method this SIPp received, each as text, in order (from its
        -trace_msg log, <scenario>_<pid>_messages.log: blocks after "message received")."""
        log = os.path.join(self.dir, "%s_%d_messages.log" % (self.scenario, self.proc.pid))
        text = open(log, errors="replace").read() if os.path.exists(log) else ""
        blocks = re.split(r"^-{10,}.*$", text, flags=re.M)
        out = []
        for b in blocks:
            head, _, msg = b.partition("message received")
            msg = msg.split("\n", 1)[1].lstrip("\r\n") if "\n" in msg else ""
            if msg.startswith(method + " "):
                out.append(msg)
        return out


@pytest.fixture
def sipp(tmp_path):
    started = []

    def start(scenario, transport="u1"):
        s = Sipp(tmp_path, scenario, transport)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.mark.parametrize("tp,flag", [("udp", "u1"), ("tcp", "t1")])
def test_options(sipp, tp, flag):
    s = sipp("uas_options.xml", flag)
    rc, out, err = probe("options", "sip:+4930123456@127.0.0.1:%d" % s.port, "--transport", tp)
    assert rc == 0, out + err
    assert re.search(r"OPTIONS: SIP/2.0 200 OK \(\d+ ms\)", out)
    assert s.wait() == 0


@pytest.mark.parametrize("tp,flag", [("udp", "u1"), ("tcp", "t1")])
def test_invite_ack_bye(sipp, tp, flag):
    s = sipp("uas_call.xml", flag)
    rc, out, err = probe("invite", "sip:+4930123456@127.0.0.1:%d" % s.port, "--transport", tp,
                         "--from", "+4930999", "--header", "X-Trunk-Test: 1")
    assert rc == 0, out + err
    assert "180 Ringing" in out and "INVITE: SIP/2.0 200 OK" in out
    assert "BYE: SIP/2.0 200 OK" in out
    assert s.wait() == 0  # SIPp saw ACK and BYE in order


def test_digest_401_md5_qop(sipp):
    s = sipp("uas_auth401.xml")
    rc, out, err = probe("invite", "sip:+4930123456@127.0.0.1:%d" % s.port, "--username",
                         "alice", "--password-stdin", stdin="s3cret\n")
    assert rc == 0, out + err  # SIPp answers 403 when verifyauth fails
    assert s.wait() == 0


def test_digest_wrong_realm_not_answered(sipp):
    s = sipp("uas_authrealm.xml")
    rc, out, err = probe("invite", "sip:+4930123456@127.0.0.1:%d" % s.port, "--username",
                         "alice", "--password", "s3cret")
    assert rc == 1, out + err
    assert "401 Unauthorized" in out
    assert "another realm" in err
    assert s.wait() == 0
    assert s.received("INVITE") == 1


def test_digest_one_retry_only(sipp):
    s = sipp("uas_authtwice.xml")
    rc, out, err = probe("invite", "sip:+4930123456@127.0.0.1:%d" % s.port, "--username",
                         "alice", "--password", "s3cret")
    assert rc == 1, out + err
    assert s.wait() == 0
    assert s.received("INVITE") == 2


# ---- a Python UAS for what SIPp cannot check ----

def parse(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    return lines[0], hdrs, body


def response(start, hdrs, code, extra="", tag=True):
    to = hdrs["to"][0] + (";tag=uas1" if tag and ";tag=" not in hdrs["to"][0] else "")
    r = "SIP/2.0 %s\r\n" % code
    for v in hdrs["via"]:
        r += "Via: %s\r\n" % v
    r += "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n" % (
        hdrs["from"][0], to, hdrs["call-id"][0], hdrs["cseq"][0])
    if code.startswith("200") and start.startswith("INVITE"):
        r += "Contact: <sip:uas@127.0.0.1>\r\n"
    return (r + extra + "Content-Length: 0\r\n\r\n").encode()


def digest_ok(cred, method, password, alg):
    d = dict(re.findall(r'(\w+)="?([^",]*)"?', cred.split(" ", 1)[1]))
    h = (lambda s: hashlib.sha256(s.encode()).hexdigest()) if alg == "SHA-256" else \
        (lambda s: hashlib.md5(s.encode()).hexdigest())
    ha1 = h("%s:%s:%s" % (d["username"], d["realm"], password))
    ha2 = h("%s:%s" % (method, d["uri"]))
    if "qop" in d:
        want = h(":".join([ha1, d["nonce"], d["nc"], d["cnonce"], d["qop"], ha2]))
    else:
        want = h(":".join([ha1, d["nonce"], ha2]))
    return want == d["response"], d


class PyUas:
    """UDP (or TLS over TCP) UAS run by a handler: handler(start, hdrs) -> [bytes]."""

    def __init__(self, handler, tls_ctx=None):
        self.handler = handler
        self.seen = []
        self.tls = tls_ctx
        if tls_ctx:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(4)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.errors = []
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def handle(self, data, send):
        start, hdrs, _ = parse(data)
        self.seen.append((start, hdrs))
        for out in self.handler(start, hdrs):
            # our Contact names where we listen: the probe sends its in-dialog requests
            # there (RFC 3261 §12.2.1.1), not to the address the 200 came from
            send(out.replace(b"<sip:uas@127.0.0.1>", b"<sip:uas@127.0.0.1:%d%s>" % (
                self.port, b";transport=tls" if self.tls else b"")))

    def run(self):
        while not self.stopping:
            try:
                if not self.tls:
                    data, addr = self.sock.recvfrom(65535)
                    self.handle(data, lambda b: self.sock.sendto(b, addr))
                    continue
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                c.settimeout(5)
                s = self.tls.wrap_socket(c, server_side=True)
            except (ssl.SSLError, OSError) as e:
                self.errors.append(str(e))
                c.close()
                continue
            buf = b""
            try:
                while not self.stopping:
                    chunk = s.recv(65535)
                    if not chunk:
                        break
                    buf += chunk
                    while b"\r\n\r\n" in buf:
                        head, _, rest = buf.partition(b"\r\n\r\n")
                        n = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
                        if len(rest) < n:
                            break
                        self.handle(head + b"\r\n\r\n" + rest[:n], s.sendall)
                        buf = rest[n:]
            except (OSError, ssl.SSLError):
                pass
            s.close()

    def stop(self):
        self.stopping = True
        self.t.join(5)
        self.sock.close()


def auth_handler(code, hdr, challenge, alg, state):
    """Challenges the first INVITE; answers 200 when the retry's credentials check out."""
    def h(start, hdrs):
        method = start.split(" ")[0]
        if method == "INVITE":
            cred = hdrs.get("proxy-authorization" if code.startswith("407") else "authorization")
            if not cred:
                return [response(start, hdrs, code, "%s: %s\r\n" % (hdr, challenge))]
            ok, d = digest_ok(cred[0], "INVITE", "s3cret", alg)
            state["cred"] = d
            return [response(start, hdrs, "200 OK" if ok else "403 Forbidden")]
        if method == "BYE":
            return [response(start, hdrs, "200 OK", tag=False)]
        return []
    return h


@pytest.mark.parametrize("code,hdr,challenge,alg", [
    ("407 Proxy Authentication Required", "Proxy-Authenticate",
     'Digest realm="127.0.0.1", nonce="9b1c0d2e3f405162", algorithm=MD5', "MD5"),
    ("407 Proxy Authentication Required", "Proxy-Authenticate",
     'Digest realm="127.0.0.1",qop="auth",nonce="d1a9e0b6-7c1e",opaque="777f6b2c"', "MD5"),
    ("401 Unauthorized", "WWW-Authenticate",
     'Digest realm="127.0.0.1", nonce="5e6f", qop="auth", algorithm=SHA-256', "SHA-256"),
], ids=["407-rfc2069", "407-twilio", "401-sha256"])
def test_digest_python_uas(code, hdr, challenge, alg):
    state = {}
    uas = PyUas(auth_handler(code, hdr, challenge, alg, state))
    try:
        rc, out, err = probe("invite", "sip:+4930123456@127.0.0.1:%d" % uas.port,
                             "--username", "alice", "--password", "s3cret")
    finally:
        uas.stop()
    assert rc == 0, out + err
    invites = [h for s, h in uas.seen if s.startswith("INVITE")]
    assert len(invites) == 2
    # §22.2: same Call-ID and From tag, CSeq + 1
    assert invites[0]["call-id"] == invites[1]["call-id"]
    assert invites[0]["from"] == invites[1]["from"]
    assert int(invites[1]["cseq"][0].split()[0]) == int(invites[0]["cseq"][0].split()[0]) + 1
    if "opaque" in challenge:
        assert state["cred"]["opaque"] == "777f6b2c" and "algorithm" not in state["cred"]
    if "qop" not in challenge:
        assert "cnonce" not in state["cred"] and "nc" not in state["cred"]


def test_timer_a_retransmission():
    """The UAS ignores the first INVITE; the probe's retransmission gets the answer."""
    count = {"n": 0}

    def h(start, hdrs):
        if start.startswith("INVITE"):
            count["n"] += 1
            if count["n"] == 1:
                return []
            return [response(start, hdrs, "200 OK")]
        if start.startswith("BYE"):
            return [response(start, hdrs, "200 OK", tag=False)]
        return []

    uas = PyUas(h)
    try:
        rc, out, err = probe("invite", "sip:+4930123456@127.0.0.1:%d" % uas.port)
    finally:
        uas.stop()
    assert rc == 0, out + err
    branches = {re.search(r"branch=([^;]+)", h["via"][0]).group(1)
                for s, h in uas.seen if s.startswith("INVITE")}
    assert count["n"] == 2 and len(branches) == 1  # a retransmission, not a new request


# ---- TLS ----

def make_ca(d, names):
    """A test CA and a server certificate for `names` (SANs), with the openssl CLI."""
    def run(*a):
        subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=trunkline test CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
        "srv.key", "-out", "srv.csr", "-subj", "/CN=%s" % names[0].split(":", 1)[1])
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=%s\n" % ",".join(names))
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "srv.pem"), os.path.join(d, "srv.key"))
    return ctx, os.path.join(d, "ca.pem")


def options_ok(start, hdrs):
    return [response(start, hdrs, "200 OK")] if start.startswith("OPTIONS") else []


def test_tls_verified(tmp_path):
    ctx, ca = make_ca(str(tmp_path), ["DNS:localhost", "IP:127.0.0.1"])
    uas = PyUas(options_ok, ctx)
    try:
        rc, out, err = probe("options", "sip:+4930123456@localhost:%d" % uas.port,
                             "--transport", "tls", "--ca-file", ca)
    finally:
        uas.stop()
    assert rc == 0, out + err
    assert "200 OK" in out


@pytest.mark.parametrize("case", ["wrong-name", "untrusted"])
def test_tls_refused(tmp_path, case):
    names = ["DNS:other.example"] if case == "wrong-name" else ["DNS:localhost"]
    ctx, ca = make_ca(str(tmp_path), names)
    uas = PyUas(options_ok, ctx)
    args = ["--ca-file", ca] if case == "wrong-name" else []
    try:
        rc, out, err = probe("options", "sip:+4930123456@localhost:%d" % uas.port,
                             "--transport", "tls", *args)
    finally:
        uas.stop()
    assert rc == 3, out + err
    assert "verification failed" in err
    assert not [s for s, _ in uas.seen]  # nothing was sent in the clear or otherwise

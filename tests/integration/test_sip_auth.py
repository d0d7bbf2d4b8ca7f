"""Digest authentication of inbound INVITEs (sip/inauth.c through sip_test_policy and
sip_test_auth), over UDP and TCP.

SIPp runs the plain cases (right and wrong password). SIPp 3.6 reads only the first
WWW-Authenticate and knows only MD5, so those daemons send MD5 first
(sip_digest_algorithms=MD5,SHA-256), and SIPp's digest uri is forced to the Request-URI
(-auth_uri; it defaults to remote_ip:port, which we refuse as not naming the request).
What SIPp cannot do (SHA-256, the default SHA-256-then-MD5 order, replaying a nonce, a
stale nonce) is done by a small client here that computes the digest itself."""
import base64
import hashlib
import os
import re
import socket
import time

import pytest

from test_sip_endpoint import needs_sipp, run_sipp, sip  # noqa: F401 (fixture)

USER, PASSWORD = "alice", "s3cret-pw"
AUTH_ENV = {"TRUNKLINE_SIP_TEST_POLICY": "answer", "TRUNKLINE_SIP_TEST_AUTH": USER + ":" + PASSWORD}
TRANSPORTS = ["UDP", "TCP"]
SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def clean_log(d, expect=None):
    """Neither the password nor any response hash reaches the log (after the line expect,
    when given, is there: the log is written by a thread of its own)."""
    log = d.wait_log(expect) if expect else d.log_text()
    assert PASSWORD not in log
    assert "response=" not in log and not re.search(r"\b[0-9a-f]{32,64}\b", log)
    return log


# ---- SIPp -----------------------------------------------------------------------------

def sipp_auth(d, scenario, transport, password):
    run_sipp(d, scenario, transport,
             ["-au", USER, "-ap", password, "-auth_uri", "+4930123456@127.0.0.1:%d" % d.sip_port])


@needs_sipp
@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_right_password_401_then_200(sip, transport):  # noqa: F811
    d = sip(TRUNKLINE_SIP_DIGEST_ALGORITHMS="MD5,SHA-256", **AUTH_ENV)
    sipp_auth(d, "auth_call.xml", transport, PASSWORD)
    log = clean_log(d, "session.end")
    assert "auth.refused" not in log


@needs_sipp
@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_wrong_password_403(sip, transport):  # noqa: F811
    d = sip(TRUNKLINE_SIP_DIGEST_ALGORITHMS="MD5,SHA-256", **AUTH_ENV)
    sipp_auth(d, "auth_wrong.xml", transport, "wrong")
    log = clean_log(d, re.compile(r"auth\.refused reason=credentials_mismatch "
                                  r"src=127\.0\.0\.1:\d+ user=alice"))
    assert "session.end" not in log


# ---- a client that computes the digest itself ------------------------------------------

class Resp:
    def __init__(self, raw):
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        m = re.match(r"SIP/2\.0 (\d{3}) ", lines[0])
        assert m, lines[0]
        self.code = int(m.group(1))
        self.hdrs = [(n.strip().lower(), v.strip()) for n, _, v in
                     (ln.partition(":") for ln in lines[1:])]

    def all(self, name):
        return [v for n, v in self.hdrs if n == name.lower()]

    def get(self, name):
        v = self.all(name)
        return v[0] if v else None

    def to_tag(self):
        return re.search(r";tag=([^;>\s]+)", self.get("to")).group(1)


def challenges(resp):
    """[(algorithm, {param: value})] in the order of the WWW-Authenticate fields."""
    out = []
    for v in resp.all("www-authenticate"):
        assert v.startswith("Digest "), v
        p = {k.lower(): (q if q else t) for k, q, t in
             re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', v[7:])}
        out.append((p.get("algorithm"), p))
    return out


def nonce_time(nonce):
    """Seconds in the nonce (sip/digest.h: base64url of an 8-byte big-endian timestamp, …):
    the daemon's own clock, so the test waits exactly as long as staleness needs."""
    return int.from_bytes(base64.urlsafe_b64decode(nonce + "=")[:8], "big")


class Client:
    def __init__(self, port, tp):
        self.port, self.tp = port, tp
        if tp == "UDP":
            self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.s.bind(("127.0.0.1", 0))
            self.s.connect(("127.0.0.1", port))
        else:
            self.s = socket.create_connection(("127.0.0.1", port))
        self.s.settimeout(5)
        self.lport = self.s.getsockname()[1]
        self.buf = b""
        self.uri = "sip:+4930123456@127.0.0.1:%d" % port

    def close(self):
        self.s.close()

    def recv(self):
        if self.tp == "UDP":
            return Resp(self.s.recv(65535))
        while True:
            if b"\r\n\r\n" in self.buf:
                head, rest = self.buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"\r\nContent-Length: *(\d+)", head, re.I)
                n = int(m.group(1)) if m else 0
                if len(rest) >= n:
                    self.buf = rest[n:]
                    return Resp(head + b"\r\n\r\n" + rest[:n])
            chunk = self.s.recv(65535)
            assert chunk, "connection closed"
            self.buf += chunk

    def send(self, method, callid, cseq, ftag, branch, ttag=None, auth=None):
        body = SDP if method == "INVITE" else ""
        msg = ["%s %s SIP/2.0" % (method, self.uri),
               "Via: SIP/2.0/%s 127.0.0.1:%d;branch=%s;rport" % (self.tp, self.lport, branch),
               "Max-Forwards: 70",
               "From: <sip:carrier@127.0.0.1>;tag=%s" % ftag,
               "To: <%s>%s" % (self.uri, ";tag=" + ttag if ttag else ""),
               "Call-ID: %s" % callid, "CSeq: %d %s" % (cseq, method),
               "Contact: <sip:carrier@127.0.0.1:%d;transport=%s>" % (self.lport, self.tp.lower())]
        if auth:
            msg.append("Authorization: " + auth)
        if body:
            msg.append("Content-Type: application/sdp")
        msg.append("Content-Length: %d" % len(body))
        self.s.sendall(("\r\n".join(msg) + "\r\n\r\n" + body).encode())

    def final(self, callid, cseq, method):
        """The final response to (Call-ID, CSeq); provisionals and leftovers are skipped."""
        while True:
            r = self.recv()
            if (r.code >= 200 and r.get("call-id") == callid and
                    r.get("cseq") == "%d %s" % (cseq, method)):
                return r

    def invite(self, callid, cseq, ftag, auth=None):
        """INVITE; the final response, ACKed when it is not a 2xx (same branch, §17.1.1.3)."""
        branch = "z9hG4bK" + os.urandom(8).hex()
        self.send("INVITE", callid, cseq, ftag, branch, auth=auth)
        r = self.final(callid, cseq, "INVITE")
        if r.code >= 300:
            self.send("ACK", callid, cseq, ftag, branch, ttag=r.to_tag())
        return r

    def ack_bye(self, callid, cseq, ftag, ok):
        tag = ok.to_tag()
        self.send("ACK", callid, cseq, ftag, "z9hG4bK" + os.urandom(8).hex(), ttag=tag)
        self.send("BYE", callid, cseq + 1, ftag, "z9hG4bK" + os.urandom(8).hex(), ttag=tag)
        assert self.final(callid, cseq + 1, "BYE").code == 200

    def authorization(self, ch, alg, nc="00000001", password=PASSWORD, user=USER):
        h = (lambda s: hashlib.new("md5" if alg == "MD5" else "sha256", s.encode()).hexdigest())
        cnonce = os.urandom(8).hex()
        ha1 = h("%s:%s:%s" % (user, ch["realm"], password))
        ha2 = h("INVITE:%s" % self.uri)
        resp = h("%s:%s:%s:%s:auth:%s" % (ha1, ch["nonce"], nc, cnonce, ha2))
        return ('Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", '
                'algorithm=%s, cnonce="%s", opaque="%s", qop=auth, nc=%s'
                % (user, ch["realm"], ch["nonce"], self.uri, resp, alg, cnonce, ch["opaque"], nc))


def new_ids():
    return os.urandom(8).hex() + "@test", os.urandom(4).hex()


def challenged(c, callid, ftag, cseq=1):
    r = c.invite(callid, cseq, ftag)
    assert r.code == 401, r.hdrs
    chs = challenges(r)
    # RFC 8760: SHA-256 first, then MD5, one nonce, our realm, qop=auth
    assert [a for a, _ in chs] == ["SHA-256", "MD5"], chs
    assert all(p["realm"] == "gw.test" and p["qop"] == "auth" for _, p in chs)
    assert chs[0][1]["nonce"] == chs[1][1]["nonce"]
    return r, dict(chs)


@pytest.mark.parametrize("tp", TRANSPORTS)
def test_sha256_first_and_chosen(sip, tp):  # noqa: F811
    d = sip(**AUTH_ENV)
    c = Client(d.sip_port, tp)
    callid, ftag = new_ids()
    _, chs = challenged(c, callid, ftag)
    assert "stale" not in chs["SHA-256"]
    ok = c.invite(callid, 2, ftag, c.authorization(chs["SHA-256"], "SHA-256"))
    assert ok.code == 200 and ok.get("content-type") == "application/sdp"
    c.ack_bye(callid, 2, ftag, ok)
    c.close()
    clean_log(d)


@pytest.mark.parametrize("tp", TRANSPORTS)
def test_replayed_nonce_refused(sip, tp):  # noqa: F811
    """RFC 7616 §3.4: the same nonce with the same nc in a new INVITE (new Call-ID) → 403."""
    d = sip(**AUTH_ENV)
    c = Client(d.sip_port, tp)
    callid, ftag = new_ids()
    _, chs = challenged(c, callid, ftag)
    auth = c.authorization(chs["MD5"], "MD5")
    ok = c.invite(callid, 2, ftag, auth)
    assert ok.code == 200
    c.ack_bye(callid, 2, ftag, ok)

    callid2, ftag2 = new_ids()
    r = c.invite(callid2, 1, ftag2, auth)
    assert r.code == 403
    assert r.get("warning") == '399 gw.test "nonce reuse"'
    c.close()
    clean_log(d, re.compile(r"auth\.replay reason=nonce_reuse src=127\.0\.0\.1:\d+ user=alice"))


@pytest.mark.parametrize("tp", TRANSPORTS)
def test_stale_nonce_rechallenged(sip, tp):  # noqa: F811
    """A right answer to a nonce older than sip_nonce_ttl_s → 401 stale=true with a new nonce
    (RFC 7616 §3.3), whose answer passes."""
    ttl = 1
    d = sip(TRUNKLINE_SIP_NONCE_TTL_S=str(ttl), **AUTH_ENV)
    c = Client(d.sip_port, tp)
    callid, ftag = new_ids()
    _, chs = challenged(c, callid, ftag)
    old = chs["SHA-256"]
    # Staleness is the behaviour under test, so time must pass: the daemon calls a nonce
    # stale when (its wall clock, whole seconds) - (the nonce's seconds) > ttl. Wait for
    # exactly that on the nonce's own timestamp, plus a margin for the two clocks' reads.
    due = nonce_time(old["nonce"]) + ttl + 1 + 0.05
    while time.time() < due:
        time.sleep(due - time.time())
    r = c.invite(callid, 2, ftag, c.authorization(old, "SHA-256"))
    assert r.code == 401, (r.code, r.hdrs)
    chs2 = dict(challenges(r))
    assert chs2["SHA-256"]["stale"] == "true" and chs2["MD5"]["stale"] == "true"
    assert chs2["SHA-256"]["nonce"] != old["nonce"]
    ok = c.invite(callid, 3, ftag, c.authorization(chs2["SHA-256"], "SHA-256"))
    assert ok.code == 200
    c.ack_bye(callid, 3, ftag, ok)
    c.close()
    clean_log(d, re.compile(r"auth\.stale src=127\.0\.0\.1:\d+ user=alice"))


@pytest.mark.parametrize("tp", TRANSPORTS)
def test_wrong_username_same_answer_as_wrong_password(sip, tp):  # noqa: F811
    """No user enumeration (SIPVicious svwar/svcrack): one 403 and one Warning for both."""
    d = sip(**AUTH_ENV)
    c = Client(d.sip_port, tp)
    got = []
    for user, pw in (("mallory", PASSWORD), (USER, "guess")):
        callid, ftag = new_ids()
        _, chs = challenged(c, callid, ftag)
        r = c.invite(callid, 2, ftag, c.authorization(chs["MD5"], "MD5", password=pw, user=user))
        got.append((r.code, r.get("warning")))
    c.close()
    assert got == [(403, '399 gw.test "credentials do not match"')] * 2
    clean_log(d)


def test_auth_off_answers_directly(sip):  # noqa: F811
    """Regression: without sip_test_auth an INVITE without Authorization gets 200."""
    d = sip(TRUNKLINE_SIP_TEST_POLICY="answer")
    c = Client(d.sip_port, "UDP")
    callid, ftag = new_ids()
    ok = c.invite(callid, 1, ftag)
    assert ok.code == 200 and not ok.all("www-authenticate")
    c.ack_bye(callid, 1, ftag, ok)
    c.close()


def test_bad_setting_refuses_start(make_daemon):
    with pytest.raises(RuntimeError, match="sip_test_auth must be user:password"):
        make_daemon(env={"TRUNKLINE_SIP_TEST_POLICY": "answer",
                         "TRUNKLINE_SIP_TEST_AUTH": "nocolon"})

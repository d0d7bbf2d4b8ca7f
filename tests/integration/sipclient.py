"""A small SIP UAC for the inbound-call tests: a carrier's INVITE over TCP, TLS or UDP, with
SDP we choose (plain or SDES SRTP), ACK, re-INVITE, BYE, and the daemon's own requests
(its BYE) answered. Every wait is on a message with a deadline, never a sleep."""
import base64
import os
import re
import socket
import ssl
import time

DEADLINE = 20.0


class Msg:
    def __init__(self, raw):
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        self.first = lines[0]
        m = re.match(r"SIP/2\.0 (\d{3}) ", self.first)
        self.code = int(m.group(1)) if m else None
        self.method = None if m else self.first.split(" ", 1)[0]
        self.hdrs = [(n.strip().lower(), v.strip()) for n, _, v in
                     (ln.partition(":") for ln in lines[1:])]
        self.raw = raw

    def get(self, name):
        for n, v in self.hdrs:
            if n == name.lower():
                return v
        return None

    def all(self, name):
        return [v for n, v in self.hdrs if n == name.lower()]

    @property
    def text(self):
        return self.body.decode(errors="replace")


class SipClient:
    """One dialog at a time; transport "tcp", "tls" or "udp". source: the local address to
    send from (a carrier on another loopback address, 127.0.0.x). Behind a record-routing
    proxy (a 2xx with Record-Route) the dialog's requests follow the route set to the
    remote target (RFC 3261 §12.1.2), as a carrier's UA does."""

    def __init__(self, port, transport="tcp", host="127.0.0.1", source=None):
        self.tp = transport
        self.dest = (host, port)
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((source or "127.0.0.1", 0))
        else:
            raw = socket.create_connection(self.dest, timeout=DEADLINE,
                                           source_address=(source, 0) if source else None)
            if transport == "tls":
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE  # the daemon's self-made certificate
                raw = ctx.wrap_socket(raw, server_hostname="gw.test")
            self.sock = raw
        self.sock.settimeout(DEADLINE)
        self.local = self.sock.getsockname()
        self.lhost = bracket(self.local[0])
        self.dhost = bracket(host)
        self.buf = b""
        self.cseq = 0
        self.call_id = None
        self.ftag = None
        self.to_hdr = None
        self.inbox = []
        self.route = []

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- wire ----------------------------------------------------------------------
    def send(self, data):
        if self.tp == "udp":
            self.sock.sendto(data, self.dest)
        else:
            self.sock.sendall(data)

    def _read_one(self, deadline):
        if self.tp == "udp":
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            return Msg(self.sock.recv(65535))
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = self.buf[:i]
                m = re.search(rb"\r\n(?:Content-Length|l) *: *(\d+)", head, re.I)
                n = int(m.group(1)) if m else 0
                if len(self.buf) >= i + 4 + n:
                    raw, self.buf = self.buf[:i + 4 + n], self.buf[i + 4 + n:]
                    return Msg(raw)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no SIP message")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65535)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk

    def recv(self, want, timeout=DEADLINE):
        """Next message matching want(msg); requests from the daemon (BYE) that are not
        wanted are kept in self.inbox; 100 Trying is skipped."""
        deadline = time.monotonic() + timeout
        for i, m in enumerate(self.inbox):
            if want(m):
                return self.inbox.pop(i)
        while True:
            m = self._read_one(deadline)
            if want(m):
                return m
            if m.method:
                self.inbox.append(m)

    def response(self, method, timeout=DEADLINE, provisional=False):
        def want(m):
            return (m.code is not None and (provisional or m.code >= 200) and m.code != 100
                    and (m.get("cseq") or "").endswith(method))
        return self.recv(want, timeout)

    # -- requests ------------------------------------------------------------------
    def via(self, branch):
        return "SIP/2.0/%s %s:%d;branch=z9hG4bK%s;rport" % (
            self.tp.upper(), self.lhost, self.local[1], branch)

    def request(self, method, ruri, body=b"", extra="", to=None, cseq=None, branch=None,
                ctype="application/sdp"):
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        branch = branch or os.urandom(6).hex()
        if method == "INVITE":
            self.invite_branch = branch
        ct = "Content-Type: %s\r\n" % ctype if body and ctype else ""
        extra = self.route_hdr() + extra
        msg = ("%s %s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\n"
               "From: <sip:carrier@%s>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n"
               "Contact: <sip:carrier@%s:%d;transport=%s>\r\n%s%sContent-Length: %d\r\n\r\n" % (
                   method, ruri, self.via(branch), self.lhost, self.ftag,
                   to or self.to_hdr, self.call_id, cseq, method, self.lhost, self.local[1],
                   self.tp, extra, ct, len(body))).encode() + body
        self.send(msg)
        return cseq

    def invite(self, user, sdp, extra=""):
        """Sends the INVITE; returns the final response (provisionals are skipped)."""
        self.invite_send(user, sdp, extra)
        return self.invite_final()

    def invite_send(self, user, sdp, extra=""):
        self.user = user
        self.call_id = os.urandom(8).hex() + "@carrier"
        self.ftag = os.urandom(4).hex()
        self.ruri = "sip:%s@%s:%d;transport=%s" % (user, self.dhost, self.dest[1], self.tp)
        self.to_hdr = "<sip:%s@%s>" % (user, self.dhost)
        self.invite_to = self.to_hdr
        self.route = []
        self.invite_cseq = self.request("INVITE", self.ruri, sdp.encode() if sdp else b"",
                                        extra)

    def invite_final(self):
        r = self.response("INVITE")
        if r.code < 300:
            tag = re.search(r";tag=([^;>\s]+)", r.get("to")).group(1)
            self.to_hdr = "<sip:%s@%s>;tag=%s" % (self.user, self.dhost, tag)
            rr = [v.strip() for f in r.all("record-route") for v in f.split(",")]
            if rr:  # a proxy stays in the path: Route = Record-Route reversed, R-URI = Contact
                self.route = list(reversed(rr))
                self.ruri = re.search(r"<([^>]+)>", r.get("contact")).group(1)
        return r

    def route_hdr(self):
        return "".join("Route: %s\r\n" % v for v in self.route)

    def cancel(self):
        """CANCEL the pending INVITE (RFC 3261 §9.1: its branch, Request-URI, Call-ID, From,
        To and CSeq number); returns the CANCEL's response. The INVITE's 487 follows: take
        it with invite_final() and ack_failure() it."""
        self.request("CANCEL", self.ruri, to=self.invite_to, cseq=self.invite_cseq,
                     branch=self.invite_branch)
        return self.response("CANCEL")

    def ack_failure(self, r):
        """ACK for a non-2xx final: same branch as the INVITE, To with the response's tag
        (RFC 3261 §17.1.1.3)."""
        saved = (self.to_hdr, self.cseq)
        self.to_hdr, self.cseq = r.get("to"), self.invite_cseq
        self.ack(branch=self.invite_branch)
        self.to_hdr, self.cseq = saved

    def ack(self, sdp=None, branch=None):
        branch = branch or os.urandom(6).hex()
        body = sdp.encode() if sdp else b""
        ct = "Content-Type: application/sdp\r\n" if body else ""
        self.send(("ACK %s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\n"
                   "From: <sip:carrier@%s>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d ACK\r\n"
                   "%s%sContent-Length: %d\r\n\r\n" % (
                       self.ruri, self.via(branch), self.lhost, self.ftag, self.to_hdr,
                       self.call_id, self.cseq, self.route_hdr(), ct, len(body))).encode() + body)

    def reinvite(self, sdp):
        self.request("INVITE", self.ruri, sdp.encode())
        r = self.response("INVITE")
        if r.code < 300:
            self.ack()
        return r

    def info(self, ctype, body, extra=""):
        """An in-dialog INFO (RFC 6086); returns its final response."""
        self.request("INFO", self.ruri, body.encode(), extra, ctype=ctype)
        return self.response("INFO")

    def bye(self):
        self.request("BYE", self.ruri)
        return self.response("BYE")

    def answer_request(self, m, code=200):
        # every Via, in order (RFC 3261 §8.2.6.2): behind a proxy the answer must find its
        # way back through it
        hdrs = "".join("%s: %s\r\n" % (n, v) for n in ("via", "from", "to", "call-id", "cseq")
                       for v in (m.all(n) if n == "via" else [m.get(n)]))
        self.send(("SIP/2.0 %d OK\r\n%sContent-Length: 0\r\n\r\n" % (code, hdrs)).encode())

    def wait_bye(self, timeout=DEADLINE):
        m = self.recv(lambda m: m.method == "BYE", timeout)
        self.answer_request(m)
        return m


def bracket(host):
    """An IPv6 literal as a SIP URI host (RFC 3261 §25.1 IPv6reference)."""
    return "[%s]" % host if ":" in host else host


def sdp_offer(port, srtp_key=None, direction="sendrecv", codecs=(0,), ip="127.0.0.1",
              proto=None, suite="AES_CM_128_HMAC_SHA1_80", tag=1):
    """An audio offer (or answer) at ip:port (IPv4 or IPv6: c=IN IP4/IP6); srtp_key (30 bytes)
    makes it RTP/SAVP with one a=crypto line (tag, suite)."""
    names = {0: "PCMU/8000", 8: "PCMA/8000"}
    proto = proto or ("RTP/SAVP" if srtp_key else "RTP/AVP")
    fmts = " ".join(str(c) for c in codecs) + " 101"
    at = "IP6" if ":" in ip else "IP4"
    lines = ["v=0", "o=- 1 1 IN %s %s" % (at, ip), "s=-", "c=IN %s %s" % (at, ip), "t=0 0",
             "m=audio %d %s %s" % (port, proto, fmts)]
    lines += ["a=rtpmap:%d %s" % (c, names[c]) for c in codecs]
    lines += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20"]
    if srtp_key:
        lines.append("a=crypto:%d %s inline:%s"
                     % (tag, suite, base64.b64encode(srtp_key).decode()))
    lines.append("a=%s" % direction)
    return "\r\n".join(lines) + "\r\n"


def parse_answer(body):
    """(ip, port, direction, codec pt, srtp key or None) from an SDP answer."""
    text = body.decode() if isinstance(body, bytes) else body
    ip = re.search(r"c=IN IP[46] (\S+)", text).group(1)
    m = re.search(r"m=audio (\d+) (\S+) (\d+)", text)
    d = re.search(r"a=(sendrecv|sendonly|recvonly|inactive)", text)
    k = re.search(r"a=crypto:\d+ (\S+) inline:([A-Za-z0-9+/=]+)", text)
    key = base64.b64decode(k.group(2)) if k else None
    return (ip, int(m.group(1)), d.group(1) if d else "sendrecv", int(m.group(3)), key,
            k.group(1) if k else None)


def parse_cryptos(body):
    """{tag: (suite, key)} of every a=crypto line in an SDP body."""
    text = body.decode() if isinstance(body, bytes) else body
    return {int(t): (su, base64.b64decode(k)) for t, su, k in
            re.findall(r"a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)", text)}

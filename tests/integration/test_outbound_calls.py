"""Outbound calls (issue 10): POST /v1/calls places a call through the number's own trunk
and bridges it to the agent. The carrier is real: SIPp UAS scenarios
(tests/integration/sipp/out_*.xml) found through dnsserver.py by RFC 3263, a Python UAS
where SIPp cannot check what we need (Proxy-Authorization, SHA-256, TLS, SRTP media).

Every wait is for a condition with a deadline (the call's status, a process exit, a
message); no timing thresholds."""
import hashlib
import json
import os
import random
import re
import socket
import threading
import time

import pytest

import dnsserver
from conftest import free_port
from rtpclient import RtpClient, echoed, known_sequence
from sipclient import parse_answer, parse_cryptos, sdp_offer
from test_sip_uac import PyUas, digest_ok, make_ca, parse, response
from test_sip_uac import sipp  # noqa: F401 (fixture)

NUMBER = "+493012345678"
CALLEE = "+4915112345678"
DEADLINE = 30.0


def wait_for(pred, what, timeout=DEADLINE):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = pred()
        if last:
            return last
        threading.Event().wait(0.05)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


@pytest.fixture
def dns():
    started = []

    def start(zone):
        s = dnsserver.start(zone)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def zone_for(*ports, tp="udp", name="carrier.test"):
    """SRV for the trunk's transport, one target per UAS port (priority order)."""
    srv = {"udp": "_sip._udp.", "tcp": "_sip._tcp.", "tls": "_sips._tcp."}[tp] + name
    z = {srv: {"SRV": [[10 * (i + 1), 0, p, "uas%d.%s" % (i, name)] for i, p in enumerate(ports)]},
         name: {"A": ["127.0.0.1"]}}
    for i, _ in enumerate(ports):
        z["uas%d.%s" % (i, name)] = {"A": ["127.0.0.1"]}
    return z


def gateway(make_daemon, dns_srv, extra=None):
    """A daemon whose SIP lookups go to dns_srv; RTP ports in a test range away from the
    default 10000-20000 (a benchmark may hold thousands of those on the same host)."""
    base = 21000 + random.randrange(45) * 200
    # no drain period: a test that ends while its call still rings stops at once (the
    # drain itself is test_hardening's)
    env = {"TRUNKLINE_SIP_DNS_SERVERS": "127.0.0.1:%d" % dns_srv.port,
           "TRUNKLINE_SIP_T1_MS": "100", "TRUNKLINE_DRAIN_TIMEOUT_S": "0",
           "TRUNKLINE_RTP_PORT_MIN": str(base), "TRUNKLINE_RTP_PORT_MAX": str(base + 199)}
    env.update(extra or {})
    return make_daemon(env=env)


def echo_agent(d):
    r = d.api("GET", "/v1/agents")
    assert r.status_code == 200, r.text
    return [a for a in r.json()["data"] if a.get("builtin") == "echo"][0]["id"]


def import_number(d, address="carrier.test", transport="udp", media="disabled", username=None,
                  password=None, agent=True, number=NUMBER, headers=None, number_format=None):
    ob = {"address": address, "transport": transport, "media_encryption": media}
    if username:
        ob["username"], ob["password"] = username, password
    if headers:
        ob["headers"] = headers
    if number_format:
        ob["number_format"] = number_format
    body = {"number": number, "outbound_trunk": ob}
    if agent:
        body["agent_id"] = echo_agent(d)
    r = d.api("POST", "/v1/phone-numbers", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def place(d, to=CALLEE, frm=NUMBER, **kw):
    body = {"from": frm, "to": to}
    body.update(kw)
    r = d.api("POST", "/v1/calls", json=body)
    assert r.status_code == 201, r.text
    c = r.json()
    assert r.headers["Location"] == "/v1/calls/" + c["id"]
    return c


def call(d, cid):
    r = d.api("GET", "/v1/calls/" + cid)
    assert r.status_code == 200, r.text
    return r.json()


def status_is(d, cid, *want):
    c = call(d, cid)
    return c if c["status"] in want else None


def branches(msgs):
    return {re.search(r"^Via: .*;branch=([^;\s]+)", m, re.M).group(1) for m in msgs}


def events(d, pid):
    r = d.api("GET", "/v1/phone-numbers/%s/events" % pid)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def event_of(d, pid, code):
    return wait_for(lambda: next((e for e in events(d, pid) if e["code"] == code), None),
                    "event " + code)


# ---- the call itself: SIPp as the carrier ----

@pytest.mark.parametrize("tp,flag,fmt", [("udp", "u1", None), ("tcp", "t1", "no_plus")])
def test_answered_then_api_hangup(make_daemon, dns, sipp, tp, flag, fmt):  # noqa: F811
    """The INVITE as the carrier gets it (Request-URI, From, To, the trunk's and the call's
    headers, our offer), the answer, and the API's hang-up (BYE)."""
    s = sipp("out_answer.xml", flag)
    d = gateway(make_daemon, dns(zone_for(s.port, tp=tp)))
    pid = import_number(d, transport=tp, number_format=fmt,
                        headers=[{"name": "X-Account", "value": "4711"}])
    c = place(d, headers=[{"name": "X-Campaign", "value": "spring"}])
    assert c["status"] == "queued" and c["direction"] == "outbound", c
    assert c["from"] == NUMBER and c["to"] == CALLEE and c["number_id"] == pid
    live = wait_for(lambda: status_is(d, c["id"], "in_progress"), "in_progress")
    assert live["answered_at"] and live["final_status"] == 200 and live["sip_reason"] == "OK"
    assert live["codec"] == "PCMU" and live["media_encryption"] == "rtp"
    r = d.api("POST", "/v1/calls/%s/hangup" % c["id"])
    assert r.status_code == 200, r.text
    end = r.json()
    assert end["status"] == "completed" and end["end_reason"] == "api_hangup", end
    assert s.wait() == 0  # SIPp saw the INVITE, our ACK, our BYE, in order
    inv = s.messages("INVITE")[0]
    me, them = (NUMBER[1:], CALLEE[1:]) if fmt == "no_plus" else (NUMBER, CALLEE)
    assert inv.startswith("INVITE sip:%s@carrier.test SIP/2.0" % them), inv
    assert re.search(r"^From: <sip:%s@carrier\.test>;tag=" % re.escape(me), inv, re.M), inv
    assert re.search(r"^To: <sip:%s@carrier\.test>\r?$" % re.escape(them), inv, re.M), inv
    assert re.search(r"^X-Account: 4711\r?$", inv, re.M), inv
    assert re.search(r"^X-Campaign: spring\r?$", inv, re.M), inv
    assert "m=audio " in inv and "RTP/AVP" in inv and "a=crypto" not in inv
    assert live["sip_call_id"] and re.search(r"^Call-ID: %s" % live["sip_call_id"], inv, re.M)
    # hanging up twice is no error: the call as it ended
    r = d.api("DELETE", "/v1/calls/" + c["id"])
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text


def test_digest_401_md5_qop(make_daemon, dns, sipp):  # noqa: F811
    """401 with qop=auth for the trunk's realm: answered once, SIPp verifies the answer
    (a wrong one would get 403), then the call is answered."""
    s = sipp("out_auth401.xml")
    d = gateway(make_daemon, dns(zone_for(s.port)))
    import_number(d, username="acme", password="s3cret")
    c = place(d)
    wait_for(lambda: status_is(d, c["id"], "in_progress"), "in_progress")
    assert d.api("POST", "/v1/calls/%s/hangup" % c["id"]).status_code == 200
    assert s.wait() == 0
    invs = s.messages("INVITE")
    assert len(invs) == 2 and "Authorization: Digest" in invs[1], invs
    assert "s3cret" not in d.log_text()


def digest_2069(method, uri, user, realm, password, nonce):
    h1 = hashlib.md5(("%s:%s:%s" % (user, realm, password)).encode()).hexdigest()
    h2 = hashlib.md5(("%s:%s" % (method, uri)).encode()).hexdigest()
    return hashlib.md5(("%s:%s:%s" % (h1, nonce, h2)).encode()).hexdigest()


def test_digest_407_without_qop(make_daemon, dns, sipp):  # noqa: F811
    """407 without qop (the RFC 2069 form): Proxy-Authorization with the right response,
    checked here from SIPp's log (its verifyauth reads only Authorization)."""
    s = sipp("out_auth407.xml")
    d = gateway(make_daemon, dns(zone_for(s.port)))
    import_number(d, username="acme", password="s3cret")
    c = place(d)
    wait_for(lambda: status_is(d, c["id"], "in_progress"), "in_progress")
    assert d.api("DELETE", "/v1/calls/" + c["id"]).status_code == 200
    assert s.wait() == 0
    retry = s.messages("INVITE")[1]
    m = re.search(r"^Proxy-Authorization: Digest (.*)$", retry, re.M)
    assert m, retry
    p = dict(re.findall(r'(\w+)="?([^",]*)"?', m.group(1)))
    assert p["username"] == "acme" and p["realm"] == "carrier.test", p
    assert "qop" not in p and "nc" not in p, p
    uri = "sip:%s@carrier.test" % CALLEE
    assert p["uri"] == uri
    assert p["response"] == digest_2069("INVITE", uri, "acme", "carrier.test", "s3cret",
                                        "9b1c0d2e3f405162")
    # CSeq + 1, same Call-ID (RFC 3261 §22.2)
    first = s.messages("INVITE")[0]
    cid = re.search(r"^Call-ID: (\S+)", first, re.M).group(1)
    assert re.search(r"^Call-ID: %s" % re.escape(cid), retry, re.M)
    assert call(d, c["id"])["sip_call_id"] == cid


def test_wrong_password_fails_with_credentials_hint(make_daemon, dns, sipp):  # noqa: F811
    s = sipp("out_authwrong.xml")
    d = gateway(make_daemon, dns(zone_for(s.port)))
    pid = import_number(d, username="acme", password="not-the-password")
    c = place(d)
    end = wait_for(lambda: status_is(d, c["id"], "failed"), "failed")
    assert end["final_status"] == 401 and end["end_reason"] == "auth_failed", end
    assert "password" in end["hint"] and "outbound_trunk.password" in end["hint"], end
    assert s.wait() == 0
    assert len(s.messages("INVITE")) == 2  # answered once, never twice
    ev = event_of(d, pid, "outbound_auth_failed")
    assert ev["hint"] == end["hint"] and ev["details"]["status"] == 401
    assert ev["details"]["call_id"] == c["id"]
    assert "not-the-password" not in d.log_text()


def test_busy(make_daemon, dns, sipp):  # noqa: F811
    s = sipp("out_busy.xml")
    d = gateway(make_daemon, dns(zone_for(s.port)))
    pid = import_number(d)
    c = place(d)
    end = wait_for(lambda: status_is(d, c["id"], "busy"), "busy")
    assert end["final_status"] == 486 and end["sip_reason"] == "Busy Here", end
    assert end["answered_at"] is None and end["ended_at"]
    assert s.wait() == 0
    assert event_of(d, pid, "outbound_busy")["details"]["status"] == 486


def test_not_found_names_the_number_format(make_daemon, dns, sipp):  # noqa: F811
    s = sipp("out_404.xml")
    d = gateway(make_daemon, dns(zone_for(s.port)))
    pid = import_number(d)
    c = place(d)
    end = wait_for(lambda: status_is(d, c["id"], "failed"), "failed")
    assert end["final_status"] == 404 and end["end_reason"] == "destination_invalid", end
    assert CALLEE in end["hint"] and "number_format" in end["hint"], end
    assert s.wait() == 0
    event_of(d, pid, "outbound_destination_invalid")


def test_no_answer_sends_cancel(make_daemon, dns, sipp):  # noqa: F811
    s = sipp("out_noanswer.xml")
    d = gateway(make_daemon, dns(zone_for(s.port)))
    pid = import_number(d)
    c = place(d, ringing_timeout_s=1)
    wait_for(lambda: status_is(d, c["id"], "ringing", "no_answer"), "ringing")
    end = wait_for(lambda: status_is(d, c["id"], "no_answer"), "no_answer")
    assert end["end_reason"] == "no_answer" and end["answered_at"] is None, end
    assert "1 s" in end["hint"], end
    assert s.wait() == 0  # SIPp saw the CANCEL and the ACK for its 487
    assert len(s.messages("CANCEL")) == 1
    # the 487 lands in the record once it came
    wait_for(lambda: call(d, c["id"])["final_status"] == 487, "final_status 487")
    event_of(d, pid, "outbound_no_answer")


def test_early_media_183_then_bare_200(make_daemon, dns, sipp):  # noqa: F811
    """183 with SDP rings the call; the 200 without SDP is answered with the 183's."""
    s = sipp("out_early.xml")
    d = gateway(make_daemon, dns(zone_for(s.port)))
    import_number(d)
    c = place(d)
    live = wait_for(lambda: status_is(d, c["id"], "in_progress"), "in_progress")
    assert live["codec"] == "PCMU", live
    assert d.api("POST", "/v1/calls/%s/hangup" % c["id"]).status_code == 200
    assert s.wait() == 0


def test_503_then_second_srv_target(make_daemon, dns, sipp):  # noqa: F811
    """RFC 3263 §4.3: a 503 from the first SRV target moves the INVITE to the next."""
    first = sipp("out_503.xml")
    second = sipp("out_answer.xml")
    d = gateway(make_daemon, dns(zone_for(first.port, second.port)))
    import_number(d)
    c = place(d)
    wait_for(lambda: status_is(d, c["id"], "in_progress"), "in_progress")
    assert d.api("POST", "/v1/calls/%s/hangup" % c["id"]).status_code == 200
    assert first.wait() == 0 and second.wait() == 0
    # one INVITE each (UDP retransmissions of the first carry its branch again)
    assert len(branches(first.messages("INVITE"))) == 1
    assert len(branches(second.messages("INVITE"))) == 1
    assert branches(first.messages("INVITE")) != branches(second.messages("INVITE"))


# ---- a Python TLS UAS: certificates, a SHA-256 challenge, SDES and SRTP media ----

class Carrier(PyUas):
    """PyUas whose handler also gets the body: handler(start, hdrs, body) -> [bytes]."""

    def handle(self, data, send):
        start, hdrs, body = parse(data)
        self.seen.append((start, hdrs))
        for out in self.handler(start, hdrs, body):
            send(out)


def reply(start, hdrs, code, extra="", body=b"", port=None):
    r = response(start, hdrs, code, extra).decode()
    head = r[:r.index("Content-Length:")]
    if port is not None and code.startswith("200") and start.startswith("INVITE"):
        head = head.replace("<sip:uas@127.0.0.1>",
                            "<sip:uas@127.0.0.1:%d;transport=tls>" % port)
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body


def tls_gateway(make_daemon, dns, port, ca=None):
    z = zone_for(port, tp="tls")
    extra = {"TRUNKLINE_SIP_TLS_CA_FILE": ca} if ca else {}
    return gateway(make_daemon, dns(z), extra)


def test_tls_sha256_sdes_srtp_echo(make_daemon, dns, tmp_path):
    """TLS verified against the trunk's address, a SHA-256 digest challenge, our RTP/SAVP
    offer answered with SDES, and SRTP both ways: the echo agent's audio comes back."""
    ctx, ca = make_ca(str(tmp_path), ["DNS:carrier.test", "IP:127.0.0.1"])
    rtp = RtpClient()
    state = {}

    def h(start, hdrs, body):
        method = start.split(" ")[0]
        if method == "INVITE":
            cred = hdrs.get("authorization")
            if not cred:
                return [reply(start, hdrs, "401 Unauthorized",
                              'WWW-Authenticate: Digest realm="carrier.test", nonce="5e6f71", '
                              'qop="auth", algorithm=SHA-256\r\n')]
            ok, d = digest_ok(cred[0], "INVITE", "s3cret", "SHA-256")
            state["cred"] = d
            if not ok:
                return [reply(start, hdrs, "403 Forbidden")]
            offer = body.decode()
            state["offer"] = offer
            gw_ip, gw_port, _, _, _, _ = parse_answer(offer)
            suite, gw_key = parse_cryptos(offer)[1]
            ours = os.urandom(30)
            rtp.set_remote(gw_ip, gw_port)
            rtp.set_srtp(ours, gw_key, suite)
            ans = sdp_offer(rtp.port, srtp_key=ours, suite=suite, tag=1).encode()
            return [reply(start, hdrs, "200 OK", body=ans, port=uas.port)]
        if method == "BYE":
            state["bye"] = True
            return [reply(start, hdrs, "200 OK")]
        return []

    uas = Carrier(h, ctx)
    try:
        d = tls_gateway(make_daemon, dns, uas.port, ca)
        import_number(d, transport="tls", media="required", username="acme", password="s3cret")
        c = place(d)
        live = wait_for(lambda: status_is(d, c["id"], "in_progress"), "in_progress")
        assert live["media_encryption"] == "srtp" and live["codec"] == "PCMU", live
        assert state["cred"]["algorithm"] == "SHA-256" and state["cred"]["realm"] == "carrier.test"
        assert "m=audio" in state["offer"] and "RTP/SAVP" in state["offer"]
        frames = known_sequence(25, seed=3)
        rtp.run(frames)
        assert echoed(frames, rtp.audio_bytes()), "no SRTP echo"
        r = d.api("POST", "/v1/calls/%s/hangup" % c["id"])
        assert r.status_code == 200 and r.json()["status"] == "completed", r.text
        wait_for(lambda: state.get("bye"), "BYE over the TLS connection")
    finally:
        uas.stop()
        rtp.close()
    assert not uas.errors, uas.errors
    assert "s3cret" not in d.log_text()


@pytest.mark.parametrize("case", ["wrong-name", "untrusted"])
def test_tls_certificate_refused(make_daemon, dns, tmp_path, case):
    names = ["DNS:other.example"] if case == "wrong-name" else ["DNS:carrier.test"]
    ctx, ca = make_ca(str(tmp_path), names)
    uas = Carrier(lambda s, h, b: [reply(s, h, "200 OK")], ctx)
    try:
        d = tls_gateway(make_daemon, dns, uas.port, ca if case == "wrong-name" else None)
        pid = import_number(d, transport="tls", media="required")
        c = place(d)
        end = wait_for(lambda: status_is(d, c["id"], "failed"), "failed")
    finally:
        uas.stop()
    assert end["end_reason"] == "trunk_unreachable" and "TLS" in end["hint"], end
    assert "carrier.test" in end["hint"]
    ev = event_of(d, pid, "trunk_unreachable")
    assert ev["details"]["step"] == "tls", ev
    assert not uas.seen  # nothing was sent: not in the clear, not to a wrong host


# ---- every other failure: a status, an event and a hint that names what to change ----

@pytest.mark.parametrize("code,status,ev,words", [
    ("403 Forbidden", "failed", "outbound_forbidden", "caller ID"),
    ("488 Not Acceptable Here", "failed", "media_encryption_mismatch",
     "media_encryption to allowed"),
    ("503 Service Unavailable", "failed", "trunk_unreachable", "503"),
    ("408 Request Timeout", "failed", "trunk_unreachable", "408"),
    ("480 Temporarily Unavailable", "no_answer", "outbound_no_answer", "480"),
    ("600 Busy Everywhere", "busy", "outbound_busy", "busy"),
])
def test_final_responses(make_daemon, dns, code, status, ev, words):
    uas = PyUas(lambda s, h: [response(s, h, code)] if s.startswith("INVITE") else [])
    try:
        d = gateway(make_daemon, dns(zone_for(uas.port)))
        pid = import_number(d, media="required" if code.startswith("488") else "disabled")
        c = place(d)
        end = wait_for(lambda: status_is(d, c["id"], status), status)
    finally:
        uas.stop()
    assert end["final_status"] == int(code[:3]) and end["sip_reason"] == code[4:], end
    assert words in end["hint"], end
    e = event_of(d, pid, ev)
    assert e["details"]["status"] == int(code[:3]) and e["hint"] == end["hint"], e


def test_unreachable_steps(make_daemon, dns):
    """DNS (no such name), connect (TCP refused), timeout (UDP to a silent port): each named
    in the event's details and in the hint."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    closed = free_port()
    zone = zone_for(silent.getsockname()[1], tp="udp", name="silent.test")
    zone.update(zone_for(closed, tp="tcp", name="refused.test"))
    d = gateway(make_daemon, dns(zone), {"TRUNKLINE_SIP_T1_MS": "50"})
    try:
        cases = [("nxdomain.test", "udp", "dns", "does not resolve"),
                 ("refused.test", "tcp", "connect", "No TCP connection"),
                 ("silent.test", "udp", "timeout", "never answered")]
        for i, (address, tp, step, words) in enumerate(cases):
            pid = import_number(d, address=address, transport=tp, number="+4930123456%02d" % i)
            c = place(d, frm="+4930123456%02d" % i)
            end = wait_for(lambda: status_is(d, c["id"], "failed"), "failed " + step)
            assert end["end_reason"] == "trunk_unreachable" and words in end["hint"], end
            e = event_of(d, pid, "trunk_unreachable")
            assert e["details"]["step"] == step, e
    finally:
        silent.close()


def test_agent_unreachable_places_no_invite(make_daemon, dns):
    """The agent leg opens first: when it cannot, no INVITE goes out."""
    uas = PyUas(lambda s, h: [response(s, h, "200 OK")] if s.startswith("INVITE") else [])
    try:
        d = gateway(make_daemon, dns(zone_for(uas.port)),
                    {"TRUNKLINE_AGENT_ALLOW_NETWORKS": "127.0.0.0/8",
                     "TRUNKLINE_AGENT_INSECURE_HOSTS": "127.0.0.1"})
        r = d.api("POST", "/v1/agents", json={"name": "gone", "kind": "websocket",
                                              "url": "ws://127.0.0.1:%d/" % free_port()})
        assert r.status_code == 201, r.text
        pid = import_number(d)
        c = place(d, agent_id=r.json()["id"])
        end = wait_for(lambda: status_is(d, c["id"], "failed"), "failed")
        assert end["end_reason"] == "agent_unreachable" and "agent" in end["hint"], end
        assert event_of(d, pid, "agent_unreachable")["details"]["step"] == "agent"
    finally:
        uas.stop()
    assert not [s for s, _ in uas.seen if s.startswith("INVITE")]


def test_shutdown_while_ringing(make_daemon, dns):
    """SIGTERM while an outbound call rings, without a drain period: CANCEL on the wire, a
    clean exit (under ASan also without leaks: the early session lets the call go), the
    record ended."""
    def h(start, hdrs):
        if start.startswith("INVITE"):
            return [response(start, hdrs, "180 Ringing")]
        if start.startswith("CANCEL"):
            return [response(start, hdrs, "200 OK")]  # and never a 487: the stack stops
        return []
    uas = PyUas(h)
    try:
        d = gateway(make_daemon, dns(zone_for(uas.port)), {"TRUNKLINE_DRAIN_TIMEOUT_S": "0"})
        import_number(d)
        c = place(d)
        wait_for(lambda: status_is(d, c["id"], "ringing"), "ringing")
        assert d.stop() == 0, d.log_text()[-3000:]
        wait_for(lambda: [s for s, _ in uas.seen if s.startswith("CANCEL")], "CANCEL")
        d.start()
        end = call(d, c["id"])
        assert end["end_reason"] == "shutdown" and end["status"] == "failed", end
    finally:
        uas.stop()



def test_drain_refuses_new_placements_and_lets_the_ringing_call_go_on(make_daemon, dns):
    """SIGTERM with a drain period: POST /v1/calls gets 503 shutting_down with Retry-After
    (the caller places it through another node), while the call already ringing carries on
    and keeps the daemon up until it is hung up."""
    import signal

    def h(start, hdrs):
        if start.startswith("INVITE"):
            return [response(start, hdrs, "180 Ringing")]
        if start.startswith("CANCEL"):
            return [response(start, hdrs, "200 OK"),
                    response(start.replace("CANCEL", "INVITE"), dict(
                        hdrs, cseq=[hdrs["cseq"][0].replace("CANCEL", "INVITE")]),
                        "487 Request Terminated")]
        return []
    uas = PyUas(h)
    try:
        d = gateway(make_daemon, dns(zone_for(uas.port)), {"TRUNKLINE_DRAIN_TIMEOUT_S": "120"})
        import_number(d)
        first = place(d)
        wait_for(lambda: status_is(d, first["id"], "ringing"), "ringing")
        d.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "core drain" in d.log_text(), "the drain's log line")
        r = d.api("POST", "/v1/calls", json={"from": NUMBER, "to": CALLEE})
        assert r.status_code == 503 and r.json()["error"]["code"] == "shutting_down", r.text
        assert r.headers.get("Retry-After") == "30", r.headers
        assert d.proc.poll() is None and status_is(d, first["id"], "ringing")
        assert d.api("POST", "/v1/calls/%s/hangup" % first["id"]).status_code == 200
        assert d.proc.wait(30) == 0
    finally:
        uas.stop()


# ---- the API: who may place a call, and what the request must say ----

def test_place_refusals_name_the_field(make_daemon, dns):
    d = gateway(make_daemon, dns({}))
    pid = import_number(d, agent=False)

    def refused(body, status, code, field=None, token=None):
        r = d.api("POST", "/v1/calls", json=body, token=token)
        assert r.status_code == status, r.text
        e = r.json()["error"]
        assert e["code"] == code and (field is None or e.get("field") == field), e
        return e

    e = refused({"from": NUMBER, "to": CALLEE}, 400, "invalid_field", "agent_id")
    assert NUMBER in e["message"]
    echo = echo_agent(d)
    base = {"from": pid, "to": CALLEE, "agent_id": echo}
    refused(dict(base, to="015112345678"), 400, "invalid_field", "to")
    refused(dict(base, to=None), 400, "invalid_type", "to")
    refused({"to": CALLEE}, 400, "invalid_field", "from")
    refused(dict(base, **{"from": "+4930999999"}), 400, "invalid_field", "from")
    refused(dict(base, **{"from": "pn_00000000000000000000000000"}), 400, "invalid_field", "from")
    refused(dict(base, agent_id="ag_00000000000000000000000000"), 400, "invalid_field",
            "agent_id")
    refused(dict(base, headers=[{"name": "P-Asserted-Identity", "value": "x"}]), 400,
            "invalid_field", "headers[0].name")
    refused(dict(base, headers=[{"name": "X-A", "value": "1"}, {"name": "x-a", "value": "2"}]),
            400, "invalid_field", "headers[1].name")
    refused(dict(base, ringing_timeout_s=0), 400, "invalid_field", "ringing_timeout_s")
    refused(dict(base, ringing_timeout_s=601), 400, "invalid_field", "ringing_timeout_s")
    refused(dict(base, max_duration_s="60"), 400, "invalid_type", "max_duration_s")
    refused(dict(base, parameters={"k": 1}), 400, "invalid_type")
    refused(dict(base, callback="https://x"), 400, "unknown_field")
    # roles: a member reads, never places
    r = d.api("POST", "/v1/tokens", json={"role": "member", "name": "reader"})
    assert r.status_code == 201, r.text
    refused(base, 403, "forbidden", token=r.json()["token"])
    # the plan gate of SIP imports
    r = d.api("PATCH", "/v1/workspaces/" + d.workspace_id, json={"plan": "starter"},
              token=d.operator_token)
    assert r.status_code == 200, r.text
    refused(base, 403, "plan_required")
    # another workspace's number is no number at all
    r = d.api("POST", "/v1/workspaces", json={"name": "other", "plan": "professional"},
              token=d.operator_token)
    assert r.status_code == 201, r.text
    other = r.json()["id"]
    r = d.api("POST", "/v1/calls", params={"workspace_id": other}, json={"from": NUMBER,
              "to": CALLEE}, token=d.operator_token)
    assert r.status_code == 400 and r.json()["error"]["field"] == "from", r.text
    # unknown calls
    assert d.api("GET", "/v1/calls/ca_00000000000000000000000000").status_code == 404
    assert d.api("POST", "/v1/calls/ca_00000000000000000000000000/hangup").status_code == 404
    assert d.api("DELETE", "/v1/calls/ca_00000000000000000000000000").status_code == 404


def test_api_cancels_a_ringing_call(make_daemon, dns, sipp):  # noqa: F811
    s = sipp("out_noanswer.xml")
    d = gateway(make_daemon, dns(zone_for(s.port)))
    import_number(d)
    c = place(d)
    wait_for(lambda: status_is(d, c["id"], "ringing"), "ringing")
    r = d.api("POST", "/v1/calls/%s/hangup" % c["id"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "canceled" and r.json()["end_reason"] == "api_hangup", r.text
    assert s.wait() == 0 and len(s.messages("CANCEL")) == 1
    wait_for(lambda: call(d, c["id"])["final_status"] == 487, "final_status 487")


# ---- the CLI, one end to the other ----

def test_cli_end_to_end(make_daemon, dns, sipp):  # noqa: F811
    """numbers import → calls place --wait (answered) → calls list / show → calls hangup,
    against SIPp as the carrier; then a busy callee: --wait exits 1 and says why."""
    from test_cli import cli, ok
    s = sipp("out_answer.xml")
    busy = sipp("out_busy.xml")
    z = zone_for(s.port)
    z.update(zone_for(busy.port, name="busy.test"))
    d = gateway(make_daemon, dns(z))
    echo = echo_agent(d)
    ok(cli(d, "numbers", "import", NUMBER, "--address", "carrier.test", "--transport", "udp",
           "--media-encryption", "disabled", "--agent", echo, "--number-format", "e164"))
    p = ok(cli(d, "calls", "place", CALLEE, "--from", NUMBER, "--param", "customer=4711",
               "--header", "X-Campaign: spring", "--ringing-timeout", "20", "--wait"))
    assert re.search(r"^status:\s+in_progress$", p.stdout, re.M), p.stdout
    cid = re.search(r"^id:\s+(ca_\w+)$", p.stdout, re.M).group(1)
    p = ok(cli(d, "calls", "list"))
    header, row = p.stdout.splitlines()[:2]
    assert header.split() == ["ID", "DIRECTION", "STATUS", "FROM", "TO", "SIP", "CREATED"]
    assert cid in row and "outbound" in row and "in_progress" in row and CALLEE in row, row
    p = ok(cli(d, "calls", "show", cid, "--json"))
    assert json.loads(p.stdout)["status"] == "in_progress"
    p = ok(cli(d, "calls", "hangup", cid))
    assert re.search(r"^status:\s+completed$", p.stdout, re.M), p.stdout
    assert s.wait() == 0
    assert re.search(r"^X-Campaign: spring\r?$", s.messages("INVITE")[0], re.M)

    ok(cli(d, "numbers", "import", "+493012345699", "--address", "busy.test", "--transport",
           "udp", "--media-encryption", "disabled", "--agent", echo))
    p = cli(d, "calls", "place", CALLEE, "--from", "+493012345699", "--wait")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert re.search(r"^status:\s+busy$", p.stdout, re.M) and "486" in p.stdout, p.stdout
    assert busy.wait() == 0
    # usage errors name the flag
    p = cli(d, "calls", "place", CALLEE)
    assert p.returncode == 2 and "--from" in p.stderr, p.stderr
    p = cli(d, "calls", "place", CALLEE, "--from", NUMBER, "--param", "novalue")
    assert p.returncode == 2 and "KEY=VALUE" in p.stderr, p.stderr
    # an API refusal: the field, exit 1
    p = cli(d, "calls", "place", "0151", "--from", NUMBER)
    assert p.returncode == 1 and "to" in p.stderr, p.stderr


# ---- toll-fraud guards: every refusal answers with its error and writes an event ----

def test_destinations_outside_the_numbers_countries_and_premium_ranges(make_daemon, dns):
    d = gateway(make_daemon, dns({}))
    pid = import_number(d)
    # another country than the workspace's numbers (+49): refused, with an event
    r = d.api("POST", "/v1/calls", json={"from": NUMBER, "to": "+15551234567"})
    assert r.status_code == 403, r.text
    e = r.json()["error"]
    assert e["code"] == "destination_not_allowed" and e["field"] == "to", e
    assert "+49" in e["message"] and "outbound_prefixes" in e["message"], e
    ev = event_of(d, pid, "destination_not_allowed")
    assert ev["details"]["to"] == "+15551234567" and ev["details"]["status"] == 403, ev
    # a premium-rate range inside the allowed country: the deny list wins
    r = d.api("POST", "/v1/calls", json={"from": NUMBER, "to": "+499001234567"})
    assert r.status_code == 403 and "+49900" in r.json()["error"]["message"], r.text
    wait_for(lambda: len([x for x in events(d, pid) if x["code"] == "destination_not_allowed"])
             == 2, "two destination_not_allowed events")
    # only the operator widens the destinations
    r = d.api("PATCH", "/v1/workspaces/" + d.workspace_id, json={"outbound_prefixes": ["+1"]})
    assert r.status_code == 403, r.text
    r = d.api("PATCH", "/v1/workspaces/" + d.workspace_id, json={"outbound_prefixes": ["1"]},
              token=d.operator_token)
    assert r.status_code == 400 and r.json()["error"]["field"] == "outbound_prefixes[0]", r.text
    r = d.api("PATCH", "/v1/workspaces/" + d.workspace_id, json={"outbound_prefixes": ["+1"]},
              token=d.operator_token)
    assert r.status_code == 200 and r.json()["outbound_prefixes"] == ["+1"], r.text
    c = place(d, to="+15551234567")  # allowed now (the call itself fails: no trunk here)
    wait_for(lambda: status_is(d, c["id"], "failed"), "failed")
    place(d, to=CALLEE)  # the numbers' own country still is
    r = d.api("POST", "/v1/calls", json={"from": NUMBER, "to": "+19005551234"})
    assert r.status_code == 403, r.text  # +1900 is premium: denied all the same
    assert d.api("GET", "/v1/workspaces/" + d.workspace_id).json()["outbound_prefixes"] == ["+1"]


def test_concurrent_outbound_cap(make_daemon, dns):
    def h(start, hdrs):
        if start.startswith("INVITE"):
            return [response(start, hdrs, "180 Ringing")]
        if start.startswith("CANCEL"):
            return [response(start, hdrs, "200 OK"),
                    response(start.replace("CANCEL", "INVITE"), dict(
                        hdrs, cseq=[hdrs["cseq"][0].replace("CANCEL", "INVITE")]),
                        "487 Request Terminated")]
        return []
    uas = PyUas(h)
    try:
        d = gateway(make_daemon, dns(zone_for(uas.port)),
                    {"TRUNKLINE_OUTBOUND_CALLS_PER_WORKSPACE": "1"})
        pid = import_number(d)
        first = place(d)
        wait_for(lambda: status_is(d, first["id"], "ringing"), "ringing")
        r = d.api("POST", "/v1/calls", json={"from": NUMBER, "to": CALLEE})
        assert r.status_code == 429 and r.json()["error"]["code"] == "outbound_rate", r.text
        assert r.headers.get("Retry-After"), r.headers
        ev = event_of(d, pid, "outbound_rate")
        assert "concurrent" in ev["hint"] and ev["details"]["status"] == 429, ev
        assert d.api("POST", "/v1/calls/%s/hangup" % first["id"]).status_code == 200
        place(d)  # the first one ended: room again
    finally:
        uas.stop()


def test_outbound_calls_per_minute(make_daemon, dns):
    d = gateway(make_daemon, dns({}), {"TRUNKLINE_OUTBOUND_CALLS_PER_MINUTE": "2"})
    pid = import_number(d, address="nxdomain.test")
    for _ in range(2):
        c = place(d)
        wait_for(lambda: status_is(d, c["id"], "failed"), "failed")  # ended: not concurrent
    r = d.api("POST", "/v1/calls", json={"from": NUMBER, "to": CALLEE})
    assert r.status_code == 429 and r.json()["error"]["code"] == "outbound_rate", r.text
    assert "minute" in r.json()["error"]["message"]
    assert "per minute" in event_of(d, pid, "outbound_rate")["hint"]

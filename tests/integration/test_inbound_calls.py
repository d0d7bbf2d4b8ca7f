"""Inbound calls end to end (issue 4): a carrier's INVITE to an imported number reaches the
number's agent (the builtin echo), media flows both ways, every refusal is answered with its
status and recorded as an event, every call leaves a record.

Callers: SIPp over TCP (Twilio-style "+49…" and Telnyx-style "49…"; SIPp 3.6.1 here has no
TLS) and a small Python UAC (sipclient.py) for TLS, SRTP (it needs the keys of our 200 OK),
hold/resume and the refusals. RTP is checked by rtpclient.py byte for byte.

Synchronisation is on messages and on the API (records are written by the recorder thread,
so record checks wait for them with a deadline); the only clock is the RTP pacing."""
import os
import random
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import free_port
from rtpclient import PT_PCMA, RtpClient, echoed, known_alaw_sequence, known_sequence, pylibsrtp
from sipclient import SipClient, parse_answer, parse_cryptos, sdp_offer
from test_sip_endpoint import SIPP, SIPP_DIR, needs_sipp

NUMBER = "+493012345678"
PASSWORD = "inb0und-S3cret"
FRAMES = 50  # one second of audio


@pytest.fixture
def gw(make_daemon):
    """A daemon for calls: SIP on free ports, a short media timeout (the SIPp scenario waits
    for the daemon's BYE once the RTP client stops), RTP ports in a test range away from
    the default 10000-20000 (a benchmark may hold thousands of those on the same host)."""
    made = []

    def start(**extra):
        base = 21000 + random.randrange(45) * 200
        env = {"TRUNKLINE_RTP_PORT_MIN": str(base), "TRUNKLINE_RTP_PORT_MAX": str(base + 199),
               "TRUNKLINE_SIP_TCP_PORT": str(free_port()),
               "TRUNKLINE_SIP_TLS_PORT": str(free_port()),
               "TRUNKLINE_SIP_LISTEN": "127.0.0.1",
               "TRUNKLINE_MEDIA_TIMEOUT_S": "2",
               "TRUNKLINE_SIP_DIGEST_ALGORITHMS": "MD5,SHA-256"}
        env.update(extra)
        d = make_daemon(env=env)
        d.sip_port = int(env["TRUNKLINE_SIP_TCP_PORT"])
        d.tls_port = int(env["TRUNKLINE_SIP_TLS_PORT"])
        made.append(d)
        return d
    yield start
    for d in made:
        assert d.stop() == 0, d.log_text()[-3000:]
        log = d.log_text()
        assert PASSWORD not in log and "a=crypto" not in log and "inline:" not in log


def echo_id(d, token=None):
    r = d.api("GET", "/v1/agents", token=token)
    return [a for a in r.json()["data"] if a["name"] == "echo"][0]["id"]


def import_number(d, number=NUMBER, transport="tcp", media="disabled", agent=True,
                  inbound=True, username=None, allowed=None, token=None, latching=None):
    body = {"number": number, "label": "test"}
    if agent:
        body["agent_id"] = echo_id(d, token)
    if inbound:
        it = {"transport": transport, "media_encryption": media}
        if username:
            it["username"], it["password"] = username, PASSWORD
        if allowed:
            it["allowed_addresses"] = allowed
        if latching:
            it["rtp_latching"] = latching
        if not username and not allowed:
            it["allow_any_source"] = True  # an open trunk must be asked for (issue 11)
        body["inbound_trunk"] = it
    body["outbound_trunk"] = {"address": "sip.example.com", "transport": "tls",
                              "media_encryption": "required"}
    r = d.api("POST", "/v1/phone-numbers", json=body, token=token)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def wait_for(fn, what, timeout=15.0):
    """Polls an API condition until it holds (the recorder writes in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def event(d, pid, code):
    def find():
        r = d.api("GET", "/v1/phone-numbers/%s/events" % pid)
        assert r.status_code == 200, r.text
        return [e for e in r.json()["data"] if e["code"] == code]
    return wait_for(find, "event " + code)[0]


def call_record(d, sip_call_id, ended=True, token=None):
    def find():
        r = d.api("GET", "/v1/calls", token=token)
        assert r.status_code == 200, r.text
        return [c for c in r.json()["data"] if c["sip_call_id"] == sip_call_id
                and (not ended or c.get("ended_at"))]
    rec = wait_for(find, "call record " + sip_call_id)[0]
    # the list and the single record agree (GET /v1/calls/{id}, workspace-scoped)
    one = d.api("GET", "/v1/calls/" + rec["id"], token=token)
    assert one.status_code == 200, one.text
    if ended:
        assert one.json()["end_reason"] == rec["end_reason"], one.text
    return one.json()


def echo_call(d, transport="tcp", user=NUMBER, srtp=False, dtmf="", hold=False):
    """A whole call from the Python UAC: INVITE, RTP echo check, optional DTMF and
    hold/resume, BYE. Returns (client, rtp, 200 response)."""
    port = d.tls_port if transport == "tls" else d.sip_port
    rtp = RtpClient()
    key = os.urandom(30) if srtp else None
    sc = SipClient(port, transport)
    try:
        r = sc.invite(user, sdp_offer(rtp.port, key))
        assert r.code == 200, r.raw
        sc.ack()
        ip, rport, direction, pt, their_key, suite = parse_answer(r.body)
        assert direction == "sendrecv" and pt == 0
        rtp.set_remote(ip, rport)
        if srtp:
            assert their_key and suite == "AES_CM_128_HMAC_SHA1_80", r.text
            assert their_key != key  # fresh keys per direction (RFC 4568 §6.1)
            rtp.set_srtp(key, their_key, suite)
        else:
            assert "a=crypto" not in r.text
        frames = known_sequence(FRAMES, seed=len(user))
        rtp.run(frames, dtmf=dtmf)
        assert echoed(frames, rtp.audio_bytes()), "echo mismatch: got %d bytes" % len(
            rtp.audio_bytes())
        if dtmf:
            assert rtp.dtmf_digits() == dtmf, rtp.received[-20:]
        if hold:
            h = sc.reinvite(sdp_offer(rtp.port, key, direction="sendonly"))
            assert h.code == 200 and parse_answer(h.body)[2] == "recvonly", h.raw
            h = sc.reinvite(sdp_offer(rtp.port, key, direction="inactive"))
            assert h.code == 200 and parse_answer(h.body)[2] == "inactive", h.raw
            h = sc.reinvite(sdp_offer(rtp.port, key))
            assert h.code == 200 and parse_answer(h.body)[2] == "sendrecv", h.raw
            frames = known_sequence(20, seed=7)
            rtp.run(frames)
            assert echoed(frames, rtp.audio_bytes()), "no echo after resume"
        b = sc.bye()
        assert b.code == 200
        return sc, rtp, r
    finally:
        sc.close()
        rtp.close()


# ---- the core path ------------------------------------------------------------------

@pytest.mark.parametrize("user", [NUMBER, NUMBER[1:], "+49.30.1234-5678", "0049301234567" + "8"])
def test_tcp_echo_plain_rtp(gw, user):
    """Twilio sends "+49…", Telnyx may send "49…"; visual separators and 00 normalise."""
    d = gw()
    import_number(d)
    sc, rtp, r = echo_call(d, "tcp", user=user)
    rec = call_record(d, sc.call_id)
    assert rec["end_reason"] == "bye_received" and rec["final_status"] == 200, rec
    assert rec["status"] == "completed" and rec["sip_reason"] == "OK" and rec["hint"] is None
    assert rec["answered_at"] and rec["codec"] == "PCMU"
    assert rec["media_encryption"] == "rtp" and rec["direction"] == "inbound"
    assert rec["rtp"]["packets_received"] >= FRAMES - 5, rec
    assert rec["rtp"]["packets_sent"] >= FRAMES - 5, rec


def test_tls_echo_plain_and_allowed(gw):
    d = gw()
    import_number(d, transport="tls", media="allowed")
    sc, _, _ = echo_call(d, "tls")
    assert call_record(d, sc.call_id)["end_reason"] == "bye_received"


@pytest.mark.skipif(pylibsrtp is None, reason="python3-pylibsrtp not installed")
@pytest.mark.parametrize("transport,media", [("tls", "required"), ("tls", "allowed"),
                                             ("tcp", "required")])
def test_srtp_echo(gw, transport, media):
    d = gw()
    import_number(d, transport=transport, media=media)
    sc, _, _ = echo_call(d, transport, srtp=True)
    rec = call_record(d, sc.call_id)
    assert rec["media_encryption"] == "srtp" and rec["end_reason"] == "bye_received", rec


def test_dtmf_echoed_and_hold_resume(gw):
    """RFC 4733 from the caller reaches the agent; echo sends it back as RFC 4733. Hold:
    sendonly → recvonly, inactive → inactive, resume → sendrecv (RFC 3264 §6.1)."""
    d = gw()
    import_number(d)
    sc, _, _ = echo_call(d, "tcp", dtmf="15#", hold=True)
    log = d.wait_log(lambda t: all(re.search(r"dtmf\.in call=ca_\w+ digit=%s" % re.escape(x), t)
                                   for x in "15#"))
    for digit in "15#":
        assert re.search(r"dtmf\.in call=ca_\w+ digit=%s" % re.escape(digit), log), log[-2000:]
    assert "call hold" in log or " hold " in log


def test_media_timeout_daemon_sends_bye(gw):
    d = gw()
    import_number(d)
    rtp = RtpClient()
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite(NUMBER, sdp_offer(rtp.port))
        assert r.code == 200
        sc.ack()
        sc.wait_bye()  # no RTP at all: media timeout (2 s here) → BYE
    finally:
        sc.close()
        rtp.close()
    rec = call_record(d, sc.call_id)
    assert rec["end_reason"] == "media_timeout" and rec["final_status"] == 200, rec


# ---- refusals: status + Warning + the number's event ----------------------------------

def invite_status(d, user=NUMBER, transport="tcp", sdp=None, extra=""):
    port = d.tls_port if transport == "tls" else d.sip_port
    sc = SipClient(port, transport)
    try:
        r = sc.invite(user, sdp if sdp is not None else sdp_offer(40000), extra)
        if r.code == 200:
            sc.ack()
            sc.bye()
        return r, sc
    finally:
        sc.close()


def test_unknown_number_uniform(gw):
    """Issue 11 item 2: a source the number does not trust learns nothing, not even whether
    the number exists — an unknown target gets the digest challenge every untrusted INVITE
    gets (test_sip_hardening.py compares all the cases); the owner's log says why."""
    d = gw()
    import_number(d)
    a, _ = invite_status(d, "+4930999999")
    b, _ = invite_status(d, "not-a-number")
    for r in (a, b):
        assert r.code == 401 and r.first == "SIP/2.0 401 Unauthorized"
        assert r.get("www-authenticate")
        assert r.get("warning") is None and r.get("server") is None and r.get("reason") is None
    wait_for(lambda: "code=number_not_routed status=401" in d.log_text(), "refusal log")


def test_inbound_disabled_untrusted(gw):
    d = gw()
    pid = import_number(d, inbound=False)
    r, _ = invite_status(d)
    assert r.code == 401 and r.get("warning") is None  # no trunk: nobody is trusted
    e = event(d, pid, "inbound_disabled")
    assert e["hint"] and e["details"]["status"] == 401, e


def test_wrong_transport_403(gw):
    d = gw()
    pid = import_number(d, transport="tls")  # no allowed_addresses, no digest: any source
    r, _ = invite_status(d, transport="tcp")
    assert r.code == 403 and ";transport=tls" in r.get("warning"), r.raw
    e = event(d, pid, "wrong_transport")
    assert "transport=tls" in e["hint"]
    r, _ = invite_status(d, transport="udp")  # UDP never, whatever the trunk says
    assert r.code == 403


def test_source_not_allowed_untrusted(gw):
    d = gw()
    pid = import_number(d, allowed=["203.0.113.0/24"])
    r, _ = invite_status(d, extra="X-Forwarded-For: 203.0.113.7\r\n")  # headers don't count
    assert r.code == 401 and r.get("warning") is None, r.raw
    e = event(d, pid, "source_not_allowed")  # the diagnosis is the owner's
    assert e["details"]["status"] == 401


def test_allowed_source_gets_diagnosis(gw):
    """A source the trunk trusts still hears why (Warning), as before."""
    d = gw()
    pid = import_number(d, transport="tls", allowed=["127.0.0.0/8"])
    r, _ = invite_status(d, transport="tcp")
    assert r.code == 403 and ";transport=tls" in r.get("warning"), r.raw
    event(d, pid, "wrong_transport")


def test_no_agent_480(gw):
    d = gw()
    pid = import_number(d, agent=False)
    r, sc = invite_status(d)
    assert r.code == 480 and "agent" in r.get("warning")
    event(d, pid, "no_agent")
    rec = call_record(d, sc.call_id)
    assert rec["final_status"] == 480 and rec["end_reason"] == "no_agent"
    assert rec["status"] == "failed" and rec["sip_reason"] == "Temporarily Unavailable"
    assert rec["hint"] == "Assign an agent to the number.", rec


@pytest.mark.parametrize("media,srtp_offer", [("required", False), ("disabled", True)])
def test_media_encryption_mismatch_488(gw, media, srtp_offer):
    d = gw()
    pid = import_number(d, transport="tls", media=media)
    sdp = sdp_offer(40000, os.urandom(30) if srtp_offer else None)
    r, sc = invite_status(d, transport="tls", sdp=sdp)
    assert r.code == 488 and r.get("warning"), r.raw
    e = event(d, pid, "media_encryption_mismatch")
    assert "Allowed" in e["hint"]
    rec = call_record(d, sc.call_id)
    assert rec["final_status"] == 488 and rec["end_reason"] == "sdp_refused"
    assert rec["status"] == "failed", rec


def test_admission_cap_503(gw):
    d = gw(TRUNKLINE_MAX_CALLS="1")
    pid = import_number(d)
    rtp = RtpClient()
    first = SipClient(d.sip_port, "tcp")
    try:
        assert first.invite(NUMBER, sdp_offer(rtp.port)).code == 200
        first.ack()
        r, sc = invite_status(d)
        assert r.code == 503 and r.get("retry-after"), r.raw
        event(d, pid, "admission_refused")
        assert call_record(d, sc.call_id)["final_status"] == 503
        assert first.bye().code == 200
    finally:
        first.close()
        rtp.close()
    assert call_record(d, first.call_id)["end_reason"] == "bye_received"


def digest_header(chal, method, uri, user, password):
    import hashlib
    p = dict(re.findall(r'(\w+)="?([^",]*)"?', chal))
    assert p.get("algorithm", "MD5").upper() == "MD5", chal

    def h(s):
        return hashlib.md5(s.encode()).hexdigest()
    cnonce, nc = "0a4f113b", "00000001"
    resp = h("%s:%s:%s:%s:%s:%s" % (h("%s:%s:%s" % (user, p["realm"], password)), p["nonce"],
                                    nc, cnonce, "auth", h("%s:%s" % (method, uri))))
    return ('Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", '
            'response="%s", algorithm=MD5, qop=auth, nc=%s, cnonce="%s"%s\r\n' % (
                user, p["realm"], p["nonce"], uri, resp, nc, cnonce,
                ', opaque="%s"' % p["opaque"] if "opaque" in p else ""))


@pytest.mark.parametrize("password,expect", [(PASSWORD, 200), ("wrong", 403)])
def test_digest(gw, password, expect):
    d = gw()
    pid = import_number(d, username="carrier1")
    rtp = RtpClient()
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite(NUMBER, sdp_offer(rtp.port))
        assert r.code == 401, r.raw
        sc.ack()  # the 401's ACK (same transaction)
        sc.cseq += 1
        chal = r.get("www-authenticate")
        auth = digest_header(chal, "INVITE", sc.ruri, "carrier1", password)
        sc.request("INVITE", sc.ruri, sdp_offer(rtp.port).encode(), auth)
        r2 = sc.response("INVITE")
        assert r2.code == expect, r2.raw
        if expect == 200:
            tag = re.search(r";tag=([^;>\s]+)", r2.get("to")).group(1)
            sc.to_hdr = "<sip:%s@127.0.0.1>;tag=%s" % (NUMBER, tag)
            sc.ack()
            assert sc.bye().code == 200
            assert call_record(d, sc.call_id)["end_reason"] == "bye_received"
        else:
            sc.ack()
            event(d, pid, "credentials_mismatch")
    finally:
        sc.close()
        rtp.close()


def late_offer_call(d, transport, answer, rtp, frames, srtp=None):
    """INVITE without SDP; our offer comes in the 200, answer(offer_text) builds the ACK's
    SDP; RTP (set up by the caller through srtp(offer_body)) must echo frames. Returns the
    SIP client (closed) and the 200."""
    port = d.tls_port if transport == "tls" else d.sip_port
    sc = SipClient(port, transport)
    try:
        r = sc.invite(NUMBER, "")
        assert r.code == 200 and "m=audio" in r.text, r.raw
        ip, rport, _, _, _, _ = parse_answer(r.body)
        sc.ack(answer(r.text))
        rtp.set_remote(ip, rport)
        if srtp:
            srtp(r.body)
        rtp.run(frames)
        assert echoed(frames, rtp.audio_bytes()), "echo mismatch: got %d bytes" % len(
            rtp.audio_bytes())
        assert sc.bye().code == 200
        return sc, r
    finally:
        sc.close()


def test_late_offer(gw):
    """INVITE without SDP: our offer in the 200, the answer in the ACK (RFC 3261 §13.2.1)."""
    d = gw()
    import_number(d)
    rtp = RtpClient()
    try:
        frames = known_sequence(FRAMES, seed=3)
        sc, r = late_offer_call(d, "tcp", lambda _: sdp_offer(rtp.port), rtp, frames)
        # disabled policy: plain RTP offered, PCMU and PCMA, telephone-event
        assert "m=audio" in r.text and "RTP/AVP 0 8 101" in r.text and "a=crypto" not in r.text
    finally:
        rtp.close()
    rec = call_record(d, sc.call_id)
    assert rec["codec"] == "PCMU" and rec["media_encryption"] == "rtp", rec
    assert rec["end_reason"] == "bye_received" and rec["final_status"] == 200, rec


def test_late_offer_pcma_answer(gw):
    """The ACK's answer picks PCMA: the A-law leg is converted to μ-law for the agent and
    back, and the echo comes back identical, in A-law (PT 8)."""
    d = gw()
    import_number(d, media="allowed")
    rtp = RtpClient()
    rtp.pt = PT_PCMA
    try:
        frames = known_alaw_sequence(FRAMES, seed=5)
        sc, r = late_offer_call(d, "tcp", lambda _: sdp_offer(rtp.port, codecs=(8,)), rtp,
                                frames)
        assert "RTP/AVP" in r.text and "a=crypto" not in r.text  # allowed: plain offer
        assert rtp.audio_pts() == {PT_PCMA}, rtp.audio_pts()
    finally:
        rtp.close()
    rec = call_record(d, sc.call_id)
    assert rec["codec"] == "PCMA" and rec["end_reason"] == "bye_received", rec


@pytest.mark.skipif(pylibsrtp is None, reason="python3-pylibsrtp not installed")
def test_late_offer_srtp_required(gw):
    """Policy required: our offer is RTP/SAVP with one a=crypto per suite (tag 1 _80, tag 2
    _32, a key each); the ACK's answer picks tag 2 with its own key, and SRTP flows with our
    tag-2 key one way and the answer's key the other."""
    d = gw()
    pid = import_number(d, transport="tls", media="required")
    rtp = RtpClient()
    key = os.urandom(30)
    suite = "AES_CM_128_HMAC_SHA1_32"

    def answer(offer):
        assert "RTP/SAVP" in offer, offer
        return sdp_offer(rtp.port, key, suite=suite, tag=2)

    def srtp(body):
        cr = parse_cryptos(body)
        assert set(cr) == {1, 2} and cr[1][0] == "AES_CM_128_HMAC_SHA1_80", cr
        assert cr[2][0] == suite and cr[1][1] != cr[2][1] and key not in (cr[1][1], cr[2][1])
        rtp.set_srtp(key, cr[2][1], suite)
    try:
        frames = known_sequence(FRAMES, seed=9)
        sc, _ = late_offer_call(d, "tls", answer, rtp, frames, srtp)
    finally:
        rtp.close()
    rec = call_record(d, sc.call_id)
    assert rec["media_encryption"] == "srtp" and rec["codec"] == "PCMU", rec
    assert rec["end_reason"] == "bye_received", rec
    r = d.api("GET", "/v1/phone-numbers/%s/events" % pid)
    assert "srtp_keys_in_clear" not in r.text  # TLS: the keys were protected


def test_late_offer_unusable_answer_ends_call(gw):
    """An ACK answer that does not fit our offer (RTP/SAVP to our RTP/AVP) ends the call:
    BYE from the daemon, end_reason sdp_answer_refused."""
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="60")
    import_number(d)
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite(NUMBER, "")
        assert r.code == 200, r.raw
        sc.ack(sdp_offer(40000, os.urandom(30)))
        sc.wait_bye()
    finally:
        sc.close()
    rec = call_record(d, sc.call_id)
    assert rec["end_reason"] == "sdp_answer_refused" and rec["final_status"] == 200, rec


@pytest.mark.skipif(pylibsrtp is None, reason="python3-pylibsrtp not installed")
def test_srtp_over_tcp_warns_once(gw):
    """SDES keys over TCP signalling: accepted (hosted PBXs offer TCP only), with one
    srtp_keys_in_clear event per call."""
    d = gw()
    pid = import_number(d, transport="tcp", media="required")
    sc, _, _ = echo_call(d, "tcp", srtp=True)
    e = event(d, pid, "srtp_keys_in_clear")
    assert "clear signalling" in e["message"] and "TLS" in e["hint"], e
    assert call_record(d, sc.call_id)["media_encryption"] == "srtp"
    r = d.api("GET", "/v1/phone-numbers/%s/events" % pid)
    assert len([x for x in r.json()["data"] if x["code"] == "srtp_keys_in_clear"]) == 1


# ---- teardown paths: every one leaves a record with its reason ------------------------

def answered_call(d, extra=""):
    """An answered call from the Python UAC (no RTP sent); returns (client, 200)."""
    sc = SipClient(d.sip_port, "tcp")
    r = sc.invite(NUMBER, sdp_offer(40000), extra)
    assert r.code == 200, r.raw
    sc.ack()
    return sc, r


def test_cancel_while_ringing(gw):
    """CANCEL after the 180 while the call rings (call_answer_delay_ms): 200 to the CANCEL,
    487 to the INVITE, a record canceled/487."""
    d = gw(TRUNKLINE_CALL_ANSWER_DELAY_MS="60000")
    import_number(d)
    sc = SipClient(d.sip_port, "tcp")
    try:
        sc.invite_send(NUMBER, sdp_offer(40000))
        ring = sc.response("INVITE", provisional=True)
        assert ring.code == 180, ring.raw
        assert sc.cancel().code == 200
        r = sc.invite_final()
        assert r.code == 487, r.raw
        sc.ack_failure(r)
    finally:
        sc.close()
    rec = call_record(d, sc.call_id)
    assert rec["end_reason"] == "canceled" and rec["final_status"] == 487, rec
    assert rec["status"] == "canceled", rec
    assert not rec["answered_at"], rec


def test_answer_delay_rings_then_answers(gw):
    d = gw(TRUNKLINE_CALL_ANSWER_DELAY_MS="200")
    import_number(d)
    sc = SipClient(d.sip_port, "tcp")
    try:
        sc.invite_send(NUMBER, sdp_offer(40000))
        assert sc.response("INVITE", provisional=True).code == 180
        r = sc.invite_final()
        assert r.code == 200, r.raw
        sc.ack()
        assert sc.bye().code == 200
    finally:
        sc.close()
    assert call_record(d, sc.call_id)["end_reason"] == "bye_received"


def test_session_timer_expiry(gw):
    """The carrier asks for a 3 s session timer it refreshes itself (refresher=uac) and
    never does: the daemon sends BYE (RFC 4028 §10), end_reason session_expired."""
    d = gw(TRUNKLINE_SIP_MIN_SE="2", TRUNKLINE_MEDIA_TIMEOUT_S="600")
    import_number(d)
    sc, r = answered_call(d, "Supported: timer\r\nSession-Expires: 3;refresher=uac\r\n"
                             "Min-SE: 2\r\n")
    try:
        assert re.match(r"3;\s*refresher=uac", r.get("session-expires") or ""), r.raw
        sc.wait_bye()
    finally:
        sc.close()
    rec = call_record(d, sc.call_id)
    assert rec["end_reason"] == "session_expired" and rec["final_status"] == 200, rec


def test_max_call_duration(gw):
    d = gw(TRUNKLINE_MAX_CALL_DURATION_S="1", TRUNKLINE_MEDIA_TIMEOUT_S="600")
    import_number(d)
    sc, _ = answered_call(d)
    try:
        sc.wait_bye()
    finally:
        sc.close()
    rec = call_record(d, sc.call_id)
    assert rec["end_reason"] == "max_duration" and rec["final_status"] == 200, rec


def test_agent_hangup(gw):
    """The echo agent's hangup_after_ms parameter: the agent hangs up, the daemon sends BYE,
    end_reason agent_hangup."""
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="600")
    import_number(d)
    r = d.api("PATCH", "/v1/agents/" + echo_id(d), json={"parameters": {"hangup_after_ms": "300"}})
    assert r.status_code == 200, r.text
    sc, _ = answered_call(d)
    try:
        sc.wait_bye()
    finally:
        sc.close()
    rec = call_record(d, sc.call_id)
    assert rec["end_reason"] == "agent_hangup" and rec["final_status"] == 200, rec


def test_public_ip_in_sdp_and_contact(gw):
    d = gw(TRUNKLINE_PUBLIC_IP="203.0.113.9")
    import_number(d)
    sc, r = answered_call(d)
    try:
        assert "c=IN IP4 203.0.113.9" in r.text, r.text
        assert "@203.0.113.9:" in r.get("contact") or "sip:203.0.113.9:" in r.get("contact"), \
            r.get("contact")
        assert sc.bye().code == 200
    finally:
        sc.close()
    assert call_record(d, sc.call_id)["end_reason"] == "bye_received"


def test_invite_rate_per_source(gw):
    """sip_invite_rate=1: a burst of two passes (401 here: the target is unknown), then 503
    with Retry-After, before any other rule."""
    d = gw(TRUNKLINE_SIP_INVITE_RATE="1")
    import_number(d)
    codes = []
    sc = SipClient(d.sip_port, "tcp")
    try:
        for _ in range(10):
            r = sc.invite("+4930999999", sdp_offer(40000))
            if r.code >= 300:
                sc.ack_failure(r)
            codes.append(r.code)
            if r.code == 503:
                assert r.get("retry-after"), r.raw
                break
    finally:
        sc.close()
    assert codes[:2] == [401, 401] and codes[-1] == 503, codes


def test_workspace_cap_spares_other_workspaces(gw):
    """max_calls_per_workspace=1: a second call of the same workspace gets 503, a call of
    another workspace still goes through."""
    d = gw(TRUNKLINE_MAX_CALLS_PER_WORKSPACE="1", TRUNKLINE_MEDIA_TIMEOUT_S="600")
    import_number(d)
    r = d.api("POST", "/v1/workspaces", token=d.operator_token,
              json={"name": "other", "plan": "professional"})
    assert r.status_code == 201, r.text
    ws2 = r.json()["id"]
    r = d.api("POST", "/v1/tokens", token=d.operator_token,
              json={"role": "admin", "name": "a2", "workspace_id": ws2})
    assert r.status_code == 201, r.text
    tok2 = r.json()["token"]
    other = "+493087654321"
    pid2 = import_number(d, number=other, token=tok2)
    first, _ = answered_call(d)
    second = SipClient(d.sip_port, "tcp")
    third = SipClient(d.sip_port, "tcp")
    try:
        r = second.invite(NUMBER, sdp_offer(40002))
        assert r.code == 503 and r.get("retry-after"), r.raw
        second.ack_failure(r)
        r = third.invite(other, sdp_offer(40004))
        assert r.code == 200, r.raw
        third.ack()
        assert third.bye().code == 200
        assert first.bye().code == 200
    finally:
        for c in (first, second, third):
            c.close()
    assert call_record(d, second.call_id)["final_status"] == 503
    rec = call_record(d, third.call_id, token=tok2)
    assert rec["end_reason"] == "bye_received" and rec["number_id"] == pid2, rec
    assert call_record(d, first.call_id)["end_reason"] == "bye_received"


# ---- SIPp as the carrier --------------------------------------------------------------

@needs_sipp
@pytest.mark.parametrize("user", [NUMBER, NUMBER[1:]])  # Twilio "+49…", Telnyx "49…"
def test_sipp_tcp_echo(gw, user):
    d = gw()
    import_number(d)
    rtp = RtpClient()
    msgs = os.path.join(d.dir, "sipp_messages.log")
    cmd = [SIPP, "-sf", os.path.join(SIPP_DIR, "call_echo.xml"), "-m", "1", "-t", "t1",
           "-i", "127.0.0.1", "-p", str(free_port()), "-s", user,
           "-key", "rtp_port", str(rtp.port), "127.0.0.1:%d" % d.sip_port,
           "-timeout", "30s", "-timeout_error", "-trace_err", "-trace_msg",
           "-message_file", msgs, "-nostdin", "-nd"]
    p = subprocess.Popen(cmd, cwd=d.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def our_media():  # the 200 OK SIPp received, from its message trace
            try:
                text = open(msgs, errors="replace").read()
            except FileNotFoundError:
                return None
            m = re.search(r"SIP/2\.0 200 OK.*?c=IN IP4 (\S+).*?m=audio (\d+)", text, re.S)
            return (m.group(1), int(m.group(2))) if m else None
        rtp.set_remote(*wait_for(our_media, "SIPp's 200 OK"))
        frames = known_sequence(FRAMES, seed=11)
        rtp.run(frames)
        assert echoed(frames, rtp.audio_bytes())
        out, _ = p.communicate(timeout=60)  # the daemon's BYE (media timeout) ends SIPp
        assert p.returncode == 0, out[-2000:]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        rtp.close()
    call_id = re.search(r"Call-ID: (\S+)", open(msgs, errors="replace").read()).group(1)
    rec = call_record(d, call_id)
    assert rec["end_reason"] == "media_timeout" and rec["final_status"] == 200, rec

"""Carrier-edge media interop (issue 8 §3-§6): RTP from another address than the SDP names
(NAT: the rtp_source_mismatch event, per-call drop counters, rtp_latching any), IPv6 media
(c=IN IP6, both ways across the signalling's family), SIP INFO DTMF, AVPF offers.

Same peers and rules as test_inbound_calls.py: the Python UAC and RTP client, byte-for-byte
echo checks, every wait on a message or an API condition with a deadline."""
import os
import re
import socket

import pytest

from rtpclient import RtpClient, echoed, known_sequence, pylibsrtp
from sipclient import SipClient, parse_answer, sdp_offer
from test_inbound_calls import (FRAMES, NUMBER, call_record, event, gw, import_number,  # noqa: F401
                                invite_status, wait_for)


def events(d, pid, code):
    r = d.api("GET", "/v1/phone-numbers/%s/events" % pid)
    assert r.status_code == 200, r.text
    return [e for e in r.json()["data"] if e["code"] == code]


def live_record(d, sip_call_id, cond, what):
    """Polls the call's record (GET /v1/calls/{id}) while the call is up until cond holds."""
    def find():
        rec = call_record(d, sip_call_id, ended=False)
        return rec if cond(rec) else None
    return wait_for(find, what)


# ---- §3: RTP from another address than the SDP's -------------------------------------

def test_rtp_from_another_address_is_counted_and_reported(gw):
    """The SDP says 127.0.0.1, the RTP comes from 127.0.0.2 (a carrier behind NAT): under
    the default sdp-ip latching it is dropped, counted on the call, and one event names both
    addresses with the fix."""
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="60")
    pid = import_number(d)
    rtp = RtpClient("127.0.0.2")
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite(NUMBER, sdp_offer(rtp.port, ip="127.0.0.1"))
        assert r.code == 200, r.raw
        sc.ack()
        ip, rport, _, _, _, _ = parse_answer(r.body)
        rtp.set_remote(ip, rport)
        rtp.run(known_sequence(FRAMES, seed=21))
        assert rtp.audio_bytes() == b""  # the echo went to the SDP address, not to us
        e = event(d, pid, "rtp_source_mismatch")
        src, sdp = "127.0.0.2:%d" % rtp.port, "127.0.0.1:%d" % rtp.port
        assert src in e["message"] and sdp in e["message"], e
        assert e["details"]["rtp_source"] == src and e["details"]["sdp_address"] == sdp, e
        assert e["details"]["rtp_latching"] == "sdp-ip" and e["details"]["accepted"] == 0, e
        assert e["details"]["dropped"] > 0, e
        assert "NAT" in e["hint"] and "rtp_latching" in e["hint"] and "any" in e["hint"], e
        # the drops show on the call while it is up
        live = live_record(d, sc.call_id, lambda c: c["rtp"]["dropped"]["source"] > 0,
                           "drop counters on the live call")
        assert live["ended_at"] is None and live["rtp"]["packets_received"] == 0, live
        assert sc.bye().code == 200
    finally:
        sc.close()
        rtp.close()
    rec = call_record(d, sc.call_id)
    dropped = rec["rtp"]["dropped"]
    assert dropped["source"] == FRAMES, rec  # every packet sent, none accepted
    assert rec["rtp"]["packets_received"] == 0, rec
    assert dropped["srtp_auth"] == dropped["malformed"] == dropped["payload_type"] == 0, rec
    assert len(events(d, pid, "rtp_source_mismatch")) == 1  # one event per call


@pytest.mark.parametrize("where", ["trunk", "setting"])
def test_rtp_latching_any_answers_the_real_source(gw, where):
    """rtp_latching any, on the trunk or as the gateway's setting: the same call echoes back
    to where the RTP really comes from, byte for byte, and nothing is dropped or reported."""
    d = gw(**({"TRUNKLINE_RTP_LATCHING": "any"} if where == "setting" else {}))
    pid = import_number(d, latching="any" if where == "trunk" else None)
    rtp = RtpClient("127.0.0.2")
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite(NUMBER, sdp_offer(rtp.port, ip="127.0.0.1"))
        assert r.code == 200, r.raw
        sc.ack()
        ip, rport, _, _, _, _ = parse_answer(r.body)
        rtp.set_remote(ip, rport)
        frames = known_sequence(FRAMES, seed=22)
        rtp.run(frames)
        assert echoed(frames, rtp.audio_bytes()), "no echo: got %d bytes" % len(
            rtp.audio_bytes())
        assert sc.bye().code == 200
    finally:
        sc.close()
        rtp.close()
    rec = call_record(d, sc.call_id)
    assert rec["rtp"]["dropped"]["source"] == 0 and rec["rtp"]["packets_received"] >= FRAMES - 5
    assert events(d, pid, "rtp_source_mismatch") == []


# ---- §4: IPv6 media -------------------------------------------------------------------

def _v6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not _v6_loopback(), reason="::1 cannot be bound (no IPv6)")


def ipv6_call(d, sip_host, offer_ip, rtp_ip, srtp=False, transport="tcp"):
    """INVITE over sip_host with media at offer_ip; returns (client, 200). The RTP client
    checks the echo byte for byte."""
    port = d.tls_port if transport == "tls" else d.sip_port
    rtp = RtpClient(rtp_ip)
    key = os.urandom(30) if srtp else None
    sc = SipClient(port, transport, host=sip_host)
    try:
        r = sc.invite(NUMBER, sdp_offer(rtp.port, key, ip=offer_ip))
        assert r.code == 200, r.raw
        sc.ack()
        ip, rport, _, _, their_key, suite = parse_answer(r.body)
        rtp.set_remote(ip, rport)
        if srtp:
            rtp.set_srtp(key, their_key, suite)
        frames = known_sequence(FRAMES, seed=31)
        rtp.run(frames)
        assert echoed(frames, rtp.audio_bytes()), "no echo: got %d bytes" % len(
            rtp.audio_bytes())
        assert sc.bye().code == 200
        return sc, r
    finally:
        sc.close()
        rtp.close()


@needs_ipv6
@pytest.mark.parametrize("srtp", [False, pytest.param(True, marks=pytest.mark.skipif(
    pylibsrtp is None, reason="python3-pylibsrtp not installed"))])
def test_ipv6_media_over_ipv4_signalling(gw, srtp):
    """A dual-stack softphone's default: SIP over IPv4, c=IN IP6 ::1. Our answer is IPv6
    too (o= and c=), and RTP (SRTP) echoes over IPv6."""
    d = gw()
    import_number(d, transport="tls" if srtp else "tcp", media="allowed" if srtp else "disabled")
    sc, r = ipv6_call(d, "127.0.0.1", "::1", "::1", srtp=srtp,
                      transport="tls" if srtp else "tcp")
    assert "c=IN IP6 ::1" in r.text and "IN IP6 ::1\r\n" in r.text.split("s=")[0], r.text
    assert "c=IN IP4" not in r.text
    rec = call_record(d, sc.call_id)
    assert rec["end_reason"] == "bye_received" and rec["rtp"]["packets_received"] >= FRAMES - 5
    assert rec["media_encryption"] == ("srtp" if srtp else "rtp")


@needs_ipv6
def test_ipv6_signalling_both_families_and_late_offer(gw):
    """SIP over IPv6: an IPv4 offer gets an IPv4 answer (the other way across families);
    an INVITE without SDP gets our offer in IPv6, and the echo flows over IPv6."""
    d = gw(TRUNKLINE_SIP_LISTEN="::1")
    import_number(d)
    sc, r = ipv6_call(d, "::1", "127.0.0.1", "127.0.0.1")
    assert "c=IN IP4 127.0.0.1" in r.text, r.text
    # late offer over IPv6: our offer is IPv6
    rtp = RtpClient("::1")
    sc = SipClient(d.sip_port, "tcp", host="::1")
    try:
        r = sc.invite(NUMBER, "")
        assert r.code == 200 and "c=IN IP6 ::1" in r.text, r.raw
        ip, rport, _, _, _, _ = parse_answer(r.body)
        sc.ack(sdp_offer(rtp.port, ip="::1"))
        rtp.set_remote(ip, rport)
        frames = known_sequence(FRAMES, seed=32)
        rtp.run(frames)
        assert echoed(frames, rtp.audio_bytes())
        assert sc.bye().code == 200
    finally:
        sc.close()
        rtp.close()
    assert call_record(d, sc.call_id)["end_reason"] == "bye_received"


def test_late_offer_over_ipv4_stays_ipv4(gw):
    d = gw()
    import_number(d)
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite(NUMBER, "")
        assert r.code == 200 and "c=IN IP4 127.0.0.1" in r.text and "IP6" not in r.text, r.raw
        sc.ack(sdp_offer(40000))
        assert sc.bye().code == 200
    finally:
        sc.close()


def test_media_address_it_cannot_reach_is_488_warning_301(gw):
    """An IPv6 offer our IPv6 media cannot send to (an IPv4-mapped c=): 488 with Warning 301
    and an event that says so; never 503, Retry-After or a plan hint."""
    d = gw()
    pid = import_number(d)
    r, sc = invite_status(d, sdp=sdp_offer(40000, ip="::ffff:127.0.0.1"))
    assert r.code == 488 and r.get("retry-after") is None, r.raw
    w = r.get("warning")
    assert w.startswith("301 ") and "IPv4-mapped" in w and "c=IN IP4" in w, w
    e = event(d, pid, "media_address_unavailable")
    assert "IPv4-mapped" in e["message"] and e["details"]["status"] == 488, e
    assert "plan" not in e["hint"] and "c=IN IP4" in e["hint"], e
    assert events(d, pid, "admission_refused") == []
    rec = call_record(d, sc.call_id)
    assert rec["final_status"] == 488 and rec["end_reason"] == "sdp_refused", rec


# ---- §6: AVPF offers ------------------------------------------------------------------

@pytest.mark.parametrize("proto", ["RTP/SAVPF", "RTP/AVPF"])
def test_avpf_offer_is_a_profile_refusal(gw, proto):
    d = gw()
    pid = import_number(d, transport="tls", media="allowed")
    key = os.urandom(30) if proto == "RTP/SAVPF" else None
    r, sc = invite_status(d, transport="tls", sdp=sdp_offer(40000, key, proto=proto))
    assert r.code == 488, r.raw
    w = r.get("warning")
    assert w.startswith("302 ") and proto in w and "AVPF" in w and "RTP/SAVP" in w, w
    e = event(d, pid, "media_profile_unsupported")
    assert "AVPF" in e["hint"] and "RTP/AVP" in e["hint"] and "Allowed" not in e["hint"], e
    assert events(d, pid, "media_encryption_mismatch") == []
    rec = call_record(d, sc.call_id)
    assert rec["final_status"] == 488 and rec["end_reason"] == "sdp_refused", rec


# ---- §5: SIP INFO DTMF ----------------------------------------------------------------

def test_info_dtmf_reaches_the_agent_and_comes_back_as_rfc4733(gw):
    """application/dtmf-relay and application/dtmf INFO bodies become the agent's DTMF; the
    echo agent sends them back as RFC 4733 events on the RTP stream. Other bodies get 415
    with Accept, an Info Package we never announced 469 with Recv-Info (RFC 6086)."""
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="60")
    import_number(d)
    rtp = RtpClient()
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite(NUMBER, sdp_offer(rtp.port))
        assert r.code == 200, r.raw
        sc.ack()
        ip, rport, _, _, _, _ = parse_answer(r.body)
        rtp.set_remote(ip, rport)
        a = sc.info("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")
        assert a.code == 200, a.raw
        a = sc.info("application/dtmf", "9")
        assert a.code == 200, a.raw
        wait_for(lambda: rtp._drain(0.05) or rtp.dtmf_digits() == "59",
                 "the digits back as RFC 4733 (got %r)" % rtp.dtmf_digits())
        a = sc.info("application/vnd.example-keys", "x=1")
        assert a.code == 415, a.raw
        assert "application/dtmf-relay" in (a.get("accept") or ""), a.raw
        a = sc.info("application/dtmf-relay", "Signal=1\r\n", extra="Info-Package: foo\r\n")
        assert a.code == 469, a.raw
        assert a.get("recv-info") is not None, a.raw
        a = sc.info("application/dtmf-relay", "Signal=X\r\n")
        assert a.code == 400, a.raw
        a = sc.info("application/dtmf-relay", "Signal=1\r\n" + "x" * 300)
        assert a.code == 413, a.raw
        assert sc.bye().code == 200
    finally:
        sc.close()
        rtp.close()
    # exactly the two accepted digits reached the agent (each is logged before its 200)
    log = d.wait_log(lambda t: len([ln for ln in t.splitlines()
                                    if "dtmf.in" in ln and "via=info" in ln]) >= 2)
    lines = [ln for ln in log.splitlines() if "dtmf.in" in ln and "via=info" in ln]
    assert [re.search(r"digit=(\S)", ln).group(1) for ln in lines] == ["5", "9"], lines
    assert "ms=160" in lines[0] and "ms=100" in lines[1], lines  # Duration, else the default
    assert call_record(d, sc.call_id)["end_reason"] == "bye_received"

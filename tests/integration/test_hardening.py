"""Hardening of the call path (issue 11): records that survive a crash, graceful drain,
admission. The callers are the Python SIP UAC (sipclient.py) and RTP client; waits are on
messages and on the API with deadlines."""
import signal
import time

import pytest

from sipclient import SipClient, parse_answer, sdp_offer
from rtpclient import RtpClient
from test_inbound_calls import NUMBER, gw, import_number, wait_for  # noqa: F401 (fixture)


def all_calls(d):
    r = d.api("GET", "/v1/calls", params={"limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def open_calls(d, n, number=NUMBER):
    """n answered calls, each on its own TCP connection, left up (no RTP: the media
    timeout is raised by the caller)."""
    calls = []
    for _ in range(n):
        rtp = RtpClient()
        sc = SipClient(d.sip_port, "tcp")
        r = sc.invite(number, sdp_offer(rtp.port))
        assert r.code == 200, r.raw
        sc.ack()
        calls.append((sc, rtp, r))
    return calls


def close_all(calls):
    for sc, rtp, _ in calls:
        sc.close()
        rtp.close()


def test_kill_9_during_50_calls_every_call_gets_an_end(gw):
    """Item 11: calls a crashed daemon left up are closed at the next start with
    end_reason gateway_restart; none stays in progress forever."""
    # one TCP connection per call, all from 127.0.0.1: past the default cap of 32 a source
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="600", TRUNKLINE_SIP_MAX_CONNECTIONS_PER_SOURCE="64")
    import_number(d)
    calls = open_calls(d, 50)
    try:
        # the start records reached the file (the recorder writes in batches)
        wait_for(lambda: len([c for c in all_calls(d) if c["answered_at"]]) == 50,
                 "50 answered call records")
        assert all(c["ended_at"] is None for c in all_calls(d))
        d.kill9()
    finally:
        close_all(calls)
    d.start()
    recs = all_calls(d)
    assert len(recs) == 50
    for c in recs:
        assert c["ended_at"] is not None and c["end_reason"] == "gateway_restart", c
        assert c["ended_at"] >= c["answered_at"]
    assert "calls.closed_at_start calls=50" in d.log_text()


def wait_log(d, text, timeout=15.0):
    return wait_for(lambda: text in d.log_text(), "log line " + text, timeout)


def options(d):
    import os
    sc = SipClient(d.sip_port, "tcp")
    try:
        sc.call_id, sc.ftag = os.urandom(8).hex() + "@lb", os.urandom(4).hex()
        uri = "sip:%s:%d;transport=tcp" % (sc.dhost, d.sip_port)
        sc.request("OPTIONS", uri, to="<%s>" % uri)
        return sc.response("OPTIONS")
    finally:
        sc.close()


def test_sigterm_drains_new_calls_go_elsewhere_calls_in_progress_go_on(gw):
    """Item 10: after SIGTERM, new INVITEs and OPTIONS get 503 with Retry-After (a load
    balancer moves on); the call in progress carries on and ends normally; then the
    daemon exits by itself."""
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="600", TRUNKLINE_DRAIN_TIMEOUT_S="120")
    import_number(d)
    assert options(d).code == 200
    (sc, rtp, _), = open_calls(d, 1)
    try:
        d.proc.send_signal(signal.SIGTERM)
        wait_log(d, "core drain signal=SIGTERM calls=1 timeout_s=120")
        r = options(d)
        assert r.code == 503 and r.get("retry-after") == "30", r.raw
        late = SipClient(d.sip_port, "tcp")
        try:
            r = late.invite(NUMBER, sdp_offer(RtpClient().port))
            assert r.code == 503 and r.get("retry-after") == "30", r.raw
        finally:
            late.close()
        assert d.proc.poll() is None  # the call still holds the daemon
        assert sc.bye().code == 200  # and it is a live call
    finally:
        sc.close()
        rtp.close()
    assert d.proc.wait(30) == 0
    d.start()
    rec = [c for c in all_calls(d) if c["answered_at"]]
    assert len(rec) == 1 and rec[0]["end_reason"] == "bye_received", rec


def test_drain_timeout_ends_calls_and_their_byes_complete(gw):
    """Item 10: at drain_timeout_s the calls still up get our BYE, and the daemon waits for
    each BYE's answer before it stops: one carrier answers 200 (a clean shutdown end),
    the other refuses (recorded as bye_failed, which needs the answer)."""
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="600", TRUNKLINE_DRAIN_TIMEOUT_S="1")
    import_number(d)
    calls = open_calls(d, 2)
    try:
        d.proc.send_signal(signal.SIGTERM)
        (a, _, ra), (b, _, rb) = calls
        bye_a = a.recv(lambda m: m.method == "BYE")
        bye_b = b.recv(lambda m: m.method == "BYE")
        assert d.proc.poll() is None  # still waiting for the answers
        a.answer_request(bye_a, 200)
        b.answer_request(bye_b, 503)
        assert d.proc.wait(30) == 0
    finally:
        close_all(calls)
    assert "shutdown.byes complete=yes" in d.log_text()
    d.start()
    ends = {c["sip_call_id"]: c["end_reason"] for c in all_calls(d)}
    assert ends == {a.call_id: "shutdown", b.call_id: "bye_failed"}, ends


def test_second_sigterm_ends_at_once(gw):
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="600", TRUNKLINE_DRAIN_TIMEOUT_S="300")
    import_number(d)
    calls = open_calls(d, 1)
    try:
        d.proc.send_signal(signal.SIGTERM)
        wait_log(d, "core drain signal=SIGTERM")
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(15) == 0
    finally:
        close_all(calls)
    assert "now=yes" in d.log_text()

"""Hardening of the call path (issue 11): records that survive a crash, graceful drain,
admission. The callers are the Python SIP UAC (sipclient.py) and RTP client; waits are on
messages and on the API with deadlines."""
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
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="600")
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

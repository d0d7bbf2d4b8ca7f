"""Outbound calls (issue 10): POST /v1/calls places a call through the number's own trunk
and bridges it to the agent. The carrier is real: SIPp UAS scenarios
(tests/integration/sipp/out_*.xml) found through dnsserver.py by RFC 3263, a Python UAS
where SIPp cannot check what we need (Proxy-Authorization, SHA-256, TLS, SRTP media).

Every wait is for a condition with a deadline (the call's status, a process exit, a
message); no timing thresholds."""
import os
import re
import threading
import time

import pytest

import dnsserver
from conftest import free_port  # noqa: F401
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
    env = {"TRUNKLINE_SIP_DNS_SERVERS": "127.0.0.1:%d" % dns_srv.port,
           "TRUNKLINE_SIP_T1_MS": "100"}
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


def events(d, pid):
    r = d.api("GET", "/v1/phone-numbers/%s/events" % pid)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def event_of(d, pid, code):
    return wait_for(lambda: next((e for e in events(d, pid) if e["code"] == code), None),
                    "event " + code)


# ---- the call itself: SIPp as the carrier ----

@pytest.mark.parametrize("tp,flag", [("udp", "u1"), ("tcp", "t1")])
def test_answered_then_api_hangup(make_daemon, dns, sipp, tp, flag):  # noqa: F811
    s = sipp("out_answer.xml", flag)
    d = gateway(make_daemon, dns(zone_for(s.port, tp=tp)))
    pid = import_number(d, transport=tp)
    c = place(d)
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
    assert inv.startswith("INVITE sip:%s@carrier.test SIP/2.0" % CALLEE), inv
    assert re.search(r"^From: <sip:\%s@carrier\.test>;tag=" % NUMBER, inv, re.M), inv
    assert re.search(r"^To: <sip:\%s@carrier\.test>\r?$" % CALLEE, inv, re.M), inv
    assert "m=audio " in inv and "RTP/AVP" in inv and "a=crypto" not in inv
    # hanging up twice is no error: the call as it ended
    r = d.api("DELETE", "/v1/calls/" + c["id"])
    assert r.status_code == 200 and r.json()["status"] == "completed", r.text

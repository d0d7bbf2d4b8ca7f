"""Call records and diagnostic events end to end: a carrier that tries to REGISTER (over UDP
and TCP) gets 403 and the number's owner sees a registration_attempt event with the hint
of the troubleshooting guide; a REGISTER flood is rate-limited; the calls routes answer
their list and 404 shapes; events are tenant-isolated."""
import os
import re
import socket
import time

import pytest

from conftest import free_port

NUMBER = "+493012345678"
SECRET_RESPONSE = "0123456789abcdef0123456789abcdef"
IMPORT = {
    "number": NUMBER,
    "outbound_trunk": {"address": "sip.telnyx.com", "username": "acme_trunk",
                       "password": "S3cr3t-PLAIN-pw-outbound"},
    "inbound_trunk": {"transport": "tls", "username": "inbound_user",
                      "password": "S3cr3t-PLAIN-pw-inbound"},
}
HINT = ("Your carrier is trying to register. trunkline serves static trunks only: switch the "
        "trunk to static / IP-based authentication in your provider's settings.")
PER_NUMBER = 20  # records.h: events per minute per number (burst 20, one back every 3 s)


def sip_daemon(make_daemon):
    port = free_port()
    d = make_daemon(env={"TRUNKLINE_SIP_TCP_PORT": str(port)})
    d.sip_port = port
    return d


def register(to_user, from_user, tp, lport, n=1):
    tag = os.urandom(4).hex()
    return ("REGISTER sip:gw.test SIP/2.0\r\n"
            "Via: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK%s%d\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:%s@gw.test>;tag=%s\r\n"
            "To: <sip:%s@gw.test>\r\n"
            "Call-ID: %s-%d@127.0.0.1\r\n"
            "CSeq: %d REGISTER\r\n"
            "Contact: <sip:%s@127.0.0.1:%d>\r\n"
            "Authorization: Digest username=\"acme_trunk\", realm=\"gw.test\", nonce=\"abc\", "
            "uri=\"sip:gw.test\", response=\"%s\"\r\n"
            "User-Agent: TestPBX/1.0 %s\r\n"
            "Expires: 3600\r\n"
            "Content-Length: 0\r\n\r\n" % (
                tp, lport, tag, n, from_user, tag, to_user, tag, n, n, to_user, lport,
                SECRET_RESPONSE, "x" * 300)).encode()


def status_of(data):
    m = re.match(rb"SIP/2\.0 (\d{3}) ", data)
    assert m, data[:200]
    return int(m.group(1))


def register_udp(d, to_user, from_user=None):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        s.sendto(register(to_user, from_user or to_user, "UDP", s.getsockname()[1]),
                 ("127.0.0.1", d.sip_port))
        data, _ = s.recvfrom(65535)
        return status_of(data)


def register_tcp(d, to_user):
    with socket.create_connection(("127.0.0.1", d.sip_port), timeout=5) as s:
        s.sendall(register(to_user, to_user, "TCP", s.getsockname()[1]))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65535)
            assert chunk, data
            data += chunk
        return status_of(data)


def import_number(d, token=None, params=None):
    r = d.api("POST", "/v1/phone-numbers", json=IMPORT, token=token, params=params)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def events(d, pid, token=None, params=None, want=1, deadline=5.0):
    """The number's events once at least `want` are there (the recorder writes within
    100 ms), newest first."""
    end = time.monotonic() + deadline
    while True:
        r = d.api("GET", "/v1/phone-numbers/%s/events" % pid, token=token, params=params)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        if len(data) >= want or time.monotonic() > end:
            return r, data
        time.sleep(0.05)


def test_register_becomes_event(make_daemon):
    d = sip_daemon(make_daemon)
    pid = import_number(d)
    assert register_udp(d, NUMBER) == 403
    assert register_tcp(d, NUMBER) == 403
    # Telnyx style: no +, and the number only in From
    assert register_udp(d, "acme_trunk", "493012345678") == 403
    r, data = events(d, pid, want=3)
    assert r.json()["object"] == "list" and r.json()["next_cursor"] is None
    assert len(data) == 3, data
    for e in data:
        assert re.fullmatch(r"ev_[0-9a-z]{26}", e["id"])
        assert e["object"] == "event" and e["number_id"] == pid
        assert e["code"] == "registration_attempt"
        assert e["hint"] == HINT
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["created_at"])
        det = e["details"]
        assert det["method"] == "REGISTER" and det["status"] == 403
        assert re.fullmatch(r"127\.0\.0\.1:\d+", det["source"])
        assert det["user_agent"].startswith("TestPBX/1.0 x") and len(det["user_agent"]) == 128
        assert "403" in e["message"]
    # newest first: the From-only one, then TCP, then UDP
    assert [e["details"]["transport"].lower() for e in data] == ["udp", "tcp", "udp"]
    assert data[0]["details"]["to_user"] == "acme_trunk"
    assert data[0]["details"]["from_user"] == "493012345678"
    # never a secret: no Authorization values, no passwords
    assert SECRET_RESPONSE not in r.text and "S3cr3t" not in r.text
    assert "Digest" not in r.text
    # pagination, newest first
    r = d.api("GET", "/v1/phone-numbers/%s/events" % pid, params={"limit": 2})
    page = r.json()
    assert [e["id"] for e in page["data"]] == [e["id"] for e in data[:2]]
    assert page["next_cursor"]
    r = d.api("GET", "/v1/phone-numbers/%s/events" % pid,
              params={"limit": 2, "cursor": page["next_cursor"]})
    assert [e["id"] for e in r.json()["data"]] == [data[2]["id"]]
    assert r.json()["next_cursor"] is None
    # a REGISTER for a number nobody imported: refused, recorded operator-level only
    assert register_udp(d, "+14155550100") == 403
    time.sleep(0.3)
    _, again = events(d, pid, want=4, deadline=0.5)
    assert len(again) == 3


def test_register_flood_is_rate_limited(make_daemon):
    d = sip_daemon(make_daemon)
    pid = import_number(d)
    n = 200
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.settimeout(5)
        lport = s.getsockname()[1]
        got = 0
        for i in range(n):  # a burst, with enough reading to keep the socket buffers flowing
            s.sendto(register(NUMBER, NUMBER, "UDP", lport, i), ("127.0.0.1", d.sip_port))
            if i % 20 == 19:
                while got <= i - 10:
                    assert status_of(s.recvfrom(65535)[0]) == 403
                    got += 1
        while got < n:
            assert status_of(s.recvfrom(65535)[0]) == 403
            got += 1
    _, data = events(d, pid, want=PER_NUMBER)
    time.sleep(0.3)  # anything beyond the limit would have been written by now
    _, data = events(d, pid, params={"limit": 100})
    assert len(data) == PER_NUMBER, len(data)
    # one token is back after 3 s: the next event says how many were suppressed
    time.sleep(3.2)
    assert register_udp(d, NUMBER) == 403
    _, data = events(d, pid, params={"limit": 100}, want=PER_NUMBER + 1)
    assert len(data) == PER_NUMBER + 1
    m = re.search(r"\((\d+) similar events suppressed\)", data[0]["message"])
    assert m, data[0]["message"]
    assert int(m.group(1)) == n - PER_NUMBER
    assert "suppressed" not in data[1]["message"]


def test_calls_routes(daemon):
    d = daemon
    r = d.api("GET", "/v1/calls")
    assert r.status_code == 200, r.text
    assert r.json() == {"object": "list", "data": [], "next_cursor": None}
    assert r.headers["Content-Type"].startswith("application/json")
    pid = import_number(d)
    r = d.api("GET", "/v1/calls", params={"number_id": pid, "limit": 5})
    assert r.status_code == 200 and r.json()["data"] == [], r.text
    for bad in ("ca_" + "a" * 26, "ca_nope", "pn_" + "a" * 26):
        r = d.api("GET", "/v1/calls/" + bad)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "not_found"
    r = d.api("GET", "/v1/calls", params={"number_id": "nope"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "number_id", r.text
    r = d.api("GET", "/v1/calls", params={"cursor": "zz"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "cursor", r.text
    r = d.api("GET", "/v1/calls", token="")
    assert r.status_code == 401
    r = d.api("POST", "/v1/calls", json={})  # outbound calls: the body names what is missing
    assert r.status_code == 400 and r.json()["error"]["field"] == "from", r.text
    # events of a number: empty list; of a missing number: 404
    r = d.api("GET", "/v1/phone-numbers/%s/events" % pid)
    assert r.status_code == 200 and r.json()["data"] == [], r.text
    r = d.api("GET", "/v1/phone-numbers/pn_%s/events" % ("a" * 26))
    assert r.status_code == 404, r.text
    # the operator names the workspace
    r = d.api("GET", "/v1/calls", token=d.operator_token)
    assert r.status_code == 400, r.text
    r = d.api("GET", "/v1/calls", token=d.operator_token,
              params={"workspace_id": d.workspace_id})
    assert r.status_code == 200, r.text


def test_events_tenant_isolation(make_daemon):
    d = sip_daemon(make_daemon)
    pid = import_number(d)
    assert register_udp(d, NUMBER) == 403
    _, data = events(d, pid)
    assert len(data) == 1
    # another workspace: 404, exactly like a missing number
    r = d.api("POST", "/v1/workspaces", token=d.operator_token,
              json={"name": "other", "plan": "professional"})
    assert r.status_code == 201, r.text
    ws2 = r.json()["id"]
    r = d.api("POST", "/v1/tokens", token=d.operator_token,
              json={"role": "member", "name": "m", "workspace_id": ws2})
    other = r.json()["token"]
    r = d.api("GET", "/v1/phone-numbers/%s/events" % pid, token=other)
    assert r.status_code == 404, r.text
    assert "registration_attempt" not in r.text
    r = d.api("GET", "/v1/phone-numbers/%s/events" % pid, token=d.operator_token,
              params={"workspace_id": ws2})
    assert r.status_code == 404, r.text
    r = d.api("GET", "/v1/calls", token=other)
    assert r.status_code == 200 and r.json()["data"] == []
    # the owner's member token reads them; so does the operator naming the workspace
    r = d.api("GET", "/v1/phone-numbers/%s/events" % pid, token=d.operator_token,
              params={"workspace_id": d.workspace_id})
    assert r.status_code == 200 and len(r.json()["data"]) == 1, r.text
    # a deleted number's events are no longer listed
    assert d.api("DELETE", "/v1/phone-numbers/" + pid).status_code == 204
    r = d.api("GET", "/v1/phone-numbers/%s/events" % pid)
    assert r.status_code == 404, r.text


def test_operator_events(make_daemon):
    d = sip_daemon(make_daemon)
    r = d.api("GET", "/v1/events", token=d.operator_token)
    assert r.status_code == 200, r.text
    assert r.json() == {"object": "list", "data": [], "next_cursor": None}
    # REGISTERs for numbers nobody holds: operator-level events (no workspace, no number)
    assert register_udp(d, "+14155550100") == 403
    assert register_udp(d, "+14155550101") == 403
    end = time.monotonic() + 5
    while True:
        r = d.api("GET", "/v1/events", token=d.operator_token)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        if len(data) >= 2 or time.monotonic() > end:
            break
        time.sleep(0.05)
    assert len(data) == 2, data
    assert r.json()["object"] == "list" and r.json()["next_cursor"] is None
    for e in data:
        assert re.fullmatch(r"ev_[0-9a-z]{26}", e["id"])
        assert e["object"] == "event" and e["number_id"] is None
        assert e["code"] == "registration_attempt"
        assert e["hint"] == HINT
        assert re.fullmatch(r"127\.0\.0\.1:\d+", e["details"]["source"])
        assert e["details"]["method"] == "REGISTER" and e["details"]["status"] == 403
    # newest first
    assert [e["details"]["to_user"] for e in data] == ["+14155550101", "+14155550100"]
    assert SECRET_RESPONSE not in r.text and "Digest" not in r.text
    # workspace tokens may not see them
    r = d.api("GET", "/v1/events")
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
    r = d.api("GET", "/v1/events", token="")
    assert r.status_code == 401
    # nor do they show up in the workspace's lists
    pid = import_number(d)
    r = d.api("GET", "/v1/phone-numbers/%s/events" % pid)
    assert r.status_code == 200 and r.json()["data"] == [], r.text
    # paging, newest first
    r = d.api("GET", "/v1/events", token=d.operator_token, params={"limit": 1})
    page = r.json()
    assert [e["id"] for e in page["data"]] == [data[0]["id"]]
    assert page["next_cursor"]
    r = d.api("GET", "/v1/events", token=d.operator_token,
              params={"limit": 1, "cursor": page["next_cursor"]})
    assert [e["id"] for e in r.json()["data"]] == [data[1]["id"]]
    assert r.json()["next_cursor"] is None
    r = d.api("GET", "/v1/events", token=d.operator_token, params={"cursor": "zz"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "cursor", r.text

"""Interop with a carrier's edge (issue 8): the gateway behind a record-routing Kamailio
proxy, as real carriers put it (one hop, two hops, enable_double_rr), with SIPp as the
carrier's UA; and the long-call cases that used to lose the hang-up.

What must hold (RFC 3261 §12.2.1.1, §8.1.2, §18.2.2):
- our in-dialog requests (here: the BYE when the agent hangs up) follow the route set to
  the proxy's Record-Route address, never the packet source of the INVITE (the proxy's
  ephemeral port); SIPp receiving the BYE through the proxy proves it;
- they still arrive when the carrier's connection closed during the call (a new
  connection to the Record-Route address) and when the call outlived sip_tcp_idle_s
  (a connection that carries a call is not closed for idleness);
- a BYE that cannot be delivered is recorded as such (end_reason bye_failed + event);
- digest behind a proxy that rewrote the Request-URI: the digest uri names the proxy's
  address, the number is the same: accepted.

Synchronisation: SIPp's own scenario (it waits for the BYE), the API (records, events) and
the daemon's log, each with a deadline; no sleeps."""
import os
import re
import shutil
import socket
import subprocess
import threading

import pytest

from conftest import free_port
from kamailio_proxy import Proxy
from sipclient import SipClient, sdp_offer
from test_inbound_calls import (PASSWORD, call_record, echo_id, event, gw,  # noqa: F401
                                import_number, wait_for)
from test_sip_endpoint import SIPP, SIPP_DIR, needs_sipp

NUMBER = "+493012345699"

needs_kamailio = pytest.mark.skipif(not shutil.which("kamailio"),
                                    reason="kamailio not installed (scripts/install-deps.sh)")


def agent_hangs_up_after(d, ms):
    """The builtin echo agent hangs up this long after the call starts: a BYE of ours."""
    aid = echo_id(d)
    r = d.api("PATCH", "/v1/agents/" + aid, json={"parameters": {"hangup_after_ms": str(ms)}})
    assert r.status_code == 200, r.text


def sipp_through(d, proxy_port, scenario="proxy_call.xml", extra=(), timeout=40):
    """SIPp (UDP) calls NUMBER through the proxy; returns (returncode, output, errors)."""
    cmd = [SIPP, "-sf", os.path.join(SIPP_DIR, scenario), "-m", "1", "-t", "u1",
           "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)),
           "127.0.0.1:%d" % proxy_port, "-key", "number", NUMBER, "-timeout", "30s",
           "-timeout_error", "-trace_err", "-nostdin", "-nd"] + list(extra)
    p = subprocess.run(cmd, cwd=d.dir, capture_output=True, timeout=timeout)
    errs = ""
    for f in os.listdir(d.dir):
        if f.endswith("_errors.log"):
            errs += open(os.path.join(d.dir, f), errors="replace").read()
            os.unlink(os.path.join(d.dir, f))
    return p.returncode, p.stdout.decode(errors="replace"), errs


def ok_through(d, proxy_port, **kw):
    code, out, errs = sipp_through(d, proxy_port, **kw)
    assert code == 0, "sipp: %s\n%s\n%s\n--- daemon ---\n%s" % (
        code, out[-1500:], errs[-3000:], d.log_text()[-3000:])


@pytest.fixture
def proxies(tmp_path):
    made = []

    def start(port=None, **kw):
        p = Proxy(str(tmp_path), port or free_port(), **kw)
        made.append(p)
        return p
    yield start
    for p in made:
        p.stop()


def last_call(d):
    r = d.api("GET", "/v1/calls")
    assert r.status_code == 200, r.text
    calls = r.json()["data"]
    assert calls, "no call record"
    return calls[0]


@needs_sipp
@needs_kamailio
@pytest.mark.parametrize("hops", [1, 2])
def test_bye_follows_the_route_set(gw, proxies, hops):
    """One hop (UDP from SIPp, TCP to us, double Record-Route) and two hops (SIPp → P1 over
    UDP → P2 → us over TCP): the agent hangs up, our BYE goes to the first Route URI (the
    proxy next to us) and reaches SIPp through every proxy."""
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="60")
    import_number(d, number=NUMBER, transport="tcp")
    agent_hangs_up_after(d, 1500)
    edge = proxies(to=(d.sip_port, "tcp"))
    first = edge if hops == 1 else proxies(to=(edge.port, "udp"))
    ok_through(d, first.port)
    rec = call_record(d, last_call(d)["sip_call_id"])
    assert rec["end_reason"] == "agent_hangup", rec
    log = d.log_text()
    assert "uac.hop_failed" not in log, log[-3000:]
    assert "bye.failed" not in log


@needs_sipp
@needs_kamailio
def test_digest_behind_a_proxy_that_rewrites_the_request_uri(gw, proxies):
    """The carrier's UA answers our challenge for the Request-URI it sent (the proxy's
    address); the proxy then rewrites the Request-URI to ours. The digest uri names the same
    number at another host: accepted, the call goes through."""
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="60")
    import_number(d, number=NUMBER, transport="tcp", username="carrier")
    agent_hangs_up_after(d, 500)
    edge = proxies(to=(d.sip_port, "tcp"), rewrite_ruri=True)
    ok_through(d, edge.port, scenario="proxy_auth_call.xml",
               extra=["-au", "carrier", "-ap", PASSWORD])
    log = d.log_text()
    assert "digest_uri_mismatch" not in log and "credentials_mismatch" not in log, log[-3000:]
    rec = call_record(d, last_call(d)["sip_call_id"])
    assert rec["end_reason"] == "agent_hangup", rec


@needs_kamailio
def test_digest_uri_for_another_resource_is_named(gw, proxies):
    """A digest uri that names neither us nor the number: 403 with its own Warning and
    event, not a "malformed credentials" 400."""
    d = gw()
    pid = import_number(d, number=NUMBER, transport="tcp", username="carrier")
    c = SipClient(d.sip_port, "tcp")
    try:
        r = c.invite(NUMBER, sdp_offer(40000))
        assert r.code == 401
        c.ack_failure(r)
        ch = r.get("www-authenticate")
        nonce = re.search(r'nonce="([^"]+)"', ch).group(1)
        realm = re.search(r'realm="([^"]+)"', ch).group(1)
        opaque = re.search(r'opaque="([^"]+)"', ch).group(1)
        algo = re.search(r"algorithm=([A-Z0-9-]+)", ch).group(1)
        import hashlib
        h = hashlib.md5 if algo == "MD5" else hashlib.sha256
        uri = "sip:+4930999999@edge.carrier.example"
        ha1 = h(("carrier:%s:%s" % (realm, PASSWORD)).encode()).hexdigest()
        ha2 = h(("INVITE:%s" % uri).encode()).hexdigest()
        resp = h(("%s:%s:00000001:c0ffee:auth:%s" % (ha1, nonce, ha2)).encode()).hexdigest()
        auth = ('Authorization: Digest username="carrier", realm="%s", nonce="%s", uri="%s", '
                'response="%s", algorithm=%s, qop=auth, nc=00000001, cnonce="c0ffee", '
                'opaque="%s"\r\n' % (realm, nonce, uri, resp, algo, opaque))
        c.cseq += 1
        r = c.invite(NUMBER, sdp_offer(40000), extra=auth)
        assert r.code == 403, r.raw
        assert "digest uri names neither this gateway nor the called number" in r.get("warning")
        c.ack_failure(r)
    finally:
        c.close()
    ev = event(d, pid, "digest_uri_mismatch")
    assert "proxy" in ev["hint"]


@needs_sipp
@needs_kamailio
def test_bye_after_the_carrier_connection_closed(gw, proxies, tmp_path):
    """The carrier's edge restarts during the call: its TCP connection to us is gone. The
    agent's BYE then opens a new connection to the proxy's Record-Route address — not to the
    dead connection's ephemeral port — and reaches SIPp through the restarted proxy (loose
    routing needs no dialog state in the proxy)."""
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="60")
    import_number(d, number=NUMBER, transport="tcp")
    agent_hangs_up_after(d, 8000)
    edge = proxies(to=(d.sip_port, "tcp"))
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", sipp_through(d, edge.port)))
    t.start()
    try:
        wait_for(lambda: "call answered" in d.log_text(), "the call to be answered")
        edge.kill()
        wait_for(lambda: 'reason="closed by peer"' in d.log_text(), "the connection to close")
        proxies(to=(d.sip_port, "tcp"), port=edge.port)  # the edge is back, same address
    finally:
        t.join(60)
    code, out, errs = result["r"]
    assert code == 0, "sipp: %s\n%s\n%s\n--- daemon ---\n%s" % (
        code, out[-1500:], errs[-3000:], d.log_text()[-3000:])
    log = d.log_text()
    assert "uac.hop_failed" not in log and "bye.failed" not in log, log[-3000:]
    rec = call_record(d, last_call(d)["sip_call_id"])
    assert rec["end_reason"] == "agent_hangup", rec


@needs_sipp
@needs_kamailio
def test_call_longer_than_the_idle_timeout(gw, proxies):
    """sip_tcp_idle_s = 2 s, the call lasts 5 s without SIP traffic, then the agent hangs
    up: the connection that carries the call was kept (pinged, not closed), and the BYE
    goes over it."""
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="60", TRUNKLINE_SIP_TCP_IDLE_S="2",
           TRUNKLINE_SIP_KEEPALIVE_S="1")
    import_number(d, number=NUMBER, transport="tcp")
    agent_hangs_up_after(d, 5000)
    edge = proxies(to=(d.sip_port, "tcp"))
    ok_through(d, edge.port)
    log = d.log_text()
    assert 'reason="idle"' not in log, log[-3000:]
    assert "uac.hop_failed" not in log and "bye.failed" not in log, log[-3000:]
    rec = call_record(d, last_call(d)["sip_call_id"])
    assert rec["end_reason"] == "agent_hangup", rec


def test_keepalive_pings_on_a_connection_with_a_call(gw):
    """A connection that carries a call, quiet for sip_keepalive_s, gets the RFC 5626
    double-CRLF ping (and is not closed at sip_tcp_idle_s)."""
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="60", TRUNKLINE_SIP_TCP_IDLE_S="1",
           TRUNKLINE_SIP_KEEPALIVE_S="1")
    import_number(d, number=NUMBER, transport="tcp")
    c = SipClient(d.sip_port, "tcp")
    try:
        r = c.invite(NUMBER, sdp_offer(40000))
        assert r.code == 200, r.raw
        c.ack()
        c.sock.settimeout(10)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = c.sock.recv(64)
            assert chunk, "connection closed"
            got += chunk
        assert got.startswith(b"\r\n\r\n"), got
        r = c.bye()  # the connection still works after idle_s
        assert r.code == 200
    finally:
        c.close()


def test_undeliverable_bye_is_recorded(gw):
    """The carrier's connection is gone and its Contact (where our BYE must go without a
    route set) refuses connections: the BYE fails and the record says bye_failed, with an
    event — never a clean end."""
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="60")
    pid = import_number(d, number=NUMBER, transport="tcp")
    agent_hangs_up_after(d, 1000)
    c = SipClient(d.sip_port, "tcp")
    dead = free_port()  # nothing listens here
    try:
        c.local = ("127.0.0.1", dead)  # our Contact (and Via) now name a dead port
        r = c.invite(NUMBER, sdp_offer(40000))
        assert r.code == 200, r.raw
        c.ack()
    finally:
        c.close()  # the carrier's connection goes away before the agent hangs up
    ev = event(d, pid, "bye_failed")
    assert "agent_hangup" in ev["message"], ev
    # the end record is written twice (the hang-up, then the BYE's outcome): wait for the last
    wait_for(lambda: last_call(d).get("end_reason") == "bye_failed", "end_reason bye_failed")


def test_tls_contact_names_our_host_and_bye_has_no_contact(gw):
    """Over TLS our Contact is the name in our certificate (public_host, RFC 5922 §7.2), so a
    carrier that opens a new TLS connection to it can verify it; our BYE carries no Contact
    (RFC 3261 Table 3)."""
    d = gw(TRUNKLINE_MEDIA_TIMEOUT_S="60")
    import_number(d, number=NUMBER, transport="tls")
    agent_hangs_up_after(d, 300)
    c = SipClient(d.tls_port, "tls")
    try:
        r = c.invite(NUMBER, sdp_offer(40000))
        assert r.code == 200, r.raw
        assert re.match(r"<sip:gw\.test:%d;transport=tls>" % d.tls_port, r.get("contact")), \
            r.get("contact")
        c.ack()
        bye = c.wait_bye()
        assert bye.get("contact") is None and bye.get("m") is None, bye.raw
    finally:
        c.close()


def test_failed_tls_handshake_is_logged_as_the_server_side(gw):
    """A client that cannot complete the handshake (here: it speaks plain HTTP to the TLS
    port) is logged by the server side with OpenSSL's reason, never as a client (uac)
    failure."""
    d = gw()
    with socket.create_connection(("127.0.0.1", d.tls_port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
    wait_for(lambda: "tls.handshake_failed" in d.log_text(), "the handshake failure log line")
    line = next(ln for ln in d.log_text().splitlines() if "tls.handshake_failed" in ln)
    assert "side=server" in line and 'reason="' in line and 'reason="unknown"' not in line, line
    assert "uac.conn_failed" not in d.log_text()

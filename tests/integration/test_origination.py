"""The inbound trunk's origination URL (issue 10): when a number has no agent, or its agent
cannot be reached, inbound calls go to that SIP URI, and the gateway stays in the call as a
B2BUA with the media relayed — records, the trunk's SRTP policy and the caps still apply.
Empty, the call is refused as before (480 no_agent / agent_unreachable).

The destination is a Python UAS (its SDP names a UDP echo socket), found by RFC 3263
through dnsserver.py; the caller is sipclient.py with rtpclient.py, which checks the audio
that went caller → gateway → destination → gateway → caller byte for byte. Waits are for
messages and API conditions with deadlines."""
import socket
import threading

from bots import Bot
from rtpclient import RtpClient, echoed, known_sequence
from sipclient import SipClient, parse_answer, sdp_offer
from test_inbound_calls import NUMBER, call_record, event, gw  # noqa: F401 (fixture)
from test_outbound_calls import dns, wait_for, zone_for  # noqa: F401 (fixture)
from test_sip_uac import PyUas, response
from test_sip_uac import sipp  # noqa: F401 (fixture)

LOCAL = {"TRUNKLINE_AGENT_ALLOW_NETWORKS": "127.0.0.0/8",
         "TRUNKLINE_AGENT_INSECURE_HOSTS": "127.0.0.1"}


class Echo:
    """A UDP socket that sends every packet back to where it came from (the destination's
    media)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.n = 0
        self.stopping = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stopping:
            try:
                data, addr = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            self.n += 1
            self.sock.sendto(data, addr)

    def stop(self):
        self.stopping = True
        self.t.join(5)
        self.sock.close()


def destination(echo, seen):
    def h(start, hdrs, body=None):
        seen.append(start.split(" ")[0])
        if start.startswith("INVITE"):
            sdp = sdp_offer(echo.port).encode()
            r = response(start, hdrs, "200 OK").decode()
            return [r.replace("Content-Length: 0\r\n\r\n", "Content-Type: application/sdp\r\n"
                              "Content-Length: %d\r\n\r\n" % len(sdp)).encode() + sdp]
        if start.startswith("BYE"):
            return [response(start, hdrs, "200 OK", tag=False)]
        return []
    return h


def number(d, origination, agent_id=None):
    body = {"number": NUMBER,
            "inbound_trunk": {"transport": "tcp", "media_encryption": "disabled",
                              "origination_url": origination, "allow_any_source": True},
            "outbound_trunk": {"address": "sip.example.com"}}
    if agent_id:
        body["agent_id"] = agent_id
    r = d.api("POST", "/v1/phone-numbers", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def relayed_call(d):
    """A call from the carrier; the audio must come back through the destination's echo."""
    rtp = RtpClient()
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite(NUMBER, sdp_offer(rtp.port))
        assert r.code == 200, r.raw
        sc.ack()
        ip, port, _, _, _, _ = parse_answer(r.body)
        rtp.set_remote(ip, port)
        frames = known_sequence(50, seed=9)
        rtp.run(frames)
        assert echoed(frames, rtp.audio_bytes()), "no relayed echo: %d bytes back" % len(
            rtp.audio_bytes())
        assert sc.bye().code == 200
        return sc
    finally:
        sc.close()
        rtp.close()


def test_no_agent_goes_to_the_origination_url(gw, dns):  # noqa: F811
    echo, seen = Echo(), []
    uas = PyUas(destination(echo, seen))
    try:
        z = dns(zone_for(uas.port, name="pbx.test"))
        d = gw(TRUNKLINE_SIP_DNS_SERVERS="127.0.0.1:%d" % z.port, **LOCAL)
        number(d, "sip:frontdesk@pbx.test")
        sc = relayed_call(d)
        wait_for(lambda: "BYE" in seen, "the BYE on the destination's leg")
        inv = [h for s, h in uas.seen if s.startswith("INVITE")][0]
        assert "frontdesk@pbx.test" in inv["to"][0]
        assert echo.n >= 40
    finally:
        uas.stop()
        echo.stop()
    rec = call_record(d, sc.call_id)
    assert rec["status"] == "completed" and rec["agent_id"] is None, rec
    assert rec["rtp"]["packets_received"] >= 40 and rec["rtp"]["packets_sent"] >= 40, rec


def test_unreachable_agent_falls_back(gw, dns):  # noqa: F811
    echo, seen = Echo(), []
    uas = PyUas(destination(echo, seen))
    bot = Bot(reject_status=503)  # the agent's server refuses the WebSocket upgrade
    try:
        z = dns(zone_for(uas.port, name="pbx.test"))
        d = gw(TRUNKLINE_SIP_DNS_SERVERS="127.0.0.1:%d" % z.port, **LOCAL)
        r = d.api("POST", "/v1/agents", json={"name": "down", "kind": "websocket",
                                              "url": bot.url})
        assert r.status_code == 201, r.text
        pid = number(d, "sip:pbx.test", r.json()["id"])
        relayed_call(d)
        e = event(d, pid, "agent_unreachable")
        assert "origination URL" in e["hint"] and "forwarded" in e["message"], e
    finally:
        uas.stop()
        echo.stop()
        bot.stop()


def test_unreachable_origination_url_refuses(gw, dns):  # noqa: F811
    z = dns({})  # every name NXDOMAIN
    d = gw(TRUNKLINE_SIP_DNS_SERVERS="127.0.0.1:%d" % z.port, **LOCAL)
    pid = number(d, "sip:pbx.nowhere.test")
    rtp = RtpClient()
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite(NUMBER, sdp_offer(rtp.port))
        assert r.code == 480, r.raw
        assert "origination unreachable" in (r.get("reason") or ""), r.raw
    finally:
        sc.close()
        rtp.close()
    e = event(d, pid, "origination_unreachable")
    assert "origination_url" in e["hint"] and "resolve" in e["hint"], e


def test_origination_refused_inside_the_gateways_networks(gw, dns):  # noqa: F811
    """A user-given destination passes the same guard as agent URLs: loopback is refused
    unless the operator allows it."""
    uas = PyUas(lambda s, h: [response(s, h, "200 OK")] if s.startswith("INVITE") else [])
    try:
        z = dns(zone_for(uas.port, name="pbx.test"))
        d = gw(TRUNKLINE_SIP_DNS_SERVERS="127.0.0.1:%d" % z.port)  # no allow-list
        pid = number(d, "sip:pbx.test")
        sc = SipClient(d.sip_port, "tcp")
        rtp = RtpClient()
        try:
            r = sc.invite(NUMBER, sdp_offer(rtp.port))
            assert r.code == 480, r.raw
        finally:
            sc.close()
            rtp.close()
        e = event(d, pid, "origination_unreachable")
        assert "loopback" in e["hint"] and "agent_allow_networks" in e["hint"], e
    finally:
        uas.stop()
    assert not uas.seen  # nothing was sent there


def test_destination_hangs_up(gw, dns, sipp):  # noqa: F811
    """The destination's BYE ends the carrier's leg (we send it BYE) and the record says
    who hung up."""
    s = sipp("out_dest_bye.xml")
    z = dns(zone_for(s.port, name="pbx.test"))
    d = gw(TRUNKLINE_SIP_DNS_SERVERS="127.0.0.1:%d" % z.port, **LOCAL)
    number(d, "sip:pbx.test")
    rtp = RtpClient()
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite(NUMBER, sdp_offer(rtp.port))
        assert r.code == 200, r.raw
        sc.ack()
        sc.wait_bye()
    finally:
        sc.close()
        rtp.close()
    assert s.wait() == 0  # SIPp's BYE was answered
    rec = call_record(d, sc.call_id)
    assert rec["end_reason"] == "origination_hangup" and rec["status"] == "completed", rec

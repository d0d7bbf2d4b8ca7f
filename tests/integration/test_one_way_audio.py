"""One-way audio (issue 10, the spec's troubleshooting): in both call directions, when no
RTP arrives from the carrier within one_way_audio_s of the answer, or it stops arriving
while ours flows, the number gets one one_way_audio event whose hint says what the spec
says (media encryption Allowed on both sides, check signalling, back to Required). Both
sides silent is a pause, not a fault.

Waits are for the event (the recorder writes in batches) with a deadline."""
import asyncio

from bots import Bot, media_msg
from rtpclient import RtpClient, known_sequence
from sipclient import SipClient, parse_answer, sdp_offer
from test_inbound_calls import event, gw, import_number  # noqa: F401 (fixture)
from test_outbound_calls import (dns, gateway, import_number as import_out,  # noqa: F401
                                 place, status_is, wait_for, zone_for)
from test_sip_uac import PyUas, response

HINT_WORDS = ("Media encryption to Allowed on both sides", "signalling",
              "go back to Required")


def check_event(e, never, direction):
    assert e["details"]["never"] is never and e["details"]["direction"] == direction, e
    for w in HINT_WORDS:
        assert w in e["hint"], e["hint"]


def test_inbound_no_rtp_after_the_answer(gw):  # noqa: F811
    d = gw(TRUNKLINE_ONE_WAY_AUDIO_S="1", TRUNKLINE_MEDIA_TIMEOUT_S="30")
    pid = import_number(d)
    rtp = RtpClient()
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite("+493012345678", sdp_offer(rtp.port))
        assert r.code == 200, r.raw
        sc.ack()
        e = event(d, pid, "one_way_audio")  # we send nothing: the gateway hears nothing
        check_event(e, True, "inbound")
        assert e["details"]["packets_received"] == 0
        assert sc.bye().code == 200
    finally:
        sc.close()
        rtp.close()


def test_inbound_rtp_stops_while_ours_flows(gw):  # noqa: F811
    """The agent talks on (a 10 s greeting queued at start); the caller's RTP stops after
    one second: reported as stopped, not never."""
    async def talker(bot, ws):
        await ws.send(media_msg(bot, b"\x55" * 8000 * 10))
        while True:
            await asyncio.sleep(1)
    bot = Bot(behave=talker)
    try:
        d = gw(TRUNKLINE_ONE_WAY_AUDIO_S="1", TRUNKLINE_MEDIA_TIMEOUT_S="30",
               TRUNKLINE_AGENT_ALLOW_NETWORKS="127.0.0.0/8",
               TRUNKLINE_AGENT_INSECURE_HOSTS="127.0.0.1")
        r = d.api("POST", "/v1/agents", json={"name": "talker", "kind": "websocket",
                                              "url": bot.url})
        assert r.status_code == 201, r.text
        pid = import_number(d)
        assert d.api("PATCH", "/v1/phone-numbers/" + pid,
                     json={"agent_id": r.json()["id"]}).status_code == 200
        rtp = RtpClient()
        sc = SipClient(d.sip_port, "tcp")
        try:
            r = sc.invite("+493012345678", sdp_offer(rtp.port))
            assert r.code == 200, r.raw
            sc.ack()
            ip, port, _, _, _, _ = parse_answer(r.body)
            rtp.set_remote(ip, port)
            rtp.run(known_sequence(50, seed=5), tail_frames=0)  # one second, then silence
            e = event(d, pid, "one_way_audio")
            check_event(e, False, "inbound")
            assert e["details"]["packets_received"] >= 40, e
            assert sc.bye().code == 200
        finally:
            sc.close()
            rtp.close()
    finally:
        bot.stop()


def test_outbound_no_rtp_after_the_answer(make_daemon, dns):  # noqa: F811
    silent = RtpClient()  # its port is in the answer; it never sends

    def h(start, hdrs):
        if start.startswith("INVITE"):
            sdp = sdp_offer(silent.port).encode()
            r = response(start, hdrs, "200 OK").decode()
            r = r.replace("Content-Length: 0\r\n\r\n", "Content-Type: application/sdp\r\n"
                          "Content-Length: %d\r\n\r\n" % len(sdp)).encode() + sdp
            return [r]
        if start.startswith("BYE"):
            return [response(start, hdrs, "200 OK", tag=False)]
        return []
    uas = PyUas(h)
    try:
        d = gateway(make_daemon, dns(zone_for(uas.port)), {"TRUNKLINE_ONE_WAY_AUDIO_S": "1"})
        pid = import_out(d)
        c = place(d)
        wait_for(lambda: status_is(d, c["id"], "in_progress"), "in_progress")
        e = wait_for(lambda: next((x for x in d.api(
            "GET", "/v1/phone-numbers/%s/events" % pid).json()["data"]
            if x["code"] == "one_way_audio"), None), "one_way_audio")
        check_event(e, True, "outbound")
        assert e["details"]["call_id"] == c["id"]
        assert d.api("POST", "/v1/calls/%s/hangup" % c["id"]).status_code == 200
    finally:
        uas.stop()
        silent.close()

"""WebSocket agents (issue 9): a call to a number whose agent is a Twilio Media Streams bot.
The bots (bots.py) reproduce on the wire what real ones do — Pipecat, the OpenAI realtime
demo, OpenAI Agents JS, Vocode, Deepgram's sample — and the tests check what trunkline
sends them (every field, as Twilio shapes it) and what it does with what they send.

Callers are the Python SIP UAC and RTP client (sipclient.py, rtpclient.py). Waits are on
messages, frames and records with deadlines; the only clock is RTP pacing."""
import base64
import json
import os
import socket
import subprocess
import threading

import pytest
import requests

import dnsserver
from bots import DEADLINE, Bot, echo, media_msg, run_coroutine, tls_server_context
from conftest import free_port
from rtpclient import RtpClient, echoed, known_sequence
from sipclient import SipClient, parse_answer, sdp_offer
from test_inbound_calls import event, import_number, wait_for

NUMBER = "+493012345670"
SECRET = "Bearer sk-bot-SECRET-42"


@pytest.fixture
def gw(make_daemon):
    made = []

    def start(**extra):
        env = {"TRUNKLINE_SIP_TCP_PORT": str(free_port()),
               "TRUNKLINE_SIP_TLS_PORT": str(free_port()),
               "TRUNKLINE_SIP_LISTEN": "127.0.0.1",
               "TRUNKLINE_MEDIA_TIMEOUT_S": "10",
               "TRUNKLINE_AGENT_ALLOW_NETWORKS": "127.0.0.0/8",
               "TRUNKLINE_AGENT_INSECURE_HOSTS": "127.0.0.1,localhost"}
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
        assert "sk-bot-SECRET" not in log, "an agent header value reached the log"


@pytest.fixture
def bots():
    made = []

    def start(**kw):
        b = Bot(**kw)
        made.append(b)
        return b
    yield start
    for b in made:
        b.stop()


def ws_agent(d, url, params=None, timeout_ms=None, expect=201):
    body = {"name": "bot", "kind": "websocket", "url": url,
            "headers": [{"name": "Authorization", "value": SECRET}],
            "parameters": params or {"persona": "friendly"}}
    if timeout_ms:
        body["connect_timeout_ms"] = timeout_ms
    r = d.api("POST", "/v1/agents", json=body)
    assert r.status_code == expect, r.text
    return r.json()


def number_with(d, agent_id):
    pid = import_number(d, number=NUMBER, transport="tcp", agent=False)
    r = d.api("PATCH", "/v1/phone-numbers/" + pid, json={"agent_id": agent_id})
    assert r.status_code == 200, r.text
    return pid


class Call:
    """INVITE (with an X- header, as carriers add them), ACK, RTP; the daemon's own
    requests (BYE, REFER) are taken from the SIP client's inbox."""

    def __init__(self, d, frames=50):
        self.rtp = RtpClient()
        self.sc = SipClient(d.sip_port, "tcp")
        self.r = self.sc.invite(NUMBER, sdp_offer(self.rtp.port),
                                extra="X-Customer-Id: 12345\r\n")

    def answered(self):
        assert self.r.code == 200, self.r.raw
        self.sc.ack()
        ip, port = parse_answer(self.r.body)[:2]
        self.rtp.set_remote(ip, port)
        return self

    def close(self):
        self.sc.close()
        self.rtp.close()


def record(d, sip_call_id, want=lambda c: c.get("ended_at")):
    def find():
        r = d.api("GET", "/v1/calls")
        assert r.status_code == 200, r.text
        return [c for c in r.json()["data"] if c["sip_call_id"] == sip_call_id and want(c)]
    return wait_for(find, "call record of " + sip_call_id)[0]


# ---- the happy path, field by field --------------------------------------------------

def test_echo_bot_hears_twilio_frames_and_answers(gw, bots):
    """A bot that echoes (payload-only media, Pipecat's shape): the caller's audio comes
    back byte for byte; what the bot received is exactly Twilio's frames."""
    d = gw()
    bot = bots()
    agent = ws_agent(d, bot.url, params={"persona": "friendly"})
    assert agent["connect_timeout_ms"] == 5000
    assert agent["headers"] == [{"name": "Authorization", "value_set": True}]
    pid = number_with(d, agent["id"])
    c = Call(d).answered()
    try:
        frames = known_sequence(50, seed=3)
        c.rtp.run(frames)
        assert echoed(frames, c.rtp.audio_bytes()), "echo mismatch through the bot"
        assert c.sc.bye().code == 200
        # the gateway hangs up the bot: stop, then close 1000 (bots ignore stop)
        bot.wait_for(lambda b: b.closed, "the gateway to close the bot")
    finally:
        c.close()
    assert bot.closed[0][0] == 1000, bot.closed
    assert bot.headers[0].get("Authorization") == SECRET  # the sealed header, on the upgrade
    connected, start = bot.frames[0], bot.frames[1]
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    s = start["start"]
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    assert start["streamSid"] == s["streamSid"] and s["streamSid"].startswith("MZ")
    for k, pfx in (("streamSid", "MZ"), ("callSid", "CA"), ("accountSid", "AC")):
        assert len(s[k]) == 34 and s[k][:2] == pfx and int(s[k][2:], 16) >= 0, s
    assert s["tracks"] == ["inbound"]
    assert s["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    cp = s["customParameters"]
    assert cp["from_number"] and cp["to_number"] == NUMBER and cp["direction"] == "inbound"
    assert cp["phone_number_id"] == pid and cp["agent_id"] == agent["id"]
    assert cp["persona"] == "friendly" and cp["X-Customer-Id"] == "12345"
    assert set(s["extensions"]) >= {"hangup", "transfer", "sendDigits"}
    media = bot.events("media")
    assert len(media) >= 45
    seqs = [int(f["sequenceNumber"]) for f in media]
    assert seqs == list(range(2, 2 + len(seqs))), seqs[:10]  # after start's 1, no gaps
    assert [int(f["media"]["chunk"]) for f in media] == list(range(1, len(media) + 1))
    ts = [int(f["media"]["timestamp"]) for f in media]
    assert ts[0] == 0 and all(b - a == 20 for a, b in zip(ts, ts[1:])), ts[:10]
    for f in media:
        assert f["streamSid"] == s["streamSid"] and f["media"]["track"] == "inbound"
        assert isinstance(f["sequenceNumber"], str) and isinstance(f["media"]["timestamp"], str)
        assert len(base64.b64decode(f["media"]["payload"])) == 160
    stop = bot.events("stop")
    assert stop and stop[0]["stop"] == {"accountSid": s["accountSid"], "callSid": s["callSid"]}
    rec = record(d, c.sc.call_id)
    assert rec["end_reason"] == "bye_received" and rec["final_status"] == 200, rec

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


# ---- what real bots send --------------------------------------------------------------

def twilio_api(d, bot, status="completed", twiml=None, token=None, account=None):
    """Pipecat's hang-up: POST {base}/2010-04-01/Accounts/{AC}/Calls/{CA}.json, HTTP Basic
    (AccountSid, auth token), form Status=completed."""
    s = bot.started()["start"]
    form = {}
    if status:
        form["Status"] = status
    if twiml:
        form["Twiml"] = twiml
    ac = account or s["accountSid"]
    return requests.post("%s/2010-04-01/Accounts/%s/Calls/%s.json" % (d.url, ac, s["callSid"]),
                         data=form, auth=(ac, token or d.twilio_token), timeout=10)


def issue_twilio_token(d):
    r = d.api("POST", "/v1/twilio-account")
    assert r.status_code == 201, r.text
    d.twilio_token = r.json()["auth_token"]
    assert len(d.twilio_token) == 32
    return r.json()


def test_pipecat_like_bursts_one_big_message_and_rest_hangup(gw, bots):
    """Pipecat at its default rates sends 1,100-byte bursts, before a hang-up one
    16,500-byte message of silence, then POSTs Status=completed and closes 1000. All of
    its audio reaches the caller, paced; the REST call hangs up; the record says so."""
    d = gw()
    acct = issue_twilio_token(d)
    pattern = bytes((i * 7 + 1) % 254 + 1 for i in range(1100 * 4))
    done = threading.Event()

    async def pipecat(bot, ws):
        for i in range(4):
            await ws.send(media_msg(bot, pattern[i * 1100:(i + 1) * 1100]))
        await ws.send(media_msg(bot, b"\xff" * 16500))  # 2 s of mu-law silence, one message
        done.set()
        await ws.wait_closed()

    bot = bots(behave=pipecat)
    number_with(d, ws_agent(d, bot.url)["id"])
    c = Call(d).answered()
    try:
        assert bot.started()["start"]["accountSid"] == acct["account_sid"]
        c.rtp.run(known_sequence(150, seed=5), tail_frames=40)  # 3 s: bursts + silence play
        got = c.rtp.audio_bytes()
        assert pattern in got, "the bursts did not reach the caller in order"
        assert got.count(b"\xff" * 160) >= 100, "the 16,500-byte message was not played"
        r = twilio_api(d, bot)
        assert r.status_code == 200, r.text
        j = r.json()
        assert j["sid"] == bot.started()["start"]["callSid"] and j["account_sid"] == acct["account_sid"]
        assert j["status"] == "completed" and j["api_version"] == "2010-04-01", j
        c.sc.wait_bye()
    finally:
        c.close()
    rec = record(d, c.sc.call_id)
    assert rec["end_reason"] == "api_hangup", rec
    # the same resource by GET, and a wrong token is refused Twilio's way
    g = requests.get("%s/2010-04-01/Accounts/%s/Calls/%s.json" % (
        d.url, acct["account_sid"], bot.started()["start"]["callSid"]),
        auth=(acct["account_sid"], d.twilio_token), timeout=10)
    assert g.status_code == 200 and g.json()["status"] == "completed", g.text
    bad = twilio_api(d, bot, token="0" * 32)
    assert bad.status_code == 401 and bad.json()["code"] == 20003, bad.text
    assert bad.headers["WWW-Authenticate"].startswith("Basic")


def test_marks_echoed_after_their_audio_and_without_a_name(gw, bots):
    """OpenAI's realtime demo sends a mark without a name after audio and reads
    media.timestamp; Agents JS relies on marks coming back once the audio before them has
    played. The mark comes back only after the caller received that audio."""
    d = gw()
    heard_at_mark = {}

    async def openai_demo(bot, ws):
        while len(bot.events("media")) < 5:
            await __import__("asyncio").sleep(0.01)
        await ws.send(media_msg(bot, b"\x11" * 160 * 50))  # one second of audio
        await ws.send(json.dumps({"event": "mark", "streamSid": bot.start["streamSid"],
                                  "mark": {}}))
        await ws.send(json.dumps({"event": "mark", "streamSid": bot.start["streamSid"],
                                  "mark": {"name": "turn-1"}}))
        await ws.wait_closed()

    bot = bots(behave=openai_demo)
    number_with(d, ws_agent(d, bot.url)["id"])
    c = Call(d).answered()
    try:
        def on_mark(b):
            marks = b.events("mark")
            if marks and "first" not in heard_at_mark:
                heard_at_mark["first"] = c.rtp.audio_bytes().count(b"\x11" * 160)
            return len(marks) >= 2
        t = threading.Thread(target=c.rtp.run, args=(known_sequence(120, seed=9),))
        t.start()
        bot.wait_for(on_mark, "two marks back")
        t.join()
    finally:
        c.sc.bye()
        c.close()
    marks = bot.events("mark")
    assert [m["mark"].get("name") for m in marks] == ["", "turn-1"], marks
    assert int(marks[0]["sequenceNumber"]) > int(bot.events("media")[-1]["sequenceNumber"]) - 200
    # every frame of the second of audio had reached the caller before the first mark
    assert heard_at_mark["first"] >= 48, heard_at_mark
    ts = [int(f["media"]["timestamp"]) for f in bot.events("media")]
    assert ts == sorted(ts)


def test_clear_drops_audio_and_returns_pending_marks_in_order(gw, bots):
    """Vocode: marks come back in order, also across clear. Five seconds of audio and two
    marks queued, then clear: the marks come back at once, in order, and the caller hears
    far less than five seconds."""
    d = gw()

    async def vocode(bot, ws):
        while len(bot.events("media")) < 5:
            await __import__("asyncio").sleep(0.01)
        sid = bot.start["streamSid"]
        await ws.send(media_msg(bot, b"\x22" * 160 * 125))
        await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "a"}}))
        await ws.send(media_msg(bot, b"\x22" * 160 * 125))
        await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "b"}}))
        await ws.send(json.dumps({"event": "clear", "streamSid": sid}))
        await ws.wait_closed()

    bot = bots(behave=vocode)
    number_with(d, ws_agent(d, bot.url)["id"])
    c = Call(d).answered()
    try:
        heard = {}

        def marks_back(b):
            if len(b.events("mark")) >= 2 and "n" not in heard:
                heard["n"] = c.rtp.audio_bytes().count(b"\x22" * 160)
            return len(b.events("mark")) >= 2
        t = threading.Thread(target=c.rtp.run, args=(known_sequence(100, seed=4),))
        t.start()
        bot.wait_for(marks_back, "both marks back after clear")
        t.join()
    finally:
        c.sc.bye()
        c.close()
    assert [m["mark"]["name"] for m in bot.events("mark")] == ["a", "b"]
    assert heard["n"] < 125, heard  # the clear dropped what had not played


def test_dtmf_both_ways(gw, bots):
    """RFC 4733 from the caller reaches the bot as dtmf {track: inbound_track, digit}; the
    bot's sendDigits extension goes out as RFC 4733."""
    d = gw()

    async def digits(bot, ws):
        while not bot.events("dtmf"):
            await __import__("asyncio").sleep(0.01)
        await ws.send(json.dumps({"event": "sendDigits", "streamSid": bot.start["streamSid"],
                                  "sendDigits": {"digits": "42#"}}))
        await ws.wait_closed()

    bot = bots(behave=digits)
    number_with(d, ws_agent(d, bot.url)["id"])
    c = Call(d).answered()
    try:
        c.rtp.run(known_sequence(20, seed=2), dtmf="7", tail_frames=150)
    finally:
        c.sc.bye()
        c.close()
    dt = bot.events("dtmf")
    assert dt and dt[0]["dtmf"] == {"track": "inbound_track", "digit": "7"}, dt
    assert c.rtp.dtmf_digits() == "42#", c.rtp.received[-10:]


def test_transfer_extension_refers_the_carrier(gw, bots):
    """The bot asks for a transfer: a blind REFER goes to the carrier (the number's trunk
    domain for an E.164 target), its NOTIFYs come back to the bot as transfer status, and
    the carrier's BYE ends the call as transferred."""
    d = gw()

    async def transfer(bot, ws):
        await ws.send(json.dumps({"event": "transfer", "streamSid": bot.start["streamSid"],
                                  "transfer": {"target": "+4930999888"}}))
        await ws.wait_closed()

    bot = bots(behave=transfer)
    number_with(d, ws_agent(d, bot.url)["id"])
    c = Call(d).answered()
    try:
        refer = c.sc.recv(lambda m: m.method == "REFER")
        assert refer.get("refer-to") == "<sip:+4930999888@sip.example.com>", refer.raw
        c.sc.answer_request(refer, 202)
        for code, state in ((180, "active;expires=60"), (200, "terminated;reason=noresource")):
            frag = ("SIP/2.0 %d %s\r\n" % (code, "Ringing" if code == 180 else "OK")).encode()
            c.sc.request("NOTIFY", c.sc.ruri, frag,
                         extra="Event: refer\r\nSubscription-State: %s\r\n" % state,
                         ctype="message/sipfrag;version=2.0")
            assert c.sc.response("NOTIFY").code == 200
        bot.wait_for(lambda b: any(f["transfer"]["status"] == "completed"
                                   for f in b.events("transfer")), "transfer completed")
        assert c.sc.bye().code == 200
    finally:
        c.close()
    st = [f["transfer"]["status"] for f in bot.events("transfer")]
    assert st[0] == "trying" and st[-1] == "completed" and "ringing" in st, st
    assert record(d, c.sc.call_id)["end_reason"] == "transferred"


# ---- an agent that cannot be reached: 480 with the reason, an event with a hint -------

def make_ca(d, names):
    def run(*a):
        subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=trunkline test CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
        "srv.key", "-out", "srv.csr", "-subj", "/CN=bot")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=%s\n" % ",".join(names))
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    return (os.path.join(d, "srv.pem"), os.path.join(d, "srv.key"), os.path.join(d, "ca.pem"))


def self_signed(d):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ss.key", "-out", "ss.pem",
                    "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   cwd=d, check=True, capture_output=True)
    return os.path.join(d, "ss.pem"), os.path.join(d, "ss.key")


UNREACHABLE = ["refused", "dns", "untrusted", "wrong_name", "http401", "http404", "timeout",
               "bad_accept"]


@pytest.mark.parametrize("case", UNREACHABLE)
def test_unreachable_agent_is_480_with_reason_and_event(gw, bots, tmp_path, case):
    env, timeout = {}, None
    dns = None
    if case == "refused":
        url = "ws://127.0.0.1:%d/media" % free_port()
    elif case == "dns":
        dns = dnsserver.start({})  # every name NXDOMAIN
        env["TRUNKLINE_SIP_DNS_SERVERS"] = "127.0.0.1:%d" % dns.port
        url = "wss://bot.example.test/media"
    elif case == "untrusted":
        cert, key = self_signed(str(tmp_path))
        url = bots(ssl_ctx=tls_server_context(cert, key)).url
    elif case == "wrong_name":
        cert, key, ca = make_ca(str(tmp_path), ["DNS:other.example"])
        env["TRUNKLINE_AGENT_TLS_CA_FILE"] = ca
        b = bots(ssl_ctx=tls_server_context(cert, key))
        url = "wss://localhost:%d/media" % b.port
    elif case in ("http401", "http404"):
        url = bots(reject_status=int(case[4:])).url
    elif case == "timeout":
        url, timeout = bots(never_answer=True).url, 1000
    elif case == "bad_accept":
        url = bots(raw_handshake=b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"
                   b"\r\n").url
    try:
        d = gw(**env)
        agent = ws_agent(d, url, timeout_ms=timeout)
        pid = number_with(d, agent["id"])
        c = Call(d)
        try:
            assert c.r.code == 480, c.r.raw
            reason = c.r.get("reason") or ""
            assert "agent unreachable" in reason, c.r.raw
            c.sc.ack_failure(c.r)
        finally:
            c.close()
        ev = event(d, pid, "agent_unreachable")
        want = {"refused": "refused", "dns": "resolve", "untrusted": "not trusted",
                "wrong_name": "other", "http401": "401", "http404": "404",
                "timeout": "1000 ms", "bad_accept": "Accept"}[case]
        assert want in ev["hint"], ev
        assert "sk-bot-SECRET" not in json.dumps(ev)
        rec = record(d, c.sc.call_id)
        assert rec["end_reason"] == "agent_unreachable" and rec["final_status"] == 480, rec
        assert d.api("GET", "/healthz", token="").status_code == 200
    finally:
        if dns:
            dns.stop()


# ---- an agent that misbehaves mid-call: BYE, the reason in the record, an event -------

def misbehave(kind):
    async def run(bot, ws):
        sid = bot.start["streamSid"]
        if kind == "close":
            await ws.close(1000, "bye")
        elif kind == "not_json":
            await ws.send("hello, I am not JSON")
        elif kind == "binary":
            await ws.send(b"\x00\x01\x02")
        elif kind == "bad_base64":
            await ws.send(json.dumps({"event": "media", "streamSid": sid,
                                      "media": {"payload": "!!!not base64!!!"}}))
        elif kind == "too_big":
            await ws.send(json.dumps({"event": "media", "streamSid": sid,
                                      "media": {"payload": "A" * (1 << 20)}}))
        await ws.wait_closed()
    return run


@pytest.mark.parametrize("kind,reason,code,word", [
    ("close", "agent_closed", None, None),
    ("not_json", "agent_error", "agent_protocol_error", "JSON"),
    ("binary", "agent_error", "agent_protocol_error", "binary"),
    ("bad_base64", "agent_error", "agent_protocol_error", "base64"),
    ("too_big", "agent_error", "agent_protocol_error", "1009"),
])
def test_misbehaving_agent_ends_the_call(gw, bots, kind, reason, code, word):
    d = gw()
    bot = bots(behave=misbehave(kind))
    pid = number_with(d, ws_agent(d, bot.url)["id"])
    c = Call(d).answered()
    try:
        c.sc.wait_bye()
    finally:
        c.close()
    rec = record(d, c.sc.call_id)
    assert rec["end_reason"] == reason, rec
    if code:
        ev = event(d, pid, code)
        assert word in ev["message"] or word in ev["hint"], ev
    assert d.api("GET", "/healthz", token="").status_code == 200


def test_agent_that_never_reads_is_cut_off(gw, bots):
    """A bot that stops reading: its socket buffers fill, then our send queue reaches its
    cap; the call ends (BYE, agent_not_reading) instead of memory growing."""
    d = gw(TRUNKLINE_AGENT_SEND_QUEUE_KIB="8")

    async def deaf(bot, ws):
        await __import__("asyncio").Event().wait()  # never returns, never reads

    bot = bots(behave=deaf, rcvbuf=4096, deaf=True)
    pid = number_with(d, ws_agent(d, bot.url)["id"])
    c = Call(d).answered()
    try:
        t = threading.Thread(target=c.rtp.run, args=(known_sequence(1500, seed=1),))
        t.daemon = True
        t.start()
        c.sc.wait_bye(timeout=60)
    finally:
        c.close()
    rec = record(d, c.sc.call_id)
    assert rec["end_reason"] == "agent_not_reading", rec
    assert "read" in event(d, pid, "agent_not_reading")["hint"]


# ---- the agent's configuration ---------------------------------------------------------

def test_agent_url_rules(gw):
    d = gw(TRUNKLINE_AGENT_ALLOW_NETWORKS="", TRUNKLINE_AGENT_INSECURE_HOSTS="")
    cases = [("ws://bot.example.com/m", "ws://"),
             ("wss://127.0.0.1/m", "loopback"),
             ("wss://169.254.169.254/latest", "metadata"),
             ("wss://10.1.2.3/m", "private"),
             ("wss://[::1]/m", "loopback")]
    for url, word in cases:
        r = d.api("POST", "/v1/agents", json={"name": "x", "kind": "websocket", "url": url})
        assert r.status_code == 400, (url, r.text)
        e = r.json()["error"]
        assert e["field"] == "url" and word in e["message"], (url, e)
    r = d.api("POST", "/v1/agents", json={"name": "x", "kind": "websocket",
                                          "url": "wss://bot.example.test/m",
                                          "connect_timeout_ms": 99})
    assert r.status_code == 400 and r.json()["error"]["field"] == "connect_timeout_ms"


def test_header_values_never_follow_a_new_host(gw):
    """PATCH that moves the URL to another host drops the stored header values unless the
    same request gives them again, and says so."""
    d = gw()
    a = ws_agent(d, "ws://127.0.0.1:9/media")
    r = d.api("PATCH", "/v1/agents/" + a["id"], json={"url": "ws://127.0.0.1:9/other"})
    assert r.status_code == 200 and "warnings" not in r.json(), r.text
    assert r.json()["headers"] == [{"name": "Authorization", "value_set": True}]
    r = d.api("PATCH", "/v1/agents/" + a["id"], json={"url": "ws://localhost:9/media"})
    assert r.status_code == 200, r.text
    w = r.json()["warnings"]
    assert w[0]["code"] == "header_values_dropped" and "Authorization" in w[0]["message"], w
    assert r.json()["headers"] == []


def test_the_example_bot_runs(gw):
    """examples/echo_bot.py, as a user runs it: the caller hears themselves half a second
    later, and the bot printed the call's parameters."""
    here = os.path.dirname(os.path.abspath(__file__))
    script = os.path.join(here, "..", "..", "examples", "echo_bot.py")
    port = free_port()
    p = subprocess.Popen(["/usr/bin/python3", "-u", script, "--port", str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "echo bot on" in p.stdout.readline()
        d = gw()
        number_with(d, ws_agent(d, "ws://127.0.0.1:%d/media" % port)["id"])
        c = Call(d).answered()
        try:
            frames = known_sequence(60, seed=8)
            c.rtp.run(frames, tail_frames=60)  # the echo comes 25 frames late
            assert echoed(frames[:30], c.rtp.audio_bytes()), "no delayed echo from the example"
        finally:
            c.sc.bye()
            c.close()
    finally:
        p.terminate()
        out = p.communicate(timeout=10)[0]
    assert "from" in out and NUMBER in out, out

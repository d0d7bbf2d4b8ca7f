"""TwiML agents (issue 14): a number whose agent is a bot set up for Twilio — a voice URL
answering TwiML (voicebot.py) and the WebSocket its <Connect><Stream> names (bots.py).
The caller is the Python SIP UAC and RTP client; waits are on messages, requests and
records with deadlines."""
import socket

import pytest

from bots import Bot
from rtpclient import echoed, known_sequence
from test_agents_ws import NUMBER, Call, gw, issue_twilio_token, number_with, record  # noqa: F401
from test_inbound_calls import event
from voicebot import VoiceBot, signature, slow, validate


@pytest.fixture
def web():
    made = []

    def start(routes, token=None):
        b = VoiceBot(routes, token)
        made.append(b)
        return b
    yield start
    for b in made:
        b.stop()


@pytest.fixture
def ws():
    made = []

    def start(**kw):
        b = Bot(**kw)
        made.append(b)
        return b
    yield start
    for b in made:
        b.stop()


def stream_twiml(bot, after="", before="", params=(("persona", "friendly"),)):
    ps = "".join('<Parameter name="%s" value="%s"/>' % p for p in params)
    return ('<?xml version="1.0" encoding="UTF-8"?><Response>%s<Connect><Stream url="%s">%s'
            '</Stream></Connect>%s</Response>' % (before, bot.url, ps, after))


def twiml_agent(d, voice_url, expect=201, **kw):
    body = {"name": "twilio bot", "kind": "twiml", "voice_url": voice_url}
    body.update(kw)
    r = d.api("POST", "/v1/agents", json=body)
    assert r.status_code == expect, r.text
    return r.json()


def refused(d, code):
    """A call the gateway must refuse with code; returns (response, record)."""
    c = Call(d)
    try:
        assert c.r.code == code, c.r.raw
        c.sc.ack_failure(c.r)
    finally:
        c.close()
    return c.r, record(d, c.sc.call_id)


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    return p


# ---- the whole setup of a Twilio bot, unchanged ------------------------------------------

def test_voice_url_then_stream_echo_signed(gw, web, ws):
    """The voice URL gets Twilio's parameters, signed with the workspace's auth token (the
    bot checks with its own HMAC code); its <Connect><Stream> reaches the WebSocket bot
    with the <Parameter>s; the caller's audio comes back through it."""
    d = gw()
    acct = issue_twilio_token(d)
    bot = ws()
    vb = web({"/voice": stream_twiml(bot)}, token=d.twilio_token)
    agent = twiml_agent(d, vb.url())
    assert agent["voice_url"] == vb.url() and agent["method"] == "POST"
    assert agent["fallback_url"] is None and agent["timeout_ms"] == 5000
    number_with(d, agent["id"])
    c = Call(d).answered()
    try:
        frames = known_sequence(50, seed=5)
        c.rtp.run(frames)
        assert echoed(frames, c.rtp.audio_bytes()), "echo mismatch through the TwiML stream"
        assert c.sc.bye().code == 200
    finally:
        c.close()
    req = vb.to("/voice")
    assert len(req) == 1 and req[0]["method"] == "POST"
    assert req[0]["sig_ok"], "X-Twilio-Signature did not validate: %s" % req[0]["headers"]
    p = req[0]["p"]
    start = bot.started()["start"]
    assert p["CallSid"] == start["callSid"] and p["CallSid"].startswith("CA")
    assert p["AccountSid"] == acct["account_sid"] == start["accountSid"]
    assert p["To"] == p["Called"] == NUMBER
    assert p["From"] == p["Caller"] and p["From"]
    assert p["CallStatus"] == "ringing" and p["Direction"] == "inbound"
    assert p["ApiVersion"] == "2010-04-01"
    assert p["SipHeader_X-Customer-Id"] == "12345"
    assert start["customParameters"]["persona"] == "friendly"
    # the validator can fail: a changed parameter or another token does not validate
    form = dict(req[0]["form"])
    sig = req[0]["headers"]["X-Twilio-Signature"]
    assert not validate(d.twilio_token, req[0]["url"], dict(form, To=["+15550000000"]), sig)
    assert not validate("0" * 32, req[0]["url"], form, sig)
    assert signature(d.twilio_token, req[0]["url"], form) == sig
    assert record(d, c.sc.call_id)["end_reason"] == "bye_received"


def test_a_bot_checking_signatures_refuses_a_wrong_token(gw, web):
    """The bot's validator can fail: with another auth token than the workspace's, its 403
    makes the call fail (480), and the event says what the voice URL answered."""
    d = gw()
    issue_twilio_token(d)
    vb = web({"/voice": "<Response><Hangup/></Response>"}, token="f" * 32)
    pid = number_with(d, twiml_agent(d, vb.url())["id"])
    refused(d, 480)
    assert not vb.requests[0]["sig_ok"]
    assert "HTTP 403" in event(d, pid, "voice_url_failed")["message"]


def test_get_method_signs_the_url(gw, web, ws):
    d = gw()
    issue_twilio_token(d)
    bot = ws()
    vb = web({"/voice": stream_twiml(bot)}, token=d.twilio_token)
    number_with(d, twiml_agent(d, vb.url("/voice?tenant=a%20b"), method="GET")["id"])
    c = Call(d).answered()
    try:
        bot.started()
        assert c.sc.bye().code == 200
    finally:
        c.close()
    req = vb.to("/voice")[0]
    assert req["method"] == "GET" and req["p"]["tenant"] == "a b"
    assert req["p"]["To"] == NUMBER and req["sig_ok"], req


def test_pause_then_connect(gw, web, ws):
    """<Pause> first delays the answer (the caller hears ringing), then the stream runs."""
    d = gw()
    bot = ws()
    vb = web({"/voice": stream_twiml(bot, before='<Pause length="1"/>')})
    number_with(d, twiml_agent(d, vb.url())["id"])
    c = Call(d).answered()
    try:
        frames = known_sequence(30, seed=6)
        c.rtp.run(frames)
        assert echoed(frames, c.rtp.audio_bytes())
        assert c.sc.bye().code == 200
    finally:
        c.close()
    rec = record(d, c.sc.call_id)
    assert rec["end_reason"] == "bye_received" and rec["final_status"] == 200


def test_reject_busy_486_and_rejected_603(gw, web):
    d = gw()
    vb = web({"/busy": '<Response><Reject reason="busy"/></Response>',
              "/no": "<Response><Reject/></Response>"})
    agent = twiml_agent(d, vb.url("/busy"))
    number_with(d, agent["id"])
    r, rec = refused(d, 486)
    assert "Reject" in (r.get("reason") or ""), r.raw
    assert rec["end_reason"] == "rejected" and rec["final_status"] == 486
    assert d.api("PATCH", "/v1/agents/" + agent["id"],
                 json={"voice_url": vb.url("/no")}).status_code == 200
    r, rec = refused(d, 603)
    assert rec["end_reason"] == "rejected" and rec["final_status"] == 603


def test_redirect_fetches_the_next_document(gw, web, ws):
    """A relative <Redirect> is fetched from the document's own URL, with the call's
    parameters; its TwiML carries on the call."""
    d = gw()
    bot = ws()
    vb = web({"/app/voice": '<Response><Redirect method="POST">next</Redirect></Response>',
              "/app/next": stream_twiml(bot)})
    number_with(d, twiml_agent(d, vb.url("/app/voice"))["id"])
    c = Call(d).answered()
    try:
        bot.started()
        assert c.sc.bye().code == 200
    finally:
        c.close()
    assert [r["path"] for r in vb.requests] == ["/app/voice", "/app/next"]
    assert vb.to("/app/next")[0]["p"]["CallSid"] == vb.to("/app/voice")[0]["p"]["CallSid"]


def test_hangup_after_the_stream_sends_bye(gw, web, ws):
    """The bot closes its WebSocket: the TwiML after <Connect> runs, <Hangup/> ends the call
    with our BYE."""
    d = gw()

    async def short(b, sock):
        await sock.close()

    bot = ws(behave=short)
    vb = web({"/voice": stream_twiml(bot, after="<Hangup/>")})
    number_with(d, twiml_agent(d, vb.url())["id"])
    c = Call(d).answered()
    try:
        c.sc.wait_bye()
    finally:
        c.close()
    assert record(d, c.sc.call_id)["end_reason"] == "twiml_hangup"


def test_stream_closed_and_nothing_after(gw, web, ws):
    """Most bots end the call by closing the stream with nothing after <Connect>: BYE, and
    the record says the agent closed."""
    d = gw()

    async def short(b, sock):
        await sock.close()

    bot = ws(behave=short)
    vb = web({"/voice": stream_twiml(bot)})
    number_with(d, twiml_agent(d, vb.url())["id"])
    c = Call(d).answered()
    try:
        c.sc.wait_bye()
    finally:
        c.close()
    assert record(d, c.sc.call_id)["end_reason"] == "agent_closed"


def test_play_digits_then_hangup(gw, web):
    d = gw()
    vb = web({"/voice": '<Response><Play digits="1w2"/><Hangup/></Response>'})
    number_with(d, twiml_agent(d, vb.url())["id"])
    c = Call(d).answered()
    try:
        c.rtp.run(known_sequence(60, seed=7), tail_frames=0)
        c.sc.wait_bye()
    finally:
        c.close()
    assert c.rtp.dtmf_digits() == "12"


def test_say_speaks_then_hangup(gw, web):
    """<Say> (eSpeak NG): speech, not silence, reaches the caller before the BYE."""
    d = gw()
    vb = web({"/voice": '<Response><Say language="en-US">Hello from trunkline.</Say>'
                        '<Hangup/></Response>'})
    number_with(d, twiml_agent(d, vb.url())["id"])
    c = Call(d).answered()
    try:
        c.rtp.run(known_sequence(150, seed=8), tail_frames=0)
        c.sc.wait_bye()
    finally:
        c.close()
    audio = c.rtp.audio_bytes()
    loud = sum(1 for b in audio if b not in (0xFF, 0x7F, 0xFE, 0x7E))
    assert loud > 4000, "no speech in %d bytes of audio" % len(audio)
    assert record(d, c.sc.call_id)["end_reason"] == "twiml_hangup"


def test_dial_refers_the_carrier(gw, web):
    d = gw()
    vb = web({"/voice": "<Response><Dial><Number>+4930999888</Number></Dial></Response>"})
    number_with(d, twiml_agent(d, vb.url())["id"])
    c = Call(d).answered()
    try:
        refer = c.sc.recv(lambda m: m.method == "REFER")
        assert refer.get("refer-to") == "<sip:+4930999888@sip.example.com>", refer.raw
        c.sc.answer_request(refer, 202)
        frag = b"SIP/2.0 200 OK\r\n"
        c.sc.request("NOTIFY", c.sc.ruri, frag,
                     extra="Event: refer\r\nSubscription-State: terminated;reason=noresource\r\n",
                     ctype="message/sipfrag;version=2.0")
        assert c.sc.response("NOTIFY").code == 200
        assert c.sc.bye().code == 200
    finally:
        c.close()
    assert record(d, c.sc.call_id)["end_reason"] == "transferred"


def test_status_callback_signed(gw, web, ws):
    d = gw()
    issue_twilio_token(d)
    bot = ws()
    vb = web({"/voice": stream_twiml(bot), "/status": (204, "")}, token=d.twilio_token)
    number_with(d, twiml_agent(d, vb.url(), status_callback=vb.url("/status"))["id"])
    c = Call(d).answered()
    try:
        bot.started()
        assert c.sc.bye().code == 200
    finally:
        c.close()
    st = vb.wait_for(lambda b: b.to("/status"), "the status callback")[0]
    assert st["sig_ok"], st
    p = st["p"]
    assert p["CallStatus"] == "completed" and p["To"] == NUMBER
    assert p["CallSid"] == vb.to("/voice")[0]["p"]["CallSid"]
    assert int(p["CallDuration"]) >= 0 and p["SipResponseCode"] == "200"


# ---- failures: each ends with an event and the stated SIP code ---------------------------

def test_voice_url_down_then_fallback(gw, web, ws):
    d = gw()
    bot = ws()
    down = "http://127.0.0.1:%d/voice" % free_tcp_port()
    vb = web({"/fallback": stream_twiml(bot)})
    pid = number_with(d, twiml_agent(d, down, fallback_url=vb.url("/fallback"))["id"])
    c = Call(d).answered()
    try:
        bot.started()
        assert c.sc.bye().code == 200
    finally:
        c.close()
    p = vb.to("/fallback")[0]["p"]
    assert p["ErrorCode"] == "11205" and p["ErrorUrl"] == down
    ev = event(d, pid, "voice_url_failed")
    assert "fallback" in ev["message"] and down in ev["message"], ev


def test_voice_url_down_no_fallback_480(gw):
    d = gw()
    down = "http://127.0.0.1:%d/voice" % free_tcp_port()
    pid = number_with(d, twiml_agent(d, down)["id"])
    r, rec = refused(d, 480)
    assert rec["end_reason"] == "agent_unreachable"
    assert "voice URL" in (r.get("reason") or ""), r.raw
    ev = event(d, pid, "voice_url_failed")
    assert "connect" in ev["message"].lower() or "refused" in ev["message"].lower(), ev
    assert ev["hint"]


def test_voice_url_timeout_480(gw, web):
    d = gw()
    vb = web({"/voice": slow(3, "<Response><Hangup/></Response>")})
    pid = number_with(d, twiml_agent(d, vb.url(), timeout_ms=300)["id"])
    r, rec = refused(d, 480)
    assert rec["end_reason"] == "agent_unreachable"
    assert "300 ms" in event(d, pid, "voice_url_failed")["message"]


def test_voice_url_500_480(gw, web):
    d = gw()
    vb = web({"/voice": (500, "boom", "text/plain")})
    pid = number_with(d, twiml_agent(d, vb.url())["id"])
    refused(d, 480)
    assert "HTTP 500" in event(d, pid, "voice_url_failed")["message"]


def test_not_xml_500(gw, web):
    d = gw()
    vb = web({"/voice": (200, "{\"say\": \"hi\"}", "application/json")})
    pid = number_with(d, twiml_agent(d, vb.url())["id"])
    r, rec = refused(d, 500)
    assert rec["end_reason"] == "twiml_error"
    ev = event(d, pid, "twiml_invalid")
    assert vb.url() in ev["message"], ev


def test_unknown_verb_500(gw, web):
    d = gw()
    vb = web({"/voice": "<Response><Gather input=\"speech\"/></Response>"})
    pid = number_with(d, twiml_agent(d, vb.url())["id"])
    r, rec = refused(d, 500)
    assert "Gather" in (r.get("reason") or ""), r.raw
    assert "Gather" in event(d, pid, "twiml_unsupported")["message"]


def test_redirect_loop_ends(gw, web):
    d = gw()
    vb = web({"/voice": "<Response><Redirect>/voice</Redirect></Response>"})
    pid = number_with(d, twiml_agent(d, vb.url())["id"])
    refused(d, 500)
    assert "loop" in event(d, pid, "twiml_invalid")["message"]
    assert len(vb.requests) == 11


# ---- the agent's configuration -----------------------------------------------------------

def test_voice_url_rules(gw):
    d = gw(TRUNKLINE_AGENT_ALLOW_NETWORKS="", TRUNKLINE_AGENT_INSECURE_HOSTS="")
    cases = [("http://bot.example.com/voice", "voice_url", "http://"),
             ("https://127.0.0.1/voice", "voice_url", "loopback"),
             ("https://169.254.169.254/latest", "voice_url", "metadata"),
             ("wss://bot.example.com/ws", "voice_url", "<Connect><Stream")]
    for url, field, word in cases:
        r = d.api("POST", "/v1/agents", json={"name": "x", "kind": "twiml", "voice_url": url})
        assert r.status_code == 400, (url, r.text)
        assert r.json()["error"]["field"] == field and word in r.json()["error"]["message"], r.text
    r = d.api("POST", "/v1/agents", json={"name": "x", "kind": "twiml",
                                          "voice_url": "https://bot.example.com/voice",
                                          "status_callback": "https://10.0.0.5/status"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "status_callback", r.text


def test_rotated_token_signs_the_next_call_and_revoked_means_unsigned(gw, web):
    """The routing cache follows the workspace's Twilio credentials: after a rotation the
    next call is signed with the new token; after DELETE requests go unsigned."""
    d = gw()
    issue_twilio_token(d)
    first = d.twilio_token
    vb = web({"/voice": "<Response><Reject/></Response>"})
    number_with(d, twiml_agent(d, vb.url())["id"])

    def sig_of_next_call():
        n = len(vb.requests)
        refused(d, 603)
        req = vb.requests[n]
        return req, req["headers"].get("X-Twilio-Signature")

    req, sig = sig_of_next_call()
    assert validate(first, req["url"], req["form"], sig)
    issue_twilio_token(d)
    assert d.twilio_token != first
    req, sig = sig_of_next_call()
    assert validate(d.twilio_token, req["url"], req["form"], sig)
    assert not validate(first, req["url"], req["form"], sig)
    assert d.api("DELETE", "/v1/twilio-account").status_code in (200, 204)
    req, sig = sig_of_next_call()
    assert sig is None

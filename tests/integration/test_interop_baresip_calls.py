"""Interop, issue 4: baresip 1.0.0 (Debian baresip-core) calls an imported number assigned
to the builtin `echo` agent through the real call layer (no sip_test_policy), over TLS with
mandatory SRTP (account mediaenc=srtp-mand, srtp.so) and over TCP with plain RTP, and the
echo is verified on the audio baresip actually decoded.

Audio: the test writes a WAV (8 kHz mono S16LE): 1 kHz for 1 s, 500 Hz for 1 s, 1.5 kHz for
1 s, then silence (long enough that aufile, a source only in 1.0.0, never reaches the end
of the file during the call: its end closes the call). baresip plays it with aufile and
records what it receives with the sndfile filter (snd_path: dump-<time>-dec.wav, the
decoded incoming audio; -enc.wav is what it sent). Config:
tests/integration/baresip/config_calls.in.

Verified: per 100 ms window of the recording, the dominant of the three tones (Goertzel)
when it holds most of the window's energy above a noise floor; the runs of such windows
must be exactly the sent order 1 kHz → 500 Hz → 1.5 kHz, each at least 0.7 s long
(G.711 both ways is lossy, frequencies survive). The same analysis of baresip's own
-enc.wav checks the analyser.

TLS trust: baresip's sip_cafile is the daemon's self-made certificate
(<data_dir>/tls/cert.pem). baresip 1.0.0 has no sip_verify_server switch, and as a TLS
client (libre 1.1.0) it does not verify the server's certificate at all: with a wrong
sip_cafile the call is established just the same. So this test proves TLS signalling and
SRTP interop, not certificate validation.

Waits are on events with deadlines: ctrl_tcp CALL_ESTABLISHED / CALL_CLOSED, the decode
recording growing to the target size, the call record (written by the recorder thread)
appearing ended in GET /v1/calls.
"""
import glob
import math
import os
import re
import struct
import time
import wave

import pytest

from conftest import free_port
from bots import Bot
from voicebot import VoiceBot
from test_interop_baresip import DEADLINE, MODULES, Baresip, make_cert
from test_interop_baresip import pytestmark as _baresip_mark

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG_CALLS = os.path.join(HERE, "baresip", "config_calls.in")
NUMBER = "+493012345678"
RATE = 8000
WIN = RATE // 10                       # 100 ms analysis window
TONES = (1000, 500, 1500)              # the sent pattern, 1 s each
TONE_S = 1.0
SILENCE_S = 12.0                       # tail of the source file (see above)
AMPLITUDE = 12000
# the recording holds the pattern's echo once it has this much audio (pattern + margin)
TARGET_S = len(TONES) * TONE_S + 1.5

pytestmark = [_baresip_mark, pytest.mark.skipif(
    not all(os.path.exists(os.path.join(MODULES, m)) for m in
            ("aufile.so", "sndfile.so", "srtp.so", "g711.so")),
    reason="baresip modules aufile/sndfile/srtp/g711 not installed")]


# ---- audio ----------------------------------------------------------------------------

def write_source(path):
    samples = []
    for f in TONES:
        n = int(TONE_S * RATE)
        # 5 ms ramps so the tone edges do not splatter across the bands
        for i in range(n):
            env = min(1.0, i / 40.0, (n - 1 - i) / 40.0)
            samples.append(int(AMPLITUDE * env * math.sin(2 * math.pi * f * i / RATE)))
    samples += [0] * int(SILENCE_S * RATE)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(struct.pack("<%dh" % len(samples), *samples))


def goertzel(x, f):
    """Power of frequency f in window x (normalised like |DFT bin|^2 / N^2 * 2)."""
    k = 2 * math.cos(2 * math.pi * f / RATE)
    s1 = s2 = 0.0
    for v in x:
        s1, s2 = v + k * s1 - s2, s1
    p = s1 * s1 + s2 * s2 - k * s1 * s2
    return 2 * p / (len(x) * len(x))


def labels(samples):
    """One label per 100 ms window: the tone holding most of the window's energy, or None
    (silence, noise, a window straddling two tones)."""
    out = []
    for i in range(0, len(samples) - WIN + 1, WIN):
        x = samples[i:i + WIN]
        energy = sum(v * v for v in x) / len(x)        # mean square = total power
        if energy < (AMPLITUDE / 20.0) ** 2 / 2:       # 26 dB under the sent level
            out.append(None)
            continue
        powers = {f: goertzel(x, f) for f in TONES}
        f, p = max(powers.items(), key=lambda kv: kv[1])
        out.append(f if p > 0.6 * energy else None)
    return out


def runs(lab, min_windows=7):
    """The tone sequence: runs of one label at least min_windows long, in order."""
    seq, cur, n = [], None, 0
    for v in lab + [None]:
        if v == cur:
            n += 1
            continue
        if cur is not None and n >= min_windows:
            seq.append((cur, n))
        cur, n = v, 1
    return seq


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE), (
            path, w.getparams())
        data = w.readframes(w.getnframes())
    return list(struct.unpack("<%dh" % (len(data) // 2), data))


def assert_pattern(path, what):
    lab = labels(read_wav(path))
    seq = runs(lab)
    assert [f for f, _ in seq] == list(TONES), "%s: tone runs %r (want %r)\nwindows: %r" % (
        what, seq, TONES, lab)
    return seq


# ---- daemon and baresip ---------------------------------------------------------------

@pytest.fixture
def gw(make_daemon):
    """The daemon with its real call layer: SIP on free ports, no test policy."""
    port, tls = free_port(), free_port()
    d = make_daemon(env={"TRUNKLINE_SIP_TCP_PORT": str(port), "TRUNKLINE_SIP_TLS_PORT": str(tls),
                         "TRUNKLINE_SIP_LISTEN": "127.0.0.1",
                         # the WebSocket echo bot runs on this machine
                         "TRUNKLINE_AGENT_ALLOW_NETWORKS": "127.0.0.0/8",
                         "TRUNKLINE_AGENT_INSECURE_HOSTS": "127.0.0.1"})
    d.sip_port, d.tls_port = port, tls
    yield d
    assert d.stop() == 0, d.log_text()[-3000:]  # clean exit (also under ASan/LSan)
    log = d.log_text()
    assert "a=crypto" not in log and "inline:" not in log  # keys never logged


def import_echo_number(d, transport, media, agent_id=None):
    agents = d.api("GET", "/v1/agents")
    assert agents.status_code == 200, agents.text
    echo = agent_id or [a for a in agents.json()["data"] if a["name"] == "echo"][0]["id"]
    r = d.api("POST", "/v1/phone-numbers", json={
        "number": NUMBER, "label": "baresip", "agent_id": echo,
        "inbound_trunk": {"transport": transport, "media_encryption": media,
                          "allow_any_source": True},
        "outbound_trunk": {"address": "sip.example.com", "transport": "tls",
                           "media_encryption": "required"}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def call_record(d, sip_call_id, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while True:
        r = d.api("GET", "/v1/calls")
        assert r.status_code == 200, r.text
        recs = [c for c in r.json()["data"] if c["sip_call_id"] == sip_call_id and
                c.get("ended_at")]
        if recs:
            return recs[0]
        assert time.monotonic() < end, "no ended call record for %s in %ss: %s" % (
            sip_call_id, deadline, r.text[:2000])
        time.sleep(0.05)  # the recorder writes in batches; bounded by the deadline


def wait_file(b, pattern, size, deadline):
    """Wait until a file matching pattern (glob) is at least size bytes."""
    end = time.monotonic() + deadline
    while True:
        files = glob.glob(pattern)
        if files and os.path.getsize(files[0]) >= size:
            return files[0]
        if time.monotonic() > end or b.proc.poll() is not None:
            raise AssertionError("no %s of %d bytes in %ss (have %r)\n--- baresip ---\n%s" % (
                pattern, size, deadline, [(f, os.path.getsize(f)) for f in files],
                b.text()[-4000:]))
        time.sleep(0.05)  # file size poll, bounded by the deadline


@pytest.mark.parametrize("transport,media,mediaenc,agent", [
    ("tls", "required", "srtp-mand", "echo"),
    ("tcp", "disabled", None, "echo"),
    ("tcp", "allowed", None, "echo"),
    # issue 9's end to end: the agent is a Python WebSocket bot (Twilio Media Streams)
    ("tls", "required", "srtp-mand", "websocket"),
    # issue 14's: the bot's whole Twilio setup, its voice URL answering <Connect><Stream>
    ("tls", "required", "srtp-mand", "twiml"),
])
def test_baresip_calls_echo(gw, tmp_path, transport, media, mediaenc, agent):
    d = gw
    bot = None
    if agent == "websocket":
        bot = Bot()  # echoes the caller's audio as payload-only media, as Pipecat does
        r = d.api("POST", "/v1/agents", json={"name": "py-echo-bot", "kind": "websocket",
                                              "url": bot.url})
        assert r.status_code == 201, r.text
        import_echo_number(d, transport, media, r.json()["id"])
    elif agent == "twiml":
        bot = Bot()
        voice = VoiceBot({"/voice": '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
                                    '<Stream url="%s"/></Connect></Response>' % bot.url})
        r = d.api("POST", "/v1/agents", json={"name": "twilio-bot", "kind": "twiml",
                                              "voice_url": voice.url()})
        assert r.status_code == 201, r.text
        import_echo_number(d, transport, media, r.json()["id"])
    else:
        import_echo_number(d, transport, media)
    src = str(tmp_path / "source.wav")
    write_source(src)
    snd = tmp_path / "snd"
    snd.mkdir()
    _, pem = make_cert(str(tmp_path))
    port = d.tls_port if transport == "tls" else d.sip_port
    acc = "<sip:caller@127.0.0.1;transport=%s>;regint=0;audio_codecs=pcmu" % transport
    if mediaenc:
        acc += ";mediaenc=" + mediaenc
    for attempt in range(3):  # a port picked free can be taken before baresip binds it
        try:
            b = Baresip(tmp_path / ("try%d" % attempt), transport,
                        os.path.join(d.data_dir, "tls", "cert.pem"), pem,
                        config_in=CONFIG_CALLS, account=acc, source_wav=src,
                        snd_path=str(snd))
            break
        except AssertionError as e:
            if "Address already in use" not in str(e) or attempt == 2:
                raise
    try:
        # the account's ;transport= is appended to the dialled URI by baresip
        b.command("dial", "sip:%s@127.0.0.1:%d" % (NUMBER, port))
        est = b.wait_event("CALL_ESTABLISHED")
        decoded = wait_file(b, str(snd / "dump-*-dec.wav"), 44 + int(TARGET_S * RATE) * 2,
                            deadline=TARGET_S + DEADLINE)
        b.command("hangup")
        closed = b.wait_event("CALL_CLOSED")
        assert closed.get("id") == est.get("id"), (closed, est)
        out = b.text()
        # our 200 OK as baresip received it: its Call-ID and the media line
        ok = re.search(r"SIP/2\.0 200 [^\r\n]*\r\n(?:[^\r\n]+\r\n)*?Call-ID: *([^\r\n]+)\r\n"
                       r"(?:[^\r\n]+\r\n)*\r\n(v=0\r\n(?:[^\r\n]+\r\n)*)", out)
        assert ok, out[-4000:]
        callid, answer = ok.group(1).strip(), ok.group(2)
        assert "stream: incoming rtp for 'audio' established" in out, out[-4000:]
        if mediaenc:
            assert re.search(r"^m=audio \d+ RTP/SAVP ", answer, re.M), answer
            assert re.search(r"^a=crypto:\d+ AES_CM_128_HMAC_SHA1_(80|32) inline:", answer,
                             re.M), answer
            # baresip's srtp module accepted our answer and runs SRTP on the stream
            assert re.search(r"srtp: audio: SRTP is Enabled \(cryptosuite=AES_CM_128_HMAC_SHA1_",
                             out), out[-4000:]
        else:
            assert re.search(r"^m=audio \d+ RTP/AVP ", answer, re.M), answer
            assert "a=crypto" not in answer, answer
        assert b.stop() == 0, b.text()[-3000:]
    finally:
        b.stop()

    # the analyser sees the pattern in what baresip sent, and in what came back
    encoded = decoded.replace("-dec.wav", "-enc.wav")
    assert_pattern(encoded, "sent (baresip -enc.wav)")
    assert_pattern(decoded, "echoed (baresip -dec.wav)")

    if bot:
        assert bot.events("stop"), "the bot was not told the call ended"
        bot.stop()
    if agent == "twiml":
        assert [r["path"] for r in voice.requests] == ["/voice"], voice.requests
        voice.stop()
    rec = call_record(d, callid)
    assert rec["answered_at"] and rec["ended_at"], rec
    assert rec["final_status"] == 200 and rec["end_reason"] == "bye_received", rec
    assert rec["codec"] == "PCMU", rec
    assert rec["media_encryption"] == ("srtp" if mediaenc else "rtp"), rec
    assert rec["rtp"]["packets_received"] > 0 and rec["rtp"]["packets_sent"] > 0, rec
    bad = [ln for ln in d.log_text().splitlines() if re.search(r"Z (warn|error) ", ln)]
    assert not bad, bad

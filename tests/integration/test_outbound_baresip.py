"""Outbound calls end to end (issue 10): the call is placed through the API to baresip
1.0.0 as the callee, over TLS with mandatory SRTP and auto-answer; the agent is a Python
WebSocket echo bot (Twilio Media Streams, tests/integration/bots.py).

baresip plays a tone pattern (1 kHz, 500 Hz, 1.5 kHz, 1 s each) from the answer on and
records what it hears; the pattern must come back through gateway → bot → gateway, in
order (the analysis of test_interop_baresip_calls.py).

TLS: the gateway verifies baresip's certificate against the trunk's address (callee.test,
signed by a test CA given as sip_tls_ca_file); the SRV record of that name leads to
baresip's TLS port. Waits are on events with deadlines (the call's status, baresip's
ctrl_tcp events, the recording growing)."""
import os
import random
import re

import dnsserver
from bots import Bot
from test_interop_baresip import DEADLINE, Baresip
from test_interop_baresip_calls import (CONFIG_CALLS, RATE, TARGET_S, assert_pattern,
                                        pytestmark as _calls_mark, wait_file, write_source)
from test_outbound_calls import call, place, status_is, wait_for
from test_sip_uac import make_ca

pytestmark = _calls_mark
CALLEE = "+4915112345678"
NUMBER = "+493012345678"


def test_baresip_callee_tls_srtp_ws_echo(make_daemon, tmp_path):
    ctx, ca = make_ca(str(tmp_path), ["DNS:callee.test"])
    pem = os.path.join(str(tmp_path), "callee.pem")  # baresip: chain and key in one file
    with open(pem, "w") as f:
        f.write(open(os.path.join(str(tmp_path), "srv.pem")).read() +
                open(os.path.join(str(tmp_path), "srv.key")).read())
    src = str(tmp_path / "source.wav")
    write_source(src)
    snd = tmp_path / "snd"
    snd.mkdir()
    acc = ("<sip:%s@127.0.0.1;transport=tls>;regint=0;answermode=auto;audio_codecs=pcmu;"
           "mediaenc=srtp-mand" % CALLEE)
    b = None
    for attempt in range(3):  # a port picked free can be taken before baresip binds it
        try:
            b = Baresip(tmp_path / ("try%d" % attempt), "tls", ca, pem, config_in=CONFIG_CALLS,
                        account=acc, source_wav=src, snd_path=str(snd))
            break
        except AssertionError as e:
            if "Address already in use" not in str(e) or attempt == 2:
                raise
    dns = dnsserver.start({"_sips._tcp.callee.test": {"SRV": [[0, 0, b.tls_port, "b.callee.test"]]},
                           "b.callee.test": {"A": ["127.0.0.1"]}})
    bot = Bot()
    d = None
    try:
        base = 21000 + random.randrange(45) * 200  # away from a benchmark's 10000-20000
        d = make_daemon(env={"TRUNKLINE_SIP_DNS_SERVERS": "127.0.0.1:%d" % dns.port,
                             "TRUNKLINE_RTP_PORT_MIN": str(base),
                             "TRUNKLINE_RTP_PORT_MAX": str(base + 199),
                             "TRUNKLINE_SIP_TLS_CA_FILE": ca,
                             "TRUNKLINE_SIP_LISTEN": "127.0.0.1",
                             "TRUNKLINE_AGENT_ALLOW_NETWORKS": "127.0.0.0/8",
                             "TRUNKLINE_AGENT_INSECURE_HOSTS": "127.0.0.1"})
        r = d.api("POST", "/v1/agents", json={"name": "py-echo-bot", "kind": "websocket",
                                              "url": bot.url})
        assert r.status_code == 201, r.text
        agent = r.json()["id"]
        r = d.api("POST", "/v1/phone-numbers", json={
            "number": NUMBER, "agent_id": agent,
            "outbound_trunk": {"address": "callee.test", "transport": "tls",
                               "media_encryption": "required"}})
        assert r.status_code == 201, r.text
        c = place(d, to=CALLEE, parameters={"campaign": "spring"})
        wait_for(lambda: status_is(d, c["id"], "in_progress"), "in_progress")
        b.wait_event("CALL_ESTABLISHED")
        decoded = wait_file(b, str(snd / "dump-*-dec.wav"), 44 + int(TARGET_S * RATE) * 2,
                            deadline=TARGET_S + DEADLINE)
        r = d.api("POST", "/v1/calls/%s/hangup" % c["id"])
        assert r.status_code == 200, r.text
        b.wait_event("CALL_CLOSED")
        out = b.text()
        assert re.search(r"srtp: audio: SRTP is Enabled \(cryptosuite=AES_CM_128_HMAC_SHA1_",
                         out), out[-4000:]
        assert b.stop() == 0, b.text()[-3000:]
        b = None
        encoded = decoded.replace("-dec.wav", "-enc.wav")
        assert_pattern(encoded, "sent (baresip -enc.wav)")
        assert_pattern(decoded, "echoed through the bot (baresip -dec.wav)")
        # the bot was told who is called, and the call's own parameters
        start = bot.start
        cp = start["start"]["customParameters"]
        assert cp["direction"] == "outbound" and cp["to_number"] == CALLEE, cp
        assert cp["from_number"] == NUMBER and cp["campaign"] == "spring", cp
        assert bot.events("stop"), "the bot was not told the call ended"
        rec = call(d, c["id"])
        assert rec["status"] == "completed" and rec["media_encryption"] == "srtp", rec
        assert rec["rtp"]["packets_received"] > 0 and rec["rtp"]["packets_sent"] > 0, rec
        log = d.log_text()
        assert "a=crypto" not in log and "inline:" not in log
    finally:
        if b:
            b.stop()
        bot.stop()
        dns.stop()

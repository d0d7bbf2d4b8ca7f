#!/usr/bin/env python3
"""A minimal Twilio Media Streams bot for trunkline: it answers every call by repeating what
the caller says (half a second later), speaks DTMF digits back as RFC 4733, and shows the
three things every real bot does with the protocol — read `start`, send `media`, use
`mark`/`clear` — in as few lines as possible. Point an agent at it and call your number.

Run it (Debian 12: apt-get install python3-websockets):

    examples/echo_bot.py --port 8765

Then, on the machine that runs trunkline (ws:// to a local bot needs the operator's
settings agent_insecure_hosts=127.0.0.1 and agent_allow_networks=127.0.0.1/32; a bot on
the internet uses wss:// and needs neither):

    trunkline agents create --name echo-bot --url ws://127.0.0.1:8765/media \\
        --param greeting=hello
    trunkline numbers assign +493012345678 ag_…

Everything here is the standard protocol, so the same code runs behind Twilio unchanged.
"""
import argparse
import asyncio
import base64
import json

import websockets

DELAY_FRAMES = 25  # 25 x 20 ms: the echo comes back half a second later


async def call(ws, path=None):
    stream_sid, held = None, []
    async for text in ws:
        msg = json.loads(text)
        event = msg.get("event")
        if event == "start":
            start = msg["start"]
            stream_sid = start["streamSid"]
            params = start.get("customParameters", {})
            print("call %s from %s to %s, parameters %s" % (
                start["callSid"], params.get("from_number"), params.get("to_number"), params))
        elif event == "media":
            held.append(msg["media"]["payload"])
            if len(held) > DELAY_FRAMES:
                # any size is fine: trunkline queues it and paces it out every 20 ms
                await ws.send(json.dumps({"event": "media", "streamSid": stream_sid,
                                          "media": {"payload": held.pop(0)}}))
        elif event == "dtmf":
            digit = msg["dtmf"]["digit"]
            print("caller pressed", digit)
            if digit == "*":  # barge-in: forget what is queued, marks come back at once
                await ws.send(json.dumps({"event": "clear", "streamSid": stream_sid}))
            else:  # trunkline's extension: the digit back as RFC 4733 (other hosts ignore it)
                await ws.send(json.dumps({"event": "sendDigits", "streamSid": stream_sid,
                                          "sendDigits": {"digits": digit}}))
            # a mark comes back once everything sent before it has been played
            await ws.send(json.dumps({"event": "mark", "streamSid": stream_sid,
                                      "mark": {"name": "after-dtmf-" + digit}}))
        elif event == "mark":
            print("played up to mark", msg["mark"].get("name"))
        elif event == "stop":
            print("call ended")
    # trunkline closes the socket after `stop`: the loop above ends here


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    a = ap.parse_args()
    async with websockets.serve(call, a.host, a.port):
        print("echo bot on ws://%s:%d/media" % (a.host, a.port))
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())

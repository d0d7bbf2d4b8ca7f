#!/usr/bin/python3
"""Grows the fuzz seed corpora from every public SIP and SDP sample in the repository
(issue 11 item 19): the RFC 4475 torture messages (tests/data/rfc4475) and the SIPp
scenarios (tests/integration/sipp, bench/sip), rendered with fixed values for SIPp's
[keywords]. Each rendered message seeds fuzz_sip_msg and fuzz_sip_frame; its SDP body
fuzz_sdp; its Request-URI and To URI (split by 0xff) fuzz_sip_uri; its Authorization and
WWW-Authenticate values fuzz_sip_auth and fuzz_sip_digest.

Deterministic: run it again after adding a scenario (python3 tests/fuzz/grow_seeds.py);
seeds it made are named grown_<source>_<n> and rewritten, hand-made seeds are left alone.
Standard library only."""
import glob
import hashlib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")

VALUES = {
    "local_ip": "192.0.2.20", "local_port": "5070", "remote_ip": "192.0.2.10",
    "remote_port": "5060", "transport": "TCP", "pid": "4242", "call_number": "1",
    "call_id": "1-4242@192.0.2.20", "branch": "z9hG4bK-4242-1-0", "service": "+493012345678",
    "media_ip": "192.0.2.20", "media_port": "6000", "auto_media_port": "6000",
    "rtp_port": "6000", "media_ip_type": "4", "local_ip_type": "4", "number": "1",
    "peer_tag_param": ";tag=4242SIPpTag01", "routes": "Route: <sip:192.0.2.10;lr>",
    "next_url": "sip:+493012345678@192.0.2.10:5060", "cseq": "1",
    "authentication": ('Authorization: Digest username="alice", realm="192.0.2.10", '
                       'nonce="4f2a9c1de7b30a55", uri="sip:+493012345678@192.0.2.10:5060", '
                       'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, qop=auth, '
                       'nc=00000001, cnonce="0a4f113b"'),
}
LAST = {
    "Via": "Via: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK-peer-1;rport=5060",
    "From": "From: <sip:carrier@192.0.2.10>;tag=peer1",
    "To": "To: <sip:+493012345678@192.0.2.20>",
    "Call-ID": "Call-ID: 77-peer@192.0.2.10",
    "CSeq": "CSeq: 1 INVITE",
}


def render(cdata):
    lines = [ln.strip() for ln in cdata.strip("\n").split("\n")]
    text = "\n".join(lines).strip("\n") + "\n"

    def kw(m):
        k = m.group(1)
        if k.startswith("last_"):
            return LAST.get(k[5:].rstrip(":"), k[5:].rstrip(":") + ": x")
        if k.startswith("$"):
            return "x"
        if k == "len":
            return "[len]"
        return VALUES.get(k.split()[0], "x")
    text = re.sub(r"\[([A-Za-z_$][^\]\[]*)\]", kw, text)
    head, sep, body = text.partition("\n\n")
    body = body.strip("\n")
    body = body + "\n" if body else ""
    head = head.replace("\n", "\r\n")
    body = body.replace("\n", "\r\n")
    head = head.replace("[len]", str(len(body)))
    return (head + "\r\n\r\n" + body).encode()


def sipp_messages():
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "integration", "sipp", "*.xml")) +
                       glob.glob(os.path.join(ROOT, "bench", "sip", "*.xml"))):
        name = os.path.splitext(os.path.basename(path))[0]
        xml = open(path, encoding="utf-8").read()
        for i, cdata in enumerate(re.findall(r"<!\[CDATA\[(.*?)\]\]>", xml, re.S)):
            if cdata.strip():
                yield "sipp_%s_%d" % (name, i), render(cdata)


def rfc4475_messages():
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "data", "rfc4475", "*.dat"))):
        yield "rfc4475_" + os.path.splitext(os.path.basename(path))[0], open(path, "rb").read()


def parts(msg):
    head, _, body = msg.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    return lines, body


def uris(lines):
    out = []
    first = lines[0].split(b" ")
    if len(first) >= 2 and not first[0].startswith(b"SIP/"):
        out.append(first[1])
    for ln in lines[1:]:
        m = re.match(rb"(?i)(to|t|from|f|contact|m)\s*:\s*(.*)", ln)
        if m:
            u = re.search(rb"<([^>]*)>", m.group(2))
            out.append(u.group(1) if u else m.group(2).split(b";")[0].strip())
    return out


def auth_values(lines):
    for ln in lines[1:]:
        m = re.match(rb"(?i)(authorization|www-authenticate|proxy-authenticate|"
                     rb"proxy-authorization)\s*:\s*(.*)", ln)
        if m:
            yield m.group(2)


def main():
    seeds = {t: {} for t in ("fuzz_sip_msg", "fuzz_sip_frame", "fuzz_sdp", "fuzz_sip_uri",
                             "fuzz_sip_auth", "fuzz_sip_digest")}
    for name, msg in list(rfc4475_messages()) + list(sipp_messages()):
        if name.startswith("sipp_"):  # RFC 4475 files seed the message targets already
            seeds["fuzz_sip_msg"][name] = msg
            seeds["fuzz_sip_frame"][name] = msg
        lines, body = parts(msg)
        if body.startswith(b"v=0"):
            seeds["fuzz_sdp"][name] = body
        us = uris(lines)
        if len(us) >= 2:
            seeds["fuzz_sip_uri"][name] = us[0] + b"\xff" + us[1]
        for i, v in enumerate(auth_values(lines)):
            seeds["fuzz_sip_auth"]["%s_%d" % (name, i)] = v
            seeds["fuzz_sip_digest"]["%s_%d" % (name, i)] = v
    # the body fuzz_sdp stopped on once: a 556-byte o= the printer could not print
    seeds["fuzz_sdp"]["regress_long_origin"] = (
        b"v=0\r\no=" + b"7" * 540 + b" 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
        b"t=0 0\r\nm=audio 5000 RTP/AVP 0\r\n")
    total = 0
    for target, items in seeds.items():
        d = os.path.join(CORPUS, target)
        os.makedirs(d, exist_ok=True)
        for old in glob.glob(os.path.join(d, "grown_*")):
            os.unlink(old)
        have = {hashlib.sha256(open(p, "rb").read()).digest()
                for p in glob.glob(os.path.join(d, "*"))}
        for name, data in sorted(items.items()):
            h = hashlib.sha256(data).digest()
            if h in have:
                continue
            have.add(h)
            with open(os.path.join(d, "grown_" + name), "wb") as f:
                f.write(data)
            total += 1
        print("%-16s %4d seeds" % (target, len(glob.glob(os.path.join(d, "*")))))
    print("grown: %d new seeds" % total, file=sys.stderr)


if __name__ == "__main__":
    main()

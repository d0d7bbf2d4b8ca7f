"""RTP (and SRTP, via pylibsrtp) test client for the echo agent.

send_and_check(): sends a known μ-law sequence paced at 20 ms from its own clock
(t0 + n·20 ms, not sleeps as synchronisation: the pacing IS the payload's real time), and
receives at the same time; the echo is verified byte for byte: the received payload
stream must contain the sent sequence as one contiguous run (the echo may start with an
offset: frames before the first of ours arrive, or the first frames of ours are cut while
the daemon latches). DTMF (RFC 4733) out, and the echo agent's DTMF back in."""
import os
import select
import socket
import struct
import time

try:
    import pylibsrtp
except ImportError:  # the SRTP tests skip
    pylibsrtp = None

PT_PCMU = 0
PT_PCMA = 8
DTMF_PT = 101
FRAME = 160


class RtpClient:
    def __init__(self, ip="127.0.0.1"):
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.port = self.sock.getsockname()[1]
        self.remote = None
        self.ssrc = struct.unpack("!I", os.urandom(4))[0]
        self.seq = struct.unpack("!H", os.urandom(2))[0]
        self.ts = struct.unpack("!I", os.urandom(4))[0]
        self.tx = self.rx = None
        self.pt = PT_PCMU  # the audio PT sent and checked (PT_PCMA for an A-law leg)
        self.received = []  # (pt, marker, payload)
        self.closed = False

    def close(self):
        self.closed = True
        self.sock.close()

    def set_remote(self, ip, port):
        self.remote = (ip, port)

    def set_srtp(self, tx_key, rx_key, suite="AES_CM_128_HMAC_SHA1_80"):
        """tx_key: ours (in our offer); rx_key: the daemon's (in its answer)."""
        prof = {"AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
                "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32}[suite]
        self.tx = pylibsrtp.Session(pylibsrtp.Policy(
            key=tx_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=prof))
        self.rx = pylibsrtp.Session(pylibsrtp.Policy(
            key=rx_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=prof))

    # -- packets -------------------------------------------------------------------
    def _send(self, pt, payload, marker=False, ts=None):
        hdr = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq,
                          self.ts if ts is None else ts, self.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        pkt = hdr + payload
        if self.tx:
            pkt = self.tx.protect(pkt)
        self.sock.sendto(pkt, self.remote)

    def _drain(self, timeout):
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        while r:
            data, _ = self.sock.recvfrom(2048)
            if len(data) >= 12 and (data[1] & 0x7F) not in range(72, 77):  # RTCP on RTP port
                if self.rx:
                    try:
                        data = self.rx.unprotect(data)
                    except Exception:
                        data = None
                if data:
                    cc = data[0] & 0x0F
                    off = 12 + 4 * cc
                    if data[0] & 0x10:
                        off += 4 + 4 * struct.unpack("!H", data[off + 2:off + 4])[0]
                    self.received.append((data[1] & 0x7F, bool(data[1] & 0x80), data[off:]))
            r, _, _ = select.select([self.sock], [], [], 0)

    def run(self, frames, dtmf=None, tail_frames=25):
        try:
            self._run(frames, dtmf, tail_frames)
        except OSError:
            if not self.closed:  # a test closing the client under a sending thread ends it
                raise

    def _run(self, frames, dtmf, tail_frames):
        """Sends frames (list of 160-byte payloads) paced at 20 ms; then the DTMF digits (RFC
        4733: start with marker, growing duration, three end packets); keeps receiving for
        tail_frames more ticks so the echo of the last frames arrives."""
        t0 = time.monotonic()
        n = 0

        def tick():
            nonlocal n
            n += 1
            self._drain(t0 + n * 0.02 - time.monotonic())

        for i, f in enumerate(frames):
            self._send(self.pt, f, marker=(i == 0))
            self.ts = (self.ts + FRAME) & 0xFFFFFFFF
            tick()
        for d in dtmf or "":
            ev = "0123456789*#ABCD".index(d)
            ts = self.ts
            for k in range(1, 6):  # 100 ms of event
                self._send(DTMF_PT, struct.pack("!BBH", ev, 10, k * FRAME), marker=(k == 1), ts=ts)
                tick()
            for _ in range(3):
                self._send(DTMF_PT, struct.pack("!BBH", ev, 0x80 | 10, 5 * FRAME), ts=ts)
            self.ts = (self.ts + 6 * FRAME) & 0xFFFFFFFF
            tick()
        for _ in range(tail_frames):
            tick()

    def audio_bytes(self):
        return b"".join(p for pt, _, p in self.received if pt == self.pt)

    def audio_pts(self):
        """The payload types of the audio received (RFC 4733 events left out)."""
        return {pt for pt, _, _ in self.received if pt != DTMF_PT}

    def dtmf_digits(self):
        """Digits received as RFC 4733 events (one per event, at its first end packet)."""
        out, seen = [], set()
        for pt, _, p in self.received:
            if pt == DTMF_PT and len(p) >= 4 and p[1] & 0x80:
                key = (p[0], len(out))
                if not out or out[-1][1] != "end" or out[-1][0] != p[0]:
                    out.append((p[0], "end"))
                seen.add(key)
        return "".join("0123456789*#ABCD"[e] for e, _ in out)


def known_sequence(nframes, seed=1):
    """A μ-law sequence no silence or codec padding can fake: a counter mixed with a seed,
    avoiding 0xFF/0x7F (μ-law silence) so a padded frame never matches."""
    out = []
    x = seed
    for i in range(nframes):
        f = bytearray()
        for _ in range(FRAME):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            b = (x >> 16) & 0xFF
            f.append(b if b not in (0xFF, 0x7F) else 0x55)
        out.append(bytes(f))
    return out


def echoed(sent_frames, received, min_frames=None):
    """True when the sent payload bytes come back as one contiguous run, allowing a leading
    offset and the first few frames missing (latching), and at least min_frames of them."""
    sent = b"".join(sent_frames)
    need = min_frames or (len(sent_frames) - 5)
    for skip in range(0, len(sent_frames) - need + 1):
        part = sent[skip * FRAME:]
        if part in received:
            return True
        part = sent[skip * FRAME:(skip + need) * FRAME]
        if part in received:
            return True
    return False


# ---- G.711, as src/call/g711.c: the daemon converts an A-law leg to μ-law for the agent
# and back, so the echo of A-law audio is A → μ → A of what was sent ----

def _ulaw_decode(u):
    u = ~u & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return (0x84 - t) if u & 0x80 else (t - 0x84)


def _alaw_decode(a):
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def _seg(v, ends):
    for i, e in enumerate(ends):
        if v <= e:
            return i
    return 8


def _ulaw_encode(pcm):
    v = pcm >> 2
    mask = 0xFF
    if v < 0:
        v, mask = -v, 0x7F
    v = min(v, 8159) + 0x21
    seg = _seg(v, (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF))
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((v >> (seg + 1)) & 0x0F)) ^ mask


def _alaw_encode(pcm):
    v = pcm >> 3
    if v >= 0:
        mask = 0xD5
    else:
        mask, v = 0x55, -v - 1
    seg = _seg(v, (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF))
    if seg >= 8:
        return 0x7F ^ mask
    a = (seg << 4) | (((v >> 1) if seg < 2 else (v >> seg)) & 0x0F)
    return a ^ mask


A2U = bytes(_ulaw_encode(_alaw_decode(a)) for a in range(256))
U2A = bytes(_alaw_encode(_ulaw_decode(u)) for u in range(256))
A_LOSSLESS = [a for a in range(256) if U2A[A2U[a]] == a and a != 0xD5 and a != 0x55]


def known_alaw_sequence(nframes, seed=1):
    """An A-law sequence whose every code survives A → μ → A unchanged (the echo must come
    back identical), without A-law silence (0xD5/0x55) so padding never matches."""
    out = []
    x = seed
    for _ in range(nframes):
        f = bytearray()
        for _ in range(FRAME):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            f.append(A_LOSSLESS[(x >> 16) % len(A_LOSSLESS)])
        out.append(bytes(f))
    return out

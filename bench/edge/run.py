#!/usr/bin/python3
"""bench/edge: the timing side of issue 11 item 2 — does the time to answer an untrusted
INVITE tell numbers apart? (A test cannot hold a timing claim; this prints the figures.)

  make && /usr/bin/python3 bench/edge/run.py [--rounds N]

Starts `trunkline serve` (build/trunkline) on free ports with four numbers: no inbound
trunk, allowed_addresses elsewhere, digest, digest + allowed elsewhere; from 127.0.0.1
(trusted by none of them) it sends INVITEs over one TCP connection, interleaving the
targets (and an unknown number), and answers each 401 with wrong credentials. Prints, per
target, the median and p90 of the time to the 401 and to the 403, in microseconds. The
answers themselves are compared byte for byte in tests/integration/test_sip_hardening.py."""
import argparse
import os
import re
import socket
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("TRUNKLINE_BIN", os.path.join(ROOT, "build", "trunkline"))

from conftest import Daemon, free_port  # noqa: E402
from test_inbound_calls import digest_header, echo_id  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=400)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-edge-")
    port = free_port()
    d = Daemon(tmp, {"TRUNKLINE_SIP_TCP_PORT": str(port),
                     "TRUNKLINE_SIP_INVITE_RATE": "100000",
                     "TRUNKLINE_SIP_INVITE_RATE_GLOBAL": "100000",
                     "TRUNKLINE_SIP_AUTH_BAN_AFTER": "10000000",
                     "TRUNKLINE_SIP_DIGEST_ALGORITHMS": "MD5,SHA-256",
                     "TRUNKLINE_LOG_LEVEL": "warn"}).start()
    if True:
        agent = echo_id(d)
        nums = {"unknown": "+493099999999"}
        specs = {"no_inbound": None,
                 "allowed_elsewhere": {"allowed_addresses": ["203.0.113.0/24"]},
                 "digest": {"username": "carrier1", "password": "s3cret-Passw0rd"},
                 "digest_allowed_elsewhere": {"username": "carrier1",
                                              "password": "s3cret-Passw0rd",
                                              "allowed_addresses": ["198.51.100.0/24"]}}
        for i, (name, it) in enumerate(specs.items()):
            n = "+49301111000%d" % i
            body = {"number": n, "agent_id": agent,
                    "outbound_trunk": {"address": "sip.example.com", "transport": "tls",
                                       "media_encryption": "required"}}
            if it is not None:
                body["inbound_trunk"] = dict(it, transport="tcp", media_encryption="disabled")
            r = d.api("POST", "/v1/phone-numbers", json=body)
            assert r.status_code == 201, r.text
            nums[name] = n
    times = {k: ([], []) for k in nums}
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lport = s.getsockname()[1]
    buf = b""

    def exchange(msg):
        nonlocal buf
        t0 = time.perf_counter_ns()
        s.sendall(msg)
        while True:
            i = buf.find(b"\r\n\r\n")
            if i >= 0:
                m = re.search(rb"Content-Length: *(\d+)", buf[:i], re.I)
                n = int(m.group(1)) if m else 0
                if len(buf) >= i + 4 + n:
                    out, buf = buf[:i + 4 + n], buf[i + 4 + n:]
                    return out, (time.perf_counter_ns() - t0) / 1000
            buf += s.recv(65536)

    seq = 0
    for rnd in range(a.rounds):
        for name, n in nums.items():
            seq += 1
            ruri = "sip:%s@127.0.0.1:%d" % (n, port)
            base = ("INVITE %s SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:%d;branch=z9hG4bKb%d\r\n"
                    "Max-Forwards: 70\r\nFrom: <sip:b@127.0.0.1>;tag=t%d\r\nTo: <sip:%s@127.0.0.1>"
                    "\r\nCall-ID: c%d\r\nCSeq: %%d INVITE\r\n%%sContent-Length: 0\r\n\r\n" % (
                        ruri, lport, seq, seq, n, seq))
            r1, t1 = exchange((base % (1, "")).encode())
            assert r1.startswith(b"SIP/2.0 401"), r1[:60]
            chal = re.search(rb"WWW-Authenticate: (.*)\r\n", r1).group(1).decode()
            auth = digest_header(chal, "INVITE", ruri, "carrier1", "guess%d" % rnd)
            base2 = base.replace("branch=z9hG4bKb%d" % seq, "branch=z9hG4bKc%d" % seq)
            r2, t2 = exchange((base2 % (2, auth)).encode())
            assert r2.startswith(b"SIP/2.0 403"), r2[:60]
            times[name][0].append(t1)
            times[name][1].append(t2)
    s.close()
    d.stop()
    print("| target | 401 median µs | 401 p90 µs | 403 median µs | 403 p90 µs |")
    print("|---|---|---|---|---|")
    for name, (c, f) in times.items():
        q = lambda v, p: sorted(v)[int(len(v) * p)]  # noqa: E731
        print("| %s | %.0f | %.0f | %.0f | %.0f |" % (name, statistics.median(c), q(c, 0.9),
                                                       statistics.median(f), q(f, 0.9)))


if __name__ == "__main__":
    main()

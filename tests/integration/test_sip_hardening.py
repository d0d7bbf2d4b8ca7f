"""The SIP edge against one hostile source (issue 11, the SIP half): connection floods,
number enumeration, password guessing, UDP reflection, unbounded state, the rate limiter,
log floods, and the test-only answering policies kept out of the shipped binary.

Peers are raw sockets (a flood is not a well-behaved UAC) and sipclient.py; every wait is
on a message, a connection state or the API, with a deadline."""
import os
import socket
import subprocess
import time

import pytest

from conftest import BIN, TEST_BIN, free_port
from sipclient import SipClient, sdp_offer
from test_inbound_calls import (NUMBER, PASSWORD, digest_header, event, gw,  # noqa: F401
                                import_number, invite_status, wait_for)

UNKNOWN = "+493099999999"


def invite_bytes(user, host, port, transport="TCP", src="127.0.0.1", sport=5999, extra=""):
    branch = os.urandom(6).hex()
    call_id = os.urandom(8).hex()
    return ("INVITE sip:%s@%s:%d SIP/2.0\r\n"
            "Via: SIP/2.0/%s %s:%d;branch=z9hG4bK%s;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:scan@%s>;tag=%s\r\nTo: <sip:%s@%s>\r\n"
            "Call-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <sip:scan@%s:%d>\r\n%s"
            "Content-Length: 0\r\n\r\n" % (
                user, host, port, transport, src, sport, branch, src, branch, user, host,
                call_id, src, sport, extra)).encode()


# ---- item 18: no setting of the shipped daemon answers INVITEs without the call layer ----

def test_shipped_binary_has_no_test_policy(make_daemon):
    # the settings are not in the shipped binary's table, and its flags are refused
    table = subprocess.run([BIN, "config"], capture_output=True, text=True, check=True).stdout
    assert "sip_test_policy" not in table and "sip_test_auth" not in table
    r = subprocess.run([BIN, "serve", "--sip-test-policy", "answer"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "unknown option" in r.stderr, r.stderr
    # the test build has them (the SIP tests rely on it)
    table = subprocess.run([TEST_BIN, "config"], capture_output=True, text=True,
                           check=True).stdout
    assert "sip_test_policy" in table
    # the environment variable does nothing in the shipped daemon: the call layer answers,
    # so an INVITE to a number nobody imported is not answered 200
    tcp = free_port()
    d = make_daemon(env={"TRUNKLINE_SIP_TEST_POLICY": "answer",
                         "TRUNKLINE_SIP_TCP_PORT": str(tcp)}, binary=BIN)
    sc = SipClient(tcp, "tcp")
    try:
        r = sc.invite(UNKNOWN, sdp_offer(40000))
        assert r.code >= 400, r.raw
    finally:
        sc.close()
    assert d.proc.poll() is None


def invite_code(d, user=NUMBER, transport="tcp", extra=""):
    r, _ = invite_status(d, user, transport, extra=extra)
    return r


# ---- item 1: connection floods -----------------------------------------------------------

def flood(port, src, n, tls_port=None, partial=b"INVITE sip:"):
    """n connections from src: a third idle, a third with half a message, a third (or all,
    with tls_port) half-open TLS (a ClientHello's first bytes, then nothing). Returns the
    sockets; those the daemon refused are closed by it at once."""
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        s.settimeout(10)
        try:
            s.connect(("127.0.0.1", tls_port if tls_port and i % 3 == 2 else port))
            if i % 3 == 1:
                s.sendall(partial)
            elif i % 3 == 2 and tls_port:
                s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        except OSError:
            pass
        socks.append(s)
    return socks


def closed_by_peer(s, timeout=15.0):
    """True once the daemon closed s (EOF or reset), within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if s.recv(4096) == b"":
                return True
        except socket.timeout:
            return False
        except OSError:
            return True
    return False


def test_flood_from_one_source_leaves_room_for_carrier(gw):
    """Issue 11 item 1: 127.0.0.2 opens far more idle and half-open connections than
    sip_max_connections; a call from the allowed 127.0.0.1 is still answered (the flood
    took at most sip_max_connections_per_source), and the flood's own connections are
    closed by the first-message deadline, not after sip_tcp_idle_s."""
    d = gw(TRUNKLINE_SIP_MAX_CONNECTIONS="64", TRUNKLINE_SIP_MAX_CONNECTIONS_PER_SOURCE="16",
           TRUNKLINE_SIP_FIRST_MESSAGE_S="2", TRUNKLINE_SIP_TCP_IDLE_S="600")
    import_number(d, allowed=["127.0.0.1"])
    socks = flood(d.sip_port, "127.0.0.2", 150, d.tls_port)
    try:
        r = invite_code(d)
        assert r.code == 200, r.raw
        # every flood connection ends: refused at once, or at the 2 s deadline
        for s in socks:
            assert closed_by_peer(s), "a flood connection outlived the first-message deadline"
    finally:
        for s in socks:
            s.close()
    d.wait_log("sip_max_connections_per_source reached")
    d.wait_log(lambda t: "no complete first message in time" in t or
               "tls handshake not completed" in t)


def test_reserved_slots_for_allowed_sources(gw):
    """Many flooding sources, each under the per-source cap, take every open slot; the
    reserved ones still take the allowed carrier (127.0.0.1) and refuse a new stranger."""
    d = gw(TRUNKLINE_SIP_MAX_CONNECTIONS="48", TRUNKLINE_SIP_MAX_CONNECTIONS_PER_SOURCE="4",
           TRUNKLINE_SIP_RESERVED_CONNECTIONS="8", TRUNKLINE_SIP_FIRST_MESSAGE_S="60",
           TRUNKLINE_SIP_TCP_IDLE_S="600")
    import_number(d, allowed=["127.0.0.1"])
    socks = []
    try:
        for i in range(2, 14):  # 12 sources x 4 = the 40 open slots
            socks += flood(d.sip_port, "127.0.0.%d" % i, 4, partial=b"OPTIONS sip:")
        # a stranger finds no open slot left
        stranger = flood(d.sip_port, "127.0.0.99", 1)[0]
        socks.append(stranger)
        assert closed_by_peer(stranger, 10)
        r = invite_code(d)
        assert r.code == 200, r.raw
    finally:
        for s in socks:
            s.close()
    d.wait_log("only reserved slots left")


# ---- item 2: no enumeration oracle ------------------------------------------------------

NORMALISE = [
    (r'nonce="[^"]*"', 'nonce="N"'),
    (r"tag=[0-9a-zA-Z.\-]+", "tag=T"),
    (r"branch=[0-9a-zA-Z.\-]+", "branch=B"),
    (r"received=[0-9.]+", "received=R"),
    (r"rport=\d+", "rport=P"),
    (r":\d+;", ":P;"),
    (r"sip:[^@>;]*@", "sip:U@"),
]


def shape(r):
    """A response with everything that names the request (its own Via, tags, numbers,
    Call-ID) or is random per answer (the nonce) blanked: what is left must not depend on
    the number."""
    import re
    out = [r.first]
    for n, v in r.hdrs:
        if n in ("call-id", "cseq", "content-length"):
            v = "*"
        for pat, rep in NORMALISE:
            v = re.sub(pat, rep, v)
        out.append("%s: %s" % (n, v))
    return out, r.body


def test_untrusted_sources_learn_nothing(gw):
    """Issue 11 item 2: from a source no trunk of these numbers trusts, an unknown number,
    a number without inbound trunk, one whose allowed_addresses exclude the source, one
    with digest, and one with both get the same challenge, and the same refusal for a
    wrong answer; the owners' events still say why."""
    d = gw()
    pids = {
        "+493011110001": import_number(d, "+493011110001", inbound=False),
        "+493011110002": import_number(d, "+493011110002", allowed=["203.0.113.0/24"],
                                       transport="tls"),
        "+493011110003": import_number(d, "+493011110003", username="carrier1"),
        "+493011110004": import_number(d, "+493011110004", username="carrier1",
                                       allowed=["198.51.100.0/24"]),
    }
    targets = [UNKNOWN] + list(pids)
    for tp in ("tcp", "udp"):
        first, second = [], []
        for user in targets:
            port = d.sip_port
            sc = SipClient(port, tp)
            try:
                r = sc.invite(user, sdp_offer(40000))
                sc.ack_failure(r)
                first.append(shape(r))
                assert r.code == 401 and r.get("warning") is None, (user, r.raw)
                sc.cseq += 1
                auth = digest_header(r.get("www-authenticate"), "INVITE", sc.ruri, "carrier1",
                                     "guess-%s" % user[-1])
                sc.request("INVITE", sc.ruri, sdp_offer(40000).encode(), auth)
                r2 = sc.response("INVITE")
                sc.ack_failure(r2)
                second.append(shape(r2))
                assert r2.code == 403, (user, r2.raw)
            finally:
                sc.close()
        assert all(x == first[0] for x in first), first
        assert all(x == second[0] for x in second), second
    # the diagnosis is the owners'
    event(d, pids["+493011110001"], "inbound_disabled")
    event(d, pids["+493011110002"], "source_not_allowed")
    event(d, pids["+493011110003"], "credentials_mismatch")
    event(d, pids["+493011110004"], "source_not_allowed")


# ---- item 3: password guessing ----------------------------------------------------------

def digest_attempt(d, password, user="carrier1"):
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite(NUMBER, sdp_offer(40000))
        assert r.code == 401, r.raw
        sc.ack_failure(r)
        sc.cseq += 1
        auth = digest_header(r.get("www-authenticate"), "INVITE", sc.ruri, user, password)
        sc.request("INVITE", sc.ruri, sdp_offer(40000).encode(), auth)
        r2 = sc.response("INVITE")
        if r2.code == 200:
            import re
            tag = re.search(r";tag=([^;>\s]+)", r2.get("to")).group(1)
            sc.to_hdr = "<sip:%s@127.0.0.1>;tag=%s" % (NUMBER, tag)
            sc.ack()
            sc.bye()
        else:
            sc.ack_failure(r2)
        return r2
    finally:
        sc.close()


def test_digest_guessing_backs_off_and_bans(gw):
    """Issue 11 item 3: after a few wrong passwords from one source even the right one is
    refused (unverified, the same 403), the number's owner gets credentials_guessing, and
    once the ban is over the right password works again."""
    d = gw(TRUNKLINE_SIP_AUTH_BAN_AFTER="4", TRUNKLINE_SIP_AUTH_BAN_S="5",
           TRUNKLINE_SIP_AUTH_GUESSING_EVENTS="6")
    pid = import_number(d, username="carrier1")
    codes = [digest_attempt(d, "guess%d" % i).code for i in range(8)]
    assert codes == [403] * 8, codes
    r = digest_attempt(d, PASSWORD)
    assert r.code == 403 and "credentials do not match" in r.get("warning"), r.raw
    e = event(d, pid, "credentials_guessing")
    assert "guessing" in e["hint"], e
    # the 4th failure banned the source for 5 s; then the right password works again
    assert wait_for(lambda: digest_attempt(d, PASSWORD).code == 200, "the ban to end",
                    timeout=30)


# ---- item 5: UDP is no reflector --------------------------------------------------------

def test_udp_refusal_sent_once(gw):
    """Issue 11 item 5: an INVITE over UDP from a source nothing was agreed with (a spoofed
    address, maybe) is answered once: timer G (T1 = 20 ms here) would have sent the refusal
    again at 20, 60, 140, 300, 620 ms … until timer H at 1.28 s."""
    d = gw(TRUNKLINE_SIP_T1_MS="20")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        lport = s.getsockname()[1]
        s.sendto(invite_bytes(UNKNOWN, "127.0.0.1", d.sip_port, "UDP", sport=lport),
                 ("127.0.0.1", d.sip_port))
        s.settimeout(10)
        first = s.recv(65535)
        assert first.startswith(b"SIP/2.0 401 "), first[:80]
        # absence over timer H's whole span (64*T1 = 1.28 s), with margin: not a sync sleep
        s.settimeout(64 * 0.020 + 1.0)
        with pytest.raises(socket.timeout):
            extra = s.recv(65535)
            raise AssertionError("retransmitted: %r" % extra[:80])


def test_udp_listener_off_by_default():
    table = subprocess.run([BIN, "config"], capture_output=True, text=True, check=True).stdout
    row = [ln for ln in table.splitlines() if ln.startswith("| `sip_udp` ")][0]
    assert "| `off` |" in row, row


# ---- item 6: unbounded state ------------------------------------------------------------

def test_write_queue_cap_closes_connection(gw):
    """Issue 11 item 6: a peer that pipelines requests and never reads the answers loses its
    connection once sip_write_queue_kib of answers wait for it."""
    d = gw(TRUNKLINE_SIP_WRITE_QUEUE_KIB="64")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", d.sip_port))
    big = "x" * 7000  # the answer copies the Via: every answer is ~7 KB
    sent = 0
    try:
        for i in range(4000):  # up to ~28 MB of answers: far past the socket buffers
            msg = ("OPTIONS sip:gw SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKq%d;"
                   "x=%s\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:gw>\r\nCall-ID: q%d\r\n"
                   "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n" % (
                       i, big, i)).encode()
            s.settimeout(10)
            s.sendall(msg)
            sent += 1
            if "write queue over" in d.log_text():
                break
    except OSError:
        pass  # the daemon closed the connection while we were still sending
    finally:
        s.close()
    d.wait_log("write queue over sip_write_queue_kib")


def test_transactions_per_source_cap(gw):
    """Each source may hold sip_max_transactions_per_source live server transactions; the
    next new request is answered 503 statelessly, without state."""
    d = gw(TRUNKLINE_SIP_MAX_TRANSACTIONS_PER_SOURCE="2", TRUNKLINE_CALL_ANSWER_DELAY_MS="60000")
    import_number(d, allowed=["127.0.0.1"])
    ringing = []
    try:
        for _ in range(2):  # two calls ringing: two INVITE transactions
            sc = SipClient(d.sip_port, "tcp")
            sc.invite_send(NUMBER, sdp_offer(40000))
            assert sc.response("INVITE", provisional=True).code == 180
            ringing.append(sc)
        sc = SipClient(d.sip_port, "tcp")
        ringing.append(sc)
        r = sc.invite(NUMBER, sdp_offer(40000))
        assert r.code == 503 and r.get("retry-after"), r.raw
    finally:
        for sc in ringing:
            sc.close()


# ---- item 8: a flood of refusals does not flood the log -----------------------------------

def test_refusal_log_is_rate_limited(gw):
    """Issue 11 item 8: 1,500 INVITEs to unknown numbers (the rate limit opened wide) wrote
    one log line each before; now at most TL_LOG_LIMIT_BURST (10) per second per site."""
    d = gw(TRUNKLINE_SIP_INVITE_RATE="100000", TRUNKLINE_SIP_INVITE_RATE_GLOBAL="100000")
    n = 1500
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", d.sip_port), timeout=30) as s:
        lport = s.getsockname()[1]
        data = b"".join(invite_bytes("+4930555%04d" % i, "127.0.0.1", d.sip_port,
                                     sport=lport) for i in range(n))
        s.sendall(data)
        got, buf = 0, b""
        while got < n:
            chunk = s.recv(65536)
            assert chunk, "closed after %d answers" % got
            buf += chunk
            got = buf.count(b"SIP/2.0 401 ")
    elapsed = time.monotonic() - t0
    lines = d.log_text().count("code=number_not_routed")
    assert lines <= 10 * (int(elapsed) + 2), (lines, elapsed)

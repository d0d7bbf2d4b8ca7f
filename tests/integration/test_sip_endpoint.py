"""SIP endpoint against the real daemon: RFC 4475 torture messages over UDP and TCP, and
SIPp scenarios (basic call, CANCEL, OPTIONS, REGISTER refusal, unknown method, 2xx
retransmission) over UDP and TCP.

The expected outcome of each RFC 4475 file is the one INDEX.tsv describes for an endpoint
(UAS) that refuses registration (static trunks) and answers a valid INVITE for a number
it does not hold with 401 (the call layer's uniform answer to every source a number does
not trust, issue 11: a challenge nobody can answer). Where the RFC allows a choice, the set lists every allowed answer.
"drop" = no answer at all (the UDP wait is short: silence is the asserted behaviour);
"close" = the TCP connection is closed (a 400 before the close is allowed).
"""
import os
import re
import shutil
import socket
import subprocess

import pytest

from conftest import ROOT, free_port

RFC4475 = os.environ.get("TRUNKLINE_RFC4475_DIR",
                         os.path.join(ROOT, "tests", "data", "rfc4475"))
SIPP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sipp")

INVITE_OK = 401  # no number in the store: the call layer challenges every valid INVITE
REG = 403        # static trunks: every REGISTER is refused

# file: (UDP outcome, TCP outcome)
EXPECT = {
    # wsinv's To has a tag: an in-dialog request with no dialog here gets 481 (§12.2.2)
    "wsinv.dat": ({INVITE_OK, 481}, {INVITE_OK, 481}),
    "intmeth.dat": ({501}, {501}),
    "esc01.dat": ({INVITE_OK}, {INVITE_OK}),
    "escnull.dat": ({REG}, {REG}),
    "esc02.dat": ({501}, {501}),
    "lwsdisp.dat": ({200}, {200}),
    "longreq.dat": ({INVITE_OK}, {INVITE_OK}),
    "dblreq.dat": ({REG}, {REG}),  # on a stream the trailing INVITE is the next message
    "semiuri.dat": ({200}, {200}),
    "transports.dat": ({200}, {200}),
    "mpart01.dat": ({405, 501}, {405, 501}),  # MESSAGE: known, not served
    "unreason.dat": ("drop", "drop"),  # responses: no client transaction matches
    "noreason.dat": ("drop", "drop"),
    "badinv01.dat": ({400}, {400}),
    "clerr.dat": ({400}, "close"),  # stream: waits (sip_tcp_idle_s), then closes
    "ncl.dat": ({400}, "close"),
    "scalar02.dat": ({400}, {400}),
    "scalarlg.dat": ("drop", "drop"),
    "quotbal.dat": ({400}, {400}),
    "ltgtruri.dat": ({400}, {400}),
    "lwsruri.dat": ({400, INVITE_OK}, {400, INVITE_OK}),
    "lwsstart.dat": ({400, INVITE_OK}, {400, INVITE_OK}),
    "trws.dat": ({400, 200}, {400, 200}),
    "escruri.dat": ({400, INVITE_OK}, {400, INVITE_OK}),
    "baddate.dat": ({INVITE_OK, 400}, {INVITE_OK, 400}),
    "regbadct.dat": ({400}, {400}),
    "badaspec.dat": ({400, 200}, {400, 200}),
    "baddn.dat": ({400}, {400}),
    "badvers.dat": ({505}, {505}),
    "mismatch01.dat": ({400}, {400}),
    "mismatch02.dat": ({501, 400}, {501, 400}),
    "bigcode.dat": ("drop", "drop"),
    "badbranch.dat": ({200, 400}, {200, 400}),
    "insuf.dat": ({400}, {400}),
    "unkscm.dat": ({416}, {416}),
    "novelsc.dat": ({416}, {416}),
    "unksm2.dat": ({REG, 400}, {REG, 400}),
    "bext01.dat": ({420}, {420}),
    "invut.dat": ({415}, {415}),
    "regaut01.dat": ({REG, 405}, {REG, 405}),
    "multi01.dat": ({400}, {400}),
    "mcl01.dat": ({400}, "close"),
    "bcast.dat": ("drop", "drop"),
    "zeromf.dat": ({200}, {200}),
    "cparam01.dat": ({REG}, {REG}),
    "cparam02.dat": ({REG}, {REG}),
    "regescrt.dat": ({REG}, {REG}),
    "sdp01.dat": ({406, 400}, {406, 400}),
    "inv2543.dat": ({INVITE_OK}, "close"),  # no Content-Length: a stream cannot frame it
    "test.dat": ({400, "drop"}, {400, "close"}),
}

OPTIONS = ("OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\n"
           "Via: SIP/2.0/{tp} 127.0.0.1:9;branch=z9hG4bK{br};rport\r\n"
           "Max-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:probe@127.0.0.1>\r\n"
           "Call-ID: {br}@t\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


def rfc4475_files():
    names = sorted(f for f in os.listdir(RFC4475) if f.endswith(".dat"))
    assert len(names) == 50 and set(names) == set(EXPECT), "RFC 4475 set changed"
    return names


def status(resp):
    m = re.match(rb"SIP/2\.0 (\d{3}) ", resp)
    assert m, resp[:200]
    return int(m.group(1))


@pytest.fixture
def sip(make_daemon):
    port, tls = free_port(), free_port()
    env = {"TRUNKLINE_SIP_TCP_PORT": str(port), "TRUNKLINE_SIP_TLS_PORT": str(tls),
           "TRUNKLINE_SIP_TCP_IDLE_S": "2", "TRUNKLINE_SIP_LISTEN": "127.0.0.1"}

    made = []

    def start(**extra):
        env.update(extra)
        d = make_daemon(env=env)
        d.sip_port = port
        made.append(d)
        return d
    yield start
    for d in made:  # a clean exit, also under ASan/LSan (which exit non-zero on a finding)
        assert d.stop() == 0, d.log_text()[-3000:]


def udp_exchange(port, data, wait=1.0):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(wait)
        s.sendto(data, ("127.0.0.1", port))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None


def read_response(sock):
    """One response off a stream: headers, then Content-Length bytes; None on EOF first."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65535)
        if not chunk:
            return None
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    m = re.search(rb"\r\nContent-Length: *(\d+)", head, re.I)
    n = int(m.group(1)) if m else 0
    while len(rest) < n:
        chunk = sock.recv(65535)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest[:n]


def closed(sock):
    """True when the peer closes; any 400 before the close is allowed."""
    while True:
        chunk = sock.recv(65535)
        if not chunk:
            return True
        assert chunk.startswith(b"SIP/2.0 400 ") or not chunk.startswith(b"SIP/"), chunk


def options_ok(port):
    r = udp_exchange(port, OPTIONS.format(tp="UDP", br=os.urandom(6).hex()).encode(), 3)
    assert r is not None and status(r) == 200
    with socket.create_connection(("127.0.0.1", port), timeout=5) as t:
        t.sendall(OPTIONS.format(tp="TCP", br=os.urandom(6).hex()).encode())
        r = read_response(t)
        assert r is not None and status(r) == 200


def test_rfc4475_udp(sip):
    d = sip()
    for name in rfc4475_files():
        data = open(os.path.join(RFC4475, name), "rb").read()
        want = EXPECT[name][0]
        r = udp_exchange(d.sip_port, data)
        if r is None:
            assert want == "drop" or "drop" in want, "%s: no answer, wanted %s" % (name, want)
        else:
            assert want != "drop", "%s: answered %r" % (name, r[:60])
            assert status(r) in want, "%s: got %r, wanted %s" % (name, r[:60], want)
            assert b"\r\nServer:" not in r  # no product string
    options_ok(d.sip_port)


def test_rfc4475_tcp(sip):
    d = sip()
    for name in rfc4475_files():
        data = open(os.path.join(RFC4475, name), "rb").read()
        want = EXPECT[name][1]
        with socket.create_connection(("127.0.0.1", d.sip_port), timeout=6) as t:
            t.sendall(data)
            if want == "close":
                assert closed(t), name
                continue
            if want == "drop":
                t.settimeout(1)
                with pytest.raises(socket.timeout):
                    t.recv(65535)
                continue
            try:
                r = read_response(t)
            except socket.timeout:
                r = None
            if r is None:
                assert "close" in want or "drop" in want, "%s: no answer" % name
                continue
            assert status(r) in want, "%s: got %r, wanted %s" % (name, r[:60], want)
    options_ok(d.sip_port)


def test_register_refused_logged(sip):
    d = sip()
    data = open(os.path.join(RFC4475, "cparam01.dat"), "rb").read()
    r = udp_exchange(d.sip_port, data, 3)
    assert status(r) == 403
    assert b'Warning: 399 gw.test "This endpoint serves static SIP trunks' in r
    assert b"\r\nReason: SIP;cause=403" in r
    d.wait_log("register.refused")


def test_udp_retransmission_absorbed(sip):
    """A retransmitted request gets the same response (same To tag), not a new one."""
    d = sip()
    msg = OPTIONS.format(tp="UDP", br="retrans1").encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(msg, ("127.0.0.1", d.sip_port))
        a = s.recv(65535)
        s.sendto(msg, ("127.0.0.1", d.sip_port))
        b = s.recv(65535)
    assert a == b


def test_tcp_ping_pong(sip):
    d = sip()
    with socket.create_connection(("127.0.0.1", d.sip_port), timeout=3) as t:
        t.sendall(b"\r\n\r\n")
        assert t.recv(16) == b"\r\n"  # RFC 5626 §3.5.1


def test_tcp_garbage_closes(sip):
    d = sip()
    with socket.create_connection(("127.0.0.1", d.sip_port), timeout=3) as t:
        t.sendall(b"\x16\x03\x01\x00\xa5garbage")
        assert closed(t)
    options_ok(d.sip_port)


def test_tls_options(sip):
    import ssl
    d = sip()
    tls_port = int(d.extra_env["TRUNKLINE_SIP_TLS_PORT"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="gw.test") as t:
            assert t.version() in ("TLSv1.2", "TLSv1.3")
            t.sendall(OPTIONS.format(tp="TLS", br="tls1").encode())
            r = read_response(t)
            assert r is not None and status(r) == 200


# ---- SIPp ----

SIPP = shutil.which("sipp")


def run_sipp(d, scenario, transport, extra=()):
    cmd = [SIPP, "-sf", os.path.join(SIPP_DIR, scenario), "-m", "1", "-t", transport,
           "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)),
           "127.0.0.1:%d" % d.sip_port, "-timeout", "20s", "-timeout_error", "-trace_err",
           "-nostdin", "-nd"] + list(extra)
    p = subprocess.run(cmd, cwd=d.dir, capture_output=True, timeout=60)
    errs = ""
    for f in os.listdir(d.dir):
        if f.endswith("_errors.log"):
            errs += open(os.path.join(d.dir, f), errors="replace").read()
    assert p.returncode == 0, "sipp %s %s: %s\n%s\n%s" % (
        scenario, transport, p.returncode, p.stdout[-2000:], errs[-3000:])


needs_sipp = pytest.mark.skipif(SIPP is None, reason="sipp (sip-tester) not installed")


@needs_sipp
@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_basic_call(sip, transport):
    run_sipp(sip(TRUNKLINE_SIP_TEST_POLICY="answer"), "uac_call.xml", transport)


@needs_sipp
@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_cancel(sip, transport):
    run_sipp(sip(TRUNKLINE_SIP_TEST_POLICY="ring"), "uac_cancel.xml", transport)


@needs_sipp
def test_sipp_options_register_unknown(sip):
    d = sip()
    for sc in ("options.xml", "register_refused.xml", "unknown_method.xml"):
        run_sipp(d, sc, "u1")


@needs_sipp
def test_sipp_2xx_retransmitted_until_ack(sip):
    # T1 = 100 ms: the 200 OK repeats quickly; the scenario asserts it sees repeats
    d = sip(TRUNKLINE_SIP_TEST_POLICY="answer", TRUNKLINE_SIP_T1_MS="100")
    run_sipp(d, "uac_retrans.xml", "u1", ["-trace_msg"])
    log = "".join(open(os.path.join(d.dir, f), errors="replace").read()
                  for f in os.listdir(d.dir) if f.endswith("_messages.log"))
    got = [m for m in re.split(r"\n-{20,}[^\n]*\n", log)
           if "message received" in m and "SIP/2.0 200 OK" in m and "CSeq: 1 INVITE" in m]
    assert len(got) >= 3, "200 OK seen %d times" % len(got)


def test_tcp_many_messages_in_one_write_are_all_answered(sip):
    """A trunk multiplexes every call on one connection: under load one read brings far
    more than one message's cap. 300 OPTIONS (~100 KiB) in one write must all be
    answered, and the connection must stay open (it was closed as 'over the cap')."""
    d = sip()
    n = 300
    batch = b"".join(OPTIONS.format(tp="TCP", br="b%05d" % i + os.urandom(4).hex()).encode()
                     for i in range(n))
    assert len(batch) > 65535
    with socket.create_connection(("127.0.0.1", d.sip_port), timeout=10) as t:
        t.sendall(batch)
        buf, got = b"", 0
        while got < n:  # responses are pipelined: split them off one buffer
            chunk = t.recv(65535)
            assert chunk, "connection closed after %d responses" % got
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"\r\nContent-Length: *(\d+)", head, re.I)
                assert m and int(m.group(1)) == 0, head
                assert status(head) == 200, head
                got += 1
    assert "over the cap" not in d.log_text()

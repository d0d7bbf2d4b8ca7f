"""The outgoing-call session (sip/session.c, UAC side) through `trunkline probe invite`,
against SIPp UAS scenarios (tests/integration/sipp/uas_*.xml) over UDP and TCP: hold by
re-INVITE, UPDATE, INFO, REFER + NOTIFY, CANCEL, 422 retry, re-ACK of a retransmitted 200,
session-timer refresh as refresher=uac, far-end BYE while held; and RFC 3263 failover
between SRV targets served by dnsserver.py.

Every check of what the probe sent is inside the scenario (ereg check_it="true"), so SIPp
exiting 0 is that assertion; the probe's stdout says what it saw. No sleeps and no timing
thresholds: each wait is for a process exit with a generous deadline."""
import re
import socket
import subprocess
import threading

import pytest

import dnsserver
from test_sip_endpoint import sip  # noqa: F401 (fixture)
from conftest import free_port
from test_sip_uac import probe, sipp  # noqa: F401 (fixture)

TRANSPORTS = [("udp", "u1"), ("tcp", "t1")]


def call(s, tp, *args):
    return probe("invite", "sip:+4930123456@127.0.0.1:%d" % s.port, "--transport", tp, *args)


@pytest.mark.parametrize("tp,flag", TRANSPORTS)
def test_hold_reinvite(sipp, tp, flag):  # noqa: F811
    s = sipp("uas_hold.xml", flag)
    rc, out, err = call(s, tp, "--hold-after", "0")
    assert rc == 0, out + err
    assert "reinvite 200 answer-direction=recvonly" in out
    assert "BYE: SIP/2.0 200 OK" in out
    assert s.wait() == 0  # the re-INVITE offered sendonly


@pytest.mark.parametrize("tp,flag", TRANSPORTS)
def test_far_end_bye_while_held(sipp, tp, flag):  # noqa: F811
    s = sipp("uas_hold_bye.xml", flag)
    rc, out, err = call(s, tp, "--hold-after", "0", "--hold", "60")
    assert rc == 0, out + err
    assert "reinvite 200 answer-direction=recvonly" in out
    assert "BYE received from the far end" in out
    assert s.wait() == 0  # our 200 to its BYE arrived


@pytest.mark.parametrize("tp,flag", TRANSPORTS)
def test_update(sipp, tp, flag):  # noqa: F811
    s = sipp("uas_update.xml", flag)
    rc, out, err = call(s, tp, "--update-after", "0")
    assert rc == 0, out + err
    assert "update 200 answer-direction=sendrecv" in out
    assert s.wait() == 0


@pytest.mark.parametrize("tp,flag", TRANSPORTS)
def test_info_dtmf(sipp, tp, flag):  # noqa: F811
    s = sipp("uas_info.xml", flag)
    rc, out, err = call(s, tp, "--info-after", "0")
    assert rc == 0, out + err
    assert "info 200" in out
    assert s.wait() == 0  # application/dtmf-relay, Signal=5, Duration=160


@pytest.mark.parametrize("tp,flag", TRANSPORTS)
def test_refer_notify(sipp, tp, flag):  # noqa: F811
    s = sipp("uas_refer.xml", flag)
    rc, out, err = call(s, tp, "--refer", "sip:+4930777@example.test")
    assert rc == 0, out + err
    assert re.search(r"refer 202\n(.*\n)*notify sipfrag=100 subscription=active\n"
                     r"notify sipfrag=200 subscription=terminated\n", out), out
    assert "BYE: SIP/2.0 200 OK" in out
    assert s.wait() == 0


@pytest.mark.parametrize("tp,flag", TRANSPORTS)
def test_cancel_after_ring(sipp, tp, flag):  # noqa: F811
    s = sipp("uas_cancel.xml", flag)
    rc, out, err = call(s, tp, "--cancel-after-ring")
    assert rc == 1, out + err
    assert "CANCEL sent" in out
    assert "INVITE: SIP/2.0 487 Request Terminated" in out
    assert "cancelled" in out
    assert s.wait() == 0  # SIPp saw the CANCEL and the ACK for its 487
    assert s.received("CANCEL") == 1 and s.received("ACK") == 1


@pytest.mark.parametrize("tp,flag", TRANSPORTS)
def test_422_retry_with_min_se(sipp, tp, flag):  # noqa: F811
    s = sipp("uas_422.xml", flag)
    rc, out, err = call(s, tp, "--session-expires", "90")
    assert rc == 0, out + err
    assert "INVITE: SIP/2.0 422 Session Interval Too Small" in out
    assert "INVITE: SIP/2.0 200 OK" in out
    assert s.wait() == 0  # the retry asked for Session-Expires 1800, Min-SE 1800
    assert s.received("INVITE") == 2


@pytest.mark.parametrize("tp,flag", TRANSPORTS)
def test_200_retransmission_acked_again(sipp, tp, flag):  # noqa: F811
    """The far end hangs up only after both ACKs: the call stays up however late the
    second 200 comes."""
    s = sipp("uas_retrans200.xml", flag)
    rc, out, err = call(s, tp, "--hold", "60")
    assert rc == 0, out + err
    assert "BYE received from the far end" in out
    assert s.wait() == 0
    assert s.received("ACK") == 2


@pytest.mark.parametrize("tp,flag", TRANSPORTS)
def test_session_refresh_as_uac(sipp, tp, flag):  # noqa: F811
    """The 200 makes us the refresher with a 2 s interval: an UPDATE at half time (its
    answer carries no Session-Expires, so no second one), then the far end hangs up."""
    s = sipp("uas_refresh.xml", flag)
    rc, out, err = call(s, tp, "--session-expires", "90", "--hold", "60")
    assert rc == 0, out + err
    assert "refresh UPDATE 200" in out
    assert "BYE received from the far end" in out
    assert s.wait() == 0


@pytest.mark.parametrize("tp,flag,extra", [("udp", "u1", ["--t1-ms", "50"]),
                                           ("tcp", "t1", [])])
def test_rfc3263_srv_failover(sipp, tp, flag, extra):  # noqa: F811
    """SRV priority 10 points at a port nobody serves, priority 20 at SIPp: the OPTIONS
    succeeds at the second (TCP: the refused connect fails over at once; UDP: after timer
    F, which --t1-ms makes 64 * 50 ms)."""
    s = sipp("uas_options.xml", flag)
    dead = free_port(socket.SOCK_DGRAM if tp == "udp" else socket.SOCK_STREAM)
    srv = dnsserver.start({
        "trunk.test": {},
        "_sip._%s.trunk.test" % tp: {"SRV": [[10, 0, dead, "dead.trunk.test"],
                                             [20, 0, s.port, "live.trunk.test"]]},
        "dead.trunk.test": {"A": ["127.0.0.1"]},
        "live.trunk.test": {"A": ["127.0.0.1"]},
    })
    try:
        rc, out, err = probe("options", "sip:+4930123456@trunk.test", "--transport", tp,
                             "--dns-server", "127.0.0.1:%d" % srv.port, *extra)
    finally:
        srv.stop()
    assert rc == 0, out + err
    assert re.search(r"OPTIONS: SIP/2.0 200 OK", out)
    assert s.wait() == 0
    assert ("SRV", "_sip._%s.trunk.test" % tp) in [(q[1], q[2]) for q in srv.queries]


# ---- stream transport details the sessions rely on ----

def recv_q_empty(server_port, client_port):
    """True once the daemon has read everything we sent on this connection (its Recv-Q)."""
    out = subprocess.run(["ss", "-tnH", "state", "established", "sport = :%d" % server_port,
                          "dport = :%d" % client_port], capture_output=True, text=True).stdout
    return out.split() and out.split()[0] == "0"


def test_crlf_ping_split_across_reads(sip):  # noqa: F811
    """RFC 5626 §3.5.1: CRLFCRLF in two TCP segments, the second only after the daemon has
    read the first (its Recv-Q is empty again), is still a ping: one CRLF pong comes."""
    d = sip()
    with socket.create_connection(("127.0.0.1", d.sip_port), timeout=5) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sendall(b"\r\n")
        cport = c.getsockname()[1]
        deadline = threading.Event()
        for _ in range(400):  # the daemon reads at once; this only waits for that event
            if recv_q_empty(d.sip_port, cport):
                break
            deadline.wait(0.01)
        c.sendall(b"\r\n")
        assert c.recv(16) == b"\r\n"

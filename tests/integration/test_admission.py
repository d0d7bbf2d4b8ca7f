"""Admission by the real load (issue 11 item 13): new INVITEs are turned away with 503 and
Retry-After while the loop that carries the calls' audio is busier than
admission_max_busy_pct, and admitted again once it is not. The load here is a flood of
pipelined OPTIONS over TCP against a threshold of 1 %: the loop is then busy far above it,
and idle far below it with one echo call once the flood stops. The figures of the real
case (1.5x the capacity) are bench/calls' (bench/README.md)."""
import signal
import socket
import threading
import time

import pytest

from conftest import free_port
from rtpclient import RtpClient, known_sequence
from sipclient import SipClient, parse_answer, sdp_offer
from test_inbound_calls import NUMBER, event, import_number


@pytest.fixture
def gw(make_daemon):
    env = {"TRUNKLINE_SIP_TCP_PORT": str(free_port()),
           "TRUNKLINE_SIP_TLS_PORT": str(free_port()),
           "TRUNKLINE_SIP_LISTEN": "127.0.0.1",
           "TRUNKLINE_MEDIA_TIMEOUT_S": "30",
           "TRUNKLINE_ADMISSION_MAX_BUSY_PCT": "1",
           "TRUNKLINE_ADMISSION_MAX_LATE_MS": "0"}
    d = make_daemon(env=env)
    d.sip_port = int(env["TRUNKLINE_SIP_TCP_PORT"])
    yield d
    assert d.stop() == 0, d.log_text()[-3000:]


class Flood:
    """Pipelined OPTIONS over one TCP connection until stopped; responses are read and
    thrown away so the daemon's writes never back up."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.stop_ev = threading.Event()
        lport = self.sock.getsockname()[1]
        self.msgs = b"".join((
            "OPTIONS sip:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:%d;branch=z9hG4bK%d\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:flood@127.0.0.1>;tag=f\r\nTo: <sip:127.0.0.1>\r\n"
            "Call-ID: flood-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n" % (
                port, lport, i, i)).encode() for i in range(200))
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._read, daemon=True)]
        for t in self.threads:
            t.start()

    def _send(self):
        try:
            while not self.stop_ev.is_set():
                self.sock.sendall(self.msgs)
        except OSError:
            pass

    def _read(self):
        try:
            while not self.stop_ev.is_set() and self.sock.recv(65536):
                pass
        except OSError:
            pass

    def stop(self):
        self.stop_ev.set()
        self.sock.close()
        for t in self.threads:
            t.join(5)


def invite(d):
    """One INVITE; returns its final response (a refused one is ACKed, an answered one
    hung up)."""
    rtp = RtpClient()
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite(NUMBER, sdp_offer(rtp.port))
        if r.code >= 300:
            sc.ack_failure(r)
        else:
            sc.ack()
            assert sc.bye().code == 200
        return r
    finally:
        sc.close()
        rtp.close()


stop_ev = threading.Event()  # never set: a paced wait between polls


def until(d, fn, what, timeout=30.0):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        d.proc.send_signal(signal.SIGUSR1)  # the load as the daemon sees it, for the message
        # Paced: INVITEs back to back are themselves load enough to keep a 1 % loop busy.
        stop_ev.wait(0.3)
        assert time.monotonic() < end, "timed out waiting for %s; the daemon's load:\n%s" % (
            what, "\n".join(l for l in d.log_text().splitlines() if "core stats" in l)[-2000:])


def test_busy_loop_turns_new_calls_away_then_admits_them(gw):
    d = gw
    pid = import_number(d)
    # one call in progress keeps the media clock (and so the load sampling) running
    rtp = RtpClient()
    sc = SipClient(d.sip_port, "tcp")
    r = sc.invite(NUMBER, sdp_offer(rtp.port))
    assert r.code == 200, r.raw
    sc.ack()
    ip, port = parse_answer(r.body)[:2]
    rtp.set_remote(ip, port)
    sender = threading.Thread(target=rtp.run, args=(known_sequence(2000, seed=11),),
                              daemon=True)
    sender.start()
    flood = Flood(d.sip_port)
    try:
        refused = until(d, lambda: (lambda x: x if x.code == 503 else None)(invite(d)),
                        "a 503 while the loop is flooded")
        assert refused.get("retry-after") == "5", refused.raw
        assert "capacity" in (refused.get("warning") or ""), refused.raw
        ev = event(d, pid, "admission_refused")
        assert "at capacity" in ev["message"] and "busy" in ev["message"], ev
    finally:
        flood.stop()
    # the call in progress was not touched, and new calls are taken again once it is calm
    until(d, lambda: invite(d).code == 200, "a 200 once the flood stopped")
    assert sc.bye().code == 200
    sc.close()
    rtp.close()

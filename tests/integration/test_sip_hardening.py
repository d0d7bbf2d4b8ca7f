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
from test_inbound_calls import NUMBER, event, gw, import_number, wait_for  # noqa: F401

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

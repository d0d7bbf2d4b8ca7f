"""Issue 13, many nodes on one database: the master key from TRUNKLINE_MASTER_KEY or the
master_key_file setting, its id in the log, the refusal of a node with the wrong key, and
the digest nonce key every node derives from the master key (a carrier's answer to node 1's
401 passes on node 2)."""
import base64
import hashlib
import os
import re
import subprocess

import pytest

from conftest import BIN, free_port
from rtpclient import RtpClient
from sipclient import SipClient, sdp_offer
from test_inbound_calls import (NUMBER, call_record, digest_header, gw,  # noqa: F401 (fixture)
                                import_number)


def key_id(key):
    """docs/configuration.md "Master key": the first 8 hex digits of BLAKE2b-256 keyed with
    the key over the text "trunkline master key id v1", which operators can compute too."""
    return hashlib.blake2b(b"trunkline master key id v1", digest_size=32, key=key).hexdigest()[:8]


def loaded(d):
    m = re.search(r"master_key\.loaded source=(\S+) key_id=([0-9a-f]{8})",
                  d.wait_log("master_key.loaded"))
    return m.group(1), m.group(2)


def serve(tmp_path, data_dir, env=None):
    """`trunkline serve` expected to refuse: its exit and its stderr (the log goes there)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("TRUNKLINE_")}
    e.update({"TRUNKLINE_DATA_DIR": str(data_dir), "TRUNKLINE_API_LISTEN": "127.0.0.1:0",
              "TRUNKLINE_SIP_TCP_PORT": str(free_port()),
              "TRUNKLINE_SIP_TLS_PORT": str(free_port()), "TRUNKLINE_LOG_FILE": ""})
    e.update(env or {})
    return subprocess.run([BIN, "serve"], capture_output=True, text=True, timeout=60, env=e,
                          cwd=str(tmp_path))


def test_wrong_key_refuses_start(make_daemon, tmp_path):
    a, b = os.urandom(32), os.urandom(32)
    d = make_daemon(env={"TRUNKLINE_MASTER_KEY": a.hex()})
    assert loaded(d) == ("env", key_id(a))
    assert not os.path.exists(os.path.join(d.data_dir, "master.key"))  # nothing made
    # read, then wiped from the process's environment (child processes inherit it)
    with open("/proc/%d/environ" % d.proc.pid, "rb") as f:
        environ = f.read()
    assert a.hex().encode() not in environ and b"TRUNKLINE_DATA_DIR=" in environ
    assert d.api("GET", "/v1/phone-numbers").status_code == 200
    assert d.stop() == 0
    assert a.hex() not in d.log_text()
    db = os.path.join(d.data_dir, "trunkline.db")
    before = open(db, "rb").read()

    r = serve(tmp_path, d.data_dir, {"TRUNKLINE_MASTER_KEY": b.hex()})
    assert r.returncode != 0
    assert "wrong master key" in r.stderr, r.stderr
    # the database's key id first, then this node's, and what to do
    assert re.search(r"key whose id is %s, and this node's key has id %s"
                     % (key_id(a), key_id(b)), r.stderr), r.stderr
    assert "TRUNKLINE_MASTER_KEY or master_key_file" in r.stderr
    assert b.hex() not in r.stderr and a.hex() not in r.stderr
    assert "ready api=" not in r.stderr
    assert open(db, "rb").read() == before  # nothing written
    assert not os.path.exists(os.path.join(d.data_dir, "master.key"))

    # the same key as base64 is the same key: the node starts, its data intact
    d.extra_env["TRUNKLINE_MASTER_KEY"] = base64.b64encode(a).decode()
    d.start()
    assert loaded(d) == ("env", key_id(a))
    assert d.api("GET", "/v1/phone-numbers").status_code == 200


def test_key_file_and_precedence(make_daemon, tmp_path):
    a, b = os.urandom(32), os.urandom(32)
    kdir = tmp_path / "keys"
    kdir.mkdir(mode=0o700)
    kf = kdir / "master.key"
    kf.write_text(a.hex() + "\n")
    os.chmod(kf, 0o644)

    # readable by others: refused with the chmod to run, before anything is made
    data = tmp_path / "var"
    r = serve(tmp_path, data, {"TRUNKLINE_MASTER_KEY_FILE": str(kf)})
    assert r.returncode != 0
    assert "master_key_file %s has mode 644" % kf in r.stderr and "chmod 600" in r.stderr, \
        r.stderr
    assert not os.path.exists(data / "trunkline.db")
    # not a 32-byte key
    os.chmod(kf, 0o600)
    kf.write_text(a.hex()[:-2] + "\n")
    r = serve(tmp_path, data, {"TRUNKLINE_MASTER_KEY_FILE": str(kf)})
    assert r.returncode != 0 and "holds no 32-byte key" in r.stderr, r.stderr
    assert a.hex()[:-2] not in r.stderr

    # a good file: the node runs with that key and makes no master.key of its own
    kf.write_text(a.hex() + "\n")
    d = make_daemon(env={"TRUNKLINE_MASTER_KEY_FILE": str(kf)})
    assert loaded(d) == ("master_key_file", key_id(a))
    assert not os.path.exists(os.path.join(d.data_dir, "master.key"))
    d.stop()
    # the environment comes first; here it holds another key, and the store says so
    r = serve(tmp_path, d.data_dir, {"TRUNKLINE_MASTER_KEY_FILE": str(kf),
                                     "TRUNKLINE_MASTER_KEY": b.hex()})
    assert r.returncode != 0
    assert "source=env key_id=%s" % key_id(b) in r.stderr, r.stderr
    assert "wrong master key" in r.stderr
    # the raw 32 bytes in the file are the same key as its hex
    kf.write_bytes(a)
    d.start()
    assert loaded(d) == ("master_key_file", key_id(a))

    # the recovery command takes the key where the daemon does
    d.stop()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUNKLINE_")}
    tok = subprocess.run([BIN, "token", "create", "--data-dir", d.data_dir,
                          "--master-key-file", str(kf)],
                         capture_output=True, text=True, timeout=30, env=env)
    assert tok.returncode == 0, tok.stderr
    secret = re.search(r"token: (tlk_\S+)", tok.stdout).group(1)
    env["TRUNKLINE_MASTER_KEY"] = b.hex()
    bad = subprocess.run([BIN, "token", "create", "--data-dir", d.data_dir],
                         capture_output=True, text=True, timeout=30, env=env)
    assert bad.returncode != 0 and "wrong master key" in bad.stderr, bad.stderr
    # no source given and no master.key there: refused, none made
    del env["TRUNKLINE_MASTER_KEY"]
    none = subprocess.run([BIN, "token", "create", "--data-dir", d.data_dir],
                          capture_output=True, text=True, timeout=30, env=env)
    assert none.returncode != 0 and "no master key" in none.stderr, none.stderr
    assert not os.path.exists(os.path.join(d.data_dir, "master.key"))
    d.start()
    assert d.api("GET", "/v1/workspaces", token=secret).status_code == 200


def test_nonce_ttl_must_be_below_the_epoch(tmp_path):
    """A nonce must not outlive the key of its epoch (one day): refused at start."""
    r = serve(tmp_path, tmp_path / "var", {"TRUNKLINE_SIP_NONCE_TTL_S": "86400"})
    assert r.returncode != 0 and "sip_nonce_ttl_s must be below 86400" in r.stderr, r.stderr
    assert not os.path.exists(tmp_path / "var")  # refused before anything was made


def retry_on(node, first, auth, rtp):
    """The carrier's answered INVITE, sent by the edge to another node: the same Call-ID,
    From tag and CSeq + 1, the Request-URI rewritten to that node (the digest uri still
    names the called number, which the node accepts: sip/digest.h)."""
    sc = SipClient(node.sip_port, "tcp")
    sc.user, sc.call_id, sc.ftag = first.user, first.call_id, first.ftag
    sc.to_hdr = sc.invite_to = first.invite_to
    sc.ruri = "sip:%s@127.0.0.1:%d;transport=tcp" % (NUMBER, node.sip_port)
    sc.cseq = first.cseq
    sc.request("INVITE", sc.ruri, sdp_offer(rtp.port).encode(), auth)
    return sc, sc.invite_final()


def test_nonce_from_node1_accepted_by_node2(gw):  # noqa: F811
    """Two nodes with the same master key (and data dirs of their own, the number imported
    into each): node 1's 401, answered, passes on node 2; a node with another key challenges
    it again."""
    shared = os.urandom(32).hex()
    n1 = gw(TRUNKLINE_MASTER_KEY=shared)
    n2 = gw(TRUNKLINE_MASTER_KEY=shared)
    n3 = gw(TRUNKLINE_MASTER_KEY=os.urandom(32).hex())
    assert loaded(n1)[1] == loaded(n2)[1] != loaded(n3)[1]
    for n in (n1, n2, n3):
        import_number(n, username="carrier1")
    rtp = RtpClient()
    first = SipClient(n1.sip_port, "tcp")
    others = []
    try:
        r = first.invite(NUMBER, sdp_offer(rtp.port))
        assert r.code == 401, r.raw
        first.ack()
        first.cseq += 1
        auth = digest_header(r.get("www-authenticate"), "INVITE", first.ruri, "carrier1",
                             "inb0und-S3cret")

        sc3, r3 = retry_on(n3, first, auth, rtp)
        others.append(sc3)
        # not its key: a fresh challenge (not stale, not a refusal) with a nonce of its own
        assert r3.code == 401, r3.raw
        ch3 = r3.get("www-authenticate")
        assert "stale" not in ch3
        nonce = re.compile(r'nonce="([^"]+)"')
        assert nonce.search(ch3).group(1) != nonce.search(r.get("www-authenticate")).group(1)
        sc3.ack()

        sc2, r2 = retry_on(n2, first, auth, rtp)
        others.append(sc2)
        assert r2.code == 200, r2.raw
        sc2.ack()
        assert sc2.bye().code == 200
        assert call_record(n2, first.call_id)["end_reason"] == "bye_received"
    finally:
        for s in [first] + others:
            s.close()
        rtp.close()

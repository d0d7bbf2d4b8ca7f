"""The daemon itself: first start, restart, signals, logs, durability, secrets at rest."""
import glob
import json
import os
import signal
import stat
import subprocess

import pytest

from conftest import BIN, ROOT

IMPORT = {
    "number": "+493012345678",
    "label": "Berlin office",
    "outbound_trunk": {"address": "sip.telnyx.com", "username": "acme_trunk",
                       "password": "S3cr3t-PLAIN-pw-outbound", "transport": "tls"},
}


def numbered(i):
    body = json.loads(json.dumps(IMPORT))
    body["number"] = "+4930%08d" % i
    return body


def test_first_start_creates_workspace_tokens_and_echo(daemon):
    assert daemon.operator_token and daemon.admin_token and daemon.workspace_id
    assert daemon.operator_token != daemon.admin_token
    r = daemon.api("GET", "/v1/agents")
    assert r.status_code == 200, r.text
    agents = r.json()["data"]
    assert [(a["name"], a["kind"], a.get("builtin")) for a in agents] == [("echo", "builtin", "echo")]
    r = daemon.api("GET", "/v1/workspaces/" + daemon.workspace_id)
    assert r.status_code == 200 and r.json()["plan"] == "professional"
    assert r.json()["region"] == "eu"
    # the data directory holds the master key (0600) and a self-made certificate
    key = os.path.join(daemon.data_dir, "master.key")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and os.path.getsize(key) == 32
    assert stat.S_IMODE(os.stat(os.path.join(daemon.data_dir, "tls", "key.pem")).st_mode) == 0o600
    out = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                          os.path.join(daemon.data_dir, "tls", "cert.pem")],
                         capture_output=True, text=True, check=True).stdout
    assert "DNS:gw.test" in out and "IP Address:127.0.0.1" in out
    names = [n.strip() for n in out.splitlines()[-1].split(",")]
    assert len(names) == len(set(names)), names  # each name once


@pytest.mark.parametrize("host,first", [("localhost", "DNS:localhost"),
                                        ("203.0.113.7", "IP Address:203.0.113.7"),
                                        ("2001:db8::7", "IP Address:2001:DB8:0:0:0:0:0:7")])
def test_self_made_certificate_names(make_daemon, host, first):
    """The public host is the first subjectAltName, an IP literal as an IP address (a
    dNSName never matches an IP, RFC 6125 §6.2.1), and no name is listed twice."""
    d = make_daemon(env={"TRUNKLINE_PUBLIC_HOST": host})
    out = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                          os.path.join(d.data_dir, "tls", "cert.pem")],
                         capture_output=True, text=True, check=True).stdout
    names = [n.strip() for n in out.splitlines()[-1].split(",")]
    assert names[0] == first, names
    assert len(names) == len(set(names)), names
    assert "DNS:localhost" in names and "IP Address:127.0.0.1" in names


def test_restart_keeps_everything_and_prints_no_new_tokens(daemon):
    cert = open(os.path.join(daemon.data_dir, "tls", "cert.pem")).read()
    key = open(os.path.join(daemon.data_dir, "master.key"), "rb").read()
    op, adm = daemon.operator_token, daemon.admin_token
    assert daemon.api("POST", "/v1/phone-numbers", json=IMPORT).status_code == 201
    daemon.operator_token = daemon.admin_token = None
    daemon.restart()
    assert daemon.operator_token is None and daemon.admin_token is None
    daemon.operator_token, daemon.admin_token = op, adm
    r = daemon.api("GET", "/v1/phone-numbers")
    assert [n["number"] for n in r.json()["data"]] == ["+493012345678"]
    assert open(os.path.join(daemon.data_dir, "tls", "cert.pem")).read() == cert
    assert open(os.path.join(daemon.data_dir, "master.key"), "rb").read() == key


def test_health_and_readiness(daemon):
    assert daemon.api("GET", "/healthz", token="").json() == {"status": "ok"}
    assert daemon.api("GET", "/readyz", token="").status_code == 200


def test_sigterm_is_a_clean_shutdown(daemon):
    assert daemon.stop() == 0
    assert "shutdown" in daemon.log_text() and "stopped" in daemon.log_text()


def test_sighup_reopens_the_log(daemon):
    rotated = daemon.log_path + ".1"
    os.rename(daemon.log_path, rotated)
    daemon.proc.send_signal(signal.SIGHUP)
    # the reopen is logged to the new file; requests after it land there too
    assert daemon.api("GET", "/healthz", token="").status_code == 200
    import time
    deadline = time.monotonic() + 10
    while "log.reopen" not in daemon.log_text() and time.monotonic() < deadline:
        daemon.api("GET", "/healthz", token="")
    assert "log.reopen" in daemon.log_text()
    assert "log.reopen" not in open(rotated).read()


def test_json_log_lines(make_daemon):
    d = make_daemon(env={"TRUNKLINE_LOG_FORMAT": "json"})
    d.api("GET", "/v1/phone-numbers")
    log = d.wait_log(lambda t: len([l for l in t.splitlines() if l.strip()]) >= 3)
    lines = [l for l in log.splitlines() if l.strip()]
    for l in lines:
        rec = json.loads(l)
        assert {"ts", "level", "component", "msg"} <= rec.keys()


def test_bad_setting_is_refused_with_a_message(tmp_path):
    r = subprocess.run([BIN, "serve", "--sip-tls-port", "70000", "--data-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "sip_tls_port" in r.stderr
    r = subprocess.run([BIN, "serve", "--no-such-thing", "1"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2 and "--no-such-thing" in r.stderr
    r = subprocess.run([BIN, "serve", "--rtp-latching", "first", "--data-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "rtp_latching must be sdp-ip, any or off" in r.stderr, r.stderr


def test_config_file_and_precedence(make_daemon, tmp_path):
    cfg = tmp_path / "trunkline.conf"
    cfg.write_text("# comment\npublic_host = from-file.example\nlog_format = json\n")
    d = make_daemon(env={"TRUNKLINE_CONFIG": str(cfg)})
    r = d.api("GET", "/v1/sip/endpoints")
    # the harness sets TRUNKLINE_PUBLIC_HOST: the environment beats the file
    assert r.json()["tls"].startswith("sip:gw.test:")
    first = d.wait_log(lambda t: t.strip() != "").splitlines()[0]
    assert json.loads(first)["level"]  # the file's log_format applied


def test_settings_are_documented():
    table = subprocess.run([BIN, "config"], capture_output=True, text=True, check=True).stdout
    doc = open(os.path.join(ROOT, "docs", "configuration.md")).read()
    for line in table.splitlines()[2:]:
        assert line in doc, "docs/configuration.md lacks: " + line


def test_acknowledged_writes_survive_kill_9(daemon):
    n = 40
    for i in range(n):
        r = daemon.api("POST", "/v1/phone-numbers", json=numbered(i))
        assert r.status_code == 201, r.text
    daemon.kill9()  # right after the last 2xx
    daemon.start()
    got = []
    cursor = None
    while True:
        params = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        r = daemon.api("GET", "/v1/phone-numbers", params=params)
        assert r.status_code == 200
        got += r.json()["data"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert sorted(x["number"] for x in got) == sorted("+4930%08d" % i for i in range(n))
    for x in got:  # none half-written
        assert x["outbound_trunk"]["address"] == "sip.telnyx.com"
        assert x["outbound_trunk"]["has_password"] is True
        assert x["label"] == "Berlin office"


def test_secrets_never_at_rest_in_clear_nor_in_logs(daemon):
    body = dict(IMPORT)
    body["inbound_trunk"] = {"username": "carrier-in", "password": "S3cr3t-PLAIN-pw-inbound"}
    r = daemon.api("POST", "/v1/phone-numbers", json=body)
    assert r.status_code == 201, r.text
    assert "S3cr3t" not in r.text
    r = daemon.api("POST", "/v1/tokens", token=daemon.operator_token,
                   json={"role": "member", "workspace_id": daemon.workspace_id})
    assert r.status_code == 201, r.text
    member = r.json()["token"]
    assert daemon.api("GET", "/v1/phone-numbers", token=member).status_code == 200
    daemon.stop()  # flush everything to the files we inspect
    blobs = b""
    for f in glob.glob(os.path.join(daemon.data_dir, "trunkline.db*")):
        blobs += open(f, "rb").read()
    assert blobs, "database file missing"
    for secret in (b"S3cr3t-PLAIN-pw-outbound", b"S3cr3t-PLAIN-pw-inbound",
                   member.encode(), daemon.admin_token.encode(), daemon.operator_token.encode()):
        assert secret not in blobs
        assert secret.decode() not in daemon.log_text()


def _serve_fails(tmp_path, data_dir, extra=()):
    env = dict(os.environ)
    env.update({"TRUNKLINE_DATA_DIR": str(data_dir), "TRUNKLINE_API_LISTEN": "127.0.0.1:0",
                "TRUNKLINE_SIP_TCP_PORT": "0", "TRUNKLINE_SIP_TLS_PORT": "0",
                "TRUNKLINE_LOG_FILE": ""})
    r = subprocess.run([BIN, "serve", *extra], capture_output=True, text=True, timeout=30,
                       env=env, cwd=str(tmp_path))
    return r


def test_data_dir_writable_by_others_is_refused(tmp_path):
    """Issue 11 item 16: whoever can write the data directory can swap the database."""
    d = tmp_path / "var"
    d.mkdir()
    os.chmod(d, 0o777)
    r = _serve_fails(tmp_path, d)
    assert r.returncode != 0
    assert "writable by others" in r.stderr and "chmod go-w %s" % d in r.stderr, r.stderr
    assert not os.path.exists(d / "master.key")  # refused before anything was written
    os.chmod(d, 0o770)
    r = _serve_fails(tmp_path, d)
    assert r.returncode != 0 and "writable by its group" in r.stderr, r.stderr


def test_tls_key_readable_by_others_is_refused(daemon, tmp_path):
    """Issue 11 item 16: a private key others can read, configured or self-made."""
    key = os.path.join(daemon.data_dir, "tls", "key.pem")
    cert = os.path.join(daemon.data_dir, "tls", "cert.pem")
    daemon.stop()
    own = tmp_path / "own"
    own.mkdir(mode=0o700)
    okey, ocert = own / "key.pem", own / "cert.pem"
    okey.write_bytes(open(key, "rb").read())
    ocert.write_bytes(open(cert, "rb").read())
    os.chmod(okey, 0o644)
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    r = _serve_fails(tmp_path, other, ["--tls-cert", str(ocert), "--tls-key", str(okey)])
    assert r.returncode != 0
    assert "readable by others" in r.stderr and "chmod o-rwx %s" % okey in r.stderr, r.stderr
    # the self-made key: refused too, never silently replaced
    os.chmod(key, 0o644)
    before = open(key, "rb").read()
    r = _serve_fails(tmp_path, daemon.data_dir)
    assert r.returncode != 0 and "chmod o-rwx %s" % key in r.stderr, r.stderr
    assert open(key, "rb").read() == before
    os.chmod(key, 0o640)  # group access (Debian's ssl-cert group) stays allowed
    daemon.start()
    assert daemon.api("GET", "/healthz").status_code == 200

"""Hardening of the REST API (issue 11): the raw path and the query string, repeated
credentials, connection limits, TLS, tokens, open trunks. Raw sockets where a client
library would normalise what we want to send."""
import socket

import pytest

from test_api import IMPORT, body


def raw_request(port, target, headers=(), method="GET", host="127.0.0.1"):
    """One request exactly as written (no client library re-encodes the target); returns
    (status, body text)."""
    s = socket.create_connection((host, port), timeout=20)
    try:
        lines = ["%s %s HTTP/1.1" % (method, target), "Host: 127.0.0.1", "Connection: close"]
        lines += list(headers)
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode("latin-1"), rest.decode("utf-8", "replace")


def auth(d, tok=None):
    return "Authorization: Bearer " + (tok or d.admin_token)


# ---- item 15: paths and query strings ----------------------------------------------

def test_encoded_slash_and_nul_in_the_path_are_refused(daemon):
    for target in ("/v1%2Ftokens", "/v1%2ftokens", "/v1/tokens%00xyz", "/v1/agents/%2e%2e%2Ftokens"):
        status, head, text = raw_request(daemon.port, target, [auth(daemon)])
        assert status == 400, (target, head, text)
        assert '"invalid_path"' in text and "application/json" in head
    # another escape is routed as written: %61 is not "a", so no route matches
    status, _, text = raw_request(daemon.port, "/v1/%61gents", [auth(daemon)])
    assert status == 404 and '"not_found"' in text
    status, _, _ = raw_request(daemon.port, "/v1/agents", [auth(daemon)])
    assert status == 200


def test_unknown_and_repeated_query_parameters_are_refused(daemon):
    daemon.api("POST", "/v1/phone-numbers", json=IMPORT)
    r = daemon.api("GET", "/v1/phone-numbers?agnet_id=ag_x")
    assert r.status_code == 400, r.text
    e = r.json()["error"]
    assert e["code"] == "unknown_parameter" and e["field"] == "agnet_id"
    assert "agent_id" in e["message"]  # the message lists what the route takes
    r = daemon.api("GET", "/v1/phone-numbers?limit=1&limit=2")
    assert r.status_code == 400 and r.json()["error"]["code"] == "repeated_parameter", r.text
    assert r.json()["error"]["field"] == "limit"
    op = daemon.operator_token
    ws = daemon.workspace_id
    r = daemon.api("GET", "/v1/agents?workspace_id=%s&workspace_id=ws_other" % ws, token=op)
    assert r.status_code == 400 and r.json()["error"]["field"] == "workspace_id", r.text
    # a route without parameters takes none
    r = daemon.api("GET", "/v1/me?x=1")
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_parameter"
    # known ones still work, empty pieces are no parameter
    r = daemon.api("GET", "/v1/phone-numbers?limit=1&&number=%2B493012345678")
    assert r.status_code == 200 and len(r.json()["data"]) == 1, r.text
    r = daemon.api("GET", "/v1/agents?workspace_id=%s&limit=5" % ws, token=op)
    assert r.status_code == 200, r.text
    # checked after the token: a stranger learns nothing
    status, _, _ = raw_request(daemon.port, "/v1/phone-numbers?agnet_id=1")
    assert status == 401


def test_repeated_credentials_are_refused(daemon):
    a = auth(daemon)
    status, _, text = raw_request(daemon.port, "/v1/me", [a, a])
    assert status == 400 and '"repeated_credentials"' in text, text
    status, _, text = raw_request(daemon.port, "/v1/me",
                                  [a, "Authorization: Bearer tlk_someone_else"])
    assert status == 400, text
    status, _, _ = raw_request(daemon.port, "/v1/me", [a])
    assert status == 200


def test_a_long_target_gets_414_as_json(daemon):
    status, head, text = raw_request(daemon.port, "/v1/" + "a" * 300, [auth(daemon)])
    assert status == 414 and "application/json" in head and '"uri_too_long"' in text, text
    status, head, text = raw_request(daemon.port, "/v1/agents?q=" + "a" * 5000, [auth(daemon)])
    assert status == 414 and '"uri_too_long"' in text, text


# ---- item 14: connection limits, header timeout, TLS, exposure -----------------------

def half_sent(port, src="127.0.0.2"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((src, 0))
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never finished
    except OSError:
        s.close()
        return None
    return s


def test_half_sent_requests_from_one_host_do_not_stall_healthz(make_daemon):
    """1,100 connections with half-sent requests from 127.0.0.2: the per-address limit
    keeps them from taking every slot, so /healthz (from 127.0.0.1) still answers; and
    a held connection is closed once the header timeout passes."""
    d = make_daemon(env={"TRUNKLINE_API_HEADER_TIMEOUT_S": "2"})
    socks = [s for s in (half_sent(d.port) for _ in range(1100)) if s]
    try:
        r = d.api("GET", "/healthz")
        assert r.status_code == 200 and r.json()["status"] == "ok"
        r = d.api("GET", "/v1/me")
        assert r.status_code == 200
        # the slots the flood holds are closed by the server when the headers never end
        s = socks[0]
        s.settimeout(20)
        try:
            got = s.recv(1024)
        except ConnectionResetError:
            got = b""
        assert got == b"" or got.startswith(b"HTTP/1.1 4"), got
    finally:
        for s in socks:
            s.close()
    assert "per_ip=64 header_timeout_s=2" in d.log_text()


def _serve(tmp_path, env):
    import os
    import subprocess
    from conftest import BIN
    e = dict(os.environ)
    e.update({"TRUNKLINE_DATA_DIR": str(tmp_path / "var"), "TRUNKLINE_SIP_TCP_PORT": "0",
              "TRUNKLINE_SIP_TLS_PORT": "0", "TRUNKLINE_LOG_FILE": ""})
    e.update(env)
    return subprocess.run([BIN, "serve"], env=e, capture_output=True, text=True, timeout=30)


def test_plain_http_on_a_public_address_is_refused(tmp_path):
    r = _serve(tmp_path, {"TRUNKLINE_API_LISTEN": "0.0.0.0:0"})
    assert r.returncode != 0
    assert "api_listen 0.0.0.0:0 is not a loopback address" in r.stderr, r.stderr
    assert "api_tls=on" in r.stderr and "api_allow_plain_http=on" in r.stderr


def test_api_over_https_with_the_daemons_certificate(make_daemon):
    import os
    import subprocess
    import requests
    from conftest import BIN
    d = make_daemon(env={"TRUNKLINE_API_TLS": "on"})
    cert = os.path.join(d.data_dir, "tls", "cert.pem")
    url = "https://127.0.0.1:%d" % d.port
    r = requests.get(url + "/v1/me", headers={"Authorization": "Bearer " + d.admin_token},
                     verify=cert, timeout=10)
    assert r.status_code == 200 and r.json()["role"] == "admin"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url + "/healthz", timeout=10)  # not in the system store
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get("http://127.0.0.1:%d/healthz" % d.port, timeout=10)
    # the CLI trusts the daemon's certificate through TRUNKLINE_CA_FILE
    env = dict(os.environ, TRUNKLINE_URL=url, TRUNKLINE_TOKEN=d.admin_token)
    r = subprocess.run([BIN, "agents", "list"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "certificate" in (r.stderr + r.stdout).lower(), r.stderr
    env["TRUNKLINE_CA_FILE"] = cert
    r = subprocess.run([BIN, "agents", "list"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "echo" in r.stdout, r.stderr
    assert "tls=on" in d.log_text()


# ---- item 17: tokens ---------------------------------------------------------------

def test_last_operator_token_cannot_be_revoked_and_offline_recovery(daemon):
    import subprocess
    from conftest import BIN
    op = daemon.operator_token
    me = daemon.api("GET", "/v1/me", token=op).json()["token"]["id"]
    r = daemon.api("DELETE", "/v1/tokens/" + me, token=op)
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_operator_token", r.text
    assert "trunkline token create --data-dir" in r.json()["error"]["message"]
    # reads show the last use (the token was just used) and no expiry
    t = daemon.api("GET", "/v1/tokens/" + me, token=op).json()
    assert t["last_used_at"] is not None and t["expires_at"] is None
    # a second operator token: now the first may go, and the second is the last
    r = daemon.api("POST", "/v1/tokens", token=op, json={"role": "operator", "name": "two",
                                                         "expires_in_s": 3600})
    assert r.status_code == 201 and r.json()["expires_at"] is not None, r.text
    two, two_id = r.json()["token"], r.json()["id"]
    assert daemon.api("DELETE", "/v1/tokens/" + me, token=two).status_code == 204
    assert daemon.api("DELETE", "/v1/tokens/" + two_id, token=two).status_code == 409
    r = daemon.api("POST", "/v1/tokens", token=two, json={"role": "member", "expires_in_s": 5})
    assert r.status_code == 400 and r.json()["error"]["field"] == "expires_in_s", r.text

    # the operator token lost anyway: made on the host, in the store, while the daemon runs
    r = subprocess.run([BIN, "token", "create", "--data-dir", daemon.data_dir, "--name", "rescue"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    rescue = [l.split()[1] for l in r.stdout.splitlines() if l.startswith("token: ")][0]
    r = daemon.api("GET", "/v1/events", token=rescue)
    assert r.status_code == 200, r.text
    # a wrong directory creates nothing
    r = subprocess.run([BIN, "token", "create", "--data-dir", daemon.data_dir + "-typo"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "data_dir" in r.stderr


# ---- item 4: an inbound trunk open to everyone is asked for, not just warned about ----

def test_open_inbound_trunk_needs_allow_any_source(daemon):
    import os
    import subprocess
    from conftest import BIN
    open_trunk = {"transport": "tls", "media_encryption": "required"}
    r = daemon.api("POST", "/v1/phone-numbers", json=body(inbound_trunk=open_trunk))
    assert r.status_code == 400, r.text
    e = r.json()["error"]
    assert e["code"] == "invalid_field" and e["field"] == "inbound_trunk.allowed_addresses"
    assert "allow_any_source" in e["message"] and "username and password" in e["message"]
    r = daemon.api("POST", "/v1/phone-numbers",
                   json=body(inbound_trunk=dict(open_trunk, allow_any_source=True)))
    assert r.status_code == 201, r.text
    assert [w["code"] for w in r.json()["warnings"]] == ["inbound_unauthenticated"]
    pid = r.json()["id"]
    # reads keep the warning, the single number and the list alike
    n = daemon.api("GET", "/v1/phone-numbers/" + pid).json()
    assert n["inbound_trunk"]["allow_any_source"] is True
    assert [w["code"] for w in n["warnings"]] == ["inbound_unauthenticated"]
    item = daemon.api("GET", "/v1/phone-numbers").json()["data"][0]
    assert [w["code"] for w in item["warnings"]] == ["inbound_unauthenticated"]
    # an edit that leaves the opt-in out is refused again
    r = daemon.api("PUT", "/v1/phone-numbers/" + pid, json=body(inbound_trunk=open_trunk))
    assert r.status_code == 400 and r.json()["error"]["field"] == "inbound_trunk.allowed_addresses"
    assert daemon.api("DELETE", "/v1/phone-numbers/" + pid).status_code == 204
    # a trunk with either check needs nothing and warns of nothing
    r = daemon.api("POST", "/v1/phone-numbers", json=IMPORT)
    assert r.status_code == 201 and "warnings" not in r.json(), r.text

    # the CLI: refused with the server's words, then asked for
    env = dict(os.environ, TRUNKLINE_URL=daemon.url, TRUNKLINE_TOKEN=daemon.admin_token)
    args = [BIN, "numbers", "import", "+493099999999", "--address", "sip.telnyx.com",
            "--inbound-transport", "tcp"]
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "allow_any_source" in p.stderr, p.stderr
    p = subprocess.run(args + ["--allow-any-source", "yes", "--json"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "inbound_unauthenticated" in p.stderr or "inbound_unauthenticated" in p.stdout

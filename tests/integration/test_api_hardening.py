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

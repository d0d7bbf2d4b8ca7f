"""What the web UI needs from the API (issue 12), end to end against the real daemon: who a
token is (GET /v1/me), the number list's search and latest-event badge, the carrier-side
set-up facts of /v1/sip/endpoints, the trunk check (POST /v1/phone-numbers/{id}/check)
against Python SIP peers, and the UI's files at "/" with their headers.

No timing thresholds and no sleeps as synchronisation: waits are for events (a response,
an event in the API) with deadlines."""
import json
import os
import socket
import threading

import pytest
import requests

import dnsserver
from test_calls_api import events, register_udp
from test_sip_uac import PyUas, digest_ok, make_ca, response

NUMBER = "+493012345678"
PASSWORD = "Tr7nk-S3cret-pw"


def body(number=NUMBER, label="Berlin office", address="sip.telnyx.com", transport="tls",
         username=None, password=None, headers=None):
    ob = {"address": address, "transport": transport,
          "media_encryption": "disabled" if transport == "udp" else "required"}
    if username:
        ob["username"], ob["password"] = username, password
    if headers:
        ob["headers"] = headers
    return {"number": number, "label": label, "outbound_trunk": ob}


def imp(d, token=None, **kw):
    r = d.api("POST", "/v1/phone-numbers", json=body(**kw), token=token)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def token(d, role, tok=None):
    r = d.api("POST", "/v1/tokens", token=tok, json={"role": role, "name": "ui " + role})
    assert r.status_code == 201, r.text
    return r.json()


# ---------------------------------------------------------------- GET /v1/me ----

def test_me_tells_role_workspace_and_routes(daemon):
    d = daemon
    r = d.api("GET", "/v1/me")
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["object"] == "me" and me["role"] == "admin"
    assert me["workspace"]["id"] == d.workspace_id and me["workspace"]["name"] == "default"
    assert me["token"]["role"] == "admin" and me["token"]["id"].startswith("tk_")
    assert "token" not in me["token"]  # never the secret
    assert "POST /v1/phone-numbers" in me["routes"]
    assert "POST /v1/phone-numbers/{id}/check" in me["routes"]
    assert "GET /v1/events" not in me["routes"]  # operator only

    member = token(d, "member")
    r = d.api("GET", "/v1/me", token=member["token"])
    me = r.json()
    assert me["role"] == "member" and me["token"]["id"] == member["id"]
    assert me["token"]["name"] == "ui member"
    assert "GET /v1/phone-numbers" in me["routes"]
    assert not [x for x in me["routes"] if not x.startswith("GET ")], me["routes"]

    r = d.api("GET", "/v1/me", token=d.operator_token)
    me = r.json()
    assert me["role"] == "operator" and me["workspace"] is None
    assert "POST /v1/workspaces" in me["routes"] and "GET /v1/events" in me["routes"]

    r = d.api("GET", "/v1/me", token="tlk_" + "x" * 43)
    assert r.status_code == 401
    # a revoked token is nobody at once
    d.api("DELETE", "/v1/tokens/" + member["id"])
    assert d.api("GET", "/v1/me", token=member["token"]).status_code == 401


# ---------------------------------------------------------------- list: q, latest_event ----

def test_list_search_by_number_or_label(daemon):
    d = daemon
    ids = {}
    for i, label in enumerate(["Berlin office", "Hamburg support", "berlin night line",
                               "مكتب القاهرة", "Zürich"]):
        ids[label] = imp(d, number="+49301234%04d" % i, label=label)

    def q(text, **params):
        r = d.api("GET", "/v1/phone-numbers", params=dict(q=text, **params))
        assert r.status_code == 200, r.text
        return r.json()

    assert [n["label"] for n in q("berlin")["data"]] == ["Berlin office", "berlin night line"]
    assert [n["label"] for n in q("SUPPORT")["data"]] == ["Hamburg support"]
    assert [n["label"] for n in q("القاهرة")["data"]] == ["مكتب القاهرة"]
    assert [n["label"] for n in q("Zür")["data"]] == ["Zürich"]
    assert [n["number"] for n in q("12340001")["data"]] == ["+493012340001"]
    assert len(q("+4930")["data"]) == 5
    assert q("nothing-like-this")["data"] == []
    assert len(q("")["data"]) == 5  # empty = no filter
    # paging keeps the filter
    p1 = q("30", limit=2)
    assert len(p1["data"]) == 2 and p1["next_cursor"]
    p2 = q("30", limit=2, cursor=p1["next_cursor"])
    p3 = q("30", limit=2, cursor=p2["next_cursor"])
    got = [n["id"] for n in p1["data"] + p2["data"] + p3["data"]]
    assert got == list(ids.values()) and p3["next_cursor"] is None
    r = d.api("GET", "/v1/phone-numbers", params={"q": "x" * 129})
    assert r.status_code == 400 and r.json()["error"]["field"] == "q"


def test_list_items_carry_the_latest_event(make_daemon):
    port = __import__("conftest").free_port()
    d = make_daemon(env={"TRUNKLINE_SIP_TCP_PORT": str(port)})
    d.sip_port = port
    quiet = imp(d, number="+4930111")
    noisy = imp(d)
    r = d.api("GET", "/v1/phone-numbers")
    assert [n["latest_event"] for n in r.json()["data"]] == [None, None]
    assert register_udp(d, NUMBER) == 403
    _, evs = events(d, noisy, want=1)
    r = d.api("GET", "/v1/phone-numbers")
    by_id = {n["id"]: n for n in r.json()["data"]}
    assert by_id[quiet]["latest_event"] is None
    le = by_id[noisy]["latest_event"]
    assert le == {"id": evs[0]["id"], "code": "registration_attempt",
                  "message": evs[0]["message"], "created_at": evs[0]["created_at"]}
    # the newest one wins
    assert register_udp(d, NUMBER) == 403
    _, evs = events(d, noisy, want=2)
    r = d.api("GET", "/v1/phone-numbers", params={"q": NUMBER[1:]})
    assert r.json()["data"][0]["latest_event"]["id"] == evs[0]["id"]
    # the single read has no badge: it is a list summary
    assert "latest_event" not in d.api("GET", "/v1/phone-numbers/" + noisy).json()


# ---------------------------------------------------------------- endpoints ----

def test_endpoints_tell_egress_and_dns_records(make_daemon):
    d = make_daemon(env={"TRUNKLINE_PUBLIC_IP": "203.0.113.7"})
    r = d.api("GET", "/v1/sip/endpoints")
    assert r.status_code == 200, r.text
    e = r.json()
    tls_port = int(e["tls"].split(":")[2].split(";")[0])
    tcp_port = int(e["tcp"].split(":")[2].split(";")[0])
    assert e["egress_addresses"] == ["203.0.113.7"]
    assert e["dns_records"] == [
        {"type": "A", "name": "gw.test", "value": "203.0.113.7"},
        {"type": "SRV", "name": "_sips._tcp.gw.test", "value": "10 10 %d gw.test" % tls_port},
        {"type": "SRV", "name": "_sip._tcp.gw.test", "value": "10 10 %d gw.test" % tcp_port},
    ]
    # unknown public address: said so (null), not guessed
    d2 = make_daemon()
    e = d2.api("GET", "/v1/sip/endpoints").json()
    assert e["egress_addresses"] == [] and e["dns_records"][0]["value"] is None


# ---------------------------------------------------------------- the UI's files ----

def test_ui_is_served_with_strict_headers(daemon):
    d = daemon
    r = requests.get(d.url + "/", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = r.headers["Content-Security-Policy"]
    for part in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'",
                 "base-uri 'none'", "form-action 'self'", "object-src 'none'"):
        assert part in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Cache-Control"] == "no-cache"
    etag = r.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert "<script" in r.text and 'type="module"' in r.text
    assert "style=" not in r.text and "onclick" not in r.text.lower()
    # revalidation
    r2 = requests.get(d.url + "/", headers={"If-None-Match": etag}, timeout=10)
    assert r2.status_code == 304 and r2.content == b"" and r2.headers["ETag"] == etag
    r2 = requests.get(d.url + "/index.html", headers={"If-None-Match": 'W/"x", ' + etag})
    assert r2.status_code == 304
    # every file the page loads is there, with its type
    for path, ctype in (("/app.js", "text/javascript; charset=utf-8"),
                        ("/app.css", "text/css; charset=utf-8")):
        r = requests.get(d.url + path, timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"] == ctype, path
        assert "Content-Security-Policy" in r.headers
    # HEAD, and writes refused
    assert requests.head(d.url + "/", timeout=10).status_code == 200
    r = requests.post(d.url + "/", data="x", timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    # nothing else is a file: no directory is read
    for path in ("/../etc/passwd", "/web/index.html", "/index.htm", "/.git/config"):
        assert requests.get(d.url + path, timeout=10).status_code == 404, path
    # API answers keep no-store and get a CSP that allows nothing
    r = d.api("GET", "/v1/me")
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")


# ---------------------------------------------------------------- the trunk check ----

@pytest.fixture
def dns():
    started = []

    def start(zone):
        s = dnsserver.start(zone)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def check_daemon(make_daemon, dns_srv, extra=None):
    env = {"TRUNKLINE_SIP_DNS_SERVERS": "127.0.0.1:%d" % dns_srv.port,
           "TRUNKLINE_SIP_T1_MS": "50"}
    env.update(extra or {})
    return make_daemon(env=env)


def zone_for(uas_port, tls=False):
    srv = "_sips._tcp.carrier.test" if tls else "_sip._udp.carrier.test"
    return {srv: {"SRV": [[0, 0, uas_port, "uas.carrier.test"]]},
            "uas.carrier.test": {"A": ["127.0.0.1"]},
            "carrier.test": {"A": ["127.0.0.1"]}}


def check(d, pid, token=None):
    r = d.api("POST", "/v1/phone-numbers/%s/check" % pid, token=token)
    assert r.status_code == 200, r.text
    return r.json()


def test_check_ok_with_digest(make_daemon, dns):
    seen = {}

    def h(start, hdrs):
        if not start.startswith("OPTIONS"):
            return []
        cred = hdrs.get("authorization")
        if not cred:
            return [response(start, hdrs, "401 Unauthorized",
                             'WWW-Authenticate: Digest realm="carrier.test", nonce="4f2a"\r\n')]
        ok, dg = digest_ok(cred[0], "OPTIONS", PASSWORD, "MD5")
        seen["user"], seen["from"] = dg["username"], hdrs["from"][0]
        seen["x"] = hdrs.get("x-account")
        return [response(start, hdrs, "200 OK" if ok else "403 Forbidden")]

    uas = PyUas(h)
    try:
        d = check_daemon(make_daemon, dns(zone_for(uas.port)))
        pid = imp(d, address="carrier.test", transport="udp", username="acme",
                  password=PASSWORD, headers=[{"name": "X-Account", "value": "4711"}])
        res = check(d, pid)
    finally:
        uas.stop()
    assert res["object"] == "trunk_check" and res["number_id"] == pid
    assert res["ok"] is True and res["reachable"] is True and res["step"] is None
    assert res["status"] == 200 and res["reason"] == "OK"
    assert res["address"] == "127.0.0.1:%d" % uas.port
    assert res["target"] == "sip:carrier.test" and res["transport"] == "udp"
    assert isinstance(res["rtt_ms"], int) and res["rtt_ms"] >= 0
    assert "reachable" in res["message"] and "200 OK" in res["message"]
    assert seen == {"user": "acme", "from": seen["from"], "x": ["4711"]}
    assert NUMBER in seen["from"]
    # the password is used, never shown or logged
    assert PASSWORD not in json.dumps(res)
    assert PASSWORD not in d.log_text()


def test_check_wrong_password_says_so(make_daemon, dns):
    def h(start, hdrs):
        if not start.startswith("OPTIONS"):
            return []
        return [response(start, hdrs, "401 Unauthorized",
                         'WWW-Authenticate: Digest realm="carrier.test", nonce="%s"\r\n'
                         % os.urandom(4).hex())]
    uas = PyUas(h)
    try:
        d = check_daemon(make_daemon, dns(zone_for(uas.port)))
        pid = imp(d, address="carrier.test", transport="udp", username="acme",
                  password=PASSWORD)
        res = check(d, pid)
    finally:
        uas.stop()
    assert res["reachable"] is True and res["ok"] is False
    assert res["step"] == "sip" and res["status"] == 401
    assert "password" in res["message"]


def test_check_failures_name_the_step(make_daemon, dns, tmp_path):
    # TLS: a certificate for another name
    ctx, ca = make_ca(str(tmp_path), ["DNS:other.example"])
    uas = PyUas(lambda s, h: [response(s, h, "200 OK")], ctx)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))  # takes the OPTIONS, never answers
    refused_port = closed.getsockname()[1]
    zone = zone_for(uas.port, tls=True)
    zone["_sip._tcp.refused.test"] = {"SRV": [[0, 0, closed.getsockname()[1],
                                              "uas.carrier.test"]]}
    zone["_sip._udp.silent.test"] = {"SRV": [[0, 0, mute.getsockname()[1],
                                             "uas.carrier.test"]]}
    try:
        d = check_daemon(make_daemon, dns(zone), {"TRUNKLINE_SIP_TLS_CA_FILE": ca})
        tls = check(d, imp(d, address="carrier.test", transport="tls"))
        ref = check(d, imp(d, number="+4930222", address="refused.test", transport="tcp"))
        nx = check(d, imp(d, number="+4930333", address="nowhere.test", transport="tcp"))
        silent = check(d, imp(d, number="+4930444", address="silent.test", transport="udp"))
    finally:
        uas.stop()
        closed.close()
        mute.close()
    assert tls["step"] == "tls" and tls["reachable"] is False
    assert "verif" in tls["detail"] and "TLS" in tls["message"]
    assert not uas.seen  # nothing sent over an unverified connection
    assert ref["step"] == "connect" and "refused" in ref["detail"]
    assert ref["address"] == "127.0.0.1:%d" % refused_port
    assert nx["step"] == "dns" and nx["address"] is None and "nowhere.test" in nx["message"]
    assert silent["step"] == "timeout" and "No answer" in silent["message"]
    for res in (tls, ref, nx, silent):
        assert res["ok"] is False and res["status"] is None and res["elapsed_ms"] <= 10000


def test_check_roles_scope_and_limit(make_daemon, dns):
    """Members may not check (it sends traffic); another workspace's number is 404; at
    most four checks run at once (429 with Retry-After), and a check never holds up other
    requests: the API answers while four wait for a silent peer."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))  # takes the OPTIONS, never answers
    d = check_daemon(make_daemon, dns({"_sip._udp.silent.test": {
        "SRV": [[0, 0, silent.getsockname()[1], "uas.carrier.test"]]},
        "uas.carrier.test": {"A": ["127.0.0.1"]}}), {"TRUNKLINE_SIP_T1_MS": "500"})
    pid = imp(d, address="silent.test", transport="udp")
    member = token(d, "member")["token"]
    r = d.api("POST", "/v1/phone-numbers/%s/check" % pid, token=member)
    assert r.status_code == 403
    r = d.api("POST", "/v1/phone-numbers/pn_%s/check" % ("0" * 26))
    assert r.status_code == 404

    results = []

    def one():
        results.append(d.api("POST", "/v1/phone-numbers/%s/check" % pid))
    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    # wait until the four are admitted: each has sent its OPTIONS
    silent.settimeout(15)
    got = set()
    while len(got) < 4:
        data, addr = silent.recvfrom(65535)
        got.add(addr)
    r = d.api("POST", "/v1/phone-numbers/%s/check" % pid)
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_checks"
    assert r.headers["Retry-After"] == "5"
    # the server answers meanwhile
    assert d.api("GET", "/v1/me").status_code == 200
    for t in threads:
        t.join(30)
    silent.close()
    assert [x.status_code for x in results] == [200] * 4
    assert {x.json()["step"] for x in results} == {"timeout"}
    # and the slots are free again
    r = d.api("POST", "/v1/phone-numbers/%s/check" % pid)
    assert r.status_code == 200


def test_stop_while_checking(make_daemon, dns):
    """A daemon stopped during a check ends it and exits cleanly (the suspended request is
    answered or dropped, never left for MHD to trip over)."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    d = check_daemon(make_daemon, dns({"_sip._udp.silent.test": {
        "SRV": [[0, 0, silent.getsockname()[1], "uas.carrier.test"]]},
        "uas.carrier.test": {"A": ["127.0.0.1"]}}), {"TRUNKLINE_SIP_T1_MS": "500"})
    pid = imp(d, address="silent.test", transport="udp")
    out = []

    def one():
        try:
            out.append(d.api("POST", "/v1/phone-numbers/%s/check" % pid).status_code)
        except requests.ConnectionError:
            out.append("closed")
    t = threading.Thread(target=one)
    t.start()
    silent.settimeout(15)
    silent.recvfrom(65535)
    assert d.stop() == 0, d.log_text()[-3000:]
    t.join(15)
    silent.close()
    assert out in (["closed"], [200], [503])

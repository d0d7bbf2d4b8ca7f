"""Workspace webhooks (issue 10): call status changes of inbound and outbound calls are
POSTed as JSON to the workspace's URL, signed with HMAC-SHA256 over the timestamp and the
body (X-Trunkline-Signature), retried with backoff, kept in the store so that a restart
loses none, sent from a thread of their own, and held to the same address guard as agent
URLs. A local HTTP server receives them; waits are for its requests with a deadline."""
import hashlib
import hmac
import http.server
import json
import threading
import time

from test_inbound_calls import echo_call, gw, import_number  # noqa: F401 (fixture)
from test_outbound_calls import dns, gateway, place, wait_for, zone_for  # noqa: F401
from test_outbound_calls import import_number as import_out
from test_sip_uac import sipp  # noqa: F401 (fixture)

LOCAL = {"TRUNKLINE_AGENT_ALLOW_NETWORKS": "127.0.0.0/8",
         "TRUNKLINE_AGENT_INSECURE_HOSTS": "127.0.0.1",
         "TRUNKLINE_WEBHOOK_RETRY_BASE_MS": "100"}


class Receiver:
    """Records every POST (headers, body) and answers with the next status of `statuses`
    (the last one repeats)."""

    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.got = []
        self.cond = threading.Condition()
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with rec.cond:
                    code = rec.statuses.pop(0) if len(rec.statuses) > 1 else rec.statuses[0]
                    rec.got.append((dict(self.headers), body, code))
                    rec.cond.notify_all()
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d/hooks" % self.port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def events(self, ok_only=True):
        with self.cond:
            return [(h, json.loads(b)) for h, b, c in self.got if not ok_only or c < 300]

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def verify(secret, headers, body, tolerance=300):
    """What a receiver does (docs/api.md "Webhooks"): recompute the HMAC over t.body and
    compare in constant time; refuse an old timestamp."""
    parts = dict(p.split("=", 1) for p in headers["X-Trunkline-Signature"].split(","))
    t = int(parts["t"])
    mac = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"]) and abs(time.time() - t) < tolerance


def set_hook(d, url, token=None):
    r = d.api("PUT", "/v1/webhook", json={"url": url}, token=token)
    assert r.status_code == 200, r.text
    h = r.json()
    assert h["secret"].startswith("whsec_") and len(h["secret"]) == 49, h
    return h["secret"]


def test_call_events_signed(gw):  # noqa: F811
    rcv = Receiver()
    try:
        d = gw(**LOCAL)
        import_number(d)
        secret = set_hook(d, rcv.url)
        g = d.api("GET", "/v1/webhook").json()
        assert g["url"] == rcv.url and "secret" not in g and g["pending"] == 0, g
        sc, _, _ = echo_call(d)
        types = lambda: [e["type"] for _, e in rcv.events()]  # noqa: E731
        wait_for(lambda: "call.completed" in types(), "call.completed")
        assert types() == ["call.initiated", "call.ringing", "call.answered", "call.completed"]
        with rcv.cond:
            got = list(rcv.got)
        ids = set()
        for h, body, _ in got:
            assert verify(secret, h, body), h
            assert not verify("whsec_" + "x" * 43, h, body)  # a wrong secret fails
            assert h["Content-Type"] == "application/json"
            e = json.loads(body)
            assert h["X-Trunkline-Event"] == e["type"] and h["X-Trunkline-Delivery"] == e["id"]
            assert e["object"] == "event" and e["data"]["sip_call_id"] == sc.call_id, e
            assert e["data"]["direction"] == "inbound"
            ids.add(e["id"])
        assert len(ids) == 4
        last = json.loads(got[-1][1])["data"]
        assert last["status"] == "completed" and last["end_reason"] == "bye_received", last
        # a tampered body does not verify
        assert not verify(secret, got[0][0], got[0][1] + b" ")
        wait_for(lambda: d.api("GET", "/v1/webhook").json()["last_success_at"], "last_success")
        log = d.log_text()
        assert secret not in log
    finally:
        rcv.stop()


def test_retried_after_500s(gw):  # noqa: F811
    rcv = Receiver([500, 500, 200])
    try:
        d = gw(**LOCAL)
        import_number(d)
        set_hook(d, rcv.url)
        echo_call(d)
        wait_for(lambda: len(rcv.events()) == 4, "all four events delivered")
        with rcv.cond:
            got = list(rcv.got)
        tries = {}
        for h, _, c in got:
            tries.setdefault(h["X-Trunkline-Delivery"], []).append(c)
        # each delivery was tried until the receiver took it: the two refused ones again,
        # none lost, none taken twice
        assert len(tries) == 4 and all(t[-1] == 200 and t.count(200) == 1
                                       for t in tries.values()), tries
        assert sum(t.count(500) for t in tries.values()) == 2, tries
        h = d.api("GET", "/v1/webhook").json()
        assert h["last_error"] == "the receiver answered HTTP 500" and h["pending"] == 0, h
    finally:
        rcv.stop()


def test_a_delivery_survives_a_restart(gw):  # noqa: F811
    rcv = Receiver([503])  # down for now
    try:
        d = gw(**dict(LOCAL, TRUNKLINE_WEBHOOK_RETRY_BASE_MS="3000"))
        import_number(d)
        set_hook(d, rcv.url)
        echo_call(d)
        wait_for(lambda: d.api("GET", "/v1/webhook").json()["pending"] == 4, "4 pending")
        assert d.stop() == 0
        rcv.statuses = [200]  # the receiver is back while the gateway is down
        d.extra_env["TRUNKLINE_WEBHOOK_RETRY_BASE_MS"] = "100"
        n_before = len(rcv.events())
        assert n_before == 0
        d.start()
        # the first attempt of each was refused before the stop; the rows waited in the
        # store, and the restarted gateway takes them when their retry is due
        wait_for(lambda: len(rcv.events()) == 4, "4 delivered after the restart", timeout=60)
        assert sorted(e["type"] for _, e in rcv.events()) == sorted(
            ["call.initiated", "call.ringing", "call.answered", "call.completed"])
        assert d.api("GET", "/v1/webhook").json()["pending"] == 0
    finally:
        rcv.stop()


def test_webhook_rules(gw):  # noqa: F811
    d = gw()  # no allow-list: loopback is refused, http:// only for listed hosts (none)
    r = d.api("PUT", "/v1/webhook", json={"url": "http://example.com/x"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "url", r.text
    assert "https" in r.json()["error"]["message"]
    r = d.api("PUT", "/v1/webhook", json={"url": "https://127.0.0.1/x"})
    assert r.status_code == 400 and "loopback" in r.json()["error"]["message"], r.text
    r = d.api("PUT", "/v1/webhook", json={"url": "ftp://example.com/x"})
    assert r.status_code == 400, r.text
    r = d.api("PUT", "/v1/webhook", json={"url": "https://example.com/x", "secret": "mine"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_field", r.text
    assert d.api("GET", "/v1/webhook").status_code == 404
    r = d.api("POST", "/v1/tokens", json={"role": "member", "name": "reader"})
    member = r.json()["token"]
    r = d.api("PUT", "/v1/webhook", json={"url": "https://example.com/x"}, token=member)
    assert r.status_code == 403, r.text
    d2 = gw(**LOCAL)
    s1 = set_hook(d2, "http://127.0.0.1:9/one")
    s2 = set_hook(d2, "http://127.0.0.1:9/two")  # a second PUT rotates the secret
    assert s1 != s2
    assert d2.api("GET", "/v1/webhook", token=d2.api("POST", "/v1/tokens", json={
        "role": "member", "name": "m"}).json()["token"]).json()["url"].endswith("/two")
    assert d2.api("DELETE", "/v1/webhook").status_code == 204
    assert d2.api("DELETE", "/v1/webhook").status_code == 404


def test_outbound_call_events(make_daemon, dns, sipp):  # noqa: F811
    """The same events for an outbound call: here one that rings and is refused busy."""
    rcv = Receiver()
    try:
        s = sipp("out_busy.xml")
        d = gateway(make_daemon, dns(zone_for(s.port)), LOCAL)
        import_out(d)
        secret = set_hook(d, rcv.url)
        c = place(d)
        wait_for(lambda: "call.failed" in [e["type"] for _, e in rcv.events()], "call.failed")
        evs = [e for _, e in rcv.events()]
        assert [e["type"] for e in evs] == ["call.initiated", "call.ringing", "call.failed"], evs
        assert all(e["data"]["id"] == c["id"] and e["data"]["direction"] == "outbound"
                   for e in evs)
        assert evs[-1]["data"]["status"] == "busy" and evs[-1]["data"]["final_status"] == 486
        assert evs[0]["data"]["status"] in ("queued", "dialing"), evs[0]
        with rcv.cond:
            assert all(verify(secret, h, b) for h, b, _ in rcv.got)
        assert s.wait() == 0
    finally:
        rcv.stop()

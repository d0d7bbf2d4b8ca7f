"""The REST API end to end against a real daemon: the phone-number life cycle of the import
guide (import, list, show, edit, reassign, unassign, delete), plan gating, tenant isolation,
roles, input refusal, pagination and the HTTP conventions every response follows."""
import copy
import json
import re

import pytest

ADMIN_PASSWORD = "S3cr3t-PLAIN-pw-outbound"
INBOUND_PASSWORD = "S3cr3t-PLAIN-pw-inbound"

IMPORT = {
    "number": "+493012345678",
    "label": "Berlin office",
    "outbound_trunk": {
        "address": "sip.telnyx.com",
        "username": "acme_trunk",
        "password": ADMIN_PASSWORD,
        "transport": "tls",
        "media_encryption": "required",
        "headers": [{"name": "X-Account", "value": "4711"}],
    },
    "inbound_trunk": {
        "transport": "tls",
        "username": "inbound_user",
        "password": INBOUND_PASSWORD,
        "allowed_addresses": ["203.0.113.0/24"],
    },
}


def body(**changes):
    b = copy.deepcopy(IMPORT)
    b.update(changes)
    return b


def numbered(i):
    return body(number="+4930%08d" % i)


def error_of(r, status, code, field=None):
    """Asserts a JSON error response and returns its error object."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    e = r.json()["error"]
    assert e["code"] == code, r.text
    assert e["message"], r.text
    if field is not None:
        assert e.get("field") == field, r.text
    return e


def assert_no_secret(r):
    assert '"password"' not in r.text, r.text
    assert ADMIN_PASSWORD not in r.text and INBOUND_PASSWORD not in r.text, r.text


def echo_agent(d, token=None):
    r = d.api("GET", "/v1/agents", token=token)
    assert r.status_code == 200, r.text
    return [a for a in r.json()["data"] if a["name"] == "echo"][0]["id"]


def make_agent(d, name="sales", token=None, params=None):
    r = d.api("POST", "/v1/agents", token=token, params=params,
              json={"name": name, "kind": "websocket", "url": "wss://agents.example/" + name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def make_workspace(d, name, plan="professional"):
    """Operator creates a workspace and an admin token for it; returns (id, token)."""
    r = d.api("POST", "/v1/workspaces", token=d.operator_token, json={"name": name, "plan": plan})
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == "/v1/workspaces/" + r.json()["id"]
    ws = r.json()["id"]
    r = d.api("POST", "/v1/tokens", token=d.operator_token,
              json={"role": "admin", "name": name + " admin", "workspace_id": ws})
    assert r.status_code == 201, r.text
    return ws, r.json()["token"]


def make_token(d, role, token=None, **extra):
    r = d.api("POST", "/v1/tokens", token=token, json=dict(role=role, name=role, **extra))
    assert r.status_code == 201, r.text
    return r.json()["token"]


# ---------------------------------------------------------------- the life cycle ----

def test_number_life_cycle(daemon):
    d = daemon
    echo = echo_agent(d)
    # import, assigned to echo
    r = d.api("POST", "/v1/phone-numbers", json=body(agent_id=echo))
    assert r.status_code == 201, r.text
    n = r.json()
    pid = n["id"]
    assert re.fullmatch(r"pn_[0-9a-z]{26}", pid)
    assert r.headers["Location"] == "/v1/phone-numbers/" + pid
    assert n["object"] == "phone_number" and n["workspace_id"] == d.workspace_id
    assert n["number"] == "+493012345678" and n["label"] == "Berlin office"
    assert n["source"] == "sip_trunk" and n["agent_id"] == echo
    assert n["outbound_trunk"]["has_password"] is True
    assert n["inbound_trunk"]["has_password"] is True
    assert "warnings" not in n  # tls + required: nothing risky
    assert_no_secret(r)

    # list
    r = d.api("GET", "/v1/phone-numbers")
    assert r.status_code == 200, r.text
    lst = r.json()
    assert lst["object"] == "list" and lst["next_cursor"] is None
    assert [x["id"] for x in lst["data"]] == [pid]
    assert_no_secret(r)

    # show
    r = d.api("GET", "/v1/phone-numbers/" + pid)
    assert r.status_code == 200, r.text
    s = r.json()
    assert_no_secret(r)
    ob = s["outbound_trunk"]
    assert ob == {"address": "sip.telnyx.com", "username": "acme_trunk", "has_password": True,
                  "transport": "tls", "media_encryption": "required",
                  "headers": [{"name": "X-Account", "value": "4711"}], "number_format": "e164"}
    assert s["inbound_trunk"]["allowed_addresses"] == ["203.0.113.0/24"]
    assert s["inbound_trunk"]["username"] == "inbound_user"

    # edit (PUT): the trunk configuration is replaced, the agent is kept
    edit = {
        "label": "Berlin HQ",
        "outbound_trunk": {"address": "sip.telnyx.eu", "username": "new_user",
                           "password": "another-secret-pw", "transport": "tcp",
                           "media_encryption": "allowed"},
    }
    r = d.api("PUT", "/v1/phone-numbers/" + pid, json=edit)
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["label"] == "Berlin HQ" and e["agent_id"] == echo
    assert e["number"] == "+493012345678"
    assert e["outbound_trunk"] == {"address": "sip.telnyx.eu", "username": "new_user",
                                   "has_password": True, "transport": "tcp",
                                   "media_encryption": "allowed", "headers": [],
                                   "number_format": "e164"}
    assert e["inbound_trunk"] is None  # replaced: the edit has no inbound configuration
    assert "another-secret-pw" not in r.text and '"password"' not in r.text

    # reassign to a second agent
    sales = make_agent(d, "sales")
    r = d.api("PATCH", "/v1/phone-numbers/" + pid, json={"agent_id": sales})
    assert r.status_code == 200, r.text
    assert r.json()["agent_id"] == sales
    assert r.json()["outbound_trunk"]["address"] == "sip.telnyx.eu"  # untouched
    r = d.api("GET", "/v1/phone-numbers", params={"agent_id": sales})
    assert [x["id"] for x in r.json()["data"]] == [pid]
    r = d.api("GET", "/v1/phone-numbers", params={"agent_id": echo})
    assert r.json()["data"] == []

    # unassign
    r = d.api("PATCH", "/v1/phone-numbers/" + pid, json={"agent_id": None})
    assert r.status_code == 200, r.text
    assert r.json()["agent_id"] is None
    assert d.api("GET", "/v1/phone-numbers/" + pid).json()["agent_id"] is None

    # rename through PATCH keeps the stored password
    r = d.api("PATCH", "/v1/phone-numbers/" + pid, json={"label": "Renamed"})
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "Renamed"
    assert r.json()["outbound_trunk"]["has_password"] is True

    # delete, then it is gone
    r = d.api("DELETE", "/v1/phone-numbers/" + pid)
    assert r.status_code == 204, r.text
    assert r.content == b""
    error_of(d.api("GET", "/v1/phone-numbers/" + pid), 404, "not_found")
    error_of(d.api("DELETE", "/v1/phone-numbers/" + pid), 404, "not_found")
    assert d.api("GET", "/v1/phone-numbers").json()["data"] == []


def test_filter_by_number(daemon):
    d = daemon
    for i in range(3):
        assert d.api("POST", "/v1/phone-numbers", json=numbered(i)).status_code == 201
    r = d.api("GET", "/v1/phone-numbers", params={"number": "+493000000001"})
    assert r.status_code == 200, r.text
    assert [x["number"] for x in r.json()["data"]] == ["+493000000001"]
    error_of(d.api("GET", "/v1/phone-numbers", params={"number": "0301234"}), 400,
             "invalid_field", "number")
    error_of(d.api("GET", "/v1/phone-numbers", params={"agent_id": "nope"}), 400,
             "invalid_field", "agent_id")


def test_put_keeps_password_when_username_unchanged(daemon):
    d = daemon
    pid = d.api("POST", "/v1/phone-numbers", json=IMPORT).json()["id"]
    same_user = {"outbound_trunk": {"address": "sip.telnyx.com", "username": "acme_trunk"}}
    r = d.api("PUT", "/v1/phone-numbers/" + pid, json=same_user)
    assert r.status_code == 200, r.text
    assert r.json()["outbound_trunk"]["has_password"] is True
    assert r.json()["label"] == ""  # PUT replaces: a missing label is an empty one

    other_user = {"outbound_trunk": {"address": "sip.telnyx.com", "username": "someone_else"}}
    error_of(d.api("PUT", "/v1/phone-numbers/" + pid, json=other_user), 400, "invalid_field",
             "outbound_trunk.password")
    # the refused edit changed nothing
    r = d.api("GET", "/v1/phone-numbers/" + pid)
    assert r.json()["outbound_trunk"]["username"] == "acme_trunk"
    assert r.json()["outbound_trunk"]["has_password"] is True


def test_put_drops_password_when_the_address_changes(daemon):
    """A stored trunk password never follows a change of destination: a PUT with a new
    outbound_trunk.address and no password drops it, and the response says so."""
    d = daemon
    pid = d.api("POST", "/v1/phone-numbers", json=IMPORT).json()["id"]
    moved = {"outbound_trunk": {"address": "sip.attacker.example", "username": "acme_trunk"}}
    r = d.api("PUT", "/v1/phone-numbers/" + pid, json=moved)
    assert r.status_code == 200, r.text
    assert r.json()["outbound_trunk"]["has_password"] is False
    w = [x for x in r.json()["warnings"] if x["code"] == "password_dropped"]
    assert w and w[0]["field"] == "outbound_trunk.password", r.text
    assert "sip.telnyx.com" in w[0]["message"] and "sip.attacker.example" in w[0]["message"]
    # moving back does not bring it back; giving it again with the move keeps it
    back = {"outbound_trunk": {"address": "sip.telnyx.com", "username": "acme_trunk"}}
    r = d.api("PUT", "/v1/phone-numbers/" + pid, json=back)
    assert r.json()["outbound_trunk"]["has_password"] is False
    again = {"outbound_trunk": {"address": "sip.telnyx.eu", "username": "acme_trunk",
                                "password": "pw-given-again"}}
    r = d.api("PUT", "/v1/phone-numbers/" + pid, json=again)
    assert r.status_code == 200, r.text
    assert r.json()["outbound_trunk"]["has_password"] is True
    assert not [x for x in r.json().get("warnings", []) if x["code"] == "password_dropped"]
    # the same address in other letter case is no move
    same = {"outbound_trunk": {"address": "SIP.Telnyx.EU", "username": "acme_trunk"}}
    r = d.api("PUT", "/v1/phone-numbers/" + pid, json=same)
    assert r.json()["outbound_trunk"]["has_password"] is True


def test_put_cannot_change_the_number(daemon):
    d = daemon
    pid = d.api("POST", "/v1/phone-numbers", json=IMPORT).json()["id"]
    e = error_of(d.api("PUT", "/v1/phone-numbers/" + pid, json=body(number="+493099999999")),
                 400, "invalid_field", "number")
    assert "import the new number" in e["message"]
    # the same number is fine
    r = d.api("PUT", "/v1/phone-numbers/" + pid, json=body())
    assert r.status_code == 200, r.text


def test_patch_accepts_agent_and_label_only(daemon):
    d = daemon
    pid = d.api("POST", "/v1/phone-numbers", json=IMPORT).json()["id"]
    error_of(d.api("PATCH", "/v1/phone-numbers/" + pid,
                   json={"outbound_trunk": {"address": "x.example"}}),
             400, "unknown_field", "outbound_trunk")
    error_of(d.api("PATCH", "/v1/phone-numbers/" + pid, json={"agent_id": 5}), 400,
             "invalid_type", "agent_id")
    error_of(d.api("PATCH", "/v1/phone-numbers/" + pid, json={"agent_id": "ag_nosuchagent"}),
             400, "invalid_field", "agent_id")
    error_of(d.api("PATCH", "/v1/phone-numbers/" + pid, json={"label": ["x"]}), 400,
             "invalid_type", "label")


# ---------------------------------------------------------------- plans and tenants ----

def test_plan_gating(daemon):
    d = daemon
    ws, tok = make_workspace(d, "small", plan="starter")
    e = error_of(d.api("POST", "/v1/phone-numbers", token=tok, json=IMPORT), 403,
                 "plan_required")
    assert "rofessional" in e["message"]
    assert d.api("GET", "/v1/phone-numbers", token=tok).json()["data"] == []
    # the operator raises the plan; the same import then works
    r = d.api("PATCH", "/v1/workspaces/" + ws, token=d.operator_token,
              json={"plan": "professional"})
    assert r.status_code == 200 and r.json()["plan"] == "professional", r.text
    assert d.api("POST", "/v1/phone-numbers", token=tok, json=IMPORT).status_code == 201


def test_tenant_isolation(daemon):
    d = daemon
    a_num = d.api("POST", "/v1/phone-numbers", json=IMPORT).json()["id"]
    a_agent = echo_agent(d)
    ws_b, b = make_workspace(d, "tenant-b")
    path = "/v1/phone-numbers/" + a_num

    error_of(d.api("GET", path, token=b), 404, "not_found")
    error_of(d.api("PUT", path, token=b, json=body()), 404, "not_found")
    error_of(d.api("PATCH", path, token=b, json={"agent_id": None}), 404, "not_found")
    error_of(d.api("DELETE", path, token=b), 404, "not_found")
    error_of(d.api("POST", path + "/release", token=b), 404, "not_found")
    # A's number and agent are absent from B's lists
    r = d.api("GET", "/v1/phone-numbers", token=b)
    assert r.status_code == 200 and r.json()["data"] == [], r.text
    assert a_agent not in [x["id"] for x in d.api("GET", "/v1/agents", token=b).json()["data"]]
    error_of(d.api("GET", "/v1/agents/" + a_agent, token=b), 404, "not_found")
    # naming A's workspace does not help
    error_of(d.api("GET", "/v1/phone-numbers", token=b, params={"workspace_id": d.workspace_id}),
             404, "not_found")
    error_of(d.api("GET", "/v1/workspaces/" + d.workspace_id, token=b), 404, "not_found")
    # B cannot assign A's agent to its own number
    b_num = d.api("POST", "/v1/phone-numbers", token=b, json=numbered(7)).json()["id"]
    error_of(d.api("PATCH", "/v1/phone-numbers/" + b_num, token=b, json={"agent_id": a_agent}),
             400, "invalid_field", "agent_id")
    # and A still has its number, untouched
    r = d.api("GET", path)
    assert r.status_code == 200 and r.json()["label"] == "Berlin office"
    # B's workspace list shows B only
    r = d.api("GET", "/v1/workspaces", token=b)
    assert [w["id"] for w in r.json()["data"]] == [ws_b]


def test_duplicate_number(daemon):
    d = daemon
    assert d.api("POST", "/v1/phone-numbers", json=IMPORT).status_code == 201
    error_of(d.api("POST", "/v1/phone-numbers", json=IMPORT), 409, "number_taken")
    _, b = make_workspace(d, "other")
    error_of(d.api("POST", "/v1/phone-numbers", token=b, json=IMPORT), 409, "number_taken")


def test_operator_names_the_workspace(daemon):
    d = daemon
    op = d.operator_token
    error_of(d.api("GET", "/v1/phone-numbers", token=op), 400, "invalid_field", "workspace_id")
    error_of(d.api("GET", "/v1/agents", token=op), 400, "invalid_field", "workspace_id")
    error_of(d.api("GET", "/v1/phone-numbers", token=op,
                   params={"workspace_id": "ws_" + "0" * 26}), 404, "not_found")
    q = {"workspace_id": d.workspace_id}
    r = d.api("POST", "/v1/phone-numbers", token=op, params=q, json=IMPORT)
    assert r.status_code == 201 and r.json()["workspace_id"] == d.workspace_id, r.text
    r = d.api("GET", "/v1/phone-numbers", token=op, params=q)
    assert [x["number"] for x in r.json()["data"]] == [IMPORT["number"]]
    # the operator sees every workspace
    r = d.api("GET", "/v1/workspaces", token=op)
    assert d.workspace_id in [w["id"] for w in r.json()["data"]]


# ---------------------------------------------------------------- auth and roles ----

def test_no_or_bad_token_is_401(daemon):
    d = daemon
    for tok in ("", "tlk_not-a-real-token", "x" * 500):
        r = d.api("GET", "/v1/phone-numbers", token=tok)
        error_of(r, 401, "unauthorized")
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="trunkline"'
    r = d.api("GET", "/v1/phone-numbers", token="",
              headers={"Authorization": "Basic " + d.admin_token})
    error_of(r, 401, "unauthorized")
    # a refused request never reaches the store
    error_of(d.api("POST", "/v1/phone-numbers", token="", json=IMPORT), 401, "unauthorized")
    assert d.api("GET", "/v1/phone-numbers").json()["data"] == []


def test_member_reads_but_cannot_write(daemon):
    d = daemon
    pid = d.api("POST", "/v1/phone-numbers", json=IMPORT).json()["id"]
    m = make_token(d, "member")
    assert d.api("GET", "/v1/phone-numbers", token=m).status_code == 200
    assert d.api("GET", "/v1/phone-numbers/" + pid, token=m).status_code == 200
    assert d.api("GET", "/v1/agents", token=m).status_code == 200
    assert d.api("GET", "/v1/sip/endpoints", token=m).status_code == 200
    for method, path, js in [
        ("POST", "/v1/phone-numbers", numbered(3)),
        ("PUT", "/v1/phone-numbers/" + pid, IMPORT),
        ("PATCH", "/v1/phone-numbers/" + pid, {"label": "x"}),
        ("DELETE", "/v1/phone-numbers/" + pid, None),
        ("POST", "/v1/phone-numbers/%s/release" % pid, None),
        ("POST", "/v1/agents", {"name": "x", "kind": "builtin", "builtin": "echo"}),
        ("GET", "/v1/tokens", None),
        ("POST", "/v1/tokens", {"role": "member"}),
        ("POST", "/v1/workspaces", {"name": "x"}),
    ]:
        error_of(d.api(method, path, token=m, json=js), 403, "forbidden")
    assert d.api("GET", "/v1/phone-numbers/" + pid).json()["label"] == "Berlin office"


def test_tokens(daemon):
    d = daemon
    r = d.api("POST", "/v1/tokens", json={"role": "member", "name": "viewer"})
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["token"].startswith("tlk_") and t["role"] == "member"
    assert t["workspace_id"] == d.workspace_id
    assert r.headers["Location"] == "/v1/tokens/" + t["id"]
    # the secret is shown once
    r = d.api("GET", "/v1/tokens/" + t["id"])
    assert r.status_code == 200 and "token" not in r.json() and t["token"] not in r.text
    r = d.api("GET", "/v1/tokens")
    assert t["id"] in [x["id"] for x in r.json()["data"]]
    assert t["token"] not in r.text
    # an admin mints no operator tokens and none for other workspaces
    error_of(d.api("POST", "/v1/tokens", json={"role": "operator", "name": "x"}), 403,
             "forbidden")
    ws_b, b = make_workspace(d, "b")
    error_of(d.api("POST", "/v1/tokens", json={"role": "admin", "workspace_id": ws_b}), 404,
             "not_found")
    # the operator must say which workspace an admin token is for
    error_of(d.api("POST", "/v1/tokens", token=d.operator_token, json={"role": "admin"}), 400,
             "invalid_field", "workspace_id")
    error_of(d.api("POST", "/v1/tokens", token=d.operator_token,
                   json={"role": "operator", "workspace_id": ws_b}), 400, "invalid_field",
             "workspace_id")
    r = d.api("GET", "/v1/tokens", token=d.operator_token, params={"workspace_id": ws_b})
    assert [x["workspace_id"] for x in r.json()["data"]] == [ws_b]
    # B's admin cannot see A's tokens
    error_of(d.api("GET", "/v1/tokens/" + t["id"], token=b), 404, "not_found")
    error_of(d.api("DELETE", "/v1/tokens/" + t["id"], token=b), 404, "not_found")
    # delete revokes at once
    assert d.api("GET", "/v1/agents", token=t["token"]).status_code == 200
    assert d.api("DELETE", "/v1/tokens/" + t["id"]).status_code == 204
    error_of(d.api("GET", "/v1/agents", token=t["token"]), 401, "unauthorized")


def test_agents(daemon):
    d = daemon
    r = d.api("POST", "/v1/agents", json={"name": "support", "kind": "websocket",
                                           "url": "wss://agents.example/support",
                                           "headers": [{"name": "Authorization",
                                                        "value": "Bearer sk-agent-key"}]})
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    assert r.headers["Location"] == "/v1/agents/" + aid
    assert "sk-agent-key" not in r.text
    r = d.api("PATCH", "/v1/agents/" + aid, json={"name": "support-2"})
    assert r.status_code == 200 and r.json()["name"] == "support-2", r.text
    assert r.json()["url"] == "wss://agents.example/support"
    assert [h["name"] for h in r.json()["headers"]] == ["Authorization"]
    # an agent with numbers cannot be deleted
    assert d.api("POST", "/v1/phone-numbers", json=body(agent_id=aid)).status_code == 201
    error_of(d.api("DELETE", "/v1/agents/" + aid), 409, "agent_in_use")


# ---------------------------------------------------------------- refused input ----

BAD_BODIES = [
    # (name, raw body or JSON value, content type, status, code, field)
    ("malformed", b'{"number": "+49301234567', "application/json", 400, "invalid_json", None),
    ("not an object", b"[1, 2]", "application/json", 400, "invalid_json", None),
    ("empty", b"", "application/json", 400, "invalid_json", None),
    ("duplicate key", b'{"number": "+493012345678", "number": "+493012345679"}',
     "application/json", 400, "invalid_json", None),
    ("deep nesting", b'{"a":' + b"[" * 40 + b"]" * 40 + b"}", "application/json", 400,
     "invalid_json", None),
    ("wrong type", body(number=4930), "application/json", 400, "invalid_type", "number"),
    ("wrong nested type", body(outbound_trunk={"address": "sip.telnyx.com", "transport": 1}),
     "application/json", 400, "invalid_type", "outbound_trunk.transport"),
    ("unknown field", body(numbre="+493012345678"), "application/json", 400, "unknown_field",
     "numbre"),
    ("unknown nested field", body(outbound_trunk={"adress": "sip.telnyx.com"}),
     "application/json", 400, "unknown_field", "outbound_trunk.adress"),
    ("unknown header member",
     body(outbound_trunk={"address": "sip.telnyx.com", "headers": [{"name": "X-A", "valu": "1"}]}),
     "application/json", 400, "unknown_field", "outbound_trunk.headers[0].valu"),
    ("bad address", body(outbound_trunk={"address": "sip:sip.telnyx.com:5060"}),
     "application/json", 400, "invalid_field", "outbound_trunk.address"),
    ("bad number", body(number="030 1234567"), "application/json", 400, "invalid_field",
     "number"),
    ("wrong content type", IMPORT, "text/plain", 415, "unsupported_media_type", None),
    ("form content type", b"number=%2B493012345678", "application/x-www-form-urlencoded", 415,
     "unsupported_media_type", None),
    ("oversized", b'{"label": "' + b"a" * 70000 + b'"}', "application/json", 413,
     "body_too_large", None),
]


@pytest.mark.parametrize("name,payload,ctype,status,code,field", BAD_BODIES,
                         ids=[b[0] for b in BAD_BODIES])
def test_bad_input_is_refused(daemon, name, payload, ctype, status, code, field):
    d = daemon
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    r = d.api("POST", "/v1/phone-numbers", data=data, headers={"Content-Type": ctype})
    error_of(r, status, code, field)
    assert d.api("GET", "/healthz", token="").status_code == 200
    assert d.api("GET", "/v1/phone-numbers").json()["data"] == []


def test_body_limit_boundary(daemon):
    d = daemon
    # exactly the limit (65536 bytes by default) is read and judged, one more is not
    raw = json.dumps(IMPORT).encode()
    exact = raw + b" " * (65536 - len(raw))
    r = d.api("POST", "/v1/phone-numbers", data=exact, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    error_of(d.api("POST", "/v1/phone-numbers", data=exact + b" ",
                   headers={"Content-Type": "application/json"}), 413, "body_too_large")
    # without Content-Length (chunked) the cap holds as well
    r = d.api("POST", "/v1/phone-numbers", data=iter([b"{" + b" " * 40000, b" " * 40000 + b"}"]),
              headers={"Content-Type": "application/json"})
    error_of(r, 413, "body_too_large")
    assert d.api("GET", "/healthz", token="").status_code == 200


def test_charset_parameter_is_accepted(daemon):
    r = daemon.api("POST", "/v1/phone-numbers", data=json.dumps(IMPORT),
                   headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201, r.text


def test_release_of_sip_trunk_number_is_409(daemon):
    d = daemon
    pid = d.api("POST", "/v1/phone-numbers", json=IMPORT).json()["id"]
    e = error_of(d.api("POST", "/v1/phone-numbers/%s/release" % pid), 409,
                 "release_not_supported")
    assert "delete" in e["message"].lower()
    assert d.api("GET", "/v1/phone-numbers/" + pid).status_code == 200


def test_udp_with_required_media_encryption_warns(daemon):
    d = daemon
    r = d.api("POST", "/v1/phone-numbers",
              json=body(outbound_trunk={"address": "sip.telnyx.com", "transport": "udp",
                                        "media_encryption": "required"}))
    assert r.status_code == 201, r.text
    ws = r.json()["warnings"]
    assert ws and all(w["code"] and w["message"] for w in ws)
    assert any(w["field"].startswith("outbound_trunk.") for w in ws), ws
    # the warning is about the write, not stored state
    assert "warnings" not in d.api("GET", "/v1/phone-numbers/" + r.json()["id"]).json()


# ---------------------------------------------------------------- lists and HTTP ----

def test_pagination(daemon):
    d = daemon
    ids = [d.api("POST", "/v1/phone-numbers", json=numbered(i)).json()["id"] for i in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = d.api("GET", "/v1/phone-numbers", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        pages += 1
        assert len(page["data"]) == (2 if pages < 3 else 1)
        seen += [x["id"] for x in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == ids
    for bad in ("0", "101", "abc", "-1", "", "2.5"):
        error_of(d.api("GET", "/v1/phone-numbers", params={"limit": bad}), 400, "invalid_field",
                 "limit")
    error_of(d.api("GET", "/v1/phone-numbers", params={"cursor": "garbage"}), 400,
             "invalid_field", "cursor")


def test_sip_endpoints(daemon):
    r = daemon.api("GET", "/v1/sip/endpoints")
    assert r.status_code == 200, r.text
    e = r.json()
    assert set(e) == {"tls", "tcp", "public_host", "egress_addresses", "dns_records"}
    assert e["public_host"] == "gw.test"
    assert re.fullmatch(r"sip:gw\.test:\d+;transport=tls", e["tls"]), e
    assert re.fullmatch(r"sip:gw\.test:\d+;transport=tcp", e["tcp"]), e
    assert e["tls"] != e["tcp"].replace("tcp", "tls")  # two different ports


def test_http_conventions(daemon):
    d = daemon
    r = d.api("GET", "/v1/phone-numbers")
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "Server" not in r.headers
    error_of(d.api("GET", "/v1/nothing-here"), 404, "not_found")
    error_of(d.api("GET", "/v1/phone-numbers/"), 404, "not_found")
    error_of(d.api("GET", "/v1/phone-numbers/not-an-id"), 404, "not_found")
    error_of(d.api("GET", "/v1/phone-numbers/ag_" + "0" * 26), 404, "not_found")
    error_of(d.api("GET", "/v1/phone-numbers/pn_" + "0" * 26), 404, "not_found")
    r = d.api("DELETE", "/v1/phone-numbers")
    error_of(r, 405, "method_not_allowed")
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    r = d.api("POST", "/v1/phone-numbers/pn_" + "0" * 26, json={})
    error_of(r, 405, "method_not_allowed")
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "PUT", "PATCH",
                                                                  "DELETE"}
    assert d.api("GET", "/readyz", token="").json() == {"status": "ready"}


def test_request_log_has_no_secrets(daemon):
    d = daemon
    d.api("POST", "/v1/phone-numbers", json=IMPORT)
    d.api("GET", "/v1/phone-numbers", params={"cursor": "QUERYVALUE-must-not-be-logged"})
    d.api("GET", "/v1/agents", token="tlk_WRONG-token-must-not-be-logged")
    log = d.wait_log(re.compile(
        r"api request method=POST path=/v1/phone-numbers status=201 ms=[0-9.]+"))
    for secret in (ADMIN_PASSWORD, INBOUND_PASSWORD, d.admin_token, "QUERYVALUE",
                   "WRONG-token"):
        assert secret not in log


def test_agent_read_then_write_back_is_accepted(daemon):
    """What a client GETs can be PATCHed back unchanged (the codec once refused the
    read-only "value_set" as an unknown field). That the sealed value is then kept is
    the store's rule, asserted in tests/unit/test_store.c: no API reveals the value."""
    r = daemon.api("POST", "/v1/agents", json={
        "name": "bot", "kind": "websocket", "url": "wss://bot.example.com/stream",
        "headers": [{"name": "X-Api-Key", "value": "k-SECRET-1"}]})
    assert r.status_code == 201, r.text
    got = daemon.api("GET", "/v1/agents/" + r.json()["id"]).json()
    assert got["headers"] == [{"name": "X-Api-Key", "value_set": True}]
    assert "k-SECRET-1" not in json.dumps(got)
    r = daemon.api("PATCH", "/v1/agents/" + got["id"],
                   json={"name": "bot2", "headers": got["headers"]})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "bot2"
    assert r.json()["headers"] == [{"name": "X-Api-Key", "value_set": True}]

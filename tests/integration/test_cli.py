"""The command-line client end to end: the real binary as a subprocess against a real
daemon (numbers life cycle, agents, tokens, errors and exit codes), and against a small
fake server for what a real daemon never does (huge or non-JSON answers, hostile labels,
a request held open while we look at the process's command line)."""
import http.server
import json
import os
import socket
import subprocess
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("TRUNKLINE_BIN", os.path.join(ROOT, "build", "trunkline"))

NUMBER = "+493012345678"
PASSWORD = "S3cr3t-CLI-pw-outbound"
IN_PASSWORD = "S3cr3t-CLI-pw-inbound"


def run(url, token, *args, stdin=None, env=None, timeout=30):
    e = {k: v for k, v in os.environ.items() if not k.startswith("TRUNKLINE_")}
    e["TRUNKLINE_URL"] = url
    if token:
        e["TRUNKLINE_TOKEN"] = token
    e.update(env or {})
    return subprocess.run([BIN, *args], env=e, input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def cli(d, *args, token=None, **kw):
    return run(d.url, d.admin_token if token is None else token, *args, **kw)


def ok(p):
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return p


def no_secret(p, *secrets):
    for s in secrets:
        assert s not in p.stdout and s not in p.stderr, (p.stdout, p.stderr)


def test_number_life_cycle(daemon):
    p = ok(cli(daemon, "numbers", "import", NUMBER, "--address", "sip.telnyx.com",
               "--username", "acme_trunk", "--password-stdin", "--label", "Berlin office",
               "--header", "X-Account: 4711", "--inbound-transport", "tls",
               "--inbound-password-stdin", "--inbound-username", "in_user",
               "--allow", "203.0.113.0/24", stdin=PASSWORD + "\n" + IN_PASSWORD + "\n"))
    no_secret(p, PASSWORD, IN_PASSWORD)
    assert NUMBER in p.stdout and "sip.telnyx.com" in p.stdout

    p = ok(cli(daemon, "numbers", "list"))
    header, row = p.stdout.splitlines()[:2]
    assert header.split() == ["ID", "NUMBER", "LABEL", "AGENT", "OUT", "IN"]
    assert NUMBER in row and "tls/sip.telnyx.com" in row and "Berlin office" in row
    assert header.index("NUMBER") == row.index(NUMBER)  # aligned columns

    p = ok(cli(daemon, "numbers", "show", NUMBER, "--json"))
    n = json.loads(p.stdout)
    assert n["number"] == NUMBER and n["outbound_trunk"]["has_password"] is True
    assert n["inbound_trunk"]["has_password"] is True
    assert "password" not in n["outbound_trunk"] and '"password"' not in p.stdout
    no_secret(p, PASSWORD, IN_PASSWORD)
    pn = n["id"]

    # edit changes only what is given; the stored passwords stay
    p = ok(cli(daemon, "numbers", "edit", pn, "--transport", "tcp", "--json"))
    e = json.loads(p.stdout)
    out = e["outbound_trunk"]
    assert out["transport"] == "tcp" and out["address"] == "sip.telnyx.com"
    assert out["username"] == "acme_trunk" and out["has_password"] is True
    assert out["headers"] == [{"name": "X-Account", "value": "4711"}]
    assert e["inbound_trunk"]["has_password"] is True
    assert e["inbound_trunk"]["allowed_addresses"] == ["203.0.113.0/24"]
    assert e["label"] == "Berlin office"
    server = daemon.api("GET", "/v1/phone-numbers/" + pn).json()
    assert server["outbound_trunk"]["transport"] == "tcp"

    # list edits merge; --no-inbound disables
    p = ok(cli(daemon, "numbers", "edit", NUMBER, "--header", "x-account: 4712", "--header",
               "X-Route: b", "--allow", "198.51.100.7", "--json"))
    e = json.loads(p.stdout)
    assert e["outbound_trunk"]["headers"] == [{"name": "x-account", "value": "4712"},
                                              {"name": "X-Route", "value": "b"}]
    assert e["inbound_trunk"]["allowed_addresses"] == ["203.0.113.0/24", "198.51.100.7"]
    p = ok(cli(daemon, "numbers", "edit", NUMBER, "--no-inbound", "--json"))
    assert json.loads(p.stdout)["inbound_trunk"] is None
    assert json.loads(p.stdout)["outbound_trunk"]["has_password"] is True

    # a websocket agent; assign and unassign by number
    p = ok(cli(daemon, "agents", "create", "--name", "sales", "--url", "wss://bot.example.com/ws",
               "--param", "lang=de", "--header", "Authorization: Bearer agent-key-123",
               "--json"))
    ag = json.loads(p.stdout)
    assert ag["kind"] == "websocket" and ag["parameters"] == {"lang": "de"}
    assert "agent-key-123" not in p.stdout
    p = ok(cli(daemon, "numbers", "assign", NUMBER, ag["id"]))
    assert "assigned" in p.stdout and ag["id"] in p.stdout
    assert daemon.api("GET", "/v1/phone-numbers/" + pn).json()["agent_id"] == ag["id"]
    p = ok(cli(daemon, "numbers", "list", "--agent", ag["id"]))
    assert NUMBER in p.stdout
    p = cli(daemon, "agents", "delete", ag["id"])
    assert p.returncode == 1 and "(agent_in_use)" in p.stderr, p.stderr
    ok(cli(daemon, "numbers", "unassign", pn))
    assert daemon.api("GET", "/v1/phone-numbers/" + pn).json()["agent_id"] is None
    p = ok(cli(daemon, "agents", "edit", ag["id"], "--param", "tone=warm", "--json"))
    assert json.loads(p.stdout)["parameters"] == {"lang": "de", "tone": "warm"}
    ok(cli(daemon, "agents", "delete", ag["id"]))

    p = ok(cli(daemon, "numbers", "delete", NUMBER))
    assert "deleted" in p.stdout
    assert daemon.api("GET", "/v1/phone-numbers/" + pn).status_code == 404
    p = cli(daemon, "numbers", "show", NUMBER)
    assert p.returncode == 1 and NUMBER in p.stderr


def test_twiml_agent_flags(daemon):
    """--voice-url makes a twiml agent; --method, --fallback-url, --status-callback and
    --timeout-ms set its members; '' removes a URL; the list shows the voice URL."""
    p = ok(cli(daemon, "agents", "create", "--name", "pipecat", "--voice-url",
               "https://bot.example.com/voice", "--method", "GET", "--fallback-url",
               "https://backup.example.com/voice", "--timeout-ms", "8000", "--json"))
    ag = json.loads(p.stdout)
    assert ag["kind"] == "twiml" and ag["voice_url"] == "https://bot.example.com/voice", ag
    assert ag["method"] == "GET" and ag["timeout_ms"] == 8000
    assert ag["fallback_url"] == "https://backup.example.com/voice"
    p = ok(cli(daemon, "agents", "edit", ag["id"], "--fallback-url", "", "--status-callback",
               "https://bot.example.com/status", "--json"))
    ag = json.loads(p.stdout)
    assert ag["fallback_url"] is None and ag["status_callback"] == "https://bot.example.com/status"
    p = ok(cli(daemon, "agents", "list"))
    assert "https://bot.example.com/voice" in p.stdout and "twiml" in p.stdout
    p = cli(daemon, "agents", "edit", ag["id"], "--method", "PUT")
    assert p.returncode == 1 and "method" in p.stderr, p.stderr
    ok(cli(daemon, "agents", "delete", ag["id"]))


def test_inbound_rtp_latching_flag(daemon):
    """--inbound-rtp-latching sets inbound_trunk.rtp_latching; an edit without it keeps it;
    '' goes back to the gateway's setting (null); a bad value gets the server's message."""
    p = ok(cli(daemon, "numbers", "import", NUMBER, "--address", "sip.telnyx.com",
               "--inbound-transport", "tcp", "--inbound-media-encryption", "required",
               "--inbound-rtp-latching", "any", "--allow", "203.0.113.0/24", "--json"))
    n = json.loads(p.stdout)
    assert n["inbound_trunk"]["rtp_latching"] == "any", n
    p = ok(cli(daemon, "numbers", "edit", NUMBER, "--label", "nat", "--json"))
    assert json.loads(p.stdout)["inbound_trunk"]["rtp_latching"] == "any"
    p = ok(cli(daemon, "numbers", "edit", NUMBER, "--inbound-rtp-latching", "", "--json"))
    assert json.loads(p.stdout)["inbound_trunk"]["rtp_latching"] is None
    p = cli(daemon, "numbers", "edit", NUMBER, "--inbound-rtp-latching", "nat")
    assert p.returncode == 1 and "inbound_trunk.rtp_latching" in p.stderr, p.stderr
    assert "sdp-ip, any, off" in p.stderr, p.stderr


def test_password_flag_is_accepted_but_never_printed(daemon):
    p = ok(cli(daemon, "numbers", "import", NUMBER, "--address", "sip.telnyx.com",
               "--username", "u", "--password", PASSWORD))
    no_secret(p, PASSWORD)
    p = ok(cli(daemon, "numbers", "show", NUMBER))
    assert "has_password:" in p.stdout and "yes" in p.stdout
    no_secret(p, PASSWORD)
    # a typo must not echo the value either
    p = cli(daemon, "numbers", "edit", NUMBER, "--pasword=" + PASSWORD)
    assert p.returncode == 2 and "--pasword" in p.stderr
    no_secret(p, PASSWORD)
    # nor a value that ends up as a stray argument
    p = cli(daemon, "numbers", "show", NUMBER, PASSWORD)
    assert p.returncode == 2
    no_secret(p, PASSWORD)


def test_validation_error_shows_the_servers_message(daemon):
    p = cli(daemon, "numbers", "import", NUMBER, "--address", "sip:sip.telnyx.com:5060")
    assert p.returncode == 1, (p.stdout, p.stderr)
    line = p.stderr.strip().splitlines()[0]
    assert line.startswith("error: outbound_trunk.address: "), line
    assert line.endswith("(invalid_field)"), line
    assert "sip.telnyx.com" in line
    # --json: the error document on stdout for scripts, the line on stderr for people
    p = cli(daemon, "numbers", "import", NUMBER, "--address", "sip:sip.telnyx.com:5060", "--json")
    assert p.returncode == 1
    assert json.loads(p.stdout)["error"]["field"] == "outbound_trunk.address"
    assert daemon.api("GET", "/v1/phone-numbers").json()["data"] == []


def test_warnings_go_to_stderr(daemon):
    p = ok(cli(daemon, "numbers", "import", NUMBER, "--address", "sip.telnyx.com",
               "--transport", "udp", "--json"))
    assert "warning: outbound_trunk." in p.stderr, p.stderr
    assert json.loads(p.stdout)["warnings"]


@pytest.mark.parametrize("args, says", [
    (["numbers", "list", "--frobnicate"], "unknown flag '--frobnicate'"),
    (["numbers", "import", NUMBER], "missing --address"),
    (["numbers", "import"], "missing argument NUMBER"),
    (["numbers", "assign", "pn_x"], "missing argument AGENT_ID"),
    (["numbers", "import", NUMBER, "--address"], "--address needs a value"),
    (["numbers", "import", NUMBER, "--address", "a", "--password", "x", "--password-stdin"],
     "not both"),
    (["numbers", "edit", "pn_x"], "nothing to change"),
    (["numbers", "edit", "pn_x", "--no-inbound", "--allow", "1.2.3.4"], "--allow"),
    (["numbers", "import", NUMBER, "--address", "a", "--header", "no colon"], "--header"),
    (["numbers", "list", "--limit", "ten"], "--limit"),
    (["numbers", "list", "--json=yes"], "--json takes no value"),
    (["numbers", "frob"], "unknown verb 'frob'"),
    (["numbers"], "missing verb"),
    (["agents", "create", "--name", "x"], "--builtin"),
    (["agents", "create", "--name", "x", "--builtin", "echo", "--url", "wss://a"], "give one of"),
    (["agents", "create", "--name", "x", "--voice-url", "https://a", "--header", "A: b"],
     "X-Twilio-Signature"),
    (["tokens", "create"], "missing --role"),
])
def test_usage_errors_exit_2_before_any_request(args, says):
    # unreachable URL: a usage error must be found before anything is sent (else 3)
    p = run("http://127.0.0.1:9", "tok", *args, stdin="")
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert says in p.stderr, p.stderr
    assert p.stdout == ""


def test_password_stdin_needs_a_line():
    p = run("http://127.0.0.1:9", "tok", "numbers", "import", NUMBER, "--address", "a",
            "--password-stdin", stdin="")
    assert p.returncode == 2 and "--password-stdin" in p.stderr


def test_unreachable_server_exits_3():
    with socket.socket() as s:  # a port that is certainly closed: bound, never listening
        s.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d" % s.getsockname()[1]
        p = run(url, "tlk_not_printed", "numbers", "list")
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert url in p.stderr and "trunkline serve" in p.stderr and "TRUNKLINE_URL" in p.stderr
    assert "tlk_not_printed" not in p.stderr


def test_help():
    p = run("http://127.0.0.1:9", None, "numbers", "--help")
    assert p.returncode == 0 and "import NUMBER" in p.stdout and "assign" in p.stdout
    p = run("http://127.0.0.1:9", None, "numbers", "import", "--help")
    assert p.returncode == 0 and "--password-stdin" in p.stdout and "ps" in p.stdout
    p = run("http://127.0.0.1:9", None, "agents", "create", "-h")
    assert p.returncode == 0 and "--url WS_URL" in p.stdout
    assert max(len(l) for l in p.stdout.splitlines()) <= 100


def test_operator_tokens_and_workspaces(daemon):
    op = daemon.operator_token
    p = cli(daemon, "numbers", "list", token=op)
    assert p.returncode == 1 and "workspace_id" in p.stderr
    ok(cli(daemon, "numbers", "list", "--workspace", daemon.workspace_id, token=op))
    ok(cli(daemon, "agents", "list", token=op, env={"TRUNKLINE_WORKSPACE": daemon.workspace_id}))

    p = ok(cli(daemon, "workspaces", "create", "--name", "acme", "--plan", "starter", "--json",
               token=op))
    ws = json.loads(p.stdout)["id"]
    p = ok(cli(daemon, "workspaces", "edit", ws, "--plan", "professional", token=op))
    assert "professional" in p.stdout
    p = ok(cli(daemon, "workspaces", "list", token=op))
    assert ws in p.stdout and daemon.workspace_id in p.stdout

    p = ok(cli(daemon, "tokens", "create", "--role", "admin", "--name", "ci", "--workspace", ws,
               token=op))
    assert "shown once" in p.stdout
    secret = [l.split()[1] for l in p.stdout.splitlines() if l.startswith("token:")][0]
    assert secret.startswith("tlk_")
    # the new token works and sees its own workspace only
    p = ok(cli(daemon, "numbers", "list", token=secret))
    assert "no numbers" in p.stdout
    p = ok(cli(daemon, "tokens", "list", token=op))
    tk = [l.split()[0] for l in p.stdout.splitlines() if " ci " in l][0]
    assert secret not in p.stdout and " operator " in p.stdout
    p = ok(cli(daemon, "tokens", "list", "--workspace", ws, "--json", token=op))
    assert [t["id"] for t in json.loads(p.stdout)["data"]] == [tk]
    p = ok(cli(daemon, "tokens", "revoke", tk, token=op))
    assert "revoked" in p.stdout
    p = cli(daemon, "numbers", "list", token=secret)
    assert p.returncode == 1 and "(unauthorized)" in p.stderr


def test_list_all_follows_cursors(daemon):
    for i in range(3):
        r = daemon.api("POST", "/v1/phone-numbers", json={
            "number": "+4930100000%02d" % i, "outbound_trunk": {"address": "sip.telnyx.com"}})
        assert r.status_code == 201, r.text
    p = ok(cli(daemon, "numbers", "list", "--limit", "1"))
    assert len(p.stdout.splitlines()) == 2 and "--cursor" in p.stderr
    p = ok(cli(daemon, "numbers", "list", "--limit", "1", "--all", "--json"))
    doc = json.loads(p.stdout)
    assert [n["number"] for n in doc["data"]] == ["+4930100000%02d" % i for i in range(3)]
    assert doc["next_cursor"] is None
    p = ok(cli(daemon, "numbers", "list", "--number", "+493010000001"))
    assert "+493010000001" in p.stdout and "+493010000002" not in p.stdout


def test_endpoints(daemon):
    p = ok(cli(daemon, "endpoints"))
    assert "sip:gw.test:" in p.stdout and ";transport=tls" in p.stdout


def test_no_token_hint(daemon):
    p = run(daemon.url, None, "numbers", "list")
    assert p.returncode == 1 and "TRUNKLINE_TOKEN" in p.stderr


# ---- against a fake server ----------------------------------------------------------------

class Fake:
    """An HTTP server on a free port answering every request with one canned reply."""

    def __init__(self, status=200, body=b"{}", ctype="application/json", hold=None):
        self.status, self.body, self.ctype, self.hold = status, body, ctype, hold
        self.requests = []
        self.arrived = threading.Event()
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def handle_one(self):
                n = int(self.headers.get("Content-Length") or 0)
                fake.requests.append((self.command, self.path, dict(self.headers),
                                      self.rfile.read(n)))
                fake.arrived.set()
                if fake.hold:
                    fake.hold.wait(20)
                try:
                    self.send_response(fake.status)
                    self.send_header("Content-Type", fake.ctype)
                    self.send_header("Content-Length", str(len(fake.body)))
                    self.end_headers()
                    for i in range(0, len(fake.body), 1 << 16):
                        self.wfile.write(fake.body[i:i + (1 << 16)])
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        if self.hold:
            self.hold.set()
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def fake():
    made = []

    def make(**kw):
        f = Fake(**kw)
        made.append(f)
        return f
    yield make
    for f in made:
        f.close()


def test_oversized_answer_is_capped(fake):
    f = fake(body=b'{"data":["' + b"x" * (9 << 20) + b'"]}')
    p = run(f.url, "tok", "numbers", "list")
    assert p.returncode == 1 and "larger than 8 MiB" in p.stderr, p.stderr


def test_non_json_error_answer(fake):
    f = fake(status=502, body=b"<html>Bad Gateway\x1b[2J</html>", ctype="text/html")
    p = run(f.url, "tok", "numbers", "list")
    assert p.returncode == 1 and "HTTP 502" in p.stderr and "Bad Gateway" in p.stderr
    assert "\x1b" not in p.stderr


def test_terminal_escapes_in_labels_are_neutralised(fake):
    item = {"id": "pn_1", "number": NUMBER, "label": "evil\x1b]0;owned\x07\u202eabc",
            "outbound_trunk": {"address": "a.example", "transport": "tls"},
            "inbound_trunk": None}
    f = fake(body=json.dumps({"object": "list", "data": [item], "next_cursor": None}).encode())
    p = ok(run(f.url, "tok", "numbers", "list"))
    assert "\x1b" not in p.stdout and "\x07" not in p.stdout and "\u202e" not in p.stdout
    assert "evil?]0;owned??abc" in p.stdout
    # the request itself: bearer token, scoped, escaped
    method, path, headers, _ = f.requests[0]
    assert method == "GET" and path == "/v1/phone-numbers"
    assert headers["Authorization"] == "Bearer tok"
    p = ok(run(f.url, "tok", "numbers", "list", "--workspace", "ws_a&b", "--number", NUMBER))
    assert f.requests[1][1] == "/v1/phone-numbers?number=%2B493012345678&workspace_id=ws_a%26b"
    run(f.url, "tok", "agents", "show", "../tokens")
    assert f.requests[2][1] == "/v1/agents/..%2Ftokens"


def test_import_sends_only_known_members(fake):
    f = fake(status=201, body=b'{"id":"pn_1","object":"phone_number"}')
    ok(run(f.url, "tok", "numbers", "import", NUMBER, "--address", "sip.telnyx.com",
           "--agent", "ag_1", "--origination-url", "sip:in@example.com", "--inbound-header",
           "X-A: 1"))
    method, path, headers, body = f.requests[0]
    assert (method, path) == ("POST", "/v1/phone-numbers")
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "number": NUMBER, "agent_id": "ag_1",
        "outbound_trunk": {"address": "sip.telnyx.com"},
        "inbound_trunk": {"origination_url": "sip:in@example.com",
                          "headers": [{"name": "X-A", "value": "1"}]}}


def test_password_is_scrubbed_from_the_command_line(fake):
    hold = threading.Event()
    f = fake(status=201, body=b'{"id":"pn_1"}', hold=hold)
    e = {k: v for k, v in os.environ.items() if not k.startswith("TRUNKLINE_")}
    e.update({"TRUNKLINE_URL": f.url})
    proc = subprocess.Popen([BIN, "numbers", "import", NUMBER, "--address", "a.example",
                             "--username", "u", "--password", PASSWORD, "--token=" + IN_PASSWORD],
                            env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert f.arrived.wait(20)
        with open("/proc/%d/cmdline" % proc.pid, "rb") as fh:
            cmdline = fh.read()
        assert PASSWORD.encode() not in cmdline and IN_PASSWORD.encode() not in cmdline
        assert b"--password" in cmdline
    finally:
        hold.set()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    sent = json.loads(f.requests[0][3])
    assert sent["outbound_trunk"]["password"] == PASSWORD
    assert f.requests[0][2]["Authorization"] == "Bearer " + IN_PASSWORD

"""Per-workspace call caps across nodes (issue 13, docs/scale-out.md "Per-workspace call caps
across nodes"): two daemons on one PostgreSQL database and one master key, a workspace
with max_calls_per_workspace=1. A call held on node 1 makes node 2 refuse the workspace's
next call with 503 once node 2 has synced (GET /v1/cluster says so); when the call ends,
or node 1 is killed with -9 and its lease runs out, node 2 admits again.

Runs when TRUNKLINE_TEST_PG names a server (make test-pg runs this file under
tests/pg/with-postgres.sh). Synchronisation is on the API's view of the counts, polled
with deadlines, never on sleeps."""
import glob
import os
import random
import subprocess
import time

import pytest

from conftest import BIN, free_port
from sipclient import SipClient, sdp_offer
from test_inbound_calls import NUMBER, answered_call, call_record, import_number

PG = os.environ.get("TRUNKLINE_TEST_PG", "")
needs_pg = pytest.mark.skipif(not PG, reason="needs TRUNKLINE_TEST_PG (make test-pg)")
MASTER_KEY = "5a" * 32  # both nodes seal and open with one key (docs/configuration.md)
SYNC_MS = 100  # lease: max(4 × 100, 1000) ms


def _psql(sql):
    psql = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))[-1]
    subprocess.run([psql, "-v", "ON_ERROR_STOP=1", "-qAt", "-d", PG, "-c", sql], check=True,
                   capture_output=True, text=True, timeout=30)


@pytest.fixture
def cluster(make_daemon):
    schema = "it_caps_%d" % os.getpid()
    _psql("DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s" % (schema, schema))
    store = "%s options='-csearch_path=%s'" % (PG, schema)
    base = 21000 + random.randrange(40) * 200

    def node(i, **extra):
        env = {"TRUNKLINE_STORE": store, "TRUNKLINE_MASTER_KEY": MASTER_KEY,
               "TRUNKLINE_RTP_PORT_MIN": str(base + i * 100),
               "TRUNKLINE_RTP_PORT_MAX": str(base + i * 100 + 99),
               "TRUNKLINE_SIP_TCP_PORT": str(free_port()),
               "TRUNKLINE_SIP_TLS_PORT": str(free_port()),
               "TRUNKLINE_SIP_LISTEN": "127.0.0.1",
               "TRUNKLINE_MEDIA_TIMEOUT_S": "600",
               "TRUNKLINE_MAX_CALLS_PER_WORKSPACE": "1",
               "TRUNKLINE_CLUSTER_SYNC_MS": str(SYNC_MS)}
        env.update(extra)
        d = make_daemon(env=env, sub="n%d_" % i)
        d.sip_port = int(env["TRUNKLINE_SIP_TCP_PORT"])
        return d
    try:
        yield node
    finally:
        _psql("DROP SCHEMA IF EXISTS %s CASCADE" % schema)


def counts(d, ws):
    """node d's view of workspace ws: (local calls, remote calls), both directions"""
    r = d.api("GET", "/v1/cluster", token=d.operator_token)
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["shared"] and v["running"], v
    row = [w for w in v["workspaces"] if w["workspace_id"] == ws]
    if not row:
        return 0, 0
    w = row[0]
    return w["local_inbound"] + w["local_outbound"], w["remote_inbound"] + w["remote_outbound"]


def wait_counts(d, ws, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        got = counts(d, ws)
        if got == want:
            return
        if time.monotonic() > deadline:
            raise AssertionError("node %s: counts %s, want %s" % (d.port, got, want))
        time.sleep(0.02)


def invite_code(d):
    sc = SipClient(d.sip_port, "tcp")
    try:
        r = sc.invite(NUMBER, sdp_offer(40010))
        if r.code >= 300:
            sc.ack_failure(r)
        else:
            sc.ack()
            assert sc.bye().code == 200
        return r.code, r, sc.call_id
    finally:
        sc.close()


@needs_pg
def test_workspace_cap_holds_across_two_nodes(cluster):
    n1 = cluster(1)
    import_number(n1)  # before node 2 starts: its routing cache loads it at start
    n2 = cluster(2)
    for t in ("admin_token", "operator_token", "workspace_id"):  # one store, one set
        setattr(n2, t, getattr(n1, t))
    ws = n1.workspace_id
    assert "cluster.start" in n2.log_text()
    # workspace tokens do not see other tenants' counts
    assert n2.api("GET", "/v1/cluster").status_code == 403

    first, _ = answered_call(n1)
    try:
        wait_counts(n1, ws, (1, 0))
        wait_counts(n2, ws, (0, 1))  # node 2 has seen node 1's call
        code, r, cid = invite_code(n2)
        assert code == 503 and r.get("retry-after"), r.raw
        assert call_record(n2, cid)["final_status"] == 503
        # node 1's own cap still holds too
        code, r, _ = invite_code(n1)
        assert code == 503, r.raw
        assert first.bye().code == 200
    finally:
        first.close()
    wait_counts(n2, ws, (0, 0))
    code, r, _ = invite_code(n2)
    assert code == 200, r.raw

    # a node killed with -9 leaves its rows behind; the others stop counting them once its
    # heartbeat is older than the lease, then its rows are collected
    wait_counts(n1, ws, (0, 0))  # node 2's call has ended, and node 1 has seen it end
    held, _ = answered_call(n1)
    try:
        wait_counts(n2, ws, (0, 1))
        n1.kill9()
        t0 = time.monotonic()
        wait_counts(n2, ws, (0, 0))
        # not before the lease (1 s) less one sync interval: the heartbeat is the database's
        assert time.monotonic() - t0 >= 0.5
        code, r, _ = invite_code(n2)
        assert code == 200, r.raw
    finally:
        held.close()
    n2.stop()
    log = n2.log_text()
    assert "cluster.left" in log and "cluster.sync_failed" not in log, log[-3000:]


def test_cluster_sync_ms_out_of_range_stops_the_node(tmp_path):
    env = dict(os.environ, TRUNKLINE_DATA_DIR=str(tmp_path / "var"),
               TRUNKLINE_API_LISTEN="127.0.0.1:0", TRUNKLINE_SIP_TCP_PORT="0",
               TRUNKLINE_SIP_TLS_PORT="0", TRUNKLINE_LOG_FILE="", TRUNKLINE_STORE="",
               TRUNKLINE_CLUSTER_SYNC_MS="5")
    r = subprocess.run([BIN, "serve"], capture_output=True, text=True, timeout=60, env=env,
                       cwd=str(tmp_path))
    assert r.returncode != 0 and "cluster_sync_ms must be 10 to 10000" in r.stdout + r.stderr


def test_sqlite_node_is_not_shared(make_daemon):
    d = make_daemon(env={"TRUNKLINE_STORE": ""})  # SQLite even under TRUNKLINE_IT_STORE_PG
    r = d.api("GET", "/v1/cluster", token=d.operator_token)
    assert r.status_code == 200 and r.json() == {"shared": False, "workspaces": []}, r.text

#!/usr/bin/python3
"""bench/cluster: what one call costs the edge, each node and the shared PostgreSQL store
(issue 13, docs/scale-out.md "Capacity on paper"). Prints figures; asserts nothing.

    make -j2 && make loadgen && /usr/bin/python3 bench/cluster/run.py
        [--calls-per-s 20] [--hold-s 60] [--minutes 10] [--conns 2]

Everything on loopback, in a temporary directory removed at exit (also on Ctrl-C):

    build/loadgen (the carrier, 127.0.0.1)  --SIP/TCP-->  Kamailio 127.0.0.2
        deploy/kamailio/kamailio.cfg as shipped, site values as -A defines (as in
        tests/integration/test_edge.py), dispatcher round robin, keep-alives every 5 s
                --SIP/TCP from 127.0.0.2-->  trunkline node 1 [and node 2], 127.0.0.1
    RTP goes straight between loadgen and the node that holds the call (echo agent).
    Both nodes: one PostgreSQL store (--store 'host=… port=… user=… dbname=…'), the same
    TRUNKLINE_MASTER_KEY; the number is imported through node 1 before node 2 starts.

PostgreSQL is a throwaway cluster made here as in tests/pg/with-postgres.sh (initdb as
user postgres when root, Unix socket only, fsync=on, synchronous_commit=on), with
pg_stat_statements preloaded.

Two runs, the same load: one node behind the edge, then two. A run is one build/loadgen
with one step of N = R x H / 2 calls: set up at R/s (--calls-per-s), held together for a
window with no new calls, then hung up at R/s, first in first out, so every call is held
the same H s (--hold-s) from its 200 to its BYE. Before the load, an idle phase (keep-
alives only) gives each process's idle rate, which is taken off every phase. Sampled at
each phase boundary: CPU (utime+stime from /proc/PID/stat) of Kamailio (every process of
its process group), of each node, of PostgreSQL (the postmaster and its children);
pg_stat_statements and pg_stat_database of the store's database; pg_stat_wal.

Figures per run (all net of the idle rate):
  - per call set up (and torn down): CPU ms over the ramp and the teardown, less what the
    concurrent calls of those phases cost at the hold phase's rate, divided by the calls.
    1 ms per call = 0.1 % of a core per call/s = 1,000 calls/s per core.
  - per concurrent call: CPU over the hold phase / N / seconds (% of a core per call).
  - PostgreSQL: statements, commits, rows and WAL fsyncs per call over the whole run (the
    records are flushed in batches: the run ends when the nodes went quiet after the last
    BYE), the most frequent statements with their mean execution time.
Then commit latency, client-side: pgbench, one connection, INSERT of one row per
transaction (autocommit, so each is a commit waiting for its WAL fsync) for 5 s, p50/p99.

A 2-core machine cannot show a speed-up from two nodes; what the runs show is whether the
cost of a call grows with the number of nodes (cross-node work on the call path)."""
import argparse
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "..", "calls"))
import run as calls  # noqa: E402  (bench/calls/run.py: ports, /proc readers, loadgen lines)

BIN = calls.BIN
LOADGEN = calls.LOADGEN
CFG = os.path.join(ROOT, "deploy", "kamailio", "kamailio.cfg")
EDGE = "127.0.0.2"
NODE_IP = "127.0.0.1"
NUMBER = "+493099900000"
HZ = os.sysconf("SC_CLK_TCK")
SETTLE_S = 1.0  # loadgen's pause between the last 200 and the window (--settle-ms default)


def run_ok(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def procs():
    """(pid, /proc/PID/stat fields after the command name) of every live process."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                yield int(d), f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue


def group_ticks(pgid):
    """utime+stime of every live process in process group pgid (Kamailio's workers)."""
    return sum(int(f[11]) + int(f[12]) for _, f in procs() if int(f[2]) == pgid)  # pgrp


def pg_ticks(root):
    """utime+stime of PostgreSQL serving the store: the postmaster, its background processes
    and the nodes' backends; not the backends of this script's own queries (database
    'postgres'), nor what exited children were reaped with (those same short queries)."""
    total = 0
    for pid, fields in procs():
        if pid != root and int(fields[1]) != root:  # ppid
            continue
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                title = f.read().decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if " trunkline postgres " in title:  # "postgres: <user> <database> [local] ..."
            continue
        total += int(fields[11]) + int(fields[12])
    return total


class Postgres:
    """A throwaway cluster, the steps of tests/pg/with-postgres.sh."""

    def __init__(self, tmp):
        bindir = ""
        for d in sorted(os.listdir("/usr/lib/postgresql")) if os.path.isdir(
                "/usr/lib/postgresql") else []:
            if os.access("/usr/lib/postgresql/%s/bin/initdb" % d, os.X_OK):
                bindir = "/usr/lib/postgresql/%s/bin" % d
        if not bindir:
            sys.exit("no initdb under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
        self.bindir = bindir
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.dir = os.path.join(tmp, "pg")
        os.makedirs(self.dir)
        os.chmod(tmp, 0o755)
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.data = os.path.join(self.dir, "data")
        run_ok(self.as_user + [bindir + "/initdb", "-D", self.data, "--auth=trust",
                               "--username=trunkline", "-E", "UTF8", "--no-locale"])
        self.port = calls.free_port()
        libdir = run_ok([bindir + "/pg_config", "--pkglibdir"]).stdout.strip()
        self.pgss = os.path.exists(os.path.join(libdir, "pg_stat_statements.so"))
        opts = ("-c listen_addresses='' -c unix_socket_directories='%s' -p %d -c fsync=on "
                "-c synchronous_commit=on -c max_connections=50" % (self.dir, self.port))
        if self.pgss:
            opts += (" -c shared_preload_libraries=pg_stat_statements"
                     " -c pg_stat_statements.track=all -c pg_stat_statements.max=1000")
        self.log = os.path.join(self.dir, "server.log")
        r = subprocess.run(self.as_user + [bindir + "/pg_ctl", "-D", self.data, "-l", self.log,
                                           "-w", "-t", "60", "-o", opts, "start"],
                           capture_output=True, text=True)
        if r.returncode:
            with open(self.log, errors="replace") as f:
                sys.exit("postgres did not start:\n" + f.read()[-3000:])
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline())
        self.sql("CREATE DATABASE trunkline")
        if self.pgss:
            self.sql("CREATE EXTENSION pg_stat_statements")
        self.sql("CREATE TABLE bench_commit (id bigserial PRIMARY KEY, v int, t timestamptz "
                 "DEFAULT now())")
        self.conninfo = "host=%s port=%d user=trunkline dbname=trunkline" % (self.dir, self.port)

    def sql(self, q, db="postgres"):
        """Runs q in db (the monitoring database, not the store's); rows as lists."""
        r = run_ok(["psql", "-h", self.dir, "-p", str(self.port), "-U", "trunkline", "-d", db,
                    "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", q])
        return [ln.split("\t") for ln in r.stdout.splitlines() if ln]

    def snapshot(self):
        """Counters of the store's database (this script's queries run in 'postgres')."""
        s = {}
        row = self.sql("SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, "
                       "tup_deleted, tup_returned, tup_fetched FROM pg_stat_database "
                       "WHERE datname = 'trunkline'")[0]
        for k, v in zip(("commit", "rollback", "ins", "upd", "del", "returned", "fetched"), row):
            s[k] = int(v)
        row = self.sql("SELECT wal_records, wal_bytes, wal_sync, wal_write FROM pg_stat_wal")[0]
        for k, v in zip(("wal_records", "wal_bytes", "wal_sync", "wal_write"), row):
            s[k] = int(float(v))
        s["stmts"] = {}
        if self.pgss:
            for qid, q, n, t in self.sql(
                    "SELECT queryid, regexp_replace(left(query, 90), '\\s+', ' ', 'g'), calls, "
                    "total_exec_time FROM pg_stat_statements WHERE dbid = "
                    "(SELECT oid FROM pg_database WHERE datname = 'trunkline')"):
                s["stmts"][qid] = (q, int(n), float(t))
        s["ticks"] = pg_ticks(self.pid)
        return s

    def commit_latency(self, tmp, seconds=5, clients=1):
        """pgbench: one INSERT per transaction; latencies (ms) from its per-transaction log."""
        script = os.path.join(tmp, "commit.sql")
        with open(script, "w") as f:
            f.write("INSERT INTO bench_commit (v) VALUES (1);\n")
        logdir = os.path.join(tmp, "pgbench-%d" % clients)
        os.makedirs(logdir)
        r = subprocess.run(["pgbench", "-h", self.dir, "-p", str(self.port), "-U", "trunkline",
                            "-n", "-c", str(clients), "-j", "1", "-T", str(seconds), "-f",
                            script, "-l", "--log-prefix", os.path.join(logdir, "tx"),
                            "postgres"], capture_output=True, text=True)
        if r.returncode:
            return None
        lat = []
        for name in os.listdir(logdir):
            with open(os.path.join(logdir, name)) as f:
                for ln in f:
                    c = ln.split()
                    if len(c) > 2:
                        lat.append(int(c[2]) / 1000.0)
        lat.sort()
        if not lat:
            return None
        return {"n": len(lat), "tps": len(lat) / seconds, "p50": lat[len(lat) // 2],
                "p99": lat[int((len(lat) - 1) * 0.99)], "mean": sum(lat) / len(lat)}

    def stop(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            subprocess.run(self.as_user + [self.bindir + "/pg_ctl", "-D", self.data, "-m",
                                           "immediate", "-w", "stop"], capture_output=True)


class Node:
    def __init__(self, tmp, i, store, master_key, rtp):
        self.name = "node%d" % i
        self.dir = os.path.join(tmp, self.name)
        os.makedirs(self.dir)
        self.sip_port = calls.free_port()
        self.api_port = calls.free_port()
        self.log = os.path.join(self.dir, "trunkline.log")
        env = dict(os.environ)
        env.update({
            "TRUNKLINE_DATA_DIR": os.path.join(self.dir, "var"),
            "TRUNKLINE_STORE": store,
            "TRUNKLINE_MASTER_KEY": master_key,
            "TRUNKLINE_API_LISTEN": "127.0.0.1:%d" % self.api_port,
            "TRUNKLINE_LOG_FILE": self.log,
            "TRUNKLINE_SIP_LISTEN": NODE_IP,
            "TRUNKLINE_SIP_TCP_PORT": str(self.sip_port),
            "TRUNKLINE_SIP_TLS_PORT": str(calls.free_port()),
            "TRUNKLINE_SIP_UDP": "off",
            "TRUNKLINE_SIP_EDGE_ADDRESSES": EDGE + "/32",
            "TRUNKLINE_PUBLIC_HOST": "bench.test",
            "TRUNKLINE_RTP_PORT_MIN": str(rtp[0]),
            "TRUNKLINE_RTP_PORT_MAX": str(rtp[1]),
            "TRUNKLINE_MAX_CALLS": "20000",
            "TRUNKLINE_MAX_CALLS_PER_WORKSPACE": "20000",
            "TRUNKLINE_SIP_INVITE_RATE": "10000",
            "TRUNKLINE_SIP_INVITE_RATE_GLOBAL": "10000",
        })
        self.out = open(os.path.join(self.dir, "stdout"), "wb")
        self.proc = subprocess.Popen([BIN, "serve"], env=env, stdout=self.out,
                                     stderr=subprocess.STDOUT, cwd=self.dir,
                                     preexec_fn=calls.raise_nofile)
        deadline = time.monotonic() + 60
        while True:
            text = self.stdout()
            if "trunkline is running" in text:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("%s did not start: %s" % (self.name, text[-2000:]))
            time.sleep(0.1)  # polling the node's output for its start line, with a deadline
        m = re.search(r"workspace admin token:\s+(\S+)", text)
        self.token = m.group(1) if m else None

    def stdout(self):
        with open(os.path.join(self.dir, "stdout"), errors="replace") as f:
            return f.read()

    def api(self, token, method, path, json=None):
        return requests.request(method, "http://127.0.0.1:%d%s" % (self.api_port, path),
                                json=json, timeout=30,
                                headers={"Authorization": "Bearer %s" % token})

    def live_calls(self):
        """Live calls from the SIGUSR1 stats line (bench/soak's way)."""
        def lines():
            try:
                with open(self.log, errors="replace") as f:
                    return [ln for ln in f if "core stats " in ln]
            except FileNotFoundError:
                return []
        before = len(lines())
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ls = lines()
            if len(ls) > before:
                return int(calls.kv(ls[-1]).get("calls", -1))
            time.sleep(0.05)  # polling the log for the answer to our signal
        return -1

    def ticks(self):
        return calls.proc_ticks(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.out.close()


class Edge:
    """Kamailio with the shipped configuration in a process group of its own."""

    def __init__(self, tmp, tag, nodes):
        self.dir = os.path.join(tmp, "edge-" + tag)
        os.makedirs(self.dir)
        self.tcp_port, self.tls_port, self.nodes_port = (calls.free_port(), calls.free_port(),
                                                         calls.free_port())
        key, crt = os.path.join(self.dir, "edge.key"), os.path.join(self.dir, "edge.crt")
        run_ok(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                "-out", crt, "-days", "2", "-subj", "/CN=edge.bench"])
        ds = os.path.join(self.dir, "nodes.list")
        with open(ds, "w") as f:
            for n in nodes:
                f.write("1 sip:%s:%d;transport=tcp\n" % (NODE_IP, n.sip_port))
        self.ctl = "unix:" + os.path.join(self.dir, "ctl")
        defs = {"EDGE_IP": EDGE, "NODES_IP": EDGE, "EDGE_TCP_PORT": self.tcp_port,
                "EDGE_TLS_PORT": self.tls_port, "NODES_PORT": self.nodes_port,
                "NODES_SOCKET": '"tcp:%s:%d"' % (EDGE, self.nodes_port), "DS_LIST": '"%s"' % ds,
                "TLS_CERT": '"%s"' % crt, "TLS_KEY": '"%s"' % key, "CTL_SOCKET": '"%s"' % self.ctl}
        args = ["kamailio", "-f", CFG, "-DD", "-E", "-m", "64", "-M", "8", "-w", self.dir,
                "-Y", self.dir, "-P", os.path.join(self.dir, "pid")]
        for k, v in defs.items():
            args += ["-A", "%s=%s" % (k, v)]
        self.logf = open(os.path.join(self.dir, "kamailio.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT,
                                     cwd=self.dir, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            st = self.states()
            if len(st) == len(nodes) and all(v.startswith("A") for v in st.values()):
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("edge not ready (states %s), log in %s" % (st, self.dir))
            time.sleep(0.2)  # polling kamcmd for the nodes' first keep-alive, with a deadline

    def states(self):
        r = subprocess.run(["kamcmd", "-s", self.ctl, "dispatcher.list"], capture_output=True,
                           text=True, timeout=10)
        return dict(re.findall(r"URI: (\S+)\s+FLAGS: (\S+)", r.stdout))

    def ticks(self):
        return group_ticks(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(5)
        self.logf.close()


def sample(edge, nodes, pg):
    s = pg.snapshot()
    return {"t": time.monotonic(), "edge": edge.ticks(), "nodes": [n.ticks() for n in nodes],
            "pg": s}


def quiet(nodes, pg, deadline_s=20.0):
    """Waits (with a deadline) until the nodes and PostgreSQL use under 2 % of a core over
    0.5 s: the last records written. Each sample is a measurement, not a wait for time."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        a = [n.ticks() for n in nodes] + [pg_ticks(pg.pid)]
        time.sleep(0.5)
        b = [n.ticks() for n in nodes] + [pg_ticks(pg.pid)]
        if all((y - x) / HZ / 0.5 < 0.02 for x, y in zip(a, b)):
            return True
    return False


def one_run(args, tmp, tag, nodes, pg, n_calls, window):
    edge = Edge(tmp, tag, nodes)
    try:
        print("\n== %s: %d node(s) behind the edge; %d calls at %g/s, window %d s" % (
            tag, len(nodes), n_calls, args.calls_per_s, window), flush=True)
        # the edge's first keep-alives settle, and PostgreSQL publishes what a node's start
        # did: an idle backend may keep its counters up to 10 s (PGSTAT_IDLE_INTERVAL)
        time.sleep(11)
        s_idle0 = sample(edge, nodes, pg)
        time.sleep(args.idle_s)  # the idle phase is measured over this time
        s_idle1 = sample(edge, nodes, pg)
        cmd = [LOADGEN, "--sip", "%s:%d" % (EDGE, edge.tcp_port), "--number", NUMBER,
               "--steps", "%d:%d" % (n_calls, window), "--cps", str(args.calls_per_s),
               "--bye-cps", str(args.calls_per_s), "--conns", str(args.conns),
               "--rtp-ports", "42000-61998", "--setup-timeout", "10"]
        log = open(os.path.join(tmp, "loadgen-%s.out" % tag), "w")
        err = open(os.path.join(tmp, "loadgen-%s.err" % tag), "w")
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                             preexec_fn=calls.raise_nofile)
        marks, step, done, live = {}, {}, "", []
        try:
            for ln in p.stdout:
                log.write(ln)
                if ln.startswith("WINDOW-START"):
                    marks["window"] = sample(edge, nodes, pg)
                    # live calls per node, in the middle of the window
                    threading.Timer(window / 2, lambda: live.extend(
                        n.live_calls() for n in nodes)).start()
                elif ln.startswith("STEP"):
                    marks["step"] = sample(edge, nodes, pg)
                    step = calls.kv(ln)
                elif ln.startswith(("DONE", "ABORT")):
                    marks["done"] = sample(edge, nodes, pg)
                    done = ln.strip()
            p.wait(60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()
            err.close()
        if "step" not in marks or "done" not in marks:
            raise RuntimeError("loadgen did not finish: %s (see %s)" % (done, tmp))
        quiet(nodes, pg)
        time.sleep(1.5)  # PostgreSQL publishes a backend's counters at most once a second
        s_end = sample(edge, nodes, pg)
        return {"tag": tag, "nodes": [n.name for n in nodes], "idle0": s_idle0,
                "idle1": s_idle1, "start": s_idle1, "window": marks["window"],
                "step": marks["step"], "done": marks["done"], "end": s_end, "stepline": step,
                "done_line": done, "live": live, "n": n_calls}
    finally:
        edge.stop()


def cpu_s(a, b, key, i=None):
    if key == "pg":
        return (b["pg"]["ticks"] - a["pg"]["ticks"]) / HZ
    if i is None:
        return (b[key] - a[key]) / HZ
    return (b["nodes"][i] - a["nodes"][i]) / HZ


def costs(r, key, i=None):
    """(ms per call set up and torn down, % of a core per concurrent call, ms per call over
    the whole run), each net of the idle rate."""
    idle_rate = cpu_s(r["idle0"], r["idle1"], key, i) / (r["idle1"]["t"] - r["idle0"]["t"])
    n = r["n"] if i is None else max(1, r["share"][i])
    hold_t = r["step"]["t"] - r["window"]["t"]
    hold = cpu_s(r["window"], r["step"], key, i) - idle_rate * hold_t
    per_conc = hold / n / hold_t  # core-seconds per call-second
    ramp_t = r["window"]["t"] - r["start"]["t"]
    tear_t = r["end"]["t"] - r["step"]["t"]
    ramp = cpu_s(r["start"], r["window"], key, i) - idle_rate * ramp_t
    tear = cpu_s(r["step"], r["end"], key, i) - idle_rate * tear_t
    # the calls present during the ramp and the teardown cost what they cost in the hold
    # phase: n calls rising linearly over N/R s (n x N/R / 2 call-seconds), held through
    # the settle pause, falling linearly over N/R s; the rest is setting up and tearing down
    conc_s = n * (r["n"] / r["rate"] + SETTLE_S)
    setup = (ramp + tear - per_conc * conc_s) / n
    whole = (cpu_s(r["start"], r["end"], key, i) - idle_rate * (r["end"]["t"] - r["start"]["t"]))
    return setup * 1000, per_conc * 100, whole / n * 1000, idle_rate * 100


def pg_delta(r):
    a, b = r["idle1"]["pg"], r["end"]["pg"]
    i0, i1 = r["idle0"]["pg"], r["idle1"]["pg"]
    dt = r["end"]["t"] - r["idle1"]["t"]
    idt = r["idle1"]["t"] - r["idle0"]["t"]
    out = {}
    for k in ("commit", "rollback", "ins", "upd", "del", "fetched", "wal_records", "wal_bytes",
              "wal_sync", "wal_write"):
        idle = (i1[k] - i0[k]) / idt
        out[k] = ((b[k] - a[k]) - idle * dt) / r["n"]
        out[k + "_idle_per_s"] = idle
    tot = lambda s: sum(v[1] for v in s["stmts"].values())  # noqa: E731
    idle = (tot(i1) - tot(i0)) / idt
    out["stmts"] = ((tot(b) - tot(a)) - idle * dt) / r["n"]
    out["stmts_idle_per_s"] = idle
    top = []
    for qid, (q, n, t) in b["stmts"].items():
        n0, t0 = a["stmts"].get(qid, (q, 0, 0.0))[1:]
        if n > n0:
            top.append(((n - n0) / r["n"], (t - t0) / (n - n0), q))
    top.sort(reverse=True)
    out["top"] = top[:10]
    return out


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls-per-s", type=int, default=20,
                    help="calls set up (and hung up) per second (20)")
    ap.add_argument("--hold-s", type=int, default=60,
                    help="seconds each call is held, 200 to BYE (60); N = R x H / 2 calls")
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="budget of the whole run: refused if the plan does not fit (10)")
    ap.add_argument("--conns", type=int, default=2, help="loadgen's TCP connections (2)")
    ap.add_argument("--idle-s", type=float, default=10.0, help="idle phase per run (10)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    for f in (BIN, LOADGEN):
        if not os.path.exists(f):
            sys.exit("%s missing: make -j2 && make loadgen" % f)
    for tool in ("kamailio", "kamcmd", "psql", "openssl"):
        if not shutil.which(tool):
            sys.exit("%s not installed (scripts/install-deps.sh)" % tool)
    rate = args.calls_per_s
    n_calls = max(2, int(rate * args.hold_s / 2))
    ramp = n_calls / rate
    window = max(5, int(round(args.hold_s - ramp - SETTLE_S)))
    per_run = 11 + args.idle_s + ramp + SETTLE_S + window + ramp + 10 + 8
    plan = 25 + 2 * per_run + 10
    if plan > args.minutes * 60:
        sys.exit("the plan takes about %.0f s, over --minutes %g: lower --hold-s" % (
            plan, args.minutes))
    t_begin = time.monotonic()
    print("bench/cluster: %s" % " ".join([os.path.basename(sys.executable)] + sys.argv))
    print("machine: %d cores (nproc), %s; load before the run: %s" % (
        os.cpu_count(), cpu_model(), ", ".join("core%s %.0f %%" % kv
                                              for kv in sorted(calls.machine_load().items()))))
    print("plan: 2 runs (1 node, 2 nodes), each %d calls set up at %g/s, held %d s each "
          "(ramp %.0f s, window %d s with %d calls and no new ones, teardown %.0f s), about "
          "%.0f s in all" % (n_calls, rate, args.hold_s, ramp, window, n_calls, ramp, plan),
          flush=True)

    tmp = tempfile.mkdtemp(prefix="trunkline-cluster-")
    pg, nodes = None, []
    stopping = []

    def on_term(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        pg = Postgres(tmp)
        print("postgres: %s, pg_stat_statements %s, fsync=on, synchronous_commit=on" % (
            os.path.basename(os.path.dirname(pg.bindir)), "on" if pg.pgss else
            "not available (statements not counted)"), flush=True)
        key = secrets.token_hex(32)
        nodes.append(Node(tmp, 1, pg.conninfo, key, (10000, 19999)))
        token = nodes[0].token
        if not token:
            raise RuntimeError("node1 printed no admin token")
        agents = nodes[0].api(token, "GET", "/v1/agents").json()["data"]
        echo = [a for a in agents if a["name"] == "echo"][0]["id"]
        r = nodes[0].api(token, "POST", "/v1/phone-numbers", json={
            "number": NUMBER, "label": "bench/cluster", "agent_id": echo,
            "inbound_trunk": {"transport": "tcp", "media_encryption": "disabled",
                              "allowed_addresses": ["127.0.0.1/32"]},
            "outbound_trunk": {"address": "sip.example.com", "transport": "tls",
                               "media_encryption": "required"}})
        if r.status_code != 201:
            raise RuntimeError("import failed: %s %s" % (r.status_code, r.text))

        runs = []
        r1 = one_run(args, tmp, "1node", nodes[:1], pg, n_calls, window)
        r1["share"], r1["rate"] = [n_calls], rate
        runs.append(r1)
        # the second node starts after the import: it loads the routing cache from the store
        nodes.append(Node(tmp, 2, pg.conninfo, key, (20000, 29999)))
        r2 = one_run(args, tmp, "2nodes", nodes, pg, n_calls, window)
        # each node's share of the calls: its live calls in the window (round robin)
        live = r2["live"]
        r2["share"] = live if len(live) == 2 and min(live) > 0 else [n_calls // 2] * 2
        r2["rate"] = rate
        runs.append(r2)
        lat1 = pg.commit_latency(tmp, 5, 1)
        lat4 = pg.commit_latency(tmp, 5, 4)
        report(args, runs, lat1, lat4, n_calls, window, time.monotonic() - t_begin)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", flush=True)
    finally:
        for n in nodes:
            n.stop()
        if pg:
            pg.stop()
        if args.keep:
            print("kept: %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if stopping:
        sys.exit(130)


def report(args, runs, lat1, lat4, n_calls, window, wall):
    print("\n== figures (net of each process's idle rate; ms = CPU milliseconds)")
    for r in runs:
        s, d = r["stepline"], r["done_line"]
        print("%s: up %s of %s, failed %s, lost echo frames %s, jitter p99 %s ms, "
              "INVITE->200 p50/p99 %s/%s ms; live calls per node in the window %s; %s" % (
                  r["tag"], s.get("up"), s.get("n"), s.get("failed"), s.get("lost"),
                  s.get("jit_p99_ms"), s.get("i200_p50_ms"), s.get("i200_p99_ms"),
                  r["live"], d))
    hdr = "%-22s %14s %16s %14s %10s" % ("process", "ms/call setup", "%core/conc.call",
                                         "ms/call whole", "idle %core")
    print("\n" + hdr)
    rows = {}
    for r in runs:
        for label, key, i in ([("edge (Kamailio, all)", "edge", None)] +
                              [("%s %s" % (r["tag"], nm), "nodes", j)
                               for j, nm in enumerate(r["nodes"])] +
                              [("PostgreSQL (all)", "pg", None)]):
            c = costs(r, key, i)
            rows[(r["tag"], key, i)] = c
            name = label if key == "nodes" else "%s %s" % (r["tag"], label)
            print("%-30s %8.3f %14.4f %16.3f %10.2f" % (name, c[0], c[1], c[2], c[3]))
    one = rows[("1node", "nodes", 0)]
    two = [rows[("2nodes", "nodes", j)] for j in range(2)]
    sh = runs[1]["share"]
    # the two nodes together, per call of the whole load
    tot_setup = sum(c[0] * s for c, s in zip(two, sh)) / sum(sh)
    tot_conc = sum(c[1] * s for c, s in zip(two, sh)) / sum(sh)
    tot_whole = sum(c[2] * s for c, s in zip(two, sh)) / sum(sh)
    print("\nnode CPU per call, one node vs two (two = both nodes' CPU over all calls):")
    print("  setup+teardown: %.3f ms vs %.3f ms (ratio %.3f)" % (one[0], tot_setup,
                                                                 tot_setup / one[0]))
    print("  per concurrent call: %.4f %% vs %.4f %% of a core (ratio %.3f)" % (
        one[1], tot_conc, tot_conc / one[1]))
    print("  whole call (held %d s): %.3f ms vs %.3f ms (ratio %.3f)" % (
        args.hold_s, one[2], tot_whole, tot_whole / one[2]))
    for r in runs:
        e = rows[(r["tag"], "edge", None)]
        print("edge %s: %.3f ms per call set up and torn down -> %.0f calls/s per edge core; "
              "%.5f %% of a core per concurrent call" % (
                  r["tag"], e[0], 1000.0 / e[0] if e[0] > 0 else 0, e[1]))
    print("\nPostgreSQL per call (whole run, net of idle; 'idle/s' = the idle rate):")
    for r in runs:
        d = pg_delta(r)
        print("  %s: statements %.2f (idle/s %.2f), commits %.2f (idle/s %.2f), rollbacks "
              "%.2f, rows inserted %.2f updated %.2f deleted %.2f, WAL records %.1f, WAL "
              "bytes %.0f, WAL fsyncs %.3f, WAL writes %.3f" % (
                  r["tag"], d["stmts"], d["stmts_idle_per_s"], d["commit"],
                  d["commit_idle_per_s"], d["rollback"], d["ins"], d["upd"], d["del"],
                  d["wal_records"], d["wal_bytes"], d["wal_sync"], d["wal_write"]))
        for per, mean, q in d["top"][:8]:
            print("    %6.2f/call  mean %7.3f ms  %s" % (per, mean, q))
    for name, lat in (("1 connection", lat1), ("4 connections", lat4)):
        if lat:
            print("commit latency (pgbench, INSERT one row per transaction, 5 s, %s): %d "
                  "commits, %.0f/s, p50 %.2f ms, p99 %.2f ms, mean %.2f ms" % (
                      name, lat["n"], lat["tps"], lat["p50"], lat["p99"], lat["mean"]))
        else:
            print("commit latency (%s): pgbench failed or missing" % name)
    print("\nwall time %.0f s" % wall)


if __name__ == "__main__":
    main()

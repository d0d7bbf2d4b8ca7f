#!/usr/bin/python3
"""bench/agents: concurrent calls bridged to a WebSocket agent (Twilio Media Streams), beside
the same calls to the builtin echo agent, the daemon pinned to one core. Prints figures;
asserts nothing about speed.

    make && make loadgen && /usr/bin/python3 bench/agents/run.py
        [--steps 100:20,250:20,500:20,1000:30,1500:30] [--modes echo,ws,wss] [--repeat 1]
        [--cps 200] [--slots 20] [--keep]

Method: bench/calls' (its helpers are imported from bench/calls/run.py): `trunkline serve` on
core 1 (`taskset -c 1`, nice -20 when allowed) with RTP ports 10000-29999, raised ulimit -n and
admission caps, plain RTP over a TCP inbound trunk; build/loadgen on core 0 (SCHED_FIFO when
allowed) places the calls and streams 20 ms PCMU frames carrying frame and call numbers, and
checks every frame comes back within 300 ms. Here the generator also plays the agent: a
WebSocket echo server in the same process (bench/loadgen/agentsrv.c, wslay's server context;
TLS through net/tls with a certificate of a test CA made with openssl at the start of the
run, which the daemon trusts through agent_tls_ca_file) that sends each `media` payload back
as `media`. The daemon allows the agent with agent_allow_networks=127.0.0.0/8 and
agent_insecure_hosts=127.0.0.1 (ws://).

Each step N is run once per mode, back to back, each on a FRESH daemon (so RSS per call is
the step's own, not what an earlier step left in the allocator): echo (the builtin agent, no
WebSocket), ws (a websocket agent at ws://127.0.0.1:P), wss (wss://127.0.0.1:P). The order of
the modes rotates from step to step. --repeat R runs the whole ramp R times, interleaved.
Over each window (after every call of the step is answered and a settle time) the script
samples the daemon's CPU (utime+stime from /proc/PID/stat over wall time) and RSS (VmRSS at
the window's end minus the idle daemon's, divided by the calls).

The frames of the calls are spread over the 20 ms (--slots 20: call i sends in slot i % 20),
as independent carrier streams arrive; --slots 1 sends every call's frame at one instant
(bench/calls' generator), a worst case for latency.

Latency (one clock in one process; kernel receive timestamps on both sockets):
  a2w      RTP in -> WebSocket out of the daemon: our RTP send() to the arrival of the
           WebSocket bytes carrying that frame at the agent
  w2r      WebSocket in -> RTP out: the agent's send() of the echo to the arrival of the RTP
           packet carrying it; includes the wait for the daemon's 20 ms media clock (by
           design: agent audio is paced out on the tick)
  w2r+     w2r without that wait: the RTP's arrival minus the first SCHEDULED tick of the
           daemon after the agent's send (ticks located from the daemon's RTP bursts; the
           schedule is the earliest tick phase of the window), so a late tick, the walk over
           every call and a missed tick (+20 ms) count; only the clock's wait does not.
  e2e/e2e+ the whole round trip, our RTP send -> the echo back, with and without the clock's
           wait (also for the builtin echo: what both agents cost on the same clock).
The goal "added latency p99 <= 2 ms" is read on a2w and w2r+.

A step passes (for a mode) with 0 failed calls, 0 lost frames and daemon CPU <= 80 %; the
knee of a mode is the highest step such that it and every step below it pass. The ratio is
CPU per bridged call / CPU per echo call at the same step in the same repeat.
"""
import argparse
import importlib.util
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
_spec = importlib.util.spec_from_file_location("bench_calls",
                                               os.path.join(ROOT, "bench", "calls", "run.py"))
calls = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(calls)

NUMBER = calls.NUMBER
MAX_CPU = 80.0
DEFAULT_STEPS = "100:20,250:20,500:20,1000:30,1500:30"
MODES = ("echo", "ws", "wss")


def make_tls(d):
    """A test CA and a server certificate for 127.0.0.1 (ECDSA P-256), valid 2 days."""
    def ossl(*a):
        subprocess.run(["openssl"] + list(a), cwd=d, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench-agents CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "agent.key", "-out", "agent.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "agent.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "agent.pem", "-days", "2", "-extfile", "ext.cnf")
    return (os.path.join(d, "ca.pem"), os.path.join(d, "agent.pem"),
            os.path.join(d, "agent.key"))


def setup_number(d, mode, port):
    """The number, assigned to echo or to a websocket agent at the generator's port."""
    if mode == "echo":
        r = d.api("GET", "/v1/agents")
        r.raise_for_status()
        agent = [a for a in r.json()["data"] if a["name"] == "echo"][0]["id"]
    else:
        url = "%s://127.0.0.1:%d/media" % (mode, port)
        r = d.api("POST", "/v1/agents", json={"name": "bench-" + mode, "kind": "websocket",
                                              "url": url})
        if r.status_code != 201:
            raise RuntimeError("agent create failed: %s %s" % (r.status_code, r.text))
        agent = r.json()["id"]
    body = {"number": NUMBER, "label": "bench/agents", "agent_id": agent,
            "inbound_trunk": {"transport": "tcp", "media_encryption": "disabled"},
            "outbound_trunk": {"address": "sip.example.com", "transport": "tls",
                               "media_encryption": "required"}}
    r = d.api("POST", "/v1/phone-numbers", json=body)
    if r.status_code != 201:
        raise RuntimeError("import failed: %s %s" % (r.status_code, r.text))


def wait_idle(limit_s, busy=15.0):
    """Waits (at most limit_s) until neither core is busier than busy % over a second: the
    machine is shared, and other work on core 1 takes from the daemon. The last load seen."""
    t_end = time.monotonic() + limit_s
    while True:
        load = calls.machine_load(1.0)
        if max(load.values()) <= busy or time.monotonic() >= t_end:
            return load


def run_block(args, n, hold, mode, tls, tmp):
    """One step for one mode on a fresh daemon; the STEP figures with the daemon's CPU/RSS."""
    load = wait_idle(args.wait_idle) if args.wait_idle else {}
    bdir = tempfile.mkdtemp(prefix="%s-%d-" % (mode, n), dir=tmp)
    d = None
    res = None
    try:
        d = calls.Daemon(bdir, "echo")
        port = calls.free_port()
        setup_number(d, mode, port)
        time.sleep(1.0)  # the daemon's start-up work settles before the idle RSS
        rss_idle = calls.rss_kb(d.proc.pid)
        cmd = calls.RT + ["taskset", "-c", calls.GEN_CPU, calls.LOADGEN,
                          "--sip", "127.0.0.1:%d" % d.sip_port, "--number", NUMBER,
                          "--steps", "%d:%d" % (n, hold), "--cps", str(args.cps),
                          "--slots", str(args.slots), "--settle-ms", str(args.settle_ms)]
        if mode != "echo":
            cmd += ["--agent-port", str(port)] + (["--agent-wake"] if args.agent_wake else [])
        if mode == "wss":
            cmd += ["--agent-cert", tls[1], "--agent-key", tls[2]]
        with open(os.path.join(bdir, "cmd"), "w") as f:
            f.write(" ".join(cmd) + "\n")
        deadline = time.monotonic() + 90 + hold + 2 * n // args.cps
        res = sample_loadgen(cmd, d, rss_idle, deadline, bdir)
        if res is not None and not d.alive():
            res["why"] = "daemon died"
        if res is not None:
            res.update(mode=mode, n=n, load=max(load.values()) if load else 0.0)
    finally:
        code = d.stop() if d else None
    if code not in (0, None):
        print("  !! trunkline exit %s (%s %d); files in %s" % (code, mode, n, bdir), flush=True)
        args.keep = True
    return res


def sample_loadgen(cmd, d, rss_idle, deadline, out_dir):
    err = open(os.path.join(out_dir, "loadgen.err"), "wb")
    log = open(os.path.join(out_dir, "loadgen.out"), "w")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, preexec_fn=calls.raise_nofile)
    fd = p.stdout.fileno()
    buf = b""
    w0 = None
    step = None
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                print("  !! loadgen past the deadline: killed", flush=True)
                p.kill()
                break
            if not select.select([fd], [], [], min(left, 1.0))[0]:
                if p.poll() is not None:
                    break
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                ln, buf = buf.split(b"\n", 1)
                line = ln.decode(errors="replace")
                log.write(line + "\n")
                if line.startswith("WINDOW-START"):
                    w0 = (time.monotonic(), calls.proc_ticks(d.proc.pid), calls.core_busy())
                elif line.startswith("STEP") and w0:
                    s = calls.kv(line)
                    t1 = time.monotonic()
                    s["srv_cpu"] = (calls.proc_ticks(d.proc.pid) - w0[1]) / calls.HZ / (t1 - w0[0]) * 100
                    s["rss"] = calls.rss_kb(d.proc.pid)
                    s["rss_idle"] = rss_idle
                    cb = calls.core_busy()
                    c1 = calls.SERVER_CPU
                    s["core1"] = 100.0 * (cb[c1][0] - w0[2][c1][0]) / max(1, cb[c1][1] - w0[2][c1][1])
                    step = s
                elif line.startswith(("DONE", "ABORT")) and not line.startswith("DONE"):
                    print("  " + line, flush=True)
        try:
            p.wait(max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return step


def judge(s):
    n = int(s["n"])
    why = []
    if int(s["failed"]):
        why.append("%s failed" % s["failed"])
    if int(s["lost"]):
        why.append("%s lost" % s["lost"])
    if s["srv_cpu"] > MAX_CPU:
        why.append("CPU %.0f%%" % s["srv_cpu"])
    if "partial" in s:
        why.append("window cut short")
    if s.get("why"):
        why.append(s["why"])
    s["verdict"] = ", ".join(why) or "pass"
    s["pass"] = not why
    s["sat"] = float(s["lg_cpu"]) >= 90 or int(s["overruns"]) > 0
    s["cpu_call"] = s["srv_cpu"] / n
    s["rss_call"] = (s["rss"] - s["rss_idle"]) / n if s["rss"] else 0.0


HDR = ("%5s %4s %6s %6s %8s %7s %5s %4s %11s %11s %11s %11s %11s %6s %5s %5s  %s" %
       ("calls", "mode", "srvCPU", "core1", "CPU/call", "RSS/cl", "lost", "fail", "a2w 50/99",
        "w2r 50/99", "w2r+ 50/99", "e2e 50/99", "e2e+ 50/99", "jitp99", "lgCPU", "ratio",
        "verdict"))


def pp(s, a, b):
    if a not in s:
        return "%11s" % "-"
    return "%5.2f/%-5.2f" % (float(s[a]), float(s[b]))


def fmt(s):
    ratio = "%5.2f" % s["ratio"] if s.get("ratio") else "%5s" % "-"
    return ("%5s %4s %5.1f%% %5.1f%% %7.4f%% %5.1fKB %5s %4s %s %s %s %s %s %6s %4s%% %s  %s%s" %
            (s["n"], s["mode"], s["srv_cpu"], s["core1"], s["cpu_call"], s["rss_call"],
             s["lost"], s["failed"], pp(s, "a2w_p50_ms", "a2w_p99_ms"),
             pp(s, "w2r_p50_ms", "w2r_p99_ms"), pp(s, "w2r_add_p50_ms", "w2r_add_p99_ms"),
             pp(s, "e2e_p50_ms", "e2e_p99_ms"), pp(s, "e2e_add_p50_ms", "e2e_add_p99_ms"),
             s["jit_p99_ms"], s["lg_cpu"], ratio, s["verdict"],
             " [generator saturated]" if s["sat"] else "") +
            (" [machine %.0f%% busy before]" % s["load"] if s.get("load", 0) > 15 else "") +
            (" [daemon ticks not located: w2r+/e2e+ unreliable]"
             if float(s.get("dtick_gap_ms", 20)) < 2 else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", default=DEFAULT_STEPS,
                    help="N[:HOLD_S],... concurrent calls per step (default %(default)s)")
    ap.add_argument("--hold", type=int, default=20, help="hold of steps without :HOLD")
    ap.add_argument("--modes", default=",".join(MODES), help="of echo,ws,wss")
    ap.add_argument("--repeat", type=int, default=1, help="run the ramp this many times")
    ap.add_argument("--cps", type=int, default=200, help="call setup rate")
    ap.add_argument("--slots", type=int, default=20, help="spread of the frames (loadgen)")
    ap.add_argument("--agent-wake", action="store_true",
                    help="the agent reads each frame on arrival (wakes core 0 per frame) "
                         "instead of on the generator's 1 ms ticks")
    ap.add_argument("--settle-ms", type=int, default=2000, help="pause before each window")
    ap.add_argument("--no-stop", action="store_true",
                    help="keep ramping a mode after a step it failed")
    ap.add_argument("--wait-idle", type=int, default=60,
                    help="before each block wait up to S s for both cores under 15%% (0: no)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in MODES for m in modes):
        sys.exit("--modes: a list of echo, ws, wss")
    if os.cpu_count() < 2:
        sys.exit("needs 2 cores (daemon on core 1, loadgen on core 0)")
    for f in (calls.BIN, calls.LOADGEN):
        if not os.access(f, os.X_OK):
            sys.exit("%s missing: make && make loadgen" % f)
    calls.raise_nofile()
    steps = []
    for x in args.steps.split(","):
        n, _, h = x.partition(":")
        steps.append((int(n), int(h) if h else args.hold))

    load = calls.machine_load()
    print("machine load before the run: %s%s" % (
        ", ".join("core%s %.0f%%" % kv for kv in sorted(load.items())),
        "  ** NOT IDLE: figures are disturbed by other work **" if max(load.values()) > 10
        else ""))
    print("command: %s" % " ".join([os.path.basename(sys.executable)] + sys.argv))
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="bench-agents-")
    tls = make_tls(tmp)
    os.environ.update({"TRUNKLINE_AGENT_ALLOW_NETWORKS": "127.0.0.0/8",
                       "TRUNKLINE_AGENT_INSECURE_HOSTS": "127.0.0.1",
                       "TRUNKLINE_AGENT_TLS_CA_FILE": tls[0]})
    print("daemon on core %s (fresh per step and mode), loadgen + agent on core %s; "
          "slots %d, cps %d; temp %s" % (calls.SERVER_CPU, calls.GEN_CPU, args.slots, args.cps,
                                         tmp))
    print("latency in ms; a2w: RTP in -> WS out, w2r: WS in -> RTP out, +: without the media "
          "clock's wait; e2e: RTP -> RTP")
    results = []
    failed_modes = set()
    for rep in range(args.repeat):
        if args.repeat > 1:
            print("\nrepeat %d of %d" % (rep + 1, args.repeat))
        print(HDR, flush=True)
        failed_modes = set()
        for si, (n, hold) in enumerate(steps):
            order = modes[si % len(modes):] + modes[:si % len(modes)]
            got = {}
            for mode in order:
                if mode in failed_modes and not args.no_stop:
                    continue
                s = run_block(args, n, hold, mode, tls, tmp)
                if s is None:
                    print("%5d %4s  no figures (the window never started)" % (n, mode),
                          flush=True)
                    failed_modes.add(mode)
                    continue
                judge(s)
                s["rep"] = rep
                got[mode] = s
                if not s["pass"]:
                    failed_modes.add(mode)
            for mode in order:
                s = got.get(mode)
                if not s:
                    continue
                e = got.get("echo")
                if mode != "echo" and e and e["cpu_call"]:
                    s["ratio"] = s["cpu_call"] / e["cpu_call"]
                print(fmt(s), flush=True)
                results.append(s)
            if all(m in failed_modes for m in modes) and not args.no_stop:
                break

    print("\nsummary (daemon on one core; knee: highest step with it and every step below "
          "passing: 0 failed, 0 lost, CPU <= %.0f%%):" % MAX_CPU)
    for mode in modes:
        for rep in range(args.repeat):
            rs = [s for s in results if s["mode"] == mode and s["rep"] == rep]
            knee = None
            for s in rs:
                if not s["pass"]:
                    break
                knee = s
            tag = "%-4s%s" % (mode, " #%d" % (rep + 1) if args.repeat > 1 else "")
            if not knee:
                print("  %s: no step passed" % tag)
                continue
            print("  %s: knee %s calls, CPU %.1f%% (%.4f%% per call, %.0f calls per core at 80%%), "
                  "RSS %.1f KB per call%s%s" %
                  (tag, knee["n"], knee["srv_cpu"], knee["cpu_call"],
                   80.0 / knee["cpu_call"] if knee["cpu_call"] else 0, knee["rss_call"],
                   ", ratio to echo %.2f" % knee["ratio"] if knee.get("ratio") else "",
                   " (the top step passed: the ceiling is above it)" if knee is rs[-1] else ""))
    print("\ngoals (issue 9), bridged calls, per repeat:")
    for mode in [m for m in modes if m != "echo"]:
        for rep in range(args.repeat):
            rs = [s for s in results if s["mode"] == mode and s["rep"] == rep]
            if not rs:
                continue
            knee = None
            for s in rs:
                if not s["pass"]:
                    break
                knee = s
            at = [s for s in rs if int(s["n"]) == 1000]
            ref = at[0] if at else knee or rs[0]
            tag = "%-4s%s" % (mode, " #%d" % (rep + 1) if args.repeat > 1 else "")
            print("  %s: >= 1,000 calls at <= 80%% with 0 loss: %s (knee %s); at %s calls: "
                  "a2w p99 %s ms, w2r+ p99 %s ms (<= 2 ms: %s); RSS %.1f KB per call (< 64: %s); "
                  "CPU ratio %s (<= 1.6: %s)" % (
                      tag, "met" if knee and int(knee["n"]) >= 1000 else "NOT met",
                      knee["n"] if knee else "none", ref["n"], ref.get("a2w_p99_ms", "-"),
                      ref.get("w2r_add_p99_ms", "-"),
                      "met" if max(float(ref.get("a2w_p99_ms", 99)),
                                   float(ref.get("w2r_add_p99_ms", 99))) <= 2.0 else "NOT met",
                      ref["rss_call"], "met" if ref["rss_call"] < 64 else "NOT met",
                      "%.2f" % ref["ratio"] if ref.get("ratio") else "-",
                      "met" if ref.get("ratio") and ref["ratio"] <= 1.6 else "NOT met"))
    if any(s["sat"] for s in results):
        print("  note: the generator saturated core 0 in some block (lgCPU >= 90% or missed "
              "frames): figures there are a lower bound")
    load = calls.machine_load(0.5)
    print("machine load after the run: %s" % ", ".join(
        "core%s %.0f%%" % kv for kv in sorted(load.items())))
    print("runtime %.0f s" % (time.monotonic() - t_start))
    if args.keep:
        print("files kept in %s" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

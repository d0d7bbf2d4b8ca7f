#!/usr/bin/python3
"""bench/calls: concurrent inbound calls through the builtin echo agent with RTP both ways,
the daemon pinned to one core. Prints figures; asserts nothing about speed.

    make && make loadgen && /usr/bin/python3 bench/calls/run.py
        [--steps 100:10,250:10,500:10,1000:30,1500:30,2000:60,2500:60,3000:60] [--cps 200]
        [--conns 1] [--mode echo|answer|outbound] [--calibrate] [--keep] [--no-stop]
        [--api-conns 4] [--setup-calls 1000] [--setup-cps 5000]   (outbound mode)

Method (research/performance.md): `trunkline serve` runs on core 1 (`taskset -c 1`) with a
fresh data dir in /tmp, RTP ports 10000-29999, raised ulimit -n and the admission caps raised
out of the way (max_calls, per workspace, INVITE rate); a number is imported, assigned to
`echo`, with an inbound trunk over TCP and media_encryption disabled (plain RTP). build/loadgen
runs on core 0: it places the calls over one TCP connection (--conns), streams 20 ms PCMU
frames for every call from one clock and checks the echo (frame numbers written into the
payload must come back within 300 ms; see bench/loadgen/loadgen.c). Steps add calls up to N
at --cps; each step is measured over a window of HOLD s that starts once every call of the
step is answered. Over each window this script samples the daemon's CPU (utime+stime from
/proc/PID/stat over wall time) and its RSS (VmRSS at the end of the window).

A step passes with 0 failed calls, 0 lost echo frames, the daemon's outgoing jitter p99
<= 5 ms (|inter-arrival - 20 ms| of consecutive RTP packets, from kernel receive timestamps)
and daemon CPU <= 80 %. The knee is the highest step such that it and every step below it
pass; CPU % per call and RSS per call (VmRSS over the idle daemon's, divided by the calls)
are given at the knee. The ramp stops at the first failing step. lgCPU >= 90 % (or missed
ticks) means the generator saturated core 0: figures of that step are then a lower bound.

--mode answer: signalling only, against sip_test_policy=answer (no media, no import).

--mode outbound: the same daemon takes the steps inbound (as in echo mode), then places them
itself: loadgen --outbound POSTs /v1/calls (from the number to +49155<index>, --api-conns
keep-alive connections, one request in flight on each) and is the carrier (the UAS): the
number's outbound trunk is "carrier.bench", which loadgen also serves as DNS (--dns, on core
0, in C: a lookup costs the daemon what a real one does, and the server keeps up with any
rate) with an SRV record to its SIP/TCP port; loadgen answers each INVITE with 200 at once,
streams and checks RTP as for inbound calls, and hangs up with its own BYE. The daemon's
SIP transaction caps are raised too (a 2xx-answered INVITE's server transaction lives 32 s,
so a burst of 2000 inbound setups would otherwise have its BYEs refused with 503). Both directions are judged alike; per step the daemon's CPU per call is printed for
both and their ratio out/in, against the goal of outbound within 10 % of inbound (reported,
not asserted). "P>200" of outbound steps is the POST's send() -> our 200 OK's send(): the
call set up as the callee sees it. Then a setup phase without RTP: --setup-calls calls asked
at --setup-cps, inbound then outbound, held 5 s: the setup rate reached (calls over the time
from the first placement to the last answer: the 200 inbound, the daemon's ACK outbound),
failed calls, INVITE->200 and POST->200 OK p50/p99 (and POST->201, POST->INVITE,
POST->ACK). Between phases the script waits (with a deadline) for the daemon's CPU to go
quiet, so one phase's teardown does not weigh on the next.
--calibrate: first runs loadgen --self-test (its echo child pinned to core 1) for the same
steps with 5 s windows: what a minimal C echo and the generator cost on this machine, and
the jitter floor of its timers.

core1 = the whole of core 1 busy (/proc/stat, incl. softirq) over the window. On loopback a
datagram is delivered into the receiving socket by the sender's kernel path, so the daemon
pays for the generator's receives and vice versa; softirq time is not in /proc/PID/stat.
srvCPU (the process's own time) is what the knee uses; core1 shows what that leaves out.

Loopback only; every wait has a deadline; the generator stops by itself.
"""
import argparse
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("TRUNKLINE_BIN", os.path.join(ROOT, "build", "trunkline"))
# --mode answer needs sip_test_policy, which only the test build has (make testbuild)
TEST_BIN = os.environ.get("TRUNKLINE_TEST_BIN", BIN + "-test")
LOADGEN = os.environ.get("TRUNKLINE_LOADGEN", os.path.join(ROOT, "build", "loadgen"))
SERVER_CPU = "1"
GEN_CPU = "0"
# the generator runs SCHED_FIFO (when allowed) so that other work on core 0 cannot delay its
# clock: a late tick reaches the daemon as input jitter and would show in its output
RT = ["chrt", "-f", "10"] if shutil.which("chrt") and os.geteuid() == 0 else []
# the daemon at nice -20 (when allowed): on a shared machine, other work on core 1 then takes
# little from it; on an idle machine this changes nothing. With autogroup scheduling
# (/proc/sys/kernel/sched_autogroup_enabled, Debian's default) a nice value counts only
# against tasks of the same session: the daemon gets a session of its own (setsid) and that
# autogroup the same nice, else every busy session of other users weighs as much as ours.
NICE = ["nice", "-n", "-20"] if os.geteuid() == 0 else []


def daemon_preexec():
    raise_nofile()
    if NICE:
        os.setsid()


def renice_autogroup(pid):
    """The autogroup of the daemon's own session at nice -20 (see NICE); False if it cannot."""
    if not NICE:
        return False
    try:
        with open("/proc/%d/autogroup" % pid, "w") as f:
            f.write("-20")
        return True
    except OSError:
        return False
HZ = os.sysconf("SC_CLK_TCK")
NUMBER = "+493099900000"
MAX_JITTER_MS = 5.0
MAX_CPU = 80.0
DEFAULT_STEPS = "100:10,250:10,500:10,1000:30,1500:30,2000:60,2500:60,3000:60"
OUTBOUND_STEPS = "250:20,500:20,1000:30,1500:30"
CARRIER = "carrier.bench"
GOAL_RATIO = 0.10  # outbound CPU per call within 10 % of inbound: reported, not asserted


def free_port():
    """A port free for both TCP and UDP (SIP uses the same number for both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def proc_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
    except FileNotFoundError:
        pass
    return 0


def core_busy():
    res = {}
    with open("/proc/stat") as f:
        for ln in f:
            c = ln.split()
            if c[0].startswith("cpu") and c[0] != "cpu":
                v = [int(x) for x in c[1:9]]
                res[c[0][3:]] = (sum(v) - v[3] - v[4], sum(v))
    return res


def machine_load(seconds=1.0):
    a = core_busy()
    time.sleep(seconds)  # a sample of the machine's load, not a synchronisation
    b = core_busy()
    return {c: 100.0 * (b[c][0] - a[c][0]) / max(1, b[c][1] - a[c][1]) for c in b}


class Daemon:
    def __init__(self, tmp, mode, extra_env=None):
        self.dir = os.path.join(tmp, "daemon")
        os.makedirs(self.dir)
        self.sip_port = free_port()
        self.api_port = free_port()
        self.log = os.path.join(self.dir, "daemon.log")
        env = dict(os.environ)
        env.update({
            "TRUNKLINE_DATA_DIR": os.path.join(self.dir, "var"),
            "TRUNKLINE_API_LISTEN": "127.0.0.1:%d" % self.api_port,
            "TRUNKLINE_LOG_FILE": self.log,
            "TRUNKLINE_SIP_LISTEN": "127.0.0.1",
            "TRUNKLINE_SIP_TCP_PORT": str(self.sip_port),
            "TRUNKLINE_SIP_TLS_PORT": str(free_port()),
            "TRUNKLINE_PUBLIC_HOST": "bench.test",
            "TRUNKLINE_RTP_PORT_MIN": "10000",
            "TRUNKLINE_RTP_PORT_MAX": "29999",
            "TRUNKLINE_MAX_CALLS": "20000",
            "TRUNKLINE_MAX_CALLS_PER_WORKSPACE": "20000",
            "TRUNKLINE_SIP_INVITE_RATE": "10000",
            "TRUNKLINE_SIP_INVITE_RATE_GLOBAL": "10000",
            "TRUNKLINE_SIP_MAX_CONNECTIONS": "1024",
        })
        if mode == "answer":
            env["TRUNKLINE_SIP_TEST_POLICY"] = "answer"
        env.update(extra_env or {})
        self.out = open(os.path.join(self.dir, "daemon.out"), "wb")
        binary = TEST_BIN if "TRUNKLINE_SIP_TEST_POLICY" in env else BIN
        self.proc = subprocess.Popen(NICE + ["taskset", "-c", SERVER_CPU, binary, "serve"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     cwd=self.dir, preexec_fn=daemon_preexec)
        self.autogroup_niced = renice_autogroup(self.proc.pid)
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + 30
        buf = b""
        while b"trunkline is running" not in buf:
            left = deadline - time.monotonic()
            r = select.select([fd], [], [], max(left, 0))[0] if left > 0 else []
            if not r:
                self.proc.kill()
                raise RuntimeError("trunkline not ready in 30 s: %r" % buf[-2000:])
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError("trunkline exited %s: %r" % (self.proc.wait(), buf[-2000:]))
            buf += chunk
        self.out.write(buf)
        text = buf.decode(errors="replace")
        m = re.search(r"workspace admin token:\s+(\S+)", text)
        self.token = m.group(1) if m else None

        def drain():
            while True:
                try:
                    c = os.read(fd, 65536)
                except OSError:
                    return
                if not c:
                    return
                self.out.write(c)
        threading.Thread(target=drain, daemon=True).start()

    def api(self, method, path, json=None):
        return requests.request(method, "http://127.0.0.1:%d%s" % (self.api_port, path),
                                json=json, timeout=30,
                                headers={"Authorization": "Bearer %s" % self.token})

    def import_echo_number(self, outbound=False):
        r = self.api("GET", "/v1/agents")
        r.raise_for_status()
        echo = [a for a in r.json()["data"] if a["name"] == "echo"][0]["id"]
        body = {"number": NUMBER, "label": "bench/calls", "agent_id": echo,
                "inbound_trunk": {"transport": "tcp", "media_encryption": "disabled",
                                  "allowed_addresses": ["127.0.0.1"]},
                "outbound_trunk": {"address": "sip.example.com", "transport": "tls",
                                   "media_encryption": "required"}}
        if outbound:
            body["outbound_trunk"] = {"address": CARRIER, "transport": "tcp",
                                      "media_encryption": "disabled"}
        r = self.api("POST", "/v1/phone-numbers", json=body)
        if r.status_code != 201:
            raise RuntimeError("import failed: %s %s" % (r.status_code, r.text))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def log_tail(self, n=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except FileNotFoundError:
            return ""


def kv(line):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}


HDR = ("%6s %6s %6s %6s %5s %7s %7s %13s %6s %6s %8s %8s %9s %6s  %s" %
       ("calls", "up", "failed", "lost", "late", "jitp99", "jitmax", "i200 p50/p99", "srvCPU",
        "core1", "CPU/call", "RSS MB", "RSS/call", "lgCPU", "verdict"))


def run_loadgen(args, cmd, daemon, rss_idle, deadline, out_dir, stop_on_fail=True, tag=""):
    """Runs loadgen, samples the daemon over each window; returns the step results."""
    log = open(os.path.join(out_dir, "loadgen%s.out" % tag), "w")
    err = open(os.path.join(out_dir, "loadgen%s.err" % tag), "wb")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, preexec_fn=raise_nofile)
    fd = p.stdout.fileno()
    buf = b""
    steps = []
    w0 = None
    stopped = False
    done = None
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                print("  !! loadgen past the deadline: killed", flush=True)
                p.kill()
                break
            r = select.select([fd], [], [], min(left, 1.0))[0]
            if not r:
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
                log.flush()
                if line.startswith("WINDOW-START"):
                    pid = daemon.proc.pid if daemon else None
                    w0 = (time.monotonic(), proc_ticks(pid) if pid else 0, core_busy())
                elif line.startswith("STEP"):
                    s = kv(line)
                    t1 = time.monotonic()
                    if daemon and w0:
                        s["srv_cpu"] = (proc_ticks(daemon.proc.pid) - w0[1]) / HZ / (t1 - w0[0]) * 100
                        s["rss"] = rss_kb(daemon.proc.pid)
                    else:
                        s["srv_cpu"] = float(s.get("echo_cpu", 0.0))
                        s["rss"] = 0
                    s["rss_idle"] = rss_idle
                    cb = core_busy()
                    s["core1"] = (100.0 * (cb[SERVER_CPU][0] - w0[2][SERVER_CPU][0]) /
                                  max(1, cb[SERVER_CPU][1] - w0[2][SERVER_CPU][1])) if w0 else 0
                    judge(s, args)
                    steps.append(s)
                    print(fmt(s), flush=True)
                    if stop_on_fail and not s["pass"] and not stopped and p.poll() is None:
                        stopped = True
                        p.send_signal(signal.SIGINT)  # stop the ramp: BYE all, exit
                elif line.startswith(("DONE", "ABORT", "TEARDOWN")):
                    if line.startswith(("DONE", "ABORT")):
                        done = line
                    print("  " + line, flush=True)
        try:
            p.wait(max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return steps, done, p.returncode


def judge(s, args):
    n = int(s["n"])
    why = []
    failed = int(s["failed"])
    if failed:
        why.append("%d failed calls" % failed)
    if not args.no_rtp:
        if int(s["lost"]):
            why.append("%s lost frames" % s["lost"])
        if float(s["jit_p99_ms"]) > MAX_JITTER_MS:
            why.append("jitter p99 %s ms" % s["jit_p99_ms"])
    if s["srv_cpu"] > MAX_CPU:
        why.append("CPU %.0f%%" % s["srv_cpu"])
    if "partial" in s:
        why.append("window cut short")
    s["why"] = ", ".join(why)
    s["pass"] = not why
    s["sat"] = float(s["lg_cpu"]) >= 90 or int(s["overruns"]) > 0
    s["cpu_call"] = s["srv_cpu"] / n
    s["rss_call"] = (s["rss"] - s["rss_idle"]) / n if s["rss"] else 0.0


def fmt(s):
    return ("%6s %6s %6s %6s %5s %7s %7s %6s/%-6s %5.1f%% %5.1f%% %7.4f%% %8.1f %6.1f KB %5s%%  %s" %
            (s["n"], s["up"], s["failed"], s["lost"], s["late"], s["jit_p99_ms"],
             s["jit_max_ms"], s["i200_p50_ms"], s["i200_p99_ms"], s["srv_cpu"], s["core1"],
             s["cpu_call"],
             s["rss"] / 1024.0, s["rss_call"], s["lg_cpu"],
             ("pass" if s["pass"] else "STOP: " + s["why"]) +
             (" [generator saturated: lower bound]" if s["sat"] else "")))


def summary(title, steps, cpu_label, lat_label="INVITE->200"):
    knee = None
    for s in steps:
        if not s["pass"]:
            break
        knee = s
    print("\n%s" % title)
    if not knee:
        print("  no step passed")
        return
    print("  knee: %s concurrent calls held %s s (0 failed, 0 lost, jitter p99 %s ms <= %.0f, "
          "%s %.1f%% <= %.0f%%)" % (knee["n"], knee["hold_s"], knee["jit_p99_ms"], MAX_JITTER_MS,
                                    cpu_label, knee["srv_cpu"], MAX_CPU))
    print("  at the knee: CPU %.4f%% of a core per call (%.0f calls per core at 100%%), "
          "RSS %.1f KB per call (%.1f MB over %.1f MB idle), %s p50 %s ms p99 %s ms"
          % (knee["cpu_call"], 100.0 / knee["cpu_call"] if knee["cpu_call"] else 0,
             knee["rss_call"], (knee["rss"] - knee["rss_idle"]) / 1024.0,
             knee["rss_idle"] / 1024.0, lat_label, knee["i200_p50_ms"], knee["i200_p99_ms"]))
    if steps[-1] is knee:
        print("  note: the top step passed: the ceiling is above it (add steps)")
    if any(s["sat"] for s in steps):
        print("  note: the generator saturated core 0 in some step (lgCPU >= 90%% or missed "
              "ticks): figures there are a lower bound")


def wait_quiet(pid, deadline_s=15.0, sample_s=0.2, max_cpu=2.0):
    """Waits until the daemon uses under max_cpu % of a core over a sample (its work of the
    previous phase done: records written, sockets closed), or the deadline; returns the
    seconds waited, None if it never went quiet. Each sample is a measurement, not a wait
    for an event."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline_s:
        a, ta = proc_ticks(pid), time.monotonic()
        time.sleep(sample_s)  # the measuring interval of one CPU sample
        used = (proc_ticks(pid) - a) / HZ / (time.monotonic() - ta) * 100
        if used < max_cpu:
            return time.monotonic() - t0
    return None


def run_outbound(args, tmp, budget):
    """Inbound steps, then the same steps placed by the daemon, on one daemon; then the setup
    phase. Prints the tables and the CPU-per-call ratio."""
    lg_port = free_port()
    dns_port = free_port()
    env = {"TRUNKLINE_SIP_DNS_SERVERS": "127.0.0.1:%d" % dns_port,
           "TRUNKLINE_OUTBOUND_CALLS_PER_WORKSPACE": "20000",
           "TRUNKLINE_OUTBOUND_CALLS_PER_MINUTE": "10000000",
           "TRUNKLINE_SIP_MAX_TRANSACTIONS": "100000",
           "TRUNKLINE_SIP_MAX_TRANSACTIONS_PER_SOURCE": "100000"}
    d = None
    results = {}
    try:
        d = Daemon(tmp, "echo", env)
        d.import_echo_number(outbound=True)
        wait_quiet(d.proc.pid)  # the daemon's start-up work done before RSS
        rss_idle = rss_kb(d.proc.pid)
        inbound = RT + ["taskset", "-c", GEN_CPU, LOADGEN, "--sip", "127.0.0.1:%d" % d.sip_port,
                        "--number", NUMBER, "--conns", str(args.conns)]
        outbound = RT + ["taskset", "-c", GEN_CPU, LOADGEN, "--outbound", "--listen",
                         str(lg_port), "--dns", str(dns_port), "--dns-name", CARRIER, "--api",
                         "127.0.0.1:%d" % d.api_port, "--token", d.token, "--number", NUMBER,
                         "--api-conns", str(args.api_conns)]
        ramp = ["--steps", args.steps, "--hold", str(args.hold), "--cps", str(args.cps)]
        if not args.no_stop:
            ramp.append("--stop-on-break")
        print("bench/calls (outbound): trunkline pid %d on core %s (SIP tcp :%d, idle RSS "
              "%.1f MB), loadgen on core %s (carrier SIP tcp :%d, DNS :%d); temp %s" %
              (d.proc.pid, SERVER_CPU, d.sip_port, rss_idle / 1024.0, GEN_CPU, lg_port, dns_port,
               tmp))
        phases = [("inbound", inbound + ramp, False), ("outbound", outbound + ramp, False)]
        if args.setup_calls:
            st = ["--steps", "%d:5" % args.setup_calls, "--cps", str(args.setup_cps),
                  "--no-rtp", "--setup-timeout", "30"]
            phases += [("inbound setup", inbound + st, True),
                       ("outbound setup", outbound + st, True)]
        for name, cmd, no_rtp in phases:
            if not d.alive():
                break
            a = argparse.Namespace(**vars(args))
            a.no_rtp = no_rtp
            print("\n%s: %s" % (name, " ".join(cmd)))
            print(HDR.replace("i200 p50/p99", "i200 p50/p99" if name.startswith("inbound")
                              else "P>200 p50/p99"))
            steps, done, rc = run_loadgen(a, cmd, d, rss_idle, time.monotonic() + budget, tmp,
                                          stop_on_fail=not args.no_stop,
                                          tag="-" + name.replace(" ", "-"))
            results[name] = steps
            if done and int(kv(done).get("bye_refused", 0)):
                print("  note: %s BYEs refused: those calls lived on in the daemon"
                      % kv(done)["bye_refused"])
            if d.alive() and wait_quiet(d.proc.pid) is None:
                print("  note: the daemon did not go quiet (< 2 %% CPU) within 15 s after %s"
                      % name)
        if not d.alive():
            print("  !! trunkline DIED (exit %s); log tail:\n%s" % (d.proc.returncode,
                                                                   d.log_tail()))
    finally:
        code = d.stop() if d else None
    print("\ntrunkline exit code after SIGTERM: %s" % code)
    ins = {s["n"]: s for s in results.get("inbound", [])}
    outs = {s["n"]: s for s in results.get("outbound", [])}
    print("\nCPU per call, same daemon, same steps (echo, RTP both ways); goal: outbound "
          "within %.0f %% of inbound (reported, not asserted):" % (GOAL_RATIO * 100))
    print("%6s %12s %12s %8s %8s  %s" % ("calls", "in CPU/call", "out CPU/call", "out/in",
                                         "goal", "both pass"))
    for n in [k for k in ins if k in outs]:
        i, o = ins[n], outs[n]
        ratio = o["cpu_call"] / i["cpu_call"] if i["cpu_call"] else 0
        print("%6s %11.4f%% %11.4f%% %8.3f %8s  %s" % (
            n, i["cpu_call"], o["cpu_call"], ratio,
            "met" if i["cpu_call"] and abs(ratio - 1) <= GOAL_RATIO else "missed",
            "yes" if i["pass"] and o["pass"] else "no"))
    for name in ("inbound setup", "outbound setup"):
        for s_ in results.get(name, []):
            line = ("%s: %s calls, %s failed, set up at %s/s (asked %d/s) in %s s; " % (
                name, s_["n"], s_["failed"], s_.get("setup_cps"), args.setup_cps,
                s_.get("setup_s")))
            if name.startswith("inbound"):
                line += "INVITE->200 p50 %s ms p99 %s ms" % (s_["i200_p50_ms"], s_["i200_p99_ms"])
            else:
                line += ("POST->200 OK p50 %s ms p99 %s ms (POST->201 p50 %s p99 %s, "
                         "POST->INVITE p50 %s p99 %s, POST->ACK p50 %s p99 %s ms)" % (
                             s_["i200_p50_ms"], s_["i200_p99_ms"], s_.get("post_p50_ms"),
                             s_.get("post_p99_ms"), s_.get("inv_p50_ms"), s_.get("inv_p99_ms"),
                             s_.get("ack_p50_ms"), s_.get("ack_p99_ms")))
            print(line)
    summary("summary (inbound):", results.get("inbound", []), "daemon CPU")
    summary("summary (outbound):", results.get("outbound", []), "daemon CPU", "POST->200 OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", default=None,
                    help="N[:HOLD_S],... concurrent calls per step (default %s; outbound mode: "
                         "%s)" % (DEFAULT_STEPS, OUTBOUND_STEPS))
    ap.add_argument("--hold", type=int, default=60, help="hold of steps without :HOLD")
    ap.add_argument("--cps", type=int, default=200, help="call setup rate while ramping")
    ap.add_argument("--conns", type=int, default=1, help="SIP TCP connections")
    ap.add_argument("--mode", choices=["echo", "answer", "outbound"], default="echo",
                    help="echo: real calls to echo; answer: sip_test_policy=answer, no media; "
                         "outbound: echo calls inbound, then placed by the daemon (POST /v1/calls)")
    ap.add_argument("--api-conns", type=int, default=4,
                    help="outbound: HTTP connections loadgen POSTs over")
    ap.add_argument("--setup-calls", type=int, default=1000,
                    help="outbound: calls of the setup phase (0: no setup phase)")
    ap.add_argument("--setup-cps", type=int, default=5000,
                    help="outbound: placement rate asked of the setup phase (at most 5000; "
                         "a rate reached below it is what the daemon takes)")
    ap.add_argument("--calibrate", action="store_true",
                    help="first run loadgen --self-test (echo child on core 1), 5 s steps")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--no-stop", action="store_true",
                    help="run every step even after one fails (A/B CPU comparisons on a noisy "
                         "machine); the knee is still the last step of the passing prefix")
    args = ap.parse_args()
    if args.steps is None:
        args.steps = OUTBOUND_STEPS if args.mode == "outbound" else DEFAULT_STEPS
    args.no_rtp = args.mode == "answer"
    if os.cpu_count() < 2:
        sys.exit("needs 2 cores (daemon on core 1, loadgen on core 0)")
    for f in (BIN, LOADGEN):
        if not os.access(f, os.X_OK):
            sys.exit("%s missing: make && make loadgen" % f)
    if not shutil.which("taskset"):
        sys.exit("taskset not found")
    raise_nofile()

    load = machine_load()
    print("machine load before the run: %s%s" % (
        ", ".join("core%s %.0f%%" % kv_ for kv_ in sorted(load.items())),
        "  ** NOT IDLE: figures are disturbed by other work **" if max(load.values()) > 10
        else ""))
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="bench-calls-")
    n_steps = len(args.steps.split(","))
    budget = 60 + sum(int(x.split(":")[1]) if ":" in x else args.hold
                      for x in args.steps.split(",")) + \
        sum(int(x.split(":")[0]) for x in args.steps.split(",")) // args.cps + 20 * n_steps

    if args.calibrate:
        cal_steps = ",".join("%s:5" % x.split(":")[0] for x in args.steps.split(","))
        cmd = RT + ["taskset", "-c", GEN_CPU, LOADGEN, "--self-test", "--echo-cpu", SERVER_CPU,
               "--steps", cal_steps, "--cps", "2000", "--settle-ms", "500"]
        print("calibration: %s" % " ".join(cmd))
        print(HDR.replace("srvCPU", "echCPU"))
        os.makedirs(os.path.join(tmp, "calibrate"))
        steps, done, _ = run_loadgen(args, cmd, None, 0, time.monotonic() + 300,
                                     os.path.join(tmp, "calibrate"), stop_on_fail=False)
        summary("calibration (minimal C echo in a child process on core %s):" % SERVER_CPU,
                steps, "echo CPU")
        print()

    if args.mode == "outbound":
        run_outbound(args, tmp, budget)
        load = machine_load(0.5)
        print("machine load after the run: %s" % ", ".join(
            "core%s %.0f%%" % kv_ for kv_ in sorted(load.items())))
        print("runtime %.0f s" % (time.monotonic() - t_start))
        if args.keep:
            print("files kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        return

    d = None
    steps = []
    done = None
    rc = None
    try:
        d = Daemon(tmp, args.mode)
        if args.mode == "echo":
            d.import_echo_number()
        time.sleep(1.0)  # let the daemon's start-up work (store, recorder) settle before RSS
        rss_idle = rss_kb(d.proc.pid)
        cmd = RT + ["taskset", "-c", GEN_CPU, LOADGEN, "--sip", "127.0.0.1:%d" % d.sip_port,
               "--number", NUMBER, "--steps", args.steps, "--hold", str(args.hold),
               "--cps", str(args.cps), "--conns", str(args.conns)]
        if not args.no_stop:
            cmd.append("--stop-on-break")
        if args.no_rtp:
            cmd.append("--no-rtp")
        print("bench/calls (%s): trunkline pid %d on core %s (SIP tcp :%d, idle RSS %.1f MB), "
              "loadgen on core %s; temp %s" % (args.mode, d.proc.pid, SERVER_CPU, d.sip_port,
                                              rss_idle / 1024.0, GEN_CPU, tmp))
        print("loadgen: %s" % " ".join(cmd))
        print(HDR)
        steps, done, rc = run_loadgen(args, cmd, d, rss_idle, time.monotonic() + budget, tmp,
                                      stop_on_fail=not args.no_stop)
        if not d.alive():
            print("  !! trunkline DIED (exit %s); log tail:\n%s" % (d.proc.returncode,
                                                                   d.log_tail()))
    finally:
        code = d.stop() if d else None
    print("\ntrunkline exit code after SIGTERM: %s; loadgen exit %s" % (code, rc))
    summary("summary (daemon on one core, %s mode):" % args.mode, steps, "daemon CPU")
    load = machine_load(0.5)
    print("machine load after the run: %s" % ", ".join(
        "core%s %.0f%%" % kv_ for kv_ in sorted(load.items())))
    print("runtime %.0f s" % (time.monotonic() - t_start))
    if args.keep or code not in (0, None) or not steps:
        print("files kept in %s" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

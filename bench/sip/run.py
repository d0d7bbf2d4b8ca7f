#!/usr/bin/python3
"""bench/sip: short calls per second (INVITE, [100], [180], 200, ACK, BYE, 200; no media)
against `trunkline serve` (sip_test_policy=answer) and, in the same run with the same
SIPp load, against Kamailio answering every request but ACK statelessly with 200.
Prints figures; asserts nothing about speed.

    make && /usr/bin/python3 bench/sip/run.py [--rates 500,1000,2000,3000,5000,7000,10000]
          [--seconds 7] [--per-sipp 1000] [--transports udp,tcp] [--no-kamailio]

Method (research/performance.md): the server under test is pinned to core 1
(`taskset -c 1`, Kamailio's whole process tree too), the SIPp instances to core 0, one
instance per --per-sipp cps of the step. trunkline is restarted for each transport's ramp
(no leftovers of the last one). Each step runs --seconds; it passes when every call
succeeded and SIPp counted no retransmission (Retransmissions(C) of its -trace_stat file,
which also counts retransmitted responses it received). A ramp stops at the first step that
does not pass or whose achieved rate is < 90 % of the target.

Columns: cps = successful calls / SIPp's elapsed time; stray = SIPp's dead-call +
out-of-call messages; drops = datagrams the server's UDP socket dropped (/proc/net/udp),
sdrops = the same on SIPp's sockets; i200p99 = p99/max INVITE->200 in ms from SIPp's
-trace_rtt (1 ms resolution); srvCPU = server utime+stime (/proc/PID/stat, all its
processes) over the step's wall time; sipCPU = the SIPp processes (rusage); sipCPU >= 90 %
flags the generator as saturated: rates are then a lower bound. (Per-core /proc/stat busy
shares are not shown: on the Firecracker VM this was written on they read below the
per-process figures.) The run starts by printing the machine's load from /proc/stat:
figures on a machine busy with other work are noisy.

Everything is on loopback; the run is bounded (each step has a hard deadline).
"""
import argparse
import glob
import math
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# sip_test_policy=answer exists in the test build only (make testbuild)
BIN = os.environ.get("TRUNKLINE_TEST_BIN", os.path.join(ROOT, "build", "trunkline-test"))
SCENARIO = os.path.join(HERE, "uac_short.xml")
SERVER_CPU = "1"
SIPP_CPU = "0"
HZ = os.sysconf("SC_CLK_TCK")

KAMAILIO_CFG = """#!KAMAILIO
# written by bench/sip/run.py: stateless 200 to every request but ACK
debug=1
log_stderror=yes
children={children}
tcp_children={children}
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
mpath="{mpath}"
loadmodule "sl.so"
request_route {{
    if (method == "ACK") exit;
    sl_send_reply("200", "OK");
}}
"""


def free_port(kind=socket.SOCK_STREAM):
    """A port free for both UDP and TCP (SIP uses the same number for both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        try:
            with socket.socket(socket.AF_INET, other) as s:
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
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0


def core_busy():
    """{core: (busy jiffies, total jiffies)} from /proc/stat (busy includes irq/softirq)."""
    res = {}
    with open("/proc/stat") as f:
        for ln in f:
            c = ln.split()
            if c[0].startswith("cpu") and c[0] != "cpu":
                v = [int(x) for x in c[1:9]]
                idle = v[3] + v[4]  # idle + iowait
                res[c[0][3:]] = (sum(v) - idle, sum(v))
    return res


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(d))
    return out


def udp_drops(ports):
    """{port: drops} for the UDP sockets bound to 127.0.0.1:port."""
    want = {"0100007F:%04X" % p: p for p in ports}
    res = {}
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            c = line.split()
            if c[1] in want:
                res[want[c[1]]] = res.get(want[c[1]], 0) + int(c[-1])
    return res


def sip_options_ok(port, transport, deadline):
    """True once the server answers OPTIONS with a final response (poll with a deadline)."""
    msg = ("OPTIONS sip:probe@127.0.0.1:{p} SIP/2.0\r\n"
           "Via: SIP/2.0/{tp} 127.0.0.1:9;branch=z9hG4bKbench{n};rport\r\n"
           "Max-Forwards: 70\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:probe@127.0.0.1>\r\n"
           "Call-ID: bench{n}@b\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    n = 0
    while time.monotonic() < deadline:
        n += 1
        data = msg.format(p=port, tp=transport.upper(), n=n).encode()
        try:
            if transport == "udp":
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.settimeout(0.5)
                    s.sendto(data, ("127.0.0.1", port))
                    if s.recv(65535).startswith(b"SIP/2.0 200"):
                        return True
            else:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(data)
                    if s.recv(65535).startswith(b"SIP/2.0 200"):
                        return True
        except OSError:
            time.sleep(0.1)  # not up yet: poll again until the deadline
    return False


class Trunkline:
    name = "trunkline"

    def __init__(self, tmp, sub="trunkline"):
        self.dir = os.path.join(tmp, sub)
        os.makedirs(self.dir)
        self.port = free_port()
        self.log = os.path.join(self.dir, "daemon.log")
        env = dict(os.environ)
        env.update({
            "TRUNKLINE_DATA_DIR": os.path.join(self.dir, "var"),
            "TRUNKLINE_API_LISTEN": "127.0.0.1:%d" % free_port(),
            "TRUNKLINE_LOG_FILE": self.log,
            "TRUNKLINE_SIP_LISTEN": "127.0.0.1",
            "TRUNKLINE_SIP_TCP_PORT": str(self.port),
            "TRUNKLINE_SIP_TLS_PORT": str(free_port()),
            "TRUNKLINE_SIP_TEST_POLICY": "answer",
            "TRUNKLINE_PUBLIC_HOST": "bench.test",
        })
        self.out = open(os.path.join(self.dir, "daemon.out"), "wb")
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, BIN, "serve"], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     cwd=self.dir, preexec_fn=raise_nofile)
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
        # keep draining its stdout so it never blocks on a full pipe
        import threading

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

    def pids(self):
        return [self.proc.pid]

    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def log_since(self, off):
        try:
            with open(self.log, "rb") as f:
                f.seek(off)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def evidence(self):
        lines = []
        rc = self.proc.poll()
        lines.append("trunkline: %s" % ("alive (pid %d)" % self.proc.pid if rc is None
                                          else "EXITED with %s" % rc))
        if rc is None and shutil.which("gdb"):
            g = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-nx",
                                "-ex", "thread apply all bt"],
                               capture_output=True, text=True, timeout=60)
            lines.append("gdb bt:\n" + g.stdout[-6000:])
        try:
            with open(self.log, errors="replace") as f:
                lines.append("log tail:\n" + "".join(f.readlines()[-30:]))
        except FileNotFoundError:
            pass
        return "\n".join(lines)


class Kamailio:
    name = "kamailio"

    def __init__(self, tmp, children):
        self.dir = os.path.join(tmp, "kamailio")
        os.makedirs(self.dir)
        self.port = free_port()
        mpath = next((p for p in glob.glob("/usr/lib/*/kamailio/modules/")), None)
        if not mpath:
            raise RuntimeError("kamailio modules not found (apt-get install kamailio)")
        cfg = os.path.join(self.dir, "kamailio.cfg")
        with open(cfg, "w") as f:
            f.write(KAMAILIO_CFG.format(port=self.port, mpath=mpath, children=children))
        self.logf = open(os.path.join(self.dir, "kamailio.log"), "wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, "kamailio", "-f", cfg, "-DD", "-E", "-m", "256",
             "-M", "16", "-w", self.dir, "-Y", self.dir, "-P", os.path.join(self.dir, "pid")],
            stdout=self.logf, stderr=subprocess.STDOUT, cwd=self.dir, preexec_fn=raise_nofile)
        deadline = time.monotonic() + 20
        if not (sip_options_ok(self.port, "udp", deadline) and
                sip_options_ok(self.port, "tcp", deadline)):
            self.stop()
            raise RuntimeError("kamailio not answering OPTIONS; see %s" % self.logf.name)

    def pids(self):
        return [self.proc.pid] + children_of(self.proc.pid)

    def log_size(self):
        return 0

    def log_since(self, off):
        return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def evidence(self):
        return "kamailio: %s" % ("alive" if self.alive() else "EXITED %s" % self.proc.poll())


def last_stats(path):
    with open(path) as f:
        lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    head = lines[0].split(";")
    vals = lines[-1].split(";")
    return dict(zip(head, vals))


def run_step(server, transport, rate, seconds, per_sipp, tmp, step_no):
    k = max(1, math.ceil(rate / per_sipp))
    rates = [rate // k + (1 if i < rate % k else 0) for i in range(k)]
    sdir = os.path.join(tmp, "step%02d-%s-%s-%d" % (step_no, server.name, transport, rate))
    os.makedirs(sdir)
    ports = [free_port(socket.SOCK_DGRAM) for _ in range(k)]
    procs = []
    spids = server.pids()
    t0_ticks = sum(proc_ticks(p) for p in spids)
    drops0 = udp_drops([server.port]).get(server.port, 0)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cb0 = core_busy()
    log0 = server.log_size()
    t0 = time.monotonic()
    for i, (r, p) in enumerate(zip(rates, ports)):
        cmd = ["taskset", "-c", SIPP_CPU, "sipp", "-sf", SCENARIO,
               "-t", "u1" if transport == "udp" else "t1",
               "-i", "127.0.0.1", "-p", str(p), "127.0.0.1:%d" % server.port,
               "-r", str(r), "-rp", "1000", "-m", str(r * seconds),
               "-recv_timeout", "4000", "-timeout", "%ds" % (seconds + 25),
               "-buff_size", "4194304", "-max_recv_loops", "10000", "-max_sched_loops", "10000",
               "-nostdin", "-nd",
               "-trace_stat", "-stf", os.path.join(sdir, "stat%d.csv" % i), "-fd", "1",
               "-trace_rtt", "-rtt_freq", "200",
               "-trace_screen", "-screen_file", os.path.join(sdir, "screen%d.txt" % i)]
        procs.append(subprocess.Popen(cmd, cwd=sdir, stdout=subprocess.DEVNULL,
                                      stderr=open(os.path.join(sdir, "sipp%d.err" % i), "wb"),
                                      preexec_fn=raise_nofile))
    # wait for every SIPp with a hard deadline; sample SIPp's socket drops meanwhile
    deadline = t0 + seconds + 35
    sipp_drops = {}
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        for port, d in udp_drops(ports).items():
            sipp_drops[port] = max(sipp_drops.get(port, 0), d)
        time.sleep(0.2)  # sampling period of the drop counters, not a synchronisation
    wall = time.monotonic() - t0
    killed = 0
    for p in procs:
        if p.poll() is None:
            killed += 1
            p.kill()
        p.wait()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cb1 = core_busy()
    busy = {c: 100.0 * (cb1[c][0] - cb0[c][0]) / max(1, cb1[c][1] - cb0[c][1]) for c in cb1}
    srv_cpu = (sum(proc_ticks(p) for p in spids) - t0_ticks) / HZ / wall * 100
    sipp_cpu = ((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)) / wall * 100
    drops = udp_drops([server.port]).get(server.port, 0) - drops0

    res = {"server": server.name, "tp": transport, "rate": rate, "sipp": k, "wall": wall,
           "ok": 0, "failed": 0, "retrans": 0, "dead": 0, "ooc": 0, "elapsed": 0.0,
           "srv_cpu": srv_cpu, "sipp_cpu": sipp_cpu, "drops": drops,
           "sipp_drops": sum(sipp_drops.values()), "killed": killed, "missing": 0,
           "core_srv": busy.get(SERVER_CPU, 0.0), "core_sipp": busy.get(SIPP_CPU, 0.0)}
    for i in range(k):
        try:
            st = last_stats(os.path.join(sdir, "stat%d.csv" % i))
        except (FileNotFoundError, IndexError):
            res["missing"] += 1
            continue
        res["ok"] += int(st["SuccessfulCall(C)"])
        res["failed"] += int(st["FailedCall(C)"])
        res["retrans"] += int(st["Retransmissions(C)"])
        res["dead"] += int(st["DeadCallMsgs(C)"])
        res["ooc"] += int(st["OutOfCallMsgs(C)"])
        h, m, s = st["ElapsedTime(C)"].split(":")[:3]
        res["elapsed"] = max(res["elapsed"], int(h) * 3600 + int(m) * 60 + float(s))
    rtt = []
    for fn in glob.glob(os.path.join(sdir, "*_rtt.csv")):
        with open(fn) as f:
            for ln in f:
                c = ln.strip().split(";")
                if len(c) == 3 and c[2] == "1":
                    rtt.append(float(c[1]))
    rtt.sort()
    res["p99"] = rtt[int(len(rtt) * 0.99)] if rtt else float("nan")
    res["max"] = rtt[-1] if rtt else float("nan")
    want = rate * seconds
    res["lost"] = max(0, want - res["ok"] - res["failed"])
    closes = {}
    for ln in server.log_since(log0).splitlines():
        if "conn.close" in ln:
            m = ln.split('reason="', 1)
            why_c = m[1].rstrip('"') if len(m) > 1 else "?"
            closes[why_c] = closes.get(why_c, 0) + 1
    # achieved rate over the time the generator needed to place all calls
    res["cps"] = res["ok"] / res["elapsed"] if res["elapsed"] else 0.0
    why = []
    if res["failed"]:
        why.append("failed calls")
    if res["lost"]:
        why.append("%d calls never completed" % res["lost"])
    for why_c, n in closes.items():
        why.append("server closed %d TCP conn(s): %s" % (n, why_c))
    if res["retrans"]:
        why.append("retransmissions")
    if res["missing"] or killed:
        why.append("sipp stuck/missing stats")
    if res["cps"] < 0.9 * rate:
        why.append("achieved < 90% of target")
    if not server.alive():
        why.append("SERVER DIED")
    res["why"] = ", ".join(why)
    res["pass"] = not why
    res["sat"] = sipp_cpu >= 90
    res["dir"] = sdir
    return res


HDR = ("%-9s %-3s %6s %4s %7s %7s %6s %7s %5s %6s %6s %8s %6s %6s  %s" %
       ("server", "tp", "target", "sipp", "cps", "ok", "failed", "retrans", "stray", "drops",
        "sdrops", "i200p99", "srvCPU", "sipCPU", "verdict"))


def fmt(r):
    return ("%-9s %-3s %6d %4d %7.0f %7d %6d %7d %5d %6d %6d %4.0f/%-3.0f %5.0f%% %5.0f%%  %s" %
            (r["server"], r["tp"], r["rate"], r["sipp"], r["cps"], r["ok"], r["failed"],
             r["retrans"], r["dead"] + r["ooc"], r["drops"], r["sipp_drops"], r["p99"],
             r["max"], r["srv_cpu"], r["sipp_cpu"],
             ("pass" if r["pass"] else "STOP: " + r["why"]) +
             (" [core 0 saturated: lower bound]" if r["sat"] else "")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="500,1000,2000,3000,5000,7000,10000")
    ap.add_argument("--seconds", type=int, default=7, help="length of one step")
    ap.add_argument("--per-sipp", type=int, default=1000, help="cps per SIPp instance")
    ap.add_argument("--transports", default="udp,tcp")
    ap.add_argument("--kamailio-children", type=int, default=1)
    ap.add_argument("--no-kamailio", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (SIPp files, logs)")
    a = ap.parse_args()
    rates = [int(x) for x in a.rates.split(",")]
    if os.cpu_count() < 2:
        sys.exit("needs 2 cores (server on core 1, SIPp on core 0)")
    for tool in ("sipp", "taskset") + (() if a.no_kamailio else ("kamailio",)):
        if not shutil.which(tool):
            sys.exit("%s not found (scripts/install-deps.sh)" % tool)

    cb0 = core_busy()
    time.sleep(1.0)  # a 1 s sample of the machine's load before we add ours
    cb1 = core_busy()
    idle_busy = {c: 100.0 * (cb1[c][0] - cb0[c][0]) / max(1, cb1[c][1] - cb0[c][1])
                 for c in cb1}
    busy_txt = ", ".join("core%s %.0f%%" % kv for kv in sorted(idle_busy.items()))
    print("machine load before the run: %s%s" % (
        busy_txt, "  ** NOT IDLE: figures are disturbed by other work **"
        if max(idle_busy.values()) > 10 else ""))

    tmp = tempfile.mkdtemp(prefix="bench-sip-")
    servers = []
    results = []
    evidence = []
    t_start = time.monotonic()
    try:
        servers.append(Trunkline(tmp))
        if not a.no_kamailio:
            servers.append(Kamailio(tmp, a.kamailio_children))
        print("bench/sip: %s; servers pinned to core %s, SIPp to core %s; steps of %d s; "
              "temp %s" % (", ".join("%s :%d" % (s.name, s.port) for s in servers), SERVER_CPU,
                           SIPP_CPU, a.seconds, tmp))
        print(HDR)
        step = 0
        for n_tp, tp in enumerate(a.transports.split(",")):
            if n_tp:  # a fresh trunkline: no leftovers (ACK timeouts, timer J) of the last ramp
                old = servers[0]
                codes_old = old.stop()
                if codes_old != 0:
                    evidence.append("trunkline exited %s after the %s ramp\n%s" % (
                        codes_old, a.transports.split(",")[n_tp - 1], old.evidence()))
                servers[0] = Trunkline(tmp, "trunkline%d" % n_tp)
            for srv in servers:
                for rate in rates:
                    step += 1
                    r = run_step(srv, tp, rate, a.seconds, a.per_sipp, tmp, step)
                    results.append(r)
                    print(fmt(r), flush=True)
                    if not r["pass"]:
                        if srv.name == "trunkline":
                            up = srv.alive() and sip_options_ok(srv.port, tp,
                                                                time.monotonic() + 3)
                            if not up:
                                evidence.append(srv.evidence())
                                print("  !! trunkline not answering OPTIONS after the step",
                                      flush=True)
                        break
                if not srv.alive():
                    break
    finally:
        codes = {s.name: s.stop() for s in servers}
    print()
    print("exit codes after SIGTERM: %s" % ", ".join("%s=%s" % kv for kv in codes.items()))
    best = {}
    at1000 = {}
    for r in results:
        key = (r["server"], r["tp"])
        if r["pass"]:
            best[key] = max(best.get(key, 0), r["rate"])
        if r["rate"] == 1000 and r["pass"]:
            at1000[key] = r["srv_cpu"]
    print("\nsummary (highest step with 0 failed calls and 0 retransmissions; server CPU at "
          "1,000 cps on one core):")
    for tp in a.transports.split(","):
        t, k = best.get(("trunkline", tp)), best.get(("kamailio", tp))
        ct, ck = at1000.get(("trunkline", tp)), at1000.get(("kamailio", tp))
        line = "  %s: trunkline %s cps, CPU %s" % (
            tp.upper(), t if t else "-", "%.1f%%" % ct if ct is not None else "-")
        if not a.no_kamailio:
            line += " | kamailio %s cps, CPU %s" % (
                k if k else "-", "%.1f%%" % ck if ck is not None else "-")
            if t and k:
                line += " | rate ratio trunkline/kamailio %.2f" % (t / k)
            if ct and ck:
                line += ", CPU ratio at 1,000 cps %.2f" % (ct / ck)
        print(line)
    if any(r["sat"] for r in results):
        print("  note: SIPp saturated core 0 in some step: those rates are lower bounds")
    maxed = [key for key, v in best.items() if v == rates[-1]]
    if maxed:
        print("  note: %s passed the top step: the ceiling is above it (raise --rates)" %
              ", ".join("%s/%s" % k for k in maxed))
    for e in evidence:
        print("\nEVIDENCE\n" + e)
    print("\nruntime %.0f s" % (time.monotonic() - t_start))
    if a.keep or evidence:
        print("files kept in %s" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

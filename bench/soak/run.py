#!/usr/bin/env python3
"""bench/soak: the daemon under steady call load for an hour (issue 11), calls starting and
ending throughout: RSS every minute (it should stay flat), failed calls (0), and at the end,
once the load is gone, what is still open (calls, server transactions, media streams, SIP
connections, file descriptors): back to idle.

    make && make loadgen && /usr/bin/python3 bench/soak/run.py --limit 2000 [--minutes 60]

--limit is the concurrent-call limit measured with bench/calls (its knee); the soak holds
80 % of it (--load). Two generators (build/loadgen) each carry half the calls in cycles of
--cycle seconds (set up at --cps, held, hung up); the second starts half a cycle after the
first, so calls start and end all the time while the total stays between 40 % and 80 % of
the limit, at 80 % most of the time. The daemon and the echo agent are set up as in
bench/calls (plain RTP, SIP over TCP, daemon on core 1, generators on core 0)."""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "calls"))
import run as calls  # noqa: E402  (bench/calls/run.py: the daemon set-up)


def sip_connections(port):
    """Established TCP connections on the daemon's SIP port (from /proc/net/tcp)."""
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for ln in f:
                    c = ln.split()
                    if int(c[1].rsplit(":", 1)[1], 16) == port and c[3] == "01":
                        n += 1
        except FileNotFoundError:
            pass
    return n


def fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except FileNotFoundError:
        return -1


def stats_line(d):
    """SIGUSR1 makes the daemon log what is open; returns the newest such line's values."""
    before = d.log_tail(2000).count("core stats ")
    d.proc.send_signal(calls.signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = d.log_tail(2000)
        if text.count("core stats ") > before:
            line = [ln for ln in text.splitlines() if "core stats " in ln][-1]
            return calls.kv(line)
        time.sleep(0.05)  # polling the log file for the answer to our signal
    return {}


class Generator(threading.Thread):
    """One build/loadgen after another until stop: each a cycle of n calls."""

    def __init__(self, d, n, cycle, cps, ports, out):
        super().__init__(daemon=True)
        self.d, self.n, self.cycle, self.cps, self.ports, self.out = d, n, cycle, cps, ports, out
        self.stop = threading.Event()
        self.cycles = self.up = self.failed = self.lost = 0
        self.proc = None

    def run(self):
        while not self.stop.is_set():
            cmd = calls.RT + ["taskset", "-c", calls.GEN_CPU, calls.LOADGEN, "--sip",
                              "127.0.0.1:%d" % self.d.sip_port, "--number", calls.NUMBER,
                              "--steps", "%d:%d" % (self.n, self.cycle), "--cps", str(self.cps),
                              "--rtp-ports", self.ports, "--settle-ms", "0"]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True, preexec_fn=calls.raise_nofile)
            for ln in self.proc.stdout:
                self.out.write(ln)
                if ln.startswith("STEP "):
                    s = calls.kv(ln)
                    self.cycles += 1
                    self.up += int(s.get("up", 0))
                    self.failed += int(s.get("failed", 0))
                    self.lost += int(s.get("lost", 0))
            self.proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, required=True,
                    help="concurrent-call limit measured with bench/calls")
    ap.add_argument("--load", type=float, default=0.8, help="share of the limit (0.8)")
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--cycle", type=int, default=60, help="seconds a generator's calls stay up")
    ap.add_argument("--cps", type=int, default=100)
    ap.add_argument("--sample", type=float, default=60.0, help="seconds between RSS lines")
    args = ap.parse_args()
    for f in (calls.BIN, calls.LOADGEN):
        if not os.path.exists(f):
            sys.exit("%s missing: make && make loadgen" % f)
    total = int(args.limit * args.load)
    half = max(1, total // 2)
    tmp = tempfile.mkdtemp(prefix="trunkline-soak-")
    d = calls.Daemon(tmp, "echo")
    d.import_echo_number()
    pid = d.proc.pid
    print("soak: %d calls (%.0f %% of %d) for %.1f min; daemon pid %d; temp %s" % (
        total, args.load * 100, args.limit, args.minutes, pid, tmp), flush=True)
    idle = stats_line(d)
    print("idle: rss %d KiB, fds %d, sip connections %d, %s" % (
        calls.rss_kb(pid), fds(pid), sip_connections(d.sip_port), idle), flush=True)
    log = open(os.path.join(tmp, "loadgen.out"), "w")
    g1 = Generator(d, half, args.cycle, args.cps, "42000-51998", log)
    g2 = Generator(d, total - half, args.cycle, args.cps, "52000-61998", log)
    t0 = time.monotonic()
    g1.start()
    end = t0 + args.minutes * 60
    started2 = False
    next_sample = t0 + args.sample
    print("%8s %10s %8s %8s %8s %8s" % ("minute", "rss KiB", "calls", "fds", "failed", "lost"))
    while time.monotonic() < end and d.alive():
        now = time.monotonic()
        if not started2 and now - t0 >= args.cycle / 2:
            g2.start()
            started2 = True
        if now >= next_sample:
            st = stats_line(d)
            print("%8.1f %10d %8s %8d %8d %8d" % ((now - t0) / 60, calls.rss_kb(pid),
                                                 st.get("calls", "?"), fds(pid),
                                                 g1.failed + g2.failed, g1.lost + g2.lost),
                  flush=True)
            next_sample += args.sample
        time.sleep(0.5)  # the sampling clock, not a synchronisation
    for g in (g1, g2):
        g.stop.set()
    for g in (g1, g2):
        if g.is_alive():
            g.join(args.cycle + 120)  # the running cycle ends and hangs up
    # what is left once the load is gone (the last BYEs answered, timers run out)
    deadline = time.monotonic() + 60
    st = stats_line(d)
    while time.monotonic() < deadline and (st.get("calls") != "0" or st.get("server_tsx") != "0"
                                           or st.get("media_streams") != "0"):
        time.sleep(1)  # polling for the daemon to settle
        st = stats_line(d)
    print("\nafter the load: rss %d KiB, fds %d, sip connections %d, %s" % (
        calls.rss_kb(pid), fds(pid), sip_connections(d.sip_port),
        " ".join("%s=%s" % kv for kv in st.items())))
    print("calls: %d cycles, %d calls set up, %d failed, %d lost echo frames" % (
        g1.cycles + g2.cycles, g1.up + g2.up, g1.failed + g2.failed, g1.lost + g2.lost))
    code = d.stop()
    print("trunkline exit code after SIGTERM: %s" % code)


if __name__ == "__main__":
    main()

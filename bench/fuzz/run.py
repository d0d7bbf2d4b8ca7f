#!/usr/bin/python3
"""bench/fuzz: every libFuzzer target for N minutes (default 10), outside CI; run it before
each release (issue 11 item 19).

  make fuzz && /usr/bin/python3 bench/fuzz/run.py [--minutes N] [--jobs J] [target ...]

Each target starts from its seeds (tests/fuzz/corpus/<target>) plus what earlier runs
found (build-fuzz/found/<target>, kept between runs: the corpus grows run after run); new
inputs go to the found corpus, crashes to build-fuzz/crashes/<target>/ (libFuzzer's
crash-*/leak-*/timeout-* files, each a reproducer: build-fuzz/<target> <file>; only this
run's are counted). Prints per
target: executions, executions/s, corpus size before and after, crashes; exit 1 on any
crash. --jobs runs that many targets at once (one core each)."""
import argparse
import concurrent.futures
import glob
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FUZZ = os.path.join(ROOT, "build-fuzz")


def run(target, seconds):
    exe = os.path.join(FUZZ, target)
    found = os.path.join(FUZZ, "found", target)
    crashes = os.path.join(FUZZ, "crashes", target)
    os.makedirs(found, exist_ok=True)
    os.makedirs(crashes, exist_ok=True)
    seeds = os.path.join(ROOT, "tests", "fuzz", "corpus", target)
    before = len(os.listdir(found))
    old_arts = set(os.listdir(crashes))
    cmd = [exe, "-max_total_time=%d" % seconds, "-max_len=65536", "-print_final_stats=1",
           "-artifact_prefix=" + crashes + "/", found]
    if os.path.isdir(seeds):
        cmd.append(seeds)
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    wall = time.monotonic() - t0
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", p.stderr)
    execs = int(m.group(1)) if m else 0
    arts = sorted(os.path.join(crashes, f) for f in os.listdir(crashes) if f not in old_arts)
    with open(os.path.join(FUZZ, "found", target + ".log"), "w") as f:
        f.write(p.stderr)
    return {"target": target, "execs": execs, "rate": execs / wall if wall else 0,
            "before": before, "after": len(os.listdir(found)), "crashes": len(arts),
            "rc": p.returncode, "artifacts": arts}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("targets", nargs="*")
    a = ap.parse_args()
    targets = a.targets or sorted(os.path.basename(p)[:-2] for p in
                                  glob.glob(os.path.join(ROOT, "tests", "fuzz", "fuzz_*.c")))
    missing = [t for t in targets if not os.access(os.path.join(FUZZ, t), os.X_OK)]
    if missing:
        sys.exit("not built (make fuzz): " + " ".join(missing))
    secs = max(1, int(a.minutes * 60))
    print("%d targets, %s s each, %d at once" % (len(targets), secs, a.jobs), flush=True)
    print("| target | executions | exec/s | corpus before → after | crashes |")
    print("|---|---|---|---|---|", flush=True)
    bad = 0
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
        for r in ex.map(lambda t: run(t, secs), targets):
            print("| %s | %d | %.0f | %d → %d | %d |" % (r["target"], r["execs"], r["rate"],
                                                        r["before"], r["after"], r["crashes"]),
                  flush=True)
            for art in r["artifacts"]:
                print("    reproduce: build-fuzz/%s %s" % (r["target"], art))
            bad += r["crashes"] or (r["rc"] != 0)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

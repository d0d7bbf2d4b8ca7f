#!/usr/bin/python3
"""bench/api: imports per second, and GET /v1/phone-numbers (first page) latency with
10,000 numbers in the store. Prints figures; asserts nothing about speed.

    make && /usr/bin/python3 bench/api/run.py [--numbers 10000] [--gets 2000] [--threads 4]
"""
import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "integration"))
from conftest import Daemon  # noqa: E402

import requests  # noqa: E402


def body(i):
    return {"number": "+1555%07d" % i, "label": "bench %d" % i,
            "outbound_trunk": {"address": "sip.example.com", "username": "u%d" % i,
                               "password": "p%d" % i, "transport": "tls"}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--numbers", type=int, default=10000)
    ap.add_argument("--gets", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(tmp).start()
        try:
            url = d.url + "/v1/phone-numbers"
            hdr = {"Authorization": "Bearer " + d.admin_token}
            per = a.numbers // a.threads
            errors = []

            def worker(k):
                s = requests.Session()
                for i in range(k * per, (k + 1) * per):
                    r = s.post(url, json=body(i), headers=hdr)
                    if r.status_code != 201:
                        errors.append(r.text)

            t0 = time.monotonic()
            ts = [threading.Thread(target=worker, args=(k,)) for k in range(a.threads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            dt = time.monotonic() - t0
            n = per * a.threads
            print("imports: %d in %.2f s with %d clients = %.0f imports/s (%d errors)"
                  % (n, dt, a.threads, n / dt, len(errors)))

            s = requests.Session()
            lat = []
            for _ in range(a.gets):
                t = time.monotonic()
                r = s.get(url, headers=hdr)
                lat.append((time.monotonic() - t) * 1000)
                assert r.status_code == 200 and len(r.json()["data"]) == 50
            lat.sort()
            print("GET /v1/phone-numbers first page (50 of %d): p50 %.2f ms  p99 %.2f ms  "
                  "mean %.2f ms over %d requests"
                  % (n, lat[len(lat) // 2], lat[int(len(lat) * 0.99)], statistics.mean(lat),
                     a.gets))
        finally:
            d.stop()


if __name__ == "__main__":
    main()

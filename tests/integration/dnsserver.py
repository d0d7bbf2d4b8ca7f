#!/usr/bin/python3
"""A small authoritative DNS server for tests (UDP and TCP on one port of 127.0.0.1).

It serves a zone given as a dict (or a JSON file) and records every question it is asked,
so a test can assert what a resolver looked up (RFC 3263: "port given -> no NAPTR/SRV").

Zone format — names are case-insensitive, a trailing dot is optional:

    {
      "sip.example.test": {
        "NAPTR": [[order, preference, "s", "SIPS+D2T", "", "_sips._tcp.example.test"]],
        "A":     ["192.0.2.1"],
        "AAAA":  ["2001:db8::1"]
      },
      "_sips._tcp.example.test": {"SRV": [[priority, weight, port, "target.example.test"]]},
      "broken.example.test": {"rcode": "SERVFAIL"},   # answer every question with this rcode
      "silent.example.test": {"drop": true}           # never answer (timeouts)
    }

A name that is absent answers NXDOMAIN; a present name without the asked type answers
NOERROR with no records (NODATA). UDP answers over 512 octets are sent truncated (TC, the
question kept) so that clients retry over TCP, as RFC 1035 §4.2.1 asks; TCP connections
may carry several queries (RFC 7766 §6.2.1, which c-ares does).

Command line: dnsserver.py --port N --zone zone.json [--log FILE] [--watch-stdin]
  --port 0 picks a free port; "ready <port>" is printed on stdout once both sockets listen.
  --log appends one line per question, "<udp|tcp> <TYPE> <name>", flushed before the answer
  is sent, so a client that has its answer can read the line.
  --watch-stdin exits when stdin reaches EOF (the test process that started us died).

As a module: srv = start(zone_dict); srv.port; srv.queries (list of (proto, type, name));
srv.stop().
"""

import argparse
import json
import os
import socketserver
import struct
import sys
import threading

from dnslib import AAAA, A, DNSLabel, DNSRecord, NAPTR, QTYPE, RCODE, RR, SRV

UDP_MAX = 512
TTL = 60


def _key(name):
    return str(name).rstrip(".").lower()


class Zone:
    def __init__(self, zone):
        self.names = {_key(k): v for k, v in zone.items()}

    def _rrs(self, name, qtype, entry):
        out = []
        for v in entry.get(qtype, []):
            if qtype == "A":
                rdata = A(v)
            elif qtype == "AAAA":
                rdata = AAAA(v)
            elif qtype == "SRV":
                prio, weight, port, target = v
                rdata = SRV(priority=prio, weight=weight, port=port, target=target)
            elif qtype == "NAPTR":
                order, pref, flags, service, regexp, repl = v
                rdata = NAPTR(order, pref, flags.encode(), service.encode(), regexp.encode(),
                              DNSLabel(repl))
            else:
                continue
            out.append(RR(name, getattr(QTYPE, qtype), rdata=rdata, ttl=TTL))
        return out

    def answer(self, request):
        """The reply to a request, or None to stay silent."""
        q = request.q
        entry = self.names.get(_key(q.qname))
        reply = request.reply()  # QR, AA, RD/RA as dnslib sets them, the question copied
        if entry is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if entry.get("drop"):
            return None
        if "rcode" in entry:
            reply.header.rcode = getattr(RCODE, entry["rcode"])
            return reply
        for rr in self._rrs(q.qname, QTYPE[q.qtype], entry):
            reply.add_answer(rr)
        return reply


class Server:
    def __init__(self, zone, port=0, log_path=None):
        self.zone = Zone(zone)
        self.queries = []
        self.lock = threading.Lock()
        self.log = open(log_path, "a", buffering=1) if log_path else None
        outer = self

        class UDPHandler(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                rdata = outer.handle(data, "udp")
                if rdata is not None:
                    sock.sendto(rdata, self.client_address)

        class TCPHandler(socketserver.BaseRequestHandler):
            def handle(self):
                conn = self.request
                while True:  # several queries per connection
                    hdr = _recv_exact(conn, 2)
                    if hdr is None:
                        return
                    data = _recv_exact(conn, struct.unpack("!H", hdr)[0])
                    if data is None:
                        return
                    rdata = outer.handle(data, "tcp")
                    if rdata is not None:
                        conn.sendall(struct.pack("!H", len(rdata)) + rdata)

        class UDPServer(socketserver.ThreadingUDPServer):
            daemon_threads = True
            allow_reuse_address = True

        class TCPServer(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        # Port 0: let the kernel pick the UDP port, then take the same one for TCP; retry if
        # someone holds that TCP port.
        for _ in range(20):
            self.udp = UDPServer(("127.0.0.1", port), UDPHandler)
            self.port = self.udp.server_address[1]
            try:
                self.tcp = TCPServer(("127.0.0.1", self.port), TCPHandler)
                break
            except OSError:
                self.udp.server_close()
                if port:
                    raise
        else:
            raise OSError("no free port for UDP and TCP")
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True)
                        for s in (self.udp, self.tcp)]
        for t in self.threads:
            t.start()

    def handle(self, data, proto):
        try:
            request = DNSRecord.parse(data)
        except Exception:  # garbage: no answer, as a real server would (mostly)
            return None
        q = request.q
        line = (proto, QTYPE[q.qtype], _key(q.qname))
        with self.lock:
            self.queries.append(line)
            if self.log:
                self.log.write(" ".join(line) + "\n")
                self.log.flush()
        reply = self.zone.answer(request)
        if reply is None:
            return None
        rdata = reply.pack()
        if proto == "udp" and len(rdata) > UDP_MAX:
            trunc = request.reply()
            trunc.header.tc = 1
            rdata = trunc.pack()
        return rdata

    def stop(self):
        for s in (self.udp, self.tcp):
            s.shutdown()
            s.server_close()
        if self.log:
            self.log.close()


def _recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def start(zone, port=0, log_path=None):
    return Server(zone, port, log_path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--zone", required=True, help="zone as a JSON file")
    ap.add_argument("--log", help="append one line per question to this file")
    ap.add_argument("--watch-stdin", action="store_true", help="exit on EOF on stdin")
    args = ap.parse_args()
    with open(args.zone) as f:
        zone = json.load(f)
    srv = start(zone, args.port, args.log)
    print("ready %d" % srv.port, flush=True)
    if args.watch_stdin:
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)
    threading.Event().wait()


if __name__ == "__main__":
    main()

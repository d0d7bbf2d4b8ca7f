"""Kamailio (Debian's package) as a carrier's record-routing SIP proxy in front of SIPp, for
the interop tests: the shape of a real carrier edge (Twilio, Telnyx and most SBCs
record-route), with the knobs the tests turn.

One proxy listens on UDP and TCP on one 127.0.0.1 port. Requests that start a dialog are
record-routed (rr module; with enable_double_rr two Record-Route entries when the transport
changes, UDP from SIPp → TCP to us) and sent on: to a next hop ($du) — the gateway over TCP,
or the next proxy — or, with rewrite_ruri, by rewriting the Request-URI to the gateway (what
some edges do, so the digest `uri` the carrier's UA computed no longer names the
Request-URI). In-dialog requests follow Route (loose_route): our BYE reaches SIPp through
it. tcp_connection_lifetime closes idle TCP connections, as an edge that drops its
connection to us mid-call does.

Readiness is a 200 to an OPTIONS over UDP (with a deadline), never a sleep."""
import glob
import os
import signal
import socket
import subprocess
import time

CFG = """#!KAMAILIO
# written by tests/integration/kamailio_proxy.py
debug=2
log_stderror=yes
memdbg=5
memlog=5
children=2
tcp_children=2
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
alias="127.0.0.1:{port}"
tcp_connection_lifetime={lifetime}
mpath="{mpath}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
modparam("rr", "enable_double_rr", {double_rr})
modparam("rr", "append_fromtag", 1)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            t_relay();
            exit;
        }}
        if (is_method("ACK")) {{
            if (t_check_trans()) t_relay();
            exit;
        }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) t_relay();
        exit;
    }}
    t_check_trans();
    record_route();
    {next_hop}
    t_relay();
}}
"""


def _options_ok(port, deadline, proc):
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            lp = s.getsockname()[1]
            msg = ("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\n"
                   "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\n"
                   "From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1:%d>\r\n"
                   "Call-ID: %s@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n" % (
                       port, lp, os.urandom(4).hex(), port, os.urandom(4).hex()))
            s.sendto(msg.encode(), ("127.0.0.1", port))
            s.settimeout(0.2)
            try:
                if s.recv(4096).startswith(b"SIP/2.0 200"):
                    return True
            except socket.timeout:
                pass
    return False


class Proxy:
    """A Kamailio record-routing proxy on 127.0.0.1:port.

    to: (port, transport) of the next hop, sent as $du (R-URI unchanged);
    rewrite_ruri: instead of $du, the Request-URI becomes sip:<user>@127.0.0.1:<port>;
    lifetime: seconds an idle TCP connection lives (Kamailio closes it after)."""

    def __init__(self, workdir, port, to, rewrite_ruri=False, double_rr=True, lifetime=120):
        self.dir = os.path.join(workdir, "kamailio-%d-%s" % (port, os.urandom(3).hex()))
        os.makedirs(self.dir)
        self.port = port
        mpath = next(iter(glob.glob("/usr/lib/*/kamailio/modules/")), None)
        if not mpath:
            raise RuntimeError("kamailio modules not found (scripts/install-deps.sh)")
        nport, ntp = to
        if rewrite_ruri:
            hop = '$ru = "sip:" + $rU + "@127.0.0.1:%d;transport=%s";' % (nport, ntp)
        else:
            hop = '$du = "sip:127.0.0.1:%d;transport=%s";' % (nport, ntp)
        cfg = os.path.join(self.dir, "kamailio.cfg")
        with open(cfg, "w") as f:
            f.write(CFG.format(port=port, mpath=mpath, lifetime=lifetime, next_hop=hop,
                               double_rr=1 if double_rr else 0))
        self.log_path = os.path.join(self.dir, "kamailio.log")
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["kamailio", "-f", cfg, "-DD", "-E", "-m", "64", "-M", "8", "-w", self.dir,
             "-Y", self.dir, "-P", os.path.join(self.dir, "pid")],
            stdout=self.logf, stderr=subprocess.STDOUT, cwd=self.dir)
        if not _options_ok(port, time.monotonic() + 20, self.proc):
            self.stop()
            raise RuntimeError("kamailio not answering OPTIONS:\n" + self.log()[-3000:])

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def kill(self):
        """SIGKILL: its connections drop at once, nothing answers on its port any more."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        # its children (tcp workers) go with the process group of the main one
        subprocess.run(["pkill", "-KILL", "-f", self.dir], check=False)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        subprocess.run(["pkill", "-KILL", "-f", self.dir], check=False)
        self.logf.close()

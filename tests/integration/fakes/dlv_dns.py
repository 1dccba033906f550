"""dlv_dns.py - a real DNS server for the delivery tests: dnsmasq on a
loopback UDP/TCP port, authoritative for the names the test gives, NXDOMAIN
for everything else under the test's domains.

    from fakes.dlv_dns import Dnsmasq, SilentDNS
    with Dnsmasq(mx=[("ex.test", "mx1.ex.test", 10)],
                 hosts={"mx1.ex.test": "127.0.0.2"}) as dns:
        conf = "dns-server 127.0.0.1:%d\n" % dns.port

Dnsmasq(mx=(), hosts=None, local=("test",), ptr=())
    mx     (domain, target, pref) records; target "." is a null MX
    hosts  {name: ip}: A (or AAAA) records, with the PTR record of ip
    ptr    (ip, name) PTR records alone (no A record comes with them)
    local  domains answered only from this data (NXDOMAIN otherwise)
SilentDNS(): a UDP port that never answers (DNS timeout).
"""
import ipaddress
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import free_udp_port  # noqa: E402


class Dnsmasq:
    def __init__(self, mx=(), hosts=None, local=("test",), ptr=()):
        # A free port can be taken by someone else before dnsmasq binds it: retry.
        for attempt in range(5):
            self.port = free_udp_port()
            args = ["dnsmasq", "--no-daemon", "--port=%d" % self.port,
                    "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                    "--no-hosts", "--conf-file=/dev/null", "--log-facility=-",
                    "--pid-file="]
            for d in local:
                args.append("--local=/%s/" % d)
            for domain, target, pref in mx:
                args.append("--mx-host=%s,%s,%d" % (domain, target, pref))
            for name, ip in (hosts or {}).items():
                args.append("--host-record=%s,%s" % (name, ip))
            for ip, name in ptr:
                args.append("--ptr-record=%s,%s" % (ipaddress.ip_address(ip).reverse_pointer,
                                                    name))
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
            try:
                self._wait_ready()
                return
            except RuntimeError:
                if attempt == 4:
                    raise

    def _wait_ready(self, timeout=10.0):
        """dnsmasq answers once it is up: send queries until one comes back."""
        query = bytes.fromhex("12340100000100000000000004746573740000010001")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq exited %d" % self.proc.returncode)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.2)
                try:
                    s.sendto(query, ("127.0.0.1", self.port))
                    s.recv(512)
                    return
                except OSError:
                    pass
        self.stop()
        raise TimeoutError("dnsmasq did not answer on port %d" % self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


class SilentDNS:
    """A bound UDP port that reads queries and never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def stop(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

#!/usr/bin/python3
"""bench_intake_idle.py - RSS of the intake worker holding N idle SMTP
connections (issue 4, point 11).

Starts relayd (intake and queue) with the integration harness, reads
intake's VmRSS from /proc/PID/status, opens N connections that each read
the greeting and send EHLO (an idle client between commands), reads the
RSS again, and prints both and the cost per connection.

Run: /usr/bin/python3 tests/bench/bench_intake_idle.py [N]   (default 2000)
"""
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Relayd  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def read_reply(sock):
    """Reads one (possibly multi-line) SMTP reply."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed: %r" % data)
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) >= 2 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return data


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    # Every connection is a descriptor here and in intake (which inherits this).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 2 * n + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    conf = "max-connections %d\nmax-connections-per-ip %d\nsmtp-timeout 10m\n" % (n + 10, n + 10)
    with Relayd(conf_extra=conf, roles="intake,queue") as r:
        pid = r.pids()["intake"]
        time.sleep(0.5)
        before = rss_kib(pid)
        socks = []
        t0 = time.monotonic()
        try:
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", r.port), timeout=30)
                read_reply(s)
                s.sendall(b"EHLO bench%d.example\r\n" % i)
                read_reply(s)
                socks.append(s)
            took = time.monotonic() - t0
            time.sleep(0.5)
            after = rss_kib(pid)
            # All still served: one NOOP on the last connection answers.
            socks[-1].sendall(b"NOOP\r\n")
            ok = read_reply(socks[-1]).startswith(b"250")
        finally:
            for s in socks:
                s.close()
        print("connections       %d (opened in %.2f s, still answering: %s)" % (len(socks), took, ok))
        print("intake RSS before %d KiB" % before)
        print("intake RSS after  %d KiB" % after)
        print("per connection    %.1f KiB" % ((after - before) / max(1, len(socks))))


if __name__ == "__main__":
    main()

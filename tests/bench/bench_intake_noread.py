#!/usr/bin/python3
"""bench_intake_noread.py - intake's memory with a client that pipelines
commands and never reads a reply (issue 9, point 4).

Starts relayd (intake and queue) with the integration harness, opens one
connection and sends MB megabytes of "EHLO x\\r\\n" without ever reading,
until everything is sent, the server stops taking it (backpressure) or
drops us; then prints how much the kernel took, intake's VmRSS and VmHWM
before and after, and when the client was dropped.

Run: /usr/bin/python3 tests/bench/bench_intake_noread.py [MB] [SMTP_TIMEOUT_S]
     (defaults 40 and 5; BIN=... picks the binaries as for the tests)
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Relayd  # noqa: E402


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s for pid %d" % (field, pid))


def main():
    mb = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    timeout = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    limit = mb << 20
    with Relayd(conf_extra="smtp-timeout %ds\n" % timeout, roles="intake,queue") as r:
        pid = r.pids()["intake"]
        time.sleep(0.5)
        rss0, hwm0 = status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM")
        s = socket.create_connection(("127.0.0.1", r.port), timeout=10)
        s.settimeout(0.5)
        chunk = b"EHLO x\r\n" * 8192
        sent, t0 = 0, time.monotonic()
        last, dropped = t0, None
        give_up = t0 + timeout + 120
        while sent < limit and time.monotonic() < give_up:
            try:
                sent += s.send(chunk[:min(len(chunk), limit - sent)])
                last = time.monotonic()
            except (socket.timeout, TimeoutError):
                continue
            except (BrokenPipeError, ConnectionResetError):
                dropped = time.monotonic()
                break
        rss1, hwm1 = status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM")
        s.close()
        print("client sent     %.1f MB of %d MB pipelined EHLO (never reading)" % (sent / 1048576.0, mb))
        if dropped is not None:
            print("dropped         %.1f s after the server stopped taking input (smtp-timeout %d s)"
                  % (dropped - last, timeout))
        else:
            print("dropped         no (all sent in %.1f s)" % (last - t0))
        print("intake VmRSS    %d KiB -> %d KiB (%+d KiB)" % (rss0, rss1, rss1 - rss0))
        print("intake VmHWM    %d KiB -> %d KiB (%+d KiB)" % (hwm0, hwm1, hwm1 - hwm0))


if __name__ == "__main__":
    main()

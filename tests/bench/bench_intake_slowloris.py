#!/usr/bin/python3
"""bench_intake_slowloris.py - time for a fresh client to be greeted while
N slowloris connections from 20 loopback addresses (127.0.0.2..21) fill
max-connections (issue 9, point 5).

Starts relayd (intake and queue, max-connections N, smtp-timeout 5m) with
the integration harness, opens the N connections, each of which then sends
one byte of a command every 2 s and never ends the line. For 30 s, a
client from 127.0.0.1 then tries to connect every 0.25 s until greeted,
and again a second later; the time from each one's first try to its 220
greeting is printed (the first and the slowest), with intake's log lines.
With "reconnect", every attacker connection the server drops is opened
again at once from the same address (an attacker that keeps the pressure).

Run: /usr/bin/python3 tests/bench/bench_intake_slowloris.py [N] [reconnect]
     (default 1000; BIN=... picks the binaries as for the tests)
"""
import os
import re
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Relayd  # noqa: E402

ADDRS = ["127.0.0.%d" % i for i in range(2, 22)]


def attacker(port, addr):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(addr, 0))
    s.setblocking(False)
    return s


def alive(s):
    """False once the server closed s (a 421 and EOF, or a reset)."""
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def try_greeting(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.settimeout(2)
            return c.recv(4096).startswith(b"220 ")
    except OSError:
        return False


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    reconnect = len(sys.argv) > 2 and sys.argv[2] == "reconnect"
    seconds = 30
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * n)), hard))
    conf = "max-connections %d\nmax-connections-per-ip %d\n" % (n, -(-n // len(ADDRS)))
    with Relayd(conf_extra=conf, roles="intake,queue") as r:
        socks = []
        t_open = time.monotonic()
        for i in range(n):
            a = ADDRS[i % len(ADDRS)]
            socks.append((a, attacker(r.port, a)))
        t_open = time.monotonic() - t_open
        start = time.monotonic()
        waits, tries, next_drip, reopened = [], 0, 0, 0
        pending = None  # when the current fresh client began trying
        while time.monotonic() < start + seconds:
            if time.monotonic() >= next_drip:
                for i, (a, s) in enumerate(socks):
                    if alive(s):
                        try:
                            s.send(b"E")
                        except OSError:
                            pass
                    elif reconnect:
                        s.close()
                        try:
                            socks[i] = (a, attacker(r.port, a))
                            reopened += 1
                        except OSError:
                            pass
                next_drip = time.monotonic() + 2
            if pending is None:
                pending = time.monotonic()
            tries += 1
            if try_greeting(r.port):
                waits.append(time.monotonic() - pending)
                pending = None
                time.sleep(1.0)
            else:
                time.sleep(0.25)
        still = sum(1 for _, s in socks if alive(s))
        for _, s in socks:
            s.close()
        time.sleep(1)
        print("slowloris connections %d from %d addresses (opened in %.1f s)%s"
              % (n, len(ADDRS), t_open, ", reconnecting: %d reopened" % reopened if reconnect else ""))
        print("after %d s           %d attacker connections still open" % (seconds, still))
        if pending is not None:
            print("fresh client        one still not greeted after %.1f s" % (time.monotonic() - pending))
        if waits:
            print("fresh clients       %d greeted: first after %.2f s, slowest %.2f s (%d tries)"
                  % (len(waits), waits[0], max(waits), tries))
        for line in re.findall(r"^.*intake: (?:stress|max-connections reached).*$", r.log(), re.M)[:6]:
            print("log                 " + line)
        print("log                 %d \"makes room\" lines"
              % r.log().count("makes room for a new address"))


if __name__ == "__main__":
    main()

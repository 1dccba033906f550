#!/usr/bin/python3
"""bench_queue_down.py - how fast intake answers 451 4.3.0 when no queue
worker runs (relayd -X intake): the seconds from MAIL to the 451, for the
first client and for later ones. test_intake_limits only bounds this
generously (2 s, the HELLO wait a slower design would add); the figure
itself is measured here.

Usage: bench_queue_down.py [CLIENTS]
Prints the min, median and max of CLIENTS transactions.
"""
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import Relayd  # noqa: E402
from intake_util import Client, dead_smarthost_conf  # noqa: E402


def time_to_451(port):
    with Client(port) as c:
        c.greeting()
        c.ehlo()
        t0 = time.monotonic()
        for line in ("MAIL FROM:<bench@client.example>", "RCPT TO:<a@remote.example>", "DATA"):
            r = c.cmd(line)
            if r.code == 451:
                return time.monotonic() - t0
        c.send(b"Subject: bench\r\n\r\nx\r\n.\r\n")
        r = c.reply()
        if r.code != 451:
            raise SystemExit("expected 451, got %r" % r)
        return time.monotonic() - t0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    with Relayd(conf_extra=dead_smarthost_conf(), roles="intake") as r:
        first = time_to_451(r.port)
        rest = [time_to_451(r.port) for _ in range(n - 1)]
    print("451 without a queue worker: first client %.4f s; next %d: min %.4f, median %.4f, "
          "max %.4f s" % (first, len(rest), min(rest), statistics.median(rest), max(rest)))


if __name__ == "__main__":
    main()

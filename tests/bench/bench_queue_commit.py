#!/usr/bin/python3
"""bench_queue_commit.py - commits per second of the queue worker, alone
(relayd -X queue), fed over queue.sock as intake would feed it.

For each window W, one intake connection keeps W transactions in flight
(BEGIN, RCPT, CONTENT of SIZE bytes, END) and starts a new one whenever
a COMMITTED comes back: W=1 is one client at a time (one fsync per
message); larger windows are many clients finishing together, which group
commit turns into one transaction each loop iteration.

Usage: bench_queue_commit.py [SECONDS_PER_RUN] [SIZE]
Prints one line per window: messages/s and the mean latency END->COMMITTED.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import Relayd  # noqa: E402
from test_queue_worker import QueuePeer, ROLE_INTAKE  # noqa: E402


def run(r, window, seconds, body, prefix):
    p = QueuePeer(r.state_dir, ROLE_INTAKE, timeout=30)
    sent, done, lat = 0, 0, 0.0
    started = {}
    t_end = time.monotonic() + seconds

    def submit():
        nonlocal sent
        sent += 1
        started[sent] = time.monotonic()
        p.submit(sent, "%s%014X" % (prefix, sent), "bench@example.com", ["r@x.example"], body)

    t0 = time.monotonic()
    for _ in range(window):
        submit()
    while done < sent:
        kind, sid, _ = p.reply()
        if kind != "committed":
            raise SystemExit("queue failed a commit: %r" % (_,))
        done += 1
        lat += time.monotonic() - started.pop(sid)
        if time.monotonic() < t_end:
            submit()
    elapsed = time.monotonic() - t0
    p.close()
    return done / elapsed, lat / done * 1000.0, done


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
    body = b"Subject: bench\r\n\r\n" + b"x" * (size - 20) + b"\r\n"
    with Relayd(roles="queue") as r:
        while not os.path.exists(os.path.join(r.state_dir, "queue.sock")):
            time.sleep(0.05)
        print("queue commit benchmark: %d-byte messages, %.0f s per window, state dir on %s"
              % (len(body), seconds, r.state_dir))
        for i, window in enumerate((1, 10, 50, 200)):
            rate, ms, n = run(r, window, seconds, body, "%02X" % i)
            print("window %4d: %8.0f messages/s  mean END->COMMITTED %7.2f ms  (%d messages)"
                  % (window, rate, ms, n))


if __name__ == "__main__":
    main()

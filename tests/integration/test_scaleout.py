"""test_scaleout.py - two relayd nodes behind HAProxy (issue 13, point 4):
HAProxy in TCP mode, balance roundrobin, send-proxy-v2 with LOCAL health
checks, in front of two nodes whose `listen ... smtp proxy` listeners
relay to one smarthost (a FakeMX). Several smtplib client threads send
2,000 small messages through HAProxy; in the middle, with mail waiting in
its queue, node B's master and workers get SIGKILL; it is restarted later
on the same state directory. Every message that got a 250 must reach the
smarthost (at least once: a message whose 250 was lost with the node is
sent again by its client, and duplicates are counted and printed, not
hidden). Zero loss is asserted, within a 120 s deadline.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_scaleout
"""
import collections
import os
import re
import signal
import smtplib
import sys
import threading
import time
import unittest

from fakes.dlv_mx import FakeMX
from haproxy_util import HAProxy
from harness import Relayd, free_port, pid_alive, wait_until

TOTAL = 2000
THREADS = 8
PER_CONNECTION = 10   # messages per SMTP session: HAProxy balances connections
DEADLINE = 120.0
KILL_AT = 600         # accepted messages before node B is killed ...
RESTART_AT = 1300     # ... and before it is started again
# One delivery at a time, 10 ms each, per node: submissions outrun
# delivery, so node B has mail in its queue when it is killed.
NODE_CONF = "concurrency-per-destination 1\nretry-min 1s\nretry-max 2s\nmynetworks 127.0.0.0/8\n"
MX_DELAY = 0.01


class Sender:
    """THREADS smtplib clients through HAProxy. A message counts as accepted
    when sendmail returned without error (the 250 after DATA); one that
    failed (a node died under it) is sent again on a new connection."""

    def __init__(self, port, tag):
        self.port = port
        self.tag = tag
        self.lock = threading.Lock()
        self.todo = collections.deque(range(TOTAL))  # sent in this order
        self.accepted = set()
        self.failures = 0
        self.errors = []
        self.stopping = False
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(THREADS)]
        for t in self.threads:
            t.start()

    def subject(self, n):
        return "%s-%d" % (self.tag, n)

    def take(self):
        with self.lock:
            return self.todo.popleft() if self.todo and not self.stopping else None

    def run(self):
        s = None
        sent = 0
        n = self.take()
        while n is not None:
            try:
                if s is None:
                    s = smtplib.SMTP("127.0.0.1", self.port, timeout=20)
                    s.ehlo("client.test")
                    sent = 0
                body = "Subject: %s\r\nFrom: s@lan.test\r\n\r\nmessage %d\r\n" % (
                    self.subject(n), n)
                refused = s.sendmail("s@lan.test", ["a@far.test"], body)
                if refused:
                    raise smtplib.SMTPException("refused %r" % refused)
                with self.lock:
                    self.accepted.add(n)
                n = self.take()
                sent += 1
                if sent >= PER_CONNECTION:
                    s.quit()
                    s = None
            except (OSError, smtplib.SMTPException) as e:
                with self.lock:
                    self.failures += 1
                    self.errors.append(repr(e))
                try:
                    if s is not None:
                        s.close()
                except OSError:
                    pass
                s = None
                time.sleep(0.05)
        if s is not None:
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass

    def count(self):
        with self.lock:
            return len(self.accepted)

    def join(self, timeout):
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))
        with self.lock:
            self.stopping = True
        return not any(t.is_alive() for t in self.threads)


class TwoNodesBehindHAProxy(unittest.TestCase):
    def test_node_killed_and_restarted_loses_no_accepted_message(self):
        t_end = time.monotonic() + DEADLINE
        mx = FakeMX("127.0.0.1", free_port(), data_delay=MX_DELAY)
        self.addCleanup(mx.stop)
        conf = "smarthost [127.0.0.1]:%d tls=none\n%s" % (mx.port, NODE_CONF)
        a = Relayd(listens=[("smtp proxy", None)], conf_extra=conf)
        self.addCleanup(a.cleanup)
        b = Relayd(listens=[("smtp proxy", None)], conf_extra=conf)
        self.addCleanup(b.cleanup)
        hp = HAProxy(a.dir, [a.port, b.port], send="send-proxy-v2", check=True)
        self.addCleanup(hp.stop)

        tag = "scale%d" % os.getpid()
        snd = Sender(hp.port, tag)
        self.addCleanup(snd.join, 0)
        wait_until(lambda: snd.count() >= KILL_AT and b.queue_rows()["messages"] > 0,
                   t_end - time.monotonic(),
                   "%d accepted with mail waiting in node B's queue" % KILL_AT)

        # SIGKILL to node B's master and workers at once: nothing of it runs on.
        pids = b.pids()
        b.allow_master_exit(-signal.SIGKILL)
        queued_at_kill = b.queue_rows()["messages"]
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
        self.assertEqual(b.proc.wait(timeout=10), -signal.SIGKILL)
        wait_until(lambda: not any(pid_alive(p) for p in pids.values()), 10,
                   "node B's processes to be gone")
        killed_at = snd.count()
        self.assertEqual(b.stop(), -signal.SIGKILL)

        # Node A takes all the mail meanwhile.
        wait_until(lambda: snd.count() >= RESTART_AT, t_end - time.monotonic(),
                   "%d accepted with node B down" % RESTART_AT)
        start = len(b.log())
        b.start()
        m = b.wait_log(r"queue: (\d+) message\(s\) queued; recovery", start=start)
        recovered = int(m.group(1))
        self.assertGreater(recovered, 0, "node B had no mail in its queue when killed")

        self.assertTrue(snd.join(t_end - time.monotonic()),
                        "clients not done: %d accepted, errors %r"
                        % (snd.count(), snd.errors[-3:]))
        self.assertEqual(snd.accepted, set(range(TOTAL)))

        # Every accepted message reaches the smarthost: zero loss.
        subj = re.compile(rb"^Subject: %s-(\d+)\r$" % tag.encode(), re.M)

        def delivered():
            seen = {}
            with mx.lock:
                for msg in mx.messages:
                    for x in subj.findall(msg.data):
                        seen[int(x)] = seen.get(int(x), 0) + 1
            return seen
        try:
            wait_until(lambda: snd.accepted <= set(delivered()), max(1.0, t_end - time.monotonic()),
                       "every accepted message delivered")
        except AssertionError:
            lost = sorted(snd.accepted - set(delivered()))
            raise AssertionError("%d accepted message(s) not delivered: %r" % (len(lost), lost[:20]))
        seen = delivered()
        dups = {n: c for n, c in seen.items() if c > 1}
        # Both nodes served, and B delivered again after its restart.
        served_a = len(re.findall(r"client=\[127\.0\.0\.1\]", a.log()))
        served_b = len(re.findall(r"client=\[127\.0\.0\.1\]", b.log()))
        self.assertGreater(served_a, 0)
        self.assertGreater(served_b, 0)
        b.wait_log(r"status=sent", start=start)
        print("\nscaleout: %d messages accepted, %d delivered, %d duplicate(s) %r; "
              "node B killed at %d accepted with %d in its queue (%d recovered at restart); "
              "%d client retries; accepted lines: A %d, B %d"
              % (len(snd.accepted), len(seen), len(dups), sorted(dups)[:10], killed_at,
                 queued_at_kill, recovered, snd.failures, served_a, served_b), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()

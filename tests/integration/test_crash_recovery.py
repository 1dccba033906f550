"""test_crash_recovery.py - no accepted message is lost whichever process
is killed (issue 8, point 5): SIGKILL of the delivery worker in the middle
of a DATA transfer and after the next hop got the data, and SIGKILL of the
master, the queue worker and the delivery worker while mail flows. Every
message that got `250 ... queued as QID` must reach the next hop at least
once; duplicates are allowed by design (a delivery killed after the remote
accepted is retried) and are counted and printed, not hidden.

After SIGKILL of the master the workers notice the lost channel and exit;
relayd is then started again on the same state directory.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_crash_recovery
"""
import os
import re
import signal
import smtplib
import sys
import threading
import time
import unittest

from e2e_util import RawMX, submit
from fakes.dlv_mx import FakeMX
from harness import Relayd, free_port, pid_alive, wait_until
from intake_util import token

BASE = "retry-min 1s\nretry-max 2s\n"
# One connection at a time to a next hop that takes DATA_DELAY s per message: the
# submissions outrun it, so accepted mail is waiting when a process is killed.
SLOW = "concurrency-per-destination 1\n"
DATA_DELAY = 0.2
PACE = 0.1          # seconds between two submissions
# The master's line for a worker the test kills.
KILLED = r"master: %s worker killed by signal 9; restarting"


def sent_line(qid, rcpt):
    return (r"%s: to=<%s>, relay=\S+, (?:conn_use=\d+, )?delay=[0-9.]+, dsn=2\.0\.0, "
            r"status=sent" % (re.escape(qid), re.escape(rcpt)))


def copies(mx, subject):
    """How many messages the next hop (FakeMX or RawMX) holds with
    exactly this Subject."""
    line = b"\r\nSubject: " + subject.encode() + b"\r\n"
    with mx.lock:
        return sum(1 for m in mx.messages
                   if line in b"\r\n" + (m if isinstance(m, bytes) else m.data))


def report(test, accepted, counts):
    lost = [t for t, _ in accepted if counts[t] == 0]
    dups = sum(max(0, counts[t] - 1) for t, _ in accepted)
    sys.stderr.write("\n%s: %d accepted, %d lost, %d duplicate(s)\n"
                     % (test.id().rsplit(".", 1)[-1], len(accepted), len(lost), dups))
    return lost, dups


class MailFlow:
    """Submits one message per connection in a thread until stop() or
    `limit` acceptances. .accepted: [(subject, qid)] of every 250; refusals
    and broken connections (expected while a process is down) go to
    .errors. Anything else ends the thread and is raised by stop()."""

    def __init__(self, port, prefix, limit=150):
        self.port, self.prefix, self.limit = port, prefix, limit
        self.accepted, self.errors = [], []
        self.crash = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self._stop.is_set() and len(self.accepted) < self.limit:
                subject = token(self.prefix)
                try:
                    qid = submit(self.port, "s@snd.test", ["a@far.test"], subject, timeout=10)
                except smtplib.SMTPResponseException as e:
                    if e.smtp_code == 250:
                        raise AssertionError("a 250 without a queue id: %r" % e.smtp_error)
                    self.errors.append("%d %r" % (e.smtp_code, e.smtp_error))
                    time.sleep(0.05)
                    continue
                except (OSError, smtplib.SMTPException) as e:
                    self.errors.append(repr(e))
                    time.sleep(0.05)
                    continue
                self.accepted.append((subject, qid))
                time.sleep(PACE)
        except BaseException as e:     # handed to the main thread by stop()
            self.crash = e

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=30)
        if self.thread.is_alive():
            raise AssertionError("the submitting thread did not stop")
        if self.crash is not None:
            raise self.crash
        return list(self.accepted)


class CrashRecovery(unittest.TestCase):
    def next_hop(self, **kw):
        mx = FakeMX("127.0.0.1", free_port(), data_size_limit=64 << 20, **kw)
        self.addCleanup(mx.stop)
        return mx

    def relayd(self, port, extra=""):
        r = Relayd(conf_extra="smarthost [127.0.0.1]:%d tls=none\n%s%s" % (port, BASE, extra))
        self.addCleanup(r.cleanup)
        return r

    def flow(self, r, mx, prefix):
        """Mail flowing into r faster than the next hop takes it: returns
        once some is delivered and at least 3 accepted messages wait."""
        f = MailFlow(r.port, prefix)
        self.addCleanup(f.stop)
        wait_until(lambda: len(f.accepted) >= 8 and mx.messages and
                 len(f.accepted) - len(mx.messages) >= 3, 60, "mail flowing with a backlog")
        sys.stderr.write("\n%s: %d accepted, %d delivered before the kill\n"
                         % (self.id().rsplit(".", 1)[-1], len(f.accepted), len(mx.messages)))
        return f

    def wait_all_delivered(self, r, mx, accepted, timeout=90):
        """Waits until every accepted message is at the next hop and the queue
        is empty (no attempt left that could add a copy); returns the number
        of duplicates, printed with the loss."""
        wait_until(lambda: all(copies(mx, t) for t, _ in accepted), timeout,
                 lambda: "every accepted message at the next hop; missing %r of %d"
                 % ([q for t, q in accepted if not copies(mx, t)], len(accepted)))
        wait_until(lambda: r.ctl("queue", "--json").stdout.strip() == "[]", 60,
                 "an empty queue")
        counts = {t: copies(mx, t) for t, _ in accepted}
        lost, dups = report(self, accepted, counts)
        self.assertEqual(lost, [])
        return dups

    def test_delivery_killed_in_the_middle_of_data(self):
        mx = RawMX("127.0.0.1", free_port())
        self.addCleanup(mx.stop)
        r = self.relayd(mx.sock.getsockname()[1])
        # 6 MB: more than the kernel's socket buffers (tcp_wmem max 4 MB) can
        # absorb, so the final dot cannot have left relayd when it is killed.
        body = ("x" * 76 + "\r\n") * (6 * 1024 * 1024 // 78)
        subject = token("middata")
        qid = submit(r.port, "s@snd.test", ["a@far.test"], subject, body=body, timeout=60)
        self.assertTrue(mx.stalled.wait(60), "the transfer never reached the next hop")
        pid = r.pids()["delivery"]
        start = len(r.log())
        r.allow_log(KILLED % "delivery")
        os.kill(pid, signal.SIGKILL)
        r.wait_log(KILLED % "delivery", start=start)
        r.wait_log(r"delivery went away: 1 in-flight recipient\(s\) back in the queue",
                   start=start)
        mx.release()
        r.wait_log(sent_line(qid, "a@far.test"), timeout=90, start=start)
        wait_until(lambda: mx.incomplete == 1, 30, "the killed transfer to end without its dot")
        # The first transfer never ended: exactly one complete copy, intact.
        self.assertEqual(self.wait_all_delivered(r, mx, [(subject, qid)]), 0)
        self.assertTrue(mx.messages[0].endswith(body.encode()), "the delivered body differs")

    def test_delivery_killed_after_the_next_hop_got_the_data(self):
        # The next hop keeps the message and holds back its 250: the kill
        # lands after it has accepted, so a second copy is expected by design.
        mx = RawMX("127.0.0.1", free_port(), stall="reply")
        self.addCleanup(mx.stop)
        r = self.relayd(mx.sock.getsockname()[1])
        subject = token("afterdot")
        qid = submit(r.port, "s@snd.test", ["a@far.test"], subject)
        self.assertTrue(mx.stalled.wait(60), "the message never reached the next hop")
        start = len(r.log())
        r.allow_log(KILLED % "delivery")
        os.kill(r.pids()["delivery"], signal.SIGKILL)
        r.wait_log(KILLED % "delivery", start=start)
        r.wait_log(r"delivery went away: 1 in-flight recipient\(s\) back in the queue",
                   start=start)
        mx.release()
        r.wait_log(sent_line(qid, "a@far.test"), timeout=60, start=start)
        dups = self.wait_all_delivered(r, mx, [(subject, qid)])
        # The next hop had it once before the kill; relayd could not know.
        self.assertEqual(dups, 1)

    def kill_worker_while_mail_flows(self, role):
        mx = self.next_hop(data_delay=DATA_DELAY)
        r = self.relayd(mx.port, SLOW)
        f = self.flow(r, mx, role[:3] + "flow")
        victim = r.pids()[role]
        start = len(r.log())
        r.allow_log(KILLED % role)
        os.kill(victim, signal.SIGKILL)
        r.wait_log(KILLED % role, start=start)
        wait_until(lambda: r.pids().get(role) not in (None, victim), 20, "a new %s worker" % role)
        # Mail is accepted again after the restart.
        n = len(f.accepted)
        wait_until(lambda: len(f.accepted) >= n + 8, 60,
                 lambda: "acceptance after the restart (%d accepted, last errors %r)"
                 % (len(f.accepted), f.errors[-3:]))
        accepted = f.stop()
        self.wait_all_delivered(r, mx, accepted)

    def test_queue_killed_while_mail_flows(self):
        self.kill_worker_while_mail_flows("queue")

    def test_delivery_killed_while_mail_flows(self):
        self.kill_worker_while_mail_flows("delivery")

    def test_master_killed_while_mail_flows(self):
        mx = self.next_hop(data_delay=DATA_DELAY)
        r = self.relayd(mx.port, SLOW)
        pids = r.pids()
        workers = [pids[role] for role in ("intake", "queue", "delivery")]
        f = self.flow(r, mx, "mstflow")
        start = len(r.log())
        r.allow_master_exit(-signal.SIGKILL)
        os.kill(pids["master"], signal.SIGKILL)
        self.assertEqual(r.proc.wait(timeout=10), -signal.SIGKILL)
        wait_until(lambda: not any(pid_alive(p) for p in workers), 15,
                 "the workers to exit after losing the master")
        for role in ("intake", "queue", "delivery"):
            r.wait_log(r"%s: lost the master; exiting" % role, start=start)
        accepted = f.stop()
        self.assertEqual(r.stop(), -signal.SIGKILL)

        # Same config, same state directory.
        start = len(r.log())
        r.start()
        r.wait_log(r"queue: queue: \d+ message\(s\) queued; recovery discarded \d+ incomplete "
                   r"message\(s\), requeued \d+ in-flight recipient\(s\)", start=start)
        self.wait_all_delivered(r, mx, accepted)
        # And it serves new mail.
        subject = token("mstafter")
        qid = submit(r.port, "s@snd.test", ["a@far.test"], subject)
        self.wait_all_delivered(r, mx, [(subject, qid)])


if __name__ == "__main__":
    unittest.main()

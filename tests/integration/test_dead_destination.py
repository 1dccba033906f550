"""test_dead_destination.py - dead destinations that forget (issue 11,
point 2). Delivery remembers a next hop whose every address failed and
defers its other mail without connecting; that memory lasts retry-min at
most, `relayctl flush` (all, or one message's destinations) and `reload`
clear it, and a recipient deferred without a connection keeps its attempt
count: it is logged `status=deferred (delivery temporarily suspended:
<the original reason>)` and comes back when the memory ends.

Run: cd tests/integration && BIN=bin /usr/bin/python3 -m unittest -v test_dead_destination
"""
import json
import re
import smtplib
import time
import unittest

from dlv_base import DeliveryCase
from harness import wait_until

SUSPENDED = r"status=deferred \(delivery temporarily suspended: connect to [^)]*Connection refused\)"
REFUSED = r"status=deferred \(connect to [^)]*Connection refused\)"


def submit_many(port, rcpts):
    """One message per recipient over one SMTP session; their queue ids."""
    qids = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("client.test")
        for rc in rcpts:
            s.mail("s@snd.test")
            code, msg = s.rcpt(rc)
            assert code == 250, msg
            code, msg = s.data(b"Subject: outage\r\n\r\nfor %s\r\n" % rc.encode())
            assert code == 250, msg
            qids.append(re.search(rb"queued as (\S+)", msg).group(1).decode())
    return qids


class DeadDestination(DeliveryCase):
    def queue(self, r):
        p = r.ctl("queue", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def rcpt_lines(self, r, qids, rx):
        """Log lines of a recipient outcome of those messages matching rx."""
        want = set(qids)
        return [line for line in r.log().splitlines()
                if re.search(r"delivery: ([0-9A-F]+): to=<.*" + rx, line)
                and re.search(r"delivery: ([0-9A-F]+):", line).group(1) in want]

    def down_then_up(self, extra, n):
        """relayd with a smarthost that refuses connections; n messages sent
        to it; then the smarthost comes up (not yet tried again)."""
        dns = self.dns()
        self.sh = self.mx("127.0.0.2", start=False)
        r = self.relayd(dns, "smarthost [127.0.0.2]:%d\n%s" % (self.mx_port, extra))
        qids = submit_many(r.port, ["u%d@ex.test" % i for i in range(n)])
        # Every message was handled: tried (refused) or suspended.
        wait_until(lambda: len(self.rcpt_lines(r, qids, r"status=deferred")) >= n, 60,
                 "a deferral of every message")
        self.sh.start()
        return r, qids

    def test_flush_delivers_after_outage_without_raising_attempts(self):
        n = 200
        # retry-min 1h: nothing comes back by itself during the test.
        r, qids = self.down_then_up("retry-min 1h\nretry-max 2h\n", n)
        refused = self.rcpt_lines(r, qids, REFUSED)
        suspended = self.rcpt_lines(r, qids, SUSPENDED)
        self.assertGreaterEqual(len(refused), 1)
        self.assertGreaterEqual(len(suspended), 1, "no message was deferred without connecting")
        self.assertEqual(len(refused) + len(suspended), n)
        # Only the recipients that really met a refused connection count an attempt.
        rows = [rc for m in self.queue(r) for rc in m["recipients"]]
        self.assertEqual(len(rows), n)
        self.assertEqual(sum(rc["attempts"] for rc in rows), len(refused))
        self.assertEqual(sorted({rc["attempts"] for rc in rows}),
                         [0, 1] if len(refused) < n else [1])
        for rc in rows:
            if rc["attempts"] == 0:
                self.assertTrue(rc["last_error"].startswith(
                    "delivery temporarily suspended: connect to "), rc)
                # Due again when the hop's memory ends (at most 60 s), not after a backoff.
                self.assertLessEqual(rc["next_attempt"], time.time() + 61)
        self.assertEqual(self.sh.messages, [])
        t0 = time.monotonic()
        p = r.ctl("flush")
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_until(lambda: len(self.sh.messages) >= n, 60,
                 lambda: "all %d delivered after the flush (got %d)" % (n, len(self.sh.messages)))
        took = time.monotonic() - t0
        wait_until(lambda: self.queue(r) == [], 20, "an empty queue")
        self.assertEqual(sorted(rc for m in self.sh.messages for rc in m.rcpt_tos),
                         sorted("u%d@ex.test" % i for i in range(n)))
        self.assertIn("failure forgotten", r.log())
        print("\n%d messages (%d refused, %d suspended) delivered %.1f s after relayctl flush"
              % (n, len(refused), len(suspended), took))

    def test_memory_ends_after_retry_min(self):
        # retry-min 2s: the memory lasts 2 s, so the retry goes to the host again.
        r, qids = self.down_then_up("retry-min 2s\nretry-max 2s\n", 3)
        wait_until(lambda: len(self.sh.messages) >= 3, 30, "delivery once retry-min passed")
        self.assertEqual(len(self.rcpt_lines(r, qids, r"status=sent")), 3)

    def test_reload_forgets(self):
        r, qids = self.down_then_up("retry-min 1h\nretry-max 2h\n", 1)
        # Still remembered: a new message is deferred without connecting.
        q2 = submit_many(r.port, ["v@ex.test"])
        wait_until(lambda: self.rcpt_lines(r, q2, SUSPENDED), 20, "a suspended deferral")
        self.assertEqual(self.sh.messages, [])
        p = r.ctl("reload")
        self.assertEqual(p.returncode, 0, p.stderr)
        r.wait_log(r"failure forgotten", timeout=20)
        q3 = submit_many(r.port, ["w@ex.test"])
        wait_until(lambda: self.rcpt_lines(r, q3, r"status=sent"), 20, "delivery after the reload")
        self.assertEqual([m.rcpt_tos for m in self.sh.messages], [["w@ex.test"]])

    def test_flush_one_message_forgets_its_destination_only(self):
        dns = self.dns()
        a = self.mx("127.0.0.2", start=False)
        b = self.mx("127.0.0.4", start=False)
        r = self.relayd(dns, "retry-min 1h\nretry-max 2h\n"
                             "route a.test [127.0.0.2]:%d\nroute b.test [127.0.0.4]:%d\n"
                        % (self.mx_port, self.mx_port))
        qa = submit_many(r.port, ["x@a.test"])
        qb = submit_many(r.port, ["y@b.test"])
        wait_until(lambda: len(self.rcpt_lines(r, qa + qb, REFUSED)) == 2, 20, "two refusals")
        a.start()
        b.start()
        p = r.ctl("flush", qa[0])
        self.assertEqual(p.returncode, 0, p.stderr)
        a.wait_messages(1, timeout=20)
        # b.test's next hop is still remembered as dead.
        qb2 = submit_many(r.port, ["z@b.test"])
        wait_until(lambda: self.rcpt_lines(r, qb2, SUSPENDED), 20, "b.test still suspended")
        self.assertEqual(b.messages, [])


if __name__ == "__main__":
    unittest.main()

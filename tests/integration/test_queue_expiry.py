"""test_queue_expiry.py - `queue-lifetime` and `delay-warning` end to end
(issue 8, point 5), with a next hop that answers 451 to the recipient and
retries every second: after queue-lifetime the temporary failure becomes a
bounce that reaches the sender's MX (RFC 3464, Action: failed); with
`delay-warning 0` no delay notice is ever sent, with a short delay-warning
exactly one (Action: delayed) comes before the bounce.

config_value.c accepts queue-lifetime from 1s and delay-warning from 0.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_queue_expiry
"""
import re
import unittest

from dlv_base import DeliveryCase, delivery_reports
from harness import wait_until

MX = [("ex.test", "mx.ex.test", 10), ("snd.test", "mx.snd.test", 10)]
HOSTS = {"mx.ex.test": "127.0.0.2", "mx.snd.test": "127.0.0.3"}
BASE = "retry-min 1s\nretry-max 1s\noutbound-tls none\n"


def reports(mx):
    """(action, status, final recipient, Subject) of each recipient of each
    delivery report the sender's MX received, in order."""
    return [(action, status, final, subject)
            for subject, rows in delivery_reports(mx) for action, status, final in rows]


class QueueExpiry(DeliveryCase):
    BASE_CONF = BASE

    def start(self, extra):
        dns = self.dns(MX, HOSTS)
        self.dest = self.mx("127.0.0.2", rcpt={"later": "451 4.3.0 Try again later"})
        self.snd = self.mx("127.0.0.3")
        r = self.relayd(dns, extra)
        qid = self.send(r, "s@snd.test", ["later@ex.test"])
        return r, qid

    def wait_bounced(self, r, qid, lifetime):
        m = r.wait_log(r"%s: to=<later@ex\.test>, relay=none, delay=(\d+), dsn=4\.3\.0, "
                       r"status=bounced \(gave up after (\d+) s in the queue: (.*)\)"
                       % re.escape(qid), timeout=lifetime + 30)
        self.assertGreaterEqual(int(m.group(1)), lifetime)
        self.assertIn("451 4.3.0 Try again later", m.group(3))
        r.wait_log(r"%s: sender non-delivery notification: [0-9A-F]+" % re.escape(qid))
        r.wait_log(r"%s: removed" % re.escape(qid))
        # The report reaches the sender's MX; then nothing is left queued.
        wait_until(lambda: any(a == "failed" for a, *_ in reports(self.snd)), 30,
                 "the bounce at the sender's MX")
        wait_until(lambda: r.ctl("queue", "--json").stdout.strip() == "[]", 30, "an empty queue")
        deferrals = len(re.findall(r"%s: to=<later@ex\.test>, .*status=deferred" % re.escape(qid),
                                   r.log()))
        return deferrals

    def test_lifetime_bounces_and_delay_warning_0_sends_no_notice(self):
        r, qid = self.start("queue-lifetime 3s\ndelay-warning 0\n")
        deferrals = self.wait_bounced(r, qid, 3)
        # Retried every second until the lifetime was over, all temporary.
        self.assertGreaterEqual(deferrals, 2)
        got = reports(self.snd)
        self.assertEqual(got, [("failed", "4.3.0", "rfc822; later@ex.test",
                                "Undelivered Mail Returned to Sender")])
        self.assertNotIn("sender delay notification", r.log())
        bounce = self.snd.messages[0]
        self.assertEqual(bounce.rcpt_tos, ["s@snd.test"])
        # Expiry is relayd's own finding: its diagnostic type, not a remote reply.
        self.assertIn(b"Diagnostic-Code: X-Relayd; gave up after ", bounce.data)

    def test_short_delay_warning_sends_exactly_one_notice(self):
        r, qid = self.start("queue-lifetime 5s\ndelay-warning 1s\n")
        deferrals = self.wait_bounced(r, qid, 5)
        # Several deferrals after the warning age: still one notice.
        self.assertGreaterEqual(deferrals, 3)
        got = reports(self.snd)
        self.assertEqual(got, [("delayed", "4.3.0", "rfc822; later@ex.test",
                                "Delayed Mail (still being retried)"),
                               ("failed", "4.3.0", "rfc822; later@ex.test",
                                "Undelivered Mail Returned to Sender")])
        self.assertEqual(len(re.findall(r"%s: sender delay notification: [0-9A-F]+"
                                        % re.escape(qid), r.log())), 1)
        self.assertEqual([m.rcpt_tos for m in self.snd.messages], [["s@snd.test"]] * 2)


if __name__ == "__main__":
    unittest.main()

"""test_prompt_bounce.py - prompt bounces (issue 11, point 1): a message to
good@, bad@ (550) and later@ (450) of one domain. When the delivery pass
ends, good@ is delivered, the sender's MX receives a bounce (RFC 3464)
naming bad@ only, within seconds, while later@ stays deferred with its
retries. Then later@ either fails for good (550 on the retry that
`relayctl flush` starts) and a second bounce names later@ only, or it
reaches queue-lifetime and its own report follows. No recipient is
reported twice.

Run: cd tests/integration && BIN=bin /usr/bin/python3 -m unittest -v test_prompt_bounce
"""
import json
import re
import time
import unittest

from dlv_base import DeliveryCase, delivery_reports
from harness import wait_until

MX = [("ex.test", "mx.ex.test", 10), ("snd.test", "mx.snd.test", 10)]
HOSTS = {"mx.ex.test": "127.0.0.2", "mx.snd.test": "127.0.0.3"}
RCPTS = ["good@ex.test", "bad@ex.test", "later@ex.test"]
# How long "promptly" may take: one pass and one delivery of the report, on a loaded machine.
PROMPT = 10.0


reports = delivery_reports


class PromptBounce(DeliveryCase):
    def start(self, extra):
        dns = self.dns(MX, HOSTS)
        self.dest = self.mx("127.0.0.2", rcpt={"bad": "550 5.1.1 No such user",
                                               "later": "450 4.2.1 Mailbox busy"})
        self.snd = self.mx("127.0.0.3")
        r = self.relayd(dns, extra, base="outbound-tls none\n")
        t0 = time.monotonic()
        qid = self.send(r, "s@snd.test", RCPTS)
        return r, qid, t0

    def queued(self, r, qid):
        """{recipient: (state, attempts)} of qid as relayctl shows it ({} when gone)."""
        p = r.ctl("queue", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        for m in json.loads(p.stdout):
            if m["qid"] == qid:
                return {x["address"]: (x["state"], x["attempts"]) for x in m["recipients"]}
        return {}

    def first_pass(self, r, qid, t0):
        """The first pass: good@ sent, bad@ reported promptly on its own, later@ waits."""
        self.wait_status(r, qid, "good@ex.test", "sent")
        self.wait_status(r, qid, "bad@ex.test", "bounced")
        self.wait_status(r, qid, "later@ex.test", "deferred")
        wait_until(lambda: reports(self.snd), PROMPT, "the bounce for bad@ at the sender's MX")
        self.assertLess(time.monotonic() - t0, PROMPT + 20)
        self.assertEqual(reports(self.snd), [
            ("Undelivered Mail Returned to Sender",
             [("failed", "5.1.1", "rfc822; bad@ex.test")])])
        self.assertEqual(self.snd.messages[0].rcpt_tos, ["s@snd.test"])
        self.assertIn(b"550 5.1.1 No such user", self.snd.messages[0].data)
        self.assertNotIn(b"later@ex.test", self.snd.messages[0].data.split(b"\r\n\r\n", 1)[1]
                         .split(b"Content-Type: message/rfc822")[0])
        # later@ is still in the queue, deferred with its retry; bad@ is gone from it.
        self.assertEqual(self.queued(r, qid), {"later@ex.test": ("deferred", 1)})
        self.assertEqual([m.rcpt_tos for m in self.dest.messages], [["good@ex.test"]])

    def test_later_fails_permanently_second_bounce(self):
        # retry-min 1h: later@ comes back only through the flush below.
        r, qid, t0 = self.start("retry-min 1h\nretry-max 2h\n")
        self.first_pass(r, qid, t0)
        self.dest.rcpt["later"] = "550 5.1.1 Gone away"
        p = r.ctl("flush", qid)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.wait_status(r, qid, "later@ex.test", "bounced")
        wait_until(lambda: len(reports(self.snd)) >= 2, PROMPT, "the second bounce")
        r.wait_log(r"%s: removed" % re.escape(qid))
        self.assertEqual(reports(self.snd), [
            ("Undelivered Mail Returned to Sender",
             [("failed", "5.1.1", "rfc822; bad@ex.test")]),
            ("Undelivered Mail Returned to Sender",
             [("failed", "5.1.1", "rfc822; later@ex.test")])])
        self.assertIn(b"550 5.1.1 Gone away", self.snd.messages[1].data)
        self.assertEqual(self.queued(r, qid), {})
        # Two reports for one message, each logged once; good@ delivered once.
        self.assertEqual(len(re.findall(r"%s: sender non-delivery notification"
                                        % re.escape(qid), r.log())), 2)
        self.assertEqual([m.rcpt_tos for m in self.dest.messages], [["good@ex.test"]])

    def test_later_expires_own_report(self):
        r, qid, t0 = self.start("retry-min 1s\nretry-max 1s\nqueue-lifetime 6s\n"
                                "delay-warning 0\n")
        self.first_pass(r, qid, t0)
        m = self.wait_status(r, qid, "later@ex.test", "bounced", timeout=40)
        self.assertIn("gave up after", m.group(3))
        wait_until(lambda: len(reports(self.snd)) >= 2, PROMPT, "the expiry report")
        r.wait_log(r"%s: removed" % re.escape(qid))
        self.assertEqual(reports(self.snd), [
            ("Undelivered Mail Returned to Sender",
             [("failed", "5.1.1", "rfc822; bad@ex.test")]),
            ("Undelivered Mail Returned to Sender",
             [("failed", "4.2.1", "rfc822; later@ex.test")])])
        self.assertEqual(self.queued(r, qid), {})


if __name__ == "__main__":
    unittest.main()

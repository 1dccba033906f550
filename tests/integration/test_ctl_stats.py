"""test_ctl_stats.py - `relayctl stats --json` (issue 8, point 5): one JSON
object with the counters the contract lists (connections, messages
received, rejected, delivered, deferred, bounced; queue size), whose values
move by exactly what the test did: five connections, three messages (one
sent, one bounced whose report is then delivered, one deferred), a relay
refusal and a SIZE refusal. The plain `stats` shows the same numbers.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_ctl_stats
"""
import json
import re
import unittest

from dlv_base import DeliveryCase
from harness import wait_until
from intake_util import Client

MX = [("ex.test", "mx.ex.test", 10), ("snd.test", "mx.snd.test", 10)]
HOSTS = {"mx.ex.test": "127.0.0.2", "mx.snd.test": "127.0.0.3"}
CONTRACT = ("connections", "received", "rejected", "delivered", "deferred", "bounced", "queued")


class CtlStats(DeliveryCase):
    # A deferred message stays deferred for the whole test.
    BASE_CONF = "retry-min 1h\nretry-max 1h\noutbound-tls none\n"

    def stats(self, r):
        p = r.ctl("stats", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        data = json.loads(p.stdout)
        self.assertIsInstance(data, dict, p.stdout)
        for k, v in data.items():
            self.assertIs(type(v), int, "%s: %r" % (k, v))
        return data

    def refused(self, r, source, lines, code, enh):
        with Client(r.port, source=source) as c:
            self.assertEqual(c.greeting().code, 220)
            self.assertEqual(c.ehlo().code, 250)
            for line in lines[:-1]:
                self.assertEqual(c.cmd(line).code, 250, line)
            rep = c.cmd(lines[-1])
            self.assertEqual((rep.code, rep.enhanced), (code, enh), rep)
            c.cmd("QUIT")

    def test_counters_match_what_happened(self):
        dns = self.dns(MX, HOSTS)
        self.mx("127.0.0.2", rcpt={"bad": "550 5.1.1 User unknown",
                                   "later": "451 4.3.0 Try again later"})
        snd = self.mx("127.0.0.3")
        r = self.relayd(dns, "mynetworks 127.0.0.1/32\nmax-message-size 1M\n")
        # One full session first: intake has then also counted the harness's
        # start-up probe, and the baseline no longer moves.
        with Client(r.port) as c:
            self.assertEqual(c.greeting().code, 220)
            self.assertEqual(c.cmd("QUIT").code, 221)
        wait_until(lambda: self.stats(r)["connections"] >= 2, 10, "the warm-up connection counted")
        before = self.stats(r)
        for k in CONTRACT:
            self.assertIn(k, before)
        self.assertEqual([before[k] for k in CONTRACT[1:]], [0] * 6)

        q_sent = self.send(r, "s@snd.test", ["ok@ex.test"])
        q_bounced = self.send(r, "s@snd.test", ["bad@ex.test"])
        q_deferred = self.send(r, "s@snd.test", ["later@ex.test"])
        # Outside mynetworks, to a domain that is not a relay domain.
        self.refused(r, "127.0.0.9", ["MAIL FROM:<s@snd.test>", "RCPT TO:<x@ex.test>"],
                     554, "5.7.1")
        self.refused(r, None, ["MAIL FROM:<s@snd.test> SIZE=2000000"], 552, "5.3.4")

        self.wait_status(r, q_sent, "ok@ex.test", "sent")
        self.wait_status(r, q_bounced, "bad@ex.test", "bounced")
        self.wait_status(r, q_deferred, "later@ex.test", "deferred")
        dsn = r.wait_log(r"%s: sender non-delivery notification: ([0-9A-F]+)"
                         % q_bounced).group(1)
        self.wait_status(r, dsn, "s@snd.test", "sent")
        snd.wait_messages(1)

        want = {"connections": before["connections"] + 5, "received": 3, "rejected": 2,
                # the message to ok@ and the report to the sender
                "delivered": 2, "deferred": 1, "bounced": 1,
                "queued": 1, "rcpt_sent": 2, "rcpt_bounced": 1, "rcpt_deferred": 1}

        def current():
            now = self.stats(r)
            return {k: now.get(k) for k in want}
        wait_until(lambda: current() == want, 20,
                 lambda: "stats %r, expected %r" % (current(), want))
        after = self.stats(r)
        self.assertEqual({k: after.get(k) for k in want}, want)
        self.assertGreaterEqual(after["connections_out"], 2)

        # The plain form: the same counters, one "name value" line each.
        p = r.ctl("stats")
        self.assertEqual(p.returncode, 0, p.stderr)
        plain = {m.group(1): int(m.group(2))
                 for m in re.finditer(r"(?m)^(\w+)\s+(\d+)$", p.stdout)}
        self.assertEqual(len(plain), len(p.stdout.splitlines()), p.stdout)
        self.assertEqual(set(plain), set(after))
        self.assertEqual({k: plain[k] for k in want}, want)


if __name__ == "__main__":
    unittest.main()

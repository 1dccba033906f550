"""test_client_name.py - the client's verified reverse name in intake
(issue 11 point 8): dnsmasq serves PTR and A/AAAA records for 127.0.0.x
and ::1, clients connect from those source addresses, and the Received:
header says `from HELO (name [addr])` only when the PTR name's addresses
give the client's address back; the log says `QID: client=name[addr]`,
`client=unknown[addr]` otherwise, and so do the `NOQUEUE: reject` lines. With a DNS server that never answers,
the greeting and EHLO come at once and only MAIL waits, for the 5 s
budget at most; the next connection from that address finds the answer
in the cache and does not wait.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_client_name
"""
import re
import time
import unittest

from dlv_base import DeliveryCase
from e2e_util import free_port6
from harness import free_port
from intake_util import Client, ReplyAsserts, msg, token

HOSTS = {
    "good.client.test": "127.0.0.5",
    "liar.client.test": "127.0.0.9",   # its PTR claims 127.0.0.6
    "v6.client.test": "::1",
}
PTRS = [("127.0.0.6", "liar.client.test")]
LOCAL = ("test", "127.in-addr.arpa", "ip6.arpa")


class ClientName(DeliveryCase, ReplyAsserts):

    def start(self, dns, extra=""):
        # Mail waits for a next hop that refuses: it stays queued for `show`.
        return self.relayd(dns, "route far.test [127.0.0.1]:%d\n%s" % (free_port(), extra))

    def submit(self, r, source, port=None, host="127.0.0.1"):
        """One message from source; returns (qid, its Received: header)."""
        c = Client(port or r.port, host=host, source=source)
        self.addCleanup(c.close)
        self.assertReply(c.greeting(), 220)
        out = c.transaction("s@lan.test", ["a@far.test"], msg(token("name")))
        qid = self.assertQueued(out[-1])
        shown = r.ctl("show", qid)
        self.assertEqual(shown.returncode, 0, shown.stdout + shown.stderr)
        m = re.search(r"^Received: (.*)$", shown.stdout, re.M)
        self.assertIsNotNone(m, shown.stdout)
        return qid, m.group(1)

    def test_verified_name_in_received_and_log(self):
        r = self.start(self.dns(hosts=HOSTS, ptr=PTRS, local=LOCAL))
        qid, received = self.submit(r, "127.0.0.5")
        self.assertRegex(received, r"^from client\.example \(good\.client\.test "
                                   r"\[127\.0\.0\.5\]\) by relayd\.test with ESMTP ")
        r.wait_log(r"(?m)%s: client=good\.client\.test\[127\.0\.0\.5\]$" % qid)
        # The queue's accepted-message line keeps its form (interface.md).
        r.wait_log(r"%s: from=<s@lan\.test>, size=\d+, nrcpt=1, client=\[127\.0\.0\.5\]" % qid)
        # Reject lines name the client the same way (the name is cached now).
        c = Client(r.port, source="127.0.0.5")
        self.addCleanup(c.close)
        self.assertReply(c.greeting(), 220)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("RCPT TO:<a@far.test>"), 503, "5.5.1")
        r.wait_log(r"NOQUEUE: reject: RCPT from good\.client\.test\[127\.0\.0\.5\]: 503 5\.5\.1 ")

    def test_ptr_without_matching_address_is_not_used(self):
        r = self.start(self.dns(hosts=HOSTS, ptr=PTRS, local=LOCAL))
        qid, received = self.submit(r, "127.0.0.6")
        self.assertRegex(received, r"^from client\.example \(\[127\.0\.0\.6\]\) by ")
        self.assertNotIn("liar", received)
        r.wait_log(r"(?m)%s: client=unknown\[127\.0\.0\.6\]$" % qid)

    def test_no_ptr_is_unknown(self):
        r = self.start(self.dns(hosts=HOSTS, ptr=PTRS, local=LOCAL))
        qid, received = self.submit(r, "127.0.0.7")
        self.assertRegex(received, r"^from client\.example \(\[127\.0\.0\.7\]\) by ")
        r.wait_log(r"(?m)%s: client=unknown\[127\.0\.0\.7\]$" % qid)

    def test_ipv6_client_name_and_literal(self):
        port6 = free_port6()
        r = self.start(self.dns(hosts=HOSTS, local=LOCAL), "listen [::1]:%d smtp\n" % port6)
        r.wait_log(r"intake: listening on \[::1\]:%d" % port6)
        qid, received = self.submit(r, None, port=port6, host="::1")
        self.assertRegex(received, r"^from client\.example \(v6\.client\.test "
                                   r"\[IPv6:::1\]\) by relayd\.test ")
        r.wait_log(r"(?m)%s: client=v6\.client\.test\[::1\]$" % qid)

    def test_dead_dns_costs_mail_the_budget_not_the_greeting(self):
        r = self.start(self.silent_dns())
        t0 = time.monotonic()
        c = Client(r.port, source="127.0.0.8")
        self.addCleanup(c.close)
        self.assertReply(c.greeting(), 220)
        self.assertReply(c.ehlo(), 250)
        t_ehlo = time.monotonic() - t0
        self.assertReply(c.cmd("MAIL FROM:<s@lan.test>"), 250, "2.1.0")
        t_mail = time.monotonic() - t0
        # Greeting and EHLO do not wait for the DNS; MAIL waits for the
        # budget (5 s from connect), and not much longer.
        self.assertLess(t_ehlo, 2.0)
        self.assertGreaterEqual(t_mail, 4.5)
        self.assertLess(t_mail, 10.0)
        self.assertReply(c.cmd("RCPT TO:<a@far.test>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(msg(token("dead")))
        qid = self.assertQueued(c.reply())
        r.wait_log(r"(?m)%s: client=unknown\[127\.0\.0\.8\]$" % qid)
        # The answer (none) is cached: the next connection does not wait.
        t0 = time.monotonic()
        c2 = Client(r.port, source="127.0.0.8")
        self.addCleanup(c2.close)
        self.assertReply(c2.greeting(), 220)
        self.assertReply(c2.ehlo(), 250)
        self.assertReply(c2.cmd("MAIL FROM:<s@lan.test>"), 250, "2.1.0")
        self.assertLess(time.monotonic() - t0, 2.0)

    def test_pipelined_mail_waits_for_the_name(self):
        # MAIL, RCPT and DATA sent in one write right after EHLO: the
        # transaction still carries the verified name.
        r = self.start(self.dns(hosts=HOSTS, ptr=PTRS, local=LOCAL))
        c = Client(r.port, source="127.0.0.5")
        self.addCleanup(c.close)
        c.send(b"EHLO client.example\r\nMAIL FROM:<s@lan.test>\r\nRCPT TO:<a@far.test>\r\n"
               b"DATA\r\n")
        self.assertReply(c.greeting(), 220)
        self.assertReply(c.reply(), 250)
        self.assertReply(c.reply(), 250, "2.1.0")
        self.assertReply(c.reply(), 250, "2.1.5")
        self.assertReply(c.reply(), 354)
        c.send(msg(token("pipe")))
        qid = self.assertQueued(c.reply())
        r.wait_log(r"(?m)%s: client=good\.client\.test\[127\.0\.0\.5\]$" % qid)


if __name__ == "__main__":
    unittest.main()

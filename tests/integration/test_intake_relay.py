"""test_intake_relay.py - relay control (issue 4, point 7): a client in
mynetworks may relay anywhere; an outsider only to relay-domains (554 5.7.1
otherwise), and every classic open-relay form, including the 16 of nmap's
smtp-open-relay script, is refused.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_intake_relay
"""
import unittest

from harness import Relayd
from intake_util import (HOSTNAME, Client, ReplyAsserts, SharedRelayd, Upstream, accepted_lines,
                         headers_of, msg, queue_count, swaks, token)

OUT = "outside.example"       # a domain relayd must not relay to for outsiders
RELAY = "relay.example"       # in relay-domains
IP = "127.0.0.1"              # relayd's address as the client sees it
SRV = HOSTNAME                # the name in relayd's EHLO; also in relay-domains here

# (MAIL FROM path, RCPT TO path, RCPT code, enhanced code) an outsider tries:
# 554 5.7.1 relay denied, or 501 5.1.3 where the path itself is refused.
OPEN_RELAY_FORMS = [
    # the classic forms
    ("antispam@%s" % OUT, "user%%%s@%s" % (OUT, RELAY), 554, "5.7.1"),
    ("antispam@%s" % OUT, '"user@%s"@%s' % (OUT, RELAY), 554, "5.7.1"),
    ("antispam@%s" % OUT, "@%s:user@%s" % (RELAY, OUT), 554, "5.7.1"),
    ("antispam@%s" % OUT, "%s!user" % OUT, 501, "5.1.3"),
    ("antispam@%s" % OUT, "user@%s@%s" % (OUT, RELAY), 501, "5.1.3"),
    ("antispam@%s" % OUT, "%s!user@%s" % (OUT, RELAY), 554, "5.7.1"),
    ("antispam@%s" % OUT, '"user%%%s"@%s' % (OUT, RELAY), 554, "5.7.1"),
    ("antispam@%s" % OUT, "@%s,@%s:user@%s" % (RELAY, SRV, OUT), 554, "5.7.1"),
    ("antispam@%s" % OUT, "user%%%s%%%s@%s" % (OUT, RELAY, RELAY), 554, "5.7.1"),
    # nmap smtp-open-relay.nse, in its order (domain = OUT, srvname = SRV, ip = IP)
    ("", "relaytest@%s" % OUT, 554, "5.7.1"),
    ("antispam@%s" % OUT, "relaytest@%s" % OUT, 554, "5.7.1"),
    ("antispam@%s" % SRV, "relaytest@%s" % OUT, 554, "5.7.1"),
    ("antispam@[%s]" % IP, "relaytest@%s" % OUT, 554, "5.7.1"),
    ("antispam@[%s]" % IP, "relaytest%%%s@[%s]" % (OUT, IP), 554, "5.7.1"),
    ("antispam@[%s]" % IP, "relaytest%%%s@%s" % (OUT, SRV), 554, "5.7.1"),
    ("antispam@[%s]" % IP, '"relaytest@%s"' % OUT, 501, "5.1.3"),
    ("antispam@[%s]" % IP, '"relaytest%%%s"' % OUT, 501, "5.1.3"),
    ("antispam@[%s]" % IP, "relaytest@%s@[%s]" % (OUT, IP), 501, "5.1.3"),
    ("antispam@[%s]" % IP, '"relaytest@%s"@[%s]' % (OUT, IP), 554, "5.7.1"),
    ("antispam@[%s]" % IP, "relaytest@%s@%s" % (OUT, SRV), 501, "5.1.3"),
    ("antispam@[%s]" % IP, "@[%s]:relaytest@%s" % (IP, OUT), 501, "5.1.3"),
    ("antispam@[%s]" % IP, "@%s:relaytest@%s" % (SRV, OUT), 554, "5.7.1"),
    ("antispam@[%s]" % IP, "%s!relaytest" % OUT, 501, "5.1.3"),
    ("antispam@[%s]" % IP, "%s!relaytest@[%s]" % (OUT, IP), 554, "5.7.1"),
    ("antispam@[%s]" % IP, "%s!relaytest@%s" % (OUT, SRV), 554, "5.7.1"),
]


class RelayFromMynetworks(SharedRelayd, ReplyAsserts, unittest.TestCase):
    """Default mynetworks (127.0.0.0/8): 127.0.0.1 relays anywhere."""

    def test_relay_to_any_domain(self):
        t = token("mynet")
        with Client(self.r.port) as c:
            c.greeting()
            rs = c.transaction("%s@client.example" % t,
                               ["a@%s" % OUT, "b@elsewhere.example", "c@[192.0.2.1]"], msg(t))
            self.assertReply(rs[1], 250, "2.1.0")
            for r in rs[2:5]:
                self.assertReply(r, 250, "2.1.5")
            self.assertQueued(rs[-1])
        self.assertEqual(queue_count(self.r, t), 1)
        self.assertEqual(accepted_lines(self.r, t)[0][3], 3)

    def test_swaks_relay(self):
        t = token("mynetswaks")
        p, lines = swaks("--server", "127.0.0.1:%d" % self.r.port, "--from",
                         "%s@client.example" % t, "--to", "x@%s" % OUT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(any(l.startswith("250 2.0.0 Ok: queued as ") for l in lines), p.stdout)


class RelayFromOutsider(SharedRelayd, ReplyAsserts, unittest.TestCase):
    """mynetworks 10.0.0.0/8: 127.0.0.1 is an outsider."""

    @classmethod
    def relayd_conf(cls):
        return "mynetworks 10.0.0.0/8\nrelay-domains %s %s\n" % (RELAY, SRV)

    def test_outside_domain_denied_relay_domain_accepted(self):
        t = token("out")
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<%s@%s>" % (t, OUT)), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<a@%s>" % OUT), 554, "5.7.1")
        self.assertReply(c.cmd("RCPT TO:<a@elsewhere.example>"), 554, "5.7.1")
        self.assertReply(c.cmd("RCPT TO:<a@[192.0.2.1]>"), 554, "5.7.1")
        self.assertReply(c.cmd("RCPT TO:<b@%s>" % RELAY), 250, "2.1.5")
        self.assertReply(c.cmd("RCPT TO:<c@%s>" % RELAY.upper()), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(msg(t))
        self.assertQueued(c.reply())
        lines = accepted_lines(self.r, t)
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0][3], 2, "only the relay-domains recipients count")
        self.assertEqual(lines[0][4], "127.0.0.1")

    def test_postmaster_accepted_from_outsider(self):
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<x@%s>" % OUT), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<Postmaster>"), 250, "2.1.5")

    def test_no_valid_recipient_nothing_queued(self):
        t = token("outnone")
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<%s@%s>" % (t, OUT)), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<a@%s>" % OUT), 554, "5.7.1")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1", "DATA without a recipient")
        self.assertEqual(queue_count(self.r, t), 0)

    def test_open_relay_forms_refused(self):
        """Each form in a fresh session (one session would hit the error
        limit), with DATA pipelined so a server that fails only later
        still shows."""
        for sender, rcpt, code, enh in OPEN_RELAY_FORMS:
            with self.subTest(mail=sender, rcpt=rcpt):
                t = token("form1")
                c = self.session()
                c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (sender, rcpt))
                m, r, d = c.reply(), c.reply(), c.reply()
                if d.code == 354:
                    c.send(msg(t))
                    self.assertNotQueued(c.reply(), "end of data for RCPT TO:<%s>" % rcpt)
                self.assertReply(m, 250, "2.1.0", "MAIL FROM:<%s>" % sender)
                self.assertReply(r, code, enh, "RCPT TO:<%s>" % rcpt)
                self.assertReply(d, 503, "5.5.1", "DATA for RCPT TO:<%s>" % rcpt)
        # no message from any of these senders was accepted
        self.assertEqual([l for l in accepted_lines(self.r, "")
                          if l[1] == "" or l[1].startswith("antispam@")], [])

    def test_swaks_outsider_denied(self):
        p, lines = swaks("--server", "127.0.0.1:%d" % self.r.port, "--from",
                         "x@%s" % OUT, "--to", "y@%s" % OUT)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertTrue(any(l.startswith("554 5.7.1") for l in lines), p.stdout)


class RelayEndToEnd(ReplyAsserts, unittest.TestCase):
    def test_outsider_to_relay_domain_relayed_without_added_headers(self):
        """An outsider's mail to a relay-domain reaches the next hop; only
        mynetworks and authenticated clients get Message-ID:/Date: added."""
        t = token("outsider")
        with Upstream() as up, Relayd(conf_extra=up.conf() + "mynetworks 10.0.0.0/8\n"
                                      "relay-domains %s\n" % RELAY) as r:
            with Client(r.port) as c:
                c.greeting()
                rs = c.transaction("%s@%s" % (t, OUT), ["%s@%s" % (t, RELAY)],
                                   b"Subject: " + t.encode() + b"\r\n\r\nbody\r\n.\r\n")
                self.assertQueued(rs[-1])
            m = up.wait_for(t)[0]
            self.assertEqual(m.rcpt_tos, ["%s@%s" % (t, RELAY)])
            names = [n.lower() for n, _ in headers_of(m.data)]
            self.assertEqual(names[0], "received")
            self.assertNotIn("message-id", names)
            self.assertNotIn("date", names)


if __name__ == "__main__":
    unittest.main()

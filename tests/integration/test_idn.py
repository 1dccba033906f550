"""test_idn.py - internationalized domain names end to end (issue 11
point 4): a recipient at a U-label domain is looked up in the DNS by its
A-labels and delivered (dnsmasq knows only the A-label name); routes
written in either form take mail addressed in the other; relayctl route
shows both forms; a U-label IDNA2008 refuses is refused at RCPT/MAIL; and
the Received: header of an SMTPUTF8 transaction says UTF8SMTP (RFC 6531
4.3), UTF8SMTPS after STARTTLS.
"""
import email
import email.policy
import shutil
import tempfile
import unittest

from dlv_base import DeliveryCase
from harness import make_cert
from intake_util import Client, ReplyAsserts, client_tls_ctx

ULABEL = "b\u00fccher.test"
ALABEL = "xn--bcher-kva.test"
BODY = ("From: s@snd.test\r\nTo: user@%s\r\nSubject: idn\r\n\r\nHello.\r\n" % ULABEL).encode()


class IdnDelivery(DeliveryCase, ReplyAsserts):

    def utf8_send(self, r, rcpt, tls=False):
        """One SMTPUTF8 transaction to rcpt; returns the queue id."""
        c = Client(r.port)
        self.addCleanup(c.close)
        self.assertReply(c.greeting(), 220)
        self.assertReply(c.ehlo(), 250)
        if tls:
            self.assertReply(c.cmd("STARTTLS"), 220, "2.0.0")
            c.sock = client_tls_ctx().wrap_socket(c.sock)
            self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<s@snd.test> SMTPUTF8"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<%s>" % rcpt), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(BODY + b".\r\n")
        return self.assertQueued(c.reply())

    def received(self, mx):
        msg = email.message_from_bytes(mx.messages[0].data, policy=email.policy.default)
        return " ".join(str(msg["Received"]).split())

    def test_ulabel_recipient_found_by_its_alabels(self):
        # dnsmasq serves the MX under the A-label name only: delivery
        # proves the lookup was made in that form.
        dns = self.dns(mx=[(ALABEL, "mx1." + ALABEL, 10)], hosts={"mx1." + ALABEL: "127.0.0.2"})
        mx = self.mx("127.0.0.2", smtputf8=True)
        r = self.relayd(dns)
        qid = self.utf8_send(r, "user@" + ULABEL)
        m = self.wait_status(r, qid, "user@" + ULABEL, "sent")
        self.assertEqual(m.group(1), "mx1.%s[127.0.0.2]:%d" % (ALABEL, self.mx_port))
        mx.wait_messages(1)
        self.assertEqual(mx.messages[0].rcpt_tos, ["user@" + ULABEL])
        self.assertRegex(self.received(mx),
                         r"^from client\.example \(.*\[127\.0\.0\.1\]\) by relayd\.test "
                         r"with UTF8SMTP id %s for <user@%s>;" % (qid, ULABEL))

    def test_ulabel_recipient_to_a_server_without_smtputf8_goes_as_alabels(self):
        # Only the domain is UTF-8: it has an ASCII form, so the message
        # goes without SMTPUTF8, the RCPT in A-labels, instead of bouncing.
        dns = self.dns(mx=[(ALABEL, "mx1." + ALABEL, 10)], hosts={"mx1." + ALABEL: "127.0.0.2"})
        mx = self.mx("127.0.0.2", smtputf8=False)
        r = self.relayd(dns)
        qid = self.utf8_send(r, "user@" + ULABEL)
        self.wait_status(r, qid, "user@" + ULABEL, "sent")
        mx.wait_messages(1)
        self.assertEqual(mx.messages[0].rcpt_tos, ["user@" + ALABEL])
        self.assertEqual(mx.messages[0].mail_from, "s@snd.test")
        self.assertNotIn("SMTPUTF8", [o.upper() for o in mx.mail_options[0]])
        # The headers went 7-bit too: To: in A-labels, our Received: without its UTF-8 "for".
        data = mx.messages[0].data
        self.assertTrue(all(b < 128 for b in data), data)
        msg = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(str(msg["To"]), "user@" + ALABEL)
        self.assertRegex(" ".join(str(msg["Received"]).split()),
                         r"^from client\.example \(.*\[127\.0\.0\.1\]\) by relayd\.test "
                         r"with UTF8SMTP id %s;" % qid)

    def test_smtputf8_over_starttls_is_utf8smtps(self):
        d = tempfile.mkdtemp(prefix="idn-cert-")
        self.addCleanup(shutil.rmtree, d, True)
        cert, key = make_cert(d)
        dns = self.dns(mx=[(ALABEL, "mx1." + ALABEL, 10)], hosts={"mx1." + ALABEL: "127.0.0.2"})
        mx = self.mx("127.0.0.2", smtputf8=True)
        r = self.relayd(dns, "tls-cert %s\ntls-key %s\n" % (cert, key))
        qid = self.utf8_send(r, "user@" + ULABEL, tls=True)
        self.wait_status(r, qid, "user@" + ULABEL, "sent")
        mx.wait_messages(1)
        self.assertIn("with UTF8SMTPS id %s" % qid, self.received(mx))

    def test_routes_match_either_form(self):
        # No DNS for these: [host] next hops. A route written in U-labels
        # takes an A-label recipient (sent without SMTPUTF8 to a host
        # without it) and one written in A-labels a U-label recipient.
        dns = self.dns()
        plain = self.mx("127.0.0.3")
        utf8 = self.mx("127.0.0.4", smtputf8=True)
        r = self.relayd(dns, "route %s [127.0.0.3]:%d\nroute xn--mller-kva.test [127.0.0.4]:%d\n"
                        % (ULABEL, self.mx_port, self.mx_port))
        qid1 = self.send(r, "s@snd.test", ["user@" + ALABEL])
        self.wait_status(r, qid1, "user@" + ALABEL, "sent")
        plain.wait_messages(1)
        self.assertEqual(plain.messages[0].rcpt_tos, ["user@" + ALABEL])
        qid2 = self.utf8_send(r, "user@m\u00fcller.test")
        self.wait_status(r, qid2, "user@m\u00fcller.test", "sent")
        utf8.wait_messages(1)
        self.assertEqual(utf8.messages[0].rcpt_tos, ["user@m\u00fcller.test"])

    def test_relayctl_route_shows_both_forms(self):
        dns = self.dns(mx=[(ALABEL, "mx1." + ALABEL, 10)], hosts={"mx1." + ALABEL: "127.0.0.2"})
        r = self.relayd(dns)
        out = r.ctl("route", "user@" + ULABEL)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("domain: %s (A-label form: %s)" % (ULABEL, ALABEL), out.stdout)
        self.assertIn("lookup: MX of %s" % ALABEL, out.stdout)
        self.assertIn("%s. MX 10 mx1.%s." % (ALABEL, ALABEL), out.stdout)
        self.assertRegex(out.stdout, r"1\. mx1\.%s \(MX 10\): 127\.0\.0\.2:%d"
                         % (ALABEL.replace(".", r"\."), self.mx_port))
        out = r.ctl("route", "user@" + ALABEL)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("domain: %s (U-label form: %s)" % (ALABEL, ULABEL), out.stdout)
        out = r.ctl("route", "user@a\u2665.test")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("not a valid IDN", out.stdout + out.stderr)
        self.assertIn("error: 5.1.2", out.stderr)

    def test_invalid_ulabel_refused_at_rcpt_and_mail(self):
        dns = self.dns()
        r = self.relayd(dns)
        c = Client(r.port)
        self.addCleanup(c.close)
        self.assertReply(c.greeting(), 220)
        self.assertReply(c.ehlo(), 250)
        # U+2665 BLACK HEART SUIT: a symbol, disallowed by IDNA2008.
        self.assertReply(c.cmd("MAIL FROM:<s@a\u2665.test> SMTPUTF8"), 553, "5.1.7")
        self.assertReply(c.cmd("MAIL FROM:<s@snd.test> SMTPUTF8"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<user@a\u2665.test>"), 553, "5.1.3")
        # A leading combining mark.
        self.assertReply(c.cmd("RCPT TO:<user@\u0301x.test>"), 553, "5.1.3")
        self.assertReply(c.cmd("RCPT TO:<user@%s>" % ULABEL), 250, "2.1.5")


if __name__ == "__main__":
    unittest.main()

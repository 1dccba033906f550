"""Sender and recipient rewriting (issue 12, point 2): rewrite-sender
rewrites the envelope sender and the addresses of From:, Sender: and
Reply-To: as the message is accepted (display names, comments, other
fields and the body untouched), rewrite-recipient the envelope
recipients; checked at a fake MX. The maps are read again on reload, and
`relayd -n` reports their bad lines as FILE:LINE."""
import os
import smtplib
import subprocess
import tempfile
import unittest

from harness import RELAYD, Relayd, wait_until
from intake_util import Upstream, headers_of, token

SENDER_MAP = """# LAN hosts leave as the organisation
root@printer.lan      it@example.org
@.lan.test            @example.org
"""
RECIPIENT_MAP = "root@.lan.test admins@example.org\n"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


class RewriteTest(unittest.TestCase):
    def setUp(self):
        self.tmp = self.enterContext(tempfile.TemporaryDirectory())
        self.smap = write(os.path.join(self.tmp, "senders"), SENDER_MAP)
        self.rmap = write(os.path.join(self.tmp, "recipients"), RECIPIENT_MAP)
        self.up = self.enterContext(Upstream())

    def start(self):
        r = Relayd(conf_extra=self.up.conf() + "rewrite-sender %s\nrewrite-recipient %s\n"
                   % (self.smap, self.rmap))
        self.addCleanup(r.cleanup)
        return r

    def send(self, r, sender, rcpts, head, copies=None):
        """The message as the next hop got it, with the recipients of
        every copy (delivery may split them by domain) in .all_rcpts;
        copies: how many recipients arrive (default: one per rcpts)."""
        t = token()
        body = head + "Subject: %s\r\n\r\nFrom: root@printer.lan stays in the body\r\n" % t
        with smtplib.SMTP("127.0.0.1", r.port, timeout=10) as c:
            c.sendmail(sender, rcpts, body.encode())
        got = lambda: sorted(a for m in self.up.find(t) for a in m.rcpt_tos)
        want = len(rcpts) if copies is None else copies
        wait_until(lambda: len(got()) >= want, 30, "every recipient of %s" % t)
        m = self.up.find(t)[0]
        m.all_rcpts = got()
        return m

    def test_envelope_and_headers_at_the_next_hop(self):
        r = self.start()
        head = ('From: "Printer, 2nd floor" <root@printer.lan>\r\n'
                "Sender: www-data@web3.lan.test (the web server)\r\n"
                "Reply-To: Admins: root@printer.lan, Bob <bob@lan.test>;,\r\n"
                "  <carol@x.lan.test>\r\n"
                "To: root@printer.lan, root@web3.lan.test\r\n")
        # Two recipients rewritten into one address: one copy.
        m = self.send(r, "root@printer.lan",
                      ["root@web3.lan.test", "bob@remote.example", "root@x.lan.test"], head,
                      copies=2)
        self.assertEqual(m.mail_from, "it@example.org")
        self.assertEqual(m.all_rcpts, ["admins@example.org", "bob@remote.example"])
        h = dict(headers_of(m.data))
        self.assertEqual(h["From"], '"Printer, 2nd floor" <it@example.org>')
        self.assertEqual(h["Sender"], "www-data@example.org (the web server)")
        # bob@lan.test is lan.test itself, no subdomain: @.lan.test leaves it.
        self.assertEqual(h["Reply-To"],
                         "Admins: it@example.org, Bob <bob@lan.test>;, <carol@example.org>")
        # Only the three sender fields: To: and the body are as sent.
        self.assertIn(b"\r\nTo: root@printer.lan, root@web3.lan.test\r\n", m.data)
        self.assertIn(b"\r\n\r\nFrom: root@printer.lan stays in the body\r\n", m.data)
        # The folding of Reply-To: is kept byte for byte.
        self.assertIn(b"Bob <bob@lan.test>;,\r\n  <carol@example.org>\r\n", m.data)
        r.wait_log(r"rewrite-sender: from=<it@example\.org> \(rewritten\), 4 header addresses")
        r.wait_log(r"rewrite-recipient: <root@web3\.lan\.test> -> <admins@example\.org>")

    def test_unmatched_and_null_sender_untouched(self):
        r = self.start()
        head = "From: Alice <alice@example.org>\r\n"
        m = self.send(r, "alice@example.org", ["bob@remote.example"], head)
        self.assertEqual(m.mail_from, "alice@example.org")
        self.assertEqual(dict(headers_of(m.data))["From"], "Alice <alice@example.org>")
        m = self.send(r, "", ["bob@remote.example"], "From: MAILER-DAEMON@printer.lan\r\n")
        self.assertEqual(m.mail_from, "<>")
        self.assertEqual(dict(headers_of(m.data))["From"], "MAILER-DAEMON@printer.lan")

    def test_reload_reads_the_maps_again(self):
        r = self.start()
        m = self.send(r, "root@printer.lan", ["x@remote.example"], "From: root@printer.lan\r\n")
        self.assertEqual(m.mail_from, "it@example.org")
        write(self.smap, "@printer.lan @print.example.org\n")
        write(self.rmap, "x@remote.example y@remote.example\n")
        p = r.ctl("reload")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        m = self.send(r, "root@printer.lan", ["x@remote.example"], "From: root@printer.lan\r\n")
        self.assertEqual(m.mail_from, "root@print.example.org")
        self.assertEqual(m.rcpt_tos, ["y@remote.example"])
        self.assertEqual(dict(headers_of(m.data))["From"], "root@print.example.org")
        # A bad map is refused by reload; the running maps stay.
        write(self.smap, "@printer.lan not-an-address\n")
        p = r.ctl("reload")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("%s:1: bad replacement" % self.smap, p.stdout + p.stderr)
        r.allow_log(r"reload refused")
        m = self.send(r, "root@printer.lan", ["x@remote.example"], "From: root@printer.lan\r\n")
        self.assertEqual(m.mail_from, "root@print.example.org")

    def test_check_reports_bad_lines(self):
        conf = os.path.join(self.tmp, "relayd.conf")
        bad = write(os.path.join(self.tmp, "bad"),
                    "root@printer.lan it@example.org\n@@x bad\n@x.org not-an-address\n"
                    "only-one-field\n")
        write(conf, "hostname relay.test\nrewrite-sender %s\nrewrite-recipient %s/none\n"
              % (bad, self.tmp))
        p = subprocess.run([RELAYD, "-n", "-f", conf], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('%s:2: bad pattern "@@x" (user@domain, @domain or @.domain)' % bad,
                      p.stderr)
        self.assertIn('%s:3: bad replacement "not-an-address" (user@domain or @domain)' % bad,
                      p.stderr)
        self.assertIn('%s:4: expected "PATTERN REPLACEMENT"' % bad, p.stderr)
        self.assertIn("%s:3: rewrite-recipient: cannot read %s/none" % (conf, self.tmp),
                      p.stderr)
        write(bad, SENDER_MAP)
        write(conf, "hostname relay.test\nrewrite-sender %s\n" % bad)
        p = subprocess.run([RELAYD, "-n", "-f", conf], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()

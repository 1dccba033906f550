"""Sender identities (issue 12, point 3): with `auth-senders`, an
authenticated user (AUTH over STARTTLS) may use only the envelope senders
listed for it -- `553 5.7.1 Sender address not owned by user alice` at
MAIL FROM otherwise; a user with no line may use none; clients relaying by
mynetworks without AUTH are not checked. The check is on the sender the
client gave, before rewrite-sender. Bad lines are FILE:LINE errors of
`relayd -n`, and a reload reads the file again."""
import os
import subprocess
import tempfile
import unittest

from harness import RELAYD, Relayd
from intake_util import (USERS, Client, ReplyAsserts, Upstream, auth_users_file, plain_ir,
                         tls_conf, token)

SENDERS = "alice alice@lan.test @sales.example.org\n# bob has no line\n"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


class AuthSenders(ReplyAsserts, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.senders = write(os.path.join(cls.tmp.name, "senders"), SENDERS)
        smap = write(os.path.join(cls.tmp.name, "rewrite"), "@lan.test @example.org\n")
        cls.up = Upstream().__enter__()
        cls.r = Relayd(conf_extra=cls.up.conf() + tls_conf() + "auth-users %s\n"
                       % auth_users_file() + "auth-senders %s\nrewrite-sender %s\n"
                       % (cls.senders, smap))

    @classmethod
    def tearDownClass(cls):
        cls.r.cleanup()
        cls.up.__exit__(None, None, None)
        cls.tmp.cleanup()

    def session(self, user=None):
        c = Client(self.r.port)
        self.addCleanup(c.close)
        self.assertReply(c.greeting(), 220)
        self.assertReply(c.ehlo(), 250)
        if user is not None:
            self.assertReply(c.starttls(), 220, "2.0.0")
            self.assertReply(c.ehlo(), 250)
            self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(user, USERS[user])), 235, "2.7.0")
        return c

    def send(self, c, sender):
        """MAIL FROM:<sender> and, when taken, one message; the MAIL reply."""
        r = c.cmd("MAIL FROM:<%s>" % sender)
        if r.code != 250:
            return r, None
        t = token()
        self.assertReply(c.cmd("RCPT TO:<x@remote.example>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        q = c.cmd("From: %s\r\nSubject: %s\r\n\r\nhi\r\n." % (sender or "x@y.example", t))
        self.assertQueued(q)
        return r, self.up.wait_for(t)[0]

    def refused(self, c, user, sender):
        r = c.cmd("MAIL FROM:<%s>" % sender)
        self.assertReply(r, 553, "5.7.1", sender)
        self.assertEqual(r.text, "5.7.1 Sender address not owned by user %s" % user)
        # The session goes on: RCPT needs a MAIL that was taken.
        self.assertReply(c.cmd("RCPT TO:<x@remote.example>"), 503, "5.5.1")

    def test_listed_senders_pass_and_are_rewritten_after(self):
        c = self.session("alice")
        r, m = self.send(c, "alice@lan.test")
        self.assertReply(r, 250, "2.1.0")
        # Checked as the client sent it; rewritten afterwards.
        self.assertEqual(m.mail_from, "alice@example.org")
        r, m = self.send(c, "Anyone@Sales.Example.Org")
        self.assertReply(r, 250, "2.1.0")
        self.assertEqual(m.mail_from, "Anyone@Sales.Example.Org")
        # The null sender (bounces) is never refused.
        r, m = self.send(c, "")
        self.assertReply(r, 250, "2.1.0")

    def test_other_senders_refused(self):
        c = self.session("alice")
        for sender in ("bob@lan.test", "alice@example.org", "x@sub.sales.example.org",
                       "alice@lan.test.evil.example"):
            with self.subTest(sender=sender):
                self.refused(c, "alice", sender)
        self.r.wait_log(r"reject: MAIL from unknown\[127\.0\.0\.1\]: 553 5\.7\.1 Sender address "
                        r"not owned by user alice; from=<alice@example\.org>")

    def test_unlisted_user_may_use_none(self):
        c = self.session("bob")
        for sender in ("bob@lan.test", "alice@lan.test"):
            with self.subTest(sender=sender):
                self.refused(c, "bob", sender)

    def test_mynetworks_without_auth_unaffected(self):
        c = self.session()
        r, m = self.send(c, "bob@lan.test")
        self.assertReply(r, 250, "2.1.0")
        self.assertEqual(m.mail_from, "bob@example.org")


class AuthSendersCheck(unittest.TestCase):
    def test_bad_lines(self):
        with tempfile.TemporaryDirectory() as tmp:
            bad = write(os.path.join(tmp, "senders"),
                        "alice alice@example.org\nbob\ncarol carol@@x\n")
            conf = write(os.path.join(tmp, "relayd.conf"),
                         "hostname relay.test\nauth-senders %s\n" % bad)
            p = subprocess.run([RELAYD, "-n", "-f", conf], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn('%s:2: expected "USER ADDRESS-OR-@DOMAIN..." (up to 63)' % bad,
                          p.stderr)
            self.assertIn('%s:3: bad address "carol@@x" (user@domain, @domain or @.domain)'
                          % bad, p.stderr)


if __name__ == "__main__":
    unittest.main()

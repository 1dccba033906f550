"""test_intake_tls_nocert.py - intake without tls-cert/tls-key (issue 8,
point 5): STARTTLS is not advertised, a STARTTLS sent anyway gets
`454 4.7.0 TLS not available` and the session goes on in plaintext; AUTH
is not offered either and is refused with `538 5.7.11` (credentials only
travel over TLS). A submission listener without a certificate lets nobody
authenticate, so it takes no mail.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_intake_tls_nocert
"""
import unittest

from intake_util import ReplyAsserts, msg, queue_has_qid, relayd


class NoCertificate(ReplyAsserts, unittest.TestCase):
    def setUp(self):
        self.r = relayd()
        self.addCleanup(self.r.cleanup)

    def test_starttls_not_offered_and_refused_with_454(self):
        c = self.client()
        self.assertReply(c.greeting(), 220)
        ehlo = c.ehlo()
        self.assertReply(ehlo, 250)
        self.assertIn("PIPELINING", ehlo.keywords())
        self.assertNotIn("STARTTLS", ehlo.keywords())
        self.assertNotIn("AUTH", ehlo.keywords())
        self.assertReply(c.cmd("STARTTLS"), 454, "4.7.0")
        # Still in plaintext, still the same session: a message goes through.
        replies = c.transaction("s@lan.test", ["a@far.test"], msg("no tls"), helo=False)
        self.assertReply(replies[0], 250, "2.1.0")
        self.assertReply(replies[1], 250, "2.1.5")
        self.assertReply(replies[2], 354)
        qid = self.assertQueued(replies[3])
        self.assertTrue(queue_has_qid(self.r, qid))
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")

    def test_starttls_before_ehlo_and_repeated(self):
        c = self.client()
        self.assertReply(c.greeting(), 220)
        self.assertReply(c.cmd("STARTTLS"), 454, "4.7.0")
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("STARTTLS"), 454, "4.7.0")
        self.assertReply(c.cmd("STARTTLS"), 454, "4.7.0")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_auth_without_tls_is_refused(self):
        c = self.session()
        # No TLS can ever come: AUTH is refused as needing encryption, never
        # tried in plaintext.
        self.assertReply(c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), 538, "5.7.11")
        self.assertReply(c.cmd("AUTH LOGIN"), 538, "5.7.11")


class SubmissionWithoutCertificate(ReplyAsserts, unittest.TestCase):
    """A submission listener without a certificate (relayd -n accepts it):
    no TLS, so no AUTH, so no mail; never AUTH or relaying in plaintext."""

    def setUp(self):
        self.r = relayd(listens=[("submission", None)])
        self.addCleanup(self.r.cleanup)

    def test_no_tls_no_auth_no_mail(self):
        c = self.session()
        self.assertReply(c.cmd("STARTTLS"), 454, "4.7.0")
        self.assertReply(c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), 538, "5.7.11")
        self.assertReply(c.cmd("MAIL FROM:<s@lan.test>"), 530, "5.7.0")
        self.assertReply(c.cmd("RCPT TO:<a@far.test>"), 503, "5.5.1")


if __name__ == "__main__":
    unittest.main()

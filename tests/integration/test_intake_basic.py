"""test_intake_basic.py - intake's SMTP verbs, EHLO keywords, command
order, MAIL parameters, accepted messages and PIPELINING (issue 4, points
1, 2 and 4), with raw sockets, smtplib and swaks.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_intake_basic
"""
import smtplib
import unittest

from intake_util import (CLIENT_HELO, HOSTNAME, ReplyAsserts, SharedRelayd, accepted_lines, msg,
                         queue_count, queue_has_qid, swaks, token)

DEFAULT_SIZE = 35 * 1024 * 1024


class IntakeVerbs(SharedRelayd, ReplyAsserts, unittest.TestCase):
    """One relayd (intake + queue) for every test of this class; each test
    uses its own connections and its own sender token."""

    # --- greeting, EHLO, HELO -------------------------------------------------

    def test_greeting_names_host(self):
        c = self.client()
        g = c.greeting()
        self.assertReply(g, 220)
        self.assertTrue(g.lines[0].startswith(HOSTNAME), g)

    def test_ehlo_keywords_without_cert(self):
        c = self.client()
        c.greeting()
        r = c.ehlo()
        self.assertReply(r, 250)
        self.assertGreater(len(r.lines), 1, "EHLO reply must be multiline: %r" % r)
        self.assertTrue(r.lines[0].startswith(HOSTNAME), r)
        kw = r.keywords()
        for k in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN"):
            self.assertIn(k, kw, r)
        self.assertIn("SIZE", kw, r)
        self.assertEqual(kw["SIZE"], str(DEFAULT_SIZE), r)
        # no certificate configured: no STARTTLS; not in TLS: no AUTH
        self.assertNotIn("STARTTLS", kw, r)
        self.assertNotIn("AUTH", kw, r)

    def test_helo(self):
        c = self.client()
        c.greeting()
        r = c.cmd("HELO " + CLIENT_HELO)
        self.assertReply(r, 250)
        self.assertEqual(len(r.lines), 1, "HELO reply is one line: %r" % r)
        self.assertReply(c.cmd("MAIL FROM:<helo@client.example>"), 250, "2.1.0")

    def test_noop_rset_quit(self):
        c = self.session()
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
        self.assertTrue(c.wait_closed(5), "connection still open after QUIT")

    def test_vrfy_252(self):
        c = self.session()
        self.assertReply(c.cmd("VRFY someone"), 252, "2.0.0")

    def test_help_214(self):
        c = self.session()
        self.assertReply(c.cmd("HELP"), 214, "2.0.0")

    def test_expn_502(self):
        c = self.session()
        self.assertReply(c.cmd("EXPN staff"), 502, "5.5.1")

    def test_unknown_verb_500(self):
        c = self.session()
        for line in ("FOO", "XYZZY bar", "MAILFROM:<a@b.example>", "EHLOX x"):
            with self.subTest(line=line):
                self.assertReply(c.cmd(line), 500, "5.5.1")

    def test_bad_arguments_501(self):
        c = self.session()
        # outside a transaction
        self.assertReply(c.cmd("RSET now"), 501, "5.5.4", "RSET with an argument")
        self.assertReply(c.cmd("VRFY"), 501, "5.5.4", "VRFY without an argument")
        # a bad address is 5.1.7 (sender) / 5.1.3 (recipient), a bad
        # command or parameter 5.5.4 (RFC 3463)
        for line, enh in (("MAIL FROM:bogus", "5.1.7"), ("MAIL TO:<a@client.example>", "5.5.4"),
                          ("MAIL FROM:", "5.1.7"), ("MAIL FROM:<a@client.example", "5.1.7"),
                          ("MAIL", "5.5.4"), ("MAIL FROM:<a b@client.example>", "5.1.7"),
                          ("MAIL FROM:<a@client.example> SIZE=abc", "5.5.4"),
                          ("MAIL FROM:<a@client.example> SIZE", "5.5.4")):
            with self.subTest(line=line):
                self.assertReply(c.cmd(line), 501, enh)
        self.assertReply(c.cmd("MAIL FROM:<args@client.example>"), 250, "2.1.0")
        for line, enh in (("RCPT TO:bogus", "5.1.3"), ("RCPT FROM:<a@remote.example>", "5.5.4"),
                          ("RCPT TO:<>", "5.1.3"), ("RCPT TO:<a@remote.example", "5.1.3"),
                          ("RCPT", "5.5.4")):
            with self.subTest(line=line):
                self.assertReply(c.cmd(line), 501, enh)
        self.assertReply(c.cmd("RCPT TO:<a@remote.example>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA now"), 501, "5.5.4", "DATA with an argument")
        self.assertReply(c.cmd("EHLO"), 501, "5.5.4", "EHLO without a name")
        self.assertReply(c.cmd("HELO"), 501, "5.5.4", "HELO without a name")

    def test_wrong_order_503(self):
        c = self.client()
        c.greeting()
        self.assertReply(c.cmd("MAIL FROM:<order@client.example>"), 503, "5.5.1",
                         "MAIL before EHLO")
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("RCPT TO:<a@remote.example>"), 503, "5.5.1", "RCPT before MAIL")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1", "DATA before MAIL")
        self.assertReply(c.cmd("MAIL FROM:<order@client.example>"), 250, "2.1.0")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1", "DATA before RCPT")
        self.assertReply(c.cmd("MAIL FROM:<order@client.example>"), 503, "5.5.1", "nested MAIL")
        # the transaction survived the errors
        self.assertReply(c.cmd("RCPT TO:<a@remote.example>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)

    def test_verbs_case_insensitive(self):
        t = token("case")
        c = self.client()
        c.greeting()
        r = c.cmd("eHlO " + CLIENT_HELO)
        self.assertReply(r, 250)
        self.assertIn("PIPELINING", r.keywords())
        self.assertReply(c.cmd("nOoP"), 250, "2.0.0")
        self.assertReply(c.cmd("mail from:<%s@client.example>" % t), 250, "2.1.0")
        self.assertReply(c.cmd("RcPt To:<a@remote.example>"), 250, "2.1.5")
        self.assertReply(c.cmd("data"), 354)
        c.send(msg(t))
        qid = self.assertQueued(c.reply())
        self.assertReply(c.cmd("quit"), 221, "2.0.0")
        self.assertTrue(queue_has_qid(self.r, qid), "%s not in relayctl queue" % qid)

    def test_second_ehlo_resets_transaction(self):
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<reset@client.example>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<a@remote.example>"), 250, "2.1.5")
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("DATA"), 503, "5.5.1", "DATA after a second EHLO")
        self.assertReply(c.cmd("MAIL FROM:<reset@client.example>"), 250, "2.1.0",
                         "MAIL after a second EHLO is not nested")

    def test_rset_resets_transaction(self):
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<rset@client.example>"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<a@remote.example>"), 250, "2.1.5")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("RCPT TO:<a@remote.example>"), 503, "5.5.1")
        self.assertReply(c.cmd("MAIL FROM:<rset@client.example>"), 250, "2.1.0")

    def test_rcpt_postmaster(self):
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<pm@client.example>"), 250, "2.1.0")
        for rc in ("<Postmaster>", "<postmaster>", "<POSTMASTER>"):
            with self.subTest(rcpt=rc):
                self.assertReply(c.cmd("RCPT TO:" + rc), 250, "2.1.5")

    def test_null_sender(self):
        t = token("null")
        c = self.session()
        self.start_data(c, "", "%s@remote.example" % t)
        c.send(msg(t))
        self.assertQueued(c.reply())

    # --- MAIL parameters ----------------------------------------------------------

    def test_mail_parameters(self):
        c = self.session()
        cases = [
            ("SIZE=1000", 250, "2.1.0"),
            ("SIZE=%d" % DEFAULT_SIZE, 250, "2.1.0"),
            ("SIZE=%d" % (DEFAULT_SIZE + 1), 552, "5.3.4"),
            ("SIZE=99999999999999", 552, "5.3.4"),
            ("BODY=8BITMIME", 250, "2.1.0"),
            ("BODY=7BIT", 250, "2.1.0"),
            ("body=8bitmime", 250, "2.1.0"),
            ("SMTPUTF8", 250, "2.1.0"),
            ("BODY=8BITMIME SIZE=100 SMTPUTF8", 250, "2.1.0"),
            ("XFOO=bar", 555, "5.5.4"),
            ("RET=HDRS ENVID=abc+2B1", 250, "2.1.0"),
            ("RET=NONE", 501, "5.5.4"),
            ("NOTIFY=NEVER", 555, "5.5.4"),
            ("SIZE=100 XFOO", 555, "5.5.4"),
        ]
        for param, code, enh in cases:
            with self.subTest(param=param):
                self.assertReply(c.cmd("RSET"), 250, "2.0.0")
                self.assertReply(c.cmd("MAIL FROM:<p@client.example> " + param), code, enh)

    def test_8bitmime_message_queued(self):
        t = token("8bit")
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<%s@client.example> BODY=8BITMIME" % t), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<a@remote.example>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(msg(t).replace(b"hello", "gr\u00fc\u00dfe \u00e0 bient\u00f4t".encode()))
        self.assertQueued(c.reply())

    # --- accepted message ---------------------------------------------------------

    def test_accepted_message_is_queued_and_logged(self):
        t = token("acc")
        sender = "%s@client.example" % t
        c = self.session()
        rs = c.transaction(sender, ["a@remote.example", "b@remote.example"], msg(t), helo=False)
        self.assertReply(rs[0], 250, "2.1.0")
        self.assertReply(rs[1], 250, "2.1.5")
        self.assertReply(rs[2], 250, "2.1.5")
        self.assertReply(rs[3], 354)
        qid = self.assertQueued(rs[4])
        self.assertTrue(queue_has_qid(self.r, qid), "%s not in relayctl queue --json" % qid)
        self.r.wait_log(r"%s: from=<%s>, size=\d+, nrcpt=2, client=\[127\.0\.0\.1\]"
                        % (qid, sender))
        self.assertEqual(len(accepted_lines(self.r, t)), 1)
        self.assertEqual(queue_count(self.r, t), 1)
        # the session goes on: a second transaction on the same connection
        rs = c.transaction(sender, ["c@remote.example"], msg(t + "b"), helo=False)
        qid2 = self.assertQueued(rs[-1])
        self.assertNotEqual(qid, qid2)

    def test_smtplib_transaction(self):
        t = token("lib")
        with smtplib.SMTP("127.0.0.1", self.r.port, local_hostname=CLIENT_HELO,
                          timeout=10) as s:
            code, _ = s.ehlo()
            self.assertEqual(code, 250)
            self.assertTrue(s.has_extn("pipelining"))
            self.assertTrue(s.has_extn("enhancedstatuscodes"))
            code, text = s.mail("%s@client.example" % t)
            self.assertEqual(code, 250)
            self.assertTrue(text.startswith(b"2.1.0"), text)
            code, text = s.rcpt("x@remote.example")
            self.assertEqual(code, 250)
            self.assertTrue(text.startswith(b"2.1.5"), text)
            code, text = s.data(msg(t)[:-3])
            self.assertEqual(code, 250)
            self.assertRegex(text.decode(), r"^2\.0\.0 Ok: queued as \S+$")
            qid = text.decode().split()[-1]
        self.assertTrue(queue_has_qid(self.r, qid))

    def test_swaks_pipeline(self):
        t = token("swaks")
        p, lines = swaks("--server", "127.0.0.1:%d" % self.r.port, "--pipeline",
                         "--helo", CLIENT_HELO, "--from", "%s@client.example" % t,
                         "--to", "a@remote.example,b@remote.example",
                         "--header", "Subject: %s" % t, "--body", "line one\n.dotted\n")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        queued = [l for l in lines if l.startswith("250 2.0.0 Ok: queued as ")]
        self.assertEqual(len(queued), 1, p.stdout)
        qid = queued[0].split()[-1]
        self.assertTrue(queue_has_qid(self.r, qid))
        self.assertEqual(accepted_lines(self.r, t)[0][3], 2)

    # --- PIPELINING ---------------------------------------------------------------

    def test_pipelining_one_write(self):
        """MAIL, three RCPT, DATA, the content and QUIT in one write: every
        reply in order and the content kept."""
        t = token("pipe")
        c = self.session()
        c.send(b"MAIL FROM:<%s@client.example>\r\n" % t.encode()
               + b"RCPT TO:<a@remote.example>\r\nRCPT TO:<b@remote.example>\r\n"
               + b"RCPT TO:<c@remote.example>\r\nDATA\r\n" + msg(t) + b"QUIT\r\n")
        rs = [c.reply() for _ in range(7)]
        self.assertReply(rs[0], 250, "2.1.0")
        for i in (1, 2, 3):
            self.assertReply(rs[i], 250, "2.1.5")
        self.assertReply(rs[4], 354)
        qid = self.assertQueued(rs[5])
        self.assertReply(rs[6], 221, "2.0.0")
        self.assertTrue(c.wait_closed(5))
        self.assertTrue(queue_has_qid(self.r, qid))
        self.r.wait_log(r"%s: from=<%s@client.example>, size=\d+, nrcpt=3," % (qid, t))

    def test_pipelining_with_refused_rcpt(self):
        t = token("pipebad")
        c = self.session()
        c.send(b"MAIL FROM:<%s@client.example>\r\n" % t.encode()
               + b"RCPT TO:<a@remote.example>\r\nRCPT TO:bad-syntax\r\n"
               + b"RCPT TO:<c@remote.example>\r\nDATA\r\n" + msg(t) + b"NOOP\r\n")
        rs = [c.reply() for _ in range(7)]
        self.assertReply(rs[0], 250, "2.1.0")
        self.assertReply(rs[1], 250, "2.1.5")
        self.assertReply(rs[2], 501, "5.1.3")
        self.assertReply(rs[3], 250, "2.1.5")
        self.assertReply(rs[4], 354)
        qid = self.assertQueued(rs[5])
        self.assertReply(rs[6], 250, "2.0.0")
        self.r.wait_log(r"%s: from=<%s@client.example>, size=\d+, nrcpt=2," % (qid, t))

    def test_pipelining_two_transactions(self):
        t = token("pipe2")
        c = self.session()
        one = (b"MAIL FROM:<%s@client.example>\r\nRCPT TO:<a@remote.example>\r\nDATA\r\n"
               % t.encode() + msg(t))
        c.send(one + b"RSET\r\n" + one)
        rs = [c.reply() for _ in range(9)]
        self.assertEqual([(r.code, r.enhanced) for r in rs],
                         [(250, "2.1.0"), (250, "2.1.5"), (354, None), (250, "2.0.0"),
                          (250, "2.0.0"), (250, "2.1.0"), (250, "2.1.5"), (354, None),
                          (250, "2.0.0")], rs)
        q1, q2 = self.assertQueued(rs[3]), self.assertQueued(rs[8])
        self.assertNotEqual(q1, q2)
        self.assertEqual(queue_count(self.r, t), 2)

    # --- command line length --------------------------------------------------------

    def test_command_line_512_ok_513_refused(self):
        c = self.session()
        line = b"NOOP " + b"x" * (512 - 2 - 5)
        self.assertEqual(len(line) + 2, 512)
        self.assertReply(c.cmd(line), 250, "2.0.0", "a 512-octet command line")
        long_line = b"NOOP " + b"x" * (513 - 2 - 5)
        self.assertReply(c.cmd(long_line), 500, "5.5.2", "a 513-octet command line")

    def test_command_line_far_too_long(self):
        c = self.session()
        r = c.cmd(b"MAIL FROM:<" + b"a" * 5000 + b"@client.example>")
        self.assertReply(r, 500, "5.5.2", "a 5000-octet MAIL line")
        # the tail of the long line is not taken as a command
        self.assertReply(c.cmd("RCPT TO:<a@remote.example>"), 503, "5.5.1")


if __name__ == "__main__":
    unittest.main()

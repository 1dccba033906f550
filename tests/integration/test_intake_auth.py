"""test_intake_auth.py - intake's AUTH (issue 4, point 9): PLAIN and LOGIN
with and without initial response, `=` for empty, `*` to cancel, bad
base64, success 235 2.7.0, failure 535 5.7.8, 538 5.7.11 before TLS, 503
when already authenticated, 530 5.7.0 on submission/smtps without AUTH,
three failures -> 421 and close; authenticated clients relay anywhere, and
the Received: header says ESMTPSA. The auth-users file is made with
`openssl passwd -6`.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_intake_auth
"""
import base64
import re
import smtplib
import unittest

from harness import Relayd
from intake_util import (CLIENT_HELO, HOSTNAME, USERS, Client, ReplyAsserts, SharedRelayd,
                         Upstream, auth_users_file, b64, client_tls_ctx, headers_of, msg, plain_ir,
                         queue_has_qid, swaks, tls_conf, token)

ALICE, ALICE_PW = "alice", USERS["alice"]


class IntakeAuth(SharedRelayd, ReplyAsserts, unittest.TestCase):
    """127.0.0.1 is an outsider (mynetworks 10.0.0.0/8): only AUTH lets it relay."""
    LISTENS = [("smtp", None), ("submission", None), ("smtps", None)]

    @classmethod
    def relayd_conf(cls):
        # These tests fail AUTH many times from 127.0.0.1: the per-address
        # throttle (test_intake_throttle) is set out of their way.
        return (tls_conf() + "auth-users %s\nmynetworks 10.0.0.0/8\n" % auth_users_file()
                + "auth-fail-limit 100000\n")

    def plain(self, mode="smtp"):
        c = Client(self.r.ports[mode])
        self.addCleanup(c.close)
        self.assertReply(c.greeting(), 220)
        self.assertReply(c.ehlo(), 250)
        return c

    def tls(self, mode="smtp"):
        """A session inside TLS (STARTTLS, or smtps), after EHLO."""
        if mode == "smtps":
            c = Client(self.r.ports[mode], tls=True)
            self.addCleanup(c.close)
            self.assertReply(c.greeting(), 220)
        else:
            c = self.plain(mode)
            self.assertReply(c.starttls(), 220, "2.0.0")
        self.assertReply(c.ehlo(), 250)
        return c

    def decoded(self, r):
        self.assertEqual(r.code, 334, r)
        return base64.b64decode(r.text).decode().lower()

    # --- before TLS ---------------------------------------------------------------------

    def test_auth_before_tls_538(self):
        for mode in ("smtp", "submission"):
            c = self.plain(mode)
            kw = c.ehlo().keywords()
            self.assertNotIn("AUTH", kw, "%s: AUTH offered before TLS" % mode)
            self.assertIn("STARTTLS", kw, mode)
            for line in ("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW), "AUTH PLAIN", "AUTH LOGIN"):
                with self.subTest(mode=mode, line=line.split()[1]):
                    self.assertReply(c.cmd(line), 538, "5.7.11")

    def test_ehlo_auth_in_tls(self):
        for mode in ("smtp", "submission", "smtps"):
            with self.subTest(mode=mode):
                c = self.tls(mode)
                kw = c.ehlo().keywords()
                self.assertEqual(set(kw.get("AUTH", "").upper().split()), {"PLAIN", "LOGIN"})

    # --- PLAIN --------------------------------------------------------------------------

    def test_plain_initial_response(self):
        c = self.tls()
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW)), 235, "2.7.0")

    def test_plain_lowercase_mechanism(self):
        c = self.tls()
        self.assertReply(c.cmd("auth plain " + plain_ir(ALICE, ALICE_PW)), 235, "2.7.0")

    def test_plain_with_authzid_equal_user(self):
        c = self.tls()
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW, authzid=ALICE)),
                         235, "2.7.0")

    def test_plain_continuation(self):
        c = self.tls()
        r = c.cmd("AUTH PLAIN")
        self.assertEqual(r.code, 334, r)
        self.assertEqual(r.text.strip(), "", "PLAIN's challenge is empty: %r" % r)
        self.assertReply(c.cmd(plain_ir("bob", USERS["bob"])), 235, "2.7.0")

    def test_plain_wrong_password_535(self):
        # one session per attempt: three failures in one session close it
        for user, pw in ((ALICE, "wrong"), ("nobody", ALICE_PW), (ALICE, USERS["bob"]),
                         (ALICE, ALICE_PW.upper()), (ALICE, "")):
            with self.subTest(user=user, pw=pw):
                c = self.tls()
                self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(user, pw)), 535, "5.7.8")
                # a failure does not authenticate
                self.assertReply(c.cmd("MAIL FROM:<x@client.example>"), 250, "2.1.0")
                self.assertReply(c.cmd("RCPT TO:<x@outside.example>"), 554, "5.7.1")

    def test_plain_equals_is_empty_response(self):
        """`=` is an empty initial response: not a prompt, not a success."""
        c = self.tls()
        r = c.cmd("AUTH PLAIN =")
        self.assertNotEqual(r.code, 334, "`=` taken as no initial response: %r" % r)
        # an empty PLAIN message has no user and no password: it cannot be decoded
        self.assertReply(r, 501, "5.5.2", "AUTH PLAIN =")

    # --- LOGIN --------------------------------------------------------------------------

    def test_login_without_initial_response(self):
        c = self.tls()
        self.assertTrue(self.decoded(c.cmd("AUTH LOGIN")).startswith("username"))
        self.assertTrue(self.decoded(c.cmd(b64(ALICE))).startswith("password"))
        self.assertReply(c.cmd(b64(ALICE_PW)), 235, "2.7.0")

    def test_login_initial_response(self):
        c = self.tls()
        self.assertTrue(self.decoded(c.cmd("AUTH LOGIN " + b64("bob"))).startswith("password"))
        self.assertReply(c.cmd(b64(USERS["bob"])), 235, "2.7.0")

    def test_login_equals_is_empty_username(self):
        c = self.tls()
        r = c.cmd("AUTH LOGIN =")
        self.assertTrue(self.decoded(r).startswith("password"),
                        "`=` must be an empty user name, then the password prompt: %r" % r)
        self.assertReply(c.cmd(b64(ALICE_PW)), 535, "5.7.8")

    def test_login_wrong_password_535(self):
        c = self.tls()
        c.cmd("AUTH LOGIN " + b64(ALICE))
        self.assertReply(c.cmd(b64("nope")), 535, "5.7.8")

    # --- cancel, bad base64, order --------------------------------------------------------

    def test_cancel_501(self):
        for first, steps in (("AUTH PLAIN", 0), ("AUTH LOGIN", 0), ("AUTH LOGIN", 1)):
            with self.subTest(cmd=first, after=steps):
                c = self.tls()
                self.assertEqual(c.cmd(first).code, 334)
                if steps:
                    self.assertEqual(c.cmd(b64(ALICE)).code, 334)
                self.assertReply(c.cmd("*"), 501, "5.7.0", "AUTH cancelled")
                self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
                # cancelling is not authenticating
                self.assertReply(c.cmd("MAIL FROM:<x@client.example>"), 250, "2.1.0")
                self.assertReply(c.cmd("RCPT TO:<x@outside.example>"), 554, "5.7.1")

    def test_bad_base64_501(self):
        cases = [(["AUTH PLAIN !!!notbase64!!!"]), (["AUTH PLAIN AGFsaWNl*"]),
                 (["AUTH LOGIN %%%%"]), (["AUTH PLAIN", "this is not base64!"]),
                 (["AUTH LOGIN", "@@@@"]), (["AUTH LOGIN", b64(ALICE), "pass word"])]
        for lines in cases:
            with self.subTest(lines=lines):
                c = self.tls()
                for line in lines[:-1]:
                    self.assertReply(c.cmd(line), 334)
                self.assertReply(c.cmd(lines[-1]), 501, "5.5.2")

    def test_already_authenticated_503(self):
        c = self.tls()
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW)), 235, "2.7.0")
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW)), 503, "5.5.1")
        self.assertReply(c.cmd("AUTH LOGIN"), 503, "5.5.1")

    def test_auth_during_transaction_503(self):
        c = self.tls("smtp")
        self.assertReply(c.cmd("MAIL FROM:<x@client.example>"), 250, "2.1.0")
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW)), 503, "5.5.1")

    def test_unknown_mechanism_504(self):
        c = self.tls()
        self.assertReply(c.cmd("AUTH CRAM-MD5"), 504, "5.5.4")
        self.assertReply(c.cmd("AUTH"), 501, "5.5.4")

    def test_three_failures_421_and_close(self):
        c = self.tls()
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, "bad1")), 535, "5.7.8")
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, "bad2")), 535, "5.7.8")
        c.send("AUTH PLAIN " + plain_ir(ALICE, "bad3") + "\r\n")
        replies, closed = c.replies_until_close(idle=5)
        # the third failure is answered by the 421 alone
        self.assertEqual(len(replies), 1, replies)
        self.assertReply(replies[0], 421, "4.7.0")
        self.assertTrue(closed or c.wait_closed(5), "connection open after the 421")

    def test_failures_are_per_session(self):
        """Two failures, a success: the connection stays usable."""
        c = self.tls()
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, "bad1")), 535, "5.7.8")
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, "bad2")), 535, "5.7.8")
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW)), 235, "2.7.0")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    # --- AUTH required, AUTH lets relay -----------------------------------------------------

    def test_submission_requires_auth_530(self):
        c = self.plain("submission")
        self.assertReply(c.cmd("MAIL FROM:<x@client.example>"), 530, "5.7.0", "before TLS")
        self.assertReply(c.starttls(), 220, "2.0.0")
        c.ehlo()
        self.assertReply(c.cmd("MAIL FROM:<x@client.example>"), 530, "5.7.0", "in TLS")
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW)), 235, "2.7.0")
        self.assertReply(c.cmd("MAIL FROM:<x@client.example>"), 250, "2.1.0")

    def test_smtps_requires_auth_530(self):
        t = token("smtpsauth")
        c = self.tls("smtps")
        self.assertReply(c.cmd("MAIL FROM:<x@client.example>"), 530, "5.7.0")
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW)), 235, "2.7.0")
        rs = c.transaction("%s@client.example" % t, ["a@outside.example"], msg(t), helo=False)
        self.assertQueued(rs[-1])

    def test_unauthenticated_outsider_denied_authenticated_relays(self):
        t = token("authrelay")
        c = self.tls("smtp")
        self.assertReply(c.cmd("MAIL FROM:<%s@client.example>" % t), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<a@outside.example>"), 554, "5.7.1")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("AUTH LOGIN " + b64(ALICE)), 334)
        self.assertReply(c.cmd(b64(ALICE_PW)), 235, "2.7.0")
        rs = c.transaction("%s@client.example" % t, ["a@outside.example"], msg(t), helo=False)
        self.assertReply(rs[1], 250, "2.1.5")
        qid = self.assertQueued(rs[-1])
        self.assertTrue(queue_has_qid(self.r, qid))

    def test_password_with_space(self):
        c = self.tls("submission")
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir("bob", USERS["bob"])), 235, "2.7.0")

    # --- real clients -----------------------------------------------------------------

    def test_swaks_auth(self):
        for mech in ("PLAIN", "LOGIN"):
            for mode, tls_arg in (("submission", "-tls"), ("smtp", "-tls"),
                                  ("smtps", "--tls-on-connect")):
                with self.subTest(mech=mech, mode=mode):
                    t = token("swauth")
                    p, lines = swaks("--server", "127.0.0.1:%d" % self.r.ports[mode], tls_arg,
                                     "--auth", mech, "--auth-user", ALICE,
                                     "--auth-password", ALICE_PW,
                                     "--from", "%s@client.example" % t,
                                     "--to", "x@outside.example")
                    self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                    self.assertTrue(any(l.startswith("235 2.7.0") for l in lines), p.stdout)
                    self.assertTrue(any(l.startswith("250 2.0.0 Ok: queued as ")
                                        for l in lines), p.stdout)

    def test_swaks_bad_password(self):
        p, lines = swaks("--server", "127.0.0.1:%d" % self.r.ports["submission"], "-tls",
                         "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", "wrong",
                         "--from", "x@client.example", "--to", "x@outside.example")
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertTrue(any(l.startswith("535 5.7.8") for l in lines), p.stdout)

    def test_smtplib_login(self):
        t = token("liblogin")
        with smtplib.SMTP("127.0.0.1", self.r.ports["submission"], local_hostname=CLIENT_HELO,
                          timeout=10) as s:
            s.starttls(context=client_tls_ctx())
            s.ehlo()
            code, text = s.login(ALICE, ALICE_PW)
            self.assertEqual(code, 235)
            self.assertTrue(text.startswith(b"2.7.0"), text)
            s.mail("%s@client.example" % t)
            s.rcpt("x@outside.example")
            code, text = s.data(msg(t)[:-3])
            self.assertEqual(code, 250, text)
        with smtplib.SMTP("127.0.0.1", self.r.ports["submission"], timeout=10) as s:
            s.starttls(context=client_tls_ctx())
            s.ehlo()
            with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                s.login(ALICE, "wrong")
            self.assertEqual(cm.exception.smtp_code, 535)
            self.assertTrue(cm.exception.smtp_error.startswith(b"5.7.8"))


class IntakeAuthEndToEnd(ReplyAsserts, unittest.TestCase):
    def test_received_says_esmtpsa_and_headers_added(self):
        t = token("esmtpsa")
        with Upstream() as up, Relayd(conf_extra=up.conf() + tls_conf()
                                      + "auth-users %s\nmynetworks 10.0.0.0/8\n"
                                      % auth_users_file(),
                                      listens=[("submission", None)]) as r:
            with Client(r.port) as c:
                c.greeting()
                c.ehlo()
                self.assertReply(c.starttls(), 220, "2.0.0")
                c.ehlo()
                self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(ALICE, ALICE_PW)), 235, "2.7.0")
                rs = c.transaction("%s@client.example" % t, ["%s@outside.example" % t],
                                   b"Subject: " + t.encode() + b"\r\n\r\nbody\r\n.\r\n",
                                   helo=False)
                qid = self.assertQueued(rs[-1])
            hs = headers_of(up.wait_for(t)[0].data)
            self.assertEqual(hs[0][0], "Received")
            self.assertRegex(hs[0][1], r"^from %s \(\[127\.0\.0\.1\]\).* by %s(?: \([^)]*\))* "
                             r"with ESMTPSA id %s for <%s@outside\.example>; "
                             % (re.escape(CLIENT_HELO), re.escape(HOSTNAME), re.escape(qid),
                                re.escape(t)))
            # an authenticated client's message gets Message-ID: and Date:
            self.assertEqual(len([v for n, v in hs if n.lower() == "message-id"]), 1, hs)
            self.assertEqual(len([v for n, v in hs if n.lower() == "date"]), 1, hs)
            # the password never reaches the log
            self.assertNotIn(ALICE_PW, r.log())


if __name__ == "__main__":
    unittest.main()

"""test_intake_tls.py - intake's TLS (issue 4, point 8): STARTTLS on the
smtp listener (raw, smtplib, swaks -tls), TLS from the first byte on smtps
(swaks --tls-on-connect, smtplib.SMTP_SSL), the state reset after STARTTLS,
STARTTLS command injection (CVE-2011-0411), TLS 1.0/1.1 refused, the log
line with version and cipher, and `with ESMTPS` in Received: at the next hop.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_intake_tls
"""
import re
import smtplib
import socket
import ssl
import threading
import unittest

from harness import Relayd
from intake_util import (CLIENT_HELO, HOSTNAME, USERS, Client, ReplyAsserts, SharedRelayd,
                         Upstream, auth_users_file, cert, client_tls_ctx, headers_of, msg,
                         queue_has_qid, swaks, tls_conf, token)


def client_speaks(version):
    """True if this Python/OpenSSL can complete a handshake at exactly
    `version` against a local server that allows it; the refusal tests are
    only meaningful then."""
    c, k = cert()
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(c, k)
    sctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    sctx.minimum_version = ssl.TLSVersion.TLSv1
    ls = socket.socket()
    ls.settimeout(5)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    done = []

    def serve():
        try:
            s, _ = ls.accept()
            s.settimeout(5)
            with sctx.wrap_socket(s, server_side=True):
                pass
        except (OSError, ssl.SSLError):
            pass
        done.append(1)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        with socket.create_connection(ls.getsockname(), timeout=5) as s:
            with client_tls_ctx(version, seclevel0=True).wrap_socket(s) as t:
                return t.version() is not None
    except (OSError, ssl.SSLError):
        return False
    finally:
        th.join(6)
        ls.close()


class IntakeTLS(SharedRelayd, ReplyAsserts, unittest.TestCase):
    LISTENS = [("smtp", None), ("smtps", None)]

    @classmethod
    def relayd_conf(cls):
        return tls_conf() + "auth-users %s\n" % auth_users_file()

    def client(self, mode="smtp", **kw):
        c = Client(self.r.ports[mode], tls=(mode == "smtps"), **kw)
        self.addCleanup(c.close)
        return c

    def test_ehlo_offers_starttls_then_auth(self):
        c = self.client()
        c.greeting()
        kw = c.ehlo().keywords()
        self.assertIn("STARTTLS", kw)
        self.assertNotIn("AUTH", kw, "AUTH offered before TLS")
        self.assertReply(c.starttls(), 220, "2.0.0")
        kw = c.ehlo().keywords()
        self.assertNotIn("STARTTLS", kw, "STARTTLS offered inside TLS")
        self.assertIn("AUTH", kw)
        self.assertEqual(set(kw["AUTH"].upper().split()), {"PLAIN", "LOGIN"})
        for k in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "SIZE"):
            self.assertIn(k, kw)

    def test_starttls_forgets_state(self):
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<before@client.example>"), 250, "2.1.0")
        self.assertReply(c.starttls(), 220, "2.0.0")
        # the EHLO and the transaction before STARTTLS are forgotten
        self.assertReply(c.cmd("MAIL FROM:<after@client.example>"), 503, "5.5.1",
                         "MAIL without EHLO after STARTTLS")
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("RCPT TO:<a@remote.example>"), 503, "5.5.1",
                         "RCPT after STARTTLS without a new MAIL")

    def test_starttls_inside_tls_refused(self):
        c = self.session()
        self.assertReply(c.starttls(), 220, "2.0.0")
        c.ehlo()
        self.assertReply(c.cmd("STARTTLS"), 503, "5.5.1", "STARTTLS inside TLS")

    def test_starttls_with_argument_501(self):
        c = self.session()
        self.assertReply(c.cmd("STARTTLS now"), 501, "5.5.4")

    def test_starttls_raw_message_and_log(self):
        t = token("tlsraw")
        c = self.session()
        self.assertReply(c.starttls(), 220, "2.0.0")
        version, cipher = c.sock.version(), c.sock.cipher()[0]
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))
        rs = c.transaction("%s@client.example" % t, ["a@remote.example"], msg(t))
        qid = self.assertQueued(rs[-1])
        self.assertTrue(queue_has_qid(self.r, qid))
        # the log names the TLS version and the cipher of this session
        self.r.wait_log(re.escape(version) + r".*" + re.escape(cipher))

    def test_smtplib_starttls(self):
        t = token("tlslib")
        with smtplib.SMTP("127.0.0.1", self.r.ports["smtp"], local_hostname=CLIENT_HELO,
                          timeout=10) as s:
            s.ehlo()
            self.assertTrue(s.has_extn("starttls"))
            code, text = s.starttls(context=client_tls_ctx())
            self.assertEqual((code, text), (220, b"2.0.0 Ready to start TLS"))
            s.ehlo()
            self.assertFalse(s.has_extn("starttls"))
            self.assertTrue(s.has_extn("auth"))
            self.assertEqual(s.mail("%s@client.example" % t), (250, b"2.1.0 Ok"))
            self.assertEqual(s.rcpt("a@remote.example"), (250, b"2.1.5 Ok"))
            code, text = s.data(msg(t)[:-3])
            self.assertEqual(code, 250)
            self.assertRegex(text.decode(), r"^2\.0\.0 Ok: queued as \S+$")

    def test_swaks_starttls(self):
        t = token("tlsswaks")
        p, lines = swaks("--server", "127.0.0.1:%d" % self.r.ports["smtp"], "-tls",
                         "--helo", CLIENT_HELO, "--from", "%s@client.example" % t,
                         "--to", "a@remote.example")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("<~ ", p.stdout, "swaks did not talk TLS")
        self.assertTrue(any(l.startswith("250 2.0.0 Ok: queued as ") for l in lines), p.stdout)

    def test_swaks_pipeline_starttls(self):
        t = token("tlspipe")
        p, lines = swaks("--server", "127.0.0.1:%d" % self.r.ports["smtp"], "-tls",
                         "--pipeline", "--from", "%s@client.example" % t,
                         "--to", "a@remote.example,b@remote.example")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(any(l.startswith("250 2.0.0 Ok: queued as ") for l in lines), p.stdout)

    def test_smtps_tls_from_first_byte(self):
        c = self.client("smtps")
        self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))
        g = c.greeting()
        self.assertReply(g, 220)
        self.assertTrue(g.lines[0].startswith(HOSTNAME), g)
        kw = c.ehlo().keywords()
        self.assertNotIn("STARTTLS", kw)
        self.assertEqual(set(kw.get("AUTH", "").upper().split()), {"PLAIN", "LOGIN"})
        self.assertReply(c.cmd("MAIL FROM:<x@client.example>"), 530, "5.7.0")

    def test_smtps_plaintext_client_gets_no_smtp(self):
        """A plaintext client on the smtps port gets no SMTP greeting."""
        c = Client(self.r.ports["smtps"], timeout=3)
        self.addCleanup(c.close)
        data = c.pending(2.0)
        self.assertFalse(data.startswith(b"220"), data)

    def test_swaks_tls_on_connect(self):
        t = token("smtps")
        user = "alice"
        p, lines = swaks("--server", "127.0.0.1:%d" % self.r.ports["smtps"], "--tls-on-connect",
                         "--auth", "PLAIN", "--auth-user", user, "--auth-password", USERS[user],
                         "--from", "%s@client.example" % t, "--to", "a@remote.example")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(any(l.startswith("235 2.7.0") for l in lines), p.stdout)
        self.assertTrue(any(l.startswith("250 2.0.0 Ok: queued as ") for l in lines), p.stdout)

    def test_smtplib_smtps(self):
        t = token("smtpslib")
        with smtplib.SMTP_SSL("127.0.0.1", self.r.ports["smtps"], local_hostname=CLIENT_HELO,
                              timeout=10, context=client_tls_ctx()) as s:
            s.ehlo()
            code, text = s.login("bob", USERS["bob"])
            self.assertEqual(code, 235)
            self.assertTrue(text.startswith(b"2.7.0"), text)
            self.assertEqual(s.mail("%s@client.example" % t), (250, b"2.1.0 Ok"))
            self.assertEqual(s.rcpt("a@remote.example"), (250, b"2.1.5 Ok"))
            code, text = s.data(msg(t)[:-3])
            self.assertEqual(code, 250)
            self.assertRegex(text.decode(), r"^2\.0\.0 Ok: queued as \S+$")

    # --- CVE-2011-0411 -----------------------------------------------------------------

    def test_starttls_injection_rset(self):
        """STARTTLS and RSET in one write: the RSET is thrown away, never
        answered inside TLS."""
        c = self.session()
        c.send(b"STARTTLS\r\nRSET\r\n")
        r = c.reply()
        self.assertReply(r, 220, "2.0.0")
        c.tls_handshake()  # fails if plaintext bytes followed the 220
        c.send(b"EHLO " + CLIENT_HELO.encode() + b"\r\n")
        first = c.reply()
        self.assertEqual(first.code, 250, first)
        self.assertGreater(len(first.lines), 1,
                           "first reply inside TLS is not EHLO's (an injected RSET's?): %r"
                           % first)
        self.assertTrue(first.lines[0].startswith(HOSTNAME), first)
        self.assertEqual(c.pending(1.0), b"", "extra replies inside TLS")
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_starttls_injection_mail(self):
        """An injected MAIL is not executed inside TLS either."""
        c = self.session()
        c.send(b"STARTTLS\r\nEHLO evil.example\r\nMAIL FROM:<injected@evil.example>\r\n")
        self.assertReply(c.reply(), 220, "2.0.0")
        c.tls_handshake()
        first = c.ehlo()
        self.assertEqual(first.code, 250, first)
        self.assertGreater(len(first.lines), 1, first)
        self.assertEqual(c.pending(1.0), b"", "extra replies inside TLS")
        self.assertReply(c.cmd("RCPT TO:<a@remote.example>"), 503, "5.5.1",
                         "the injected MAIL was executed")

    # --- protocol versions --------------------------------------------------------------

    def handshake(self, mode, ctx):
        """Returns the negotiated version or raises ssl.SSLError/OSError."""
        if mode == "smtps":
            c = Client(self.r.ports["smtps"], tls=True, tls_ctx=ctx)
            self.addCleanup(c.close)
            return c.sock.version()
        c = self.session()
        self.assertReply(c.cmd("STARTTLS"), 220, "2.0.0")
        c.tls_handshake(ctx)
        return c.sock.version()

    def test_tls_1_0_and_1_1_refused(self):
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            if not client_speaks(version):
                self.skipTest("this Python/OpenSSL cannot speak %s" % version.name)
            for mode in ("smtp", "smtps"):
                with self.subTest(version=version.name, mode=mode):
                    with self.assertRaises((ssl.SSLError, ConnectionResetError,
                                            BrokenPipeError)):
                        got = self.handshake(mode, client_tls_ctx(version, seclevel0=True))
                        self.fail("handshake at %s succeeded (%s)" % (version.name, got))

    def test_tls_1_2_and_1_3_accepted(self):
        for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                              (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            for mode in ("smtp", "smtps"):
                with self.subTest(version=name, mode=mode):
                    self.assertEqual(self.handshake(mode, client_tls_ctx(version)), name)


class IntakeTLSEndToEnd(ReplyAsserts, unittest.TestCase):
    """`with ESMTPS id QID` in the Received: header the next hop sees."""

    def test_received_says_esmtps(self):
        t = token("esmtps")
        with Upstream() as up, Relayd(conf_extra=up.conf() + tls_conf()) as r:
            with Client(r.port) as c:
                c.greeting()
                c.ehlo()
                self.assertReply(c.starttls(), 220, "2.0.0")
                rs = c.transaction("%s@client.example" % t, ["%s@remote.example" % t], msg(t))
                qid = self.assertQueued(rs[-1])
            m = up.wait_for(t)[0]
            name, value = headers_of(m.data)[0]
            self.assertEqual(name, "Received")
            self.assertRegex(value, r"^from %s \(\[127\.0\.0\.1\]\).* by %s(?: \([^)]*\))* "
                             r"with ESMTPS id %s for <%s@remote\.example>; "
                             % (re.escape(CLIENT_HELO), re.escape(HOSTNAME), re.escape(qid),
                                re.escape(t)))


if __name__ == "__main__":
    unittest.main()

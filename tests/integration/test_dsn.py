"""test_dsn.py - DSN (RFC 3461), bounces people can read and programs can
parse (RFC 3464, RFC 6533) and the postmaster directive (issue 11, points 5,
6 and the postmaster part of 8).

Intake advertises DSN and checks RET=, ENVID=, NOTIFY=, ORCPT= (501 5.5.4
with a reason). Reports honour NOTIFY (NEVER: none; DELAY: a delay notice;
SUCCESS to a next hop without DSN: "relayed") and RET/bounce-size-limit
(the message whole as message/rfc822, or its headers), carry
Original-Envelope-Id and Original-Recipient, the remote reply itself after
"smtp;" and relayd's own findings as X-Relayd. Every report is parsed by
Python's email package with no defect in any part. A UTF-8 recipient
makes an RFC 6533 report. A real Postfix (Debian's, own config directory,
never the system one) is the downstream (its queue file and log show the
DSN parameters relayd passed on) and the upstream (`sendmail -N -R -V`
relaying through relayd). Mail to postmaster@hostname goes to the
postmaster address; a report that cannot be delivered goes there too.

Run: cd tests/integration && BIN=bin /usr/bin/python3 -m unittest -v test_dsn
"""
import email
import email.policy
import os
import re
import smtplib
import subprocess
import unittest

from dlv_base import DeliveryCase
from fakes.postfix_instance import PostfixInstance
from harness import BIN, free_port, wait_until

SENDMAIL = os.path.join(BIN, "sendmail")

MX = [("ex.test", "mx.ex.test", 10), ("snd.test", "mx.snd.test", 10),
      ("pf.test", "mx.pf.test", 10)]
HOSTS = {"mx.ex.test": "127.0.0.2", "mx.snd.test": "127.0.0.3", "mx.pf.test": "127.0.0.4"}
DEST_REPLIES = {"bad": "550 5.1.1 No such user", "later": "450 4.2.1 Mailbox busy",
                "later2": "450 4.2.1 Mailbox busy", "j\u00f6rg": "550 5.1.1 No such user"}


def body(subject, extra=b""):
    return (b"From: s@snd.test\r\nTo: x@ex.test\r\nSubject: " + subject +
            b"\r\n\r\nThe body line.\r\n" + extra)


class Report:
    """One delivery report as the sender's MX received it: parsed by the
    email package (.msg), and its status part read as RFC 3464 blocks
    (.fields: the per-message block first) from the raw bytes."""

    def __init__(self, fake_msg):
        self.raw = fake_msg.data
        self.mail_from = fake_msg.mail_from
        self.rcpt_tos = fake_msg.rcpt_tos
        self.msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        self.parts = self.msg.get_payload()
        boundary = self.msg.get_param("boundary").encode()
        raw_parts = self.raw.split(b"\r\n--" + boundary)
        status = raw_parts[2].split(b"\r\n\r\n", 1)[1].decode("utf-8")
        self.fields = []
        for block in status.strip("\r\n").split("\r\n\r\n"):
            self.fields.append(dict(line.split(": ", 1) for line in block.split("\r\n")))

    def defects(self):
        return [(p.get_content_type(), p.defects) for p in self.msg.walk() if p.defects]

    def types(self):
        return [p.get_content_type() for p in self.parts]

    def rcpt(self, final):
        for f in self.fields[1:]:
            if f["Final-Recipient"].split("; ", 1)[1] == final:
                return f
        raise AssertionError("no block for %s in %r" % (final, self.fields))


class DsnCase(DeliveryCase):
    BASE_CONF = "retry-min 1s\nretry-max 2s\noutbound-tls none\n"

    def start(self, extra=""):
        dns = self.dns(MX, HOSTS)
        self.dest = self.mx("127.0.0.2", rcpt=DEST_REPLIES, smtputf8=True)
        self.snd = self.mx("127.0.0.3", smtputf8=True)
        return self.relayd(dns, extra)

    def submit(self, r, sender, rcpts, data, mail_opts=()):
        """rcpts: [(address, [RCPT options])]; returns the queue id."""
        with smtplib.SMTP("127.0.0.1", r.port, timeout=20) as s:
            s.ehlo("client.test")
            code, msg = s.mail(sender, list(mail_opts))
            self.assertEqual(code, 250, msg)
            for addr, opts in rcpts:
                code, msg = s.rcpt(addr, list(opts))
                self.assertEqual(code, 250, msg)
            code, msg = s.data(data)
            self.assertEqual(code, 250, msg)
        return re.search(rb"queued as (\S+)", msg).group(1).decode()

    def reports(self, n, timeout=30.0):
        """The first n messages at the sender's MX, as Reports, each parsed
        with no defect."""
        msgs = wait_until(lambda: len(self.snd.messages) >= n and list(self.snd.messages),
                          timeout, "%d report(s) at the sender's MX" % n)
        out = [Report(m) for m in msgs]
        for rep in out:
            self.assertEqual(rep.defects(), [], rep.raw[:2000])
            self.assertEqual(rep.mail_from, "<>")
            self.assertEqual(rep.msg["From"], "Mail Delivery System <MAILER-DAEMON@relayd.test>")
        return out


class Intake(DsnCase):
    def test_dsn_offered_and_parameters_checked(self):
        r = self.start()
        with smtplib.SMTP("127.0.0.1", r.port, timeout=20) as s:
            s.ehlo("client.test")
            self.assertTrue(s.has_extn("dsn"))
            mail_cases = [
                ("RET=FULL ENVID=Q+2B1", 250, "2.1.0 Ok"),
                ("RET=HDRS", 250, "2.1.0 Ok"),
                ("RET=ALL", 501, "5.5.4 Bad RET parameter: FULL or HDRS"),
                ("ENVID=a+0Ab", 501, "5.5.4 Bad ENVID parameter"),
                ("ENVID=" + "x" * 101, 501, "5.5.4 Bad ENVID parameter"),
                ("RET=FULL RET=HDRS", 501, "5.5.4 Error: a parameter given twice"),
                ("NOTIFY=NEVER", 555, "5.5.4 Unsupported parameter"),
            ]
            for params, code, text in mail_cases:
                with self.subTest(mail=params):
                    s.rset()
                    got = s.docmd("MAIL FROM:<s@snd.test> " + params)
                    self.assertEqual(got[0], code, got)
                    self.assertTrue(got[1].decode().startswith(text), got)
            s.rset()
            self.assertEqual(s.docmd("MAIL FROM:<s@snd.test>")[0], 250)
            rcpt_cases = [
                ("NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;a+2Bb@ex.test", 250, "2.1.5 Ok"),
                ("NOTIFY=NEVER", 250, "2.1.5 Ok"),
                ("NOTIFY=NEVER,DELAY", 501, "5.5.4 Bad NOTIFY parameter"),
                ("NOTIFY=SOMETIMES", 501, "5.5.4 Bad NOTIFY parameter"),
                ("NOTIFY=DELAY,DELAY", 501, "5.5.4 Bad NOTIFY parameter"),
                ("ORCPT=a@ex.test", 501, "5.5.4 Bad ORCPT parameter"),
                ("ORCPT=rfc822;a+FFb", 501, "5.5.4 Bad ORCPT parameter"),
                ("NOTIFY=NEVER NOTIFY=NEVER", 501, "5.5.4 Error: a parameter given twice"),
                ("RET=FULL", 555, "5.5.4 Unsupported parameter"),
            ]
            for params, code, text in rcpt_cases:
                with self.subTest(rcpt=params):
                    got = s.docmd("RCPT TO:<a@ex.test> " + params)
                    self.assertEqual(got[0], code, got)
                    self.assertTrue(got[1].decode().startswith(text), got)


class Failures(DsnCase):
    def test_failure_reports_full_headers_never(self):
        r = self.start("bounce-size-limit 2K\n")
        orcpt = ["NOTIFY=FAILURE", "ORCPT=rfc822;Bad+2Balias@ex.test"]
        q_full = self.submit(r, "s@snd.test", [("bad@ex.test", orcpt)], body(b"full"),
                             ["RET=FULL", "ENVID=ENV+2Bfull"])
        self.wait_status(r, q_full, "bad@ex.test", "bounced")
        q_hdrs = self.submit(r, "s@snd.test", [("bad@ex.test", [])], body(b"hdrs"),
                             ["RET=HDRS"])
        self.wait_status(r, q_hdrs, "bad@ex.test", "bounced")
        q_big = self.submit(r, "s@snd.test", [("bad@ex.test", [])],
                            body(b"big", b"x" * 70 + b"\r\n") * 40)
        self.wait_status(r, q_big, "bad@ex.test", "bounced")
        q_never = self.submit(r, "s@snd.test", [("bad@ex.test", ["NOTIFY=NEVER"])],
                              body(b"never"))
        r.wait_log(r"%s: to=<bad@ex\.test>: no failure notification \(NOTIFY\)" % q_never)
        r.wait_log(r"%s: removed" % q_never)
        reps = self.reports(3)
        r.wait_log(r"%s: removed" % q_big)
        self.assertEqual(len(self.snd.messages), 3, "NOTIFY=NEVER must not be reported")
        by_subject = {}
        for rep in reps:
            self.assertEqual(rep.rcpt_tos, ["s@snd.test"])
            self.assertEqual(rep.msg.get_content_type(), "multipart/report")
            self.assertEqual(rep.msg.get_param("report-type"), "delivery-status")
            self.assertEqual(rep.msg["Subject"], "Undelivered Mail Returned to Sender")
            blk = rep.rcpt("bad@ex.test")
            self.assertEqual(blk["Action"], "failed")
            self.assertEqual(blk["Status"], "5.1.1")
            self.assertEqual(blk["Remote-MTA"], "dns; mx.ex.test")
            # The remote reply itself after "smtp;"; the explanation for people.
            self.assertEqual(blk["Diagnostic-Code"], "smtp; 550 5.1.1 No such user")
            self.assertIn("<bad@ex.test>: host mx.ex.test[127.0.0.2] said: 550 5.1.1 No such "
                          "user (in reply to RCPT TO)", rep.parts[0].get_content())
            returned = rep.parts[2]
            if returned.get_content_type() == "message/rfc822":
                subject = returned.get_payload()[0]["Subject"]
                self.assertIn("The body line.", returned.get_payload()[0].get_content())
            else:
                self.assertEqual(returned.get_content_type(), "text/rfc822-headers")
                self.assertNotIn("The body line.", returned.get_content())
                subject = re.search(r"Subject: (\w+)", returned.get_content()).group(1)
            by_subject[subject] = rep
        self.assertEqual(sorted(by_subject), ["big", "full", "hdrs"])
        self.assertEqual(by_subject["full"].types(),
                         ["text/plain", "message/delivery-status", "message/rfc822"])
        self.assertEqual(by_subject["hdrs"].types()[2], "text/rfc822-headers")
        self.assertEqual(by_subject["big"].types()[2], "text/rfc822-headers")
        full = by_subject["full"]
        self.assertEqual(full.fields[0]["Original-Envelope-Id"], "ENV+full")
        self.assertEqual(full.fields[0]["Reporting-MTA"], "dns; relayd.test")
        self.assertEqual(full.rcpt("bad@ex.test")["Original-Recipient"],
                         "rfc822; Bad+alias@ex.test")
        self.assertNotIn("Original-Envelope-Id", by_subject["hdrs"].fields[0])
        self.assertNotIn("Original-Recipient", by_subject["hdrs"].rcpt("bad@ex.test"))

    def test_relayd_findings_are_x_relayd(self):
        # An address literal nobody listens on: relayd's own finding, no remote reply.
        r = self.start("queue-lifetime 1s\n")
        qid = self.submit(r, "s@snd.test", [("u@[127.0.0.9]", [])], body(b"local"))
        self.wait_status(r, qid, "u@[127.0.0.9]", "bounced", timeout=30)
        rep = self.reports(1)[0]
        diag = rep.rcpt("u@[127.0.0.9]")["Diagnostic-Code"]
        self.assertTrue(diag.startswith("X-Relayd; "), diag)
        self.assertNotIn("smtp;", rep.raw.decode(errors="replace"))


class DelayAndRelayed(DsnCase):
    def test_delay_notice_and_relayed_report(self):
        r = self.start("delay-warning 1s\n")
        qid = self.submit(r, "s@snd.test",
                          [("good@ex.test", ["NOTIFY=SUCCESS"]),
                           ("quiet@ex.test", []),
                           ("later@ex.test", ["NOTIFY=DELAY,FAILURE"]),
                           ("later2@ex.test", ["NOTIFY=FAILURE"])],
                          body(b"mixed"), ["ENVID=E42"])
        self.wait_status(r, qid, "good@ex.test", "sent")
        r.wait_log(r"%s: sender success notification: [0-9A-F]+" % qid)
        r.wait_log(r"%s: sender delay notification: [0-9A-F]+" % qid, timeout=30)
        reps = self.reports(2)
        kinds = {rep.rcpt(rep.fields[1]["Final-Recipient"].split("; ")[1])["Action"]: rep
                 for rep in reps}
        self.assertEqual(sorted(kinds), ["delayed", "relayed"])
        relayed = kinds["relayed"]
        # Only the recipient that asked for SUCCESS, from a next hop without DSN.
        self.assertEqual([f["Final-Recipient"] for f in relayed.fields[1:]],
                         ["rfc822; good@ex.test"])
        blk = relayed.fields[1]
        self.assertEqual(blk["Status"], "2.0.0")
        self.assertEqual(blk["Remote-MTA"], "dns; mx.ex.test")
        self.assertEqual(blk["Diagnostic-Code"], "smtp; 250 2.0.0 Ok: queued as FAKE")
        self.assertEqual(relayed.fields[0]["Original-Envelope-Id"], "E42")
        self.assertEqual(relayed.types()[2], "text/rfc822-headers")
        self.assertEqual(relayed.msg["Subject"], "Successful Mail Delivery Report")
        delayed = kinds["delayed"]
        self.assertEqual([f["Final-Recipient"] for f in delayed.fields[1:]],
                         ["rfc822; later@ex.test"])
        self.assertEqual(delayed.fields[1]["Status"], "4.2.1")
        self.assertEqual(delayed.fields[1]["Diagnostic-Code"], "smtp; 450 4.2.1 Mailbox busy")
        self.assertIn("Last-Attempt-Date", delayed.fields[1])
        self.assertEqual(delayed.types()[2], "text/rfc822-headers")


class Utf8(DsnCase):
    def test_utf8_recipient_gets_rfc6533_report(self):
        r = self.start()
        data = ("From: s@snd.test\r\nTo: j\u00f6rg@ex.test\r\nSubject: caf\u00e9\r\n\r\n"
                "Gr\u00fc\u00dfe.\r\n").encode()
        qid = self.submit(r, "s@snd.test", [("j\u00f6rg@ex.test", ["NOTIFY=FAILURE"])], data,
                          ["SMTPUTF8", "BODY=8BITMIME"])
        self.wait_status(r, qid, "j\u00f6rg@ex.test", "bounced")
        rep = self.reports(1)[0]
        self.assertEqual(rep.msg.get_param("report-type"), "global-delivery-status")
        # UTF-8 headers come back as headers only (message/global-headers, RFC
        # 6533), so that the report can still be made 7-bit for an old next hop.
        self.assertEqual(rep.types(), ["text/plain", "message/global-delivery-status",
                                       "message/global-headers"])
        for p in rep.parts:
            self.assertEqual(p["Content-Transfer-Encoding"], "8bit", p.get_content_type())
        blk = rep.rcpt("j\u00f6rg@ex.test")
        self.assertEqual(blk["Final-Recipient"], "utf-8; j\u00f6rg@ex.test")
        self.assertEqual(blk["Diagnostic-Code"], "smtp; 550 5.1.1 No such user")
        self.assertIn("Subject: caf\u00e9", rep.raw.decode())
        # Sent on with what it needs: 8-bit content and a UTF-8 message.
        opts = [o.upper() for o in self.snd.mail_options[-1]]
        self.assertIn("SMTPUTF8", opts)
        self.assertIn("BODY=8BITMIME", opts)


@unittest.skipUnless(PostfixInstance.available(), "Postfix is not installed (make deps)")
class WithPostfix(DsnCase):
    def postfix(self, listen_port, relay_port):
        pf = PostfixInstance(("127.0.0.4", listen_port), ("127.0.0.1", relay_port))
        self.addCleanup(pf.stop)
        return pf

    def test_dsn_passed_on_to_postfix(self):
        r = self.start()
        pf = self.postfix(self.mx_port, free_port())
        qid = self.submit(r, "s@snd.test",
                          [("user@pf.test", ["NOTIFY=SUCCESS,FAILURE",
                                             "ORCPT=rfc822;Orig+2Buser@ex.test"]),
                           ("other@pf.test", ["NOTIFY=NEVER"])],
                          body(b"to postfix"), ["RET=HDRS", "ENVID=QQ+2B314"])
        self.wait_status(r, qid, "user@pf.test", "sent")
        # Postfix's smtpd got the parameters as relayd sends them (xtext again)...
        pf.wait_log(r"< \S+\[127\.0\.0\.1\]: MAIL FROM:<s@snd\.test> SIZE=\d+ RET=HDRS "
                    r"ENVID=QQ\+2B314")
        pf.wait_log(r"< \S+\[127\.0\.0\.1\]: RCPT TO:<user@pf\.test> NOTIFY=SUCCESS,FAILURE "
                    r"ORCPT=rfc822;Orig\+2Buser@ex\.test")
        pf.wait_log(r"< \S+\[127\.0\.0\.1\]: RCPT TO:<other@pf\.test> NOTIFY=NEVER")
        # ...and its queue file keeps them decoded.
        held = wait_until(pf.held, 20, "the message held by Postfix")
        env = pf.postcat(held[0])
        self.assertIn("envelope_id=QQ+314", env)
        self.assertIn("ret_flags=2", env)            # HDRS
        self.assertIn("notify_flags=6", env)         # SUCCESS|FAILURE
        self.assertIn("notify_flags=1", env)         # NEVER
        self.assertIn("dsn_orig_rcpt=rfc822;Orig+user@ex.test", env)
        # A next hop with DSN takes SUCCESS on: no report from relayd.
        r.wait_log(r"%s: removed" % qid)
        self.assertNotIn("success notification", r.log())
        self.assertEqual(self.snd.messages, [])

    def test_postfix_sendmail_through_relayd(self):
        r = self.start()
        pf = self.postfix(free_port(), r.port)
        pf.sendmail(["-N", "success,failure", "-R", "hdrs", "-V", "envid-77", "-f", "s@snd.test",
                     "a@ex.test"], body(b"from postfix"))
        m = pf.wait_log(r"to=<a@ex\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*"
                        r"status=sent \(250 2\.0\.0 Ok: queued as (\S+)\)")
        qid = m.group(1)
        self.wait_status(r, qid, "a@ex.test", "sent")
        # The fake MX offers no DSN: relayd tells the sender it relayed.
        rep = self.reports(1)[0]
        self.assertEqual(rep.rcpt_tos, ["s@snd.test"])
        self.assertEqual(rep.fields[0]["Original-Envelope-Id"], "envid-77")
        blk = rep.rcpt("a@ex.test")
        self.assertEqual(blk["Action"], "relayed")
        self.assertEqual(blk["Original-Recipient"], "rfc822; a@ex.test")
        self.assertEqual(rep.types()[2], "text/rfc822-headers")
        self.assertEqual(self.dest.messages[0].rcpt_tos, ["a@ex.test"])


class RelaydSendmail(DsnCase):
    """relayd's own sendmail takes Postfix's -N, -R, -V, through the socket
    and through the maildrop directory alike."""

    def sendmail(self, r, args, data):
        p = subprocess.run([SENDMAIL, "-C", r.conf_path] + args, input=data,
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)

    def check_relayed(self, envid, subject):
        rep = [x for x in self.reports(len(self.snd.messages) or 1)
               if x.fields[0].get("Original-Envelope-Id") == envid]
        self.assertEqual(len(rep), 1)
        self.assertEqual(rep[0].rcpt("a@ex.test")["Action"], "relayed")
        self.assertEqual(rep[0].types()[2], "text/rfc822-headers")
        self.assertIn("Subject: " + subject, rep[0].parts[2].get_content())

    def test_sendmail_dsn_options(self):
        r = self.start()
        self.sendmail(r, ["-N", "success", "-R", "hdrs", "-V", "sock 1", "-f", "s@snd.test",
                          "a@ex.test"], b"Subject: by socket\n\nx\n")
        wait_until(lambda: self.snd.messages, 30, "the relayed report")
        self.check_relayed("sock 1", "by socket")
        # NOTIFY=NEVER: a failure stays quiet.
        self.sendmail(r, ["-N", "never", "-f", "s@snd.test", "bad@ex.test"],
                      b"Subject: quiet\n\nx\n")
        r.wait_log(r"to=<bad@ex\.test>: no failure notification \(NOTIFY\)")
        # The maildrop way (the socket hidden, as when relayd is not there).
        sock = os.path.join(r.state_dir, "submit.sock")
        hidden = os.path.join(r.dir, "hidden.sock")
        os.rename(sock, hidden)
        self.addCleanup(lambda: os.path.exists(hidden) and os.rename(hidden, sock))
        self.sendmail(r, ["-N", "success,failure", "-V", "drop 2", "-f", "s@snd.test",
                          "a@ex.test"], b"Subject: by maildrop\n\nx\n")
        wait_until(lambda: len(self.snd.messages) >= 2, 30, "the second relayed report")
        self.check_relayed("drop 2", "by maildrop")
        self.assertEqual(len(self.snd.messages), 2)


class Postmaster(DsnCase):
    def test_postmaster_mail_goes_to_the_address(self):
        r = self.start("postmaster admin@snd.test\n")
        qid = self.submit(r, "s@ex.test", [("postmaster", []), ("PostMaster@relayd.test", [])],
                          body(b"to the postmaster"))
        self.wait_status(r, qid, "admin@snd.test", "sent")
        msgs = self.snd.wait_messages(1)
        self.assertEqual(msgs[0].rcpt_tos, ["admin@snd.test"])
        self.assertIn(b"Subject: to the postmaster", msgs[0].data)
        self.assertEqual(self.dest.messages, [])

    def test_double_bounce_goes_to_postmaster_once(self):
        r = self.start("postmaster admin@snd.test\n")
        qid = self.submit(r, "", [("bad@ex.test", [])], body(b"a report that fails"))
        self.wait_status(r, qid, "bad@ex.test", "bounced")
        r.wait_log(r"%s: postmaster non-delivery notification: [0-9A-F]+" % qid)
        rep = self.reports(1)[0]
        self.assertEqual(rep.rcpt_tos, ["admin@snd.test"])
        self.assertEqual(rep.msg["Subject"],
                         "Postmaster Copy: Undelivered Mail Returned to Sender")
        self.assertEqual(rep.rcpt("bad@ex.test")["Diagnostic-Code"],
                         "smtp; 550 5.1.1 No such user")

    def test_without_postmaster_double_bounce_is_logged_and_dropped(self):
        r = self.start()
        qid = self.submit(r, "", [("bad@ex.test", [])], body(b"a report that fails"))
        self.wait_status(r, qid, "bad@ex.test", "bounced")
        r.wait_log(r"%s: undeliverable report discarded \(sender <>, no postmaster\)" % qid)
        r.wait_log(r"%s: removed" % qid)
        self.assertEqual(self.snd.messages, [])


if __name__ == "__main__":
    unittest.main()

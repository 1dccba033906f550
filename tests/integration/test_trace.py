"""test_trace.py - `relayctl trace QID` (issue 15, point 2): the SMTP
dialogue of the latest delivery attempt per destination, kept in the queue
while the message is, and quoted in bounces. With a real relayd, dnsmasq and
fake MX servers (aiosmtpd) on 127.0.0.x:

- delivered then retried: one domain takes the message, the other answers
  451; the trace shows both dialogues (the first to its 250 after the
  content, reduced to its size), and after a retry the second domain's block
  is the new attempt's, alone;
- deferred through a smarthost with STARTTLS and AUTH: the TLS event with
  protocol, certificate subject and verification, the AUTH secrets masked;
- bounced: the bounce quotes the dialogue up to the 550, without the RCPT
  of the recipient it is not about, and the message (gone from the queue)
  has no trace any more.

Run: cd tests/integration && BIN=bin /usr/bin/python3 -m unittest -v test_trace
"""
import base64
import os
import re
import shutil
import tempfile
import unittest

from dlv_base import DeliveryCase, delivery_reports
from harness import free_port, make_cert, wait_until, write_root_only

MX = [("ok.test", "mx.ok.test", 10), ("grey.test", "mx.grey.test", 10),
      ("snd.test", "mx.snd.test", 10)]
HOSTS = {"mx.ok.test": "127.0.0.2", "mx.grey.test": "127.0.0.3", "mx.snd.test": "127.0.0.4"}
LINE = r"\d\d:\d\d:\d\d\.\d\d\d"


class Trace(DeliveryCase):
    def tmp(self):
        d = tempfile.mkdtemp(prefix="relayd-trace-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def trace(self, r, qid):
        p = r.ctl("trace", qid)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    @staticmethod
    def blocks(text):
        """{domain: block text} of a trace."""
        out = {}
        for m in re.finditer(r"^--- recipients at (\S+): the latest attempt.*?\n(.*?)(?=^--- |\Z)",
                             text, re.M | re.S):
            out[m.group(1)] = m.group(2)
        return out

    def test_delivered_then_retried(self):
        dns = self.dns(MX, HOSTS)
        ok = self.mx("127.0.0.2")
        self.mx("127.0.0.3", rcpt={"b": "451 4.7.1 Greylisted, try again later"})
        r = self.relayd(dns)  # retry-min 1s
        qid = self.send(r, "s@snd.test", ["a@ok.test", "b@grey.test"])
        self.wait_status(r, qid, "a@ok.test", "sent")
        self.wait_status(r, qid, "b@grey.test", "deferred")
        ok.wait_messages(1)
        first = self.blocks(self.trace(r, qid))
        self.assertEqual(sorted(first), ["grey.test", "ok.test"])
        a = first["ok.test"]
        # Each command sent and each reply read, with times, in order.
        for rx in (r"attempt for 1 recipient\(s\) at ok\.test, next hop: MX of ok\.test",
                   LINE + r" \* DNS: ok\.test\. MX 10 mx\.ok\.test\.",
                   LINE + r" \* connecting to mx\.ok\.test\[127\.0\.0\.2\]:%d" % self.mx_port,
                   LINE + r" < 220 ", LINE + r" > EHLO relayd\.test",
                   LINE + r" < 250-\S+\n", LINE + r" > MAIL FROM:<s@snd\.test>",
                   LINE + r" > RCPT TO:<a@ok\.test>", LINE + r" > DATA", LINE + r" < 354",
                   LINE + r" > \(message content, \d+ bytes as sent, ending with \"\.\"\)",
                   LINE + r" < 250 2\.0\.0 Ok: queued as FAKE"):
            self.assertRegex(a, rx)
        self.assertNotIn("Hello.", a)  # the content itself is not in the trace
        self.assertLess(a.index("> RCPT TO"), a.index("> DATA"))
        self.assertLess(a.index("> DATA"), a.index("(message content"))
        b = first["grey.test"]
        self.assertRegex(b, LINE + r" > RCPT TO:<b@grey\.test>\n" + LINE
                         + r" < 451 4\.7\.1 Greylisted, try again later")
        self.assertNotIn("> DATA", b)  # nobody accepted: no DATA (one by one or pipelined)
        # The retry (retry-min 1s) replaces grey.test's block; ok.test's stays.
        r.wait_log(r"%s: to=<b@grey\.test>.*status=deferred[^\n]*\n(.*\n)*.*%s: to=<b@grey\.test>"
                   r".*status=deferred" % (re.escape(qid), re.escape(qid)), timeout=20)
        wait_until(lambda: self.blocks(self.trace(r, qid)).get("grey.test") != b, 10,
                   "grey.test's block to be the retry's")
        second = self.blocks(self.trace(r, qid))
        self.assertEqual(second["ok.test"], a)
        self.assertEqual(second["grey.test"].count(" attempt for "), 1)
        self.assertEqual(second["grey.test"].count("> RCPT TO:<b@grey.test>"), 1)
        self.assertIn("< 451 4.7.1 Greylisted", second["grey.test"])

    def test_deferred_tls_and_auth_masked(self):
        dns = self.dns(MX, HOSTS)
        port = free_port("127.0.0.6")
        d = self.tmp()
        self.mx("127.0.0.6", port=port, tls_cert=make_cert(d, cn="smarthost.test"),
                auth={"alice": "s3cretpw"}, rcpt={"c": "450 4.2.0 Mailbox busy"})
        authf = write_root_only(os.path.join(d, "auth"), "alice s3cretpw\n")
        r = self.relayd(dns, "smarthost [127.0.0.6]:%d tls=starttls auth=%s\n" % (port, authf))
        qid = self.send(r, "s@snd.test", ["c@ok.test"])
        self.wait_status(r, qid, "c@ok.test", "deferred")
        t = self.trace(r, qid)
        self.assertRegex(t, LINE + r" > STARTTLS\n" + LINE + r" < 220 ")
        self.assertRegex(t, LINE + r" \* TLS established: TLSv1\.[23] \S+; certificate subject "
                         r"/CN=smarthost\.test, issuer /CN=smarthost\.test; chain not verified: "
                         r"self.signed certificate \(not required by the policy\)")
        self.assertRegex(t, LINE + r" > AUTH PLAIN \*{8} \(user name and password, masked\)\n"
                         + LINE + r" < 235 ")
        for secret in ("s3cretpw", base64.b64encode(b"\0alice\0s3cretpw").decode(),
                       base64.b64encode(b"s3cretpw").decode()):
            self.assertNotIn(secret, t)
            self.assertNotIn(secret, r.log())
        self.assertRegex(t, LINE + r" < 450 4\.2\.0 Mailbox busy")
        # A message that does not exist, and a usage error.
        p = r.ctl("trace", "0123456789ABCDEF")
        self.assertEqual((p.returncode, (p.stdout + p.stderr).strip()),
                         (1, "relayctl: no such message: 0123456789ABCDEF"))
        self.assertEqual(r.ctl("trace").returncode, 2)

    def test_bounced_quotes_the_dialogue(self):
        dns = self.dns(MX, HOSTS)
        self.mx("127.0.0.2", rcpt={"gone": "550 5.1.1 No such user here"})
        snd = self.mx("127.0.0.4")
        r = self.relayd(dns)
        qid = self.send(r, "s@snd.test", ["gone@ok.test", "fine@ok.test"])
        self.wait_status(r, qid, "gone@ok.test", "bounced")
        self.wait_status(r, qid, "fine@ok.test", "sent")
        wait_until(lambda: delivery_reports(snd), 15, "the bounce at the sender's MX")
        body = snd.messages[0].data.decode()
        human = body.split("Content-Type: message/delivery-status")[0]
        self.assertIn("Transcript of the latest delivery attempt(s)", human)
        self.assertIn("<recipients at ok.test>", human)
        self.assertRegex(human, LINE + r" > RCPT TO:<gone@ok\.test>\r\n" + LINE
                         + r" < 550 5\.1\.1 No such user here\r\n")
        self.assertNotIn("* DNS:", human)  # shortened: the dialogue, not the lookups
        # The report is about gone@: fine@'s RCPT and its reply are left out.
        self.assertNotIn("fine@ok.test", human)
        self.assertIn("(2 line(s) about other recipients left out)", human)
        self.assertRegex(human, r"> DATA\r\n\S+ < 354 .*\r\n\S+ > \(message content")
        # The message left the queue with its report: so did its trace.
        r.wait_log(r"%s: removed" % re.escape(qid))
        p = r.ctl("trace", qid)
        self.assertEqual(p.returncode, 1, p.stdout)


if __name__ == "__main__":
    unittest.main()

"""test_clean_output.py - nothing a client or a remote server sends reaches a
log line, a Received: header or relayctl's output raw (issue 9, point 7):

- an AUTH username holding LF and an ESC sequence cannot forge a log line
  or clear the operator's terminal (PLAIN and LOGIN);
- HELO/EHLO names with control characters, or that are neither a domain
  nor an address literal, get 501 5.5.2; the real-world forms (bare names,
  '_', address literals) are accepted and reach Received: as given;
- a remote server whose 4xx reply holds ill-formed UTF-8 and control
  bytes: the delivery log line is clean, `relayctl queue --json` decodes
  with strict UTF-8 and json, and `queue`/`show` print no control bytes.

The remote server (e2e_util.RawMX) answers RCPT with raw bytes that no
SMTP library would send.

Run: cd tests/integration && BIN=bin /usr/bin/python3 -m unittest -v test_clean_output
"""
import json
import subprocess
import unittest

from e2e_util import RawMX
from harness import RELAYCTL, Relayd, free_port
from intake_util import (Client, ReplyAsserts, SharedRelayd, auth_users_file, b64, msg, plain_ir,
                         tls_conf, token)

ESC_CLEAR = "\x1b[2J"
FORGED = "relayd[1]: intake: forged line"
# Raw bytes a remote server puts in its reply: ill-formed UTF-8, ESC, BEL, DEL, C1 CSI.
REMOTE_TEXT = b"4.3.0 temp \xff\xfe \xc3( \x1b[2J\x07\x7f \xc2\x9b31m caf\xc3\xa9 end"


def control_bytes(data):
    """Offsets of octets a terminal would act on (all C0 but LF and TAB, DEL)."""
    return [i for i, b in enumerate(data) if (b < 0x20 and b not in (0x0a, 0x09)) or b == 0x7f]


class LogAsserts:
    def log_bytes(self):
        with open(self.r.log_path, "rb") as f:
            return f.read()

    def assertCleanLog(self):
        data = self.log_bytes()
        bad = control_bytes(data)
        self.assertEqual(bad, [], "control bytes in the log: %r"
                         % [data[max(0, i - 40):i + 10] for i in bad[:3]])
        data.decode("utf-8")  # strict: raises on ill-formed UTF-8
        self.assertNotIn(b"\xc2\x9b", data)

    def assertNoForgedLine(self):
        for line in self.log_bytes().decode("utf-8").splitlines():
            self.assertFalse(line.startswith(FORGED) or line.startswith("Jan"),
                             "forged log line: %r" % line)


class ClientBytes(SharedRelayd, ReplyAsserts, LogAsserts, unittest.TestCase):
    @classmethod
    def relayd_conf(cls):
        return tls_conf() + "auth-users %s\nauth-fail-limit 1000\n" % auth_users_file()

    def tls(self):
        c = self.session()
        self.assertReply(c.starttls(), 220, "2.0.0")
        self.assertReply(c.ehlo(), 250)
        return c

    def test_auth_username_cannot_forge_a_line(self):
        evil = "evil\n" + FORGED + ESC_CLEAR
        c = self.tls()
        self.assertReply(c.cmd("AUTH PLAIN " + plain_ir(evil, "pw")), 535, "5.7.8")
        self.assertReply(c.cmd("AUTH LOGIN " + b64(evil)), 334)
        self.assertReply(c.cmd(b64("pw")), 535, "5.7.8")
        m = self.r.wait_log(r"warning: unknown\[127\.0\.0\.1\]: SASL LOGIN authentication failed: "
                            r"authentication failure, sasl_username=evil\?relayd\[1\]: "
                            r"intake: forged line\?\[2J")
        self.assertTrue(m)
        self.assertNoForgedLine()
        self.assertCleanLog()

    def test_helo_with_control_characters_refused(self):
        start = len(self.r.log())
        for name in (b"evil\x01host", b"host\x1b[2J", b"h\x7fst", b"caf\xc3\xa9.example",
                     b"bad\xff", b"[tag:x]", b"-dash.example", b"a..b", b"<x@y>"):
            for verb in (b"EHLO", b"HELO"):
                with self.subTest(verb=verb, name=name):
                    c = self.client()
                    self.assertReply(c.greeting(), 220)
                    self.assertReply(c.cmd(verb + b" " + name), 501, "5.5.2")
                    # Not recorded: MAIL still wants a HELO.
                    self.assertReply(c.cmd("MAIL FROM:<a@example.org>"), 503, "5.5.1")
        self.r.wait_log(r"invalid HELO/EHLO name from \[127\.0\.0\.1\]: host\?\[2J", start=start)
        self.assertCleanLog()

    def test_helo_real_world_forms_accepted(self):
        for name in ("localhost", "DESKTOP-7QX2B", "my_pc", "my_pc.corp.example", "192.0.2.7",
                     "[127.0.0.1]", "[IPv6:::1]", "Mail.Example.ORG"):
            for verb in ("EHLO", "HELO"):
                with self.subTest(verb=verb, name=name):
                    c = self.client()
                    self.assertReply(c.greeting(), 220)
                    self.assertReply(c.cmd("%s %s" % (verb, name)), 250)

    def test_received_header_has_the_checked_name(self):
        tok = token("rcv")
        c = self.client()
        self.assertReply(c.greeting(), 220)
        self.assertReply(c.cmd("EHLO my_pc.corp.example"), 250)
        out = c.transaction("%s@client.example" % tok, ["rcpt@remote.example"], msg(tok),
                            helo=False)
        qid = self.assertQueued(out[-1])
        p = self.r.ctl("show", qid)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^Received: from my_pc\.corp\.example \(\[127\.0\.0\.1\]\)")

    def test_unknown_command_bytes(self):
        c = self.session()
        self.assertReply(c.cmd(b"\x1b[2JXYZZY \xff\xfe" + FORGED.encode()), 500, "5.5.1")
        self.assertReply(c.cmd(b"NOOP"), 250, "2.0.0")
        self.assertCleanLog()

    def test_queue_text_output_clean(self):
        """Header bytes a client sent come out of `relayctl show` without
        control characters (8-bit text in headers stays when well-formed)."""
        tok = token("hdr")
        c = self.session()
        body = ("From: <a@client.example>\r\nSubject: %s \x1b[2J\x07 caf\xe9\r\n\r\nhi\r\n.\r\n"
                % tok).encode("latin-1")
        out = c.transaction("%s@client.example" % tok, ["rcpt@remote.example"], body,
                            helo=False)
        qid = self.assertQueued(out[-1])
        p = subprocess.run([RELAYCTL, "-f", self.r.conf_path, "show", qid], capture_output=True,
                           timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(tok.encode(), p.stdout)
        self.assertEqual(control_bytes(p.stdout), [], p.stdout)
        p.stdout.decode("utf-8")


class RemoteBytes(LogAsserts, unittest.TestCase):
    """A deferral whose remote reply holds ill-formed UTF-8 and control bytes."""

    def setUp(self):
        port = free_port()
        self.mx = RawMX("127.0.0.1", port, stall_sessions=0,
                        replies={b"RCPT": b"451 " + REMOTE_TEXT})
        self.addCleanup(self.mx.stop)
        self.r = Relayd(conf_extra="smarthost [127.0.0.1]:%d tls=none\nretry-min 1h\n"
                        "retry-max 2h\n" % port)
        self.addCleanup(self.r.cleanup)

    def ctl_bytes(self, *args):
        p = subprocess.run([RELAYCTL, "-f", self.r.conf_path] + list(args), capture_output=True,
                           timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_remote_reply_bytes(self):
        tok = token("remote")
        with Client(self.r.port) as c:
            c.greeting()
            c.ehlo()
            out = c.transaction("%s@client.example" % tok, ["rcpt@remote.example"], msg(tok),
                                helo=False)
            qid = out[-1].qid
            self.assertIsNotNone(qid, out)
        self.r.wait_log(r"%s: to=<rcpt@remote\.example>, .*status=deferred" % qid, timeout=30)
        line = [l for l in self.log_bytes().split(b"\n") if b"status=deferred" in l][0]
        self.assertIn(b"temp ?? ?( ?[2J?? ??31m caf\xc3\xa9 end", line)
        self.assertCleanLog()

        # --json: strict UTF-8, valid JSON, the text with its controls escaped.
        data = self.ctl_bytes("queue", "--json")
        self.assertEqual(control_bytes(data.rstrip(b"\n")), [], data)
        msgs = json.loads(data.decode("utf-8", errors="strict"))
        rcpt = [m for m in msgs if m["qid"] == qid][0]["recipients"][0]
        self.assertEqual(rcpt["state"], "deferred")
        # The delivery worker already turned C0 controls into '?' when it read
        # the reply; ill-formed UTF-8 becomes U+FFFD and C1 is escaped here.
        err = rcpt["last_error"]
        self.assertIn("temp \ufffd\ufffd \ufffd( ?[2J?? \x9b31m caf\u00e9 end", err)
        self.assertIn(b" \\u009b31m caf\xc3\xa9 end", data)

        # Text output: no control octets, well-formed UTF-8.
        for args in (("queue",), ("show", qid)):
            with self.subTest(args=args):
                out = self.ctl_bytes(*args)
                self.assertIn(b"temp ?? ?( ?[2J?? ??31m caf\xc3\xa9 end", out)
                self.assertEqual(control_bytes(out), [], out)
                out.decode("utf-8")


if __name__ == "__main__":
    unittest.main()

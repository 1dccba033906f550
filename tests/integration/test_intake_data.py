"""test_intake_data.py - intake's DATA phase (issue 4, point 5): strict
line ends (every SMTP smuggling sequence over a raw socket), bare CR/LF/NUL
in commands, line and message size limits, the Received: loop limit, and,
end to end through a fake upstream (aiosmtpd as the smarthost), dot
unstuffing, the Received: header and the Message-ID:/Date: added for
mynetworks clients.

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_intake_data
"""
import email.utils
import re
import socket
import time
import unittest
from datetime import datetime, timezone

from harness import Relayd, wait_until
from intake_util import (CLIENT_HELO, HOSTNAME, Client, ReplyAsserts, SharedRelayd, Upstream,
                         accepted_lines, headers_of, msg, queue_count, queue_messages, token)

MAX_SIZE = 10 * 1024

# Every sequence that some MTA took for the end of data (SMTP smuggling,
# 2023), and a few neighbours. Each holds a bare CR, a bare LF or a NUL,
# so the message carrying it must be refused with a 5xx.
SMUGGLING = [
    ("LF.LF", b"\n.\n"),
    ("LF.CRLF", b"\n.\r\n"),
    ("CR.CR", b"\r.\r"),
    ("CR.LF", b"\r.\n"),
    ("CRLF.CR", b"\r\n.\r"),
    ("CRLF.LF", b"\r\n.\n"),
    ("CRLF NUL.CRLF", b"\r\n\x00.\r\n"),
    ("CR.CRLF", b"\r.\r\n"),
    ("LF.CR", b"\n.\r"),
    ("CRLF.NUL CRLF", b"\r\n.\x00\r\n"),
    ("LF LF.LF", b"\n\n.\n"),
    ("CR CRLF.CRLF", b"\r\r\n.\r\n"),
]

# Bare line ends and NULs inside commands: (name, bytes sent).
BAD_COMMANDS = [
    ("bare LF", b"NOOP\nNOOP\r\n"),
    ("bare CR", b"NOOP\rNOOP\r\n"),
    ("NUL", b"NO\x00OP\r\n"),
    ("NUL at end", b"NOOP\x00\r\n"),
    ("LF inside MAIL", b"MAIL FROM:<lf@client.example>\nX\r\n"),
    ("CR inside MAIL", b"MAIL FROM:<cr@client.example>\rX\r\n"),
    ("NUL inside MAIL", b"MAIL FROM:<n\x00ul@client.example>\r\n"),
]


def smuggles_a_real_end(seq):
    """True when seq holds a genuine CRLF.CRLF, so that what follows it is
    read as commands: the hidden transaction then runs as a new one (and is
    queued) while the outer message is refused."""
    return b"\r\n.\r\n" in b"outer body" + seq + b"MAIL"


def expected_smuggling_replies(seq):
    """(code, enhanced) of every reply to the smuggling payload and QUIT."""
    if smuggles_a_real_end(seq):
        return [(550, "5.6.0"), (250, "2.1.0"), (250, "2.1.5"), (354, None), (250, "2.0.0"),
                (221, "2.0.0")]
    return [(550, "5.6.0"), (221, "2.0.0")]


def smuggling_payload(t, seq):
    """The content of an outer message that hides, after seq, a whole
    second transaction; the real end of data comes last."""
    return (b"From: <outer@client.example>\r\nSubject: outer-" + t.encode() + b"\r\n\r\n"
            + b"outer body" + seq
            + b"MAIL FROM:<inner-" + t.encode() + b"@client.example>\r\n"
            + b"RCPT TO:<victim@remote.example>\r\nDATA\r\n"
            + b"From: <ceo@bank.example>\r\nSubject: inner-" + t.encode() + b"\r\n\r\n"
            + b"smuggled\r\n.\r\n")


class IntakeDataLimits(SharedRelayd, ReplyAsserts, unittest.TestCase):
    @classmethod
    def relayd_conf(cls):
        return "max-message-size 10K\n"

    def assertNothingQueued(self, t):
        self.assertEqual(accepted_lines(self.r, t), [], "accepted-message log line for %s" % t)
        self.assertEqual(queue_count(self.r, t), 0, "queued messages with %s" % t)
        self.r.wait_nothing_stored(t)

    def assertBadContent(self, r, what):
        """Refused content: 550 5.6.0 (interface.md: 5.6.0 in DATA)."""
        self.assertReply(r, 550, "5.6.0", what)

    def assertSmuggling(self, t, seq, replies, closed):
        """The exact replies to a smuggling payload and QUIT; the outer
        message is stored nowhere, the hidden one only after a real end."""
        self.assertEqual([(x.code, x.enhanced) for x in replies],
                         expected_smuggling_replies(seq), replies)
        self.assertTrue(closed, "connection open after QUIT")
        inner = 1 if smuggles_a_real_end(seq) else 0
        self.assertEqual(len([x for x in replies if x.qid]), inner, replies)
        self.assertEqual(len(accepted_lines(self.r, t)), inner)
        self.assertEqual(queue_count(self.r, t), inner)
        # the outer message, which carries the bare CR/LF/NUL, is never stored
        self.assertEqual(accepted_lines(self.r, "outer-" + t), [])
        self.assertEqual(queue_count(self.r, "outer-" + t), 0)
        self.r.wait_nothing_stored("outer-" + t)

    # --- SMTP smuggling ------------------------------------------------------------

    def test_smuggling_sequences(self):
        for name, seq in SMUGGLING:
            with self.subTest(seq=name):
                t = token("smug")
                c = self.session()
                self.start_data(c, "outer-%s@client.example" % t)
                c.send(smuggling_payload(t, seq) + b"QUIT\r\n")
                replies, closed = c.replies_until_close(idle=10)
                c.close()
                self.assertSmuggling(t, seq, replies, closed)

    def test_smuggling_sequences_split_across_writes(self):
        """The same sequences sent one octet per write around the fake end,
        so the reader sees them across read boundaries."""
        for name, seq in SMUGGLING:
            with self.subTest(seq=name):
                t = token("smugsplit")
                c = self.session()
                c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.start_data(c, "outer-%s@client.example" % t)
                payload = smuggling_payload(t, seq)
                cut = payload.index(b"outer body") + len(b"outer body")
                c.send(payload[:cut])
                for i in range(cut, cut + len(seq) + 12):
                    c.send(payload[i:i + 1])
                    time.sleep(0.002)  # pacing, so that intake reads each octet alone
                c.send(payload[cut + len(seq) + 12:] + b"QUIT\r\n")
                replies, closed = c.replies_until_close(idle=10)
                c.close()
                self.assertSmuggling(t, seq, replies, closed)

    def test_end_of_data_split_across_writes(self):
        """A proper CRLF.CRLF split at every position still ends the message,
        and a stuffed dot split from its line still counts as stuffing."""
        for cut in range(1, 5):
            with self.subTest(cut=cut):
                t = token("endsplit")
                c = self.session()
                c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.start_data(c, "%s@client.example" % t)
                data = msg(t, body="x\r\n..y\r\n")
                end = len(data) - 5 + cut
                c.send(data[:end])
                time.sleep(0.05)  # pacing: the two parts arrive in two reads
                c.send(data[end:])
                self.assertQueued(c.reply())
        # one octet per write for a whole message
        t = token("bytewise")
        c = self.session()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.start_data(c, "%s@client.example" % t)
        for b in msg(t, body="a\r\n..b\r\nc\r\n"):
            c.send(bytes([b]))
        self.assertQueued(c.reply())

    # --- bare CR, LF, NUL in content ----------------------------------------------------

    def test_bare_lf_cr_nul_in_content(self):
        cases = [("bare LF", b"one\ntwo\r\n"), ("bare CR", b"one\rtwo\r\n"),
                 ("NUL", b"one\x00two\r\n"), ("bare LF in a header", None),
                 ("CR at end of body", b"last\r")]
        for name, body in cases:
            with self.subTest(case=name):
                t = token("bare")
                c = self.session()
                self.start_data(c, "%s@client.example" % t)
                if body is None:
                    data = b"Subject: " + t.encode() + b"\nX-A: b\r\n\r\nbody\r\n.\r\n"
                else:
                    data = b"Subject: " + t.encode() + b"\r\n\r\n" + body + b"\r\n.\r\n"
                c.send(data)
                self.assertBadContent(c.reply(), name)
                self.assertNothingQueued(t)

    # --- bare CR, LF, NUL in commands ---------------------------------------------------

    def test_bare_lf_cr_nul_in_commands(self):
        for name, data in BAD_COMMANDS:
            with self.subTest(case=name):
                c = self.session()
                c.send(data)
                self.assertReply(c.reply(), 500, "5.5.2", name)
                # one reply for the one bad line, and the session goes on
                self.assertEqual(c.pending(0.5), b"", "%s: more than one reply" % name)
                self.assertReply(c.cmd("NOOP"), 250, "2.0.0", "%s: NOOP after" % name)

    def test_smuggled_mail_command_not_executed(self):
        """MAIL hidden behind a bare LF is not executed."""
        c = self.session()
        c.send(b"NOOP\nMAIL FROM:<hidden@client.example>\r\n")
        self.assertReply(c.reply(), 500, "5.5.2", "a line with a bare LF")
        # intake answers the bad line once and keeps the session
        self.assertEqual(c.pending(1.0), b"", "more than one reply to one bad line")
        self.assertReply(c.cmd("RCPT TO:<a@remote.example>"), 503, "5.5.1",
                         "RCPT after a MAIL hidden behind a bare LF")

    # --- line lengths -------------------------------------------------------------------

    def test_content_line_1000_ok(self):
        t = token("l1000")
        c = self.session()
        self.start_data(c, "%s@client.example" % t)
        c.send(msg(t, body="x" * 998 + "\r\n"))
        self.assertQueued(c.reply())

    def test_content_line_dot_stuffed_1000_ok(self):
        """The duplicated leading dot does not count (RFC 5321 4.5.3.1.6)."""
        t = token("ldot")
        c = self.session()
        self.start_data(c, "%s@client.example" % t)
        c.send(msg(t, body=".." + "x" * 997 + "\r\n"))
        self.assertQueued(c.reply())

    def test_content_line_over_1000_accepted(self):
        """Longer lines are taken, as Postfix takes them; delivery breaks them
        (test_downgrade.LongLines)."""
        for n in (999, 1001, 5000):
            with self.subTest(chars=n):
                t = token("llong")
                c = self.session()
                self.start_data(c, "%s@client.example" % t)
                c.send(msg(t, body="a\r\n" + "x" * n + "\r\nb\r\n"))
                self.assertQueued(c.reply())

    # --- message size -----------------------------------------------------------------

    def test_ehlo_size(self):
        c = self.session()
        self.assertEqual(c.ehlo().keywords().get("SIZE"), str(MAX_SIZE))

    def test_mail_size_param(self):
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<s@client.example> SIZE=%d" % MAX_SIZE), 250, "2.1.0")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("MAIL FROM:<s@client.example> SIZE=%d" % (MAX_SIZE + 1)),
                         552, "5.3.4")

    def test_message_over_max_size_refused_after_dot(self):
        for size in (MAX_SIZE + 100, 3 * MAX_SIZE, 300 * MAX_SIZE):
            with self.subTest(size=size):
                t = token("big")
                c = self.session()
                self.start_data(c, "%s@client.example" % t)
                body = ("y" * 78 + "\r\n") * (size // 80 + 1)
                c.send(msg(t, body=body))
                self.assertReply(c.reply(), 552, "5.3.4")
                self.assertNothingQueued(t)
                # the session goes on
                self.assertReply(c.cmd("NOOP"), 250, "2.0.0")

    def test_message_under_max_size_accepted(self):
        t = token("small")
        c = self.session()
        self.start_data(c, "%s@client.example" % t)
        c.send(msg(t, body=("z" * 78 + "\r\n") * 80))  # about 6.4K
        self.assertQueued(c.reply())

    # --- Received: loop ------------------------------------------------------------------

    def received(self, n):
        return "".join("Received: from hop%d.example by hop%d.example; "
                       "Sun, 22 Nov 2026 05:00:00 +0000\r\n" % (i, i + 1) for i in range(n))

    def test_over_100_received_is_loop(self):
        t = token("loop")
        c = self.session()
        self.start_data(c, "%s@client.example" % t)
        c.send(msg(t, headers=self.received(101)))
        self.assertReply(c.reply(), 554, "5.4.6")
        self.assertNothingQueued(t)

    def test_99_received_accepted(self):
        t = token("hops")
        c = self.session()
        self.start_data(c, "%s@client.example" % t)
        c.send(msg(t, headers=self.received(99)))
        self.assertQueued(c.reply())


class IntakeLineBound(SharedRelayd, ReplyAsserts, unittest.TestCase):
    """Lines of 64 KiB are taken; past that bound the message is refused
    whole (a size limit large enough that the line bound is what trips)."""

    @classmethod
    def relayd_conf(cls):
        return "max-message-size 1M\n"

    def test_line_of_64k_accepted(self):
        t = token("l64k")
        c = self.session()
        self.start_data(c, "%s@client.example" % t)
        c.send(msg(t, body="a\r\n" + "x" * 65536 + "\r\nb\r\n"))
        self.assertQueued(c.reply())

    def test_line_of_70k_refused(self):
        t = token("l70k")
        c = self.session()
        self.start_data(c, "%s@client.example" % t)
        c.send(msg(t, body="a\r\n" + "x" * (70 * 1024) + "\r\nb\r\n"))
        r = c.reply()
        self.assertReply(r, 550, "5.6.0", "a 70 KiB line")
        self.assertIn("longer than 65536 octets", r.text)
        self.assertEqual(accepted_lines(self.r, t), [])
        self.assertEqual(queue_count(self.r, t), 0)
        self.r.wait_nothing_stored(t)


class IntakeEndToEnd(ReplyAsserts, unittest.TestCase):
    """relayd with every worker, relaying to an aiosmtpd smarthost."""

    @classmethod
    def setUpClass(cls):
        cls.up = Upstream().__enter__()
        try:
            cls.r = Relayd(conf_extra=cls.up.conf())
        except BaseException:
            cls.up.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.r.cleanup()
        cls.up.__exit__(None, None, None)

    def send(self, data, sender=None, rcpts=("rcpt@remote.example",)):
        c = self.session()
        rs = c.transaction(sender or "sender@client.example", rcpts, data, helo=False)
        return self.assertQueued(rs[-1])

    def test_dot_unstuffing_end_to_end(self):
        t = token("dots")
        body = (b"first\r\n..\r\n...\r\n..x\r\nx.\r\n.y\r\n. \r\n" + b"end " + t.encode()
                + b"\r\n")
        self.send(b"Subject: " + t.encode() + b"\r\n\r\n" + body + b".\r\n")
        got = self.up.wait_for(t)[0].data
        self.assertEqual(got.split(b"\r\n\r\n", 1)[1],
                         b"first\r\n.\r\n..\r\n.x\r\nx.\r\ny\r\n \r\nend " + t.encode() + b"\r\n")

    def test_body_bytes_preserved(self):
        t = token("bytes")
        body = ("8bit: gr\u00fc\u00dfe \u2603\r\n\tindented\r\n\r\n\r\ntrailing  \r\n"
                "end %s\r\n" % t).encode()
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<s@client.example> BODY=8BITMIME"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<rcpt@remote.example>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"Subject: " + t.encode() + b"\r\n\r\n" + body + b".\r\n")
        self.assertQueued(c.reply())
        got = self.up.wait_for(t)[0].data
        self.assertEqual(got.split(b"\r\n\r\n", 1)[1], body)

    def test_received_header(self):
        t = token("rcvd")
        qid = self.send(msg(t), rcpts=("%s@remote.example" % t,))
        m = self.up.wait_for(t)[0]
        self.assertEqual(m.rcpt_tos, ["%s@remote.example" % t])
        self.assertTrue(m.data.startswith(b"Received: "), m.data[:200])
        name, value = headers_of(m.data)[0]
        self.assertEqual(name, "Received")
        rx = (r"^from %s \(\[127\.0\.0\.1\]\)(?: \([^)]*\))* by %s(?: \([^)]*\))* with ESMTP "
              r"id %s for <%s@remote\.example>; (.+)$"
              % (re.escape(CLIENT_HELO), re.escape(HOSTNAME), re.escape(qid), re.escape(t)))
        mm = re.match(rx, value)
        self.assertIsNotNone(mm, "Received: %r does not match %r" % (value, rx))
        when = email.utils.parsedate_to_datetime(mm.group(1))
        self.assertIsNotNone(when.tzinfo, mm.group(1))
        self.assertLess(abs((datetime.now(timezone.utc) - when).total_seconds()), 300)
        # exactly one Received: added (the message came without any)
        self.assertEqual([n for n, _ in headers_of(m.data)].count("Received"), 1)

    def test_message_id_and_date_added_for_mynetworks(self):
        t = token("mid")
        self.send(b"From: <s@client.example>\r\nSubject: " + t.encode() + b"\r\n\r\nbody\r\n.\r\n")
        hs = headers_of(self.up.wait_for(t)[0].data)
        mids = [v for n, v in hs if n.lower() == "message-id"]
        dates = [v for n, v in hs if n.lower() == "date"]
        self.assertEqual(len(mids), 1, hs)
        self.assertRegex(mids[0], r"^<[^<>@\s]+@%s>$" % re.escape(HOSTNAME))
        self.assertEqual(len(dates), 1, hs)
        when = email.utils.parsedate_to_datetime(dates[0])
        self.assertLess(abs((datetime.now(timezone.utc) - when).total_seconds()), 300)

    def test_message_id_and_date_kept(self):
        t = token("keep")
        mid = "<%s@client.example>" % t
        date = "Sat, 21 Nov 2026 10:00:00 +0100"
        self.send(("From: <s@client.example>\r\nMessage-ID: %s\r\nDate: %s\r\nSubject: %s"
                   "\r\n\r\nbody\r\n.\r\n" % (mid, date, t)).encode())
        hs = headers_of(self.up.wait_for(t)[0].data)
        self.assertEqual([v for n, v in hs if n.lower() == "message-id"], [mid])
        self.assertEqual([v for n, v in hs if n.lower() == "date"], [date])

    def test_pipelined_content_relayed(self):
        t = token("pipee2e")
        c = self.session()
        body = b"pipelined body " + t.encode() + b"\r\n"
        c.send(b"MAIL FROM:<p@client.example>\r\nRCPT TO:<a@remote.example>\r\n"
               b"RCPT TO:<b@remote.example>\r\nDATA\r\nSubject: " + t.encode() + b"\r\n\r\n"
               + body + b".\r\n")
        rs = [c.reply() for _ in range(5)]
        self.assertEqual([(r.code, r.enhanced) for r in rs],
                         [(250, "2.1.0"), (250, "2.1.5"), (250, "2.1.5"), (354, None),
                          (250, "2.0.0")], rs)
        self.assertQueued(rs[4])
        got = self.up.wait_for(t)
        rcpts = sorted(r for m in got for r in m.rcpt_tos)
        self.assertEqual(rcpts, ["a@remote.example", "b@remote.example"])
        self.assertTrue(all(m.data.endswith(b"\r\n\r\n" + body) for m in got), got)

    def test_smuggling_end_to_end(self):
        """Each smuggling sequence: the outer message never reaches the
        next hop; the hidden one only where a real CRLF.CRLF ended the outer."""
        tokens = {}
        for name, seq in SMUGGLING:
            t = token("smuge2e")
            tokens[name] = (t, seq)
            c = Client(self.r.port)
            try:
                self.assertReply(c.greeting(), 220)
                self.assertReply(c.ehlo(), 250)
                self.start_data(c, "outer-%s@client.example" % t, "victim@remote.example")
                c.send(smuggling_payload(t, seq) + b"QUIT\r\n")
                replies, _ = c.replies_until_close(idle=10)
                self.assertEqual([(x.code, x.enhanced) for x in replies],
                                 expected_smuggling_replies(seq), replies)
            finally:
                c.close()
        # every delivery has ended once the queue is empty
        wait_until(lambda: queue_messages(self.r) == [], 60, "an empty queue")
        for name, (t, seq) in tokens.items():
            with self.subTest(seq=name):
                got = self.up.find(t)
                self.assertEqual(len(got), 1 if smuggles_a_real_end(seq) else 0,
                                 [m.data[:300] for m in got])
                self.assertEqual(self.up.find("outer-" + t), [])


if __name__ == "__main__":
    unittest.main()
